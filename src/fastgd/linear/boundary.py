"""The divergence boundary in the learning rate of one dataset (:func:`critical_lr`).

GD: the closed form from the spectrum of H, or (``check=True``) a multisection on the
long-run growth rate of the error; SGD: the rate at which half of the seeds diverge
within the budget, by successive sweeps refined around the crossing.

Convention: E(w) = 1/(2P) sum_p (y_p - w.x_p)^2, H = X^T X / P, batch GD diverges
above 2/lambda_max.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fastgd import status as ST
from fastgd import validate as V
from fastgd.engine import cost as _cost
from fastgd.engine import grid as G
from fastgd.engine.blas import single_blas
from fastgd.linear import problem as PB
from fastgd.linear import sweep as SW

__all__ = ["Boundary", "critical_lr"]


@dataclass(frozen=True)
class Boundary:
    """The divergence boundary of one dataset and method (see :func:`critical_lr`).

    Attributes
    ----------
    lr : float
        The critical learning rate.
    lo, hi : float
        Final bracket (``lo`` stable / below half, ``hi`` unstable / above half).
    method : str
    criterion : str
        ``"spectrum"`` (GD: the closed form from lambda_max), ``"growth"`` (GD with
        ``check=True``: the sign of the long-run growth rate of the error) or
        ``"half-diverged"`` (SGD: half of the seeds diverge within the budget) or
        ``"frozen-preconditioner"`` (an adaptive optimizer with its preconditioner
        frozen: the closed form of :func:`fastgd.theory.adaptive_lr_max`).
    lrs, fraction : arrays
        SGD: the final grid and its diverged fraction (the fraction curve); GD: the
        final grid and its growth rate per step (``growth``).
    growth : array or None
        GD: log growth rate of ||(e, buf)|| per step on ``lrs``.

    Examples
    --------
    >>> import fastgd as fg
    >>> b = fg.critical_lr(*fg.lecture_data())
    >>> b.criterion, b.lo == b.hi == b.lr
    ('spectrum', True)
    """

    lr: float
    lo: float
    hi: float
    method: str
    criterion: str
    lrs: np.ndarray
    fraction: np.ndarray | None = None
    growth: np.ndarray | None = None

    def __repr__(self):
        r = (f"Boundary(lr={self.lr:.7g}, method={self.method!r}, "
             f"criterion={self.criterion!r}")
        if self.hi > self.lo:
            r += f", bracket=[{self.lo:.7g}, {self.hi:.7g}] ({self.hi / self.lo - 1:.2g} wide)"
        if self.lrs is not None and np.size(self.lrs) > 1:
            r += f", {np.size(self.lrs)}-point final grid"
        return r + ")"


def _gd_growth(prob, lrs, beta, nesterov, T1, T2, nthreads, renorm=16, seed=12345):
    """Long-run growth rate per step of the GD error map at each rate (difference of the
    accumulated log norms at T2 and T1 from the same random start: transients cancel)."""
    from fastgd.linear.contract import LinearInputs
    from fastgd.linear.executors import launch
    from fastgd.linear.table import KernelSpec

    d = prob.d
    rng = np.random.default_rng(seed)
    w0 = rng.standard_normal(d)
    w0 /= np.linalg.norm(w0)
    # the error map alone: w* = 0, E* = 0, unit loss scale
    inputs = LinearInputs(R=prob.R[None], wstar=np.zeros((1, d)), estar=np.zeros(1),
                          c0=np.ones(1), lr=lrs, beta=np.full(lrs.size, beta), w0=w0)
    logs, over = [], np.zeros(lrs.size, dtype=bool)
    for T in (T1, T2):
        out = G.Outputs(1, 1, lrs.size, d)
        spec = KernelSpec("gd", d, T, 0.0, np.inf, momentum=beta != 0, nesterov=nesterov,
                          renorm=renorm)
        launch(spec, inputs, G.make_chunks(1, 1, lrs.size, 64), nthreads, out)
        logs.append(out.logg[0, 0].copy())
        # a lane that overflowed between renormalisations stopped there: unstable
        over |= out.status[0, 0] == ST.Status.DIVERGED
    with np.errstate(invalid="ignore"):
        g = np.where(over, np.inf, (logs[1] - logs[0]) / (T2 - T1))
    # a lane that hit exactly zero (e.g. eta = 1/lambda with kappa = 1) is stable
    g = np.where(np.isnan(g), np.where(logs[1] > 0, np.inf, -np.inf), g)
    return g


@single_blas
def critical_lr(X, y, *, method="gd", momentum=0.0, nesterov=False, bias=False, rtol=None,
                steps=None, epochs=100, batch_size=1, order=ST.DEFAULT_ORDER, seeds=64,
                blowup=1e12, lr_range=None, threads=None, check=False, progress=None,
                max_work=None, optimizer="gd", betas=(0.9, 0.999), eps=1e-8,
                freeze_preconditioner=None, pre_freeze_lr=None) -> Boundary:
    """The divergence boundary in the learning rate for one dataset.

    GD (``method="gd"``): the long-run boundary, where the growth rate of the error
    crosses zero.  For the linear unit it is known in closed form from the spectrum
    of H: 2/lambda_max, with momentum beta 2(1 + beta)/lambda_max (Nesterov
    (2 + 2 beta)/((1 + 2 beta) lambda_max); :func:`fastgd.theory.momentum_lr_max`);
    that is what is returned (``criterion="spectrum"``, no simulation).
    ``check=True`` finds it by simulation instead, as a check of the kernels:
    multisection on a grid of 64 rates per round (each rate a SIMD lane); the growth
    rate is measured from blockwise renormalised runs, never from "diverged within T
    steps" (biased by about ln(blowup)/(4T)); it lands on the closed form to ``rtol``
    (default 1e-6; ``criterion="growth"``; longer runs on ill-conditioned data).

    SGD (``method="sgd"``): the rate at which half of the ``seeds`` runs diverge within
    ``epochs`` epochs, by successive grids refined around the crossing; returns the
    fraction curve of the final grid.  Default ``rtol`` 1e-3.  ``order="cyclic"`` is
    deterministic (no seed changes the sample order), so one seed is run whatever
    ``seeds`` says.  This budget boundary lies above the mean-square limit of
    :mod:`fastgd.theory`, and it is *not* bounded by the almost-sure (typical run)
    limit: a run just above that limit grows slowly and may not pass ``blowup``
    within the budget, so the budget boundary is biased upward (on scikit-learn's
    digits it lies about 9 % above the almost-sure limit with 100 epochs).

    Parameters
    ----------
    X, y : data.  momentum, nesterov, bias: as in :func:`fastgd.gd`.
    rtol : float
        Relative width of the final bracket (simulations only).
    steps : int
        GD with ``check=True``: steps per growth measurement (default chosen from the
        spectrum).
    epochs, batch_size, order, seeds, blowup
        SGD budget and options (``order`` defaults to ``fastgd.DEFAULT_ORDER``,
        "shuffle", as in :func:`fastgd.sgd` and :func:`fastgd.sweep`).
    lr_range : (lo, hi), optional
        Initial search range of a simulation (default from the trace of H).
    check : bool
        GD: run the growth-rate bisection instead of the closed form.
    progress : bool, optional
        Simulations: a progress bar over the rounds (the engine's, tqdm when installed);
        ``None`` (default): shown when the work done so far says the whole will take
        more than 1 s and stderr is a terminal.
    max_work : float, optional
        Simulations: refuse, before anything runs, a search whose estimated work
        exceeds this many units (multiply-adds of the kernels' inner loops, about
        3e9 a second: :mod:`fastgd.engine.cost`); default ``FASTGD_MAX_WORK``, else
        1e13.  The estimate counts the rounds the multisection needs for ``rtol`` and
        the steps each growth measurement runs (for ill-conditioned data GD needs
        ~20 kappa steps, capped at 4e6); the message says how to reduce it.
    optimizer : {"gd", "adam", "rmsprop", "adagrad"}
        An adaptive optimizer (batch, :mod:`fastgd.linear.adaptive`) has a boundary only
        with its preconditioner frozen: give ``freeze_preconditioner=T`` and
        ``pre_freeze_lr`` (the rate of the T updates before the freeze, so that the
        frozen preconditioner P does not depend on the rate being tested).  The run of
        T updates is made and the closed form
        eta* = (2 + 2 beta1)/((1 - beta1) lambda_max(P^-1 H)) returned
        (:func:`fastgd.theory.adaptive_lr_max`; criterion ``"frozen-preconditioner"``).
        Without them there is no single boundary in eta -- the preconditioner itself
        depends on eta and Adam's steps are scale-free -- and the call says so (a
        ``FastGDValueError``) rather than return a number.  ``betas``, ``eps``: as in
        :func:`fastgd.gd`.

    Returns
    -------
    Boundary

    Examples
    --------
    >>> import fastgd as fg
    >>> X, y = fg.lecture_data()
    >>> round(fg.critical_lr(X, y).lr, 5)      # 2/0.84
    2.38095
    """
    f = "critical_lr"
    if V.choice(f, "optimizer", optimizer, ("gd", "adam", "rmsprop", "adagrad")) != "gd":
        return _critical_adaptive(f, X, y, method, bias, optimizer, betas, eps,
                                  freeze_preconditioner, pre_freeze_lr)
    prob, momentum, nesterov, rtol, steps, lo, hi, check = _arguments(
        f, X, y, method, momentum, nesterov, bias, rtol, steps, epochs, batch_size, order,
        seeds, blowup, lr_range, threads, check)
    progress = V.boolean(f, "progress", progress, allow_none=True)
    if max_work is not None:
        max_work = V.real(f, "max_work", max_work, positive=True, finite=False)
    if method == "gd" and not check:
        return _critical_gd_spectrum(prob, momentum, nesterov)
    if method == "gd" and lr_range is not None:  # the search reaches 1e24 beyond the range
        known = _critical_gd_spectrum(prob, momentum, nesterov).lr
        if not lo * 1e-24 < known < hi * 1e24:
            raise V.fail(f, "lr_range", f"a range within a factor 1e24 of the boundary "
                         f"({known:.3g})", f"({lo:g}, {hi:g})")
    if method == "gd":
        steps = _gd_steps(f, prob, rtol, steps)
    rounds = _budget(f, method, prob, rtol, steps, epochs, seeds, order, lo, hi, max_work)
    bar = G.Progress(rounds, progress, f"critical_lr {method}")
    try:
        with G.using_threads(f, threads) as nthreads, np.errstate(all="ignore"):
            if method == "gd":
                b = _critical_gd(f, prob, momentum, nesterov, rtol, steps, lo, hi,
                                 nthreads, bar)
            else:
                b = _critical_sgd(f, prob, momentum, nesterov, rtol, epochs, batch_size,
                                  order, seeds, blowup, lo, hi, nthreads, threads, bar)
        bar.update(bar.total)
        return b
    finally:
        bar.close()


#: rates per round of the searches (one SIMD lane each)
GRID = 64


def _rounds(lo, hi, rtol, shrink):
    """Rounds a search needs: one to bracket (more when the range misses the boundary)
    and the refinements of the first bracket, a grid step of [lo, hi] wide, by
    ``shrink`` each, down to ``rtol``."""
    width = (hi / lo) ** (1.0 / (GRID - 1)) - 1.0
    return 1 + max(0, math.ceil(math.log(max(width / rtol, 1.0)) / math.log(shrink)))


def _budget(f, method, prob, rtol, steps, epochs, seeds, order, lo, hi, max_work):
    """The search's estimated rounds, and its work checked against ``max_work`` (before
    any kernel runs).  Returns the rounds."""
    d = prob.d
    if method == "gd":
        rounds = _rounds(lo, hi, rtol, GRID + 1)
        work = rounds * GRID * 1.5 * steps * d * d
        what = f"~{rounds} rounds x {GRID} rates x {1.5 * steps:,.0f} steps x {d * d:,}"
        hint = "use a larger rtol or fewer steps="
    else:
        n_seed = 1 if order == "cyclic" else (
            int(seeds) if np.ndim(seeds) == 0 else int(np.size(seeds)))
        rounds = _rounds(lo, hi, rtol, GRID - 1)
        work = rounds * GRID * n_seed * float(epochs) * prob.P * d
        what = (f"~{rounds} rounds x {GRID} rates x {n_seed:,} seeds x {epochs:,} epochs x "
                f"{prob.P * d:,}")
        hint = "use a larger rtol, fewer seeds or fewer epochs"
    _cost.check(f, "steps" if method == "gd" else "epochs", work=work, work_what=what,
                max_work=max_work, hint=hint)
    return rounds


def _arguments(f, X, y, method, momentum, nesterov, bias, rtol, steps, epochs, batch_size,
               order, seeds, blowup, lr_range, threads, check):
    """:func:`critical_lr`'s arguments checked and completed: (problem, momentum,
    nesterov, rtol, steps, lo, hi, check)."""
    V.choice(f, "method", method, ("gd", "sgd"))
    prob = PB.prepare(f, X, y, bias)
    momentum = V.momentum(f, momentum)
    nesterov = V.boolean(f, "nesterov", nesterov)
    if rtol is None:
        rtol = 1e-6 if method == "gd" else 1e-3
    rtol = V.real(f, "rtol", rtol, positive=True)
    if rtol < RTOL_MIN:
        raise V.fail(f, "rtol", f">= {RTOL_MIN:.3g} (64 x float64's epsilon: a finer bracket "
                     "of 64 rates cannot be resolved)", rtol)
    V.threads(f, threads)
    if method == "sgd":
        V.integer(f, "batch_size", batch_size, minimum=1, maximum=prob.P)
        V.choice(f, "order", order, tuple(ST.ORDERS))
        V.blowup(f, blowup)
    steps = _cost.critical(f, method, steps, epochs, seeds, prob.P, prob.d)
    trH = float(np.trace(prob.H))
    if trH <= 0:
        if np.any(prob.X != 0):
            raise V.fail(f, "X", "large enough for H = X^T X / P to be non-zero in float64 "
                         "(|X|max above about 1e-154)",
                         f"|X|max = {np.max(np.abs(prob.X)):.3g}: H underflows to 0")
        raise V.fail(f, "X", "not identically zero", "H = 0 (no boundary exists)")
    if lr_range is None:
        lo, hi = 0.1 / trH, 1e3 / trH
    else:
        lo, hi = V.pair(f, "lr_range", lr_range)
    check = V.boolean(f, "check", check)
    return prob, momentum, nesterov, rtol, steps, lo, hi, check


def _critical_gd_spectrum(prob, momentum, nesterov):
    """The GD boundary from lambda_max of H (from the data, as :func:`fastgd.spectrum`)."""
    from fastgd.spectrum import eigenvalues_from_data
    from fastgd.theory import momentum_lr_max

    lam_max = float(eigenvalues_from_data(prob.X)[-1])
    lr = (momentum_lr_max(lam_max, momentum, nesterov) if momentum > 0 or nesterov
          else 2.0 / lam_max)
    return Boundary(lr=float(lr), lo=float(lr), hi=float(lr), method="gd",
                    criterion="spectrum", lrs=np.array([lr]))


def _gd_steps(f, prob, rtol, steps):
    """Steps per growth measurement: ``steps``, or by default long enough for the
    transients along other directions, which decay like (1 - 2 lambda_min/lambda_max)^t,
    to vanish, and for the top rate to be resolved (at most 4e6)."""
    if steps is not None:
        return V.integer(f, "steps", steps, minimum=100)
    from fastgd.spectrum import eigenvalues_from_data

    lam = eigenvalues_from_data(prob.X)
    pos = lam[lam > 1e-12 * lam[-1]]
    gap = max(pos[0] / lam[-1], 1e-6)
    return int(min(max(20.0 / gap, 0.2 / rtol, 2000), 4e6))


#: the finest relative bracket critical_lr resolves
RTOL_MIN = 64 * float(np.finfo(np.float64).eps)


def _grid(f, lo, hi):
    """64 rates from lo to hi (a search moving out of float64's range: lr_range's fault)."""
    if not (0 < lo < hi < np.inf):
        raise V.fail(f, "lr_range", "a range near the boundary (the search left float64's "
                     "range)", f"a grid ({lo:g}, {hi:g})")
    return np.geomspace(lo, hi, 64)


def _critical_gd(f, prob, momentum, nesterov, rtol, steps, lo, hi, nthreads, bar):
    grid = np.geomspace(lo, hi, GRID)
    done = 0
    for _ in range(8):
        g = _gd_growth(prob, grid, momentum, nesterov, steps // 2, steps, nthreads)
        done = _advance(bar, done)
        unstable = np.flatnonzero(g > 0)
        if unstable.size == 0:
            grid = _grid(f, grid[-1], grid[-1] * 1e3)
            continue
        k = unstable[0]
        if k == 0:
            grid = _grid(f, grid[0] * 1e-3, grid[0])
            continue
        lo, hi = grid[k - 1], grid[k]
        break
    else:
        raise V.fail(f, "lr_range", "a range within a factor 1e24 of the boundary",
                     "no rate in reach changes stability")
    while (hi - lo) / lo > rtol:
        grid = np.linspace(lo, hi, 66)[1:-1]
        g = _gd_growth(prob, grid, momentum, nesterov, steps // 2, steps, nthreads)
        done = _advance(bar, done)
        unstable = np.flatnonzero(g > 0)
        if unstable.size == 0:
            lo = grid[-1]
        else:
            k = unstable[0]
            hi = grid[k]
            if k > 0:
                lo = grid[k - 1]
    return Boundary(lr=float(0.5 * (lo + hi)), lo=float(lo), hi=float(hi), method="gd",
                    criterion="growth",
                    lrs=grid, growth=g)


def _advance(bar, done):
    """One more round done: the bar moves (never to its end before the search ends:
    a search may need more rounds than estimated)."""
    done += 1
    bar.update(min(done, bar.total - 1))
    return done


def _critical_sgd(f, prob, momentum, nesterov, rtol, epochs, batch_size, order, seeds, blowup,
                  lo, hi, nthreads, threads, bar):
    data = [(prob.X[:, :-1] if prob.bias else prob.X, prob.y)]
    if order == "cyclic":  # the order does not depend on the seed: one is enough
        seeds = [0]
    kw = dict(method="sgd", data=data, epochs=epochs, batch_size=batch_size, order=order,
              seeds=seeds, momentum=momentum, nesterov=nesterov, bias=prob.bias, tol=0.0,
              blowup=blowup, threads=threads, progress=False)
    grid = np.geomspace(lo, hi, 64)
    done = 0
    for _ in range(40):
        res = SW.sweep(lr=grid, **kw)  # through the module: tests spy on it
        done = _advance(bar, done)
        frac = res.diverged_fraction()[0]
        k = np.flatnonzero(frac >= 0.5)
        if k.size == 0:
            grid = _grid(f, grid[-1], grid[-1] * 100)
            continue
        k = k[0]
        if k == 0:
            grid = _grid(f, grid[0] / 100, grid[0])
            continue
        lo, hi = grid[k - 1], grid[k]
        if (hi - lo) / lo <= rtol:
            break
        grid = np.geomspace(lo, hi, 64)
    else:
        raise V.fail(f, "X", "data with a finite divergence boundary", "none found")
    lr = float(res.critical_lr(0.5)[0])
    return Boundary(lr=lr, lo=float(lo), hi=float(hi), method="sgd", criterion="half-diverged",
                    lrs=grid,
                    fraction=frac)


def _critical_adaptive(f, X, y, method, bias, optimizer, betas, eps, freeze, pre_lr):
    """:func:`critical_lr` for an adaptive optimizer: the frozen-preconditioner closed
    form, or a clear refusal where no boundary in eta exists."""
    if V.choice(f, "method", method, ("gd", "sgd")) != "gd":
        raise V.fail(f, "method", "'gd' (batch) with an adaptive optimizer", method)
    if freeze is None or pre_lr is None:
        name = "freeze_preconditioner" if freeze is None else "pre_freeze_lr"
        raise V.fail(f, name, "given with an adaptive optimizer: with one learning rate "
                     "for both phases the preconditioner depends on eta (Adam's steps are "
                     "scale-free), so no single boundary in eta exists; freeze it after T "
                     "updates at pre_freeze_lr", None)
    from fastgd.linear.adaptive import run_adaptive

    freeze = V.integer(f, "freeze_preconditioner", freeze, minimum=1)
    run = run_adaptive(f, X, y, pre_lr, freeze, optimizer=optimizer, betas=betas, eps=eps,
                       warmup=0, lr_init=0.0, schedule="constant", decay_steps=None,
                       decay_factor=None, freeze_preconditioner=freeze,
                       pre_freeze_lr=pre_lr, w0=None, bias=bias, tol=0.0, blowup=np.inf,
                       record=False)
    if run.frozen_v_hat is None:  # the run stopped before the freeze
        raise V.fail(f, "freeze_preconditioner", f"reached by the run ({run.status.name} "
                     "before it): lower it", freeze)
    eta = run.frozen_lr_max(X, bias=bias)
    return Boundary(lr=eta, lo=eta, hi=eta, method="gd", criterion="frozen-preconditioner",
                    lrs=np.array([eta]))
