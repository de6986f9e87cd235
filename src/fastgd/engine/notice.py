"""The compile notice: one line on stderr before a kernel compiles on a cold cache.

Numba compiles a kernel on its first call and keeps the machine code in its on-disk
cache, so only the first run on a machine pays the compile time.  To tell that first
run from the later ones without reading Numba's private cache index, fastgd keeps its
own marker: an empty file per kernel and dtype in the cache directory
(``NUMBA_CACHE_DIR`` when set, else the ``__pycache__`` folder beside the kernel's
source, as Numba does), named by a hash of what Numba's cache keys on that fastgd can
see: the kernel's qualified name (the contraction mode is part of it), its closure
constants (the factories' compile-time constants), the source file's stamp, the dtype,
and the Numba, Python and machine versions.  The marker is written when the notice is
decided; an edited source reads as cold again.  A notice can be wrong only where the
cache was emptied by hand and the markers were kept: it is a notice, not a check.
"""

from __future__ import annotations

import hashlib
import os
import platform
import sys

__all__ = ["first_compile"]


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
    marker = os.path.join(folder, f"fastgd-compiled-{key}")
    if os.path.exists(marker):
        return False
    try:
        os.makedirs(folder, exist_ok=True)
        with open(marker, "a"):
            pass
    except OSError:  # a read-only installation: no notice rather than one every run
        return False
    return True
