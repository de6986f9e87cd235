"""Fan a chunk table out over threads.

Worker ``wk`` of ``n`` runs chunks ``wk, wk + n, wk + 2n, ...`` of the table in one
call of a serial kernel that loops over its chunks (compiled with ``nogil=True``, so
the workers run in parallel).  Worker 0 runs on the calling thread, the others on a
pool of threads kept for the life of the process (:func:`_pool`).  The static
interleave spreads early-finishing (diverging) chunks evenly, and the result of every
chunk is independent of which worker ran it: results are bit-identical for any thread
count.

Why threads and not ``numba.prange``: a ``parallel=True`` driver compiles the whole
kernel a second time inside a parfor, which multiplies the compile time on a cold cache,
for the same static schedule.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import threading

import numpy as np

# the cache of :func:`_pool`: one executor and the number of workers it was made with
_POOL: cf.ThreadPoolExecutor | None = None
_POOL_SIZE = 0
_POOL_LOCK = threading.Lock()


def _forget_pool_after_fork():
    """A forked child has none of the parent's worker threads: start a new pool there
    (the old one would take work and never run it)."""
    global _POOL, _POOL_SIZE, _POOL_LOCK
    _POOL, _POOL_SIZE, _POOL_LOCK = None, 0, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool_after_fork)


def _pool(n: int) -> cf.ThreadPoolExecutor:
    """An executor of at least ``n`` worker threads, from a cache of one.

    The cache holds a single executor, replaced by a larger one when a call asks for
    more workers than it has (the old one finishes its work and ends).  Callers ask for
    the thread count of a validated ``threads`` argument less one (the calling thread is
    worker 0), and a thread count is at most ``NUMBA_NUM_THREADS``
    (:func:`fastgd.validate.threads`), so the pool never holds more than
    ``NUMBA_NUM_THREADS`` threads.  Idle workers sleep; they end with the process.
    """
    global _POOL, _POOL_SIZE
    with _POOL_LOCK:
        if _POOL is None or _POOL_SIZE < n:
            if _POOL is not None:
                _POOL.shutdown(wait=False)
            _POOL = cf.ThreadPoolExecutor(max_workers=n, thread_name_prefix="fastgd")
            _POOL_SIZE = n
        return _POOL


def fan_out(driver, head, nworkers, tail):
    """Call ``driver(*head, wk, n, *tail)`` for wk = 0..n-1 on n threads and wait.

    ``head[-1]`` is the chunk table; n = min(nworkers, number of chunks).  Ctrl-C while
    the workers run is held until every worker has finished (a kernel cannot stop
    midway, and all of them write into the same output arrays), then raised.
    """
    n = max(1, min(int(nworkers), int(head[-1].shape[0])))
    if n == 1:
        driver(*head, 0, 1, *tail)
        return
    pool = _pool(n - 1)
    err = np.geterr()  # NumPy's error state is per thread (matters with NUMBA_DISABLE_JIT=1)

    def work(wk):
        with np.errstate(**err):
            driver(*head, wk, n, *tail)

    futures = [pool.submit(work, wk) for wk in range(1, n)]
    interrupted = False
    try:
        driver(*head, 0, n, *tail)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        while True:
            try:
                cf.wait(futures)
                break
            except KeyboardInterrupt:
                interrupted = True
    for f in futures:
        f.result()  # a worker's exception is raised here
    if interrupted:
        raise KeyboardInterrupt
