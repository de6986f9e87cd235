"""The one place that decides Numba's options for every fastgd kernel.

* ``cache=True``: compiled code is cached on disk (``NUMBA_CACHE_DIR`` to move it).
* ``nogil=True``: kernels release the GIL.
* ``error_model="numpy"``: x/0 gives inf (a divergence study wants that), no exception.
* fastmath is **off** by default: the full set lets LLVM delete NaN/inf checks, which
  breaks divergence detection.  ``FASTGD_CONTRACT=1`` (read once, at import) turns on
  ``fastmath={'contract'}`` (FMA contraction only), which keeps NaN/inf semantics but
  changes rounding in the last bit; the tests compare against references at 1e-12 and
  pass either way.
"""

import os

import numba

_CONTRACT = os.environ.get("FASTGD_CONTRACT", "0") not in ("", "0", "false", "False")

OPTIONS = {"cache": True, "nogil": True, "error_model": "numpy"}
if _CONTRACT:
    OPTIONS["fastmath"] = {"contract"}


def jit(fn=None, *, parallel=False, inline=False):
    """``numba.njit`` with fastgd's policy (see module docstring).

    ``inline=True`` inlines the function into its callers at Numba-IR level (used for
    the scalar hash helpers called once per sample).  A cached kernel reaches another
    kernel only as object code, and each call pays a reference-count update per array
    argument.  Measured on a copy of the GD step helper (13 arguments, 9 arrays), warm
    cache, in a small driver loop: 237 ns per call plain, 19 ns inlined; inside the full
    GD kernel, inlining it did not remove the cost (0.21 vs 0.23 G steps/s), so that
    step is written out in the kernel's loop instead (1.5 G steps/s).
    """

    def wrap(f):
        if inline:
            return numba.njit(parallel=parallel, inline="always", **OPTIONS)(f)
        return numba.njit(parallel=parallel, **OPTIONS)(f)

    return wrap(fn) if fn is not None else wrap


def options():
    """The njit options in force (for ``fastgd info`` and benchmarks)."""
    return dict(OPTIONS)
