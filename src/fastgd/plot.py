"""Figures for everything fastgd computes (matplotlib, imported inside the functions).

Every function takes an optional ``ax`` (a new figure is made when it is None) and
returns the axes it drew on; tests read the drawn data back from the axes.
``import fastgd`` does not import matplotlib.

This module is the public namespace of the figures; they live next to what they draw:
:mod:`fastgd.linear.plot` (the phase diagram of a sweep),
:mod:`fastgd.linear.plot_boundary` (observed against predicted critical rates),
:mod:`fastgd.linear.plot_runs` (runs and data: weight space, losses, data, regimes),
:mod:`fastgd.chain.plot` (the 1-1-1 network) and :mod:`fastgd.net.plot` (two-layer
networks); the shared palette and helpers are in :mod:`fastgd.figures`.

Convention: E(w) = 1/(2P) sum_p (y_p - w.x_p)^2 (note the 1/2), H = X^T X / P, so
batch GD diverges above eta_max = 2/lambda_max (LeCun, Bottou, Orr, Mueller,
"Efficient BackProp", 1998).  The lecture's 1-1-1 network uses the unhalved loss
(1 - W1 W2)^2, i.e. ``loss_scale=2``.

Colours are the Okabe-Ito palette (safe for colour-blind readers); continuous maps
are viridis.

Examples
--------
>>> import matplotlib
>>> matplotlib.use("Agg")
>>> import fastgd as fg
>>> from fastgd import plot
>>> ax = plot.plot_data(*fg.lecture_data(), title="the lecture's data")
>>> ax.get_title()
"the lecture's data"
"""

from __future__ import annotations

from fastgd.chain.plot import plot_chain_landscape, plot_chain_phase
from fastgd.figures import COLORS, STATUS_COLORS
from fastgd.figures import CYCLE as CYCLE  # also importable from here, as before
from fastgd.figures import log_edges as log_edges
from fastgd.linear.plot import cell_status as cell_status
from fastgd.linear.plot import plot_phase_diagram
from fastgd.linear.plot_boundary import plot_boundary
from fastgd.linear.plot_phase2 import plot_adaptive_phase
from fastgd.linear.plot_runs import plot_data, plot_losses, plot_regimes, plot_weight_space

__all__ = [
    "COLORS",
    "STATUS_COLORS",
    "plot_adaptive_phase",
    "plot_boundary",
    "plot_chain_landscape",
    "plot_chain_phase",
    "plot_data",
    "plot_losses",
    "plot_phase_diagram",
    "plot_regimes",
    "plot_weight_space",
]
