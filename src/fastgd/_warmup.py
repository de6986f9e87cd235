"""``fastgd.warmup``: compile (or load from the disk cache) the kernels the API runs.

Above the sweep and chain layers (it calls both), so that the engines below import
nothing from above.
"""

from __future__ import annotations

import time

import numpy as np

from fastgd import chain as _chain
from fastgd import validate as V
from fastgd.data import lecture_data
from fastgd.linear.sweep import sweep


def warmup(*, float32=True, chain=True, threads=None):
    """Compile, or load from Numba's on-disk cache, every kernel the API runs.

    Call it once in the parent process before handing a sweep to an engine (process
    pool, Dask workers): the workers then load the compiled kernels from the cache
    instead of compiling them, and never race to write the same cache entry.  On a
    cluster whose workers do not share this file system, run it on each worker once
    (``client.run(fastgd.warmup)``) or point ``NUMBA_CACHE_DIR`` at a shared directory.

    Parameters
    ----------
    float32 : bool
        Also the float32 twins (``sweep(..., dtype="float32")``).
    chain : bool
        Also the scalar-chain kernels (:mod:`fastgd.chain`).
    threads : int, optional
        Numba threads for the calls.

    Returns
    -------
    float
        Seconds taken: short from a warm cache; cold, the compile time of the plain
        d = 2 and the FULL kernels of GD and SGD (float64 and float32) and of the chain
        kernels.  Plain kernels for other d compile on first use (once per machine).

    Examples
    --------
    >>> import fastgd as fg
    >>> fg.warmup() >= 0
    True
    """
    float32 = V.boolean("warmup", "float32", float32)
    chain = V.boolean("warmup", "chain", chain)
    V.threads("warmup", threads)
    t0 = time.perf_counter()
    X, y = lecture_data()
    dtypes = ("float64", "float32") if float32 else ("float64",)
    for dt in dtypes:
        # each kernel twice: the plain one (d = 2, register layout) and the FULL one
        kw = dict(lr=[0.5, 3.0], data=[(X, y)], dtype=dt, threads=threads, progress=False)
        sweep("gd", steps=3, **kw)
        sweep("gd", steps=3, momentum=0.5, **kw)
        sweep("sgd", epochs=2, **kw)
        sweep("sgd", epochs=2, batch_size=2, **kw)
    if chain:
        w = np.array([[0.5, 0.5]])
        _chain.chain_sweep(w, [0.1], 2, threads=threads, progress=False)
        _chain.chain_sweep(w, [0.1], 2, method="sgd", threads=threads, progress=False)
    return time.perf_counter() - t0
