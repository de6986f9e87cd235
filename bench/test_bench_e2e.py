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


def test_bench_default_order_fixed_cost(benchmark):
    """The fixed cost (epochs = 0) of a sweep in the default sample order, shuffle, which
    adds each dataset's mean-square limit (bench.table runs cyclic order, which has none):
    a first sweep on new datasets, then repeated ones (the limits kept with the cached
    problems), beside the same in cyclic order.  32 datasets x 256 rates at d = 30 (the
    closed form's Lanczos solve; a tiny grid at d = 12 in the default run)."""
    import time

    import numpy as np

    import fastgd as fg

    from . import _kernels_table as K

    n_data, n_lr, d = (2, 8, 12) if benchmark.disabled else (32, 256, 30)
    base = dict(K.sweep_kwargs(d, K.Size(n_data=n_data, n_lr=n_lr)), epochs=0)
    info = {}
    for order in ("cyclic", "shuffle"):
        kw = dict(base, order=order)
        fg.sweep("sgd", **kw)  # warm-up: kernels loaded
        fg.clear_cache()
        t = time.perf_counter()
        res = fg.sweep("sgd", **kw)
        info[f"{order}_first_s"] = time.perf_counter() - t
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            fg.sweep("sgd", **kw)
            best = min(best, time.perf_counter() - t)
        info[f"{order}_repeated_s"] = best
    assert np.all(np.isfinite(res.sgd_ms_limit))  # the shuffle sweep's limits
    benchmark.group = "end to end: fixed cost by sample order"
    benchmark.pedantic(fg.sweep, args=("sgd",), kwargs=dict(base, order="shuffle"),
                       rounds=3, iterations=1)
    benchmark.extra_info.update(info)
    if not benchmark.disabled:
        print(f"\nfixed cost at d = {d}, {n_data} datasets x {n_lr} rates (epochs = 0): "
              + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in info.items()))
