"""Sweeps of two-layer networks (:mod:`fastgd.net`): every (width, scale, seed, learning
rate) cell on shared data, the learning rates of one initialisation run as SIMD lanes of
:func:`fastgd.net.kernels.grid_net` (:func:`net_sweep`), and their result
:class:`NetSweepResult` with the catapult regions.

The loss is E = 1/(2P) sum_p (y_p - f(x_p))^2 (note the 1/2); a cell equals
:func:`fastgd.net.net_gd` (:func:`fastgd.net.net_sgd`) with the same arguments bit for bit.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from fastgd import status as ST
from fastgd import validate as V
from fastgd.engine import cost as _cost
from fastgd.engine import executors as EX
from fastgd.engine import grid as G
from fastgd.engine.blas import single_blas
from fastgd.engine.fields import loss_ratio
from fastgd.linear.result import SweepInterrupted
from fastgd.net.adaptive import _Optim, _optim
from fastgd.net.contract import NetJob, NetSpec, net_inputs
from fastgd.net.launch import _precompile, _stable_check, initial, run_sweep
from fastgd.net.model import (
    LANCZOS_ITERS,
    NTK_DENSE,
    _init,
    _model,
    _ntk_top,
    _theta,
)
from fastgd.net.runs import _run_opts
from fastgd.status import DEFAULT_ORDER, DEFAULT_TOL, Status

__all__ = ["NetSweepResult", "net_sweep"]


@dataclass(frozen=True)
class NetSweepResult:
    """Outcome of a (width x scale x seed x learning rate) grid of network runs.

    Per-cell arrays are shaped (n_width, n_scale, n_seed, n_lr); per-initialisation
    arrays (n_width, n_scale, n_seed).

    Attributes
    ----------
    lr, width, scale, seeds : 1-D arrays (the axes)
    status : int8            Status codes (BOUNDED 0, CONVERGED 1, DIVERGED 2).
    loss : float             Final E (``inf`` when diverged).
    max_loss_ratio : float   max_t E_t / E(theta0) (> 1: a spike; ``inf`` when diverged).
    sharpness : float        Final top Hessian eigenvalue (``inf`` where not computed).
    steps_to_tol, diverged_at : int64 (-1 if not).
    lambda0, ntk0, loss0 : per initialisation: initial sharpness, NTK eigenvalue, loss.
    sharpness_curve : (..., n_k) or None   sharpness every ``sharpness_every`` steps.
    activation, param, method : str;  bias : bool;  d, steps, sharpness_every : int
    momentum, tol, blowup : float;  seconds : float (kernels);  threads : int
    lr_unit : str            ``"absolute"``: :attr:`lr` are the rates; ``"lambda0"``: they
                             are multiples eta x lambda0 of each initialisation's own NTK
                             eigenvalue :attr:`ntk0` (the rows of every width align).
    lr_abs : float or None   The absolute rates per cell (shape of :attr:`status`).
    gtol : float             The gradient rule of CONVERGED (0: off; :func:`net_gd`).
    given_theta0 : bool      Every cell started from the ``theta0`` given (the
                             :attr:`scale` axis then holds NaN).
    optimizer : str          ``"gd"``, ``"adam"``, ``"rmsprop"`` or ``"adagrad"``;
                             ``optim`` its settings (:mod:`fastgd.net.adaptive`).
    preconditioned_sharpness : float or None
                             Adaptive sweeps: lambda_max(P^-1 H) at the end per cell
                             (with ``sharpness``), and its curve
                             ``preconditioned_sharpness_curve`` (with
                             ``sharpness_every``); None for GD.
    meta : dict              Where it came from: fastgd version, the engine, chunks
                             total / resumed / computed.

    Examples
    --------
    >>> import numpy as np, fastgd.net as fn
    >>> X = np.linspace(-1, 1, 6)[:, None]; y = 0.5 * X[:, 0]
    >>> res = fn.net_sweep(X, y, [1.0, 6.0, 20.0], 200, width=4, activation="identity")
    >>> res.status.shape, res.lambda0.shape, res.status[0, 0, 0].tolist()
    ((1, 1, 1, 3), (1, 1, 1), [1, 1, 2])
    """

    lr: np.ndarray
    width: np.ndarray
    scale: np.ndarray
    seeds: np.ndarray
    status: np.ndarray
    loss: np.ndarray
    max_loss_ratio: np.ndarray
    sharpness: np.ndarray
    steps_to_tol: np.ndarray
    diverged_at: np.ndarray
    lambda0: np.ndarray
    ntk0: np.ndarray
    loss0: np.ndarray
    sharpness_curve: np.ndarray | None
    activation: str
    param: str
    bias: bool
    method: str
    d: int
    steps: int
    sharpness_every: int
    momentum: float
    tol: float
    blowup: float
    seconds: float
    threads: int
    lr_unit: str = "absolute"
    lr_abs: np.ndarray | None = None
    gtol: float = 0.0
    given_theta0: bool = False
    optimizer: str = "gd"
    optim: dict | None = None
    preconditioned_sharpness: np.ndarray | None = None
    preconditioned_sharpness_curve: np.ndarray | None = None
    meta: dict = field(default_factory=dict, compare=False)

    def __repr__(self):
        from fastgd.net.report import sweep_repr

        return sweep_repr(self)

    def save(self, path):
        """Write the result to ``path`` (``.npz`` appended) atomically, with a checksum;
        ``fastgd.load`` reads it back bit for bit (:func:`fastgd.net.io.save_net`).

        Examples
        --------
        >>> import numpy as np, fastgd as fg, fastgd.net as fn
        >>> X = np.linspace(-1, 1, 6)[:, None]; y = 0.5 * X[:, 0]
        >>> res = fn.net_sweep(X, y, [1.0, 20.0], 50, width=4)
        >>> fg.load(res.save("net_sweep")).status.tolist() == res.status.tolist()
        True
        """
        from fastgd.net.io import save_net

        return save_net(self, path)

    @property
    def complete(self) -> bool:
        """False when the sweep was interrupted (some cells NOT_RUN)."""
        return bool(np.all(self.status != Status.NOT_RUN))

    @property
    def rates(self):
        """The absolute learning rate of every cell (shape of :attr:`status`).

        Examples
        --------
        >>> import numpy as np, fastgd.net as fn
        >>> X = np.linspace(-1, 1, 6)[:, None]; y = 0.5 * X[:, 0]
        >>> res = fn.net_sweep(X, y, [0.5, 1.0], 50, width=4, lr_unit="lambda0")
        >>> bool(np.allclose(res.rates * res.ntk0[..., None], [0.5, 1.0]))
        True
        """
        if self.lr_abs is not None:
            return self.lr_abs
        return np.broadcast_to(self.lr, self.status.shape)

    @property
    def lr_ntk0(self):
        """lr x lambda0 (NTK) per cell (the naive limit is 2)."""
        return self.rates * self.ntk0[..., None]

    @property
    def lr_lambda0(self):
        """lr x initial sharpness per cell."""
        return self.rates * self.lambda0[..., None]

    def regions(self, spike=2.0):
        """Per-cell region code, index into :data:`fastgd.chain.REGIONS`.

        Parameters
        ----------
        spike : float
            Loss ratio max_t E_t / E(theta0) above which a converged run is a catapult.

        Returns
        -------
        int8 array, the shape of :attr:`status`
            0 no convergence (BOUNDED), 1 monotone convergence (max loss ratio <=
            ``spike``), 2 convergence after a loss spike (a catapult), 3 divergence.

        Examples
        --------
        >>> import numpy as np, fastgd.net as fn
        >>> X = np.linspace(-1, 1, 6)[:, None]; y = 0.5 * X[:, 0]
        >>> res = fn.net_sweep(X, y, [1.0, 6.0, 20.0], 200, width=4, activation="identity")
        >>> res.regions()[0, 0, 0].tolist()   # lazy, catapult, diverged
        [1, 2, 3]
        """
        spike = V.real("NetSweepResult.regions", "spike", spike, positive=True)
        code = np.zeros(self.status.shape, dtype=np.int8)
        conv = self.status == Status.CONVERGED
        code[conv & (self.max_loss_ratio <= spike)] = 1
        code[conv & (self.max_loss_ratio > spike)] = 2
        code[self.status == Status.DIVERGED] = 3
        return code

    def catapult(self, spike=2.0):
        """Boolean per cell: converged after the loss rose above ``spike`` x E(theta0).

        Parameters
        ----------
        spike : float

        Returns
        -------
        bool array, the shape of :attr:`status`

        Examples
        --------
        >>> import numpy as np, fastgd.net as fn
        >>> X = np.linspace(-1, 1, 6)[:, None]; y = 0.5 * X[:, 0]
        >>> res = fn.net_sweep(X, y, [1.0, 6.0, 20.0], 200, width=4, activation="identity")
        >>> res.catapult()[0, 0, 0].tolist()
        [False, True, False]
        """
        return self.regions(spike) == 2

    def observed_lr_max(self):
        """Per initialisation: the smallest (absolute) learning rate that diverged.

        Returns
        -------
        float array (n_width, n_scale, n_seed)
            ``inf`` where no rate diverged (with ``lr_unit="lambda0"`` multiply by
            :attr:`ntk0` for the grid's unit).

        Examples
        --------
        >>> import numpy as np, fastgd.net as fn
        >>> X = np.linspace(-1, 1, 6)[:, None]; y = 0.5 * X[:, 0]
        >>> res = fn.net_sweep(X, y, [1.0, 6.0, 20.0], 200, width=[4, 8],
        ...                    activation="identity")
        >>> res.observed_lr_max()[:, 0, 0].tolist()
        [20.0, 6.0]
        """
        order = np.argsort(self.lr)
        div = (self.status == Status.DIVERGED)[..., order]
        lr = self.rates[..., order]
        first = np.where(div.any(-1), np.argmax(div, axis=-1), -1)
        at = np.take_along_axis(lr, np.maximum(first, 0)[..., None], axis=-1)[..., 0]
        return np.where(first >= 0, at, np.inf)


@single_blas
def net_sweep(X, y, lr, steps=1000, *, width=None, scale=None, seeds=1, theta0=None,
              lr_unit="absolute", method="gd", batch_size=1, order=DEFAULT_ORDER,
              activation="tanh", param="ntk", bias=False, momentum=0.0, tol=DEFAULT_TOL,
              gtol=0.0, blowup=1e12, sharpness=True, sharpness_every=0,
              sharpness_iters=LANCZOS_ITERS, threads=None, progress=None, optimizer="gd",
              betas=(0.9, 0.999), eps=1e-8, warmup=0, lr_init=0.0, schedule="constant",
              decay_steps=None, decay_factor=None, freeze_preconditioner=None,
              engine=None, checkpoint=None) -> NetSweepResult:
    """Run every (width, scale, seed, learning rate) cell of a two-layer network on shared
    data (Numba lanes: the learning rates of one initialisation run as SIMD lanes).

    Parameters
    ----------
    X, y, activation, param, bias, momentum, tol, gtol, blowup, sharpness_every, sharpness_iters
        As in :func:`net_gd`.
    lr : float or array (n_lr,)
        Learning rates (> 0), in the unit ``lr_unit``.
    steps : int
        Step budget (epochs for ``method="sgd"``).
    width : int or array of ints
        Widths m (default 64; inferred from ``theta0`` when given).
    scale : float or array
        Initial standard deviations of W and a (default 1; not with ``theta0``).
    seeds : int or list of ints
        A count n (seeds 0..n-1) or the seeds: each seeds the initial parameters (and the
        SGD sample order); every learning rate of a seed shares them.  With ``theta0``
        they seed only the SGD order.
    theta0 : array (N,) or list of arrays, optional
        Start every cell from these parameters (flat, :func:`net_unpack`; finite, length
        m (d + 1 + bias)), one array per width (the width axis lists their widths).
    lr_unit : {"absolute", "lambda0"}
        ``"lambda0"``: ``lr`` holds multiples eta x lambda0 of each initialisation's own
        top NTK eigenvalue lambda0 (:func:`net_ntk` at theta0), so the rows of every width
        line up (the lazy phase ends at 2, catapults up to about 4); the absolute rates
        are in :attr:`NetSweepResult.rates`.
    method : {"gd", "sgd"}
    batch_size, order
        SGD options as in :func:`net_sgd`.
    sharpness : bool
        Compute the final sharpness of every cell (Lanczos, ``sharpness_iters`` HVPs each).
    threads : int, optional
        Numba threads for this call (default: numba's current setting); with
        ``engine``, the threads of each task (default 1).
    progress : bool, optional
    optimizer, betas, eps, warmup, lr_init, schedule, decay_steps, decay_factor, freeze_preconditioner
        As in :func:`net_gd`, the same for every cell.
    engine : concurrent.futures.Executor, optional
        Run the chunks (and the curvature of their cells) on an executor instead of
        this process's threads, as :func:`fastgd.sweep` does (a process pool, a thread
        pool, Dask's ``client.get_executor()`` or the ``distributed.Client`` itself);
        results are bit-identical.  lambda0 and the warm starts of every
        initialisation are computed here, once, before any chunk.
    checkpoint : str or os.PathLike, optional
        A directory that makes the sweep resumable (:mod:`fastgd.engine.checkpoint`):
        finished chunks are written there as they complete, and the same call run
        again computes only the missing ones and returns a result identical to an
        uninterrupted run (``meta["chunks_resumed"]``, ``meta["chunks_computed"]``).
        A directory of another sweep is refused.

    Returns
    -------
    NetSweepResult
        A cell equals :func:`net_gd` (:func:`net_sgd`) with the same arguments bit for
        bit, on any engine and for any thread count.

    Raises
    ------
    fastgd.SweepInterrupted
        On Ctrl-C (SIGTERM too with a checkpoint), between chunks; ``.result`` holds
        the finished cells (the others NOT_RUN; per-initialisation arrays complete).

    Examples
    --------
    >>> import numpy as np, fastgd.net as fn
    >>> X = np.linspace(-1, 1, 8)[:, None]; y = np.sin(2 * X[:, 0])
    >>> res = fn.net_sweep(X, y, [0.1, 1.0, 100.0], 200, width=[4, 8])
    >>> res.status.shape, int(res.status[0, 0, 0, 2])   # lr = 100 diverges
    ((2, 1, 1, 3), 2)
    >>> rel = fn.net_sweep(X, y, [1.0, 3.0, 10.0], 200, width=[4, 8], lr_unit="lambda0")
    >>> rel.lr_unit, rel.rates.shape, rel.status[:, 0, 0, 2].tolist()   # 10/lambda0 diverges
    ('lambda0', (2, 1, 1, 3), [2, 2])
    >>> t0 = fn.net_init(4, 1, seed=7)
    >>> fn.net_sweep(X, y, [0.1, 1.0], 50, theta0=t0, sharpness=False).width.tolist()
    [4]
    """
    f = "net_sweep"
    M = _model(f, X, y, activation, param, bias)
    g = _grid(f, M, lr, steps, width, scale, seeds, theta0, lr_unit, method, batch_size,
              order, momentum, tol, gtol, blowup, sharpness, sharpness_every,
              sharpness_iters, progress)
    g = dataclasses.replace(g, optim=_optim(  # the schedule counts updates (SGD: batches)
        f, g.steps * (1 if g.method == "gd" else -(-M.P // g.batch)), optimizer, betas, eps, warmup, lr_init, schedule, decay_steps,
        decay_factor, freeze_preconditioner, g.beta))
    V.threads(f, threads)
    engine = EX.check_engine(f, engine)
    checkpoint = EX.check_checkpoint(f, checkpoint)
    _check_cost(f, M, g)
    inits = _inits(M, g)
    ntk0 = np.array([_ntk_top(t0, M, m) for m, t0, _ in inits])
    rates = _absolute(f, g, ntk0)
    sgd = g.method == "sgd"
    spec = NetSpec(g.method, g.steps, g.tol, g.blowup, beta=g.beta,
                   batch=g.batch if sgd else 1, order=g.code if sgd else 0, gtol=g.gtol,
                   optim=g.optim, rec_every=g.every, sharpness=g.sharp, iters=g.iters)
    with G.using_threads(f, None if engine is not None else threads) as nw:
        _precompile(spec, M, nw if engine is None else 0)  # a cold cache: notice, helper
        lam0, loss0, v0, pv0 = initial(spec, M, inits, nw)  # once, here, for every engine
        job = NetJob(spec, net_inputs(M, inits, rates, v0=v0, pv0=pv0))
        if engine is not None:
            nw = EX.task_threads(f, threads)
        cells, meta, stopped = run_sweep(f, job, nw, engine, checkpoint, g.progress)
    res = _result(M, g, (lam0, ntk0, loss0), rates, cells, meta, nw)
    if stopped:
        raise SweepInterrupted(res) from None
    return res


@dataclass(frozen=True)
class _Grid:
    """The checked arguments of :func:`net_sweep`."""

    lrs: np.ndarray
    method: str
    steps: int
    tol: float
    blowup: float
    beta: float
    every: int
    iters: int
    widths: np.ndarray
    scales: np.ndarray
    seeds: np.ndarray
    batch: int
    code: int
    sharp: bool
    progress: bool | None
    thetas: tuple | None
    unit: str
    gtol: float
    optim: _Optim = _Optim()

    @property
    def n_init(self):
        return self.widths.size * self.scales.size * self.seeds.size

    @property
    def n_th(self):
        """Recorded iterates per cell (for the sharpness curve)."""
        return self.steps // self.every + 1 if self.every else 0


def _grid(f, M, lr, steps, width, scale, seeds, theta0, lr_unit, method, batch_size, order,
          momentum, tol, gtol, blowup, sharpness, sharpness_every, sharpness_iters,
          progress) -> _Grid:
    lrs = V.rates(f, "lr", lr)
    unit = V.choice(f, "lr_unit", lr_unit, ("absolute", "lambda0"))
    method = V.choice(f, "method", method, ("gd", "sgd"))
    steps, tol, blowup, beta, every, iters, gtol = _run_opts(
        f, steps, "steps", tol, blowup, momentum, sharpness_every, sharpness_iters, gtol)
    thetas, widths, scales = _axes(f, M, width, scale, theta0)
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        seed_list = np.arange(V.integer(f, "seeds", seeds, minimum=1, maximum=10**6))
    else:
        seed_list = _int_list(f, "seeds", seeds, minimum=0)
    batch = V.integer(f, "batch_size", batch_size, minimum=1, maximum=M.P)
    code = ST.ORDERS[V.choice(f, "order", order, tuple(ST.ORDERS))]
    sharp = V.boolean(f, "sharpness", sharpness)
    progress = V.boolean(f, "progress", progress, allow_none=True)
    return _Grid(lrs, method, steps, tol, blowup, beta, every, iters, widths, scales,
                 seed_list, batch, code, sharp, progress, thetas, unit, gtol)


def _axes(f, M, width, scale, theta0):
    """(thetas or None, widths, scales): drawn from (width, scale) or given as theta0."""
    if theta0 is None:
        widths = _int_list(f, "width", 64 if width is None else width)
        sc = 1.0 if scale is None else scale
        scales = V.as_float_array(f, "scale", V.atleast_1d(f, "scale", sc), 1)
        if not np.all(scales >= 0):
            raise V.fail(f, "scale", ">= 0", f"min {scales.min():g}")
        return None, widths, scales
    if scale is not None:
        raise V.fail(f, "scale", "left out with theta0 (the parameters are given)",
                     repr(scale))
    many = isinstance(theta0, (list, tuple)) and theta0 and V.ndim_of(theta0[0]) == 1
    thetas = tuple(_theta(f, "theta0", t, M)[0] for t in (theta0 if many else [theta0]))
    widths = np.array([t.size // M.per() for t in thetas], dtype=np.int64)
    if width is not None and not np.array_equal(_int_list(f, "width", width), widths):
        raise V.fail(f, "width", f"left out or the widths of theta0 ({widths.tolist()})",
                     repr(width))
    return thetas, widths, np.array([np.nan])


def _inits(M, g: _Grid):
    """(m, theta0, sample-order key) per initialisation: width-major, then scale, then
    seed; drawn by :func:`net_init` from (width, scale, seed), or the given theta0."""
    def key(sd):
        return G.seed_key(int(sd)) if g.method == "sgd" else np.zeros(2, dtype=np.int64)

    if g.thetas is not None:
        return [(int(t.size // M.per()), t, key(sd)) for t in g.thetas for sd in g.seeds]
    return [(int(m), _init(int(m), M.d, float(sc), int(sd), M.bias), key(sd))
            for m in g.widths for sc in g.scales for sd in g.seeds]


def _absolute(f, g: _Grid, ntk0):
    """The absolute rates (n_init, n_lr): the grid, or the grid / each init's lambda0."""
    if g.unit == "absolute":
        return np.broadcast_to(g.lrs, (ntk0.size, g.lrs.size))
    bad = ~(np.isfinite(ntk0) & (ntk0 > 0))
    if bad.any():
        raise V.fail(f, "lr_unit", "'absolute' where lambda0 (NTK at theta0) is not finite "
                     "and > 0", f"lambda0 = {ntk0[bad][0]:g}")
    rates = g.lrs[None, :] / ntk0[:, None]
    if not np.all(np.isfinite(rates) & (rates > 0)):
        raise V.fail(f, "lr", "finite and > 0 once divided by lambda0", "an overflow")
    return rates


def _check_cost(f, M, g: _Grid):
    """Refuse grids whose memory or work is out of reach (:mod:`fastgd.engine.cost`)."""
    n_init = g.n_init
    n = n_init * g.lrs.size
    Nsum = float(np.sum(g.widths) * M.per()) * g.scales.size * g.seeds.size
    n_th = g.n_th
    G.check_memory(f, n, 8 * 8 + 8 * n_th)
    _cost.check(f, "width" if g.widths.size > 1 else "lr",
                nbytes=Nsum * g.lrs.size * 8 * (1 + n_th),
                what=f"{n:,} cells' parameters", hint="use fewer cells or narrower networks")
    per = M.P * (_cost.NET_GD if g.method == "gd" else _cost.NET_SGD)
    lanes = _cost.net_lanes(g.lrs.size)  # the curvature: _cost.lanczos below
    _cost.check(f, "steps", work=Nsum * lanes * g.steps * per, work_what=f"{n_init:,} inits x"
                f" {lanes:,} lanes x {g.steps:,} steps x {per * Nsum / n_init:,.0f}",
                hint="use fewer cells or steps")
    m, N = int(np.max(g.widths)), int(np.max(g.widths)) * M.per()
    ad = g.optim.adaptive  # the preconditioned sharpness: Lanczos calls per cell
    _cost.lanczos(f, "sharpness_iters" if g.iters > LANCZOS_ITERS else "X" if M.P > N
                  else "width", (1 + ad) * (n_init + n * (int(g.sharp) + n_th)), N, M.P,
                  m, g.iters, calls=g.widths.size * (1 + int(g.sharp) + int(n_th > 0))
                  + ad * (n_init + n * (int(g.sharp) + int(n_th > 0))))
    _cost.ntk(f, "X", n_init, M.P, N, m, NTK_DENSE)


def _result(M, g: _Grid, per_init, rates, cells, meta, nw) -> NetSweepResult:
    """The grid's result: the stability rule applied, arrays in their axes' shapes
    (``per_init``: lambda0, the NTK's lambda0 and E(theta0) per initialisation)."""
    lam0, ntk0, loss0 = per_init
    n_lr = g.lrs.size
    status = cells.status.copy()
    tol_at = cells.tol_at.copy()
    final, curves = cells.sharpness, cells.curve if g.every else None
    pfinal = cells.psharp if g.optim.adaptive else None
    pcurves = cells.pcurve if g.optim.adaptive and g.every else None
    if g.sharp:
        _stable_check(g.method, status, tol_at, rates.ravel(), final, g.beta, g.optim,
                      pfinal)
    shape = (g.widths.size, g.scales.size, g.seeds.size)
    cell = shape + (n_lr,)
    return NetSweepResult(
        lr=g.lrs, width=g.widths, scale=g.scales, seeds=g.seeds, status=status.reshape(cell),
        loss=cells.loss.reshape(cell),
        max_loss_ratio=loss_ratio(cells.maxloss, np.repeat(loss0, n_lr)).reshape(cell),
        sharpness=final.reshape(cell), steps_to_tol=tol_at.reshape(cell),
        diverged_at=cells.div_at.reshape(cell), lambda0=lam0.reshape(shape),
        ntk0=ntk0.reshape(shape), loss0=loss0.reshape(shape),
        sharpness_curve=None if curves is None else curves.reshape(cell + (g.n_th,)),
        activation=M.activation, param=M.param, bias=M.bias, method=g.method, d=M.d,
        steps=g.steps, sharpness_every=g.every, momentum=g.beta, tol=g.tol,
        blowup=g.blowup, seconds=meta.get("seconds_run", 0.0), threads=nw, lr_unit=g.unit,
        lr_abs=np.array(rates).reshape(cell), gtol=g.gtol,
        given_theta0=g.thetas is not None, optimizer=g.optim.name, optim=g.optim.as_dict(),
        preconditioned_sharpness=None if pfinal is None else pfinal.reshape(cell),
        preconditioned_sharpness_curve=(None if pcurves is None
                                        else pcurves.reshape(cell + (g.n_th,))),
        meta=meta)


def _int_list(f, name, value, minimum=1):
    if isinstance(value, (str, bytes)) or value is None or isinstance(value, bool):
        raise V.fail_type(f, name, "an integer or a 1-D list of integers", value)
    if V.ndim_of(value) not in (0, 1):
        raise V.fail_type(f, name, "an integer or a 1-D list of integers", value)
    items = np.atleast_1d(np.asarray(value, dtype=object)).tolist()
    if not items:
        raise V.fail(f, name, "non-empty", "an empty list")
    return np.array([V.integer(f, name, v, minimum=minimum, maximum=10**7) for v in items],
                    dtype=np.int64)
