"""Where the chunks of a sweep run: in this process on worker threads (the default), or on
any :class:`concurrent.futures.Executor` (processes, threads, a Dask cluster), with an
optional checkpoint directory.

The unit of work is :func:`run_chunks`, a plain module-level function: it takes the
*kernel spec* (a dict of NumPy arrays and scalars: everything the grid kernels need,
already validated and converted), a block of rows of the chunk table
``(data, seed, lr_start, lr_stop)`` and a Numba thread count; it imports the kernels on
the worker (no Numba dispatcher is ever pickled), runs the rows and returns their
results as small arrays.  Each chunk is independent of every other chunk and of how
the table is cut, so the result of a cell is bit-identical on every engine.

Sizing for a cluster: the table has ``n_data x n_seed x ceil(n_lr / lanes)`` chunks and
they are sent as about 8 tasks per worker; give the sweep at least 4-10 times more
chunks than workers (smaller ``lanes`` gives more chunks), since chunks whose runs all
diverge finish early and a worker that has nothing left to take sits idle.
"""

from __future__ import annotations

import math
import os
import sys

import numpy as np

from fastgd.engine import grid as G

#: result fields of a chunk block, per cell (in row order, lanes concatenated)
FIELDS = ("status", "w", "loss", "excess", "tol_at", "div_at", "rec_loss")

def kernel_spec(spec):
    """The :class:`~fastgd.linear.table.KernelSpec` of a sweep's kernel spec dict."""
    from fastgd.linear.table import KernelSpec

    return KernelSpec(method=spec["method"], d=int(spec["d"]), T=int(spec["T"]),
                      tol=float(spec["tol"]), blowup=float(spec["blowup"]),
                      momentum=bool(np.any(spec["beta"])), nesterov=bool(spec["nesterov"]),
                      batch=int(spec.get("batch", 1)), order=int(spec.get("order", 0)),
                      rec_every=int(spec["rec_every"]), dtype=spec["dtype"],
                      exact=bool(spec.get("exact", False)))


_ANNOUNCED = set()


def announce_compile(kspec):
    """One line on stderr before a kernel compiles on a cold cache (it takes seconds, once
    per machine and kernel; the same run is then silent)."""
    from fastgd.linear import table

    key = (kspec.key, kspec.dtype)
    if key in _ANNOUNCED or not table.is_cold(kspec):
        return
    _ANNOUNCED.add(key)
    what = ("batch GD" if kspec.method == "gd" else
            "per-sample SGD" if kspec.batch == 1 else "minibatch SGD")
    print(f"fastgd: compiling kernels for {what} at d = {kspec.d}"
          f"{' (float32)' if kspec.dtype == 'float32' else ''}, first run only "
          "(cached on disk, a few seconds)...", file=sys.stderr, flush=True)


def launch(kspec, arrays, rows, nworkers, out):
    """Announce a cold compilation, then run ``rows`` of a grid
    (:func:`fastgd.linear.table.launch`) with NumPy's warnings off (divergence is a
    result)."""
    from fastgd.linear import table

    announce_compile(kspec)
    with np.errstate(all="ignore"):
        table.launch(kspec, arrays, rows, nworkers, out)


def call_kernel(spec, rows, nworkers, out):
    """Run ``rows`` of the chunk table with the spec's full-size inputs into ``out``
    (a :class:`fastgd.engine.grid.Outputs` indexed by the spec's global [data, seed, lr])."""
    launch(kernel_spec(spec), spec, rows, nworkers, out)


#: spec entries indexed by dataset (the chunk rows' first column) and by seed (second)
_PER_DATA = ("R", "bounds", "wstar", "estar", "c0", "X", "y", "P")
_PER_SEED = ("keys",)


def _sub(spec, di, si, lr_idx):
    """Inputs restricted to one dataset, one seed and the learning rates ``lr_idx``."""
    s = {k: spec[k][di:di + 1] for k in _PER_DATA if k in spec}
    s["w0"] = spec["w0"]
    s.update({k: spec[k][si:si + 1] for k in _PER_SEED if k in spec})
    s["lr"] = np.ascontiguousarray(spec["lr"][lr_idx])
    s["beta"] = np.ascontiguousarray(spec["beta"][lr_idx])
    return s


def run_block(spec, rows, nworkers):
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
    arr = dict(spec)
    arr.update({k: np.ascontiguousarray(spec[k][ud]) for k in _PER_DATA if k in spec})
    arr.update({k: np.ascontiguousarray(spec[k][us]) for k in _PER_SEED if k in spec})
    local = rows.copy()
    local[:, 0] = dloc.ravel()
    local[:, 1] = sloc.ravel()
    out = G.Outputs(ud.size, us.size, spec["lr"].shape[0], int(spec["d"]),
                    n_rec=int(spec["n_rec"]))
    launch(kernel_spec(spec), arr, local, nworkers, out)
    res = gather(out, local)
    res["rows"] = rows
    return res


def block_rows(spec, nworkers, max_bytes=None):
    """Most chunk rows per block of the local engine: the block's outputs (final weights
    and curves of lanes x rows cells) stay under ``max_bytes`` (default
    :data:`BLOCK_BYTES`), never fewer than ``nworkers`` rows."""
    per_row = int(spec["lanes"]) * (8 * (int(spec["d"]) + int(spec["n_rec"])) + 41)
    return max(int(nworkers), int((BLOCK_BYTES if max_bytes is None else max_bytes)
                                  // max(per_row, 1)))


#: bytes of per-cell outputs (final weights above all) one block of the local engine may
#: hold; the finished block is checked (:func:`fastgd.engine.grid.finalize_block`), copied into
#: the result and dropped
BLOCK_BYTES = 4 << 20


def concat(blocks):
    """One block from several (rows and per-cell fields concatenated in order)."""
    if len(blocks) == 1:
        return blocks[0]
    return {k: np.ascontiguousarray(np.concatenate([b[k] for b in blocks]))
            for k in blocks[0]}


def run_chunks(spec, rows, threads=1):
    """Run a block of chunk-table rows; return their results (the engine's task).

    Parameters
    ----------
    spec : dict
        The kernel spec built by :func:`fastgd.sweep` (arrays and scalars only).
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
    """
    rows = np.ascontiguousarray(rows, dtype=np.int64).reshape(-1, 4)
    # arrays deserialised from a buffer (Dask) can be read-only: a read-only array is
    # another Numba type, i.e. another compiled signature; copy them once
    spec = {k: (np.array(v) if isinstance(v, np.ndarray) and not v.flags.writeable else v)
            for k, v in spec.items()}
    threads = max(1, int(threads))
    kspec = kernel_spec(spec)
    d, n_rec = int(spec["d"]), int(spec["n_rec"])
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
        launch(kspec, _sub(spec, di, si, idx), local, min(threads, j - k), out)
        sl = slice(pos, pos + nl)
        res["status"][sl] = out.status[0, 0]
        res["w"][sl] = out.w[0, 0]
        res["loss"][sl] = out.loss[0, 0]
        res["excess"][sl] = out.excess[0, 0]
        res["tol_at"][sl] = out.tol_at[0, 0]
        res["div_at"][sl] = out.div_at[0, 0]
        res["rec_loss"][sl] = out.rec_loss[0, 0]
        pos += nl
        k = j
    return res


def gather(out, rows):
    """The results of ``rows`` read from full-size outputs (the local engine)."""
    parts = {f: [] for f in FIELDS}
    src = {"status": out.status, "w": out.w, "loss": out.loss, "excess": out.excess,
           "tol_at": out.tol_at, "div_at": out.div_at, "rec_loss": out.rec_loss}
    for di, si, a, b in rows:
        for f in FIELDS:
            parts[f].append(src[f][di, si, a:b])
    d, n_rec = out.d, out.rec_loss.shape[3]
    empty = {"status": (0,), "w": (0, d), "loss": (0,), "excess": (0,), "tol_at": (0,),
             "div_at": (0,), "rec_loss": (0, n_rec)}
    res = {"rows": np.asarray(rows, dtype=np.int64).reshape(-1, 4)}
    for f in FIELDS:
        res[f] = (np.ascontiguousarray(np.concatenate(parts[f])) if parts[f]
                  else np.empty(empty[f], dtype=src[f].dtype))
    return res


def scatter(out, res):
    """Write a block of results into full-size outputs (the final weights only where
    ``out`` keeps them)."""
    pos = 0
    for di, si, a, b in res["rows"]:
        sl = slice(pos, pos + (b - a))
        out.status[di, si, a:b] = res["status"][sl]
        if out.w is not None:
            out.w[di, si, a:b] = res["w"][sl]
        out.loss[di, si, a:b] = res["loss"][sl]
        out.excess[di, si, a:b] = res["excess"][sl]
        out.tol_at[di, si, a:b] = res["tol_at"][sl]
        out.div_at[di, si, a:b] = res["div_at"][sl]
        out.rec_loss[di, si, a:b] = res["rec_loss"][sl]
        pos += b - a


# ---------------------------------------------------------------------------
def executor_workers(engine):
    """Best guess of the number of workers behind an executor (for task sizing)."""
    n = getattr(engine, "_max_workers", None)
    if n:
        return int(n)
    client = getattr(engine, "_client", None)  # dask.distributed ClientExecutor
    if client is not None:
        try:
            return max(1, int(sum(client.nthreads().values())))
        except Exception:  # pragma: no cover - depends on the cluster
            pass
    return os.cpu_count() or 1


def run_local(spec, chunks, out, nthreads, *, progress, desc, on_done=None, finish=None):
    """The default engine: worker threads in this process, one block of rows at a time
    (:func:`run_block`), each block checked by ``finish(block)`` (in place; e.g.
    :func:`fastgd.engine.grid.finalize_block`), scattered into ``out`` and handed to
    ``on_done(block)`` (used for checkpoints).

    Returns the number of rows finished; raises :class:`fastgd.engine.grid.Interrupted`.
    """
    state = {"done": 0}

    def call(rows, nw):
        res = run_block(spec, rows, nw)
        if finish is not None:
            finish(res)
        scatter(out, res)
        state["done"] += rows.shape[0]
        if on_done is not None:
            on_done(res)

    try:
        G.execute(call, chunks, nthreads, progress=progress, desc=desc,
                  max_batch=block_rows(spec, nthreads))
    except G.Interrupted as exc:
        raise G.Interrupted(state["done"], chunks.shape[0]) from exc
    return state["done"]


def run_executor(spec, chunks, out, engine, threads, *, progress, desc, on_result=None,
                 tasks_per_worker=8, finish=None):
    """Run the chunk table on ``engine`` (a ``concurrent.futures.Executor``).

    Rows are cut into blocks of consecutive rows, about ``tasks_per_worker`` blocks per
    worker, and at most ``2 x workers`` blocks are in flight; each finished block is
    checked by ``finish`` (in place), scattered into ``out`` and handed to
    ``on_result`` (checkpoint).  Ctrl-C cancels the blocks not yet started and raises
    :class:`fastgd.engine.grid.Interrupted`.
    """
    import concurrent.futures as cf

    n = chunks.shape[0]
    workers = executor_workers(engine)
    per = max(1, math.ceil(n / (tasks_per_worker * workers)))
    blocks = [chunks[i:i + per] for i in range(0, n, per)]
    window = max(2, 2 * workers)
    done = 0
    bar = G.Progress(n, progress, desc)
    pending = set()
    it = iter(blocks)
    try:
        for blk in it:
            pending.add(engine.submit(run_chunks, spec, blk, threads))
            if len(pending) >= window:
                break
        while pending:
            finished, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
            for fut in finished:
                res = fut.result()
                if finish is not None:
                    finish(res)
                scatter(out, res)
                done += res["rows"].shape[0]
                if on_result is not None:
                    on_result(res)
            for blk in it:
                pending.add(engine.submit(run_chunks, spec, blk, threads))
                if len(pending) >= window:
                    break
            bar.update(done)
    except KeyboardInterrupt:
        for fut in pending:
            fut.cancel()
        raise G.Interrupted(done, n) from None
    finally:
        bar.close()
    return done


def run_blocks(call, chunks, per, *, progress, desc):
    """Run ``call(rows)`` over the chunk table in blocks of ``per`` rows (the GPU
    backend: one launch per block), with a progress bar and Ctrl-C between blocks."""
    n = chunks.shape[0]
    done = 0
    bar = G.Progress(n, progress, desc)
    try:
        while done < n:
            stop = min(n, done + per)
            call(np.ascontiguousarray(chunks[done:stop]))
            done = stop
            bar.update(done)
    except KeyboardInterrupt:
        raise G.Interrupted(done, n) from None
    finally:
        bar.close()
    return done
