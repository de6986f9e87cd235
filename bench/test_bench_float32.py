"""float32 vs float64 sweep throughput (issue 7): per-sample SGD, cyclic order, over 64
condition numbers x 256 learning rates (P = 100, d = 2, 100 epochs), through the sweep's
execution path (the kernel spec that ``sweep()`` builds, run by the local engine);
the spectrum and SGD-limit analysis that ``sweep()`` adds is not timed here.

Run:      pytest bench/test_bench_float32.py --benchmark-enable -s
In the default run (``--benchmark-disable``) each benchmark runs once on a small grid.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastgd as fg
from fastgd import status as ST
from fastgd.engine import grid as G
from fastgd.linear import executors as E
from fastgd.linear import problem as PB
from fastgd.linear.contract import LinearJob, linear_inputs
from fastgd.linear.table import KernelSpec

from ._machine import record

N_KAPPA, N_LR, EPOCHS, P = 64, 256, 100, 100
SMOKE = dict(n_kappa=4, n_lr=32, epochs=3)
RESULTS = {}


def _problem(benchmark, dtype):
    nk, nl, ep = ((SMOKE["n_kappa"], SMOKE["n_lr"], SMOKE["epochs"]) if benchmark.disabled
                  else (N_KAPPA, N_LR, EPOCHS))
    probs = []
    for k in np.geomspace(1, 1e4, nk):
        ds = fg.gaussian_data(P, np.geomspace(1.0 / k, 1.0, 2), seed=0)
        probs.append(PB.prepare("bench", ds.X, ds.y))
    lrs = np.geomspace(0.01, 4.0, nl)
    inputs = linear_inputs(probs, lrs, 0.0, np.zeros(2), seeds=[0], dtype=dtype)
    spec = LinearJob(KernelSpec("sgd", 2, ep, 1e-8, 1e12, order=ST.ORDERS["cyclic"],
                                dtype=dtype), inputs, lanes=64)
    return spec, G.make_chunks(nk, 1, nl, 64), (nk, nl, ep)


def _run(spec, chunks, shape, threads):
    nk, nl, _ = shape
    out = G.Outputs(nk, 1, nl, 2)
    with G.using_threads("bench", threads), np.errstate(all="ignore"):
        E.run_local(spec, chunks, out, threads, progress=False, desc="")
    return out


def _updates(out, epochs):
    stop = np.where(out.status == fg.Status.DIVERGED, out.div_at,
                    np.where(out.status == fg.Status.CONVERGED, out.tol_at, epochs))
    return int(stop.sum()) * P


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("threads", [1, 2])
def test_bench_sgd_float32_vs_float64(benchmark, dtype, threads):
    if threads > G.max_threads():
        pytest.skip("needs 2 threads")
    spec, chunks, shape = _problem(benchmark, dtype)
    warm = _run(spec, chunks, shape, threads)  # compile / cache load
    benchmark.group = f"sweep dtype: per-sample SGD, 64 kappa x 256 lr, P=100, d=2, " \
                      f"threads={threads}"
    out = benchmark.pedantic(_run, args=(spec, chunks, shape, threads), rounds=3,
                             iterations=1, warmup_rounds=0)
    np.testing.assert_array_equal(out.status, warm.status)
    rate = record(benchmark, _updates(out, shape[2]), 5, threads, dtype=dtype)
    if rate is not None:
        RESULTS[(dtype, threads)] = rate
        other = RESULTS.get(("float64", threads))
        if dtype == "float32" and other:
            benchmark.extra_info["float32_over_float64"] = rate / other
        print(f"\n[sgd {dtype} threads={threads}] {rate / 1e9:.2f} G updates/s"
              + (f" ({rate / other:.2f}x float64)" if dtype == "float32" and other else ""))
