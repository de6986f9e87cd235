"""Figures for everything fastgd computes (matplotlib, imported inside the functions).

Every function takes an optional ``ax`` (a new figure is made when it is None) and
returns the axes it drew on; tests read the drawn data back from the axes.
``import fastgd`` does not import matplotlib.

Convention: E(w) = 1/(2P) sum_p (y_p - w.x_p)^2 (note the 1/2), H = X^T X / P, so
batch GD diverges above eta_max = 2/lambda_max (LeCun, Bottou, Orr, Mueller,
"Efficient BackProp", 1998).  The lecture's 1-1-1 network uses the unhalved loss
(1 - W1 W2)^2, i.e. ``loss_scale=2``.

Colours are the Okabe-Ito palette (safe for colour-blind readers); continuous maps
are viridis.
"""

from __future__ import annotations

import numpy as np

from fastgd import validate as V
from fastgd.status import Status

__all__ = [
    "COLORS",
    "STATUS_COLORS",
    "plot_boundary",
    "plot_chain_landscape",
    "plot_chain_phase",
    "plot_data",
    "plot_losses",
    "plot_phase_diagram",
    "plot_regimes",
    "plot_weight_space",
]

#: Okabe-Ito colours (Okabe & Ito 2008), safe for the common colour-vision deficiencies.
COLORS = {"blue": "#0072B2", "vermillion": "#D55E00", "green": "#009E73",
          "orange": "#E69F00", "sky": "#56B4E9", "purple": "#CC79A7", "yellow": "#F0E442",
          "black": "#000000", "grey": "#BBBBBB"}
#: Line colours for several runs on one axis, in order.
CYCLE = [COLORS[k] for k in ("blue", "vermillion", "green", "orange", "purple", "sky")]
#: Categorical colours of the phase diagram.
STATUS_COLORS = {Status.CONVERGED: COLORS["blue"], Status.BOUNDED: COLORS["yellow"],
                 Status.DIVERGED: COLORS["vermillion"], Status.NOT_RUN: "#DDDDDD"}
_STEPS_BOUNDED = "#C8C8C8"  # bounded cells in the steps map (viridis already uses yellow)
_STATUS_LABEL = {Status.CONVERGED: "converged", Status.BOUNDED: "bounded (neither)",
                 Status.DIVERGED: "diverged", Status.NOT_RUN: "not run (interrupted)"}
_GROWING_LABEL = "growing (loss up by orders of magnitude, not diverged)"
_GROWING_HATCH = "////"
# theory lines: (attribute, label, style)
_LIMITS = (
    ("gd_limit", "batch GD limit 2/λ$_{max}$", dict(color="black", ls="-", lw=2.0)),
    ("momentum_limit", "momentum limit", dict(color="black", ls="--", lw=2.0)),
    ("sgd_ms_limit", "SGD mean-square limit", dict(color="black", ls="-.", lw=2.0)),
    ("sgd_as_limit", "SGD almost-sure limit", dict(color="black", ls=":", lw=2.4)),
)


def _mpl():
    import matplotlib.pyplot as plt

    return plt


def _axes(ax, figsize=(6.4, 4.8)):
    if ax is None:
        plt = _mpl()
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _halo(lw=3.5, color="black"):
    import matplotlib.patheffects as pe

    return [pe.Stroke(linewidth=lw, foreground=color, alpha=0.6), pe.Normal()]


# ----------------------------------------------------------------- argument checks
def _check(f, *, ax=None, title=None, colors=None, **flags):
    """Common options: ``ax`` a matplotlib Axes or None, ``title`` a str or None,
    ``colors`` a list of colours or None, each flag True or False (never 'False')."""
    if ax is not None:
        from matplotlib.axes import Axes

        if not isinstance(ax, Axes):
            raise V.fail_type(f, "ax", "a matplotlib Axes or None", ax)
    if title is not None and not isinstance(title, str):
        raise V.fail_type(f, "title", "a str or None", title)
    if colors is not None:
        if isinstance(colors, (str, bytes)) or not isinstance(colors, (list, tuple)) \
                or not colors:
            raise V.fail_type(f, "colors", "a non-empty list of colours or None", colors)
        from matplotlib.colors import is_color_like

        bad = [c for c in colors if not is_color_like(c)]
        if bad:
            raise V.fail(f, "colors", "matplotlib colours", repr(bad[0]))
    for name, value in flags.items():
        V.boolean(f, name, value)


def _instance(f, name, value, cls, what):
    if not isinstance(value, cls):
        raise V.fail_type(f, name, what, value)
    return value


def _sweep_result(f, result):
    from fastgd.linear.result import SweepResult

    return _instance(f, "result", result, SweepResult, "a SweepResult (from fastgd.sweep)")


def _run_list(f, runs, attr):
    """Validate runs (see :func:`_run_items`): each needs ``attr`` or is an array."""
    if runs is not None and not isinstance(runs, (dict, list, tuple, np.ndarray)) \
            and not hasattr(runs, attr):
        raise V.fail_type(f, "runs", f"a run (with .{attr}), a list of runs, or a dict", runs)
    items = _run_items(runs, f)
    for lab, r in items:
        if lab is not None and not isinstance(lab, str):
            raise V.fail_type(f, "runs", "labels that are str", lab)
        if not hasattr(r, attr) and not isinstance(r, (np.ndarray, list)):
            raise V.fail_type(f, "runs", f"runs (with .{attr}) or arrays", r)
    return items


def log_edges(centres):
    """Cell edges for ``pcolormesh`` from sorted positive centres, midpoints in log space."""
    c = np.log(np.asarray(centres, dtype=float))
    if c.size == 1:
        return np.exp(np.array([c[0] - 0.2, c[0] + 0.2]))
    mid = 0.5 * (c[1:] + c[:-1])
    return np.exp(np.concatenate([[c[0] - (mid[0] - c[0])], mid, [c[-1] + (c[-1] - mid[-1])]]))


def _condition_grid(result):
    """True for a sweep over a ``condition=`` grid (generated datasets), False for given
    data (named rows)."""
    meta = getattr(result, "meta", None)
    spec = meta.get("spec", {}) if isinstance(meta, dict) else {}
    return isinstance(spec, dict) and spec.get("condition") is not None


def _names(result):
    n = np.size(result.condition)
    names = tuple(getattr(result, "names", ()) or ())
    return names if len(names) == n else tuple(f"data {k}" for k in range(n))


def _data_axis(result):
    """(centres, edges, label, log, order, names) of the dataset axis.

    A ``condition=`` grid with distinct condition numbers: κ on a log axis, rows sorted
    by κ (``names`` None).  Given data: one categorical row per dataset in the given
    order, labelled with its name (``names`` the tick labels)."""
    kappa = np.asarray(result.condition, dtype=float)
    if _condition_grid(result):
        order = np.argsort(kappa, kind="stable")
        ks = kappa[order]
        if np.all(np.isfinite(ks)) and np.all(ks >= 1) and np.all(np.diff(ks) > 0) \
                and (ks.size == 1 or ks[-1] / ks[0] > 2):
            return (ks, log_edges(ks), "condition number κ = λ$_{max}$/λ$_{min}$", True,
                    order, None)
    idx = np.arange(kappa.size)
    return (idx.astype(float), np.arange(kappa.size + 1) - 0.5, "dataset", False, idx,
            _names(result))


def _legend_columns(handles):
    """Columns that keep a bottom legend within the figure's width."""
    longest = max(len(h.get_label()) for h in handles)
    return 3 if longest <= 22 else 2


def _relative(result):
    return getattr(result, "lr_unit", "absolute") == "eta_max"


def _set_rows(ax, yc, ye, names, axis="y"):
    """Categorical dataset rows: one tick per row with its name, the first row on top
    (or, for ``axis="x"``, on the left)."""
    if axis == "y":
        ax.set_yticks(yc, labels=list(names))
        ax.set_ylim(ye[-1], ye[0])
        ax.tick_params(axis="y", which="minor", left=False)
    else:
        ax.set_xticks(yc, labels=list(names))
        ax.set_xlim(ye[0], ye[-1])


def _unit_tick(ax, lo, hi):
    """A log x axis in units of η_max: keep the decade ticks and add one at 1 (the
    batch-GD boundary), labelled plainly."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    ticks = [10.0 ** k for k in range(int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi))) + 1)]
    ticks = sorted({t for t in ticks if lo <= t <= hi} | {1.0})
    if len(ticks) < 3:  # a narrow grid: a few round multiples around 1 as well
        ticks = sorted(set(ticks) | {t for t in (0.25, 0.5, 2.0, 4.0) if lo <= t <= hi})
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _describe(result, seed=None):
    """One or two lines naming what the figure cannot show by colour: method options,
    seeds and the majority rule, tolerance, λ_max or the unit of η."""
    spec = result.meta.get("spec", {}) if isinstance(result.meta, dict) else {}
    parts, rule = [], ""
    beta = float(spec.get("momentum") or 0.0)
    if beta > 0 or spec.get("nesterov"):
        parts.append(f"{'Nesterov' if spec.get('nesterov') else 'heavy-ball'} β = {beta:g}")
    if result.method == "sgd":
        if spec.get("batch_size") is not None:
            parts.append(f"batch {spec['batch_size']}")
        if spec.get("order"):
            parts.append(f"{spec['order']} order")
        n_seed = int(np.shape(result.status)[2])
        if seed is not None:
            parts.append(f"seed index {seed} of {n_seed}")
        elif n_seed > 1:
            parts.append(f"{n_seed} seeds per cell")
            rule = "a cell is diverged if ≥ ½ of its seeds diverged, else converged if ≥ ½ did"
        else:
            parts.append("1 seed")
    if spec.get("tol") is not None:
        parts.append(f"tol {float(spec['tol']):g}")
    if spec.get("bias"):
        parts.append("bias input")
    if _relative(result):
        parts.append("η in units of each dataset's η$_{max}$ = 2/λ$_{max}$")
    elif np.size(result.lambda_max) == 1:
        lam = float(np.ravel(result.lambda_max)[0])
        parts.append(f"λ$_{{max}}$ = {lam:.4g} (η$_{{max}}$ = {2 / lam:.4g})" if lam > 0
                     else "λ$_{max}$ = 0")
    lines, cur = [], ""
    for p in parts:  # wrap at about 90 characters
        if cur and len(cur) + len(p) > 90:
            lines.append(cur)
            cur = p
        else:
            cur = f"{cur} · {p}" if cur else p
    lines += [x for x in (cur, rule) if x]
    return "\n".join(lines)


def cell_status(result, seed=None):
    """(n_data, n_lr) status per cell: the given seed index, or over all seeds
    DIVERGED when at least half diverged, else CONVERGED when at least half converged,
    else BOUNDED; NOT_RUN when any seed did not run (an interrupted sweep: a partly-run
    cell is never called bounded)."""
    st = np.asarray(result.status)
    if seed is not None:
        seed = V.integer("plot_phase_diagram", "seed", seed, minimum=0,
                         maximum=st.shape[2] - 1)
        return st[:, :, seed].astype(np.int64)
    div = (st == Status.DIVERGED).mean(axis=2)
    conv = (st == Status.CONVERGED).mean(axis=2)
    out = np.where(div >= 0.5, int(Status.DIVERGED),
                   np.where(conv >= 0.5, int(Status.CONVERGED), int(Status.BOUNDED)))
    out[(st == Status.NOT_RUN).any(axis=2)] = int(Status.NOT_RUN)
    return out.astype(np.int64)


def _growing_cells(result, seed=None):
    """(n_data, n_lr) True where a run was flagged ``growing`` (loss up by orders of
    magnitude without crossing the blowup threshold): the given seed, or any seed;
    None when the result carries no such flag."""
    g = getattr(result, "growing", None)
    if g is None:
        return None
    g = np.asarray(g, dtype=bool)
    if g.shape != np.shape(result.status):
        return None
    return g[:, :, seed] if seed is not None else g.any(axis=2)


def _status_mesh(ax, xe, ye, codes, mask=None, colors=None):
    from matplotlib.colors import BoundaryNorm, ListedColormap

    colors = colors or STATUS_COLORS
    order = [Status.NOT_RUN, Status.BOUNDED, Status.CONVERGED, Status.DIVERGED]
    cmap = ListedColormap([colors[s] for s in order])
    norm = BoundaryNorm(np.arange(-1.5, 3.0, 1.0), cmap.N)
    data = np.ma.masked_array(codes, mask=mask if mask is not None else np.zeros_like(codes, bool))
    return ax.pcolormesh(xe, ye, data, cmap=cmap, norm=norm, shading="flat")


def plot_phase_diagram(result, *, ax=None, color="status", seed=None, theory=True,
                       legend=True, colorbar=True, title=None):
    """Phase diagram of a sweep: learning rate η (log) x condition number κ (log), or x
    the named datasets of a sweep over given data.

    Parameters
    ----------
    result : SweepResult
        From :func:`fastgd.sweep` (or :func:`fastgd.load`).
    ax : matplotlib Axes, optional
    color : {"status", "steps"}
        ``"status"``: categorical colours for converged / bounded / diverged (Okabe-Ito:
        blue / yellow / vermillion; grey for cells an interrupted sweep did not run).
        ``"steps"``: log-scaled steps (epochs) to tolerance of the converged cells
        (viridis, median over seeds), the other cells in their categorical colours.
    seed : int, optional
        Show one seed index; default: summarise over seeds (a cell is diverged when at
        least half of its seeds diverged, converged when at least half converged).
    theory : bool
        Overlay the theoretical limits the result carries (finite ones): 2/λ_max
        (batch GD, Efficient BackProp eq. 38), the momentum limit, the SGD mean-square
        and almost-sure limits, one line through the datasets' rows.
    legend, colorbar : bool
    title : str, optional

    Returns
    -------
    matplotlib Axes

    Notes
    -----
    Cells are drawn with ``pcolormesh`` on edges at the geometric midpoints of the
    grid.  The dataset axis is κ (log) for a ``condition=`` grid with distinct
    condition numbers (theory limits: one line through the rows); for given data it
    has one categorical row per dataset, labelled with ``result.names``, each with its
    own theory marks (never a line joining two datasets).  A relative grid
    (``lr_unit="eta_max"``) puts 2/λ_max at 1, with a tick.  The title names β, batch
    size, order, seeds and the majority rule, tol, and λ_max or the unit of η.  Cells
    with an unfinished seed are grey ("not run"); cells with a run flagged ``growing``
    (and not diverged) are hatched.  No NaN reaches ``pcolormesh``: cells not shown
    are masked.
    """
    f = "plot_phase_diagram"
    _sweep_result(f, result)
    _check(f, ax=ax, title=title, theory=theory, legend=legend, colorbar=colorbar)
    V.choice(f, "color", color, ("status", "steps"))
    cell_status(result, seed)  # validates seed before anything is drawn
    ax = _axes(ax)
    lr_order = np.argsort(result.lr)
    lr = np.asarray(result.lr, dtype=float)[lr_order]
    xe = log_edges(lr)
    yc, ye, ylabel, ylog, d_order, names = _data_axis(result)
    rel = _relative(result)
    codes = cell_status(result, seed)[np.ix_(d_order, lr_order)]
    unit = getattr(result, "unit", "step")
    handles = []
    from matplotlib.patches import Patch

    if color == "status":
        mesh = _status_mesh(ax, xe, ye, codes)
        present = [s for s in (Status.CONVERGED, Status.BOUNDED, Status.DIVERGED,
                               Status.NOT_RUN) if np.any(codes == s)]
    else:
        conv = codes == Status.CONVERGED
        colors = dict(STATUS_COLORS)
        colors[Status.BOUNDED] = _STEPS_BOUNDED
        colors[Status.NOT_RUN] = "#FFFFFF"
        _status_mesh(ax, xe, ye, codes, mask=conv, colors=colors)
        present = [s for s in (Status.BOUNDED, Status.DIVERGED, Status.NOT_RUN)
                   if np.any(codes == s)]
        st = np.asarray(result.status)
        steps = np.asarray(result.steps_to_tol, dtype=float)
        if seed is not None:
            steps = steps[:, :, seed]
        else:
            steps = np.where(st == Status.CONVERGED, steps, np.inf)
            steps = np.sort(steps, axis=2)[:, :, (st.shape[2] - 1) // 2]
        steps = steps[np.ix_(d_order, lr_order)]
        good = conv & np.isfinite(steps)
        vals = np.where(good, np.maximum(steps, 1.0), 1.0)
        mesh = None
        if good.any():
            from matplotlib.colors import LogNorm

            lo, hi = vals[good].min(), vals[good].max()
            mesh = ax.pcolormesh(xe, ye, np.ma.masked_array(vals, mask=~good), cmap="viridis",
                                 norm=LogNorm(vmin=lo, vmax=max(hi, lo * 10)), shading="flat")
            if colorbar:
                cb = ax.figure.colorbar(mesh, ax=ax, pad=0.02)
                cb.set_label(f"{unit}s to tolerance (converged cells)")
    handles += [Patch(facecolor=colors[s] if color == "steps" else STATUS_COLORS[s],
                      edgecolor="0.3", lw=0.5,
                      label=_STATUS_LABEL[s] if color == "status" or s != Status.BOUNDED
                      else "not converged within the budget") for s in present]
    grow = _growing_cells(result, seed)
    if grow is not None:
        grow = grow[np.ix_(d_order, lr_order)] & (codes != Status.DIVERGED) \
            & (codes != Status.NOT_RUN)
        if grow.any():
            import matplotlib as mpl

            with mpl.rc_context({"hatch.color": "black", "hatch.linewidth": 1.0}):
                hatch = ax.pcolor(xe, ye, np.ma.masked_array(np.ones(grow.shape), mask=~grow),
                                  hatch=_GROWING_HATCH, facecolor="none", edgecolor="black",
                                  linewidth=0.0)
            hatch.set_facecolor("none")
            hatch.set_gid("growing")
            handles.append(Patch(facecolor="white", edgecolor="black", lw=0.5,
                                 hatch=_GROWING_HATCH, label=_GROWING_LABEL))
    if theory:
        scale = np.asarray(result.gd_limit, dtype=float)[d_order] if rel else 1.0
        for attr, label, style in _LIMITS:
            v = np.asarray(getattr(result, attr, np.full(yc.size, np.nan)), dtype=float)
            v = v[d_order] / scale
            ok = np.isfinite(v) & (v > 0)
            if not ok.any():
                continue
            if rel:
                label = label.replace("2/λ$_{max}$", "η/η$_{max}$ = 1") \
                    if attr == "gd_limit" else label
            if names is None:  # a condition grid: one line through the rows
                xs = np.concatenate([[v[ok][0]], v[ok], [v[ok][-1]]])
                ys = np.concatenate([[ye[0]], yc[ok], [ye[-1]]])
            else:  # given data: a mark across each row, never joining two datasets
                k = np.flatnonzero(ok)
                xs = np.stack([v[k], v[k], np.full(k.size, np.nan)], 1).ravel()
                ys = np.stack([ye[k] + 0.04, ye[k + 1] - 0.04, np.full(k.size, np.nan)],
                              1).ravel()
            (line,) = ax.plot(xs, ys, label=label, path_effects=_halo(4.0, "white"), **style)
            line.set_gid(attr)
            handles.append(line)
    ax.set_xscale("log")
    if ylog:
        ax.set_yscale("log")
    ax.set_xlim(xe[0], xe[-1])
    ax.set_ylim(ye[0], ye[-1])
    if names is not None:
        _set_rows(ax, yc, ye, names)
    if rel:
        _unit_tick(ax, xe[0], xe[-1])
        ax.set_xlabel("learning rate η / η$_{max}$ (η$_{max}$ = 2/λ$_{max}$ of each dataset)")
    else:
        ax.set_xlabel("learning rate η")
        if xe[-1] / xe[0] < 100:  # a narrow grid: plain numbers, not 2×10⁰
            from matplotlib.ticker import FuncFormatter

            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            if xe[-1] / xe[0] < 10:
                ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_ylabel(ylabel)
    if title is None:
        T = result.meta.get("spec", {}).get("steps" if unit == "step" else "epochs", "")
        what = "batch GD" if result.method == "gd" else "SGD"
        title = f"{what}: outcome after {T} {unit}s" if T != "" else f"{what} phase diagram"
    details = _describe(result, seed)
    ax.set_title(f"{title}\n{details}" if details else title, fontsize="medium")
    if legend and handles:
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.14),
                  ncol=min(_legend_columns(handles), len(handles)), frameon=False,
                  fontsize="small")
    return ax


def _trajectory(run, func, name):
    traj = getattr(run, "trajectory", run)
    if traj is None:
        raise V.fail(func, name, "runs recorded with record=True (a trajectory)",
                     "a run without trajectory")
    if isinstance(traj, (str, bytes)) or V.ndim_of(traj) != 2:
        raise V.fail_type(func, name, "runs or trajectories of shape (n, 2)", traj)
    try:
        traj = np.asarray(traj, dtype=float)
    except (TypeError, ValueError):
        raise V.fail_type(func, name, "trajectories of numbers", traj) from None
    if traj.ndim != 2 or traj.shape[1] != 2:
        raise V.fail(func, name, "trajectories of shape (n, 2) (two weights)",
                     f"shape {traj.shape}")
    return traj


def _run_items(runs, func):
    """Normalise runs: a run, a list of runs / (label, run), or a dict label -> run."""
    if runs is None:
        return []
    if isinstance(runs, dict):
        return list(runs.items())
    if hasattr(runs, "trajectory") or (isinstance(runs, np.ndarray) and runs.ndim == 2):
        runs = [runs]
    items = []
    for r in runs:
        if isinstance(r, tuple) and len(r) == 2 and isinstance(r[0], str):
            items.append(r)
        else:
            items.append((_default_label(r), r))
    return items


def _default_label(run):
    lr = getattr(run, "lr", None)
    if lr is None:
        return None
    method = {"gd": "batch GD", "sgd": "SGD"}.get(getattr(run, "method", ""), "")
    tail = " (diverges)" if getattr(run, "diverged", False) else ""
    return f"{method} η = {lr:g}{tail}".strip()


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
    """
    f = "plot_weight_space"
    _check(f, ax=ax, title=title, colors=colors, eigen_axes=eigen_axes, legend=legend,
           markers=markers)
    if extent is not None:
        ext = V.as_float_array(f, "extent", extent, 1) if not isinstance(
            extent, (str, bytes)) else None
        if ext is None or ext.size != 4 or not (ext[0] < ext[1] and ext[2] < ext[3]):
            raise V.fail(f, "extent", "(w1_lo, w1_hi, w2_lo, w2_hi) with lo < hi",
                         repr(extent))
    _run_list(f, runs, "trajectory")
    X, y = V.data(f, X, y)
    if X.shape[1] != 2:
        raise V.fail(f, "X", "of shape (P, 2) (a two-input unit, no bias)", f"shape {X.shape}")
    max_points = V.integer(f, "max_points", max_points, minimum=2)
    levels = V.integer(f, "levels", levels, minimum=2)
    P = X.shape[0]
    H = X.T @ X / P
    b = X.T @ y / P
    c = float(y @ y) / (2 * P)
    wstar = np.linalg.lstsq(X, y, rcond=None)[0]
    estar = 0.5 * wstar @ H @ wstar - b @ wstar + c
    lam, vec = np.linalg.eigh(H)
    items = [(lab, r, _trajectory(r, f, "runs")[:max_points]) for lab, r in _run_items(runs, f)]
    ax = _axes(ax, figsize=(5.6, 5.2))
    if extent is None:
        pts = [wstar[None]]
        for _, r, tr in items:
            pts.append(tr[:1])
            if not getattr(r, "diverged", False):
                pts.append(tr[np.all(np.isfinite(tr), axis=1)])
        pts = np.concatenate(pts)
        half = max(np.abs(pts - wstar).max() * 1.15, 0.25)
        extent = (wstar[0] - half, wstar[0] + half, wstar[1] - half, wstar[1] + half)
    x0, x1, y0, y1 = (float(v) for v in extent)
    g1, g2 = np.meshgrid(np.linspace(x0, x1, 241), np.linspace(y0, y1, 241))
    W = np.stack([g1, g2], axis=-1)
    E = 0.5 * np.einsum("...i,ij,...j->...", W, H, W) - W @ b + c
    exc = np.maximum(E - estar, 0.0)
    top = exc.max()
    lev = estar + np.geomspace(top * 1e-3, top * 0.9, levels) if top > 0 else None
    cs = ax.contour(g1, g2, E, levels=lev, colors="0.55", linewidths=0.8)
    cs.set_gid("contours")
    ax.plot([wstar[0]], [wstar[1]], marker="*", ms=14, color="black", ls="none",
            label="minimum w*", zorder=5, gid="minimum")
    if eigen_axes:
        r = 2 * max(x1 - x0, y1 - y0)
        for i, ls in zip((1, 0), ("--", ":"), strict=True):
            v = vec[:, i]
            ax.plot([wstar[0] - r * v[0], wstar[0] + r * v[0]],
                    [wstar[1] - r * v[1], wstar[1] + r * v[1]], color="0.25", ls=ls, lw=1.0,
                    label=f"eigen-axis, λ = {lam[i]:.3g}", gid=f"eigen{i}")
    cyc = list(colors) if colors else CYCLE
    for k, (lab, _r, tr) in enumerate(items):
        col = cyc[k % len(cyc)]
        ok = np.all(np.isfinite(tr), axis=1)
        (line,) = ax.plot(tr[ok, 0], tr[ok, 1], color=col, lw=1.4,
                          marker="o" if markers else None, ms=3, label=lab, zorder=4)
        line.set_gid(f"run{k}")
        ax.plot(tr[0, 0], tr[0, 1], marker="s", ms=7, color=col, mec="black", ls="none",
                zorder=6)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.set_xlabel("weight w$_1$")
    ax.set_ylabel("weight w$_2$")
    if title:
        ax.set_title(title)
    if legend:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, frameon=False,
                  fontsize="small")
    return ax


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
    """
    f = "plot_losses"
    _check(f, ax=ax, title=title, colors=colors, logy=logy, legend=legend)
    V.choice(f, "per", per, ("epoch", "update"))
    if minimum is not None:
        minimum = V.real(f, "minimum", minimum)
    if updates_per_epoch is not None:
        updates_per_epoch = V.integer(f, "updates_per_epoch", updates_per_epoch, minimum=1)
    items = _run_list(f, runs, "losses")
    for _, r in items:
        if not hasattr(r, "losses"):
            raise V.fail_type(f, "runs", "runs with .losses (from gd, sgd, chain_gd)", r)
    ax = _axes(ax)
    cyc = list(colors) if colors else CYCLE
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
                    ls="none")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("epoch (pass over the data)" if per == "epoch" else "weight updates")
    ax.set_ylabel("excess loss E(w) − E(w*)" if minimum is not None else "loss E(w)")
    if title:
        ax.set_title(title)
    if legend and items:
        ax.legend(fontsize="small")
    return ax


def _reference(result):
    """(values, attr, label) of the limit the observed boundary is compared with: the
    momentum limit when the result has one, else for SGD the mean-square limit where
    known, else 2/λ_max."""
    n = np.size(result.condition)

    def get(attr):
        return np.asarray(getattr(result, attr, np.full(n, np.nan)), dtype=float).reshape(n)

    mom = get("momentum_limit")
    if np.isfinite(mom).any():
        return mom, "momentum_limit"
    if getattr(result, "method", "gd") == "sgd":
        ms = get("sgd_ms_limit")
        if np.isfinite(ms).all():
            return ms, "sgd_ms_limit"
    return get("gd_limit"), "gd_limit"


def _grid_bracket(result, fraction):
    """(lo, hi) absolute rates around the grid crossing of each dataset (NaN: none)."""
    lr = np.asarray(result.lr, dtype=float)
    order = np.argsort(lr)
    frac = result.diverged_fraction()[:, order]
    scale = np.asarray(result.gd_limit, dtype=float) if _relative(result) \
        else np.ones(frac.shape[0])
    lo = np.full(frac.shape[0], np.nan)
    hi = np.full(frac.shape[0], np.nan)
    for i in range(frac.shape[0]):
        k = np.flatnonzero(frac[i] >= fraction)
        if k.size and k[0] > 0:
            lo[i], hi[i] = lr[order][k[0] - 1] * scale[i], lr[order][k[0]] * scale[i]
    return lo, hi


def plot_boundary(result, *, ax=None, observed=None, fraction=0.5, title=None, legend=True):
    """Observed against predicted critical learning rate, per dataset, as the relative
    error observed/predicted − 1 (so that a 0.5 % grid offset reads as 0.5 %).

    Parameters
    ----------
    result : SweepResult
    observed : array (n_data,), optional
        Observed critical rates (e.g. from :func:`fastgd.critical_lr` per dataset);
        default ``result.critical_lr(fraction)`` (the grid crossing, drawn with the
        bracket of the two grid points around it as an error bar).
    fraction : float
        Diverged fraction that defines the observed boundary of a multi-seed sweep.

    Returns
    -------
    matplotlib Axes
        x: condition number κ (log) for a ``condition=`` grid, else one named category
        per dataset (tick label: the name and the predicted rate).  y: observed /
        predicted − 1 in percent (linear, at least ±1 %), predicted = the
        momentum limit when there is one, else the SGD mean-square limit (SGD), else
        2/λ_max; the other limits the result carries are drawn relative to it.  Every
        legend entry belongs to something drawn.
    """
    f = "plot_boundary"
    need = ("condition",) + tuple(attr for attr, _, _ in _LIMITS)
    if observed is None or not all(hasattr(result, k) for k in need):
        _sweep_result(f, result)  # the observed boundary comes from a SweepResult
    _check(f, ax=ax, title=title, legend=legend)
    fraction = V.real(f, "fraction", fraction, positive=True, below=1.0, inclusive_below=True)
    n = np.size(result.condition)
    if observed is not None:
        if isinstance(observed, (str, bytes)) or V.ndim_of(observed) not in (0, 1):
            raise V.fail_type(f, "observed", f"an array of {n} rates", observed)
        try:
            observed = np.atleast_1d(np.asarray(observed, dtype=float))
        except (TypeError, ValueError):
            raise V.fail_type(f, "observed", f"an array of {n} rates", observed) from None
        if observed.shape != (n,):
            raise V.fail(f, "observed", f"of length n_data = {n}", f"shape {observed.shape}")
        if np.any(observed[~np.isnan(observed)] <= 0) or np.any(np.isinf(observed)):
            raise V.fail(f, "observed", "finite and > 0 (NaN: none observed)",
                         repr(observed.tolist())[:40])
    from matplotlib.ticker import PercentFormatter

    ax = _axes(ax)
    xc, xe, xlabel, xlog, order, names = _data_axis(result)
    ref, ref_attr = _reference(result)
    if observed is None:
        obs = np.asarray(result.critical_lr(fraction), dtype=float)
        if _relative(result):
            obs = obs * np.asarray(result.gd_limit, dtype=float)
        lo, hi = _grid_bracket(result, fraction)
    else:
        obs = np.asarray(observed, float)
        lo = hi = np.full(n, np.nan)
    ref, obs, lo, hi = ref[order], obs[order], lo[order], hi[order]
    with np.errstate(divide="ignore", invalid="ignore"):
        err, elo, ehi = obs / ref - 1, lo / ref - 1, hi / ref - 1
    shown = [np.zeros(1)]
    labels = {attr: label for attr, label, _ in _LIMITS}
    ax.axhline(0.0, color="black", lw=2.0, label=f"predicted: {labels[ref_attr]}",
               gid=ref_attr)
    colors = {"gd_limit": "0.4", "momentum_limit": COLORS["blue"],
              "sgd_ms_limit": COLORS["green"], "sgd_as_limit": COLORS["purple"]}
    for attr, _, style in _LIMITS:
        if attr == ref_attr:
            continue
        style = dict(style, ls="--") if attr == "gd_limit" else style
        v = np.asarray(getattr(result, attr, np.full(n, np.nan)), dtype=float)[order]
        with np.errstate(divide="ignore", invalid="ignore"):
            rv = v / ref - 1
        ok = np.isfinite(rv)
        if not ok.any():
            continue
        kw = dict(color=colors[attr], label=f"{labels[attr]} (relative)", gid=attr)
        if names is None:
            ax.plot(xc[ok], rv[ok], ls=style["ls"], lw=1.6, **kw)
        else:
            ax.plot(xc[ok], rv[ok], ls="none", marker="_", ms=22, mew=2.4, **kw)
        shown.append(rv[ok])
    ok = np.isfinite(err)
    if ok.any():
        has_bar = np.isfinite(elo) & np.isfinite(ehi) & ok
        yerr = np.stack([np.where(has_bar, err - elo, 0.0), np.where(has_bar, ehi - err, 0.0)])
        eb = ax.errorbar(xc[ok], err[ok], yerr=yerr[:, ok], ls="none", marker="o", ms=7,
                         mfc="none", mew=1.6, capsize=4, color=COLORS["vermillion"],
                         label="observed (simulation)" + (", grid bracket" if has_bar.any()
                                                           else ""))
        eb.lines[0].set_gid("observed")
        shown += [err[ok], elo[has_bar], ehi[has_bar]]
        if ok.sum() <= 8:
            for x, e in zip(xc[ok], err[ok], strict=True):
                ax.annotate(f"{100 * e:+.2g} %", (x, e), xytext=(8, 4),
                            textcoords="offset points", fontsize="small",
                            color=COLORS["vermillion"], gid="observed_value")
    vals = np.concatenate(shown)
    vals = vals[np.isfinite(vals)]
    lo, hi = min(float(vals.min()), 0.0), max(float(vals.max()), 0.0)
    pad = 0.15 * (hi - lo)
    ax.set_ylim(min(lo - pad, -0.01), max(hi + pad, 0.01))  # at least +-1 %
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=None))
    if names is not None:
        few = len(order) <= 4  # room for the predicted rate under each name
        ticks = [f"{nm}\npredicted {r:.4g}" if few and np.isfinite(r) else nm
                 for nm, r in zip((names[i] for i in order), ref, strict=True)]
        _set_rows(ax, xc, xe, ticks, axis="x")
        if not few:
            ax.tick_params(axis="x", labelrotation=40)
            for t in ax.get_xticklabels():
                t.set_horizontalalignment("right")
                t.set_rotation_mode("anchor")
    else:
        if xlog:
            ax.set_xscale("log")
        ax.set_xlim(xe[0], xe[-1])
    ax.set_xlabel(xlabel)
    ax.set_ylabel("observed / predicted − 1")
    ax.grid(axis="y", color="0.9", lw=0.8)
    if title:
        ax.set_title(title)
    if legend:
        ax.legend(fontsize="small", loc="best")
    return ax


def plot_data(X, y, *, ax=None, eigen=True, title=None, legend=True):
    """Scatter of a two-input dataset by class, with the eigenvectors of H = XᵀX/P
    drawn from the origin with length sqrt(λ)."""
    f = "plot_data"
    _check(f, ax=ax, title=title, eigen=eigen, legend=legend)
    X, y = V.data(f, X, y)
    if X.shape[1] != 2:
        raise V.fail(f, "X", "of shape (P, 2)", f"shape {X.shape}")
    ax = _axes(ax, figsize=(5.2, 5.0))
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
    ax.set_xlabel("input x$_1$")
    ax.set_ylabel("input x$_2$")
    if title:
        ax.set_title(title)
    if legend:
        ax.legend(fontsize="small", loc="upper left")
    return ax


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
    """
    f = "plot_regimes"
    from fastgd.spectrum import Spectrum

    _instance(f, "spectrum", spectrum, Spectrum, "a Spectrum (from fastgd.spectrum)")
    _check(f, ax=ax, title=title, legend=legend)
    if lr_max is not None:
        lr_max = V.real(f, "lr_max", lr_max, positive=True)
    if marks is None or isinstance(marks, (str, bytes)) or V.ndim_of(marks) not in (0, 1):
        raise V.fail_type(f, "marks", "a sequence of rates", marks)
    marks = V.rates(f, "marks", marks) if np.size(marks) else ()
    if not spectrum.lambda_max > 0:
        raise V.fail(f, "spectrum", "of a non-zero H (lambda_max > 0)", "lambda_max = 0")
    if lr_max is not None and not lr_max * spectrum.lambda_max < 1e300:
        raise V.fail(f, "lr_max", "small enough that lr_max x lambda_max < 1e300", lr_max)
    ax = _axes(ax)
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
    ax.set_xlabel("learning rate η")
    ax.set_ylabel("error multiplier per step |1 − η λ$_i$|")
    if title:
        ax.set_title(title)
    if legend:
        ax.legend(fontsize="small", loc="lower left")
    return ax


def _chain_loss_grid(W1, W2, x, y, loss_scale):
    try:
        from fastgd.chain.api import chain_loss
    except ImportError:  # pragma: no cover - chain.py not available
        chain_loss = None
    if chain_loss is not None:
        return np.asarray(chain_loss(np.stack([W1, W2], axis=-1), x, y, loss_scale=loss_scale))
    x = np.atleast_1d(np.asarray(x, float))
    y = np.atleast_1d(np.asarray(y, float))
    prod = (W1 * W2)[..., None]
    return 0.5 * loss_scale * np.mean((y - prod * x) ** 2, axis=-1)


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
        Samples.  loss_scale : c (2 gives the lecture's (1 − W1 W2)²).
    lim : float
        The square [−lim, lim]² is shown.

    Returns
    -------
    matplotlib Axes
    """
    f = "plot_chain_landscape"
    _check(f, ax=ax, title=title, legend=legend)
    lim = V.real(f, "lim", lim, positive=True)
    if lim > 1e50:
        raise V.fail(f, "lim", "<= 1e50 (the landscape's squares must stay finite)", lim)
    levels = V.integer(f, "levels", levels, minimum=2)
    max_points = V.integer(f, "max_points", max_points, minimum=2)
    from fastgd.chain.api import _stats

    _stats(f, x, y, loss_scale)
    _run_list(f, runs, "trajectory")
    ax = _axes(ax, figsize=(5.6, 5.4))
    g = np.linspace(-lim, lim, 301)
    W1, W2 = np.meshgrid(g, g)
    L = _chain_loss_grid(W1, W2, x, y, loss_scale)
    xs = np.atleast_1d(np.asarray(x, float))
    ys = np.atleast_1d(np.asarray(y, float))
    pstar = float(np.mean(xs * ys) / np.mean(xs * xs))
    lmin = float(L.min())
    top = float(L.max())
    lev = lmin + np.geomspace(max(top - lmin, 1e-12) * 1e-3, (top - lmin) * 0.8, levels)
    cf = ax.contourf(W1, W2, L, levels=np.concatenate([[lmin], lev, [top]]), cmap="Greys",
                     alpha=0.35, extend="neither")
    cf.set_gid("landscape")
    ax.contour(W1, W2, L, levels=lev, colors="0.5", linewidths=0.6)
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
    for k, (lab, r) in enumerate(_run_items(runs, f)):
        tr = _trajectory(r, f, "runs")[:max_points]
        col = CYCLE[(k + 1) % len(CYCLE)]
        ok = np.all(np.isfinite(tr), axis=1)
        if lab is None and hasattr(r, "lr"):
            lab = f"GD η = {r.lr:g}" + (" (diverges)" if getattr(r, "diverged", False) else "")
        (line,) = ax.plot(tr[ok, 0], tr[ok, 1], color=col, lw=1.3, marker="o", ms=2.5,
                          label=lab, zorder=4)
        line.set_gid(f"run{k}")
        ax.plot(tr[0, 0], tr[0, 1], marker="s", ms=7, color=col, mec="black", ls="none",
                zorder=6)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_xlabel("first-layer weight w$_1$")
    ax.set_ylabel("second-layer weight w$_2$")
    if title:
        ax.set_title(title)
    if legend:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, frameon=False,
                  fontsize="small")
    return ax


_REGION_COLORS = [COLORS["yellow"], COLORS["blue"], COLORS["green"], COLORS["vermillion"]]
_REGION_LABELS = ["no convergence (bounded)", "converged, monotone",
                  "converged after a loss spike (catapult)", "diverged"]


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
    """
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.patches import Patch

    f = "plot_chain_phase"
    from fastgd.chain.api import ChainSweepResult

    _instance(f, "result", result, ChainSweepResult,
              "a ChainSweepResult (from fastgd.chain.chain_sweep)")
    _check(f, ax=ax, title=title, legend=legend, guides=guides)
    spike = V.real(f, "spike", spike, positive=True)
    V.choice(f, "y", y, ("imbalance", "scale", "index"))
    ax = _axes(ax)
    inits = np.asarray(result.inits, float)
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
    lr_order = np.argsort(result.lr)
    lr = np.asarray(result.lr, float)[lr_order]
    xe = log_edges(lr)
    codes = np.asarray(result.regions(spike))[np.ix_(order, lr_order)].astype(np.int64)
    cmap = ListedColormap(_REGION_COLORS)
    ax.pcolormesh(xe, ye, codes, cmap=cmap, norm=BoundaryNorm(np.arange(-0.5, 4.0), 4),
                  shading="flat")
    handles = [Patch(facecolor=_REGION_COLORS[k], edgecolor="0.3", lw=0.5,
                     label=_REGION_LABELS[k]) for k in range(4) if np.any(codes == k)]
    if guides:
        lam0 = np.asarray(result.lambda0, float)[order]
        ok = lam0 > 0
        if ok.any():
            (l0,) = ax.plot(2 / lam0[ok], yv[ok], color="black", lw=1.6, ls="--",
                            path_effects=_halo(3.5, "white"),
                            label="2/λ$_0$ (sharpness at the start)", gid="two_over_lambda0")
            handles.append(l0)
        try:
            from fastgd.chain.api import chain_minima

            m = chain_minima(result.depth, loss_scale=result.loss_scale)
            lim = m.max_stable_lr if result.product_star == m.product else np.nan
        except Exception:  # pragma: no cover - chain.py unavailable or other data
            lim = np.nan
        if np.isfinite(lim) and xe[0] < lim < xe[-1]:
            ln = ax.axvline(lim, color="black", lw=1.6, ls=":", path_effects=_halo(3.5, "white"),
                            label="2/λ$_{min}$ over the minima (no stable minimum above)",
                            gid="max_stable_lr")
            handles.append(ln)
    ax.set_xscale("log")
    ax.set_xlim(xe[0], xe[-1])
    ax.set_ylim(ye[0], ye[-1])
    ax.set_xlabel("learning rate η")
    ax.set_ylabel(ylabel)
    if title is None:
        title = f"1-1-1 network, GD for {result.steps} steps (loss scale c = {result.loss_scale:g})"
    ax.set_title(title)
    if legend and handles:
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2,
                  frameon=False, fontsize="small")
    return ax
