"""The compile notice: one line on stderr before a kernel compiles on a cold cache.

Numba compiles a kernel on its first call and keeps the machine code in its on-disk
cache, so only the first run on a machine pays the compile time.  To tell that first
run from the later ones without reading Numba's private cache index, fastgd keeps its
own marker: an empty file per kernel and dtype in the cache directory
(``NUMBA_CACHE_DIR`` when set, else the ``__pycache__`` folder beside the kernel's
source, as Numba does), named by the source digest (below) and a hash of what Numba's
cache keys on that fastgd can see: the kernel's qualified name (the contraction mode is
part of it), its closure constants (the factories' compile-time constants), the source
file's stamp, the dtype, and the Numba, Python and machine versions.  The marker is
written when the notice is decided; an edited source reads as cold again.  A notice can
be wrong only where the cache was emptied by hand and the markers were kept: it is a
notice, not a check.

Each kernel's cache files are named after its qualified name, which carries
:data:`fastgd.kernels.jit.SOURCE_DIGEST`, so an upgrade or an edit of fastgd leaves the
files of the older code behind (tens of MB over a few versions).  When the notice
answers True, :func:`prune_stale` removes the cache files and markers of other digests
from the cache folders of fastgd's loaded kernels (each folder once per process):
folders of this installation only (Numba keys them on the source folder's path), never
the current digest's files, either contraction mode's included.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import sys

__all__ = ["first_compile", "prune_stale"]

#: a Numba cache file (index or data), or a notice marker
_CACHE_FILE = re.compile(r"\.py\d+[a-z]*(\.\d+\.nbc|\.nbi)$|^fastgd-compiled-")


def _key(kern, dtype):
    import numba

    py = kern.py_func
    src = py.__code__.co_filename
    try:
        st = os.stat(src)
        stamp = (st.st_mtime_ns, st.st_size)
    except OSError:
        stamp = None
    consts = tuple(c.cell_contents for c in (py.__closure__ or ())
                   if isinstance(c.cell_contents, (bool, int, float, str)))
    text = repr((py.__module__, py.__qualname__, consts, src, stamp, str(dtype),
                 numba.__version__, sys.version_info[:2], platform.machine()))
    return src, hashlib.sha256(text.encode()).hexdigest()[:24]


def _digest():
    from fastgd.kernels import jit

    return jit.SOURCE_DIGEST


def _folder(src):
    import numba

    base = getattr(numba.config, "CACHE_DIR", "") or ""
    if base:
        return base
    return os.path.join(os.path.dirname(src), "__pycache__")


def first_compile(kern, dtype="float64") -> bool:
    """Whether calling the jitted ``kern`` with ``dtype`` arrays is, as far as fastgd
    can tell, its first call on this machine (so it will compile): no signature of
    that dtype compiled in this process and no fastgd marker for it in the cache
    directory.  Records the marker when it answers True (the call that follows
    compiles and caches the kernel), so the answer is True once per machine, kernel
    and dtype.  False when the JIT is off or the directory cannot be written.

    Examples
    --------
    >>> from fastgd.engine.notice import first_compile
    >>> first_compile(print)   # not a Numba dispatcher: never compiles
    False
    """
    sigs = getattr(kern, "signatures", None)  # None: NUMBA_DISABLE_JIT=1, or no kernel
    if sigs is None or not hasattr(kern, "py_func"):
        return False
    if any(str(getattr(s[0], "dtype", "")) == str(dtype) for s in sigs):
        return False
    src, key = _key(kern, dtype)
    folder = _folder(src)
    marker = os.path.join(folder, f"fastgd-compiled-{_digest()}-{key}")
    if os.path.exists(marker):
        return False
    try:
        os.makedirs(folder, exist_ok=True)
        with open(marker, "a"):
            pass
    except OSError:  # a read-only installation: no notice rather than one every run
        return False
    new = [f for f in _cache_folders(kern) if f not in _PRUNED]  # each once a process
    _PRUNED.update(new)
    prune_stale(new)
    return True


_PRUNED = set()  # the cache folders prune_stale has seen in this process


def _cache_folders(*kernels):
    """The cache folders of ``kernels`` and of the jitted functions of the loaded fastgd
    modules."""
    from numba.core.dispatcher import Dispatcher

    objs = list(kernels)
    for name, mod in list(sys.modules.items()):
        if name.startswith("fastgd.") and mod is not None:
            objs += list(vars(mod).values())
    # dispatchers only: no attribute lookup runs any other object's Python code (an
    # enum's __getattr__, where a Ctrl-C could be lost)
    paths = {getattr(getattr(o, "_cache", None), "cache_path", None)
             for o in objs if isinstance(o, Dispatcher)}
    return sorted(p for p in paths if isinstance(p, str))


def prune_stale(folders=None, digest=None) -> int:
    """Remove the kernel cache files that no current fastgd kernel can load, those whose
    name lacks ``_<digest>_fma-`` or ``_<digest>_nofma-`` (or their ``_v512`` forms:
    kernels compiled with 512-bit hand-written vector code), and the notice markers of
    other digests (``digest``: :data:`fastgd.kernels.jit.SOURCE_DIGEST` by default), in
    ``folders`` (default: the cache folders of the loaded fastgd kernels; markers kept in
    a shared ``NUMBA_CACHE_DIR`` are not among them).  Other files are left alone; a
    file that cannot be removed is skipped.  Returns the number of files removed.

    Examples
    --------
    >>> import os, tempfile
    >>> from fastgd.engine.notice import prune_stale
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     for f in ("kernels.f_0badc0de_fma-9.py311.nbi", "kernels.f_0badc0de_fma-9.py311.1.nbc",
    ...               "kernels.f_1234abcd_fma-9.py311.nbi", "kernels.f_1234abcd_fma_v512-9.py311.nbi",
    ...               "notes.txt", "fastgd-compiled-0badc0de-0123"):
    ...         open(os.path.join(tmp, f), "w").close()
    ...     prune_stale([tmp], digest="1234abcd"), sorted(os.listdir(tmp))
    (3, ['kernels.f_1234abcd_fma-9.py311.nbi', 'kernels.f_1234abcd_fma_v512-9.py311.nbi', 'notes.txt'])
    """
    digest = _digest() if digest is None else digest
    keep = (f"_{digest}_fma-", f"_{digest}_nofma-", f"_{digest}_fma_v512-",
            f"_{digest}_nofma_v512-", f"fastgd-compiled-{digest}-")
    removed = 0
    for folder in (_cache_folders() if folders is None else folders):
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            if _CACHE_FILE.search(name) and not any(k in name for k in keep):
                try:
                    os.remove(os.path.join(folder, name))
                    removed += 1
                except OSError:  # gone already, or not ours to remove
                    pass
    return removed
