"""Tests of fastgd.theory: closed forms and stability limits against simulation.

Every "Done when" bullet of the theory issue has a test here (named in its docstring).
Monte-Carlo tolerances are justified next to each test (the exact standard error of the
estimate is computed or measured, and the tolerance is several of them).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastgd as fg
import fastgd.theory as theory
import naive
from fastgd import status as ST
from fastgd.engine import grid as G
from fastgd.linear import problem as PB
from fastgd.linear.contract import LinearInputs
from fastgd.validate import FastGDTypeError, FastGDValueError

#: long simulations (millions of lane updates): compiled kernels only; under
#: NUMBA_DISABLE_JIT=1 (the coverage run) a small smoke test covers the same code
jit_only = pytest.mark.skipif(naive.JITLESS, reason="long simulation: needs the JIT")

# ----------------------------------------------------------------------------- helpers


def _random_problem(seed, d, P=40):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((P, d)) @ rng.standard_normal((d, d)) * 0.7 + 0.3
    y = X @ rng.standard_normal(d) + 0.5 * rng.standard_normal(P)
    return X, y


def _kernel_sgd_final(X, y, lrs, epochs, w0, seeds, *, batch=1, order="replacement",
                      n_rec=0):
    """Final weights (and per-epoch losses) of SGD from the grid kernel, many seeds.

    Seeds are on the seed axis (independent sample orders); the learning rates of one
    seed share its sample order.  tol = 0 and blowup = inf: no run is stopped.
    """
    from fastgd.linear import table

    prob = PB.prepare("test", X, y)
    lrs = np.asarray(lrs, dtype=np.float64)
    keys = np.stack([G.seed_key(s) for s in seeds])
    out = G.Outputs(1, len(seeds), lrs.size, prob.d, n_rec=n_rec)
    chunks = G.make_chunks(1, len(seeds), lrs.size, lrs.size)
    arrays = {"X": prob.X[None], "y": prob.y[None], "P": np.array([prob.P]),
              "R": prob.R[None], "wstar": prob.wstar[None], "estar": np.array([prob.estar]),
              "c0": np.array([prob.c0]), "lr": lrs, "beta": np.zeros(lrs.size),
              "w0": np.asarray(w0, dtype=np.float64), "keys": keys}
    spec = table.KernelSpec("sgd", prob.d, epochs, 0.0, np.inf, batch=batch,
                            order=ST.ORDERS[order])
    with np.errstate(all="ignore"):
        table.launch(spec, LinearInputs(**arrays), chunks, 2, out)
    return prob, out


# ------------------------------------------------------------------ batch GD, exactly


@pytest.mark.parametrize("d", [2, 5])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_gd_trajectory_equals_kernel(d, bias, seed):
    """Done when: gd_trajectory equals the GD kernel to 1e-12 (d = 2, 5; +- bias)."""
    X, y = _random_problem(seed, d)
    lam_max = fg.spectrum(X, bias=bias).lambda_max
    rng = np.random.default_rng(seed + 10)
    w0 = rng.standard_normal(d + int(bias))
    for lr, steps in ((0.5 / lam_max, 300), (1.7 / lam_max, 300), (2.05 / lam_max, 60)):
        W = theory.gd_trajectory(X, y, lr, steps, w0=w0, bias=bias)
        run = fg.gd(X, y, lr, steps, w0=w0, bias=bias, tol=0.0, blowup=np.inf, record=True)
        assert W.shape == run.trajectory.shape == (steps + 1, d + int(bias))
        scale = np.abs(W).max(axis=1, keepdims=True)
        assert np.all(np.abs(W - run.trajectory) <= 1e-12 * scale)


def test_gd_trajectory_lecture_values(lecture):
    """eta = 1/lambda along a direction reaches its minimum in one step (Efficient
    BackProp eq. 24): on 1-D data w_1 = w* exactly at eta_opt."""
    x = np.linspace(-1.0, 2.0, 9)
    y = 0.7 * x + 0.1 * np.sin(7 * x)
    lr = theory.eta_opt(x)
    W = theory.gd_trajectory(x, y, lr, 3, w0=[3.0])
    wstar = np.linalg.lstsq(x[:, None], y, rcond=None)[0]
    np.testing.assert_allclose(W[1:, 0], wstar[0], rtol=1e-14)
    X, yl = lecture
    W = theory.gd_trajectory(X, yl, 1.5, 0)
    assert W.shape == (1, 2) and np.all(W == 0)


@pytest.mark.parametrize("bias", [False, True])
def test_gd_loss_matches_kernel_and_formula(lecture, bias):
    X, y = lecture
    # with the bias 2/lambda_max = 2: at 2.3 the unstable direction starts from rounding
    # noise (w0 - w* has no component there), which the run and the formula amplify alike
    # but from different bits; 1.9 stays on the stable side
    for lr in (0.6, 1.5, 1.9 if bias else 2.3):
        run = fg.gd(X, y, lr, 400, bias=bias, tol=0.0, blowup=np.inf)
        ts = np.arange(run.losses.size)
        np.testing.assert_allclose(theory.gd_loss(X, y, lr, ts, bias=bias), run.losses,
                                   rtol=1e-12)
    # any t, O(d): a huge t is the minimum; scalars stay scalars
    prob = PB.prepare("t", X, y, bias)
    assert theory.gd_loss(X, y, 1.5, 10**9, bias=bias) == pytest.approx(prob.estar, rel=1e-14)
    assert isinstance(theory.gd_loss(X, y, 1.5, 3, bias=bias), float)
    assert theory.gd_loss(X, y, 1.5, 0, bias=bias, excess=True) == pytest.approx(
        prob.c0 - prob.estar, rel=1e-12)
    # above the limit the loss overflows to inf, never NaN, and no warning escapes
    v = theory.gd_loss(X, y, 2.5, [10, 10**6], bias=bias)
    assert np.isfinite(v[0]) and v[1] == np.inf


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gd_steps_to_tol_matches_kernel(seed):
    X, y = _random_problem(seed, 3)
    lam = fg.spectrum(X).eigenvalues
    for lr in (0.3 / lam[-1], 1.0 / lam[-1], 1.9 / lam[-1]):
        for tol in (1e-3, 1e-8):
            pred = theory.gd_steps_to_tol(X, y, lr, tol)
            run = fg.gd(X, y, lr, 200000, tol=tol)
            assert run.converged
            assert pred == run.steps_to_tol
    # never: above the limit; zero: already there
    assert theory.gd_steps_to_tol(X, y, 2.1 / lam[-1], 1e-6) == -1
    wstar = np.linalg.lstsq(X, y, rcond=None)[0]
    assert theory.gd_steps_to_tol(X, y, 0.1, 1e-6, w0=wstar) == 0


def test_gd_steps_to_tol_edge_cases():
    # one-step convergence on 1-D data, including tol = 0
    x = np.array([1.0, -1.0, 2.0])
    y = np.array([0.3, 0.1, -0.2])
    lr = theory.eta_opt(x)
    assert theory.gd_steps_to_tol(x, y, lr, 1e-6) == 1
    assert theory.gd_steps_to_tol(x, y, lr, 0.0) == 1
    assert theory.gd_steps_to_tol(x, y, 0.5 * lr, 0.0) == -1
    # a start with no component along the diverging direction still converges
    X = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 0.2], [0.0, -0.2]])  # lambdas 1, 0.04
    y = np.array([1.0, -1.0, 0.0, 0.0])
    w0 = np.array([1.0, 1.0])  # w* = (1, 0): error only along the flat-ish direction
    pred = theory.gd_steps_to_tol(X, y, 2.5, 1e-6, w0=w0)
    assert pred > 0
    assert pred == fg.gd(X, y, 2.5, 100000, w0=w0, tol=1e-6).steps_to_tol
    # a small component along a diverging direction: the loss dips below the target
    # before the diverging part takes over; the kernel stops at the first dip
    w0 = np.array([1.0 + 1e-9, 1.0])
    pred = theory.gd_steps_to_tol(X, y, 2.5, 1e-6, w0=w0)
    run = fg.gd(X, y, 2.5, 100000, w0=w0, tol=1e-6)
    assert pred == run.steps_to_tol > 0


def test_regimes_lecture(lecture):
    X, _ = lecture
    assert [theory.regime(lr, 0.84) for lr in (0.5, 1 / 0.84, 2.0, 2 / 0.84, 2.5)] == [
        "monotone", "one-step", "oscillating", "marginal", "diverging"]
    assert theory.regime(1.0, 0.0) == "flat"
    r = theory.regimes(X, 1.5)
    np.testing.assert_allclose(r.eigenvalues, [0.036, 0.84], rtol=1e-12)
    assert list(r.regime) == ["monotone", "oscillating"] and r.converges
    np.testing.assert_allclose(r.multipliers, 1 - 1.5 * r.eigenvalues)
    assert r.rate == pytest.approx(1 - 1.5 * 0.036)
    r = theory.regimes(X, 2.5)
    assert list(r.regime) == ["monotone", "diverging"] and not r.converges
    # consistent with the kernel: converges iff regimes says so
    for lr in (2.37, 2.39):
        assert theory.regimes(X, lr).converges == (not fg.gd(*lecture, lr, 20000).diverged)
    # with the bias the augmented Hessian gains the eigenvalue 1: limit 2.0
    r = theory.regimes(X, 2.1, bias=True)
    assert r.regime[-1] == "diverging" and not r.converges
    # a flat direction (linearly dependent inputs)
    Xf = np.c_[X[:, 0], 2 * X[:, 0]]
    assert theory.regimes(Xf, 0.1).regime[0] == "flat"


def test_eta_opt_minimax_and_contraction(lecture):
    """eta_opt = 1/lambda_max is the lecture's rate; 2/(lmax + lmin) minimises the
    worst contraction, which is (kappa - 1)/(kappa + 1); on the lecture's data
    eta = 1.5 converges faster than 1/lambda_max (Efficient BackProp sec. 5.2)."""
    X, y = lecture
    assert theory.eta_opt(X) == pytest.approx(1 / 0.84, rel=1e-12)
    assert theory.eta_max(X) == pytest.approx(2 / 0.84, rel=1e-12)
    assert theory.eta_max(X, bias=True) == pytest.approx(2.0, rel=1e-12)
    lr, rate = theory.minimax_lr(X)
    kappa = 0.84 / 0.036
    assert lr == pytest.approx(2 / 0.876, rel=1e-12)
    assert rate == pytest.approx((kappa - 1) / (kappa + 1), rel=1e-12)
    assert theory.contraction(X, lr) == pytest.approx(rate, rel=1e-12)
    grid = np.linspace(0.05, 2.37, 500)
    assert min(theory.contraction(X, g) for g in grid) >= rate - 1e-12
    assert theory.contraction(X, 1.5) < theory.contraction(X, theory.eta_opt(X))
    # ... and the simulation agrees: fewer steps to the same tolerance at 1.5
    # (from a start off the top eigenvector: from w = 0 the lecture's error lies along
    # it, and 1/lambda_max then converges in one step)
    w0 = [1.0, -1.0]
    assert (fg.gd(X, y, 1.5, 5000, w0=w0).steps_to_tol
            < fg.gd(X, y, 1 / 0.84, 5000, w0=w0).steps_to_tol)


# -------------------------------------------------------------------------- momentum


@jit_only
@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9, 0.99])
def test_momentum_limit_brackets_simulation(lecture, beta, nesterov):
    """Done when: just below the momentum limit converges and just above diverges
    (eta = (1 -/+ 1e-3) limit), beta in {0, .5, .9, .99}, heavy ball and Nesterov.

    The step budget is sized from the per-step factors on both sides (growth of 1e14
    above, decay to 1e-11 below, +20%); GD steps cost O(d^2), so even 20000 are cheap.
    """
    X, y = lecture
    lam = fg.spectrum(X).eigenvalues
    limit = theory.momentum_lr_max(lam[-1], beta, nesterov)
    lo, hi = limit * (1 - 1e-3), limit * (1 + 1e-3)
    r_lo = theory.momentum_rate(lo, lam, beta, nesterov)
    r_hi = theory.momentum_rate(hi, lam, beta, nesterov)
    assert r_lo < 1 < r_hi
    steps = int(1.2 * max(np.log(1e14) / np.log(r_hi), np.log(1e11) / -np.log(r_lo))) + 100
    below = fg.gd(X, y, lo, steps, momentum=beta, nesterov=nesterov, tol=1e-10)
    above = fg.gd(X, y, hi, steps, momentum=beta, nesterov=nesterov, tol=1e-10)
    assert below.status == fg.Status.CONVERGED
    assert above.status == fg.Status.DIVERGED


def test_momentum_lr_max_formulas():
    assert theory.momentum_lr_max(0.84, 0.0) == pytest.approx(2 / 0.84)
    assert theory.momentum_lr_max(0.84, 0.0, nesterov=True) == pytest.approx(2 / 0.84)
    assert theory.momentum_lr_max(2.0, 0.9) == pytest.approx(1.9)
    assert theory.momentum_lr_max(2.0, 0.9, nesterov=True) == pytest.approx(3.8 / 2.8 / 2.0)


@settings(deadline=None, max_examples=25)
@given(beta=st.floats(0.0, 0.995), lam=st.floats(0.01, 100.0), nesterov=st.booleans())
def test_momentum_limit_is_where_companion_radius_reaches_one(beta, lam, nesterov):
    """The 2x2 companion matrix's spectral radius crosses 1 exactly at the limit."""
    limit = theory.momentum_lr_max(lam, beta, nesterov)
    assert theory.momentum_rate(limit * (1 - 1e-6), [lam], beta, nesterov) < 1.0
    assert theory.momentum_rate(limit * (1 + 1e-6), [lam], beta, nesterov) > 1.0


def test_optimal_heavy_ball_rate_met_by_simulation():
    """Done when: the optimal heavy-ball rate is met by simulation.

    Inputs with H eigenvalues exactly 1 and 0.01 (kappa = 100, rate 9/11); labels 0 so
    that w is the error itself (no cancellation against w*).  The measured factor per
    step over the second half of 400 steps is rate x 2^(1/200) at most (the double
    eigenvalue at the spectrum's ends adds a factor linear in t): 1% tolerance.
    """
    ds = fg.gaussian_data(200, [1.0, 0.01], angle=0.3, seed=3)
    hb = theory.optimal_heavy_ball(0.01, 1.0)
    assert hb.rate == pytest.approx(9 / 11) and hb.beta == pytest.approx((9 / 11) ** 2)
    assert hb.lr == pytest.approx(4 / 1.1 ** 2)
    assert theory.momentum_rate(hb.lr, [0.01, 0.3, 1.0], hb.beta) == pytest.approx(
        hb.rate, rel=1e-6)
    y0 = np.zeros(200)
    T = 400

    def measured(lr, beta):
        r = fg.gd(ds.X, y0, lr, T, w0=[1.0, 1.0], momentum=beta, tol=0.0, blowup=np.inf,
                  record=True)
        n = np.linalg.norm(r.trajectory, axis=1)
        return (n[T] / n[T // 2]) ** (2.0 / T)

    m = measured(hb.lr, hb.beta)
    assert hb.rate * 0.99 <= m <= hb.rate * 1.01
    # it is the optimum: other (lr, beta) nearby are slower, plain GD much slower
    for lr, beta in ((hb.lr, hb.beta - 0.05), (hb.lr, hb.beta + 0.05), (0.9 * hb.lr, hb.beta),
                     (1.1 * hb.lr, hb.beta)):
        assert measured(lr, beta) > m
    assert measured(2 / 1.01, 0.0) > 0.97


# --------------------------------------------------------------- SGD: mean square


def _brute_force_operator(X, lr, B, replacement, beta=0.0, nesterov=False):
    """E[M_B (x) M_B] by enumerating every batch (small P only)."""
    P, d = X.shape
    eye = np.eye(d)
    batches = (list(itertools.product(range(P), repeat=B)) if replacement
               else list(itertools.combinations(range(P), B)))
    total = 0.0
    for b in batches:
        xb = X[list(b)]
        HB = xb.T @ xb / len(b)
        if beta == 0.0:
            M = eye - lr * HB
        elif nesterov:
            M = np.block([[eye - lr * (1 + beta) * HB, -lr * beta * beta * eye],
                          [HB, beta * eye]])
        else:
            M = np.block([[eye - lr * HB, -lr * beta * eye], [HB, beta * eye]])
        total = total + np.kron(M, M)
    return total / len(batches)


@pytest.mark.parametrize("beta,nesterov", [(0.0, False), (0.6, False), (0.6, True)])
@pytest.mark.parametrize("B,replacement", [(1, True), (2, True), (2, False), (3, False)])
def test_ms_operator_equals_enumeration(beta, nesterov, B, replacement):
    X, _ = _random_problem(4, 2, P=5)
    T = theory.sgd_ms_operator(X, 0.3, B, replacement, momentum=beta, nesterov=nesterov)
    ref = _brute_force_operator(X, 0.3, B, replacement, beta, nesterov)
    np.testing.assert_allclose(T, ref, rtol=0, atol=1e-14 * np.abs(ref).max())
    if beta == 0.0:
        np.testing.assert_array_equal(T, T.T)


@pytest.mark.parametrize("bias", [False, True])
def test_ms_critical_full_batch_is_gd_limit(lecture, bias):
    """Done when: its critical eta equals 2/lambda_max for batch_size = P without
    replacement."""
    X, _ = lecture
    limit = theory.eta_max(X, bias=bias)
    for method in ("closed", "brentq"):
        lr = theory.sgd_ms_critical_lr(X, 100, False, bias, method=method)
        assert lr == pytest.approx(limit, rel=1e-10)
    Xr, _ = _random_problem(7, 4, P=30)
    assert theory.sgd_ms_critical_lr(Xr, 30, False) == pytest.approx(
        theory.eta_max(Xr), rel=1e-10)


@pytest.mark.parametrize("B,replacement", [(1, True), (4, True), (4, False), (29, False)])
def test_ms_critical_is_root_of_spectral_radius(B, replacement):
    X, _ = _random_problem(5, 3, P=30)
    closed = theory.sgd_ms_critical_lr(X, B, replacement, method="closed")
    root = theory.sgd_ms_critical_lr(X, B, replacement, method="brentq")
    assert root == pytest.approx(closed, rel=1e-8)

    def rho(lr):
        return np.abs(np.linalg.eigvals(theory.sgd_ms_operator(X, lr, B, replacement))).max()

    assert rho(closed * (1 - 1e-6)) < 1 < rho(closed * (1 + 1e-6))
    assert rho(closed) == pytest.approx(1.0, abs=1e-10)
    # never above the batch-GD limit; does not decrease with B (Mulayoff & Michaeli)
    assert closed <= theory.eta_max(X) * (1 + 1e-12)
    crit = [theory.sgd_ms_critical_lr(X, b, replacement) for b in (1, 2, 4, 8)]
    assert np.all(np.diff(crit) >= -1e-12 * crit[0])


def test_ms_critical_large_d_matrix_free(monkeypatch):
    """Above d = 40 the closed form runs matrix-free (Lanczos); it agrees with the dense
    path to 1e-10 (checked at d = 6 by lowering the threshold)."""
    rng = np.random.default_rng(8)
    X = rng.standard_normal((60, 6)) * np.linspace(0.3, 1.5, 6)
    dense = theory.sgd_ms_critical_lr(X, 3)
    monkeypatch.setattr(theory.mean_square, "_DENSE_MAX", 4)
    assert theory.sgd_ms_critical_lr(X, 3) == pytest.approx(dense, rel=1e-10)
    monkeypatch.undo()
    Xbig = rng.standard_normal((60, 44))
    with pytest.raises(FastGDValueError, match="at most 40 non-flat"):
        theory.sgd_ms_operator(Xbig, 0.01)
    assert np.isnan(theory.sgd_ms_error(Xbig, np.zeros(60), 0.01, 2).rho)
    assert np.isfinite(theory.sgd_ms_critical_lr(Xbig, 3))


def test_ms_critical_with_momentum(lecture):
    X, _ = lecture
    lam_max = 0.84
    for beta, nest in ((0.5, False), (0.9, False), (0.5, True)):
        lr = theory.sgd_ms_critical_lr(X, momentum=beta, nesterov=nest)
        assert 0 < lr < theory.momentum_lr_max(lam_max, beta, nest)
        T = theory.sgd_ms_operator(X, lr, momentum=beta, nesterov=nest)
        assert np.abs(np.linalg.eigvals(T)).max() == pytest.approx(1.0, abs=1e-9)
        # full batch without replacement: the GD momentum limit
        full = theory.sgd_ms_critical_lr(X, 100, False, momentum=beta, nesterov=nest)
        assert full == pytest.approx(theory.momentum_lr_max(lam_max, beta, nest), rel=1e-8)


def _fourth_moment_relstd(X, lr, t, w0):
    """Exact relative standard deviation of ||e_t||^2 (B = 1 with replacement)."""
    P, d = X.shape
    A = [np.eye(d) - lr * np.outer(x, x) for x in X]
    T2 = sum(np.kron(a, a) for a in A) / P
    T4 = sum(np.kron(np.kron(a, a), np.kron(a, a)) for a in A) / P
    e2 = np.kron(w0, w0)
    i2 = np.eye(d).ravel()
    m2 = i2 @ np.linalg.matrix_power(T2, t) @ e2
    m4 = np.kron(i2, i2) @ np.linalg.matrix_power(T4, t) @ np.kron(e2, e2)
    return np.sqrt(m4 / m2 ** 2 - 1)


def test_ms_prediction_matches_monte_carlo():
    """Done when: the mean-square operator's prediction of E||w_t - w*||^2 matches a
    Monte-Carlo average over >= 2000 seeds within 10%, at a stable and an unstable eta.

    d = 2, P = 6 points of nearly equal norm (so the product's tails are mild), i.i.d.
    single-sample draws (order="replacement"), noise-free labels (y = 0), t = 12 steps,
    4000 seeds; eta = 0.9 and 1.1 x the mean-square limit.  The exact relative standard
    deviation of ||e_t||^2 (fourth-moment operator) is < 1, so the standard error of the
    average is < 1.6%: 10% is > 6 of them.
    """
    ang = np.array([0.1, 0.5, 0.9, 1.6, 2.2, 2.8])
    rad = np.array([1.0, 0.95, 1.05, 0.97, 1.03, 1.0])
    X = np.c_[rad * np.cos(ang), rad * np.sin(ang)]
    y0 = np.zeros(6)
    w0 = np.array([1.0, -0.5])
    ms = theory.sgd_ms_critical_lr(X)
    lrs = [0.9 * ms, 1.1 * ms]
    preds = [theory.sgd_ms_error(X, y0, lr, 12, w0=w0) for lr in lrs]
    assert preds[0].rho < 1 < preds[1].rho
    assert preds[0].dist2[-1] < preds[0].dist2[0] == preds[1].dist2[0] < preds[1].dist2[-1]
    for lr in lrs:
        assert _fourth_moment_relstd(X, lr, 12, w0) < 1.0
    prob, out = _kernel_sgd_final(X, y0, lrs, 2, w0, range(4000))
    mc = ((out.w[0] - prob.wstar) ** 2).sum(axis=-1).mean(axis=0)
    for k in range(2):
        assert mc[k] == pytest.approx(preds[k].dist2[-1], rel=0.10)


def test_ms_prediction_with_label_noise_matches_monte_carlo():
    """The affine part (residual noise and its correlation with the mean error) of
    sgd_ms_error: noisy labels, stable eta, 4000 seeds (measured standard error 0.5%:
    5% tolerance)."""
    ang = np.array([0.1, 0.5, 0.9, 1.6, 2.2, 2.8])
    rad = np.array([1.0, 0.8, 1.2, 0.9, 1.1, 1.0])
    X = np.c_[rad * np.cos(ang), rad * np.sin(ang)]
    y = np.array([0.5, -1.0, 0.3, 1.2, -0.4, 0.9])
    w0 = np.array([1.0, -0.5])
    lr = 0.5 * theory.sgd_ms_critical_lr(X)
    pred = theory.sgd_ms_error(X, y, lr, 18, w0=w0)
    prob, out = _kernel_sgd_final(X, y, [lr], 3, w0, range(4000))
    e = out.w[0, :, 0] - prob.wstar
    assert (e ** 2).sum(axis=1).mean() == pytest.approx(pred.dist2[-1], rel=0.05)
    np.testing.assert_allclose(pred.mean[-1], e.mean(axis=0), atol=0.05 * np.sqrt(
        pred.dist2[-1]))
    H = prob.H
    assert pred.excess[-1] == pytest.approx(0.5 * np.mean(np.einsum("si,ij,sj->s", e, H, e)),
                                            rel=0.05)


@jit_only
@pytest.mark.parametrize("bias", [False, True])
def test_stationary_loss_lecture_matches_simulation(lecture, bias):
    """Done when: sgd_stationary_loss at the lecture's eta = 0.2 matches a long
    simulated average within 5%.

    Per-sample SGD with i.i.d. draws (the process the formula describes), 64 seeds x
    1000 epochs, the first 50 epochs dropped; the measured standard error of the
    average is about 0.5%.
    """
    X, y = lecture
    pred = theory.sgd_stationary_loss(X, y, 0.2, bias=bias)
    prob = PB.prepare("t", X, y, bias)
    _, out = _kernel_sgd_final(prob.X, prob.y, [0.2], 1000, np.zeros(prob.d), range(64),
                               n_rec=1001)
    sim = (out.rec_loss[0, :, 0, 50:] - prob.estar).mean()
    assert sim == pytest.approx(pred, rel=0.05)
    # the exact moment recursion reaches the same stationary value
    assert theory.sgd_ms_error(X, y, 0.2, 3000, bias=bias).excess[-1] == pytest.approx(
        pred, rel=1e-9)


def test_stationary_loss_is_proportional_to_lr(lecture):
    """For small eta the fluctuation's excess loss is eta c tr(Q)/4 (prop. to eta)."""
    X, y = lecture
    prob = PB.prepare("t", X, y)
    r = y - X @ prob.wstar
    trQ = float(np.sum(r ** 2 * np.sum(X ** 2, axis=1)) / 100)
    for B, rep in ((1, True), (10, True), (10, False)):
        c = 1 / B if rep else (100 - B) / (B * 99)
        s = theory.sgd_stationary_loss(X, y, 1e-5, batch_size=B, replacement=rep)
        assert s / 1e-5 == pytest.approx(c * trQ / 4, rel=1e-3)
    ms = theory.sgd_ms_critical_lr(X)
    assert theory.sgd_stationary_loss(X, y, ms * 1.01) == np.inf
    assert theory.sgd_stationary_loss(X, X @ np.array([0.3, -0.2]), 0.2) == pytest.approx(
        0.0, abs=1e-25)
    # batch = P without replacement is GD: no fluctuation
    assert theory.sgd_stationary_loss(X, y, 0.2, batch_size=100, replacement=False) == 0.0


# ---------------------------------------------------------------- SGD: almost sure


def _numpy_lyapunov(X, lr, steps, seeds):
    """Top Lyapunov exponent of per-sample SGD with i.i.d. draws, plain NumPy."""
    rng = np.random.default_rng(99)
    P, d = X.shape
    e = rng.standard_normal((seeds, d))
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    total = np.zeros(seeds)
    idx = rng.integers(0, P, (steps, seeds))
    for t in range(steps):
        x = X[idx[t]]
        e = e - lr * np.sum(e * x, axis=1, keepdims=True) * x
        if t % 50 == 49:
            n = np.linalg.norm(e, axis=1)
            total += np.log(n)
            e /= n[:, None]
    return float(total.mean() / steps)


@jit_only
def test_as_boundary_lecture_brackets_simulated_half_divergence(lecture):
    """Done when: the almost-sure boundary brackets the simulated 50%-divergence eta of
    critical_lr(method="sgd") on the lecture's data.

    The mean-square limit (1.956) is below the half-diverged rate and the almost-sure
    limit (about 2.34) above it: between them E||w||^2 is infinite but most runs are
    finite; a run is called diverged when its loss passes 1e12 x the start, which a
    heavy-tailed run near (but below) the almost-sure limit does with probability
    ~ exp(-2 |gamma| ln(1e6) / sigma^2), so the half-diverged rate sits just below it.
    """
    X, y = lecture
    for order in ("replacement", "shuffle"):
        a = theory.sgd_as_critical_lr(X, y, order=order)
        ms = theory.sgd_ms_critical_lr(X, replacement=order == "replacement")
        half = fg.critical_lr(X, y, method="sgd", order=order, epochs=200).lr
        assert ms < half < a.lr_high
        assert a.lr_low <= a.lr <= a.lr_high
        assert (a.lr_high - a.lr_low) / a.lr < 0.01
        assert a.lr < theory.eta_max(X)
        assert half > 0.9 * a.lr
        if order == "replacement":
            assert a.ms_lr == pytest.approx(ms)
            # "about 20%" apart on two-cluster data (THEORY.md sec. 3)
            assert 1.1 < a.lr / ms < 1.3


@jit_only
def test_as_exponent_sign_matches_numpy(lecture):
    """The kernel-based exponent against a plain NumPy product: 3% either side of the
    almost-sure limit the exponent is about -/+ 0.02 per step, the NumPy estimate's
    standard error (8 runs x 20000 steps) about 0.0015."""
    X, _ = lecture
    a = theory.sgd_as_critical_lr(X, order="replacement", seeds=16, epochs=100)
    slope = np.polyfit(a.lrs, a.exponent, 1)[0]
    assert slope > 0
    g_lo = _numpy_lyapunov(X, 0.97 * a.lr, 20000, 8)
    g_hi = _numpy_lyapunov(X, 1.03 * a.lr, 20000, 8)
    assert g_lo < -0.005 and g_hi > 0.005
    for lr in (a.lrs[0], a.lrs[-1]):
        g = _numpy_lyapunov(X, lr, 20000, 8)
        assert g == pytest.approx(np.interp(lr, a.lrs, a.exponent), abs=0.004)


@jit_only
def test_as_above_ms_on_gaussian_inputs():
    """On Gaussian inputs the two boundaries differ by much more than on two clusters."""
    ds = fg.gaussian_data(200, [1.0, 0.3], seed=2)
    a = theory.sgd_as_critical_lr(ds.X, order="replacement", seeds=16, epochs=50)
    ms = theory.sgd_ms_critical_lr(ds.X)
    assert a.lr > 1.3 * ms
    # with reshuffling, minibatches and momentum the estimate runs and is finite
    for kw in (dict(order="shuffle", batch_size=10), dict(momentum=0.5),
               dict(momentum=0.5, nesterov=True, batch_size=3)):
        b = theory.sgd_as_critical_lr(ds.X, seeds=8, epochs=30, **kw)
        assert np.isfinite(b.lr) and 0 < b.lr_low <= b.lr <= b.lr_high


def test_as_cyclic_exact(lecture):
    """A fixed order is deterministic: the boundary is where the epoch product's spectral
    radius is 1.  1% either side, the simulation (with the real labels) agrees."""
    X, y = lecture
    a = theory.sgd_as_critical_lr(X, y, order="cyclic")
    assert a.lr_low == a.lr == a.lr_high == a.ms_lr
    assert fg.sgd(X, y, 0.99 * a.lr, 2000, order="cyclic").status != fg.Status.DIVERGED
    assert fg.sgd(X, y, 1.01 * a.lr, 2000, order="cyclic").status == fg.Status.DIVERGED


@jit_only
def test_as_ignores_flat_directions():
    """Linearly dependent inputs: the flat direction has exponent 0 and is removed."""
    X, _ = _random_problem(3, 2, P=20)
    Xf = np.c_[X, X[:, 0] - X[:, 1]]
    a = theory.sgd_as_critical_lr(X, seeds=8, epochs=40)
    b = theory.sgd_as_critical_lr(Xf, seeds=8, epochs=40)
    assert np.isfinite(b.lr) and b.lr > 0 and b.lr != a.lr
    assert theory.sgd_ms_critical_lr(Xf) < theory.eta_max(Xf)


def test_as_smoke_small():
    """Every branch of sgd_as_critical_lr on a tiny budget (runs under JITLESS too)."""
    X, _ = _random_problem(2, 2, P=6)
    for kw in (dict(order="replacement"), dict(order="shuffle", batch_size=4),
               dict(momentum=0.3, nesterov=True)):
        a = theory.sgd_as_critical_lr(X, seeds=2, epochs=3, lanes=8, **kw)
        assert a.lrs.size == 8 and a.exponent.shape == a.stderr.shape == (8,)
        assert 0 < a.lr_low <= a.lr <= a.lr_high and a.steps == 3 * -(-6 // a.batch_size)
    lim = theory.limits(X, batch_size=2, order="replacement", almost_sure=True, seeds=2,
                        epochs=2)
    assert np.isfinite(lim["sgd_as"]) and np.isfinite(lim["sgd_ms"])


def test_module_docstring_explains_the_two_boundaries():
    doc = theory.__doc__
    assert "mean-square" in doc and "almost-sure" in doc
    assert "heavy-tailed" in doc and "finite" in doc


# ---------------------------------------------------------------------- lambda_max


def test_lsp_online_estimate_lecture(lecture):
    """Done when: the on-line estimator with its defaults reaches lambda_max within 3%
    on the lecture's data in 5000 presentations for at least 9 of 10 seeds."""
    X, y = lecture
    ok = 0
    for seed in range(10):
        est = theory.lsp_lambda_max(X, y, seed=seed)
        assert est.history.shape == (5000,)
        assert est.estimate == pytest.approx(est.history[-est.window:].mean())
        ok += abs(est.estimate / 0.84 - 1) < 0.03
    assert ok >= 9
    assert est.lr_opt == pytest.approx(1 / est.estimate)
    assert est.lr_max == pytest.approx(2 / est.estimate)
    u = est.psi / np.linalg.norm(est.psi)
    assert abs(u @ np.array([1.0, 2.0]) / np.sqrt(5)) > 0.99
    # the raw norm fluctuates more than the averaged estimate is off
    assert np.std(est.history[-1000:]) > abs(est.estimate - 0.84)


def test_power_method_to_1e8(lecture):
    """Done when: the batch power method is within 1e-8."""
    X, y = lecture
    p = theory.power_lambda_max(X, y)
    assert p.converged and abs(p.estimate - 0.84) <= 1e-8 * 0.84
    for seed in range(3):
        Xr, yr = _random_problem(seed, 5, P=50)
        lam = np.linalg.eigvalsh(Xr.T @ Xr / 50)
        p = theory.power_lambda_max(Xr, yr, seed=seed, w=np.ones(5))
        assert p.converged and abs(p.estimate - lam[-1]) <= 1e-8 * lam[-1]
        assert p.history.size == p.iterations
    p = theory.power_lambda_max(X, bias=True)
    assert abs(p.estimate - 1.0) <= 1e-8


# --------------------------------------------------------------------------- limits


@jit_only
def test_limits(lecture):
    X, y = lecture
    lim = theory.limits(X)
    assert lim["gd"] == pytest.approx(2 / 0.84) and lim["gd_opt"] == pytest.approx(1 / 0.84)
    assert lim["minimax"] == pytest.approx(2 / 0.876)
    assert np.isnan(lim["momentum"]) and np.isnan(lim["sgd_ms"]) and np.isnan(lim["sgd_as"])
    lim = theory.limits(X, momentum=0.9, nesterov=True, bias=True)
    assert lim["momentum"] == pytest.approx(theory.momentum_lr_max(1.0, 0.9, True))
    lim = theory.limits(X, batch_size=1, order="replacement")
    assert lim["sgd_ms"] == pytest.approx(theory.sgd_ms_critical_lr(X))
    assert np.isnan(lim["sgd_as"])
    lim = theory.limits(X, batch_size=1, order="cyclic")
    assert lim["sgd_as"] == lim["sgd_ms"] == pytest.approx(
        theory.sgd_as_critical_lr(X, order="cyclic").lr)
    lim = theory.limits(X, batch_size=5, order="shuffle", almost_sure=True, seeds=8,
                        epochs=20, y=y)
    # (with reshuffled minibatches the typical-run limit may exceed 2/lambda_max,
    # as the cyclic order's does on these data)
    assert lim["sgd_ms"] < lim["sgd_as"] < 1.2 * lim["gd"]


# ---------------------------------------------------------------------- bad input

_X = np.array([[1.0, 0.5], [-0.3, 1.0], [0.2, -0.7]])
_Y = np.array([1.0, -1.0, 0.5])

BAD = [
    (theory.gd_trajectory, (_X, _Y, -1.0, 5), {}, FastGDValueError, "'lr' must be > 0"),
    (theory.gd_trajectory, (_X, _Y, 0.1, -1), {}, FastGDValueError, "'steps'"),
    (theory.gd_trajectory, (_X, _Y[:2], 0.1, 5), {}, FastGDValueError, "'y' must be of length"),
    (theory.gd_trajectory, (_X, _Y, 0.1, 5), {"w0": [1.0]}, FastGDValueError, "'w0'"),
    (theory.gd_trajectory, ("abc", _Y, 0.1, 5), {}, FastGDTypeError, "'X'"),
    (theory.gd_loss, (_X, _Y, 0.1, -3), {}, FastGDValueError, "'t' must be >= 0"),
    (theory.gd_loss, (_X, _Y, 0.1, 1.5), {}, FastGDTypeError, "'t' must be an integer"),
    (theory.gd_loss, (_X, _Y, 0.1, [1, np.nan]), {}, FastGDValueError, "'t' must be finite"),
    (theory.gd_steps_to_tol, (_X, _Y, 0.1, -1e-3), {}, FastGDValueError, "'tol'"),
    (theory.regime, (0.1, -1.0), {}, FastGDValueError, "'lam' must be >= 0"),
    (theory.regimes, (_X, np.inf), {}, FastGDValueError, "'lr' must be finite"),
    (theory.regimes, (_X, 0.1), {"bias": 1}, FastGDTypeError, "'bias'"),
    (theory.eta_opt, (np.zeros((3, 2)),), {}, FastGDValueError, "'X' must be not identically"),
    (theory.minimax_lr, (np.array([[1.0, np.nan]]),), {}, FastGDValueError, "finite"),
    (theory.contraction, (_X, "0.1"), {}, FastGDTypeError, "'lr' must be a real number"),
    (theory.momentum_lr_max, (0.0, 0.5), {}, FastGDValueError, "'lam_max' must be > 0"),
    (theory.momentum_lr_max, (1.0, 1.0), {}, FastGDValueError, "'beta' must be < 1.0"),
    (theory.momentum_lr_max, (1.0, -0.1), {}, FastGDValueError, "'beta' must be >= 0"),
    (theory.momentum_lr_max, (1.0, 0.5, "yes"), {}, FastGDTypeError, "'nesterov'"),
    (theory.momentum_rate, (0.1, [-1.0], 0.5), {}, FastGDValueError, "'eigenvalues'"),
    (theory.optimal_heavy_ball, (2.0, 1.0), {}, FastGDValueError, "'lam_min' must be <="),
    (theory.optimal_heavy_ball, (0.0, 1.0), {}, FastGDValueError, "'lam_min' must be > 0"),
    (theory.sgd_ms_operator, (_X, 0.1), {"batch_size": 4}, FastGDValueError,
     "'batch_size' must be an integer <= 3"),
    (theory.sgd_ms_operator, (_X, 0.1), {"batch_size": 0}, FastGDValueError, "'batch_size'"),
    (theory.sgd_ms_operator, (_X, 0.1), {"replacement": "no"}, FastGDTypeError,
     "'replacement'"),
    (theory.sgd_ms_operator, (_X, 0.1), {"momentum": 1.5}, FastGDValueError, "'momentum'"),
    (theory.sgd_ms_critical_lr, (_X,), {"method": "newton"}, FastGDValueError, "'method'"),
    (theory.sgd_ms_critical_lr, (_X,), {"method": "closed", "momentum": 0.5},
     FastGDValueError, "'method'"),
    (theory.sgd_ms_critical_lr, (np.zeros((4, 2)),), {}, FastGDValueError, "'X'"),
    (theory.sgd_ms_error, (_X, _Y, 0.1, 2.5), {}, FastGDTypeError, "'steps'"),
    (theory.sgd_stationary_loss, (_X, _Y, 0.0), {}, FastGDValueError, "'lr' must be > 0"),
    (theory.sgd_as_critical_lr, (_X,), {"order": "random"}, FastGDValueError, "'order'"),
    (theory.sgd_as_critical_lr, (_X,), {"seeds": 1}, FastGDValueError, "'seeds'"),
    (theory.sgd_as_critical_lr, (_X, _Y[:2]), {}, FastGDValueError, "'y'"),
    (theory.sgd_as_critical_lr, (_X,), {"confidence": 1.0}, FastGDValueError,
     "'confidence'"),
    (theory.sgd_as_critical_lr, (_X,), {"epochs": 0}, FastGDValueError, "'epochs'"),
    (theory.lsp_lambda_max, (_X, _Y), {"leak": 0.0}, FastGDValueError, "'leak' must be > 0"),
    (theory.lsp_lambda_max, (_X, _Y), {"alpha": -1.0}, FastGDValueError, "'alpha'"),
    (theory.lsp_lambda_max, (_X, _Y), {"window": 10, "presentations": 5}, FastGDValueError,
     "'window' must be an integer <= 5"),
    (theory.lsp_lambda_max, (_X, _Y), {"order": "sorted"}, FastGDValueError, "'order'"),
    (theory.power_lambda_max, (_X,), {"tol": 0.0}, FastGDValueError, "'tol' must be > 0"),
    (theory.power_lambda_max, (_X,), {"max_iter": 0}, FastGDValueError, "'max_iter'"),
    (theory.limits, (_X,), {"batch_size": 9}, FastGDValueError, "'batch_size'"),
    (theory.limits, (_X,), {"order": "any"}, FastGDValueError, "'order'"),
]


@pytest.mark.parametrize("func,args,kwargs,exc,fragment", BAD,
                         ids=[f"{b[0].__name__}-{i}" for i, b in enumerate(BAD)])
def test_bad_input(no_kernels, func, args, kwargs, exc, fragment):
    """Each function rejects bad input with a clear error, before any kernel runs."""
    with pytest.raises(exc) as info:
        func(*args, **kwargs)
    msg = str(info.value)
    assert msg.startswith(f"{func.__name__}: '")
    assert fragment in msg
    assert "; got " in msg and msg.endswith(".")


@pytest.mark.parametrize("d, beta, nesterov", [(6, 0.9, False), (8, 0.5, True), (10, 0.9, False)])
def test_ms_spectral_radius_of_large_operators_equals_all_eigenvalues(d, beta, nesterov,
                                                                       monkeypatch):
    """Above _RHO_DENSE the mean-square operator's spectral radius comes from ARPACK
    alone: it equals the largest |eigenvalue| of the dense spectrum to 1e-12 relative,
    at the momentum limit and 1e-6 around it (where rho - 1 decides brentq's root), and
    the limit brackets rho = 1 by the dense spectrum; where ARPACK does not converge the
    dense spectrum answers."""
    import scipy.sparse.linalg as sla

    from fastgd.theory import mean_square as MS

    rng = np.random.default_rng(d)
    X = rng.normal(size=(60, d)) * np.geomspace(1.0, 4.0, d)
    lam, V = np.linalg.eigh(X.T @ X / 60)
    root = theory.sgd_ms_critical_lr(X, momentum=beta, nesterov=nesterov)
    for f in (1 - 1e-6, 1.0, 1 + 1e-6):
        T = MS._ms_matrix(X @ V, np.diag(lam), root * f, 1.0, beta, nesterov)
        assert T.shape[0] > MS._RHO_DENSE
        dense = float(np.abs(np.linalg.eigvals(T)).max())
        assert MS._rho(T) == pytest.approx(dense, rel=1e-12)
        if f != 1.0:
            assert (dense < 1.0) == (f < 1.0)

    def fail(*a, **k):
        raise sla.ArpackNoConvergence("no", np.zeros(0), np.zeros(0))

    monkeypatch.setattr(sla, "eigs", fail)
    assert MS._rho(T) == float(np.abs(np.linalg.eigvals(T)).max())


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_ms_operator_matrix_free_equals_dense(nesterov, monkeypatch):
    """The matrix-free momentum mean-square operator (_ms_apply: E[Z S Z^T] block by
    block) equals the dense matrix's product on arbitrary (non-symmetric) vectors to
    rounding, for i.i.d. batches (c = 1) and subsets (c < 1); the momentum limit from it
    equals the limit from the dense spectrum alone to 1e-11 relative."""
    from fastgd.theory import mean_square as MS

    rng = np.random.default_rng(5)
    for r in (1, 4, 9):
        X = rng.normal(size=(40, r)) * np.geomspace(1.0, 3.0, r)
        lam, V = np.linalg.eigh(X.T @ X / 40)
        for c in (1.0, 0.3):
            T = MS._ms_matrix(X @ V, np.diag(lam), 0.07, c, 0.8, nesterov)
            f = MS._ms_apply(X @ V, np.diag(lam), 0.07, c, 0.8, nesterov)
            for _ in range(3):
                v = rng.normal(size=T.shape[0])
                np.testing.assert_allclose(f(v), T @ v, rtol=0,
                                           atol=1e-13 * np.abs(T @ v).max())
    X = rng.normal(size=(50, 7)) * np.geomspace(1.0, 3.0, 7)
    fast = theory.sgd_ms_critical_lr(X, momentum=0.7, nesterov=nesterov)
    monkeypatch.setattr(MS, "_RHO_DENSE", 10**9)  # every rho from all eigenvalues
    assert fast == pytest.approx(theory.sgd_ms_critical_lr(X, momentum=0.7,
                                                            nesterov=nesterov), rel=1e-11)
