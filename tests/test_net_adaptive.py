"""Two-layer networks with Adam, RMSProp, AdaGrad and learning-rate schedules
(fastgd.net, issue 24): the kernels against plain NumPy (tests/naive_net.py), sweep
cells against single runs bit for bit, the preconditioned sharpness against a dense
eigensolver, bad input, and on real data (scikit-learn's diabetes set) the adaptive edge
of stability beside GD's and the learning-rate warm-up."""

from __future__ import annotations

import os

import numpy as np
import pytest

import fastgd as fg
import fastgd.net as fn
from fastgd import Status

try:  # tests/ as a package or as a rootdir on sys.path
    from .naive_net import ref_adaptive, ref_grad
except ImportError:
    from naive_net import ref_adaptive, ref_grad

JITLESS = os.environ.get("NUMBA_DISABLE_JIT") == "1"
OPTS = ("adam", "rmsprop", "adagrad", "gd")
SCHEDS = [dict(), dict(warmup=7, lr_init=0.001), dict(schedule="cosine", warmup=3),
          dict(schedule="step", decay_steps=5, decay_factor=0.5)]


@pytest.fixture
def small():
    r = np.random.default_rng(7)
    X = r.standard_normal((12, 3))
    return X, np.sin(X[:, 0]) + 0.3 * X[:, 1]


def _diabetes(n=None):
    datasets = pytest.importorskip("sklearn.datasets")
    X, y = datasets.load_diabetes(return_X_y=True)
    X, y = X[:n], y[:n]
    return (X - X.mean(0)) / X.std(0), (y - y.mean()) / y.std()


def _ref_kw(kw, updates):
    """The schedule keywords of ref_adaptive for the API's ``kw`` (cosine: its defaults)."""
    k = {key: v for key, v in kw.items() if key != "freeze_preconditioner"}
    if k.get("schedule") == "cosine":
        k.update(decay_steps=updates - k.get("warmup", 0), decay_factor=0.0)
    return k, kw.get("freeze_preconditioner")


# ------------------------------------------------------------ kernels against NumPy
@pytest.mark.parametrize("opt", OPTS)
@pytest.mark.parametrize("kw", SCHEDS + [dict(freeze_preconditioner=6)])
@pytest.mark.parametrize("act, bias", [("tanh", False), ("relu", True)])
def test_gd_and_sgd_equal_numpy(small, opt, kw, act, bias):
    if opt == "gd" and "freeze_preconditioner" in kw:
        pytest.skip("GD has no preconditioner")
    X, y = small
    t0 = fn.net_init(5, 3, seed=1, bias=bias)
    common = dict(theta0=t0, optimizer=opt, tol=0, activation=act, bias=bias)
    r = fn.net_gd(X, y, 0.05, 20, **common, **kw)
    k, fr = _ref_kw(kw, 20)
    ref, _ = ref_adaptive(t0, X, y, 0.05, 20, bias=bias, act=act, param="ntk",
                          optimizer=opt, freeze=fr, **k)
    np.testing.assert_allclose(r.theta, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())
    assert r.optimizer == opt and r.status == Status.BOUNDED
    # minibatch SGD, cyclic order: 3 batches (5, 5, 2) per epoch, updates counted
    s = fn.net_sgd(X, y, 0.05, 3, batch_size=5, order="cyclic", **common, **kw)
    k, fr = _ref_kw(kw, 9)
    ref, _ = ref_adaptive(t0, X, y, 0.05, 3, bias=bias, act=act, param="ntk",
                          optimizer=opt, freeze=fr, batch=5, **k)
    np.testing.assert_allclose(s.theta, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())


def test_plain_gd_is_unchanged_by_the_new_options(small):
    X, y = small
    a = fn.net_gd(X, y, 0.3, 50, width=4, momentum=0.5, tol=0)
    b = fn.net_gd(X, y, 0.3, 50, width=4, momentum=0.5, tol=0, optimizer="gd", warmup=0,
                  schedule="constant")
    assert np.array_equal(a.theta, b.theta) and np.array_equal(a.losses, b.losses)
    assert np.isnan(a.preconditioned_sharpness) and a.preconditioner is None
    c = fn.net_gd(X, y, 0.3, 50, width=4, momentum=0.5, tol=0, warmup=10)
    assert not np.array_equal(a.theta, c.theta)


# -------------------------------------------------------------- cells equal runs
@pytest.mark.skipif(JITLESS, reason="a sweep of many cells")
@pytest.mark.parametrize("opt", ["adam", "rmsprop", "adagrad"])
@pytest.mark.parametrize("method", ["gd", "sgd"])
def test_sweep_cells_equal_single_runs(small, opt, method):
    X, y = small
    lrs = np.geomspace(0.003, 3.0, 11)
    kw = dict(activation="tanh", tol=1e-3, optimizer=opt, warmup=4, betas=(0.8, 0.95),
              sharpness_every=5)
    res = fn.net_sweep(X, y, lrs, 30, width=[4, 6], seeds=2, method=method, batch_size=4,
                       **kw)
    assert res.optimizer == opt and res.preconditioned_sharpness.shape == res.status.shape
    run = fn.net_gd if method == "gd" else fn.net_sgd
    for w, m in enumerate((4, 6)):
        for j in (0, 5, 10):
            extra = {} if method == "gd" else dict(batch_size=4)
            r = run(X, y, lrs[j], 30, width=m, seed=1, **extra, **kw)
            cell = (w, 0, 1, j)
            assert int(r.status) == res.status[cell] and r.loss == res.loss[cell]
            assert np.array_equal(r.preconditioned_sharpness, res.preconditioned_sharpness[cell],
                                  equal_nan=True)
            n = r.preconditioned_sharpnesses.size
            assert np.array_equal(r.preconditioned_sharpnesses,
                                  res.preconditioned_sharpness_curve[cell][:n], equal_nan=True)


# ------------------------------------------------------ the preconditioned sharpness
@pytest.mark.parametrize("opt", ["adam", "rmsprop", "adagrad"])
def test_preconditioned_sharpness_is_the_dense_eigenvalue(small, opt):
    X, y = small
    t0 = fn.net_init(4, 3, seed=3)
    b1, b2, eps, T = 0.9, 0.99, 1e-8, 25
    r = fn.net_gd(X, y, 0.02, T, theta0=t0, optimizer=opt, betas=(b1, b2), tol=0,
                  sharpness_every=5)
    # P of the update that leaves theta_T, from the reference's moments
    th, v = ref_adaptive(t0, X, y, 0.02, T, bias=False, act="tanh", param="ntk",
                         optimizer=opt, betas=(b1, b2))
    g = ref_grad(th, X, y, range(12), False, "tanh", "ntk")
    if opt == "adagrad":
        p = np.sqrt(v + g * g) + eps
    elif opt == "rmsprop":
        p = np.sqrt(b2 * v + (1 - b2) * g * g) + eps
    else:
        vn = b2 * v + (1 - b2) * g * g
        p = (1 - b1 ** (T + 1)) * (np.sqrt(vn / (1 - b2 ** (T + 1))) + eps)
    np.testing.assert_allclose(r.preconditioner, p, rtol=1e-9)
    H = fn.net_hessian(r.theta, X, y)
    d = 1 / np.sqrt(p)
    dense = np.linalg.eigvalsh(d[:, None] * H * d[None, :])[-1]
    assert r.preconditioned_sharpness == pytest.approx(dense, rel=1e-9)
    assert r.preconditioned_sharpnesses[-1] == r.preconditioned_sharpness
    assert r.sharpness == pytest.approx(np.linalg.eigvalsh(H)[-1], rel=1e-9)
    assert r.threshold == pytest.approx(38 / 0.02 if opt == "adam" else 2 / 0.02)


def test_frozen_preconditioner_holds_the_moments(small):
    X, y = small
    t0 = fn.net_init(4, 3, seed=3)
    r = fn.net_gd(X, y, 0.01, 40, theta0=t0, optimizer="rmsprop", tol=0,
                  freeze_preconditioner=10, sharpness_every=10)
    _, v10 = ref_adaptive(t0, X, y, 0.01, 10, bias=False, act="tanh", param="ntk",
                          optimizer="rmsprop")
    np.testing.assert_allclose(r.preconditioner, np.sqrt(v10) + 1e-8, rtol=1e-10)
    assert r.optim["freeze_preconditioner"] == 10


@pytest.mark.parametrize("kw, name", [
    (dict(optimizer="sgd"), "optimizer"),
    (dict(optimizer="adam", betas=(0.9,)), "betas"),
    (dict(optimizer="adam", betas=(0.9, 1.0)), "betas"),
    (dict(optimizer="adam", eps=-1.0), "eps"),
    (dict(optimizer="adam", momentum=0.5), "momentum"),
    (dict(freeze_preconditioner=5), "freeze_preconditioner"),
    (dict(optimizer="adam", freeze_preconditioner=0), "freeze_preconditioner"),
    (dict(warmup=-1), "warmup"),
    (dict(schedule="linear"), "schedule"),
    (dict(schedule="step"), "decay_steps"),
    (dict(schedule="cosine", decay_factor=2.0), "decay_factor"),
])
@pytest.mark.parametrize("func", ["net_gd", "net_sgd", "net_sweep"])
def test_bad_optimizer_arguments(kw, name, func):
    X, y = np.ones((5, 2)), np.ones(5)
    with pytest.raises((fg.FastGDValueError, fg.FastGDTypeError)) as info:
        getattr(fn, func)(X, y, 0.1, 10, width=2, **kw)
    assert func in str(info.value) and name in str(info.value)


# ------------------------------------------------------------------- on real data
@pytest.mark.skipif(JITLESS, reason="thousands of steps and Lanczos runs")
def test_adaptive_edge_of_stability_diabetes():
    """Full-batch Adam (beta1 = 0.9, beta2 = 0.98) on the whole diabetes set, tanh width
    16: the preconditioned sharpness rises and then hovers at 38/eta (median over the
    last third within 5 %), while the ordinary sharpness stays far below GD's 2/eta;
    GD on the same kind of network sits at 2/eta instead."""
    X, y = _diabetes()
    lr = 0.05
    for seed in (0, 1, 2):
        r = fn.net_gd(X, y, lr, 2000, width=16, seed=seed, scale=0.5, activation="tanh",
                      param="standard", optimizer="adam", betas=(0.9, 0.98), tol=0.0,
                      sharpness_every=10)
        ps = r.preconditioned_sharpnesses * lr / 38
        last = ps[r.sharpness_steps > 4000 / 3]
        # after Adam's first, sign-like steps (at theta0 P holds only g0^2: far above)
        # it starts well below the threshold, then rises to it
        assert ps[1:4].max() < 0.2 and ps.max() > 1.0
        assert abs(np.median(last) - 1) < 0.05, np.median(last)
        assert np.median(r.sharpnesses[r.sharpness_steps > 4000 / 3]) * lr / 2 < 0.3
        assert r.losses[-1] < 0.5 * r.losses[0]
    Xs, ys = _diabetes(100)
    g = fn.net_gd(Xs, ys, 0.16, 4000, width=16, seed=0, scale=0.5, activation="tanh",
                  param="standard", tol=0.0, sharpness_every=100)
    tail = g.sharpnesses[g.sharpness_steps > 8000 / 3] * 0.16 / 2
    assert abs(np.median(tail) - 1) < 0.05, np.median(tail)


def _largest_trainable(X, y, lrs, warmup, steps=3000):
    """The largest rate of ``lrs`` whose run neither diverged nor ended above half its
    initial loss (relu, NTK parametrisation, width 64)."""
    res = fn.net_sweep(X, y, lrs, steps, width=64, scale=1.0, seeds=[0], activation="relu",
                       param="ntk", tol=0.0, warmup=warmup, sharpness=False)
    ok = (res.status[0, 0, 0] != Status.DIVERGED) & (res.loss[0, 0, 0] < 0.5 * res.loss0[0, 0, 0])
    return lrs[ok].max()


@pytest.mark.skipif(JITLESS, reason="sweeps of thousands of steps")
def test_warmup_raises_the_largest_trainable_rate():
    """Kalra & Barkeshli 2024: with 1,000 warm-up steps GD trains at rates several times
    above the largest one without warm-up (here 4x), 10 warm-up steps do not help."""
    X, y = _diabetes(100)
    lam0 = fn.net_sharpness(fn.net_init(64, X.shape[1], seed=0), X, y, activation="relu")
    lrs = np.geomspace(0.5, 64, 29) / lam0
    base = _largest_trainable(X, y, lrs, 0)
    assert _largest_trainable(X, y, lrs, 10) == base
    assert _largest_trainable(X, y, lrs, 1000) >= 2 * base
