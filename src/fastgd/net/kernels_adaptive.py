"""The adaptive step of the two-layer network kernels (:mod:`fastgd.net.kernels`): Adam,
RMSProp and AdaGrad component by component through :mod:`fastgd.kernels.steps`
(PyTorch's ``torch.optim.Adam`` / ``RMSprop`` / ``Adagrad`` and optax's ``adam``: eps added
to the square root of the bias-corrected second moment), and the rates of each update
(warm-up and schedule: :func:`fastgd.kernels.steps.schedule`).

State is stored ``[param][lane]`` like the parameters (``Mo``: first moments, ``Vo``:
second moments); every loop runs over lanes, and a lane's arithmetic never depends on
another lane's (a sweep cell equals its single run bit for bit).
"""

import numpy as np

from fastgd.kernels.jit import jit
from fastgd.kernels.steps import ADAGRAD, ADAM, RMSPROP, adagrad, adam, rmsprop, schedule

#: optimizer codes of :func:`fastgd.net.kernels_rows.rows_kernel` (``opt_i[0]``): heavy ball
#: (plain GD / SGD with momentum 0), then the adaptive methods of :mod:`fastgd.kernels.steps`
OPT_GD = -1
OPT_ADAM = ADAM
OPT_RMSPROP = RMSPROP
OPT_ADAGRAD = ADAGRAD


@jit
def step_adaptive(T, Mo, Vo, G, lrt, opt, beta1, beta2, eps, r2, frozen, okp, Tp, Vp,
                   save):
    """One step of an adaptive method for every lane, component by component through
    :func:`.steps.adam` (``lrt`` = rate / (1 - beta1^k), ``r2`` = 1/sqrt(1 - beta2^k) for
    update k), :func:`.steps.rmsprop` (alpha = ``beta2``) or :func:`.steps.adagrad`;
    ``frozen``: the second moments ``Vo`` are kept.  okp[l] turns False when a parameter
    of lane l is not finite; with ``save`` the parameters and second moments before the
    step go to ``Tp``, ``Vp`` (the rollback of a divergence)."""
    for n in range(T.shape[0]):
        if save:
            for l in range(T.shape[1]):
                Tp[n, l] = T[n, l]
                Vp[n, l] = Vo[n, l]
        if opt == OPT_ADAM:
            for l in range(T.shape[1]):
                w, Mo[n, l], Vo[n, l] = adam(T[n, l], G[n, l], Mo[n, l], Vo[n, l], lrt[l],
                                             beta1, beta2, eps, r2, frozen)
                T[n, l] = w
                okp[l] &= abs(w) < np.inf
        elif opt == OPT_RMSPROP:
            for l in range(T.shape[1]):
                w, Vo[n, l] = rmsprop(T[n, l], G[n, l], Vo[n, l], lrt[l], beta2, eps, frozen)
                T[n, l] = w
                okp[l] &= abs(w) < np.inf
        else:
            for l in range(T.shape[1]):
                w, Vo[n, l] = adagrad(T[n, l], G[n, l], Vo[n, l], lrt[l], eps, frozen)
                T[n, l] = w
                okp[l] &= abs(w) < np.inf


@jit
def rates(k, lre, active, lrt, opt, beta1, beta2, opt_i, opt_f, bias_f):
    """The rates of update k (0-based) of every lane into ``lrt``: the schedule's
    a + s lr (:func:`.steps.schedule`; 0 for a finished lane) and, for Adam, divided by
    the bias factor 1 - beta1^(k+1); the bias factors of update k + 1 go to ``bias_f``
    (c1, 1/sqrt(c2)) unless the preconditioner is frozen (k >= freeze > 0).  Returns
    whether it is frozen."""
    warmup, sched, dsteps, freeze = opt_i[1], opt_i[2], opt_i[3], opt_i[4]
    frozen = freeze > 0 and k >= freeze
    if opt == OPT_ADAM and not frozen:
        tf = np.float64(k + 1)
        bias_f[0] = 1.0 - beta1 ** tf
        bias_f[1] = 1.0 / np.sqrt(1.0 - beta2 ** tf)
    sa, ss = schedule(k, warmup, opt_f[3], sched, dsteps, opt_f[4])
    for l in range(lre.shape[0]):
        lrt[l] = sa + ss * lre[l] if active[l] else 0.0
    if opt == OPT_ADAM:
        for l in range(lre.shape[0]):
            lrt[l] = lrt[l] / bias_f[0]  # PyTorch's step size lr / (1 - beta1^k)
    return frozen
