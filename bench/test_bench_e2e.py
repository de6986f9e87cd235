"""The end-to-end table (issue 22, item 6; bench/_e2e_table.py): per-sample SGD through
``fg.sweep()`` at E = 10, 100, 1000 epochs, d = 2, 10, 30, 100: rate, fixed cost (a sweep
with ``epochs=0``), share of the FMA ceiling, ratio against NumPy.

Run:      pytest bench/test_bench_e2e.py --benchmark-enable -s
Table:    python -m bench.table
In the default run (benchmarks disabled) it runs once on a tiny grid (smoke test).
"""

from __future__ import annotations

from . import _e2e_table as E


def test_bench_e2e_table(benchmark):
    grid = E.SMOKE if benchmark.disabled else E.FULL
    benchmark.group = "end to end: per-sample SGD sweeps, E = 10..1000, d = 2..100"
    rows = benchmark.pedantic(E.measure, args=(grid,), rounds=1, iterations=1)
    assert len(rows) == len(grid.dims) * len(grid.epochs)
    for r in rows:
        assert r["updates"] == grid.n_data * grid.n_lr * r["epochs"] * 100
        assert r["fixed_s"] > 0 and r["numpy_seconds"] > 0
    benchmark.extra_info["rows"] = rows
    if not benchmark.disabled:
        print("\n" + E.markdown(rows))
        for line in E.notes(rows, grid):
            print(line)
