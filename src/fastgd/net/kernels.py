"""Kernels for two-layer networks f(x) = s a . phi(W x + b), scalar output (float64 only).

``s`` = 1/sqrt(m) (NTK parametrisation) or 1 (standard), width m, d inputs,
phi in {identity, tanh, relu} (codes :data:`ACT_IDENTITY`, :data:`ACT_TANH`,
:data:`ACT_RELU`; relu'(0) = 0), bias b optional.  Loss (note the 1/2)::

    E = 1/(2P) sum_p (s f_p - y_p)^2    (f_p = a . phi(W x_p + b)).

Parameters of one network are a flat vector theta of length N = m (d + 1 + bias):
``W[j, i]`` at row ``j d + i``, then ``b[j]`` at ``m d + j`` (with a bias), then ``a[j]``
at ``m d + bias m + j``.

Layout (DESIGN.md): a *chunk* is up to a few dozen runs (lanes) on the same data that
share their initial parameters and differ in the learning rate; state is stored
``[param][lane]`` (``T[k, l]``) and every inner loop runs over lanes.  Blocks of 8
samples (the last ones: of one) x 8 lanes go through every hidden unit forward, then the
residuals, then every unit backward, in vector registers (:func:`.simd.net_block`); a
single run (one lane) takes the loops: for unit j, its pre-activations for all samples
(``Z[q, l]``), then phi, stored for the backward pass (``Hs[j, q, l]``); residuals; then per
unit the gradient from the stored activations (phi' from phi: 1 - h^2 for tanh,
h > 0 for relu).  Both sum in the same order (same bits).  Per-sample SGD without
momentum takes each step inside the vector code (:func:`.simd.net_step1`: every unit's
parameters updated as soon as its gradient is complete, no gradient array), the same
bits as gradient then step.  A chunk of several runs is padded to whole blocks of lanes
(idle lanes, lr 0, never written out).  A full-batch step costs m (2 d + 3 + 2 bias)
multiply-adds per sample and lane.

Status rule (:func:`.kernels_lanes.lane_status`: :func:`.steps.thresholds` and :func:`.steps.check`
with E* = 0, as the chain kernels): the loss at step t is computed before the update;
DIVERGED when it is not finite, a parameter is not finite, or the loss >
blowup x max(E(theta0), E(0)) with E(0) = mean(y^2)/2 (the loss of the zero output: a
catapult spike is not a divergence); the reported parameters are then the previous
iterate (finite), the loss ``inf``.  CONVERGED when the loss <= tol x E(theta0) (E* = 0
assumed: the network can fit the data) or, with ``gtol`` > 0, when the squared norm of
the full-batch gradient <= gtol^2 x its value at theta0 (the same check on |g|^2: it
ends runs whose target cannot be fit, E* > 0).  BOUNDED otherwise.  Finished lanes are
frozen (lr 0) and a chunk ends when all of its lanes are done.

Outputs are flat over cells k = init * n_lr + lr index: ``out_status[k]``,
``out_loss[k]``, ``out_tol_at[k]``, ``out_div_at[k]``, ``out_maxloss[k]`` (max of the loss
over the checked iterates; ``inf`` when diverged), final parameters
``out_theta[theta_off[k] : theta_off[k] + N]``; recordings ``rec_loss[k, t]`` (zero-length
second axis: off) and, every ``rec_every`` steps (0: off), the parameters
``rec_theta[rec_off[k] + (t // rec_every) N + n]`` (``rec_off`` has n_cells + 1
entries; ``theta_off`` too).
"""

import numba
import numpy as np

from fastgd.kernels import BOUNDED, CONVERGED, DIVERGED, ORDER_SHUFFLE
from fastgd.kernels.fmath import tanh
from fastgd.kernels.jit import jit
from fastgd.kernels.rng import permutation
from fastgd.kernels.simd import NET_SAMPLES, NET_VECTORS, net_block, net_block1, net_step1
from fastgd.kernels.steps import thresholds
from fastgd.kernels.threads import fan_out
from fastgd.net.kernels_adaptive import OPT_GD, rates, step_adaptive
from fastgd.net.kernels_lanes import _sample, _step, grad_norm2, lane_status

#: the vector-code blocks (.simd) are not used under NUMBA_DISABLE_JIT (plain Python)
SIMD = not numba.config.DISABLE_JIT
NET_LANES = NET_VECTORS * 4  # float64 lanes per vector block

ACT_IDENTITY = 0
ACT_TANH = 1
ACT_RELU = 2

METHOD_GD = 0
METHOD_SGD = 1


# over 80 lines, unsplit for speed: forward, residual, backward in one pass
@jit
def loss_grad_lanes(X, Y, idx, nb, act, bias, m, s, T, G, Z, F, Hs, R, Hb, loss, want_grad):
    """Loss (and with ``want_grad`` its gradient) over the samples ``idx[:nb]`` for every lane.

    ``loss[l] = 1/(2 nb) sum_q (s f(x_q) - y_q)^2`` and ``G[:, l]`` its gradient w.r.t. the
    flat parameters ``T[:, l]`` (module doc).  Scratch: ``Z``, ``F``, ``R`` (>= nb, nl),
    ``Hs`` (m, >= nb, nl), ``Hb`` (m, NET_SAMPLES, nl).

    Blocks of NET_SAMPLES samples x NET_LANES lanes run forward, residual and backward
    through every hidden unit as LLVM vector code (:func:`.simd.net_block`), their
    activations in the small scratch Hb, and the samples after the last whole block in
    blocks of one (``net_block1``); lanes after the last whole block of lanes (a single
    run: its one lane) take the loops below, two passes over the units with the
    activations in Hs.  Every sum is taken in the same order either way."""
    d = X.shape[1]
    nl = T.shape[1]
    ib = m * d
    ia = ib + (m if bias else 0)
    l0 = 0  # lanes [0, l0) in vector blocks: of NET_SAMPLES samples up to q0, then of one
    q0 = 0
    if SIMD and T.itemsize == 8:
        l0 = nl - nl % NET_LANES
        q0 = nb - nb % NET_SAMPLES
    inv = 1.0 / nb
    sinv = s * inv
    for l in range(nl):
        loss[l] = 0.0
    if want_grad:
        for k in range(T.shape[0]):
            for l in range(nl):
                G[k, l] = 0.0
    for lb in range(0, l0, NET_LANES):
        for q in range(0, q0, NET_SAMPLES):
            if act == ACT_RELU:  # constant codes: LLVM drops the other cases
                net_block(T, X, Y, idx, q, m, ib, ia, Hb, G, loss, lb, ACT_RELU, bias, s,
                          sinv, want_grad)
            elif act == ACT_TANH:
                net_block(T, X, Y, idx, q, m, ib, ia, Hb, G, loss, lb, ACT_TANH, bias, s,
                          sinv, want_grad)
            else:
                net_block(T, X, Y, idx, q, m, ib, ia, Hb, G, loss, lb, ACT_IDENTITY, bias, s,
                          sinv, want_grad)
        for q in range(q0, nb):
            if act == ACT_RELU:
                net_block1(T, X, Y, idx, q, m, ib, ia, Hb, G, loss, lb, ACT_RELU, bias, s,
                           sinv, want_grad)
            elif act == ACT_TANH:
                net_block1(T, X, Y, idx, q, m, ib, ia, Hb, G, loss, lb, ACT_TANH, bias, s,
                           sinv, want_grad)
            else:
                net_block1(T, X, Y, idx, q, m, ib, ia, Hb, G, loss, lb, ACT_IDENTITY, bias,
                           s, sinv, want_grad)
    if l0 < nl:  # the loops: the lanes after the blocks' (a single run: every lane)
        ula = np.uint64(l0)  # unsigned: no negative-index wraparound in the lane loops
        ulz = np.uint64(nl)
        for q in range(nb):
            for l in range(ula, ulz):
                F[q, l] = 0.0
        for j in range(m):
            for q in range(nb):
                for l in range(ula, ulz):
                    Z[q, l] = T[ib + j, l] if bias else 0.0
            for i in range(d):
                row = j * d + i
                for q in range(nb):
                    xv = X[idx[q], i]
                    for l in range(ula, ulz):
                        Z[q, l] += T[row, l] * xv
            if act == ACT_TANH:
                for q in range(nb):
                    for l in range(ula, ulz):
                        h = tanh(Z[q, l])
                        Hs[j, q, l] = h
                        F[q, l] += T[ia + j, l] * h
            elif act == ACT_RELU:
                for q in range(nb):
                    for l in range(ula, ulz):
                        h = max(Z[q, l], 0.0)
                        Hs[j, q, l] = h
                        F[q, l] += T[ia + j, l] * h
            else:
                for q in range(nb):
                    for l in range(ula, ulz):
                        h = Z[q, l]
                        Hs[j, q, l] = h
                        F[q, l] += T[ia + j, l] * h
        for q in range(nb):
            yq = Y[idx[q]]
            for l in range(ula, ulz):
                r = s * F[q, l] - yq
                loss[l] += r * r
                R[q, l] = r * sinv
        if want_grad:
            for j in range(m):
                for q in range(nb):
                    if act == ACT_TANH:
                        for l in range(ula, ulz):
                            h = Hs[j, q, l]
                            G[ia + j, l] += R[q, l] * h
                            Z[q, l] = R[q, l] * T[ia + j, l] * (1.0 - h * h)
                    elif act == ACT_RELU:
                        for l in range(ula, ulz):
                            h = Hs[j, q, l]
                            G[ia + j, l] += R[q, l] * h
                            Z[q, l] = R[q, l] * T[ia + j, l] if h > 0.0 else 0.0
                    else:
                        for l in range(ula, ulz):
                            h = Hs[j, q, l]
                            G[ia + j, l] += R[q, l] * h
                            Z[q, l] = R[q, l] * T[ia + j, l]
                    if bias:
                        for l in range(ula, ulz):
                            G[ib + j, l] += Z[q, l]
                    for i in range(d):
                        row = j * d + i
                        xv = X[idx[q], i]
                        for l in range(ula, ulz):
                            G[row, l] += Z[q, l] * xv
    for l in range(nl):
        loss[l] *= 0.5 * inv


@jit
def hvp_lanes(X, Y, act, bias, m, s, T, V, G, HV, loss):
    """Exact Hessian-vector products (Pearlmutter's R-operator) for every lane.

    For the lane l: ``loss[l]`` = E(T[:, l]), ``G[:, l]`` = grad E, ``HV[:, l]`` = H V[:, l].
    With z = W x + b, u = R{z} = V_W x + V_b, r = s f - y, Rf = s sum_j (V_a,j phi_j +
    a_j phi'_j u_j)::

        R{dE/da_j}   = 1/P sum_p s (Rf phi_j + r phi'_j u_j)
        R{dE/dW_ji}  = 1/P sum_p s (Rf a_j phi'_j + r (V_a,j phi'_j + a_j phi''_j u_j)) x_i

    (R{dE/db_j} the same without x_i); phi'' = -2 h (1 - h^2) for tanh, 0 otherwise.
    One pass over the samples, O(P m d) per lane."""
    P, d = X.shape
    nl = T.shape[1]
    ib = m * d
    ia = ib + (m if bias else 0)
    N = T.shape[0]
    h = np.empty((m, nl))
    h1 = np.empty((m, nl))
    h2 = np.empty((m, nl))
    u = np.empty((m, nl))
    f = np.empty(nl)
    rf = np.empty(nl)
    for k in range(N):
        for l in range(nl):
            G[k, l] = 0.0
            HV[k, l] = 0.0
    for l in range(nl):
        loss[l] = 0.0
    inv = 1.0 / P
    for p in range(P):
        for l in range(nl):
            f[l] = 0.0
            rf[l] = 0.0
        for j in range(m):
            for l in range(nl):
                z = T[ib + j, l] if bias else 0.0
                uu = V[ib + j, l] if bias else 0.0
                for i in range(d):
                    z += T[j * d + i, l] * X[p, i]
                    uu += V[j * d + i, l] * X[p, i]
                if act == ACT_TANH:
                    t = tanh(z)
                    g1 = 1.0 - t * t
                    g2 = -2.0 * t * g1
                elif act == ACT_RELU:
                    t = max(z, 0.0)
                    g1 = 1.0 if z > 0.0 else 0.0
                    g2 = 0.0
                else:
                    t = z
                    g1 = 1.0
                    g2 = 0.0
                h[j, l] = t
                h1[j, l] = g1
                h2[j, l] = g2
                u[j, l] = uu
                f[l] += T[ia + j, l] * t
                rf[l] += V[ia + j, l] * t + T[ia + j, l] * g1 * uu
        for l in range(nl):
            r = s * f[l] - Y[p]
            loss[l] += r * r
            f[l] = r * s * inv  # gradient factor
            rf[l] = rf[l] * s * s * inv  # R{residual} x s / P
        for j in range(m):
            for l in range(nl):
                a = T[ia + j, l]
                G[ia + j, l] += f[l] * h[j, l]
                HV[ia + j, l] += rf[l] * h[j, l] + f[l] * h1[j, l] * u[j, l]
                gz = f[l] * a * h1[j, l]
                hz = rf[l] * a * h1[j, l] + f[l] * (V[ia + j, l] * h1[j, l]
                                                    + a * h2[j, l] * u[j, l])
                if bias:
                    G[ib + j, l] += gz
                    HV[ib + j, l] += hz
                for i in range(d):
                    G[j * d + i, l] += gz * X[p, i]
                    HV[j * d + i, l] += hz * X[p, i]
    for l in range(nl):
        loss[l] *= 0.5 * inv


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


@jit
def _sgd_step1(T, X, Y, idx, q, m, ib, ia, Hb, lre, chk, lb, act, bias, s):
    """One per-sample SGD step of the lanes lb .. lb + NET_LANES - 1 on sample idx[q]
    (:func:`.simd.net_step1`, the activation code a constant for LLVM)."""
    if act == ACT_RELU:
        net_step1(T, X, Y, idx, q, m, ib, ia, Hb, lre, chk, lb, ACT_RELU, bias, s, s)
    elif act == ACT_TANH:
        net_step1(T, X, Y, idx, q, m, ib, ia, Hb, lre, chk, lb, ACT_TANH, bias, s, s)
    else:
        net_step1(T, X, Y, idx, q, m, ib, ia, Hb, lre, chk, lb, ACT_IDENTITY, bias, s, s)


# over 80 lines, unsplit for speed: check, record and step of all lanes in one loop nest
@jit
def rows_net(X, Y, act, bias, method, widths, scales, init_off, inits, keys, lrs, beta, opt_i,
             opt_f, steps, batch, order, tol, gtol, blowup, c0, chunks, wk, nworkers, rec_every,
             out_status, out_theta, theta_off, out_loss, out_tol_at, out_div_at, out_maxloss,
             rec_loss, rec_theta, rec_off, out_v, rec_v):
    """GD (``method`` 0) or SGD (1) for the chunks wk, wk + nworkers, ... of ``chunks``.

    ``chunks`` rows: (init, lr_start, lr_stop); init ``c`` has width ``widths[c]``, output
    scale ``scales[c]`` (1/sqrt(m) or 1), parameters ``inits[init_off[c]:init_off[c+1]]``
    and sample-order key ``keys[c]``.  ``lrs`` (n_init, n_lr): the rates of init ``c`` in
    row ``c`` (a rate grid relative to each init's curvature), ``beta`` heavy-ball momentum
    (PyTorch form: buf <- beta buf + g, theta <- theta - lr buf).  ``steps``: steps (GD)
    or epochs (SGD; batches of ``batch`` in the order ``order``, the last one smaller).
    Time unit of status, recordings: steps (GD) or epochs (SGD, checked on the full loss
    at the start of each epoch).  ``gtol`` > 0 adds the gradient rule of
    :func:`lane_status` (the full-batch gradient is then computed at every check).

    The optimizer: ``opt_i`` = (code: :data:`OPT_GD` heavy ball or an adaptive method of
    :mod:`.steps`, warm-up steps, schedule code, decay steps, freeze), ``opt_f`` =
    (beta1, beta2, eps, lr_init, decay_factor).  The rate of update k (k counts updates:
    steps of GD, minibatches of SGD) follows :func:`.steps.schedule` (only when there is a
    warm-up or a decay: otherwise the rates themselves, the same bits as before); the
    adaptive steps (:func:`.kernels_adaptive.step_adaptive`: the plain loops, never the fused per-sample
    vector step) keep first and second moments per parameter and lane, and write the
    second moments where the parameters go (``out_v``, ``rec_v``; empty for heavy ball)."""
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
    adaptive = opt != OPT_GD
    scheduled = opt_i[1] > 0 or opt_i[2] != 0
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
        na = N if adaptive else 0  # the moments of the adaptive methods
        Mo = np.empty((na, nl))
        Vo = np.empty((na, nl))
        Vp = np.empty((na, nl))
        Z = np.empty((P, nl))
        F = np.empty((P, nl))
        R = np.empty((P, nl))
        # the loops' activations: only a chunk that is not whole vector blocks uses them
        Hs = np.empty((m, P, nl if nl % NET_LANES or not SIMD else 0))
        Hb = np.empty((m, NET_SAMPLES, nl))
        chk = np.empty(nl)
        ib = m * d
        ia = ib + (m if bias else 0)
        fused = (SIMD and method == METHOD_SGD and batch == 1 and beta == 0.0
                 and nl % NET_LANES == 0 and not adaptive and not scheduled)
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
            want = (method == METHOD_GD and t < steps) or gtol > 0.0
            loss_grad_lanes(X, Y, idx_all, P, act, bias, m, s, T, G, Z, F, Hs, R, Hb, lo, want)
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
            if method == METHOD_GD:
                if adaptive:
                    frozen = rates(ku, lre, active, lrt, opt, beta1, beta2, opt_i, opt_f,
                                    bias_f)
                    step_adaptive(T, Mo, Vo, G, lrt, opt, beta1, beta2, eps, bias_f[1],
                                   frozen, okp, Tp, Vp, np.bool_(True))
                elif scheduled:
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
                    for lb in range(0, nl, NET_LANES):
                        for q in range(P):
                            _sgd_step1(T, X, Y, bidx, q, m, ib, ia, Hb, lre, chk, lb, act,
                                       bias, s)
                    for l in range(nl):
                        okp[l] &= chk[l] == 0.0
                    pos = P
                while pos < P:
                    nb = min(batch, P - pos)
                    for q in range(nb):
                        bidx[q] = _sample(order, perm, k0, k1, t, pos + q, P)
                    loss_grad_lanes(X, Y, bidx, nb, act, bias, m, s, T, G, Z, F, Hs, R, Hb,
                                    bl, np.bool_(True))
                    if adaptive:
                        frozen = rates(ku, lre, active, lrt, opt, beta1, beta2, opt_i,
                                        opt_f, bias_f)
                        step_adaptive(T, Mo, Vo, G, lrt, opt, beta1, beta2, eps,
                                       bias_f[1], frozen, okp, Tp, Vp, np.bool_(False))
                    elif scheduled:
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


def grid_net(X, Y, act, bias, method, widths, scales, init_off, inits, keys, lrs, beta, opt_i,
             opt_f, steps, batch, order, tol, gtol, blowup, c0, chunks, nworkers, rec_every,
             out_status, out_theta, theta_off, out_loss, out_tol_at, out_div_at, out_maxloss,
             rec_loss, rec_theta, rec_off, out_v, rec_v):
    """Run the chunks of ``chunks`` interleaved over ``nworkers`` threads
    (:func:`.threads.fan_out`; chunk k goes to worker k % nworkers)."""
    fan_out(rows_net, (X, Y, act, bias, method, widths, scales, init_off, inits, keys, lrs,
                       beta, opt_i, opt_f, steps, batch, order, tol, gtol, blowup, c0, chunks),
            nworkers, (rec_every, out_status, out_theta, theta_off, out_loss, out_tol_at,
                       out_div_at, out_maxloss, rec_loss, rec_theta, rec_off, out_v, rec_v))
