"""Batch GD (fastgd.gd): the lecture's numbers, the closed form, and the naive reference."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import fastgd as fg
import naive

DELTA = 0.05  # relative margin around a stability boundary
SPECTRA = {1: [0.7], 2: [1.0, 0.1], 5: [3.0, 1.0, 0.5, 0.2, 0.05]}


def problem(d, bias, seed=0, P=30):
    """A small problem with a known spectrum; the bias runs get non-zero-mean inputs."""
    ds = fg.gaussian_data(P, SPECTRA[d], seed=seed, angle=0.4)
    X = ds.X + (0.3 * np.arange(1, d + 1) if bias else 0.0)
    return X, ds.y


def lam_max(X, bias):
    return fg.spectrum(X, bias=bias).lambda_max


def assert_clean(run):
    """Divergence is a result: no NaN anywhere in a Run."""
    assert not np.any(np.isnan(run.w)) and np.all(np.isfinite(run.w))
    assert not np.isnan(run.loss) and not np.isnan(run.excess)
    assert not np.any(np.isnan(run.losses))
    if run.trajectory is not None:
        assert not np.any(np.isnan(run.trajectory))


# ------------------------------------------------------------- the lecture's numbers


def test_lecture_eta_1_5_converges(lecture):
    X, y = lecture
    r = fg.gd(X, y, 1.5, 1000, tol=1e-10)
    assert r.status == fg.Status.CONVERGED and r.converged and not r.diverged
    assert r.diverged_at == -1
    assert 0 < r.steps_to_tol < 1000
    assert len(r.losses) == r.steps_to_tol + 1
    wstar, estar = naive.minimiser(X, y)
    np.testing.assert_allclose(r.w, wstar, rtol=1e-4)
    assert r.excess <= 1e-10 * (r.losses[0] - estar)
    np.testing.assert_allclose(r.loss, estar + r.excess, rtol=1e-14)
    assert r.method == "gd" and r.unit == "step" and r.lr == 1.5


def test_lecture_eta_2_5_diverges_cleanly(lecture):
    X, y = lecture
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        r = fg.gd(X, y, 2.5, 1000, record=True)
    assert r.status == fg.Status.DIVERGED and r.diverged and not r.converged
    assert r.diverged_at >= 0 and r.steps_to_tol == -1
    assert r.loss == np.inf and r.excess == np.inf
    assert len(r.losses) == r.diverged_at + 1 and r.losses[-1] == np.inf
    assert np.all(np.isfinite(r.losses[:-1]))
    assert r.trajectory.shape == (r.diverged_at + 1, 2)
    assert_clean(r)
    # growth along the steep direction: |1 - 2.5 * 0.84| = 1.1 per step
    assert r.losses[-2] > 1e3 * r.losses[0]


@pytest.mark.parametrize("factor", [1 - DELTA, 1 + DELTA])
def test_lecture_boundary_both_sides(lecture, factor):
    X, y = lecture
    lr = factor * 2 / 0.84
    r = fg.gd(X, y, lr, 5000)
    assert r.diverged == (factor > 1)
    assert r.converged == (factor < 1)
    assert_clean(r)


def test_lecture_bias_limit_is_2(lecture):
    """With the bias, eta_max = 2.0: eta = 2.2 converges without it and diverges with it."""
    X, y = lecture
    assert fg.spectrum(X, bias=True).eta_max == pytest.approx(2.0, rel=1e-12)
    assert fg.gd(X, y, 2.2, 3000).converged
    r = fg.gd(X, y, 2.2, 3000, bias=True, w0=[0.0, 0.0, 1.0])
    assert r.diverged and r.diverged_at >= 0 and r.w.shape == (3,)
    assert_clean(r)
    # with zero-mean inputs, balanced labels and w0 = 0 the bias direction is never
    # excited: the run converges although eta > eta_max (why the lecture needs w0 != 0)
    assert fg.gd(X, y, 2.2, 3000, bias=True).converged
    # below the limit a non-zero initial bias decays
    r = fg.gd(X, y, 1.9, 3000, bias=True, w0=[0.0, 0.0, 1.0], tol=1e-10)
    assert r.converged and abs(r.w[2]) < 1e-4


def test_w0_length_d_gets_zero_bias(lecture):
    X, y = lecture
    a = fg.gd(X, y, 1.0, 20, bias=True, w0=[0.1, -0.2], tol=0.0, record=True)
    b = fg.gd(X, y, 1.0, 20, bias=True, w0=[0.1, -0.2, 0.0], tol=0.0, record=True)
    assert np.array_equal(a.trajectory, b.trajectory)
    # recorded as w* + (w0 - w*): equal to w0 up to rounding
    np.testing.assert_allclose(a.trajectory[0], [0.1, -0.2, 0.0], rtol=0, atol=1e-15)


def test_default_w0_is_zero(lecture):
    X, y = lecture
    r = fg.gd(X, y, 1.0, 3, record=True, tol=0.0)
    np.testing.assert_array_equal(r.trajectory[0], [0.0, 0.0])
    np.testing.assert_allclose(r.losses[0], 0.5 * np.mean(y ** 2), rtol=1e-14)


def test_steps_zero(lecture):
    X, y = lecture
    r = fg.gd(X, y, 1.0, 0, record=True)
    assert r.status == fg.Status.BOUNDED and r.losses.shape == (1,)
    assert r.trajectory.shape == (1, 2)
    np.testing.assert_array_equal(r.w, [0.0, 0.0])


def test_large_start_is_not_divergence(lecture):
    """The blow-up scale is max(E(w0), E(0)): a run from far away that converges is fine."""
    X, y = lecture
    r = fg.gd(X, y, 2.0, 3000, w0=[1e4, -1e4])
    assert r.converged and r.diverged_at == -1


def test_blowup_threshold(lecture):
    """Divergence is declared when E > blowup * max(E(w0), E(0)) (never earlier)."""
    X, y = lecture
    for blowup in (1e2, 1e6, 1e12):
        r = fg.gd(X, y, 2.5, 2000, blowup=blowup)
        t = r.diverged_at
        scale = max(r.losses[0], 0.5 * np.mean(y ** 2))
        assert r.losses[t - 1] <= blowup * scale  # not flagged one step too late
        full = fg.gd(X, y, 2.5, t, blowup=np.inf, tol=0.0).losses
        assert full[t] > blowup * scale


# ------------------------------------------------------------------- closed form

# lr / lambda_max: monotone for every direction, oscillating (converging), diverging
REGIMES = {"monotone": 0.5, "oscillating": 1.5, "diverging": 2.3}


@pytest.mark.parametrize("regime", sorted(REGIMES))
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("d", [1, 2, 5])
def test_closed_form(d, bias, regime):
    """w_t - w* = V diag((1 - eta lambda_i)^t) V^T (w_0 - w*), every step.

    Tolerance: 1e-12 relative to ||w_t - w*|| (normwise) plus 1e-12 x (||w_0 - w*|| +
    ||w*||) absolute.  Reason for the absolute part: a Run stores w = w* + e, so once
    the error e has shrunk by many orders the rounding of that sum (eps ||w*||) and of
    w* itself (eps ||w_0 - w*|| times the conditioning of the least-squares solve)
    dominate the subtraction w_t - w*; the kernel's e is accurate to the last bits.
    """
    X, y = problem(d, bias)
    rng = np.random.default_rng(d)
    w0 = rng.standard_normal(d + int(bias))
    lr = REGIMES[regime] / lam_max(X, bias)
    steps = 60
    r = fg.gd(X, y, lr, steps, w0=w0, bias=bias, record=True, tol=0.0, blowup=np.inf)
    assert r.trajectory.shape == (steps + 1, d + int(bias))
    ref, wstar = naive.gd_closed_form(X, y, lr, steps, w0=w0, bias=bias)
    floor = np.linalg.norm(w0 - wstar) + np.linalg.norm(wstar)
    naive.assert_rows_close(r.trajectory - wstar, ref - wstar, rtol=1e-12, floor=floor,
                            what="w_t - w*")
    # the relative check is not vacuous: the error ends many orders away from the floor
    # for the diverging run, and the converging runs end far below ||w_0 - w*||
    end = np.linalg.norm(ref[-1] - wstar) / np.linalg.norm(w0 - wstar)
    assert end > 1e3 if regime == "diverging" else end < 0.5
    assert r.status == (fg.Status.BOUNDED)


# --------------------------------------------------------- naive reference, momentum

METHODS = [(0.0, False), (0.5, False), (0.9, False), (0.5, True), (0.9, True)]


@pytest.mark.parametrize("momentum, nesterov", METHODS)
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("d", [1, 2, 5])
def test_matches_naive(d, bias, momentum, nesterov):
    """Step for step against plain NumPy GD computed from the data (PyTorch momentum).

    Tolerance 1e-12 normwise relative to ||w_t|| (the reference's gradient X^T(Xw - y)/P
    and the kernel's H(w - w*) differ in rounding only).
    """
    X, y = problem(d, bias, seed=d + 10)
    lr = 0.7 / lam_max(X, bias)
    w0 = np.linspace(-1.0, 1.0, d + int(bias))
    steps = 80
    r = fg.gd(X, y, lr, steps, w0=w0, bias=bias, momentum=momentum, nesterov=nesterov,
              record=True, tol=0.0)
    traj, losses = naive.gd_linear(X, y, lr, steps, w0=w0, bias=bias, momentum=momentum,
                                   nesterov=nesterov)
    naive.assert_rows_close(r.trajectory, traj, rtol=1e-12, what="trajectory")
    np.testing.assert_allclose(r.losses, losses, rtol=1e-12)
    np.testing.assert_array_equal(r.w, r.trajectory[-1])
    assert r.status == fg.Status.BOUNDED and r.losses.shape == (steps + 1,)


def test_one_dimensional_input_vector():
    """X given as a 1-D vector means d = 1."""
    X, y = problem(1, False)
    a = fg.gd(X[:, 0], y, 0.5, 30, record=True, tol=0.0)
    b = fg.gd(X, y, 0.5, 30, record=True, tol=0.0)
    assert np.array_equal(a.trajectory, b.trajectory)


@pytest.mark.parametrize("momentum", [0.3, 0.8])
@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_limits(lecture, momentum, nesterov):
    """Heavy ball: eta lambda < 2(1 + beta); Nesterov: < (2 + 2 beta)/(1 + 2 beta)."""
    X, y = lecture
    b = momentum
    limit = (2 + 2 * b) / (1 + 2 * b) if nesterov else 2 * (1 + b)
    for factor, diverges in [(1 - DELTA, False), (1 + DELTA, True)]:
        lr = factor * limit / 0.84
        r = fg.gd(X, y, lr, 5000, momentum=momentum, nesterov=nesterov)
        assert r.diverged == diverges, (lr, r.status)
        assert_clean(r)
