"""Single runs of a two-layer network (:mod:`fastgd.net`): full-batch GD
(:func:`net_gd`) and SGD (:func:`net_sgd`), their result :class:`NetRun`, and the
machinery a sweep shares with them (chunks of learning rates run as SIMD lanes of
:func:`fastgd.net.kernels.grid_net`, the final status rules).

The loss is E = 1/(2P) sum_p (y_p - f(x_p))^2 (note the 1/2); a single run is one lane
of the sweep's kernel, so a :func:`fastgd.net.net_sweep` cell with the same arguments is
bit-identical.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass

import numpy as np

from fastgd import status as ST
from fastgd import validate as V
from fastgd.engine import cost as _cost
from fastgd.engine import grid as G
from fastgd.engine.notice import first_compile
from fastgd.net.model import (
    LANCZOS_ITERS,
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

#: learning rates per chunk (SIMD lanes sharing one initialisation), and for wide
#: networks one vector block of the kernel (:mod:`fastgd.kernels.simd`: 8).  A chunk's
#: arrays are [param][lane]: with 32 lanes a block's rows sit 256 bytes apart and use a
#: quarter of the cache's sets, which costs nothing while a block's parameters, gradient
#: and activations fit a quarter of the cache and a lot when they do not (wide networks
#: run faster with 8 lanes; bench/test_bench_net.py)
LANES = 32
LANES_WIDE = 8
_FIT = 4096  # cache lines (256 KB): the largest block footprint run with LANES


def _lanes(m, d, bias):
    """Lanes per chunk for width m: a block touches ~3 N + 8 m lines (parameters,
    gradient and rollback copy, activations of 8 samples)."""
    N = m * (d + 1 + int(bias))
    return LANES if 3 * N + 8 * m <= _FIT else LANES_WIDE


class _Out:
    """Flat per-cell kernel outputs (cells: init-major, lr-minor)."""

    def __init__(self, Ns, n_lr, n_rec=0, rec_every=0, n_th=0):
        n = len(Ns) * n_lr
        per_cell_N = np.repeat(np.asarray(Ns, dtype=np.int64), n_lr)
        self.status = np.full(n, Status.NOT_RUN, dtype=np.int8)
        self.theta_off = np.concatenate([[0], np.cumsum(per_cell_N)]).astype(np.int64)
        self.theta = np.zeros(int(self.theta_off[-1]))
        self.loss = np.full(n, np.inf)
        self.tol_at = np.full(n, -1, dtype=np.int64)
        self.div_at = np.full(n, -1, dtype=np.int64)
        self.maxloss = np.full(n, np.inf)
        self.rec_loss = np.full((n, n_rec), np.inf)
        self.rec_every = int(rec_every)
        self.rec_off = np.concatenate([[0], np.cumsum(per_cell_N * n_th)]).astype(np.int64)
        self.rec_theta = np.zeros(int(self.rec_off[-1]) if rec_every else 0)
        self.per_cell_N = per_cell_N

    def tail(self):
        return (self.rec_every, self.status, self.theta, self.theta_off, self.loss,
                self.tol_at, self.div_at, self.maxloss, self.rec_loss, self.rec_theta,
                self.rec_off)

    def theta_of(self, k):
        return self.theta[self.theta_off[k]: self.theta_off[k + 1]]

    def rec_of(self, k):
        N = self.per_cell_N[k]
        return self.rec_theta[self.rec_off[k]: self.rec_off[k + 1]].reshape(-1, N)


def _execute(f, M, method, inits, lrs, steps, beta, batch, order, tol, blowup, n_rec,
             rec_every, threads, progress, lanes=None, gtol=0.0):
    """Run every (init, lr) cell; ``inits``: list of (m, theta0, key); ``lrs`` (n_lr,)
    shared by every init or (n_init, n_lr), a row per init."""
    from fastgd.net.kernels import grid_net, rows_net

    if first_compile(rows_net):
        print("fastgd: compiling the two-layer network kernels, first run only (cached on "
              "disk)...", file=sys.stderr, flush=True)

    n_th = steps // rec_every + 1 if rec_every else 0
    Ns = [t.size for _, t, _ in inits]
    lrs = np.ascontiguousarray(np.broadcast_to(lrs, (len(inits), lrs.shape[-1])),
                               dtype=np.float64)
    n_lr = lrs.shape[1]
    out = _Out(Ns, n_lr, n_rec, rec_every, n_th)
    widths = np.array([mm for mm, _, _ in inits], dtype=np.int64)
    scales = np.array([M.scale(mm) for mm in widths], dtype=np.float64)
    init_off = np.concatenate([[0], np.cumsum(Ns)]).astype(np.int64)
    flat = np.ascontiguousarray(np.concatenate([t for _, t, _ in inits]))
    keys = np.ascontiguousarray(np.stack([k for _, _, k in inits]).astype(np.int64))
    rows = []
    for c in range(len(inits)):
        n = lanes or _lanes(inits[c][0], M.d, M.bias)
        for a in range(0, n_lr, n):
            rows.append((c, a, min(a + n, n_lr)))
    chunks = np.ascontiguousarray(np.array(rows, dtype=np.int64).reshape(-1, 3))
    code = 0 if method == "gd" else 1

    def call(rows_, nw):
        with np.errstate(all="ignore"):
            grid_net(M.X, M.y, M.act, M.bias, code, widths, scales, init_off, flat, keys, lrs,
                     beta, steps, batch, order, tol, gtol, blowup, M.c0, rows_, nw,
                     *out.tail())

    t0 = time.perf_counter()
    with G.using_threads(f, threads) as nw:
        G.execute(call, chunks, nw, progress=progress, desc=f)
    return out, time.perf_counter() - t0, nw


def _ratio(maxloss, loss0):
    with np.errstate(all="ignore"):
        ratio = np.where(loss0 > 0, maxloss / np.where(loss0 > 0, loss0, 1.0), 1.0)
    return np.where(np.isinf(maxloss), np.inf, ratio)


def _stable_check(method, status, tol_at, lr, sharp, beta):
    """Batch GD: a converged cell whose minimum is linearly unstable (lr S > 2 (1 + beta))
    met the tolerance on a pass near it and is BOUNDED (in place)."""
    if method != "gd":
        return
    bad = (status == Status.CONVERGED) & (lr * sharp > 2.0 * (1.0 + beta) * (1 + 1e-9))
    status[bad] = Status.BOUNDED
    tol_at[bad] = -1


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

    def __repr__(self):
        from fastgd.net.report import run_repr

        return run_repr(self)

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
            record=False, record_every=0):
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
    t0, m = _start(f, M, theta0, width, scale, seed)
    N = t0.size
    _cost.run(f, stepname, steps, 0, 4.0 * M.P * N, False)
    n_rec = steps // rec_every + 1 if rec_every else 0
    n_sh = steps // every + 1 if every else 0
    _cost.check(f, "record_every" if rk else "sharpness_every", nbytes=8.0 * n_rec * N,
                work=float(n_sh) * iters * 4 * M.P * N,
                what=f"{n_rec:,} recorded parameter vectors x {N:,}",
                work_what=f"{n_sh:,} sharpness estimates x {iters} HVPs",
                hint="record less often")
    out, _, _ = _execute(f, M, method, [(m, t0, key)], np.array([lr]), steps, beta, batch,
                         code, tol, blowup, steps + 1, rec_every, None, False, lanes=1,
                         gtol=gtol)
    return _to_run(M, m, t0, out, method, lr, steps, beta, iters, every, rk, rec_every,
                   tol, gtol)


def _sharpness_warm(M, m, t0, Th, iters, threads=None):
    """(sharpness at t0 then at each row of Th, the top Ritz vector at t0): the rows
    warm-started from that vector (the end of a run that moved little stops early)."""
    lam0, v0 = _top_eig(M, m, t0[None], iters, vectors=True, threads=threads)
    lam = _top_eig(M, m, Th, iters, start=np.broadcast_to(v0, Th.shape), threads=threads)
    return np.concatenate([lam0, lam]), v0[0]


def _to_run(M, m, t0, out, method, lr, steps, beta, iters, every, rk, rec_every, tol, gtol):
    """The NetRun of a one-cell kernel output: the stability rule, the curvature."""
    st = np.array([out.status[0]])
    tol_at = np.array([out.tol_at[0]])
    theta = out.theta_of(0).copy()
    lam, v0 = _sharpness_warm(M, m, t0, theta[None], iters)
    _stable_check(method, st, tol_at, lr, lam[1:], beta)
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
        ntk0=_ntk_top(t0, M, m), max_loss_ratio=float(_ratio(out.maxloss[0], loss0)),
        steps_to_tol=int(tol_at[0]), diverged_at=int(out.div_at[0]),
        losses=out.rec_loss[0, : end + 1].copy(), sharpness_steps=sharp_steps,
        sharpnesses=sharps, lr=lr, momentum=beta, width=m, d=M.d, activation=M.activation,
        param=M.param, bias=M.bias, method=method, unit="step" if method == "gd" else "epoch",
        trajectory_steps=traj_steps, trajectory=traj, tol=tol, gtol=gtol)


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
"""


@_with_params(data=_RUN_DATA, options=_RUN_OPTIONS)
def net_gd(X, y, lr, steps, *, width=None, theta0=None, scale=1.0, seed=0,
           activation="tanh", param="ntk", bias=False, momentum=0.0, tol=DEFAULT_TOL,
           blowup=1e12, sharpness_every=0, sharpness_iters=LANCZOS_ITERS, gtol=0.0,
           record=False, record_every=0) -> NetRun:
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
    return _single("net_gd", "gd", X, y, lr, steps, width, theta0, scale, seed, activation,
                   param, bias, momentum, tol, blowup, sharpness_every, sharpness_iters,
                   gtol=gtol, record=record, record_every=record_every)


@_with_params(data=_RUN_DATA, options=_RUN_OPTIONS)
def net_sgd(X, y, lr, epochs, *, batch_size=1, order=DEFAULT_ORDER, width=None, theta0=None,
            scale=1.0, seed=0, activation="tanh", param="ntk", bias=False, momentum=0.0,
            tol=DEFAULT_TOL, blowup=1e12, sharpness_every=0,
            sharpness_iters=LANCZOS_ITERS, gtol=0.0, record=False, record_every=0) -> NetRun:
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
    return _single("net_sgd", "sgd", X, y, lr, epochs, width, theta0, scale, seed, activation,
                   param, bias, momentum, tol, blowup, sharpness_every, sharpness_iters,
                   (batch_size, order, seed), gtol=gtol, record=record,
                   record_every=record_every)
