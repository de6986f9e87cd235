"""Kernels for the linear unit E(w) = 1/(2P) sum_p (y_p - w.x_p)^2.

Layout (DESIGN.md): a *chunk* is up to L runs (lanes) that share one dataset and one
sample order and differ in learning rate (and momentum).  Per-lane state is stored
``[field][lane]`` so that the innermost loop runs over lanes and compiles to SIMD code.
Divergence and convergence are detected without branches in the vector loops: a flag
is or-reduced and a scalar handler runs only on the (rare) steps where a lane changes
state.  Finished lanes are frozen (their learning rate set to 0) and a chunk ends as
soon as all of its lanes are finished.

Only the grid drivers (``grid_gd_linear``, ``grid_sgd_linear``) are called from Python;
a single run is a grid of one cell.  They are plain Python: each of ``nworkers`` threads
runs one call of the serial kernel (``rows_*``) on its share of the chunk table
(:mod:`.threads`).

Losses: ``loss = E* + excess`` with ``excess = |R (w - w*)|^2 / 2`` (exact for a
quadratic), R = diag(s) V^T / sqrt(P) from the SVD of X (so R^T R = H = X^T X / P), w* a
least-squares minimiser and E* = E(w*).  A sum of squares is never negative, and R keeps
the small singular values of X where a formed H loses them (its excess would be
wrong once kappa(H) passes ~1e8).  Batch GD works in error coordinates e = w - w* in the
eigenbasis of H (lam = s^2 / P), where the excess is sum_i lam_i z_i^2 / 2.

Divergence: the excess is non-finite (a weight is non-finite or the loss overflowed) or
above the blowup threshold; an infinite ``blowup`` still counts non-finite values.
The API layer recomputes the loss and excess of the returned weights from residuals
and checks every status against them (:func:`fastgd._core.finalize`).

Output arrays are indexed ``[data, seed, lr]``; recordings ``[data, seed, lr, k]``
(loss) and ``[data, seed, lr, k, i]`` (weights); pass arrays with a zero-length
record axis to switch recording off.
"""

import numpy as np

from . import BOUNDED, CONVERGED, DIVERGED, ORDER_REPLACEMENT, ORDER_SHUFFLE
from ._jit import jit, muladd, variant
from .fpenv import fpenv_restore, ftz_on
from .rng import hash4, permutation, randbelow
from .threads import fan_out

_SNAPSHOT = 32  # GD: steps between snapshots of the last finite iterate
_BLOCK = 16  # GD: steps per register-resident block (divides _SNAPSHOT)
_MARGIN_LO = 1.0 + 1e-9  # GD blocks: relative safety margins of the excess-loss bounds
_MARGIN_HI = 1.0 - 1e-9
# False in the lean copies of the kernels (see ``_lean``): the branches guarded by it
# (momentum, minibatches, d != 2, renormalisation, recording) are removed by Numba's
# dead-branch pruning before typing, so the lean kernel compiles in less time.
_GENERAL = True


@jit
def _quad(R, di, e, g, ex, nl):
    """g = R e and ex = |g|^2 / 2 for every lane (R is R[di], R^T R = H): the excess
    loss as a sum of squares, never negative, and accurate where e^T H e is not (R keeps
    the small singular values of X; H = X^T X / P squares the condition number)."""
    d = e.shape[0]
    for l in range(nl):
        ex[l] = 0.0
    for i in range(d):
        for l in range(nl):
            g[i, l] = 0.0
        for j in range(d):
            rij = R[di, i, j]
            for l in range(nl):
                g[i, l] += rij * e[j, l]
        for l in range(nl):
            ex[l] += g[i, l] * g[i, l]
    for l in range(nl):
        ex[l] *= 0.5


@jit
def _flush(a, di, si, fst, ft, floss, fex, wfin, out_status, out_w, out_loss, out_excess,
           out_tol_at, out_div_at, rec_every, rec_loss, rec_w):
    """Write every lane of a chunk (lane l is lr index a + l) from its final status,
    step, loss, excess loss and weights, and its recordings at its last step (only
    there: a single run's buffer of ``steps + 1`` records is then touched only up to
    where the run stopped).
    One call per chunk: a call per lane cost ~150 ns (a reference-count update per
    array argument), as much as 64 lanes x 100 plain GD steps."""
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
        if st == CONVERGED:
            out_tol_at[di, si, lane] = t
        elif st == DIVERGED:
            out_div_at[di, si, lane] = t
        k0 = (t + rec_every - 1) // rec_every  # the first record at or after the end
        if k0 < nrec:  # later records are filled by the API (fastgd._core.fill_records)
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
    if nrm == 0.0:
        logg[l] = -np.inf
    else:
        logg[l] = np.inf
    return False


@jit
def _to_w(V, wstar, di, z, ft, w0, wout):
    """wout[:, l] = w* + V z[:, l] for every lane l (back from the eigenbasis); w0 itself
    for a lane whose step ft[l] is 0."""
    d = z.shape[0]
    for l in range(z.shape[1]):
        for i in range(d):
            if ft[l] == 0:
                wout[i, l] = w0[i]
                continue
            s = wstar[di, i]
            for j in range(d):
                s += V[i, j] * z[j, l]
            wout[i, l] = s


def eig_basis(R):
    """``lam[di], V[di]``: the eigenvalues and eigenvectors of H = R^T R for a stack of
    square roots R (:func:`fastgd._core.prepare`: R = diag(s) V^T / sqrt(P) from the SVD
    of X), from the SVD of each R (one LAPACK call per sweep): lam = s^2 keeps the small
    eigenvalues to the precision of the singular values of X, which ``eigh`` of a formed
    X^T X / P loses once kappa(H) passes ~1e8.  The basis in which :func:`rows_gd_linear`
    (and the GPU's scalar GD) iterate.  Kept out of the kernels: Numba's linear algebra
    costs compile time on a cold cache."""
    _, s, Vt = np.linalg.svd(np.asarray(R, dtype=np.float64))  # float64 for float32 R too
    return (np.ascontiguousarray(s * s, dtype=R.dtype),
            np.ascontiguousarray(Vt.transpose(0, 2, 1), dtype=R.dtype))


@jit
def rows_gd_linear(lam_all, V_all, wstar, estar, c0, lr, beta, nesterov, w0, steps, tol,
                   blowup, renorm, chunks, wk, nworkers, rec_every, out_status, out_w,
                   out_loss, out_excess, out_tol_at, out_div_at, out_logg, rec_loss, rec_w):
    """Batch GD (plain / heavy-ball / Nesterov, PyTorch form): worker ``wk`` of
    ``nworkers`` runs chunks wk, wk + nworkers, ... of ``chunks`` (rows: data di,
    seed, lr_start a, lr_stop b), each the lanes lr[a:b] on dataset di (whose H has
    the eigenbasis lam_all[di], V_all[di] from :func:`eig_basis`), with
    flush-to-zero on for the call (see :mod:`.fpenv`).  The chunk loop lives in the
    kernel itself: a separate driver would compile the kernel a second time (Numba
    re-optimises a callee linked into its caller: +2-2.5 s on a cold cache).

    Update (PyTorch ``SGD`` with ``dampening=0``): g = H e, buf <- beta*buf + g,
    step = g + beta*buf (Nesterov) or buf, e <- e - lr*step, e = w - w*.  beta = 0
    is plain GD.  The iteration runs in the eigenbasis of H (e = V z), where H is
    diagonal: a step costs O(d) per lane instead of O(d^2), the excess loss is
    sum_i lambda_i z_i^2 / 2 exactly, and the iterate is the same as in the original
    basis up to rounding.  Status is checked at every step.  A finished
    lane is frozen: learning rate 0, thresholds that can no longer fire, and
    (diverged) state reset to 0.  ``renorm > 0`` rescales (z, buf) to unit norm every
    ``renorm`` steps and accumulates the log growth in ``out_logg`` (for the long-run
    growth rate; use with blowup=inf).
    """
    old = ftz_on()
    for ck in range(wk, chunks.shape[0], nworkers):
        di = chunks[ck, 0]
        a = chunks[ck, 2]
        b = chunks[ck, 3]
        d = lam_all.shape[1]
        nl = b - a
        si = chunks[ck, 1]  # 0 for GD (an int64, like SGD's: one signature of _flush)
        lam = lam_all[di]
        V = V_all[di]
        # np.empty only, filled below: each distinct np.zeros / np.ones / np.arange
        # signature costs 0.1-0.3 s of compile time on a cold cache
        z = np.empty((d, nl))
        zn = np.empty((d, nl))
        buf = np.empty((d, nl))
        zok = np.empty((d, nl))
        mult = np.empty((d, nl))
        wfin = np.empty((d, nl))
        zfin = np.empty((d, nl))  # each lane's last iterate (eigenbasis), written at its end
        flag = np.empty(nl, dtype=np.bool_)  # lanes that may change state in a block
        fst = np.empty(nl, dtype=np.int64)
        ft = np.empty(nl, dtype=np.int64)
        floss = np.empty(nl)
        fex = np.empty(nl)
        ex = np.empty(nl)
        lre = np.empty(nl)
        bet = np.empty(nl)
        thc = np.empty(nl)
        thd = np.empty(nl)
        logg = np.empty(nl)
        # np.ones, not np.empty + a loop: with the loop the block loop below ran 3.5x
        # slower (GD kernel alone 4.8 -> 1.4 G steps/s, A/B in one process; LLVM's
        # code for it changes, the reason not found)
        active = np.ones(nl, dtype=np.bool_)
        mom = False
        for l in range(nl):
            logg[l] = 0.0
            flag[l] = False
            lre[l] = lr[a + l]
            bet[l] = beta[a + l]
            if bet[l] != 0.0:
                mom = True
        for j in range(d):
            zj = 0.0
            for i in range(d):
                zj += V[i, j] * (w0[i] - wstar[di, i])
            for l in range(nl):
                z[j, l] = zj
                zok[j, l] = zj
                buf[j, l] = 0.0
                mult[j, l] = 1.0 - lre[l] * lam[j]
        # plain GD: z_i <- mult[i, l] z_i with mult = 1 - lr lambda_i; momentum (PyTorch
        # form) per coordinate with g_i = lambda_i z_i.  A fused loop serves d = 2 without
        # momentum (the lecture's case).
        fused = d == 2 and not mom
        hl0 = 0.5 * lam[0]
        hl1 = 0.5 * lam[1] if d > 1 else 0.0
        es = estar[di]
        for l in range(nl):
            x = 0.0
            for i in range(d):
                x += 0.5 * lam[i] * (z[i, l] * z[i, l])
            scale = max(es + x, c0[di])
            thc[l] = tol * x
            thd[l] = blowup * scale - es
        nact = nl
        nrec = rec_loss.shape[3]
        # blocks of _BLOCK steps with each lane's state in registers (d = 2, no momentum,
        # no renormalisation, no recording, finite blowup): if no lane changes state
        # within the block it is kept; otherwise the block is run again step by step
        # below, so every status, step count and iterate is the one of the step-by-step
        # loop (a finite blowup makes every state of a kept block finite)
        blocked = fused and renorm == 0 and nrec == 0 and blowup < np.inf
        t = 0
        while t <= steps:
            if blocked and t % _BLOCK == 0 and t + _BLOCK <= steps:
                # Each |z_i| is monotone over the block (|fl(m z)| <= |z| when |m| <= 1,
                # >= |z| when |m| >= 1), and the excess loss is monotone in each |z_i|:
                # every step's excess lies between the excess of the smaller and of the
                # larger end of each coordinate.  Only those two bounds are checked
                # (with a relative margin of 1e-9, far above rounding), so a block costs
                # two multiplies per step; a lane whose bounds could cross a threshold is
                # re-run alone below, or, when more than a quarter of the lanes are, the
                # whole block goes to the step-by-step loop.
                nhit = 0
                for l in range(nl):
                    u = z[0, l]
                    v = z[1, l]
                    m0 = mult[0, l]
                    m1 = mult[1, l]
                    for _ in range(_BLOCK):
                        u = m0 * u
                        v = m1 * v
                    zn[0, l] = u
                    zn[1, l] = v
                    a0 = z[0, l] * z[0, l]
                    a1 = z[1, l] * z[1, l]
                    b0 = u * u
                    b1 = v * v
                    lo = hl0 * min(a0, b0) + hl1 * min(a1, b1)
                    hi = hl0 * max(a0, b0) + hl1 * max(a1, b1)
                    h = (not (lo > thc[l] * _MARGIN_LO)) | (not (hi <= thd[l] * _MARGIN_HI))
                    flag[l] = h
                    nhit += h
                if 4 * nhit <= nl:
                    # no lane, or a few, may change state in this block: those few are run
                    # again alone, step by step, with the step loop's arithmetic and rules
                    # (the excess loss through the same ``muladd``, so that both round it
                    # alike, and the same order of checks); the
                    # others keep the block.  Snapshot first, as the step loop takes it at
                    # step t before any later step of the block.
                    if t % _SNAPSHOT == 0:
                        for l in range(nl):
                            u = z[0, l]
                            v = z[1, l]
                            if not flag[l] or muladd(hl0, u * u, hl1 * (v * v)) < np.inf:
                                zok[0, l] = u
                                zok[1, l] = v
                    if nhit > 0:
                        for l in range(nl):
                            if not flag[l]:
                                continue
                            u = z[0, l]
                            v = z[1, l]
                            m0 = mult[0, l]
                            m1 = mult[1, l]
                            for s in range(_BLOCK):
                                x = muladd(hl0, u * u, hl1 * (v * v))
                                if (not (x <= thd[l])) | (x == np.inf) | (x <= thc[l]):
                                    if (not (x <= thd[l])) | (x == np.inf):
                                        fst[l] = DIVERGED
                                        floss[l] = np.inf
                                        fex[l] = np.inf
                                        zfin[0, l] = u if x < np.inf else zok[0, l]
                                        zfin[1, l] = v if x < np.inf else zok[1, l]
                                        u = 0.0
                                        v = 0.0
                                        buf[0, l] = 0.0
                                        buf[1, l] = 0.0
                                    else:
                                        fst[l] = CONVERGED
                                        floss[l] = es + x
                                        fex[l] = x
                                        zfin[0, l] = u
                                        zfin[1, l] = v
                                    ft[l] = t + s
                                    out_logg[di, si, a + l] = logg[l]
                                    zn[0, l] = u  # frozen where it stopped (0 if diverged)
                                    zn[1, l] = v
                                    mult[0, l] = 1.0
                                    mult[1, l] = 1.0
                                    active[l] = False
                                    lre[l] = 0.0
                                    thd[l] = np.inf
                                    thc[l] = -np.inf
                                    nact -= 1
                                    break
                                u = m0 * u
                                v = m1 * v
                        if nact == 0:
                            break
                    tmp = z
                    z = zn
                    zn = tmp
                    t += _BLOCK
                    continue
            if _GENERAL and renorm > 0 and t > 0 and t % renorm == 0:
                for l in range(nl):
                    if active[l] and not _renorm(l, z, buf, logg):
                        st = CONVERGED if logg[l] < 0 else DIVERGED
                        for i in range(d):
                            zfin[i, l] = zok[i, l]
                            z[i, l] = 0.0
                            buf[i, l] = 0.0
                            mult[i, l] = 1.0
                        fst[l] = st
                        ft[l] = t
                        floss[l] = np.inf if st == DIVERGED else es
                        fex[l] = np.inf if st == DIVERGED else 0.0
                        out_logg[di, si, a + l] = logg[l]
                        active[l] = False
                        lre[l] = 0.0
                        thd[l] = np.inf
                        thc[l] = -np.inf
                        nact -= 1
            # one step for all lanes: excess loss of z (into ex), the next iterate (into zn,
            # double-buffered so that a lane that stops at this step keeps z), and the count
            # of lanes whose state changes.  Written out here rather than in a helper: a
            # call per step with this many arrays costs more than the step (measured
            # 100-200 ns per call even with Numba-IR inlining, refcounts on each array).
            cnt = 0
            if fused:
                for l in range(nl):
                    u = z[0, l]
                    v = z[1, l]
                    x = muladd(hl0, u * u, hl1 * (v * v))
                    ex[l] = x
                    cnt += (not (x <= thd[l])) | (x == np.inf) | (x <= thc[l])
                    zn[0, l] = mult[0, l] * u
                    zn[1, l] = mult[1, l] * v
            elif _GENERAL:
                for l in range(nl):
                    ex[l] = 0.0
                for i in range(d):
                    hl = 0.5 * lam[i]
                    for l in range(nl):
                        ex[l] += hl * (z[i, l] * z[i, l])
                for l in range(nl):
                    x = ex[l]
                    cnt += (not (x <= thd[l])) | (x == np.inf) | (x <= thc[l])
                if not mom:
                    for i in range(d):
                        for l in range(nl):
                            zn[i, l] = mult[i, l] * z[i, l]
                elif nesterov:
                    for i in range(d):
                        li = lam[i]
                        for l in range(nl):
                            gi = li * z[i, l]
                            bf = bet[l] * buf[i, l] + gi
                            buf[i, l] = bf
                            zn[i, l] = z[i, l] - lre[l] * (gi + bet[l] * bf)
                else:
                    for i in range(d):
                        li = lam[i]
                        for l in range(nl):
                            bf = bet[l] * buf[i, l] + li * z[i, l]
                            buf[i, l] = bf
                            zn[i, l] = z[i, l] - lre[l] * bf
            if cnt > 0:
                for l in range(nl):
                    if not active[l]:
                        continue
                    if (not (ex[l] <= thd[l])) | (ex[l] == np.inf):
                        st = DIVERGED
                        lossv = np.inf
                        exv = np.inf
                        src = z if ex[l] < np.inf else zok
                    elif ex[l] <= thc[l]:
                        st = CONVERGED
                        lossv = es + ex[l]
                        exv = ex[l]
                        src = z
                    else:
                        continue
                    for i in range(d):
                        zfin[i, l] = src[i, l]
                    fst[l] = st
                    ft[l] = t
                    floss[l] = lossv
                    fex[l] = exv
                    out_logg[di, si, a + l] = logg[l]
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
            if _GENERAL and nrec > 0 and t % rec_every == 0:
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
                if _GENERAL and renorm > 0:
                    s = 0.0
                    for i in range(d):
                        s += z[i, l] * z[i, l] + buf[i, l] * buf[i, l]
                    logg[l] += 0.5 * np.log(s)
                for i in range(d):
                    zfin[i, l] = z[i, l]
                fst[l] = BOUNDED
                ft[l] = t
                floss[l] = es + ex[l]
                fex[l] = ex[l]
                out_logg[di, si, a + l] = logg[l]
        _to_w(V, wstar, di, zfin, ft, w0, wfin)
        _flush(a, di, si, fst, ft, floss, fex, wfin, out_status, out_w, out_loss, out_excess,
               out_tol_at, out_div_at, rec_every, rec_loss, rec_w)
    fpenv_restore(old)


@jit
def rows_sgd_linear(X, y, Ps, R, wstar, estar, c0, lr, beta, nesterov, w0, epochs, batch,
                    order, keys, tol, blowup, renorm, chunks, wk, nworkers, rec_every,
                    out_status, out_w, out_loss, out_excess, out_tol_at, out_div_at, out_logg,
                    rec_loss, rec_w):
    """Per-sample / minibatch SGD: worker ``wk`` of ``nworkers`` runs chunks wk,
    wk + nworkers, ... (rows: data di, seed si, lr_start a, lr_stop b), each the lanes
    lr[a:b] on the first P = Ps[di] rows of dataset di with the key ``keys[si]``;
    flush-to-zero and chunk loop as in :func:`rows_gd_linear`.

    Each epoch visits P samples in batches of ``batch`` (the last one smaller when B
    does not divide P), in the order ``order`` (cyclic / shuffle / replacement) drawn
    from the counter-based hash keyed by keys[si] = (k0, k1): every lane of the chunk
    sees the same samples.  Per batch: g = (1/nb) sum_p (w.x_p - y_p) x_p, then the momentum
    update of ``rows_gd_linear``.  Status is checked once per epoch (time unit: epochs).
    ``renorm > 0`` rescales (w - w*, buf) to unit norm every ``renorm`` epochs (use
    with noise-free labels y = X w* and blowup = inf: the growth rate of the linear
    random product).
    """
    old = ftz_on()
    for ck in range(wk, chunks.shape[0], nworkers):
        di = chunks[ck, 0]
        si = chunks[ck, 1]
        P = Ps[di]
        k0 = keys[si, 0]
        k1 = keys[si, 1]
        a = chunks[ck, 2]
        b = chunks[ck, 3]
        d = X.shape[2]
        nl = b - a
        w = np.empty((d, nl))
        e = np.empty((d, nl))
        g = np.empty((d, nl))
        buf = np.empty((d, nl))  # np.empty only, filled below (see rows_gd_linear)
        wok = np.empty((d, nl))
        wfin = np.empty((d, nl))  # each lane's final weights, written at its end
        fst = np.empty(nl, dtype=np.int64)
        ft = np.empty(nl, dtype=np.int64)
        floss = np.empty(nl)
        fex = np.empty(nl)
        r = np.empty(nl)
        ex = np.empty(nl)
        lre = np.empty(nl)
        bet = np.empty(nl)
        thc = np.empty(nl)
        thd = np.empty(nl)
        logg = np.empty(nl)
        active = np.empty(nl, dtype=np.bool_)
        perm = np.empty(P, dtype=np.int64)  # the epoch's sample order (cyclic: 0..P-1)
        for q in range(P):
            perm[q] = q
        x = np.empty(d)
        mom = False
        for l in range(nl):
            logg[l] = 0.0
            active[l] = True
            lre[l] = lr[a + l]
            bet[l] = beta[a + l]
            if bet[l] != 0.0:
                mom = True
        for i in range(d):
            for l in range(nl):
                w[i, l] = w0[i]
                wok[i, l] = w0[i]
                buf[i, l] = 0.0
                e[i, l] = w0[i] - wstar[di, i]
        _quad(R, di, e, g, ex, nl)
        es = estar[di]
        for l in range(nl):
            scale = max(es + ex[l], c0[di])
            thc[l] = tol * ex[l]
            thd[l] = blowup * scale - es
        nact = nl
        # Every active lane lies in [llo, lhi): the d = 2 lane loops run over [llo4, lhi)
        # only, llo4 = llo rounded down to a multiple of 4 (aligned vectors).  Lanes
        # outside are finished (rate 0, results already taken): skipping them changes no
        # output.  On a learning-rate axis the diverged lanes are the last ones, so lhi
        # drops as they diverge (SGD bench grid: 14 % of the lane-epochs were frozen
        # lanes).  These loops index with uint64: with a signed start that LLVM cannot
        # prove >= 0, Numba's negative-index wraparound kept them scalar (5x slower).
        llo = 0
        lhi = nl
        llo4 = 0
        nrec = rec_loss.shape[3]
        ep = 0
        fused = d == 2 and renorm == 0
        for ep in range(epochs + 1):
            if fused:
                # d = 2 without renormalisation: excess loss, event flag and the snapshot of
                # the last finite iterate in one branch-free pass (the arithmetic of _quad)
                ws0 = wstar[di, 0]
                ws1 = wstar[di, 1]
                r00 = R[di, 0, 0]
                r01 = R[di, 0, 1]
                r10 = R[di, 1, 0]
                r11 = R[di, 1, 1]
                ev = False
                for l in range(np.uint64(llo4), np.uint64(lhi)):
                    u = w[0, l]
                    v = w[1, l]
                    e0 = u - ws0
                    e1 = v - ws1
                    g0 = (0.0 + r00 * e0) + r01 * e1
                    g1 = (0.0 + r10 * e0) + r11 * e1
                    xl = ((0.0 + g0 * g0) + g1 * g1) * 0.5
                    ex[l] = xl
                    ev |= active[l] & ((not (xl <= thd[l])) | (xl == np.inf) | (xl <= thc[l]))
                    fin = xl < np.inf
                    wok[0, l] = u if fin else wok[0, l]
                    wok[1, l] = v if fin else wok[1, l]
            elif _GENERAL and ep > 0:
                for i in range(d):
                    for l in range(nl):
                        e[i, l] = w[i, l] - wstar[di, i]
                _quad(R, di, e, g, ex, nl)
                if renorm > 0 and ep % renorm == 0:
                    for l in range(nl):
                        if active[l]:
                            if _renorm(l, e, buf, logg):
                                for i in range(d):
                                    w[i, l] = wstar[di, i] + e[i, l]
                            else:
                                active[l] = False
                                lre[l] = 0.0
                                nact -= 1
                                st = CONVERGED if logg[l] < 0 else DIVERGED
                                for i in range(d):
                                    wfin[i, l] = wok[i, l]
                                fst[l] = st
                                ft[l] = ep
                                floss[l] = np.inf if st == DIVERGED else es
                                fex[l] = np.inf if st == DIVERGED else 0.0
                                out_logg[di, si, a + l] = logg[l]
                    _quad(R, di, e, g, ex, nl)
            if _GENERAL and not fused:
                ev = False
                for l in range(nl):
                    bad = (not (ex[l] <= thd[l])) | (ex[l] == np.inf)
                    ev |= active[l] & (bad | (ex[l] <= thc[l]))
            if ev:
                for l in range(nl):
                    if not active[l]:
                        continue
                    if (not (ex[l] <= thd[l])) | (ex[l] == np.inf):
                        st = DIVERGED
                        lossv = np.inf
                        exv = np.inf
                        src = w if ex[l] < np.inf else wok
                    elif ex[l] <= thc[l]:
                        st = CONVERGED
                        lossv = es + ex[l]
                        exv = ex[l]
                        src = w
                    else:
                        continue
                    active[l] = False
                    lre[l] = 0.0
                    nact -= 1
                    for i in range(d):
                        wfin[i, l] = src[i, l]
                    fst[l] = st
                    ft[l] = ep
                    floss[l] = lossv
                    fex[l] = exv
                    out_logg[di, si, a + l] = logg[l]
                    if st == DIVERGED:  # park the lane at w* so no inf/NaN is carried along
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
            if _GENERAL and nrec > 0 and ep % rec_every == 0:
                k = ep // rec_every
                for l in range(nl):
                    if active[l]:
                        rec_loss[di, si, a + l, k] = es + ex[l]
                        if rec_w.shape[3] > 0:
                            for i in range(d):
                                rec_w[di, si, a + l, k, i] = w[i, l]
            if ep == epochs:
                break
            if _GENERAL and not fused:
                for l in range(nl):
                    if ex[l] < np.inf:
                        for i in range(d):
                            wok[i, l] = w[i, l]
            if order == ORDER_SHUFFLE:
                permutation(k0, k1, ep, perm)
            elif order == ORDER_REPLACEMENT:
                for q in range(P):
                    perm[q] = randbelow(hash4(k0, k1, ep, q), P)
            if batch == 1 and not mom and d == 2:
                # fused per-sample path (the lecture's case): r = w.x - y; w -= lr r x
                for q in range(P):
                    p = perm[q]
                    x0 = X[di, p, 0]
                    x1 = X[di, p, 1]
                    yp = y[di, p]
                    for l in range(np.uint64(llo4), np.uint64(lhi)):
                        u = w[0, l]
                        v = w[1, l]
                        c = lre[l] * ((u * x0 + v * x1) - yp)
                        w[0, l] = u - c * x0
                        w[1, l] = v - c * x1
                continue
            if _GENERAL:  # minibatches, momentum, d != 2 (not in the lean kernel)
                pos = 0
                while pos < P:
                    nb = min(batch, P - pos)
                    if nb == 1 and not mom:
                        p = perm[pos]
                        yp = y[di, p]
                        for i in range(d):
                            x[i] = X[di, p, i]
                        for l in range(nl):
                            r[l] = 0.0
                        for i in range(d):
                            xi = x[i]
                            for l in range(nl):
                                r[l] += w[i, l] * xi
                        for l in range(nl):
                            r[l] = lre[l] * (r[l] - yp)
                        for i in range(d):
                            xi = x[i]
                            for l in range(nl):
                                w[i, l] -= r[l] * xi
                    else:
                        for i in range(d):
                            for l in range(nl):
                                g[i, l] = 0.0
                        for q in range(nb):
                            p = perm[pos + q]
                            for i in range(d):
                                x[i] = X[di, p, i]
                            yp = y[di, p]
                            for l in range(nl):
                                r[l] = 0.0
                            for i in range(d):
                                xi = x[i]
                                for l in range(nl):
                                    r[l] += w[i, l] * xi
                            for l in range(nl):
                                r[l] = r[l] - yp
                            for i in range(d):
                                xi = x[i]
                                for l in range(nl):
                                    g[i, l] += r[l] * xi
                        inv = 1.0 / nb
                        if mom:
                            for i in range(d):
                                for l in range(nl):
                                    gi = g[i, l] * inv
                                    bf = bet[l] * buf[i, l] + gi
                                    buf[i, l] = bf
                                    if nesterov:
                                        w[i, l] -= lre[l] * (gi + bet[l] * bf)
                                    else:
                                        w[i, l] -= lre[l] * bf
                        else:
                            for i in range(d):
                                for l in range(nl):
                                    w[i, l] -= lre[l] * (g[i, l] * inv)
                    pos += nb
        for l in range(nl):
            if active[l]:
                if _GENERAL and renorm > 0:
                    s = 0.0
                    for i in range(d):
                        s += e[i, l] * e[i, l] + buf[i, l] * buf[i, l]
                    logg[l] += 0.5 * np.log(s)
                for i in range(d):
                    wfin[i, l] = w[i, l]
                fst[l] = BOUNDED
                ft[l] = ep
                floss[l] = es + ex[l]
                fex[l] = ex[l]
                out_logg[di, si, a + l] = logg[l]
        _flush(a, di, si, fst, ft, floss, fex, wfin, out_status, out_w, out_loss, out_excess,
               out_tol_at, out_div_at, rec_every, rec_loss, rec_w)
    fpenv_restore(old)


def _lean(kernel):
    """``kernel`` compiled again with ``_GENERAL = False``: only the d = 2, plain (no
    momentum), per-sample, unrecorded, unrenormalised paths remain -- the lecture's case
    and the default sweep.  The same source and the same branches as the full kernel
    takes on those inputs, so the results are the same bit for bit (tested); a
    separate dispatcher and cache entry (name ``..._lean``).  Why: on a cold cache the
    lean kernel compiles in about half the time (measured in one process: SGD 7.5 ->
    3.3 s, GD 5.4 -> 4.0 s, each compiled second)."""
    return variant(kernel, "_lean", _GENERAL=False)


rows_gd_linear_lean = _lean(rows_gd_linear)
rows_sgd_linear_lean = _lean(rows_sgd_linear)

# float32 twins (``sweep(..., dtype="float32")``): the same Python functions compiled
# with float32 per-lane state (see :mod:`._retype`); separate dispatchers, so the
# float64 kernels keep exactly one signature each.
from ._retype import float32_twin as _f32  # noqa: E402

rows_gd_linear_f32 = _f32(rows_gd_linear)
rows_sgd_linear_f32 = _f32(rows_sgd_linear)
rows_gd_linear_lean_f32 = _f32(rows_gd_linear_lean)
rows_sgd_linear_lean_f32 = _f32(rows_sgd_linear_lean)


def gd_rows_kernel(d, beta, renorm, rec_loss, f32=False):
    """The GD chunk kernel for these arguments: the lean one when d = 2, no lane has
    momentum, no renormalisation and no recording, else the full one."""
    lean = d == 2 and renorm == 0 and rec_loss.shape[3] == 0 and not np.any(beta)
    if f32:
        return rows_gd_linear_lean_f32 if lean else rows_gd_linear_f32
    return rows_gd_linear_lean if lean else rows_gd_linear


def sgd_rows_kernel(d, beta, batch, renorm, rec_loss, f32=False):
    """The SGD chunk kernel: lean for per-sample steps (batch 1) under the conditions
    of :func:`gd_rows_kernel`, else the full one."""
    lean = (d == 2 and batch == 1 and renorm == 0 and rec_loss.shape[3] == 0
            and not np.any(beta))
    if f32:
        return rows_sgd_linear_lean_f32 if lean else rows_sgd_linear_f32
    return rows_sgd_linear_lean if lean else rows_sgd_linear


def grid_gd_linear(R, wstar, estar, c0, lr, beta, nesterov, w0, steps, tol, blowup, renorm,
                   chunks, nworkers, rec_every, out_status, out_w, out_loss, out_excess,
                   out_tol_at, out_div_at, out_logg, rec_loss, rec_w, f32=False):
    """Run the GD chunks listed in ``chunks``, interleaved over ``nworkers`` threads
    (chunk k goes to worker k % nworkers; see :func:`.threads.fan_out`), with the lean
    or the full kernel (:func:`gd_rows_kernel`); ``f32``: the float32 twin."""
    lam, V = eig_basis(R)
    rows = gd_rows_kernel(R.shape[1], beta, renorm, rec_loss, f32)
    fan_out(rows, (lam, V, wstar, estar, c0, lr, beta, nesterov, w0, steps, tol, blowup,
                   renorm, chunks), nworkers,
            (rec_every, out_status, out_w, out_loss, out_excess, out_tol_at, out_div_at,
             out_logg, rec_loss, rec_w))


def grid_sgd_linear(X, y, Ps, R, wstar, estar, c0, lr, beta, nesterov, w0, epochs, batch,
                    order, keys, tol, blowup, renorm, chunks, nworkers, rec_every, out_status,
                    out_w, out_loss, out_excess, out_tol_at, out_div_at, out_logg, rec_loss,
                    rec_w, f32=False):
    """Run the SGD chunks listed in ``chunks``, interleaved over ``nworkers`` threads,
    with the lean or the full kernel (:func:`sgd_rows_kernel`)."""
    rows = sgd_rows_kernel(X.shape[2], beta, batch, renorm, rec_loss, f32)
    fan_out(rows, (X, y, Ps, R, wstar, estar, c0, lr, beta, nesterov, w0, epochs, batch,
                   order, keys, tol, blowup, renorm, chunks), nworkers,
            (rec_every, out_status, out_w, out_loss, out_excess, out_tol_at, out_div_at,
             out_logg, rec_loss, rec_w))


def grid_gd_linear_f32(*args):
    """float32 twin of :func:`grid_gd_linear` (same arguments)."""
    grid_gd_linear(*args, f32=True)


def grid_sgd_linear_f32(*args):
    """float32 twin of :func:`grid_sgd_linear` (same arguments)."""
    grid_sgd_linear(*args, f32=True)


@jit
def residual_losses(X, y, wstar, W, loss, excess):
    """loss[c] = |y - X W[c]|^2 / (2P) and excess[c] = |X (W[c] - w*)|^2 / (2P) for every
    row c of W: the loss of returned weights from residuals, and the excess without the
    cancellation of a difference of losses.  One pass over the samples per row, the same
    arithmetic for a row whatever the other rows (a sweep cell equals its single run)."""
    P, d = X.shape
    for c in range(W.shape[0]):
        s = 0.0
        q = 0.0
        for p in range(P):
            r = y[p]
            u = 0.0
            for i in range(d):
                r -= W[c, i] * X[p, i]
                u += (W[c, i] - wstar[i]) * X[p, i]
            s += r * r
            q += u * u
        loss[c] = 0.5 * s / P
        excess[c] = 0.5 * q / P
