"""The per-lane step math, once: scalars in, scalars out.

The CPU lane kernels (:mod:`fastgd.linear.kernels`, :mod:`fastgd.chain.kernels`,
:mod:`fastgd.net.kernels`) call the ``jit`` versions inside their loops over lanes (LLVM
inlines them; the loops still vectorise); the one-run-per-thread kernels of
:mod:`fastgd.linear.scalar` (CPU and ``numba.cuda``) are compiled with these same Python
functions (:data:`PY`, see :func:`fastgd.linear.scalar.compile_for`).  A change to a
status rule, a threshold or the momentum update is therefore made here and nowhere else.

The adaptive methods (:func:`_adam`, :func:`_rmsprop`, :func:`_adagrad`) follow PyTorch's
``torch.optim.Adam`` / ``RMSprop`` / ``Adagrad`` and optax's ``adam``: eps is added to
the square root of the (bias-corrected) second moment.  Their learning rate at each step
comes from :func:`_schedule` (linear warm-up, then constant, cosine or step decay); the
adaptive kernels are :mod:`fastgd.linear.kernels_adaptive`.
"""

import math

from fastgd.kernels import CONVERGED, DIVERGED
from fastgd.kernels.jit import jit


def _check(x, thc, thd):
    """The status an excess loss ``x`` decides: DIVERGED when it is above the divergence
    threshold ``thd`` or not finite (NaN, or inf even under ``blowup=inf``), CONVERGED
    when at or below the tolerance ``thc``, else 0 (keep going)."""
    if (not (x <= thd)) | (x == math.inf):
        return DIVERGED
    if x <= thc:
        return CONVERGED
    return 0


def _thresholds(es, x0, c0, tol, blowup):
    """(thc, thd): a run converges when its excess loss falls to tol x its initial excess
    ``x0``, and diverges when its loss E* + excess passes blowup x max(E(w0), E(0))
    (``es`` = E*, ``c0`` = E(0): a catapult that settles is not a divergence)."""
    return tol * x0, blowup * max(es + x0, c0) - es


def _heavy_ball(z, g, buf, lr, beta, nesterov):
    """One momentum step (PyTorch ``SGD``, dampening 0) of one component with gradient
    ``g``: buf' = beta buf + g, z' = z - lr (g + beta buf') (Nesterov) or z - lr buf';
    beta = 0 is plain gradient descent.  Returns (z', buf')."""
    bf = beta * buf + g
    if nesterov:
        return z - lr * (g + beta * bf), bf
    return z - lr * bf, bf


#: optimizer codes of the adaptive kernels (:mod:`fastgd.linear.kernels_adaptive`)
ADAM = 0
RMSPROP = 1
ADAGRAD = 2
#: schedule codes after the warm-up (:func:`_schedule`)
SCHEDULE_CONSTANT = 0
SCHEDULE_COSINE = 1
SCHEDULE_STEP = 2


def _adam(w, g, m, v, step, beta1, beta2, eps, r2, frozen):
    """One Adam step (PyTorch ``Adam`` / optax ``adam``) of one component with gradient
    ``g``: m' = beta1 m + (1 - beta1) g, v' = beta2 v + (1 - beta2) g^2,
    w' = w - step m' / (sqrt(v') r2 + eps), where step = lr / c1 and r2 = 1/sqrt(c2) for
    the bias factors c1 = 1 - beta1^t, c2 = 1 - beta2^t of update t (1-based): the
    bias-corrected w - lr m_hat / (sqrt(v_hat) + eps) in PyTorch's arrangement (one
    division and one square root per component; the scalars once per step and lane).
    ``frozen``: v is not updated (the caller also holds c1, c2 at their values of the
    freeze), so that sqrt(v_hat) + eps is the frozen preconditioner.  Returns
    (w', m', v')."""
    m = beta1 * m + (1.0 - beta1) * g
    if not frozen:
        v = beta2 * v + (1.0 - beta2) * (g * g)
    return w - step * m / (math.sqrt(v) * r2 + eps), m, v


def _rmsprop(w, g, v, lr, alpha, eps, frozen):
    """One RMSProp step (PyTorch ``RMSprop``: no momentum, not centred) of one component:
    v' = alpha v + (1 - alpha) g^2, w' = w - lr g / (sqrt(v') + eps); ``frozen``: v is
    kept.  Returns (w', v')."""
    if not frozen:
        v = alpha * v + (1.0 - alpha) * (g * g)
    return w - lr * g / (math.sqrt(v) + eps), v


def _adagrad(w, g, v, lr, eps, frozen):
    """One AdaGrad step (PyTorch ``Adagrad``, no rate decay, initial accumulator 0) of
    one component: v' = v + g^2, w' = w - lr g / (sqrt(v') + eps); ``frozen``: v is kept.
    Returns (w', v')."""
    if not frozen:
        v = v + g * g
    return w - lr * g / (math.sqrt(v) + eps), v


def _schedule(t, warmup, lr_init, code, decay_steps, decay_factor):
    """(a, s): the rate of step ``t`` (0-based: the update from w_t to w_t+1) is
    a + s x lr for a run at target rate lr.

    Warm-up (t < ``warmup``): linear from ``lr_init`` at t = 0 to lr at t = warmup
    (optax's ``linear_schedule``; Kalra & Barkeshli 2024): a = lr_init (1 - t/warmup),
    s = t/warmup.  After it, with u = t - warmup: ``SCHEDULE_CONSTANT`` s = 1;
    ``SCHEDULE_COSINE`` s = f + (1 - f) (1 + cos(pi min(u, D)/D))/2 (optax's
    ``cosine_decay_schedule`` with alpha = f), from 1 down to f = ``decay_factor`` over
    D = ``decay_steps`` steps, then f; ``SCHEDULE_STEP`` s = f^floor(u/D) (PyTorch's
    ``StepLR``: times f every D steps)."""
    if t < warmup:
        frac = t / warmup
        return lr_init * (1.0 - frac), frac
    u = t - warmup
    if code == SCHEDULE_COSINE:
        k = min(u, decay_steps) / decay_steps
        return 0.0, decay_factor + (1.0 - decay_factor) * 0.5 * (1.0 + math.cos(math.pi * k))
    if code == SCHEDULE_STEP:
        return 0.0, decay_factor ** float(u // decay_steps)
    return 0.0, 1.0


#: the plain Python functions, for compilation to other targets (:mod:`.scalar`)
PY = {"check": _check, "thresholds": _thresholds, "heavy_ball": _heavy_ball,
      "adam": _adam, "rmsprop": _rmsprop, "adagrad": _adagrad, "schedule": _schedule}

check = jit(_check)
thresholds = jit(_thresholds)
heavy_ball = jit(_heavy_ball)
adam = jit(_adam)
rmsprop = jit(_rmsprop)
adagrad = jit(_adagrad)
schedule = jit(_schedule)
