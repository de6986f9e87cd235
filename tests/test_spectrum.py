"""hessian() and spectrum(): H = X^T X / P, eta_opt = 1/lambda_max, eta_max = 2/lambda_max."""

from __future__ import annotations

import numpy as np
import pytest

import fastgd as fg

DELTA = 0.05  # margin around the boundaries 1/lambda and 2/lambda


def test_hessian_matches_definition(rng):
    X = rng.standard_normal((17, 3))
    np.testing.assert_allclose(fg.hessian(X), X.T @ X / 17, rtol=1e-14)
    # 1-D input means d = 1
    x = rng.standard_normal(9)
    np.testing.assert_allclose(fg.hessian(x), [[x @ x / 9]], rtol=1e-14)


def test_hessian_bias_is_augmented_second_moment(rng):
    X = rng.standard_normal((11, 2)) + [1.0, -2.0]
    Hb = fg.hessian(X, bias=True)
    Xa = np.hstack([X, np.ones((11, 1))])
    assert Hb.shape == (3, 3)
    np.testing.assert_allclose(Hb, Xa.T @ Xa / 11, rtol=1e-14)
    np.testing.assert_allclose(Hb[2, :2], X.mean(axis=0), rtol=1e-14)
    assert Hb[2, 2] == 1.0


def test_spectrum_lecture(lecture):
    s = fg.spectrum(lecture.X)
    assert isinstance(s, fg.Spectrum)
    np.testing.assert_allclose(s.eigenvalues, [0.036, 0.84], rtol=0, atol=1e-12)
    assert np.all(np.diff(s.eigenvalues) > 0)  # ascending
    assert s.lambda_max == s.eigenvalues[-1] and s.lambda_min == s.eigenvalues[0]
    np.testing.assert_allclose(s.eta_opt, 1 / 0.84, rtol=1e-12)
    np.testing.assert_allclose(s.eta_max, 2 / 0.84, rtol=1e-12)
    assert round(s.eta_max, 2) == 2.38  # the lecture's number
    np.testing.assert_allclose(s.condition_number, 0.84 / 0.036, rtol=1e-11)
    np.testing.assert_allclose(s.eta_minimax, 2 / (0.84 + 0.036), rtol=1e-12)
    np.testing.assert_allclose(s.multipliers(1.5), 1 - 1.5 * np.array([0.036, 0.84]),
                               rtol=1e-12)


@pytest.mark.parametrize("d", [1, 2, 5])
def test_spectrum_eigendecomposition(d, rng):
    X = rng.standard_normal((20, d)) @ rng.standard_normal((d, d))
    s = fg.spectrum(X)
    H = X.T @ X / 20
    lam, V = s.eigenvalues, s.eigenvectors
    assert lam.shape == (d,) and V.shape == (d, d)
    assert np.all(np.diff(lam) >= 0)
    np.testing.assert_allclose(H @ V, V * lam, rtol=0, atol=1e-12 * lam[-1])
    np.testing.assert_allclose(V.T @ V, np.eye(d), rtol=0, atol=1e-12)
    np.testing.assert_allclose(lam, np.linalg.eigvalsh(H), rtol=1e-12)
    np.testing.assert_allclose(s.condition_number, lam[-1] / lam[0], rtol=1e-12)


def test_singular_condition_number_is_inf():
    a = np.arange(5.0)
    s = fg.spectrum(np.column_stack([a, -a]))
    assert s.lambda_min == 0.0  # clipped at 0 (H is PSD)
    assert s.condition_number == np.inf
    assert list(s.regime(0.05)) == ["flat", "monotone"]  # lambda_max = 12


def test_spectrum_bias_lecture(lecture):
    """Zero-mean inputs: the augmented matrix gains an eigenvalue of exactly 1."""
    s = fg.spectrum(lecture.X, bias=True)
    np.testing.assert_allclose(s.eigenvalues, [0.036, 0.84, 1.0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(s.eta_max, 2.0, rtol=1e-12)
    np.testing.assert_allclose(s.eta_opt, 1.0, rtol=1e-12)
    # the new eigenvector is the bias axis
    np.testing.assert_allclose(np.abs(s.eigenvectors[:, -1]), [0, 0, 1], rtol=0, atol=1e-12)


def test_spectrum_bias_nonzero_mean_differs(lecture):
    Xs = lecture.X + [0.5, 0.0]
    lam = fg.spectrum(Xs, bias=True).eigenvalues
    Xa = np.hstack([Xs, np.ones((100, 1))])
    np.testing.assert_allclose(lam, np.linalg.eigvalsh(Xa.T @ Xa / 100), rtol=1e-12)
    assert not np.any(np.isclose(lam, 1.0))


# regimes: eta * lambda on both sides of 1 and 2, with a margin (never exactly on them
# except for the explicit equality cases)
REGIME_CASES = [
    (0.5, ["monotone", "monotone"]),
    ((1 - DELTA) / 0.84, ["monotone", "monotone"]),
    (1 / 0.84, ["monotone", "one-step"]),
    ((1 + DELTA) / 0.84, ["monotone", "oscillating"]),
    ((2 - DELTA) / 0.84, ["monotone", "oscillating"]),
    (2 / 0.84, ["monotone", "marginal"]),
    ((2 + DELTA) / 0.84, ["monotone", "diverging"]),
    ((1 - DELTA) / 0.036, ["monotone", "diverging"]),
    ((1 + DELTA) / 0.036, ["oscillating", "diverging"]),
    ((2 + DELTA) / 0.036, ["diverging", "diverging"]),
]


@pytest.mark.parametrize("lr, expected", REGIME_CASES)
def test_regime_labels(lecture, lr, expected):
    s = fg.spectrum(lecture.X)
    assert list(s.regime(lr)) == expected


def test_regime_matches_gd_behaviour(lecture):
    """The labels say what batch GD does: sign pattern and growth of each direction."""
    X, y = lecture
    s = fg.spectrum(X)
    for lr, converge in [((2 - DELTA) / 0.84, True), ((2 + DELTA) / 0.84, False)]:
        r = fg.gd(X, y, lr, 3000)
        assert r.converged == converge and r.diverged == (not converge)
        assert ("diverging" in s.regime(lr)) == (not converge)


def test_regime_rejects_bad_lr(lecture):
    s = fg.spectrum(lecture.X)
    with pytest.raises(fg.FastGDValueError, match=r"'lr' must be > 0"):
        s.regime(0.0)
    with pytest.raises(fg.FastGDTypeError, match=r"'lr' must be a real number"):
        s.regime("1.0")
