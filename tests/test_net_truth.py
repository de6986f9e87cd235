"""Statuses of network runs are true (hypothesis): over initial scales 1e-3 .. 1e200,
widths, activations, parametrisations, bias and theta0 magnitudes, for GD and SGD, a
run is CONVERGED only where the plain NumPy reference (tests/naive_net.py) ends with a
finite loss at or below the tolerance, and DIVERGED exactly where the reference's loss
is not finite or passed the blow-up threshold; a non-finite loss is never CONVERGED, at
any step including step 0.  Tiny sizes, few examples (the derandomised profile of
tests/conftest.py)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastgd.net as fn
from naive_net import ref_loss, ref_run

X = np.linspace(-1.0, 1.0, 6)[:, None] * np.array([[1.0, -0.5]])
X[:, 1] += 0.3
Y = np.sin(2 * X[:, 0])
STEPS = 6


def _reference(t0, lr, method, act, param, bias, tol, blowup):
    """(status, last step) from the NumPy reference: the kernel's rule on its losses."""
    with np.errstate(all="ignore"):
        traj = [ref_run(t0, X, Y, lr, k, bias=bias, act=act, param=param,
                        batch=None if method == "gd" else 1, order="cyclic")
                for k in range(STEPS + 1)]
        losses = [ref_loss(t, X, Y, bias, act, param) for t in traj]
    l0 = losses[0]
    thd = blowup * max(l0, 0.5 * float(np.mean(Y * Y)))
    for k, lo in enumerate(losses):
        if not np.isfinite(lo) or not lo <= thd or not np.all(np.isfinite(traj[k])):
            return "DIVERGED", k
        if np.isfinite(l0) and lo <= tol * l0:
            return "CONVERGED", k
    return "BOUNDED", STEPS


@settings(max_examples=40)
@given(scale=st.sampled_from([1e-3, 0.5, 3.0, 1e10, 1e50, 1e100, 1e155, 1e200]),
       width=st.integers(1, 5), act=st.sampled_from(["tanh", "relu", "identity"]),
       param=st.sampled_from(["ntk", "standard"]), bias=st.booleans(),
       method=st.sampled_from(["gd", "sgd"]), lr=st.sampled_from([0.05, 0.5, 5.0]),
       tol=st.sampled_from([0.5, 1e-3]))
def test_status_matches_reference(scale, width, act, param, bias, method, lr, tol):
    t0 = fn.net_init(width, 2, scale=scale, seed=width, bias=bias)  # as the run draws it
    run = fn.net_gd if method == "gd" else fn.net_sgd
    kw = dict(width=width, scale=scale, seed=width, activation=act, param=param, bias=bias, tol=tol, sharpness_iters=4)
    if method == "sgd":
        kw["order"] = "cyclic"
    r = run(X, Y, lr, STEPS, **kw)
    ref, at = _reference(t0, lr, method, act, param, bias, tol, 1e12)
    if r.status.name == "CONVERGED":
        assert np.isfinite(r.loss) and np.isfinite(r.loss0) and r.loss <= tol * r.loss0
    if not np.isfinite(r.loss):
        assert r.status.name == "DIVERGED"
    if ref == "DIVERGED" and at == 0:
        assert r.status.name == "DIVERGED" and r.diverged_at == 0
    if r.status.name == "CONVERGED" and method == "gd":
        assert ref == "CONVERGED"


@pytest.mark.parametrize("scale", [1e155, 1e200])
def test_overflow_at_step_zero_is_never_converged(scale):
    for fnc in (fn.net_gd, fn.net_sgd):
        r = fnc(X, Y, 0.5, 20, width=8, scale=scale)
        assert r.status.name == "DIVERGED" and r.diverged_at == 0 and r.steps_to_tol == -1
    for rates in ([0.05, 0.5], np.geomspace(0.01, 1.0, 16)):  # whole vector blocks too
        for method in ("gd", "sgd"):
            res = fn.net_sweep(X, Y, rates, 20, width=[4, 8], scale=scale, method=method)
            assert np.all(res.status == 2) and not np.any(np.isfinite(res.loss))
            assert np.all(res.diverged_at == 0) and np.all(res.steps_to_tol == -1)
