"""Same seed => bit-identical results for any thread count and chunking; one compiled
signature per kernel whatever the caller passes."""

from __future__ import annotations

import numpy as np
import pytest

import fastgd as fg
import naive
from fastgd import status as ST
from fastgd.engine import grid as G
from fastgd.kernels import jit as _jit
from fastgd.linear import problem as PB
from fastgd.linear import table
from fastgd.linear.contract import LinearInputs

THREADS = sorted({1, min(2, G.max_threads())})


def run_fields(r):
    return (r.w, r.losses, r.trajectory, r.status, r.diverged_at, r.steps_to_tol, r.loss)


def assert_identical(a, b):
    for x, y in zip(run_fields(a), run_fields(b), strict=True):
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and np.array_equal(x, y)
        else:
            assert x == y


@pytest.mark.parametrize("order", ["cyclic", "shuffle", "replacement"])
def test_sgd_same_seed_identical_across_threads(lecture, order):
    X, y = lecture
    runs = []
    for n in THREADS:
        with G.using_threads("test", n):
            runs.append(fg.sgd(X, y, 0.2, 20, order=order, seed=3, record=True, batch_size=3,
                               momentum=0.3))
        runs.append(fg.sgd(X, y, 0.2, 20, order=order, seed=3, record=True, batch_size=3,
                           momentum=0.3))
    for r in runs[1:]:
        assert_identical(runs[0], r)


def test_gd_identical_across_threads(lecture):
    X, y = lecture
    runs = []
    for n in THREADS:
        with G.using_threads("test", n):
            runs.append(fg.gd(X, y, 2.3, 300, momentum=0.1, record=True))
    assert_identical(runs[0], runs[-1])


# ------------------------------------------------- grid kernels: many chunks, threads


def _arrays(prob, lrs, beta):
    return {"X": prob.X[None], "y": prob.y[None], "P": np.array([prob.P]), "R": prob.R[None],
            "wstar": prob.wstar[None], "estar": np.array([prob.estar]),
            "c0": np.array([prob.c0]), "lr": np.asarray(lrs, dtype=np.float64),
            "beta": np.full(len(lrs), beta), "w0": np.zeros(prob.d)}


def grid_sgd(X, y, lrs, seeds, lanes, nworkers, epochs=5, order=ST.ORDERS["shuffle"]):
    prob = PB.prepare("test", X, y)
    n_lr, n_seed = len(lrs), len(seeds)
    out = G.Outputs(1, n_seed, n_lr, prob.d, n_rec=epochs + 1, rec_w=True)
    chunks = G.make_chunks(1, n_seed, n_lr, lanes)
    arrays = _arrays(prob, lrs, 0.0)
    arrays["keys"] = np.ascontiguousarray(np.stack([G.seed_key(s) for s in seeds]))
    spec = table.KernelSpec("sgd", prob.d, epochs, 0.0, 1e12, batch=2, order=order)
    with np.errstate(all="ignore"):
        table.launch(spec, LinearInputs(**arrays), chunks, nworkers, out)
    return out


def grid_gd(X, y, lrs, lanes, nworkers, steps=200):
    prob = PB.prepare("test", X, y)
    n_lr = len(lrs)
    out = G.Outputs(1, 1, n_lr, prob.d, n_rec=steps + 1, rec_w=True)
    chunks = G.make_chunks(1, 1, n_lr, lanes)
    spec = table.KernelSpec("gd", prob.d, steps, 1e-10, 1e12, momentum=True)
    with np.errstate(all="ignore"):
        table.launch(spec, LinearInputs(**_arrays(prob, lrs, 0.2)), chunks, nworkers, out)
    return out


def assert_outputs_identical(a, b):
    for x, y in zip(a.kernel_args(), b.kernel_args(), strict=True):
        assert np.array_equal(x, y)


def test_grid_sgd_invariant_to_threads_and_chunking(lecture):
    """Lanes of a chunk share the sample order; the order is keyed by seed, not by chunk."""
    X, y = lecture
    lrs = np.linspace(0.05, 3.0, 11)  # some diverge: chunks finish at different times
    ref = grid_sgd(X, y, lrs, [0, 7], lanes=1, nworkers=1)
    assert set(np.unique(ref.status)) >= {fg.Status.BOUNDED, fg.Status.DIVERGED}
    for lanes in (1, 4, 11):
        for n in THREADS:
            with G.using_threads("test", n):
                assert_outputs_identical(ref, grid_sgd(X, y, lrs, [0, 7], lanes, nworkers=n))
    # each cell equals the matching single run
    r = fg.sgd(X, y, lrs[3], 5, order="shuffle", seed=7, batch_size=2, tol=0.0, record=True)
    np.testing.assert_array_equal(r.w, ref.w[0, 1, 3])
    np.testing.assert_array_equal(r.trajectory, ref.rec_w[0, 1, 3])


def test_grid_gd_invariant_to_threads_and_chunking(lecture):
    X, y = lecture
    lrs = np.linspace(0.1, 3.0, 9)
    ref = grid_gd(X, y, lrs, lanes=1, nworkers=1)
    assert set(np.unique(ref.status)) == {fg.Status.CONVERGED, fg.Status.DIVERGED}
    for lanes in (2, 9):
        for n in THREADS:
            with G.using_threads("test", n):
                assert_outputs_identical(ref, grid_gd(X, y, lrs, lanes, nworkers=n))


# ------------------------------------------------------------- one signature per kernel


def test_one_signature_per_kernel(lecture):
    """Lists, ints, float32 and strided views are converted once, in Python."""
    X, y = lecture
    Xf32, yf32 = X.astype(np.float32), y.astype(np.float32)
    Xbig = np.zeros((200, 4))
    Xbig[::2, ::2] = X
    Xs, ys = Xbig[::2, ::2], np.repeat(y, 2)[::2]  # strided views
    assert not Xs.flags.c_contiguous and not ys.flags.c_contiguous
    Xi = np.round(X * 10).astype(np.int64)
    calls = [
        (X.tolist(), y.tolist()), (Xf32, yf32), (Xs, ys), (Xi, y.astype(np.int32)),
        (np.asfortranarray(X), y),
    ]
    for Xc, yc in calls:
        fg.gd(Xc, yc, 1, 5, w0=[0, 0])
        fg.gd(Xc, yc, np.float32(1.5), np.int32(5), w0=np.zeros(2, np.float32),
              momentum=0, nesterov=np.bool_(True), tol=0, blowup=10**6, record=True)
        fg.gd(Xc, yc, 1.0, 5, bias=True, w0=(0, 0, 1))
        fg.sgd(Xc, yc, 1, 2, w0=[1, 2], batch_size=np.int64(3), seed=np.uint8(2))
        fg.sgd(Xc, yc, np.float32(0.1), np.int16(2), order="replacement", momentum=0.5,
               nesterov=True, bias=True, record=True, tol=0, blowup=1e3)
        # sweeps without recording, d = 2, plain steps: the lean kernels
        fg.sweep("gd", lr=[1, np.float32(0.5)], data=[(Xc, yc)], steps=np.int16(5),
                 progress=False)
        fg.sweep("sgd", lr=[0.1], data=[(Xc, yc)], epochs=2, w0=(1, 2), progress=False)
    fg.gd(X[:, :1].ravel(), y, 0.5, 3)  # d = 1 from a 1-D vector
    fg.sgd(X[:, 0], y, 0.5, 2, order="shuffle")
    if naive.JITLESS:
        pytest.skip("NUMBA_DISABLE_JIT=1: kernels are plain Python (no signatures)")
    built = list(table._BUILT.values())
    assert len(built) >= 4
    for kernel in built:  # float64 and float32 inputs: at most one signature each
        dtypes = [str(sig[0].dtype) for sig in kernel.signatures]
        assert len(dtypes) == len(set(dtypes)), kernel.signatures


@pytest.mark.parametrize("value, contract, suffix", [("0", False, "_nofma"),
                                                      ("1", True, "_fma")])
def test_contraction_mode_names_the_cache_entry(value, contract, suffix):
    """FASTGD_CONTRACT is read at import and is part of every kernel's cache name (Numba
    does not key its disk cache by fastmath flags): the two modes never share code; so
    is the hand-written code's vector width (FASTGD_VECTOR_BITS: 256 untagged, 512
    ``_v512``, where the host has AVX-512F)."""
    import os
    import subprocess
    import sys

    if naive.JITLESS:
        pytest.skip("NUMBA_DISABLE_JIT=1: kernels are plain Python (no cache)")
    code = ("from fastgd.kernels import jit as _jit\n"
            "from fastgd.linear import table as T\n"
            "from fastgd.chain import kernels as K\n"
            "print(_jit.contract(), _jit.options().get('fastmath'))\n"
            "k = T.select(T.KernelSpec('sgd', 2, 1, 0.0, 1.0))\n"
            "print(k.py_func.__qualname__, K.rows_gd_chain.py_func.__qualname__)\n"
            "print(_jit.VECTOR_BYTES)")
    for bits in ("256", "512"):  # the vector width names the entry too (FASTGD_VECTOR_BITS)
        env = dict(os.environ, FASTGD_CONTRACT=value, FASTGD_VECTOR_BITS=bits)
        out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                             capture_output=True, text=True).stdout.split("\n")
        assert out[0] == ("True {'contract'}" if contract else "False None")
        names = out[1].split()
        tag = suffix + ("_v512" if out[2] == "64" else "")
        assert out[2] == "32" or bits == "512"
        assert names[0].startswith("sgd_kernel.<locals>.sgd_rows_D2_")  # the variant's name
        assert names[0].endswith(tag)
        assert names[1] == f"rows_gd_chain_{_jit.SOURCE_DIGEST}{tag}"


def test_kernel_cache_key_follows_every_module_with_compiled_code(tmp_path):
    """Numba keys a cached kernel on its own file only; fastgd's kernels also carry
    SOURCE_DIGEST in their names, a hash of every module with compiled code: a change to
    a helper (fmath's tanh, which the vector code of other modules inlines) changes it,
    a change to a module without compiled code does not."""
    import shutil
    from pathlib import Path

    src = Path(_jit.__file__).resolve().parents[1]
    pkg = tmp_path / "fastgd"
    shutil.copytree(src, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    assert _jit._source_digest(pkg) == _jit.SOURCE_DIGEST
    helper = pkg / "kernels" / "fmath.py"
    text = helper.read_text()
    helper.write_text(text.replace("XMAX = 19.1", "XMAX = 19.2"))
    assert _jit._source_digest(pkg) != _jit.SOURCE_DIGEST
    helper.write_text(text)
    plot = pkg / "linear" / "plot.py"
    plot.write_text(plot.read_text() + "\n# a comment\n")
    assert _jit._source_digest(pkg) == _jit.SOURCE_DIGEST
    from fastgd.net import kernels as K

    assert _jit.SOURCE_DIGEST in getattr(K.loss_grad_tanh, "py_func",
                                         K.loss_grad_tanh).__qualname__
