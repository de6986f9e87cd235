"""Closed forms and stability limits that every fastgd simulation is checked against.

Convention (everywhere in fastgd): the squared-error loss carries a 1/2,
E(w) = 1/(2P) sum_p (y_p - w.x_p)^2, so the Hessian is H = X^T X / P and batch GD
diverges above eta_max = 2/lambda_max (LeCun, Bottou, Orr, Mueller, "Efficient
BackProp", 1998, eqs. 20-39).  With ``bias=True`` a constant input 1 is appended and
H is the augmented second-moment matrix.

What is here
------------
* **Batch GD, exactly** (:func:`gd_trajectory`, :func:`gd_loss`, :func:`regimes`,
  :func:`gd_steps_to_tol`, :func:`eta_opt`, :func:`minimax_lr`): in the eigenbasis
  of H the error along direction i is multiplied by 1 - eta*lambda_i per step.
* **Momentum** (:func:`momentum_lr_max`, :func:`momentum_rate`,
  :func:`optimal_heavy_ball`): per eigenvalue a 2x2 companion matrix, stable by the
  Jury conditions.
* **SGD, mean square** (:func:`sgd_ms_operator`, :func:`sgd_ms_critical_lr`,
  :func:`sgd_ms_error`, :func:`sgd_stationary_loss`): the second moment
  E[(w - w*)(w - w*)^T] evolves by a linear map T; it stays bounded iff rho(T) < 1.
* **SGD, typical runs** (:func:`sgd_as_critical_lr`): the almost-sure boundary, where
  the top Lyapunov exponent of the random product of per-step matrices crosses 0,
  estimated by simulation with the lane kernels, with a confidence interval.
* **lambda_max without H** (:func:`lsp_lambda_max`, :func:`power_lambda_max`).
* **A summary** for reports (:func:`limits`).

Two SGD boundaries: read this before using either
-------------------------------------------------
SGD on least squares has *two* different divergence boundaries in the learning rate,
and they are not the same number:

1. The **mean-square** boundary (:func:`sgd_ms_critical_lr`): above it the *average*
   of ||w_t - w*||^2 over runs grows without bound.
2. The **almost-sure** boundary (:func:`sgd_as_critical_lr`): above it a *typical
   single run* grows without bound (the top Lyapunov exponent of the random matrix
   product is positive).

The mean-square boundary is always the lower one (Jensen: E log ||e|| <= 1/2 log
E ||e||^2).  **Between the two, every single run stays finite and most runs even
converge, yet the mean square is infinite**: the distribution of ||w_t - w*|| is
heavy-tailed, a few runs show rare, huge spikes, and averages over runs are dominated
by those rare runs and never settle.  On two-cluster data like the lecture's the two
boundaries differ by tens of percent; on Gaussian inputs by much more.  So: a
learning rate between the two is *not* "diverging" for the run you are watching, and
it is *not* safe either (its mean-square loss is infinite and a longer run will spike).
A simulated "half of the seeds diverged within T steps" boundary (``critical_lr`` with
``method="sgd"``) lies above the mean-square limit but is *not* bounded by the
almost-sure one: runs just above it grow slowly and may not reach the blowup threshold
within the budget, so the budget boundary is biased upward (on scikit-learn's digits
it lies about 9 % above the almost-sure limit with 100 epochs).

References
----------
Y. LeCun, L. Bottou, G. B. Orr, K.-R. Mueller, "Efficient BackProp", in Neural
Networks: Tricks of the Trade, LNCS 1524, Springer 1998.
Y. LeCun, P. Simard, B. Pearlmutter, "Automatic Learning Rate Maximization by On-Line
Estimation of the Hessian's Eigenvectors", NIPS 5, 1993.
L. Wu, C. Ma, W. E, "How SGD Selects the Global Minima in Over-parameterized
Learning: A Dynamical Stability Perspective", NeurIPS 2018.
R. Mulayoff, T. Michaeli, "Exact Mean Square Linear Stability Analysis for SGD",
COLT 2024.
B. T. Polyak, "Some methods of speeding up the convergence of iteration methods",
USSR Comput. Math. Math. Phys. 4, 1964.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from fastgd import status as ST
from fastgd import validate as V
from fastgd.engine import cost as _cost
from fastgd.engine import grid as G
from fastgd.linear import problem as PB

__all__ = [
    "ASBoundary",
    "HeavyBall",
    "LSPEstimate",
    "MSPrediction",
    "PowerEstimate",
    "Regimes",
    "contraction",
    "eta_max",
    "eta_opt",
    "gd_loss",
    "gd_steps_to_tol",
    "gd_trajectory",
    "limits",
    "lsp_lambda_max",
    "minimax_lr",
    "momentum_lr_max",
    "momentum_rate",
    "optimal_heavy_ball",
    "power_lambda_max",
    "regime",
    "regimes",
    "sgd_as_critical_lr",
    "sgd_ms_critical_lr",
    "sgd_ms_error",
    "sgd_ms_operator",
    "sgd_stationary_loss",
]

_FLAT = 1e-12  # eigenvalues below _FLAT * lambda_max are flat directions
_DENSE_MAX = 40  # dense d^2 x d^2 mean-square operators up to this d (non-flat)


# =========================================================================== helpers


def _brentq(*args, **kwargs):
    """``scipy.optimize.brentq``, imported on first use (scipy.optimize adds ~0.15 s to
    ``import fastgd``, and only the momentum and almost-sure limits need it)."""
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


# =========================================================================== batch GD


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
        # the total may dip below the target before the diverging part takes over:
        # scan up to the step at which the diverging part alone exceeds the target
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
    """
    _, H = _x_only("eta_opt", X, bias)
    lam = scipy.linalg.eigvalsh(H)
    _nonzero("eta_opt", lam)
    return float(1.0 / lam[-1])


def eta_max(X, *, bias=False) -> float:
    """2/lambda_max: batch GD diverges above it (Efficient BackProp eq. 38)."""
    _, H = _x_only("eta_max", X, bias)
    lam = scipy.linalg.eigvalsh(H)
    _nonzero("eta_max", lam)
    return float(2.0 / lam[-1])


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
    """
    f = "minimax_lr"
    _, H = _x_only(f, X, bias)
    lam = scipy.linalg.eigvalsh(H)
    _nonzero(f, lam)
    pos = lam[lam > _FLAT * lam[-1]]
    lmax, lmin = pos[-1], pos[0]
    return float(2.0 / (lmax + lmin)), float((lmax - lmin) / (lmax + lmin))


def contraction(X, lr, *, bias=False) -> float:
    """Worst per-step error factor of batch GD, max_i |1 - lr lambda_i| (non-flat i)."""
    f = "contraction"
    _, H = _x_only(f, X, bias)
    lr = _lr(f, lr)
    lam = scipy.linalg.eigvalsh(H)
    _nonzero(f, lam)
    pos = lam[lam > _FLAT * lam[-1]]
    return float(np.max(np.abs(1.0 - lr * pos)))


# =========================================================================== momentum


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


# =========================================================================== SGD: mean square


def _kron_moment(Xr, H, c):
    """K = E[H_B (x) H_B] = (1 - c) H (x) H + c (1/P) sum_i H_i (x) H_i, (r^2, r^2)."""
    P = Xr.shape[0]
    V2 = np.einsum("pi,pj->pij", Xr, Xr).reshape(P, -1)  # vec(x x^T) per sample
    S = V2.T @ V2 / P
    return (1.0 - c) * np.kron(H, H) + c * S


def _dense_guard(func, r, beta):
    n = r * (2 if beta > 0 else 1)
    lim = _DENSE_MAX if beta == 0 else _DENSE_MAX // 2
    if r > lim:
        raise V.fail(func, "X", f"at most {lim} non-flat input dimensions for the dense "
                     f"{n * n} x {n * n} mean-square operator", f"{r}")


def _ms_matrix(Xr, H, lr, c, beta=0.0, nesterov=False):
    """The mean-square operator on vec(E[z z^T]); z = e (beta = 0) or (e, buf)."""
    r = H.shape[0]
    K = _kron_moment(Xr, H, c)
    if beta == 0.0:
        A = np.eye(r) - lr * H
        # E[(I - lr H_B) (x) (I - lr H_B)] = A (x) A + lr^2 (K - H (x) H)
        return np.kron(A, A) + lr * lr * (K - np.kron(H, H))
    # z' = (C + a (x) H_B) z with a acting on the (e, buf) block index
    I = np.eye(r)
    if nesterov:
        Cm = np.block([[I, -lr * beta * beta * I], [np.zeros((r, r)), beta * I]])
        a = np.array([[-lr * (1.0 + beta), 0.0], [1.0, 0.0]])
    else:
        Cm = np.block([[I, -lr * beta * I], [np.zeros((r, r)), beta * I]])
        a = np.array([[-lr, 0.0], [1.0, 0.0]])
    Dbar = np.kron(a, H)
    # E[D (x) D] with D = a (x) H_B: entries a[A,B] a[C,D] E[H_B[i,j] H_B[k,l]]
    # kron(Z, Z)[(p, p'), (q, q')] = Z[p, q] Z[p', q'] (row-major vec); with
    # Z = a (x) H_B, p = (A, i), q = (B, j): a[A,B] a[C,D] E[H_B[i,j] H_B[k,l]]
    E4 = K.reshape(r, r, r, r).transpose(0, 2, 1, 3)  # E4[i,j,k,l] = E[H_ij H_kl]
    n = 2 * r
    E_DD = np.einsum("AB,CD,ijkl->AiCkBjDl", a, a, E4).reshape(n * n, n * n)
    return np.kron(Cm, Cm) + np.kron(Cm, Dbar) + np.kron(Dbar, Cm) + E_DD


def sgd_ms_operator(X, lr, batch_size=1, replacement=True, bias=False, *, momentum=0.0,
                    nesterov=False):
    """The linear map T carrying M = E[(w - w*)(w - w*)^T] through one SGD step.

    Each step draws a fresh batch of B samples, i.i.d. across steps: B draws with
    replacement (``replacement=True``) or B distinct samples (a random B-subset).
    With H_B = (1/B) sum_{p in B} x_p x_p^T (loss E(w) = 1/(2P) sum (y - w.x)^2) and
    noise-free labels, e' = (I - lr H_B) e, so vec M' = T vec M with

        T = I(x)I - lr (H(x)I + I(x)H) + lr^2 [(1 - c) H(x)H + c (1/P) sum_i H_i(x)H_i],

    c = 1/B with replacement, c = (P - B)/(B (P - 1)) for a random B-subset
    (Mulayoff & Michaeli 2024; THEORY.md sec. 3).  E||w_t - w*||^2 = tr(T^t M_0).
    Per-epoch reshuffling is not such a process (see :func:`sgd_as_critical_lr`).

    Parameters
    ----------
    X : array (P, d)
    lr : float
    batch_size : int in [1, P]
    replacement : bool
    bias : bool
    momentum, nesterov
        With momentum beta > 0 the state is z = (e, buf) (PyTorch's form) and T acts
        on vec E[z z^T], of size (2d)^2.

    Returns
    -------
    array (d^2, d^2) (or ((2d)^2, (2d)^2) with momentum), acting on row-major vec(M).
    Symmetric when momentum = 0.
    """
    f = "sgd_ms_operator"
    Xa, H = _x_only(f, X, bias)
    lr = V.rate_cap(f, _lr(f, lr), np.max(np.einsum("pi,pi->p", Xa, Xa)))
    _, c = _batch_c(f, Xa.shape[0], batch_size, replacement)
    beta = V.momentum(f, momentum)
    nesterov = V.boolean(f, "nesterov", nesterov)
    _dense_guard(f, Xa.shape[1], beta)
    return _ms_matrix(Xa, H, lr, c, beta, nesterov)


def _rho(T):
    return float(np.abs(np.linalg.eigvals(T)).max())


def _ms_crit_closed(Xr, lam, c):
    """Closed form of the root of rho(T(eta)) = 1 without momentum (Xr in H's eigenbasis).

    T = I - eta L + eta^2 K with L = H (+) H, K = E[H_B (x) H_B] (both symmetric, L > 0
    on the range).  T maps PSD matrices to PSD matrices, so rho(T) is its largest
    eigenvalue (Krein-Rutman) and rho(T) < 1 iff eta K - L < 0, i.e.
    eta < 1/lambda_max(L^-1/2 K L^-1/2).  In H's eigenbasis L is diagonal.
    """
    r = lam.size
    s = 1.0 / np.sqrt((lam[:, None] + lam[None, :]).ravel())
    if r <= _DENSE_MAX:
        K = _kron_moment(Xr, np.diag(lam), c)
        Ks = K * s[:, None] * s[None, :]
        top = scipy.linalg.eigvalsh(0.5 * (Ks + Ks.T))[-1]
        return float(1.0 / top)
    # matrix-free for large d: K(M) = (1 - c) H M H + c (1/P) sum_p (x_p.M x_p) x_p x_p^T
    import scipy.sparse.linalg as sla

    P = Xr.shape[0]
    S2 = s.reshape(r, r)

    def matvec(v):
        M = S2 * v.reshape(r, r)
        q = np.einsum("pi,ij,pj->p", Xr, M, Xr)
        KM = (1.0 - c) * (lam[:, None] * M * lam[None, :]) + c * ((Xr * q[:, None]).T @ Xr) / P
        return (S2 * KM).ravel()

    op = sla.LinearOperator((r * r, r * r), matvec=matvec, dtype=np.float64)
    top = sla.eigsh(op, k=1, which="LA", tol=1e-13, v0=np.eye(r).ravel())[0][0]
    return float(1.0 / top)


def _ms_crit_brentq(Xr, H, c, beta, nesterov, upper, rtol):
    """Root of rho(T(eta)) - 1 on (0, upper] by brentq (general, with momentum)."""

    def g(eta):
        return _rho(_ms_matrix(Xr, H, eta, c, beta, nesterov)) - 1.0

    hi = upper * (1.0 + 1e-9)
    if g(hi) < 0:  # pragma: no cover - the mean-square limit is below the GD limit
        return float("inf")
    lo = hi
    for _ in range(60):
        lo *= 0.5
        if g(lo) < 0:
            break
    else:  # pragma: no cover
        return float("nan")
    return float(_brentq(g, lo, hi, rtol=rtol, xtol=1e-300, maxiter=500))


def sgd_ms_critical_lr(X, batch_size=1, replacement=True, bias=False, *, momentum=0.0,
                       nesterov=False, method="auto") -> float:
    """The mean-square stability limit of SGD: the rate at which rho(T) reaches 1.

    T is :func:`sgd_ms_operator`.  Below the returned rate E||w_t - w*||^2 -> 0
    (noise-free labels) or to a finite stationary value (:func:`sgd_stationary_loss`);
    above it the mean square grows without bound, **although typical single runs may
    still converge** up to the almost-sure limit (:func:`sgd_as_critical_lr`; see the
    module docstring).  Flat directions of H are removed first (the error there never
    moves).  It never exceeds the batch-GD limit (2/lambda_max, or the momentum limit),
    and equals it for ``batch_size = P`` without replacement.

    Parameters
    ----------
    X, batch_size, replacement, bias, momentum, nesterov
        As in :func:`sgd_ms_operator`.
    method : {"auto", "closed", "brentq"}
        ``"brentq"``: root of rho(T(eta)) - 1 by ``scipy.optimize.brentq`` (relative
        tolerance 1e-12; dense eigenvalues of the d^2 (or (2d)^2) operator: d <= 40,
        or 20 with momentum).  ``"closed"`` (momentum 0 only): the same root in closed
        form, 1/lambda_max(L^-1/2 K L^-1/2) with L = H(+)H and K = E[H_B (x) H_B] (one
        symmetric eigenproblem of size d^2; matrix-free Lanczos above d = 40, any d).
        ``"auto"``: closed without momentum, brentq with.

    Returns
    -------
    float

    Examples
    --------
    >>> import fastgd as fg
    >>> X = fg.lecture_data().X
    >>> lr = fg.theory.sgd_ms_critical_lr(X, batch_size=100, replacement=False)
    >>> round(lr * 0.84, 10)
    2.0
    """
    f = "sgd_ms_critical_lr"
    Xa, H = _x_only(f, X, bias)
    _, c = _batch_c(f, Xa.shape[0], batch_size, replacement)
    beta = V.momentum(f, momentum)
    nesterov = V.boolean(f, "nesterov", nesterov)
    V.choice(f, "method", method, ("auto", "closed", "brentq"))
    if method == "closed" and beta > 0:
        raise V.fail(f, "method", "'auto' or 'brentq' when momentum > 0", "'closed'")
    lam_all = scipy.linalg.eigvalsh(H)
    _nonzero(f, lam_all)
    Xr, lam, U_r = _reduce(Xa, H)
    if method == "closed" or (method == "auto" and beta == 0.0):
        return _ms_crit_closed(Xr, lam, c)
    _dense_guard(f, lam.size, beta)
    upper = momentum_lr_max(float(lam[-1]), beta, nesterov)
    return _ms_crit_brentq(Xr, np.diag(lam), c, beta, nesterov, upper, 1e-12)


@dataclass(frozen=True)
class MSPrediction:
    """Exact first and second moments of SGD's error, step by step.

    Attributes
    ----------
    dist2 : (steps + 1,) E||w_t - w*||^2
    excess : (steps + 1,) E[E(w_t)] - E* = tr(H M_t)/2
    mean : (steps + 1, d) E[w_t] - w*
    rho : float, spectral radius of the mean-square operator T (NaN for d > 40)
    lr, batch_size, replacement
    """

    dist2: np.ndarray
    excess: np.ndarray
    mean: np.ndarray
    rho: float
    lr: float
    batch_size: int
    replacement: bool


def sgd_ms_error(X, y, lr, steps, *, w0=None, batch_size=1, replacement=True, bias=False):
    """Predicted E||w_t - w*||^2 and expected excess loss of SGD, exactly, for t <= steps.

    One step: e' = (I - lr H_B) e + lr v_B with v_B = (1/B) sum_{p in B} r_p x_p,
    r = y - X w* the residuals at the minimum.  With m = E e and M = E[e e^T]:

        m' = (I - lr H) m,
        M' = T(M) + lr^2 c [Q - 2 R(m)],  Q = (1/P) sum r_p^2 x_p x_p^T,
                                          R(m) = (1/P) sum r_p (x_p.m) x_p x_p^T,

    T the operator of :func:`sgd_ms_operator` and c as there.  Exact for batches
    drawn i.i.d. across steps (``order="replacement"`` in :func:`fastgd.sgd` for
    ``replacement=True``).  O(P d^2) per step.

    Returns
    -------
    MSPrediction
    """
    f = "sgd_ms_error"
    prob = PB.prepare(f, X, y, bias)
    lr = _lr(f, lr)
    steps = V.integer(f, "steps", steps, minimum=0)
    _cost.python_loop(f, "steps", steps + 1, 8 * (prob.d + 2), 4.0 * prob.P * prob.d ** 2)
    B, c = _batch_c(f, prob.P, batch_size, replacement)
    w0 = PB.initial_weights(f, w0, prob, prob.d - int(prob.bias))
    V.rate_cap(f, lr, np.max(np.einsum("pi,pi->p", prob.X, prob.X)))
    Xr_, lam_, _ = _reduce(prob.X, prob.H)
    if 0 < lam_.size <= _DENSE_MAX:  # the second moment grows by rho(T) per step
        with np.errstate(all="ignore"):
            rho_ = _rho(_ms_matrix(Xr_, np.diag(lam_), lr, c))
        m2 = float(np.sum((w0 - prob.wstar) ** 2)) + float(np.max(np.abs(prob.X))) ** 2
        V.growth_steps(f, steps, lr, rho_, max(m2, 1.0) * 1e20, "mean-square growth rho")
    Xa, H, P = prob.X, prob.H, prob.P
    res = prob.y - Xa @ prob.wstar
    Q = (Xa * (res * res)[:, None]).T @ Xa / P
    m = w0 - prob.wstar
    M = np.outer(m, m)
    A = np.eye(prob.d) - lr * H
    dist2 = np.empty(steps + 1)
    excess = np.empty(steps + 1)
    mean = np.empty((steps + 1, prob.d))
    with np.errstate(all="ignore"):
        for t in range(steps + 1):
            dist2[t] = np.trace(M)
            excess[t] = 0.5 * np.sum(H * M)
            mean[t] = m
            if t == steps:
                break
            q = np.einsum("pi,ij,pj->p", Xa, M, Xa)
            S = (Xa * q[:, None]).T @ Xa / P
            TM = A @ M @ A + lr * lr * ((1.0 - c) * (H @ M @ H) + c * S - H @ M @ H)
            Rm = (Xa * (res * (Xa @ m))[:, None]).T @ Xa / P
            M = TM + lr * lr * c * (Q - 2.0 * Rm)
            M = 0.5 * (M + M.T)
            m = A @ m
    Xr, lam, _ = _reduce(Xa, H)
    rho = float("nan")
    if 0 < lam.size <= _DENSE_MAX:
        rho = _rho(_ms_matrix(Xr, np.diag(lam), lr, c))
    return MSPrediction(dist2, excess, mean, rho, lr, B, bool(replacement))


def sgd_stationary_loss(X, y, lr, *, batch_size=1, replacement=True, bias=False) -> float:
    """Predicted excess loss of SGD's stationary fluctuation around the minimum.

    With residuals r = y - X w* != 0 SGD does not converge at a constant rate: it
    "fluctuates near the minimum" (the lecture).  In the mean-square stable range the
    stationary second moment S solves S = T(S) + lr^2 c Q (T, c as in
    :func:`sgd_ms_operator`, Q = (1/P) sum r_p^2 x_p x_p^T), and the expected excess
    loss is tr(H S)/2 (loss E(w) = 1/(2P) sum (y - w.x)^2): about lr c tr(Q)/4 for
    small lr, i.e. proportional to lr (Efficient BackProp sec. 4.1).

    For batches drawn i.i.d. across steps (``order="replacement"``); per-epoch
    reshuffling fluctuates less.

    Returns
    -------
    float
        The expected excess loss E[E(w)] - E* at stationarity; ``inf`` at or above the
        mean-square limit (:func:`sgd_ms_critical_lr`); 0 when the data are fit exactly.

    Examples
    --------
    >>> import fastgd as fg
    >>> X, y = fg.lecture_data()
    >>> s = fg.theory.sgd_stationary_loss(X, y, 0.2)
    >>> bool(0 < s < 0.05)
    True
    """
    f = "sgd_stationary_loss"
    prob = PB.prepare(f, X, y, bias)
    lr = V.rate_cap(f, _lr(f, lr), np.max(np.einsum("pi,pi->p", prob.X, prob.X)))
    _, c = _batch_c(f, prob.P, batch_size, replacement)
    Xa = prob.X
    lam_all = scipy.linalg.eigvalsh(prob.H)
    _nonzero(f, lam_all)
    Xr, lam, U_r = _reduce(Xa, prob.H)
    r = lam.size
    _dense_guard(f, r, 0.0)
    res = prob.y - Xa @ prob.wstar
    Q = (Xr * (res * res)[:, None]).T @ Xr / prob.P
    T = _ms_matrix(Xr, np.diag(lam), lr, c)
    if _rho(T) >= 1.0:
        return float("inf")
    s = np.linalg.solve(np.eye(r * r) - T, lr * lr * c * Q.ravel())
    S = s.reshape(r, r)
    return float(0.5 * np.sum(lam * np.diag(S)))


# =========================================================================== SGD: almost sure


@dataclass(frozen=True)
class ASBoundary:
    """The almost-sure (typical-run) divergence boundary of SGD.

    Attributes
    ----------
    lr : float
        Where the estimated top Lyapunov exponent (mean over seeds) crosses 0.
    lr_low, lr_high : float
        Confidence interval of ``lr`` (where mean -/+ t_q x standard error cross 0).
    confidence : float
    lrs : (n,) the final grid of rates
    exponent : (n,) mean top Lyapunov exponent per SGD step (log growth of ||(e, buf)||)
    stderr : (n,) its standard error across seeds
    ms_lr : float
        The mean-square limit for comparison (NaN where there is none in closed form:
        per-epoch reshuffling, momentum; for ``order="cyclic"`` it equals ``lr``).
    order : str
    batch_size : int
    momentum : float
    nesterov : bool
    seeds : int
    steps : int
        SGD steps per run used for the exponent (after a burn-in).
    """

    lr: float
    lr_low: float
    lr_high: float
    confidence: float
    lrs: np.ndarray
    exponent: np.ndarray
    stderr: np.ndarray
    ms_lr: float
    order: str
    batch_size: int
    momentum: float
    nesterov: bool
    seeds: int
    steps: int


def _lyapunov(Xr, lrs, batch, order_code, beta, nesterov, keys, epochs, burn, nthreads):
    """Per-seed top Lyapunov exponent per step, shape (n_seed, n_lr).

    Noise-free labels (y = 0, w* = 0) so that w is the error and its dynamics are the
    pure random matrix product; (w, buf) is renormalised every epoch and the log
    growth accumulated by the kernel.  The exponent is the difference of the log
    growth after ``burn + epochs`` and after ``burn`` epochs (the sample order is a
    function of (key, epoch, position), so the longer run extends the shorter one).
    """
    from fastgd.linear.executors import launch
    from fastgd.linear.table import KernelSpec

    P, r = Xr.shape
    rng = np.random.default_rng(20240601)
    w0 = rng.standard_normal(r)
    w0 /= np.linalg.norm(w0)
    n_seed, n_lr = keys.shape[0], lrs.size
    arrays = {"X": np.ascontiguousarray(Xr[None]), "y": np.zeros((1, P)), "P": np.array([P]),
              "R": PB.hessian_roots(Xr[None]), "wstar": np.zeros((1, r)), "estar": np.zeros(1),
              "c0": np.zeros(1), "lr": lrs, "beta": np.full(n_lr, beta), "w0": w0,
              "keys": keys}
    chunks = G.make_chunks(1, n_seed, n_lr, n_lr)  # one chunk per seed: lanes = rates
    spe = -(-P // batch)
    logs, stats = [], []
    for E in ((burn, burn + epochs) if burn > 0 else (burn + epochs,)):
        out = G.Outputs(1, n_seed, n_lr, r)
        spec = KernelSpec("sgd", r, E, 0.0, np.inf, momentum=beta != 0, nesterov=nesterov,
                          batch=batch, order=order_code, renorm=1)
        launch(spec, arrays, chunks, nthreads, out)
        logs.append(out.logg[0].copy())
        stats.append(out.status[0].copy())
    g = (logs[-1] - (logs[0] if burn > 0 else 0.0)) / (epochs * spe)
    st = np.maximum(stats[0], stats[-1]) if burn > 0 else stats[-1]
    g = np.where(st == ST.Status.DIVERGED, np.inf, g)
    g = np.where(st == ST.Status.CONVERGED, -np.inf, g)
    return g


def _mean_se(g):
    n = g.shape[0]
    pinf = np.any(g == np.inf, axis=0)
    ninf = np.any(g == -np.inf, axis=0)
    gf = np.where(np.isfinite(g), g, 0.0)
    mean = gf.mean(axis=0)
    se = gf.std(axis=0, ddof=1) / math.sqrt(n) if n > 1 else np.zeros(g.shape[1])
    mean = np.where(pinf, np.inf, np.where(ninf & ~pinf, -np.inf, mean))
    se = np.where(pinf | ninf, 0.0, se)
    return mean, se


def _first_crossing(lrs, v):
    """Linear interpolation of the first upward zero crossing of v(lrs); NaN if none."""
    pos = v > 0
    k = np.flatnonzero(pos[1:] & ~pos[:-1])
    if pos[0]:
        return lrs[0] if not np.all(pos) else float("nan")
    if k.size == 0:
        return float("nan")
    k = k[0]
    a, b = v[k], v[k + 1]
    if not np.isfinite(b) or not np.isfinite(a):
        return float(lrs[k] if np.isfinite(a) and a == 0 else 0.5 * (lrs[k] + lrs[k + 1]))
    return float(lrs[k] + (lrs[k + 1] - lrs[k]) * (-a) / (b - a))


def _epoch_product_log_rho(Xr, lr, batch, beta, nesterov):
    """log spectral radius of the cyclic epoch product (renormalised as it goes)."""
    P, r = Xr.shape
    n = 2 * r if beta > 0 else r
    Pm = np.eye(n)
    logscale = 0.0
    I = np.eye(r)
    for pos in range(0, P, batch):
        xb = Xr[pos:pos + batch]
        HB = xb.T @ xb / xb.shape[0]
        if beta > 0:
            if nesterov:
                M = np.block([[I - lr * (1 + beta) * HB, -lr * beta * beta * I], [HB, beta * I]])
            else:
                M = np.block([[I - lr * HB, -lr * beta * I], [HB, beta * I]])
        else:
            M = I - lr * HB
        Pm = M @ Pm
        s = np.abs(Pm).max()
        if not (s > 0 and np.isfinite(s)):
            return -np.inf if s == 0 else np.inf
        Pm /= s
        logscale += math.log(s)
    rho = np.abs(np.linalg.eigvals(Pm)).max()
    return (math.log(rho) + logscale) if rho > 0 else -np.inf


def sgd_as_critical_lr(X, y=None, *, batch_size=1, order="replacement", momentum=0.0,
                       nesterov=False, seeds=64, epochs=200, burn_in=None, confidence=0.95,
                       bias=False, threads=None, lanes=32) -> ASBoundary:
    """The almost-sure (typical-run) divergence boundary of SGD on the linear unit.

    The error of SGD with noise-free labels is a random matrix product,
    e_t = A_t ... A_1 e_0 with A = I - lr H_B (or the 2d x 2d momentum matrix), and
    (1/t) log ||e_t|| converges for almost every run to the top Lyapunov exponent
    gamma(lr).  Single runs diverge iff gamma > 0.  Label noise adds a bounded forcing
    and does not move this boundary, so ``y`` is not needed (accepted and validated
    for symmetry with the other functions).

    gamma is estimated with the SIMD lane kernels: ``seeds`` independent sample
    orders, each run for ``burn_in + epochs`` epochs with (e, buf) renormalised every
    epoch, on two grids of ``lanes`` rates (common random numbers across rates, so
    gamma(lr) is smooth in lr).  The boundary is the zero of the seed mean, its
    interval the zeros of mean -/+ t_q x standard error.

    **This is above the mean-square limit** (:func:`sgd_ms_critical_lr`); between the
    two, runs stay finite but heavy-tailed (module docstring).

    Parameters
    ----------
    X : array (P, d)
    y : array (P,), optional
        Ignored except for validation.
    batch_size : int in [1, P]
        The kernel's epoch is ceil(P/B) steps, the last batch smaller when B does not
        divide P.
    order : {"replacement", "shuffle", "cyclic"}
        ``"replacement"``: i.i.d. draws; ``"shuffle"``: a fresh permutation each epoch;
        ``"cyclic"``: a fixed order, deterministic: then gamma = log rho(epoch
        product)/steps exactly and the root is found by brentq (CI of zero width).
    momentum, nesterov
        Heavy-ball / Nesterov coefficient (PyTorch form).
    seeds : int >= 2
    epochs : int >= 1
        Epochs measured per run (the exponent's standard error shrinks like
        1/sqrt(seeds * epochs)).
    burn_in : int, optional
        Epochs discarded first (default epochs // 10).
    confidence : float in (0, 1)
    bias : bool
    threads : int, optional
    lanes : int
        Rates per grid (SIMD lanes of one chunk).

    Returns
    -------
    ASBoundary
    """
    f = "sgd_as_critical_lr"
    Xa, H = _x_only(f, X, bias)
    P = Xa.shape[0]
    if y is not None:
        y = V.as_float_array(f, "y", y, 1)
        if y.shape[0] != P:
            raise V.fail(f, "y", f"of length P = {P} (rows of X)", f"length {y.shape[0]}")
    B = V.integer(f, "batch_size", batch_size, minimum=1, maximum=P)
    V.choice(f, "order", order, tuple(ST.ORDERS))
    beta = V.momentum(f, momentum)
    nesterov = V.boolean(f, "nesterov", nesterov)
    seeds = V.integer(f, "seeds", seeds, minimum=2)
    epochs = V.integer(f, "epochs", epochs, minimum=1)
    burn = epochs // 10 if burn_in is None else V.integer(f, "burn_in", burn_in, minimum=0)
    confidence = V.real(f, "confidence", confidence, positive=True, below=1.0)
    lanes = V.integer(f, "lanes", lanes, minimum=4, maximum=256)
    V.threads(f, threads)
    if order != "cyclic":
        _cost.lyapunov(f, seeds, epochs, burn, lanes, P, Xa.shape[1])
    lam_all = scipy.linalg.eigvalsh(H)
    _nonzero(f, lam_all)
    Xr, lam, _ = _reduce(Xa, H)
    spe = -(-P // B)
    gd_lim = momentum_lr_max(float(lam[-1]), beta, nesterov)
    ms = float("nan")
    if beta == 0.0 and order != "cyclic":
        c = 1.0 / B if order == "replacement" else (
            (P - B) / (B * (P - 1.0)) if P > 1 else 0.0)
        ms = _ms_crit_closed(Xr, lam, c) if order == "replacement" else float("nan")
    if order == "cyclic":
        with np.errstate(all="ignore"):
            return _as_cyclic(f, Xr, B, beta, nesterov, gd_lim, spe, confidence, seeds)
    base = _ms_crit_closed(Xr, lam, 1.0 / B) * (gd_lim * lam[-1] / 2.0)
    keys = np.stack([G.seed_key(s) for s in range(seeds)])
    order_code = ST.ORDERS[order]
    from scipy.stats import t as student_t  # here: scipy.stats costs ~0.4 s at import

    q = float(student_t.ppf(0.5 + confidence / 2.0, seeds - 1))

    def evaluate(grid):
        g = _lyapunov(Xr, grid, B, order_code, beta, nesterov, keys, epochs, burn, nthreads)
        m, se = _mean_se(g)
        return m, se

    with G.using_threads(f, threads) as nthreads, np.errstate(all="ignore"):
        lo, hi = 0.5 * base, 4.0 * base
        for _ in range(30):
            grid = np.geomspace(lo, hi, lanes)
            m, se = evaluate(grid)
            if m[0] > 0:
                lo, hi = lo / 8.0, lo
                continue
            if not np.any(m > 0):
                lo, hi = hi, hi * 8.0
                continue
            break
        else:  # pragma: no cover
            raise V.fail(f, "X", "data with a finite almost-sure boundary", "none found")
        # second grid around the crossings of mean + q se (first) and mean - q se (last)
        up, dn = m + q * se, m - q * se
        k_up = np.flatnonzero(up > 0)
        k_dn = np.flatnonzero(dn > 0)
        # (one more coarse cell on each side: the coarse crossings are noisy too)
        a = grid[max(k_up[0] - 2, 0)] if k_up.size else grid[0]
        b = grid[min(k_dn[0] + 1, lanes - 1)] if k_dn.size else grid[-1]
        k_m = np.flatnonzero(m > 0)[0]
        a = min(a, grid[max(k_m - 2, 0)])
        b = max(b, grid[min(k_m + 1, lanes - 1)])
        fine = np.linspace(a, b, lanes)
        m2, se2 = evaluate(fine)
    lr = _first_crossing(fine, m2)
    lr_low = _first_crossing(fine, m2 + q * se2)
    lr_high = _first_crossing(fine, m2 - q * se2)
    if np.isnan(lr_low):
        lr_low = float(fine[0])
    if np.isnan(lr_high):
        lr_high = float(fine[-1])
    return ASBoundary(lr=lr, lr_low=float(min(lr_low, lr)), lr_high=float(max(lr_high, lr)),
                      confidence=confidence, lrs=fine, exponent=m2, stderr=se2, ms_lr=ms,
                      order=order, batch_size=B, momentum=beta, nesterov=nesterov,
                      seeds=seeds, steps=epochs * spe)


def _as_cyclic(f, Xr, B, beta, nesterov, gd_lim, spe, confidence, seeds, step=2.0):
    """The cyclic-order limit: the first zero of the growth rate g of the epoch product,
    bracketed and then found by ``brentq``.  Without momentum, every batch step is
    non-expansive below eta_s = 2 / max_b lambda_max(H_b), so no zero lies below it:
    the search starts there (halving while g > 0, as it can with momentum) and steps
    up by factors of ``step`` until g > 0 (a few epoch products instead of a 200-point
    scan)."""
    evals = {}

    def g(eta):
        if eta not in evals:
            evals[eta] = _epoch_product_log_rho(Xr, eta, B, beta, nesterov) / spe
        return evals[eta]

    P = Xr.shape[0]
    top = max(float(np.linalg.eigvalsh(Xr[p:p + B].T @ Xr[p:p + B] / Xr[p:p + B].shape[0])[-1])
              for p in range(0, P, B))
    lo = 2.0 / top if top > 0 else gd_lim
    for _ in range(60):
        if g(lo) <= 0:
            break
        lo /= step
    else:  # pragma: no cover
        raise V.fail(f, "X", "data with a finite cyclic-order boundary", "none found")
    hi = lo * step
    for _ in range(60):
        if g(hi) > 0:
            break
        lo, hi = hi, hi * step
    else:  # pragma: no cover
        raise V.fail(f, "X", "data with a finite cyclic-order boundary", "none found")
    lr = float(_brentq(g, lo, hi, rtol=1e-12, xtol=1e-300))
    grid = np.array(sorted(evals))
    vals = np.array([evals[e] for e in grid])
    return ASBoundary(lr=lr, lr_low=lr, lr_high=lr, confidence=confidence, lrs=grid,
                      exponent=vals, stderr=np.zeros_like(vals), ms_lr=lr, order="cyclic",
                      batch_size=B, momentum=beta, nesterov=nesterov, seeds=1, steps=spe)


# =========================================================================== lambda_max


@dataclass(frozen=True)
class LSPEstimate:
    """On-line estimate of lambda_max (LeCun, Simard & Pearlmutter 1993).

    Attributes
    ----------
    estimate : float
        Mean of ||Psi|| over the last ``window`` presentations.
    history : (presentations,) the raw ||Psi|| after each presentation (it fluctuates
        with the pattern: use ``estimate``).
    psi : (d,) the final Psi (its direction estimates the top eigenvector)
    window : int
    lr_opt : float, 1/estimate (the lecture's eta_opt)
    lr_max : float, 2/estimate
    """

    estimate: float
    history: np.ndarray
    psi: np.ndarray
    window: int

    @property
    def lr_opt(self) -> float:
        return 1.0 / self.estimate

    @property
    def lr_max(self) -> float:
        return 2.0 / self.estimate


def _grad_p(x, yp, w):
    """Gradient of the single-pattern loss (1/2)(y - w.x)^2."""
    return (w @ x - yp) * x


def lsp_lambda_max(X, y, *, presentations=5000, leak=0.01, alpha=0.01, window=1000, w=None,
                   order="shuffle", seed=0, bias=False) -> LSPEstimate:
    """On-line estimate of lambda_max of H = X^T X / P, one pattern at a time.

    The LeCun-Simard-Pearlmutter power method with finite-difference Hessian-vector
    products (Efficient BackProp sec. 9.2, eqs. 59-64): for each presented pattern p,

        Psi <- (1 - leak) Psi + (leak/alpha) [grad E_p(w + alpha Psi/||Psi||) - grad E_p(w)],

    whose fixed point has ||Psi|| = lambda_max; H is never formed.  The raw ||Psi||
    fluctuates with the pattern (relative size about sqrt(leak)), so the estimate is
    the mean of ||Psi|| over the last ``window`` presentations.  Then eta_opt =
    1/estimate, eta_max = 2/estimate (loss E = 1/(2P) sum (y - w.x)^2).

    Parameters
    ----------
    X : array (P, d)
    y : array (P,)
    presentations : int
        Number of patterns presented.
    leak : float in (0, 1)
        gamma, the memory of the running average (smaller: slower, less noisy).
    alpha : float > 0
        The perturbation (the finite difference is exact for the linear unit).
    window : int in [1, presentations]
    w : array, optional
        The point at which the Hessian is probed (default zeros); irrelevant for the
        quadratic loss up to rounding.
    order : {"shuffle", "replacement", "cyclic"}
        Pattern order (per-epoch permutation, i.i.d. draws, or 0..P-1).
    seed : int
        Seeds the start Psi (a random unit vector) and the order.
    bias : bool

    Returns
    -------
    LSPEstimate
    """
    f = "lsp_lambda_max"
    prob = PB.prepare(f, X, y, bias)
    presentations = V.integer(f, "presentations", presentations, minimum=1)
    leak = V.real(f, "leak", leak, positive=True, below=1.0)
    alpha = V.real(f, "alpha", alpha, positive=True)
    _cost.python_loop(f, "presentations", presentations, 16, 4 * prob.d)
    window = V.integer(f, "window", window, minimum=1, maximum=presentations)
    V.choice(f, "order", order, ("shuffle", "replacement", "cyclic"))
    seed = V.integer(f, "seed", seed, minimum=0)
    w = PB.initial_weights(f, w, prob, prob.d - int(prob.bias), name="w")
    Xa, ya, P = prob.X, prob.y, prob.P
    rng = np.random.default_rng(seed)
    psi = rng.standard_normal(prob.d)
    psi /= np.linalg.norm(psi)
    if order == "replacement":
        idx = rng.integers(0, P, presentations)
    elif order == "shuffle":
        idx = np.concatenate([rng.permutation(P) for _ in range(-(-presentations // P))])
    else:
        idx = np.arange(presentations) % P
    hist = np.empty(presentations)
    nrm = 1.0
    for k in range(presentations):
        p = idx[k]
        x = Xa[p]
        if nrm > 0:
            u = psi / nrm
            hv = (_grad_p(x, ya[p], w + alpha * u) - _grad_p(x, ya[p], w)) / alpha
            psi = (1.0 - leak) * psi + leak * hv
        nrm = float(np.linalg.norm(psi))
        hist[k] = nrm
    est = float(hist[-window:].mean())
    return LSPEstimate(estimate=est, history=hist, psi=psi, window=window)


@dataclass(frozen=True)
class PowerEstimate:
    """Batch power method for lambda_max (see :func:`power_lambda_max`).

    Attributes
    ----------
    estimate : float (the Rayleigh quotient u.Hu of the final unit vector)
    vector : (d,) the top eigenvector estimate (unit norm)
    iterations : int
    converged : bool
    history : (iterations,) ||H u|| per iteration (LSP's ||Psi||)
    """

    estimate: float
    vector: np.ndarray
    iterations: int
    converged: bool
    history: np.ndarray


def power_lambda_max(X, y=None, *, tol=1e-12, max_iter=100000, alpha=1.0, w=None, seed=0,
                     bias=False) -> PowerEstimate:
    """lambda_max of H = X^T X / P by the batch power method with finite-difference
    Hessian-vector products (LeCun, Simard & Pearlmutter 1993; THEORY.md sec. 2).

    Psi <- [grad E(w + alpha u) - grad E(w)]/alpha with u = Psi/||Psi|| (= H u exactly
    for the quadratic loss E = 1/(2P) sum (y - w.x)^2, up to rounding), until the
    residual ||H u - (u.Hu) u|| <= tol (u.Hu): the Rayleigh quotient is then within
    about tol^2 lambda_max^2/gap of an eigenvalue (the top one from a random start).
    Convergence is geometric in lambda_2/lambda_max: slow for a nearly degenerate top.

    Parameters
    ----------
    X : array (P, d)
    y : array (P,), optional (default zeros; it cancels in the difference)
    tol : float > 0
    max_iter : int
    alpha : float > 0
    w : array, optional (default zeros)
    seed : int (the random start)
    bias : bool

    Returns
    -------
    PowerEstimate
    """
    f = "power_lambda_max"
    if y is None:
        X = V.design(f, X)
        y = np.zeros(X.shape[0])
    prob = PB.prepare(f, X, y, bias)
    tol = V.real(f, "tol", tol, positive=True)
    max_iter = V.integer(f, "max_iter", max_iter, minimum=1)
    _cost.python_loop(f, "max_iter", max_iter, 32, 4 * prob.P * prob.d)
    alpha = V.real(f, "alpha", alpha, positive=True)
    seed = V.integer(f, "seed", seed, minimum=0)
    w = PB.initial_weights(f, w, prob, prob.d - int(prob.bias), name="w")
    Xa, ya, P = prob.X, prob.y, prob.P

    def grad(v):
        return Xa.T @ (Xa @ v - ya) / P

    g0 = grad(w)
    rng = np.random.default_rng(seed)
    u = rng.standard_normal(prob.d)
    u /= np.linalg.norm(u)
    hist = []
    converged = False
    rq = 0.0
    for _ in range(max_iter):
        hv = (grad(w + alpha * u) - g0) / alpha
        nrm = float(np.linalg.norm(hv))
        hist.append(nrm)
        rq = float(u @ hv)
        if nrm == 0.0:
            converged = True
            break
        if np.linalg.norm(hv - rq * u) <= tol * abs(rq):
            converged = True
            break
        u = hv / nrm
    return PowerEstimate(estimate=rq, vector=u, iterations=len(hist), converged=converged,
                         history=np.array(hist))


# =========================================================================== summary


def limits(X, *, bias=False, momentum=0.0, nesterov=False, batch_size=None, order=None,
           y=None, almost_sure=False, seeds=64, epochs=200, threads=None) -> dict:
    """The theoretical learning-rate limits for one dataset, for reports and plots.

    Keys (floats; NaN where not applicable):

    * ``"lambda_max"``; ``"gd"``: 2/lambda_max; ``"gd_opt"``: 1/lambda_max;
      ``"minimax"``: 2/(lambda_max + lambda_min).
    * ``"momentum"``: :func:`momentum_lr_max` (NaN when momentum = 0).
    * ``"sgd_ms"``: :func:`sgd_ms_critical_lr` (needs ``batch_size``): batches with
      replacement for ``order="replacement"``, random B-subsets otherwise; for
      ``"shuffle"`` that is the i.i.d.-subset process, the nearest closed form to
      per-epoch reshuffling.  For ``order="cyclic"`` (deterministic) the exact limit.
    * ``"sgd_as"``: :func:`sgd_as_critical_lr` ``.lr``: exact and cheap for cyclic
      order, otherwise computed only when ``almost_sure=True`` (a simulation).

    ``y`` is accepted for symmetry and ignored (the limits do not depend on labels).
    """
    f = "limits"
    Xa, H = _x_only(f, X, bias)
    P = Xa.shape[0]
    beta = V.momentum(f, momentum)
    nesterov = V.boolean(f, "nesterov", nesterov)
    almost_sure = V.boolean(f, "almost_sure", almost_sure)
    if order is not None:
        V.choice(f, "order", order, tuple(ST.ORDERS))
    if batch_size is not None:
        batch_size = V.integer(f, "batch_size", batch_size, minimum=1, maximum=P)
    V.threads(f, threads)
    seeds = V.integer(f, "seeds", seeds, minimum=2)
    epochs = V.integer(f, "epochs", epochs, minimum=1)
    if almost_sure and batch_size is not None and order != "cyclic":
        _cost.lyapunov(f, seeds, epochs, epochs // 10, 32, P, Xa.shape[1])
    lam = scipy.linalg.eigvalsh(H)
    _nonzero(f, lam)
    pos = lam[lam > _FLAT * lam[-1]]
    nan = float("nan")
    out = {"lambda_max": float(lam[-1]), "gd": float(2.0 / lam[-1]),
           "gd_opt": float(1.0 / lam[-1]), "minimax": float(2.0 / (pos[-1] + pos[0])),
           "momentum": momentum_lr_max(float(lam[-1]), beta, nesterov) if beta > 0 else nan,
           "sgd_ms": nan, "sgd_as": nan}
    if batch_size is None:
        return out
    order = order or "shuffle"
    Xb = Xa[:, :-1] if bias else Xa
    if order == "cyclic":
        a = sgd_as_critical_lr(Xb, batch_size=batch_size, order="cyclic", momentum=beta,
                               nesterov=nesterov, bias=bias)
        out["sgd_ms"] = out["sgd_as"] = a.lr
        return out
    if beta == 0.0 or pos.size <= _DENSE_MAX // 2:
        out["sgd_ms"] = sgd_ms_critical_lr(Xb, batch_size, order == "replacement", bias,
                                           momentum=beta, nesterov=nesterov)
    if almost_sure:
        out["sgd_as"] = sgd_as_critical_lr(Xb, batch_size=batch_size, order=order,
                                           momentum=beta, nesterov=nesterov, bias=bias,
                                           seeds=seeds, epochs=epochs, threads=threads).lr
    return out
