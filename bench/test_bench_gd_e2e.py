"""Batch-GD sweeps end to end against NumPy matrix products and the bound that limits
them (issue 22, item 3; bench/_gd_table.py).

Run:      pytest bench/test_bench_gd_e2e.py --benchmark-enable -s
Table:    python -m bench.table --gd
In the default run (benchmarks disabled) it runs once on a tiny grid (smoke test).
"""

from __future__ import annotations

import numpy as np

from . import _gd_table as T


def test_bench_gd_sweep_table(benchmark):
    grid = T.SMOKE if benchmark.disabled else T.FULL
    benchmark.group = "end to end: batch-GD sweeps, 64 data x 256 lr, P=200, 1000 steps"
    rows = benchmark.pedantic(T.measure, args=(grid,), rounds=1, iterations=1)
    assert [r["d"] for r in rows] == list(grid.dims)
    for r in rows:
        assert r["rate"] > 0 and r["fixed_s"] > 0 and np.isfinite(r["control_rate"])
    benchmark.extra_info["rows"] = rows
    if not benchmark.disabled:
        print("\n" + T.markdown(rows))
        for line in T.notes(rows, grid):
            print(line)


def test_numpy_gd_reference_matches_fastgd():
    """The reference runs the same iteration (weights agree to rounding)."""
    import fastgd as fg

    grid = T.SMOKE
    data = T.make_data(3, grid)
    lr = T.rates(data, 4)
    res = fg.sweep("gd", data=data, lr=lr, steps=7, tol=0.0, weights=True, progress=False)
    X = np.stack([x for x, _ in data])
    y = np.stack([v for _, v in data])
    H = np.matmul(X.transpose(0, 2, 1), X) / grid.P
    b = np.einsum("kpd,kp->kd", X, y) / grid.P
    W = T.numpy_gd(H, b, lr, 7)
    np.testing.assert_allclose(res.weights[:, :, 0], W, rtol=1e-9, atol=1e-12)
