"""The fan-out of chunk tables over worker threads (fastgd.kernels.threads)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from fastgd.kernels.threads import fan_out


def test_workers_get_an_interleaved_share_of_the_chunks():
    seen = {}

    def driver(table, wk, n, out):
        seen[wk] = n
        for k in range(wk, table.shape[0], n):
            out[k] = wk

    out = np.full(7, -1)
    fan_out(driver, (np.zeros((7, 4)),), 3, (out,))
    assert seen == {0: 3, 1: 3, 2: 3}
    assert out.tolist() == [0, 1, 2, 0, 1, 2, 0]
    fan_out(driver, (np.zeros((2, 4)),), 5, (out,))  # never more workers than chunks
    assert set(seen) == {0, 1, 2} and seen[0] == 2


def test_ctrl_c_waits_for_every_worker_then_is_raised():
    def driver(table, wk, n, out):
        if wk == 0:
            raise KeyboardInterrupt
        time.sleep(0.2)
        out[wk] = 1.0

    out = np.zeros(3)
    with pytest.raises(KeyboardInterrupt):
        fan_out(driver, (np.zeros((3, 4)),), 3, (out,))
    assert out[1:].tolist() == [1.0, 1.0]  # no worker still writes after the interrupt


def test_a_worker_error_is_raised_in_the_caller():
    def driver(table, wk, n, out):
        if wk == 1:
            raise ValueError("worker 1 failed")

    with pytest.raises(ValueError, match="worker 1 failed"):
        fan_out(driver, (np.zeros((4, 4)),), 2, (None,))


def test_workers_see_the_callers_numpy_error_state():
    """NumPy's error state is per thread; under NUMBA_DISABLE_JIT the kernels are
    NumPy code, and the caller's np.errstate must hold in the workers too."""
    states = {}

    def driver(table, wk, n, out):
        states[wk] = np.geterr()["over"]

    with np.errstate(over="ignore"):
        fan_out(driver, (np.zeros((2, 4)),), 2, (None,))
    assert states == {0: "ignore", 1: "ignore"}


def test_the_pool_is_one_cached_executor_that_only_grows():
    """The pool (a cache of one executor) is reused while it is large enough and
    replaced by a larger one when a call needs more workers; it tracks its own size."""
    from fastgd.kernels import threads

    def driver(table, wk, n, out):
        pass

    fan_out(driver, (np.zeros((3, 4)),), 3, (None,))
    first = threads._POOL
    assert threads._POOL_SIZE >= 2
    fan_out(driver, (np.zeros((2, 4)),), 2, (None,))
    assert threads._POOL is first  # large enough: reused
    size = threads._POOL_SIZE
    fan_out(driver, (np.zeros((9, 4)),), size + 2, (None,))
    assert threads._POOL is not first and threads._POOL_SIZE == size + 1
