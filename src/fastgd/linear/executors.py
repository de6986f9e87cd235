"""The linear model on the engines (:mod:`fastgd.engine.executors`): its blocks of rows,
its worker task and its dispatch between threads, executors and the GPU.

The unit of work is :func:`run_chunks`, a plain module-level function: it takes a
:class:`fastgd.linear.contract.LinearJob` (kernel spec and inputs, already validated and
converted), a block of rows of the chunk table ``(data, seed, lr_start, lr_stop)`` and
a Numba thread count; it imports the kernels on the worker (no Numba dispatcher is ever
pickled), runs the rows and returns their results as small arrays (a *block*).  Every
launch goes through :func:`fastgd.engine.table.launch`, where this module registers the
linear model's launcher for ("linear", "gd") and ("linear", "sgd").
"""

from __future__ import annotations

import sys

import numpy as np

from fastgd.engine import executors as X
from fastgd.engine import grid as G
from fastgd.engine import table
from fastgd.engine.executors import concat, executor_workers, run_blocks  # noqa: F401

#: result fields of a chunk block, per cell (in row order, lanes concatenated)
FIELDS = ("status", "w", "loss", "excess", "tol_at", "div_at", "rec_loss")

#: bytes of per-cell outputs (final weights above all) one block of the local engine may
#: hold; the finished block is checked (:func:`fastgd.linear.checks.finalize_block`),
#: copied into the result and dropped
BLOCK_BYTES = 4 << 20

_ANNOUNCED = set()


def announce_compile(kspec):
    """One line on stderr before a kernel compiles on a cold cache (once per machine
    and kernel; the same run is then silent); True when it said it."""
    from fastgd.linear import table as kernel_table

    key = (kspec.key, kspec.dtype)
    if key in _ANNOUNCED or not kernel_table.is_cold(kspec):
        return False
    _ANNOUNCED.add(key)
    what = ("batch GD" if kspec.method == "gd" else
            "per-sample SGD" if kspec.batch == 1 else "minibatch SGD")
    print(f"fastgd: compiling kernels for {what} at d = {kspec.d}"
          f"{' (float32)' if kspec.dtype == 'float32' else ''}, first run only "
          "(cached on disk, a few seconds)...", file=sys.stderr, flush=True)
    return True


def announce(kspec, nworkers):
    """:func:`announce_compile`, and where it said so, the helper process that compiles
    the final check's kernel meanwhile (:func:`fastgd.linear.checks.precompile_check`);
    True when that helper started."""
    if not announce_compile(kspec):
        return False
    from fastgd.linear.checks import precompile_check

    return precompile_check(nworkers) is not None


def launch(kspec, inputs, rows, nworkers, out):
    """Announce a cold compilation (and compile the final check's kernel in a helper
    process meanwhile, :func:`fastgd.linear.checks.precompile_check`), then run
    ``rows`` of a grid through the engine's kernel table
    (:func:`fastgd.engine.table.launch`, which finds :func:`_cpu` below, i.e.
    :func:`fastgd.linear.table.launch`) with NumPy's warnings off (divergence is a
    result)."""
    announce(kspec, nworkers)
    with np.errstate(all="ignore"):
        table.launch(kspec, inputs, rows, nworkers, out)


def _cpu(spec, inputs, rows, nworkers, out):
    """The launcher of ("linear", "gd") and ("linear", "sgd") in
    :mod:`fastgd.engine.table`: :func:`fastgd.linear.table.launch`, imported when
    called (this module stays light, so registering costs no kernel import)."""
    from fastgd.linear import table as kernel_table

    kernel_table.launch(spec, inputs, rows, nworkers, out)


table.register("linear", "gd", _cpu)
table.register("linear", "sgd", _cpu)


def _run_of(idx):
    """Sorted unique indices as a slice where they are consecutive (the usual block:
    LinearInputs.take then gives views, not copies of the datasets: 5 MB less to
    allocate and fault in for a d = 100 sweep of 32 datasets), else as they are."""
    if idx.size and int(idx[-1]) - int(idx[0]) + 1 == idx.size:
        return slice(int(idx[0]), int(idx[-1]) + 1)
    return idx


def run_block(job, rows, nworkers):
    """Run chunk-table rows in one kernel call (``nworkers`` threads) on inputs restricted
    to the datasets and seeds they touch; return their results as :func:`run_chunks`
    does (per cell in row order, final weights included).

    The local engine's unit: outputs exist for this block only, so a sweep holds the
    final weights of one block at a time, not of the whole grid.  A chunk's arithmetic
    does not depend on the other chunks of the call, so every cell is bit-identical to
    the one computed with full-size outputs."""
    rows = np.ascontiguousarray(rows, dtype=np.int64).reshape(-1, 4)
    ud, dloc = np.unique(rows[:, 0], return_inverse=True)
    us, sloc = np.unique(rows[:, 1], return_inverse=True)
    inputs = job.inputs.take(data=_run_of(ud), seeds=_run_of(us))
    local = rows.copy()
    local[:, 0] = dloc.ravel()
    local[:, 1] = sloc.ravel()
    out = G.Outputs(ud.size, us.size, job.n_lr, job.d, n_rec=job.n_rec)
    launch(job.spec, inputs, local, nworkers, out)
    res = gather(out, local)
    res["rows"] = rows
    return res


def block_rows(job, nworkers, max_bytes=None):
    """Most chunk rows per block of the local engine: the block's outputs (final weights
    and curves of lanes x rows cells) stay under ``max_bytes`` (default
    :data:`BLOCK_BYTES`), never fewer than ``nworkers`` rows."""
    per_row = int(job.lanes) * (8 * (job.d + int(job.n_rec)) + 41)
    return max(int(nworkers), int((BLOCK_BYTES if max_bytes is None else max_bytes)
                                  // max(per_row, 1)))


def run_chunks(job, rows, threads=1):
    """Run a block of chunk-table rows; return their results (the executors' task).

    Parameters
    ----------
    job : fastgd.linear.contract.LinearJob
        The kernel spec and inputs built by :func:`fastgd.sweep`.
    rows : (n, 4) int64
        Rows ``(data, seed, lr_start, lr_stop)`` of the chunk table.
    threads : int
        Worker threads for this call on the worker (the kernels' own threads).

    Returns
    -------
    dict
        ``rows`` and, per cell in row order (the lanes of row 0, then row 1, ...),
        ``status`` (int8), ``w`` (n_cells, d), ``loss``, ``excess``, ``tol_at``,
        ``div_at`` and ``rec_loss`` (n_cells, n_rec).

    Notes
    -----
    Rows that share a dataset and a seed run as one kernel call on inputs restricted to
    them (outputs are allocated for these cells only); a chunk's arithmetic does not
    depend on which other chunks run with it, so every cell equals the one computed in
    place by the local engine, bit for bit.  Calls from several threads of one process
    run concurrently (the kernels' threads are plain Python threads, no Numba
    threading layer).

    Examples
    --------
    >>> import numpy as np
    >>> from fastgd.linear.contract import LinearInputs, LinearJob
    >>> from fastgd.linear.executors import run_chunks
    >>> from fastgd.linear.table import KernelSpec
    >>> inp = LinearInputs(R=np.eye(2)[None], wstar=np.ones((1, 2)), estar=np.zeros(1),
    ...                    c0=np.ones(1), lr=np.array([0.5, 3.0]), beta=np.zeros(2),
    ...                    w0=np.zeros(2))
    >>> job = LinearJob(KernelSpec("gd", 2, 100, 1e-8, 1e12), inp, lanes=2)
    >>> run_chunks(job, [[0, 0, 0, 2]])["status"].tolist()
    [1, 2]
    """
    rows = np.ascontiguousarray(rows, dtype=np.int64).reshape(-1, 4)
    inputs = job.inputs.writable()
    threads = max(1, int(threads))
    d, n_rec = job.d, int(job.n_rec)
    n_cells = int((rows[:, 3] - rows[:, 2]).sum())
    res = {"rows": rows, "status": np.empty(n_cells, np.int8), "w": np.empty((n_cells, d)),
           "loss": np.empty(n_cells), "excess": np.empty(n_cells),
           "tol_at": np.empty(n_cells, np.int64), "div_at": np.empty(n_cells, np.int64),
           "rec_loss": np.empty((n_cells, n_rec))}
    pos = 0
    k = 0
    while k < rows.shape[0]:
        di, si = rows[k, 0], rows[k, 1]
        j = k
        while j < rows.shape[0] and rows[j, 0] == di and rows[j, 1] == si:
            j += 1
        grp = rows[k:j]
        idx = np.concatenate([np.arange(a, b) for a, b in grp[:, 2:]])
        nl = idx.size
        local = np.zeros((j - k, 4), dtype=np.int64)
        ends = np.cumsum(grp[:, 3] - grp[:, 2])
        local[:, 2] = ends - (grp[:, 3] - grp[:, 2])
        local[:, 3] = ends
        out = G.Outputs(1, 1, nl, d, n_rec=n_rec)
        sub = inputs.take(data=slice(di, di + 1), seeds=slice(si, si + 1), lrs=idx)
        launch(job.spec, sub, local, min(threads, j - k), out)
        sl = slice(pos, pos + nl)
        for f in FIELDS:
            res[f][sl] = getattr(out, f)[0, 0]
        pos += nl
        k = j
    return res


def _span(rows, shape):
    """(first, stop) of the flat cell range that ``rows`` (data, seed, lr_start,
    lr_stop) cover in outputs of shape (n_data, n_seed, n_lr) when they cover it as one
    run in row order (a block of whole consecutive chunks: the usual case); None
    otherwise."""
    if rows.shape[0] == 0:
        return None
    start = (rows[:, 0] * shape[1] + rows[:, 1]) * shape[2] + rows[:, 2]
    stop = start + (rows[:, 3] - rows[:, 2])
    if np.array_equal(start[1:], stop[:-1]):
        return int(start[0]), int(stop[-1])
    return None


def _flat(a):
    """Output ``a`` (n_data, n_seed, n_lr, ...) as a view with one row per cell."""
    return a.reshape((a.shape[0] * a.shape[1] * a.shape[2],) + a.shape[3:])


def gather(out, rows):
    """The results of ``rows`` read from full-size outputs (the local engine)."""
    rows = np.asarray(rows, dtype=np.int64).reshape(-1, 4)
    res = {"rows": rows}
    span = _span(rows, out.status.shape)
    if span is not None:  # one slice of each output (views: a block's outputs are its own)
        for f in FIELDS:
            a = getattr(out, f)
            res[f] = _flat(a)[span[0]:span[1]]
        return res
    parts = {f: [getattr(out, f)[di, si, a:b] for di, si, a, b in rows] for f in FIELDS}
    d, n_rec = out.d, out.rec_loss.shape[3]
    empty = {"status": (0,), "w": (0, d), "loss": (0,), "excess": (0,), "tol_at": (0,),
             "div_at": (0,), "rec_loss": (0, n_rec)}
    for f in FIELDS:
        res[f] = (np.ascontiguousarray(np.concatenate(parts[f])) if parts[f]
                  else np.empty(empty[f], dtype=getattr(out, f).dtype))
    return res


def scatter(out, res):
    """Write a block of results into full-size outputs (the final weights only where
    ``out`` keeps them)."""
    span = _span(np.asarray(res["rows"], dtype=np.int64).reshape(-1, 4), out.status.shape)
    for f in X.scatter_order(FIELDS):  # status last
        a = getattr(out, f)
        if a is None:
            continue
        if span is not None:  # one slice assignment per output
            _flat(a)[span[0]:span[1]] = res[f]
            continue
        pos = 0
        for di, si, lo, hi in res["rows"]:
            a[di, si, lo:hi] = res[f][pos:pos + (hi - lo)]
            pos += hi - lo


def run_local(job, chunks, out, nthreads, *, progress, desc, on_done=None, finish=None):
    """The default engine (:func:`fastgd.engine.executors.run_local`) on a linear job:
    blocks of :func:`run_block`, scattered into ``out``."""
    return X.run_local(lambda rows, nw: run_block(job, rows, nw),
                       lambda res: scatter(out, res), chunks, nthreads,
                       max_batch=block_rows(job, nthreads), progress=progress, desc=desc,
                       on_done=on_done, finish=finish, first=first_rows(job, chunks, nthreads))


#: a sweep estimated under this many seconds runs as one batch (no small first batch to
#: time: each batch costs a launch and a final check): the duration grid.execute gives
#: the later batches (so Ctrl-C waits no longer than there), at the cost model's rate,
#: which is below the kernels' (streaming SGD: about 8x).  0.02 -> 0.25 s: a d = 10
#: sweep of 10 epochs (32 datasets x 256 rates) 6.82 -> 6.32 ms, min of 7 alternating
ONE_BATCH_S = 0.25


def first_rows(job, chunks, nthreads):
    """Rows of the first batch of the local engine: all of them when the whole table is
    estimated under :data:`ONE_BATCH_S` at the cost model's rate per thread
    (:data:`fastgd.engine.cost.RATE`); None (the engine's default) otherwise."""
    from fastgd.engine.cost import RATE

    spec = job.spec
    per_step = (2 * spec.d + 1) * int(np.max(job.inputs.P)) if spec.method == "sgd" \
        else 2 * spec.d + 1
    work = float(np.sum(chunks[:, 3] - chunks[:, 2])) * (spec.T + 1) * per_step
    return chunks.shape[0] if work < ONE_BATCH_S * RATE * max(1, nthreads) else None


def run_executor(job, chunks, out, engine, threads, *, progress, desc, on_result=None,
                 tasks_per_worker=8, finish=None):
    """A linear job on an executor (:func:`fastgd.engine.executors.run_executor` with
    :func:`run_chunks` as the task), scattered into ``out``."""
    return X.run_executor(run_chunks, job, lambda res: scatter(out, res), chunks, engine,
                          threads, progress=progress, desc=desc, on_result=on_result,
                          finish=finish, tasks_per_worker=tasks_per_worker)


#: runs per GPU launch (about what fills a GPU); progress and Ctrl-C between launches
GPU_RUNS = 1 << 17


def runner(job, out, nthreads, engine, *, progress, desc, finish):
    """The ``run(todo, on_done, on_result)`` of :func:`fastgd.engine.executors.run_resumable`
    for a linear job: the GPU (``job.backend == "cuda"``), this process's threads
    (``engine`` None) or an executor."""
    def run(todo, on_done, on_result):
        if job.backend == "cuda":
            from fastgd.linear import gpu

            device = gpu.Runner(job)

            def call(rows):
                block = device.run_rows(rows)
                finish(block)
                scatter(out, block)
                on_done(block)

            per = 4 if gpu.simulated() else max(1, GPU_RUNS // job.lanes)
            run_blocks(call, todo, per, progress=progress, desc=desc)
        elif engine is None:
            run_local(job, todo, out, nthreads, progress=progress, desc=desc,
                      on_done=on_done, finish=finish)
        else:
            run_executor(job, todo, out, engine, nthreads, progress=progress, desc=desc,
                         on_result=on_result, finish=finish)
    return run
