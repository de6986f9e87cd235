"""The chunk kernel of the two-layer networks (:mod:`fastgd.net.kernels`: layout, status
rule and outputs), built by a factory (:func:`rows_kernel`) on compile-time constants so
that a run compiles only the code it can take (a plain GD run: no SGD epoch loop, no
sample orders, no schedule, no adaptive step; a relu network: no tanh).  ``SGD``: the
epochs of (mini)batch SGD, else full-batch GD.  ``MODE``: :data:`PLAIN` (fixed rates,
heavy ball), :data:`SCHEDULED` (heavy ball with a warm-up or decay schedule of the
rates) or :data:`ADAPTIVE` (Adam, RMSProp, AdaGrad).  ``ACT``: the activation code
(:data:`.kernels.ACT_RELU`, ...; the kernel's ``act`` argument agrees with it, and its
loss and gradient are the variant of :mod:`.kernels` for it).  Numba's disk cache keys
each variant on its closure constants; every variant takes the same arguments and
computes the same bits as every other on the runs it covers.
"""

import numpy as np

from fastgd.kernels import BOUNDED, CONVERGED, DIVERGED, ORDER_SHUFFLE
from fastgd.kernels.jit import jit
from fastgd.kernels.rng import permutation
from fastgd.kernels.simd import net_step1
from fastgd.kernels.steps import thresholds
from fastgd.kernels.threads import fan_out
from fastgd.net.kernels import (
    ACT_RELU,
    ACT_TANH,
    NET_LANES,
    NET_SAMPLES,
    SIMD,
    loss_grad_identity,
    loss_grad_relu,
    loss_grad_tanh,
)
from fastgd.net.kernels_adaptive import rates, step_adaptive
from fastgd.net.kernels_lanes import _sample, _step, grad_norm2, lane_status

#: optimizer modes of :func:`rows_kernel`
PLAIN = 0
SCHEDULED = 1
ADAPTIVE = 2

_BUILT = {}


@jit
def _finish(l, k, t, status, src, loss, maxloss, out_status, out_theta, theta_off,
            out_loss, out_tol_at, out_div_at, out_maxloss, rec_loss, rec_every, rec_theta,
            rec_off, srcv, out_v, rec_v):
    """Write lane ``l`` (cell ``k``); fill its remaining recordings with the final value
    (and, for the adaptive methods, the second moments ``srcv`` likewise: ``out_v``,
    ``rec_v``, empty otherwise)."""
    N = src.shape[0]
    out_status[k] = status
    o = theta_off[k]
    for n in range(N):
        out_theta[o + n] = src[n, l]
    if out_v.shape[0] > 0:
        for n in range(N):
            out_v[o + n] = srcv[n, l]
    out_loss[k] = loss
    out_maxloss[k] = maxloss
    if status == CONVERGED:
        out_tol_at[k] = t
    elif status == DIVERGED:
        out_div_at[k] = t
    nrec = rec_loss.shape[1]
    for s in range(t, nrec):
        rec_loss[k, s] = loss
    if rec_every > 0 and rec_theta.shape[0] > 0:
        first = (t + rec_every - 1) // rec_every
        for r in range(first, (rec_off[k + 1] - rec_off[k]) // N):
            base = rec_off[k] + r * N
            for n in range(N):
                rec_theta[base + n] = src[n, l]
            if rec_v.shape[0] > 0:
                for n in range(N):
                    rec_v[base + n] = srcv[n, l]



def rows_kernel(SGD, MODE, ACT):
    """The chunk kernel for method ``SGD`` (bool), optimizer ``MODE`` and activation
    code ``ACT`` (module doc), built once per key (compiled on its first call).

    Examples
    --------
    >>> from fastgd.net.kernels import ACT_RELU
    >>> from fastgd.net.kernels_rows import PLAIN, rows_kernel
    >>> rows_kernel(False, PLAIN, ACT_RELU) is rows_kernel(False, PLAIN, ACT_RELU)
    True
    """
    key = (bool(SGD), int(MODE), int(ACT))
    if key not in _BUILT:
        _BUILT[key] = _build(*key)
    return _BUILT[key]


def _build(SGD, MODE, ACT):
    """A new dispatcher of :func:`rows_net` for the constants ``SGD``, ``MODE``, ``ACT``."""
    # closure constants: Numba prunes the branches they decide before typing them
    GD = not SGD
    ADAPT = MODE == ADAPTIVE
    SCHED = MODE == SCHEDULED
    RELU = ACT == ACT_RELU
    TANH = ACT == ACT_TANH

    # over 80 lines, unsplit for speed: check, record and step of all lanes in one loop nest
    @jit(variant=f"S{int(SGD)}_M{MODE}_A{ACT}")
    def rows_net(X, Y, act, bias, method, widths, scales, init_off, inits, keys, lrs, beta,
                 opt_i, opt_f, steps, batch, order, tol, gtol, blowup, c0, chunks, wk, nworkers,
                 rec_every, out_status, out_theta, theta_off, out_loss, out_tol_at, out_div_at,
                 out_maxloss, rec_loss, rec_theta, rec_off, out_v, rec_v):
        """GD or SGD (the constant ``SGD``; ``method`` 0 or 1 agrees with it) for the
        chunks wk, wk + nworkers, ... of ``chunks``.

        ``chunks`` rows: (init, lr_start, lr_stop); init ``c`` has width ``widths[c]``,
        output scale ``scales[c]`` (1/sqrt(m) or 1), parameters
        ``inits[init_off[c]:init_off[c+1]]`` and sample-order key ``keys[c]``.  ``lrs``
        (n_init, n_lr): the rates of init ``c`` in row ``c`` (a rate grid relative to each
        init's curvature), ``beta`` heavy-ball momentum (PyTorch form: buf <- beta buf + g,
        theta <- theta - lr buf).  ``steps``: steps (GD) or epochs (SGD; batches of
        ``batch`` in the order ``order``, the last one smaller).  Time unit of status,
        recordings: steps (GD) or epochs (SGD, checked on the full loss at the start of
        each epoch).  ``gtol`` > 0 adds the gradient rule of :func:`lane_status` (the
        full-batch gradient is then computed at every check).

        The optimizer: ``opt_i`` = (code: :data:`.kernels_adaptive.OPT_GD` heavy ball or an
        adaptive method of :mod:`.steps`, warm-up steps, schedule code, decay steps,
        freeze; the code and the schedule agree with ``MODE``), ``opt_f`` = (beta1, beta2,
        eps, lr_init, decay_factor).  The rate of update k (k counts updates: steps of GD,
        minibatches of SGD) follows :func:`.steps.schedule` (``MODE`` SCHEDULED or
        ADAPTIVE: otherwise the rates themselves); the adaptive steps
        (:func:`.kernels_adaptive.step_adaptive`: the plain loops, never the fused
        per-sample vector step) keep first and second moments per parameter and lane, and
        write the second moments where the parameters go (``out_v``, ``rec_v``; empty for
        heavy ball)."""
        P, d = X.shape
        nlr = lrs.shape[1]
        # np.empty only, filled by loops: each distinct np.zeros / np.ones / np.arange
        # signature is one more compilation on a cold cache
        idx_all = np.empty(P, dtype=np.int64)
        perm = np.empty(P, dtype=np.int64)
        bidx = np.empty(P, dtype=np.int64)
        for q in range(P):
            idx_all[q] = q
        nrec = rec_loss.shape[1]
        opt = opt_i[0]
        beta1 = opt_f[0]
        beta2 = opt_f[1]
        eps = opt_f[2]
        bias_f = np.empty(2)
        bias_f[0] = bias_f[1] = 1.0
        for ck in range(wk, chunks.shape[0], nworkers):
            c = chunks[ck, 0]
            a0 = chunks[ck, 1]
            nreal = chunks[ck, 2] - a0
            nl = nreal  # lanes computed: a chunk of several runs is padded to whole vector
            if SIMD and nreal > 1:  # blocks with inactive lanes (lr 0, never written out)
                nl = -(-nreal // NET_LANES) * NET_LANES
            m = widths[c]
            s = scales[c]
            N = init_off[c + 1] - init_off[c]
            T = np.empty((N, nl))
            Tp = np.empty((N, nl))
            G = np.empty((N, nl))
            B = np.empty((N, nl))
            na = N if ADAPT else 0  # the moments of the adaptive methods
            Mo = np.empty((na, nl))
            Vo = np.empty((na, nl))
            Vp = np.empty((na, nl))
            Z = np.empty((P, nl))
            F = np.empty((P, nl))
            R = np.empty((P, nl))
            # the loops' activations: only a chunk that is not whole vector blocks uses them
            Hs = np.empty((m, P, nl if nl % NET_LANES or not SIMD else 0))
            Hb = np.empty((m, NET_SAMPLES, NET_LANES))  # one vector block's activations
            chk = np.empty(nl)
            ib = m * d
            ia = ib + (m if bias else 0)
            fused = (SIMD and batch == 1 and beta == 0.0 and nl % NET_LANES == 0
                     and MODE == PLAIN)
            # the fused step's copy of a vector block of lanes when there are several
            # (the reason in loss_grad_lanes)
            nc = NET_LANES if fused and nl > NET_LANES else 0
            Tc = np.empty((N, nc))
            lc = np.empty(nc)
            cc = np.empty(nc)
            lo = np.empty(nl)
            bl = np.empty(nl)
            lre = np.empty(nl)
            lrt = np.empty(nl)
            thc = np.empty(nl)
            thd = np.empty(nl)
            g2 = np.empty(nl)
            thg = np.empty(nl)
            mx = np.empty(nl)
            okp = np.empty(nl, dtype=np.bool_)
            active = np.empty(nl, dtype=np.bool_)
            for n in range(N):
                v = inits[init_off[c] + n]
                for l in range(nl):
                    T[n, l] = v
                    Tp[n, l] = v
                    B[n, l] = 0.0
            for n in range(na):
                for l in range(nl):
                    Mo[n, l] = Vo[n, l] = Vp[n, l] = 0.0
            for l in range(nl):
                lre[l] = chk[l] = lrt[l] = g2[l] = thg[l] = 0.0
                okp[l] = True
                active[l] = False
            for l in range(nreal):
                lre[l] = lrs[c, a0 + l]
                active[l] = True
            nact = nreal
            k0 = keys[c, 0]
            k1 = keys[c, 1]
            t = 0
            # updates so far (the schedule's and the bias factors' count); np.int64: a
            # literal 0 would compile rates() once more, for Literal[int](0)
            ku = np.int64(0)
            for t in range(steps + 1):
                want = (GD and t < steps) or gtol > 0.0
                if RELU:  # the activation's variant, by name (module doc)
                    loss_grad_relu(X, Y, idx_all, P, bias, m, s, T, G, Z, F, Hs, R, Hb, lo, want)
                elif TANH:
                    loss_grad_tanh(X, Y, idx_all, P, bias, m, s, T, G, Z, F, Hs, R, Hb, lo, want)
                else:
                    loss_grad_identity(X, Y, idx_all, P, bias, m, s, T, G, Z, F, Hs, R, Hb, lo,
                                       want)
                if gtol > 0.0:
                    grad_norm2(G, g2)
                if t == 0:
                    for l in range(nl):  # E* = 0 for the loss rule (module doc)
                        thc[l], thd[l] = thresholds(0.0, lo[l], c0, tol, blowup)
                        thg[l] = thresholds(0.0, g2[l], 0.0, gtol * gtol, 1.0)[0]
                        mx[l] = lo[l]
                for l in range(nl):
                    if lo[l] > mx[l]:
                        mx[l] = lo[l]
                # the status rule of lane_status, and DIVERGED when a parameter is not finite
                ev = 0
                for l in range(nl):
                    ev += active[l] & ((lane_status(lo[l], thc[l], thd[l], g2[l], thg[l], gtol)
                                        != 0) | (not okp[l]))
                if ev > 0:
                    for l in range(nl):
                        st = DIVERGED if not okp[l] else lane_status(lo[l], thc[l], thd[l], g2[l],
                                                                     thg[l], gtol)
                        if not active[l] or st == 0:
                            continue
                        k = (c * nlr) + a0 + l
                        if st == DIVERGED:
                            for n in range(N):
                                T[n, l] = Tp[n, l]
                            for n in range(na):
                                Vo[n, l] = Vp[n, l]
                            _finish(l, k, t, np.int64(DIVERGED), T, np.inf, np.inf, out_status,
                                    out_theta, theta_off, out_loss, out_tol_at, out_div_at, out_maxloss,
                                    rec_loss, rec_every, rec_theta, rec_off, Vo, out_v, rec_v)
                        else:  # CONVERGED
                            _finish(l, k, t, np.int64(CONVERGED), T, lo[l], mx[l], out_status,
                                    out_theta, theta_off, out_loss, out_tol_at, out_div_at, out_maxloss,
                                    rec_loss, rec_every, rec_theta, rec_off, Vo, out_v, rec_v)
                        active[l] = False
                        lre[l] = 0.0
                        nact -= 1
                if nact == 0:
                    break
                if nrec > 0:
                    for l in range(nl):
                        if active[l]:
                            rec_loss[c * nlr + a0 + l, t] = lo[l]
                if rec_every > 0 and t % rec_every == 0 and rec_theta.shape[0] > 0:
                    r = t // rec_every
                    for l in range(nl):
                        if active[l]:
                            base = rec_off[c * nlr + a0 + l] + r * N
                            for n in range(N):
                                rec_theta[base + n] = T[n, l]
                            for n in range(na):
                                rec_v[base + n] = Vo[n, l]
                if t == steps:
                    break
                if GD:
                    if ADAPT:
                        frozen = rates(ku, lre, active, lrt, opt, beta1, beta2, opt_i, opt_f,
                                        bias_f)
                        step_adaptive(T, Mo, Vo, G, lrt, opt, beta1, beta2, eps, bias_f[1],
                                       frozen, okp, Tp, Vp, np.bool_(True))
                    elif SCHED:
                        rates(ku, lre, active, lrt, opt, beta1, beta2, opt_i, opt_f, bias_f)
                        _step(T, B, G, lrt, beta, okp, Tp, np.bool_(True))
                    else:
                        _step(T, B, G, lre, beta, okp, Tp, np.bool_(True))
                    ku += 1
                else:
                    for n in range(N):
                        for l in range(nl):
                            Tp[n, l] = T[n, l]
                    for n in range(na):
                        for l in range(nl):
                            Vp[n, l] = Vo[n, l]
                    if order == ORDER_SHUFFLE:
                        permutation(k0, k1, t, perm)
                    pos = 0
                    if fused:  # per-sample SGD, no momentum: the step inside the vector code
                        for q in range(P):
                            bidx[q] = _sample(order, perm, k0, k1, t, q, P)
                        for l in range(nl):
                            chk[l] = 0.0
                        for lb in range(0, nl, NET_LANES):  # (on a copy: see loss_grad)
                            Tb, rb, cb, o = T, lre, chk, lb
                            if nc > 0:
                                for n in range(N):
                                    for l in range(NET_LANES):
                                        Tc[n, l] = T[n, lb + l]
                                for l in range(NET_LANES):
                                    lc[l] = lre[lb + l]
                                    cc[l] = 0.0
                                Tb, rb, cb, o = Tc, lc, cc, 0
                            for q in range(P):
                                net_step1(Tb, X, Y, bidx, q, m, ib, ia, Hb, rb, cb, o, ACT,
                                          bias, s, s)
                            if nc > 0:
                                for n in range(N):
                                    for l in range(NET_LANES):
                                        T[n, lb + l] = Tc[n, l]
                                for l in range(NET_LANES):
                                    chk[lb + l] = cc[l]
                        for l in range(nl):
                            okp[l] &= chk[l] == 0.0
                        pos = P
                    while pos < P:
                        nb = min(batch, P - pos)
                        for q in range(nb):
                            bidx[q] = _sample(order, perm, k0, k1, t, pos + q, P)
                        if RELU:
                            loss_grad_relu(X, Y, bidx, nb, bias, m, s, T, G, Z, F, Hs, R, Hb, bl,
                                           np.bool_(True))
                        elif TANH:
                            loss_grad_tanh(X, Y, bidx, nb, bias, m, s, T, G, Z, F, Hs, R, Hb, bl,
                                           np.bool_(True))
                        else:
                            loss_grad_identity(X, Y, bidx, nb, bias, m, s, T, G, Z, F, Hs, R,
                                               Hb, bl, np.bool_(True))
                        if ADAPT:
                            frozen = rates(ku, lre, active, lrt, opt, beta1, beta2, opt_i,
                                            opt_f, bias_f)
                            step_adaptive(T, Mo, Vo, G, lrt, opt, beta1, beta2, eps,
                                           bias_f[1], frozen, okp, Tp, Vp, np.bool_(False))
                        elif SCHED:
                            rates(ku, lre, active, lrt, opt, beta1, beta2, opt_i, opt_f, bias_f)
                            _step(T, B, G, lrt, beta, okp, Tp, np.bool_(False))
                        else:
                            _step(T, B, G, lre, beta, okp, Tp, np.bool_(False))
                        ku += 1
                        pos += nb
            for l in range(nl):
                if active[l]:
                    _finish(l, c * nlr + a0 + l, t + 1, np.int64(BOUNDED), T, lo[l], mx[l], out_status,
                            out_theta, theta_off, out_loss, out_tol_at, out_div_at, out_maxloss,
                            rec_loss, rec_every, rec_theta, rec_off, Vo, out_v, rec_v)


    return rows_net


def grid_net(kernel, args, nworkers, tail):
    """Run ``kernel`` (:func:`rows_kernel`) on the chunks of ``args`` (its arguments
    up to ``chunks``) interleaved over ``nworkers`` threads (:func:`.threads.fan_out`;
    chunk k goes to worker k % nworkers); ``tail`` its arguments after ``nworkers``."""
    fan_out(kernel, args, nworkers, tail)
