"""The one place that decides Numba's options for every fastgd kernel.

* ``cache=True``: compiled code is cached on disk (``NUMBA_CACHE_DIR`` to move it).
* ``nogil=True``: kernels release the GIL.
* ``error_model="numpy"``: x/0 gives inf (a divergence study wants that), no exception.
* ``fastmath={'contract'}`` and nothing more: LLVM may fuse a multiply and an add into
  one FMA (one rounding instead of two).  The rest of fastmath is off: the full set
  lets LLVM delete NaN/inf checks, which breaks divergence detection.  Contraction is
  on by default: the lane loops are chains of multiply-adds, which it speeds up
  (bench/ has the numbers).  Results then differ from unfused arithmetic in the last
  bits (the tests compare kernels with their references at 1e-12 either way).  ``FASTGD_CONTRACT=0`` (read once, at import) turns it off, e.g. to reproduce
  scikit-learn's ``SGDRegressor`` bit for bit.

Numba's on-disk cache does not key compiled code by these options, so each kernel's
qualified name carries the mode (suffix ``_fma`` or ``_nofma``): switching
``FASTGD_CONTRACT`` between processes never loads code compiled the other way.

Nor does it key a kernel on the code it takes from other modules: the jitted helpers it
calls and the vector code that intrinsics emit at compile time (:mod:`.simd`,
:mod:`.fmath`, :mod:`fastgd.net.lanczos_ir`, ...).  It keys a kernel on a hash of its own
source file only, so a kernel whose file did not change kept code compiled with an older
helper (seen: a new tanh in :mod:`.fmath` reached the loops but not the cached vector
kernels of :mod:`fastgd.net.kernels`, whose bits then differed).  Each qualified name
therefore also carries :data:`SOURCE_DIGEST`, a hash of every fastgd module that holds
compiled code: a change to any of them compiles every kernel afresh on its next call.

The width of the hand-written vector code (:data:`VECTOR_BYTES`, which
``FASTGD_VECTOR_BITS`` can change between processes without touching the sources or
Numba's CPU features) is in the name too: suffix ``_v512`` where it is 512 bits.
"""

import hashlib
import os
import types as _pytypes
from pathlib import Path

import numba

_CONTRACT = os.environ.get("FASTGD_CONTRACT", "1") not in ("0", "false", "False", "no")

OPTIONS = {"cache": True, "nogil": True, "error_model": "numpy"}
if _CONTRACT:
    OPTIONS["fastmath"] = {"contract"}


def _source_digest(root=None):
    """The first 8 hex digits of a SHA-256 over the fastgd modules (under ``root``, the
    package by default) that hold compiled code: those that import this module's ``jit``
    or define intrinsics, overloads or ``njit`` functions, read in path order; "0" where
    the sources cannot be read."""
    root = Path(__file__).resolve().parents[1] if root is None else Path(root)
    marks = (b"kernels.jit import", b"@intrinsic", b"@overload", b"njit(")
    h = hashlib.sha256()
    try:
        for path in sorted(root.rglob("*.py")):
            data = path.read_bytes()
            if any(m in data for m in marks):
                h.update(path.relative_to(root).as_posix().encode() + b"\0" + data)
    except OSError:  # pragma: no cover - a zipped or unreadable install
        return "0"
    return h.hexdigest()[:8]


#: hash of the sources of fastgd's compiled code, part of every kernel's cache key
SOURCE_DIGEST = _source_digest()


def _vector_bytes():
    """Bytes per vector of the hand-written streaming and check code
    (:mod:`fastgd.kernels.simd_stream`): 64 (512 bits) where the compile target has
    AVX-512F and either fastgd was asked for 512-bit vectors (FASTGD_AVX512=1, which
    sets NUMBA_CPU_FEATURES) or the host is an AMD Zen (``znver*``: 512-bit instructions
    run on its 256-bit units at full clock, half the instructions for the same work);
    else 32.  ``FASTGD_VECTOR_BITS=256|512`` overrides (512 only where the target has
    AVX-512F).  The width changes how many lanes one call advances, never a lane's
    arithmetic (the same bits).  Measured on the Zen 4 VM, bench.table rows at E = 100
    (4 alternating rounds, noisy): d = 10 48-62 -> 62-71 %, d = 30 72-73 -> 68-80 %,
    d = 100 58-67 -> 61-69 % of the 256-bit FMA ceiling (the same hardware ceiling: Zen 4
    splits a 512-bit FMA over its two 256-bit pipes)."""
    import llvmlite.binding as ll
    from numba.core import config

    if config.CPU_FEATURES is not None:
        avx512 = "+avx512f" in config.CPU_FEATURES.split(",")
        wanted = "-prefer-256-bit" in config.CPU_FEATURES.split(",")
    elif config.CPU_NAME not in (None, "host"):
        return 32  # a named portable target
    else:
        avx512 = bool(ll.get_host_cpu_features().get("avx512f"))
        wanted = ll.get_host_cpu_name().startswith("znver")
    bits = os.environ.get("FASTGD_VECTOR_BITS", "")
    if bits in ("256", "512"):
        return 64 if bits == "512" and avx512 else 32
    return 64 if avx512 and wanted else 32


#: bytes per vector of the hand-written streaming and check code (:func:`_vector_bytes`)
VECTOR_BYTES = _vector_bytes()


def _tagged(f, variant=None):
    """A copy of ``f`` whose qualified name carries the variant, :data:`SOURCE_DIGEST`,
    the contraction mode and the vector width (the cache file of a kernel is named after
    its qualified name)."""
    g = _pytypes.FunctionType(f.__code__, f.__globals__, f.__name__, f.__defaults__,
                              f.__closure__)
    g.__qualname__ = (f.__qualname__ + (f"_{variant}" if variant else "")
                      + f"_{SOURCE_DIGEST}" + ("_fma" if _CONTRACT else "_nofma")
                      + ("_v512" if VECTOR_BYTES == 64 else ""))
    g.__doc__ = f.__doc__
    g.__module__ = f.__module__
    g.__kwdefaults__ = f.__kwdefaults__
    return g


def jit(fn=None, *, variant=None):
    """``numba.njit`` with fastgd's policy (see module docstring).

    ``variant``: for a kernel built by a factory, a name for the factory's constants
    (e.g. ``"D2_F0"``): each variant then has its own cache index.  Numba's disk cache can
    pair one overload's index entry with another overload's code when two processes save
    overloads of the same function at the same moment (numba#10128: both pick the same
    free data-file name); one compiled overload per index keeps such collisions benign
    (both write the same code).

    Nothing is inlined at Numba-IR level (``inline="always"``): each inlined call site is
    typed again, which costs more compile time on a cold cache than it saves at run
    time (LLVM inlines small scalar functions such as :mod:`.steps` anyway).  A call to
    another kernel with array arguments is not free (a reference-count update per
    array), so per-step and per-lane code is written out in the kernels' loops instead.
    """

    def wrap(f):
        return numba.njit(**OPTIONS)(_tagged(f, variant))

    return wrap(fn) if fn is not None else wrap


def contract() -> bool:
    """Whether the kernels were compiled with FMA contraction (``FASTGD_CONTRACT``)."""
    return _CONTRACT


def options():
    """The njit options in force (for ``fastgd info`` and benchmarks)."""
    return dict(OPTIONS)
