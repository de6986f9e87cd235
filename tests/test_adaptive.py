"""The frozen-preconditioner stability limit of Adam / RMSProp (fastgd.theory.adaptive)
against a plain NumPy Adam on a real dataset (standardised diabetes).

Adam here is PyTorch's / optax's: bias-corrected moments, eps added to sqrt(v_hat).  The
run takes T steps at a small rate, then freezes v_hat and the bias factor 1 - beta1^T and
continues at eta: stable at 0.98 eta*, diverged at 1.02 eta* (eta* from the closed form).
The same check with fastgd's own Adam kernel (:mod:`fastgd.linear.adaptive`), eta* taken
from the preconditioner each run reports, closes the file.
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


# ------------------------------------------------------- fastgd's own kernel (issue 24)

def _frozen_eta(X, y, beta1, T, pre_lr=0.01):
    """eta* of a run that takes T updates at ``pre_lr`` and freezes: from the frozen
    preconditioner that the run itself reports."""
    from fastgd.linear.adaptive import adaptive_gd

    r = adaptive_gd(X, y, pre_lr, T, betas=(beta1, 0.999), freeze_preconditioner=T,
                    pre_freeze_lr=pre_lr)
    assert r.frozen_at == T and np.all(np.isfinite(r.frozen_v_hat))
    return r, r.frozen_lr_max(X)


@pytest.mark.parametrize("beta1", [0.0, 0.5, 0.9])
@pytest.mark.parametrize("T", [5, 200])
def test_kernel_frozen_boundary_matches_closed_form(diabetes, beta1, T):
    """Done-when of issue 24: with fastgd's Adam kernel, stable at 0.98 eta*, DIVERGED at
    1.02 eta* (eta* from the run's reported preconditioner; the T updates before the
    freeze at 0.01, so the preconditioner is the same at every rate)."""
    from fastgd.linear.adaptive import adaptive_gd, adaptive_sweep

    X, y = diabetes
    r, eta = _frozen_eta(X, y, beta1, T)
    kw = dict(betas=(beta1, 0.999), freeze_preconditioner=T, pre_freeze_lr=0.01)
    res = adaptive_sweep(eta * np.array([0.98, 1.02]), 20000, data=(X, y), **kw)
    assert res.status[0, :, 0].tolist() == [fg.Status.CONVERGED, fg.Status.DIVERGED]
    # every cell froze the preconditioner of the run that defined eta*
    assert np.array_equal(res.meta["frozen_v_hat"][0, :, 0], np.stack([r.frozen_v_hat] * 2))
    # the single runs agree (cells equal runs)
    below = adaptive_gd(X, y, 0.98 * eta, 20000, **kw)
    above = adaptive_gd(X, y, 1.02 * eta, 20000, **kw)
    assert (below.status, above.status) == (fg.Status.CONVERGED, fg.Status.DIVERGED)
    assert above.diverged_at == res.diverged_at[0, 1, 0]


@pytest.mark.parametrize("beta1,T", [(0.0, 5), (0.0, 200), (0.5, 200)])
def test_one_rate_runs_obey_their_own_frozen_limit(diabetes, beta1, T):
    """With one rate for both phases the preconditioner depends on eta: each cell of a
    sweep reports its own, hence its own eta*.  Every cell at or below 0.98 of its eta*
    does not diverge, every cell at or above 1.02 of it diverges, and both kinds exist
    at these settings (at beta1 = 0.9, or 0.5 with T = 5, every rate sits below its own
    limit: no boundary in eta exists, as the issue says it need not)."""
    from fastgd.linear.adaptive import adaptive_sweep

    X, y = diabetes
    H = X.T @ X / X.shape[0]
    lrs = np.geomspace(0.05, 500.0, 60)
    res = adaptive_sweep(lrs, 20000, data=(X, y), betas=(beta1, 0.999),
                         freeze_preconditioner=T)
    vh = res.meta["frozen_v_hat"][0, :, 0]
    ratio = np.array([lr / adaptive_lr_max(H, v, beta1=beta1, t=T) for lr, v in zip(lrs, vh, strict=True)])
    st = res.status[0, :, 0]
    assert np.any(ratio <= 0.98) and np.any(ratio >= 1.02)
    assert not np.any(st[ratio <= 0.98] == fg.Status.DIVERGED)
    assert np.all(st[ratio >= 1.02] == fg.Status.DIVERGED)
