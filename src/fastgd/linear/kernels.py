"""Kernels for the linear unit E(w) = 1/(2P) sum_p (y_p - w.x_p)^2.

Layout (DESIGN.md): a *chunk* is up to L runs (lanes) that share one dataset and one
sample order and differ in learning rate (and momentum).  Per-lane state is stored
``[field][lane]`` so that the innermost loop runs over lanes and compiles to SIMD code.
Divergence and convergence are detected without branches in the vector loops: a count
is reduced and a scalar handler (:func:`_stop`) runs only on the (rare) checks where a
lane changes state.  Finished lanes are frozen (their learning rate set to 0) and a
chunk ends as soon as all of its lanes are finished.

Every kernel comes from a factory (:func:`sgd_kernel`, :func:`gd_kernel`) specialised
on two closure constants, which Numba compiles as constants (``cache=True`` keys the
cached code on them); :mod:`.table` picks the factory arguments:

* ``D`` -- the *register layout* for small d (1 <= D <= :data:`REGISTER_MAX_D`): d is a
  compile-time constant, the loops over components unroll and each lane's update is one
  pass of a vectorised loop over lanes, its weights held in registers for the sample
  (d = 2, 64 lanes, one core: 3.9 G updates/s against 2.4 for the same loops with a
  runtime d).  ``D = 0`` -- the *streaming layout* for any d: the d x L weights stream
  through the cache; per-sample SGD takes blocks of four samples per pass over them
  (``BLOCK = 4``, :func:`_block4`; the same steps in exact arithmetic) unless asked for
  ``exact`` arithmetic (``BLOCK = 1``: sample by sample, the same multiply-adds in the
  same order as the register layout, so that the two are equal bit for bit).
* ``FULL`` -- False: plain per-sample SGD / plain GD (the common case, and the one that
  must compile fast on a cold cache); True adds minibatches, heavy-ball / Nesterov
  momentum and renormalisation (the long-run growth rate).

float32 runs use the same kernels with float32 inputs (a second signature): per-lane
state is allocated with the dtype of the inputs.

Losses: ``loss = E* + excess`` with ``excess = |R (w - w*)|^2 / 2`` (exact for a
quadratic), R = diag(s) V^T / sqrt(P) from the SVD of X (so R^T R = H = X^T X / P), w* a
least-squares minimiser and E* = E(w*).  A sum of squares is never negative, and R keeps
the small singular values of X where a formed H loses them.  Batch GD works in error
coordinates e = w - w* in the eigenbasis of H (lam = s^2), where the excess is
sum_i lam_i z_i^2 / 2.  The status rules are the scalar functions of :mod:`.steps`,
shared with the one-run-per-thread GPU kernels.

Output arrays are indexed ``[data, seed, lr]``; recordings ``[data, seed, lr, k]``
(loss) and ``[data, seed, lr, k, i]`` (weights), written by the kernel up to the step
where a lane stops (the API fills the rest); a zero-length record axis switches
recording off.
"""

import numba
import numpy as np

from fastgd.kernels import BOUNDED, CONVERGED, DIVERGED, ORDER_REPLACEMENT, ORDER_SHUFFLE
from fastgd.kernels.fpenv import fpenv_restore, ftz_on
from fastgd.kernels.jit import jit
from fastgd.kernels.rng import hash4, permutation, randbelow
from fastgd.kernels.simd import BLOCK4_VECTORS, block4_lanes, lanes_per_block, sgd_lanes
from fastgd.kernels.steps import check, heavy_ball, thresholds

#: the register layout's lane blocks are LLVM vector code (:mod:`.simd`): not under
#: NUMBA_DISABLE_JIT, where the kernels run as Python and take the loop over lanes
SIMD = not numba.config.DISABLE_JIT
#: largest d for which the streaming layout's sample blocks run as LLVM vector code:
#: measured (32 x 256 lanes, P = 100, 2 threads, A/B against the loops alone) +20 % at
#: d = 10 and 12, +12-16 % at d = 16 and 20, -12 % at d = 24, -10 % at d = 30
BLOCK4_SIMD_MAX_D = 20

#: largest d compiled with the register layout (d a compile-time constant); measured on
#: one core, 64 lanes, in a prototype of the per-sample loop: d = 8 runs at 1.17 G
#: updates/s in registers (~64 % of the 256-bit FMA ceiling at 3.9 GHz) and d = 10 at
#: 0.20 (the unrolled loops no longer vectorise), where the streaming layout runs at 0.63
REGISTER_MAX_D = 8
_SNAPSHOT = 32  # GD: steps between snapshots of the last finite iterate
_BLOCK = 16  # GD register layout: steps per pass over the lanes (divides _SNAPSHOT)
_MARGIN = 1e-9  # GD blocks: relative margin of the excess bounds (far above rounding)


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
    eigenvalues of H with safety margins (:func:`.table.lam_bounds`), so a lane whose
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
def _stop(l, st, t, x, es, src, wfin, fst, ft, floss, fex):
    """Record lane l's end: status ``st`` at step ``t`` with excess ``x`` (a diverged lane
    reports loss inf and the weights ``src``, its last finite iterate)."""
    for i in range(src.shape[0]):
        wfin[i, l] = src[i, l]
    fst[l] = st
    ft[l] = t
    floss[l] = np.inf if st == DIVERGED else es + x
    fex[l] = np.inf if st == DIVERGED else x


@jit
def _flush(a, di, si, fst, ft, floss, fex, wfin, logg, out_status, out_w, out_loss,
           out_excess, out_tol_at, out_div_at, out_logg, rec_every, rec_loss, rec_w):
    """Write every lane of a chunk (lane l is lr index a + l) from its final status,
    step, loss, excess loss and weights, and its recordings at its last step (only
    there: a single run's buffer of ``steps + 1`` records is touched only up to where
    the run stopped; :func:`fastgd.engine.grid.fill_records` fills the rest)."""
    d = wfin.shape[0]
    nrec = rec_loss.shape[3]
    for l in range(fst.shape[0]):
        lane = a + l
        st = fst[l]
        t = ft[l]
        out_status[di, si, lane] = st
        for i in range(d):
            out_w[di, si, lane, i] = wfin[i, l]
        out_loss[di, si, lane] = floss[l]
        out_excess[di, si, lane] = fex[l]
        out_logg[di, si, lane] = logg[l]
        if st == CONVERGED:
            out_tol_at[di, si, lane] = t
        elif st == DIVERGED:
            out_div_at[di, si, lane] = t
        k0 = (t + rec_every - 1) // rec_every  # the first record at or after the end
        if k0 < nrec:
            rec_loss[di, si, lane, k0] = floss[l]
            if rec_w.shape[3] > 0:
                for i in range(d):
                    rec_w[di, si, lane, k0, i] = wfin[i, l]


@jit
def _renorm(l, x, buf, logg):
    """Scale lane l of (x, buf) to unit norm; return False when it is 0 or non-finite."""
    d = x.shape[0]
    s = 0.0
    for i in range(d):
        s += x[i, l] * x[i, l] + buf[i, l] * buf[i, l]
    nrm = np.sqrt(s)
    if nrm > 0.0 and nrm < np.inf:
        logg[l] += np.log(nrm)
        inv = 1.0 / nrm
        for i in range(d):
            x[i, l] *= inv
            buf[i, l] *= inv
        return True
    logg[l] = -np.inf if nrm == 0.0 else np.inf
    return False


@jit
def _log_norm(x, buf, l):
    """log |(x, buf)| of lane l (the growth accumulated since the last renormalisation)."""
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i, l] * x[i, l] + buf[i, l] * buf[i, l]
    return 0.5 * np.log(s)


def eig_basis(R):
    """``lam[di], V[di]``: the eigenvalues and eigenvectors of H = R^T R for a stack of
    square roots R (:func:`fastgd.engine.grid.prepare`: R = diag(s) V^T / sqrt(P) from the SVD
    of X), from the SVD of each R: lam = s^2 keeps the small eigenvalues to the
    precision of the singular values of X, which ``eigh`` of a formed X^T X / P loses
    once kappa(H) passes ~1e8.  The basis in which the GD kernels (CPU lanes and GPU)
    iterate.  Kept out of the kernels: Numba's linear algebra costs compile time."""
    _, s, Vt = np.linalg.svd(np.asarray(R, dtype=np.float64))  # float64 for float32 R too
    return (np.ascontiguousarray(s * s, dtype=R.dtype),
            np.ascontiguousarray(Vt.transpose(0, 2, 1), dtype=R.dtype))


@jit
def _block4(X, y, di, perm, q, w, sb, lre, lo, hi, zero):
    """Four per-sample steps (samples perm[q : q + 4]) for lanes lo..hi-1 in two passes
    over the weights instead of eight.  With s_j = w.x_j at the block's start and the
    Gram entries G_mj = x_m.x_j, the sequential steps are, exactly in real arithmetic,

        r_j = lr (s_j - y_j - sum_{m<j} r_m G_mj),    w <- w - sum_j r_j x_j.

    The steps apply sample by sample per component, so only the dot products round
    differently from the per-sample loop (agreement ~1e-15 relative away from the
    boundary, tested); the streaming layout's default for d > 8 (``exact=False``)."""
    d = w.shape[0]
    p0 = perm[q]
    p1 = perm[q + 1]
    p2 = perm[q + 2]
    p3 = perm[q + 3]
    g01 = zero  # 0 in the data's precision: float32 runs stay float32 throughout
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
    # lanes in blocks whose dot products stay in registers (simd.block4_lanes), the rest
    # below, with the same operations in the same order
    lb = np.int64(lo)
    if SIMD and d <= BLOCK4_SIMD_MAX_D:
        nb = BLOCK4_VECTORS * 32 // w.itemsize
        while lb + nb <= np.int64(hi):
            block4_lanes(w, lre, X, y, di, p0, p1, p2, p3, g01, g02, g03, g12, g13, g23, lb)
            lb += nb
    ulo = np.uint64(lb)
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


def sgd_kernel(D, FULL, BLOCK=1):
    """The SGD chunk kernel with d = ``D`` compiled in (register layout; 0: any d,
    streaming layout) and, with ``FULL``, minibatches, momentum and renormalisation.
    ``BLOCK = 4`` (streaming layout, per-sample steps): blocks of four samples with their
    Gram entries (:func:`_block4`); 1: every sample on its own (exact per-sample
    arithmetic)."""
    REG = D > 0  # a closure constant: only one layout's loops are compiled
    NB64 = lanes_per_block(D, 8) if REG else 0  # lanes per register block, float64
    NB32 = lanes_per_block(D, 4) if REG else 0  # float32

    @jit
    def sgd_rows(X, y, Ps, R, bounds, wstar, estar, c0, lr, beta, nesterov, w0, epochs, batch,
                 order, keys, tol, blowup, renorm, chunks, wk, nworkers, rec_every,
                 out_status, out_w, out_loss, out_excess, out_tol_at, out_div_at, out_logg,
                 rec_loss, rec_w):
        """Per-sample / minibatch SGD: worker ``wk`` of ``nworkers`` runs chunks wk,
        wk + nworkers, ... (rows: data di, seed si, lr_start a, lr_stop b), each the
        lanes lr[a:b] on the first P = Ps[di] rows of dataset di with the key
        ``keys[si]``, flush-to-zero on for the call (:mod:`.fpenv`).

        Each epoch visits P samples in batches of ``batch`` (the last one smaller when
        B does not divide P), in the order ``order`` (cyclic / shuffle / replacement)
        drawn from the counter-based hash keyed by keys[si]: every lane of the chunk sees
        the same samples.  Per sample: r = lr (w.x - y), w <- w - r x.  Per batch
        (``FULL``): g = (1/nb) sum_p (w.x_p - y_p) x_p, then the momentum step of
        :func:`.steps.heavy_ball`.  Status is checked once per epoch (time unit:
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
            # costs 0.1-0.3 s of compile time on a cold cache
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
            mom = False
            for l in range(nl):
                logg[l] = 0.0
                active[l] = True
                lre[l] = lr[a + l]
                bet[l] = beta[a + l]
                mom |= bet[l] != 0.0
            for i in range(d):
                for l in range(nl):
                    w[i, l] = w0[i]
                    wok[i, l] = w0[i]
                    buf[i, l] = 0.0
            es = estar[di]
            _excess(R, di, wstar, w, e, g, ex, np.int64(0), np.int64(nl))
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
                        # register layout: blocks of lanes whose weights stay in registers
                        # for the epoch (simd.sgd_lanes), the lanes left over in a
                        # vectorised pass over them per sample.  s = w.x accumulates from
                        # 0.0 in component order, as below: each product then meets a sum,
                        # never another product, so LLVM's contraction fuses the same
                        # multiply into each add in every layout
                        b = llo4
                        if SIMD:
                            nb = NB64 if w.itemsize == 8 else NB32
                            while b + nb <= lhi:
                                sgd_lanes(w, lre, X, y, perm, di, b, P, D)
                                b += nb
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


def gd_kernel(D, FULL):
    """The batch-GD chunk kernel with d = ``D`` compiled in (0: any d) and, with
    ``FULL``, momentum and renormalisation."""

    # a closure constant: the register layout (steps and blocks) in the plain kernel for
    # small d; the general loops otherwise (FULL: momentum, renormalisation)
    REG = D > 0 and not FULL

    @jit
    def gd_rows(lam_all, V_all, wstar, estar, c0, lr, beta, nesterov, w0, steps, tol,
                blowup, renorm, chunks, wk, nworkers, rec_every, out_status, out_w,
                out_loss, out_excess, out_tol_at, out_div_at, out_logg, rec_loss, rec_w):
        """Batch GD (plain / heavy-ball / Nesterov, PyTorch form): worker ``wk`` of
        ``nworkers`` runs chunks wk, wk + nworkers, ... of ``chunks`` (rows: data di,
        seed, lr_start a, lr_stop b), each the lanes lr[a:b] on dataset di, whose H has
        the eigenbasis lam_all[di], V_all[di] (:func:`eig_basis`).

        The iteration runs in that eigenbasis (e = w - w* = V z), where H is diagonal:
        a step costs O(d) per lane, plain GD multiplies z_i by 1 - lr lambda_i, the
        excess loss is sum_i lambda_i z_i^2 / 2 exactly.  Status is checked at every
        step.  ``renorm > 0`` rescales (z, buf) to unit norm every ``renorm`` steps and
        accumulates the log growth in ``out_logg`` (use with blowup = inf).
        """
        old = ftz_on()
        dt = lam_all.dtype
        for ck in range(wk, chunks.shape[0], nworkers):
            di = chunks[ck, 0]
            si = chunks[ck, 1]  # 0 for GD
            a = chunks[ck, 2]
            nl = chunks[ck, 3] - a
            d = D if D > 0 else lam_all.shape[1]
            lam = lam_all[di]
            V = V_all[di]
            z = np.empty((d, nl), dt)
            zn = np.empty((d, nl), dt)
            buf = np.empty((d, nl), dt)
            zok = np.empty((d, nl), dt)
            mult = np.empty((d, nl), dt)
            zfin = np.empty((d, nl), dt)  # each lane's last iterate, written at its end
            wfin = np.empty((d, nl), dt)
            hl = np.empty(d, dt)
            fst = np.empty(nl, np.int64)
            ft = np.empty(nl, np.int64)
            floss = np.empty(nl, dt)
            fex = np.empty(nl, dt)
            ex = np.empty(nl, dt)
            lre = np.empty(nl, dt)
            bet = np.empty(nl, dt)
            thc = np.empty(nl, dt)
            thd = np.empty(nl, dt)
            logg = np.empty(nl, dt)
            active = np.empty(nl, np.bool_)
            mom = False
            for l in range(nl):
                logg[l] = 0.0
                active[l] = True
                lre[l] = lr[a + l]
                bet[l] = beta[a + l]
                mom |= bet[l] != 0.0
            for j in range(d):
                hl[j] = 0.5 * lam[j]
                zj = 0.0
                for i in range(d):
                    zj += V[i, j] * (w0[i] - wstar[di, i])
                for l in range(nl):
                    z[j, l] = zj
                    zok[j, l] = zj
                    buf[j, l] = 0.0
                    mult[j, l] = 1.0 - lre[l] * lam[j]
            es = estar[di]
            for l in range(nl):
                x = 0.0
                for i in range(d):
                    x += hl[i] * (z[i, l] * z[i, l])
                thc[l], thd[l] = thresholds(es, x, c0[di], tol, blowup)
            nact = nl
            nrec = rec_loss.shape[3]
            # register layout, plain GD, no curves: _BLOCK steps per pass over the lanes.
            # Each |z_i| is monotone over a block (|fl(m z)| <= |z| when |m| <= 1, >= when
            # |m| >= 1) and the excess is monotone in each |z_i|, so every step's excess
            # lies between the excess of the smaller and of the larger end of each
            # coordinate: when every lane's bounds stay inside its thresholds (with a
            # margin far above rounding) the block is kept, else it is run again by the
            # step loop below (so statuses, steps and iterates are the step loop's).
            t = 0
            while t <= steps:
                if REG and nrec == 0 and t % _BLOCK == 0 and t + _BLOCK <= steps:
                    nhit = 0
                    for l in range(nl):
                        lo = 0.0
                        hi = 0.0
                        for i in range(d):
                            u = z[i, l]
                            m = mult[i, l]
                            v = u
                            for _ in range(_BLOCK):
                                v = m * v
                            zn[i, l] = v
                            lo += hl[i] * min(u * u, v * v)
                            hi += hl[i] * max(u * u, v * v)
                        calm = ((lo > thc[l] * (1.0 + _MARGIN))
                                & (hi <= thd[l] * (1.0 - _MARGIN)) & (hi < np.inf))
                        nhit += not calm
                    if nhit == 0:
                        if t % _SNAPSHOT == 0:  # every state of a kept block is finite
                            for i in range(d):
                                for l in range(nl):
                                    zok[i, l] = z[i, l]
                        tmp = z
                        z = zn
                        zn = tmp
                        t += _BLOCK
                        continue
                if FULL and renorm > 0 and t > 0 and t % renorm == 0:
                    for l in range(nl):
                        if active[l] and not _renorm(l, z, buf, logg):
                            st = CONVERGED if logg[l] < 0 else DIVERGED
                            _stop(l, np.int64(st), np.int64(t), 0.0, es,
                                  zok, zfin, fst, ft, floss, fex)
                            for i in range(d):
                                z[i, l] = 0.0
                                buf[i, l] = 0.0
                                mult[i, l] = 1.0
                            active[l] = False
                            lre[l] = 0.0
                            thd[l] = np.inf
                            thc[l] = -np.inf
                            nact -= 1
                # one step for all lanes: the excess loss of z (into ex), the next iterate
                # (into zn, double-buffered so that a lane that stops at this step keeps
                # z) and the count of lanes whose state changes
                cnt = 0
                for l in range(nl):
                    ex[l] = 0.0
                for i in range(d):
                    for l in range(nl):
                        ex[l] += hl[i] * (z[i, l] * z[i, l])
                for l in range(nl):
                    cnt += check(ex[l], thc[l], thd[l]) != 0
                if not mom:
                    for i in range(d):
                        for l in range(nl):
                            zn[i, l] = mult[i, l] * z[i, l]
                elif FULL:
                    for i in range(d):
                        li = lam[i]
                        for l in range(nl):
                            zn[i, l], buf[i, l] = heavy_ball(z[i, l], li * z[i, l],
                                                             buf[i, l], lre[l], bet[l],
                                                             nesterov)
                if cnt > 0:
                    for l in range(nl):
                        st = check(ex[l], thc[l], thd[l])
                        if not active[l] or st == 0:
                            continue
                        fin = ex[l] < np.inf
                        _stop(l, np.int64(st), np.int64(t), ex[l], es,
                              z if fin else zok, zfin, fst, ft, floss,
                              fex)
                        for i in range(d):
                            if st == DIVERGED:
                                z[i, l] = 0.0
                                buf[i, l] = 0.0
                            mult[i, l] = 1.0
                            zn[i, l] = z[i, l]
                        active[l] = False
                        lre[l] = 0.0
                        thd[l] = np.inf
                        thc[l] = -np.inf
                        nact -= 1
                if nact == 0:
                    break
                if nrec > 0 and t % rec_every == 0:
                    k = t // rec_every
                    for l in range(nl):
                        if active[l]:
                            rec_loss[di, si, a + l, k] = es + ex[l]
                            if rec_w.shape[3] > 0:
                                for i in range(d):
                                    s = wstar[di, i]
                                    for j in range(d):
                                        s += V[i, j] * z[j, l]
                                    rec_w[di, si, a + l, k, i] = w0[i] if t == 0 else s
                if t == steps:
                    break
                if t % _SNAPSHOT == 0:
                    for l in range(nl):
                        if ex[l] < np.inf:
                            for i in range(d):
                                zok[i, l] = z[i, l]
                tmp = z
                z = zn
                zn = tmp
                t += 1
            for l in range(nl):
                if active[l]:
                    if FULL and renorm > 0:
                        logg[l] += _log_norm(z, buf, l)
                    _stop(l, np.int64(BOUNDED), np.int64(t), ex[l], es,
                          z, zfin, fst, ft, floss, fex)
            # back from the eigenbasis: w = w* + V z (w0 itself for a lane stopped at 0)
            for l in range(nl):
                for i in range(d):
                    s = wstar[di, i]
                    for j in range(d):
                        s += V[i, j] * zfin[j, l]
                    wfin[i, l] = w0[i] if ft[l] == 0 else s
            _flush(a, di, si, fst, ft, floss, fex, wfin, logg, out_status, out_w, out_loss,
                   out_excess, out_tol_at, out_div_at, out_logg, rec_every, rec_loss, rec_w)
        fpenv_restore(old)

    return gd_rows


@jit
def residual_losses(X, y, wstar, Wt, loss, excess, chunks, wk, nworkers):
    """loss[c] = |y - X w_c|^2 / (2P) and excess[c] = |X (w_c - w*)|^2 / (2P) for the
    columns w_c of ``Wt`` (d, n) in the cell ranges ``chunks[k] = (c0, c1)`` of worker
    ``wk``: the loss of returned weights from residuals, and the excess without the
    cancellation of a difference of losses.  The loops over cells are innermost
    (vectorised); each cell's sums run over samples and components in the same order
    whatever the other cells (a sweep cell equals its single run bit for bit)."""
    P, d = X.shape
    for k in range(wk, chunks.shape[0], nworkers):
        Wc = Wt[:, chunks[k, 0]:chunks[k, 1]]
        lc = loss[chunks[k, 0]:chunks[k, 1]]
        ec = excess[chunks[k, 0]:chunks[k, 1]]
        n = lc.shape[0]
        r = np.empty(n)
        u = np.empty(n)
        for c in range(n):
            lc[c] = 0.0
            ec[c] = 0.0
        for p in range(P):
            yp = y[p]
            for c in range(n):
                r[c] = yp
                u[c] = 0.0
            for i in range(d):
                xi = X[p, i]
                wi = wstar[i]
                for c in range(n):
                    wc = Wc[i, c]
                    r[c] -= wc * xi
                    u[c] += (wc - wi) * xi
            for c in range(n):
                lc[c] += r[c] * r[c]
                ec[c] += u[c] * u[c]
        for c in range(n):
            lc[c] = 0.5 * lc[c] / P
            ec[c] = 0.5 * ec[c] / P
