"""The SGD kernel's streaming layout (d > 8, any d at run time): per-sample steps in
blocks of four samples, each block two passes over the weights with the samples' Gram
entries (:func:`_block4`), whole vector blocks of lanes as the hand-written vector code
of :func:`fastgd.kernels.simd_stream.stream4_lanes` (:func:`_stream_blocks`); the same
operations in the same order either way (the same bits).  Called by
:func:`fastgd.linear.kernels_sgd.sgd_kernel`'s chunk kernel.
"""

import numpy as np

from fastgd.kernels.jit import jit
from fastgd.kernels.simd_stream import STREAM_VECTORS, TAIL_VECTORS, stream4_lanes, stream4_tail


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
def _stream_blocks(X, y, di, perm, q0, w, lre, lo, hi, zero, pack, Xp, gr, wt, rt):
    """The epoch's blocks of four samples perm[0:q0] of dataset di for the lanes
    ``lo`` .. ``hi - 1`` in vector blocks (:func:`.simd_stream.stream4_lanes`), the lanes
    over in narrower ones (:func:`.simd_stream.stream4_tail`), the last one partial
    where they do not fill it (its other lanes at rate 0 on zero weights, never copied
    back: a lane's arithmetic does not depend on the others); returns ``hi`` (``lo``
    when hi <= lo).  The chunk kernel then needs :func:`_block4` only for its
    plain-Numba variant (``IR=False``): one function less to compile on a cold cache
    (0.7 s of a first d = 10 sweep's 6.5 s).

    With ``pack`` the samples are packed, ``Xp[q d + 4 i + k]`` = x_i of sample
    perm[q + k] (the vector code reads them from one pointer), with each block's Gram
    entries ``gr[q // 4]`` = (G01, G02, G03, G12, G13, G23), G_mj = x_m.x_j summed in
    component order from ``zero`` as :func:`_block4` sums them; without, Xp and gr hold
    them from an earlier call on the same samples (a cyclic order packs once per chunk:
    P d Gram multiply-adds and copies, as many as 32 lanes' steps).  Each vector block
    runs on a contiguous copy ``wt`` of its weights and ``rt`` of its rates: in place,
    its d rows lie nl lanes apart and share a few cache sets (2 threads ran 0.7x slower
    at d = 30 and 100).

    Scratch from the caller, allocated once per chunk: ``Xp`` (>= q0 d), ``gr`` (>= q0 //
    4, 6), ``wt`` (d, n) and ``rt`` (n), n = STREAM_VECTORS x (VECTOR_BYTES // itemsize)
    lanes per vector block.  Allocated here, once per epoch, they cost a worker thread
    page faults (glibc trims a thread arena's heap as they are freed: d = 30, one
    thread, 66 us an epoch on the main thread, 91 on a worker)."""
    d = w.shape[0]
    n8 = wt.shape[1]  # lanes per vector block
    nv = np.uint64(n8)
    if lo >= hi:
        return lo
    for q in range(0, q0 if pack else 0, 4):
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
    nt = np.uint64(n8 * TAIL_VECTORS // STREAM_VECTORS)  # lanes per narrow block
    lv = lo
    while lv < hi:
        wide = lv + nv <= hi
        nb = nv if wide else nt
        m = min(nb, hi - lv)  # lanes of this block (nb but in the last)
        for i in range(d):
            for l in range(m):
                wt[i, l] = w[i, lv + l]
            for l in range(m, nb):
                wt[i, l] = zero
        for l in range(m):
            rt[l] = lre[lv + l]
        for l in range(m, nb):
            rt[l] = zero
        if wide:
            stream4_lanes(wt, rt, Xp, y, perm, gr, di, np.uint64(0), q0)
        else:
            stream4_tail(wt, rt, Xp, y, perm, gr, di, np.uint64(0), q0)
        for i in range(d):
            for l in range(m):
                w[i, lv + l] = wt[i, l]
        lv += m
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
