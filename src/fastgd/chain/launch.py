"""Between the chain API and its kernels: the per-cell outputs, the checks of the run
options, and the launch of one kernel family on a block of chunk rows, on the CPU
(:mod:`fastgd.chain.kernels`) or on a CUDA GPU (:func:`fastgd.linear.gpu.chain_launch`).

A single run (:func:`fastgd.chain.chain_gd`) and a sweep (:func:`fastgd.chain.chain_sweep`)
both go through :func:`_launch`, so a sweep cell and the matching run are bit-identical.
"""

from __future__ import annotations

import numpy as np

from fastgd import status as ST
from fastgd import validate as V
from fastgd.engine import grid as G
from fastgd.status import Status

LANES = 64  # cells per chunk (SIMD lanes)
BACKENDS = ("cpu", "cuda")


class _Out:
    """Flat per-cell kernel outputs (``n`` cells of depth ``depth``; ``n_rec`` recorded
    losses per cell, and as many recorded weight vectors when ``rec_w``)."""

    def __init__(self, n, depth, n_rec=0, rec_w=False):
        self.status = np.full(n, Status.NOT_RUN, dtype=np.int8)
        self.w = np.zeros((n, depth))
        self.excess = np.full(n, np.inf)
        self.tol_at = np.full(n, -1, dtype=np.int64)
        self.div_at = np.full(n, -1, dtype=np.int64)
        self.maxloss = np.full(n, np.inf)
        self.rec_loss = np.full((n, n_rec), np.inf)
        self.rec_w = np.zeros((n, n_rec if rec_w else 0, depth))

    def args(self):
        return (self.status, self.w, self.excess, self.tol_at, self.div_at, self.maxloss,
                self.rec_loss, self.rec_w)


def _common(f, steps, stepname, tol, blowup):
    steps = V.integer(f, stepname, steps, minimum=0)
    tol = V.real(f, "tol", tol, nonneg=True)
    blowup = V.blowup(f, blowup)
    return steps, tol, blowup


def _sgd_opts(f, s, batch_size, order, seed):
    batch_size = V.integer(f, "batch_size", batch_size, minimum=1, maximum=s.X.shape[0])
    code = ST.ORDERS[V.choice(f, "order", order, tuple(ST.ORDERS))]
    seed = V.integer(f, "seed", seed, minimum=0)
    return batch_size, code, seed


def _backend(f, backend):
    """The checked backend name; for ``"cuda"`` a usable GPU (or the simulator) is
    required here, before any work, with the same error as :func:`fastgd.sweep`."""
    backend = V.choice(f, "backend", backend, BACKENDS)
    if backend == "cuda":
        from fastgd.linear import gpu

        gpu.require(f)
    return backend


def _launch(method, s, inits, lrs, steps, tol, blowup, out, chunks, nworkers, sgd,
            backend="cpu"):
    """Run the cells of the chunk rows with the kernels of ``method`` ("gd" or "sgd")
    into ``out``; ``sgd`` = (batch, order code, key) for SGD, else None."""
    with np.errstate(all="ignore"):
        if backend == "cuda":
            from fastgd.linear import gpu

            gpu.chain_launch(method, s, inits, lrs, steps, tol, blowup, out, chunks, sgd)
        elif method == "gd":
            from fastgd.chain.kernels import grid_gd_chain

            grid_gd_chain(s.sxx, s.pstar, s.estar, s.c0, s.c, inits, lrs, steps, tol, blowup,
                          chunks, nworkers, *out.args())
        else:
            from fastgd.chain.kernels import grid_sgd_chain

            batch, code, key = sgd
            grid_sgd_chain(s.X, s.Y, s.sxx, s.pstar, s.estar, s.c0, s.c, inits, lrs, steps,
                           batch, code, key, tol, blowup, chunks, nworkers, *out.args())


def _execute(f, launch, chunks, nworkers, backend, progress):
    """Run ``launch(rows, nworkers)`` over the chunk table in batches (progress bar,
    Ctrl-C between batches); on a GPU one batch is one kernel launch of at most 2^17
    cells (a few chunks under the simulator, which runs the kernels as Python)."""
    if backend == "cuda":
        from fastgd.linear import gpu

        cap = 4 if gpu.simulated() else max(1, (1 << 17) // LANES)
        return G.execute(launch, chunks, 1, progress=progress, desc=f, max_batch=cap)
    return G.execute(launch, chunks, nworkers, progress=progress, desc=f)


def _ratio(maxloss, loss0):
    """max_t E(w_t) / E(w0): 1 where E(w0) = 0, ``inf`` where the run diverged."""
    with np.errstate(all="ignore"):
        ratio = np.where(loss0 > 0, maxloss / np.where(loss0 > 0, loss0, 1.0), 1.0)
    return np.where(np.isinf(maxloss), np.inf, ratio)
