"""Shared fixtures for the fastgd test suite (keep them small and generic).

Reference implementations and helpers live in ``tests/naive.py`` (``import naive``).
"""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
from hypothesis import settings

import fastgd as fg

# Hypothesis: the same verdict on every run.  Without this, hypothesis draws fresh examples
# on every run unless a CI variable is set (then its built-in "ci" profile derandomises),
# so `python -m pytest` could pass on one run and fail on the next.  The "fastgd" profile
# derives each test's examples from the test itself (derandomize=True; --hypothesis-seed
# does not change them), keeps no example database between runs and sets no deadline (a
# loaded machine or a first Numba compilation must not fail a test).  A developer who
# wants fresh examples opts in with FASTGD_HYPOTHESIS=explore (random, with the example
# database, which replays past failures first); then --hypothesis-seed=N reproduces a run.
# A test's own @settings(...) may lower max_examples but must not set derandomize=False.
settings.register_profile("fastgd", derandomize=True, deadline=None, database=None,
                          max_examples=100, print_blob=True)
settings.register_profile("explore", derandomize=False, deadline=None, max_examples=100,
                          print_blob=True)
settings.load_profile("explore" if os.environ.get("FASTGD_HYPOTHESIS") == "explore"
                      else "fastgd")

# Ctrl-C as at a terminal, whoever started the run: a background job of a
# non-interactive shell (`cmd &`, some CI runners) starts with SIGINT ignored, which
# Python then keeps and every child would inherit, so the tests that interrupt a child
# (tests/hooks.py, test_checkpoint.py) would see a Ctrl-C ignored.  A handler (unlike
# SIG_IGN) is reset by exec: children start with the default, as from a terminal.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# Opt-in: FASTGD_COMPILE_LOG=path.json logs every Numba compilation of the run (kernel,
# signature, seconds, test; tests/compile_log.py) to see what a cold suite compiles.
if os.environ.get("FASTGD_COMPILE_LOG"):
    import compile_log

    compile_log.install(os.environ["FASTGD_COMPILE_LOG"])


@pytest.fixture(scope="session")
def lecture():
    """The lecture's dataset (fresh arrays are cheap, but keep one per session)."""
    return fg.lecture_data()


@pytest.fixture
def rng():
    """A fixed-seed generator (each test gets its own)."""
    return np.random.default_rng(12345)


@pytest.fixture
def no_kernels(monkeypatch):
    """Make every linear-unit grid kernel fail if called: errors must come first."""
    from fastgd.linear import table

    def forbidden(*args, **kwargs):
        raise AssertionError("a kernel ran before the arguments were validated")

    monkeypatch.setattr(table, "launch", forbidden)
    return forbidden


@pytest.fixture
def batches(monkeypatch):
    """Linear sweeps run in several batches however short they are (a short sweep runs
    as one: fastgd.linear.executors.ONE_BATCH_S): for tests that interrupt or count
    between batches."""
    from fastgd.linear import executors

    monkeypatch.setattr(executors, "ONE_BATCH_S", 0.0)
