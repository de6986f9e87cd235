"""Two-layer network throughput (issue 16): full-batch GD over learning-rate lanes sharing
one dataset (m = 64 hidden units, d = 8 inputs, P = 64 samples, 64 learning rates),
against plain NumPy vectorised across the runs (batched matmuls), timed in the same
session; throughput in G multiply-adds/s and as a share of the FMA ceiling.

A full-batch step costs m (2 d + 3) multiply-adds per sample and run (forward W x,
a . h; backward r a phi', the outer product into dW, a's gradient) plus m (d + 1) for the
update.

Each fastgd figure is reported as G multiply-adds/s, as a share of the 256-bit FMA
ceiling of the whole machine (all cores x 2 FMA units x 4 doubles x the measured clock:
Numba compiles 256-bit code by default; :mod:`._machine`) and as a ratio to the NumPy
reference, timed in the same session (once per activation, :func:`_numpy_rate`).  The
issue's target of 30x that reference is printed as a share of the same ceiling: above
100 % it cannot be reached on this machine whatever the kernel does.

Run:  python -m pytest bench/test_bench_net.py --benchmark-enable -s
In the default run (``--benchmark-disable``) each benchmark runs once on a small grid.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastgd as fg
import fastgd.net as fn
from fastgd.engine import grid as G

from ._machine import cores, fma_ceiling, record

M, D, P, N_LR, STEPS = 64, 8, 64, 64, 200
SMOKE = dict(n_lr=16, steps=5)
TARGET_SPEEDUP = 30  # the target against the NumPy reference
_NUMPY_RATE = {}  # activation -> the reference's G multiply-adds/s in this session


def _sizes(benchmark):
    if benchmark.disabled:
        return SMOKE["n_lr"], SMOKE["steps"]
    return N_LR, STEPS


def _data():
    r = np.random.default_rng(0)
    X = r.standard_normal((P, D))
    y = np.tanh(X[:, 0] - 0.5 * X[:, 1])
    return X, (y - y.mean()) / y.std()


def _fma(steps, n_lr, m=M, d=D, p=P, updates=1):
    """Multiply-adds of ``steps`` steps (GD) or epochs of ``updates`` updates (SGD)."""
    return float(steps) * n_lr * (p * m * (2 * d + 3) + updates * m * (d + 1))


def _lrs(n):
    return np.geomspace(1e-3, 0.05, n)  # every lane runs to the end: no lane stops early


def _ceiling256():
    """Multiply-adds/s at full 256-bit FMA throughput on every core."""
    return fma_ceiling(1.0, cores(), doubles=4)


def _report(name, rate, benchmark=None, extra=""):
    if rate is None:
        return
    if benchmark is not None and "fraction_of_ceiling" in benchmark.extra_info:
        info = benchmark.extra_info
        extra = (f"({info['fraction_of_256bit_ceiling']:.0%} of the 256-bit FMA ceiling of "
                 f"{cores()} cores, {_ceiling256() / 1e9:.0f} G/s at {info['clock_ghz']:.2f} "
                 f"GHz; {info['threads']} thread(s)) {extra}")
    print(f"\n[{name}] {rate / 1e9:.2f} G multiply-adds/s {extra}")


def _numpy_rate(act, steps=STEPS // 4, rounds=3):
    """The NumPy reference's multiply-adds/s on the benchmark grid (best of ``rounds``),
    measured once per activation and session."""
    if act not in _NUMPY_RATE:
        import time

        X, y = _data()
        lrs = _lrs(N_LR)
        best = float("inf")
        for _ in range(rounds):
            t = time.perf_counter()
            _numpy_gd(X, y, lrs, steps, act)
            best = min(best, time.perf_counter() - t)
        _NUMPY_RATE[act] = _fma(steps, N_LR) / best
    return _NUMPY_RATE[act]


def _numpy_gd(X, y, lrs, steps, act="relu"):
    """GD of every run at once: W (L, m, d), a (L, m), batched matmuls."""
    L = lrs.size
    t0 = fn.net_init(M, D, seed=0)
    W = np.broadcast_to(t0[: M * D].reshape(M, D), (L, M, D)).copy()
    a = np.broadcast_to(t0[M * D:], (L, M)).copy()
    s = 1 / np.sqrt(M)
    lr = lrs[:, None]
    Xt = X.T.copy()
    for _ in range(steps):
        Z = W @ Xt  # (L, m, P)
        H = np.maximum(Z, 0.0) if act == "relu" else np.tanh(Z)
        f = np.einsum("lmp,lm->lp", H, a)
        R = (s * f - y) * (s / P)  # (L, P)
        ga = np.einsum("lmp,lp->lm", H, R)
        Dl = (R[:, None, :] * a[:, :, None]) * ((Z > 0) if act == "relu" else 1 - H * H)
        gW = Dl @ X  # (L, m, d)
        W -= lr[:, :, None] * gW
        a -= lr * ga
    return W, a


@pytest.mark.parametrize("act, threads", [("relu", 1), ("relu", 2), ("tanh", 1), ("tanh", 2)])
def test_bench_net_gd(benchmark, act, threads):
    if threads > G.max_threads():
        pytest.skip("needs 2 threads")
    n_lr, steps = _sizes(benchmark)
    X, y = _data()
    kw = dict(width=M, activation=act, tol=0.0, sharpness=False, threads=threads,
              progress=False)
    res = fn.net_sweep(X, y, _lrs(n_lr), steps, **kw)  # warm-up: compile / cache load
    assert np.all(res.status == fg.Status.BOUNDED)
    benchmark.group = f"net: full-batch GD, m={M}, d={D}, P={P}, {N_LR} lr"
    out = benchmark.pedantic(fn.net_sweep, args=(X, y, _lrs(n_lr), steps), kwargs=kw,
                             rounds=3, iterations=1, warmup_rounds=0)
    assert np.array_equal(out.loss, res.loss)
    rate = record(benchmark, _fma(steps, n_lr), 1, threads, activation=act)
    extra = ""
    if rate:
        info = benchmark.extra_info
        info["fraction_of_256bit_ceiling"] = rate / _ceiling256()
        info["ceiling_256bit_multiply_adds_per_s"] = _ceiling256()
        ref = _numpy_rate(act)
        info["numpy_multiply_adds_per_s"] = ref
        info["speedup_vs_numpy"] = rate / ref
        extra = f"= {rate / ref:.1f}x NumPy ({ref / 1e9:.2f} G/s)"
    _report(f"fastgd net GD {act} threads={threads}", rate, benchmark, extra)


@pytest.mark.parametrize("act", ["relu", "tanh"])
def test_bench_net_numpy_reference(benchmark, act):
    n_lr, steps = _sizes(benchmark)
    ref_steps = max(1, steps // 4)
    X, y = _data()
    lrs = _lrs(n_lr)
    W, a = _numpy_gd(X, y, lrs, ref_steps, act)
    # the reference is the same computation: its parameters equal the kernel's
    res = fn.net_sweep(X, y, lrs, ref_steps, width=M, activation=act, tol=0.0,
                       sharpness=False, progress=False)
    assert np.all(res.status == fg.Status.BOUNDED)
    loss = 0.5 * np.mean((np.einsum("lmp,lm->lp", np.maximum(W @ X.T, 0) if act == "relu"
                                    else np.tanh(W @ X.T), a) / np.sqrt(M) - y) ** 2, axis=1)
    np.testing.assert_allclose(loss, res.loss[0, 0, 0], rtol=1e-9)
    benchmark.group = f"net: full-batch GD, m={M}, d={D}, P={P}, {N_LR} lr"
    benchmark.pedantic(_numpy_gd, args=(X, y, lrs, ref_steps, act), rounds=1, iterations=1)
    rate = record(benchmark, _fma(ref_steps, n_lr), 1, 1, activation=act)
    _report(f"numpy reference {act}", rate)
    if rate:
        # the target, against what the hardware allows
        target = TARGET_SPEEDUP * _numpy_rate(act)
        benchmark.extra_info["target_multiply_adds_per_s"] = target
        benchmark.extra_info["target_fraction_of_256bit_ceiling"] = target / _ceiling256()
        print(f"[{act}] {TARGET_SPEEDUP}x NumPy = {target / 1e9:.0f} G multiply-adds/s = "
              f"{target / _ceiling256():.0%} of the 256-bit FMA ceiling of {cores()} cores")
    if rate:
        import time

        kw = dict(width=M, activation=act, tol=0.0, sharpness=False, threads=1,
                  progress=False)
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            fn.net_sweep(X, y, lrs, steps, **kw)
            best = min(best, time.perf_counter() - t)
        ratio = (_fma(steps, n_lr) / best) / rate
        benchmark.extra_info["speedup_1_thread"] = ratio
        print(f"[{act}] fastgd (1 thread) / NumPy vectorised across runs: {ratio:.1f}x")


SHAPES = [(16, 8), (64, 2), (64, 32), (256, 8), (1024, 8)]  # (m, d), P = 64


@pytest.mark.parametrize("m, d", SHAPES)
def test_bench_net_shapes(benchmark, m, d):
    """Full-batch GD, relu, 64 rates on 2 threads (or 1) across widths and input sizes:
    the same kernel, its share of the ceiling where the block is short (d = 2) or the
    network wide (m = 1024: chunks of 8 lanes)."""
    threads = min(2, G.max_threads())
    r = np.random.default_rng(1)
    X = r.standard_normal((P, d))
    y = np.tanh(X[:, 0])
    y = (y - y.mean()) / y.std()
    n_lr = N_LR if not benchmark.disabled else 8
    steps = max(2, int(2e9 / _fma(1, n_lr, m, d))) if not benchmark.disabled else 2
    kw = dict(width=m, activation="relu", tol=0.0, sharpness=False, threads=threads,
              progress=False)
    lrs = np.geomspace(1e-4, 1e-2, n_lr)
    res = fn.net_sweep(X, y, lrs, steps, **kw)
    assert np.all(res.status == fg.Status.BOUNDED)
    benchmark.group = f"net: full-batch GD across shapes, relu, P={P}, {N_LR} lr"
    benchmark.pedantic(fn.net_sweep, args=(X, y, lrs, steps), kwargs=kw, rounds=3,
                       iterations=1, warmup_rounds=0)
    rate = record(benchmark, _fma(steps, n_lr, m, d), 1, threads, m=m, d=d)
    if rate:
        benchmark.extra_info["fraction_of_256bit_ceiling"] = rate / _ceiling256()
    _report(f"fastgd net GD relu m={m} d={d} threads={threads} ({steps} steps)", rate,
            benchmark)


@pytest.mark.parametrize("act", ["relu", "tanh"])
@pytest.mark.parametrize("batch", [1, 8])
def test_bench_net_sgd(benchmark, act, batch):
    """Per-sample (batch 1) and minibatch SGD at the GD benchmark's shape, 2 threads: an
    update of every parameter per batch (memory passes the full batch makes once)."""
    threads = min(2, G.max_threads())
    X, y = _data()
    n_lr = N_LR if not benchmark.disabled else 8
    epochs = 60 if not benchmark.disabled else 1
    kw = dict(width=M, activation=act, tol=0.0, sharpness=False, threads=threads,
              progress=False, method="sgd", batch_size=batch)
    lrs = _lrs(n_lr) / 4
    res = fn.net_sweep(X, y, lrs, epochs, **kw)
    assert np.all(res.status == fg.Status.BOUNDED)
    benchmark.group = f"net: SGD, m={M}, d={D}, P={P}, {N_LR} lr"
    benchmark.pedantic(fn.net_sweep, args=(X, y, lrs, epochs), kwargs=kw, rounds=3,
                       iterations=1, warmup_rounds=0)
    rate = record(benchmark, _fma(epochs, n_lr, updates=P // batch), 1, threads,
                  activation=act, batch=batch)
    if rate:
        benchmark.extra_info["fraction_of_256bit_ceiling"] = rate / _ceiling256()
    _report(f"fastgd net SGD {act} batch={batch} threads={threads}", rate, benchmark)


@pytest.mark.parametrize("m", [64, 512])
@pytest.mark.parametrize("act", ["relu", "tanh"])
def test_bench_net_curvature_share(benchmark, m, act):
    """The default curvature (the sharpness at the start and the end of every cell, Lanczos
    over lanes on every thread, warm-started: :mod:`fastgd.net.lanczos`) as a share of the
    training it describes: the same sweep with ``sharpness=True`` and ``False``, timed
    alternately in this process (min of 5), 64 rates, 200 steps (issue 22 item 4: a
    fraction of the training)."""
    import time

    threads = min(2, G.max_threads())
    X, y = _data()
    n_lr, steps = (N_LR, STEPS) if not benchmark.disabled else (8, 5)
    kw = dict(width=m if not benchmark.disabled else 16, activation=act, tol=0.0,
              threads=threads, progress=False)
    lrs = _lrs(n_lr)
    fn.net_sweep(X, y, lrs, steps, **kw)  # warm-up: compile / cache load
    best = {False: np.inf, True: np.inf}
    for _ in range(5 if not benchmark.disabled else 1):
        for sharp in (False, True):
            t = time.perf_counter()
            res = fn.net_sweep(X, y, lrs, steps, sharpness=sharp, **kw)
            best[sharp] = min(best[sharp], time.perf_counter() - t)
    assert np.all(np.isfinite(res.sharpness))
    benchmark.group = f"net: curvature share, P={P}, d={D}, {N_LR} lr, {STEPS} steps"
    benchmark.pedantic(fn.net_sweep, args=(X, y, lrs, steps), kwargs=kw, rounds=1,
                       iterations=1, warmup_rounds=0)
    share = (best[True] - best[False]) / best[False]
    benchmark.extra_info.update(train_s=best[False], with_curvature_s=best[True],
                                curvature_over_training=share, threads=threads)
    if not benchmark.disabled:
        print(f"\n[net curvature m={m} {act}] training {best[False]:.3f} s, with curvature "
              f"{best[True]:.3f} s: curvature = {share:.2f} x the training "
              f"({threads} thread(s))")
