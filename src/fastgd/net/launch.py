"""Between the network API (:mod:`fastgd.net.runs`, :mod:`fastgd.net.sweep`) and its
kernels (:func:`fastgd.net.kernels.grid_net`): the chunks of learning rates run as SIMD
lanes, the flat per-cell outputs, and the final status rules.

A single run is one lane of the sweep's kernel, so a :func:`fastgd.net.net_sweep` cell
with the same arguments is bit-identical; the optimizer (:mod:`fastgd.net.adaptive`)
reaches the kernel as two small arrays (``opt_i``, ``opt_f``).
"""

from __future__ import annotations

import sys
import time

import numpy as np

from fastgd.engine import grid as G
from fastgd.engine.notice import first_compile
from fastgd.net.adaptive import _Optim
from fastgd.status import Status

#: learning rates per chunk (SIMD lanes sharing one initialisation), and for wide
#: networks one vector block of the kernel (:mod:`fastgd.kernels.simd`: 8).  A chunk's
#: arrays are [param][lane]: with 32 lanes a block's rows sit 256 bytes apart and use a
#: quarter of the cache's sets, which costs nothing while a block's parameters, gradient
#: and activations fit a quarter of the cache and a lot when they do not (wide networks
#: run faster with 8 lanes; bench/test_bench_net.py)
LANES = 32
LANES_WIDE = 8
_FIT = 4096  # cache lines (256 KB): the largest block footprint run with LANES


def _lanes(m, d, bias):
    """Lanes per chunk for width m: a block touches ~3 N + 8 m lines (parameters,
    gradient and rollback copy, activations of 8 samples)."""
    N = m * (d + 1 + int(bias))
    return LANES if 3 * N + 8 * m <= _FIT else LANES_WIDE


class _Out:
    """Flat per-cell kernel outputs (cells: init-major, lr-minor); with ``moments`` also
    the second moments of an adaptive method where the parameters go."""

    def __init__(self, Ns, n_lr, n_rec=0, rec_every=0, n_th=0, moments=False):
        n = len(Ns) * n_lr
        per_cell_N = np.repeat(np.asarray(Ns, dtype=np.int64), n_lr)
        self.status = np.full(n, Status.NOT_RUN, dtype=np.int8)
        self.theta_off = np.concatenate([[0], np.cumsum(per_cell_N)]).astype(np.int64)
        self.theta = np.zeros(int(self.theta_off[-1]))
        self.loss = np.full(n, np.inf)
        self.tol_at = np.full(n, -1, dtype=np.int64)
        self.div_at = np.full(n, -1, dtype=np.int64)
        self.maxloss = np.full(n, np.inf)
        self.rec_loss = np.full((n, n_rec), np.inf)
        self.rec_every = int(rec_every)
        self.rec_off = np.concatenate([[0], np.cumsum(per_cell_N * n_th)]).astype(np.int64)
        self.rec_theta = np.zeros(int(self.rec_off[-1]) if rec_every else 0)
        self.v = np.zeros(self.theta.size if moments else 0)
        self.rec_v = np.zeros(self.rec_theta.size if moments else 0)
        self.per_cell_N = per_cell_N

    def tail(self):
        return (self.rec_every, self.status, self.theta, self.theta_off, self.loss,
                self.tol_at, self.div_at, self.maxloss, self.rec_loss, self.rec_theta,
                self.rec_off, self.v, self.rec_v)

    def theta_of(self, k):
        return self.theta[self.theta_off[k]: self.theta_off[k + 1]]

    def v_of(self, k):
        return self.v[self.theta_off[k]: self.theta_off[k + 1]]

    def rec_of(self, k, v=False):
        N = self.per_cell_N[k]
        src = self.rec_v if v else self.rec_theta
        return src[self.rec_off[k]: self.rec_off[k + 1]].reshape(-1, N)


def _execute(f, M, method, inits, lrs, steps, beta, batch, order, tol, blowup, n_rec,
             rec_every, threads, progress, lanes=None, gtol=0.0, optim=None):
    """Run every (init, lr) cell; ``inits``: list of (m, theta0, key); ``lrs`` (n_lr,)
    shared by every init or (n_init, n_lr), a row per init; ``optim`` an
    :class:`fastgd.net.adaptive._Optim` (default plain GD / SGD)."""
    from fastgd.net.kernels import grid_net, rows_net

    if first_compile(rows_net):
        print("fastgd: compiling the two-layer network kernels, first run only (cached on "
              "disk)...", file=sys.stderr, flush=True)
    optim = optim or _Optim()
    n_th = steps // rec_every + 1 if rec_every else 0
    Ns = [t.size for _, t, _ in inits]
    lrs = np.ascontiguousarray(np.broadcast_to(lrs, (len(inits), lrs.shape[-1])),
                               dtype=np.float64)
    n_lr = lrs.shape[1]
    out = _Out(Ns, n_lr, n_rec, rec_every, n_th, moments=optim.adaptive)
    widths = np.array([mm for mm, _, _ in inits], dtype=np.int64)
    scales = np.array([M.scale(mm) for mm in widths], dtype=np.float64)
    init_off = np.concatenate([[0], np.cumsum(Ns)]).astype(np.int64)
    flat = np.ascontiguousarray(np.concatenate([t for _, t, _ in inits]))
    keys = np.ascontiguousarray(np.stack([k for _, _, k in inits]).astype(np.int64))
    rows = []
    for c in range(len(inits)):
        n = lanes or _lanes(inits[c][0], M.d, M.bias)
        for a in range(0, n_lr, n):
            rows.append((c, a, min(a + n, n_lr)))
    chunks = np.ascontiguousarray(np.array(rows, dtype=np.int64).reshape(-1, 3))
    code = 0 if method == "gd" else 1
    opt_i, opt_f = optim.kernel_args()

    def call(rows_, nw):
        with np.errstate(all="ignore"):
            grid_net(M.X, M.y, M.act, M.bias, code, widths, scales, init_off, flat, keys, lrs,
                     beta, opt_i, opt_f, steps, batch, order, tol, gtol, blowup, M.c0, rows_,
                     nw, *out.tail())

    t0 = time.perf_counter()
    with G.using_threads(f, threads) as nw:
        G.execute(call, chunks, nw, progress=progress, desc=f)
    return out, time.perf_counter() - t0, nw


def _ratio(maxloss, loss0):
    with np.errstate(all="ignore"):
        ratio = np.where(loss0 > 0, maxloss / np.where(loss0 > 0, loss0, 1.0), 1.0)
    return np.where(np.isinf(maxloss), np.inf, ratio)


def _stable_check(method, status, tol_at, lr, sharp, beta, optim=None, psharp=None):
    """Batch GD: a converged cell whose minimum is linearly unstable at the rate of its
    next update (lr S > 2 (1 + beta)) met the tolerance on a pass near it and is BOUNDED
    (in place).  An adaptive run is checked only with a frozen preconditioner, converged
    after the freeze, on its preconditioned sharpness ``psharp`` against
    (2 + 2 beta1) / (lr (1 - beta1)) (:mod:`fastgd.net.adaptive`)."""
    if method != "gd":
        return
    optim = optim or _Optim()
    conv = np.flatnonzero(status == Status.CONVERGED)
    rate = np.array([optim.rate(np.ravel(lr)[k] if np.ndim(lr) else lr, tol_at[k])
                     for k in conv], dtype=float)
    if optim.adaptive:
        if not optim.freeze:
            return
        after = tol_at[conv] >= optim.freeze
        bad = after & (np.asarray(psharp)[conv] > optim.threshold(rate) * (1 + 1e-9))
    else:
        bad = rate * np.asarray(sharp)[conv] > 2.0 * (1.0 + beta) * (1 + 1e-9)
    status[conv[bad]] = Status.BOUNDED
    tol_at[conv[bad]] = -1
