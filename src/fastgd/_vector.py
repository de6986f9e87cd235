"""Opt-in 512-bit vectors (``FASTGD_AVX512=1``), applied before numba is imported.

Numba compiles for 256-bit vectors by default even on AVX-512 CPUs (LLVM's
``prefer-256-bit`` tuning).  Setting ``NUMBA_CPU_FEATURES`` to the host's features plus
``-prefer-256-bit`` lets the lane loops use 512-bit registers (bench/ measures the
difference on a given machine).  fastgd does not do this by default: the variable is process-wide (it changes how every
numba-compiled library in the process is built and keys a separate kernel cache), and
on some CPUs 512-bit code lowers the clock.  ``FASTGD_AVX512=1`` asks fastgd to set it
at import, when numba has not been imported yet and the variable is not already set.
"""

from __future__ import annotations

import os
import sys
import warnings


def apply_opt_in() -> str | None:
    """Set NUMBA_CPU_FEATURES for 512-bit vectors when FASTGD_AVX512=1; return it."""
    if os.environ.get("FASTGD_AVX512", "0") in ("", "0", "false", "False"):
        return None
    if "NUMBA_CPU_FEATURES" in os.environ:
        return os.environ["NUMBA_CPU_FEATURES"]
    if "numba" in sys.modules:
        warnings.warn("FASTGD_AVX512=1 has no effect: numba was imported before fastgd; "
                      "set NUMBA_CPU_FEATURES yourself or import fastgd first.", stacklevel=3)
        return None
    import llvmlite.binding as ll

    feats = ll.get_host_cpu_features()
    if not feats.get("avx512f"):
        return None
    os.environ["NUMBA_CPU_FEATURES"] = feats.flatten() + ",-prefer-256-bit"
    return os.environ["NUMBA_CPU_FEATURES"]
