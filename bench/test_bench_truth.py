"""What the truth checks cost (the truth issue): per-sample SGD sweeps at d = 2, 10, 30.

Two costs, each measured against the sweep it belongs to, in the same run:

* the per-epoch status check: the excess |R (w - w*)|^2 / 2 of every lane (O(d^2) per
  lane, the kernels' ``_excess``; before, e^T H e at the same O(d^2)), timed alone on the
  sweep's lane block and reported per epoch as a share of one epoch of the sweep;
* ``finalize_block``: the loss and excess of every cell's returned weights from
  residuals (O(P d) per cell, once), as a share of the whole sweep.

    python -m pytest bench/test_bench_truth.py --benchmark-enable -s

In the normal test run these run once on small grids (smoke test).
"""

from __future__ import annotations

import time

import numpy as np
import pytest

import fastgd as fg
from fastgd.linear import checks as CK
from fastgd.linear import problem as PB
from fastgd.linear.kernels import _excess

P = 100
LANES = 256


def _data(d, n_data):
    return [tuple(fg.gaussian_data(P, np.geomspace(1.0, 1.0 / k, d), seed=i))
            for i, k in enumerate(np.geomspace(1, 1e3, n_data))]


def _best(f, repeats):
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t0)
    return best


@pytest.mark.parametrize("d", [2, 10, 30])
def test_bench_truth_checks(benchmark, d):
    enabled = not benchmark.disabled
    n_data, epochs = (8, 50) if enabled else (2, 3)
    data = _data(d, n_data)
    lrs = np.geomspace(1e-4, 0.05, LANES) / d
    kw = dict(lr=lrs, data=data, epochs=epochs, order="cyclic", seeds=1, tol=0.0,
              progress=False, threads=1)
    fg.sweep("sgd", **kw)  # compile / load the cache outside the timing
    res = benchmark(lambda: fg.sweep("sgd", **kw))
    assert res.shape == (n_data, LANES, 1)
    repeats = 5 if enabled else 1
    t_sweep = _best(lambda: fg.sweep("sgd", **kw), repeats)
    # the checks of the returned weights run per block of results (finalize_block):
    # their time summed over one sweep, best of `repeats` sweeps
    spent = []
    real = CK.finalize_block

    def timed(*a):
        t0 = time.perf_counter()
        real(*a)
        spent[-1] += time.perf_counter() - t0

    CK.finalize_block = timed
    try:
        for _ in range(repeats):
            spent.append(0.0)
            fg.sweep("sgd", **kw)
    finally:
        CK.finalize_block = real
    t_final = min(spent)
    probs = [PB.prepare("bench", X, y) for X, y in data]
    # the per-epoch check alone, on one lane block of this sweep's shape
    R, ws = probs[0].R[None], probs[0].wstar[None]
    w = np.random.default_rng(0).standard_normal((d, LANES))
    e = np.empty((d, LANES))
    g = np.empty((d, LANES))
    ex = np.empty(LANES)
    _excess(R, 0, ws, w, e, g, ex, 0, LANES)
    reps = 2000 if enabled else 2
    t0 = time.perf_counter()
    for _ in range(reps):
        _excess(R, 0, ws, w, e, g, ex, 0, LANES)
    t_check = (time.perf_counter() - t0) / reps  # one epoch's check of one chunk
    t_epoch = t_sweep / (epochs * n_data)  # one epoch of one chunk (all lanes)
    info = {"d": d, "check_share_of_epoch": t_check / t_epoch,
            "finalize_share_of_sweep": t_final / t_sweep,
            "sweep_s": t_sweep, "finalize_s": t_final, "check_s_per_chunk_epoch": t_check}
    benchmark.group = "truth: cost of the checks"
    benchmark.extra_info.update(info)
    if enabled:
        print(f"\nd = {d}: per-epoch check {t_check * 1e6:.2f} us per {LANES}-lane chunk = "
              f"{100 * t_check / t_epoch:.1f} % of an epoch; finalize {t_final * 1e3:.2f} ms"
              f" = {100 * t_final / t_sweep:.2f} % of the sweep ({t_sweep * 1e3:.1f} ms, "
              f"{n_data} x {LANES} cells, P = {P}, {epochs} epochs)")
