"""Two-layer networks (fastgd.net): exact curvature, kernels against plain NumPy, the
1-1-1 chain as a special case, catapults of wide networks, the edge of stability on real
data, statuses, determinism, figures and the command."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastgd as fg
import fastgd.chain as ch
import fastgd.net as fn
import fastgd.net.launch as net_launch
from fastgd import Status
from fastgd.engine import grid as G
from fastgd.kernels.simd import NET_SAMPLES

try:  # tests/ as a package or as a rootdir on sys.path
    from .naive_net import amplification, ref_grad, ref_hessian, ref_loss, ref_run
except ImportError:
    from naive_net import amplification, ref_grad, ref_hessian, ref_loss, ref_run

#: two threads where the machine has them (taskset -c 0 leaves one: 1 vs 1 then)
THREADS = min(2, G.max_threads())

JITLESS = os.environ.get("NUMBA_DISABLE_JIT") == "1"
ACTS = ("identity", "tanh", "relu")


@pytest.fixture
def small():
    r = np.random.default_rng(7)
    X = r.standard_normal((12, 3))
    y = np.sin(X[:, 0]) + 0.3 * X[:, 1]
    return X, y


def _theta(m, d, bias, seed=1):
    r = np.random.default_rng(seed)
    return r.standard_normal(m * (d + 1 + int(bias))) * 0.8


# ------------------------------------------------------------------------ curvature
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("param", ["ntk", "standard"])
def test_hvp_exact(small, act, bias, param):
    X, y = small
    t = _theta(5, 3, bias)
    v = np.random.default_rng(3).standard_normal(t.size)
    kw = dict(activation=act, bias=bias, param=param)
    hv = fn.net_hvp(t, v, X, y, **kw)
    hv_np = fn.net_hvp(t, v, X, y, engine="numpy", **kw)
    # the analytic gradient agrees with the independent reference
    g = fn.net_grad(t, X, y, **kw)
    np.testing.assert_allclose(g, ref_grad(t, X, y, range(12), bias, act, param),
                               rtol=1e-12, atol=1e-14)
    assert fn.net_loss(t, X, y, **kw) == pytest.approx(ref_loss(t, X, y, bias, act, param),
                                                       rel=1e-12)
    e = 1e-5
    fd = (fn.net_grad(t + e * v, X, y, **kw) - fn.net_grad(t - e * v, X, y, **kw)) / (2 * e)
    scale = np.abs(hv).max()
    assert np.abs(hv - fd).max() <= 1e-6 * scale
    assert np.abs(hv - hv_np).max() <= 1e-13 * scale


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("bias", [False, True])
def test_hessian_dense(small, act, bias):
    X, y = small
    t = _theta(3, 3, bias, seed=2)
    H = fn.net_hessian(t, X, y, activation=act, bias=bias)
    Href = ref_hessian(t, X, y, bias, act, "ntk")
    assert np.abs(H - Href).max() <= 1e-6 * np.abs(Href).max()
    assert np.array_equal(H, H.T)
    # Lanczos sharpness: exact for N <= iters, and close with fewer iterations
    top = np.linalg.eigvalsh(H)[-1]
    assert fn.net_sharpness(t, X, y, activation=act, bias=bias) == pytest.approx(top, rel=1e-10)


def test_sharpness_lanczos_large(small):
    X, y = small
    t = fn.net_init(40, 3, seed=4)  # N = 160 > 40 Lanczos steps
    H = fn.net_hessian(t, X, y)
    top = np.linalg.eigvalsh(H)[-1]
    assert fn.net_sharpness(t, X, y) == pytest.approx(top, rel=1e-6)
    assert fn.net_sharpness(t, X, y, iters=5) <= top * (1 + 1e-12)


@pytest.mark.parametrize("bias", [False, True])
def test_ntk_is_jacobian_gram(small, bias):
    X, y = small
    t = _theta(4, 3, bias)
    e = 1e-6
    J = np.empty((12, t.size))
    for k in range(t.size):
        d = np.zeros(t.size)
        d[k] = e
        fp = np.array([np.sqrt(2 * fn.net_loss(t + d, X[p:p + 1], [0.0], bias=bias))
                       * np.sign(1) for p in range(12)])
        fm = np.array([np.sqrt(2 * fn.net_loss(t - d, X[p:p + 1], [0.0], bias=bias))
                       for p in range(12)])
        J[:, k] = (fp - fm) / (2 * e)
    # |f| from the loss with y = 0; J J^T is sign-invariant row by row
    lam = np.linalg.eigvalsh(J @ J.T / 12)[-1]
    assert fn.net_ntk(t, X, y, bias=bias) == pytest.approx(lam, rel=1e-6)


def test_online_sharpness_near_minimum(small):
    X, y = small
    r = fn.net_gd(X, y, 0.2, 3000, width=8, activation="tanh", tol=0.0)
    S = r.sharpness
    est = fn.online_sharpness(r.theta, X, y, presentations=6000, leak=0.01, window=2000)
    assert est.estimate == pytest.approx(S, rel=0.15)
    assert est.history.shape == (6000,)


# ----------------------------------------------------------------- kernels vs NumPy
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("beta", [0.0, 0.8])
def test_gd_equals_reference(small, act, bias, beta):
    X, y = small
    t0 = _theta(6, 3, bias, seed=5) * 0.5
    r = fn.net_gd(X, y, 0.1, 25, theta0=t0, activation=act, bias=bias, momentum=beta, tol=0)
    ref = ref_run(t0, X, y, 0.1, 25, bias=bias, act=act, param="ntk", beta=beta)
    assert r.status == Status.BOUNDED
    np.testing.assert_allclose(r.theta, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())
    assert r.losses.shape == (26,)
    assert r.loss == pytest.approx(ref_loss(ref, X, y, bias, act, "ntk"), rel=1e-12)


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("order, batch, beta", [("cyclic", 1, 0.0), ("shuffle", 5, 0.5),
                                                ("replacement", 4, 0.0)])
def test_sgd_equals_reference(small, act, bias, order, batch, beta):
    X, y = small
    t0 = _theta(6, 3, bias, seed=6) * 0.5
    r = fn.net_sgd(X, y, 0.05, 4, theta0=t0, activation=act, bias=bias, momentum=beta,
                   batch_size=batch, order=order, seed=3, tol=0, param="standard")
    key = G.seed_key(3)
    ref = ref_run(t0, X, y, 0.05, 4, bias=bias, act=act, param="standard", beta=beta,
                  batch=batch, order=order, key=key)
    np.testing.assert_allclose(r.theta, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())
    assert r.unit == "epoch" and r.losses.shape == (5,)


# ---------------------------------------------------------------- the 1-1-1 chain
def test_identity_width_one_is_the_chain():
    x = np.array([1.0, 2.0, -0.5])
    y = 1.5 * x
    X = x[:, None]
    inits = np.array([[0.5, 0.5], [1.0, 0.3], [2.0, 0.1], [-0.4, 0.9]])
    lrs = np.array([0.02, 0.1, 0.25, 0.4, 0.6, 0.9])
    res = ch.chain_sweep(inits, lrs, 400, x, y, tol=1e-10)
    for i, w0 in enumerate(inits):
        for j, lr in enumerate(lrs):
            r = fn.net_gd(X, y, lr, 400, theta0=w0, activation="identity",
                          param="standard", tol=1e-10)
            assert int(r.status) == int(res.status[i, j]), (w0, lr)
            assert r.steps_to_tol == res.steps_to_tol[i, j]
            assert r.diverged_at == res.diverged_at[i, j]
            if r.status == Status.CONVERGED:  # (bounded orbits here are chaotic)
                np.testing.assert_allclose(r.theta, res.w[i, j], rtol=1e-9, atol=1e-12)
                assert r.sharpness == pytest.approx(res.sharpness[i, j], rel=1e-9)
    # SGD, per sample, shuffled: the same counter-based order
    for w0 in inits[:2]:
        rc = ch.chain_sgd(w0, 0.1, 30, x, y, order="shuffle", seed=4, tol=1e-10)
        rn = fn.net_sgd(X, y, 0.1, 30, theta0=w0, activation="identity", param="standard",
                        order="shuffle", seed=4, tol=1e-10)
        assert rn.status == rc.status and rn.steps_to_tol == rc.steps_to_tol
        np.testing.assert_allclose(rn.theta, rc.w, rtol=1e-9)


# ------------------------------------------------------------------ wide networks
def _sphere(P=16, d=4, seed=0):
    r = np.random.default_rng(seed)
    X = r.standard_normal((P, d))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X, np.where(X[:, 0] >= 0, 1.0, -1.0)


@pytest.mark.skipif(JITLESS, reason="wide networks: slow in plain Python")
def test_catapult_wide_network():
    X, y = _sphere()
    m = 512
    t0 = fn.net_init(m, 4, seed=0)
    lam0 = fn.net_ntk(t0, X, y, activation="relu")
    mult = np.array([1.5, 3.0, 6.0])
    res = fn.net_sweep(X, y, mult / lam0, 1500, width=m, activation="relu", tol=1e-6)
    st = res.status[0, 0, 0]
    S0 = res.lambda0[0, 0, 0]
    assert S0 == pytest.approx(lam0, rel=0.05)  # wide: sharpness ~ NTK at the start
    # lazy: below 2/lambda0 the sharpness barely moves, the loss never rises
    assert st[0] == Status.CONVERGED
    assert abs(res.sharpness[0, 0, 0, 0] / S0 - 1) < 0.05
    assert res.max_loss_ratio[0, 0, 0, 0] <= 1.0 + 1e-9
    # catapult: a spike, then convergence to a flatter point, S < 2/lr
    lr = res.lr[1]
    assert st[1] == Status.CONVERGED and res.catapult()[0, 0, 0, 1]
    assert res.max_loss_ratio[0, 0, 0, 1] > 2
    assert res.sharpness[0, 0, 0, 1] < 2 / lr < 2 / lr * 2 and res.sharpness[0, 0, 0, 1] < S0
    # above the observed maximum: divergence, reported cleanly
    assert st[2] == Status.DIVERGED
    assert res.loss[0, 0, 0, 2] == np.inf and res.diverged_at[0, 0, 0, 2] > 0
    assert 3.0 < res.observed_lr_max()[0, 0, 0] * lam0 <= 6.0
    assert not np.any(np.isnan(res.loss)) and not np.any(np.isnan(res.max_loss_ratio))


# ---------------------------------------------------------------- edge of stability
@pytest.mark.skipif(JITLESS, reason="4000 steps x 3 runs: slow in plain Python")
def test_edge_of_stability_diabetes():
    datasets = pytest.importorskip("sklearn.datasets")
    Xa, ya = datasets.load_diabetes(return_X_y=True)
    X, y = Xa[:100], ya[:100]
    X = (X - X.mean(0)) / X.std(0)
    y = (y - y.mean()) / y.std()
    t0 = fn.net_init(16, X.shape[1], scale=0.5, seed=0)
    for lr in (0.12, 0.16, 0.2):
        r = fn.net_gd(X, y, lr, 4000, theta0=t0, activation="tanh", param="standard",
                      tol=0.0, sharpness_every=100)
        S = r.sharpnesses
        assert r.status == Status.BOUNDED and S.shape == (41,)
        assert S[0] < 2 / lr * 0.6  # starts well below the stability limit
        assert S.max() > 1.6 * S[0]  # progressive sharpening
        tail = S[-12:]  # the last 30% of training
        assert np.all(np.abs(tail * lr / 2 - 1) < 0.10), tail * lr / 2
        L = r.losses
        assert L[-1] < L[len(L) // 2] < L[len(L) // 4] < L[0]  # still decreasing overall
        assert L[-1] < 0.01 * L[0]


# ------------------------------------------------------------ statuses and results
@pytest.mark.skipif(JITLESS, reason="a sweep of many cells")
def test_sweep_cell_equals_single_run_and_threads():
    X, y = _sphere(12, 3, seed=2)
    lrs = np.geomspace(0.5, 40, 20)  # two chunks per initialisation
    kw = dict(activation="tanh", tol=1e-2)
    r1 = fn.net_sweep(X, y, lrs, 300, width=[8, 24], scale=[1.0, 0.5], seeds=2, threads=1,
                      **kw)
    r2 = fn.net_sweep(X, y, lrs, 300, width=[8, 24], scale=[1.0, 0.5], seeds=2, threads=THREADS,
                      **kw)
    for name in ("status", "loss", "max_loss_ratio", "sharpness", "steps_to_tol",
                 "diverged_at", "lambda0", "ntk0", "loss0"):
        assert np.array_equal(getattr(r1, name), getattr(r2, name)), name
    assert r1.status.shape == (2, 2, 2, 20)
    assert {0, 1, 2} <= set(np.unique(r1.status).tolist())
    t0 = fn.net_init(24, 3, scale=0.5, seed=1)
    for j in (0, 7, 19):
        r = fn.net_gd(X, y, lrs[j], 300, theta0=t0, **kw)
        assert int(r.status) == r1.status[1, 1, 1, j]
        assert r.loss == r1.loss[1, 1, 1, j] and r.sharpness == r1.sharpness[1, 1, 1, j]
        assert r.max_loss_ratio == r1.max_loss_ratio[1, 1, 1, j]
    assert not np.any(np.isnan(r1.loss)) and np.all(r1.loss[r1.status == 2] == np.inf)
    assert np.all(np.isfinite(r1.loss[r1.status != 2]))


def test_sgd_sweep_deterministic_and_seeded():
    X, y = _sphere(10, 3, seed=3)
    kw = dict(method="sgd", batch_size=3, order="shuffle", sharpness=False, width=6)
    a = fn.net_sweep(X, y, [0.05, 0.2], 5, seeds=[1, 2], threads=1, **kw)
    b = fn.net_sweep(X, y, [0.05, 0.2], 5, seeds=[1, 2], threads=THREADS, **kw)
    assert np.array_equal(a.loss, b.loss)
    assert a.loss[0, 0, 0, 0] != a.loss[0, 0, 1, 0]
    r = fn.net_sgd(X, y, 0.2, 5, width=6, seed=2, batch_size=3, order="shuffle")
    assert r.loss == a.loss[0, 0, 1, 1]


def test_divergence_is_a_result(small):
    X, y = small
    r = fn.net_gd(X, y, 1e4, 50, width=4, activation="relu")
    assert r.status == Status.DIVERGED and r.loss == np.inf and r.diverged_at >= 1
    assert np.all(np.isfinite(r.theta)) and np.isinf(r.losses[-1])
    assert not np.any(np.isnan(r.losses))
    # tanh saturates: a huge W keeps the loss finite, the parameter check still fires
    r = fn.net_gd(X, y, 1e300, 5, width=4, activation="tanh", blowup=np.inf)
    assert r.status == Status.DIVERGED and np.all(np.isfinite(r.theta))


def test_sharpness_curve_and_unpack(small):
    X, y = small
    r = fn.net_gd(X, y, 0.3, 60, width=5, sharpness_every=20, tol=0)
    assert r.sharpness_steps.tolist() == [0, 20, 40, 60]
    assert r.sharpnesses[0] == pytest.approx(r.lambda0, rel=1e-12)
    assert r.sharpnesses[-1] == pytest.approx(r.sharpness, rel=1e-12)
    W, b, a = fn.net_unpack(r.theta, 3)
    assert W.shape == (5, 3) and b is None and a.shape == (5,)


# ---------------------------------------------------------------------- bad arguments
@pytest.mark.parametrize("call, name", [
    (lambda X, y: fn.net_gd(X, y, -1.0, 10), "lr"),
    (lambda X, y: fn.net_gd(X, y, 0.1, 10, activation="sigmoid"), "activation"),
    (lambda X, y: fn.net_gd(X, y, 0.1, 10, param="mup"), "param"),
    (lambda X, y: fn.net_gd(X, y, 0.1, 10, theta0=np.ones(7)), "theta0"),
    (lambda X, y: fn.net_gd(X, y, 0.1, 10, width=3, theta0=np.ones(8)), "theta0"),
    (lambda X, y: fn.net_gd(X, y, 0.1, 10, momentum=1.0), "momentum"),
    (lambda X, y: fn.net_gd(X, y, 0.1, 10, sharpness_every=-1), "sharpness_every"),
    (lambda X, y: fn.net_gd(X, y[:-1], 0.1, 10), "y"),
    (lambda X, y: fn.net_sgd(X, y, 0.1, 2, batch_size=0), "batch_size"),
    (lambda X, y: fn.net_sgd(X, y, 0.1, 2, order="random"), "order"),
    (lambda X, y: fn.net_sweep(X, y, [0.1], 10, width=[4, 0]), "width"),
    (lambda X, y: fn.net_sweep(X, y, [0.1], 10, seeds=0), "seeds"),
    (lambda X, y: fn.net_sweep(X, y, [0.1], 10, scale=[-1.0]), "scale"),
    (lambda X, y: fn.net_hvp(np.ones(8), np.ones(4), X, y), "v"),
    (lambda X, y: fn.net_hvp(np.ones(8), np.ones(8), X, y, engine="jax"), "engine"),
    (lambda X, y: fn.net_loss("abc", X, y), "theta"),
    (lambda X, y: fn.net_sharpness(np.ones(8), X, y, iters=0), "iters"),
    (lambda X, y: fn.online_sharpness(np.ones(8), X, y, leak=1.5), "leak"),
    (lambda X, y: fn.net_init(0, 3), "width"),
])
def test_bad_arguments(call, name):
    X, y = np.ones((5, 3)), np.ones(5)
    with pytest.raises((fg.FastGDValueError, fg.FastGDTypeError)) as info:
        call(X, y)
    assert f"'{name}'" in str(info.value)


# -------------------------------------------------------------- figures, CLI, docs
def test_plots(small):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    X, y = _sphere(8, 3)
    res = fn.net_sweep(X, y, np.geomspace(0.5, 60, 8), 200, width=[8, 16], tol=1e-4)
    ax = Figure().subplots()
    fn.plot_net_phase(res, ax=ax)
    gids = {a.get_gid() for a in ax.get_lines()}
    assert "two_over_lambda0" in gids
    runs = [fn.net_gd(X, y, lr, 40, width=8, sharpness_every=10) for lr in (0.5, 1.0)]
    fig = Figure()
    ax, lax = fig.subplots(1, 2)
    fn.plot_net_eos(runs, ax=ax, loss_ax=lax)
    lines = {a.get_gid(): a for a in ax.get_lines()}
    assert lines["two_over_lr_0"].get_ydata()[0] == pytest.approx(2 / 0.5)
    np.testing.assert_array_equal(lines["sharpness_1"].get_ydata(), runs[1].sharpnesses)
    with pytest.raises(fg.FastGDTypeError):
        fn.plot_net_eos([5])
    with pytest.raises(fg.FastGDValueError):
        fn.plot_net_eos([fn.net_gd(X, y, 0.5, 5, width=4)])


def test_cli_net(tmp_path, capsys):
    from fastgd import cli

    out = tmp_path / "p.png"
    rc = cli.main(["net", "phase", "--width", "8,16", "--lr-ntk", "0.5:8:6", "--steps", "100",
                   "--out", str(out)])
    assert rc == 0 and out.exists()
    spec = tmp_path / "eos.toml"
    spec.write_text('data = "sphere"\nsamples = 12\nlr = [0.5, 1.0]\nwidth = 6\nsteps = 60\n'
                    'every = 20\n')
    out2 = tmp_path / "e.png"
    rc = cli.main(["net", "eos", "--config", str(spec), "--out", str(out2)])
    assert rc == 0 and out2.exists()
    assert "2/η" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text("nonsense = 1\n")
    assert cli.main(["net", "eos", "--config", str(bad)]) == 2
    assert "unknown key" in capsys.readouterr().err



@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("method", ["gd", "sgd", "sgd1"])
@pytest.mark.parametrize("wide", [False, True])
def test_vector_blocks_equal_the_loops(activation, bias, method, wide, monkeypatch):
    """Sweep chunks of 32 lanes (``wide``: 8, as wide networks) run blocks of 8 samples
    (4 on targets with 16 vector registers) x 8 lanes as LLVM vector code
    (``kernels/simd.py``: ``simd.net_block``); a single run (one lane) takes the loops.
    Every cell equals its run bit for bit: final loss, loss ratio, steps (GD full batch,
    P = 19: two blocks (or four) and 3 samples in the loops; SGD with batches of 10 and
    9, which leave 2 and 1 samples to blocks of one; ``sgd1``: per-sample SGD, whose step runs
    inside the vector code).  37 rates: chunks of 32 (or 8) and one of 5 lanes, padded to
    a block of 8 with 3 idle lanes."""
    assert NET_SAMPLES in (4, 8)
    if wide:
        monkeypatch.setattr(net_launch, "_FIT", 0)  # every chunk of LANES_WIDE lanes
    X, y = _sphere(19, 5, seed=3)
    lrs = np.geomspace(0.05, 300.0, 37) / (30.0 if method == "sgd1" else 1.0)
    kw = dict(activation=activation, bias=bias, tol=1e-3, sharpness=False)
    extra = {"gd": {}, "sgd": dict(batch_size=10, order="shuffle"),
             "sgd1": dict(batch_size=1, order="replacement")}[method]
    res = fn.net_sweep(X, y, lrs, 40, width=[6], method=method[:3], **kw, **extra)
    assert len(np.unique(res.loss)) >= 15  # lanes on many paths (relu + bias: units die
    # at large rates, the loss settles at E(0) = 0.5 instead of diverging)
    t0 = fn.net_init(6, 5, seed=0, bias=bias)
    run = fn.net_gd if method == "gd" else fn.net_sgd
    rkw = {k: v for k, v in kw.items() if k != "sharpness"}
    for j in (0, 9, 17, 31, 32, 34, 36):
        r = run(X, y, lrs[j], 40, theta0=t0, **rkw, **extra)
        assert int(r.status) == res.status[0, 0, 0, j], j
        assert r.loss == res.loss[0, 0, 0, j], j
        assert r.max_loss_ratio == res.max_loss_ratio[0, 0, 0, j], j


@pytest.mark.skipif(JITLESS, reason="many sweeps: slow in plain Python")
@settings(max_examples=30, deadline=None)
@given(m=st.integers(1, 9), d=st.integers(1, 9), P=st.integers(8, 27),
       n_lr=st.integers(2, 19), act=st.sampled_from(ACTS), bias=st.booleans(),
       param=st.sampled_from(["ntk", "standard"]), sgd=st.booleans(),
       batch=st.integers(1, 27), order=st.sampled_from(["cyclic", "shuffle", "replacement"]),
       beta=st.sampled_from([0.0, 0.5]), seed=st.integers(0, 2**20))
def test_sweep_cells_against_reference(m, d, P, n_lr, act, bias, param, sgd, batch, order,
                                       beta, seed):
    """Any shape: sweep cells (vector blocks for 8 samples x 8 lanes where they fit, idle
    lanes padding the last block, the loops for the rest) equal the single runs (loops
    only) bit for bit, and those equal the plain NumPy reference where the loss did not
    grow (in a growing run rounding differences grow with it): to 1e-12 relative, times
    the run's amplification A where it amplifies.

    Why A: the kernels' tanh is within 9 ulp of NumPy's (and their sums run in another
    order), so the kernel and the reference part by rounding, and an unstable run
    amplifies that difference even when its loss, checked once per epoch, stays level
    (per-sample SGD on an unstandardised column near blow-up: A ~ 1e6 over 84 steps,
    the two part by ~1e-10 relative).  A is measured on the reference itself: the
    relative change of its end point per relative change of theta0 (a random direction
    of size 1e-9, in the linear range).  A stable run has A ~ 1, so its tolerance stays
    1e-12; a kernel that broke (a wrong sample, term or sign) misses by far more than
    1e-12 A.  Runs with A > 1e8 (tolerance past 1e-4) are not compared: there only the
    statuses and the bit-for-bit sweep/run agreement are checked."""
    r = np.random.default_rng(seed)
    X = r.standard_normal((P, d)) * 10.0 ** r.uniform(-2, 2, d)  # unstandardised columns
    y = np.tanh(X @ r.standard_normal(d) / np.abs(X).max())
    steps = 4
    kw = dict(activation=act, bias=bias, param=param, momentum=beta, tol=0.0)
    t0 = fn.net_init(m, d, seed=0, bias=bias)
    lam = fn.net_sharpness(t0, X, y, activation=act, bias=bias, param=param)
    lrs = np.geomspace(0.01, 5.0, n_lr) / max(lam, 1e-3)  # from lazy to diverging
    extra = dict(batch_size=min(batch, P), order=order) if sgd else {}
    res = fn.net_sweep(X, y, lrs, steps, width=[m], method="sgd" if sgd else "gd",
                       sharpness=False, **kw, **extra)
    run = fn.net_sgd if sgd else fn.net_gd
    key = G.seed_key(0)  # the sweep's first seed, the single runs' default
    compared = 0
    for j in sorted({0, n_lr // 2, n_lr - 1}):
        one = run(X, y, lrs[j], steps, theta0=t0, **kw, **extra)
        cell = res.loss[0, 0, 0, j]
        assert one.loss == cell and int(one.status) == res.status[0, 0, 0, j]
        assert one.max_loss_ratio == res.max_loss_ratio[0, 0, 0, j]
        if one.status != Status.BOUNDED or not one.max_loss_ratio <= 1.5:
            continue  # diverged, or growing: rounding differences grow with the loss

        def reference(theta0, lr=lrs[j]):
            return ref_run(theta0, X, y, lr, steps, bias=bias, act=act, param=param,
                           beta=beta, batch=extra.get("batch_size"), order=order, key=key)

        ref = reference(t0)
        amp = amplification(reference, t0, ref)
        if amp > 1e8:
            continue  # rounding alone could part them by more than 1e-4
        tol = 1e-12 * max(1.0, amp)
        assert one.theta == pytest.approx(ref, rel=tol, abs=tol * np.abs(ref).max()), amp
        assert cell == pytest.approx(ref_loss(ref, X, y, bias, act, param), rel=10 * tol)
        compared += 1
    assert compared  # at least the smallest rate (0.01 / sharpness: lazy, A ~ 1)


def test_tanh_kernel_accuracy_and_vector_code():
    """The kernels' tanh (``kernels/fmath.py``, one rational function as plain
    arithmetic): within 8 ulp of the correctly rounded tanh (30-digit mpmath) and 9 of
    NumPy's on dense grids, about 1 ulp on average, never above 1 in magnitude; the
    edges exact (signed zeros, tiny and subnormal x, +-inf, NaN, saturation at the end of
    the fit and beyond); and its LLVM vector form gives the same bits as the scalar one."""
    import mpmath
    from llvmlite import ir
    from numba import njit, types
    from numba.core import cgutils
    from numba.extending import intrinsic

    from fastgd.kernels import fmath
    from fastgd.kernels import jit as _jit

    opts = {k: v for k, v in _jit.options().items() if k != "cache"}  # the kernels' flags

    r = np.random.default_rng(0)
    x = np.concatenate([r.uniform(-25, 25, 200_000), r.uniform(-1, 1, 200_000),
                        np.geomspace(1e-300, 30, 20_000), -np.geomspace(1e-300, 30, 20_000),
                        np.linspace(18.9, 19.3, 4001), [fmath.XMAX, -fmath.XMAX]])

    @njit(**opts)
    def scalar(x, out):
        for i in range(x.size):
            out[i] = fmath.tanh(x[i])

    @intrinsic
    def tanh4(typingctx, x, out, i):
        sig = types.void(x, out, i)

        def codegen(context, builder, signature, args):
            vt = ir.VectorType(ir.DoubleType(), 4)
            ptrs = [cgutils.get_item_pointer(context, builder, signature.args[k],
                                             context.make_array(signature.args[k])(
                                                 context, builder, args[k]), [args[2]])
                    for k in (0, 1)]
            v = builder.load(builder.bitcast(ptrs[0], vt.as_pointer()), align=8)
            builder.store(fmath.emit_tanh(builder, v), builder.bitcast(ptrs[1],
                                                                        vt.as_pointer()),
                          align=8)
            return context.get_dummy_value()

        return sig, codegen

    @njit(**opts)
    def vector(x, out):
        for i in range(0, x.size - x.size % 4, 4):
            tanh4(x, out, i)

    x = x[: x.size - x.size % 4]
    s = np.empty_like(x)
    v = np.empty_like(x)
    with np.errstate(all="ignore"):  # plain Python (NUMBA_DISABLE_JIT): x * x overflows
        scalar(x, s)
    if not JITLESS:
        vector(x, v)
        assert np.array_equal(s, v)
    ref = np.tanh(x)
    ulp = np.abs(s - ref) / np.spacing(np.abs(ref))
    assert ulp.max() <= 9 and ulp.mean() < 1.5 and np.mean(s == ref) > 0.25
    assert np.abs(s).max() <= 1.0
    sub = x[::40]  # against the correctly rounded value
    with mpmath.workdps(30):
        exact = np.array([float(mpmath.tanh(mpmath.mpf(float(v)))) for v in sub])
    assert (np.abs(s[::40] - exact) / np.spacing(np.abs(exact))).max() <= 8
    edge = np.array([0.0, -0.0, np.inf, -np.inf, 1e-300, -5e-324, fmath.XMAX, 19.1, -22.0,
                     44.0, 1e300, 1e-9])
    e = np.empty_like(edge)
    with np.errstate(all="ignore"):
        scalar(edge, e)
    assert np.array_equal(e, np.tanh(edge)) and np.array_equal(np.signbit(e), np.signbit(edge))
    n = np.empty(1)
    scalar(np.array([np.nan]), n)
    assert np.isnan(n[0])


_TOP_EIG_SCRIPT = """
import sys, numpy as np
from fastgd.net.model import _model
from fastgd.net.lanczos import top_eig
rng = np.random.default_rng(3)
X = rng.normal(size=(23, 3)); y = np.tanh(X @ [0.5, -1.0, 2.0])
out = []
for act, bias in (("tanh", True), ("relu", False)):
    m = 5
    M = _model("t", X, y, act, "ntk", bias)
    N = m * (3 + 1 + bias)
    Th = rng.normal(size=(11, N)) * 0.7
    D = np.abs(rng.normal(size=(11, N))) + 0.1
    lam, vec = top_eig(M, m, Th, 30, start=Th[::-1].copy(), vectors=True, threads=1)
    out += [lam, vec, top_eig(M, m, Th, 30, diag=D, threads=1)]
np.save(sys.argv[1], np.concatenate([np.ravel(a) for a in out]))
"""


def test_lanczos_vector_code_equals_the_loops(tmp_path):
    """net/lanczos_ir.py (LLVM IR: forward, HVP and Gram-Schmidt in vector code) gives the
    same bits as the plain loops it replaces, which run with NUMBA_DISABLE_JIT=1 (both with
    FASTGD_CONTRACT=0, since Python never fuses a multiply-add): tanh with
    bias and relu, P = 23 (not a multiple of the 4-sample block), 11 lanes (a padded block
    of 8), warm starts, Ritz vectors and a diagonal preconditioner."""
    import subprocess
    import sys

    script = tmp_path / "top_eig.py"
    script.write_text(_TOP_EIG_SCRIPT)
    runs = {}
    for jit in ("0", "1"):
        env = dict(os.environ, NUMBA_DISABLE_JIT=jit, FASTGD_CONTRACT="0")  # Python never fuses
        subprocess.run([sys.executable, str(script), str(tmp_path / f"jit{jit}.npy")],
                       env=env, check=True, timeout=600)
        runs[jit] = np.load(tmp_path / f"jit{jit}.npy")
    assert np.isfinite(runs["0"]).all()
    np.testing.assert_array_equal(runs["0"], runs["1"])


@pytest.mark.parametrize("scale", [1e-300, 1e-8, 1.0, 3e7, 1e300])
def test_lanczos_stopping_rule_matches_a_dense_eigh(scale):
    """The stopping rule's Ritz pair (:func:`fastgd.net.lanczos._ritz_top`, QL on the
    tridiagonal) against NumPy's ``eigh`` of the dense tridiagonal: the top |eigenvalue|
    to 1e-13 relative and the residual |beta s_k| to 1e-12 of it, at k = 1 ... 40, with
    split (zero) off-diagonals and equal diagonals; NaN where not finite."""
    from fastgd.net.lanczos import _ritz_top, _tridiagonal

    rng = np.random.default_rng(7)
    for k in range(1, 41):
        al = rng.standard_normal((6, k + 1)) * scale
        be = np.abs(rng.standard_normal((6, k + 1))) * scale
        be[1, rng.integers(0, k)] = 0.0
        al[2] = scale
        al[3, 0], be[4, 0] = np.nan, np.inf
        lanes = np.array([0, 1, 2, 3, 4, 5])
        res, top = np.empty(6), np.empty(6)
        _ritz_top(al, be, lanes, k, res, top)
        good = np.array([True, True, True, False, k < 2, True])
        vals, vecs = np.linalg.eigh(_tridiagonal(al[good], be[good], k))
        ref = np.abs(vals).max(axis=1)
        np.testing.assert_allclose(top[good], ref, rtol=1e-13)
        np.testing.assert_allclose(res[good], be[good, k - 1] * np.abs(vecs[:, -1, -1]),
                                   rtol=0, atol=1e-12 * ref.max())
        assert np.isnan(res[~good]).all() and np.isnan(top[~good]).all()


def test_lanczos_lanes_stop_where_the_rule_is_first_met(monkeypatch):
    """Inside the kernel, each lane stops at the first check (every few steps) where the
    residual of its top Ritz pair meets RTOL, by a dense ``eigh`` of its own tridiagonal:
    not met at any earlier check, met at its stop (or a breakdown, or all k steps);
    lanes of one block stop at different steps, and values equal ``eigvalsh`` of the
    tridiagonal at the lane's stop."""
    import fastgd.net.lanczos as L
    from fastgd.net.model import _model

    rng = np.random.default_rng(11)
    X = rng.normal(size=(40, 4))
    y = np.tanh(X @ [0.5, -1.0, 2.0, 0.3])
    M = _model("t", X, y, "tanh", "standard", True)
    m, k = 24, 40
    Th = rng.normal(size=(11, m * 6)) * rng.uniform(0.2, 2.0, (11, 1))
    got = {}
    finish = L._finish

    def spy(al, be, size, ok, n, Q):
        got.update(al=al[:n].copy(), be=be[:n].copy(), size=size[:n].copy())
        return finish(al, be, size, ok, n, Q)

    monkeypatch.setattr(L, "_finish", spy)
    lam = L.top_eig(M, m, Th, k, threads=2)
    al, be, size = got["al"], got["be"], got["size"]
    assert len(set(size)) > 1 and size.max() < k  # a test of stopping, not of running out

    def rule(lane, c):  # residual and scale of T_c by a dense eigh
        vals, vecs = np.linalg.eigh(L._tridiagonal(al[lane:lane + 1], be[lane:lane + 1], c))
        return be[lane, c - 1] * abs(vecs[0, -1, -1]), np.abs(vals).max()

    for lane, sz in enumerate(size):
        for c in range(L._CHECK_EVERY, sz, L._CHECK_EVERY):
            r, sc = rule(lane, c)
            assert r > L.RTOL * sc * (1 - 1e-6), (lane, c, sz)
        r, sc = rule(lane, sz)
        breakdown = not be[lane, sz - 1] > 1e-10 * max(abs(al[lane, :sz]).max(),
                                                       be[lane, :sz - 1].max(initial=0))
        assert sz % L._CHECK_EVERY == 0 and r <= L.RTOL * sc * (1 + 1e-6) or breakdown
        np.testing.assert_allclose(
            lam[lane], np.linalg.eigvalsh(L._tridiagonal(al[lane:lane + 1], be[lane:lane + 1],
                                                          sz))[0, -1], rtol=1e-14)


def test_tanh_coefficients_come_from_the_fit():
    """``scripts/tanh_minimax.py`` (the Remez fit) gives the coefficients the kernels'
    tanh holds, to the last bit, and a levelled relative error below 1e-16."""
    import importlib.util
    from pathlib import Path

    from fastgd.kernels import fmath

    path = Path(__file__).resolve().parents[1] / "scripts" / "tanh_minimax.py"
    spec = importlib.util.spec_from_file_location("tanh_minimax", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    P, Q, worst = mod.fit()
    assert tuple(float(v) for v in P) == fmath._TP
    assert tuple(float(v) for v in Q) == fmath._TQ
    assert float(mod.XMAX) == fmath.XMAX and worst < 1e-16
