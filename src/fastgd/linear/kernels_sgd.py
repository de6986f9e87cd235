"""Per-sample and minibatch SGD chunk kernels of the linear unit (:func:`sgd_kernel`).

Both layouts of :mod:`fastgd.linear.kernels`: the register layout (d compiled in, blocks
of lanes whose weights stay in registers for the epoch,
:func:`fastgd.linear.kernels_plain.register_block`) and the streaming layout (any d, the
weights streamed through the cache, per-sample steps in blocks of four samples,
:mod:`fastgd.linear.kernels_stream`),
with the per-epoch status check (:func:`_excess` where a lane may change state, else the
O(d) bounds of :func:`_quiet`).
"""

import numpy as np

from fastgd.kernels import (
    BOUNDED,
    CONVERGED,
    DIVERGED,
    ORDER_CYCLIC,
    ORDER_REPLACEMENT,
    ORDER_SHUFFLE,
)
from fastgd.kernels.fpenv import fpenv_restore, ftz_on
from fastgd.kernels.jit import jit
from fastgd.kernels.rng import hash4, permutation, randbelow
from fastgd.kernels.simd import fused_madd, lanes_per_block, sgd_lanes
from fastgd.kernels.simd_stream import STREAM_VECTORS, VECTOR_BYTES
from fastgd.kernels.steps import check, heavy_ball, thresholds
from fastgd.linear.kernels_lanes import (
    SIMD,
    _flush,
    _log_norm,
    _renorm,
    _stop,
    row_dot_add,
    rows_grad,
)
from fastgd.linear.kernels_plain import register_block, register_lanes
from fastgd.linear.kernels_stream import _block4, _stream_blocks

#: d whose register blocks run the hand-written vector code (:func:`fastgd.kernels.simd.sgd_lanes`):
#: faster than the plain-Numba blocks by more than 5 % (bench/test_bench_layouts.py,
#: rows d=4 ``ir_over_plain``); every other d <= REGISTER_MAX_D runs the plain blocks
REGISTER_IR_D = (3, 4)


@jit
def _excess(R, di, wstar, w, e, g, ex, lo, hi):
    """e = w - w*, g = R e and ex = |g|^2 / 2 for lanes lo..hi-1 (R is R[di], R^T R = H):
    the excess loss as a sum of squares, never negative, and accurate where e^T H e is
    not (R keeps the small singular values of X)."""
    d = w.shape[0]
    ulo = np.uint64(lo)  # unsigned: no negative-index wraparound in the vector loops
    uhi = np.uint64(hi)
    for i in range(d):
        for l in range(ulo, uhi):
            e[i, l] = w[i, l] - wstar[di, i]
    for l in range(ulo, uhi):
        ex[l] = 0.0
    for i in range(d):
        for l in range(ulo, uhi):
            g[i, l] = 0.0
        for j in range(d):
            rij = R[di, i, j]
            for l in range(ulo, uhi):
                g[i, l] += rij * e[j, l]
        for l in range(ulo, uhi):
            ex[l] += g[i, l] * g[i, l]
    for l in range(ulo, uhi):
        ex[l] *= 0.5


@jit
def _quiet(wstar, di, w, n2, bounds, thc, thd, active, lo, hi):
    """Whether no active lane among lo..hi-1 can change state at this check, from
    n2 = |w - w*|^2 alone (O(d) per lane instead of the O(d^2) excess): the excess lies
    in [lam_lo n2 / 2, lam_hi n2 / 2] with ``bounds[di] = (lam_lo, lam_hi)`` the extreme
    eigenvalues of H with safety margins (:func:`fastgd.linear.table.lam_bounds`), so a lane whose
    interval lies below the divergence threshold and above the tolerance keeps going;
    non-finite or NaN n2 is never quiet."""
    d = w.shape[0]
    ulo = np.uint64(lo)
    uhi = np.uint64(hi)
    for l in range(ulo, uhi):
        n2[l] = 0.0
    for i in range(d):
        ws = wstar[di, i]
        for l in range(ulo, uhi):
            t = w[i, l] - ws
            n2[l] += t * t
    blo = 0.5 * bounds[di, 0]
    bhi = 0.5 * bounds[di, 1]
    loud = 0
    for l in range(ulo, uhi):
        x = n2[l]
        calm = (x < np.inf) & (bhi * x <= thd[l]) & (blo * x > thc[l])
        loud += active[l] & (not calm)
    return loud == 0


def sgd_kernel(D, FULL, BLOCK=1, IR=None):
    """The SGD chunk kernel for one layout (:mod:`fastgd.linear.kernels`).

    Parameters
    ----------
    D : int
        d compiled in (register layout, 1 <= D <= ``REGISTER_MAX_D``), or 0: any d
        (streaming layout).
    FULL : bool
        Compile in minibatches, heavy-ball / Nesterov momentum and renormalisation;
        False: plain per-sample SGD only (compiles faster).
    BLOCK : int
        4 (streaming layout, per-sample steps): blocks of four samples with their Gram
        entries (:mod:`fastgd.linear.kernels_stream`); 1: every sample on its own (exact per-sample
        arithmetic, equal bit for bit to the register layout).
    IR : bool, optional
        Register layout: run the blocks of lanes as the hand-written vector code
        (:func:`fastgd.kernels.simd.sgd_lanes`, d in ``REGISTER_IR_D`` only) or as plain
        Numba (:func:`fastgd.linear.kernels_plain.register_block`); default (None): the
        vector code exactly for d in ``REGISTER_IR_D`` (benchmarks compare the two).
        Streaming layout with ``BLOCK`` 4: False runs every lane in ``_block4``
        instead of vector blocks of :func:`fastgd.kernels.simd_stream.stream4_lanes`
        (the same bits; benchmarks compare the two; the default compiles no _block4).

    Returns
    -------
    numba dispatcher
        ``sgd_rows(X, y, Ps, R, bounds, wstar, estar, c0, lr, beta, nesterov, w0, epochs,
        batch, order, keys, tol, blowup, renorm, chunks, wk, nworkers, rec_every,
        *outputs)``, compiled on its first call (the loss E = 1/(2P) sum_p (y_p - w.x_p)^2,
        time unit: epochs).

    Examples
    --------
    >>> from fastgd.linear.kernels import sgd_kernel
    >>> kernel = sgd_kernel(2, False)  # compiled on its first call, not here
    >>> callable(kernel)
    True
    """
    REG = D > 0  # a closure constant: only one layout's loops are compiled
    VEC = (D in REGISTER_IR_D) if IR is None else bool(IR) and D in REGISTER_IR_D
    LB = register_lanes(D) if REG else 1  # lanes per register block (plain Numba)
    NW = D * LB if REG else 1  # weights per register block
    NB64 = lanes_per_block(D, 8) if VEC else 0  # lanes per vector-code block, float64
    NB32 = lanes_per_block(D, 4) if VEC else 0  # float32
    # streaming layout, blocks of four samples: whole vector blocks of lanes as the
    # hand-written vector code (:func:`.simd_stream.stream4_lanes`) unless IR is False
    SVEC = SIMD and not REG and BLOCK == 4 and IR is not False

    # over 80 lines, unsplit for speed: an epoch's check, record and steps in one loop nest
    @jit(variant=f"D{D}_F{int(FULL)}_B{BLOCK}_I{IR}")
    def sgd_rows(X, y, Ps, R, bounds, wstar, estar, c0, lr, beta, nesterov, w0, epochs, batch,
                 order, keys, tol, blowup, renorm, chunks, wk, nworkers, rec_every,
                 out_status, out_w, out_loss, out_excess, out_tol_at, out_div_at, out_logg,
                 rec_loss, rec_w):
        """Per-sample / minibatch SGD: worker ``wk`` of ``nworkers`` runs chunks wk,
        wk + nworkers, ... (rows: data di, seed si, lr_start a, lr_stop b), each the
        lanes lr[a:b] on the first P = Ps[di] rows of dataset di with the key
        ``keys[si]``, flush-to-zero on for the call (:mod:`fastgd.kernels.fpenv`).

        Each epoch visits P samples in batches of ``batch`` (the last one smaller when
        B does not divide P), in the order ``order`` (cyclic / shuffle / replacement)
        drawn from the counter-based hash keyed by keys[si]: every lane of the chunk sees
        the same samples.  Per sample: r = lr (w.x - y), w <- w - r x.  Per batch
        (``FULL``): g = (1/nb) sum_p (w.x_p - y_p) x_p, then the momentum step of
        :func:`fastgd.kernels.steps.heavy_ball`.  Status is checked once per epoch (time unit:
        epochs).  ``renorm > 0`` rescales (w - w*, buf) to unit norm every ``renorm``
        epochs (noise-free labels, blowup = inf: the growth rate of the random product).
        """
        old = ftz_on()
        dt = X.dtype
        for ck in range(wk, chunks.shape[0], nworkers):
            di = chunks[ck, 0]
            si = chunks[ck, 1]
            a = chunks[ck, 2]
            nl = chunks[ck, 3] - a
            P = Ps[di]
            k0 = keys[si, 0]
            k1 = keys[si, 1]
            d = D if D > 0 else X.shape[2]
            # np.empty only, filled below: each distinct np.zeros / np.ones signature
            # adds compile time on a cold cache
            w = np.empty((d, nl), dt)
            e = np.empty((d, nl), dt)
            g = np.empty((d, nl), dt)
            buf = np.empty((d, nl), dt)
            wok = np.empty((d, nl), dt)  # each lane's last finite iterate (epoch start)
            wfin = np.empty((d, nl), dt)  # each lane's final weights, written at its end
            fst = np.empty(nl, np.int64)
            ft = np.empty(nl, np.int64)
            floss = np.empty(nl, dt)
            fex = np.empty(nl, dt)
            r = np.empty(nl, dt)
            sb = np.empty((4, nl), dt)  # BLOCK = 4: the block's dot products, then steps
            U4 = np.empty((4, nl), dt)  # minibatches: four samples' residuals
            n2 = np.empty(nl, dt)
            ex = np.empty(nl, dt)
            lre = np.empty(nl, dt)
            bet = np.empty(nl, dt)
            thc = np.empty(nl, dt)
            thd = np.empty(nl, dt)
            logg = np.empty(nl, dt)
            active = np.empty(nl, np.bool_)
            perm = np.empty(P, np.int64)  # the epoch's sample order (cyclic: 0..P-1)
            # the streaming vector blocks' scratch, once per chunk (kernels_stream.
            # _stream_blocks: allocated per epoch it page-faulted on worker threads)
            nsv = STREAM_VECTORS * (VECTOR_BYTES // X.itemsize) if SVEC else 0
            Xp = np.empty(P * d if SVEC else 0, dt)
            gr = np.empty((P // 4 if SVEC else 0, 6), dt)
            wt = np.empty((d, nsv), dt)
            rt = np.empty(nsv, dt)
            packed = False  # Xp and gr hold the cyclic order's blocks
            zz = np.empty(1, dt)
            zz[0] = 0.0
            zero = zz[0]  # 0 in the data's precision (float32 runs stay float32)
            for q in range(P):
                perm[q] = q
            # lr: one grid for all datasets, or one per dataset (rows of n_lr = beta's
            # length, C order: lr_unit="eta_max")
            off = a + di * beta.shape[0] if lr.shape[0] != beta.shape[0] else a
            mom = False
            for l in range(nl):
                logg[l] = 0.0
                active[l] = True
                lre[l] = lr[off + l]
                bet[l] = beta[a + l]
                mom |= bet[l] != 0.0
            for i in range(d):
                for l in range(nl):
                    w[i, l] = w0[i]
                    wok[i, l] = w0[i]
                    buf[i, l] = 0.0
            es = estar[di]
            # every lane starts at w0: the initial excess once (O(d^2)), the same bits
            # for every lane (e and g are scratch, recomputed before any use)
            _excess(R, di, wstar, w, e, g, ex, np.int64(0), np.int64(1))
            for l in range(1, nl):
                ex[l] = ex[0]
            for l in range(nl):
                thc[l], thd[l] = thresholds(es, ex[l], c0[di], tol, blowup)
            per_sample = batch == 1 and not mom
            nact = nl
            # Every active lane lies in [llo, lhi): the per-sample loops run over
            # [llo4, lhi) only, llo4 = llo rounded down to a multiple of 4 (aligned
            # vectors).  Lanes outside are finished (rate 0, results already taken).  On
            # a learning-rate axis the diverged lanes are the last ones, so lhi drops as
            # they diverge.  These loops index with uint64: with a signed start that LLVM
            # cannot prove >= 0, Numba's negative-index wraparound kept them scalar.
            llo = 0
            lhi = nl
            llo4 = 0
            nrec = rec_loss.shape[3]
            ep = 0
            for ep in range(epochs + 1):
                # the exact excess where a lane may change state, for records and at the
                # end; else the O(d) bounds of _quiet stand for it
                exact = True
                if ep > 0:
                    if nrec == 0 and ep < epochs and not (FULL and renorm > 0):
                        exact = not _quiet(wstar, di, w, n2, bounds, thc, thd, active,
                                           np.int64(llo4), np.int64(lhi))
                    if exact:
                        _excess(R, di, wstar, w, e, g, ex, np.int64(llo4), np.int64(lhi))
                    if FULL and renorm > 0 and ep % renorm == 0:
                        for l in range(nl):
                            if not active[l]:
                                continue
                            if _renorm(l, e, buf, logg):
                                for i in range(d):
                                    w[i, l] = wstar[di, i] + e[i, l]
                            else:  # exactly 0 (converged) or overflowed (diverged)
                                st = CONVERGED if logg[l] < 0 else DIVERGED
                                _stop(l, np.int64(st), np.int64(ep), 0.0, es,
                                      wok, wfin, fst, ft, floss, fex)
                                active[l] = False
                                lre[l] = 0.0
                                nact -= 1
                        _excess(R, di, wstar, w, e, g, ex, np.int64(llo4), np.int64(lhi))
                ev = 0
                if exact:
                    for l in range(llo4, lhi):
                        ev += active[l] & (check(ex[l], thc[l], thd[l]) != 0)
                if ev > 0:
                    for l in range(llo4, lhi):
                        st = check(ex[l], thc[l], thd[l])
                        if not active[l] or st == 0:
                            continue
                        fin = ex[l] < np.inf
                        _stop(l, np.int64(st), np.int64(ep), ex[l], es,
                              w if fin else wok, wfin, fst, ft,
                              floss, fex)
                        active[l] = False
                        lre[l] = 0.0
                        nact -= 1
                        if st == DIVERGED:  # park the lane at w*: no inf/NaN carried along
                            for i in range(d):
                                w[i, l] = wstar[di, i]
                                buf[i, l] = 0.0
                    while llo < lhi and not active[llo]:
                        llo += 1
                    while lhi > llo and not active[lhi - 1]:
                        lhi -= 1
                    llo4 = llo - llo % 4
                if nact == 0:
                    break
                if nrec > 0 and ep % rec_every == 0:
                    k = ep // rec_every
                    for l in range(nl):
                        if active[l]:
                            rec_loss[di, si, a + l, k] = es + ex[l]
                            if rec_w.shape[3] > 0:
                                for i in range(d):
                                    rec_w[di, si, a + l, k, i] = w[i, l]
                if ep == epochs:
                    break
                lo = np.uint64(llo4)
                hi = np.uint64(lhi)
                # (uint64: with the signed bounds this copy compiled to gathers and
                # scatters, 9 % of a d = 30 sweep's kernel time)
                for i in range(d):
                    for l in range(lo, hi):
                        wok[i, l] = w[i, l] if (ex[l] < np.inf) | (not exact) else wok[i, l]
                if order == ORDER_SHUFFLE:
                    permutation(k0, k1, ep, perm)
                elif order == ORDER_REPLACEMENT:
                    for q in range(P):
                        perm[q] = randbelow(hash4(k0, k1, ep, q), P)
                if per_sample:
                    if REG:
                        # register layout: blocks of LB lanes whose weights stay in
                        # registers for the epoch (kernels_plain.register_block, or the
                        # vector code of simd.sgd_lanes at d in REGISTER_IR_D), the
                        # lanes left over in a vectorised pass over them per sample.
                        # s = w.x accumulates from 0.0 in component order, as below: each
                        # product then meets a sum, never another product, so LLVM's
                        # contraction fuses the same multiply into each add in every
                        # layout
                        b = llo4
                        if SIMD and VEC:  # REGISTER_IR_D: the vector code is faster
                            nb = NB64 if w.itemsize == 8 else NB32
                            while b + nb <= lhi:
                                sgd_lanes(w, lre, X, y, perm, di, b, P, D)
                                b += nb
                        elif SIMD:
                            while b + LB <= lhi:
                                register_block(w, lre, X, y, perm, di, b, P, zero, D, LB, NW)
                                b += LB
                        for q in range(P):
                            p = perm[q]
                            yp = y[di, p]
                            for l in range(np.uint64(b), hi):
                                s = zero
                                for i in range(d):
                                    s += w[i, l] * X[di, p, i]
                                c = lre[l] * (s - yp)
                                for i in range(d):
                                    w[i, l] -= c * X[di, p, i]
                    else:
                        q0 = 0
                        if BLOCK == 4:  # four samples per pass over the weights
                            q0 = P - P % 4
                            if SVEC:  # vector blocks of lanes, the epoch's blocks of
                                # samples with the dot products in registers
                                pack = order != ORDER_CYCLIC or not packed
                                _stream_blocks(X, y, di, perm, q0, w, lre, lo, hi, zero,
                                               pack, Xp, gr, wt, rt)
                                packed |= lo < hi  # (it packs where it runs a block)
                            elif lo < hi:  # plain Numba (IR=False; no SIMD)
                                for q in range(0, q0, 4):
                                    _block4(X, y, di, perm, q, w, sb, lre, lo, hi, zero)
                        # streaming layout, sample by sample (exact=True, the last P % 4
                        # samples of BLOCK = 4, renormalised runs): the same multiply-adds
                        # as the register layout
                        for q in range(q0, P):
                            p = perm[q]
                            for l in range(lo, hi):
                                r[l] = 0.0 + w[0, l] * X[di, p, 0]
                            for i in range(1, d):
                                xi = X[di, p, i]
                                for l in range(lo, hi):
                                    r[l] += w[i, l] * xi
                            yp = y[di, p]
                            for l in range(lo, hi):
                                r[l] = lre[l] * (r[l] - yp)
                            for i in range(d):
                                xi = X[di, p, i]
                                for l in range(lo, hi):
                                    w[i, l] -= r[l] * xi
                elif FULL and SIMD and batch == 1 and w.itemsize == 8:  # per-sample momentum
                    # (float64): the gradient x_p (w.x_p - y_p) applied as it is formed, no
                    # g array: two passes over the lanes' weights per sample instead of
                    # five.  The bits of the g-array loops below (tested): there LLVM fused
                    # g * (1/nb) into heavy ball's buffer update (beta buf rounded, then +
                    # g) and beta buf into Nesterov's; fused_madd pins both, where
                    # contraction would fuse x_p's product instead.  float32 keeps the
                    # loops (they add g * (1/nb) in float64).
                    for q in range(P):
                        p = perm[q]
                        for l in range(nl):
                            U4[0, l] = 0.0
                        row_dot_add(X[di, p], w, U4, 0)
                        yp = y[di, p]
                        for l in range(nl):
                            U4[0, l] = U4[0, l] - yp
                        for i in range(d):
                            xi = X[di, p, i]
                            for l in range(np.uint64(nl)):
                                gi = zero + xi * U4[0, l]
                                if nesterov:
                                    bf = fused_madd(bet[l], buf[i, l], gi)
                                    w[i, l] = w[i, l] - lre[l] * fused_madd(bet[l], bf, gi)
                                else:  # (beta buf rounded, then + g: as heavy_ball did)
                                    bf = fused_madd(bet[l], buf[i, l], zero) + gi
                                    w[i, l] = w[i, l] - lre[l] * bf
                                buf[i, l] = bf
                elif FULL:  # minibatches (and their momentum)
                    pos = 0
                    while pos < P:
                        nb = min(batch, P - pos)
                        for i in range(d):
                            for l in range(nl):
                                g[i, l] = 0.0
                        # g = sum_q (w.x_q - y_q) x_q over the batch's samples in order
                        rows_grad(X[di], perm[pos:pos + nb], nb, w, U4, g, r, y[di], True)
                        inv = 1.0 / nb
                        if not mom:
                            for i in range(d):
                                for l in range(nl):
                                    w[i, l] -= lre[l] * (g[i, l] * inv)
                        else:
                            for i in range(d):
                                for l in range(nl):
                                    w[i, l], buf[i, l] = heavy_ball(w[i, l], g[i, l] * inv,
                                                                    buf[i, l], lre[l], bet[l],
                                                                    nesterov)
                        pos += nb
            for l in range(nl):
                if active[l]:
                    if FULL and renorm > 0:
                        logg[l] += _log_norm(e, buf, l)
                    _stop(l, np.int64(BOUNDED), np.int64(ep), ex[l], es,
                          w, wfin, fst, ft, floss, fex)
            _flush(a, di, si, fst, ft, floss, fex, wfin, logg, out_status, out_w, out_loss,
                   out_excess, out_tol_at, out_div_at, out_logg, rec_every, rec_loss, rec_w)
        fpenv_restore(old)

    return sgd_rows
