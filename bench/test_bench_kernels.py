"""Kernel throughput across d (issue 14, item 6): per-sample SGD through ``fg.sweep()``,
32 datasets x 256 learning rates, P = 100, cyclic, float64, 2 threads, no lane stopping
early, for d = 2, 4, 10, 30, 100: G updates/s, share of the 256-bit FMA ceiling, a NumPy
reference vectorised across runs (alternating runs, same process), and the 512-bit build
(``FASTGD_AVX512=1`` in a subprocess); thread scaling at d = 10 against an FMA-bound
control; first-sweep latency in fresh processes.

Run:      pytest bench/test_bench_kernels.py --benchmark-enable -s
Table:    python -m bench.table     (the same measurement, printed as markdown)
In the default run (benchmarks disabled) the table runs once on a tiny grid and the
subprocess parts (512-bit column, latency) are skipped.  The figures go to extra_info;
the timed figure of ``test_bench_kernels_table`` is the whole table's wall time.
"""

from __future__ import annotations

import pytest

from . import _kernels_table as K
from . import _machine as M


def _machine_info(benchmark, clock):
    import numba

    benchmark.extra_info.update(numba=numba.__version__, threading_layer=M._layer(),
                                vector_bits=M.compiled_vector_bits(), clock_ghz=clock,
                                nominal_ghz=M.nominal_ghz(), cores=M.cores())


def _table(size, with_avx512):
    rows = [K.measure_row(d, size) for d in K.DIMS]
    avx512 = K.avx512_rates(K.DIMS, size) if with_avx512 else None
    return rows, avx512


def test_bench_kernels_table(benchmark):
    size = K.SMOKE if benchmark.disabled else K.FULL
    assert K.numpy_matches_fastgd()
    benchmark.group = "kernels: per-sample SGD table, 32 data x 256 lr, P=100, d=2..100"
    rows, avx512 = benchmark.pedantic(_table, args=(size, not benchmark.disabled),
                                      rounds=1, iterations=1)
    clock = M.cpu_ghz()
    K.add_ceilings(rows, avx512, clock)
    _machine_info(benchmark, clock)
    for row in rows:
        benchmark.extra_info.update({f"d{row['d']}_{k}": v for k, v in row.items() if k != "d"})
    print("\n" + K.markdown(rows))
    print("\n".join(K.extra_lines(clock, None, None, rows)))


def test_bench_kernels_thread_scaling(benchmark):
    """d = 10, 1 -> 2 threads (alternating) against the FMA-bound control loop."""
    args = (10, K.SMOKE, 10_000) if benchmark.disabled else (10, K.FULL)
    benchmark.group = "kernels: thread scaling d=10"
    res = benchmark.pedantic(K.thread_scaling, args=args, rounds=1, iterations=1)
    benchmark.extra_info.update(res)
    print("\n" + K.extra_lines(M.cpu_ghz(), res, None)[1])


def test_bench_kernels_first_sweep_latency(benchmark, tmp_path):
    """``fastgd phase`` (defaults), a d = 10 SGD sweep and ``fastgd net phase`` in fresh
    processes, empty and then warm kernel cache."""
    if benchmark.disabled:
        pytest.skip("first-sweep latency is measured only with --benchmark-enable")
    benchmark.group = "kernels: first-sweep latency"
    res = benchmark.pedantic(K.first_sweep_latency, args=(tmp_path,), rounds=1, iterations=1)
    benchmark.extra_info.update(res)
    print("\n" + K.extra_lines(M.cpu_ghz(), None, res)[1])
