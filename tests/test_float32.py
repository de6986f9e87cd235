"""float32 sweeps (issue 7): the same kernels with float32 state.  Documented tolerance:

* divergence flags are identical to float64 away from the boundary (margin 2% in the
  rate for GD, a factor 1.25 for SGD, whose boundary is statistical);
* the observed GD boundary on a fine grid equals float64's within one grid step, and a
  boundary refined by successive grids agrees to 1e-5 relative;
* losses of stable runs agree to float32 precision (relative 1e-3 after 10^4 updates).
"""

from __future__ import annotations

import numpy as np
import pytest

import fastgd as fg
from fastgd import Status

KAPPA = [1.0, 10.0, 100.0]


def _pair(method, **kw):
    a = fg.sweep(method, progress=False, **kw)
    b = fg.sweep(method, progress=False, dtype="float32", **kw)
    for f in ("final_loss", "steps_to_tol", "diverged_at"):
        assert getattr(b, f).dtype == getattr(a, f).dtype
    assert b.meta["spec"]["dtype"] == "float32"
    return a, b


def test_gd_flags_identical_with_margin():
    lrs = np.linspace(0.2, 3.0, 141)  # lambda_max = 1: the boundary is lr = 2
    a, b = _pair("gd", lr=lrs, condition=KAPPA, steps=2000)
    away = np.abs(lrs / 2.0 - 1.0) > 0.02
    assert a.diverged[:, lrs > 2.04].all() and not a.diverged[:, lrs < 1.96].any()
    np.testing.assert_array_equal(b.status[:, away], a.status[:, away])
    np.testing.assert_array_equal(b.diverged_at[:, away], a.diverged_at[:, away])
    conv = a.converged & b.converged
    assert conv.sum() > 100
    assert np.all(np.abs(b.steps_to_tol[conv] - a.steps_to_tol[conv]) <= 2)


def test_gd_boundary_within_one_grid_step_and_refined_to_1e5():
    lrs = np.linspace(1.9, 2.1, 201)
    a, b = _pair("gd", lr=lrs, condition=KAPPA, steps=2000)
    ia = np.searchsorted(lrs, a.observed_boundary())
    ib = np.searchsorted(lrs, b.observed_boundary())
    assert np.all(np.abs(ia - ib) <= 1)
    # refine the budget boundary by successive 64-rate grids, in both precisions
    edges = []
    for dt in ("float64", "float32"):
        lo, hi = 1.9, 2.1
        for _ in range(3):
            grid = np.linspace(lo, hi, 64)
            r = fg.sweep("gd", lr=grid, condition=[10.0], steps=2000, dtype=dt, progress=False)
            k = np.flatnonzero(r.diverged[0, :, 0])[0]
            lo, hi = grid[k - 1], grid[k]
        edges.append(0.5 * (lo + hi))
    assert abs(edges[1] - edges[0]) / edges[0] < 1e-5


def test_sgd_flags_and_losses():
    lrs = np.geomspace(0.01, 4.0, 48)
    a, b = _pair("sgd", lr=lrs, condition=KAPPA, epochs=100, seeds=2, order="shuffle")
    frac = a.diverged_fraction()
    for i in range(len(KAPPA)):
        crit = a.critical_lr()[i]
        away = (lrs < crit / 1.25) | (lrs > crit * 1.25)
        np.testing.assert_array_equal(b.status[i, away], a.status[i, away])
        assert frac[i, lrs > crit * 1.25].min() == 1.0
    stable = (a.status == Status.BOUNDED) & (lrs[None, :, None] < 0.5 * a.critical_lr()[:, None,
                                                                                       None])
    assert stable.sum() > 50
    np.testing.assert_allclose(b.final_loss[stable], a.final_loss[stable], rtol=1e-3)


def test_dtype_is_validated(no_kernels):
    with pytest.raises(fg.FastGDValueError, match="sweep: 'dtype' must be one of"):
        fg.sweep("gd", lr=[1.0], condition=[1.0], dtype="float16")
