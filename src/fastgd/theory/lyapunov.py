"""Top Lyapunov exponents of SGD's random matrix product, the raw material of the
almost-sure boundary (:mod:`fastgd.theory.almost_sure`).

Random orders: estimated by simulation with the SIMD lane kernels, one rate per lane,
``seeds`` sample orders (:func:`_lyapunov`, summarised by :func:`_mean_se`).  Cyclic
order: the epoch product is deterministic and its log spectral radius is exact
(:func:`_epoch_product_log_rho`).
"""

from __future__ import annotations

import math

import numpy as np

from fastgd import status as ST
from fastgd.engine import grid as G
from fastgd.linear import problem as PB


def _lyapunov(Xr, lrs, batch, order_code, beta, nesterov, keys, epochs, burn, nthreads):
    """Per-seed top Lyapunov exponent per step, shape (n_seed, n_lr).

    Noise-free labels (y = 0, w* = 0) so that w is the error and its dynamics are the
    pure random matrix product; (w, buf) is renormalised every epoch and the log
    growth accumulated by the kernel.  The exponent is the difference of the log
    growth after ``burn + epochs`` and after ``burn`` epochs (the sample order is a
    function of (key, epoch, position), so the longer run extends the shorter one).
    """
    from fastgd.linear.contract import LinearInputs
    from fastgd.linear.executors import launch
    from fastgd.linear.table import KernelSpec

    P, r = Xr.shape
    rng = np.random.default_rng(20240601)
    w0 = rng.standard_normal(r)
    w0 /= np.linalg.norm(w0)
    n_seed, n_lr = keys.shape[0], lrs.size
    inputs = LinearInputs(X=np.ascontiguousarray(Xr[None]), y=np.zeros((1, P)), P=np.array([P]),
                          R=PB.hessian_roots(Xr[None]), wstar=np.zeros((1, r)),
                          estar=np.zeros(1), c0=np.zeros(1), lr=lrs,
                          beta=np.full(n_lr, beta), w0=w0, keys=keys)
    chunks = G.make_chunks(1, n_seed, n_lr, n_lr)  # one chunk per seed: lanes = rates
    spe = -(-P // batch)
    logs, stats = [], []
    for E in ((burn, burn + epochs) if burn > 0 else (burn + epochs,)):
        out = G.Outputs(1, n_seed, n_lr, r)
        spec = KernelSpec("sgd", r, E, 0.0, np.inf, momentum=beta != 0, nesterov=nesterov,
                          batch=batch, order=order_code, renorm=1)
        launch(spec, inputs, chunks, nthreads, out)
        logs.append(out.logg[0].copy())
        stats.append(out.status[0].copy())
    g = (logs[-1] - (logs[0] if burn > 0 else 0.0)) / (epochs * spe)
    st = np.maximum(stats[0], stats[-1]) if burn > 0 else stats[-1]
    g = np.where(st == ST.Status.DIVERGED, np.inf, g)
    g = np.where(st == ST.Status.CONVERGED, -np.inf, g)
    return g


def _mean_se(g):
    n = g.shape[0]
    pinf = np.any(g == np.inf, axis=0)
    ninf = np.any(g == -np.inf, axis=0)
    gf = np.where(np.isfinite(g), g, 0.0)
    mean = gf.mean(axis=0)
    se = gf.std(axis=0, ddof=1) / math.sqrt(n) if n > 1 else np.zeros(g.shape[1])
    mean = np.where(pinf, np.inf, np.where(ninf & ~pinf, -np.inf, mean))
    se = np.where(pinf | ninf, 0.0, se)
    return mean, se


def _first_crossing(lrs, v):
    """Linear interpolation of the first upward zero crossing of v(lrs); NaN if none."""
    pos = v > 0
    k = np.flatnonzero(pos[1:] & ~pos[:-1])
    if pos[0]:
        return lrs[0] if not np.all(pos) else float("nan")
    if k.size == 0:
        return float("nan")
    k = k[0]
    a, b = v[k], v[k + 1]
    if not np.isfinite(b) or not np.isfinite(a):
        return float(lrs[k] if np.isfinite(a) and a == 0 else 0.5 * (lrs[k] + lrs[k + 1]))
    return float(lrs[k] + (lrs[k + 1] - lrs[k]) * (-a) / (b - a))


def _epoch_product_log_rho(Xr, lr, batch, beta, nesterov):
    """log spectral radius of the cyclic epoch product (renormalised as it goes)."""
    P, r = Xr.shape
    n = 2 * r if beta > 0 else r
    Pm = np.eye(n)
    logscale = 0.0
    I = np.eye(r)
    for pos in range(0, P, batch):
        xb = Xr[pos:pos + batch]
        HB = xb.T @ xb / xb.shape[0]
        if beta > 0:
            if nesterov:
                M = np.block([[I - lr * (1 + beta) * HB, -lr * beta * beta * I], [HB, beta * I]])
            else:
                M = np.block([[I - lr * HB, -lr * beta * I], [HB, beta * I]])
        else:
            M = I - lr * HB
        Pm = M @ Pm
        s = np.abs(Pm).max()
        if not (s > 0 and np.isfinite(s)):
            return -np.inf if s == 0 else np.inf
        Pm /= s
        logscale += math.log(s)
    rho = np.abs(np.linalg.eigvals(Pm)).max()
    return (math.log(rho) + logscale) if rho > 0 else -np.inf
