"""Two-axis phase diagrams of two-layer networks: learning rate x (beta1, warm-up length
or width), for Adam, RMSProp, AdaGrad and plain GD (:func:`net_adaptive_phase`), as a
:class:`fastgd.linear.phase2.PhaseTable` (the linear unit's is
:func:`fastgd.linear.phase2.adaptive_phase`).

One :func:`fastgd.net.net_sweep` per value of the second axis (full batch, one
initialisation: width, scale and seed; statuses with the stability rule of
:func:`fastgd.net.net_gd`, so every cell equals that single run bit for bit).  The loss
is E = 1/(2P) sum_p (y_p - f(x_p))^2 (note the 1/2).

Networks have no closed-form boundary: the line drawn for scale is plain GD's limit on
the quadratic model at theta0, 2(1 + beta)/lambda0 with lambda0 the sharpness at the
start (heavy-ball momentum beta, 0 for the adaptive methods).  GD can train above it (a
catapult, or a warm-up that first moves to flatter regions: Kalra & Barkeshli, "Why
warmup the learning rate?", NeurIPS 2024).
"""

from __future__ import annotations

import numpy as np

from fastgd import validate as V
from fastgd.engine.blas import single_blas
from fastgd.linear.phase2 import PhaseTable, phase_values, renamed
from fastgd.linear.result import SweepInterrupted
from fastgd.status import DEFAULT_TOL, Status

__all__ = ["net_adaptive_phase"]


@single_blas
def net_adaptive_phase(X, y, lr, *, axis, values, steps=1000, optimizer="adam",
                       betas=(0.9, 0.999), eps=1e-8, warmup=0, lr_init=0.0,
                       schedule="constant", momentum=0.0, width=64, scale=1.0, seed=0,
                       activation="tanh", param="ntk", bias=False, tol=DEFAULT_TOL,
                       gtol=0.0, blowup=1e12, threads=None) -> PhaseTable:
    """The phase diagram of a two-layer network over (second axis, learning rate): one
    :func:`fastgd.net.net_sweep` per value of ``axis``, stacked into a
    :class:`~fastgd.linear.phase2.PhaseTable`.

    Parameters
    ----------
    X : array (P, d)
        Inputs.  y : array (P,) targets.
    lr : float or 1-D array
        (Target) learning rates, absolute (> 0): the columns.
    axis : {"beta1", "warmup", "width"}
        The rows: Adam's beta1 (with ``optimizer="gd"``: the heavy-ball momentum), the
        length of the linear warm-up (updates, from ``lr_init`` to the target rate; GD
        included), or the width m (each width its own initialisation from ``seed``).
    values : 1-D sequence
        The values of ``axis`` (beta1 in [0, 1); warm-up lengths integers >= 0; widths
        integers >= 1).
    steps : int
        Updates per run, the warm-up included (default 1000).
    optimizer : {"adam", "rmsprop", "adagrad", "gd"}
        ``axis="beta1"`` needs ``"adam"`` or ``"gd"``.
    betas, eps, warmup, lr_init, schedule, momentum
        As in :func:`fastgd.net.net_gd`, the same for every cell (the axis overrides its
        own).
    width, scale, seed, activation, param, bias, tol, gtol, blowup, threads
        As in :func:`fastgd.net.net_gd` / :func:`fastgd.net.net_sweep` (``width``
        default 64).

    Returns
    -------
    PhaseTable
        ``model="net"``; ``final_loss`` the final E (``inf`` when diverged);
        ``reference`` 2(1 + beta)/lambda0 per row (module docstring); ``theory`` None.

    Raises
    ------
    fastgd.SweepInterrupted
        On Ctrl-C after a row's sweep had started: ``.result`` is the table of the rows
        that finished and the finished cells of the row in progress (the other cells
        ``NOT_RUN``, final loss ``inf``, lambda0 NaN where the row did not start).  A
        Ctrl-C before that raises a plain KeyboardInterrupt.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgd.net import net_adaptive_phase
    >>> X = np.linspace(-1, 1, 8)[:, None]; y = np.sin(2 * X[:, 0])
    >>> t = net_adaptive_phase(X, y, [0.1, 1.0, 100.0], axis="width", values=[4, 8],
    ...                        optimizer="gd", steps=100)
    >>> t.shape, t.status[:, 2].tolist()   # lr = 100 diverges at both widths
    ((2, 3), [2, 2])
    """
    f = "net_adaptive_phase"
    axis, vals = phase_values(f, axis, values, model="net")
    optimizer = V.choice(f, "optimizer", optimizer, ("adam", "rmsprop", "adagrad", "gd"))
    if axis == "beta1" and optimizer in ("rmsprop", "adagrad"):
        raise V.fail(f, "axis", f"'warmup' or 'width' with optimizer={optimizer!r} (no "
                     "beta1)", axis)
    if axis == "beta1" and optimizer == "gd" and V.momentum(f, momentum) != 0:
        raise V.fail(f, "momentum", "0 with axis='beta1' (the axis is the momentum)",
                     momentum)
    lrs = V.rates(f, "lr", lr)
    kw = dict(width=width, scale=scale, seeds=[seed], activation=activation, param=param,
              bias=bias, tol=tol, gtol=gtol, blowup=blowup, threads=threads,
              optimizer=optimizer, warmup=warmup, lr_init=lr_init, schedule=schedule,
              momentum=momentum, progress=False)
    if optimizer != "gd":
        kw.update(betas=betas, eps=eps)
    seed = V.integer(f, "seed", seed, minimum=0)
    kw["seeds"] = [seed]
    kws = [_row_kw(f, axis, v, kw) for v in vals]
    rows = []  # (net_sweep result, its kw) of the rows that ran
    try:
        for k in kws:
            rows.append((_row(f, X, y, lrs, steps, k), k))
    except KeyboardInterrupt as exc:  # keep what finished: a partial table
        if isinstance(exc, SweepInterrupted):  # net_sweep's: the row in progress, its cells
            rows.append((exc.result, kws[len(rows)]))
        if not rows:
            raise
        raise SweepInterrupted(_table(optimizer, axis, vals, lrs, rows, kws, kw)) from None
    return _table(optimizer, axis, vals, lrs, rows, kws, kw)


def _row(f, X, y, lrs, steps, kw):
    """One row: the network sweep of the row's ``kw``."""
    from fastgd.net.sweep import net_sweep

    with renamed(f, "net_sweep"):
        return net_sweep(X, y, lrs, steps, **kw)


def _row_kw(f, axis, value, kw):
    """The options of the row where the axis is ``value``."""
    kw = dict(kw)
    if axis == "beta1" and kw["optimizer"] == "gd":
        kw["momentum"] = float(value)
    elif axis == "beta1":
        betas = kw["betas"]
        if isinstance(betas, (str, bytes)) or V.ndim_of(betas) != 1 or len(list(betas)) != 2:
            raise V.fail_type(f, "betas", "a pair (beta1, beta2)", betas)
        kw["betas"] = (float(value), list(betas)[1])
    elif axis == "warmup":
        kw["warmup"] = int(value)
    else:
        kw["width"] = int(value)
    return kw


def _table(optimizer, axis, vals, lrs, rows, kws, kw):
    """Stack the rows' sweeps, with GD's quadratic-model limit at theta0 per row; rows
    past ``rows`` (an interrupted table) did not run."""
    n = len(vals)
    status = np.full((n, len(lrs)), int(Status.NOT_RUN), dtype=np.int8)
    loss = np.full((n, len(lrs)), np.inf)
    lam0, loss0 = np.full(n, np.nan), np.full(n, np.nan)
    for i, (r, _) in enumerate(rows):
        status[i], loss[i] = r.status[0, 0, 0], r.loss[0, 0, 0]
        lam0[i], loss0[i] = r.lambda0[0, 0, 0], r.loss0[0, 0, 0]
    beta = np.array([float(k["momentum"]) if optimizer == "gd" else 0.0 for k in kws])
    with np.errstate(divide="ignore"):
        ref = 2.0 * (1.0 + beta) / lam0
    if optimizer == "gd":
        label = ("GD on the quadratic model at θ0: 2(1 + β)/λ0" if np.any(beta > 0)
                 or axis == "beta1" else "GD on the quadratic model at θ0: 2/λ0")
    else:
        label = "plain GD on the quadratic model at θ0: 2/λ0 (for scale)"
    res0 = rows[0][0]
    settings = {k: v for k, v in kw.items() if k not in ("threads", "progress", "seeds")}
    settings.update(seed=int(kw["seeds"][0]), lambda0=lam0, loss0=loss0,
                    activation=res0.activation, param=res0.param)
    return PhaseTable("net", optimizer, axis, vals, lrs, status, loss, int(res0.steps),
                      None, "", ref, label, settings)
