"""The phase diagram of linear-unit sweeps (:func:`fastgd.sweep`) and the dataset axis
it shares with :mod:`fastgd.linear.plot_boundary`.  matplotlib's object API, imported
inside the functions; the figure takes an optional ``ax`` and returns the axes it drew
on, and :mod:`fastgd.plot` re-exports it.

Convention: E(w) = 1/(2P) sum_p (y_p - w.x_p)^2 (note the 1/2), H = X^T X / P, so
batch GD diverges above eta_max = 2/lambda_max (LeCun, Bottou, Orr, Mueller,
"Efficient BackProp", 1998).
"""

from __future__ import annotations

import numpy as np

from fastgd import validate as V
from fastgd.figures import STATUS_COLORS, axes, check, halo, instance, log_edges
from fastgd.linear.result import SweepResult
from fastgd.status import DEFAULT_TOL, Status

__all__ = ["cell_status", "plot_phase_diagram"]

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


def _sweep_result(f, result):
    return instance(f, "result", result, SweepResult, "a SweepResult (from fastgd.sweep)")


# ----------------------------------------------------------------- the dataset axis
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


# ----------------------------------------------------------------- the phase diagram
def cell_status(result, seed=None):
    """(n_data, n_lr) status per cell of a sweep, as the phase diagram colours it.

    Parameters
    ----------
    result : SweepResult
    seed : int, optional
        The status of this seed index.  Default: over all seeds, DIVERGED when at least
        half diverged, else CONVERGED when at least half converged, else BOUNDED;
        NOT_RUN when any seed did not run (an interrupted sweep: a partly-run cell is
        never called bounded).

    Returns
    -------
    ndarray of int64, shape (n_data, n_lr)
        :class:`fastgd.Status` codes.

    Examples
    --------
    >>> import fastgd as fg
    >>> res = fg.sweep("gd", lr=[1.0, 2.5], condition=[1], steps=200)
    >>> [fg.Status(c).name for c in cell_status(res)[0]]   # 2/lambda_max = 2
    ['CONVERGED', 'DIVERGED']
    """
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


def _status_patches(codes, colors, states, steps):
    """Legend patches of the ``states`` present in ``codes`` (bounded cells of the
    steps map are labelled as not converged within the budget)."""
    from matplotlib.patches import Patch

    return [Patch(facecolor=colors[s], edgecolor="0.3", lw=0.5,
                  label="not converged within the budget" if steps and s == Status.BOUNDED
                  else _STATUS_LABEL[s]) for s in states if np.any(codes == s)]


def _status_cells(ax, codes, xe, ye):
    """The ``color="status"`` map: every cell in its categorical colour; returns legend
    patches."""
    _status_mesh(ax, xe, ye, codes)
    return _status_patches(codes, STATUS_COLORS, (Status.CONVERGED, Status.BOUNDED,
                                                  Status.DIVERGED, Status.NOT_RUN), steps=False)


def _median_steps(result, seed):
    """(n_data, n_lr) steps to tolerance: of the seed, or the median over the seeds
    (non-converged seeds count as infinite)."""
    steps = np.asarray(result.steps_to_tol, dtype=float)
    if seed is not None:
        return steps[:, :, seed]
    st = np.asarray(result.status)
    steps = np.where(st == Status.CONVERGED, steps, np.inf)
    return np.sort(steps, axis=2)[:, :, (st.shape[2] - 1) // 2]


def _steps_cells(ax, result, seed, codes, cells, xe, ye, colorbar, unit):
    """The ``color="steps"`` map: converged cells on a log viridis scale of their
    steps to tolerance, the others in categorical colours; returns legend patches."""
    conv = codes == Status.CONVERGED
    colors = dict(STATUS_COLORS)
    colors[Status.BOUNDED] = _STEPS_BOUNDED
    colors[Status.NOT_RUN] = "#FFFFFF"
    _status_mesh(ax, xe, ye, codes, mask=conv, colors=colors)
    steps = _median_steps(result, seed)[cells]
    good = conv & np.isfinite(steps)
    vals = np.where(good, np.maximum(steps, 1.0), 1.0)
    if good.any():
        from matplotlib.colors import LogNorm

        lo, hi = vals[good].min(), vals[good].max()
        mesh = ax.pcolormesh(xe, ye, np.ma.masked_array(vals, mask=~good), cmap="viridis",
                             norm=LogNorm(vmin=lo, vmax=max(hi, lo * 10)), shading="flat")
        if colorbar:
            cb = ax.figure.colorbar(mesh, ax=ax, pad=0.02)
            cb.set_label(f"{unit}s to tolerance (converged cells)")
    return _status_patches(codes, colors, (Status.BOUNDED, Status.DIVERGED, Status.NOT_RUN),
                           steps=True)


def _excess_values(result, seed):
    """(n_data, n_lr) log10 of the final / initial excess loss (the median over the seeds;
    a diverged seed counts as infinite) and the colour bar's label.  The initial excess
    per dataset comes from ``result.meta["initial_excess"]`` (the CLI stores it); without
    it, log10 of the final excess itself."""
    fl = np.asarray(result.final_loss, dtype=float)
    meta = result.meta if isinstance(result.meta, dict) else {}
    e0 = np.asarray(meta.get("initial_excess", []), dtype=float).ravel()
    if e0.size == fl.shape[0] and np.all(e0 > 0):
        fl = fl / e0[:, None, None]
        label = "log$_{10}$(final / initial excess loss)"
    else:
        label = "log$_{10}$ final excess loss E − E*"
    fl = fl[:, :, seed] if seed is not None else np.median(fl, axis=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log10(np.maximum(fl, 1e-300)), label


def _excess_cells(ax, result, seed, codes, cells, xe, ye, colorbar):
    """The ``color="excess"`` map: every finished, not diverged cell on a viridis scale
    of log10(final / initial excess) (so a dataset where nothing converges still shows
    where GD made progress), diverged and unfinished cells in their categorical colours;
    returns legend patches."""
    vals, label = _excess_values(result, seed)
    vals = vals[cells]
    good = np.isfinite(vals) & (codes != Status.DIVERGED) & (codes != Status.NOT_RUN)
    _status_mesh(ax, xe, ye, codes, mask=good)
    if good.any():
        spec = result.meta.get("spec", {}) if isinstance(result.meta, dict) else {}
        tol = float(spec.get("tol") or DEFAULT_TOL)
        lo = max(float(vals[good].min()), np.log10(tol) - 2.0) if tol > 0 else \
            float(vals[good].min())
        hi = max(float(vals[good].max()), lo + 1.0)
        mesh = ax.pcolormesh(xe, ye, np.ma.masked_array(np.clip(vals, lo, hi), mask=~good),
                             cmap="viridis", vmin=lo, vmax=hi, shading="flat")
        mesh.set_gid("excess")
        if colorbar:
            cb = ax.figure.colorbar(mesh, ax=ax, pad=0.02,
                                    extend="min" if vals[good].min() < lo else "neither")
            cb.set_label(label + " (not diverged)")
            if "initial" in label and tol > 0 and lo <= np.log10(tol) <= hi:
                cb.ax.axhline(np.log10(tol), color="white", lw=2.0)
                cb.ax.text(-0.08, np.log10(tol), "tol", ha="right", va="center",
                           fontsize="x-small", transform=cb.ax.get_yaxis_transform())
    return _status_patches(codes, STATUS_COLORS, (Status.DIVERGED, Status.NOT_RUN),
                           steps=False)


def _auto_notes(result, codes, d_order):
    """Why a named row of a GD sweep has no converged cell: κ and the steps GD needs at
    η = 1/λ_max, ≈ κ·ln(1/tol)/2 (one note per row, '' where a cell converged)."""
    spec = result.meta.get("spec", {}) if isinstance(result.meta, dict) else {}
    tol = float(spec.get("tol") or DEFAULT_TOL)
    kappa = np.asarray(result.condition, dtype=float)[d_order]
    notes = []
    for k in range(codes.shape[0]):
        row = codes[k]
        if result.method != "gd" or (row == Status.CONVERGED).any() or \
                (row == Status.NOT_RUN).any() or not 0 < tol < 1:
            notes.append("")
            continue
        need = kappa[k] * np.log(1.0 / tol) / 2
        notes.append(f"no cell converged in {spec.get('steps', '?')} steps: κ = "
                     f"{kappa[k]:.3g}\nGD needs ≈ κ·ln(1/tol)/2 = {need:.2g} steps "
                     f"at η = 1/λ$_{{max}}$")
    return notes


def _notes_arg(f, notes, n):
    """``notes``: True, False or a sequence of n strings (one per dataset, '' for none)."""
    if isinstance(notes, bool):
        return notes
    if isinstance(notes, (str, bytes)) or not isinstance(notes, (list, tuple)) or \
            len(notes) != n or not all(isinstance(t, str) for t in notes):
        raise V.fail_type(f, "notes", f"True, False or a list of {n} str (one per dataset)",
                          notes)
    return list(notes)


def _draw_notes(ax, notes, yc):
    """Each non-empty note as a boxed text at the left of its row."""
    from matplotlib.transforms import blended_transform_factory

    tr = blended_transform_factory(ax.transAxes, ax.transData)
    for text, y in zip(notes, yc, strict=True):
        if text:
            t = ax.text(0.02, y, text, transform=tr, ha="left", va="center",
                        fontsize="small", gid="note", zorder=8, clip_on=True,
                        bbox=dict(boxstyle="round,pad=0.35", facecolor="white", alpha=0.88,
                                  edgecolor="0.5"))
            t.set_in_layout(False)  # a long note never squeezes the axes


def _growing_hatch(ax, result, seed, codes, cells, xe, ye):
    """Hatch the cells with a run flagged ``growing`` (not diverged, all run); returns
    its legend patch in a list (empty when there are none)."""
    from matplotlib.patches import Patch

    grow = _growing_cells(result, seed)
    if grow is None:
        return []
    grow = grow[cells] & (codes != Status.DIVERGED) & (codes != Status.NOT_RUN)
    if not grow.any():
        return []
    import matplotlib as mpl

    with mpl.rc_context({"hatch.color": "black", "hatch.linewidth": 1.0}):
        hatch = ax.pcolor(xe, ye, np.ma.masked_array(np.ones(grow.shape), mask=~grow),
                          hatch=_GROWING_HATCH, facecolor="none", edgecolor="black",
                          linewidth=0.0)
    hatch.set_facecolor("none")
    hatch.set_gid("growing")
    return [Patch(facecolor="white", edgecolor="black", lw=0.5, hatch=_GROWING_HATCH,
                  label=_GROWING_LABEL)]


def _theory_lines(ax, result, d_order, yc, ye, names):
    """The finite theoretical limits: one line through the rows of a condition grid,
    a mark across each row of given data; returns the lines."""
    rel = _relative(result)
    scale = np.asarray(result.gd_limit, dtype=float)[d_order] if rel else 1.0
    lines = []
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
        (line,) = ax.plot(xs, ys, label=label, path_effects=halo(4.0, "white"), **style)
        line.set_gid(attr)
        lines.append(line)
    return lines


def _phase_frame(ax, result, xe, ye, yc, ylabel, ylog, names):
    """Scales, limits, ticks and axis labels of the phase diagram."""
    ax.set_xscale("log")
    if ylog:
        ax.set_yscale("log")
    ax.set_xlim(xe[0], xe[-1])
    ax.set_ylim(ye[0], ye[-1])
    if names is not None:
        _set_rows(ax, yc, ye, names)
    if _relative(result):
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


def _phase_title(result, title, seed, unit):
    """The given title (or method and budget) over the lines of :func:`_describe`."""
    if title is None:
        T = result.meta.get("spec", {}).get("steps" if unit == "step" else "epochs", "")
        what = "batch GD" if result.method == "gd" else "SGD"
        title = f"{what}: outcome after {T} {unit}s" if T != "" else f"{what} phase diagram"
    details = _describe(result, seed)
    return f"{title}\n{details}" if details else title


def plot_phase_diagram(result, *, ax=None, color="status", seed=None, theory=True,
                       legend=True, colorbar=True, title=None, notes=True):
    """Phase diagram of a sweep: learning rate η (log) x condition number κ (log), or x
    the named datasets of a sweep over given data.

    Parameters
    ----------
    result : SweepResult
        From :func:`fastgd.sweep` (or :func:`fastgd.load`).
    ax : matplotlib Axes, optional
    color : {"status", "steps", "excess"}
        ``"status"``: categorical colours for converged / bounded / diverged (Okabe-Ito:
        blue / yellow / vermillion; grey for cells an interrupted sweep did not run).
        ``"steps"``: log-scaled steps (epochs) to tolerance of the converged cells
        (viridis, median over seeds), the other cells in their categorical colours.
        ``"excess"``: log10 of the final / initial excess loss of every cell that did
        not diverge (viridis, median over seeds; the initial excess per dataset from
        ``result.meta["initial_excess"]``, else the final excess itself), so that a
        dataset on which nothing converges still shows how far GD got.
    seed : int, optional
        Show one seed index; default: summarise over seeds (a cell is diverged when at
        least half of its seeds diverged, converged when at least half converged).
    theory : bool
        Overlay the theoretical limits the result carries (finite ones): 2/λ_max
        (batch GD, Efficient BackProp eq. 38), the momentum limit, the SGD mean-square
        and almost-sure limits, one line through the datasets' rows.
    legend, colorbar : bool
    title : str, optional
    notes : bool or list of str
        True: a note on each named row of a GD sweep in which no cell converged: κ and
        the steps GD needs at its best rate η = 1/λ_max, ≈ κ·ln(1/tol)/2.  A list: one
        note per dataset ('' for none).  False: none.

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

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import fastgd as fg
    >>> from fastgd.plot import plot_phase_diagram
    >>> res = fg.sweep("gd", lr=[0.5, 1.0, 2.5], condition=[1, 10], steps=200)
    >>> ax = plot_phase_diagram(res)
    >>> ax.get_xscale(), [l.get_gid() for l in ax.lines]
    ('log', ['gd_limit'])
    """
    f = "plot_phase_diagram"
    _sweep_result(f, result)
    check(f, ax=ax, title=title, theory=theory, legend=legend, colorbar=colorbar)
    V.choice(f, "color", color, ("status", "steps", "excess"))
    notes = _notes_arg(f, notes, int(np.shape(result.status)[0]))
    cell_status(result, seed)  # validates seed before anything is drawn
    ax = axes(ax)
    lr_order = np.argsort(result.lr)
    xe = log_edges(np.asarray(result.lr, dtype=float)[lr_order])
    yc, ye, ylabel, ylog, d_order, names = _data_axis(result)
    cells = np.ix_(d_order, lr_order)
    codes = cell_status(result, seed)[cells]
    unit = getattr(result, "unit", "step")
    if color == "status":
        handles = _status_cells(ax, codes, xe, ye)
    elif color == "steps":
        handles = _steps_cells(ax, result, seed, codes, cells, xe, ye, colorbar, unit)
    else:
        handles = _excess_cells(ax, result, seed, codes, cells, xe, ye, colorbar)
    handles += _growing_hatch(ax, result, seed, codes, cells, xe, ye)
    if theory:
        handles += _theory_lines(ax, result, d_order, yc, ye, names)
    _phase_frame(ax, result, xe, ye, yc, ylabel, ylog, names)
    if notes is True and names is not None:
        notes = _auto_notes(result, codes, d_order)
    if isinstance(notes, list):
        _draw_notes(ax, [notes[i] for i in d_order] if len(notes) == yc.size else notes, yc)
    ax.set_title(_phase_title(result, title, seed, unit), fontsize="medium")
    if legend and handles:
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.14),
                  ncol=min(_legend_columns(handles), len(handles)), frameon=False,
                  fontsize="small")
    return ax
