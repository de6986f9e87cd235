"""Two-axis phase diagrams: learning rate x a second axis (beta1, warm-up length or, for
networks, width), for Adam, RMSProp, AdaGrad and plain GD, as one table of statuses
(:class:`PhaseTable`) with the closed-form boundary of each row where one exists.

:func:`adaptive_phase` runs one sweep of the linear unit (:func:`fastgd.sweep`, batch)
per value of the second axis and stacks the rows; :func:`fastgd.net.net_adaptive_phase`
does the same for two-layer networks (:func:`fastgd.net.net_sweep`).  Every cell equals
the single run (:func:`fastgd.gd`, :func:`fastgd.net.net_gd`) with the same arguments bit
for bit.  Figures: :func:`fastgd.linear.plot_phase2.plot_adaptive_phase`.

Convention: E(w) = 1/(2P) sum_p (y_p - w.x_p)^2 (note the 1/2), H = X^T X / P; batch GD
diverges above 2/lambda_max(H), heavy ball (PyTorch form, momentum beta) above
2(1 + beta)/lambda_max.  Adam with its preconditioner frozen after T updates is heavy
ball on P^-1 H with P = (1 - beta1^T) diag(sqrt(v_hat) + eps) and diverges above
eta* = (2 + 2 beta1)/((1 - beta1) lambda_max(P^-1 H)) (RMSProp, AdaGrad: beta1 = 0;
:func:`fastgd.theory.adaptive_lr_max`).  That eta* is one number per row only when the
preconditioner does not depend on eta: ``freeze_preconditioner=T`` with
``pre_freeze_lr`` (every rate of a row freezes the same v_hat).  Unfrozen Adam has no
stability boundary on a quadratic (its steps are bounded and its preconditioner adapts,
:mod:`fastgd.linear.adaptive`): its table shows where runs converge within the budget,
and no theory line.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np

from fastgd import status as ST
from fastgd import validate as V
from fastgd.linear.result import SweepInterrupted
from fastgd.status import Status

__all__ = ["AXES", "PhaseTable", "adaptive_phase", "phase_values"]

#: the second axes: linear runs take beta1 and warmup, networks also width
AXES = ("beta1", "warmup", "width")


@dataclass(frozen=True, eq=False)
class PhaseTable:
    """Statuses over (second axis, learning rate): rows are the values of ``axis``,
    columns the learning rates.

    Attributes
    ----------
    model : str
        ``"linear"`` or ``"net"``.
    optimizer : str
        ``"gd"``, ``"adam"``, ``"rmsprop"`` or ``"adagrad"``.
    axis : str
        ``"beta1"`` (Adam's beta1; for ``optimizer="gd"`` the heavy-ball momentum),
        ``"warmup"`` (linear warm-up length, updates) or ``"width"`` (networks).
    values : (n_rows,) float array
        The rows' values of ``axis``.
    lr : (n_lr,) float array
        The (target) learning rates, absolute.
    status : (n_rows, n_lr) int8 array
        :class:`fastgd.Status` codes (BOUNDED 0, CONVERGED 1, DIVERGED 2).
    final_loss : (n_rows, n_lr) float array
        Linear: the final excess loss E(w) - E*; networks: the final loss E (``inf``
        when diverged); both with the 1/2 convention.
    steps : int
        Updates per run (the warm-up included).
    theory : (n_rows,) float array or None
        The closed-form largest stable rate of each row (module docstring; NaN where a
        row has none), or None when the table has none.
    theory_label : str
    reference : (n_rows,) float array or None
        A rate drawn for scale, not a boundary of this optimizer (e.g. plain GD's
        2/lambda_max beside Adam), or None.
    reference_label : str
    settings : dict
        The options shared by every cell.

    Examples
    --------
    >>> import fastgd as fg
    >>> from fastgd.linear.phase2 import adaptive_phase
    >>> X, y = fg.lecture_data()
    >>> t = adaptive_phase(X, y, [0.5, 1.0, 3.0], axis="beta1", values=[0.0, 0.5],
    ...                    optimizer="gd", steps=300)
    >>> t.status.shape, t.boundary.tolist()   # 2/lambda_max = 2.38, 2(1 + 0.5)/lambda_max = 3.57
    ((2, 3), [1.0, inf])
    """

    model: str
    optimizer: str
    axis: str
    values: np.ndarray
    lr: np.ndarray
    status: np.ndarray
    final_loss: np.ndarray
    steps: int
    theory: np.ndarray | None = None
    theory_label: str = ""
    reference: np.ndarray | None = None
    reference_label: str = ""
    settings: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple:
        """(n_rows, n_lr)."""
        return self.status.shape

    @property
    def boundary(self) -> np.ndarray:
        """Per row, the largest learning rate of the grid below the row's first DIVERGED
        cell (rates taken in increasing order): ``inf`` where no cell of the row
        diverged (the boundary lies above the grid), NaN where the smallest rate already
        diverged.

        Examples
        --------
        >>> import numpy as np
        >>> from fastgd.linear.phase2 import PhaseTable
        >>> st = np.array([[1, 1, 2], [1, 1, 1], [2, 2, 2]], dtype=np.int8)
        >>> t = PhaseTable("linear", "gd", "beta1", np.zeros(3), np.array([1.0, 2.0, 3.0]),
        ...                st, np.zeros((3, 3)), 10)
        >>> t.boundary.tolist()
        [2.0, inf, nan]
        """
        order = np.argsort(self.lr, kind="stable")
        lr = self.lr[order]
        div = self.status[:, order] == Status.DIVERGED
        first = np.argmax(div, axis=1)
        out = np.where(first > 0, lr[np.maximum(first - 1, 0)], np.nan)
        return np.where(div.any(axis=1), out, np.inf)

    def counts(self) -> dict:
        """Cells per status name, e.g. ``{"CONVERGED": 10, "DIVERGED": 2}``.

        Examples
        --------
        >>> import numpy as np
        >>> from fastgd.linear.phase2 import PhaseTable
        >>> t = PhaseTable("linear", "gd", "beta1", np.zeros(1), np.ones(2),
        ...                np.array([[1, 2]], dtype=np.int8), np.zeros((1, 2)), 10)
        >>> t.counts()
        {'CONVERGED': 1, 'DIVERGED': 1}
        """
        return {s.name: int(np.sum(self.status == s)) for s in Status
                if np.any(self.status == s)}

    def __repr__(self):
        n, m = self.shape
        head = (f"PhaseTable({self.model}, {self.optimizer}: {n} {self.axis} x {m} rates "
                f"{_g(self.lr.min())}..{_g(self.lr.max())}, {self.steps} steps; "
                + ", ".join(f"{k.lower()} {v}" for k, v in self.counts().items()) + ")")
        lines = [head]
        for k in range(min(n, 8)):
            line = f"  {self.axis} = {_g(self.values[k])}: boundary {_g(self.boundary[k])}"
            if self.theory is not None:
                line += f" (theory {_g(self.theory[k])})"
            lines.append(line)
        if n > 8:
            lines.append(f"  ... {n - 8} more rows")
        return "\n".join(lines)


def _g(x) -> str:
    return f"{float(x):.4g}"


def phase_values(f, axis, values, model="linear"):
    """The second axis ``axis`` and its ``values`` checked (errors name ``f``): beta1 in
    [0, 1), warm-up lengths integers >= 0, widths integers >= 1 (networks only); a
    1-D float array, not empty.

    Examples
    --------
    >>> from fastgd.linear.phase2 import phase_values
    >>> phase_values("f", "warmup", [0, 10, 100])
    ('warmup', array([  0.,  10., 100.]))
    """
    axis = V.choice(f, "axis", axis, AXES if model == "net" else AXES[:2])
    if isinstance(values, (str, bytes)) or values is None:
        raise V.fail_type(f, "values", "a 1-D sequence of numbers", values)
    arr = V.as_float_array(f, "values", V.atleast_1d(f, "values", values), 1)
    if axis == "beta1":
        if not np.all((arr >= 0) & (arr < 1)):
            raise V.fail(f, "values", "in [0, 1) for axis='beta1'", f"{arr.tolist()}")
    else:
        low = 0 if axis == "warmup" else 1
        if not np.all((arr >= low) & (arr == np.round(arr)) & (arr < 2**31)):
            raise V.fail(f, "values", f"integers >= {low} for axis={axis!r}",
                         f"{arr.tolist()}")
    return axis, arr


@contextlib.contextmanager
def renamed(f, inner):
    """Errors of the per-row call ``inner`` (e.g. ``sweep``) re-raised as errors of
    ``f``, so that a bad option names the function the user called.

    Examples
    --------
    >>> from fastgd.linear.phase2 import renamed
    >>> from fastgd.validate import FastGDValueError
    >>> try:
    ...     with renamed("adaptive_phase", "sweep"):
    ...         raise FastGDValueError("sweep: 'tol' must be >= 0; got -1.")
    ... except FastGDValueError as exc:
    ...     print(exc)
    adaptive_phase: 'tol' must be >= 0; got -1.
    """
    try:
        yield
    except (V.FastGDValueError, V.FastGDTypeError) as exc:
        msg = str(exc)
        if msg.startswith(f"{inner}: "):
            raise type(exc)(f"{f}: " + msg[len(inner) + 2:]) from None
        raise


def adaptive_phase(X, y, lr, *, axis, values, steps=1000, optimizer="adam",
                   betas=(0.9, 0.999), eps=1e-8, warmup=0, lr_init=0.0, momentum=0.0,
                   freeze_preconditioner=None, pre_freeze_lr=None, bias=False,
                   tol=ST.DEFAULT_TOL, blowup=1e12, threads=None) -> PhaseTable:
    """The phase diagram of the linear unit over (second axis, learning rate): one batch
    sweep (:func:`fastgd.sweep`) per value of ``axis``, stacked into a
    :class:`PhaseTable`.

    Parameters
    ----------
    X : array (P, d)
        Inputs.  y : array (P,) targets.
    lr : float or 1-D array
        (Target) learning rates, absolute (> 0): the columns.
    axis : {"beta1", "warmup"}
        The rows: ``"beta1"`` sets Adam's beta1 (``betas[1]`` stays beta2), or, with
        ``optimizer="gd"``, the heavy-ball momentum (PyTorch form: the same stability
        factor 1 + beta); ``"warmup"`` the length of the linear warm-up (updates, from
        ``lr_init`` to the target rate; adaptive optimizers only: plain GD on the linear
        unit takes no warm-up, and its constant Hessian would leave 2/lambda_max where
        it is).
    values : 1-D sequence
        The values of ``axis`` (beta1 in [0, 1); warm-up lengths integers >= 0).
    steps : int
        Updates per run, the warm-up included (default 1000).
    optimizer : {"adam", "rmsprop", "adagrad", "gd"}
        ``axis="beta1"`` needs ``"adam"`` or ``"gd"`` (RMSProp and AdaGrad have no beta1).
    betas, eps, warmup, lr_init, freeze_preconditioner, pre_freeze_lr
        As in :func:`fastgd.linear.adaptive.adaptive_gd`, the same for every cell (the
        axis overrides its own).  With ``freeze_preconditioner`` and ``pre_freeze_lr``
        each row has a stability boundary, eta*, drawn as the theory line.
    momentum : float
        Plain GD's heavy-ball momentum when the axis is not ``"beta1"``.
    bias, tol, blowup, threads
        As in :func:`fastgd.sweep`.

    Returns
    -------
    PhaseTable
        ``theory``: plain GD 2(1 + beta)/lambda_max per row; adaptive with
        ``freeze_preconditioner`` and ``pre_freeze_lr``: eta* of the frozen v_hat of the
        row (:func:`fastgd.theory.adaptive_lr_max`); else None.  ``reference``: for an
        adaptive optimizer, plain GD's 2/lambda_max (for scale).

    Raises
    ------
    fastgd.SweepInterrupted
        On Ctrl-C after a row's sweep had started: ``.result`` is the table of the rows
        that finished and the finished cells of the row in progress (the other cells
        ``NOT_RUN``, final loss ``inf``, theory NaN where its row has no finished cell).
        A Ctrl-C before that raises a plain KeyboardInterrupt.

    Examples
    --------
    >>> import fastgd as fg
    >>> from fastgd.linear.phase2 import adaptive_phase
    >>> X, y = fg.lecture_data()
    >>> t = adaptive_phase(X, y, [0.1, 1.0, 20.0], axis="warmup", values=[0, 50],
    ...                    steps=200, freeze_preconditioner=5, pre_freeze_lr=0.05)
    >>> t.status.tolist(), round(float(t.theory[0]), 2), bool(t.theory[0] == t.theory[1])
    ([[0, 1, 2], [0, 1, 2]], 10.79, True)
    """
    f = "adaptive_phase"
    axis, vals = phase_values(f, axis, values)
    optimizer = V.choice(f, "optimizer", optimizer, ("adam", "rmsprop", "adagrad", "gd"))
    if axis == "beta1" and optimizer in ("rmsprop", "adagrad"):
        raise V.fail(f, "axis", f"'warmup' with optimizer={optimizer!r} (no beta1)", axis)
    if axis == "warmup" and optimizer == "gd":
        raise V.fail(f, "axis", "'beta1' with optimizer='gd' (plain GD on the linear unit "
                     "takes no warm-up; its boundary 2/lambda_max does not move)", axis)
    if axis == "beta1" and optimizer == "gd" and V.momentum(f, momentum) != 0:
        raise V.fail(f, "momentum", "0 with axis='beta1' (the axis is the momentum)",
                     momentum)
    X, y = V.data(f, X, y)
    steps = V.integer(f, "steps", steps, minimum=0)
    lrs = V.rates(f, "lr", lr)
    kw = dict(data=[(X, y)], lr=lrs, steps=steps, bias=bias, tol=tol, blowup=blowup,
              threads=threads, optimizer=optimizer)
    if optimizer == "gd":
        kw.update(momentum=momentum)
    else:
        kw.update(betas=betas, eps=eps, warmup=warmup, lr_init=lr_init,
                  freeze_preconditioner=freeze_preconditioner,
                  pre_freeze_lr=pre_freeze_lr, weights=False)
    kws = [_row_kw(f, axis, v, kw) for v in vals]
    rows = []  # (sweep result, its kw) of the rows that ran
    try:
        for k in kws:
            rows.append((_linear_row(f, k), k))
    except KeyboardInterrupt as exc:  # keep what finished: a partial table
        if isinstance(exc, SweepInterrupted):  # sweep's: the row in progress, its cells
            rows.append((exc.result, kws[len(rows)]))
        if not rows:
            raise
        raise SweepInterrupted(_linear_table(optimizer, axis, vals, lrs, rows, kws, kw, X,
                                             bias)) from None
    return _linear_table(optimizer, axis, vals, lrs, rows, kws, kw, X, bias)


def _linear_row(f, kw):
    """One row: the sweep of the row's ``kw``."""
    from fastgd.linear.sweep import sweep

    with renamed(f, "sweep"):
        return sweep("gd", **kw)


def _row_kw(f, axis, value, kw):
    """The options of the row where the axis is ``value``."""
    kw = dict(kw)
    if axis == "beta1" and kw["optimizer"] == "gd":
        kw["momentum"] = float(value)
    elif axis == "beta1":
        kw["betas"] = _betas(f, kw["betas"], value)
    else:
        kw["warmup"] = int(value)
    return kw


def _betas(f, betas, beta1):
    """``betas`` with its first entry replaced by the axis value."""
    if isinstance(betas, (str, bytes)) or V.ndim_of(betas) != 1 or len(list(betas)) != 2:
        raise V.fail_type(f, "betas", "a pair (beta1, beta2)", betas)
    return (float(beta1), list(betas)[1])


def _linear_table(optimizer, axis, vals, lrs, rows, kws, kw, X, bias):
    """Stack the rows' sweeps and compute the theory line of each row; rows past
    ``rows`` (an interrupted table) did not run."""
    from fastgd.theory import adaptive_lr_max, momentum_lr_max

    res0 = rows[0][0]
    lam = float(res0.lambda_max[0])
    n = len(kws)
    status = np.full((n, lrs.size), int(Status.NOT_RUN), dtype=np.int8)
    loss = np.full((n, lrs.size), np.inf)
    for i, (r, _) in enumerate(rows):
        status[i], loss[i] = r.status[0, :, 0], r.final_loss[0, :, 0]
    theory = reference = None
    tl = rl = ""
    if optimizer == "gd":
        theory = np.array([momentum_lr_max(lam, float(k["momentum"])) for k in kws])
        tl = "GD: 2(1 + β)/λ$_{max}$" if axis == "beta1" or kw["momentum"] else \
            "GD: 2/λ$_{max}$"
    else:
        reference = np.full(n, 2.0 / lam)
        rl = "plain GD: 2/λ$_{max}$ (for scale)"
        if kw["freeze_preconditioner"] is not None and kw["pre_freeze_lr"] is not None:
            Xa = np.asarray(X, dtype=float)
            if Xa.ndim == 1:
                Xa = Xa[:, None]
            if bias:
                Xa = np.hstack([Xa, np.ones((Xa.shape[0], 1))])
            H = Xa.T @ Xa / Xa.shape[0]
            theory = np.full(n, np.nan)
            for i, (r, k) in enumerate(rows):
                theory[i] = _frozen_limit(r, k, H, adaptive_lr_max)
            tl = ("frozen preconditioner: η* = (2 + 2β1)/((1 − β1) λ$_{max}$(P⁻¹H))"
                  if optimizer == "adam" else
                  "frozen preconditioner: η* = 2/λ$_{max}$(P⁻¹H)")
    settings = {k: v for k, v in kw.items() if k not in ("data", "lr", "threads")}
    return PhaseTable("linear", optimizer, axis, vals, lrs, status, loss,
                      int(res0.meta["spec"]["steps"]), theory, tl, reference, rl,
                      settings)


def _frozen_limit(res, kw, H, adaptive_lr_max):
    """eta* of a frozen row from the v_hat its cells froze (the same in every cell: the
    updates before the freeze run at ``pre_freeze_lr``); NaN where none froze."""
    vh = res.meta["frozen_v_hat"][0, :, 0]
    ok = np.all(np.isfinite(vh), axis=1)
    if not ok.any():
        return np.nan
    adam = kw["optimizer"] == "adam"
    spec = res.meta["spec"]
    return adaptive_lr_max(H, vh[np.argmax(ok)], beta1=spec["beta1"] if adam else 0.0,
                           eps=spec["eps"], t=spec["freeze"] if adam else None)
