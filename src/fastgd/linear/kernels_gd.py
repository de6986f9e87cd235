"""Batch-GD chunk kernels of the linear unit (:func:`gd_kernel`), in the eigenbasis of
H (:func:`eig_basis`), and the final check of returned weights (:func:`cell_losses`).

Layouts and conventions in :mod:`fastgd.linear.kernels`.
"""

import numpy as np

from fastgd.kernels import BOUNDED, CONVERGED, DIVERGED
from fastgd.kernels.fpenv import fpenv_restore, ftz_on
from fastgd.kernels.jit import jit
from fastgd.kernels.simd_stream import CHECK_VECTORS, VECTOR_BYTES, check_lanes
from fastgd.kernels.steps import check, heavy_ball, thresholds
from fastgd.linear.kernels_lanes import SIMD, _flush, _log_norm, _renorm, _stop, row_dot_add

_SNAPSHOT = 32  # GD: steps between snapshots of the last finite iterate
_BLOCK = 16  # GD blocks: steps per pass over the lanes (divides _SNAPSHOT)
_MARGIN = 1e-9  # GD blocks: relative margin of the excess bounds (far above rounding)


def eig_basis(R):
    """The eigenvalues and eigenvectors of H = R^T R for a stack of square roots R.

    R = diag(s) V^T / sqrt(P) from the SVD of X (:func:`fastgd.linear.problem.hessian_roots`,
    so that R^T R = H = X^T X / P, the Hessian of E = 1/(2P) sum_p (y_p - w.x_p)^2) has
    orthogonal rows: the eigenvalues are their squared norms s^2 / P and the
    eigenvectors the rows normalised, read off in O(d^2) (orthonormality checked on one
    vector) without a second factorisation, with the relative precision of the singular values of X (which
    ``eigh`` of a formed X^T X / P loses once kappa(H) passes ~1e8).  An R whose rows
    are not orthogonal to rounding, or that has a zero row (rank below d: the basis
    needs a completion), float32 R too, goes through an SVD of R instead.  The basis in
    which the GD kernels (CPU lanes and GPU) iterate.  Kept out of the kernels: Numba's
    linear algebra adds compile time.

    Parameters
    ----------
    R : array (n_data, d, d)
        Square roots of the Hessians, float64 or float32.

    Returns
    -------
    lam : array (n_data, d)
        Eigenvalues of each H, in descending order; R's dtype.
    V : array (n_data, d, d)
        Orthonormal eigenvectors, ``V[di][:, j]`` for ``lam[di, j]``; R's dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgd.linear.kernels import eig_basis
    >>> lam, V = eig_basis(np.array([[[2.0, 0.0], [0.0, 1.0]]]))
    >>> lam.tolist(), abs(V[0]).tolist()
    ([[4.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]])
    """
    Rd = np.asarray(R, dtype=np.float64)  # float64 for float32 R too
    n, d = Rd.shape[:2]
    lam = np.empty((n, d))
    V = np.empty((n, d, d))
    ok = np.zeros(n, dtype=bool)
    if R.dtype == np.float64 and n > 0:
        sq = np.einsum("nij,nij->ni", Rd, Rd)
        norm = np.sqrt(sq)
        ok = np.all(sq > np.finfo(np.float64).tiny, axis=1)
        Q = Rd / np.where(ok[:, None], norm, 1.0)[:, :, None]  # rows normalised
        # Q square with orthonormal rows <=> Q Q^T g = g for every g: checked on one
        # fixed vector in O(d^2) (einsum: no BLAS threads for these small products)
        g = np.cos(np.arange(1, d + 1) * 0.7)
        back = np.einsum("nji,nj->ni", Q, np.einsum("nij,j->ni", Q, g))
        ok &= np.sqrt(np.einsum("ni,ni->n", back - g, back - g)) <= (
            _ORTHO * d * np.sqrt(g @ g))
        if ok.any():
            order = np.argsort(-sq[ok], axis=1, kind="stable")
            lam[ok] = np.take_along_axis(sq[ok], order, axis=1)
            V[ok] = np.take_along_axis(Q[ok], order[:, :, None], axis=1).transpose(0, 2, 1)
    if not ok.all():
        _, s, Vt = np.linalg.svd(Rd[~ok])
        lam[~ok] = s * s
        V[~ok] = Vt.transpose(0, 2, 1)
    return (np.ascontiguousarray(lam, dtype=R.dtype), np.ascontiguousarray(V, dtype=R.dtype))


#: the rows of R, normalised (Q), count as orthonormal when |Q^T Q g - g| <= _ORTHO d |g|
#: (rounding of an SVD's V^T rows is ~d eps)
_ORTHO = 1e-13


def gd_kernel(D, FULL):
    """The batch-GD chunk kernel for one layout (:mod:`fastgd.linear.kernels`).

    Parameters
    ----------
    D : int
        d compiled in (1 <= D <= ``REGISTER_MAX_D``), or 0: any d.
    FULL : bool
        Compile in heavy-ball / Nesterov momentum and renormalisation; False: plain GD,
        which keeps blocks of 16 steps where no lane can change state within them.

    Returns
    -------
    numba dispatcher
        ``gd_rows(lam_all, V_all, wstar, estar, c0, lr, beta, nesterov, w0, steps, tol,
        blowup, renorm, chunks, wk, nworkers, rec_every, *outputs)``, compiled on its first
        call (the loss E = 1/(2P) sum_p (y_p - w.x_p)^2, time unit: steps).

    Examples
    --------
    >>> from fastgd.linear.kernels import gd_kernel
    >>> kernel = gd_kernel(0, True)  # compiled on its first call, not here
    >>> callable(kernel)
    True
    """

    # a closure constant: blocks of steps in the plain kernel (FULL: momentum,
    # renormalisation, none)
    BLOCKS = not FULL

    # over 80 lines, unsplit for speed: a step's check, record and update in one loop nest
    @jit(variant=f"D{D}_F{int(FULL)}")
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
            blo = np.empty(nl, dt)  # blocks: each lane's bounds of the excess
            bhi = np.empty(nl, dt)
            active = np.empty(nl, np.bool_)
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
            # plain GD, no curves: _BLOCK steps per pass over the lanes (any d).
            # Each |z_i| is monotone over a block (|fl(m z)| <= |z| when |m| <= 1, >= when
            # |m| >= 1) and the excess is monotone in each |z_i|, so every step's excess
            # lies between the excess of the smaller and of the larger end of each
            # coordinate: when every lane's bounds stay inside its thresholds (with a
            # margin far above rounding) the block is kept, else it is run again by the
            # step loop below (so statuses, steps and iterates are the step loop's).
            t = 0
            while t <= steps:
                if BLOCKS and nrec == 0 and t % _BLOCK == 0 and t + _BLOCK <= steps:
                    # each lane's bounds summed over i in order; the lanes innermost,
                    # indexed with uint64 (with signed indices the loop stayed scalar)
                    for l in range(nl):
                        blo[l] = 0.0
                        bhi[l] = 0.0
                    for i in range(d):
                        h = hl[i]
                        for l in range(np.uint64(nl)):
                            u = z[i, l]
                            m = mult[i, l]
                            v = u
                            for _ in range(_BLOCK):
                                v = m * v
                            zn[i, l] = v
                            blo[l] += h * min(u * u, v * v)
                            bhi[l] += h * max(u * u, v * v)
                    nhit = 0
                    for l in range(nl):
                        calm = ((blo[l] > thc[l] * (1.0 + _MARGIN))
                                & (bhi[l] <= thd[l] * (1.0 - _MARGIN)) & (bhi[l] < np.inf))
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
            # back from the eigenbasis: w = w* + V z (w0 itself for a lane stopped at 0),
            # the lanes innermost (vectorised; each lane's sum still runs over j in order)
            for i in range(d):
                for l in range(nl):
                    wfin[i, l] = wstar[di, i]
                row_dot_add(V[i], zfin, wfin, i)
                for l in range(nl):
                    if ft[l] == 0:
                        wfin[i, l] = w0[i]
            _flush(a, di, si, fst, ft, floss, fex, wfin, logg, out_status, out_w, out_loss,
                   out_excess, out_tol_at, out_div_at, out_logg, rec_every, rec_loss, rec_w)
        fpenv_restore(old)

    return gd_rows


@jit
def cell_losses(X, y, Pn, wstar, W, order, loss, excess, segs, wk, nworkers):
    """The loss and excess loss of returned weights, from the data (kernel, in place).

    loss[c] = |y - X w_c|^2 / (2P) and excess[c] = |X (w_c - w*)|^2 / (2P) for the
    cells ``order[a:b]`` (rows of ``W``) of the segments ``segs[k] = (dataset, a, b)``,
    k = wk, wk + nworkers, ...: the excess without the cancellation of a difference of
    losses, the loss to the rounding of y - X w itself (not of y - X w*, which a huge
    w* of collinear data would spoil).  The cells of a segment are the innermost loop
    (vectorised; whole blocks of 8 float64 / 16 float32 cells in the vector code of
    :func:`fastgd.kernels.simd_stream.check_lanes`, the same operations); each cell's
    sums run over samples and components in the same order whatever the segment it is
    in (a sweep cell equals its single run bit for bit): r = y_p - sum_i w_i x_pi and
    u = sum_i (w_i - w*_i) x_pi, squares summed over samples.

    Parameters
    ----------
    X : array (n_data, P_max, d);  y : array (n_data, P_max);  Pn : int array (n_data,)
        The datasets (zero-padded) and their sample counts.
    wstar : array (n_data, d)
        Least-squares minimisers w*.
    W : array (n_cells, d)
        The weights, one row per cell.
    order : int array
        Rows of ``W`` in segment order.
    loss, excess : array (n_cells,)
        Outputs, written for the cells of this worker's segments.
    segs : int array (n_segments, 3);  wk, nworkers : int
        Segments (dataset, first, stop) over ``order``, and this worker's share of them.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgd.linear.kernels_gd import cell_losses
    >>> X, y = np.array([[[1.0], [2.0]]]), np.array([[1.0, 2.0]])
    >>> loss, excess = np.empty(2), np.empty(2)
    >>> cell_losses(X, y, np.array([2]), np.array([[1.0]]), np.array([[1.0], [0.0]]),
    ...             np.array([0, 1]), loss, excess, np.array([[0, 0, 2]]), 0, 1)
    >>> loss.tolist(), excess.tolist()
    ([0.0, 1.25], [0.0, 1.25])
    """
    d = X.shape[2]
    # np.empty with the data's dtype object only, the sums zeroed by a loop: the same
    # allocation signatures as the chunk kernels (each distinct np.empty / np.zeros
    # signature is one more compilation on a cold cache)
    dt = X.dtype
    for k in range(wk, segs.shape[0], nworkers):
        di = segs[k, 0]
        a = segs[k, 1]
        n = segs[k, 2] - a
        P = Pn[di]
        Wc = np.empty((d, n), dt)  # the segment's weights, one column per cell
        Dc = np.empty((d, n), dt)  # and w - w*: one subtraction per cell, not per sample
        for c in range(n):
            row = order[a + c]
            for i in range(d):
                Wc[i, c] = W[row, i]
                Dc[i, c] = W[row, i] - wstar[di, i]
        r = np.empty(n, dt)
        u = np.empty(n, dt)
        lc = np.empty(n, dt)
        ec = np.empty(n, dt)
        for c in range(n):
            lc[c] = 0.0
            ec[c] = 0.0
        # whole vector blocks of cells in the vector code (the same operations), the
        # cells over in the loops
        c0 = np.uint64(0)
        if SIMD:
            nv = np.uint64(CHECK_VECTORS * (VECTOR_BYTES // X.itemsize))
            while c0 + nv <= n:
                check_lanes(X, y, Wc, Dc, di, P, c0, lc, ec)
                c0 += nv
        un = np.uint64(n)  # unsigned: no negative-index wraparound in the cell loops
        if c0 < un:
            for p in range(P):
                yp = y[di, p]
                for c in range(c0, un):
                    r[c] = yp
                    u[c] = 0.0
                for i in range(d):
                    xi = X[di, p, i]
                    for c in range(c0, un):
                        r[c] -= Wc[i, c] * xi
                        u[c] += Dc[i, c] * xi
                for c in range(c0, un):
                    lc[c] += r[c] * r[c]
                    ec[c] += u[c] * u[c]
        for c in range(n):
            loss[order[a + c]] = 0.5 * lc[c] / P
            excess[order[a + c]] = 0.5 * ec[c] / P
