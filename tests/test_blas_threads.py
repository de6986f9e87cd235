"""Public runs and sweeps hold the BLAS to one thread for their whole call
(fastgd.engine.blas): OpenBLAS threads spinning after fastgd's set-up took the cores
from its kernels.  The limit nests, counts concurrent calls, and is restored after a
call, also one that raises."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import fastgd as fg
import fastgd.net as fn
from fastgd.engine import blas
from fastgd.linear import adaptive, boundary, run, sweep
from fastgd.net import phase2, runs
from fastgd.net import sweep as net_sweep_mod

threadpoolctl = pytest.importorskip("threadpoolctl")

pytestmark = pytest.mark.skipif(not blas.available(), reason="threadpoolctl finds no BLAS")


def _blas_threads():
    """The largest thread count of the loaded BLAS libraries now."""
    return max(i["num_threads"] for i in threadpoolctl.threadpool_info()
               if i["user_api"] == "blas")


@pytest.fixture
def default_blas_threads():
    """The BLAS thread count outside any fastgd call (2 on a 2-core machine, 1 under
    ``taskset -c 0`` or OPENBLAS_NUM_THREADS=1: the checks of "restored" then hold
    trivially)."""
    return _blas_threads()


def test_one_thread_nests_and_restores(default_blas_threads):
    with blas.one_thread():
        assert _blas_threads() == 1
        with blas.one_thread():
            assert _blas_threads() == 1
        assert _blas_threads() == 1  # the inner block's end keeps the outer's limit
    assert _blas_threads() == default_blas_threads


def test_a_call_on_another_thread_holds_and_restores_the_limit(default_blas_threads):
    """A sweep run by a worker thread (a thread executor, Dask's threads) after the
    main thread's own calls: the worker can take the limit and gives it back."""
    with blas.one_thread():
        pass
    seen = []

    @blas.single_blas
    def work():
        seen.append(_blas_threads())
        X, y = fg.lecture_data()
        return fg.sweep("gd", lr=[0.5, 3.0], data=[(X, y)], steps=200)

    t = threading.Thread(target=lambda: seen.append(work()))
    t.start()
    t.join()
    assert seen[0] == 1
    assert list(seen[1].diverged.ravel()) == [False, True]
    assert _blas_threads() == default_blas_threads


def test_a_call_that_raises_restores_the_limit(default_blas_threads):
    with pytest.raises(ValueError, match="lr"):
        fg.sweep("gd", lr=-1.0, data=[fg.lecture_data()], steps=3)
    assert _blas_threads() == default_blas_threads


def _spy(monkeypatch, modules, name):
    """Wrap ``name`` of the first module (and put the wrapper wherever the others
    imported it): the list of BLAS thread counts found at each call."""
    seen, real = [], getattr(modules[0], name)

    def spy(*args, **kwargs):
        seen.append(_blas_threads())
        return real(*args, **kwargs)

    for mod in modules:
        if hasattr(mod, name):
            monkeypatch.setattr(mod, name, spy)
    return seen


def test_a_sweep_prepares_its_data_on_one_blas_thread(default_blas_threads, monkeypatch):
    from fastgd.linear import problem

    seen = _spy(monkeypatch, [problem, sweep.PB], "prepare_many")
    X, y = fg.lecture_data()
    res = fg.sweep("sgd", lr=[0.01, 0.1], data=[(X, y), (X, 2 * y)], epochs=3)
    assert res.status.shape == (2, 2, 1)
    assert seen and set(seen) == {1}
    assert _blas_threads() == default_blas_threads


def test_a_net_sweep_runs_its_kernels_with_one_blas_thread(default_blas_threads, monkeypatch):
    import importlib

    mods = [importlib.import_module(f"fastgd.{m}") for m in
            ("kernels.threads", "net.kernels_rows", "net.launch", "net.curvature")]
    seen = _spy(monkeypatch, mods, "fan_out")
    X = np.random.default_rng(0).standard_normal((16, 3))
    y = np.tanh(X[:, 0])
    res = fn.net_sweep(X, y, [0.01, 0.1], 5, width=4, progress=False)
    assert res.status.size == 2
    assert seen and set(seen) == {1}
    assert _blas_threads() == default_blas_threads


@pytest.mark.parametrize("f", [sweep.sweep, run.gd, run.sgd, boundary.critical_lr,
                               adaptive.adaptive_sweep, runs.net_gd, runs.net_sgd,
                               net_sweep_mod.net_sweep, phase2.net_adaptive_phase],
                         ids=lambda f: f.__name__)
def test_public_runs_and_sweeps_hold_the_blas(f):
    """Every public entry point that runs kernels after BLAS work is wrapped (the
    wrapper keeps the name, the docstring and the signature)."""
    assert f.__code__ is blas.single_blas(len).__code__  # fastgd's wrapper
    assert f.__wrapped__.__name__ == f.__name__
    assert f.__doc__ == f.__wrapped__.__doc__
    assert f.__module__ == f.__wrapped__.__module__
