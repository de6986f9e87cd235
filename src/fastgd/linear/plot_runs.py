"""Figures of single linear-unit runs and their data: loss contours with trajectories
in weight space, losses against time, a two-input dataset with the eigenvectors of H,
and the per-direction error multiplier |1 − η λ_i|.  matplotlib's object API,
imported inside the functions; each takes an optional ``ax`` and returns the axes it
drew on, and :mod:`fastgd.plot` re-exports them.

Convention: E(w) = 1/(2P) sum_p (y_p - w.x_p)^2 (note the 1/2), H = X^T X / P, so
batch GD diverges above eta_max = 2/lambda_max (LeCun, Bottou, Orr, Mueller,
"Efficient BackProp", 1998).
"""

from __future__ import annotations

import numpy as np

from fastgd import validate as V
from fastgd.figures import (
    COLORS,
    CYCLE,
    axes,
    below,
    check,
    finish,
    instance,
    run_items,
    run_list,
    trajectory,
)
from fastgd.spectrum import Spectrum

__all__ = ["plot_data", "plot_losses", "plot_regimes", "plot_weight_space"]


# ----------------------------------------------------------------- weight space
def _extent_arg(f, extent):
    """Check ``extent`` = (w1_lo, w1_hi, w2_lo, w2_hi) with lo < hi."""
    ext = V.as_float_array(f, "extent", extent, 1) if not isinstance(
        extent, (str, bytes)) else None
    if ext is None or ext.size != 4 or not (ext[0] < ext[1] and ext[2] < ext[3]):
        raise V.fail(f, "extent", "(w1_lo, w1_hi, w2_lo, w2_hi) with lo < hi", repr(extent))


def _quadratic(X, y):
    """(H, b, c, w*, E*) of E(w) = ½ wᵀHw − bᵀw + c."""
    P = X.shape[0]
    H = X.T @ X / P
    b = X.T @ y / P
    c = float(y @ y) / (2 * P)
    wstar = np.linalg.lstsq(X, y, rcond=None)[0]
    estar = 0.5 * wstar @ H @ wstar - b @ wstar + c
    return H, b, c, wstar, estar


def _default_extent(wstar, items):
    """A square around w* holding the starts and the non-diverged trajectories."""
    pts = [wstar[None]]
    for _, r, tr in items:
        pts.append(tr[:1])
        if not getattr(r, "diverged", False):
            pts.append(tr[np.all(np.isfinite(tr), axis=1)])
    pts = np.concatenate(pts)
    half = max(np.abs(pts - wstar).max() * 1.15, 0.25)
    return (wstar[0] - half, wstar[0] + half, wstar[1] - half, wstar[1] + half)


def _loss_contours(ax, extent, quad, levels):
    """Contours of E, geometric in the excess loss E − E*."""
    H, b, c, _, estar = quad
    x0, x1, y0, y1 = extent
    g1, g2 = np.meshgrid(np.linspace(x0, x1, 241), np.linspace(y0, y1, 241))
    W = np.stack([g1, g2], axis=-1)
    E = 0.5 * np.einsum("...i,ij,...j->...", W, H, W) - W @ b + c
    exc = np.maximum(E - estar, 0.0)
    top = exc.max()
    lev = estar + np.geomspace(top * 1e-3, top * 0.9, levels) if top > 0 else None
    cs = ax.contour(g1, g2, E, levels=lev, colors="0.55", linewidths=0.8)
    cs.set_gid("contours")
    # the legend's entry for the contours (a ContourSet has no legend handle of its own)
    ax.plot([], [], color="0.55", lw=0.8, label="contours of E (geometric in E − E*)",
            gid="contours_key")


def _eigen_lines(ax, wstar, H, extent):
    """The eigenvectors of H through w*, labelled with λ, long enough to cross the frame."""
    lam, vec = np.linalg.eigh(H)
    x0, x1, y0, y1 = extent
    r = 2 * max(x1 - x0, y1 - y0)
    for i, ls in zip((1, 0), ("--", ":"), strict=True):
        v = vec[:, i]
        ax.plot([wstar[0] - r * v[0], wstar[0] + r * v[0]],
                [wstar[1] - r * v[1], wstar[1] + r * v[1]], color="0.25", ls=ls, lw=1.0,
                label=f"eigen-axis, λ = {lam[i]:.3g}", gid=f"eigen{i}")


def _trajectories(ax, items, colors, markers):
    """Each trajectory (its finite points), then one white square per distinct start
    (runs from one start share it: a coloured square would hide the others')."""
    cyc = list(colors) if colors else CYCLE
    starts = []
    for k, (lab, _r, tr) in enumerate(items):
        col = cyc[k % len(cyc)]
        ok = np.all(np.isfinite(tr), axis=1)
        (line,) = ax.plot(tr[ok, 0], tr[ok, 1], color=col, lw=1.4,
                          marker="o" if markers else None, ms=3, label=lab, zorder=4)
        line.set_gid(f"run{k}")
        if not any(np.array_equal(tr[0], s0) for s0 in starts):
            starts.append(tr[0])
    for k, s0 in enumerate(starts):
        ax.plot(s0[0], s0[1], marker="s", ms=7, color="white", mec="black", ls="none",
                zorder=6, label="start w$_0$" if k == 0 else None, gid=f"start{k}")


def plot_weight_space(X, y, runs=(), *, ax=None, eigen_axes=True, max_points=60, extent=None,
                      levels=14, title=None, legend=True, markers=True, colors=None):
    """Loss contours of E(w) in the (w1, w2) plane with the minimum, the eigen-axes of
    H and trajectories (as on the lecture's slides).

    Parameters
    ----------
    X : array (P, 2), y : array (P,)
        A two-input linear unit without bias (E(w) = 1/(2P) sum (y - w.x)^2).
    runs : Run, array (n, 2), list of them or of (label, run), or dict label -> run
        Runs from :func:`fastgd.gd` / :func:`fastgd.sgd` with ``record=True`` (or raw
        trajectories).  Each is drawn from its first point (w0).
    eigen_axes : bool
        Draw the eigenvectors of H through the minimum w*, labelled with λ.
    max_points : int
        Draw at most this many points of each trajectory (a diverging run leaves the
        frame long before it is flagged).
    extent : (w1_lo, w1_hi, w2_lo, w2_hi), optional
        Default: a square around w* holding the starts and the non-diverged runs.
    levels : int
        Number of contour levels (geometric in the excess loss E - E*).
    colors : list of colours, optional
        One per run (default: the Okabe-Ito cycle).

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from fastgd.plot import plot_weight_space
    >>> X, y = np.array([[1.0, 0.0], [0.0, 2.0]]), np.array([1.0, 2.0])
    >>> ax = plot_weight_space(X, y, {"by hand": np.array([[0.0, 0.0], [0.5, 0.8]])})
    >>> [l.get_gid() for l in ax.lines][:5]
    ['contours_key', 'minimum', 'eigen1', 'eigen0', 'run0']
    """
    f = "plot_weight_space"
    check(f, ax=ax, title=title, colors=colors, eigen_axes=eigen_axes, legend=legend,
          markers=markers)
    if extent is not None:
        _extent_arg(f, extent)
    run_list(f, runs, "trajectory")
    X, y = V.data(f, X, y)
    if X.shape[1] != 2:
        raise V.fail(f, "X", "of shape (P, 2) (a two-input unit, no bias)", f"shape {X.shape}")
    max_points = V.integer(f, "max_points", max_points, minimum=2)
    levels = V.integer(f, "levels", levels, minimum=2)
    quad = _quadratic(X, y)
    wstar = quad[3]
    items = [(lab, r, trajectory(r, f, "runs")[:max_points]) for lab, r in run_items(runs, f)]
    ax = axes(ax, figsize=(5.6, 5.2))
    if extent is None:
        extent = _default_extent(wstar, items)
    extent = tuple(float(v) for v in extent)
    _loss_contours(ax, extent, quad, levels)
    ax.plot([wstar[0]], [wstar[1]], marker="*", ms=14, color="black", ls="none",
            label="minimum w*", zorder=5, gid="minimum")
    if eigen_axes:
        _eigen_lines(ax, wstar, quad[0], extent)
    _trajectories(ax, items, colors, markers)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_aspect("equal")
    return finish(ax, "weight w$_1$", "weight w$_2$", title, legend, **below())


# ----------------------------------------------------------------- losses
def plot_losses(runs, *, per="epoch", ax=None, minimum=None, updates_per_epoch=None,
                logy=True, title=None, legend=True, colors=None):
    """Loss against time for several runs on one axis (batch GD and SGD together:
    the lecture's "SGD is much faster, but fluctuates").

    Parameters
    ----------
    runs : Run, list of runs or (label, run), or dict label -> run
    per : {"epoch", "update"}
        Time axis.  ``"epoch"``: one batch-GD step is one epoch (a pass over the P
        samples), an SGD entry is one epoch.  ``"update"``: weight updates; SGD epochs
        count ``updates_per_epoch`` (P for per-sample SGD) updates each.
    minimum : float, optional
        Subtract E* and plot the excess loss E(w) - E* (a log axis then shows the
        convergence rate and SGD's fluctuation floor).
    logy : bool
    colors : list of colours, optional
        One per run (default: the Okabe-Ito cycle).

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import fastgd as fg
    >>> from fastgd.plot import plot_losses
    >>> X, y = fg.lecture_data()
    >>> ax = plot_losses({"batch GD": fg.gd(X, y, lr=1.0, steps=20)})
    >>> ax.get_yscale(), ax.get_legend().get_texts()[0].get_text()
    ('log', 'batch GD')
    """
    f = "plot_losses"
    check(f, ax=ax, title=title, colors=colors, logy=logy, legend=legend)
    V.choice(f, "per", per, ("epoch", "update"))
    if minimum is not None:
        minimum = V.real(f, "minimum", minimum)
    if updates_per_epoch is not None:
        updates_per_epoch = V.integer(f, "updates_per_epoch", updates_per_epoch, minimum=1)
    items = run_list(f, runs, "losses")
    for _, r in items:
        if not hasattr(r, "losses"):
            raise V.fail_type(f, "runs", "runs with .losses (from gd, sgd, chain_gd)", r)
    ax = axes(ax)
    cyc = list(colors) if colors else CYCLE
    flagged = False  # one legend entry for the divergence crosses
    for k, (lab, r) in enumerate(items):
        loss = np.asarray(r.losses, dtype=float)
        t = np.arange(loss.size, dtype=float)
        if per == "update" and getattr(r, "method", "gd") == "sgd":
            if updates_per_epoch is None:
                raise V.fail(f, "updates_per_epoch", "given when per='update' and a run is SGD",
                             None)
            t = t * updates_per_epoch
        if minimum is not None:
            loss = loss - float(minimum)
        ok = np.isfinite(loss) & ((loss > 0) if logy else True)
        col = cyc[k % len(cyc)]
        (line,) = ax.plot(t[ok], loss[ok], color=col, lw=1.5, label=lab,
                          marker="o" if ok.sum() < 40 else None, ms=3)
        line.set_gid(f"run{k}")
        if getattr(r, "diverged", False) and ok.any():
            ax.plot(t[ok][-1], loss[ok][-1], marker="X", ms=10, color=col, mec="black",
                    ls="none", gid=f"diverged{k}",
                    label=None if flagged else "flagged diverged (last finite loss)")
            flagged = True
    if logy:
        ax.set_yscale("log")
    return finish(ax, "epoch (pass over the data)" if per == "epoch" else "weight updates",
                  "excess loss E(w) − E(w*)" if minimum is not None else "loss E(w)", title,
                  legend and items, fontsize="small")


# ----------------------------------------------------------------- data and spectrum
def plot_data(X, y, *, ax=None, eigen=True, title=None, legend=True):
    """Scatter of a two-input dataset by class, with the eigenvectors of H = XᵀX/P
    drawn from the origin with length 2 sqrt(λ).

    Parameters
    ----------
    X : array (P, 2), y : array (P,)
        Up to four classes (distinct values of y) get their own marker.
    eigen : bool
        Draw the eigenvectors, labelled with λ.
    title : str, optional
    legend : bool

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import fastgd as fg
    >>> from fastgd.plot import plot_data
    >>> ax = plot_data(*fg.lecture_data())
    >>> [l.get_gid() for l in ax.lines if l.get_gid()]
    ['eigen1', 'eigen0']
    """
    f = "plot_data"
    check(f, ax=ax, title=title, eigen=eigen, legend=legend)
    X, y = V.data(f, X, y)
    if X.shape[1] != 2:
        raise V.fail(f, "X", "of shape (P, 2)", f"shape {X.shape}")
    ax = axes(ax, figsize=(5.2, 5.0))
    classes = np.unique(y)
    marks = ["o", "^", "s", "D"]
    for k, cl in enumerate(classes[:4]):
        m = y == cl
        ax.plot(X[m, 0], X[m, 1], ls="none", marker=marks[k], ms=5, mfc="none",
                color=CYCLE[k], label=f"class y = {cl:g}")
    if eigen:
        lam, vec = np.linalg.eigh(X.T @ X / X.shape[0])
        for i in (1, 0):
            v = vec[:, i] * np.sqrt(lam[i]) * 2
            ax.annotate("", xy=v, xytext=(0, 0),
                        arrowprops=dict(arrowstyle="-|>", color="black", lw=1.6))
            ax.plot([0, v[0]], [0, v[1]], color="black", lw=0, label=None, gid=f"eigen{i}")
            ax.text(v[0] * 1.08, v[1] * 1.08, f"λ = {lam[i]:.3g}", fontsize="small",
                    ha="left" if v[0] >= 0 else "right", va="center",
                    bbox=dict(fc="white", ec="none", alpha=0.8, pad=1))
    tips = [vec[:, i] * np.sqrt(lam[i]) * 2.6 for i in range(2)] if eigen else []
    allp = np.vstack([X] + [t[None] for t in tips])
    lo, hi = allp.min(axis=0), allp.max(axis=0)
    padv = 0.08 * (hi - lo).max()
    ax.set_xlim(lo[0] - padv, hi[0] + padv)
    ax.set_ylim(lo[1] - padv, hi[1] + padv)
    ax.set_aspect("equal")
    ax.axhline(0, color="0.85", lw=0.8, zorder=0)
    ax.axvline(0, color="0.85", lw=0.8, zorder=0)
    return finish(ax, "input x$_1$", "input x$_2$", title, legend, fontsize="small",
                  loc="upper left")


def plot_regimes(spectrum, *, ax=None, lr_max=None, marks=(), title=None, legend=True):
    """Per-direction error multiplier |1 − η λ_i| of one batch-GD step against η
    (Efficient BackProp eqs. 20-39): below 1 the direction converges; η_opt = 1/λ_max,
    the minimax rate 2/(λ_max + λ_min) and η_max = 2/λ_max are marked.

    Parameters
    ----------
    spectrum : Spectrum
        From :func:`fastgd.spectrum`.
    lr_max : float, optional
        Right end of the η axis (default 1.25 η_max).
    marks : sequence of float
        Further rates to mark (e.g. the lecture's 1.5 and 2.5).
    title : str, optional
    legend : bool

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import fastgd as fg
    >>> from fastgd.plot import plot_regimes
    >>> X, y = fg.lecture_data()
    >>> ax = plot_regimes(fg.spectrum(X), marks=[1.5])
    >>> [l.get_gid() for l in ax.lines][:3]
    ['lam0', 'lam1', 'worst']
    """
    f = "plot_regimes"
    instance(f, "spectrum", spectrum, Spectrum, "a Spectrum (from fastgd.spectrum)")
    check(f, ax=ax, title=title, legend=legend)
    if lr_max is not None:
        lr_max = V.real(f, "lr_max", lr_max, positive=True)
    if marks is None or isinstance(marks, (str, bytes)) or V.ndim_of(marks) not in (0, 1):
        raise V.fail_type(f, "marks", "a sequence of rates", marks)
    marks = V.rates(f, "marks", marks) if np.size(marks) else ()
    if not spectrum.lambda_max > 0:
        raise V.fail(f, "spectrum", "of a non-zero H (lambda_max > 0)", "lambda_max = 0")
    if lr_max is not None and not lr_max * spectrum.lambda_max < 1e300:
        raise V.fail(f, "lr_max", "small enough that lr_max x lambda_max < 1e300", lr_max)
    ax = axes(ax)
    lam = np.asarray(spectrum.eigenvalues, dtype=float)
    top = float(lam[-1])
    lr_max = 1.25 * 2 / top if lr_max is None else float(lr_max)
    eta = np.linspace(0, lr_max, 801)
    for k, l in enumerate(lam[::-1]):
        ax.plot(eta, np.abs(1 - eta * l), color=CYCLE[k % len(CYCLE)], lw=1.8,
                label=f"|1 − η λ|, λ = {l:.3g}", gid=f"lam{k}")
    ax.plot(eta, np.max(np.abs(1 - np.outer(eta, lam)), axis=1), color="black", lw=1,
            ls=":", label="worst direction", gid="worst")
    ax.axhline(1.0, color="0.5", lw=0.8)
    ax.axvspan(2 / top, lr_max, color=COLORS["vermillion"], alpha=0.12, lw=0)
    ymax = max(1.6, float(np.abs(1 - lr_max * top)) * 1.05)
    named = [(1 / top, "η$_{opt}$", "left", 0.98), (2 / (top + lam[0]), "minimax", "right", 0.98),
             (2 / top, "η$_{max}$", "left", 0.98)]
    for v, name, ha, yf in named:
        ax.axvline(v, color="0.3", lw=0.8, ls="--")
        pad = " " if ha == "left" else ""
        ax.text(v, ymax * yf, f"{pad}{name}{' ' if ha == 'right' else ''}\n{pad}{v:.3g} ",
                fontsize="small", va="top", ha=ha,
                bbox=dict(fc="white", ec="none", alpha=0.7, pad=0.5))
    for v in marks:
        ax.axvline(float(v), color=COLORS["green"], lw=1.2, ls="-.")
        ax.text(float(v), 0.03, f" η = {v:g}", fontsize="small", va="bottom", ha="left",
                color=COLORS["green"])
    ax.set_xlim(0, lr_max)
    ax.set_ylim(0, ymax)
    return finish(ax, "learning rate η", "error multiplier per step |1 − η λ$_i$|", title,
                  legend, fontsize="small", loc="lower left")
