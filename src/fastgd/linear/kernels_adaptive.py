"""Adaptive batch-GD chunk kernels of the linear unit: Adam, RMSProp and AdaGrad as SIMD
lanes (:func:`adaptive_kernel`), with a learning-rate warm-up and schedule and an
optional frozen preconditioner.

A diagonal preconditioner does not commute with the eigenbasis of H, so these kernels
iterate in the original coordinates, as errors e = w - w* (w* the least-squares
solution, so that b = X^T y / P = H w* and the gradient X^T (X w - y) / P = H e has no
cancellation near w*): per step and lane, u = R e (H = R^T R,
:func:`fastgd.linear.problem.hessian_roots`), the excess loss |u|^2 / 2 (exactly the
other linear kernels' form), the gradient g = R^T u, then one step of the method per
component (:mod:`fastgd.kernels.steps`): 2 d^2 multiply-adds per lane and step.

Lanes are learning rates (the innermost loops); every lane's arithmetic is independent
of the others', so a sweep cell equals its single run bit for bit.  Status rules are the
GD kernels' (:func:`fastgd.kernels.steps.thresholds`, :func:`fastgd.kernels.steps.check`,
checked every step on the excess |R (w - w*)|^2 / 2).

Convention: E(w) = 1/(2P) sum_p (y_p - w.x_p)^2, H = X^T X / P.
"""

import numpy as np

from fastgd.kernels import BOUNDED
from fastgd.kernels.fpenv import fpenv_restore, ftz_on
from fastgd.kernels.jit import jit
from fastgd.kernels.steps import (
    ADAGRAD,
    ADAM,
    RMSPROP,
    adagrad,
    adam,
    check,
    rmsprop,
    schedule,
    thresholds,
)
from fastgd.linear.kernels_lanes import _flush, _stop, rows_grad

__all__ = ["OPTIMIZERS", "adaptive_kernel"]

#: optimizer name -> code of :mod:`fastgd.kernels.steps` (the closure constant of
#: :func:`adaptive_kernel`)
OPTIMIZERS = {"adam": ADAM, "rmsprop": RMSPROP, "adagrad": ADAGRAD}

_SNAPSHOT = 32  # steps between snapshots of the last finite iterate (a diverged lane's w)


def adaptive_kernel(OPT):
    """The adaptive batch-GD chunk kernel of one optimizer.

    Parameters
    ----------
    OPT : int
        :data:`fastgd.kernels.steps.ADAM`, ``RMSPROP`` or ``ADAGRAD`` (compiled in).

    Returns
    -------
    numba dispatcher
        ``adaptive_rows(R_all, wstar, estar, c0, lr, w0, steps, tol, blowup, beta1,
        beta2, eps, warmup, lr_init, sched, decay_steps, decay_factor, freeze, pre_lr,
        chunks, wk, nworkers, rec_every, out_status, out_w, out_loss, out_excess,
        out_tol_at, out_div_at, out_logg, rec_loss, rec_w, out_vhat)``, compiled on its
        first call.  ``freeze`` > 0: the second moment and the bias factors are frozen
        after that many updates, and v_hat = v / (1 - beta2^freeze) at the freeze is
        written to ``out_vhat`` (RMSProp, AdaGrad: v); ``pre_lr`` > 0: the rate of
        every lane before the freeze (else the schedule's).

    Examples
    --------
    >>> from fastgd.kernels.steps import ADAM
    >>> from fastgd.linear.kernels_adaptive import adaptive_kernel
    >>> kernel = adaptive_kernel(ADAM)  # compiled on its first call, not here
    >>> callable(kernel)
    True
    """

    # over 80 lines, unsplit for speed: a step's gradient, check, record and update in
    # one loop nest over lanes
    @jit(variant=f"O{OPT}")
    def adaptive_rows(R_all, wstar, estar, c0, lr, w0, steps, tol, blowup, beta1, beta2,
                      eps, warmup, lr_init, sched, decay_steps, decay_factor, freeze,
                      pre_lr, chunks, wk, nworkers, rec_every, out_status, out_w, out_loss,
                      out_excess, out_tol_at, out_div_at, out_logg, rec_loss, rec_w,
                      out_vhat):
        """Worker ``wk`` of ``nworkers`` runs chunks wk, wk + nworkers, ... of
        ``chunks`` (rows: data di, seed si (0), lr_start a, lr_stop b), each the lanes
        lr[a:b] on dataset di (H = R_all[di]^T R_all[di]) from w0."""
        old = ftz_on()
        dt = R_all.dtype
        d = R_all.shape[1]
        nrec = rec_loss.shape[3]
        for ck in range(wk, chunks.shape[0], nworkers):
            di = chunks[ck, 0]
            si = chunks[ck, 1]
            a = chunks[ck, 2]
            nl = chunks[ck, 3] - a
            R = R_all[di]
            es = estar[di]
            e = np.empty((d, nl), dt)    # w - w*
            m = np.empty((d, nl), dt)    # first moment (Adam)
            v = np.empty((d, nl), dt)    # second moment / accumulated squares
            g = np.empty((d, nl), dt)    # gradient H e = R^T (R e)
            eok = np.empty((d, nl), dt)  # last finite iterate (snapshots)
            efin = np.empty((d, nl), dt)
            wfin = np.empty((d, nl), dt)
            U = np.empty((4, nl), dt)  # u = R e for four rows of R at a time
            krows = np.arange(d)
            ex = np.empty(nl, dt)
            lrt = np.empty(nl, dt)
            lre = np.empty(nl, dt)
            thc = np.empty(nl, dt)
            thd = np.empty(nl, dt)
            logg = np.zeros(nl, dt)
            fst = np.empty(nl, np.int64)
            ft = np.empty(nl, np.int64)
            floss = np.empty(nl, dt)
            fex = np.empty(nl, dt)
            active = np.empty(nl, np.bool_)
            for l in range(nl):
                active[l] = True
                lre[l] = lr[a + l]
                ex[l] = 0.0
            for i in range(d):
                ei = w0[i] - wstar[di, i]
                for l in range(nl):
                    e[i, l] = ei
                    eok[i, l] = ei
                    m[i, l] = 0.0
                    v[i, l] = 0.0
            nact = nl
            c1 = 1.0
            c2 = 1.0
            r2 = 1.0
            t = 0
            while True:
                # the excess |R e|^2 / 2 and the gradient R^T (R e), rows of R in order
                for l in range(nl):
                    ex[l] = 0.0
                for i in range(d):
                    for l in range(nl):
                        g[i, l] = 0.0
                rows_grad(R, krows, d, e, U, g, ex, ex, False)
                for l in range(nl):
                    ex[l] = 0.5 * ex[l]
                if t == 0:
                    for l in range(nl):
                        thc[l], thd[l] = thresholds(es, ex[l], c0[di], tol, blowup)
                if freeze > 0 and t == freeze:  # the preconditioner as it is frozen
                    for l in range(nl):
                        if active[l]:
                            for i in range(d):
                                out_vhat[di, si, a + l, i] = v[i, l] / c2
                cnt = 0
                for l in range(nl):
                    cnt += active[l] & (check(ex[l], thc[l], thd[l]) != 0)
                if cnt > 0:
                    for l in range(nl):
                        st = check(ex[l], thc[l], thd[l])
                        if not active[l] or st == 0:
                            continue
                        fin = ex[l] < np.inf
                        _stop(l, np.int64(st), np.int64(t), ex[l], es,
                              e if fin else eok, efin, fst, ft, floss, fex)
                        for i in range(d):  # a stopped lane stays at e = 0 (no NaN)
                            e[i, l] = 0.0
                            m[i, l] = 0.0
                            v[i, l] = 0.0
                        active[l] = False
                        lre[l] = 0.0
                        nact -= 1
                if nact == 0:
                    break
                if nrec > 0 and t % rec_every == 0:
                    kr = t // rec_every
                    for l in range(nl):
                        if active[l]:
                            rec_loss[di, si, a + l, kr] = es + ex[l]
                            if rec_w.shape[3] > 0:
                                for i in range(d):
                                    rec_w[di, si, a + l, kr, i] = (
                                        w0[i] if t == 0 else wstar[di, i] + e[i, l])
                if t == steps:
                    break
                if t % _SNAPSHOT == 0:
                    for l in range(nl):
                        if active[l] and ex[l] < np.inf:
                            for i in range(d):
                                eok[i, l] = e[i, l]
                # the update t -> t + 1 (update number t + 1 of the bias factors)
                frozen = freeze > 0 and t >= freeze
                if not frozen:
                    tf = np.float64(t + 1)
                    if OPT == ADAM:
                        c1 = 1.0 - beta1 ** tf
                        c2 = 1.0 - beta2 ** tf
                        r2 = 1.0 / np.sqrt(c2)
                sa, ss = schedule(t, warmup, lr_init, sched, decay_steps, decay_factor)
                if pre_lr > 0.0 and t < freeze:
                    sa = pre_lr
                    ss = 0.0
                for l in range(nl):
                    lrt[l] = sa + ss * lre[l]
                if OPT == ADAM:
                    for l in range(nl):
                        lrt[l] = lrt[l] / c1  # PyTorch's step size lr / (1 - beta1^t)
                if OPT == ADAM:
                    for i in range(d):
                        for l in range(nl):
                            e[i, l], m[i, l], v[i, l] = adam(
                                e[i, l], g[i, l], m[i, l], v[i, l], lrt[l], beta1, beta2,
                                eps, r2, frozen)
                elif OPT == RMSPROP:
                    for i in range(d):
                        for l in range(nl):
                            e[i, l], v[i, l] = rmsprop(e[i, l], g[i, l], v[i, l], lrt[l],
                                                       beta2, eps, frozen)
                else:
                    for i in range(d):
                        for l in range(nl):
                            e[i, l], v[i, l] = adagrad(e[i, l], g[i, l], v[i, l], lrt[l],
                                                       eps, frozen)
                t += 1
            for l in range(nl):
                if active[l]:
                    _stop(l, np.int64(BOUNDED), np.int64(t), ex[l], es,
                          e, efin, fst, ft, floss, fex)
            # back to weights: w = w* + e (w0 itself for a lane stopped at step 0)
            for l in range(nl):
                for i in range(d):
                    wfin[i, l] = w0[i] if ft[l] == 0 else wstar[di, i] + efin[i, l]
            _flush(a, di, si, fst, ft, floss, fex, wfin, logg, out_status, out_w,
                   out_loss, out_excess, out_tol_at, out_div_at, out_logg, rec_every,
                   rec_loss, rec_w)
        fpenv_restore(old)

    return adaptive_rows
