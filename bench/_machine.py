"""What the benchmarks report besides time: the machine's FMA ceiling, vector width,
threading layer.

The FMA ceiling (updates/s) = cores x FMA units per core x vector lanes (doubles per
register) x clock / FMAs per update.  Cores: ``os.sched_getaffinity``; clock:
*measured* under load, from a chain of dependent FMAs (x = x*a + b) whose latency is 4
cycles on every Intel core since Skylake and AMD Zen 2-4 (override the latency with
FASTGD_FMA_LATENCY, or the clock with FASTGD_CPU_GHZ).  /proc/cpuinfo gives the nominal
clock, not the turbo clock the kernels run at: on the development VM it says 2.1 GHz,
the FMA chain measures 2.9 GHz (and a chain of dependent adds, 2 cycles each on that
core, agrees).  FMA units: 2
(every AVX-512 server core since Skylake-SP; override with FASTGD_FMA_UNITS); vector
lanes: 8 doubles when the CPU has AVX-512F (4 for AVX2).  This is the ceiling of the
hardware; Numba compiles for 256-bit vectors by default even on AVX-512 machines, so
the default build can reach at most half of it (see README: 512-bit vectors).
Per-sample SGD on d inputs costs d FMAs for w.x and d for the update, plus one
multiply: 5 for d = 2 (the figure DESIGN.md uses).  A plain GD step in the eigenbasis
of H (what the GD kernel runs) costs d multiplies, z_i <- (1 - eta lambda_i) z_i: 2 for
d = 2 (from H in the original basis it would cost d^2 + 2d = 8, and the GD figures
would read 4x higher as a share of the ceiling).
"""

from __future__ import annotations

import os

_GHZ = []


def measured_ghz(n: int = 50_000_000, repeats: int = 5) -> float:
    """The core clock under load (GHz), from a dependent FMA chain (see module doc)."""
    if _GHZ:
        return _GHZ[0]
    import time

    import numba

    @numba.njit(fastmath={"contract"})
    def chain(n, a, b):
        x = 1.0
        for _ in range(n):
            x = x * a + b
        return x

    chain(10, 0.5, 0.25)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        chain(n, 0.999999, 1e-9)
        best = min(best, time.perf_counter() - t)
    latency = float(os.environ.get("FASTGD_FMA_LATENCY", 4))
    _GHZ.append(latency * n / best / 1e9)
    return _GHZ[0]


def nominal_ghz() -> float:
    """The highest ``cpu MHz`` in /proc/cpuinfo (0 where there is none)."""
    best = 0.0
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("cpu mhz"):
                    best = max(best, float(line.split(":")[1]))
    except OSError:
        pass
    return best / 1000


def cpu_ghz() -> float:
    if os.environ.get("FASTGD_CPU_GHZ"):
        return float(os.environ["FASTGD_CPU_GHZ"])
    return measured_ghz()


#: seconds OpenBLAS's worker threads busy-wait after a threaded call before they sleep
#: (about 0.12 s here: two threads of FMA work ran at half speed that long after a
#: 600 x 600 matmul, and a d = 30 sweep timed just after the NumPy reference's batched
#: X @ W^T ran 1.6-1.8x slower); waited out with margin by :func:`settle_blas`
BLAS_SPIN_S = 0.3


#: seconds of untimed work that bring the VM back to full speed after an idle pause
#: (:func:`warm_up`): after settle_blas's 0.3 s a d = 10 sweep of 100 epochs (40.5 ms
#: back to back) took 42-57 ms, after 60 ms of sweeps 41-44, after 0.2 s 41-42
WARM_UP_S = 0.2


def warm_up(work, seconds=WARM_UP_S) -> None:
    """Run ``work()`` (untimed) until ``seconds`` have passed: after an idle pause (such
    as :func:`settle_blas`'s) the VM runs about a tenth of a second of work up to 1.4x
    slower (its clock or its scheduling ramps up), which a timed call would count."""
    import time

    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        work()


def settle_blas() -> None:
    """Wait until the BLAS threads a NumPy reference woke have stopped spinning, so that
    the fastgd call timed next has the cores to itself (fastgd holds its own BLAS to one
    thread, but cannot stop threads that another call left spinning)."""
    import time

    time.sleep(float(os.environ.get("FASTGD_BLAS_SPIN_S", BLAS_SPIN_S)))


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


def fma_ceiling(fma_per_update: float, threads: int | None = None,
                doubles: int | None = None) -> float:
    """Updates/s at full FMA throughput; ``doubles``: doubles per vector register
    (default: the host's widest, :func:`vector_doubles`; 4 for the 256-bit ceiling)."""
    units = float(os.environ.get("FASTGD_FMA_UNITS", 2))
    n = threads or cores()
    return n * units * (doubles or vector_doubles()) * cpu_ghz() * 1e9 / fma_per_update


def record(benchmark, updates, fma_per_update, threads=None, **extra):
    """Fill ``extra_info``; return the throughput (updates/s) or None when disabled."""
    import numba

    benchmark.extra_info.update(extra)
    benchmark.extra_info["updates"] = int(updates)
    benchmark.extra_info["numba"] = numba.__version__
    benchmark.extra_info["threads"] = threads or numba.get_num_threads()
    benchmark.extra_info["threading_layer"] = _layer()
    benchmark.extra_info["vector_bits"] = compiled_vector_bits()
    stats = getattr(benchmark, "stats", None)
    if stats is None:  # benchmarks disabled (smoke run): no timing, no clock measurement
        return None
    ceiling = fma_ceiling(fma_per_update, threads)
    benchmark.extra_info["fma_ceiling_updates_per_s"] = ceiling
    benchmark.extra_info["clock_ghz"] = cpu_ghz()
    benchmark.extra_info["nominal_ghz"] = nominal_ghz()
    best = stats.stats.min
    rate = updates / best if best > 0 else float("inf")
    benchmark.extra_info["updates_per_s"] = rate
    benchmark.extra_info["fraction_of_ceiling"] = rate / ceiling
    return rate


def fma_control_scaling(n: int = 3_000_000, repeats: int = 3) -> float:
    """1 -> 2 thread scaling of a trivially parallel, FMA-bound loop (64 independent
    multiply-adds per iteration), run the way fastgd runs chunks (nogil Numba calls on
    Python threads): the best of ``repeats`` on 1 and on 2 threads.  What this machine
    allows FMA-bound work at that moment (the control of
    ``test_bench_thread_scaling_control`` in bench/test_bench_sweep.py)."""
    import threading
    import time

    import numba
    import numpy as np

    @numba.njit(fastmath={"contract"}, nogil=True)
    def work(n, a):
        acc = np.ones(64)
        for _ in range(n):
            for lane in range(64):
                acc[lane] = acc[lane] * a + 1e-9
        return acc.sum()

    work(10, 0.5)

    def on(threads):
        ts = [threading.Thread(target=work, args=(n, 0.999)) for _ in range(threads)]
        t = time.perf_counter()
        for th in ts:
            th.start()
        for th in ts:
            th.join()
        return time.perf_counter() - t

    return 2 * min(on(1) for _ in range(repeats)) / min(on(2) for _ in range(repeats))


def _layer():
    import numba

    try:
        return numba.threading_layer()
    except ValueError:  # not initialised yet
        return "uninitialised"
