"""Benchmarks of one batch-GD run and one per-sample SGD run on the lecture's data.

In the default test run they run once as a smoke test (``--benchmark-disable`` is in
the pytest options).  Time them with

    pytest bench/test_bench_core.py --benchmark-enable     # timings
    pytest bench/test_bench_core.py --benchmark-enable --benchmark-autosave   # save, later:
    pytest bench/test_bench_core.py --benchmark-enable --benchmark-compare --benchmark-compare-fail=min:15%

Each benchmark calls the function once before ``benchmark(...)`` so Numba's compile
(or cache load) is not timed.  ``extra_info`` records the update count and the
throughput in updates per second (a GD update is one full-gradient step from the
sufficient statistics; an SGD update is one per-sample step).
"""

from __future__ import annotations

import numba
import pytest

import fastgd as fg
from fastgd.kernels import jit as _jit

GD_STEPS = 1000
SGD_EPOCHS = 100


@pytest.fixture(scope="module")
def lecture():
    return fg.lecture_data()


def _record(benchmark, updates):
    benchmark.extra_info["updates"] = updates
    benchmark.extra_info["numba"] = numba.__version__
    benchmark.extra_info["threads"] = numba.get_num_threads()
    benchmark.extra_info["njit_options"] = repr(_jit.options())
    stats = getattr(benchmark, "stats", None)
    if stats is not None:  # None under --benchmark-disable
        mean = stats.stats.mean
        benchmark.extra_info["updates_per_s"] = updates / mean if mean > 0 else float("inf")


def test_bench_gd_lecture(benchmark, lecture):
    X, y = lecture
    run = lambda: fg.gd(X, y, 1.5, GD_STEPS, tol=0.0)  # noqa: E731
    warm = run()  # compile / load the cache outside the timing
    assert warm.status == fg.Status.BOUNDED and len(warm.losses) == GD_STEPS + 1
    benchmark.group = "core: single run"
    r = benchmark(run)
    assert r.status == fg.Status.BOUNDED
    _record(benchmark, GD_STEPS)


def test_bench_sgd_lecture(benchmark, lecture):
    X, y = lecture
    run = lambda: fg.sgd(X, y, 0.2, SGD_EPOCHS)  # noqa: E731
    warm = run()
    assert warm.status == fg.Status.BOUNDED
    benchmark.group = "core: single run"
    r = benchmark(run)
    assert r.status == fg.Status.BOUNDED
    _record(benchmark, SGD_EPOCHS * X.shape[0])
