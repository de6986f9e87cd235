"""lambda_max of H = X^T X / P without forming H: finite-difference Hessian-vector
products, on-line (LeCun, Simard & Pearlmutter, "Automatic Learning Rate Maximization by
On-Line Estimation of the Hessian's Eigenvectors", NIPS 5, 1993) and batch (the power
method).  Loss E(w) = 1/(2P) sum (y - w.x)^2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fastgd import validate as V
from fastgd.engine import cost as _cost
from fastgd.linear import problem as PB

__all__ = ["LSPEstimate", "PowerEstimate", "lsp_lambda_max", "power_lambda_max"]


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

    Examples
    --------
    >>> import fastgd as fg
    >>> e = fg.theory.lsp_lambda_max(*fg.lecture_data(), presentations=2000, window=500)
    >>> e.history.shape, e.psi.shape, e.lr_max == 2 * e.lr_opt
    ((2000,), (2,), True)
    """

    estimate: float
    history: np.ndarray
    psi: np.ndarray
    window: int

    @property
    def lr_opt(self) -> float:
        """1/estimate, the lecture's eta_opt."""
        return 1.0 / self.estimate

    @property
    def lr_max(self) -> float:
        """2/estimate, the estimated batch-GD limit eta_max."""
        return 2.0 / self.estimate


def _grad_p(x, yp, w):
    """Gradient of the single-pattern loss (1/2)(y - w.x)^2."""
    return (w @ x - yp) * x


def _pattern_order(rng, order, P, presentations):
    """Indices of the presented patterns: i.i.d. draws, per-epoch permutations or 0..P-1."""
    if order == "replacement":
        return rng.integers(0, P, presentations)
    if order == "shuffle":
        return np.concatenate([rng.permutation(P) for _ in range(-(-presentations // P))])
    return np.arange(presentations) % P


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

    Examples
    --------
    >>> import fastgd as fg
    >>> e = fg.theory.lsp_lambda_max(*fg.lecture_data())  # lambda_max = 0.84
    >>> bool(abs(e.estimate - 0.84) < 0.01)
    True
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
    idx = _pattern_order(rng, order, P, presentations)
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

    Examples
    --------
    >>> import fastgd as fg
    >>> e = fg.theory.power_lambda_max(fg.lecture_data().X)
    >>> e.vector.shape, e.iterations == e.history.size, e.converged
    ((2,), True, True)
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

    Examples
    --------
    >>> import fastgd as fg
    >>> round(fg.theory.power_lambda_max(fg.lecture_data().X).estimate, 12)
    0.84
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
