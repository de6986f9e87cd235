"""Per-lane helpers shared by the linear-unit SGD and GD chunk kernels.

A lane's end (:func:`_stop`), the write-out of a chunk (:func:`_flush`), the
renormalisation of a lane for growth-rate runs (:func:`_renorm`, :func:`_log_norm`) and
the gradients of a block of rows (:func:`rows_grad`); layouts and conventions in
:mod:`fastgd.linear.kernels`.
"""

import numba
import numpy as np

from fastgd.kernels import CONVERGED, DIVERGED
from fastgd.kernels.jit import jit

#: the lane blocks are LLVM vector code (:mod:`fastgd.kernels.simd`): not under
#: NUMBA_DISABLE_JIT, where the kernels run as Python and take the loop over lanes
SIMD = not numba.config.DISABLE_JIT

#: largest d compiled with the register layout (d a compile-time constant): beyond it the
#: unrolled loops over components no longer vectorise and the streaming layout is faster
#: (bench/ has the comparison)
REGISTER_MAX_D = 8


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


@jit
def row_dot_add(a, e, acc, k):
    """acc[k, l] += sum_i a[i] e[i, l] for every lane l of e (d, nl), the terms in i
    order onto what acc holds, four of them in registers per store (one per multiply-add
    would make the loop store-bound)."""
    d, nl = e.shape
    i = 0
    while i + 4 <= d:
        a0, a1, a2, a3 = a[i], a[i + 1], a[i + 2], a[i + 3]
        for l in range(nl):
            acc[k, l] = acc[k, l] + a0 * e[i, l] + a1 * e[i + 1, l] + a2 * e[i + 2, l] \
                + a3 * e[i + 3, l]
        i += 4
    while i < d:
        ai = a[i]
        for l in range(nl):
            acc[k, l] += ai * e[i, l]
        i += 1


@jit
def rows_grad(A, rows, nr, e, U, g, ex, y, resid):
    """Over the rows a_q = A[rows[q]] (q < nr, in order) and every lane l of e (d, nl):
    u_q = a_q . e_l summed over i in order from 0; ``resid``: u_q -= y[rows[q]] (a
    minibatch's residuals), else ex[l] += u_q^2; then g[i, l] += a_q,i u_q.  Every sum
    runs in q order (g and ex accumulate onto what they hold).  Four rows at a time,
    their u in ``U`` (4, nl) and summed over four components in registers before each
    store: a lane's arithmetic is that of one row at a time (the same bits; tested), with
    a quarter of the stores (one row at a time stored once per multiply-add)."""
    d, nl = e.shape
    for k in range(0, nr, 4):
        kb = min(4, nr - k)
        for j in range(4):
            for l in range(nl):
                U[j, l] = 0.0
        if kb == 4:
            r0, r1, r2, r3 = rows[k], rows[k + 1], rows[k + 2], rows[k + 3]
            i = 0
            while i + 4 <= d:
                a00, a01, a02, a03 = A[r0, i], A[r0, i + 1], A[r0, i + 2], A[r0, i + 3]
                a10, a11, a12, a13 = A[r1, i], A[r1, i + 1], A[r1, i + 2], A[r1, i + 3]
                a20, a21, a22, a23 = A[r2, i], A[r2, i + 1], A[r2, i + 2], A[r2, i + 3]
                a30, a31, a32, a33 = A[r3, i], A[r3, i + 1], A[r3, i + 2], A[r3, i + 3]
                for l in range(nl):
                    e0 = e[i, l]
                    e1 = e[i + 1, l]
                    e2 = e[i + 2, l]
                    e3 = e[i + 3, l]
                    U[0, l] = U[0, l] + a00 * e0 + a01 * e1 + a02 * e2 + a03 * e3
                    U[1, l] = U[1, l] + a10 * e0 + a11 * e1 + a12 * e2 + a13 * e3
                    U[2, l] = U[2, l] + a20 * e0 + a21 * e1 + a22 * e2 + a23 * e3
                    U[3, l] = U[3, l] + a30 * e0 + a31 * e1 + a32 * e2 + a33 * e3
                i += 4
            while i < d:
                for j in range(4):
                    aji = A[rows[k + j], i]
                    for l in range(nl):
                        U[j, l] += aji * e[i, l]
                i += 1
            if resid:
                y0, y1, y2, y3 = y[r0], y[r1], y[r2], y[r3]
                for l in range(nl):
                    U[0, l] = U[0, l] - y0
                    U[1, l] = U[1, l] - y1
                    U[2, l] = U[2, l] - y2
                    U[3, l] = U[3, l] - y3
            else:
                for l in range(nl):
                    ex[l] = ex[l] + U[0, l] * U[0, l] + U[1, l] * U[1, l] \
                        + U[2, l] * U[2, l] + U[3, l] * U[3, l]
            for i in range(d):
                a0, a1, a2, a3 = A[r0, i], A[r1, i], A[r2, i], A[r3, i]
                for l in range(nl):
                    g[i, l] = g[i, l] + a0 * U[0, l] + a1 * U[1, l] + a2 * U[2, l] \
                        + a3 * U[3, l]
        else:  # the last rows, one at a time
            for j in range(kb):
                rj = rows[k + j]
                row_dot_add(A[rj], e, U, j)
                if resid:
                    yj = y[rj]
                    for l in range(nl):
                        U[j, l] = U[j, l] - yj
                else:
                    for l in range(nl):
                        ex[l] += U[j, l] * U[j, l]
                for i in range(d):
                    aji = A[rj, i]
                    for l in range(nl):
                        g[i, l] += aji * U[j, l]
