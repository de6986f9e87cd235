"""What the benchmarks report besides time: the machine's FMA ceiling, vector width,
threading layer.

The FMA ceiling (updates/s) = cores x FMA units per core x vector lanes (doubles per
register) x clock / FMAs per update.  Cores: ``os.sched_getaffinity``; clock: the
highest ``cpu MHz`` in /proc/cpuinfo (override with FASTGD_CPU_GHZ); FMA units: 2
(every AVX-512 server core since Skylake-SP; override with FASTGD_FMA_UNITS); vector
lanes: 8 doubles when the CPU has AVX-512F (4 for AVX2).  This is the ceiling of the
hardware; Numba compiles for 256-bit vectors by default even on AVX-512 machines, so
the default build can reach at most half of it (see README: 512-bit vectors).
Per-sample SGD on d inputs costs d FMAs for w.x and d for the update, plus one
multiply: 5 for d = 2 (the figure DESIGN.md uses); a GD step from the sufficient
statistics costs d^2 + 2d (8 for d = 2).
"""

from __future__ import annotations

import os


def cpu_ghz() -> float:
    if os.environ.get("FASTGD_CPU_GHZ"):
        return float(os.environ["FASTGD_CPU_GHZ"])
    best = 0.0
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("cpu mhz"):
                    best = max(best, float(line.split(":")[1]))
    except OSError:
        pass
    return best / 1000 if best else 2.9


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        return os.cpu_count() or 1


def vector_doubles() -> int:
    import llvmlite.binding as ll

    feats = ll.get_host_cpu_features()
    return 8 if feats.get("avx512f") else 4 if feats.get("avx2") or feats.get("avx") else 2


def compiled_vector_bits() -> int:
    """Vector width Numba compiles for: 512 only when NUMBA_CPU_FEATURES asks for it."""
    f = os.environ.get("NUMBA_CPU_FEATURES", "")
    return 512 if ("-prefer-256-bit" in f and "+avx512f" in f) else 256


def fma_ceiling(fma_per_update: float, threads: int | None = None) -> float:
    units = float(os.environ.get("FASTGD_FMA_UNITS", 2))
    n = threads or cores()
    return n * units * vector_doubles() * cpu_ghz() * 1e9 / fma_per_update


def record(benchmark, updates, fma_per_update, threads=None, **extra):
    """Fill ``extra_info``; return the throughput (updates/s) or None when disabled."""
    import numba

    benchmark.extra_info.update(extra)
    benchmark.extra_info["updates"] = int(updates)
    benchmark.extra_info["numba"] = numba.__version__
    benchmark.extra_info["threads"] = threads or numba.get_num_threads()
    benchmark.extra_info["threading_layer"] = _layer()
    benchmark.extra_info["vector_bits"] = compiled_vector_bits()
    ceiling = fma_ceiling(fma_per_update, threads)
    benchmark.extra_info["fma_ceiling_updates_per_s"] = ceiling
    stats = getattr(benchmark, "stats", None)
    if stats is None:
        return None
    best = stats.stats.min
    rate = updates / best if best > 0 else float("inf")
    benchmark.extra_info["updates_per_s"] = rate
    benchmark.extra_info["fraction_of_ceiling"] = rate / ceiling
    return rate


def _layer():
    import numba

    try:
        return numba.threading_layer()
    except ValueError:  # not initialised yet
        return "uninitialised"
