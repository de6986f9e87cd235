"""Adaptive batch gradient descent on the linear unit: Adam, RMSProp and AdaGrad, single
runs (:func:`adaptive_gd`) and sweeps over learning rates and datasets
(:func:`adaptive_sweep`), with a learning-rate warm-up, a schedule and an optional
frozen preconditioner.

Convention (PyTorch's ``torch.optim.Adam`` and optax's ``adam``): on
E(w) = 1/(2P) sum_p (y_p - w.x_p)^2 with gradient g = X^T (X w - y) / P,

* Adam: m <- beta1 m + (1 - beta1) g, v <- beta2 v + (1 - beta2) g^2,
  m_hat = m / (1 - beta1^t), v_hat = v / (1 - beta2^t), w <- w - eta m_hat / (sqrt(v_hat) + eps);
* RMSProp (PyTorch's ``RMSprop``, no momentum, alpha = beta2): v <- beta2 v + (1 - beta2) g^2,
  w <- w - eta g / (sqrt(v) + eps);
* AdaGrad (PyTorch's ``Adagrad``, no rate decay): v <- v + g^2, w <- w - eta g / (sqrt(v) + eps).

Moments start at 0; t counts updates from 1.  ``freeze_preconditioner=T`` holds v (and
Adam's bias factors) at their values after T updates: the run is then heavy ball on
P^-1 H with P = (1 - beta1^T) diag(sqrt(v_hat) + eps), stable iff eta < eta* =
(2 + 2 beta1) / ((1 - beta1) lambda_max(P^-1 H)) (:func:`fastgd.theory.adaptive_lr_max`;
RMSProp and AdaGrad: beta1 = 0, factor 1).  Runs report v_hat at the freeze so that eta*
can be recomputed (:meth:`AdaptiveRun.frozen_lr_max`).

**Statuses for adaptive methods.**  The rules are batch GD's, checked every step on the
excess loss: CONVERGED when E(w) - E* falls to ``tol`` x its initial value; DIVERGED when
E(w) passes ``blowup`` x max(E(w0), E(0)) or is not finite (a non-finite loss is never
CONVERGED); BOUNDED otherwise (``growing`` flags a final loss 1000 times its start).
Adam's and RMSProp's steps are bounded (each component moves by about eta per step,
whatever the gradient) and their preconditioner adapts to the curvature they meet, so
an unfrozen run far above any stability limit does not blow up: its loss spikes (by
about (eta / scale of w*)^2) and settles -- on standardised diabetes Adam at eta = 1e7
still ends CONVERGED.  DIVERGED then means only that a spike passed ``blowup``, not an
instability (RMSProp's first step is eta / sqrt(1 - beta2) per component).  With a frozen
preconditioner the run is linear again: above eta* it ends DIVERGED like GD above
2/lambda_max, and this is where the statuses mark a stability boundary.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass

import numpy as np

from fastgd import status as ST
from fastgd import validate as V
from fastgd.engine import cost as _cost
from fastgd.engine import grid as G
from fastgd.engine.blas import single_blas
from fastgd.linear import checks as CK
from fastgd.linear import datasets as DS
from fastgd.linear import problem as PB
from fastgd.linear.result import Run, SweepInterrupted, SweepResult
from fastgd.status import Status

__all__ = ["AdaptiveRun", "AdaptiveSpec", "adaptive_gd", "adaptive_sweep", "launch",
           "run_adaptive", "sweep_adaptive"]

#: the optimizers (codes of :mod:`fastgd.kernels.steps`) and schedules
OPTIMIZERS = ("adam", "rmsprop", "adagrad")
SCHEDULES = {"constant": 0, "cosine": 1, "step": 2}


@dataclass(frozen=True)
class AdaptiveSpec:
    """The scalars of an adaptive grid (the arrays are a
    :class:`fastgd.linear.contract.LinearInputs`): optimizer, dimension, budget ``T``,
    status thresholds, hyper-parameters, schedule and freeze.

    ``freeze`` = 0: no freeze; ``pre_lr`` = 0: no separate rate before the freeze;
    ``schedule`` a code of :data:`SCHEDULES`.

    Examples
    --------
    >>> from fastgd.linear.adaptive import AdaptiveSpec
    >>> AdaptiveSpec("adam", 2, 100, 1e-8, 1e12).key
    ('linear', 'adam')
    """

    optimizer: str
    d: int
    T: int
    tol: float
    blowup: float
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    warmup: int = 0
    lr_init: float = 0.0
    schedule: int = 0
    decay_steps: int = 1
    decay_factor: float = 1.0
    freeze: int = 0
    pre_lr: float = 0.0
    rec_every: int = 1

    @property
    def key(self) -> tuple:
        """(model, optimizer): one compiled kernel each."""
        return ("linear", self.optimizer)

    @property
    def factor(self) -> float:
        """The first-moment bias factor held by the freeze: 1 - beta1^T for Adam, 1 for
        RMSProp and AdaGrad (NaN without a freeze)."""
        if self.freeze == 0:
            return float("nan")
        return 1.0 - self.beta1 ** float(self.freeze) if self.optimizer == "adam" else 1.0


class AdaptiveOutputs(G.Outputs):
    """:class:`fastgd.engine.grid.Outputs` with the frozen v_hat of every cell (NaN where
    there was no freeze, or the run stopped before it)."""

    def __init__(self, n_data, n_seed, n_lr, d, **kw):
        super().__init__(n_data, n_seed, n_lr, d, **kw)
        self.vhat = np.full((n_data, n_seed, n_lr, d), np.nan)

    def kernel_args(self):
        return super().kernel_args() + (self.vhat,)


_BUILT: dict = {}
_ANNOUNCED: set = set()


def _kernel(optimizer):
    """The compiled chunk kernel of ``optimizer`` (built once), with a one-line notice on
    stderr before its first compile on this machine."""
    from fastgd.engine.notice import first_compile
    from fastgd.linear.kernels_adaptive import OPTIMIZERS as CODES
    from fastgd.linear.kernels_adaptive import adaptive_kernel

    if optimizer not in _BUILT:
        _BUILT[optimizer] = adaptive_kernel(CODES[optimizer])
    kern = _BUILT[optimizer]
    if optimizer not in _ANNOUNCED:
        _ANNOUNCED.add(optimizer)
        if first_compile(kern, "float64"):
            print(f"fastgd: compiling the {optimizer} kernel, first run only (cached on "
                  "disk, a few seconds)...", file=sys.stderr, flush=True)
    return kern


def launch(spec: AdaptiveSpec, inputs, chunks, nworkers, out: AdaptiveOutputs):
    """Run the rows ``chunks`` (data, seed, lr_start, lr_stop) of an adaptive grid on
    ``nworkers`` threads, outputs into ``out``: the one place of the kernel's argument
    order (:func:`fastgd.linear.kernels_adaptive.adaptive_kernel`).

    Examples
    --------
    >>> import numpy as np
    >>> from fastgd.engine.grid import make_chunks
    >>> from fastgd.linear.adaptive import AdaptiveOutputs, AdaptiveSpec, launch
    >>> from fastgd.linear.contract import LinearInputs
    >>> inp = LinearInputs(R=np.diag([1.0, 0.5])[None], wstar=np.ones((1, 2)),
    ...                    estar=np.zeros(1), c0=np.ones(1), lr=np.array([0.01, 0.1]),
    ...                    beta=np.zeros(2), w0=np.zeros(2))
    >>> out = AdaptiveOutputs(1, 1, 2, 2)
    >>> launch(AdaptiveSpec("adam", 2, 100, 1e-8, 1e12), inp, make_chunks(1, 1, 2, 2), 1, out)
    >>> out.status[0, 0].tolist(), bool(out.excess[0, 0, 1] < out.excess[0, 0, 0])
    ([0, 1], True)
    """
    from fastgd.kernels.threads import fan_out

    s, i = spec, inputs
    rows = np.ascontiguousarray(chunks, dtype=np.int64).reshape(-1, 4)
    args = (i.R, i.wstar, i.estar, i.c0, i.lr, i.w0, s.T, s.tol, s.blowup, s.beta1,
            s.beta2, s.eps, s.warmup, s.lr_init, s.schedule, s.decay_steps,
            s.decay_factor, s.freeze, s.pre_lr, rows)
    with np.errstate(all="ignore"):
        fan_out(_kernel(s.optimizer), args, nworkers, (s.rec_every, *out.kernel_args()))


@dataclass(frozen=True)
class AdaptiveRun(Run):
    """:class:`fastgd.linear.run.Run` of an adaptive method, with its hyper-parameters
    and the preconditioner it froze.

    Attributes
    ----------
    optimizer : str
        ``"adam"``, ``"rmsprop"`` or ``"adagrad"`` (``method`` is ``"gd"``: batch).
    betas : (float, float)
    eps : float
    frozen_at : int or None
        ``freeze_preconditioner`` (updates before the freeze), None without one.
    frozen_v_hat : (d,) array or None
        v_hat = v / (1 - beta2^T) at the freeze (RMSProp, AdaGrad: v); NaN when the run
        stopped before it; None without a freeze.
    frozen_factor : float or None
        The first-moment bias factor held: 1 - beta1^T (Adam), 1 (RMSProp, AdaGrad).

    Examples
    --------
    >>> import fastgd as fg
    >>> from fastgd.linear.adaptive import adaptive_gd
    >>> r = adaptive_gd(*fg.lecture_data(), lr=0.05, steps=300, freeze_preconditioner=10)
    >>> r.optimizer, r.frozen_v_hat.shape, round(r.frozen_factor, 6)
    ('adam', (2,), 0.651322)
    """

    optimizer: str = "adam"
    betas: tuple = (0.9, 0.999)
    eps: float = 1e-8
    frozen_at: int | None = None
    frozen_v_hat: np.ndarray | None = None
    frozen_factor: float | None = None

    def frozen_lr_max(self, X, *, bias=False) -> float:
        """eta* of the frozen run on inputs ``X`` (H = X^T X / P, with the constant column
        when ``bias``): :func:`fastgd.theory.adaptive_lr_max` with this run's v_hat,
        beta1 and T.

        Examples
        --------
        >>> import fastgd as fg
        >>> from fastgd.linear.adaptive import adaptive_gd
        >>> X, y = fg.lecture_data()
        >>> r = adaptive_gd(X, y, lr=0.05, steps=10, freeze_preconditioner=5)
        >>> r.frozen_lr_max(X) > 0
        True
        """
        from fastgd.theory import adaptive_lr_max

        f = "AdaptiveRun.frozen_lr_max"
        if self.frozen_v_hat is None:
            raise V.fail(f, "self", "a run with freeze_preconditioner", "no freeze")
        Xa = V.design(f, X)
        if V.boolean(f, "bias", bias):
            Xa = np.hstack([Xa, np.ones((Xa.shape[0], 1))])
        H = Xa.T @ Xa / Xa.shape[0]
        adam = self.optimizer == "adam"
        return adaptive_lr_max(H, self.frozen_v_hat, beta1=self.betas[0] if adam else 0.0,
                               eps=self.eps, t=self.frozen_at if adam else None)


def _options(f, steps, optimizer, betas, eps, warmup, lr_init, schedule, decay_steps,
             decay_factor, freeze, pre_freeze_lr):
    """The adaptive keywords checked, as :class:`AdaptiveSpec` fields."""
    optimizer = V.choice(f, "optimizer", optimizer, OPTIMIZERS)
    if isinstance(betas, (str, bytes)) or V.ndim_of(betas) != 1 or len(list(betas)) != 2:
        raise V.fail_type(f, "betas", "a pair (beta1, beta2)", betas)
    b1, b2 = (V.real(f, "betas", b, nonneg=True, below=1.0) for b in betas)
    eps = V.real(f, "eps", eps, nonneg=True)
    warmup = V.integer(f, "warmup", warmup, minimum=0)
    lr_init = V.real(f, "lr_init", lr_init, nonneg=True)
    code = SCHEDULES[V.choice(f, "schedule", schedule, tuple(SCHEDULES))]
    rest = max(steps - warmup, 1)
    if decay_steps is None:
        if code == SCHEDULES["step"]:
            raise V.fail(f, "decay_steps", "the period of the step decay (an integer >= 1) "
                         "with schedule='step'", None)
        decay_steps = rest
    decay_steps = V.integer(f, "decay_steps", decay_steps, minimum=1)
    if decay_factor is None:
        decay_factor = {0: 1.0, 1: 0.0, 2: 0.1}[code]
    decay_factor = V.real(f, "decay_factor", decay_factor, nonneg=True, below=1.0,
                          inclusive_below=True)
    if freeze is not None:
        freeze = V.integer(f, "freeze_preconditioner", freeze, minimum=1)
    pre_lr = 0.0
    if pre_freeze_lr is not None:
        if freeze is None:
            raise V.fail(f, "pre_freeze_lr", "None without freeze_preconditioner",
                         pre_freeze_lr)
        pre_lr = V.real(f, "pre_freeze_lr", pre_freeze_lr, positive=True)
    return dict(optimizer=optimizer, beta1=b1, beta2=b2, eps=eps, warmup=warmup,
                lr_init=lr_init, schedule=code, decay_steps=decay_steps,
                decay_factor=decay_factor, freeze=0 if freeze is None else freeze,
                pre_lr=pre_lr)


def adaptive_gd(X, y, lr, steps, *, optimizer="adam", betas=(0.9, 0.999), eps=1e-8,
                warmup=0, lr_init=0.0, schedule="constant", decay_steps=None,
                decay_factor=None, freeze_preconditioner=None, pre_freeze_lr=None, w0=None,
                bias=False, tol=ST.DEFAULT_TOL, blowup=1e12, record=False) -> AdaptiveRun:
    """Batch Adam, RMSProp or AdaGrad on E(w) = 1/(2P) sum_p (y_p - w.x_p)^2.

    Parameters
    ----------
    X : array (P, d)
        Inputs.  y : array (P,) targets.
    lr : float
        Target learning rate eta (> 0).
    steps : int
        Number of updates (>= 0).
    optimizer : {"adam", "rmsprop", "adagrad"}
        The update (module docstring: PyTorch's / optax's convention).
    betas : (float, float)
        (beta1, beta2), each in [0, 1): Adam's moment decays; RMSProp uses beta2 as its
        alpha; AdaGrad uses neither.
    eps : float
        Added to the square root of the second moment (>= 0).
    warmup : int
        Linear warm-up: the rate of update t (0-based) is
        lr_init + (lr - lr_init) t / warmup for t < warmup (optax's ``linear_schedule``).
    lr_init : float
        Rate of the first warm-up update (>= 0; default 0).
    schedule : {"constant", "cosine", "step"}
        The rate after the warm-up, u = t - warmup updates later: constant lr; cosine
        lr (f + (1 - f)(1 + cos(pi min(u, D)/D))/2) from lr down to f lr over D updates
        (optax's ``cosine_decay_schedule``); step lr f^floor(u/D) (PyTorch's ``StepLR``).
    decay_steps : int, optional
        D above (>= 1): cosine default ``steps - warmup``; required for "step".
    decay_factor : float, optional
        f above, in [0, 1]: cosine default 0, step default 0.1.
    freeze_preconditioner : int, optional
        T >= 1: after T updates, v and the bias factors stop changing (the momentum m
        still does); v_hat at the freeze is reported (``frozen_v_hat``).
    pre_freeze_lr : float, optional
        With ``freeze_preconditioner``: the rate of the T updates before the freeze
        (then the schedule's rate), so that the frozen preconditioner does not depend
        on ``lr`` and eta* is one number for every rate.
    w0, bias, tol, blowup, record
        As in :func:`fastgd.gd` (status rules in the module docstring).

    Returns
    -------
    AdaptiveRun

    Notes
    -----
    The kernel iterates e = w - w* with the gradient H e = R^T (R e) from the SVD of X
    (:mod:`fastgd.linear.kernels_adaptive`): 2 d^2 multiply-adds per step.  The reported
    ``loss`` and ``excess`` are recomputed from the data for the weights returned.

    Examples
    --------
    >>> import fastgd as fg
    >>> from fastgd.linear.adaptive import adaptive_gd
    >>> X, y = fg.lecture_data()
    >>> r = adaptive_gd(X, y, lr=0.05, steps=2000)
    >>> r.status.name, r.steps_to_tol, r.method, r.optimizer
    ('CONVERGED', 286, 'gd', 'adam')
    >>> adaptive_gd(X, y, lr=0.05, steps=500, optimizer="rmsprop", warmup=100).steps_to_tol
    220

    A frozen preconditioner gives a stability limit eta* (reported by the run):

    >>> r = adaptive_gd(X, y, lr=13.0, steps=500, freeze_preconditioner=5, pre_freeze_lr=0.01)
    >>> round(r.frozen_lr_max(X), 3), r.status.name
    (11.979, 'DIVERGED')
    """
    return run_adaptive("adaptive_gd", X, y, lr, steps, optimizer=optimizer, betas=betas,
                        eps=eps, warmup=warmup, lr_init=lr_init, schedule=schedule,
                        decay_steps=decay_steps, decay_factor=decay_factor,
                        freeze_preconditioner=freeze_preconditioner,
                        pre_freeze_lr=pre_freeze_lr, w0=w0, bias=bias, tol=tol,
                        blowup=blowup, record=record)


def run_adaptive(f, X, y, lr, steps, *, optimizer, betas, eps, warmup, lr_init, schedule,
                 decay_steps, decay_factor, freeze_preconditioner, pre_freeze_lr, w0, bias,
                 tol, blowup, record) -> AdaptiveRun:
    """:func:`adaptive_gd` with errors naming the public function ``f`` (``fastgd.gd``
    delegates here with ``optimizer=``).

    Examples
    --------
    >>> import fastgd as fg
    >>> from fastgd.linear.adaptive import run_adaptive
    >>> kw = dict(optimizer="adam", betas=(0.9, 0.999), eps=1e-8, warmup=0, lr_init=0.0,
    ...           schedule="constant", decay_steps=None, decay_factor=None,
    ...           freeze_preconditioner=None, pre_freeze_lr=None, w0=None, bias=False,
    ...           tol=1e-8, blowup=1e12, record=False)
    >>> run_adaptive("gd", *fg.lecture_data(), 0.05, 10, **kw).losses.size
    11
    """
    prob = PB.prepare(f, X, y, bias)
    d_in = prob.d - int(prob.bias)
    lr = V.real(f, "lr", lr, positive=True)
    steps = V.integer(f, "steps", steps, minimum=0)
    opts = _options(f, steps, optimizer, betas, eps, warmup, lr_init, schedule,
                    decay_steps, decay_factor, freeze_preconditioner, pre_freeze_lr)
    tol = V.real(f, "tol", tol, nonneg=True)
    blowup = V.blowup(f, blowup)
    record = V.boolean(f, "record", record)
    _cost.run(f, "steps", steps, prob.d, 2 * prob.d * prob.d, record)
    w0 = PB.initial_weights(f, w0, prob, d_in)
    from fastgd.linear.contract import linear_inputs

    spec = AdaptiveSpec(d=prob.d, T=steps, tol=tol, blowup=blowup, **opts)
    out = AdaptiveOutputs(1, 1, 1, prob.d, n_rec=steps + 1, rec_w=record, lazy=True)
    launch(spec, linear_inputs([prob], [lr], 0.0, w0), G.make_chunks(1, 1, 1, 1), 1, out)
    CK.finalize([prob], out, w0, tol, steps)
    st = Status(int(out.status[0, 0, 0]))
    end = {Status.CONVERGED: int(out.tol_at[0, 0, 0]),
           Status.DIVERGED: int(out.div_at[0, 0, 0])}.get(st, steps)
    fr = spec.freeze > 0
    return AdaptiveRun(
        w=out.w[0, 0, 0].copy(), loss=float(out.loss[0, 0, 0]),
        losses=out.rec_loss[0, 0, 0, : end + 1], status=st,
        diverged_at=int(out.div_at[0, 0, 0]), steps_to_tol=int(out.tol_at[0, 0, 0]),
        trajectory=out.rec_w[0, 0, 0, : end + 1] if record else None, lr=lr, method="gd",
        unit="step", excess=float(out.excess[0, 0, 0]),
        growing=bool(CK.growing([prob], out, w0)[0, 0, 0]), optimizer=spec.optimizer,
        betas=(spec.beta1, spec.beta2), eps=spec.eps, frozen_at=spec.freeze if fr else None,
        frozen_v_hat=out.vhat[0, 0, 0].copy() if fr else None,
        frozen_factor=spec.factor if fr else None)


@single_blas
def adaptive_sweep(lr, steps=1000, *, data=None, condition=None, optimizer="adam",
                   betas=(0.9, 0.999), eps=1e-8, warmup=0, lr_init=0.0,
                   schedule="constant", decay_steps=None, decay_factor=None,
                   freeze_preconditioner=None, pre_freeze_lr=None, w0=None, bias=False,
                   tol=ST.DEFAULT_TOL, blowup=1e12, n=100, d=2, fix="lambda_max",
                   data_seed=0, curve_points=0, lanes=None, threads=None,
                   weights=False) -> SweepResult:
    """A grid of learning rates x datasets of :func:`adaptive_gd` runs, as SIMD lanes.

    Parameters
    ----------
    lr : float or 1-D array
        Target learning rates (finite, > 0).
    steps : int
        Updates per run (default 1000).
    data, condition, n, d, fix, data_seed, w0, bias, tol, blowup, curve_points, lanes,
    threads, weights
        As in :func:`fastgd.sweep` (``lanes`` default 64, halved down to 32 while the
        grid makes fewer than 16 chunks).
    optimizer, betas, eps, warmup, lr_init, schedule, decay_steps, decay_factor,
    freeze_preconditioner, pre_freeze_lr
        As in :func:`adaptive_gd`, the same for every cell.

    Returns
    -------
    SweepResult
        ``method`` "gd" (batch), arrays (n_data, n_lr, 1); ``meta["spec"]`` holds the
        optimizer and its settings; with a freeze, ``meta["frozen_v_hat"]``
        (n_data, n_lr, 1, d) and ``meta["frozen_factor"]``.  ``gd_limit`` is plain GD's
        2/lambda_max, for scale.  Every cell equals :func:`adaptive_gd` with the same
        arguments bit for bit.

    Raises
    ------
    SweepInterrupted
        On Ctrl-C, between chunks; ``.result`` holds the finished cells.

    Examples
    --------
    >>> from fastgd.linear.adaptive import adaptive_sweep
    >>> res = adaptive_sweep([0.01, 0.1], 200, condition=[1, 100], freeze_preconditioner=5)
    >>> res.status.shape, res.meta["frozen_v_hat"].shape
    ((2, 2, 1), (2, 2, 1, 2))
    """
    args = dict(locals())
    return sweep_adaptive("adaptive_sweep", args)


def sweep_adaptive(f, args) -> SweepResult:
    """:func:`adaptive_sweep` with errors naming the public function ``f``; ``args``: a
    dict of every argument of :func:`adaptive_sweep` (``fastgd.sweep`` delegates here
    with ``optimizer=``).

    Examples
    --------
    >>> import inspect
    >>> from fastgd.linear.adaptive import adaptive_sweep, sweep_adaptive
    >>> args = {k: p.default for k, p in inspect.signature(adaptive_sweep).parameters.items()}
    >>> args.update(lr=[0.01, 0.1], steps=50, condition=[1.0, 10.0])
    >>> sweep_adaptive("sweep", args).status.shape
    (2, 2, 1)
    """
    lrs = V.rates(f, "lr", args["lr"])
    g = _sweep_grid(f, lrs, args)
    threads = args["threads"]
    out = AdaptiveOutputs(len(g["probs"]), 1, lrs.size, g["d"], n_rec=g["n_rec"],
                          keep_w=True)
    chunks = G.make_chunks(len(g["probs"]), 1, lrs.size, g["lanes"])
    from fastgd.linear.contract import linear_inputs

    inputs = linear_inputs(g["probs"], lrs, 0.0, g["w0"])
    interrupted = False
    with G.using_threads(f, threads) as nthreads:
        try:
            G.execute(lambda rows, nw: launch(g["spec"], inputs, rows, nw, out), chunks,
                      nthreads, progress=False, desc=f"sweep {g['spec'].optimizer}")
        except G.Interrupted:
            interrupted = True
    CK.finalize(g["probs"], out, g["w0"], g["spec"].tol, g["spec"].T)
    CK.fill_records(out)
    res = _result(g, lrs, out, nthreads)
    if interrupted:
        raise SweepInterrupted(res)
    return res


def _sweep_grid(f, lrs, a):
    """Every check of :func:`adaptive_sweep`'s arguments, before any kernel: the
    prepared problems, w0, the spec, lanes and curve length."""
    steps = V.integer(f, "steps", a["steps"], minimum=0)
    opts = _options(f, steps, a["optimizer"], a["betas"], a["eps"], a["warmup"],
                    a["lr_init"], a["schedule"], a["decay_steps"], a["decay_factor"],
                    a["freeze_preconditioner"], a["pre_freeze_lr"])
    data, _ = DS._named(f, a["data"]) if a["data"] is not None else (None, None)
    V.threads(f, a["threads"])
    _cost.sweep_grid(f, "gd", lrs.size, data, a["condition"], steps, None, 1, a["n"],
                     a["d"], a["curve_points"], None, a["weights"])
    datasets, kappa, names = DS._datasets(f, a["data"], a["condition"], a["n"], a["d"],
                                          a["fix"], a["data_seed"])
    probs = PB.prepare_many(f, datasets, V.boolean(f, "bias", a["bias"]))
    w0 = PB.initial_weights(f, a["w0"], probs[0], datasets[0][0].shape[1])
    tol = V.real(f, "tol", a["tol"], nonneg=True)
    blowup = V.blowup(f, a["blowup"])
    lanes = a["lanes"]
    if lanes is None:
        lanes = 64
        while lanes > 32 and len(probs) * -(-lrs.size // lanes) < 16:
            lanes //= 2
    lanes = V.integer(f, "lanes", lanes, minimum=1, maximum=4096)
    curve_points = V.integer(f, "curve_points", a["curve_points"], minimum=0)
    rec_every, n_rec = 1, 0
    if curve_points > 0:
        rec_every = max(1, steps // max(curve_points - 1, 1))
        n_rec = steps // rec_every + 1
    weights = V.boolean(f, "weights", a["weights"])
    d = probs[0].d
    G.check_memory(f, len(probs) * lrs.size,
                   G.Outputs.bytes_per_cell(d, n_rec) + 8 * d, None)
    spec = AdaptiveSpec(d=d, T=steps, tol=tol, blowup=blowup, rec_every=rec_every, **opts)
    return dict(spec=spec, probs=probs, w0=w0, lanes=lanes, n_rec=n_rec,
                rec_every=rec_every, kappa=kappa, names=names, d=d, weights=weights,
                curve_points=curve_points, bias=probs[0].bias)


def _result(g, lrs, out, nthreads):
    """The :class:`SweepResult` of a finished (or interrupted) adaptive sweep."""
    probs, spec = g["probs"], g["spec"]
    lam = np.linalg.eigvalsh(np.stack([p.H for p in probs]))
    lam_max = np.maximum(lam[:, -1], 0.0)
    lam_min = np.maximum(lam[:, 0], 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        cond = np.where(lam_min > 0, lam_max / np.where(lam_min > 0, lam_min, 1), np.inf)
        gd_lim = 2.0 / lam_max
    tr = (0, 2, 1)
    curves = curve_t = None
    if g["n_rec"]:
        curves = np.ascontiguousarray(out.rec_loss.transpose(0, 2, 1, 3))
        curve_t = np.arange(g["n_rec"]) * g["rec_every"]
    sched = {v: k for k, v in SCHEDULES.items()}[spec.schedule]
    meta = {"versions": DS._versions(), "threads": int(nthreads),
            "spec": {**dataclasses.asdict(spec), "schedule": sched, "method": "gd",
                     "lr": lrs, "steps": spec.T, "w0": g["w0"], "bias": g["bias"],
                     "condition": g["kappa"], "curve_points": g["curve_points"],
                     "lanes": g["lanes"]}}
    if spec.freeze > 0:
        meta["frozen_v_hat"] = np.ascontiguousarray(out.vhat.transpose(0, 2, 1, 3))
        meta["frozen_factor"] = spec.factor
    n = len(probs)
    return SweepResult(
        method="gd", unit="step", lr=lrs, seeds=np.zeros(1, dtype=np.int64),
        lambda_max=lam_max, lambda_min=lam_min, condition=cond,
        status=np.ascontiguousarray(out.status.transpose(tr)),
        final_loss=np.ascontiguousarray(out.excess.transpose(tr)),
        steps_to_tol=np.ascontiguousarray(out.tol_at.transpose(tr)),
        diverged_at=np.ascontiguousarray(out.div_at.transpose(tr)),
        gd_limit=gd_lim, momentum_limit=np.full(n, np.nan),
        sgd_ms_limit=np.full(n, np.nan), sgd_as_limit=np.full(n, np.nan),
        curves=curves, curve_t=curve_t, meta=meta, names=g["names"],
        growing=np.ascontiguousarray(CK.growing(probs, out, g["w0"]).transpose(tr)),
        weights=(np.ascontiguousarray(out.w.transpose(0, 2, 1, 3)) if g["weights"]
                 else None))
