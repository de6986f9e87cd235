"""Shared helpers of :mod:`fastgd.theory`: argument checks, eigendecompositions of
H = X^T X / P, the range of H, and the batch constant c of the mean-square operator."""

from __future__ import annotations

import numpy as np
import scipy.linalg

from fastgd import validate as V

_FLAT = 1e-12  # eigenvalues below _FLAT * lambda_max are flat directions


def _brentq(*args, **kwargs):
    """``scipy.optimize.brentq``, imported on first use (scipy.optimize would slow down
    ``import fastgd``, and only the mean-square and almost-sure limits need it)."""
    import scipy.optimize

    return scipy.optimize.brentq(*args, **kwargs)


def _x_only(func, X, bias):
    """Validate X alone (no labels) and append the bias column; returns (X, H)."""
    X = V.design(func, X)
    bias = V.boolean(func, "bias", bias)
    if bias:
        X = np.ascontiguousarray(np.hstack([X, np.ones((X.shape[0], 1))]))
    return X, X.T @ X / X.shape[0]


def _eig(H):
    lam, U = scipy.linalg.eigh(H)
    return np.maximum(lam, 0.0), U


def _nonzero(func, lam):
    if not lam[-1] > 0:
        raise V.fail(func, "X", "not identically zero", "H = 0 (every rate is stable)")


def _reduce(X, H):
    """Coordinates of the range of H: returns (X_r (P, r), eigenvalues, U_r).

    Every x_p lies in the range of H, so the dynamics of w - w* outside it are frozen
    (flat directions: the error there never moves) and do not affect stability.
    """
    lam, U = _eig(H)
    keep = lam > _FLAT * lam[-1]
    U_r = U[:, keep]
    return np.ascontiguousarray(X @ U_r), lam[keep], U_r


def _batch_c(func, P, batch_size, replacement):
    """c in E[H_B (x) H_B] = (1 - c) H (x) H + c (1/P) sum_i H_i (x) H_i."""
    B = V.integer(func, "batch_size", batch_size, minimum=1, maximum=P)
    replacement = V.boolean(func, "replacement", replacement)
    if replacement:
        return B, 1.0 / B
    if P == 1:
        return B, 0.0
    return B, (P - B) / (B * (P - 1.0))


def _lr(func, lr):
    return V.real(func, "lr", lr, positive=True)


def _beta(func, beta):
    return V.real(func, "beta", beta, nonneg=True, below=1.0)
