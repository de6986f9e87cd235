"""Shared pieces of fastgd's figures: the palette, new axes, argument checks of the
common options, cell edges and run lists.

The figures themselves live in :mod:`fastgd.linear.plot`, :mod:`fastgd.chain.plot` and
:mod:`fastgd.net.plot`; :mod:`fastgd.plot` is their public namespace.  matplotlib is
imported inside the functions only: ``import fastgd`` does not import it.

Colours are the Okabe-Ito palette (Okabe & Ito 2008, safe for the common colour-vision
deficiencies); continuous maps are viridis.
"""

from __future__ import annotations

import numpy as np

from fastgd import validate as V
from fastgd.status import Status

__all__ = [
    "COLORS",
    "CYCLE",
    "REGION_COLORS",
    "REGION_LABELS",
    "STATUS_COLORS",
    "axes",
    "below",
    "check",
    "finish",
    "halo",
    "instance",
    "log_edges",
    "pyplot",
    "run_items",
    "run_list",
    "trajectory",
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
#: Colours of the region codes 0-3 of the chain and network phase diagrams.
REGION_COLORS = [COLORS["yellow"], COLORS["blue"], COLORS["green"], COLORS["vermillion"]]
#: Legend labels of the region codes 0-3.
REGION_LABELS = ["no convergence (bounded)", "converged, monotone",
                 "converged after a loss spike (catapult)", "diverged"]


def pyplot():
    """The ``matplotlib.pyplot`` module, imported on first use.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> pyplot().__name__
    'matplotlib.pyplot'
    """
    import matplotlib.pyplot as plt

    return plt


def axes(ax, figsize=(6.4, 4.8)):
    """``ax`` itself, or the axes of a new figure (constrained layout) when it is None.

    Parameters
    ----------
    ax : matplotlib Axes or None
    figsize : (float, float)
        Size of a new figure in inches.

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> ax = axes(None, figsize=(3, 2))
    >>> axes(ax) is ax
    True
    >>> [float(v) for v in ax.figure.get_size_inches()]
    [3.0, 2.0]
    """
    if ax is None:
        plt = pyplot()
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def halo(lw=3.5, color="black"):
    """Path effects that draw a translucent outline (width ``lw`` points) under a line,
    so that it stays visible on any cell colour.

    Examples
    --------
    >>> len(halo(4.0, "white"))
    2
    """
    import matplotlib.patheffects as pe

    return [pe.Stroke(linewidth=lw, foreground=color, alpha=0.6), pe.Normal()]


def below(y=-0.12, **options):
    """Legend options for a frameless two-column legend centred below the axes (its top
    at ``y`` in axes units), with ``options`` added (e.g. ``handles``).

    Examples
    --------
    >>> below(-0.14)["bbox_to_anchor"], below(ncol=1)["ncol"]
    ((0.5, -0.14), 1)
    """
    return {"loc": "upper center", "bbox_to_anchor": (0.5, y), "ncol": 2, "frameon": False,
            "fontsize": "small", **options}


def finish(ax, xlabel, ylabel, title=None, legend=False, **options):
    """Label the axes of a figure, set ``title`` unless it is None or empty, draw the
    legend with ``options`` (``ax.legend(**options)``, e.g. :func:`below`) when
    ``legend`` is true.  Returns ``ax``.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> ax = axes(None)
    >>> _ = ax.plot([0, 1], label="a")
    >>> finish(ax, "x", "y", "t", True, fontsize="small").get_legend() is not None
    True
    >>> ax.get_xlabel(), ax.get_ylabel(), ax.get_title()
    ('x', 'y', 't')
    """
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if legend:
        ax.legend(**options)
    return ax


def check(f, *, ax=None, title=None, colors=None, **flags):
    """Check the common options of figure function ``f`` (its name, for the message):
    ``ax`` a matplotlib Axes or None, ``title`` a str or None, ``colors`` a list of
    colours or None, each flag True or False (never 'False').

    Raises
    ------
    TypeError, ValueError
        Naming ``f`` and the option.

    Examples
    --------
    >>> check("plot_x", title="t", colors=["red"], legend=True)
    >>> check("plot_x", legend="False")
    Traceback (most recent call last):
    ...
    fastgd.validate.FastGDTypeError: plot_x: 'legend' must be True or False; got str 'False'.
    """
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


def instance(f, name, value, cls, what):
    """``value`` when it is an instance of ``cls``, else a TypeError of ``f`` saying
    that argument ``name`` must be ``what``.

    Examples
    --------
    >>> instance("plot_x", "n", 3, int, "an int")
    3
    """
    if not isinstance(value, cls):
        raise V.fail_type(f, name, what, value)
    return value


def log_edges(centres):
    """Cell edges for ``pcolormesh`` from sorted positive centres, midpoints in log space
    (one centre: a cell of width 0.4 in natural log).

    Examples
    --------
    >>> [round(float(e), 6) for e in log_edges([1.0, 100.0])]
    [0.1, 10.0, 1000.0]
    """
    c = np.log(np.asarray(centres, dtype=float))
    if c.size == 1:
        return np.exp(np.array([c[0] - 0.2, c[0] + 0.2]))
    mid = 0.5 * (c[1:] + c[:-1])
    return np.exp(np.concatenate([[c[0] - (mid[0] - c[0])], mid, [c[-1] + (c[-1] - mid[-1])]]))


def trajectory(run, func, name):
    """The (n, 2) float trajectory of ``run`` (a run recorded with ``record=True``, or
    the array itself); errors name ``func`` and its argument ``name``.

    Examples
    --------
    >>> trajectory([[0, 0], [1, 2]], "plot_x", "runs").shape
    (2, 2)
    """
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


def run_items(runs, func):
    """Normalise runs to a list of (label, run): a run, a list of runs or of
    (label, run), or a dict label -> run; a run without a label is named after its
    method and rate (None when it has no ``lr``).

    Examples
    --------
    >>> run_items({"a": 1}, "plot_x")
    [('a', 1)]
    >>> run_items(None, "plot_x")
    []
    """
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


def run_list(f, runs, attr):
    """Checked :func:`run_items`: each run needs ``attr`` or is an array; labels are str.

    Examples
    --------
    >>> import numpy as np
    >>> run_list("plot_x", [np.zeros((3, 2))], "trajectory")[0][0] is None
    True
    """
    if runs is not None and not isinstance(runs, (dict, list, tuple, np.ndarray)) \
            and not hasattr(runs, attr):
        raise V.fail_type(f, "runs", f"a run (with .{attr}), a list of runs, or a dict", runs)
    items = run_items(runs, f)
    for lab, r in items:
        if lab is not None and not isinstance(lab, str):
            raise V.fail_type(f, "runs", "labels that are str", lab)
        if not hasattr(r, attr) and not isinstance(r, (np.ndarray, list)):
            raise V.fail_type(f, "runs", f"runs (with .{attr}) or arrays", r)
    return items
