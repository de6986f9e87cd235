"""The sharpness of many networks at once (:mod:`fastgd.net`): Lanczos on exact
Hessian-vector products, every network a lane.

Layout: lanes padded to whole blocks of :data:`BLOCK` (idle lanes hold zeros and are
never read back), each block's parameters, Lanczos vectors and forward parts stored
contiguously, ``[block][param][lane]`` (a block's rows BLOCK doubles apart, whatever the
number of lanes of the call), so every lane runs in a block of the same shape and its
arithmetic never depends on the other lanes, on the thread that ran it or on how many
networks were asked for at once (a sweep cell equals its single run bit for bit).  The
whole run of every block (per step the HVP, alpha, two passes of classical Gram-Schmidt
against the earlier vectors, beta and the next vector; the stopping rule every few
steps) is one call of :func:`lanczos_rows` per worker thread
(:func:`fastgd.kernels.threads.fan_out`), block after block, as vector code
(:mod:`fastgd.net.lanczos_ir`; the loops here without the JIT, the same bits), compiled
for one activation (:func:`lanczos_kernel`: only its phi, phi', phi'').  The
forward parts are h = phi(z) per sample and unit and the residual factors, once per run;
the HVP derives phi' and phi'' from h (1 - h^2 and -2 h (1 - h^2) for tanh, h > 0 for
relu).

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

import math

import numba
import numpy as np

from fastgd.kernels.fmath import tanh
from fastgd.kernels.jit import jit
from fastgd.kernels.threads import fan_out
from fastgd.net.kernels import ACT_IDENTITY, ACT_RELU, ACT_TANH
from fastgd.net.lanczos_ir import (
    BLOCK,
    SAMPLES,
    dot_v,
    forward1_v,
    forward_v,
    hvp1_v,
    hvp2_v,
    hvp11_v,
    hvp21_v,
    mul_v,
    orth_v,
)

__all__ = ["BLOCK", "RTOL", "WARM_MIX", "lanczos_kernel", "top_eig"]

#: residual tolerance of the stopping rule (module doc)
RTOL = 1e-10
#: share of the fixed start vector added to a warm start (module doc)
WARM_MIX = 0.1
_CHECK_EVERY = 3  # steps between two checks of the stopping rule
_SEED = 12345  # the fixed start vector (no warm start)
#: the vector code (LLVM IR) is not used under NUMBA_DISABLE_JIT (plain Python)
SIMD = not numba.config.DISABLE_JIT
_BUILT = {}  # the kernels of lanczos_kernel(), by activation code


def _blocks_for(ACT):
    """The forward pass and the HVP of a block of lanes for the activation code ``ACT``
    (a closure constant: only its code is compiled; one cache index per variant)."""

    @jit(variant=f"A{ACT}")
    def forward_block(X, Y, bias, m, s, T, FH, FC):
        """The parts of H v that do not depend on v, for the lanes of one block (``T``
        (N, BLOCK)), once per Lanczos run: h = phi(z) per sample p and unit j (``FH``
        (P, m, BLOCK)) and the residual factor (s f - y) s / P (``FC`` (P, BLOCK))."""
        P, d = X.shape
        ib = m * d
        ia = ib + (m if bias else 0)
        inv = 1.0 / P
        for p in range(P):
            if SIMD:
                if p % SAMPLES == 0 and p + SAMPLES <= P:
                    forward_v(X, p, T, FH, FC, ACT, bias, m, ib, ia)
                elif p >= P - P % SAMPLES:
                    forward1_v(X, p, T, FH, FC, ACT, bias, m, ib, ia)
            else:
                for l in range(BLOCK):
                    FC[p, l] = 0.0
                for j in range(m):
                    for l in range(BLOCK):
                        z = T[ib + j, l] if bias else 0.0
                        for i in range(d):
                            z += T[j * d + i, l] * X[p, i]
                        t = tanh(z) if ACT == ACT_TANH else max(z, 0.0) if ACT == ACT_RELU else z
                        FH[p, j, l] = t
                        FC[p, l] += T[ia + j, l] * t
            for l in range(BLOCK):
                FC[p, l] = (s * FC[p, l] - Y[p]) * s * inv

    @jit(variant=f"A{ACT}")
    def hvp_block(X, m, bias, s, T, V, HV, FH, FC, u, rf):
        """HV = H V for the lanes of one block (``V``, ``HV`` (N, BLOCK)) from the forward
        parts (:func:`forward_block`; phi', phi'' from h: 1 - h^2, -2 h (1 - h^2) for tanh,
        h > 0 for relu; Pearlmutter's R-operator, the formulas of
        :func:`fastgd.net.kernels.hvp_lanes`), lanes innermost; ``u`` (SAMPLES m, BLOCK), ``rf``
        (SAMPLES, BLOCK) scratch."""
        P, d = X.shape
        ib = m * d
        ia = ib + (m if bias else 0)
        ss = s * s / P
        for k in range(V.shape[0]):
            for l in range(BLOCK):
                HV[k, l] = 0.0
        for p in range(P):
            if SIMD:
                if p % SAMPLES == 0 and p + SAMPLES <= P:
                    hvp1_v(X, p, T, FH, FC, ACT, bias, m, ib, ia, u, rf, V, ss)
                    hvp2_v(X, p, T, FH, FC, ACT, bias, m, ib, ia, u, rf, V, HV)
                elif p >= P - P % SAMPLES:
                    hvp11_v(X, p, T, FH, FC, ACT, bias, m, ib, ia, u, rf, V, ss)
                    hvp21_v(X, p, T, FH, FC, ACT, bias, m, ib, ia, u, rf, V, HV)
                continue
            for l in range(BLOCK):
                rf[0, l] = 0.0
            for j in range(m):
                for l in range(BLOCK):
                    u[j, l] = V[ib + j, l] if bias else 0.0
                for i in range(d):
                    for l in range(BLOCK):
                        u[j, l] += V[j * d + i, l] * X[p, i]
                for l in range(BLOCK):
                    h = FH[p, j, l]
                    g1 = 1.0 - h * h if ACT == ACT_TANH else (1.0 if h > 0.0 else 0.0) \
                        if ACT == ACT_RELU else 1.0
                    rf[0, l] += V[ia + j, l] * h + (T[ia + j, l] * g1) * u[j, l]
            for l in range(BLOCK):
                rf[0, l] *= ss
            for j in range(m):
                for l in range(BLOCK):
                    h, a, c, r = FH[p, j, l], T[ia + j, l], FC[p, l], rf[0, l]
                    g1 = 1.0 - h * h if ACT == ACT_TANH else (1.0 if h > 0.0 else 0.0) \
                        if ACT == ACT_RELU else 1.0
                    g2 = -2.0 * h * g1 if ACT == ACT_TANH else 0.0
                    HV[ia + j, l] += r * h + c * g1 * u[j, l]
                    u[j, l] = r * (a * g1) + c * (V[ia + j, l] * g1 + (a * g2) * u[j, l])
                    if bias:
                        HV[ib + j, l] += u[j, l]
                    for i in range(d):
                        HV[j * d + i, l] += u[j, l] * X[p, i]

    return forward_block, hvp_block


_FWD_IDENTITY, _HVP_IDENTITY = _blocks_for(ACT_IDENTITY)
_FWD_TANH, _HVP_TANH = _blocks_for(ACT_TANH)
_FWD_RELU, _HVP_RELU = _blocks_for(ACT_RELU)


def lanczos_kernel(ACT):
    """The Lanczos kernel (:func:`lanczos_rows`) for the activation code ``ACT``,
    built once per code (compiled on its first call).

    Examples
    --------
    >>> from fastgd.net.kernels import ACT_RELU, ACT_TANH
    >>> lanczos_kernel(ACT_TANH) is lanczos_kernel(ACT_TANH)
    True
    >>> lanczos_kernel(ACT_TANH) is lanczos_kernel(ACT_RELU)
    False
    """
    ACT = int(ACT)
    if ACT not in _BUILT:
        _BUILT[ACT] = _build(ACT)
    return _BUILT[ACT]


def _build(ACT):
    """A new dispatcher of :func:`lanczos_rows` for the activation code ``ACT``."""
    # closure constants: Numba prunes the other activations' calls before typing them
    TANH = ACT == ACT_TANH
    RELU = ACT == ACT_RELU

    # over 80 lines, unsplit: the whole Lanczos run of a block in one pass over its lanes
    @jit(variant=f"A{ACT}")
    def lanczos_rows(X, Y, bias, m, s, T, Q, FH, FC, Dg, alive, alpha, beta, size, lanes,
                     chunks, wk, nworkers):
        """The Lanczos runs of the lane blocks ``chunks[wk]``, ``chunks[wk + nworkers]``, ...
        (block b: lanes b BLOCK .. b BLOCK + BLOCK - 1), block by block (a block's vectors
        stay in cache): up to k steps each, the stopping rule (module doc) after every
        :data:`_CHECK_EVERY` steps, until no lane of the block is alive.

        Stored block by block, each block's data contiguous: ``T`` (nb, N, BLOCK) parameters,
        ``Q`` (nb, k, N, BLOCK) the Lanczos vectors (``Q[b, 0]`` the start vectors),
        ``FH`` (nb, P, m, BLOCK) and ``FC`` (nb, P, BLOCK) the forward parts (written at
        step 0: :func:`forward_block`); per lane ``alive``, ``alpha``/``beta`` (n, k),
        ``size`` (the dimension of its Krylov space where it stopped early), ``lanes``
        (scratch: the rows of a block's live lanes for the stopping rule).  Writes
        alpha_j, beta_j and ``Q[b, j + 1]`` (when j + 1 < k) of the live lanes.  ``Dg``
        (nb, N, BLOCK), when not empty: the operator is D H D with D = diag(Dg[b, :, l])
        (the preconditioned Hessian P^-1/2 H P^-1/2 of :mod:`fastgd.net.adaptive`).
        Vector code (:class:`_Rows`) or, without the JIT, the same operations as loops."""
        N = T.shape[1]
        k = Q.shape[1]
        u = np.empty((SAMPLES * m, BLOCK))
        rf = np.empty((SAMPLES, BLOCK))
        c = np.empty((k, BLOCK))
        c2 = np.empty((k, BLOCK))
        acc = np.empty((1, BLOCK))
        W = np.empty((N, BLOCK))
        U = np.empty((N if Dg.shape[0] > 0 else 0, BLOCK))
        res = np.empty((2, BLOCK))
        for ck in range(wk, chunks.shape[0], nworkers):
            b = chunks[ck]
            lb = b * BLOCK
            Qb = Q[b]
            any_alive = False
            for l in range(BLOCK):
                any_alive |= alive[lb + l]
            if not any_alive:
                continue
            if TANH:
                _FWD_TANH(X, Y, bias, m, s, T[b], FH[b], FC[b])
            elif RELU:
                _FWD_RELU(X, Y, bias, m, s, T[b], FH[b], FC[b])
            else:
                _FWD_IDENTITY(X, Y, bias, m, s, T[b], FH[b], FC[b])
            for j in range(k):
                q = Qb[j]
                if Dg.shape[0] > 0:  # D H D v: scale, multiply, scale
                    D = Dg[b]
                    _rmul(U, D, q, np.int64(1), N)
                    V = U
                else:
                    V = q
                if TANH:
                    _HVP_TANH(X, m, bias, s, T[b], V, W, FH[b], FC[b], u, rf)
                elif RELU:
                    _HVP_RELU(X, m, bias, s, T[b], V, W, FH[b], FC[b], u, rf)
                else:
                    _HVP_IDENTITY(X, m, bias, s, T[b], V, W, FH[b], FC[b], u, rf)
                if Dg.shape[0] > 0:
                    _rmul(W, W, Dg[b], np.int64(1), N)
                # full reorthogonalisation (classical Gram-Schmidt), twice: c = Q W,
                # W -= Q^T c, c2 = Q W, W -= Q^T c2 in three sweeps over Q; alpha = q . W
                c[: j + 1] = 0.0
                # flags and strides as run-time values (np.bool_, np.int64), not literals:
                # one compiled _orth and _rmul for every call, not one per combination
                no, yes = np.bool_(False), np.bool_(True)
                _orth(Qb, W, c, c, j + 1, no, yes)
                for l in range(BLOCK):
                    alpha[lb + l, j] = c[j, l] if alive[lb + l] else 0.0
                c2[: j + 1] = 0.0
                _orth(Qb, W, c, c2, j + 1, yes, yes)
                _orth(Qb, W, c2, c2, j + 1, yes, no)
                _rdot(W, 0, W, 0, N, acc, 0)
                for l in range(BLOCK):
                    g = lb + l
                    bt = np.sqrt(acc[0, l])
                    scale = 0.0
                    for i in range(j + 1):
                        scale = max(scale, abs(alpha[g, i]))
                    for i in range(j):
                        scale = max(scale, beta[g, i])
                    if alive[g] and not (bt > 1e-10 * scale):
                        size[g] = j + 1  # breakdown: an invariant subspace
                        alive[g] = False
                    beta[g, j] = bt if alive[g] else 0.0
                    acc[0, l] = 1.0 / bt if alive[g] else 0.0
                if j + 1 < k:
                    _rmul(Qb[j + 1], W, acc, np.int64(0), N)
                if j + 1 < k and (j + 1) % _CHECK_EVERY == 0:
                    n = 0
                    for l in range(BLOCK):
                        if alive[lb + l]:
                            lanes[lb + n] = lb + l
                            n += 1
                    live = lanes[lb: lb + n]
                    _ritz_top(alpha, beta, live, j + 1, res[0], res[1])
                    for i in range(n):
                        if res[0, i] <= RTOL * res[1, i]:  # False where NaN
                            size[live[i]] = j + 1
                            alive[live[i]] = False
                any_alive = False
                for l in range(BLOCK):
                    any_alive |= alive[lb + l]
                if not any_alive:
                    break

    return lanczos_rows


@jit
def _rdot(A, ra, B, rb, n, C, rc):
    """C[rc] = sum_t A[ra + t] B[rb + t] (rows, lane by lane, t in order)."""
    if SIMD:
        dot_v(A, ra, B, rb, n, C, rc)
        return
    for l in range(BLOCK):
        C[rc, l] = 0.0
    for t in range(n):
        for l in range(BLOCK):
            C[rc, l] += A[ra + t, l] * B[rb + t, l]


@jit
def _orth(Q, W, C1, C2, nq, sub, dot):
    """One sweep over the rows n of ``W``: with ``sub`` W[n] -= C1[i] Q[i, n] for i < nq,
    then with ``dot`` C2[i] += Q[i, n] W[n] (classical Gram-Schmidt against Q[:nq], the
    vectors read once per sweep)."""
    if SIMD:
        orth_v(Q, W, C1, C2, nq, sub, dot)
        return
    for n in range(W.shape[0]):
        for i in range(nq if sub else 0):
            for l in range(BLOCK):
                W[n, l] -= C1[i, l] * Q[i, n, l]
        for i in range(nq if dot else 0):
            for l in range(BLOCK):
                C2[i, l] += Q[i, n, l] * W[n, l]


@jit
def _rmul(D, A, B, sb, n):
    """D[t] = A[t] B[t sb] for t < n (rows; sb = 0: one row of B for all)."""
    if SIMD:
        mul_v(D, A, B, sb, n)
        return
    for t in range(n):
        for l in range(BLOCK):
            D[t, l] = A[t, l] * B[t * sb, l]


def _tridiagonal(al, be, k):
    """The (n, k, k) tridiagonals of the first k Lanczos steps of each row."""
    n = al.shape[0]
    Tm = np.zeros((n, k, k))
    ii = np.arange(k)
    Tm[:, ii, ii] = al[:, :k]
    Tm[:, ii[:-1], ii[1:]] = be[:, : k - 1]
    Tm[:, ii[1:], ii[:-1]] = be[:, : k - 1]
    return Tm


@jit
def _ritz_top(al, be, lanes, k, res, scale):
    """For each lane r = ``lanes[i]``, of its tridiagonal T_k (``al[r, :k]`` on the
    diagonal, ``be[r, :k-1]`` beside it): the residual |beta_{k-1} s_k| of the top Ritz
    pair (``res[i]``; s_k the last component of the unit eigenvector of the largest
    eigenvalue) and max |eigenvalue| (``scale[i]``); NaN for both where T_k is not finite
    or the iteration did not converge.  Eigenvalues by the implicit QL iteration with
    Wilkinson shifts (EISPACK tql2; Press et al., *Numerical Recipes*, tqli), carrying
    only the last row of the eigenvector matrix; per lane: the stopping rule of a lane
    never depends on the others.  (NumPy's stacked ``eigh`` spent about 10 us per 12 x 12
    matrix in LAPACK's dsyevd.)"""
    d = np.empty(k)
    e = np.empty(k)
    z = np.empty(k)
    for i in range(lanes.shape[0]):
        r = lanes[i]
        big = 0.0
        ok = True
        for t in range(k):
            x = abs(al[r, t])
            y = abs(be[r, t]) if t < k - 1 else 0.0
            ok &= (x < math.inf) & (y < math.inf)  # False for inf and NaN
            big = max(big, max(x, y))
        # scaled to entries <= 1: no overflow in the rotations' squares; eigenvalues
        # scale with it, eigenvectors do not
        sc = 1.0 / big if ok and big > 2.3e-308 else 1.0
        for t in range(k):
            d[t] = al[r, t] * sc
            e[t] = be[r, t] * sc if t < k - 1 else 0.0
            z[t] = 1.0 if t == k - 1 else 0.0
        for lo in range(k if ok else 0):
            it = 0
            while True:
                m = lo
                while m < k - 1:  # the first negligible off-diagonal from lo on
                    dd = abs(d[m]) + abs(d[m + 1])
                    if abs(e[m]) + dd == dd:
                        break
                    m += 1
                if m == lo:
                    break
                it += 1
                if it > 60:
                    ok = False
                    break
                g = (d[lo + 1] - d[lo]) / (2.0 * e[lo])
                h = math.sqrt(g * g + 1.0) if abs(g) < 1e150 else abs(g)
                g = d[m] - d[lo] + e[lo] / (g + (h if g >= 0.0 else -h))
                sn, cs, p = 1.0, 1.0, 0.0
                t = m - 1
                split = False
                while t >= lo:
                    f = sn * e[t]
                    b = cs * e[t]
                    h = math.sqrt(f * f + g * g)
                    e[t + 1] = h
                    if h == 0.0:  # an underflow: the matrix splits here
                        d[t + 1] -= p
                        e[m] = 0.0
                        split = True
                        break
                    sn = f / h
                    cs = g / h
                    g = d[t + 1] - p
                    h = (d[t] - g) * sn + 2.0 * cs * b
                    p = sn * h
                    d[t + 1] = g + p
                    g = cs * h - b
                    f = z[t + 1]
                    z[t + 1] = sn * z[t] + cs * f
                    z[t] = cs * z[t] - sn * f
                    t -= 1
                if not split:
                    d[lo] -= p
                    e[lo] = g
                    e[m] = 0.0
            if not ok:
                break
        if not ok:
            res[i] = np.nan
            scale[i] = np.nan
            continue
        top = 0
        big = 0.0
        for t in range(k):
            if d[t] > d[top]:
                top = t
            big = max(big, abs(d[t]))
        res[i] = be[r, k - 1] * abs(z[top])
        scale[i] = big / sc


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
    nb = npad // BLOCK
    T = np.zeros((npad, N))
    T[:n] = Th
    T = _blocks(T)
    Q0 = np.zeros((npad, N))  # the start vectors, a row per lane
    q = np.random.default_rng(_SEED).standard_normal(N)
    q = q / np.linalg.norm(q)
    Q0[:n] = q
    if start is not None:  # rows of zeros or not finite keep the fixed vector
        with np.errstate(all="ignore"):
            S = np.asarray(start, dtype=np.float64)
            nrm = np.linalg.norm(S, axis=1)
            use = np.isfinite(nrm) & (nrm > 0)
            # plus WARM_MIX of the fixed vector: a start orthogonal to the top eigenvector
            # (or an eigenvector itself, a breakdown at step 1) would never find it
            S = S[use] / nrm[use][:, None] + WARM_MIX * q
            Q0[np.flatnonzero(use)] = S / np.linalg.norm(S, axis=1)[:, None]
    Q = np.zeros((nb, k, N, BLOCK))  # block by block: each block's vectors contiguous
    Q[:, 0] = _blocks(Q0)
    alive = np.zeros(npad, dtype=np.bool_)
    alive[:n] = np.all(np.isfinite(Th), axis=1)
    ok = alive.copy()
    al = np.zeros((npad, k))
    be = np.zeros((npad, k))
    size = np.full(npad, k, dtype=np.int64)
    chunks = np.arange(nb, dtype=np.int64)
    Dg = np.zeros((0, N, BLOCK))
    if diag is not None:
        Dg = np.ones((npad, N))
        Dg[:n] = np.asarray(diag, dtype=np.float64)
        Dg = _blocks(Dg)
    fwd = (np.empty((nb, M.P, m, BLOCK)), np.empty((nb, M.P, BLOCK)))
    nw = G.max_threads() if threads is None else threads
    kernel = lanczos_kernel(M.act)
    with np.errstate(all="ignore"):
        fan_out(kernel, (M.X, M.y, M.bias, m, M.scale(m), T, Q, *fwd, Dg, alive, al, be, size,
                         np.empty(npad, dtype=np.int64), chunks), nw, ())
        return _finish(al, be, size, ok, n, Q if vectors else None)


def _blocks(A):
    """Rows of lanes (npad, N) as blocks (npad / BLOCK, N, BLOCK), C-contiguous."""
    npad, N = A.shape
    return np.ascontiguousarray(A.reshape(npad // BLOCK, BLOCK, N).transpose(0, 2, 1))


def _finish(al, be, size, ok, n, Q):
    """The top eigenvalue of every lane's tridiagonal (and its Ritz vector with ``Q``):
    the lanes whose Krylov spaces have the same dimension (``size``) in one stacked
    ``eigvalsh`` / ``eigh`` of exactly that size (a lane's value depends on its own
    tridiagonal only)."""
    sz = size[:n]
    # finite where its tridiagonal reads: alpha up to size, beta up to size - 1
    good = ok[:n] & _finite_upto(al[:n], sz) & _finite_upto(be[:n], sz - 1)
    res = np.full(n, np.inf)
    vec = np.zeros((n, Q.shape[2])) if Q is not None else None
    for kk in np.unique(sz[good]):
        rows = np.flatnonzero(good & (sz == kk))
        Tm = _tridiagonal(al[rows], be[rows], int(kk))
        if Q is None:
            res[rows] = np.linalg.eigvalsh(Tm)[:, -1]
            continue
        vals, S = np.linalg.eigh(Tm)
        res[rows] = vals[:, -1]
        for r, lane in enumerate(rows):  # lane by lane: same bits for any n
            s = S[r, :, -1]
            Ql = Q[lane // BLOCK, :, :, lane % BLOCK]
            v = s[0] * Ql[0]
            for i in range(1, int(kk)):
                v = v + s[i] * Ql[i]
            vec[lane] = v
    return res if Q is None else (res, vec)


def _finite_upto(A, m):
    """Whether row r of ``A`` is finite in its first ``m[r]`` entries."""
    bad = np.cumsum(~np.isfinite(A), axis=1)
    return np.concatenate([np.zeros((A.shape[0], 1), bad.dtype), bad], axis=1)[
        np.arange(A.shape[0]), m] == 0
