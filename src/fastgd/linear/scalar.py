"""One run per call: the scalar form of the linear-unit GD and SGD kernels.

These are plain Python functions over arrays and scalars only (no allocation, no
NumPy calls beyond indexing; the eigenbasis comes from
:func:`fastgd.linear.kernels.eig_basis`), so that the *same* source compiles for two
targets: ``numba.cuda.jit(device=True)`` (one run per CUDA thread,
:mod:`fastgd.linear.gpu`) and the CPU ``jit`` (:data:`gd_run_cpu`, :data:`sgd_run_cpu`;
tests compare them with the lane kernels of :mod:`fastgd.linear.kernels`, which remain
the fast CPU path).  The arithmetic follows the lane kernels operation for operation
(same status rules, thresholds, snapshots of the
last finite iterate and recording), so that a run agrees with the lane kernels bit for
bit where no fused multiply-add is contracted (CPU, the CUDA simulator) and to rounding
on a GPU.  The status rules, thresholds and momentum step are the functions of
:mod:`fastgd.kernels.steps` that the CPU lanes call (compiled for the target by
:func:`compile_for`).

Per-run state lives in caller-provided scratch arrays laid out ``[i, k]`` (component,
run: coalesced on a GPU).  Outputs are per run: ``out_status[k]``, ``out_w[k, i]``,
``out_loss[k]``, ``out_excess[k]``, ``out_tol_at[k]``, ``out_div_at[k]``,
``rec_loss[k, n_rec]``.  Sample orders for SGD come precomputed (``order_idx[s, ep, pos]``,
from :mod:`fastgd.kernels.rng`, see :func:`fastgd.linear.gpu.order_table`); ``cyclic``
passes an empty one.
"""

import math

from fastgd.kernels import BOUNDED, CONVERGED, DIVERGED, steps
from fastgd.kernels.jit import jit
from fastgd.kernels.steps import check, heavy_ball, thresholds  # noqa: F401 - names compile_for replaces
from fastgd.linear.kernels_gd import _SNAPSHOT

#: GD: steps between snapshots of the last finite iterate, as in the lane kernels
SNAPSHOT = _SNAPSHOT


def _quad_run(R, di, e, g, k, d):
    """|R e|^2 / 2 for run k (R^T R = H; as ``kernels_sgd._excess``: a sum of squares)."""
    ex = 0.0
    for i in range(d):
        gi = 0.0
        for j in range(d):
            gi += R[di, i, j] * e[j, k]
        g[i, k] = gi
        ex += gi * gi
    return ex * 0.5


def _to_w_run(V, wstar, w0, di, z, k, t, out_w):
    """out_w[k] = w* + V z (back from the eigenbasis); w0 itself at t = 0."""
    d = z.shape[0]
    for i in range(d):
        if t == 0:
            out_w[k, i] = w0[i]
        else:
            s = wstar[di, i]
            for j in range(d):
                s += V[di, i, j] * z[j, k]
            out_w[k, i] = s


def gd_run(k, di, j, lam, V, wstar, estar, c0, lr, beta, nesterov, w0, steps, tol, blowup,
           rec_every, z, buf, zok, out_status, out_w, out_loss, out_excess, out_tol_at,
           out_div_at, rec_loss):
    """Batch GD (plain / heavy ball / Nesterov) for run k: dataset di, rate index j, in
    the eigenbasis of H (``lam[di]``, ``V[di]`` from :func:`.kernels.eig_basis`), as
    :func:`.kernels.gd_kernel`: plain GD multiplies coordinate i by 1 - lr lambda_i, the
    excess loss is sum_i lambda_i z_i^2 / 2."""
    d = lam.shape[1]
    # lr: one grid, or one per dataset (rows of beta's length: lr_unit="eta_max")
    lre = lr[di * beta.shape[0] + j] if lr.shape[0] != beta.shape[0] else lr[j]
    bet = beta[j]
    mom = bet != 0.0
    for jj in range(d):
        zj = 0.0
        for i in range(d):
            zj += V[di, i, jj] * (w0[i] - wstar[di, i])
        z[jj, k] = zj
        zok[jj, k] = zj
        buf[jj, k] = 0.0
    es = estar[di]
    ex = 0.0
    for i in range(d):
        ex += 0.5 * lam[di, i] * (z[i, k] * z[i, k])
    thc, thd = thresholds(es, ex, c0[di], tol, blowup)
    nrec = rec_loss.shape[1]
    st = BOUNDED
    t = 0
    for t in range(steps + 1):
        ex = 0.0
        for i in range(d):
            ex += (0.5 * lam[di, i]) * (z[i, k] * z[i, k])
        st = check(ex, thc, thd)
        if st != 0:
            break
        if nrec > 0 and t % rec_every == 0:
            rec_loss[k, t // rec_every] = es + ex
        if t == steps:
            break
        if t % SNAPSHOT == 0 and ex < math.inf:
            for i in range(d):
                zok[i, k] = z[i, k]
        for i in range(d):
            li = lam[di, i]
            if not mom:
                z[i, k] = (1.0 - lre * li) * z[i, k]
            else:
                z[i, k], buf[i, k] = heavy_ball(z[i, k], li * z[i, k], buf[i, k], lre, bet,
                                                nesterov)
    lossv = es + ex
    exv = ex
    if st == DIVERGED:
        lossv = math.inf
        exv = math.inf
        if not (ex < math.inf):
            for i in range(d):
                z[i, k] = zok[i, k]
    _to_w_run(V, wstar, w0, di, z, k, t, out_w)
    _write(k, t, st, lossv, exv, rec_every, out_status, out_loss, out_excess, out_tol_at,
           out_div_at, rec_loss)


def _write(k, t, st, lossv, exv, rec_every, out_status, out_loss, out_excess, out_tol_at,
           out_div_at, rec_loss):
    out_status[k] = st
    out_loss[k] = lossv
    out_excess[k] = exv
    out_tol_at[k] = t if st == CONVERGED else -1
    out_div_at[k] = t if st == DIVERGED else -1
    nrec = rec_loss.shape[1]
    r = (t + rec_every - 1) // rec_every  # later records: fastgd.engine.grid.fill_records
    if r < nrec:
        rec_loss[k, r] = lossv


def sgd_run(k, di, si, j, X, y, P, R, wstar, estar, c0, lr, beta, nesterov, w0, epochs,
            batch, order_idx, oi, tol, blowup, rec_every, w, e, g, buf, wok, out_status,
            out_w, out_loss, out_excess, out_tol_at, out_div_at, rec_loss):
    """Per-sample / minibatch SGD for run k: dataset di (first P rows), seed si, rate j.

    ``order_idx[oi, ep, pos]`` is the sample visited at position pos of epoch ep
    (shuffle / replacement; ``oi`` indexes the (P, seed) pair), or an array with a
    zero-length first axis for the cyclic order (sample = position)."""
    d = X.shape[2]
    # lr: one grid, or one per dataset (rows of beta's length: lr_unit="eta_max")
    lre = lr[di * beta.shape[0] + j] if lr.shape[0] != beta.shape[0] else lr[j]
    zero = lre - lre  # 0 in the data's precision: keeps the float32 inner loop float32
    bet = beta[j]
    mom = bet != 0.0
    cyclic = order_idx.shape[0] == 0
    for i in range(d):
        w[i, k] = w0[i]
        wok[i, k] = w0[i]
        e[i, k] = w0[i] - wstar[di, i]
        buf[i, k] = 0.0
    es = estar[di]
    ex = _quad_run(R, di, e, g, k, d)
    thc, thd = thresholds(es, ex, c0[di], tol, blowup)
    nrec = rec_loss.shape[1]
    st = BOUNDED
    ep = 0
    for ep in range(epochs + 1):
        if ep > 0:
            for i in range(d):
                e[i, k] = w[i, k] - wstar[di, i]
            ex = _quad_run(R, di, e, g, k, d)
        st = check(ex, thc, thd)
        if st != 0:
            break
        if nrec > 0 and ep % rec_every == 0:
            rec_loss[k, ep // rec_every] = es + ex
        if ep == epochs:
            break
        if ex < math.inf:
            for i in range(d):
                wok[i, k] = w[i, k]
        pos = 0
        while pos < P:
            nb = min(batch, P - pos)
            if nb == 1 and not mom:
                p = pos if cyclic else order_idx[oi, ep, pos]
                yp = y[di, p]
                r = zero
                for i in range(d):
                    r += w[i, k] * X[di, p, i]
                r = lre * (r - yp)
                for i in range(d):
                    w[i, k] = w[i, k] - r * X[di, p, i]
            else:
                for i in range(d):
                    g[i, k] = 0.0
                for q in range(nb):
                    p = pos + q if cyclic else order_idx[oi, ep, pos + q]
                    yp = y[di, p]
                    r = zero
                    for i in range(d):
                        r += w[i, k] * X[di, p, i]
                    r = r - yp
                    for i in range(d):
                        g[i, k] += r * X[di, p, i]
                inv = 1.0 / nb
                for i in range(d):
                    if mom:
                        w[i, k], buf[i, k] = heavy_ball(w[i, k], g[i, k] * inv, buf[i, k], lre,
                                                        bet, nesterov)
                    else:
                        w[i, k] = w[i, k] - lre * (g[i, k] * inv)
            pos += nb
    lossv = es + ex
    exv = ex
    if st == DIVERGED:
        lossv = math.inf
        exv = math.inf
        if not (ex < math.inf):
            for i in range(d):
                w[i, k] = wok[i, k]
    for i in range(d):
        out_w[k, i] = w[i, k]
    _write(k, ep, st, lossv, exv, rec_every, out_status, out_loss, out_excess, out_tol_at,
           out_div_at, rec_loss)


# ------------------------------------------------------------ scalar chain networks
# One cell of :mod:`fastgd.chain.kernels` (f = w_L ... w_1 x): cell = init cell // n_lr, rate
# cell % n_lr; outputs at run index r; state [i, r] (``pre`` has depth + 1 rows).


def _chain_products_run(w, pre, p, r, depth):
    """pi = prod_i w_i (returned) and p_i = prod_{j != i} w_j, as ``chain.kernels._products``."""
    pre[0, r] = 1.0
    for i in range(depth):
        pre[i + 1, r] = pre[i, r] * w[i, r]
    pi = pre[depth, r]
    pre[depth, r] = 1.0
    for i in range(depth - 1, -1, -1):
        p[i, r] = pre[i, r] * pre[depth, r]
        pre[depth, r] *= w[i, r]
    return pi


def _chain_excess_run(w, pre, p, r, depth, half, pstar):
    """(pi, excess): the product and the excess loss half (pi - pi*)^2 of run r."""
    pi = _chain_products_run(w, pre, p, r, depth)
    dd = pi - pstar
    return pi, half * dd * dd


def _chain_start_run(r, cell, inits, nlr, w, wprev, pre, p, depth, half, pstar, estar, c0, tol,
                     blowup):
    """Run r at its start: weights from ``inits``; returns (pi, excess, thc, thd), the
    thresholds of :func:`fastgd.kernels.steps.thresholds`."""
    for i in range(depth):
        w[i, r] = inits[cell // nlr, i]
        wprev[i, r] = w[i, r]
    pi, ex = _chain_excess_run(w, pre, p, r, depth, half, pstar)
    thc, thd = thresholds(estar, ex, c0, tol, blowup)
    return pi, ex, thc, thd


def _chain_finish(r, t, st, w, excess, maxloss, estar, out_status, out_w, out_excess,
                  out_tol_at, out_div_at, out_maxloss, rec_loss, rec_w):
    depth = out_w.shape[1]
    out_status[r] = st
    for i in range(depth):
        out_w[r, i] = w[i, r]
    out_excess[r] = excess
    out_maxloss[r] = maxloss
    out_tol_at[r] = t if st == CONVERGED else -1
    out_div_at[r] = t if st == DIVERGED else -1
    nrec = rec_loss.shape[1]
    for s in range(t, nrec):
        rec_loss[r, s] = estar + excess
    if rec_w.shape[1] > 0:
        for s in range(t, nrec):
            for i in range(depth):
                rec_w[r, s, i] = w[i, r]


def chain_gd_run(r, cell, sxx, pstar, estar, c0, cs, inits, lrs, steps, tol, blowup, w,
                 wprev, pre, p, out_status, out_w, out_excess, out_tol_at, out_div_at,
                 out_maxloss, rec_loss, rec_w):
    """Batch GD on a scalar chain for one cell (as ``chain.kernels.gd_chain``)."""
    depth = inits.shape[1]
    nlr = lrs.shape[0]
    lre = lrs[cell % nlr] * cs * sxx
    half = 0.5 * cs * sxx
    pi, ex, thc, thd = _chain_start_run(r, cell, inits, nlr, w, wprev, pre, p, depth, half,
                                        pstar, estar, c0, tol, blowup)
    mx = estar + ex
    nrec = rec_loss.shape[1]
    t = 0
    for t in range(steps + 1):
        if t > 0:
            pi, ex = _chain_excess_run(w, pre, p, r, depth, half, pstar)
            lo = estar + ex
            if lo > mx:
                mx = lo
        st = check(ex, thc, thd)
        if st == DIVERGED:
            for i in range(depth):
                w[i, r] = wprev[i, r]
            _chain_finish(r, t, DIVERGED, w, math.inf, math.inf, estar, out_status, out_w,
                          out_excess, out_tol_at, out_div_at, out_maxloss, rec_loss, rec_w)
            return
        if st == CONVERGED:
            ntk = 0.0
            for i in range(depth):
                ntk += p[i, r] * p[i, r]
            if not (lre * ntk > 2.0):
                _chain_finish(r, t, CONVERGED, w, ex, mx, estar, out_status, out_w,
                              out_excess, out_tol_at, out_div_at, out_maxloss, rec_loss,
                              rec_w)
                return
        if nrec > 0:
            rec_loss[r, t] = estar + ex
            if rec_w.shape[1] > 0:
                for i in range(depth):
                    rec_w[r, t, i] = w[i, r]
        if t == steps:
            break
        gr = lre * (pi - pstar)
        for i in range(depth):
            wprev[i, r] = w[i, r]
            w[i, r] -= gr * p[i, r]
    _chain_finish(r, t + 1, BOUNDED, w, ex, mx, estar, out_status, out_w, out_excess,
                  out_tol_at, out_div_at, out_maxloss, rec_loss, rec_w)


def chain_sgd_run(r, cell, X, Y, sxx, pstar, estar, c0, cs, inits, lrs, epochs, batch,
                  order_idx, tol, blowup, w, wprev, pre, p, out_status, out_w, out_excess,
                  out_tol_at, out_div_at, out_maxloss, rec_loss, rec_w):
    """SGD on a scalar chain for one cell (as ``chain.kernels.sgd_chain``);
    ``order_idx[0, ep, pos]`` the sample order (zero-length first axis: cyclic)."""
    depth = inits.shape[1]
    nlr = lrs.shape[0]
    P = X.shape[0]
    cyclic = order_idx.shape[0] == 0
    lre = lrs[cell % nlr] * cs
    zero = lre - lre
    half = 0.5 * cs * sxx
    pi, ex, thc, thd = _chain_start_run(r, cell, inits, nlr, w, wprev, pre, p, depth, half,
                                        pstar, estar, c0, tol, blowup)
    mx = estar + ex
    nrec = rec_loss.shape[1]
    ep = 0
    for ep in range(epochs + 1):
        if ep > 0:
            pi, ex = _chain_excess_run(w, pre, p, r, depth, half, pstar)
            lo = estar + ex
            if lo > mx:
                mx = lo
        st = check(ex, thc, thd)
        if st == DIVERGED:
            for i in range(depth):
                w[i, r] = wprev[i, r]
            _chain_finish(r, ep, DIVERGED, w, math.inf, math.inf, estar, out_status, out_w,
                          out_excess, out_tol_at, out_div_at, out_maxloss, rec_loss, rec_w)
            return
        if st == CONVERGED:
            _chain_finish(r, ep, CONVERGED, w, ex, mx, estar, out_status, out_w, out_excess,
                          out_tol_at, out_div_at, out_maxloss, rec_loss, rec_w)
            return
        if nrec > 0:
            rec_loss[r, ep] = estar + ex
            if rec_w.shape[1] > 0:
                for i in range(depth):
                    rec_w[r, ep, i] = w[i, r]
        if ep == epochs:
            break
        for i in range(depth):
            wprev[i, r] = w[i, r]
        pos = 0
        while pos < P:
            nb = min(batch, P - pos)
            pi = _chain_products_run(w, pre, p, r, depth)
            rr = zero
            for q in range(nb):
                s = pos + q if cyclic else order_idx[0, ep, pos + q]
                xs = X[s]
                rr += xs * (pi * xs - Y[s])
            inv = 1.0 / nb
            rr = lre * (rr * inv)
            for i in range(depth):
                w[i, r] -= rr * p[i, r]
            pos += nb
    _chain_finish(r, ep + 1, BOUNDED, w, ex, mx, estar, out_status, out_w, out_excess,
                  out_tol_at, out_div_at, out_maxloss, rec_loss, rec_w)


def compile_for(decorate):
    """Compile the run functions with ``decorate`` (e.g. ``cuda.jit(device=True)``),
    each calling the others' compiled versions.  Returns a dict name -> compiled
    (``gd_run``, ``sgd_run``, ``chain_gd_run``, ``chain_sgd_run``)."""
    import types as _pytypes

    glb = dict(globals())
    # CUDA's simulator runs these as Python threads, each iterating the globals of the
    # function it calls (numba's swapped_cuda_module); an overflow warning's first
    # registry entry would grow that dict under another thread's iteration (a
    # RuntimeError seen under taskset -c 0): the registries exist before any call
    glb.setdefault("__warningregistry__", {})
    done = {}
    for name, py in steps.PY.items():  # the step math shared with the CPU lanes
        py.__globals__.setdefault("__warningregistry__", {})
        glb[name] = decorate(py)
    for name in ("_quad_run", "_write", "_to_w_run", "gd_run", "sgd_run",
                 "_chain_products_run", "_chain_excess_run", "_chain_start_run",
                 "_chain_finish", "chain_gd_run", "chain_sgd_run"):
        py = globals()[name]
        fn = _pytypes.FunctionType(py.__code__, glb, name)
        fn.__qualname__ = py.__qualname__
        done[name] = decorate(fn)
        glb[name] = done[name]
    return done


_CPU = compile_for(jit)
gd_run_cpu = _CPU["gd_run"]
sgd_run_cpu = _CPU["sgd_run"]
chain_gd_run_cpu = _CPU["chain_gd_run"]
chain_sgd_run_cpu = _CPU["chain_sgd_run"]
