"""Single runs of a two-layer network (:mod:`fastgd.net`): full-batch GD
(:func:`net_gd`) and SGD (:func:`net_sgd`), plain, with momentum or adaptive (Adam,
RMSProp, AdaGrad: :mod:`fastgd.net.adaptive`), their result :class:`NetRun`, and the
option checks a sweep shares with them (the kernels' launcher: :mod:`fastgd.net.launch`).

The loss is E = 1/(2P) sum_p (y_p - f(x_p))^2 (note the 1/2); a single run is one lane
of the sweep's kernel, so a :func:`fastgd.net.net_sweep` cell with the same arguments is
bit-identical.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from fastgd import status as ST
from fastgd import validate as V
from fastgd.engine import cost as _cost
from fastgd.engine import grid as G
from fastgd.engine.blas import single_blas
from fastgd.engine.fields import loss_ratio
from fastgd.net.adaptive import (
    OPTIM_DOC,
    _Optim,
    _optim,
    _precond_sharpness,
    _preconditioner,
)
from fastgd.net.contract import NetJob, NetSpec, net_inputs
from fastgd.net.launch import _stable_check, run_job
from fastgd.net.model import (
    LANCZOS_ITERS,
    NTK_DENSE,
    _init,
    _loss_np,
    _model,
    _ntk_top,
    _theta,
    _top_eig,
    _with_params,
)
from fastgd.status import DEFAULT_ORDER, DEFAULT_TOL, Status

__all__ = ["NetRun", "net_gd", "net_sgd"]


@dataclass(frozen=True)
class NetRun:
    """Result of one two-layer network run (:func:`net_gd`, :func:`net_sgd`).

    Attributes
    ----------
    status : Status
        CONVERGED, DIVERGED or BOUNDED (:mod:`fastgd.net`): CONVERGED when E <= tol x
        E(theta0) or, with ``gtol`` > 0, |grad E| <= gtol x |grad E(theta0)| (the rule
        that ends a run on a target the network cannot fit; :attr:`converged_by`).
    theta : (N,) array
        Final parameters (for a diverged run the last iterate that passed the check).
    loss, loss0 : float
        E at the end (``inf`` when diverged) and at theta0.
    sharpness, lambda0 : float
        Top Hessian eigenvalue at the end and at theta0 (Lanczos on exact HVPs).
    ntk, ntk0 : float
        Top NTK eigenvalue lambda_max(J J^T / P) at the end and at theta0.
    max_loss_ratio : float
        max_t E_t / E(theta0) over the checked iterates (> 1: the loss spiked; ``inf``
        when diverged).
    steps_to_tol, diverged_at : int
        Step (epoch) of convergence / divergence, -1 if none.
    losses : (n,) array
        E per step (epoch) from E(theta0) up to the step it finished (``inf`` at a
        divergence step).
    sharpness_steps, sharpnesses : arrays or None
        The sharpness every ``sharpness_every`` steps (epochs) up to the end (the last
        reported iterate after it), with ``sharpness_every > 0``.
    lr, momentum : float;  width, d : int;  activation, param : str;  bias : bool
    method, unit : str
        ``"gd"``/``"step"`` or ``"sgd"``/``"epoch"``.
    trajectory_steps, trajectory : arrays or None
        With ``record=True`` / ``record_every=k``: the steps (epochs) 0, k, 2k, ... up to
        the end and the parameters there, (n, N) (after a divergence: the last reported
        iterate).  None otherwise.
    tol, gtol : float
        The convergence tolerances of the run.
    optimizer : str
        ``"gd"`` (plain, heavy ball with ``momentum``), ``"adam"``, ``"rmsprop"`` or
        ``"adagrad"``; ``optim`` holds its settings (betas, eps, warm-up, schedule,
        freeze; :mod:`fastgd.net.adaptive`).
    preconditioned_sharpness, preconditioned_sharpness0 : float
        Adaptive runs: lambda_max(P^-1 H) at the end and at theta0 (NaN for GD; NaN at
        theta0 for SGD), to compare with (2 + 2 beta1)/(lr (1 - beta1)) -- 38/lr for
        Adam at beta1 = 0.9, 2/lr for RMSProp and AdaGrad (:attr:`threshold`).
    preconditioned_sharpnesses : array or None
        At the steps :attr:`sharpness_steps`, with ``sharpness_every > 0``.
    preconditioner : (N,) array or None
        The diagonal of P behind :attr:`preconditioned_sharpness`.

    Examples
    --------
    >>> import numpy as np, fastgd.net as fn
    >>> X = np.ones((1, 1)); y = np.array([1.0])     # the 1-1-1 network f = w2 w1 x
    >>> r = fn.net_gd(X, y, 0.1, 200, theta0=[1.0, 0.5], activation="identity",
    ...               param="standard", sharpness_every=10)
    >>> r.status.name, r.width, r.d, r.unit, r.steps_to_tol, r.sharpness_steps.tolist()
    ('CONVERGED', 1, 1, 'step', 42, [0, 10, 20, 30, 40])
    >>> round(r.lambda0, 9), round(r.sharpness, 2)   # the sharpness rose on the way
    (1.0, 2.13)
    """

    status: Status
    theta: np.ndarray
    loss: float
    loss0: float
    sharpness: float
    lambda0: float
    ntk: float
    ntk0: float
    max_loss_ratio: float
    steps_to_tol: int
    diverged_at: int
    losses: np.ndarray
    sharpness_steps: np.ndarray | None
    sharpnesses: np.ndarray | None
    lr: float
    momentum: float
    width: int
    d: int
    activation: str
    param: str
    bias: bool
    method: str
    unit: str
    trajectory_steps: np.ndarray | None = None
    trajectory: np.ndarray | None = None
    tol: float = DEFAULT_TOL
    gtol: float = 0.0
    optimizer: str = "gd"
    optim: dict | None = None
    preconditioned_sharpness: float = math.nan
    preconditioned_sharpness0: float = math.nan
    preconditioned_sharpnesses: np.ndarray | None = None
    preconditioner: np.ndarray | None = None

    @property
    def threshold(self) -> float:
        """The stability threshold of the run's curvature at its target rate: 2 (1 +
        momentum)/lr for GD (on the sharpness), (2 + 2 beta1)/(lr (1 - beta1)) for Adam
        and 2/lr for RMSProp and AdaGrad (on the preconditioned sharpness).

        Examples
        --------
        >>> import numpy as np, fastgd.net as fn
        >>> X = np.linspace(-1, 1, 6)[:, None]; y = 0.5 * X[:, 0]
        >>> round(fn.net_gd(X, y, 0.1, 5, width=2, optimizer="adam").threshold, 9)
        380.0
        """
        if self.optimizer == "gd":
            return 2.0 * (1.0 + self.momentum) / self.lr
        b = self.optim["betas"][0] if self.optimizer == "adam" else 0.0
        return (2.0 + 2.0 * b) / (self.lr * (1.0 - b))

    def __repr__(self):
        from fastgd.net.report import run_repr

        return run_repr(self)

    def save(self, path):
        """Write the run to ``path`` (``.npz`` appended) atomically, with a checksum;
        ``fastgd.load`` reads it back bit for bit (:func:`fastgd.net.io.save_net`).

        Examples
        --------
        >>> import numpy as np, fastgd as fg, fastgd.net as fn
        >>> X = np.linspace(-1, 1, 6)[:, None]; y = 0.5 * X[:, 0]
        >>> run = fn.net_gd(X, y, 0.5, 50, width=4)
        >>> fg.load(run.save("net_run")).loss == run.loss
        True
        """
        from fastgd.net.io import save_net

        return save_net(self, path)

    @property
    def converged_by(self) -> str | None:
        """Which rule ended a CONVERGED run: ``"loss"`` (E <= tol x E(theta0)) or
        ``"gradient"`` (|grad E| <= gtol x |grad E(theta0)|, a target that cannot be fit);
        None when the run did not converge.

        Examples
        --------
        >>> import numpy as np, fastgd.net as fn
        >>> X = np.ones((2, 1)); y = np.array([1.0, -1.0])   # same input, two labels: E* > 0
        >>> r = fn.net_gd(X, y, 0.5, 500, width=2, activation="identity", gtol=1e-6)
        >>> r.status.name, r.converged_by
        ('CONVERGED', 'gradient')
        """
        if not self.converged:
            return None
        # the kernel's own check, on its recorded losses (E(theta0) first)
        at = self.losses[self.steps_to_tol]
        return "loss" if at <= self.tol * self.losses[0] else "gradient"

    @property
    def converged(self) -> bool:
        """Whether the status is CONVERGED."""
        return self.status == Status.CONVERGED

    @property
    def diverged(self) -> bool:
        """Whether the status is DIVERGED."""
        return self.status == Status.DIVERGED

    def catapult(self, spike=2.0) -> bool:
        """Converged after the loss rose above ``spike`` x its initial value.

        Parameters
        ----------
        spike : float
            Threshold on :attr:`max_loss_ratio` = max_t E_t / E(theta0).

        Returns
        -------
        bool

        Examples
        --------
        >>> import numpy as np, fastgd.net as fn
        >>> X = np.ones((1, 1)); y = np.array([1.0])     # the 1-1-1 network, lambda0 = 4
        >>> kw = dict(theta0=[2.0, 0.25], activation="identity", param="standard")
        >>> [fn.net_gd(X, y, lr, 300, **kw).catapult() for lr in (0.2, 0.6)]  # 2/lambda0 = 0.5
        [False, True]
        """
        return bool(self.converged and self.max_loss_ratio > spike)


def _run_opts(f, steps, stepname, tol, blowup, momentum, sharpness_every, iters, gtol=0.0):
    steps = V.integer(f, stepname, steps, minimum=0)
    tol = V.real(f, "tol", tol, nonneg=True)
    blowup = V.blowup(f, blowup)
    beta = V.momentum(f, momentum)
    every = V.integer(f, "sharpness_every", sharpness_every, minimum=0)
    iters = V.integer(f, "sharpness_iters", iters, minimum=1, maximum=10**5)
    gtol = V.real(f, "gtol", gtol, nonneg=True)
    return steps, tol, blowup, beta, every, iters, gtol


def _start(f, M, theta0, width, scale, seed):
    """theta0 given (width inferred and checked) or drawn from (width, scale, seed)."""
    if theta0 is not None:
        t, m = _theta(f, "theta0", theta0, M)
        if width is not None:
            w = V.integer(f, "width", width, minimum=1)
            if w != m:
                raise V.fail(f, "theta0", f"of length {w} x {M.per()} (width {w})",
                             f"length {t.size}")
        return t, m
    m = V.integer(f, "width", 64 if width is None else width, minimum=1, maximum=10**7)
    scale = V.real(f, "scale", scale, nonneg=True)
    seed = V.integer(f, "seed", seed, minimum=0)
    _cost.check(f, "width", nbytes=3 * 8.0 * m * M.per(), what=f"{m:,} x {M.per()} "
                "parameters (drawn, run and kept)", hint="use a smaller width")
    return _init(m, M.d, scale, seed, M.bias), m


def _recording(f, record, record_every, every):
    """(trajectory spacing, kernel spacing): ``record=True`` records every step unless
    ``record_every`` says otherwise; the kernel records every gcd of the trajectory's and
    the sharpness curve's spacings (0: off)."""
    record = V.boolean(f, "record", record)
    k = V.integer(f, "record_every", record_every, minimum=0)
    k = k or (1 if record else 0)
    return k, (math.gcd(k, every) if k and every else k or every)


def _recorded(out, rec_every, k, end):
    """The kernel's recordings every ``k`` steps up to ``end``: (steps, rows)."""
    rec = out.rec_of(0)
    steps = np.arange(rec.shape[0]) * rec_every
    keep = (steps <= end) & (steps % k == 0)
    return steps[keep], rec[keep]


def _single(f, method, X, y, lr, steps, width, theta0, scale, seed, activation, param, bias,
            momentum, tol, blowup, sharpness_every, sharpness_iters, sgd=None, gtol=0.0,
            record=False, record_every=0, opts=None):
    M = _model(f, X, y, activation, param, bias)
    lr = V.real(f, "lr", lr, positive=True)
    stepname = "steps" if method == "gd" else "epochs"
    steps, tol, blowup, beta, every, iters, gtol = _run_opts(
        f, steps, stepname, tol, blowup, momentum, sharpness_every, sharpness_iters, gtol)
    rk, rec_every = _recording(f, record, record_every, every)
    batch, code, key = 1, 0, np.zeros(2, dtype=np.int64)
    if method == "sgd":
        batch_size, order, oseed = sgd
        batch = V.integer(f, "batch_size", batch_size, minimum=1, maximum=M.P)
        code = ST.ORDERS[V.choice(f, "order", order, tuple(ST.ORDERS))]
        key = G.seed_key(V.integer(f, "seed", oseed, minimum=0))
    # the schedule counts updates: steps of GD, minibatches of SGD
    optim = _optim(f, steps * (1 if method == "gd" else -(-M.P // batch)), momentum=beta,
                   **(opts or {}))
    t0, m = _start(f, M, theta0, width, scale, seed)
    N = t0.size
    _cost.run(f, stepname, steps, 0, _cost.NET_BLOCK * M.P * N * (
        _cost.NET_GD if method == "gd" else _cost.NET_SGD), False)  # one lane: a block
    n_rec = steps // rec_every + 1 if rec_every else 0
    n_sh = steps // every + 1 if every else 0
    _cost.check(f, "record_every" if rk else "sharpness_every", nbytes=8.0 * n_rec * N,
                work=float(n_sh) * iters * 4 * M.P * N,
                what=f"{n_rec:,} recorded parameter vectors x {N:,}",
                work_what=f"{n_sh:,} sharpness estimates x {iters} HVPs",
                hint="record less often")
    twice = 2 if optim.adaptive else 1  # and the preconditioned sharpness
    _cost.lanczos(f, "sharpness_iters" if iters > LANCZOS_ITERS else "X" if M.P > N
                  else "width", twice * (n_sh + 2), N, M.P, m, iters,
                  calls=twice * (3 if n_sh else 2))
    _cost.ntk(f, "X", 2, M.P, N, m, NTK_DENSE)
    spec = NetSpec(method, steps, tol, blowup, beta=beta, batch=batch, order=code, gtol=gtol,
                   optim=optim, n_rec=steps + 1, rec_every=rec_every)
    out, _, _ = run_job(f, NetJob(spec, net_inputs(M, [(m, t0, key)], [lr]), lanes=1))
    run = _to_run(M, m, t0, out, method, lr, steps, beta, iters, every, rk, rec_every,
                  tol, gtol, optim)
    if optim.adaptive:
        per_step = 1 if method == "gd" else -(-M.P // batch)  # updates per step / epoch
        with np.errstate(all="ignore"):  # the moments of a diverged run overflow
            run = _with_precond(run, M, m, t0, out, optim, per_step, every, rec_every, iters)
    return run


def _with_precond(run, M, m, t0, out, optim: _Optim, per_step, every, rec_every, iters):
    """``run`` with the preconditioned sharpness at theta0, at the end and every
    ``every`` steps (:mod:`fastgd.net.adaptive`: ``per_step`` updates per step or epoch),
    each warm-started from the top Ritz vector at theta0; then the stability rule of a
    frozen preconditioner."""
    full = run.method == "gd"
    last = len(run.losses) - 1
    end = max(last - 1, 0) if run.status == Status.DIVERGED else last  # reported iterate
    ps0, v0 = _precond_sharpness(M, m, optim, t0[None], np.zeros((1, t0.size)), [0], full,
                                 iters, vectors=True)
    start = np.broadcast_to(v0, (1, t0.size))
    v_end = out.v_of(0)
    ps = _precond_sharpness(M, m, optim, run.theta[None], v_end[None], [end * per_step], full,
                            iters, start=start)
    curve = None
    if every:  # the steps of the sharpness curve (after a divergence: the kept iterate)
        keep = np.arange(out.rec_of(0).shape[0]) * rec_every
        sel = np.flatnonzero((keep <= last) & (keep % every == 0))
        Th, Vs = out.rec_of(0)[sel], out.rec_of(0, v=True)[sel]
        curve = _precond_sharpness(M, m, optim, Th, Vs, np.minimum(keep[sel], end) * per_step,
                                   full, iters, start=np.broadcast_to(v0, Th.shape))
    st = np.array([int(run.status)])
    tol_at = np.array([run.steps_to_tol])
    _stable_check("gd" if full else "sgd", st, tol_at, run.lr, None, 0.0, optim, ps)
    return dataclasses.replace(
        run, status=Status(int(st[0])), steps_to_tol=int(tol_at[0]),
        preconditioned_sharpness=float(ps[0]), preconditioned_sharpness0=float(ps0[0]),
        preconditioned_sharpnesses=curve,
        preconditioner=_preconditioner(M, m, optim, run.theta, v_end, end * per_step, full))


def _sharpness_warm(M, m, t0, Th, iters, threads=None):
    """(sharpness at t0 then at each row of Th, the top Ritz vector at t0): the rows
    warm-started from that vector (the end of a run that moved little stops early)."""
    lam0, v0 = _top_eig(M, m, t0[None], iters, vectors=True, threads=threads)
    lam = _top_eig(M, m, Th, iters, start=np.broadcast_to(v0, Th.shape), threads=threads)
    return np.concatenate([lam0, lam]), v0[0]


def _to_run(M, m, t0, out, method, lr, steps, beta, iters, every, rk, rec_every, tol, gtol,
            optim: _Optim):
    """The NetRun of a one-cell kernel output: the stability rule, the curvature."""
    st = np.array([out.status[0]])
    tol_at = np.array([out.tol_at[0]])
    theta = out.theta_of(0).copy()
    lam, v0 = _sharpness_warm(M, m, t0, theta[None], iters)
    if not optim.adaptive:
        _stable_check(method, st, tol_at, lr, lam[1:], beta, optim)
    status = Status(int(st[0]))
    end = {Status.DIVERGED: int(out.div_at[0])}.get(status, None)
    if end is None:
        end = int(out.tol_at[0]) if out.status[0] == Status.CONVERGED else steps
    loss0 = _loss_np(t0, M, m)
    sharp_steps = sharps = traj_steps = traj = None
    if every:
        sharp_steps, rec = _recorded(out, rec_every, every, end)
        sharps = _top_eig(M, m, rec, iters, start=np.broadcast_to(v0, rec.shape))
    if rk:
        traj_steps, traj = _recorded(out, rec_every, rk, end)
        traj = traj.copy()
    return NetRun(
        status=status, theta=theta, loss=float(out.loss[0]), loss0=loss0,
        sharpness=float(lam[1]), lambda0=float(lam[0]), ntk=_ntk_top(theta, M, m),
        ntk0=_ntk_top(t0, M, m), max_loss_ratio=float(loss_ratio(out.maxloss[0], loss0)),
        steps_to_tol=int(tol_at[0]), diverged_at=int(out.div_at[0]),
        losses=out.rec_loss[0, : end + 1].copy(), sharpness_steps=sharp_steps,
        sharpnesses=sharps, lr=lr, momentum=beta, width=m, d=M.d, activation=M.activation,
        param=M.param, bias=M.bias, method=method, unit="step" if method == "gd" else "epoch",
        trajectory_steps=traj_steps, trajectory=traj, tol=tol, gtol=gtol,
        optimizer=optim.name, optim=optim.as_dict())


#: the arguments :func:`net_gd` and :func:`net_sgd` share (put in their docstrings by
#: :func:`fastgd.net.model._with_params`)
_RUN_DATA = """\
    X : array (P, d)
        Inputs (standardise them: the curvature scales with |x|^2).
    y : array (P,)
        Targets.
    lr : float
        Learning rate eta > 0 (GD on a quadratic diverges above 2/lambda_max).
"""
_RUN_OPTIONS = """\
    width : int, optional
        Hidden units m (default 64; inferred from ``theta0`` when given).
    theta0 : array (N,), optional
        Initial parameters (flat, :func:`net_unpack`); default drawn by :func:`net_init`
        from (width, scale, seed).
    scale : float
        Standard deviation of the initial W and a (b starts at 0).
    seed : int
        Seeds the initial parameters (and, for SGD, the sample order).
    activation : {"identity", "tanh", "relu"}
    param : {"ntk", "standard"}
        f = a.phi(W x + b)/sqrt(m) or a.phi(W x + b).
    bias : bool
    momentum : float in [0, 1)
        Heavy ball in PyTorch's form: buf <- momentum buf + g, theta <- theta - lr buf.
    tol : float
        Converged when E <= tol x E(theta0).
    gtol : float
        With gtol > 0, also converged when |grad E| <= gtol x |grad E(theta0)| (full
        batch, checked when the loss is): the rule that ends a run whose target the
        network cannot fit (E* > 0, where the loss rule never fires).  0 (default): off.
    blowup : float (>= 1)
        Diverged when E > blowup x max(E(theta0), mean(y^2)/2) or not finite.
    sharpness_every : int
        Record the sharpness every k steps (epochs) (0: only at the start and the end).
    sharpness_iters : int
        Lanczos steps per sharpness, at most (:mod:`fastgd.net.lanczos`: the end of the
        run and its curve start from the top eigenvector found at theta0).
    record : bool
        Keep the parameters of every step (epoch): :attr:`NetRun.trajectory`.
    record_every : int
        Keep them every k steps (epochs) instead (implies ``record``; 0: as ``record``).
    {optim}
"""


@single_blas
@_with_params(data=_RUN_DATA, options=_RUN_OPTIONS.replace("    {optim}\n", OPTIM_DOC))
def net_gd(X, y, lr, steps, *, width=None, theta0=None, scale=1.0, seed=0,
           activation="tanh", param="ntk", bias=False, momentum=0.0, tol=DEFAULT_TOL,
           blowup=1e12, sharpness_every=0, sharpness_iters=LANCZOS_ITERS, gtol=0.0,
           record=False, record_every=0, optimizer="gd", betas=(0.9, 0.999), eps=1e-8,
           warmup=0, lr_init=0.0, schedule="constant", decay_steps=None, decay_factor=None,
           freeze_preconditioner=None) -> NetRun:
    """Full-batch gradient descent on a two-layer network, E = 1/(2P) sum (y - f(x))^2.

    Parameters
    ----------
    {data}
    steps : int
        Step budget (>= 0).
    {options}

    Returns
    -------
    NetRun
        A :func:`net_sweep` cell with the same arguments is bit-identical.

    Examples
    --------
    >>> import numpy as np, fastgd.net as fn
    >>> X = np.linspace(-1, 1, 6)[:, None]; y = 0.5 * X[:, 0]
    >>> r = fn.net_gd(X, y, lr=0.5, steps=400, width=4, activation="identity", tol=1e-6)
    >>> r.status.name, bool(r.loss <= 1e-6 * r.loss0), bool(0.5 * r.sharpness < 2)
    ('CONVERGED', True, True)
    >>> r.losses.shape == (r.steps_to_tol + 1,)   # E(theta0), then one loss per step
    True
    >>> r = fn.net_gd(X, y, 0.5, 400, width=4, activation="identity", tol=0, record_every=100)
    >>> r.trajectory_steps.tolist(), r.trajectory.shape      # theta at steps 0, 100, ...
    ([0, 100, 200, 300, 400], (5, 8))
    """
    opts = dict(optimizer=optimizer, betas=betas, eps=eps, warmup=warmup, lr_init=lr_init,
                schedule=schedule, decay_steps=decay_steps, decay_factor=decay_factor,
                freeze=freeze_preconditioner)
    return _single("net_gd", "gd", X, y, lr, steps, width, theta0, scale, seed, activation,
                   param, bias, momentum, tol, blowup, sharpness_every, sharpness_iters,
                   gtol=gtol, record=record, record_every=record_every, opts=opts)


@single_blas
@_with_params(data=_RUN_DATA, options=_RUN_OPTIONS.replace("    {optim}\n", OPTIM_DOC))
def net_sgd(X, y, lr, epochs, *, batch_size=1, order=DEFAULT_ORDER, width=None, theta0=None,
            scale=1.0, seed=0, activation="tanh", param="ntk", bias=False, momentum=0.0,
            tol=DEFAULT_TOL, blowup=1e12, sharpness_every=0,
            sharpness_iters=LANCZOS_ITERS, gtol=0.0, record=False, record_every=0,
            optimizer="gd", betas=(0.9, 0.999), eps=1e-8, warmup=0, lr_init=0.0,
            schedule="constant", decay_steps=None, decay_factor=None,
            freeze_preconditioner=None) -> NetRun:
    """Per-sample or minibatch SGD on a two-layer network (status checked once per epoch
    on the full loss; the step on a batch B is -lr times the gradient of its mean loss
    1/(2|B|) sum_B (y - f)^2).

    Parameters
    ----------
    {data}
    epochs : int
        Passes over the data.
    batch_size : int in [1, P]
        The last batch of an epoch is smaller when it does not divide P.
    order : {"cyclic", "shuffle", "replacement"}
        Counter-based sample order from ``seed`` (as :func:`fastgd.sgd`).
    {options}

    Returns
    -------
    NetRun
        Per epoch.  CONVERGED is the plain rule (no stability condition).

    Examples
    --------
    >>> import numpy as np, fastgd.net as fn
    >>> X = np.linspace(-1, 1, 6)[:, None]; y = 0.5 * X[:, 0]
    >>> r = fn.net_sgd(X, y, 0.1, 100, width=4, activation="identity", tol=1e-6)
    >>> r.status.name, r.unit
    ('CONVERGED', 'epoch')
    """
    opts = dict(optimizer=optimizer, betas=betas, eps=eps, warmup=warmup, lr_init=lr_init,
                schedule=schedule, decay_steps=decay_steps, decay_factor=decay_factor,
                freeze=freeze_preconditioner)
    return _single("net_sgd", "sgd", X, y, lr, epochs, width, theta0, scale, seed, activation,
                   param, bias, momentum, tol, blowup, sharpness_every, sharpness_iters,
                   (batch_size, order, seed), gtol=gtol, record=record,
                   record_every=record_every, opts=opts)
