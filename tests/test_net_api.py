"""Two-layer networks, the researcher's options: net_sweep from given parameters
(``theta0``) and on a grid relative to each width's lambda0 (``lr_unit``), recorded
parameters of a run (``record``/``record_every``), the gradient rule of CONVERGED on a
target the network cannot fit (``gtol``) against plain NumPy, and the short reprs."""

from __future__ import annotations

import os

import numpy as np
import pytest

import fastgd as fg
import fastgd.net as fn
from fastgd import Status
from fastgd.engine.grid import max_threads

try:  # tests/ as a package or as a rootdir on sys.path
    from .naive_net import ref_gd_status, ref_loss, ref_run
except ImportError:
    from naive_net import ref_gd_status, ref_loss, ref_run


JITLESS = os.environ.get("NUMBA_DISABLE_JIT") == "1"
slow_without_jit = pytest.mark.skipif(JITLESS, reason="wide networks: slow in plain Python")


def _sphere(P=12, d=3, seed=2):
    r = np.random.default_rng(seed)
    X = r.standard_normal((P, d))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X, np.where(X[:, 0] >= 0, 1.0, -1.0)


def _unfit(P=6, d=2, seed=0):
    """Every input twice, with labels 1 apart: no function fits both (E* >= 1/8)."""
    r = np.random.default_rng(seed)
    X = r.standard_normal((P, d))
    y = np.tanh(X @ np.array([1.0, -0.5])[:d])
    return np.vstack([X, X]), np.concatenate([y - 0.5, y + 0.5])


# ------------------------------------------------------------------ theta0, lr_unit
def test_sweep_from_theta0_equals_single_runs():
    X, y = _sphere()
    t8 = fn.net_init(8, 3, scale=0.7, seed=11)
    t5 = fn.net_init(5, 3, scale=1.3, seed=12)
    lrs = np.geomspace(0.5, 40, 11)
    res = fn.net_sweep(X, y, lrs, 120, theta0=[t8, t5], activation="tanh", tol=1e-3,
                       seeds=[0, 1])
    assert res.width.tolist() == [8, 5] and res.given_theta0 and np.isnan(res.scale[0])
    assert res.status.shape == (2, 1, 2, 11)
    for w, t0 in enumerate((t8, t5)):
        for j in (0, 5, 10):
            r = fn.net_gd(X, y, lrs[j], 120, theta0=t0, activation="tanh", tol=1e-3)
            for sd in (0, 1):  # GD: the seeds only seed an SGD order
                assert int(r.status) == res.status[w, 0, sd, j]
                assert r.loss == res.loss[w, 0, sd, j]
                assert r.sharpness == res.sharpness[w, 0, sd, j]
                assert r.max_loss_ratio == res.max_loss_ratio[w, 0, sd, j]
    # one vector is one width; the same start as drawing it
    drawn = fn.net_sweep(X, y, lrs, 60, width=8, scale=0.7, seeds=[11], sharpness=False)
    given = fn.net_sweep(X, y, lrs, 60, theta0=t8, seeds=[11], sharpness=False)
    assert np.array_equal(drawn.loss, given.loss) and np.array_equal(drawn.status,
                                                                       given.status)
    assert "theta0 given" in repr(given)


@pytest.mark.parametrize("kw, name", [
    (dict(theta0=np.ones(7)), "theta0"),                       # not m (d + 1)
    (dict(theta0=np.array([np.nan] + [1.0] * 7)), "theta0"),   # not finite
    (dict(theta0=[np.ones(8), np.ones(6)]), "theta0"),
    (dict(theta0=np.ones(8), width=3), "width"),
    (dict(theta0=np.ones(8), scale=0.5), "scale"),
    (dict(lr_unit="ntk"), "lr_unit"),
    (dict(gtol=-1.0), "gtol"),
])
def test_sweep_bad_start_arguments(kw, name):
    X, y = np.ones((5, 3)), np.ones(5)
    with pytest.raises((fg.FastGDValueError, fg.FastGDTypeError)) as info:
        fn.net_sweep(X, y, [0.1], 10, **kw)
    assert f"'{name}'" in str(info.value) and "net_sweep" in str(info.value)


@slow_without_jit
def test_lr_unit_lambda0_aligns_widths():
    X, y = _sphere(16, 4, seed=0)
    mult = np.array([0.5, 1.5, 3.0, 8.0])
    res = fn.net_sweep(X, y, mult, 300, width=[16, 64], seeds=2, activation="relu",
                       lr_unit="lambda0", tol=1e-4)
    assert res.lr_unit == "lambda0" and np.array_equal(res.lr, mult)
    assert res.rates.shape == res.status.shape
    np.testing.assert_allclose(res.rates * res.ntk0[..., None], np.broadcast_to(
        mult, res.status.shape), rtol=1e-15)
    np.testing.assert_allclose(res.lr_ntk0, np.broadcast_to(mult, res.status.shape),
                               rtol=1e-15)
    # every width's own lambda0: the lazy column never diverges, 8/lambda0 always does
    assert not np.any(res.status[..., 0] == Status.DIVERGED)
    assert np.all(res.status[..., -1] == Status.DIVERGED)
    # a cell is the single run at its absolute rate, bit for bit
    t0 = fn.net_init(64, 4, seed=1)
    for j in range(4):
        r = fn.net_gd(X, y, res.rates[1, 0, 1, j], 300, theta0=t0, activation="relu",
                      tol=1e-4)
        assert r.loss == res.loss[1, 0, 1, j] and int(r.status) == res.status[1, 0, 1, j]
    # the observed eta_max is absolute, so x lambda0 is a grid value
    mx = res.observed_lr_max() * res.ntk0
    assert np.all(np.isin(np.round(mx, 12), mult))
    # an absolute grid: rates broadcast the grid
    ab = fn.net_sweep(X, y, [0.1, 0.2], 10, width=16, sharpness=False)
    assert ab.lr_unit == "absolute" and np.array_equal(ab.rates[0, 0, 0], [0.1, 0.2])


def test_plot_relative_unit():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    X, y = _sphere(8, 3)
    res = fn.net_sweep(X, y, np.geomspace(0.5, 12, 6), 150, width=[8, 16],
                       lr_unit="lambda0", tol=1e-4)
    ax = fn.plot_net_phase(res, ax=Figure().subplots())
    lines = {a.get_gid(): a for a in ax.get_lines()}
    assert lines["two_over_lambda0"].get_xdata()[0] == 2.0
    assert lines["four_over_lambda0"].get_xdata()[0] == 4.0
    assert "each width's own" in ax.get_xlabel()
    # the rows share their x edges: one mesh per width with the same coordinates
    meshes = [c for c in ax.collections if hasattr(c, "get_coordinates")]
    xs = [m.get_coordinates()[0, :, 0] for m in meshes]
    assert len(xs) == 2 and np.array_equal(xs[0], xs[1])
    # absolute rates: no 4/lambda0 mark
    ab = fn.net_sweep(X, y, np.geomspace(0.5, 60, 6), 100, width=[8, 16], tol=1e-4)
    ax = fn.plot_net_phase(ab, ax=Figure().subplots())
    assert "four_over_lambda0" not in {a.get_gid() for a in ax.get_lines()}


# ------------------------------------------------------------------ recorded parameters
@pytest.mark.parametrize("method", ["gd", "sgd"])
def test_record_trajectory_against_reference(method):
    X, y = _sphere(10, 3, seed=4)
    t0 = fn.net_init(5, 3, seed=3) * 0.7
    kw = dict(theta0=t0, activation="tanh", tol=0.0)
    run = fn.net_gd if method == "gd" else fn.net_sgd
    extra = {} if method == "gd" else dict(batch_size=3, order="cyclic")
    full = run(X, y, 0.2, 12, record=True, **kw, **extra)
    assert full.trajectory.shape == (13, t0.size)
    assert full.trajectory_steps.tolist() == list(range(13))
    assert np.array_equal(full.trajectory[0], t0)
    assert np.array_equal(full.trajectory[-1], full.theta)
    for k in (1, 5, 12):
        ref = ref_run(t0, X, y, 0.2, k, bias=False, act="tanh", param="ntk",
                      batch=extra.get("batch_size"))
        np.testing.assert_allclose(full.trajectory[k], ref, rtol=1e-12,
                                   atol=1e-12 * np.abs(ref).max())
    # every 4 steps, alongside a sharpness curve every 6: the recording of both from one
    # kernel recording every gcd = 2 steps, each at its own spacing, same bits
    some = run(X, y, 0.2, 12, record_every=4, sharpness_every=6, **kw, **extra)
    assert some.trajectory_steps.tolist() == [0, 4, 8, 12]
    assert np.array_equal(some.trajectory, full.trajectory[::4])
    assert some.sharpness_steps.tolist() == [0, 6, 12]
    alone = run(X, y, 0.2, 12, sharpness_every=6, **kw, **extra)
    assert np.array_equal(some.sharpnesses, alone.sharpnesses)
    assert alone.trajectory is None and some.loss == alone.loss == full.loss


def test_record_until_the_end_and_refused():
    X, _ = _sphere(10, 3, seed=4)
    y = 0.5 * X[:, 0] - X[:, 1]  # a linear target: the identity network fits it
    r = fn.net_gd(X, y, 0.5, 400, width=4, activation="identity", tol=1e-3, record=True)
    assert r.status == Status.CONVERGED
    assert r.trajectory.shape[0] == r.steps_to_tol + 1 == r.losses.size
    d = fn.net_gd(X, y, 1e4, 50, width=4, activation="relu", record=True)
    assert d.status == Status.DIVERGED and np.all(np.isfinite(d.trajectory))
    assert d.trajectory.shape[0] == d.diverged_at + 1
    for kw, name in [(dict(record="yes"), "record"), (dict(record_every=-1), "record_every")]:
        with pytest.raises((fg.FastGDValueError, fg.FastGDTypeError)) as info:
            fn.net_gd(X, y, 0.1, 10, **kw)
        assert f"'{name}'" in str(info.value)
    # the cost model: a trajectory past the memory limit is refused before any kernel
    with pytest.raises(fg.FastGDValueError) as info:
        fn.net_gd(X, y, 0.1, 10**9, width=2000, record=True)
    assert "net_gd" in str(info.value)


@slow_without_jit
# ---------------------------------------------------- targets the network cannot fit
@pytest.mark.parametrize("act", ["identity", "tanh", "relu"])
def test_gradient_rule_on_unfittable_target(act):
    X, y = _unfit()
    t0 = fn.net_init(4, 2, seed=5, bias=True) * 0.8
    kw = dict(theta0=t0, activation=act, bias=True, param="standard")
    lr, gtol = 0.3, 1e-3
    # the loss rule alone never fires: E stays >= E* > 0, the run uses its whole budget
    plain = fn.net_gd(X, y, lr, 3000, **kw)
    assert plain.status == Status.BOUNDED and plain.losses.size == 3001
    assert plain.loss > 0.1
    r = fn.net_gd(X, y, lr, 3000, gtol=gtol, **kw)
    ok, k, ref, ratio = ref_gd_status(t0, X, y, lr, 3000, bias=True, act=act,
                                      param="standard", tol=fg.DEFAULT_TOL, gtol=gtol)
    assert ok and r.status == Status.CONVERGED and r.converged_by == "gradient"
    assert r.steps_to_tol == k < 3000
    np.testing.assert_allclose(r.theta, ref, rtol=1e-10, atol=1e-10 * np.abs(ref).max())
    assert r.loss == pytest.approx(ref_loss(ref, X, y, True, act, "standard"), rel=1e-10)
    assert r.loss > 0.1 and np.array_equal(r.losses, plain.losses[: k + 1])
    assert "CONVERGED (gradient)" in repr(r)
    # the sweep's cell is the run, bit for bit; full-batch SGD checks the same rule per epoch
    res = fn.net_sweep(X, y, [lr, 2 * lr], 3000, theta0=t0, activation=act, bias=True,
                       param="standard", gtol=gtol)
    assert res.steps_to_tol[0, 0, 0, 0] == k and res.loss[0, 0, 0, 0] == r.loss
    s = fn.net_sgd(X, y, lr, 3000, batch_size=X.shape[0], order="cyclic", gtol=gtol, **kw)
    assert s.steps_to_tol == k and s.loss == r.loss


def test_gradient_rule_leaves_fittable_runs_alone():
    X, _ = _sphere(8, 3)
    y = 0.5 * X[:, 0] - X[:, 1]
    kw = dict(width=6, activation="identity", tol=1e-6)
    a = fn.net_gd(X, y, 0.5, 2000, **kw)
    b = fn.net_gd(X, y, 0.5, 2000, gtol=1e-12, **kw)  # never the first rule to fire here
    assert a.status == b.status == Status.CONVERGED and a.converged_by == "loss"
    assert a.steps_to_tol == b.steps_to_tol and np.array_equal(a.theta, b.theta)


@slow_without_jit
# ------------------------------------------------------------------------- reprs
def test_reprs_are_short():
    X, y = _sphere(8, 3)
    res = fn.net_sweep(X, y, np.geomspace(0.1, 100, 40), 60, width=[4, 8, 16], seeds=3,
                       scale=[0.5, 1.0], sharpness_every=20)
    text = repr(res)
    assert len(text.splitlines()) <= 15
    n = {s: int(np.count_nonzero(res.status == s)) for s in (0, 1, 2)}
    for code, name in ((0, "BOUNDED"), (1, "CONVERGED"), (2, "DIVERGED")):
        if n[code]:
            assert f"{n[code]} {name}" in text
    assert "3 width x 2 scale x 3 seed x 40 lr" in text and "eta_max" in text
    r = fn.net_gd(X, y, 0.3, 500, width=5, sharpness_every=50, record=True, tol=0)
    rt = repr(r)
    assert len(rt.splitlines()) <= 15 and len(rt) < 1200
    assert "trajectory: (501, 20)" in rt and "BOUNDED" in rt
    assert str(r) == rt


@slow_without_jit
# ------------------------------------------------------------- curvature over lanes
def test_lanczos_over_lanes_warm_started():
    """The sweep's curvature (Lanczos over lanes, warm-started from theta0's top Ritz
    vector, stopped on its residual) equals the dense Hessian's top eigenvalue, and each
    cell and each point of a curve equals its single run bit for bit, for any threads."""
    X, y = _sphere(12, 3, seed=5)
    lrs = np.geomspace(0.5, 30, 9)
    kw = dict(width=40, activation="tanh", tol=0.0, sharpness_every=10)  # N = 160 > 40
    res = fn.net_sweep(X, y, lrs, 30, threads=1, **kw)
    two = fn.net_sweep(X, y, lrs, 30, threads=min(2, max_threads()), **kw)
    assert np.array_equal(res.sharpness, two.sharpness)
    assert np.array_equal(res.sharpness_curve, two.sharpness_curve)
    t0 = fn.net_init(40, 3, seed=0)
    top0 = np.linalg.eigvalsh(fn.net_hessian(t0, X, y))[-1]
    assert res.lambda0[0, 0, 0] == pytest.approx(top0, rel=1e-9)
    for j in (0, 4, 8):
        r = fn.net_gd(X, y, lrs[j], 30, theta0=t0, activation="tanh", tol=0.0,
                      sharpness_every=10)
        assert r.sharpness == res.sharpness[0, 0, 0, j] and r.lambda0 == res.lambda0[0, 0, 0]
        # (a run's curve ends where it did; the sweep's repeats its last iterate after)
        assert np.array_equal(r.sharpnesses,
                              res.sharpness_curve[0, 0, 0, j, : r.sharpnesses.size])
        if r.status != Status.DIVERGED:
            top = np.linalg.eigvalsh(fn.net_hessian(r.theta, X, y))[-1]
            assert r.sharpness == pytest.approx(top, rel=1e-9)
