"""The observed against the predicted critical learning rate of a linear-unit sweep
(:func:`fastgd.sweep`), as a relative error per dataset.  matplotlib's object API,
imported inside the function; it takes an optional ``ax`` and returns the axes it drew
on, and :mod:`fastgd.plot` re-exports it.

Convention: E(w) = 1/(2P) sum_p (y_p - w.x_p)^2 (note the 1/2), H = X^T X / P, so
batch GD diverges above eta_max = 2/lambda_max (LeCun, Bottou, Orr, Mueller,
"Efficient BackProp", 1998).
"""

from __future__ import annotations

import numpy as np

from fastgd import validate as V
from fastgd.figures import COLORS, axes, check
from fastgd.linear.plot import _LIMITS, _data_axis, _relative, _set_rows, _sweep_result

__all__ = ["plot_boundary"]


def _reference(result):
    """(values, attr) of the limit the observed boundary is compared with: the
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


def _observed_arg(f, observed, n):
    """The ``observed`` argument as a float array of n rates (> 0, NaN: none)."""
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
    return observed


def _observed_rates(result, observed, fraction, n):
    """(observed, bracket lo, bracket hi) absolute rates per dataset: the given ones
    (no bracket), or the grid crossing at ``fraction`` with its two grid points."""
    if observed is not None:
        nan = np.full(n, np.nan)
        return np.asarray(observed, float), nan, nan
    obs = np.asarray(result.critical_lr(fraction), dtype=float)
    if _relative(result):
        obs = obs * np.asarray(result.gd_limit, dtype=float)
    lo, hi = _grid_bracket(result, fraction)
    return obs, lo, hi


def _other_limits(ax, result, ref, ref_attr, order, xc, names):
    """The limits other than the reference, relative to it; returns [(attr, x, values,
    colour)] of each drawn."""
    n = np.size(result.condition)
    labels = {attr: label for attr, label, _ in _LIMITS}
    colors = {"gd_limit": "0.4", "momentum_limit": COLORS["blue"],
              "sgd_ms_limit": COLORS["green"], "sgd_as_limit": COLORS["purple"]}
    shown = []
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
        shown.append((attr, xc[ok], rv[ok], colors[attr]))
    return shown


def _observed_marks(ax, xc, err, elo, ehi):
    """The observed relative errors with their grid brackets (and their values when
    there are few); returns the values drawn."""
    ok = np.isfinite(err)
    if not ok.any():
        return []
    has_bar = np.isfinite(elo) & np.isfinite(ehi) & ok
    yerr = np.stack([np.where(has_bar, err - elo, 0.0), np.where(has_bar, ehi - err, 0.0)])
    eb = ax.errorbar(xc[ok], err[ok], yerr=yerr[:, ok], ls="none", marker="o", ms=7,
                     mfc="none", mew=1.6, capsize=4, color=COLORS["vermillion"],
                     label="observed (simulation)" + (", grid bracket" if has_bar.any()
                                                       else ""))
    eb.lines[0].set_gid("observed")
    if ok.sum() <= 8:
        last = xc[ok].max()
        for x, e in zip(xc[ok], err[ok], strict=True):
            text = "exact" if e == 0 else f"{e:+.1e}" if abs(e) < 1e-4 else _percent(e)
            below = x == last and ok.sum() > 1  # the rightmost label stays in the frame
            ax.annotate(text, (x, e), xytext=(0, -9) if below else (8, 4),
                        ha="center" if below else "left", va="top" if below else "baseline",
                        textcoords="offset points", fontsize="small",
                        color=COLORS["vermillion"], gid="observed_value")
    return [err[ok], elo[has_bar], ehi[has_bar]]


def _y_range(observed, theory):
    """(lo, hi) of the y axis: the observed values, their brackets and 0 (the
    reference), at least ±1 %, padded; a theory mark widens it only when it lies within
    one such span beyond it (a mark far off the scale is drawn as an arrow instead)."""
    vals = np.concatenate([np.zeros(1)] + [np.ravel(v) for v in observed])
    vals = vals[np.isfinite(vals)]
    lo, hi = min(float(vals.min()), -0.005), max(float(vals.max()), 0.005)
    span = hi - lo
    th = np.concatenate([np.ravel(v) for v in theory]) if theory else np.zeros(0)
    th = th[np.isfinite(th) & (th >= lo - span) & (th <= hi + span)]
    if th.size:
        lo, hi = min(lo, float(th.min())), max(hi, float(th.max()))
    pad = 0.15 * (hi - lo)
    return min(lo - pad, -0.01), max(hi + pad, 0.01)


def _percent(v):
    """A relative error as a short percent string: +3e-06 %, +12 %, +30,000 %."""
    p = 100 * v
    if abs(p) >= 100:
        return f"{p:+,.0f} %"
    return f"{p:+.2g} %"


def _offscale_arrows(ax, marks, ylim):
    """Theory marks outside ``ylim`` as arrows at the frame's edge with their value:
    ``marks`` = [(attr, x positions, relative values, colour)]."""
    from matplotlib.transforms import blended_transform_factory

    tr = blended_transform_factory(ax.transData, ax.transAxes)
    lo, hi = ylim
    for attr, xs, vals, color in marks:
        off = [(x, v) for x, v in zip(xs, vals, strict=True) if np.isfinite(v)
               and not lo <= v <= hi]
        for x, v in off:
            up = v > hi
            y0, y1 = (0.84, 0.995) if up else (0.16, 0.005)
            ax.annotate("", xy=(x, y1), xytext=(x, y0), xycoords=tr, textcoords=tr,
                        arrowprops=dict(arrowstyle="-|>", color=color, lw=1.6),
                        gid=f"{attr}_offscale", annotation_clip=False)
            ax.annotate(_percent(v), (x, (y0 + y1) / 2), xycoords=tr, xytext=(5, 0),
                        textcoords="offset points", ha="left", va="center",
                        fontsize="x-small", color=color, gid=f"{attr}_offscale_value",
                        bbox=dict(boxstyle="round,pad=0.15", facecolor="white", alpha=0.8,
                                  edgecolor="none"))
        if off:  # the legend says what the arrows are
            for line in ax.lines:
                if line.get_gid() == attr:
                    line.set_label(line.get_label() + "; arrow: off the scale")


def _boundary_frame(ax, ylim, data_axis, ref):
    """y limits and percent ticks, the dataset x axis and labels."""
    from matplotlib.ticker import PercentFormatter

    xc, xe, xlabel, xlog, order, names = data_axis
    ax.set_ylim(*ylim)
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=None))
    if names is not None:
        few = len(order) <= 4  # room for the predicted rate under each name
        long = max(len(names[i]) for i in order) > 60 / max(len(order), 1)
        ticks = [f"{nm.replace(' (', chr(10) + '(') if long else nm}\npredicted {r:.4g}"
                 if few and np.isfinite(r) else nm
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


def _single_gd(ax, name, observed, predicted, title, bracket):
    """One dataset's GD boundary as numbers: the observed η_c, 2/λ_max and their
    relative difference (a dot at "+0 %" would tell nothing)."""
    rel = observed / predicted - 1
    rows = [("observed η$_c$ (simulation)", f"{observed:.10g}"),
            ("predicted 2/λ$_{max}$", f"{predicted:.10g}"),
            ("relative difference", f"{rel:+.2e}")]
    ax.set_axis_off()
    kw = dict(transform=ax.transAxes, va="baseline", fontsize="large")
    ax.text(0.5, 0.75, name, ha="center", fontsize="x-large", transform=ax.transAxes,
            va="center", gid="single_gd_name")
    for k, (label, value) in enumerate(rows):
        ax.text(0.5, 0.55 - 0.1 * k, label, ha="right", gid="single_gd_label", **kw)
        ax.text(0.55, 0.55 - 0.1 * k, value, ha="left", gid="single_gd", **kw)
    foot = "batch GD diverges above 2/λ$_{max}$ (Efficient BackProp, eq. 38)"
    if np.all(np.isfinite(bracket)):
        foot = f"η$_c$: the grid crossing, between {bracket[0]:.6g} and {bracket[1]:.6g}\n" + foot
    ax.text(0.5, 0.12, foot, ha="center", fontsize="small", color="0.35", transform=ax.transAxes, va="center")
    if title:
        ax.set_title(title)
    return ax


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
        2/λ_max; the other limits the result carries are drawn relative to it.  The
        range is set by the observed points (and 0); a theory mark far outside it is
        an arrow at the frame's edge with its value, never a reason to squash the
        points.  A single dataset compared with 2/λ_max (batch GD, no momentum) is
        shown as numbers: the observed η_c, 2/λ_max and their relative difference.
        Every legend entry belongs to something drawn; the legend goes under the
        figure when the axes are alone in a constrained-layout figure
        (``ax.figure.legends``), else inside the axes.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import fastgd as fg
    >>> from fastgd.plot import plot_boundary
    >>> res = fg.sweep("gd", lr=[1.9, 1.99, 2.01, 2.1], condition=[1, 10], steps=2000)
    >>> ax = plot_boundary(res)
    >>> ax.get_ylabel()
    'observed / predicted − 1'
    """
    f = "plot_boundary"
    need = ("condition",) + tuple(attr for attr, _, _ in _LIMITS)
    if observed is None or not all(hasattr(result, k) for k in need):
        _sweep_result(f, result)  # the observed boundary comes from a SweepResult
    check(f, ax=ax, title=title, legend=legend)
    fraction = V.real(f, "fraction", fraction, positive=True, below=1.0, inclusive_below=True)
    n = np.size(result.condition)
    if observed is not None:
        observed = _observed_arg(f, observed, n)
    ax = axes(ax)
    data_axis = _data_axis(result)
    xc, order, names = data_axis[0], data_axis[4], data_axis[5]
    ref, ref_attr = _reference(result)
    obs, lo, hi = _observed_rates(result, observed, fraction, n)
    ref, obs, lo, hi = ref[order], obs[order], lo[order], hi[order]
    with np.errstate(divide="ignore", invalid="ignore"):
        err, elo, ehi = obs / ref - 1, lo / ref - 1, hi / ref - 1
    if n == 1 and ref_attr == "gd_limit" and np.isfinite(err[0]) and ref[0] > 0:
        return _single_gd(ax, (names or ("",))[0], float(obs[0]), float(ref[0]), title,
                          (lo[0], hi[0]))
    label = {attr: lab for attr, lab, _ in _LIMITS}[ref_attr]
    ax.axhline(0.0, color="black", lw=2.0, label=f"predicted: {label}", gid=ref_attr)
    marks = _other_limits(ax, result, ref, ref_attr, order, xc, names)
    observed_vals = _observed_marks(ax, xc, err, elo, ehi)
    ylim = _y_range(observed_vals, [m[2] for m in marks])
    th = np.concatenate([np.zeros(0)] + [m[2] for m in marks])
    room = 0.25 * (ylim[1] - ylim[0])  # headroom for the arrows of far-off marks
    ylim = (ylim[0] - room * bool(np.any(th < ylim[0])), ylim[1] + room * bool(np.any(th > ylim[1])))
    _offscale_arrows(ax, marks, ylim)
    _boundary_frame(ax, ylim, data_axis, ref)
    if title:
        ax.set_title(title)
    if legend:
        _legend(ax)
    return ax


def _legend(ax):
    """The legend under the figure when the axes are alone in a constrained-layout
    figure (it then covers no point or line), else inside at the best place."""
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    fig = ax.figure
    handles, labels = ax.get_legend_handles_labels()
    if len(fig.axes) == 1 and isinstance(fig.get_layout_engine(), ConstrainedLayoutEngine):
        fig.legend(handles, labels, loc="outside lower center", frameon=False,
                   fontsize="small", ncol=2 if len(handles) > 2 else len(handles))
        return
    ax.legend(fontsize="small", loc="best")
