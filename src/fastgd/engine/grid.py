"""The grid: seeds, threads, output holders, chunks and their batched execution with
progress and a clean Ctrl-C between batches."""


from __future__ import annotations

import contextlib
import time

import numpy as np

from fastgd import validate as V
from fastgd.status import Status


def seed_key(seed: int) -> np.ndarray:
    """Two 32-bit words from ``numpy.random.SeedSequence(seed)`` (as int64)."""
    return np.random.SeedSequence(int(seed)).generate_state(2, np.uint32).astype(np.int64)


def max_threads() -> int:
    import numba

    return int(numba.config.NUMBA_NUM_THREADS)


@contextlib.contextmanager
def using_threads(func, threads):
    """Apply a thread count for the duration of a call (``numba.set_num_threads``).

    ``NUMBA_NUM_THREADS`` (the maximum) must be set before numba is imported.
    """
    import numba

    if threads is None:
        yield numba.get_num_threads()
        return
    n = V.integer(func, "threads", threads, minimum=1, maximum=max_threads())
    old = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        yield n
    finally:
        numba.set_num_threads(old)


class Outputs:
    """Per-cell output arrays, indexed [data, seed, lr] (kernel layout)."""

    def __init__(self, n_data, n_seed, n_lr, d, n_rec=0, rec_w=False, lazy=False,
                 keep_w=True):
        """``lazy``: recordings allocated with ``np.empty`` (a single run: the kernel
        writes them up to the step where the run stopped and the run reads no further,
        so a budget of 10**9 steps that converges in 10 touches a few pages, not 8 GB).
        Otherwise they start at inf and :func:`fill_records` completes them.
        ``keep_w=False``: no final weights (``w`` is None): outputs that blocks of
        results are scattered into, never handed to a kernel (a sweep that does not
        return weights; :func:`fastgd.linear.executors.run_block`)."""
        shape = (n_data, n_seed, n_lr)
        self.d = int(d)
        self.status = np.full(shape, Status.NOT_RUN, dtype=np.int8)
        self.w = np.zeros(shape + (d,)) if keep_w else None
        self.loss = np.full(shape, np.inf)
        self.excess = np.full(shape, np.inf)
        self.tol_at = np.full(shape, -1, dtype=np.int64)
        self.div_at = np.full(shape, -1, dtype=np.int64)
        self.logg = np.zeros(shape)
        alloc = np.empty if lazy else np.zeros
        self.rec_loss = np.empty(shape + (n_rec,)) if lazy else np.full(shape + (n_rec,), np.inf)
        self.rec_w = alloc(shape + ((n_rec, d) if rec_w else (0, d)))

    def kernel_args(self):
        return (self.status, self.w, self.loss, self.excess, self.tol_at, self.div_at,
                self.logg, self.rec_loss, self.rec_w)

    @staticmethod
    def bytes_per_cell(d, n_rec=0, rec_w=False, keep_w=True):
        """Bytes held per cell: status, 5 numbers, the curve and (``keep_w``) the final
        weights."""
        return 1 + 8 * (5 + (d if keep_w else 0)) + 8 * n_rec * (1 + (d if rec_w else 0))


def check_memory(func, n_cells, per_cell, limit=None):
    """Refuse up front a result that would not fit in memory (the limit: ``limit``,
    else ``FASTGD_MAX_BYTES``, else half of physical memory; :mod:`fastgd.engine.cost`)."""
    from fastgd.engine import cost as _cost

    _cost.check(func, "grid", nbytes=float(n_cells) * per_cell,
                what=f"{n_cells:,} cells x {per_cell:,} B", max_bytes=limit,
                hint="reduce the grid or the curve length, or split the sweep")


def make_chunks(n_data, n_seed, n_lr, lanes):
    """Chunk table rows (data, seed, lr_start, lr_stop), lanes consecutive learning rates."""
    starts = np.arange(0, n_lr, lanes, dtype=np.int64)
    di, si, a = np.meshgrid(np.arange(n_data, dtype=np.int64),
                            np.arange(n_seed, dtype=np.int64), starts, indexing="ij")
    a = a.ravel()
    return np.ascontiguousarray(np.stack([di.ravel(), si.ravel(), a,
                                          np.minimum(a + lanes, n_lr)], axis=1))


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a sweep: raised between chunks; ``.done`` chunks finished."""

    def __init__(self, done, total):
        super().__init__(f"interrupted after {done} of {total} chunks")
        self.done = done
        self.total = total


def execute(call, chunks, nworkers, *, progress=None, desc="fastgd", max_batch=None,
            first=None):
    """Run ``call(chunk_rows, nworkers)`` over the chunk table in batches.

    Batches are sized to about 0.25 s after a small first batch (``first`` rows, default
    2 x ``nworkers``; all at most ``max_batch`` rows), so a progress bar
    (:class:`Progress`) advances and Ctrl-C is honoured between batches.
    """
    n = chunks.shape[0]
    done = 0
    bar = Progress(n, progress, desc)
    cap = n if max_batch is None else max(nworkers, int(max_batch))
    batch = min(cap, max(nworkers, min(n, 2 * nworkers if first is None else int(first))))
    try:
        while done < n:
            stop = min(n, done + batch)
            t0 = time.perf_counter()
            call(np.ascontiguousarray(chunks[done:stop]), nworkers)
            per_chunk = (time.perf_counter() - t0) / (stop - done)
            done = stop
            batch = int(min(max(nworkers, 0.25 / max(per_chunk, 1e-9)), n))
            batch = min(cap, max(nworkers, (batch // nworkers) * nworkers))
            bar.update(done)
    except KeyboardInterrupt:
        raise Interrupted(done, n) from None
    finally:
        bar.close()
    return done


class Progress:
    """The progress bar of a loop over ``total`` chunks (tqdm, optional), shown when it
    helps: ``progress`` True always, False never, None (automatic) once the work done so
    far says the whole will take more than 1 s and stderr is a terminal.

    Call :meth:`update` with the chunks done after each step (the bar appears at the
    first step that decides for it) and :meth:`close` at the end, in a ``finally``.
    """

    def __init__(self, total, progress, desc):
        self.total, self.progress, self.desc = total, progress, desc
        self.bar = None
        self.t_start = time.perf_counter()

    def update(self, done):
        if self.bar is None and done < self.total and self.progress is not False:
            elapsed = time.perf_counter() - self.t_start
            eta = elapsed / max(done, 1) * (self.total - done)
            if self.progress or (self.progress is None and eta + elapsed > 1.0 and _isatty()):
                self.bar = _make_bar(self.total, self.desc)
        if self.bar is not None:
            self.bar.update(done - self.bar.n)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _isatty():
    import sys

    try:
        return sys.stderr.isatty()
    except Exception:  # pragma: no cover
        return False


def _make_bar(total, desc):
    try:
        from tqdm.auto import tqdm
    except ImportError:  # optional dependency
        return None
    return tqdm(total=total, desc=desc, unit="chunk", leave=False)
