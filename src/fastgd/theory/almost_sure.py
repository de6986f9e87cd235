"""SGD's almost-sure (typical-run) divergence boundary.

The error of SGD with noise-free labels is a random matrix product; a typical single
run diverges iff its top Lyapunov exponent is positive.  For random orders the exponent
is simulated (:mod:`fastgd.theory.lyapunov`) on two grids of rates and its zero found
with a confidence interval; for cyclic order it is the exact root of the log spectral
radius of the epoch product.  The boundary lies above the mean-square limit
(:mod:`fastgd.theory.mean_square`; the package docstring explains the gap).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

from fastgd import status as ST
from fastgd import validate as V
from fastgd.engine import cost as _cost
from fastgd.engine import grid as G
from fastgd.theory._common import _brentq, _nonzero, _reduce, _x_only
from fastgd.theory.lyapunov import _epoch_product_log_rho, _first_crossing, _lyapunov, _mean_se
from fastgd.theory.mean_square import _ms_crit_closed
from fastgd.theory.momentum import momentum_lr_max

__all__ = ["ASBoundary", "sgd_as_critical_lr"]


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

    Examples
    --------
    >>> import fastgd as fg
    >>> a = fg.theory.sgd_as_critical_lr(fg.lecture_data().X, order="cyclic")
    >>> a.order, a.lr == a.lr_low == a.lr_high == a.ms_lr, a.steps
    ('cyclic', True, 100)
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
    two, runs stay finite but heavy-tailed (:mod:`fastgd.theory` docstring).

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

    Examples
    --------
    >>> import fastgd as fg
    >>> X = fg.lecture_data().X
    >>> round(fg.theory.sgd_as_critical_lr(X, order="cyclic").lr, 6)  # exact for cyclic
    2.463183
    """
    f = "sgd_as_critical_lr"
    Xa, H, B, beta, nesterov, seeds, epochs, burn, confidence, lanes = _as_arguments(
        f, X, y, batch_size, order, momentum, nesterov, seeds, epochs, burn_in, confidence,
        bias, threads, lanes)
    _nonzero(f, scipy.linalg.eigvalsh(H))
    Xr, lam, _ = _reduce(Xa, H)
    spe = -(-Xa.shape[0] // B)
    gd_lim = momentum_lr_max(float(lam[-1]), beta, nesterov)
    if order == "cyclic":
        with np.errstate(all="ignore"):
            return _as_cyclic(f, Xr, B, beta, nesterov, gd_lim, spe, confidence, seeds)
    ms_iid = _ms_crit_closed(Xr, lam, 1.0 / B)  # i.i.d. draws without momentum
    ms = ms_iid if beta == 0.0 and order == "replacement" else float("nan")
    base = ms_iid * (gd_lim * lam[-1] / 2.0)  # the search starts near it
    fine, m2, se2, q = _as_scan(f, Xr, B, ST.ORDERS[order], beta, nesterov, seeds, epochs,
                                burn, confidence, lanes, threads, base)
    lr, lr_low, lr_high = _as_interval(fine, m2, se2, q)
    return ASBoundary(lr=lr, lr_low=lr_low, lr_high=lr_high,
                      confidence=confidence, lrs=fine, exponent=m2, stderr=se2, ms_lr=ms,
                      order=order, batch_size=B, momentum=beta, nesterov=nesterov,
                      seeds=seeds, steps=epochs * spe)


def _as_arguments(f, X, y, batch_size, order, momentum, nesterov, seeds, epochs, burn_in,
                  confidence, bias, threads, lanes):
    """The checked arguments of :func:`sgd_as_critical_lr` (checked in signature order,
    then the cost of the simulation): (X with bias column, H, B, beta, nesterov, seeds,
    epochs, burn-in epochs, confidence, lanes)."""
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
    return Xa, H, B, beta, nesterov, seeds, epochs, burn, confidence, lanes


def _as_scan(f, Xr, B, order_code, beta, nesterov, seeds, epochs, burn, confidence, lanes,
             threads, base):
    """Simulated exponents on two grids of ``lanes`` rates: a geometric one moved until
    it brackets the zero of the seed mean, then a linear one across the confidence band.

    Returns (fine grid, mean exponent, its standard error, t quantile q).
    """
    keys = np.stack([G.seed_key(s) for s in range(seeds)])
    from scipy.stats import t as student_t  # here: scipy.stats is slow to import

    q = float(student_t.ppf(0.5 + confidence / 2.0, seeds - 1))

    def evaluate(grid):
        g = _lyapunov(Xr, grid, B, order_code, beta, nesterov, keys, epochs, burn, nthreads)
        m, se = _mean_se(g)
        return m, se

    with G.using_threads(f, threads) as nthreads, np.errstate(all="ignore"):
        grid, m, se = _as_coarse(f, evaluate, base, lanes)
        fine = np.linspace(*_as_fine_range(grid, m, se, q, lanes), lanes)
        m2, se2 = evaluate(fine)
    return fine, m2, se2, q


def _as_coarse(f, evaluate, base, lanes):
    """A geometric grid [lo, hi] (from [base/2, 4 base]) on which the mean exponent
    starts <= 0 and turns positive: moved down 8x while its first rate already grows,
    up 8x while none does.  Returns (grid, mean, stderr)."""
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
        return grid, m, se
    else:  # pragma: no cover
        raise V.fail(f, "X", "data with a finite almost-sure boundary", "none found")


def _as_fine_range(grid, m, se, q, lanes):
    """The end points of the second grid: around the crossings of mean + q se (first)
    and mean - q se (last) on the coarse grid, and of the mean itself."""
    up, dn = m + q * se, m - q * se
    k_up = np.flatnonzero(up > 0)
    k_dn = np.flatnonzero(dn > 0)
    # (one more coarse cell on each side: the coarse crossings are noisy too)
    a = grid[max(k_up[0] - 2, 0)] if k_up.size else grid[0]
    b = grid[min(k_dn[0] + 1, lanes - 1)] if k_dn.size else grid[-1]
    k_m = np.flatnonzero(m > 0)[0]
    a = min(a, grid[max(k_m - 2, 0)])
    b = max(b, grid[min(k_m + 1, lanes - 1)])
    return a, b


def _as_interval(fine, m2, se2, q):
    """(lr, lr_low, lr_high): the first zero crossings of the mean exponent and of
    mean +/- q se on the fine grid (the grid's ends where the band does not cross)."""
    lr = _first_crossing(fine, m2)
    lr_low = _first_crossing(fine, m2 + q * se2)
    lr_high = _first_crossing(fine, m2 - q * se2)
    if np.isnan(lr_low):
        lr_low = float(fine[0])
    if np.isnan(lr_high):
        lr_high = float(fine[-1])
    return lr, float(min(lr_low, lr)), float(max(lr_high, lr))


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
