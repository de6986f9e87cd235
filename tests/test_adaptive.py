"""The frozen-preconditioner stability limit of Adam / RMSProp (fastgd.theory.adaptive)
against a plain NumPy Adam on a real dataset (standardised diabetes).

Adam here is PyTorch's / optax's: bias-corrected moments, eps added to sqrt(v_hat).  The
run takes T steps at a small rate, then freezes v_hat and the bias factor 1 - beta1^T and
continues at eta: stable at 0.98 eta*, diverged at 1.02 eta* (eta* from the closed form).
"""

from __future__ import annotations

import numpy as np
import pytest

import fastgd as fg
from fastgd.theory import adaptive_lr_max, adaptive_threshold, preconditioned_sharpness

sklearn_datasets = pytest.importorskip("sklearn.datasets")


def adam_frozen(X, y, lr_warm, T, lr, steps, beta1, beta2=0.999, eps=1e-8):
    """NumPy Adam on E = 1/(2P) |y - Xw|^2: T steps at ``lr_warm``, then ``steps`` steps at
    ``lr`` with v_hat and the bias factor frozen.  Returns (v_hat, factor, |w_T - w*|,
    |w_end - w*|)."""
    P, d = X.shape
    wstar = np.linalg.lstsq(X, y, rcond=None)[0]
    w, m, v = np.zeros(d), np.zeros(d), np.zeros(d)
    for t in range(1, T + 1):
        g = X.T @ (X @ w - y) / P
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        w = w - lr_warm * (m / (1 - beta1 ** t)) / (np.sqrt(v / (1 - beta2 ** t)) + eps)
    v_hat, factor = v / (1 - beta2 ** T), 1 - beta1 ** T
    e0 = np.linalg.norm(w - wstar)
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(steps):
            g = X.T @ (X @ w - y) / P
            m = beta1 * m + (1 - beta1) * g
            w = w - lr * m / (factor * (np.sqrt(v_hat) + eps))
    return v_hat, factor, e0, np.linalg.norm(w - wstar)


@pytest.fixture(scope="module")
def diabetes():
    X, y = sklearn_datasets.load_diabetes(return_X_y=True)
    return fg.normalize(X), y - y.mean()


@pytest.mark.parametrize("beta1", [0.0, 0.5, 0.9])
@pytest.mark.parametrize("T", [5, 200])
def test_frozen_adam_boundary_matches_closed_form(diabetes, beta1, T):
    X, y = diabetes
    H = X.T @ X / X.shape[0]
    v_hat, factor, _, _ = adam_frozen(X, y, 0.01, T, 0.0, 0, beta1)
    eta = adaptive_lr_max(H, v_hat, beta1=beta1, eps=1e-8, t=T)
    # the frozen preconditioner is the one the closed form used
    assert factor == pytest.approx(1 - beta1 ** T, rel=1e-15)
    _, _, e0, below = adam_frozen(X, y, 0.01, T, 0.98 * eta, 3000, beta1)
    _, _, _, above = adam_frozen(X, y, 0.01, T, 1.02 * eta, 3000, beta1)
    assert below < 10 * e0                     # stable (no growth beyond a transient)
    assert not (above < 1e6 * e0)              # diverged (grew by orders, or overflowed)


def test_threshold_and_sharpness_agree(diabetes):
    X, _ = diabetes
    H = X.T @ X / X.shape[0]
    v_hat = np.linspace(0.5, 2.0, H.shape[0])
    s = preconditioned_sharpness(H, v_hat, beta1=0.9, eps=1e-8, t=7)
    eta = adaptive_lr_max(H, v_hat, beta1=0.9, eps=1e-8, t=7)
    assert s * eta == pytest.approx(adaptive_threshold(1.0, 0.9), rel=1e-12)
    # dropping the bias factor moves the boundary by exactly 1 - beta1^t
    eta_nobias = adaptive_lr_max(H, v_hat, beta1=0.9, eps=1e-8, t=None)
    assert eta_nobias / eta == pytest.approx(1 / (1 - 0.9 ** 7), rel=1e-12)
    # RMSProp with eps = 0 and sqrt(v_hat) = diag(H) is Jacobi-preconditioned GD: its limit
    # is 2 / lambda_max of the correlation matrix D^-1/2 H D^-1/2
    d = np.sqrt(np.diag(H))
    lam = np.linalg.eigvalsh(H / d[:, None] / d[None, :])[-1]
    got = adaptive_lr_max(H, np.diag(H) ** 2, beta1=0.0, eps=0.0)
    assert got == pytest.approx(2 / lam, rel=1e-12)


def test_bad_arguments_are_named():
    with pytest.raises(fg.FastGDValueError, match="beta1"):
        adaptive_threshold(1.0, 1.0)
    with pytest.raises(fg.FastGDValueError, match="v_hat"):
        preconditioned_sharpness(np.eye(2), [1.0, -1.0])
    with pytest.raises(fg.FastGDValueError, match="H"):
        preconditioned_sharpness(np.ones((2, 3)), [1.0, 1.0])
