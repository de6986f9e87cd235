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
    """The limits other than the reference, relative to it; returns their values."""
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
        shown.append(rv[ok])
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
        for x, e in zip(xc[ok], err[ok], strict=True):
            ax.annotate(f"{100 * e:+.2g} %", (x, e), xytext=(8, 4),
                        textcoords="offset points", fontsize="small",
                        color=COLORS["vermillion"], gid="observed_value")
    return [err[ok], elo[has_bar], ehi[has_bar]]


def _boundary_frame(ax, shown, data_axis, ref):
    """y limits (at least ±1 %) and percent ticks, the dataset x axis and labels."""
    from matplotlib.ticker import PercentFormatter

    xc, xe, xlabel, xlog, order, names = data_axis
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
    label = {attr: lab for attr, lab, _ in _LIMITS}[ref_attr]
    ax.axhline(0.0, color="black", lw=2.0, label=f"predicted: {label}", gid=ref_attr)
    shown = [np.zeros(1)]
    shown += _other_limits(ax, result, ref, ref_attr, order, xc, names)
    shown += _observed_marks(ax, xc, err, elo, ehi)
    _boundary_frame(ax, shown, data_axis, ref)
    if title:
        ax.set_title(title)
    if legend:
        ax.legend(fontsize="small", loc="best")
    return ax
