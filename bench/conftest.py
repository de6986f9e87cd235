"""Import fastgd before anything imports numba, so that ``FASTGD_AVX512=1`` can still
set ``NUMBA_CPU_FEATURES`` (512-bit vectors) for the whole benchmark session."""

import fastgd  # noqa: F401
