"""Where the chunks of a grid run, for any model: in this process on worker threads
(the default), on any :class:`concurrent.futures.Executor` (processes, threads, a Dask
cluster), or in launches of many rows (a GPU), with an optional checkpoint directory.

The engine knows nothing of the model.  A model plugs in with:

* a *job*: a picklable object (a frozen dataclass of arrays and scalars) holding
  everything its kernels need; its fields key a checkpoint directory
  (:func:`fastgd.engine.checkpoint.spec_hash`);
* ``run_block(rows, nworkers) -> block``: run rows of the chunk table
  ``(data, seed, start, stop)`` in this process, returning their results as a *block*:
  a dict with ``rows`` and one array per result field, per cell in row order;
* ``task(job, rows, threads) -> block``: the same as a module-level function that an
  executor pickles with the job (it imports the kernels on the worker);
* ``scatter(block)``: write a block into the model's full-size outputs, the ``status``
  field last (:func:`scatter_order`): a cell counts as finished once it has a status,
  so Ctrl-C between two of the writes must leave it NOT_RUN, never half written;
* ``finish(block)`` (optional): check a block in place before it is kept.

:func:`run_resumable` then runs a chunk table through a checkpoint directory, and
:func:`run_local`, :func:`run_executor` and :func:`run_blocks` are the three ways to run
the rows.  Each chunk is independent of every other chunk and of how the table is cut,
so a cell is bit-identical on every engine.

Sizing for a cluster: give a grid at least 4-10 times more chunks than workers; blocks
are sent as about 8 tasks per worker, and chunks whose runs all diverge finish early,
so a worker with nothing left to take sits idle.  The worker count is read from public
interfaces only (:func:`executor_workers`): pass a Dask ``distributed.Client`` itself as
the engine for its ``nthreads()``; an executor's own pool size is private, so the CPU
count stands in for it.
"""

from __future__ import annotations

import math
import os
import time

import numpy as np

from fastgd import validate as V
from fastgd.engine import grid as G

__all__ = ["SigtermAsInterrupt", "check_checkpoint", "check_engine", "concat",
           "executor_workers", "is_client", "run_blocks", "run_executor", "run_local",
           "run_resumable", "task_threads"]


def scatter_order(fields):
    """The order in which a model's ``scatter`` writes its result ``fields``: ``status``
    last.  Each write is one NumPy assignment (Ctrl-C cannot cut one short), so a Ctrl-C
    between two writes leaves the block's cells NOT_RUN, as if the block had not
    finished (a resumed sweep runs it again), never with a status and stale fields.

    >>> scatter_order(("status", "w", "loss"))
    ('w', 'loss', 'status')
    """
    return tuple(f for f in fields if f != "status") + ("status",)


def check_engine(func, engine, backend="cpu"):
    """``engine`` checked for a grid call named ``func``: None (this process's threads),
    a :class:`concurrent.futures.Executor` (Dask's ``client.get_executor()`` included) or
    a Dask ``distributed.Client`` itself (:func:`is_client`: its public ``nthreads()``
    then sizes the tasks), and None with a GPU backend.  Raises the API's
    :class:`fastgd.FastGDTypeError` / :class:`fastgd.FastGDValueError`.

    Examples
    --------
    >>> import concurrent.futures as cf
    >>> from fastgd.engine.executors import check_engine
    >>> with cf.ThreadPoolExecutor(1) as ex:
    ...     check_engine("demo", ex) is ex
    True
    >>> check_engine("demo", "dask")
    Traceback (most recent call last):
    ...
    fastgd.validate.FastGDTypeError: demo: 'engine' must be a concurrent.futures.Executor ...
    """
    if engine is None:
        return None
    import concurrent.futures as cf

    if not isinstance(engine, cf.Executor) and not is_client(engine):
        raise V.fail_type(func, "engine", "a concurrent.futures.Executor (e.g. "
                          "ProcessPoolExecutor, or a Dask client.get_executor()) or a Dask "
                          "Client", engine)
    if backend != "cpu":
        raise V.fail(func, "engine", f"None with backend={backend!r}", type(engine).__name__)
    return engine


def is_client(engine) -> bool:
    """Whether ``engine`` is a Dask ``distributed.Client`` (or anything with its public
    ``get_executor()`` and ``nthreads()``) rather than an executor.

    Examples
    --------
    >>> import concurrent.futures as cf
    >>> from fastgd.engine.executors import is_client
    >>> with cf.ThreadPoolExecutor(1) as ex:
    ...     is_client(ex), is_client(None)
    (False, False)
    """
    import concurrent.futures as cf

    return (not isinstance(engine, cf.Executor)
            and callable(getattr(engine, "get_executor", None))
            and callable(getattr(engine, "nthreads", None)))


def check_checkpoint(func, checkpoint):
    """``checkpoint`` checked: None, or a directory path (str, bytes or os.PathLike)
    returned as a str; the directory itself is checked when it is opened
    (:class:`fastgd.engine.checkpoint.Checkpoint`).

    Examples
    --------
    >>> import pathlib
    >>> from fastgd.engine.executors import check_checkpoint
    >>> check_checkpoint("demo", pathlib.Path("ck"))
    'ck'
    """
    if checkpoint is None:
        return None
    if isinstance(checkpoint, bytes):
        checkpoint = os.fsdecode(checkpoint)
    if not isinstance(checkpoint, (str, os.PathLike)):
        raise V.fail_type(func, "checkpoint", "a directory path (str or os.PathLike)",
                          checkpoint)
    checkpoint = os.fspath(checkpoint)
    if not checkpoint:
        raise V.fail(func, "checkpoint", "a directory path", "an empty string")
    if "\0" in checkpoint:
        raise V.fail(func, "checkpoint", "a directory path", f"{checkpoint!r} (a NUL character)")
    return checkpoint


def task_threads(func, threads) -> int:
    """The Numba threads of each task on an executor: ``threads`` (>= 1) or 1.

    Examples
    --------
    >>> from fastgd.engine.executors import task_threads
    >>> task_threads("demo", None), task_threads("demo", 2)
    (1, 2)
    """
    return 1 if threads is None else V.integer(func, "threads", threads, minimum=1)


def executor_workers(engine, workers=None) -> int:
    """The number of workers behind an engine, for task sizing only (results never
    depend on it), from public interfaces only: ``workers`` when given, the threads of
    a Dask cluster when ``engine`` is its ``distributed.Client`` (``client.nthreads()``),
    else the CPU count (an executor does not say how many workers it has: pass the
    Client, or ``workers``, for a cluster).

    Examples
    --------
    >>> import concurrent.futures as cf, os
    >>> from fastgd.engine.executors import executor_workers
    >>> with cf.ThreadPoolExecutor(3) as ex:
    ...     executor_workers(ex, workers=3), executor_workers(ex) == (os.cpu_count() or 1)
    (3, True)
    """
    if workers is not None:
        return max(1, int(workers))
    if is_client(engine):
        try:
            return max(1, int(sum(engine.nthreads().values())))
        except Exception:  # pragma: no cover - depends on the cluster
            pass
    return os.cpu_count() or 1


def concat(blocks):
    """One block from several (rows and per-cell fields concatenated in order).

    Examples
    --------
    >>> import numpy as np
    >>> from fastgd.engine.executors import concat
    >>> concat([{"rows": np.zeros((1, 4))}, {"rows": np.ones((1, 4))}])["rows"].shape
    (2, 4)
    """
    if len(blocks) == 1:
        return blocks[0]
    return {k: np.ascontiguousarray(np.concatenate([b[k] for b in blocks]))
            for k in blocks[0]}


def run_local(run_block, scatter, chunks, nthreads, *, max_batch, progress, desc,
              on_done=None, finish=None, first=None):
    """The default engine: worker threads in this process, one block of at most
    ``max_batch`` rows at a time (the first of ``first`` rows, :func:`fastgd.engine.grid.
    execute`; ``run_block(rows, nworkers)``), each block checked by
    ``finish(block)`` (in place), written by ``scatter(block)`` and handed to
    ``on_done(block)`` (checkpoints).

    Returns the number of rows finished; raises :class:`fastgd.engine.grid.Interrupted`
    on Ctrl-C (between blocks).

    Examples
    --------
    >>> import numpy as np
    >>> from fastgd.engine.executors import run_local
    >>> seen = []
    >>> run_local(lambda rows, nw: {"rows": rows}, seen.append, np.zeros((5, 4), int), 2,
    ...           max_batch=2, progress=False, desc="")
    5
    """
    state = {"done": 0}

    def call(rows, nw):
        res = run_block(rows, nw)
        if finish is not None:
            finish(res)
        scatter(res)
        state["done"] += rows.shape[0]
        if on_done is not None:
            on_done(res)

    try:
        G.execute(call, chunks, nthreads, progress=progress, desc=desc, max_batch=max_batch,
                  first=first)
    except G.Interrupted as exc:
        raise G.Interrupted(state["done"], chunks.shape[0]) from exc
    return state["done"]


def run_executor(task, job, scatter, chunks, engine, threads, *, progress, desc,
                 on_result=None, finish=None, tasks_per_worker=8, workers=None):
    """Run the chunk table on ``engine`` (a ``concurrent.futures.Executor``):
    ``task(job, rows, threads)`` on the workers (a Dask ``Client``: on its
    ``get_executor()``).

    Rows are cut into blocks of consecutive rows, about ``tasks_per_worker`` blocks per
    worker, and at most ``2 x workers`` blocks are in flight (``workers``: as
    :func:`executor_workers` says); each finished block is
    checked by ``finish`` (in place), written by ``scatter`` and handed to
    ``on_result`` (checkpoint).  Ctrl-C cancels the blocks not yet started and raises
    :class:`fastgd.engine.grid.Interrupted`.  Returns the number of rows finished.

    Examples
    --------
    >>> import concurrent.futures as cf
    >>> import numpy as np
    >>> from fastgd.engine.executors import run_executor
    >>> def task(job, rows, threads):
    ...     return {"rows": rows}
    >>> with cf.ThreadPoolExecutor(2) as ex:
    ...     run_executor(task, None, lambda b: None, np.zeros((6, 4), int), ex, 1,
    ...                  progress=False, desc="")
    6
    """
    import concurrent.futures as cf

    n = chunks.shape[0]
    workers = executor_workers(engine, workers)
    pool = engine.get_executor() if is_client(engine) else engine
    per = max(1, math.ceil(n / (tasks_per_worker * workers)))
    blocks = iter([chunks[i:i + per] for i in range(0, n, per)])
    window = max(2, 2 * workers)
    done = 0
    bar = G.Progress(n, progress, desc)
    pending = set()

    def refill():
        for blk in blocks:
            pending.add(pool.submit(task, job, blk, threads))
            if len(pending) >= window:
                break

    try:
        refill()
        while pending:
            finished, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
            for fut in finished:
                res = fut.result()
                if finish is not None:
                    finish(res)
                scatter(res)
                done += res["rows"].shape[0]
                if on_result is not None:
                    on_result(res)
            refill()
            bar.update(done)
    except KeyboardInterrupt:
        for fut in pending:
            fut.cancel()
        raise G.Interrupted(done, n) from None
    finally:
        bar.close()
    return done


def run_blocks(call, chunks, per, *, progress, desc):
    """Run ``call(rows)`` over the chunk table in blocks of ``per`` rows (a GPU: one
    launch per block), with a progress bar and Ctrl-C between blocks.  Returns the
    number of rows finished.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgd.engine.executors import run_blocks
    >>> sizes = []
    >>> run_blocks(lambda rows: sizes.append(len(rows)), np.zeros((5, 4)), 2,
    ...            progress=False, desc="")
    5
    >>> sizes
    [2, 2, 1]
    """
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


class SigtermAsInterrupt:
    """While active (main thread only), SIGTERM raises KeyboardInterrupt, so that a
    checkpointed grid stops between chunks and saves what finished; where the SIGINT
    handler has a true ``handles_sigterm`` attribute (the ``fastgd`` command's), SIGTERM
    goes to it instead, so that a signal after the first one (SIGTERM or Ctrl-C) waits
    for the finished cells to be saved.

    Examples
    --------
    >>> from fastgd.engine.executors import SigtermAsInterrupt
    >>> with SigtermAsInterrupt(False):
    ...     pass
    """

    def __init__(self, active):
        self.active = active
        self.old = None

    def __enter__(self):
        import signal
        import threading

        if self.active and threading.current_thread() is threading.main_thread():
            def handler(signum, frame):
                # a program's Ctrl-C handler that asks for SIGTERM too (the fastgd
                # command's: its first signal stops, later ones wait for the saving)
                own = signal.getsignal(signal.SIGINT)
                if getattr(own, "handles_sigterm", False):
                    return own(signum, frame)
                raise KeyboardInterrupt

            try:
                self.old = signal.signal(signal.SIGTERM, handler)
            except (ValueError, OSError):  # pragma: no cover - not allowed here
                self.old = None
        return self

    def __exit__(self, *exc):
        import signal

        if self.old is not None:
            signal.signal(signal.SIGTERM, self.old)
        return False


def run_resumable(run, chunks, *, scatter, finish, counts, checkpoint=None, job=None,
                  summary=None, func="sweep", fields=None):
    """Run a chunk table, through a checkpoint directory when one is given.

    With ``checkpoint`` (a path), the finished blocks found there are checked by
    ``finish`` (idempotent), written by ``scatter`` and skipped; the rest run as
    ``run(todo, on_done, on_result)`` (the model's choice of :func:`run_local`,
    :func:`run_executor` or :func:`run_blocks`, which calls ``on_done`` for blocks
    finished in this process and ``on_result`` for those of an executor), and finished
    blocks are written to the directory as they come (the first at once, later ones
    about once a second; SIGTERM stops cleanly).  The directory's lock is released
    however the run ends.  ``counts`` (a dict) receives ``chunks_resumed``,
    ``chunks_computed`` and ``seconds_run``; ``job``, ``summary``, ``func`` and
    ``fields`` (the block's per-cell arrays, default the linear model's) open the
    directory (:class:`fastgd.engine.checkpoint.Checkpoint`).  ``finish`` may be None
    (a model whose blocks need no check).

    Examples
    --------
    >>> import numpy as np
    >>> from fastgd.engine.executors import run_resumable
    >>> counts = {}
    >>> def run(todo, on_done, on_result):
    ...     on_done({"rows": todo})
    >>> run_resumable(run, np.zeros((3, 4), int), scatter=None, finish=None, counts=counts)
    >>> counts["chunks_computed"]
    3
    """
    counts.setdefault("chunks_resumed", 0)
    counts.setdefault("chunks_computed", 0)
    if checkpoint is None:
        if chunks.shape[0]:
            _run_recorded(run, chunks, None, counts)
        return
    from fastgd.engine.checkpoint import FIELDS, Checkpoint

    ck = Checkpoint(checkpoint, job, chunks, summary=summary, func=func,
                    fields=FIELDS if fields is None else fields)
    try:
        todo = chunks
        done = set()
        for blk in ck.load():
            if finish is not None:
                finish(blk)  # idempotent: blocks are written checked
            scatter(blk)
            done.update(map(tuple, blk["rows"].tolist()))
        if done:
            keep = np.array([tuple(r) not in done for r in chunks.tolist()], dtype=bool)
            todo = np.ascontiguousarray(chunks[keep])
        counts["chunks_resumed"] = int(chunks.shape[0] - todo.shape[0])
        if todo.shape[0]:
            _run_recorded(run, todo, ck, counts)
    finally:
        ck.close()  # releases the directory lock


def _run_recorded(run, todo, ck, counts):
    """``run(todo, on_done, on_result)``, counting the rows computed and writing
    finished blocks to the checkpoint ``ck`` (None: none)."""
    buf = []
    # the first finished batch is written at once, later ones about once a second
    state = {"flushed": -math.inf}

    def flush():
        if buf:
            ck.write(concat(buf))
            buf.clear()  # after the write: a write cut by Ctrl-C is retried at the end
        state["flushed"] = time.perf_counter()

    def on_done(block):  # this process: a finished, checked, scattered block
        counts["chunks_computed"] += int(block["rows"].shape[0])
        if ck is not None:
            buf.append(block)
            if time.perf_counter() - state["flushed"] >= 1.0:
                flush()

    def on_result(res):  # executor: one file per finished task
        counts["chunks_computed"] += int(res["rows"].shape[0])
        if ck is not None:
            ck.write(res)

    t0 = time.perf_counter()
    with SigtermAsInterrupt(ck is not None):
        try:
            run(todo, on_done, on_result)
        finally:
            counts["seconds_run"] = time.perf_counter() - t0
            if ck is not None:
                flush()
