"""Network sweeps on the one engine (issue 21): the same net_sweep on this process's
threads (any count), a thread pool, a process pool and through a checkpoint directory
returns bit-identical results; Ctrl-C (a hook that raises KeyboardInterrupt at the k-th
chunk launch: evidence, not timers) returns the finished cells and a rerun resumes to
the uninterrupted result; every model registers its launchers in engine.table; the
engine reads no private attribute of an executor."""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import os
import pickle

import numpy as np
import pytest

import fastgd.net as fn
import fastgd.net.launch as net_launch
from fastgd import FastGDTypeError, FastGDValueError, Status, SweepInterrupted
from fastgd.engine import executors as EX
from fastgd.engine import grid as G

THREADS = min(2, G.max_threads())
_X = np.linspace(-1.0, 1.0, 9)[:, None] * np.array([[1.0, -0.5]])
_Y = np.sin(2.0 * _X[:, 0])
#: small grids of several chunks with every status: GD (momentum, the sharpness and its
#: curve), SGD (two chunks per initialisation) and Adam (the preconditioned sharpness)
CASES = {
    "gd": dict(lr=[0.1, 1.0, 5.0, 30.0, 100.0], steps=40, width=[3, 4], seeds=2,
               sharpness_every=20, momentum=0.1, tol=1e-2),
    "sgd": dict(lr=np.geomspace(0.05, 20.0, 37), steps=8, width=[3], seeds=[1, 2],
                method="sgd", batch_size=2, order="shuffle", tol=0.05, sharpness=False),
    "adam": dict(lr=[0.01, 0.1, 1.0], steps=30, width=[3, 4], seeds=2, optimizer="adam",
                 tol=0.3, sharpness_every=10, freeze_preconditioner=15),
}
_HOW = ("seconds", "threads", "meta")


def _sweep(case, **kw):
    spec = {**CASES[case], **kw}
    return fn.net_sweep(_X, _Y, spec.pop("lr"), spec.pop("steps"), progress=False, **spec)


def _equal(a, b):
    """Every field but how it ran, bit for bit (NaN == NaN)."""
    for name in a.__dataclass_fields__:
        if name in _HOW:
            continue
        u, v = getattr(a, name), getattr(b, name)
        if isinstance(u, np.ndarray):
            assert isinstance(v, np.ndarray) and u.dtype == v.dtype, name
            np.testing.assert_array_equal(u, v, err_msg=name)
        else:
            assert u == v, name


@pytest.fixture(scope="module")
def refs():
    out = {case: _sweep(case) for case in CASES}
    assert set(np.unique(out["gd"].status)) == {0, 1, 2}
    assert set(np.unique(out["sgd"].status)) == {0, 1, 2}
    assert out["sgd"].meta["chunks_total"] == 4  # 37 rates: 2 chunks x 2 initialisations
    return out


@pytest.mark.parametrize("case", sorted(CASES))
def test_threads_and_a_thread_pool_match_the_plain_run(case, refs):
    ref = refs[case]
    assert ref.complete and ref.meta["engine"] == "local"
    for threads in sorted({1, THREADS}):
        _equal(_sweep(case, threads=threads), ref)
    with cf.ThreadPoolExecutor(2) as ex:
        got = _sweep(case, engine=ex, threads=THREADS)
    _equal(got, ref)
    assert got.meta["engine"] == "ThreadPoolExecutor"
    assert got.meta["chunks_computed"] == ref.meta["chunks_total"]


def test_a_process_pool_matches_the_plain_run(refs):
    with cf.ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as ex:
        got = [_sweep(case, engine=ex) for case in ("gd", "sgd")]
    for g, case in zip(got, ("gd", "sgd"), strict=True):
        _equal(g, refs[case])
        assert g.meta["engine"] == "ProcessPoolExecutor"


def test_run_chunks_independent_of_cutting(refs, monkeypatch):
    """Any block of rows, in any order, on a pickled job (what a worker gets), gives
    the cells of the plain run."""
    seen = {}
    real = net_launch.runner

    def spy(job, cells, *a, **k):
        seen["job"] = job
        return real(job, cells, *a, **k)

    monkeypatch.setattr(net_launch, "runner", spy)
    _sweep("sgd")
    job = pickle.loads(pickle.dumps(seen["job"]))
    rows = net_launch.chunk_table(job)
    cells = net_launch.Cells(job.inputs.n_init, job.inputs.n_lr, job.spec.n_th)
    for blk in np.array_split(rows[np.random.default_rng(0).permutation(len(rows))], 3):
        cells.scatter(net_launch.run_chunks(job, blk, threads=THREADS))
    ref = refs["sgd"]
    np.testing.assert_array_equal(cells.status.reshape(ref.status.shape), ref.status)
    np.testing.assert_array_equal(cells.loss.reshape(ref.status.shape), ref.loss)
    np.testing.assert_array_equal(cells.tol_at.reshape(ref.status.shape), ref.steps_to_tol)


def _interrupt_at_launch(monkeypatch, k):
    """Ctrl-C at the k-th chunk launch of this process (evidence, not a timer): with one
    thread the local engine's first block is two chunks, one launch."""
    real, calls = net_launch._launch, []

    def launch(*args):
        calls.append(1)
        if len(calls) == k:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(net_launch, "_launch", launch)


@pytest.mark.parametrize("case", ["gd", "adam"])
def test_ctrl_c_returns_the_finished_cells_and_resumes(case, refs, tmp_path, monkeypatch):
    ref = refs[case]
    ck = tmp_path / "ck"
    _interrupt_at_launch(monkeypatch, 2)
    with pytest.raises(SweepInterrupted) as info:
        _sweep(case, checkpoint=ck, threads=1)
    monkeypatch.undo()
    part = info.value.result
    assert isinstance(part, fn.NetSweepResult) and not part.complete
    n_lr = ref.lr.size
    done = part.status.ravel() != Status.NOT_RUN
    assert done.sum() == 2 * n_lr and done[: 2 * n_lr].all()  # two chunks: two inits
    for name in ("status", "loss", "max_loss_ratio", "sharpness", "steps_to_tol",
                 "diverged_at", "sharpness_curve"):
        a, b = getattr(part, name), getattr(ref, name)
        shape = (done.size, -1)
        np.testing.assert_array_equal(a.reshape(shape)[done], b.reshape(shape)[done])
    assert np.all(np.isinf(part.loss.ravel()[~done]))
    for name in ("lambda0", "ntk0", "loss0"):  # per initialisation: all there
        np.testing.assert_array_equal(getattr(part, name), getattr(ref, name))
    res = _sweep(case, checkpoint=ck, threads=1)
    _equal(res, ref)
    assert (res.meta["chunks_resumed"], res.meta["chunks_computed"]) == (2, 2)
    again = _sweep(case, checkpoint=ck)  # everything on disk
    _equal(again, ref)
    assert again.meta["chunks_resumed"] == 4 and again.meta["chunks_computed"] == 0
    with pytest.raises(FastGDValueError, match="net_sweep: 'checkpoint' must be a "
                       "directory written by the same sweep"):
        _sweep(case, checkpoint=ck, tol=0.5)


def test_ctrl_c_without_checkpoint_and_on_an_executor(refs, tmp_path, monkeypatch):
    ref = refs["sgd"]
    _interrupt_at_launch(monkeypatch, 2)
    with pytest.raises(SweepInterrupted) as info:
        _sweep("sgd", threads=1)
    assert int(np.count_nonzero(info.value.result.status != Status.NOT_RUN)) == 37
    _interrupt_at_launch(monkeypatch, 2)  # a fresh count; the worker thread raises
    with cf.ThreadPoolExecutor(1) as ex, pytest.raises(SweepInterrupted) as info:
        _sweep("sgd", engine=ex, checkpoint=tmp_path / "ck")
    monkeypatch.undo()
    part = info.value.result
    done = part.status != Status.NOT_RUN
    assert not part.complete
    np.testing.assert_array_equal(part.loss[done], ref.loss[done])
    with cf.ThreadPoolExecutor(2) as ex:
        res = _sweep("sgd", engine=ex, checkpoint=tmp_path / "ck")
    _equal(res, ref)
    assert res.meta["chunks_computed"] >= 1


def test_engine_and_checkpoint_are_validated(tmp_path):
    with pytest.raises(FastGDTypeError, match="net_sweep: 'engine' must be a concurrent"):
        _sweep("gd", engine="dask")
    with pytest.raises(FastGDTypeError, match="net_sweep: 'checkpoint' must be a "
                       "directory path"):
        _sweep("gd", checkpoint=3)
    (tmp_path / "file").write_text("x")
    with pytest.raises(FastGDValueError, match="net_sweep: 'checkpoint' must be a "):
        _sweep("gd", checkpoint=tmp_path / "file" / "sub")
    with cf.ThreadPoolExecutor(1) as ex, pytest.raises(FastGDValueError,
                                                       match="'threads' must be"):
        _sweep("gd", engine=ex, threads=0)


# ------------------------------------------------------------------ the kernel table
def test_every_model_and_method_is_registered():
    import fastgd.chain.launch as CL
    import fastgd.linear.executors as LE
    from fastgd.engine import table

    keys = set(table.registered())
    for model in ("linear", "chain", "net"):
        for method in ("gd", "sgd"):
            assert (model, method, "cpu") in keys, (model, method)
    assert table.lookup("net", "sgd") is net_launch._cpu
    assert table.lookup("linear", "gd") is LE._cpu and table.lookup("chain", "gd") is CL._gd_cpu


def test_linear_launches_go_through_the_table(monkeypatch):
    """fastgd.gd reaches its kernel through engine.table.launch."""
    import fastgd as fg
    from fastgd.engine import table

    seen = []
    real = table.launch

    def spy(spec, *a):
        seen.append((spec.model, spec.method))
        return real(spec, *a)

    monkeypatch.setattr(table, "launch", spy)
    X, y = fg.lecture_data()
    assert fg.gd(X, y, 0.1, 20).status in tuple(Status)
    assert seen == [("linear", "gd")]


# ------------------------------------------------ executors: public interfaces only
class _Strict(cf.Executor):
    """A thread pool whose private attributes must not be read."""

    def __init__(self, n):
        self._pool = cf.ThreadPoolExecutor(n)

    def submit(self, fn, /, *args, **kwargs):
        return self._pool.submit(fn, *args, **kwargs)

    def shutdown(self, wait=True, **kw):
        self._pool.shutdown(wait)

    @property
    def _max_workers(self):
        raise AssertionError("read a private attribute of the executor")

    @property
    def _client(self):
        raise AssertionError("read a private attribute of the executor")


class _FakeClient:
    """What fastgd uses of a Dask distributed.Client: get_executor() and nthreads()."""

    def __init__(self, pool):
        self.pool = pool

    def get_executor(self):
        return self.pool

    def nthreads(self):
        return {"tcp://a": 2, "tcp://b": 3}


def test_workers_are_read_from_public_interfaces_only(refs):
    with _Strict(2) as ex:
        assert EX.executor_workers(ex) == (os.cpu_count() or 1)
        assert EX.executor_workers(ex, workers=7) == 7
        _equal(_sweep("gd", engine=ex), refs["gd"])
    with cf.ThreadPoolExecutor(2) as pool:
        client = _FakeClient(pool)
        assert EX.is_client(client) and not EX.is_client(pool)
        assert EX.check_engine("f", client) is client
        assert EX.executor_workers(client) == 5
        got = _sweep("sgd", engine=client)
    _equal(got, refs["sgd"])
    assert got.meta["engine"] == "_FakeClient"
