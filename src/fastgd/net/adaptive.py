"""Adaptive methods and schedules for two-layer networks (:mod:`fastgd.net`): the checked
optimizer options of :func:`fastgd.net.net_gd`, :func:`fastgd.net.net_sgd` and
:func:`fastgd.net.net_sweep`, and the preconditioned sharpness.

Convention (PyTorch's ``torch.optim.Adam`` / ``RMSprop`` / ``Adagrad`` and optax's
``adam``; :mod:`fastgd.kernels.steps`), with g the gradient of the step's loss and
t = 1, 2, ... counting updates (steps of GD, minibatches of SGD)::

    Adam     m <- beta1 m + (1 - beta1) g,  v <- beta2 v + (1 - beta2) g^2,
             theta <- theta - eta m_hat / (sqrt(v_hat) + eps),
             m_hat = m / (1 - beta1^t),  v_hat = v / (1 - beta2^t);
    RMSProp  v <- beta2 v + (1 - beta2) g^2,  theta <- theta - eta g / (sqrt(v) + eps);
    AdaGrad  v <- v + g^2,                    theta <- theta - eta g / (sqrt(v) + eps).

The rate eta of update t follows a linear warm-up from ``lr_init`` over ``warmup``
updates, then ``schedule`` (constant, cosine or step decay: :func:`fastgd.kernels.steps.schedule`,
as :func:`fastgd.linear.adaptive.adaptive_gd`); plain GD and SGD take the same schedule.
``freeze_preconditioner=T`` holds v and the bias factors at their values after T updates.

**The preconditioned sharpness** (Cohen et al., "Adaptive Gradient Methods at the Edge of
Stability", 2022): with the preconditioner P = (1 - beta1^t) diag(sqrt(v_hat) + eps)
(RMSProp, AdaGrad: diag(sqrt(v) + eps)), Adam on a quadratic with P frozen is heavy ball
on P^-1 H at the rate eta (1 - beta1), stable iff lambda_max(P^-1 H) <
(2 + 2 beta1) / (eta (1 - beta1)) -- 38/eta at beta1 = 0.9, 2/eta for RMSProp and AdaGrad
(:func:`fastgd.theory.adaptive_threshold`).  It is computed by Lanczos on the symmetric
P^-1/2 H P^-1/2 with exact Hessian-vector products (no dense matrix).  For full-batch runs
the P of an iterate theta_t is the one of the update that leaves it (it holds g_t:
v' = beta2 v_t + (1 - beta2) g_t^2 with the bias factors of update t + 1; frozen: the
frozen ones), so it is defined at theta0 too; for SGD it is the state after the updates
so far (NaN at epoch 0, before any update).

**Statuses.**  The rules are those of plain GD (:mod:`fastgd.net`) except the stability
condition of CONVERGED, which for an adaptive run is checked only with a frozen
preconditioner (lr (1 - beta1) lambda_max(P^-1 H) <= 2 (1 + beta1)): otherwise the
preconditioner keeps changing and no fixed linear test holds.  Adam's steps are bounded
(about eta per component, whatever the gradient), so an unfrozen run far above its
threshold rarely blows up past ``blowup``: its loss spikes and it stays BOUNDED, or
settles; DIVERGED marks a blow-up, not the threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fastgd import validate as V

#: the optimizers of the network runs and sweeps, and the schedules after the warm-up
OPTIMIZERS = ("gd", "adam", "rmsprop", "adagrad")
SCHEDULES = {"constant": 0, "cosine": 1, "step": 2}
_CODES = {"gd": -1, "adam": 0, "rmsprop": 1, "adagrad": 2}  # .kernels_adaptive.OPT_*


@dataclass(frozen=True)
class _Optim:
    """The checked optimizer of a run or sweep (:func:`_optim`)."""

    name: str = "gd"
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    warmup: int = 0
    lr_init: float = 0.0
    schedule: str = "constant"
    decay_steps: int = 1
    decay_factor: float = 1.0
    freeze: int = 0

    @property
    def adaptive(self) -> bool:
        return self.name != "gd"

    @property
    def b1(self) -> float:
        """beta1 of the stability threshold: Adam's, 0 for RMSProp, AdaGrad and GD."""
        return self.beta1 if self.name == "adam" else 0.0

    def kernel_args(self):
        """(opt_i, opt_f) of the network chunk kernel (:func:`fastgd.net.kernels_rows.rows_kernel`)."""
        opt_i = np.array([_CODES[self.name], self.warmup, SCHEDULES[self.schedule],
                          self.decay_steps, self.freeze], dtype=np.int64)
        opt_f = np.array([self.beta1, self.beta2, self.eps, self.lr_init, self.decay_factor])
        return opt_i, opt_f

    def threshold(self, lr):
        """(2 + 2 beta1) / (lr (1 - beta1)) (2/lr without Adam's momentum)."""
        b = self.b1
        return (2.0 + 2.0 * b) / (np.asarray(lr) * (1.0 - b))

    def rate(self, lr, k):
        """The rate of update ``k`` (0-based) of a run at target rate ``lr`` (without
        Adam's bias factor), as the kernels compute it."""
        from fastgd.kernels.steps import schedule

        if self.warmup == 0 and self.schedule == "constant":
            return np.asarray(lr, dtype=float)
        a, s = schedule(int(k), self.warmup, self.lr_init, SCHEDULES[self.schedule],
                        self.decay_steps, self.decay_factor)
        return a + s * np.asarray(lr, dtype=float)

    def as_dict(self):
        return {"optimizer": self.name, "betas": (self.beta1, self.beta2), "eps": self.eps,
                "warmup": self.warmup, "lr_init": self.lr_init, "schedule": self.schedule,
                "decay_steps": self.decay_steps, "decay_factor": self.decay_factor,
                "freeze_preconditioner": self.freeze or None}


def _optim(f, steps, optimizer="gd", betas=(0.9, 0.999), eps=1e-8, warmup=0, lr_init=0.0,
           schedule="constant", decay_steps=None, decay_factor=None, freeze=None,
           momentum=0.0) -> _Optim:
    """The optimizer keywords checked (errors name ``f``), as an :class:`_Optim`."""
    name = V.choice(f, "optimizer", optimizer, OPTIMIZERS)
    if isinstance(betas, (str, bytes)) or V.ndim_of(betas) != 1 or len(list(betas)) != 2:
        raise V.fail_type(f, "betas", "a pair (beta1, beta2)", betas)
    b1, b2 = (V.real(f, "betas", b, nonneg=True, below=1.0) for b in betas)
    eps = V.real(f, "eps", eps, nonneg=True)
    warmup = V.integer(f, "warmup", warmup, minimum=0)
    lr_init = V.real(f, "lr_init", lr_init, nonneg=True)
    sched = V.choice(f, "schedule", schedule, tuple(SCHEDULES))
    if decay_steps is None:
        if sched == "step":
            raise V.fail(f, "decay_steps", "the period of the step decay (an integer >= 1) "
                         "with schedule='step'", None)
        decay_steps = max(steps - warmup, 1)
    decay_steps = V.integer(f, "decay_steps", decay_steps, minimum=1)
    if decay_factor is None:
        decay_factor = {"constant": 1.0, "cosine": 0.0, "step": 0.1}[sched]
    decay_factor = V.real(f, "decay_factor", decay_factor, nonneg=True, below=1.0,
                          inclusive_below=True)
    if freeze is not None:
        if name == "gd":
            raise V.fail(f, "freeze_preconditioner", "None with optimizer='gd' (no "
                         "preconditioner)", freeze)
        freeze = V.integer(f, "freeze_preconditioner", freeze, minimum=1)
    if name != "gd" and momentum != 0.0:
        raise V.fail(f, "momentum", "0 with an adaptive optimizer (Adam's momentum is "
                     "betas[0])", momentum)
    return _Optim(name, b1, b2, eps, warmup, lr_init, sched, decay_steps, decay_factor,
                  freeze or 0)


def _preconditioner(M, m, o: _Optim, theta, v, k, full_batch):
    """The diagonal of P (N,) at an iterate ``theta`` with second moments ``v`` after
    ``k`` updates (module doc); NaN where it is undefined (SGD before any update)."""
    from fastgd.net.model import _grad_np

    if full_batch and not (o.freeze and k >= o.freeze):
        g = _grad_np(theta, M, m)
        with np.errstate(over="ignore", invalid="ignore"):  # a diverged cell: inf/NaN is its result
            v = v + g * g if o.name == "adagrad" else o.beta2 * v + (1.0 - o.beta2) * (g * g)
        kk = k + 1
    else:
        kk = min(k, o.freeze) if o.freeze else k
    if kk == 0:
        return np.full(theta.size, np.nan)
    if o.name != "adam":
        return np.sqrt(v) + o.eps
    with np.errstate(all="ignore"):
        return (1.0 - o.beta1 ** kk) * (np.sqrt(v / (1.0 - o.beta2 ** kk)) + o.eps)


def _precond_sharpness(M, m, o: _Optim, Th, Vs, ks, full_batch, iters, start=None,
                       vectors=False, threads=None):
    """lambda_max(P^-1 H) of each row of ``Th`` (n, N) with second moments ``Vs`` after
    ``ks`` updates (Lanczos on P^-1/2 H P^-1/2, :func:`fastgd.net.model._top_eig`); NaN
    where P is undefined or not > 0.  With ``vectors``: also the top Ritz vectors."""
    from fastgd.net.model import _top_eig

    Th = np.atleast_2d(Th)
    D, bad = _precond_diag(M, m, o, Th, Vs, ks, full_batch)
    got = _top_eig(M, m, Th, iters, start=start, vectors=vectors, threads=threads, diag=D)
    vals = got[0] if vectors else got
    vals[bad] = np.nan
    return got


def _precond_diag(M, m, o: _Optim, Th, Vs, ks, full_batch):
    """The scalings D = P^-1/2 (n, N) of the rows of ``Th`` (n, N) with second moments
    ``Vs`` after ``ks`` updates, row by row, and the rows where P is undefined or not > 0
    (``bad``: their D is 1, their sharpness NaN).  A sweep builds the D of all its cells
    and runs them as the lanes of one Lanczos call (:mod:`fastgd.net.launch`)."""
    D = np.empty(Th.shape)
    for r in range(Th.shape[0]):
        p = _preconditioner(M, m, o, Th[r], Vs[r], int(ks[r]), full_batch)
        with np.errstate(all="ignore"):
            D[r] = 1.0 / np.sqrt(p)
    bad = ~np.all(np.isfinite(D) & (D > 0), axis=1)
    D[bad] = 1.0
    return D, bad


#: the optimizer arguments of :func:`fastgd.net.net_gd`, :func:`fastgd.net.net_sgd` and
#: :func:`fastgd.net.net_sweep` (put in their docstrings by ``_with_params``)
OPTIM_DOC = """\
    optimizer : {"gd", "adam", "rmsprop", "adagrad"}
        ``"gd"``: plain GD / SGD with heavy-ball ``momentum``; the adaptive methods
        follow PyTorch's ``Adam`` / ``RMSprop`` / ``Adagrad`` and optax's ``adam``
        (bias-corrected moments, eps added to sqrt(v_hat); :mod:`fastgd.net.adaptive`).
        Adaptive runs take the kernels' plain loops (not the fused per-sample vector
        step) and report the preconditioned sharpness lambda_max(P^-1 H).
    betas : (float, float)
        (beta1, beta2) in [0, 1): Adam's moment decays; RMSProp's alpha is beta2.
    eps : float
        Added to the square root of the second moment (>= 0).
    warmup : int
        Linear warm-up over this many updates (SGD: minibatches) from ``lr_init`` to
        ``lr`` (optax's ``linear_schedule``); every optimizer, plain GD included.
    lr_init : float
        The rate of the first warm-up update (>= 0).
    schedule : {"constant", "cosine", "step"}
        The rate after the warm-up (:func:`fastgd.kernels.steps.schedule`).
    decay_steps, decay_factor : int, float, optional
        The decay's length D and floor f (cosine: D = the updates left, f = 0; "step":
        D required, f = 0.1).
    freeze_preconditioner : int, optional
        Adaptive methods: hold v and the bias factors after this many updates (then the
        run is heavy ball on P^-1 H and the threshold on lambda_max(P^-1 H) is exact).
"""
