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
``[param][lane]`` (``T[k, l]``) and every inner loop runs over lanes.  Blocks of
NET_SAMPLES samples (8, or 4 on 16-register targets; the last ones: of one) x 8 lanes
go through every hidden unit forward, then the residuals, then every unit backward, in
vector registers (:func:`.simd.net_block`); a single run (one lane) takes the loops: for
unit j, its pre-activations for all samples (``Z[q, l]``), then phi, stored for the
backward pass (``Hs[j, q, l]``); residuals; then per unit the gradient from the stored
activations (phi' from phi: 1 - h^2 for tanh, h > 0 for relu).  Both sum in the same order (same bits).  Per-sample SGD without
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

The chunk kernel (:func:`.kernels_rows.rows_kernel`, one compiled variant per method,
optimizer mode and activation) writes its outputs flat over cells k = init * n_lr + lr
index: ``out_status[k]``,
``out_loss[k]``, ``out_tol_at[k]``, ``out_div_at[k]``, ``out_maxloss[k]`` (max of the loss
over the checked iterates; ``inf`` when diverged), final parameters
``out_theta[theta_off[k] : theta_off[k] + N]``; recordings ``rec_loss[k, t]`` (zero-length
second axis: off) and, every ``rec_every`` steps (0: off), the parameters
``rec_theta[rec_off[k] + (t // rec_every) N + n]`` (``rec_off`` has n_cells + 1
entries; ``theta_off`` too).
"""

import numba
import numpy as np

from fastgd.kernels.fmath import tanh
from fastgd.kernels.jit import jit
from fastgd.kernels.simd import NET_SAMPLES, NET_VECTORS, net_block, net_block1

#: the vector-code blocks (.simd) are not used under NUMBA_DISABLE_JIT (plain Python)
SIMD = not numba.config.DISABLE_JIT
NET_LANES = NET_VECTORS * 4  # float64 lanes per vector block

ACT_IDENTITY = 0
ACT_TANH = 1
ACT_RELU = 2

METHOD_GD = 0
METHOD_SGD = 1


@jit
def pack_blocks(X, idx, q0, S, Xp):
    """The inputs of samples ``idx[:q0]`` in blocks of S, packed for :func:`.simd.net_block`:
    ``Xp[q d + i S + k] = X[idx[q + k], i]`` for q = 0, S, ..., q0 - S (``Xp`` of length at
    least q0 d; nothing written when it is empty).

    Examples
    --------
    >>> import numpy as np
    >>> from fastgd.net.kernels import pack_blocks
    >>> X, Xp = np.arange(6.0).reshape(3, 2), np.empty(4)
    >>> pack_blocks(X, np.array([2, 0, 1]), 2, 2, Xp)   # one block: samples 2 and 0
    >>> Xp.tolist()
    [4.0, 0.0, 5.0, 1.0]
    """
    d = X.shape[1]
    if Xp.shape[0] == 0:
        return
    for q in range(0, q0, S):
        for i in range(d):
            for k in range(S):
                Xp[q * d + i * S + k] = X[idx[q + k], i]


def _loss_grad(ACT):
    """A new dispatcher of :func:`loss_grad_lanes` for the activation code ``ACT``: a
    closure constant, so that Numba prunes the other activations' code before typing it
    (a relu run compiles no tanh) and the disk cache keys the variant on it."""
    TANH = ACT == ACT_TANH
    RELU = ACT == ACT_RELU

    # over 80 lines, unsplit for speed: forward, residual, backward in one pass
    @jit(variant=f"A{ACT}")
    def loss_grad_lanes(X, Y, idx, nb, bias, m, s, T, G, Z, F, Hs, R, Hb, loss, want_grad):
        """Loss (and with ``want_grad`` its gradient) over the samples ``idx[:nb]`` for every lane.

        ``loss[l] = 1/(2 nb) sum_q (s f(x_q) - y_q)^2`` and ``G[:, l]`` its gradient w.r.t. the
        flat parameters ``T[:, l]`` (module doc).  Scratch: ``Z``, ``F``, ``R`` (>= nb, nl),
        ``Hs`` (m, >= nb, nl), ``Hb`` (m, NET_SAMPLES, >= NET_LANES).

        Blocks of NET_SAMPLES samples x NET_LANES lanes run forward, residual and backward
        through every hidden unit as LLVM vector code (:func:`.simd.net_block`; their inputs
        packed once per call, :func:`pack_blocks`), their
        activations in the small scratch Hb, and the samples after the last whole block in
        blocks of one (``net_block1``); lanes after the last whole block of lanes (a single
        run: its one lane) take the loops below, two passes over the units with the
        activations in Hs.  Every sum is taken in the same order either way.

        With several vector blocks of lanes, each runs on a contiguous copy of its
        parameters and gradient (in place, a parameter's lanes lie nl apart and the
        block's rows share a few cache sets): one call, 32 lanes, min of 6 alternating
        runs, 178 -> 148 us at m = 64 and 2422 -> 1395 us at m = 512 (a chunk of one
        block, already contiguous, is used in place)."""
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
        Xp = np.empty(q0 * d if l0 > 0 else 0)
        pack_blocks(X, idx, q0, NET_SAMPLES, Xp)
        NP = T.shape[0]
        cp = l0 > NET_LANES  # several vector blocks: each on a contiguous copy
        nc = NET_LANES if cp else 0
        Tc = np.empty((NP, nc))
        Gc = np.empty((NP, nc if want_grad else 0))
        lc = np.empty(nc)
        for lb in range(0, l0, NET_LANES):
            Tb, Gb, Lb, o = T, G, loss, lb
            if cp:
                for k in range(NP):
                    for l in range(NET_LANES):
                        Tc[k, l] = T[k, lb + l]
                if want_grad:
                    for k in range(NP):
                        for l in range(NET_LANES):
                            Gc[k, l] = 0.0
                for l in range(NET_LANES):
                    lc[l] = 0.0
                Tb, Gb, Lb, o = Tc, Gc, lc, 0
            for q in range(0, q0, NET_SAMPLES):
                net_block(Tb, X, Xp, Y, idx, q, m, ib, ia, Hb, Gb, Lb, o, ACT, bias, s, sinv,
                          want_grad)
            for q in range(q0, nb):
                net_block1(Tb, X, Y, idx, q, m, ib, ia, Hb, Gb, Lb, o, ACT, bias, s, sinv,
                           want_grad)
            if cp:
                if want_grad:
                    for k in range(NP):
                        for l in range(NET_LANES):
                            G[k, lb + l] = Gc[k, l]
                for l in range(NET_LANES):
                    loss[lb + l] = lc[l]
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
                if TANH:
                    for q in range(nb):
                        for l in range(ula, ulz):
                            h = tanh(Z[q, l])
                            Hs[j, q, l] = h
                            F[q, l] += T[ia + j, l] * h
                elif RELU:
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
                        if TANH:
                            for l in range(ula, ulz):
                                h = Hs[j, q, l]
                                G[ia + j, l] += R[q, l] * h
                                Z[q, l] = R[q, l] * T[ia + j, l] * (1.0 - h * h)
                        elif RELU:
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

    return loss_grad_lanes


#: the loss and gradient of every lane, one variant per activation (:func:`_loss_grad`;
#: the chunk kernels call them by these names: a dispatcher in a closure would defeat
#: Numba's disk cache)
loss_grad_identity = _loss_grad(ACT_IDENTITY)
loss_grad_tanh = _loss_grad(ACT_TANH)
loss_grad_relu = _loss_grad(ACT_RELU)


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
