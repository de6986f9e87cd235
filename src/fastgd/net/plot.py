"""Figures of two-layer networks (:mod:`fastgd.net`): the catapult phase diagram and the
edge-of-stability sharpness curves.  matplotlib's object API, imported inside the
functions; each takes an optional ``ax`` and returns the axes it drew on."""

from __future__ import annotations

import numpy as np

from fastgd import validate as V
from fastgd.figures import (
    COLORS,
    CYCLE,
    REGION_COLORS,
    STATUS_COLORS,
    axes,
    below,
    check,
    finish,
    halo,
    log_edges,
)
from fastgd.net.runs import NetRun
from fastgd.net.sweep import NetSweepResult
from fastgd.status import Status

__all__ = ["plot_net_eos", "plot_net_phase", "plot_net_warmup"]


def plot_net_phase(result, *, ax=None, seed=0, scale=0, spike=2.0, title=None, legend=True):
    """Catapult phase diagram of :func:`fastgd.net.net_sweep`: learning rate in units of
    the initial NTK eigenvalue (lr x lambda0) against the width, coloured by region
    (monotone convergence, convergence after a loss spike > ``spike`` x E(theta0) -- a
    catapult --, divergence, neither).  Lines: lr = 2/lambda0 (the end of the lazy phase)
    and the observed lr_max (the smallest diverging rate) per width.  A sweep run with
    ``lr_unit="lambda0"`` has one grid of eta x lambda0 for every width (the rows align)
    and is drawn with the marks 2 and 4 (the wide-network catapult phase, Lewkowycz et al.
    2020); with absolute rates each row has its own x positions.

    Parameters
    ----------
    result : NetSweepResult
    ax : matplotlib Axes, optional
        Draw there (default: a new figure's axes).
    seed, scale : int
        Index of the seed and of the initial scale drawn.
    spike : float
        Loss ratio above which a converged run counts as a catapult.
    title : str, optional
    legend : bool

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import numpy as np, fastgd.net as fn
    >>> from matplotlib.figure import Figure
    >>> X = np.linspace(-1, 1, 6)[:, None]; y = 0.5 * X[:, 0]
    >>> res = fn.net_sweep(X, y, [1.0, 6.0, 20.0], 200, width=[4, 8], activation="identity")
    >>> ax = fn.plot_net_phase(res, ax=Figure().subplots())
    >>> sorted(line.get_gid() for line in ax.get_lines())
    ['observed_lr_max', 'two_over_lambda0']
    >>> rel = fn.net_sweep(X, y, [1.0, 3.0, 10.0], 200, width=[4, 8], activation="identity",
    ...                    lr_unit="lambda0")
    >>> ax = fn.plot_net_phase(rel, ax=Figure().subplots())
    >>> sorted(line.get_gid() for line in ax.get_lines())
    ['four_over_lambda0', 'observed_lr_max', 'two_over_lambda0']
    """
    f = "plot_net_phase"
    if not isinstance(result, NetSweepResult):
        raise V.fail_type(f, "result", "a NetSweepResult (from fastgd.net.net_sweep)", result)
    check(f, ax=ax, title=title, legend=legend)
    seed = V.integer(f, "seed", seed, minimum=0, maximum=result.seeds.size - 1)
    scale = V.integer(f, "scale", scale, minimum=0, maximum=result.scale.size - 1)
    spike = V.real(f, "spike", spike, positive=True)
    ax = axes(ax, figsize=(7.2, 4.8))
    order_w = np.argsort(result.width, kind="stable")
    widths = result.width[order_w].astype(float)
    ye = log_edges(widths) if widths.size > 1 else np.array([widths[0] / 1.4, widths[0] * 1.4])
    codes, (xs_lo, xs_hi), obs = _phase_mesh(ax, result, order_w, ye, seed, scale, spike)
    handles = _phase_lines(ax, codes, ye, obs, spike, result.lr_unit == "lambda0")
    if (result.status[:, scale, seed] < 0).any():
        from matplotlib.patches import Patch

        handles.append(Patch(color=STATUS_COLORS[Status.NOT_RUN],
                             label="not run (the sweep was interrupted)"))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(xs_lo, xs_hi)
    ax.set_ylim(ye[0], ye[-1])
    ax.set_yticks(widths)
    ax.set_yticklabels([f"{int(w)}" for w in widths])
    ax.minorticks_off()
    if title is None:
        title = (f"two-layer {result.activation} network ({result.param} param.), "
                 f"GD {result.steps} steps")
    return finish(ax, "η·λ$_0$: learning rate × each width's own initial NTK eigenvalue"
                  if result.lr_unit == "lambda0" else
                  "learning rate × initial NTK eigenvalue, η·λ$_0$", "width m", title, legend,
                  **below(-0.14, handles=handles))


def _phase_mesh(ax, result, order_w, ye, seed, scale, spike):
    """One row of region cells per width (its own x edges: lr x that width's lambda0).
    Returns the codes (widths sorted), the x range and the observed lr_max segments."""
    from matplotlib.colors import BoundaryNorm, ListedColormap

    lr_order = np.argsort(result.lr)
    codes = result.regions(spike)[:, scale, seed][np.ix_(order_w, lr_order)]
    lam = result.ntk0[order_w, scale, seed]
    cmap = ListedColormap(REGION_COLORS)
    grey = ListedColormap([STATUS_COLORS[Status.NOT_RUN]])
    missing = (result.status[:, scale, seed] < 0)[np.ix_(order_w, lr_order)]
    norm = BoundaryNorm(np.arange(-0.5, 4.0), 4)
    xs_lo, xs_hi = np.inf, 0.0
    obs_x, obs_y = [], []
    rates = result.rates[:, scale, seed][order_w][:, lr_order]
    for r in range(order_w.size):
        # the grid's own values where it is relative (the same x edges on every row)
        x = result.lr[lr_order] if result.lr_unit == "lambda0" else rates[r] * lam[r]
        xe = log_edges(x)
        xs_lo, xs_hi = min(xs_lo, xe[0]), max(xs_hi, xe[-1])
        ax.pcolormesh(xe, ye[r: r + 2], codes[r][None, :], cmap=cmap, norm=norm,
                      shading="flat")
        if missing[r].any():  # an interrupted sweep: cells that did not run are grey
            ax.pcolormesh(xe, ye[r: r + 2], np.ma.masked_where(~missing[r][None, :],
                          np.zeros((1, x.size))), cmap=grey, shading="flat")
        div = np.flatnonzero(codes[r] == 3)
        if div.size:  # the smallest diverging rate, at its own x
            obs_x += [x[div[0]]] * 2
            obs_y += [ye[r], ye[r + 1]]
    return codes, (xs_lo, xs_hi), (obs_x, obs_y)


def _phase_lines(ax, codes, ye, obs, spike, relative=False):
    """The lines lr = 2/lambda0 (and, ``relative``, 4/lambda0) and the observed lr_max;
    returns the legend's handles (the regions present, then the lines)."""
    from matplotlib.patches import Patch

    obs_x, obs_y = obs
    labels = ["no convergence (bounded)", f"converged, loss never above {spike:g}× its start",
              f"catapult: converged after the loss rose > {spike:g}×", "diverged"]
    handles = [Patch(facecolor=REGION_COLORS[k], edgecolor="0.3", lw=0.5,
                     label=labels[k]) for k in range(4) if np.any(codes == k)]
    (two,) = ax.plot([2.0, 2.0], [ye[0], ye[-1]], color="black", lw=1.8, ls="--",
                     path_effects=halo(3.5, "white"), label="η = 2/λ$_0$ (NTK at the start)",
                     gid="two_over_lambda0")
    handles.append(two)
    if relative:
        (four,) = ax.plot([4.0, 4.0], [ye[0], ye[-1]], color="black", lw=1.2, ls="-.",
                          path_effects=halo(3.0, "white"),
                          label="η = 4/λ$_0$ (end of the catapult phase, wide networks)",
                          gid="four_over_lambda0")
        handles.append(four)
    if obs_x:
        (line,) = ax.plot(obs_x, obs_y, color="black", lw=1.8, ls=":", marker="",
                          path_effects=halo(3.5, "white"),
                          label="observed η$_{max}$ (smallest diverging η)",
                          gid="observed_lr_max")
        handles.append(line)
    return handles


def plot_net_eos(runs, *, ax=None, loss_ax=None, title=None, legend=True):
    """Sharpness against step for runs of :func:`fastgd.net.net_gd` recorded with
    ``sharpness_every > 0``, each with its stability line 2/lr (dashed, same colour): at
    the edge of stability the sharpness rises to 2/lr and hovers there.  Adaptive runs
    (``optimizer="adam"``, ...) draw their preconditioned sharpness lambda_max(P^-1 H)
    with its threshold (2 + 2 beta1)/(lr (1 - beta1)) -- 38/lr for Adam -- and, thin and
    dotted, the ordinary sharpness with 2/lr, on a log scale (the adaptive edge of
    stability: the first hovers at its threshold, the second stays far below 2/lr).

    Parameters
    ----------
    runs : NetRun or list of NetRun
    ax : matplotlib Axes, optional
        Draw the sharpness there (default: a new figure's axes).
    loss_ax : matplotlib Axes, optional
        Also draw the losses (log scale) there.
    title : str, optional
    legend : bool

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import numpy as np, fastgd.net as fn
    >>> from matplotlib.figure import Figure
    >>> X = np.linspace(-1, 1, 6)[:, None]; y = 0.5 * X[:, 0]
    >>> runs = [fn.net_gd(X, y, lr, 20, width=4, sharpness_every=5) for lr in (0.5, 1.0)]
    >>> ax = fn.plot_net_eos(runs, ax=Figure().subplots())
    >>> [line.get_gid() for line in ax.get_lines()][:2]
    ['sharpness_0', 'two_over_lr_0']
    >>> run = fn.net_gd(X, y, 0.05, 20, width=4, sharpness_every=5, optimizer="adam")
    >>> ax = fn.plot_net_eos(run, ax=Figure().subplots())
    >>> [line.get_gid() for line in ax.get_lines()][:4]
    ['preconditioned_0', 'threshold_0', 'sharpness_0', 'two_over_lr_0']
    """
    f = "plot_net_eos"
    if isinstance(runs, NetRun):
        runs = [runs]
    if not isinstance(runs, (list, tuple)) or not runs or \
            not all(isinstance(r, NetRun) for r in runs):
        raise V.fail_type(f, "runs", "a NetRun or a non-empty list of NetRuns", runs)
    for r in runs:
        if r.sharpnesses is None:
            raise V.fail(f, "runs", "runs recorded with sharpness_every > 0",
                         "a run without a sharpness curve")
    check(f, ax=ax, title=title, legend=legend)
    if loss_ax is not None:
        from matplotlib.axes import Axes

        if not isinstance(loss_ax, Axes):
            raise V.fail_type(f, "loss_ax", "a matplotlib Axes or None", loss_ax)
    ax = axes(ax)
    if any(r.optimizer != "gd" for r in runs):
        return _adaptive_eos(ax, runs, loss_ax, title, legend)
    top = 0.0
    for k, r in enumerate(sorted(runs, key=lambda r: r.lr)):
        col = CYCLE[k % len(CYCLE)]
        s = np.where(np.isfinite(r.sharpnesses), r.sharpnesses, np.nan)
        ax.plot(r.sharpness_steps, s, color=col, lw=1.8, label=f"η = {r.lr:g}",
                gid=f"sharpness_{k}")
        ax.axhline(2.0 / r.lr, color=col, lw=1.2, ls="--", gid=f"two_over_lr_{k}")
        top = max(top, 2.0 / r.lr, float(np.nanmax(s)) if np.any(np.isfinite(s)) else 0.0)
        if loss_ax is not None:
            loss_ax.plot(np.arange(r.losses.size), r.losses, color=col, lw=1.2,
                         label=f"η = {r.lr:g}")
    ax.set_ylim(0, 1.15 * top)
    ax.plot([], [], color=COLORS["black"], ls="--", lw=1.2, label="2/η (each colour)")
    if title is None:
        r = runs[0]
        title = (f"edge of stability: {r.activation} network, width {r.width} "
                 f"({r.param} param.), full-batch GD")
    return _eos_finish(ax, runs, loss_ax, "sharpness λ$_{max}$(Hessian)", title, legend,
                       fontsize="small")


def _eos_finish(ax, runs, loss_ax, ylabel, title, legend, **options):
    """The end of both sharpness figures: labels, title and legend (``options``), and
    the losses' axis ``loss_ax`` (log scale) when there is one."""
    finish(ax, f"{runs[0].unit}", ylabel, title, legend, loc="lower right", frameon=True,
           **options)
    if loss_ax is not None:
        loss_ax.set_yscale("log")
        finish(loss_ax, f"{runs[0].unit}", "loss E (½ mean squared error)", None, legend,
               fontsize="small")
    return ax



def _adaptive_eos(ax, runs, loss_ax, title, legend):
    """:func:`plot_net_eos` for adaptive runs (log scale, two curves per run)."""
    for k, r in enumerate(sorted(runs, key=lambda r: r.lr)):
        col = CYCLE[k % len(CYCLE)]
        steps = r.sharpness_steps
        ps = r.preconditioned_sharpnesses
        ps = np.where(np.isfinite(ps) if ps is not None else False, ps, np.nan)
        ax.plot(steps, ps * np.ones(steps.size), color=col, lw=1.6,
                label=f"λ$_{{max}}$(P$^{{-1}}$H), {r.optimizer} η = {r.lr:g}",
                gid=f"preconditioned_{k}")
        ax.axhline(r.threshold, color=col, lw=1.3, ls="--", gid=f"threshold_{k}")
        s = np.where(np.isfinite(r.sharpnesses), r.sharpnesses, np.nan)
        ax.plot(steps, s, color=col, lw=1.0, ls=":", label=f"λ$_{{max}}$(H), η = {r.lr:g}",
                gid=f"sharpness_{k}")
        ax.axhline(2.0 / r.lr, color=col, lw=0.9, ls="-.", gid=f"two_over_lr_{k}")
        if loss_ax is not None:
            loss_ax.plot(np.arange(r.losses.size), r.losses, color=col, lw=1.1,
                         label=f"η = {r.lr:g}")
    ax.set_yscale("log")
    low = [np.nanmin(r.sharpnesses) for r in runs if np.any(np.isfinite(r.sharpnesses))]
    if low and min(low) > 0:  # room below the curves for the legend
        ax.set_ylim(bottom=min(low) / 8)
    b1 = runs[0].optim["betas"][0] if runs[0].optimizer == "adam" else 0.0
    ax.plot([], [], color=COLORS["black"], ls="--", lw=1.3,
            label=f"(2 + 2β$_1$)/(η(1 − β$_1$)) = {(2 + 2 * b1) / (1 - b1):.3g}/η")
    ax.plot([], [], color=COLORS["black"], ls="-.", lw=0.9, label="2/η (GD's limit)")
    if title is None:
        r = runs[0]
        title = (f"adaptive edge of stability: {r.activation} network, width {r.width}, "
                 f"full-batch {r.optimizer}")
    return _eos_finish(ax, runs, loss_ax, "sharpness", title, legend, fontsize="x-small",
                       ncol=2)


def plot_net_warmup(warmups, lr_max, *, lr0=None, ax=None, title=None, label=None,
                    legend=True):
    """The largest trainable learning rate against the warm-up length (Kalra &
    Barkeshli, "Why warmup the learning rate?", 2024): a linear warm-up moves the network
    to flatter regions first, so that it trains at target rates several times above
    the largest one without warm-up.

    Parameters
    ----------
    warmups : 1-D array of ints
        Warm-up lengths T (0 allowed: drawn on a symmetric-log axis).
    lr_max : 1-D array
        The largest trainable rate found for each (NaN: none).
    lr0 : float, optional
        A reference rate drawn as a horizontal line (e.g. 2/lambda0 of the start).
    ax : matplotlib Axes, optional
    title, label : str, optional
    legend : bool

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import fastgd.net as fn
    >>> from matplotlib.figure import Figure
    >>> ax = fn.plot_net_warmup([0, 10, 100, 1000], [1.0, 1.0, 2.0, 4.0], lr0=0.5,
    ...                         ax=Figure().subplots())
    >>> [line.get_gid() for line in ax.get_lines()]
    ['lr_max', 'lr0']
    """
    f = "plot_net_warmup"
    T = V.as_float_array(f, "warmups", V.atleast_1d(f, "warmups", warmups), 1)
    if np.any(T < 0):
        raise V.fail(f, "warmups", "warm-up lengths >= 0", f"min {T.min():g}")
    try:  # NaN allowed: no trainable rate found at that length
        L = np.asarray(lr_max, dtype=float)
    except (TypeError, ValueError):
        raise V.fail_type(f, "lr_max", "an array of rates (NaN where none)", lr_max) from None
    if L.shape != T.shape:
        raise V.fail(f, "lr_max", f"one value per warm-up length ({T.size})",
                     f"shape {L.shape}")
    check(f, ax=ax, title=title, legend=legend)
    ax = axes(ax, figsize=(6.4, 4.4))
    ax.plot(T, L, color=CYCLE[0], lw=2.0, marker="o", label=label or "largest trainable η",
            gid="lr_max")
    if lr0 is not None:
        ax.axhline(V.real(f, "lr0", lr0, positive=True), color=COLORS["black"], lw=1.2,
                   ls="--", label="2/λ$_0$ (sharpness at the start)", gid="lr0")
    ax.set_xscale("symlog", linthresh=max(1.0, float(np.min(T[T > 0])) if np.any(T > 0)
                                          else 1.0))
    ax.set_xlim(0, 1.4 * max(float(T.max()), 1.0))
    ax.set_yscale("log")
    from matplotlib.ticker import ScalarFormatter

    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(ScalarFormatter())
    if np.isfinite(L[0]) and L[0] > 0:  # each point's gain over no warm-up
        for t, v in zip(T, L, strict=True):
            if np.isfinite(v):
                ax.annotate(f"{v / L[0]:.2g}×", (t, v), textcoords="offset points",
                            xytext=(0, 7), ha="center", fontsize="small")
    return finish(ax, "warm-up steps T (linear from 0 to η)", "largest trainable target η",
                  title or "learning-rate warm-up", legend, fontsize="small", loc="upper left")
