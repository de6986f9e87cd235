"""Scalar chain networks (issue 5): kernels vs the NumPy reference, the analytic Hessian,
the L = 2 facts (balancedness identity, no stable minimum once c eta y >= 1, the exact
balanced-line boundary eta NTK0 = 4 + 2 c eta y), edge of stability, catapults, sweeps."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastgd.chain as chain
from fastgd import FastGDTypeError, FastGDValueError, Status
from fastgd.engine import grid as G

try:  # tests/ as a package or as a rootdir on sys.path
    from . import naive_chain as naive
except ImportError:
    import naive_chain as naive

# ------------------------------------------------------------------ kernel == reference
# (depth, w0, lr, x, y, c): monotone, oscillating, catapult, divergent, several samples
CASES = [
    (2, [0.5, 0.5], 0.1, 1.0, 1.0, 2.0),
    (2, [0.3, 1.7], 0.4, 1.0, 1.0, 1.0),
    (2, [2.002, 0.5], 0.5, 1.0, 1.0, 1.0),          # catapult: spikes ~5e4x, converges
    (2, [2.0, 1.5], 1.0, 1.0, 1.0, 1.0),            # diverges
    (2, [0.4, -0.9], 0.2, [1.0, 2.0, -0.5], [1.5, 1.0, 0.3], 1.0),   # E* > 0
    (3, [0.8, 0.9, 1.1], 0.2, 1.0, 1.0, 1.0),
    (3, [1.2, -0.7, 0.9], 0.1, [0.5, 1.5], [-1.0, -2.0], 2.0),
    (3, [1.5, 1.5, 1.5], 0.3, 1.0, 1.0, 1.0),       # bounded oscillation
    (3, [1.7, 1.7, 1.7], 0.3, 1.0, 1.0, 1.0),       # diverges
    (4, [1.3, 1.2, 1.1, 1.3], 0.3, 1.0, 1.0, 1.0),
    (4, [0.9, 1.1, 0.8, 1.05], 0.1, 1.0, 2.0, 1.0),
    (4, [0.5, 0.6, 0.7, 0.8], 0.15, [1.0, -1.0, 2.0], [0.5, -0.5, 1.0], 1.0),
]


def _check_against(r, ref, rtol=1e-12):
    assert int(r.status) == ref["status"]
    if ref["status"] == naive.CONVERGED:
        assert r.steps_to_tol == ref["at"]
    if ref["status"] == naive.DIVERGED:
        assert r.diverged_at == ref["at"]
    assert r.trajectory.shape == ref["traj"].shape
    scale = np.max(np.abs(ref["traj"]), axis=1, keepdims=True)
    np.testing.assert_allclose(r.trajectory, ref["traj"], rtol=0, atol=rtol * 10 * scale.max())
    np.testing.assert_allclose(r.trajectory, ref["traj"], rtol=rtol, atol=1e-15)
    fin = np.isfinite(ref["losses"])
    assert np.array_equal(np.isfinite(r.losses), fin)
    # the kernel evaluates E* + c/2 Sxx (pi - pi*)^2, the reference the literal mean: they
    # agree to rounding of the literal form, about eps * E(0)
    floor = 1e-13 * max(ref["losses"][0], naive.loss(np.zeros(1), 1.0, 1.0, 1.0))
    np.testing.assert_allclose(r.losses[fin], ref["losses"][fin], rtol=rtol, atol=floor)


@pytest.mark.parametrize("case", CASES, ids=[f"L{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_gd_kernel_equals_reference(case):
    depth, w0, lr, x, y, c = case
    assert len(w0) == depth
    r = chain.chain_gd(w0, lr, 400, x, y, loss_scale=c, record=True)
    ref = naive.chain_gd(w0, lr, 400, x, y, c)
    _check_against(r, ref)
    if ref["status"] != naive.DIVERGED:
        assert r.max_loss_ratio == pytest.approx(ref["maxloss"] / ref["losses"][0], rel=1e-12)
        np.testing.assert_allclose(r.w, ref["w"], rtol=1e-12)


def test_gd_kernel_outcomes_cover_the_regimes():
    st = [chain.chain_gd(c[1], c[2], 400, c[3], c[4], loss_scale=c[5]).status for c in CASES]
    assert set(st) == {Status.CONVERGED, Status.DIVERGED, Status.BOUNDED}
    assert chain.chain_gd(*CASES[2][1:3], 400).max_loss_ratio > 1e4


@pytest.mark.parametrize("order", ["cyclic", "shuffle", "replacement"])
@pytest.mark.parametrize("depth,batch", [(2, 1), (3, 2)])
def test_sgd_kernel_equals_reference(order, depth, batch):
    x = np.array([1.0, -0.5, 2.0, 0.7, 1.3])
    y = 0.8 * x
    if depth == 3:
        y = y + np.array([0.1, -0.2, 0.0, 0.05, 0.1])   # not fittable: BOUNDED fluctuation
    w0 = [0.6, 0.9, 1.1][:depth]
    r = chain.chain_sgd(w0, 0.1, 60, x, y, batch_size=batch, order=order, seed=7, record=True)
    from fastgd.engine.grid import seed_key

    k = seed_key(7)
    ref = naive.chain_sgd(w0, 0.1, 60, x, y, 1.0, batch, order, (int(k[0]), int(k[1])))
    _check_against(r, ref)


def test_sgd_full_batch_cyclic_is_gd():
    x, y = [1.0, 2.0, -1.0], [0.5, 1.0, -0.8]
    a = chain.chain_gd([0.4, 0.7], 0.1, 300, x, y, record=True)
    b = chain.chain_sgd([0.4, 0.7], 0.1, 300, x, y, batch_size=3, record=True)
    assert a.status == b.status and a.steps_to_tol == b.steps_to_tol
    np.testing.assert_allclose(a.trajectory, b.trajectory, rtol=1e-12)


# ---------------------------------------------------------------- loss, gradient, Hessian
def test_loss_grad_vectorised_and_against_reference():
    rng = np.random.default_rng(0)
    x, y, c = np.array([1.0, -2.0, 0.5]), np.array([0.3, 1.0, -0.2]), 1.7
    for depth in (2, 3, 4):
        W = rng.normal(size=(5, 7, depth))
        E = chain.chain_loss(W, x, y, loss_scale=c)
        G = chain.chain_grad(W, x, y, loss_scale=c)
        assert E.shape == (5, 7) and G.shape == (5, 7, depth)
        for idx in [(0, 0), (3, 6), (4, 2)]:
            assert E[idx] == pytest.approx(naive.loss(W[idx], x, y, c), rel=1e-12, abs=1e-14)
            np.testing.assert_allclose(G[idx], naive.grad(W[idx], x, y, c), rtol=1e-12,
                                       atol=1e-14)
    # the landscape grid of the plots: a meshgrid stacked on the last axis
    W1, W2 = np.meshgrid(np.linspace(-2, 2, 9), np.linspace(-2, 2, 11))
    E = chain.chain_loss(np.stack([W1, W2], -1), loss_scale=2.0)
    np.testing.assert_allclose(E, (1 - W1 * W2) ** 2, rtol=1e-14, atol=1e-15)


@settings(max_examples=25, deadline=None)
@given(depth=st.integers(2, 4), seed=st.integers(0, 2**31), c=st.sampled_from([1.0, 2.0, 0.5]))
def test_hessian_equals_finite_differences(depth, seed, c):
    rng = np.random.default_rng(seed)
    w = rng.uniform(-1.5, 1.5, depth)
    P = int(rng.integers(1, 4))
    x, y = rng.uniform(-1.5, 1.5, P), rng.uniform(-1.5, 1.5, P)
    H = chain.chain_hessian(w, x, y, loss_scale=c)
    Hfd = naive.hessian_fd(w, x, y, c)
    np.testing.assert_allclose(H, Hfd, rtol=1e-6, atol=1e-6 * max(1.0, np.abs(H).max()))
    assert np.array_equal(H, H.T)
    lam = np.linalg.eigvalsh(Hfd)[-1]
    assert chain.chain_sharpness(w, x, y, loss_scale=c) == pytest.approx(lam, rel=1e-6,
                                                                       abs=1e-6)


def test_sharpness_at_l2_minima():
    rng = np.random.default_rng(1)
    for c in (1.0, 2.0):
        for yv in (1.0, -0.7, 2.5):
            w1 = rng.uniform(0.2, 3.0, 50) * rng.choice([-1, 1], 50)
            W = np.stack([w1, yv / w1], -1)
            S = chain.chain_sharpness(W, 1.0, yv, loss_scale=c)
            np.testing.assert_allclose(S, c * (W ** 2).sum(-1), rtol=1e-12)
            np.testing.assert_allclose(chain.chain_ntk(W, 1.0, yv, loss_scale=c), S, rtol=1e-12)
            assert np.all(S >= 2 * c * abs(yv) * (1 - 1e-12))
    # several samples: c Sxx (w1^2 + w2^2) on pi = pi*
    x, y = np.array([1.0, 2.0]), np.array([0.5, 3.0])
    m = chain.chain_minima(2, x, y)
    W = m.point(np.array([[0.7], [-1.3], [2.0]]))
    S = chain.chain_sharpness(W, x, y)
    np.testing.assert_allclose(S, np.mean(x * x) * (W ** 2).sum(-1), rtol=1e-12)
    np.testing.assert_allclose(chain.chain_grad(W, x, y), 0, atol=1e-14)


def test_minima_description():
    m = chain.chain_minima(2, loss_scale=2.0)
    assert (m.product, m.loss, m.exact, m.min_sharpness, m.max_stable_lr) == (1.0, 0.0, True,
                                                                              4.0, 0.5)
    assert m.saddle_curvature == 2.0
    np.testing.assert_allclose(np.linalg.eigvalsh(chain.chain_hessian([0, 0], loss_scale=2.0)),
                               [-2.0, 2.0])
    assert m.hyperbola(4.0) == 0.25
    # depth 3: the balanced minimum is the flattest one, sharpness c Sxx L |pi*|^(2 - 2/L)
    m3 = chain.chain_minima(3, 1.0, 2.0)
    rng = np.random.default_rng(2)
    W = m3.point(rng.uniform(0.3, 3.0, (2000, 2)))
    S = chain.chain_sharpness(W, 1.0, 2.0)
    assert S.min() >= m3.min_sharpness * (1 - 1e-12)
    bal = np.full(3, 2.0 ** (1 / 3))
    assert chain.chain_sharpness(bal, 1.0, 2.0) == pytest.approx(m3.min_sharpness, rel=1e-12)
    # inconsistent samples: E* > 0 and GD converges to the 1-D least-squares product
    x, y = np.array([1.0, 2.0, -1.0]), np.array([1.0, 1.0, 0.5])
    m = chain.chain_minima(2, x, y)
    assert not m.exact and m.loss == pytest.approx(naive.loss_star(x, y, 1.0), rel=1e-12)
    r = chain.chain_gd([0.5, 0.5], 0.1, 5000, x, y)
    assert r.converged and r.w.prod() == pytest.approx(m.product, rel=1e-4)
    assert r.loss == pytest.approx(m.loss, rel=1e-9)


# -------------------------------------------------------------------- the three L = 2 facts
@settings(max_examples=30, deadline=None)
@given(w1=st.floats(-3, 3), w2=st.floats(-3, 3), lr=st.floats(0.01, 1.0),
       y=st.floats(-2, 2), c=st.sampled_from([1.0, 2.0]))
def test_balancedness_identity(w1, w2, lr, y, c):
    r = chain.chain_gd([w1, w2], lr, 1, 1.0, y, loss_scale=c, record=True, tol=0.0)
    b1, b2 = r.trajectory[-1]
    e = w1 * w2 - y
    lhs = b1 * b1 - b2 * b2
    rhs = (w1 * w1 - w2 * w2) * (1 - c * c * lr * lr * e * e)
    big = max(1.0, b1 * b1, b2 * b2, w1 * w1, w2 * w2)
    assert lhs == pytest.approx(rhs, rel=1e-10, abs=1e-12 * big)


def _inits_grid(n=30, span=2.5):
    a = np.linspace(-span, span, n)
    A, B = np.meshgrid(a, a)
    return np.stack([A.ravel(), B.ravel()], -1)


@pytest.mark.parametrize("c", [1.0, 2.0])
def test_no_minimum_stable_once_c_eta_y_reaches_one(c):
    y = 1.3
    inits = _inits_grid(8 if naive.JITLESS else 30)
    m = chain.chain_minima(2, 1.0, y, loss_scale=c)
    assert m.max_stable_lr == pytest.approx(1 / (c * y), rel=1e-14)
    b = np.array([1.01, 1.1, 1.5, 2.5])              # c eta y
    res = chain.chain_sweep(inits, b / (c * y), 3000, 1.0, y, loss_scale=c)
    assert not np.any(res.status == Status.CONVERGED)
    assert np.any(res.status == Status.BOUNDED)      # bounded oscillation, not divergence
    below = chain.chain_sweep(inits, 0.9 / (c * y), 3000, 1.0, y, loss_scale=c)
    assert np.mean(below.status == Status.CONVERGED) > 0.25
    # not just the status rule (which asks lr NTK <= 2 at a converged point): without a
    # tolerance, the bounded runs never settle at a minimum; their late losses stay large
    rng = np.random.default_rng(4)
    for bb in (1.01, 1.5):
        for w in rng.uniform(-2.5, 2.5, (4 if naive.JITLESS else 15, 2)):
            r = chain.chain_gd(w, bb / (c * y), 3000, 1.0, y, loss_scale=c, tol=0.0)
            assert r.status != Status.CONVERGED
            if r.status == Status.BOUNDED:
                assert r.losses[-200:].max() > 1e-3 * r.loss0


@pytest.mark.parametrize("c", [1.0, 2.0])
@pytest.mark.parametrize("b", [0.2, 0.6, 0.95, 1.5])
def test_balanced_line_boundary(c, b):
    """w1 = w2 = u: diverges iff eta NTK0 > 4 + 2 c eta y (margin 1e-3 on each side)."""
    y = 0.8
    lr = b / (c * y)
    target = 4 + 2 * b                                 # eta * NTK0 on the boundary
    u = np.sqrt(np.array([1 - 1e-3, 1 + 1e-3]) * target / (2 * lr * c))
    res = chain.chain_sweep(np.stack([u, u], -1), lr, 4000, 1.0, y, loss_scale=c)
    np.testing.assert_allclose(res.lr_ntk0[:, 0], [(1 - 1e-3) * target, (1 + 1e-3) * target],
                               rtol=1e-12)
    below, above = res.status[:, 0]
    assert above == Status.DIVERGED
    assert below == (Status.CONVERGED if b < 1 else Status.BOUNDED)
    np.testing.assert_array_equal(res.w[0, 0, 0], res.w[0, 0, 1])   # GD keeps w1 = w2
    # in units of the initial sharpness lambda0 = c(3u^2 - y) the boundary is 6 + 2 b
    lam0 = chain.chain_sharpness(np.array([1.0, 1.0]) * np.sqrt(target / (2 * lr * c)), 1.0, y,
                                 loss_scale=c)
    assert lr * lam0 == pytest.approx(6 + 2 * b, rel=1e-12)


# ------------------------------------------------------------------------- catapult
def test_catapult_is_not_a_divergence():
    w0 = [2.0 * (1 + 1e-3), 0.5]                      # next to the sharp minimum (2, 1/2)
    r = chain.chain_gd(w0, 0.5, 2000, record=True)
    assert r.lr * r.lambda0 > 2                        # the start is linearly unstable
    assert r.converged
    assert 1e4 <= r.max_loss_ratio <= 1e5              # the spike
    assert r.max_loss_ratio == pytest.approx(r.losses.max() / r.losses[0], rel=1e-12)
    assert r.sharpness < 2 / r.lr < r.lambda0          # settled at a flatter minimum
    assert r.sharpnesses[0] == r.lambda0 and r.sharpnesses[-1] == r.sharpness
    np.testing.assert_allclose(r.sharpnesses, chain.chain_sharpness(r.trajectory), rtol=0)
    # a blowup below the spike still reports CONVERGED: the scale has the floor E(0) = 1/2
    r2 = chain.chain_gd(w0, 0.5, 2000, blowup=100.0)
    assert r2.converged and r2.max_loss_ratio > 100
    np.testing.assert_array_equal(r2.w, r.w)


# ------------------------------------------------------------------- sweeps, EoS, timing
@pytest.fixture(scope="module")
def big_sweep():
    rng = np.random.default_rng(5)
    n_init, n_lr = (20, 25) if naive.JITLESS else (400, 250)   # plain Python: small grid
    inits = rng.uniform(-2.5, 2.5, (n_init, 2))
    lrs = np.geomspace(0.02, 1.2, n_lr)
    chain.chain_sweep(inits[:2], lrs[:3], 10)          # warm-up (compile or cache load)
    res = chain.chain_sweep(inits, lrs, 1000)
    cells = res.status.size
    print(f"\nchain_sweep: {cells} cells x <= 1000 steps in {res.seconds:.3f} s "
          f"({res.threads} threads)")
    return res


def test_sweep_size_and_regions(big_sweep):
    res = big_sweep
    n_init, n_lr = res.status.shape
    assert naive.JITLESS or res.status.size >= 100_000
    assert res.sharpness.shape == res.max_loss_ratio.shape == (n_init, n_lr)
    assert res.w.shape == (n_init, n_lr, 2)
    assert res.lambda0.shape == res.ntk0.shape == res.loss0.shape == (n_init,)
    reg = res.regions()
    assert set(np.unique(reg)) == {0, 1, 2, 3}
    assert np.all(np.isfinite(res.sharpness[res.status != Status.DIVERGED]))
    assert not np.any(np.isnan(res.w)) and not np.any(np.isnan(res.max_loss_ratio))


def test_converged_runs_end_below_two_over_eta(big_sweep):
    res = big_sweep
    conv = res.status == Status.CONVERGED
    S = res.sharpness[conv]
    lim = np.broadcast_to(2 / res.lr[None, :], conv.shape)[conv]
    assert np.all(S <= lim * (1 + 1e-6))
    np.testing.assert_allclose(res.product[conv], 1.0, rtol=1e-4)
    # spikes happen beyond the naive 2/lambda0: convergence after a spike
    spiked = conv & (res.max_loss_ratio > 1)
    assert np.any(spiked & (res.lr_lambda0 > 2))


def test_sweep_equals_single_runs(big_sweep):
    res = big_sweep
    rng = np.random.default_rng(11)
    n_init, n_lr = res.status.shape
    picks = list(zip(rng.integers(0, n_init, 30), rng.integers(0, n_lr, 30), strict=True))
    for st_code in (0, 1, 2):                          # at least one cell of each status
        ii, jj = np.nonzero(res.status == st_code)
        picks.append((ii[0], jj[0]))
    for i, j in picks:
        r = chain.chain_gd(res.inits[i], res.lr[j], 1000)
        assert int(r.status) == res.status[i, j]
        assert np.array_equal(r.w, res.w[i, j])
        assert r.steps_to_tol == res.steps_to_tol[i, j]
        assert r.diverged_at == res.diverged_at[i, j]
        assert r.max_loss_ratio == res.max_loss_ratio[i, j] or (
            np.isinf(r.max_loss_ratio) and np.isinf(res.max_loss_ratio[i, j]))
        assert r.sharpness == res.sharpness[i, j] or (
            np.isinf(r.sharpness) and np.isinf(res.sharpness[i, j]))
        assert r.lambda0 == res.lambda0[i] and r.ntk0 == res.ntk0[i]
        assert r.loss == res.loss[i, j] or (np.isinf(r.loss) and np.isinf(res.loss[i, j]))


def test_sweep_threads_invariant_and_depth3():
    rng = np.random.default_rng(3)
    inits = rng.uniform(-1.5, 1.5, (20 if naive.JITLESS else 50, 3))
    lrs = np.geomspace(0.05, 1.0, 25 if naive.JITLESS else 40)
    a = chain.chain_sweep(inits, lrs, 500, threads=1)
    b = chain.chain_sweep(inits, lrs, 500, threads=2) if G.max_threads() >= 2 else a
    for name in ("status", "w", "steps_to_tol", "diverged_at", "max_loss_ratio"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    conv = a.status == Status.CONVERGED
    assert np.all(a.sharpness[conv] <= np.broadcast_to(2 / lrs, conv.shape)[conv] * (1 + 1e-6))
    i, j = 17, 23
    r = chain.chain_gd(inits[i], lrs[j], 500)
    assert np.array_equal(r.w, a.w[i, j]) and int(r.status) == a.status[i, j]


def test_sgd_sweep_equals_single_runs():
    x = np.array([1.0, 2.0, -1.0, 0.5])
    y = 1.5 * x
    inits = np.array([[0.5, 0.5], [1.0, -0.3], [2.0, 1.0]])
    lrs = np.array([0.02, 0.1, 0.3])
    res = chain.chain_sweep(inits, lrs, 80, x, y, method="sgd", order="shuffle", seed=3)
    for i in range(3):
        for j in range(3):
            r = chain.chain_sgd(inits[i], lrs[j], 80, x, y, order="shuffle", seed=3)
            assert int(r.status) == res.status[i, j] and np.array_equal(r.w, res.w[i, j])


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("call,exc,match", [
    (lambda: chain.chain_gd([1.0], 0.1, 10), FastGDValueError, r"'w0' must be of depth L >= 2"),
    (lambda: chain.chain_gd(1.0, 0.1, 10), FastGDValueError, r"'w0'"),
    (lambda: chain.chain_gd([[1.0, 1.0]], 0.1, 10), FastGDValueError, r"'w0' must be a 1-D"),
    (lambda: chain.chain_gd([1.0, np.nan], 0.1, 10), FastGDValueError, r"finite"),
    (lambda: chain.chain_gd([1.0, 1.0], 0.0, 10), FastGDValueError, r"'lr' must be > 0"),
    (lambda: chain.chain_gd([1.0, 1.0], -0.1, 10), FastGDValueError, r"'lr'"),
    (lambda: chain.chain_gd([1.0, 1.0], np.inf, 10), FastGDValueError, r"'lr' must be finite"),
    (lambda: chain.chain_gd([1.0, 1.0], 0.1, -1), FastGDValueError, r"'steps'"),
    (lambda: chain.chain_gd([1.0, 1.0], 0.1, 10, [1.0, 2.0], [1.0, 2.0, 3.0]),
     FastGDValueError, r"'y' must be a number or of length P = 2"),
    (lambda: chain.chain_gd([1.0, 1.0], 0.1, 10, 0.0, 1.0), FastGDValueError, r"'x' must be"),
    (lambda: chain.chain_gd([1.0, 1.0], 0.1, 10, [1.0, np.inf], 1.0), FastGDValueError,
     r"'x' must be finite"),
    (lambda: chain.chain_gd([1.0, 1.0], 0.1, 10, loss_scale=0), FastGDValueError,
     r"'loss_scale' must be > 0"),
    (lambda: chain.chain_gd([1.0, 1.0], 0.1, 10, blowup=0.5), FastGDValueError, r"'blowup'"),
    (lambda: chain.chain_gd(["a", "b"], 0.1, 10), FastGDTypeError, r"'w0'"),
    (lambda: chain.chain_gd([1.0, 1.0], "fast", 10), FastGDTypeError, r"'lr'"),
    (lambda: chain.chain_sgd([1.0, 1.0], 0.1, 10, order="random"), FastGDValueError,
     r"'order' must be one of"),
    (lambda: chain.chain_sgd([1.0, 1.0], 0.1, 10, [1.0, 2.0], 1.0, batch_size=3),
     FastGDValueError, r"'batch_size'"),
    (lambda: chain.chain_sweep(np.ones((2, 1)), 0.1, 10), FastGDValueError, r"'inits'"),
    (lambda: chain.chain_sweep(np.ones((2, 2, 2)), 0.1, 10), FastGDValueError,
     r"'inits' must be of shape \(n_init, L\)"),
    (lambda: chain.chain_sweep(np.ones((2, 2)), [0.1, -1.0], 10), FastGDValueError,
     r"'lr' must be finite and > 0"),
    (lambda: chain.chain_sweep(np.ones((2, 2)), 0.1, 10, method="adam"), FastGDValueError,
     r"'method'"),
    (lambda: chain.chain_sweep(np.ones((2, 2)), 0.1, 10, backend="tpu"), FastGDValueError,
     r"chain_sweep: 'backend' must be one of"),
    (lambda: chain.chain_loss([1.0], 1.0, 1.0), FastGDValueError, r"chain_loss: 'w'"),
    (lambda: chain.chain_hessian(np.ones((3, 1))), FastGDValueError, r"chain_hessian: 'w'"),
    (lambda: chain.chain_minima(1), FastGDValueError, r"'depth' must be an integer >= 2"),
])
def test_bad_input(call, exc, match, monkeypatch):
    from fastgd.chain import kernels

    def forbidden(*args, **kwargs):
        raise AssertionError("a kernel ran before the arguments were validated")

    for name in ("grid_gd_chain", "grid_sgd_chain"):
        monkeypatch.setattr(kernels, name, forbidden)
    with pytest.raises(exc, match=match):
        call()


def test_divergence_is_a_result_not_nan():
    r = chain.chain_gd([3.0, 3.0], 1.0, 200, record=True)
    assert r.diverged and r.diverged_at > 0 and r.loss == np.inf
    assert np.all(np.isfinite(r.w)) and np.isfinite(r.sharpness)
    assert np.isinf(r.losses[-1]) and np.all(np.isfinite(r.losses[:-1]))
    assert not np.any(np.isnan(r.trajectory))
    # a start whose loss overflows is diverged at step 0, still without NaN
    r = chain.chain_gd([1e200, 1e200], 0.1, 10)
    assert r.diverged and r.diverged_at == 0 and np.isinf(r.max_loss_ratio)
    res = chain.chain_sweep(np.array([[1e200, 1e200], [1.0, 1.0]]), 0.1, 10)
    assert not np.any(np.isnan(res.max_loss_ratio)) and not np.any(np.isnan(res.sharpness))


# ------------------------------------------------------------------ engines, checkpoints
def _engine_case(method):
    """A grid of several chunks (64 cells each) with every status, GD or SGD."""
    rng = np.random.default_rng(21)
    inits = rng.uniform(-2.0, 2.0, (13, 3))
    lrs = np.geomspace(0.02, 1.5, 23)                  # 299 cells: 5 chunks, the last short
    kw = dict(method=method, progress=False)
    if method == "sgd":
        kw.update(x=[0.5, 1.0, -1.5, 2.0], y=[0.4, 1.1, -1.4, 2.3], order="shuffle", seed=5,
                  batch_size=2)
    return inits, lrs, 60 if method == "sgd" else 300, kw


@pytest.mark.parametrize("method", ["gd", "sgd"])
def test_sweep_on_a_thread_pool_equals_local_bit_for_bit(method):
    import concurrent.futures as cf

    inits, lrs, steps, kw = _engine_case(method)
    ref = chain.chain_sweep(inits, lrs, steps, **kw)
    assert len(np.unique(ref.status)) == 3 and ref.meta["engine"] == "local"
    for workers, threads in ((2, None), (3, min(2, G.max_threads()))):
        with cf.ThreadPoolExecutor(workers) as ex:
            got = chain.chain_sweep(inits, lrs, steps, engine=ex, threads=threads, **kw)
        assert got.equals(ref) and got.complete
        assert got.meta["engine"] == "ThreadPoolExecutor"
        assert got.meta["chunks_computed"] == ref.meta["chunks_total"] == 5


@pytest.mark.parametrize("method", ["gd", "sgd"])
def test_run_chunks_independent_of_cutting(method):
    """Any block of rows, in any order, gives the cells of the in-place local run."""
    import pickle

    from fastgd.chain.contract import ChainJob, ChainSpec, chain_inputs
    from fastgd.chain.launch import LANES, Out, run_chunks
    from fastgd.status import ORDERS

    inits, lrs, steps, kw = _engine_case(method)
    ref = chain.chain_sweep(inits, lrs, steps, **kw)
    sgd = method == "sgd"
    spec = ChainSpec(method, steps, 1e-10, 1e12, batch=2 if sgd else 1,
                     order=ORDERS["shuffle"] if sgd else 0)
    inp = chain_inputs(kw.get("x", 1.0), kw.get("y", 1.0), 1.0, inits, lrs,
                       seed=5 if sgd else None)
    job = pickle.loads(pickle.dumps(ChainJob(spec, inp, LANES)))   # what a worker gets
    n = inits.shape[0] * lrs.size
    rows = G.make_chunks(1, 1, n, LANES)
    out = Out(n, 3)
    for blk in np.array_split(rows[np.random.default_rng(0).permutation(len(rows))], 3):
        out.scatter(run_chunks(job, blk, threads=2))
    np.testing.assert_array_equal(out.status.reshape(ref.status.shape), ref.status)
    np.testing.assert_array_equal(out.w.reshape(ref.w.shape), ref.w)
    np.testing.assert_array_equal(out.tol_at.reshape(ref.status.shape), ref.steps_to_tol)


def _interrupt_at_second_launch(monkeypatch):
    """Ctrl-C at the second kernel launch of this process (evidence, not a timer): with
    one thread the local engine's first batch is two chunks, so two chunks finish."""
    from fastgd.chain import launch as L

    real, calls = L._launch, []

    def launch(*args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(L, "_launch", launch)


def test_interrupted_checkpointed_sweep_resumes_identically(tmp_path, monkeypatch):
    from fastgd import SweepInterrupted

    inits, lrs, steps, kw = _engine_case("sgd")
    ref = chain.chain_sweep(inits, lrs, steps, **kw)
    ck = tmp_path / "ck"
    _interrupt_at_second_launch(monkeypatch)
    with pytest.raises(SweepInterrupted) as info:
        chain.chain_sweep(inits, lrs, steps, checkpoint=ck, threads=1, **kw)
    monkeypatch.undo()
    part = info.value.result
    done = part.status.ravel() != Status.NOT_RUN
    assert not part.complete and done.sum() == 2 * 64 and done[:128].all()
    for name in ("status", "w", "steps_to_tol", "diverged_at", "excess"):
        a, b = getattr(part, name), getattr(ref, name)
        shape = (-1, 3) if name == "w" else (-1,)
        np.testing.assert_array_equal(a.reshape(shape)[done], b.reshape(shape)[done])
    assert "interrupted: 171 cells not run" in repr(part)
    res = chain.chain_sweep(inits, lrs, steps, checkpoint=ck, threads=1, **kw)
    assert res.equals(ref)
    assert (res.meta["chunks_resumed"], res.meta["chunks_computed"]) == (2, 3)
    again = chain.chain_sweep(inits, lrs, steps, checkpoint=ck, **kw)   # all on disk
    assert again.equals(ref) and again.meta["chunks_resumed"] == 5
    with pytest.raises(FastGDValueError, match="chain_sweep: 'checkpoint' must be a "
                       "directory written by the same sweep"):
        chain.chain_sweep(inits, lrs, steps + 1, checkpoint=ck, **kw)


def test_executor_checkpoint_then_local_resume(tmp_path):
    import concurrent.futures as cf
    import os

    inits, lrs, steps, kw = _engine_case("gd")
    ref = chain.chain_sweep(inits, lrs, steps, **kw)
    ck = tmp_path / "ck"
    with cf.ThreadPoolExecutor(2) as ex:
        assert chain.chain_sweep(inits, lrs, steps, engine=ex, checkpoint=ck, **kw).equals(ref)
    files = sorted(f for f in os.listdir(ck) if f.startswith("chunk-"))
    gone = 0
    for f in files[::2]:
        with np.load(ck / f) as z:
            gone += z["rows"].shape[0]
        os.remove(ck / f)
    res = chain.chain_sweep(inits, lrs, steps, checkpoint=str(ck), **kw)
    assert res.equals(ref) and res.meta["chunks_computed"] == gone > 0


def test_engine_and_checkpoint_are_validated(monkeypatch, tmp_path):
    import concurrent.futures as cf

    from fastgd.chain import kernels

    def forbidden(*args, **kwargs):
        raise AssertionError("a kernel ran before the arguments were validated")

    for name in ("grid_gd_chain", "grid_sgd_chain"):
        monkeypatch.setattr(kernels, name, forbidden)
    with pytest.raises(FastGDTypeError, match="chain_sweep: 'engine' must be a concurrent"):
        chain.chain_sweep([0.5, 0.5], [0.1], 10, engine="dask")
    with pytest.raises(FastGDTypeError, match="chain_sweep: 'checkpoint' must be a "
                       "directory path"):
        chain.chain_sweep([0.5, 0.5], [0.1], 10, checkpoint=3)
    (tmp_path / "file").write_text("x")
    with pytest.raises(FastGDValueError, match="chain_sweep: 'checkpoint' must be a "
                       "directory that can be created"):
        chain.chain_sweep([0.5, 0.5], [0.1], 10, checkpoint=tmp_path / "file" / "sub")
    with cf.ThreadPoolExecutor(1) as ex:
        with pytest.raises(FastGDValueError, match="'engine' must be None with backend"):
            chain.chain_sweep([0.5, 0.5], [0.1], 10, engine=ex, backend="cuda")
        with pytest.raises(FastGDValueError, match="chain_sweep: 'threads' must be"):
            chain.chain_sweep([0.5, 0.5], [0.1], 10, engine=ex, threads=0)


# ------------------------------------------------------------------------------ reprs
def test_reprs_are_short_and_say_what_matters(big_sweep):
    text = repr(big_sweep)
    lines = text.splitlines()
    assert len(lines) <= 15 and max(map(len, lines)) < 120
    n_init, n_lr = big_sweep.status.shape
    assert lines[0].startswith(f"<ChainSweepResult gd: {n_init} inits x {n_lr} rates")
    for st_ in (Status.CONVERGED, Status.BOUNDED, Status.DIVERGED):
        assert f"{st_.name.lower()} {int((big_sweep.status == st_).sum())}" in text
    bound = big_sweep.observed_boundary()
    assert f"for {int(np.isfinite(bound).sum())} of {n_init} inits" in text
    assert "local engine" in text
    r = chain.chain_gd([0.4, 0.4], 0.01, 500, record=True, tol=0.0)   # 501 losses recorded
    lines = repr(r).splitlines()
    assert len(lines) <= 15 and "501 losses" in lines[-1] and "BOUNDED" in lines[0]
    r = chain.chain_gd([3.0, 3.0], 1.0, 200)
    assert f"diverged at step {r.diverged_at}" in repr(r)
