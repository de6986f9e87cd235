"""Between the chain API and its kernels: the per-cell outputs, the checks of the run
options, the launchers (registered in :mod:`fastgd.engine.table` for ("chain", "gd")
and ("chain", "sgd") on the CPU, :mod:`fastgd.chain.kernels`, and on a CUDA GPU,
:func:`fastgd.linear.gpu.chain_launch`) and the chain's part of the engines
(:mod:`fastgd.engine.executors`): its blocks, its worker task and its dispatch.

A single run (:func:`fastgd.chain.chain_gd`) and every sweep cell
(:func:`fastgd.chain.chain_sweep`, on any engine) go through the same launcher, so a
sweep cell and the matching run are bit-identical.  A lane's arithmetic does not depend
on the other lanes of its chunk, so neither do the results on how the chunk table is cut.
"""

from __future__ import annotations

import numpy as np

from fastgd import status as ST
from fastgd import validate as V
from fastgd.engine import executors as X
from fastgd.engine import table
from fastgd.status import Status

__all__ = ["FIELDS", "LANES", "Out", "run_chunks"]

LANES = 64  # cells per chunk (SIMD lanes)
BACKENDS = ("cpu", "cuda")
#: per-cell result fields of a block (what a checkpoint file holds)
FIELDS = ("status", "w", "excess", "tol_at", "div_at", "maxloss")
#: runs per GPU launch (about what fills a GPU); progress and Ctrl-C between launches
GPU_RUNS = 1 << 17


class Out:
    """Flat per-cell kernel outputs (``n`` cells of depth ``depth``; ``n_rec`` recorded
    losses per cell, and as many recorded weight vectors when ``rec_w``).

    Examples
    --------
    >>> from fastgd.chain.launch import Out
    >>> out = Out(3, 2)
    >>> out.status.tolist(), out.w.shape
    ([-1, -1, -1], (3, 2))
    >>> out.gather([[0, 0, 1, 3]])["excess"].tolist()
    [inf, inf]
    """

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
        """The outputs in the kernels' order."""
        return (self.status, self.w, self.excess, self.tol_at, self.div_at, self.maxloss,
                self.rec_loss, self.rec_w)

    def gather(self, rows):
        """The block of ``rows`` (``[_, _, start, stop]`` cell ranges): ``rows`` and each
        field of :data:`FIELDS` per cell, in row order."""
        rows = np.ascontiguousarray(rows, dtype=np.int64).reshape(-1, 4)
        idx = _cells(rows)
        block = {f: np.array(getattr(self, f)[idx]) for f in FIELDS}  # a copy
        block["rows"] = rows
        return block

    def scatter(self, block):
        """Write a block (:meth:`gather`) into these outputs."""
        idx = _cells(np.asarray(block["rows"], dtype=np.int64).reshape(-1, 4))
        for f in X.scatter_order(FIELDS):  # status last
            getattr(self, f)[idx] = block[f]


def _cells(rows):
    """The cells of chunk rows in row order: a slice when the rows follow each other."""
    if rows.shape[0] == 0:
        return slice(0, 0)
    if np.array_equal(rows[1:, 2], rows[:-1, 3]):
        return slice(int(rows[0, 2]), int(rows[-1, 3]))
    return np.concatenate([np.arange(a, b) for a, b in rows[:, 2:]])


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


# ------------------------------------------------------------------- the launchers
def _gd_cpu(spec, i, rows, nworkers, out):
    from fastgd.chain.kernels import grid_gd_chain

    grid_gd_chain(i.sxx, i.pstar, i.estar, i.c0, i.c, i.inits, i.lrs, spec.steps, spec.tol,
                  spec.blowup, rows, nworkers, *out.args())


def _sgd_cpu(spec, i, rows, nworkers, out):
    from fastgd.chain.kernels import grid_sgd_chain

    grid_sgd_chain(i.X, i.Y, i.sxx, i.pstar, i.estar, i.c0, i.c, i.inits, i.lrs, spec.steps,
                   spec.batch, spec.order, i.key, spec.tol, spec.blowup, rows, nworkers,
                   *out.args())


def _cuda(spec, i, rows, nworkers, out):
    from fastgd.linear import gpu

    sgd = (spec.batch, spec.order, i.key) if spec.method == "sgd" else None
    gpu.chain_launch(spec.method, i, i.inits, i.lrs, spec.steps, spec.tol, spec.blowup, out,
                     rows, sgd)


table.register("chain", "gd", _gd_cpu)
table.register("chain", "sgd", _sgd_cpu)
table.register("chain", "gd", _cuda, backend="cuda")
table.register("chain", "sgd", _cuda, backend="cuda")


def _launch(spec, inputs, rows, nworkers, out):
    """Run the cells of the chunk rows into ``out`` (:func:`fastgd.engine.table.launch`)
    with NumPy's warnings off (divergence is a result)."""
    rows = np.ascontiguousarray(rows, dtype=np.int64).reshape(-1, 4)
    with np.errstate(all="ignore"):
        table.launch(spec, inputs, rows, nworkers, out)


# -------------------------------------------------------------------- the engines
def run_chunks(job, rows, threads=1):
    """Run a block of chunk-table rows of a chain grid; return their results (the
    executors' task).

    Parameters
    ----------
    job : fastgd.chain.contract.ChainJob
        Spec, inputs and lanes built by :func:`fastgd.chain.chain_sweep`.
    rows : (n, 4) int64
        Rows ``(0, 0, cell_start, cell_stop)`` of the chunk table.
    threads : int
        Worker threads for this call on the worker.

    Returns
    -------
    dict
        ``rows`` and, per cell in row order, each field of :data:`FIELDS`.

    Notes
    -----
    Runs of rows whose cells follow each other run as one kernel call on the inits
    they touch (outputs for those cells only); every cell equals the one computed in
    place by the local engine, bit for bit.

    Examples
    --------
    >>> from fastgd.chain.contract import ChainJob, ChainSpec, chain_inputs
    >>> from fastgd.chain.launch import run_chunks
    >>> job = ChainJob(ChainSpec("gd", 200, 1e-10, 1e12),
    ...                chain_inputs(1.0, 1.0, 1.0, [[0.5, 0.5], [3.0, 3.0]], [0.1, 1.0]), 2)
    >>> run_chunks(job, [[0, 0, 2, 4]])["status"].tolist()   # init [3, 3] at 0.1, 1.0
    [1, 2]
    """
    rows = np.ascontiguousarray(rows, dtype=np.int64).reshape(-1, 4)
    inputs = job.inputs.writable()
    n_lr, threads = job.n_lr, max(1, int(threads))
    parts = []
    k = 0
    while k < rows.shape[0]:
        j = k + 1
        while j < rows.shape[0] and rows[j, 2] == rows[j - 1, 3]:
            j += 1
        grp = rows[k:j]
        i0, i1 = int(grp[0, 2]) // n_lr, (int(grp[-1, 3]) - 1) // n_lr + 1
        local = grp.copy()
        local[:, 2:] -= i0 * n_lr
        out = Out((i1 - i0) * n_lr, job.depth)
        _launch(job.spec, inputs.take(i0, i1), local, min(threads, j - k), out)
        parts.append(out.gather(local))
        k = j
    if not parts:
        return Out(0, job.depth).gather(rows)
    res = X.concat(parts)
    res["rows"] = rows
    return res


def runner(job, out, nthreads, engine, *, progress, desc, blocks=True):
    """The ``run(todo, on_done, on_result)`` of
    :func:`fastgd.engine.executors.run_resumable` for a chain job: the GPU
    (``job.spec.backend == "cuda"``: launches of at most :data:`GPU_RUNS` cells), this
    process's threads in place (``engine`` None) or an executor (:func:`run_chunks`).
    ``blocks=False``: the cells run in place are not copied out as blocks (no
    checkpoint to write them to; ``on_done`` then sees the rows only)."""
    def run_block(rows, nw):
        _launch(job.spec, job.inputs, rows, nw, out)
        return out.gather(rows) if blocks else {"rows": rows}

    def run(todo, on_done, on_result):
        if job.spec.backend == "cuda":
            from fastgd.linear import gpu

            per = 4 if gpu.simulated() else max(1, GPU_RUNS // job.lanes)
            X.run_blocks(lambda rows: on_done(run_block(rows, 1)), todo, per,
                         progress=progress, desc=desc)
        elif engine is None:
            X.run_local(run_block, lambda blk: None, todo, nthreads, max_batch=None,
                        progress=progress, desc=desc, on_done=on_done)
        else:
            X.run_executor(run_chunks, job, out.scatter, todo, engine, nthreads,
                           progress=progress, desc=desc, on_result=on_result)
    return run




