"""The sharpness of many networks at once (:mod:`fastgd.net`): Lanczos on exact
Hessian-vector products, every network a lane.

Layout as the training kernels' (:mod:`fastgd.net.kernels`): parameters, Lanczos vectors
and HVPs stored ``[param][lane]``, lanes padded to whole blocks of :data:`BLOCK` (idle
lanes hold zeros and are never read back), so every lane runs in a block of the same
shape and its arithmetic never depends on the other lanes, on the thread that ran it or
on how many networks were asked for at once (a sweep cell equals its single run bit for
bit).  One Lanczos step of every block (the HVP, alpha, two passes of classical
Gram-Schmidt against the earlier vectors, beta and the next vector) is one call of
:func:`lanczos_rows`, fanned out over worker threads (:func:`fastgd.kernels.threads.fan_out`).

Stopping: a lane stops at a breakdown (beta <= 1e-10 x the largest |alpha|, |beta| so
far: its Krylov space is invariant, the top Ritz value exact) or, every few steps, when
its top Ritz pair (theta, s) of the tridiagonal T_j has the residual
|beta_j s_j| <= :data:`RTOL` x max(|theta|, |T_j|) (the Ritz value is then within
RTOL^2 |T_j|^2 / gap of an eigenvalue, and within RTOL |T_j| however close the next
one); at the latest after ``iters`` steps.  A start vector close to the top eigenvector
(the one found at theta0, for the end of a run that moved little) stops it early; it is
mixed with :data:`WARM_MIX` of the fixed start vector, so that a warm start orthogonal
to the new top eigenvector (or an eigenvector itself) still finds it.
"""

from __future__ import annotations

import numpy as np

from fastgd.kernels.fmath import tanh
from fastgd.kernels.jit import jit
from fastgd.kernels.threads import fan_out
from fastgd.net.kernels import ACT_RELU, ACT_TANH

__all__ = ["BLOCK", "RTOL", "WARM_MIX", "lanczos_rows", "top_eig"]

#: lanes per block (one 512-bit vector of doubles, two 256-bit ones)
BLOCK = 8
#: residual tolerance of the stopping rule (module doc)
RTOL = 1e-10
#: share of the fixed start vector added to a warm start (module doc)
WARM_MIX = 0.1
_CHECK_EVERY = 3  # steps between two checks of the stopping rule
_SEED = 12345  # the fixed start vector (no warm start)


@jit
def _forward_block(X, Y, act, bias, m, s, T, lb, FH, FH1, FA1, FA2, FC):
    """The parts of H v that do not depend on v, for lanes lb .. lb + BLOCK - 1, once per
    Lanczos run: per sample p and unit j, h = phi(z), phi', a phi', a phi'' (``FH``,
    ``FH1``, ``FA1``, ``FA2``, (P, m, n)) and the residual factor (s f - y) s / P
    (``FC``, (P, n))."""
    P, d = X.shape
    ib = m * d
    ia = ib + (m if bias else 0)
    inv = 1.0 / P
    for p in range(P):
        for l in range(BLOCK):
            FC[p, lb + l] = 0.0
        for j in range(m):
            for l in range(BLOCK):
                z = T[ib + j, lb + l] if bias else 0.0
                for i in range(d):
                    z += T[j * d + i, lb + l] * X[p, i]
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
                a = T[ia + j, lb + l]
                FH[p, j, lb + l] = t
                FH1[p, j, lb + l] = g1
                FA1[p, j, lb + l] = a * g1
                FA2[p, j, lb + l] = a * g2
                FC[p, lb + l] += a * t
        for l in range(BLOCK):
            FC[p, lb + l] = (s * FC[p, lb + l] - Y[p]) * s * inv


@jit
def _hvp_block(X, m, bias, s, V, HV, lb, FH, FH1, FA1, FA2, FC, u, rf):
    """HV[:, lb:lb+BLOCK] = H V[:, l] from the forward parts (:func:`_forward_block`;
    Pearlmutter's R-operator, the formulas of :func:`fastgd.net.kernels.hvp_lanes`),
    lanes innermost."""
    P, d = X.shape
    ib = m * d
    ia = ib + (m if bias else 0)
    ss = s * s / P
    for k in range(V.shape[0]):
        for l in range(BLOCK):
            HV[k, lb + l] = 0.0
    for p in range(P):
        for l in range(BLOCK):
            rf[l] = 0.0
        for j in range(m):
            for l in range(BLOCK):
                u[j, l] = V[ib + j, lb + l] if bias else 0.0
            for i in range(d):
                xv = X[p, i]
                for l in range(BLOCK):
                    u[j, l] += V[j * d + i, lb + l] * xv
            for l in range(BLOCK):
                rf[l] += V[ia + j, lb + l] * FH[p, j, lb + l] + FA1[p, j, lb + l] * u[j, l]
        for l in range(BLOCK):
            rf[l] *= ss
        for j in range(m):
            for l in range(BLOCK):
                c = FC[p, lb + l]
                HV[ia + j, lb + l] += rf[l] * FH[p, j, lb + l] + c * FH1[p, j, lb + l] * u[j, l]
                u[j, l] = rf[l] * FA1[p, j, lb + l] + c * (V[ia + j, lb + l] * FH1[p, j, lb + l]
                                                           + FA2[p, j, lb + l] * u[j, l])
            if bias:
                for l in range(BLOCK):
                    HV[ib + j, lb + l] += u[j, l]
            for i in range(d):
                xv = X[p, i]
                for l in range(BLOCK):
                    HV[j * d + i, lb + l] += u[j, l] * xv


# over 80 lines, unsplit: the whole Lanczos step of a block in one pass over its lanes
@jit
def lanczos_rows(X, Y, act, bias, m, s, T, Q, W, FH, FH1, FA1, FA2, FC, Dg, U, j, alive,
                 alpha, beta, size, chunks, wk, nworkers):
    """Lanczos step ``j`` of the lane blocks wk, wk + nworkers, ... of ``chunks`` (rows:
    the first lane of a block).

    ``T`` (N, n) parameters, ``Q`` (k, N, n) the Lanczos vectors (``Q[j]`` the current
    one), ``W`` (N, n) scratch, ``FH`` .. ``FC`` the forward parts (written at step 0:
    :func:`_forward_block`); per lane ``alive``, ``alpha``/``beta`` (n, k), ``size`` (the
    dimension of its Krylov space when it broke down).  Writes alpha_j, beta_j and
    ``Q[j + 1]`` (when j + 1 < k) of the live lanes.  ``Dg`` (N, n), when not empty: the
    operator is D H D with D = diag(Dg[:, l]) (the preconditioned Hessian
    P^-1/2 H P^-1/2 of :mod:`fastgd.net.adaptive`; ``U`` (N, n) scratch)."""
    N = T.shape[0]
    k = Q.shape[0]
    u = np.empty((m, BLOCK))
    rf = np.empty(BLOCK)
    c = np.empty((j + 1, BLOCK))
    acc = np.empty(BLOCK)
    for ck in range(wk, chunks.shape[0], nworkers):
        lb = chunks[ck]
        any_alive = False
        for l in range(BLOCK):
            any_alive |= alive[lb + l]
        if not any_alive:
            continue
        if j == 0:
            _forward_block(X, Y, act, bias, m, s, T, lb, FH, FH1, FA1, FA2, FC)
        if Dg.shape[0] > 0:  # D H D v: scale, multiply, scale
            for n in range(N):
                for l in range(BLOCK):
                    U[n, lb + l] = Dg[n, lb + l] * Q[j, n, lb + l]
            _hvp_block(X, m, bias, s, U, W, lb, FH, FH1, FA1, FA2, FC, u, rf)
            for n in range(N):
                for l in range(BLOCK):
                    W[n, lb + l] *= Dg[n, lb + l]
        else:
            _hvp_block(X, m, bias, s, Q[j], W, lb, FH, FH1, FA1, FA2, FC, u, rf)
        for l in range(BLOCK):
            acc[l] = 0.0
        for n in range(N):
            for l in range(BLOCK):
                acc[l] += W[n, lb + l] * Q[j, n, lb + l]
        for l in range(BLOCK):
            alpha[lb + l, j] = acc[l] if alive[lb + l] else 0.0
        for _ in range(2):  # full reorthogonalisation (classical Gram-Schmidt), twice
            for i in range(j + 1):
                for l in range(BLOCK):
                    c[i, l] = 0.0
                for n in range(N):
                    for l in range(BLOCK):
                        c[i, l] += Q[i, n, lb + l] * W[n, lb + l]
            for i in range(j + 1):
                for n in range(N):
                    for l in range(BLOCK):
                        W[n, lb + l] -= c[i, l] * Q[i, n, lb + l]
        for l in range(BLOCK):
            acc[l] = 0.0
        for n in range(N):
            for l in range(BLOCK):
                acc[l] += W[n, lb + l] * W[n, lb + l]
        for l in range(BLOCK):
            g = lb + l
            b = np.sqrt(acc[l])
            scale = 0.0
            for i in range(j + 1):
                scale = max(scale, abs(alpha[g, i]))
            for i in range(j):
                scale = max(scale, beta[g, i])
            if alive[g] and not (b > 1e-10 * scale):
                size[g] = j + 1  # breakdown: an invariant subspace
                alive[g] = False
            beta[g, j] = b if alive[g] else 0.0
            acc[l] = 1.0 / b if alive[g] else 0.0
        if j + 1 < k:
            for n in range(N):
                for l in range(BLOCK):
                    Q[j + 1, n, lb + l] = W[n, lb + l] * acc[l]


def _tridiagonal(al, be, size, k):
    """The (n, k, k) tridiagonals, rows past a lane's ``size`` padded below every
    eigenvalue of its leading block."""
    n = al.shape[0]
    Tm = np.zeros((n, k, k))
    ii = np.arange(k)
    Tm[:, ii, ii] = al[:, :k]
    Tm[:, ii[:-1], ii[1:]] = be[:, : k - 1]
    Tm[:, ii[1:], ii[:-1]] = be[:, : k - 1]
    pad = np.abs(al).max(axis=1) + 2 * np.abs(be).max(axis=1) + 1.0
    for r in np.flatnonzero(size < k):
        Tm[r, size[r]:, :] = 0.0
        Tm[r, :, size[r]:] = 0.0
        Tm[r, ii[size[r]:], ii[size[r]:]] = -pad[r]
    return Tm


def _converged(al, be, j, lanes):
    """Of ``lanes`` (live after step j): those whose top Ritz pair has met the residual
    rule (module doc)."""
    k = j + 1
    Tm = _tridiagonal(al[lanes], be[lanes], np.full(lanes.size, k), k)
    with np.errstate(all="ignore"):
        ok = np.all(np.isfinite(Tm), axis=(1, 2))
        vals, vecs = np.linalg.eigh(np.where(ok[:, None, None], Tm, 0.0))
        res = be[lanes, j] * np.abs(vecs[:, -1, -1])
        scale = np.maximum(np.abs(vals).max(axis=1), np.abs(vals[:, -1]))
    return lanes[ok & (res <= RTOL * scale)]


def top_eig(M, m, Th, iters, start=None, vectors=False, threads=None, diag=None):
    """Top Hessian eigenvalue of each row of Th (n, N) by Lanczos (module doc), from the
    fixed start vector or the rows of ``start`` (n, N).  ``inf`` where the parameters or
    the Hessian are not finite.  With ``vectors`` also the top Ritz vectors (n, N)
    (zeros where not finite), for a warm start elsewhere.

    Parameters
    ----------
    M : the model (:func:`fastgd.net.model._model`)
    m : int
        Width.
    Th : array (n, N)
    iters : int
        Lanczos steps at most (k = min(N, iters)).
    start : array (n, N), optional
    vectors : bool
    threads : int, optional
        Worker threads (default: as many as the machine's sweeps use).
    diag : array (n, N), optional
        Positive finite D per row: the top eigenvalue of D H D instead (with
        D = P^-1/2: lambda_max(P^-1 H), the preconditioned sharpness).

    Returns
    -------
    array (n,), or (array (n,), array (n, N)) with ``vectors``

    Examples
    --------
    >>> import numpy as np, fastgd.net as fn
    >>> from fastgd.net.model import _model
    >>> M = _model("doc", np.ones((1, 1)), [1.0], "identity", "standard", False)
    >>> float(top_eig(M, 1, np.array([[2.0, 0.5]]), 40)[0])   # H = [[0.25, 2], [2, 4]]
    4.25
    """
    from fastgd.engine import grid as G

    Th = np.atleast_2d(np.asarray(Th, dtype=np.float64))
    n, N = Th.shape
    k = min(N, iters)
    npad = -(-n // BLOCK) * BLOCK
    T = np.zeros((N, npad))
    T[:, :n] = Th.T
    Q = np.zeros((k, N, npad))
    q = np.random.default_rng(_SEED).standard_normal(N)
    Q[0, :, :n] = (q / np.linalg.norm(q))[:, None]
    if start is not None:  # rows of zeros or not finite keep the fixed vector
        with np.errstate(all="ignore"):
            S = np.asarray(start, dtype=np.float64)
            nrm = np.linalg.norm(S, axis=1)
            use = np.isfinite(nrm) & (nrm > 0)
            # plus WARM_MIX of the fixed vector: a start orthogonal to the top eigenvector
            # (or an eigenvector itself, a breakdown at step 1) would never find it
            S = S[use] / nrm[use][:, None] + WARM_MIX * Q[0, :, 0]
            Q[0, :, np.flatnonzero(use)] = S / np.linalg.norm(S, axis=1)[:, None]
    alive = np.zeros(npad, dtype=np.bool_)
    alive[:n] = np.all(np.isfinite(Th), axis=1)
    ok = alive.copy()
    al = np.zeros((npad, k))
    be = np.zeros((npad, k))
    size = np.full(npad, k, dtype=np.int64)
    chunks = np.arange(0, npad, BLOCK, dtype=np.int64)
    W = np.empty((N, npad))
    Dg = np.zeros((0, npad))
    U = np.zeros((0, npad))
    if diag is not None:
        Dg = np.ones((N, npad))
        Dg[:, :n] = np.asarray(diag, dtype=np.float64).T
        U = np.empty((N, npad))
    fwd = [np.empty((M.P, m, npad)) for _ in range(4)] + [np.empty((M.P, npad))]
    nw = G.max_threads() if threads is None else threads
    with np.errstate(all="ignore"):
        for j in range(k):
            fan_out(lanczos_rows, (M.X, M.y, M.act, M.bias, m, M.scale(m), T, Q, W, *fwd, Dg,
                                   U, j, alive, al, be, size, chunks), nw, ())
            if j + 1 < k and (j + 1) % _CHECK_EVERY == 0 and alive.any():
                done = _converged(al, be, j, np.flatnonzero(alive))
                size[done] = j + 1
                alive[done] = False
            if not alive.any():
                break
        return _finish(al, be, size, k, ok, n, Q if vectors else None)


def _finish(al, be, size, k, ok, n, Q):
    """The top eigenvalue of every lane's tridiagonal (and its Ritz vector with ``Q``)."""
    Tm = _tridiagonal(al[:n], be[:n], size[:n], k)
    good = ok[:n] & np.all(np.isfinite(Tm), axis=(1, 2))
    res = np.full(n, np.inf)
    vec = np.zeros((n, Q.shape[1])) if Q is not None else None
    if good.any():
        if Q is None:
            res[good] = np.linalg.eigvalsh(Tm[good])[:, -1]
            return res
        vals, S = np.linalg.eigh(Tm[good])
        res[good] = vals[:, -1]
        for r, lane in enumerate(np.flatnonzero(good)):  # lane by lane: same bits for any n
            s = S[r, :, -1]
            v = s[0] * Q[0, :, lane]
            for i in range(1, int(size[lane])):
                v = v + s[i] * Q[i, :, lane]
            vec[lane] = v
    return res if Q is None else (res, vec)
