"""Short text of network results (:mod:`fastgd.net`): the reprs of
:class:`~fastgd.net.NetRun` and :class:`~fastgd.net.NetSweepResult`, at most 15 lines
each (shapes, statuses counted, the boundary, where the result came from), never the
arrays themselves."""

from __future__ import annotations

import numpy as np

from fastgd.status import Status

__all__ = ["run_repr", "sweep_repr"]


def _g(x) -> str:
    return f"{float(x):.4g}"


def _net(r) -> str:
    return (f"{r.activation}, {r.param} param.{', bias' if r.bias else ''}, "
            f"d = {r.d}")


def run_repr(r) -> str:
    """The repr of a :class:`~fastgd.net.NetRun` (at most 15 lines).

    Parameters
    ----------
    r : NetRun

    Returns
    -------
    str

    Examples
    --------
    >>> import numpy as np, fastgd.net as fn
    >>> X = np.ones((1, 1)); y = np.array([1.0])
    >>> r = fn.net_gd(X, y, 0.1, 200, theta0=[1.0, 0.5], activation="identity",
    ...               param="standard")
    >>> from fastgd.net.report import run_repr
    >>> print(run_repr(r).splitlines()[0])
    NetRun: CONVERGED (loss) at step 42, GD, lr = 0.1
    """
    st = Status(int(r.status))
    head = f"NetRun: {st.name}"
    if st == Status.CONVERGED:
        head += f" ({r.converged_by}) at {r.unit} {r.steps_to_tol}"
    elif st == Status.DIVERGED:
        head += f" at {r.unit} {r.diverged_at}"
    else:
        head += f" after {r.losses.size - 1} {r.unit}s"
    head += f", {r.method.upper()}, lr = {r.lr:g}"
    lines = [head + (f", momentum {r.momentum:g}" if r.momentum else ""),
             f"  network: width {r.width}, {_net(r)}, N = {r.theta.size} parameters",
             f"  loss: {_g(r.loss0)} -> {_g(r.loss)} (max ratio {_g(r.max_loss_ratio)}, "
             f"{r.losses.size} recorded); tol {r.tol:g}"
             + (f", gtol {r.gtol:g}" if r.gtol else ""),
             f"  sharpness: {_g(r.lambda0)} -> {_g(r.sharpness)} (lr x S = "
             f"{_g(r.lr * r.sharpness)}); NTK: {_g(r.ntk0)} -> {_g(r.ntk)}"]
    if r.sharpnesses is not None:
        lines.append(f"  sharpness curve: {r.sharpnesses.size} points, every "
                     f"{_every(r.sharpness_steps)} {r.unit}s")
    if r.trajectory is not None:
        lines.append(f"  trajectory: {r.trajectory.shape}, every "
                     f"{_every(r.trajectory_steps)} {r.unit}s")
    return "\n".join(lines)


def _every(steps) -> str:
    return str(int(steps[1] - steps[0])) if steps is not None and steps.size > 1 else "-"


def _range(a) -> str:
    a = np.asarray(a, dtype=float)
    return _g(a[0]) if a.size == 1 else f"{_g(a.min())} .. {_g(a.max())} ({a.size})"


def sweep_repr(res) -> str:
    """The repr of a :class:`~fastgd.net.NetSweepResult` (at most 15 lines).

    Parameters
    ----------
    res : NetSweepResult

    Returns
    -------
    str

    Examples
    --------
    >>> import numpy as np, fastgd.net as fn
    >>> X = np.linspace(-1, 1, 6)[:, None]; y = 0.5 * X[:, 0]
    >>> res = fn.net_sweep(X, y, [1.0, 6.0, 20.0], 200, width=4, activation="identity")
    >>> from fastgd.net.report import sweep_repr
    >>> print(sweep_repr(res).splitlines()[1])
      cells: 3 = 1 width x 1 scale x 1 seed x 3 lr: 2 CONVERGED, 1 DIVERGED
    """
    shape = res.status.shape
    counts = {s.name: int(np.count_nonzero(res.status == s)) for s in Status}
    told = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
    unit = "eta x lambda0" if res.lr_unit == "lambda0" else "absolute"
    axes = " x ".join(f"{n} {w}" for n, w in zip(shape, ("width", "scale", "seed", "lr"),
                                                   strict=True))
    lines = [f"NetSweepResult: two-layer {_net(res)}, {res.method.upper()} {res.steps} "
             f"{'steps' if res.method == 'gd' else 'epochs'}"
             + (f", momentum {res.momentum:g}" if res.momentum else ""),
             f"  cells: {res.status.size} = {axes}: {told}",
             f"  lr ({unit}): {_range(res.lr)}",
             f"  width: {res.width.tolist()[:8]}{' ...' if res.width.size > 8 else ''}; "
             + ("theta0 given" if res.given_theta0 else f"scale: {_range(res.scale)}")
             + f"; seeds: {res.seeds.tolist()[:6]}{' ...' if res.seeds.size > 6 else ''}",
             f"  lambda0 (NTK at theta0): {_range(res.ntk0.ravel())}"]
    lines += _boundary_lines(res)
    lines.append(f"  tol {res.tol:g}" + (f", gtol {res.gtol:g}" if res.gtol else "")
                 + f", blowup {res.blowup:g}; {res.seconds:.3g} s on {res.threads} "
                 f"thread(s)")
    return "\n".join(lines)


def _boundary_lines(res) -> list:
    """The observed boundary per width (eta_max x lambda0) and the catapult count."""
    mx = res.observed_lr_max() * res.ntk0
    cat = int(np.count_nonzero(res.catapult()))
    out = [f"  catapults (converged after a loss spike > 2x): {cat} cell(s)"]
    per = [f"{int(w)}: {_g(np.nanmin(np.where(np.isfinite(v), v, np.nan)))}"
           if np.any(np.isfinite(v)) else f"{int(w)}: none"
           for w, v in zip(res.width, mx.reshape(res.width.size, -1), strict=True)]
    out.append("  observed eta_max x lambda0 by width: " + ", ".join(per[:6])
               + (" ..." if len(per) > 6 else ""))
    return out
