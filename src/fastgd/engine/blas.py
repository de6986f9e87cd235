"""BLAS on one thread while fastgd works.

OpenBLAS's worker threads busy-wait (spin) for about 0.1 s after every call they
served, before they sleep.  A sweep calls BLAS/LAPACK for its set-up and checks and
then runs its kernels on every core: the spinning threads took those cores from the
kernels (a network sweep at m = 64 ran 1.5x slower, a linear one's fixed cost 1.5x
higher at d = 100).  fastgd's own BLAS work is small (stacked LAPACK calls that it
threads itself), so its public runs and sweeps hold the BLAS behind NumPy and SciPy to
one thread for their whole call (:func:`one_thread`, :func:`single_blas`), and the
BLAS threads are never woken.  The limit is process-wide while a call runs (BLAS work
of other Python threads then runs on one thread too) and is restored when the call
ends.  One thread also makes LAPACK's bits independent of the BLAS thread
count.  Without threadpoolctl (a dependency; missing only in unusual installs) nothing
is limited.
"""

from __future__ import annotations

import contextlib
import functools
import threading

_LOCK = threading.Lock()
_STATE = {"ctl": None, "looked": False}
_LOCAL = threading.local()  # depth: this thread's nesting of one_thread()


def _controller():
    """threadpoolctl's controller of the BLAS libraries loaded now, made once (a scan
    of the loaded libraries, a few ms), or None without threadpoolctl.  SciPy's LAPACK
    (its own OpenBLAS, beside NumPy's; Numba's kernels call it) is loaded first, so that
    the scan finds it."""
    if not _STATE["looked"]:
        _STATE["looked"] = True
        try:
            import scipy.linalg  # noqa: F401
            from threadpoolctl import ThreadpoolController

            _STATE["ctl"] = ThreadpoolController()
        except Exception:  # missing or failing: run with BLAS as it is
            _STATE["ctl"] = None
    return _STATE["ctl"]


def available() -> bool:
    """Whether :func:`one_thread` can limit the BLAS (threadpoolctl is importable).

    Examples
    --------
    >>> from fastgd.engine.blas import available
    >>> isinstance(available(), bool)
    True
    """
    with _LOCK:
        return _controller() is not None


@contextlib.contextmanager
def one_thread():
    """Run the block with the BLAS behind NumPy and SciPy on one thread.

    Blocks nest: the outermost block of a thread sets the limit and restores the thread
    counts found on entry.  The limit is process-wide, and threadpoolctl lets one thread
    at a time change it (the others' changes do nothing): a block that runs while
    another thread's block holds the limit finds BLAS on one thread, and the holder
    restores it when its own block ends.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgd.engine.blas import one_thread
    >>> with one_thread():
    ...     float((np.eye(3) @ np.ones(3)).sum())
    3.0
    """
    depth = getattr(_LOCAL, "depth", 0)
    limiter = None
    if depth == 0:
        with _LOCK:
            ctl = _controller()
        if ctl is not None:
            limiter = ctl.limit(limits=1, user_api="blas")
            limiter.__enter__()  # threadpoolctl's ownership count: entered and left here
    _LOCAL.depth = depth + 1
    try:
        yield
    finally:
        _LOCAL.depth = depth
        if limiter is not None:
            limiter.__exit__(None, None, None)


def single_blas(func):
    """Decorate a public run or sweep: its whole call runs inside :func:`one_thread`.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgd.engine.blas import single_blas
    >>> @single_blas
    ... def total(a):
    ...     return float(a @ a)
    >>> total(np.ones(4))
    4.0
    """

    @functools.wraps(func)
    def call(*args, **kwargs):
        with one_thread():
            return func(*args, **kwargs)

    return call
