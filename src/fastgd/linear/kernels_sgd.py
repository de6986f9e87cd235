"""Per-sample and minibatch SGD chunk kernels of the linear unit (:func:`sgd_kernel`).

Both layouts of :mod:`fastgd.linear.kernels`: the register layout (d compiled in, blocks
of lanes whose weights stay in registers for the epoch,
:func:`fastgd.linear.kernels_plain.register_block`) and the streaming layout (any d, the
weights streamed through the cache, per-sample steps in blocks of four samples: whole
vector blocks of lanes as :func:`fastgd.kernels.simd_stream.stream4_lanes`, the lanes over in
:func:`_block4`),
with the per-epoch status check (:func:`_excess` where a lane may change state, else the
O(d) bounds of :func:`_quiet`).
"""

import numpy as np

from fastgd.kernels import BOUNDED, CONVERGED, DIVERGED, ORDER_REPLACEMENT, ORDER_SHUFFLE
from fastgd.kernels.fpenv import fpenv_restore, ftz_on
from fastgd.kernels.jit import jit
from fastgd.kernels.rng import hash4, permutation, randbelow
from fastgd.kernels.simd import lanes_per_block, sgd_lanes
from fastgd.kernels.simd_stream import STREAM_VECTORS, stream4_lanes
from fastgd.kernels.steps import check, heavy_ball, thresholds
from fastgd.linear.kernels_lanes import SIMD, _flush, _log_norm, _renorm, _stop
from fastgd.linear.kernels_plain import register_block, register_lanes

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


@jit
def _gram4(X, di, p0, p1, p2, p3, zero):
    """The Gram entries (G01, G02, G03, G12, G13, G23) of samples p0..p3 of dataset
    di, G_mj = x_m.x_j summed in component order from ``zero`` (0 in the data's
    precision: float32 runs stay float32 throughout)."""
    d = X.shape[2]
    g01 = zero
    g02 = zero
    g03 = zero
    g12 = zero
    g13 = zero
    g23 = zero
    for i in range(d):
        a = X[di, p0, i]
        b = X[di, p1, i]
        c = X[di, p2, i]
        e = X[di, p3, i]
        g01 += a * b
        g02 += a * c
        g03 += a * e
        g12 += b * c
        g13 += b * e
        g23 += c * e
    return g01, g02, g03, g12, g13, g23


# over 80 lines, unsplit: packing, Gram entries and the vector blocks in one compiled
# function (each jitted function costs a cold start about 0.3 s more)
@jit
def _stream_blocks(X, y, di, perm, q0, w, lre, lo, hi, zero):
    """The epoch's blocks of four samples perm[0:q0] of dataset di for the whole vector
    blocks of lanes from ``lo`` up to ``hi`` (:func:`.simd_stream.stream4_lanes`);
    returns the first lane left over (for :func:`_block4`).

    The samples are packed once per epoch, ``Xp[q d + 4 i + k]`` = x_i of sample
    perm[q + k] (the vector code reads them from one pointer), with each block's Gram
    entries ``gr[q // 4]`` = (G01, G02, G03, G12, G13, G23), G_mj = x_m.x_j summed in
    component order from ``zero`` as :func:`_block4` sums them.  Each vector block runs
    on a contiguous copy ``wt`` of its weights and ``rt`` of its rates: in place, its d
    rows lie nl lanes apart and share a few cache sets (2 threads ran 0.7x slower at
    d = 30 and 100)."""
    d = w.shape[0]
    dt = X.dtype
    n8 = STREAM_VECTORS * (32 // X.itemsize)  # lanes per vector block
    nv = np.uint64(n8)
    if lo + nv > hi:
        return lo
    Xp = np.empty(q0 * d, dt)
    gr = np.empty((q0 // 4, 6), dt)
    wt = np.empty((d, n8), dt)
    rt = np.empty(n8, dt)
    for q in range(0, q0, 4):
        p0 = perm[q]
        p1 = perm[q + 1]
        p2 = perm[q + 2]
        p3 = perm[q + 3]
        g01, g02, g03, g12, g13, g23 = _gram4(X, di, p0, p1, p2, p3, zero)
        kb = q // 4
        gr[kb, 0] = g01
        gr[kb, 1] = g02
        gr[kb, 2] = g03
        gr[kb, 3] = g12
        gr[kb, 4] = g13
        gr[kb, 5] = g23
        for i in range(d):
            Xp[q * d + 4 * i] = X[di, p0, i]
            Xp[q * d + 4 * i + 1] = X[di, p1, i]
            Xp[q * d + 4 * i + 2] = X[di, p2, i]
            Xp[q * d + 4 * i + 3] = X[di, p3, i]
    lv = lo
    while lv + nv <= hi:
        for i in range(d):
            for l in range(nv):
                wt[i, l] = w[i, lv + l]
        for l in range(nv):
            rt[l] = lre[lv + l]
        stream4_lanes(wt, rt, Xp, y, perm, gr, di, np.uint64(0), q0)
        for i in range(d):
            for l in range(nv):
                w[i, lv + l] = wt[i, l]
        lv += nv
    return lv


# over 80 lines, unsplit for speed: dot products and steps of four samples
@jit
def _block4(X, y, di, perm, q, w, sb, lre, lo, hi, zero):
    """Four per-sample steps (samples perm[q : q + 4]) for lanes lo..hi-1 in two passes
    over the weights instead of eight.  With s_j = w.x_j at the block's start and the
    Gram entries G_mj = x_m.x_j, the sequential steps are, exactly in real arithmetic,

        r_j = lr (s_j - y_j - sum_{m<j} r_m G_mj),    w <- w - sum_j r_j x_j.

    The steps apply sample by sample per component, so only the dot products round
    differently from the per-sample loop (agreement ~1e-15 relative away from the
    boundary, tested); the streaming layout's default for d > 8 (``exact=False``), for
    the lanes after the last whole vector block of :func:`_stream_blocks` (the same
    operations in the same order: the same bits)."""
    d = w.shape[0]
    p0 = perm[q]
    p1 = perm[q + 1]
    p2 = perm[q + 2]
    p3 = perm[q + 3]
    g01, g02, g03, g12, g13, g23 = _gram4(X, di, p0, p1, p2, p3, zero)
    ulo = np.uint64(lo)
    for l in range(ulo, hi):
        sb[0, l] = 0.0
        sb[1, l] = 0.0
        sb[2, l] = 0.0
        sb[3, l] = 0.0
    # s_j = w.x_j accumulated in component order (each product meets a sum: one fused
    # multiply-add each), four components x four samples per pass over the lanes
    i = 0
    while i + 4 <= d:
        a0 = X[di, p0, i]
        a1 = X[di, p0, i + 1]
        a2 = X[di, p0, i + 2]
        a3 = X[di, p0, i + 3]
        b0 = X[di, p1, i]
        b1 = X[di, p1, i + 1]
        b2 = X[di, p1, i + 2]
        b3 = X[di, p1, i + 3]
        c0 = X[di, p2, i]
        c1 = X[di, p2, i + 1]
        c2 = X[di, p2, i + 2]
        c3 = X[di, p2, i + 3]
        e0 = X[di, p3, i]
        e1 = X[di, p3, i + 1]
        e2 = X[di, p3, i + 2]
        e3 = X[di, p3, i + 3]
        for l in range(ulo, hi):
            u0 = w[i, l]
            u1 = w[i + 1, l]
            u2 = w[i + 2, l]
            u3 = w[i + 3, l]
            t = sb[0, l]
            t += u0 * a0
            t += u1 * a1
            t += u2 * a2
            t += u3 * a3
            sb[0, l] = t
            t = sb[1, l]
            t += u0 * b0
            t += u1 * b1
            t += u2 * b2
            t += u3 * b3
            sb[1, l] = t
            t = sb[2, l]
            t += u0 * c0
            t += u1 * c1
            t += u2 * c2
            t += u3 * c3
            sb[2, l] = t
            t = sb[3, l]
            t += u0 * e0
            t += u1 * e1
            t += u2 * e2
            t += u3 * e3
            sb[3, l] = t
        i += 4
    while i < d:
        a0 = X[di, p0, i]
        b0 = X[di, p1, i]
        c0 = X[di, p2, i]
        e0 = X[di, p3, i]
        for l in range(ulo, hi):
            u0 = w[i, l]
            sb[0, l] += u0 * a0
            sb[1, l] += u0 * b0
            sb[2, l] += u0 * c0
            sb[3, l] += u0 * e0
        i += 1
    y0 = y[di, p0]
    y1 = y[di, p1]
    y2 = y[di, p2]
    y3 = y[di, p3]
    for l in range(ulo, hi):
        lr = lre[l]
        r0 = lr * (sb[0, l] - y0)
        r1 = lr * ((sb[1, l] - y1) - r0 * g01)
        r2 = lr * (((sb[2, l] - y2) - r0 * g02) - r1 * g12)
        r3 = lr * ((((sb[3, l] - y3) - r0 * g03) - r1 * g13) - r2 * g23)
        sb[0, l] = r0
        sb[1, l] = r1
        sb[2, l] = r2
        sb[3, l] = r3
    # w <- w - r_0 x_0 - r_1 x_1 - r_2 x_2 - r_3 x_3, in that order
    for i in range(d):
        a0 = X[di, p0, i]
        b0 = X[di, p1, i]
        c0 = X[di, p2, i]
        e0 = X[di, p3, i]
        for l in range(ulo, hi):
            u = w[i, l]
            u -= sb[0, l] * a0
            u -= sb[1, l] * b0
            u -= sb[2, l] * c0
            u -= sb[3, l] * e0
            w[i, l] = u


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
        entries (:func:`_block4`); 1: every sample on its own (exact per-sample
        arithmetic, equal bit for bit to the register layout).
    IR : bool, optional
        Register layout: run the blocks of lanes as the hand-written vector code
        (:func:`fastgd.kernels.simd.sgd_lanes`, d in ``REGISTER_IR_D`` only) or as plain
        Numba (:func:`fastgd.linear.kernels_plain.register_block`); default (None): the
        vector code exactly for d in ``REGISTER_IR_D`` (benchmarks compare the two).
        Streaming layout with ``BLOCK`` 4: False runs every lane in :func:`_block4`
        instead of whole vector blocks of :func:`fastgd.kernels.simd_stream.stream4_lanes`
        (the same bits; benchmarks compare the two).

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
            n2 = np.empty(nl, dt)
            ex = np.empty(nl, dt)
            lre = np.empty(nl, dt)
            bet = np.empty(nl, dt)
            thc = np.empty(nl, dt)
            thd = np.empty(nl, dt)
            logg = np.empty(nl, dt)
            active = np.empty(nl, np.bool_)
            perm = np.empty(P, np.int64)  # the epoch's sample order (cyclic: 0..P-1)
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
                for i in range(d):
                    for l in range(llo4, lhi):
                        wok[i, l] = w[i, l] if (ex[l] < np.inf) | (not exact) else wok[i, l]
                if order == ORDER_SHUFFLE:
                    permutation(k0, k1, ep, perm)
                elif order == ORDER_REPLACEMENT:
                    for q in range(P):
                        perm[q] = randbelow(hash4(k0, k1, ep, q), P)
                lo = np.uint64(llo4)
                hi = np.uint64(lhi)
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
                            # whole vector blocks of lanes: the epoch's blocks of samples
                            # with the dot products in registers; the lanes over: _block4
                            lv = lo
                            if SVEC:
                                lv = _stream_blocks(X, y, di, perm, q0, w, lre, lo, hi, zero)
                            for q in range(0, q0, 4):
                                _block4(X, y, di, perm, q, w, sb, lre, lv, hi, zero)
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
                elif FULL:  # minibatches and momentum
                    pos = 0
                    while pos < P:
                        nb = min(batch, P - pos)
                        for i in range(d):
                            for l in range(nl):
                                g[i, l] = 0.0
                        for q in range(nb):
                            p = perm[pos + q]
                            yp = y[di, p]
                            for l in range(nl):
                                r[l] = 0.0 + w[0, l] * X[di, p, 0]
                            for i in range(1, d):
                                xi = X[di, p, i]
                                for l in range(nl):
                                    r[l] += w[i, l] * xi
                            for l in range(nl):
                                r[l] = r[l] - yp
                            for i in range(d):
                                xi = X[di, p, i]
                                for l in range(nl):
                                    g[i, l] += r[l] * xi
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
