"""Batch gradient descent with momentum (heavy ball, Nesterov) on a quadratic.

Per eigenvalue lambda of H the error and the momentum buffer evolve by a 2x2 companion
matrix; the run is stable iff its spectral radius is below 1 (the Jury conditions).
PyTorch's ``SGD`` form with dampening 0; Polyak's optimal parameters (B. T. Polyak,
"Some methods of speeding up the convergence of iteration methods", 1964).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fastgd import validate as V
from fastgd.theory._common import _FLAT, _beta, _lr

__all__ = ["HeavyBall", "momentum_lr_max", "momentum_rate", "optimal_heavy_ball"]


def momentum_lr_max(lam_max, beta, nesterov=False) -> float:
    """Largest stable rate of batch GD with momentum on a quadratic with top curvature
    ``lam_max`` (PyTorch's ``SGD`` form, dampening 0).

    Heavy ball: buf <- beta buf + g, w <- w - eta buf.  Per eigenvalue lambda the
    error obeys e' = (1 + beta - eta lambda) e - beta e_prev; the companion matrix's
    characteristic polynomial z^2 - (1 + beta - eta lambda) z + beta satisfies the
    Jury conditions iff 0 < eta lambda < 2 (1 + beta).

    Nesterov (``nesterov=True``): w <- w - eta (g + beta buf) with buf already
    updated.  State (e, buf): [[1 - eta lambda (1 + beta), -eta beta^2], [lambda, beta]],
    trace 1 + beta - eta lambda (1 + beta), determinant beta (1 - eta lambda); Jury:
    0 < eta lambda < (2 + 2 beta)/(1 + 2 beta).

    beta = 0 gives 2/lam_max for both.

    Examples
    --------
    >>> from fastgd.theory import momentum_lr_max
    >>> momentum_lr_max(1.0, 0.5), momentum_lr_max(1.0, 0.5, nesterov=True)
    (3.0, 1.5)
    """
    f = "momentum_lr_max"
    lam_max = V.real(f, "lam_max", lam_max, positive=True)
    beta = _beta(f, beta)
    nesterov = V.boolean(f, "nesterov", nesterov)
    if nesterov:
        return float((2.0 + 2.0 * beta) / ((1.0 + 2.0 * beta) * lam_max))
    return float(2.0 * (1.0 + beta) / lam_max)


def _companion(lr, lam, beta, nesterov):
    """2x2 per-eigenvalue matrices on the state (e, buf), shape (n, 2, 2)."""
    lam = np.asarray(lam, dtype=np.float64)
    M = np.empty(lam.shape + (2, 2))
    if nesterov:
        M[..., 0, 0] = 1.0 - lr * lam * (1.0 + beta)
        M[..., 0, 1] = -lr * beta * beta
    else:
        M[..., 0, 0] = 1.0 - lr * lam
        M[..., 0, 1] = -lr * beta
    M[..., 1, 0] = lam
    M[..., 1, 1] = beta
    return M


def momentum_rate(lr, eigenvalues, beta, nesterov=False) -> float:
    """Asymptotic error factor per step of batch GD with momentum: the largest spectral
    radius of the per-eigenvalue 2x2 matrices (see :func:`momentum_lr_max`).

    ``eigenvalues``: a number or array of curvatures (e.g. ``fg.spectrum(X).eigenvalues``);
    zero eigenvalues (flat directions) are ignored.  < 1 iff the run converges.

    Examples
    --------
    >>> from fastgd.theory import momentum_rate
    >>> round(momentum_rate(1.0, [0.1, 1.0], 0.5), 6)  # complex pairs: |z| = sqrt(beta)
    0.707107
    """
    f = "momentum_rate"
    lr = _lr(f, lr)
    lam = V.as_float_array(f, "eigenvalues", V.atleast_1d(f, "eigenvalues", eigenvalues), 1)
    if np.any(lam < 0):
        raise V.fail(f, "eigenvalues", ">= 0", f"min {lam.min():g}")
    beta = _beta(f, beta)
    nesterov = V.boolean(f, "nesterov", nesterov)
    lam = lam[lam > _FLAT * lam.max()] if lam.max() > 0 else lam[:0]
    if lam.size == 0:
        return float(beta)
    z = np.linalg.eigvals(_companion(lr, lam, beta, nesterov))
    return float(np.abs(z).max())


@dataclass(frozen=True)
class HeavyBall:
    """Optimal heavy-ball parameters for a spectrum [lam_min, lam_max] (Polyak 1964).

    lr = 4/(sqrt(L) + sqrt(mu))^2, beta = ((sqrt(kappa) - 1)/(sqrt(kappa) + 1))^2,
    rate = (sqrt(kappa) - 1)/(sqrt(kappa) + 1): the error shrinks like rate^t (times a
    factor growing linearly in t at the two ends of the spectrum, where the companion
    matrix has a double eigenvalue).  PyTorch's form (buf <- beta buf + g,
    w <- w - lr buf) uses the same lr and beta as Polyak's w' = w - lr g + beta (w - w_prev).

    Examples
    --------
    >>> from fastgd.theory import optimal_heavy_ball
    >>> hb = optimal_heavy_ball(1.0, 100.0)
    >>> round(hb.rate, 6), round(hb.rate ** 2 - hb.beta, 12)
    (0.818182, 0.0)
    """

    lr: float
    beta: float
    rate: float


def optimal_heavy_ball(lam_min, lam_max) -> HeavyBall:
    """The (lr, beta) minimising the heavy-ball rate for curvatures in [lam_min, lam_max].

    Compare with plain GD's best (kappa - 1)/(kappa + 1) (:func:`minimax_lr`).

    Examples
    --------
    >>> hb = optimal_heavy_ball(1.0, 100.0)
    >>> round(hb.lr, 6), round(hb.beta, 6), round(hb.rate, 6)
    (0.033058, 0.669421, 0.818182)
    """
    f = "optimal_heavy_ball"
    mu = V.real(f, "lam_min", lam_min, positive=True)
    L = V.real(f, "lam_max", lam_max, positive=True)
    if mu > L:
        raise V.fail(f, "lam_min", f"<= lam_max = {L:g}", mu)
    if not L / mu < 1e300:
        raise V.fail(f, "lam_min", "> lam_max / 1e300 (a finite condition number)", mu)
    sk = math.sqrt(L / mu)
    rate = (sk - 1.0) / (sk + 1.0)
    return HeavyBall(lr=4.0 / (math.sqrt(L) + math.sqrt(mu)) ** 2, beta=rate * rate, rate=rate)
