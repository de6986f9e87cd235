"""Hessian and its spectrum for the linear unit (scipy.linalg.eigh).

With E(w) = 1/(2P) sum_p (y_p - w.x_p)^2 the Hessian is H = X^T X / P (the input
covariance for centred inputs), independent of w and y.  Batch GD with rate eta
multiplies the error along eigenvector i by (1 - eta*lambda_i) per step
(Efficient BackProp, eqs. 20-39): it converges iff eta < eta_max = 2/lambda_max.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

from fastgd import validate as V


def _augment(X, bias):
    if bias:
        return np.hstack([X, np.ones((X.shape[0], 1))])
    return X


def hessian(X, *, bias=False):
    """H = X^T X / P, with a constant input 1 appended when ``bias=True``.

    Parameters
    ----------
    X : array (P, d)
    bias : bool
        Append a constant input (the unit's bias).  H is then the augmented
        second-moment matrix, of shape (d + 1, d + 1).

    Examples
    --------
    >>> import fastgd as fg
    >>> fg.hessian(fg.lecture_data().X).shape
    (2, 2)
    """
    return _hessian("hessian", X, bias)


def _hessian(f, X, bias):
    """hessian() with errors named after the public function ``f``."""
    X = _augment(V.design(f, X), V.boolean(f, "bias", bias))
    return X.T @ X / X.shape[0]


_REGIMES = np.array(["flat", "monotone", "one-step", "oscillating", "marginal", "diverging"])


@dataclass(frozen=True)
class Spectrum:
    """Eigen-decomposition of H = X^T X / P.

    Attributes
    ----------
    eigenvalues : (d,) ascending
    eigenvectors : (d, d), columns
    lambda_max, lambda_min : float
    condition_number : float
        lambda_max / lambda_min (inf when H is singular).
    eta_opt : float
        1/lambda_max, the lecture's "optimal" rate (one step along the steepest
        direction; Efficient BackProp eq. 39).
    eta_max : float
        2/lambda_max: batch GD diverges above it (eq. 38).
    eta_minimax : float
        2/(lambda_max + lambda_min): minimises the worst contraction max_i |1 - eta lambda_i|.

    When H = 0 (X all zeros) the loss does not depend on w: no rate diverges and
    ``eta_opt``, ``eta_max`` and ``eta_minimax`` are ``inf``.

    Examples
    --------
    >>> import fastgd as fg
    >>> s = fg.spectrum(fg.lecture_data().X)
    >>> round(s.eta_max, 5)          # 2 / lambda_max
    2.38095
    """

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray

    @property
    def lambda_max(self) -> float:
        return float(self.eigenvalues[-1])

    @property
    def lambda_min(self) -> float:
        return float(self.eigenvalues[0])

    @property
    def condition_number(self) -> float:
        lo = self.lambda_min
        return float(self.lambda_max / lo) if lo > 0 else float("inf")

    @property
    def eta_opt(self) -> float:
        lam = self.lambda_max
        return 1.0 / lam if lam > 0 else float("inf")

    @property
    def eta_max(self) -> float:
        lam = self.lambda_max
        return 2.0 / lam if lam > 0 else float("inf")

    @property
    def eta_minimax(self) -> float:
        lam = self.lambda_max + self.lambda_min
        return 2.0 / lam if lam > 0 else float("inf")

    def multipliers(self, lr):
        """Per-direction error multipliers 1 - lr*lambda_i of one batch GD step."""
        lr = V.real("Spectrum.multipliers", "lr", lr, positive=True)
        with np.errstate(over="ignore"):  # -inf for a rate whose product overflows
            return 1.0 - lr * self.eigenvalues

    def regime(self, lr, *, rtol=1e-9):
        """Per-direction regime of batch GD at rate ``lr`` (array of str, ascending lambda).

        ``"monotone"`` (eta*lambda < 1), ``"one-step"`` (= 1), ``"oscillating"``
        (1 < eta*lambda < 2, converging), ``"marginal"`` (= 2: oscillates forever),
        ``"diverging"`` (> 2), ``"flat"`` (lambda = 0: the error never moves).
        Equalities hold to relative tolerance ``rtol``.
        """
        lr = V.real("Spectrum.regime", "lr", lr, positive=True)
        rtol = V.real("Spectrum.regime", "rtol", rtol, nonneg=True)
        with np.errstate(over="ignore"):
            z = lr * self.eigenvalues
        tiny = 1e-14 * max(self.lambda_max, 1e-300)
        code = np.where(self.eigenvalues <= tiny, 0,
               np.where(np.abs(z - 1) <= rtol, 2,
               np.where(z < 1, 1,
               np.where(np.abs(z - 2) <= 2 * rtol, 4, np.where(z < 2, 3, 5)))))
        return _REGIMES[code]


def spectrum(X, *, bias=False) -> Spectrum:
    """Spectrum of H = X^T X / P via ``scipy.linalg.eigh`` (see :class:`Spectrum`).

    Examples
    --------
    >>> import fastgd as fg
    >>> s = fg.spectrum(fg.lecture_data().X)
    >>> round(s.lambda_max, 12), round(s.eta_max, 4)
    (0.84, 2.381)
    """
    H = _hessian("spectrum", X, bias)
    lam, vec = scipy.linalg.eigh(H)
    lam = np.maximum(lam, 0.0)  # H is PSD: clip rounding below 0
    return Spectrum(lam, vec)
