"""Kernels for scalar chain networks f(x) = w_L ... w_1 x (depth L >= 2).

Loss (``cs`` the loss scale c): E(w) = c/(2P) sum_p (y_p - pi x_p)^2 with pi = prod_i w_i.
It depends on w only through the product pi, as a 1-D quadratic:

    E = E* + c/2 Sxx (pi - pi*)^2,   Sxx = mean x^2,  pi* = mean(x y) / Sxx,

E* the least-squares residual of the 1-D fit of the product (0 when the samples can
be fitted).  Gradient dE/dw_i = c r p_i with r = Sxx (pi - pi*) and p_i = prod_{j != i} w_j
(prefix times suffix products: no division, exact at w_j = 0).  Batch GD therefore
costs O(L) per step for any number of samples.

Layout (DESIGN.md): a *chunk* is up to 64 runs (lanes) on the same data; lanes are
consecutive cells of a flattened (init x lr) grid, cell k = init k // n_lr, lr k % n_lr.
State is stored ``[field][lane]`` so that the innermost loops run over lanes.  Events
(convergence, divergence) are detected without branches in the vector loop (an
or-reduced flag); a scalar handler runs only on the rare steps where a lane finishes.
Finished lanes are frozen (lr set to 0, weights reset to a finite iterate) and a chunk
ends as soon as all of its lanes are done.

Status rule: CONVERGED when the excess E - E* <= tol x initial excess (batch GD also
requires the nearby minimum to be linearly stable, lr NTK(w) <= 2, NTK = c Sxx sum_i p_i^2:
beyond the edge of stability a chaotic orbit can pass within tol of an unstable minimum
and leave again); DIVERGED when
E is not finite or E > blowup x max(E(w0), E(0)), E(0) = c/2 mean y^2 (a catapult
spike from a start next to a minimum is not a divergence); BOUNDED otherwise.

Outputs are flat over cells: ``out_status[k]``, ``out_w[k, i]``, ``out_excess[k]``,
``out_tol_at[k]``, ``out_div_at[k]``, ``out_maxloss[k]`` (max of E over the checked
iterates, ``inf`` when diverged); recordings ``rec_loss[k, t]`` and ``rec_w[k, t, i]``
(zero-length record axes switch recording off).  A diverged cell reports the last
iterate that passed the check (always finite) and loss ``inf``.
"""

import numpy as np

from fastgd.kernels import BOUNDED, CONVERGED, DIVERGED, ORDER_REPLACEMENT, ORDER_SHUFFLE
from fastgd.kernels.jit import jit
from fastgd.kernels.rng import hash4, permutation, randbelow
from fastgd.kernels.steps import check, thresholds
from fastgd.kernels.threads import fan_out


@jit
def _products(w, pre, p, pi, nl):
    """pi[l] = prod_i w[i, l] and p[i, l] = prod_{j != i} w[j, l] for every lane."""
    depth = w.shape[0]
    for l in range(nl):
        pre[0, l] = 1.0
    for i in range(depth):
        for l in range(nl):
            pre[i + 1, l] = pre[i, l] * w[i, l]
    for l in range(nl):
        pi[l] = pre[depth, l]
        pre[depth, l] = 1.0  # reused as the running suffix product
    for i in range(depth - 1, -1, -1):
        for l in range(nl):
            p[i, l] = pre[i, l] * pre[depth, l]
            pre[depth, l] *= w[i, l]


@jit
def _finish(l, k, t, status, src, excess, maxloss, out_status, out_w, out_excess,
            out_tol_at, out_div_at, out_maxloss, rec_loss, rec_w, estar):
    """Write lane ``l`` (cell ``k``) and fill its remaining recordings with the final value."""
    depth = src.shape[0]
    out_status[k] = status
    for i in range(depth):
        out_w[k, i] = src[i, l]
    out_excess[k] = excess
    out_maxloss[k] = maxloss
    if status == CONVERGED:
        out_tol_at[k] = t
    elif status == DIVERGED:
        out_div_at[k] = t
    nrec = rec_loss.shape[1]
    if nrec > 0:
        for s in range(t, nrec):
            rec_loss[k, s] = estar + excess
        if rec_w.shape[1] > 0:
            for s in range(t, nrec):
                for i in range(depth):
                    rec_w[k, s, i] = src[i, l]


@jit
def _start(inits, lrs, cs, sxx_or_1, pstar, estar, c0, tol, blowup, a, half, w, wprev, pre, p,
           pi, ex, lre, thc, thd, mx):
    """Lanes of cells a, a + 1, ... at their start: weights from ``inits``, rates
    lr c ``sxx_or_1`` (GD: lr c Sxx; SGD: lr c, the 1 exact), excess ``half`` (pi - pi*)^2,
    thresholds (:func:`.steps.thresholds`) and the running max of the loss."""
    depth, nl = w.shape
    nlr = lrs.shape[0]
    for l in range(nl):
        k = a + l
        lre[l] = lrs[k % nlr] * cs * sxx_or_1
        for i in range(depth):
            w[i, l] = inits[k // nlr, i]
            wprev[i, l] = w[i, l]
    _products(w, pre, p, pi, nl)
    for l in range(nl):
        d = pi[l] - pstar
        ex[l] = half * d * d
        thc[l], thd[l] = thresholds(estar, ex[l], c0, tol, blowup)
        mx[l] = estar + ex[l]


@jit
def _losses(w, pre, p, pi, ex, mx, half, pstar, estar):
    """The products (:func:`_products`), the excess of every lane and its running max."""
    nl = w.shape[1]
    _products(w, pre, p, pi, nl)
    for l in range(nl):
        d = pi[l] - pstar
        ex[l] = half * d * d
        lo = estar + ex[l]
        if lo > mx[l]:
            mx[l] = lo


@jit
def _events(a, t, stable, w, wprev, p, ex, thc, thd, mx, lre, active, estar, out_status,
            out_w, out_excess, out_tol_at, out_div_at, out_maxloss, rec_loss, rec_w):
    """Finish every active lane whose status changes at step ``t`` (:func:`.steps.check`):
    a diverged lane reports its previous iterate; with ``stable`` (batch GD) a converged
    lane also needs the minimum nearby to be linearly stable, lr NTK(w) <= 2 (a chaotic
    pass near an unstable one is not convergence).  Returns the number finished."""
    depth, nl = w.shape
    done = 0
    for l in range(nl):
        st = check(ex[l], thc[l], thd[l])
        if not active[l] or st == 0:
            continue
        if st == DIVERGED:
            for i in range(depth):
                w[i, l] = wprev[i, l]
            _finish(l, a + l, t, np.int64(DIVERGED), w, np.inf, np.inf, out_status, out_w,
                    out_excess, out_tol_at, out_div_at, out_maxloss, rec_loss, rec_w, estar)
        else:  # CONVERGED
            if stable:
                ntk = 0.0
                for i in range(depth):
                    ntk += p[i, l] * p[i, l]
                if lre[l] * ntk > 2.0:
                    continue
            _finish(l, a + l, t, np.int64(CONVERGED), w, ex[l], mx[l], out_status, out_w,
                    out_excess, out_tol_at, out_div_at, out_maxloss, rec_loss, rec_w, estar)
        active[l] = False
        lre[l] = 0.0
        done += 1
    return done


@jit
def _record(a, t, w, ex, active, estar, rec_loss, rec_w):
    """Record the loss (and the weights, where ``rec_w`` has a record axis) of every
    active lane at step ``t``."""
    depth, nl = w.shape
    for l in range(nl):
        if active[l]:
            rec_loss[a + l, t] = estar + ex[l]
            if rec_w.shape[1] > 0:
                for i in range(depth):
                    rec_w[a + l, t, i] = w[i, l]


@jit
def gd_chain(sxx, pstar, estar, c0, cs, inits, lrs, steps, tol, blowup, a, b, out_status,
             out_w, out_excess, out_tol_at, out_div_at, out_maxloss, rec_loss, rec_w):
    """Batch GD on a scalar chain for cells a..b-1 (lanes).

    Parameters (positional): ``sxx`` = mean x^2, ``pstar`` = pi*, ``estar`` = E*,
    ``c0`` = E(0), ``cs`` = loss scale c, ``inits`` (n_init, L), ``lrs`` (n_lr,),
    ``steps``, ``tol``, ``blowup``, cell range [a, b), then the outputs (module doc).
    Step: w_i <- w_i - lr c r p_i with r = Sxx (pi - pi*), every step checked; converged
    needs excess <= tol x initial excess and lr NTK(w) <= 2.
    """
    depth = inits.shape[1]
    nl = b - a
    w = np.empty((depth, nl))
    wprev = np.empty((depth, nl))
    pre = np.empty((depth + 1, nl))
    p = np.empty((depth, nl))
    pi = np.empty(nl)
    ex = np.empty(nl)
    lre = np.empty(nl)
    thc = np.empty(nl)
    thd = np.empty(nl)
    mx = np.empty(nl)
    active = np.ones(nl, dtype=np.bool_)
    half = 0.5 * cs * sxx
    _start(inits, lrs, cs, sxx, pstar, estar, c0, tol, blowup, a, half, w, wprev, pre, p, pi,
           ex, lre, thc, thd, mx)
    nact = nl
    nrec = rec_loss.shape[1]
    t = 0
    for t in range(steps + 1):
        if t > 0:
            _losses(w, pre, p, pi, ex, mx, half, pstar, estar)
        # branch-free event detection (the status rule of .steps.check)
        ev = 0
        for l in range(nl):
            ev += active[l] & (check(ex[l], thc[l], thd[l]) != 0)
        if ev > 0:
            nact -= _events(a, t, np.bool_(True), w, wprev, p, ex, thc, thd, mx, lre, active, estar,
                            out_status, out_w, out_excess, out_tol_at, out_div_at,
                            out_maxloss, rec_loss, rec_w)
        if nact == 0:
            break
        if nrec > 0:
            _record(a, t, w, ex, active, estar, rec_loss, rec_w)
        if t == steps:
            break
        for l in range(nl):
            ex[l] = lre[l] * (pi[l] - pstar)  # reused: lr c Sxx (pi - pi*) = lr c r
        for i in range(depth):
            for l in range(nl):
                wprev[i, l] = w[i, l]
                w[i, l] -= ex[l] * p[i, l]
    for l in range(nl):
        if active[l]:
            _finish(l, a + l, t + 1, np.int64(BOUNDED), w, ex[l], mx[l], out_status, out_w,
                    out_excess, out_tol_at, out_div_at, out_maxloss, rec_loss, rec_w, estar)


@jit
def sgd_chain(X, Y, sxx, pstar, estar, c0, cs, inits, lrs, epochs, batch, order, k0, k1, tol,
              blowup, a, b, out_status, out_w, out_excess, out_tol_at, out_div_at, out_maxloss,
              rec_loss, rec_w):
    """Per-sample / minibatch SGD on a scalar chain for cells a..b-1 (lanes).

    Each epoch visits the P samples in batches of ``batch`` (the last one smaller when
    it does not divide P) in the order ``order`` (cyclic / shuffle / replacement) from
    the counter-based hash keyed by (k0, k1): all lanes see the same samples.  Per
    batch: r = (1/nb) sum_p x_p (pi x_p - y_p), w_i <- w_i - lr c r p_i.  The status
    is checked once per epoch on the full loss (time unit: epochs).
    """
    depth = inits.shape[1]
    P = X.shape[0]
    nl = b - a
    w = np.empty((depth, nl))
    wprev = np.empty((depth, nl))
    pre = np.empty((depth + 1, nl))
    p = np.empty((depth, nl))
    pi = np.empty(nl)
    r = np.empty(nl)
    ex = np.empty(nl)
    lre = np.empty(nl)
    thc = np.empty(nl)
    thd = np.empty(nl)
    mx = np.empty(nl)
    active = np.ones(nl, dtype=np.bool_)
    perm = np.empty(P, dtype=np.int64)
    half = 0.5 * cs * sxx
    _start(inits, lrs, cs, 1.0, pstar, estar, c0, tol, blowup, a, half, w, wprev, pre, p, pi,
           ex, lre, thc, thd, mx)
    nact = nl
    nrec = rec_loss.shape[1]
    ep = 0
    for ep in range(epochs + 1):
        if ep > 0:
            _losses(w, pre, p, pi, ex, mx, half, pstar, estar)
        ev = 0
        for l in range(nl):
            ev += active[l] & (check(ex[l], thc[l], thd[l]) != 0)
        if ev > 0:
            nact -= _events(a, ep, np.bool_(False), w, wprev, p, ex, thc, thd, mx, lre, active,
                            estar,
                            out_status, out_w, out_excess, out_tol_at, out_div_at,
                            out_maxloss, rec_loss, rec_w)
        if nact == 0:
            break
        if nrec > 0:
            _record(a, ep, w, ex, active, estar, rec_loss, rec_w)
        if ep == epochs:
            break
        for i in range(depth):
            for l in range(nl):
                wprev[i, l] = w[i, l]
        if order == ORDER_SHUFFLE:
            permutation(k0, k1, ep, perm)
        pos = 0
        while pos < P:
            nb = min(batch, P - pos)
            _products(w, pre, p, pi, nl)
            for l in range(nl):
                r[l] = 0.0
            for q in range(nb):
                if order == ORDER_SHUFFLE:
                    s = perm[pos + q]
                elif order == ORDER_REPLACEMENT:
                    s = randbelow(hash4(k0, k1, ep, pos + q), P)
                else:
                    s = pos + q
                xs = X[s]
                ys = Y[s]
                for l in range(nl):
                    r[l] += xs * (pi[l] * xs - ys)
            inv = 1.0 / nb
            for l in range(nl):
                r[l] = lre[l] * (r[l] * inv)
            for i in range(depth):
                for l in range(nl):
                    w[i, l] -= r[l] * p[i, l]
            pos += nb
    for l in range(nl):
        if active[l]:
            _finish(l, a + l, ep + 1, np.int64(BOUNDED), w, ex[l], mx[l], out_status, out_w,
                    out_excess, out_tol_at, out_div_at, out_maxloss, rec_loss, rec_w, estar)


@jit
def rows_gd_chain(sxx, pstar, estar, c0, cs, inits, lrs, steps, tol, blowup, chunks, wk,
                  nworkers, out_status, out_w, out_excess, out_tol_at, out_div_at, out_maxloss,
                  rec_loss, rec_w):
    """Worker ``wk`` of ``nworkers``: the GD chunks wk, wk + nworkers, ... of ``chunks``
    (rows: _, _, cell_start, cell_stop)."""
    for k in range(wk, chunks.shape[0], nworkers):
        gd_chain(sxx, pstar, estar, c0, cs, inits, lrs, steps, tol, blowup, chunks[k, 2],
                 chunks[k, 3], out_status, out_w, out_excess, out_tol_at, out_div_at,
                 out_maxloss, rec_loss, rec_w)


@jit
def rows_sgd_chain(X, Y, sxx, pstar, estar, c0, cs, inits, lrs, epochs, batch, order, key, tol,
                   blowup, chunks, wk, nworkers, out_status, out_w, out_excess, out_tol_at,
                   out_div_at, out_maxloss, rec_loss, rec_w):
    """Worker ``wk`` of ``nworkers``: the SGD chunks wk, wk + nworkers, ...; every cell
    uses the sample order of ``key`` (two 32-bit words)."""
    for k in range(wk, chunks.shape[0], nworkers):
        sgd_chain(X, Y, sxx, pstar, estar, c0, cs, inits, lrs, epochs, batch, order, key[0],
                  key[1], tol, blowup, chunks[k, 2], chunks[k, 3], out_status, out_w,
                  out_excess, out_tol_at, out_div_at, out_maxloss, rec_loss, rec_w)


def grid_gd_chain(sxx, pstar, estar, c0, cs, inits, lrs, steps, tol, blowup, chunks, nworkers,
                  *outputs):
    """Run the GD chunks listed in ``chunks`` on ``nworkers`` threads (chunk k goes to
    worker k % nworkers; :func:`.threads.fan_out`, as for every kernel)."""
    fan_out(rows_gd_chain, (sxx, pstar, estar, c0, cs, inits, lrs, steps, tol, blowup,
                            chunks), nworkers, outputs)


def grid_sgd_chain(X, Y, sxx, pstar, estar, c0, cs, inits, lrs, epochs, batch, order, key, tol,
                   blowup, chunks, nworkers, *outputs):
    """Run the SGD chunks listed in ``chunks`` on ``nworkers`` threads."""
    fan_out(rows_sgd_chain, (X, Y, sxx, pstar, estar, c0, cs, inits, lrs, epochs, batch,
                             order, key, tol, blowup, chunks), nworkers, outputs)
