"""Engines (issue 7): the same sweep on the local Numba threads, a thread pool, a
process pool and a Dask cluster returns bit-identical results; the chunk function is
independent of how the chunk table is cut; warmup() compiles every kernel."""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import pickle

import numpy as np
import pytest

import fastgd as fg
import naive
from fastgd.engine import grid as G
from fastgd.linear import checks as CK
from fastgd.linear import executors as E
from fastgd.linear import problem as PB


def _data():
    return [tuple(fg.gaussian_data(40, [0.05, 1.0], angle=0.3, seed=1)),
            tuple(fg.gaussian_data(30, [0.2, 2.0], angle=1.1, seed=2, labels="teacher"))]


CASES = {
    "gd": dict(method="gd", lr=np.geomspace(0.05, 1.6, 13), steps=300, tol=1e-9,
               momentum=0.2, curve_points=5),
    "sgd": dict(method="sgd", lr=np.geomspace(0.01, 3.0, 11), epochs=15, seeds=[3, 7],
                batch_size=3, order="shuffle", curve_points=4),
}


def _sweep(case, **kw):
    spec = dict(CASES[case])
    return fg.sweep(spec.pop("method"), data=_data(), lanes=3, progress=False, **spec, **kw)


@pytest.fixture(scope="module")
def process_pool():
    fg.warmup(chain=False)  # workers load from the cache, never compile concurrently
    with cf.ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as ex:
        yield ex


@pytest.mark.parametrize("case", sorted(CASES))
def test_thread_and_process_pools_match_local(case, process_pool):
    ref = _sweep(case)
    assert set(np.unique(ref.status)) >= {fg.Status.DIVERGED}
    assert ref.meta["engine"] == "local"
    with cf.ThreadPoolExecutor(2) as ex:
        thr = _sweep(case, engine=ex)
    pro = _sweep(case, engine=process_pool, threads=1)
    for r in (thr, pro):
        assert r.equals(ref)
        assert r.complete and r.meta["chunks_computed"] == ref.meta["chunks_total"]
    assert pro.meta["engine"] == "ProcessPoolExecutor"


@pytest.mark.parametrize("case", sorted(CASES))
def test_run_chunks_independent_of_cutting(case):
    """Any block of rows, in any order, gives the cells of the in-place local run."""
    ref = _sweep(case)
    import importlib

    S = importlib.import_module("fastgd.linear.sweep")
    captured = {}
    real = E.run_local

    def spy(spec, chunks, out, nthreads, **kw):
        captured["spec"], captured["chunks"] = spec, chunks
        return real(spec, chunks, out, nthreads, **kw)

    E.run_local = spy
    try:
        _sweep(case)
    finally:
        E.run_local = real
    spec, chunks = captured["spec"], captured["chunks"]
    spec = pickle.loads(pickle.dumps(spec))  # what a worker receives
    rng = np.random.default_rng(0)
    rows = chunks[rng.permutation(chunks.shape[0])]
    n_data, n_lr, n_seed = ref.shape
    out = G.Outputs(n_data, n_seed, n_lr, spec.d, n_rec=spec.n_rec)
    for blk in np.array_split(rows, 5):
        E.scatter(out, E.run_chunks(spec, blk, threads=2))
    probs = [PB.prepare("t", X, y) for X, y in _data()]
    CK.finalize(probs, out, spec.inputs.w0, spec.spec.tol, spec.spec.T)  # as sweep() does
    CK.fill_records(out)
    got = S._assemble(ref.method, ref.lr, ref.seeds, probs,
                      out, int(ref.curve_t[1]) if ref.curve_t is not None else 1,
                      spec.n_rec, 0.0, False, {}, 1)
    for name in ("status", "final_loss", "steps_to_tol", "diverged_at", "curves"):
        np.testing.assert_array_equal(getattr(got, name), getattr(ref, name))


def test_engine_errors(no_kernels):
    X, y = fg.lecture_data()
    with pytest.raises(fg.FastGDTypeError, match=r"sweep: 'engine' must be a concurrent"):
        fg.sweep("gd", lr=[1.0], data=[(X, y)], engine="dask")
    with cf.ThreadPoolExecutor(1) as ex:
        with pytest.raises(fg.FastGDValueError, match="'engine' must be None with backend"):
            fg.sweep("gd", lr=[1.0], data=[(X, y)], engine=ex, backend="cuda")
        with pytest.raises(fg.FastGDValueError, match="'threads' must be"):
            fg.sweep("gd", lr=[1.0], data=[(X, y)], engine=ex, threads=0)


def test_warmup_keeps_one_signature_per_kernel():
    assert fg.warmup(chain=False) >= 0
    if naive.JITLESS:
        pytest.skip("NUMBA_DISABLE_JIT=1: no signatures")
    from fastgd.linear import table

    keys = {("linear", m, D, full, 1) for m in ("gd", "sgd")
            for D, full in ((2, False), (0, True))}
    assert keys <= set(table._BUILT)
    for key in keys:  # one signature per dtype: float64 and float32
        sigs = table._BUILT[key].signatures
        assert sorted(str(s[0].dtype) for s in sigs) == ["float32", "float64"], (key, sigs)


def _chain_sweep(**kw):
    """A chain SGD grid of 5 chunks with every status."""
    rng = np.random.default_rng(4)
    return fg.chain.chain_sweep(rng.uniform(-2.0, 2.0, (13, 2)), np.geomspace(0.02, 1.5, 23),
                                40, [0.5, 1.0, -1.5], [0.4, 0.8, -1.2], method="sgd",
                                order="replacement", seed=2, progress=False, **kw)


def test_chain_sweep_on_a_process_pool_matches_local(process_pool):
    ref = _chain_sweep()  # compiles (or loads) the chain kernels before the workers do
    assert len(np.unique(ref.status)) == 3
    got = _chain_sweep(engine=process_pool)
    assert got.equals(ref) and got.meta["engine"] == "ProcessPoolExecutor"


@pytest.mark.dask
def test_dask_local_cluster_matches_local():
    distributed = pytest.importorskip("distributed")
    fg.warmup(chain=True)
    ref = [_sweep(c) for c in sorted(CASES)]
    chain_ref = _chain_sweep()
    X = np.linspace(-1, 1, 8)[:, None]
    net_kw = dict(width=[3, 4], seeds=2, sharpness_every=10, progress=False)
    net_ref = fg.net.net_sweep(X, np.sin(2 * X[:, 0]), [0.1, 1.0, 30.0], 30, **net_kw)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        ex = client.get_executor()
        # the Client's public nthreads() sizes the tasks; the executor hides its client
        assert E.executor_workers(client) == 2
        got = [_sweep(c, engine=ex) for c in sorted(CASES)]
        chain_got = _chain_sweep(engine=client)
        net_got = fg.net.net_sweep(X, np.sin(2 * X[:, 0]), [0.1, 1.0, 30.0], 30,
                                   engine=client, **net_kw)
    for a, b in zip(ref, got, strict=True):
        assert b.equals(a)
        assert b.meta["engine"] == "ClientExecutor"
    assert chain_got.equals(chain_ref) and chain_got.meta["engine"] == "Client"
    for name in ("status", "loss", "sharpness", "sharpness_curve", "lambda0"):
        np.testing.assert_array_equal(getattr(net_got, name), getattr(net_ref, name))
    assert net_got.meta["engine"] == "Client"


# ------------------------------------------------------------------ the kernel table
def test_table_holds_the_chain_and_works_without_other_models():
    from dataclasses import dataclass

    from fastgd.chain import launch as CL
    from fastgd.engine import table

    keys = table.registered()
    assert {("chain", m, b) for m in ("gd", "sgd") for b in ("cpu", "cuda")} <= set(keys)
    assert {(model, m, "cpu") for model in ("linear", "net") for m in ("gd", "sgd")} <= set(keys)
    assert table.lookup("chain", "gd") is CL._gd_cpu
    with pytest.raises(LookupError, match=r"no launcher for model 'nomodel', method 'gd'.*"
                       r"registered: .*chain/gd/cpu"):
        table.lookup("nomodel", "gd")

    @dataclass(frozen=True)
    class Spec:
        method: str
        model: str = "toy"

    seen = []

    def toy(spec, inputs, rows, nworkers, out):
        out.append((spec.method, inputs, rows.dtype.name, rows.shape, nworkers))

    try:
        table.register("toy", "gd", toy)
        table.register("toy", "gd", toy)  # the same launcher again: a no-op
        with pytest.raises(ValueError, match="already registered"):
            table.register("toy", "gd", lambda *a: None)
        with pytest.raises(TypeError, match="must be callable"):
            table.register("toy", "sgd", "launcher")
        table.launch(Spec("gd"), "inputs", [[0, 0, 0, 3]], 2, seen)
        assert seen == [("gd", "inputs", "int64", (1, 4), 2)]
        with pytest.raises(LookupError, match="method 'sgd'"):
            table.launch(Spec("sgd"), None, [[0, 0, 0, 1]], 1, seen)
    finally:
        table.unregister("toy", "gd")
    assert table.registered() == keys
