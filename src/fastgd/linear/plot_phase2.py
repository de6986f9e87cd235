"""The figure of a two-axis phase table (:class:`fastgd.linear.phase2.PhaseTable`, of the
linear unit or of a network): statuses over (learning rate, second axis) with each row's
closed-form boundary where one exists and a reference rate for scale.

matplotlib is imported inside the function; colours are the Okabe-Ito palette of
:mod:`fastgd.figures`.
"""

from __future__ import annotations

import numpy as np

from fastgd import validate as V
from fastgd.figures import COLORS, STATUS_COLORS, axes, check, halo, log_edges
from fastgd.status import Status

__all__ = ["plot_adaptive_phase"]

_AXIS_LABEL = {"beta1": "β1 (Adam's first-moment decay)", "warmup": "warm-up length (updates)",
               "width": "width m (hidden units)"}
_GD_AXIS_LABEL = {"beta1": "heavy-ball momentum β"}
_OPTIMIZER = {"gd": "GD", "adam": "Adam", "rmsprop": "RMSProp", "adagrad": "AdaGrad"}


def _status_labels(table):
    """What each colour means, for this table's model."""
    if table.model == "linear":
        conv = "converged: excess loss ≤ tol × its start"
    elif table.optimizer == "gd":
        conv = "converged: loss ≤ tol × E(θ0), at a stable point"
    else:
        conv = "converged: loss ≤ tol × E(θ0)"
    return {Status.CONVERGED: conv,
            Status.BOUNDED: f"bounded: neither within {table.steps} updates",
            Status.DIVERGED: "diverged: loss above blowup × its start, or not finite"}


def plot_adaptive_phase(table, *, ax=None, title=None, legend=True, theory=True):
    """Draw a :class:`~fastgd.linear.phase2.PhaseTable`: one band of cells per row
    (value of the second axis), the learning rate on a log x axis, each cell coloured by
    its status; a black step line at each row's closed-form boundary (``table.theory``,
    e.g. the frozen-preconditioner eta* = (2 + 2 beta1)/((1 - beta1) lambda_max(P^-1 H)),
    or GD's 2(1 + beta)/lambda_max) and a dashed one at the reference rate
    (``table.reference``, e.g. plain GD's 2/lambda_max, for scale), each labelled.

    Parameters
    ----------
    table : PhaseTable
        From :func:`fastgd.linear.phase2.adaptive_phase` or
        :func:`fastgd.net.net_adaptive_phase`.
    ax : matplotlib Axes, optional
        Drawn into (a new figure when None).
    title : str, optional
        Default: the model, optimizer, budget and fixed settings.
    legend : bool
        A legend below the axes explaining every colour and line.
    theory : bool
        Draw the theory and reference lines.

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import fastgd as fg
    >>> from fastgd.linear.phase2 import adaptive_phase
    >>> from fastgd.plot import plot_adaptive_phase
    >>> t = adaptive_phase(*fg.lecture_data(), [0.5, 2.0, 3.0], axis="beta1",
    ...                    values=[0.0, 0.5], optimizer="gd", steps=200)
    >>> ax = plot_adaptive_phase(t)
    >>> [line.get_label() for line in ax.get_lines()]
    ['GD: 2(1 + β)/λ$_{max}$']
    """
    from fastgd.linear.phase2 import PhaseTable

    f = "plot_adaptive_phase"
    if not isinstance(table, PhaseTable):
        raise V.fail_type(f, "table", "a PhaseTable", table)
    check(f, ax=ax, title=title, legend=legend, theory=theory)
    ax = axes(ax, figsize=(7.4, 5.2))
    order = np.argsort(table.lr, kind="stable")
    xe = log_edges(table.lr[order])
    n = table.shape[0]
    ye = np.arange(n + 1) - 0.5
    _mesh(ax, xe, ye, table.status[:, order])
    handles = _patches(table)
    if theory:
        handles += _lines(ax, table, xe)
    ax.set_xscale("log")
    ax.set_xlim(xe[0], xe[-1])
    ax.set_ylim(ye[0], ye[-1])
    ax.set_yticks(np.arange(n))
    ax.set_yticklabels([f"{v:g}" for v in table.values])
    ax.set_xlabel("target learning rate η" if table.axis == "warmup" or
                  table.settings.get("warmup") else "learning rate η")
    ax.set_ylabel(_GD_AXIS_LABEL.get(table.axis, _AXIS_LABEL[table.axis])
                  if table.optimizer == "gd" else _AXIS_LABEL[table.axis])
    ax.set_title(title if title is not None else _title(table), fontsize=10)
    if legend:
        wide = max(len(h.get_label()) for h in handles) > 48
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.13),
                  ncol=1 if wide else min(2, len(handles)), fontsize=8, frameon=False)
    return ax


def _mesh(ax, xe, ye, codes):
    from matplotlib.colors import BoundaryNorm, ListedColormap

    order = [Status.NOT_RUN, Status.BOUNDED, Status.CONVERGED, Status.DIVERGED]
    cmap = ListedColormap([STATUS_COLORS[s] for s in order])
    norm = BoundaryNorm(np.arange(-1.5, 3.0, 1.0), cmap.N)
    ax.pcolormesh(xe, ye, codes, cmap=cmap, norm=norm, shading="flat", edgecolors="white",
                  linewidth=0.3)


def _patches(table):
    from matplotlib.patches import Patch

    labels = _status_labels(table)
    return [Patch(facecolor=STATUS_COLORS[s], edgecolor="0.3", lw=0.5, label=labels[s])
            for s in (Status.CONVERGED, Status.BOUNDED, Status.DIVERGED)
            if np.any(table.status == s)]


def _steps(values, lo, hi):
    """x, y of a step line through each row's value (row k spans k - 0.5 .. k + 0.5);
    rows without a finite value inside the frame break the line."""
    xs, ys = [], []
    for k, v in enumerate(values):
        ok = np.isfinite(v) and lo <= v <= hi
        xs += [v, v, np.nan] if ok else [np.nan]
        ys += [k - 0.5, k + 0.5, np.nan] if ok else [np.nan]
    return np.array(xs, dtype=float), np.array(ys, dtype=float)


def _lines(ax, table, xe):
    """The theory (solid) and reference (dashed) step lines; returns their handles."""
    out = []
    for vals, label, style in (
            (table.theory, table.theory_label, dict(color=COLORS["black"], lw=2.2)),
            (table.reference, table.reference_label,
             dict(color="0.25", lw=1.6, ls=(0, (4, 2))))):
        if vals is None:
            continue
        x, y = _steps(vals, xe[0], xe[-1])
        if np.all(np.isnan(x)):
            continue
        (line,) = ax.plot(x, y, label=label, path_effects=halo(4.0, "white"), **style)
        out.append(line)
    return out


def _title(table):
    s = table.settings
    parts = []
    if table.optimizer != "gd" and table.axis != "beta1":
        parts.append(f"β = ({s['betas'][0]:g}, {s['betas'][1]:g})")
    elif table.optimizer == "adam":
        parts.append(f"β2 = {s['betas'][1]:g}")
    if s.get("freeze_preconditioner") is not None:
        parts.append(f"preconditioner frozen after {s['freeze_preconditioner']} updates"
                     + (f" at η = {s['pre_freeze_lr']:g}" if s.get("pre_freeze_lr") else ""))
    if table.axis != "warmup" and s.get("warmup"):
        parts.append(f"warm-up {s['warmup']}")
    if table.model == "net":
        parts.append(f"{s['activation']}, {s['param']} param."
                     + ("" if table.axis == "width" else f", width {s['width']}"))
        head = "two-layer network"
    else:
        head = "linear unit"
    head += f": {_OPTIMIZER[table.optimizer]}, {table.steps} updates"
    return head + ("\n" + ", ".join(parts) if parts else "")
