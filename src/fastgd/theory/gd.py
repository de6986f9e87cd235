"""Batch gradient descent on the linear unit, exactly.

In the eigenbasis of H = X^T X / P (loss E(w) = 1/(2P) sum_p (y_p - w.x_p)^2) the
error along direction i is multiplied by 1 - eta*lambda_i per step (LeCun, Bottou, Orr,
Mueller, "Efficient BackProp", 1998, eqs. 20-39): trajectories, losses and step counts
in closed form, the per-direction regimes, and the classical learning rates
(1/lambda_max, 2/lambda_max, the minimax rate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from fastgd import validate as V
from fastgd.engine import cost as _cost
from fastgd.linear import problem as PB
from fastgd.theory._common import _FLAT, _eig, _lr, _nonzero, _x_only

__all__ = ["Regimes", "contraction", "eta_max", "eta_opt", "gd_loss", "gd_steps_to_tol",
           "gd_trajectory", "minimax_lr", "regime", "regimes"]


def _gd_modes(func, X, y, w0, bias):
    prob = PB.prepare(func, X, y, bias)
    d_in = prob.d - int(prob.bias)
    w0 = PB.initial_weights(func, w0, prob, d_in)
    lam, U = _eig(prob.H)
    c = U.T @ (w0 - prob.wstar)
    return prob, lam, U, c


def gd_trajectory(X, y, lr, steps, *, w0=None, bias=False):
    """Batch-GD weights w_0 .. w_steps on the linear unit, from the closed form.

    w_t = w* + U diag((1 - lr*lambda_i)^t) U^T (w_0 - w*), with H = X^T X / P = U
    diag(lambda) U^T (loss with the 1/2: E(w) = 1/(2P) sum_p (y_p - w.x_p)^2) and w*
    the minimum-norm least-squares solution.  One ``eigh``; O(d^2) per step.

    Parameters
    ----------
    X : array (P, d)
    y : array (P,)
    lr : float
        Learning rate eta > 0.
    steps : int
        Number of steps (>= 0).
    w0 : array (d,) or (d + 1,), optional
        Initial weights (default zeros); as in :func:`fastgd.gd`.
    bias : bool
        Append a constant input 1.

    Returns
    -------
    array (steps + 1, d)
        Row t is w_t (bias last when ``bias=True``).

    Raises
    ------
    FastGDValueError
        When the trajectory would overflow float64 within ``steps`` (a diverging rate:
        ask for fewer steps).

    Examples
    --------
    >>> import fastgd as fg
    >>> X, y = fg.lecture_data()
    >>> W = fg.theory.gd_trajectory(X, y, 1.5, 200)
    >>> bool(abs(W[-1] - fg.gd(X, y, 1.5, 200, tol=0.0).w).max() < 1e-12)
    True
    """
    f = "gd_trajectory"
    prob, lam, U, c = _gd_modes(f, X, y, w0, bias)
    w0 = PB.initial_weights(f, w0, prob, prob.d - int(prob.bias))
    lr = _lr(f, lr)
    steps = V.integer(f, "steps", steps, minimum=0)
    _cost.check(f, "steps", nbytes=3.0 * (steps + 1) * prob.d * 8,
                what=f"{steps + 1:,} rows x {prob.d} x 8 B x 3", hint="use fewer steps")
    V.trajectory_steps(f, steps, lr, lam, np.abs(c).max(initial=0.0),
                       np.abs(prob.wstar).max(initial=0.0))
    t = np.arange(steps + 1, dtype=np.float64)[:, None]
    with np.errstate(all="ignore"):
        m = np.power(1.0 - lr * lam, t)  # (steps + 1, d)
        W = prob.wstar + (m * c) @ U.T
    W[0] = w0  # exactly, not up to the rounding of the eigenbasis round trip
    return W


def _times(func, t):
    if isinstance(t, (str, bytes)) or t is None or V.ndim_of(t) == -1:
        raise V.fail_type(func, "t", "an integer or an array of integers", t)
    arr = np.asarray(t)
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise V.fail_type(func, "t", "an integer or an array of integers", t)
    if arr.size and not np.all(np.isfinite(arr)):
        raise V.fail(func, "t", "finite", "a non-finite value")
    if arr.size and not np.all(arr == np.round(arr)):
        raise V.fail_type(func, "t", "an integer or an array of integers", t)
    if arr.size and arr.min() < 0:
        raise V.fail(func, "t", ">= 0", f"min {arr.min():g}")
    return arr.astype(np.float64)


def gd_loss(X, y, lr, t, *, w0=None, bias=False, excess=False):
    """Loss E(w_t) of batch GD after t steps, for any t (O(d) per t after one ``eigh``).

    E(w_t) = E* + 1/2 sum_i lambda_i (1 - lr*lambda_i)^(2t) c_i^2, c = U^T (w_0 - w*)
    (E(w) = 1/(2P) sum_p (y_p - w.x_p)^2, H = X^T X / P = U diag(lambda) U^T).

    Parameters
    ----------
    X, y, lr, w0, bias
        As in :func:`gd_trajectory`.
    t : int or array of int
        Step(s), >= 0.
    excess : bool
        Return E(w_t) - E* instead of E(w_t).

    Returns
    -------
    float or array shaped like ``t`` (``inf`` where it overflows).

    Examples
    --------
    >>> import fastgd as fg
    >>> X, y = fg.lecture_data()
    >>> fg.theory.gd_loss(X, y, 1.5, [0, 100]).round(6).tolist()
    [0.5, 0.02381]
    """
    f = "gd_loss"
    prob, lam, U, c = _gd_modes(f, X, y, w0, bias)
    lr = V.rate_cap(f, _lr(f, lr), lam[-1])
    tt = _times(f, t)
    excess = V.boolean(f, "excess", excess)
    a = 0.5 * lam * c * c
    q = (1.0 - lr * lam) ** 2
    with np.errstate(all="ignore"):
        # terms with a = 0 contribute 0 even when q^t overflows
        terms = np.where(a > 0, a * np.power(q, tt[..., None]), 0.0)
        ex = terms.sum(axis=-1)
    out = ex if excess else prob.estar + ex
    return float(out) if np.ndim(out) == 0 else out


def gd_steps_to_tol(X, y, lr, tol, *, w0=None, bias=False, max_steps=10**9):
    """Predicted number of batch-GD steps until the excess loss is <= tol x its start.

    The first t with E(w_t) - E* <= tol (E(w_0) - E*): the kernels' definition of
    ``steps_to_tol`` (:func:`fastgd.gd`), found exactly from the closed form of
    :func:`gd_loss` (bisection on t when no direction diverges).

    Returns
    -------
    int
        The step, 0 when the start is already within tolerance, -1 when it is never
        reached (within ``max_steps``; e.g. lr >= 2/lambda along a direction the start
        has a component in).

    Examples
    --------
    >>> import fastgd as fg
    >>> X, y = fg.lecture_data()
    >>> fg.theory.gd_steps_to_tol(X, y, 1.5, 1e-6), fg.gd(X, y, 1.5, 100, tol=1e-6).steps_to_tol
    (6, 6)
    >>> fg.theory.gd_steps_to_tol(X, y, 2.5, 1e-6)  # above 2/lambda_max
    -1
    """
    f = "gd_steps_to_tol"
    prob, lam, U, c = _gd_modes(f, X, y, w0, bias)
    lr = V.rate_cap(f, _lr(f, lr), lam[-1])
    tol = V.real(f, "tol", tol, nonneg=True)
    max_steps = V.integer(f, "max_steps", max_steps, minimum=1)
    a = 0.5 * lam * c * c
    keep = a > 0
    a, q = a[keep], ((1.0 - lr * lam) ** 2)[keep]
    e0 = a.sum()
    target = tol * e0
    if e0 <= target:
        return 0

    def ex(t):
        with np.errstate(all="ignore"):
            return float(np.sum(a * np.power(q, float(t))))

    grow = q > 1.0
    stay = q == 1.0
    if np.any(grow):
        return _steps_growing(a, q, grow, target, max_steps)
    if a[stay].sum() > target:
        return -1
    if target <= 0:
        # tol = 0: reached only when every moving mode is exactly 0 (one-step modes)
        return 1 if np.all(q[~stay] == 0.0) else -1
    # monotone non-increasing: bisection between 0 (above) and an upper bound
    dec = (~stay) & (q > 0)
    hi = 1
    if np.any(dec):
        room = target - a[stay].sum()
        m = np.count_nonzero(dec)
        with np.errstate(divide="ignore"):
            hi = max(1, int(np.max(np.ceil(np.log(room / (m * a[dec])) / np.log(q[dec])))))
    hi = min(hi, max_steps)
    if ex(hi) > target:
        return -1
    lo = 0
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ex(mid) <= target:
            hi = mid
        else:
            lo = mid
    return hi


def _steps_growing(a, q, grow, target, max_steps):
    """First t >= 1 with sum_i a_i q_i^t <= target when some q_i > 1 (``grow``); -1 if
    none.  The total may dip below the target before the diverging part takes over:
    scan up to the step at which the diverging part alone exceeds the target."""
    with np.errstate(divide="ignore"):
        cap = np.max(np.log(target / a[grow]) / np.log(q[grow])) if target > 0 else 0.0
    cap = int(min(max(math.ceil(cap), 1), max_steps))
    for start in range(1, cap + 1, 65536):
        ts = np.arange(start, min(cap, start + 65535) + 1, dtype=np.float64)
        with np.errstate(all="ignore"):
            v = (a * np.power(q, ts[:, None])).sum(axis=1)
        hit = np.flatnonzero(v <= target)
        if hit.size:
            return int(ts[hit[0]])
    return -1


_REGIME_NAMES = np.array(["flat", "monotone", "one-step", "oscillating", "marginal",
                          "diverging"])


def _regime_codes(z, lam, lam_max, rtol):
    tiny = 1e-14 * max(lam_max, 1e-300)
    return np.where(lam <= tiny, 0,
           np.where(np.abs(z - 1) <= rtol, 2,
           np.where(z < 1, 1,
           np.where(np.abs(z - 2) <= 2 * rtol, 4, np.where(z < 2, 3, 5)))))


def regime(lr, lam, *, rtol=1e-9):
    """Regime of batch GD along one eigendirection with curvature ``lam`` at rate ``lr``.

    The error is multiplied by 1 - lr*lam per step (Efficient BackProp eq. 24-26):
    ``"monotone"`` for lr < 1/lam, ``"one-step"`` at lr = 1/lam (the minimum in one
    step), ``"oscillating"`` (sign flips, converging) for 1/lam < lr < 2/lam,
    ``"marginal"`` at lr = 2/lam (oscillates forever), ``"diverging"`` above, and
    ``"flat"`` for lam = 0.  Equalities hold to relative tolerance ``rtol``.

    Examples
    --------
    >>> from fastgd.theory import regime
    >>> [regime(lr, 0.84) for lr in (0.5, 1 / 0.84, 2.0, 2 / 0.84, 2.5)]
    ['monotone', 'one-step', 'oscillating', 'marginal', 'diverging']
    """
    f = "regime"
    lr = _lr(f, lr)
    lam = V.real(f, "lam", lam, nonneg=True)
    rtol = V.real(f, "rtol", rtol, nonneg=True)
    V.rate_cap(f, lr, lam)
    lam_a = np.array([lam])
    return str(_REGIME_NAMES[_regime_codes(lr * lam_a, lam_a, lam, rtol)][0])


@dataclass(frozen=True)
class Regimes:
    """Per-eigendirection behaviour of batch GD at one learning rate.

    Attributes
    ----------
    lr : float
    eigenvalues : (d,) ascending eigenvalues of H = X^T X / P
    eigenvectors : (d, d) columns
    multipliers : (d,) 1 - lr*lambda_i, the error's factor per step
    regime : (d,) str, see :func:`regime`

    Examples
    --------
    >>> import fastgd as fg
    >>> r = fg.theory.regimes(fg.lecture_data().X, 1.5)
    >>> r.eigenvalues.round(3).tolist(), r.multipliers.round(3).tolist(), round(r.rate, 3)
    ([0.036, 0.84], [0.946, -0.26], 0.946)
    """

    lr: float
    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    multipliers: np.ndarray
    regime: np.ndarray

    @property
    def converges(self) -> bool:
        """True when every non-flat direction converges (lr < 2/lambda_max)."""
        return bool(np.all(np.isin(self.regime, ("flat", "monotone", "one-step",
                                                 "oscillating"))))

    @property
    def rate(self) -> float:
        """Worst contraction per step over the non-flat directions, max |1 - lr*lambda_i|."""
        m = np.abs(self.multipliers[self.regime != "flat"])
        return float(m.max()) if m.size else 0.0


def regimes(X, lr, *, bias=False, rtol=1e-9) -> Regimes:
    """Regime of batch GD at rate ``lr`` along every eigendirection of H = X^T X / P.

    See :func:`regime` for the names.  Loss convention E(w) = 1/(2P) sum (y - w.x)^2.

    Examples
    --------
    >>> import fastgd as fg
    >>> r = fg.theory.regimes(fg.lecture_data().X, 1.5)
    >>> r.regime.tolist(), r.converges
    (['monotone', 'oscillating'], True)
    """
    f = "regimes"
    _, H = _x_only(f, X, bias)
    lr = _lr(f, lr)
    rtol = V.real(f, "rtol", rtol, nonneg=True)
    lam, U = _eig(H)
    names = _REGIME_NAMES[_regime_codes(lr * lam, lam, lam[-1], rtol)]
    return Regimes(lr, lam, U, 1.0 - lr * lam, names)


def eta_opt(X, *, bias=False) -> float:
    """The lecture's "optimal" rate 1/lambda_max (Efficient BackProp eq. 39).

    It reaches the minimum in one step along the steepest direction only, and is the
    largest rate with monotone (non-oscillating) convergence in every direction; it
    does **not** minimise the overall contraction (see :func:`minimax_lr`).

    Examples
    --------
    >>> import fastgd as fg
    >>> round(fg.theory.eta_opt(fg.lecture_data().X), 6)  # 1/0.84
    1.190476
    """
    return float(1.0 / _spectrum("eta_opt", X, bias)[-1])


def eta_max(X, *, bias=False) -> float:
    """2/lambda_max: batch GD diverges above it (Efficient BackProp eq. 38).

    H = X^T X / P for the loss E(w) = 1/(2P) sum (y - w.x)^2 (with a constant input 1
    appended when ``bias=True``).

    Examples
    --------
    >>> import fastgd as fg
    >>> round(fg.theory.eta_max(fg.lecture_data().X), 6)  # 2/0.84
    2.380952
    """
    return float(2.0 / _spectrum("eta_max", X, bias)[-1])


def _spectrum(f, X, bias):
    """The eigenvalues of H = X^T X / P, ascending, after the checks of ``X`` and
    ``bias`` (errors name ``f``); H = 0 refused."""
    _, H = _x_only(f, X, bias)
    lam = scipy.linalg.eigvalsh(H)
    _nonzero(f, lam)
    return lam


def minimax_lr(X, *, bias=False):
    """The rate that minimises the worst per-step contraction, and that contraction.

    eta = 2/(lambda_max + lambda_min) minimises max_i |1 - eta lambda_i| over the
    non-flat directions (lambda_min: the smallest non-zero eigenvalue); the minimum is
    (kappa - 1)/(kappa + 1), kappa = lambda_max/lambda_min.  This optimises the
    asymptotic rate of the *slowest* direction, unlike :func:`eta_opt` = 1/lambda_max,
    which is exact for the steepest one (on the lecture's data eta = 1.5 converges
    faster than 1/0.84 = 1.19).

    Returns
    -------
    (lr, contraction) : (float, float)

    Examples
    --------
    >>> import fastgd as fg
    >>> lr, rate = fg.theory.minimax_lr(fg.lecture_data().X)
    >>> round(lr, 6), round(rate, 6)
    (2.283105, 0.917808)
    """
    lam = _spectrum("minimax_lr", X, bias)
    pos = lam[lam > _FLAT * lam[-1]]
    lmax, lmin = pos[-1], pos[0]
    return float(2.0 / (lmax + lmin)), float((lmax - lmin) / (lmax + lmin))


def contraction(X, lr, *, bias=False) -> float:
    """Worst per-step error factor of batch GD, max_i |1 - lr lambda_i| (non-flat i).

    lambda_i: eigenvalues of H = X^T X / P (loss E(w) = 1/(2P) sum (y - w.x)^2); the
    run converges iff the factor is < 1.

    Examples
    --------
    >>> import fastgd as fg
    >>> round(fg.theory.contraction(fg.lecture_data().X, 1.5), 6)  # |1 - 1.5 x 0.036|
    0.946
    """
    f = "contraction"
    _, H = _x_only(f, X, bias)
    lr = _lr(f, lr)
    lam = scipy.linalg.eigvalsh(H)
    _nonzero(f, lam)
    pos = lam[lam > _FLAT * lam[-1]]
    return float(np.max(np.abs(1.0 - lr * pos)))
