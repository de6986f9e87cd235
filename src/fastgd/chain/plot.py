"""Figures of the scalar chain networks (:mod:`fastgd.chain`): the 1-1-1 network's loss
landscape with trajectories, and the phase diagram of a chain sweep.  matplotlib's
object API, imported inside the functions; each takes an optional ``ax`` and returns
the axes it drew on, and :mod:`fastgd.plot` re-exports them.

Loss: E(w) = c/(2P) sum_p (y_p - w_2 w_1 x_p)^2 with the loss scale c; the lecture's
1-1-1 network uses the unhalved (1 - W1 W2)^2, i.e. ``loss_scale=2``.
"""

from __future__ import annotations

import numpy as np

from fastgd import validate as V
from fastgd.chain.model import _stats, chain_loss, chain_minima
from fastgd.chain.sweep import ChainSweepResult
from fastgd.figures import (
    COLORS,
    CYCLE,
    REGION_COLORS,
    REGION_LABELS,
    axes,
    below,
    check,
    finish,
    halo,
    instance,
    log_edges,
    run_items,
    run_list,
    trajectory,
)

__all__ = ["plot_chain_landscape", "plot_chain_phase"]


# ----------------------------------------------------------------- the landscape
def _landscape(ax, x, y, loss_scale, lim, levels):
    """Filled contours of L on [−lim, lim]², geometric in L − min L."""
    g = np.linspace(-lim, lim, 301)
    W1, W2 = np.meshgrid(g, g)
    L = np.asarray(chain_loss(np.stack([W1, W2], axis=-1), x, y, loss_scale=loss_scale))
    lmin = float(L.min())
    top = float(L.max())
    lev = lmin + np.geomspace(max(top - lmin, 1e-12) * 1e-3, (top - lmin) * 0.8, levels)
    cf = ax.contourf(W1, W2, L, levels=np.concatenate([[lmin], lev, [top]]), cmap="Greys",
                     alpha=0.35, extend="neither")
    cf.set_gid("landscape")
    ax.contour(W1, W2, L, levels=lev, colors="0.5", linewidths=0.6)
    ax.plot([], [], color="0.5", lw=0.6, gid="contours_key",  # the contours' legend entry
            label="contours of the loss (darker: higher)")


def _minima_and_saddle(ax, x, y, lim):
    """The hyperbola of minima w1 w2 = π*, the saddle at 0 and the balanced diagonals."""
    xs = np.atleast_1d(np.asarray(x, float))
    ys = np.atleast_1d(np.asarray(y, float))
    pstar = float(np.mean(xs * ys) / np.mean(xs * xs))
    if pstar != 0:
        a = abs(pstar) / lim
        u = np.geomspace(a, lim, 200)
        for k, sgn in enumerate((1.0, -1.0)):
            w1 = sgn * u
            ax.plot(w1, pstar / w1, color=COLORS["blue"], lw=2.2, gid=f"hyperbola{k}",
                    label=f"minima w$_1$w$_2$ = {pstar:g}" if k == 0 else None)
    ax.plot([0], [0], marker="X", ms=11, color="white", mec="black", mew=1.5,
            ls="none", label="saddle (0, 0)", gid="saddle", zorder=6)
    ax.plot([-lim, lim], [-lim, lim], color="0.4", lw=0.8, ls=":", label="balanced w$_1$ = w$_2$")
    ax.plot([-lim, lim], [lim, -lim], color="0.4", lw=0.8, ls=":")


def _chain_runs(ax, items, f, max_points):
    """Trajectories, a larger rate under a smaller one (a run that jumps far would hide a
    short one from the same start), a diverging run dashed; one start square per start."""
    lrs = np.array([float(getattr(r, "lr", np.nan)) for _, r in items])
    rank = np.argsort(np.argsort(np.where(np.isfinite(lrs), -lrs, -np.inf), kind="stable"))
    starts = []
    for k, (lab, r) in enumerate(items):
        tr = trajectory(r, f, "runs")[:max_points]
        col = CYCLE[(k + 1) % len(CYCLE)]
        ok = np.all(np.isfinite(tr), axis=1)
        div = bool(getattr(r, "diverged", False))
        if lab is None and hasattr(r, "lr"):
            lab = f"GD η = {r.lr:g}" + (" (diverges)" if div else "")
        (line,) = ax.plot(tr[ok, 0], tr[ok, 1], color=col, lw=1.1 if div else 1.6,
                          ls="--" if div else "-", marker="o", ms=2.5, label=lab,
                          zorder=3 + rank[k] / max(len(items), 1))
        line.set_gid(f"run{k}")
        if not any(np.array_equal(tr[0], s0) for s0 in starts):
            starts.append(tr[0])
    for k, s0 in enumerate(starts):  # after the runs: the legend lists them first
        ax.plot(s0[0], s0[1], marker="s", ms=7, color="white", mec="black", ls="none",
                zorder=6, gid=f"start{k}", label="start w$_0$" if k == 0 else None)


def plot_chain_landscape(runs=(), *, ax=None, x=1.0, y=1.0, loss_scale=1.0, lim=2.5,
                         levels=16, max_points=200, title=None, legend=True):
    """The 1-1-1 network's landscape L(w1, w2) = c/(2P) Σ (y − w2 w1 x)² with the
    hyperbola of minima w1 w2 = π* (π* = Σxy/Σx², 1 for the lecture's x = y = 1),
    the saddle at the origin and trajectories.

    Parameters
    ----------
    runs : ChainRun, array (n, 2), list of them or of (label, run), or dict
        Runs of :func:`fastgd.chain.chain_gd` with ``record=True`` (depth 2).
    x, y : float or arrays
        Samples.
    loss_scale : float
        c (2 gives the lecture's (1 − W1 W2)²).
    lim : float
        The square [−lim, lim]² is shown.
    levels : int
        Number of contour levels (geometric in L − min L).
    max_points : int
        Draw at most this many points of each trajectory.
    title : str, optional
    legend : bool

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from fastgd.plot import plot_chain_landscape
    >>> ax = plot_chain_landscape({"by hand": np.array([[0.5, 1.5], [0.8, 1.2]])},
    ...                           loss_scale=2.0, levels=4)
    >>> [l.get_gid() for l in ax.lines][:4]
    ['contours_key', 'hyperbola0', 'hyperbola1', 'saddle']
    """
    f = "plot_chain_landscape"
    check(f, ax=ax, title=title, legend=legend)
    lim = V.real(f, "lim", lim, positive=True)
    if lim > 1e50:
        raise V.fail(f, "lim", "<= 1e50 (the landscape's squares must stay finite)", lim)
    levels = V.integer(f, "levels", levels, minimum=2)
    max_points = V.integer(f, "max_points", max_points, minimum=2)
    _stats(f, x, y, loss_scale)
    run_list(f, runs, "trajectory")
    ax = axes(ax, figsize=(5.6, 5.4))
    _landscape(ax, x, y, loss_scale, lim, levels)
    _minima_and_saddle(ax, x, y, lim)
    _chain_runs(ax, run_items(runs, f), f, max_points)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    return finish(ax, "first-layer weight w$_1$", "second-layer weight w$_2$", title, legend,
                  **below())


# ----------------------------------------------------------------- the phase diagram
def _init_axis(inits, y):
    """(row order, centres, edges, label) of the initialisation axis; rows whose value
    is not strictly increasing fall back to the row index."""
    if y == "imbalance":
        yv = inits[:, 0] ** 2 - inits[:, -1] ** 2
        ylabel = "initial imbalance w$_1^2$ − w$_2^2$"
    elif y == "scale":
        yv = np.prod(inits, axis=1)
        ylabel = "initial product w$_1$w$_2$"
    else:
        yv = np.arange(inits.shape[0], dtype=float)
        ylabel = "initialisation (row)"
    order = np.argsort(yv, kind="stable")
    yv = yv[order]
    if yv.size > 1 and not np.all(np.diff(yv) > 0):
        yv = np.arange(inits.shape[0], dtype=float)
        ylabel = "initialisation (row)"
    if yv.size == 1:
        ye = np.array([yv[0] - 0.5, yv[0] + 0.5])
    else:
        mid = 0.5 * (yv[1:] + yv[:-1])
        ye = np.concatenate([[yv[0] - (mid[0] - yv[0])], mid, [yv[-1] + (yv[-1] - mid[-1])]])
    return order, yv, ye, ylabel


def _guides(ax, result, order, yv, xe):
    """η = 2/λ0 per row and η = 2/λ_min over the minima (when inside the frame);
    returns the lines drawn."""
    handles = []
    lam0 = np.asarray(result.lambda0, float)[order]
    ok = lam0 > 0
    if ok.any():
        (l0,) = ax.plot(2 / lam0[ok], yv[ok], color="black", lw=1.6, ls="--",
                        path_effects=halo(3.5, "white"),
                        label="2/λ$_0$ (sharpness at the start)", gid="two_over_lambda0")
        handles.append(l0)
    try:
        m = chain_minima(result.depth, loss_scale=result.loss_scale)
        lim = m.max_stable_lr if result.product_star == m.product else np.nan
    except Exception:  # pragma: no cover - data chain_minima does not describe
        lim = np.nan
    if np.isfinite(lim) and xe[0] < lim < xe[-1]:
        ln = ax.axvline(lim, color="black", lw=1.6, ls=":", path_effects=halo(3.5, "white"),
                        label="2/λ$_{min}$ over the minima (no stable minimum above)",
                        gid="max_stable_lr")
        handles.append(ln)
    return handles


def plot_chain_phase(result, *, ax=None, y="imbalance", spike=1.0, title=None, legend=True,
                     guides=True):
    """Phase diagram of a chain sweep (:func:`fastgd.chain.chain_sweep`): η x the
    initialisation, coloured by region (monotone convergence, convergence after a
    loss spike, divergence, neither).

    Parameters
    ----------
    result : ChainSweepResult
    y : {"imbalance", "scale", "index"}
        Initialisation axis: ``"imbalance"`` w1² − w2² at the start (conserved by
        gradient flow), ``"scale"`` the initial product w1 w2 (... the first weights),
        ``"index"`` the row.  Rows are sorted by it; it must be increasing.
    spike : float
        A converged run whose loss rose above ``spike`` x its initial loss counts as a
        catapult.
    guides : bool
        Draw η = 2/λ0 (the naive limit at the start) and η = 2/λ_min* (no minimum is
        stable above: 2/(2c|Σxy|/P) for depth 2) when they fall in the frame.

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import fastgd.chain as ch
    >>> from fastgd.plot import plot_chain_phase
    >>> res = ch.chain_sweep(lr=[0.1, 0.5, 1.5], inits=[[1.0, 1.0], [1.5, 0.5]], steps=50)
    >>> ax = plot_chain_phase(res)
    >>> ax.get_xscale(), ax.get_ylabel()
    ('log', 'initial imbalance w$_1^2$ − w$_2^2$')
    """
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.patches import Patch

    f = "plot_chain_phase"
    instance(f, "result", result, ChainSweepResult,
             "a ChainSweepResult (from fastgd.chain.chain_sweep)")
    check(f, ax=ax, title=title, legend=legend, guides=guides)
    spike = V.real(f, "spike", spike, positive=True)
    V.choice(f, "y", y, ("imbalance", "scale", "index"))
    ax = axes(ax)
    order, yv, ye, ylabel = _init_axis(np.asarray(result.inits, float), y)
    lr_order = np.argsort(result.lr)
    xe = log_edges(np.asarray(result.lr, float)[lr_order])
    codes = np.asarray(result.regions(spike))[np.ix_(order, lr_order)].astype(np.int64)
    ax.pcolormesh(xe, ye, codes, cmap=ListedColormap(REGION_COLORS),
                  norm=BoundaryNorm(np.arange(-0.5, 4.0), 4), shading="flat")
    handles = [Patch(facecolor=REGION_COLORS[k], edgecolor="0.3", lw=0.5,
                     label=REGION_LABELS[k]) for k in range(4) if np.any(codes == k)]
    if guides:
        handles += _guides(ax, result, order, yv, xe)
    ax.set_xscale("log")
    ax.set_xlim(xe[0], xe[-1])
    ax.set_ylim(ye[0], ye[-1])
    if title is None:
        title = f"1-1-1 network, GD for {result.steps} steps (loss scale c = {result.loss_scale:g})"
    return finish(ax, "learning rate η", ylabel, title, legend and handles,
                  **below(-0.14, handles=handles))
