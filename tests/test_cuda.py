"""GPU backend (issue 7) without a GPU: the scalar run functions that the CUDA kernels
are compiled from equal the CPU lane kernels bit for bit (CPU-compiled, in process); the
CUDA kernels under the simulator (NUMBA_ENABLE_CUDASIM=1, in a subprocess since the
variable must be set before numba.cuda is imported) return the CPU sweep's results;
``import fastgd`` never imports numba.cuda; without a GPU the error is clear."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastgd as fg
from fastgd import status as ST
from fastgd.engine import grid as G
from fastgd.linear import executors as E


def _data():
    return [tuple(fg.gaussian_data(12, [0.05, 1.0], angle=0.3, seed=1)),
            tuple(fg.gaussian_data(9, [0.2, 2.0], angle=1.1, seed=2, labels="teacher"))]


CASES = [
    dict(method="gd", lr=np.geomspace(0.05, 1.6, 6).tolist(), steps=40, momentum=0.2,
         curve_points=3),
    dict(method="gd", lr=np.geomspace(0.05, 1.6, 6).tolist(), steps=60, nesterov=True,
         momentum=0.1),
    dict(method="sgd", lr=np.geomspace(0.01, 3.0, 5).tolist(), epochs=6, seeds=[3, 7],
         batch_size=2, order="shuffle", curve_points=3),
    dict(method="sgd", lr=np.geomspace(0.01, 3.0, 5).tolist(), epochs=6, seeds=[3],
         order="replacement"),
    dict(method="sgd", lr=np.geomspace(0.01, 20.0, 5).tolist(), epochs=6, seeds=[3],
         order="cyclic", momentum=0.3, nesterov=True, batch_size=4),
]
IDS = ["gd-momentum", "gd-nesterov", "sgd-shuffle-batch", "sgd-replacement",
       "sgd-cyclic-nesterov"]


def _job_and_chunks(method, **kw):
    """The linear job sweep() builds (:class:`fastgd.linear.contract.LinearJob`, captured
    at the engine boundary) and its chunk table."""
    got = {}
    real = E.run_local

    def spy(job, chunks, out, nthreads, **k):
        got["job"], got["chunks"] = job, chunks
        return real(job, chunks, out, nthreads, **k)

    E.run_local = spy
    try:
        res = fg.sweep(method, data=_data(), lanes=3, progress=False, **kw)
    finally:
        E.run_local = real
    return res, got["job"], got["chunks"]


def _scalar_runs(job, cells):
    """Every cell (dataset, seed, rate) through the scalar run functions, CPU-compiled:
    the flat outputs (status, w, loss, excess, tol_at, div_at, rec_loss)."""
    from fastgd.linear import gpu, scalar

    spec, inp = job.spec, job.inputs
    n, d, n_rec = len(cells), job.d, job.n_rec
    res = (np.empty(n, np.int8), np.empty((n, d)), np.empty(n), np.empty(n),
           np.empty(n, np.int64), np.empty(n, np.int64), np.empty((n, n_rec)))
    scratch = [np.empty((d, n)) for _ in range(5)]
    if spec.method == "sgd":
        idx, pair = gpu.sample_orders(job)
    else:
        from fastgd.linear.kernels import eig_basis

        lam, V = eig_basis(inp.R)
    with np.errstate(all="ignore"):
        for k, (di, si, j) in enumerate(cells):
            if spec.method == "gd":
                scalar.gd_run_cpu(k, di, j, lam, V, inp.wstar, inp.estar, inp.c0, inp.lr,
                                  inp.beta, spec.nesterov, inp.w0, spec.T, spec.tol,
                                  spec.blowup, spec.rec_every, *scratch[:3], *res)
            else:
                scalar.sgd_run_cpu(k, di, si, j, inp.X, inp.y, inp.P[di], inp.R, inp.wstar,
                                   inp.estar, inp.c0, inp.lr, inp.beta, spec.nesterov,
                                   inp.w0, spec.T, spec.batch, idx, pair[di, si], spec.tol,
                                   spec.blowup, spec.rec_every, *scratch, *res)
    return dict(zip(E.FIELDS, res, strict=True))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_scalar_run_functions_equal_lane_kernels(case):
    """The functions compiled for CUDA, compiled for the CPU instead: every cell equals
    the lane kernels' (status, step, final weights and losses, curves) bit for bit."""
    kw = dict(case)
    method = kw.pop("method")
    ref, job, chunks = _job_and_chunks(method, **kw)
    n_data, n_lr, n_seed = ref.shape
    cells = [(di, si, j) for di in range(n_data) for si in range(n_seed) for j in range(n_lr)]
    res = _scalar_runs(job, cells)
    out = G.Outputs(n_data, n_seed, n_lr, job.d, n_rec=job.n_rec)
    for k, (di, si, j) in enumerate(cells):
        E.scatter(out, {"rows": np.array([[di, si, j, j + 1]]),
                        **{f: v[k:k + 1] for f, v in res.items()}})
    ref_out = G.Outputs(n_data, n_seed, n_lr, job.d, n_rec=job.n_rec)
    E.run_local(job, chunks, ref_out, 1, progress=False, desc="")
    # statuses and steps exact; floats bit-identical today, checked to 1e-12 so that
    # a reordering inside the lane kernels (being tuned) does not break the contract
    for a, b in zip(out.kernel_args(), ref_out.kernel_args(), strict=True):
        if a.dtype.kind == "f":
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-300)
        else:
            np.testing.assert_array_equal(a, b)
    assert len(np.unique(res["status"])) >= 2


SIM_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    try:
        from numba import cuda
    except ImportError:
        print("NO-CUDA"); sys.exit(0)
    import fastgd as fg
    data = [tuple(fg.gaussian_data(12, [0.05, 1.0], angle=0.3, seed=1)),
            tuple(fg.gaussian_data(9, [0.2, 2.0], angle=1.1, seed=2, labels="teacher"))]
    for kw in json.loads(sys.argv[1]):
        m = kw.pop("method")
        a = fg.sweep(m, data=data, lanes=3, progress=False, **kw)
        b = fg.sweep(m, data=data, lanes=3, progress=False, backend="cuda", **kw)
        assert b.meta["spec"]["backend"] == "cuda"
        assert np.array_equal(a.status, b.status), (m, kw)
        assert np.array_equal(a.diverged_at, b.diverged_at)
        assert np.array_equal(a.steps_to_tol, b.steps_to_tol)
        fin = np.isfinite(a.final_loss)
        assert np.array_equal(fin, np.isfinite(b.final_loss))
        np.testing.assert_allclose(b.final_loss[fin], a.final_loss[fin], rtol=1e-12,
                                   atol=1e-300)
        print(m, "identical" if a.equals(b) else "close")
    print("OK")
""")


def _run(script, *args, sim=True, contract=None):
    env = dict(os.environ)
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    if sim:
        env["NUMBA_ENABLE_CUDASIM"] = "1"
    if contract is not None:
        env["FASTGD_CONTRACT"] = "1" if contract else "0"
    return subprocess.run([sys.executable, "-c", script, *args], env=env,
                          capture_output=True, text=True, timeout=300)


def test_cuda_kernels_under_simulator_match_cpu():
    import json

    p = _run(SIM_SCRIPT, json.dumps(CASES))
    if "NO-CUDA" in p.stdout:
        pytest.skip("numba's CUDA target (numba-cuda) is not installed")
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.strip().endswith("OK")
    # numba's built-in simulator gives identical bits; numba-cuda's may differ in the
    # last bit (its arithmetic is not numpy's), hence "close" (rtol 1e-12) is accepted
    assert p.stdout.count(" identical") + p.stdout.count(" close") == len(CASES)


def test_import_fastgd_does_not_import_cuda():
    p = _run("import sys, fastgd as fg; fg.sweep('gd', lr=[1.0], condition=[2.0], steps=3);"
             "import fastgd.linear.gpu; print(sorted(m for m in sys.modules if m.startswith("
             "('numba.cuda', 'dask', 'distributed', 'xarray', 'matplotlib'))))", sim=False)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "[]"


def test_no_gpu_gives_a_clear_error():
    script = textwrap.dedent("""
        import fastgd as fg
        from fastgd.linear import gpu
        if gpu.available():
            print("HAS-GPU")
        else:
            try:
                fg.sweep("gd", lr=[1.0], condition=[2.0], steps=3, backend="cuda")
            except fg.FastGDValueError as exc:
                print("ERR", exc)
    """)
    p = _run(script, sim=False)
    if "HAS-GPU" in p.stdout:
        pytest.skip("a CUDA GPU is present")
    assert p.returncode == 0, p.stderr[-2000:]
    assert "ERR sweep: 'backend' must be 'cpu' on a machine without a usable CUDA GPU" \
        in p.stdout
    assert "no CUDA device was found" in p.stdout


def test_chain_sweep_without_gpu_gives_a_clear_error():
    script = textwrap.dedent("""
        import fastgd as fg
        from fastgd.linear import gpu
        if gpu.available():
            print("HAS-GPU")
        else:
            try:
                fg.chain.chain_sweep([0.5, 0.5], [0.1], 3, backend="cuda")
            except fg.FastGDValueError as exc:
                print("ERR", exc)
    """)
    p = _run(script, sim=False)
    if "HAS-GPU" in p.stdout:
        pytest.skip("a CUDA GPU is present")
    assert p.returncode == 0, p.stderr[-2000:]
    assert "ERR chain_sweep: 'backend' must be 'cpu' on a machine without a usable CUDA " \
        "GPU" in p.stdout


def test_backend_is_validated(no_kernels):
    with pytest.raises(fg.FastGDValueError, match="sweep: 'backend' must be one of"):
        fg.sweep("gd", lr=[1.0], condition=[1.0], backend="tpu")
    importlib.import_module("fastgd.linear.gpu")  # importable without numba.cuda being imported


# ------------------------------------------------------------------ scalar chains
CHAIN = [dict(method="gd", lr=[0.05, 0.3, 0.9, 1.6], steps=200, loss_scale=2.0, tol=1e-10),
         dict(method="sgd", lr=[0.02, 0.2, 0.8, 2.5], steps=30, order="shuffle", batch_size=2,
              seed=4),
         dict(method="sgd", lr=[0.02, 0.2, 0.8, 2.5], steps=30, order="replacement", seed=1),
         dict(method="sgd", lr=[0.02, 0.2, 0.8, 2.5], steps=30, order="cyclic", batch_size=3)]
CHAIN_IDS = ["gd", "sgd-shuffle", "sgd-replacement", "sgd-cyclic"]
CHAIN_X = [0.5, 1.0, 1.5, -0.7, 2.0]
CHAIN_Y = [0.4, 1.1, 1.4, -0.9, 2.3]


def _inits(depth=3):
    u = np.linspace(-1.5, 2.0, 7)
    return np.stack([u, 0.8 * u[::-1], np.full(7, 0.9)][:depth], 1)


@pytest.mark.parametrize("case", CHAIN, ids=CHAIN_IDS)
def test_scalar_chain_runs_equal_chain_kernels(case):
    import fastgd.chain as ch
    from fastgd.chain.launch import Out
    from fastgd.chain.model import _stats
    from fastgd.linear import gpu, scalar

    kw = dict(case)
    method, lr, steps = kw.pop("method"), np.array(kw.pop("lr")), kw.pop("steps")
    inits = _inits()
    x, y = (CHAIN_X, CHAIN_Y) if method == "sgd" else (1.0, 1.2)
    ref = ch.chain_sweep(inits, lr, steps, x, y, method=method, progress=False, **kw)
    s = _stats("t", x, y, kw.get("loss_scale", 1.0))
    n, L = inits.shape[0] * lr.size, inits.shape[1]
    out = Out(n, L)
    scratch = [np.empty((L, n)) for _ in range(3)]
    pre = np.empty((L + 1, n))
    if method == "sgd":
        key = G.seed_key(kw.get("seed", 0))
        idx = gpu.order_table([s.X.size], key.reshape(1, 2), steps,
                              ST.ORDERS[kw["order"]])
    with np.errstate(all="ignore"):
        for cell in range(n):
            if method == "gd":
                scalar.chain_gd_run_cpu(cell, cell, s.sxx, s.pstar, s.estar, s.c0, s.c,
                                        inits, lr, steps, kw["tol"], 1e12, scratch[0],
                                        scratch[1], pre, scratch[2], *out.args())
            else:
                scalar.chain_sgd_run_cpu(cell, cell, s.X, s.Y, s.sxx, s.pstar, s.estar, s.c0,
                                         s.c, inits, lr, steps, kw.get("batch_size", 1), idx,
                                         1e-10, 1e12, scratch[0], scratch[1], pre, scratch[2],
                                         *out.args())
    shape = (inits.shape[0], lr.size)
    np.testing.assert_array_equal(out.status.reshape(shape), ref.status)
    np.testing.assert_array_equal(out.w.reshape(shape + (L,)), ref.w)
    np.testing.assert_array_equal(out.excess.reshape(shape), ref.excess)
    np.testing.assert_array_equal(out.tol_at.reshape(shape), ref.steps_to_tol)
    np.testing.assert_array_equal(out.div_at.reshape(shape), ref.diverged_at)
    assert len(np.unique(ref.status)) >= 2


CHAIN_SIM = textwrap.dedent("""
    import json, sys
    import numpy as np
    try:
        from numba import cuda
    except ImportError:
        print("NO-CUDA"); sys.exit(0)
    import fastgd.chain as ch
    cases, inits, X, Y = json.loads(sys.argv[1])
    inits = np.array(inits)
    for kw in cases:
        m, lr, steps = kw.pop("method"), kw.pop("lr"), kw.pop("steps")
        x, y = (X, Y) if m == "sgd" else (1.0, 1.2)
        a = ch.chain_sweep(inits, lr, steps, x, y, method=m, progress=False, **kw)
        b = ch.chain_sweep(inits, lr, steps, x, y, method=m, progress=False, backend="cuda",
                           **kw)
        assert (a.backend, b.backend) == ("cpu", "cuda")
        for f in ("status", "steps_to_tol", "diverged_at"):
            assert np.array_equal(getattr(a, f), getattr(b, f)), (m, f)
        for f in ("w", "excess", "max_loss_ratio"):
            x, z = getattr(a, f), getattr(b, f)
            assert np.array_equal(np.isfinite(x), np.isfinite(z)), (m, f)
            fin = np.isfinite(x)
            np.testing.assert_allclose(z[fin], x[fin], rtol=1e-12, atol=1e-300)
        same = all(np.array_equal(getattr(a, f), getattr(b, f), equal_nan=True)
                   for f in ("w", "excess", "max_loss_ratio"))
        print(m, "identical" if same else "close")
    print("OK")
""")


def test_simulated_device_code_never_grows_its_globals():
    """The simulator runs device functions as Python threads, each iterating the globals
    of the function it calls; a first overflow warning would add ``__warningregistry__``
    to them while another thread iterates ("dictionary changed size during iteration",
    seen once under taskset -c 0).  Every function compile_for builds, and every step
    function it calls, has its registry before any call, and a warning then leaves the
    dicts' keys as they were."""
    import warnings

    import numpy as np

    from fastgd.kernels import steps
    from fastgd.linear import scalar

    built = scalar.compile_for(lambda f: f)  # the Python functions the simulator runs
    dicts = {id(f.__globals__): f.__globals__ for f in built.values()}
    dicts.update({id(f.__globals__): f.__globals__ for f in steps.PY.values()})
    assert all("__warningregistry__" in g for g in dicts.values())
    keys = {k: set(g) for k, g in dicts.items()}
    w, pre, p = np.full((2, 1), 1e300), np.zeros((3, 1)), np.zeros((2, 1))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with np.errstate(over="warn"):
            built["_chain_products_run"](w, pre, p, 0, 2)  # 1e300 x 1e300 overflows
    assert any(issubclass(x.category, RuntimeWarning) for x in seen)
    assert {k: set(g) for k, g in dicts.items()} == keys


def test_chain_cuda_kernels_under_simulator_match_cpu():
    """Against the CPU kernels compiled without FMA contraction: the simulator runs the
    CUDA kernels as Python, whose arithmetic never fuses, and chain SGD at lr = 2.5
    amplifies a last-bit difference to ~2e-10 within 30 steps (measured), beyond the
    1e-12 of an agreement check."""
    import json

    p = _run(CHAIN_SIM, json.dumps([CHAIN, _inits().tolist(), CHAIN_X, CHAIN_Y]),
             contract=False)
    if "NO-CUDA" in p.stdout:
        pytest.skip("numba's CUDA target (numba-cuda) is not installed")
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.strip().endswith("OK")
    assert p.stdout.count(" identical") + p.stdout.count(" close") == len(CHAIN)
