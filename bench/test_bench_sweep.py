"""Sweep throughput (issue 3): per-sample SGD and batch GD over 64 condition numbers x
256 learning rates (P = 100, d = 2), a NumPy reference vectorised across runs timed in
the same session, compile latency in fresh processes, and thread scaling.

Run:      pytest bench --benchmark-enable --benchmark-autosave
Compare:  pytest bench --benchmark-enable --benchmark-compare --benchmark-compare-fail=min:15%
In the default test run (``--benchmark-disable``) each benchmark runs once on a small
grid, as a smoke test.  Throughput is printed with ``-s`` and stored in extra_info.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

import fastgd as fg
from fastgd import Status
from fastgd.engine import grid as G
from fastgd.linear.contract import LinearInputs

from ._machine import fma_control_scaling, record

N_KAPPA, N_LR, EPOCHS, STEPS = 64, 256, 100, 1000
GD_OPS = 2  # multiplies per plain GD step at d = 2 in the eigenbasis (bench/_machine.py)
SMOKE = dict(n_kappa=4, n_lr=32, epochs=3, steps=20)


def _sizes(benchmark):
    if benchmark.disabled:
        return SMOKE["n_kappa"], SMOKE["n_lr"], SMOKE["epochs"], SMOKE["steps"]
    return N_KAPPA, N_LR, EPOCHS, STEPS


def _grid(nk, nl):
    return np.geomspace(1, 1e4, nk), np.geomspace(0.01, 4.0, nl)


def _sgd_updates(res, epochs, P=100):
    """Per-sample updates actually performed (finished lanes stop)."""
    stop = np.where(res.diverged, res.diverged_at,
                    np.where(res.converged, res.steps_to_tol, epochs))
    return int(stop.sum()) * P


def _gd_steps(res, steps):
    stop = np.where(res.diverged, res.diverged_at,
                    np.where(res.converged, res.steps_to_tol, steps))
    return int(stop.sum())


def _report(name, rate, extra="", benchmark=None):
    """Print a throughput; with ``benchmark``: also its share of the FMA ceiling at the
    clock measured in this run."""
    if rate is not None:
        if benchmark is not None:
            info = benchmark.extra_info
            extra = (f"({info['fraction_of_ceiling']:.0%} of the FMA ceiling at "
                     f"{info['clock_ghz']:.2f} GHz) {extra}")
        print(f"\n[{name}] {rate / 1e9:.2f} G updates/s {extra}")


@pytest.mark.parametrize("threads", [1, 2])
def test_bench_sgd_sweep(benchmark, threads):
    """(a) + (e): per-sample SGD, cyclic order, float64, end to end through sweep()."""
    if threads > G.max_threads():
        pytest.skip("needs 2 threads")
    nk, nl, ep, _ = _sizes(benchmark)
    kappa, lrs = _grid(nk, nl)
    kw = dict(lr=lrs, condition=kappa, epochs=ep, order="cyclic", threads=threads,
              progress=False)
    res = fg.sweep("sgd", **kw)  # warm-up: compile / cache load
    benchmark.group = "sweep: per-sample SGD, 64 kappa x 256 lr, P=100, d=2"
    out = benchmark.pedantic(fg.sweep, args=("sgd",), kwargs=kw, rounds=3, iterations=1,
                             warmup_rounds=0)
    assert out.equals(res)
    rate = record(benchmark, _sgd_updates(out, ep), 5, threads)
    _report(f"sgd threads={threads}", rate, benchmark=benchmark)


def test_bench_sgd_numpy_reference(benchmark):
    """(c) the same SGD sweep in plain NumPy vectorised across runs (one pass per sample)."""
    nk, nl, ep, _ = _sizes(benchmark)
    ep_ref = max(1, ep // 10)  # NumPy is slow: time 1/10 of the epochs, same per-update cost
    kappa, lrs = _grid(nk, nl)
    data = [fg.gaussian_data(100, [1 / k, 1.0]) for k in kappa]
    X = np.stack([d.X for d in data])  # (nk, P, 2)
    y = np.stack([d.y for d in data])
    LR = np.broadcast_to(lrs, (nk, nl))[..., None]

    x0, x1 = X[:, :, 0].copy(), X[:, :, 1].copy()

    def numpy_sweep():
        # the same arithmetic as the fused kernel, one whole-array operation per term
        W0 = np.zeros((nk, nl))
        W1 = np.zeros((nk, nl))
        lr2 = LR[..., 0]
        with np.errstate(all="ignore"):
            for _ in range(ep_ref):
                for p in range(100):
                    a = x0[:, p, None]
                    b = x1[:, p, None]
                    c = lr2 * ((W0 * a + W1 * b) - y[:, p, None])
                    W0 -= c * a
                    W1 -= c * b
        return W0, W1

    benchmark.group = "sweep: per-sample SGD, 64 kappa x 256 lr, P=100, d=2"
    benchmark.pedantic(numpy_sweep, rounds=1, iterations=1)
    rate = record(benchmark, nk * nl * ep_ref * 100, 5, 1)
    _report("numpy reference", rate)
    if rate and G.max_threads() >= 2:
        # the ratio from runs of the two alternating (the VM's speed drifts between tests)
        kw = dict(lr=lrs, condition=kappa, epochs=ep, order="cyclic", threads=2,
                  progress=False)
        best_np = best_fg = float("inf")
        res = None
        for _ in range(3):
            t = time.perf_counter()
            numpy_sweep()
            best_np = min(best_np, time.perf_counter() - t)
            t = time.perf_counter()
            res = fg.sweep("sgd", **kw)
            best_fg = min(best_fg, time.perf_counter() - t)
        ratio = (_sgd_updates(res, ep) / best_fg) / (nk * nl * ep_ref * 100 / best_np)
        benchmark.extra_info["fastgd_over_numpy"] = ratio
        print(f"fastgd (2 threads) / NumPy = {ratio:.0f}x (alternating runs)")


@pytest.mark.parametrize("threads", [1, 2])
def test_bench_gd_sweep(benchmark, threads):
    """(b) + (e): batch GD, 1000 steps, tol=1e-8 (finished lanes freeze)."""
    if threads > G.max_threads():
        pytest.skip("needs 2 threads")
    nk, nl, _, st = _sizes(benchmark)
    kappa, lrs = _grid(nk, nl)
    kw = dict(lr=lrs, condition=kappa, steps=st, threads=threads, progress=False)
    res = fg.sweep("gd", **kw)
    benchmark.group = "sweep: batch GD, 64 kappa x 256 lr, d=2, 1000 steps"
    out = benchmark.pedantic(fg.sweep, args=("gd",), kwargs=kw, rounds=5, iterations=1)
    assert out.equals(res)
    assert (out.status != Status.NOT_RUN).all()
    rate = record(benchmark, _gd_steps(out, st), GD_OPS, threads)
    _report(f"gd threads={threads} (steps actually run)", rate, benchmark=benchmark)


@pytest.mark.parametrize("n_lr", [4096, 1 << 20])
def test_bench_sgd_scaling_in_cells(benchmark, n_lr):
    """Throughput flat from 4 K to 1 M cells (one dataset, 10 epochs)."""
    if benchmark.disabled:
        n_lr = 256
    kw = dict(lr=np.geomspace(1e-3, 0.5, n_lr), condition=[10.0], epochs=10 if not
              benchmark.disabled else 2, order="cyclic", progress=False)
    fg.sweep("sgd", lr=kw["lr"][:64], condition=[10.0], epochs=1)
    benchmark.group = "sweep: cells scaling"
    out = benchmark.pedantic(fg.sweep, args=("sgd",), kwargs=kw, rounds=1, iterations=1)
    rate = record(benchmark, _sgd_updates(out, kw["epochs"]), 5)
    _report(f"sgd cells={n_lr}", rate)


_FIRST = {"sgd": "fg.sweep('sgd', lr=[0.1, 0.2], condition=[1, 10], epochs=2); ",
          "gd": "fg.sweep('gd', lr=[0.1, 0.2], condition=[1, 10], steps=2); "}


def _first_sweep_seconds(cache_dir, methods):
    code = ("import time; t=time.perf_counter(); import fastgd as fg; "
            + "".join(_FIRST[m] for m in methods) + "print(time.perf_counter()-t)")
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir))
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                         capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("methods", ["gd", "sgd", "sgd+gd"])
def test_bench_compile_latency(benchmark, tmp_path, methods):
    """(d) a first sweep in a fresh process, import included: empty cache (cold) and
    then warm cache.  One GD sweep, one SGD sweep, and both in one process (each
    method has its own kernel; the second compiles faster, Numba's set-up is paid)."""
    if benchmark.disabled:
        pytest.skip("compile latency is measured only with --benchmark-enable")
    benchmark.group = "compile latency"
    t0 = time.perf_counter()
    ms = methods.split("+")
    cold = _first_sweep_seconds(tmp_path / "cache", ms)
    warm = benchmark.pedantic(_first_sweep_seconds, args=(tmp_path / "cache", ms),
                              rounds=3, iterations=1)
    benchmark.extra_info["cold_s"] = cold
    benchmark.extra_info["warm_s"] = warm
    print(f"\n[compile {methods}] cold {cold:.2f} s, warm {warm:.2f} s "
          f"(wall incl. interpreter {time.perf_counter() - t0:.1f} s)")


def test_bench_gd_kernel_alone(benchmark):
    """The GD chunk kernel by itself: 64 lanes of one d = 2 dataset that neither converge
    nor diverge (eta = 2/lambda: a marginal oscillation), 1 thread: the kernel's
    throughput without Python overhead or frozen lanes."""
    import fastgd.engine.grid as G
    import fastgd.linear.problem as PB
    from fastgd.linear import table

    steps = 200 if benchmark.disabled else 200_000
    p = PB.prepare("bench", *fg.gaussian_data(100, [0.5, 1.0], seed=0))
    arrays = {"R": p.R[None], "wstar": p.wstar[None], "estar": np.array([p.estar]),
              "c0": np.array([p.c0]), "lr": np.full(64, 2.0), "beta": np.zeros(64),
              "w0": np.ones(2) * 3.0}
    spec = table.KernelSpec("gd", 2, steps, 0.0, 1e12)
    chunks = G.make_chunks(1, 1, 64, 64)

    def run():
        out = G.Outputs(1, 1, 64, 2)
        table.launch(spec, LinearInputs(**arrays), chunks, 1, out)
        return out

    run()
    benchmark.group = "GD kernel alone, 64 lanes, d=2"
    out = benchmark.pedantic(run, rounds=5, iterations=1)
    assert (out.status == Status.BOUNDED).all()
    rate = record(benchmark, 64 * steps, GD_OPS, 1)
    _report("gd kernel alone, 64 lanes, 1 thread", rate, benchmark=benchmark)


def test_bench_sgd_kernel_alone(benchmark):
    """The SGD chunk kernel by itself: 256 lanes of per-sample SGD (cyclic, d = 2,
    P = 100) on one dataset, 1 thread, no lane finishing: the lane loop's throughput
    without Python overhead, frozen lanes or thread effects."""
    import fastgd.engine.grid as G
    import fastgd.linear.problem as PB
    from fastgd.linear import table

    nl = 256
    epochs = 2 if benchmark.disabled else 2000
    D = fg.gaussian_data(100, [0.5, 1.0], seed=0)
    p = PB.prepare("bench", D.X, D.y)
    arrays = {"X": p.X[None], "y": p.y[None], "P": np.array([p.P]), "R": p.R[None],
              "wstar": p.wstar[None], "estar": np.array([p.estar]), "c0": np.array([p.c0]),
              "lr": np.geomspace(1e-3, 0.1, nl), "beta": np.zeros(nl), "w0": np.zeros(2),
              "keys": np.zeros((1, 2), np.int64)}
    spec = table.KernelSpec("sgd", 2, epochs, 0.0, np.inf)
    chunks = G.make_chunks(1, 1, nl, nl)

    def run():
        out = G.Outputs(1, 1, nl, 2)
        table.launch(spec, LinearInputs(**arrays), chunks, 1, out)
        return out

    run()
    benchmark.group = "SGD kernel alone, 256 lanes, d=2"
    out = benchmark.pedantic(run, rounds=5, iterations=1)
    assert (out.status == Status.BOUNDED).all()
    rate = record(benchmark, nl * 100 * epochs, 5, 1)
    _report("sgd kernel alone, 256 lanes, 1 thread", rate, "(one core)", benchmark=benchmark)


def test_bench_thread_scaling_control(benchmark):
    """(e) thread scaling of the SGD and GD sweeps (1 and 2 threads alternating), and a
    control: a trivially parallel, FMA-bound loop (64 independent multiply-adds per
    iteration) on 1 and then 2 threads, run the way fastgd runs chunks (nogil Numba
    calls on Python threads).  The control's 1 -> 2 scaling is what this machine allows
    for FMA-bound work at that moment: on the development VM it varied from 1.2x to 2.0x
    between runs (the two vCPUs share FMA units with other tenants at times), so
    fastgd's own scaling should be read against it."""


    if benchmark.disabled:
        pytest.skip("thread-scaling control is measured only with --benchmark-enable")

    def scaling():
        return fma_control_scaling(3_000_000, 3)

    benchmark.group = "thread scaling control"
    control = benchmark.pedantic(scaling, rounds=1, iterations=1)
    benchmark.extra_info["fma_loop_scaling_1_to_2"] = control
    print(f"\n[control] FMA-bound loop, 1 -> 2 threads: {control:.2f}x")
    # fastgd's own scaling, measured here with 1 and 2 threads alternating (the VM's
    # speed drifts between the separate sweep benchmarks above, which skewed the ratio
    # of their figures by up to 1.4x)
    kappa, lrs = _grid(N_KAPPA, N_LR)
    for name, kw in (("sgd", dict(epochs=EPOCHS, order="cyclic")), ("gd", dict(steps=STEPS))):
        best = {1: float("inf"), 2: float("inf")}
        for _ in range(6):
            for threads in (1, 2):
                t = time.perf_counter()
                fg.sweep(name, lr=lrs, condition=kappa, threads=threads, progress=False, **kw)
                best[threads] = min(best[threads], time.perf_counter() - t)
        benchmark.extra_info[f"{name}_scaling_1_to_2"] = best[1] / best[2]
        print(f"[{name}] 1 -> 2 threads (alternating runs): {best[1] / best[2]:.2f}x "
              f"(control {control:.2f}x)")
