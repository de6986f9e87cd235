"""The kernel table (issue 14, item 6): per-sample SGD through ``fg.sweep()`` for
d = 2, 4, 10, 30, 100 against the FMA ceiling, a NumPy reference vectorised across runs,
and the same sweep built for 512-bit vectors (a subprocess with ``FASTGD_AVX512=1``);
plus thread scaling at d = 10 against an FMA-bound control, and first-sweep latency in
fresh processes (empty / warm kernel cache).

Shared by ``bench/test_bench_kernels.py`` (pytest-benchmark) and ``bench/table.py``
(prints the README table).  Public API only (``fg.sweep``): the kernels behind it change.

Workload of every row: 32 datasets x 256 learning rates, P = 100 samples, cyclic
per-sample SGD, float64, 2 threads, tol = 0 (no lane converges), absolute rates well inside
the stable range (no lane diverges; both are checked from the result's steps).  Inputs X are
Gaussian (P x d), targets a linear teacher plus noise, fixed seeds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

import fastgd as fg  # before numba (FASTGD_AVX512=1 in the 512-bit subprocess)

from . import _machine as M

ROOT = Path(__file__).resolve().parents[1]
DIMS = (2, 4, 10, 30, 100)
P = 100
ROUNDS = 3  # min of 3, fastgd and NumPy alternating
AVX512_CACHE = Path(os.environ.get("FASTGD_BENCH_AVX512_CACHE",
                                   Path.home() / ".cache" / "fastgd-bench-avx512"))


@dataclass(frozen=True)
class Size:
    n_data: int = 32
    n_lr: int = 256
    epoch_budget: int = 2000  # epochs = epoch_budget / d: about 0.3-1 s per sweep
    numpy_fraction: int = 10  # NumPy runs 1/10 of the epochs (same cost per update)

    def epochs(self, d: int) -> int:
        return max(1, round(self.epoch_budget / d))

    def numpy_epochs(self, d: int) -> int:
        return max(1, self.epochs(d) // self.numpy_fraction)


FULL = Size()
SMOKE = Size(n_data=2, n_lr=16, epoch_budget=8, numpy_fraction=1)


def fma_per_update(d: int) -> int:
    """d FMAs for w.x, d for the update, one multiply (bench/_machine.py)."""
    return 2 * d + 1


def make_data(d: int, n_data: int, seed: int = 14) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for k in range(n_data):
        rng = np.random.default_rng([seed, d, k])
        X = rng.standard_normal((P, d))
        w = rng.standard_normal(d) / np.sqrt(d)
        out.append((X, X @ w + 0.1 * rng.standard_normal(P)))
    return out


def rates(data, n_lr: int) -> np.ndarray:
    """Absolute learning rates shared by all datasets: 0.005-0.1 x eta_max = 2/lambda_max
    of H = X'X/P (the smallest over the datasets), scaled by 4/d above d = 4 (one
    sample's step limit, about 2/|x|^2 = 2/d, falls below eta_max there: 0.005-0.1
    diverges at d = 30 and 100).  Absolute rather than ``lr_unit="eta_max"``, which runs
    one sub-sweep per dataset (32 set-ups, 256 lanes each to share between the threads)."""
    d = data[0][0].shape[1]
    lam = max(np.linalg.eigvalsh(X.T @ X / len(X))[-1] for X, _ in data)
    return np.geomspace(0.005, 0.1, n_lr) * min(1.0, 4.0 / d) * 2.0 / lam


def sweep_kwargs(d: int, size: Size, threads: int = 2, epochs: int | None = None) -> dict:
    data = make_data(d, size.n_data)
    return dict(data=data, lr=rates(data, size.n_lr), epochs=epochs or size.epochs(d),
                order="cyclic", tol=0.0, threads=min(threads, M.cores()), progress=False)


def sgd_updates(res, epochs: int) -> int:
    """Per-sample updates actually performed (as bench/test_bench_sweep.py counts them)."""
    stop = np.where(res.diverged, res.diverged_at,
                    np.where(res.converged, res.steps_to_tol, epochs))
    return int(stop.sum()) * P


def check_ran(res, kw: dict) -> int:
    """Every lane ran every epoch (none diverged or converged), results finite; the
    updates performed."""
    planned = len(kw["data"]) * len(kw["lr"]) * kw["epochs"] * P
    done = sgd_updates(res, kw["epochs"])
    assert not res.diverged.any() and not res.converged.any(), "a lane stopped early"
    assert done == planned, (done, planned)
    assert np.isfinite(res.final_loss).all()
    return done


def timed_sweep(kw: dict) -> tuple[float, object]:
    t = time.perf_counter()
    res = fg.sweep("sgd", **kw)
    return time.perf_counter() - t, res


def numpy_sgd(X: np.ndarray, y: np.ndarray, lr: np.ndarray, epochs: int) -> np.ndarray:
    """Per-sample SGD vectorised across all runs: X (K, P, d), y (K, P), lr (L,) rates;
    one pass of whole-array operations per sample.  Weights (K, L, d)."""
    K, _, d = X.shape
    lr = np.broadcast_to(lr, (K, len(lr)))
    Xs = np.ascontiguousarray(X.transpose(1, 0, 2))  # (P, K, d): sample p contiguous
    ys = np.ascontiguousarray(y.T)[..., None]  # (P, K, 1)
    W = np.zeros((K, lr.shape[1], d))
    for _ in range(epochs):
        for x, yp in zip(Xs, ys, strict=True):
            r = lr * (np.einsum("kld,kd->kl", W, x) - yp)
            W -= r[..., None] * x[:, None, :]
    return W


def numpy_args(kw: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    X = np.stack([X for X, _ in kw["data"]])
    y = np.stack([y for _, y in kw["data"]])
    return X, y, kw["lr"]


def numpy_matches_fastgd(d: int = 4) -> bool:
    """The NumPy reference runs the same arithmetic as the sweep (weights agree)."""
    kw = sweep_kwargs(d, Size(n_data=2, n_lr=4), epochs=3)
    res = fg.sweep("sgd", weights=True, **kw)
    W = numpy_sgd(*numpy_args(kw), kw["epochs"])
    return np.allclose(res.weights[:, :, 0], W, rtol=1e-9, atol=1e-12)


def measure_row(d: int, size: Size) -> dict:
    """fastgd (full epochs) and NumPy (a fraction) alternating, min of ROUNDS each."""
    kw = sweep_kwargs(d, size)
    timed_sweep(kw)  # warm-up: compile / cache load
    args = numpy_args(kw)
    ep_np = size.numpy_epochs(d)
    best_fg = best_np = float("inf")
    for _ in range(ROUNDS):
        t = time.perf_counter()
        numpy_sgd(*args, ep_np)
        best_np = min(best_np, time.perf_counter() - t)
        t, res = timed_sweep(kw)
        best_fg = min(best_fg, t)
    updates = check_ran(res, kw)
    one = min(timed_sweep(dict(kw, epochs=1))[0] for _ in range(ROUNDS))
    np_updates = size.n_data * size.n_lr * ep_np * P
    fg_rate, np_rate = updates / best_fg, np_updates / best_np
    return dict(d=d, epochs=kw["epochs"], updates=updates, seconds=best_fg,
                updates_per_s=fg_rate, numpy_epochs=ep_np, numpy_seconds=best_np,
                numpy_updates_per_s=np_rate, fastgd_over_numpy=fg_rate / np_rate,
                threads=kw["threads"], one_epoch_seconds=one)


def fastgd_rates(dims, size: Size) -> dict:
    """fastgd alone, min of ROUNDS after a warm-up (what the 512-bit subprocess runs)."""
    out = {}
    for d in dims:
        kw = sweep_kwargs(d, size)
        timed_sweep(kw)
        best, res = min((timed_sweep(kw) for _ in range(ROUNDS)), key=lambda r: r[0])
        updates = check_ran(res, kw)
        out[d] = dict(seconds=best, updates=updates, updates_per_s=updates / best)
    return out


def has_avx512() -> bool:
    import llvmlite.binding as ll

    return bool(ll.get_host_cpu_features().get("avx512f"))


def avx512_rates(dims, size: Size, cache_dir: Path = AVX512_CACHE) -> dict | None:
    """:func:`fastgd_rates` in a subprocess with ``FASTGD_AVX512=1`` (its own, persistent
    kernel cache); None where the CPU has no AVX-512F."""
    if not has_avx512():
        return None
    cache_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, FASTGD_AVX512="1", NUMBA_CACHE_DIR=str(cache_dir))
    env.pop("NUMBA_CPU_FEATURES", None)
    spec = json.dumps(dict(dims=list(dims), size=asdict(size)))
    out = subprocess.run([sys.executable, "-m", "bench._kernels_table", "--avx512", spec],
                         cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["vector_bits"] == 512, got
    return {int(d): row for d, row in got["rows"].items()}


def thread_scaling(d: int = 10, size: Size = FULL, n_control: int = 3_000_000) -> dict:
    """fastgd 1 -> 2 threads (alternating, min of ROUNDS each) and the FMA-bound control
    measured just before, in the same process."""
    control = M.fma_control_scaling(n_control)
    kws = {t: sweep_kwargs(d, size, threads=t) for t in (1, 2)}
    best = {}
    for t, kw in kws.items():
        timed_sweep(kw)  # warm
        best[t] = float("inf")
    for _ in range(ROUNDS):
        for t, kw in kws.items():
            s, res = timed_sweep(kw)
            best[t] = min(best[t], s)
            updates = check_ran(res, kw)
    return dict(d=d, rate_1=updates / best[1], rate_2=updates / best[2],
                fastgd_scaling=best[1] / best[2], control_scaling=control)


def _wall(args, cache_dir: Path, cwd: Path) -> float:
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir))
    t = time.perf_counter()
    subprocess.run(args, cwd=cwd, env=env, check=True, capture_output=True, text=True)
    return time.perf_counter() - t


_FIRST_SGD = ("import numpy as np, fastgd as fg; X = np.random.default_rng(0).standard_normal"
              "((100, 10)); fg.sweep('sgd', data=[(X, X.sum(1))], lr=[0.01, 0.02], epochs=2, "
              "order='cyclic', tol=0.0, progress=False)")


def first_sweep_latency(tmp: Path) -> dict:
    """Wall time of a fresh process (interpreter and import included): ``fastgd phase``
    with its built-in defaults on an empty kernel cache (cold), then again (warm); a
    first d = 10 SGD sweep and ``fastgd net phase`` (defaults), cold and warm."""
    tmp = Path(tmp)
    phase = [sys.executable, "-m", "fastgd", "phase", "--out", str(tmp / "phase.png")]
    sgd = [sys.executable, "-c", _FIRST_SGD]
    net = [sys.executable, "-m", "fastgd", "net", "phase", "--out", str(tmp / "net.png")]
    out = {}
    for name, args in (("phase", phase), ("sgd_d10", sgd), ("net_phase", net)):
        cache = tmp / f"cache_{name}"
        cache.mkdir()
        out[f"{name}_cold_s"] = _wall(args, cache, tmp)
        out[f"{name}_warm_s"] = _wall(args, cache, tmp)
    return out


def add_ceilings(rows: list[dict], avx512: dict | None, clock: float) -> None:
    """Fill each row's shares of the 256- and 512-bit FMA ceilings (in place)."""
    for row in rows:
        d, threads = row["d"], row["threads"]
        row["ceiling_256"] = M.fma_ceiling(fma_per_update(d), threads, doubles=4)
        row["fraction_256"] = row["updates_per_s"] / row["ceiling_256"]
        if avx512:
            row["avx512_updates_per_s"] = avx512[d]["updates_per_s"]
            row["ceiling_512"] = M.fma_ceiling(fma_per_update(d), threads, doubles=8)
            row["fraction_512"] = row["avx512_updates_per_s"] / row["ceiling_512"]
        row["clock_ghz"] = clock


def markdown(rows: list[dict]) -> str:
    lines = ["| d | fastgd sweep() G updates/s | % of FMA ceiling (256-bit) | NumPy reference "
             "G/s | fastgd / NumPy | 512-bit G/s | % of 512-bit ceiling |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        a512 = (f"{r['avx512_updates_per_s'] / 1e9:.2f} | {r['fraction_512']:.0%}"
                if "avx512_updates_per_s" in r else "– | –")
        lines.append(f"| {r['d']} | {r['updates_per_s'] / 1e9:.2f} | {r['fraction_256']:.0%} | "
                     f"{r['numpy_updates_per_s'] / 1e9:.3f} | {r['fastgd_over_numpy']:.0f}× | "
                     f"{a512} |")
    return "\n".join(lines)


def extra_lines(clock: float, scaling: dict | None, latency: dict | None,
                rows: list[dict] = ()) -> list[str]:
    lines = [f"Clock {clock:.2f} GHz measured from a dependent FMA chain (nominal "
             f"{M.nominal_ghz():.2f}); ceiling = {M.cores()} cores × 2 FMA units × 4 (256-bit) "
             "or 8 (512-bit) doubles × clock ÷ (2d + 1)."]
    if rows:
        lines.append("sweep() with 1 epoch (set-up, finalize, one epoch), s: " + ", ".join(
            f"d = {r['d']} {r['one_epoch_seconds']:.3f}" for r in rows) + " (min of 3).")
    if scaling:
        s = scaling
        lines.append(f"Threads 1 → 2 at d = {s['d']}: fastgd {s['fastgd_scaling']:.2f}× "
                     f"({s['rate_1'] / 1e9:.2f} → {s['rate_2'] / 1e9:.2f} G/s), FMA-bound "
                     f"control loop {s['control_scaling']:.2f}× (same run).")
    if latency:
        t = latency
        lines.append(f"First sweep in a fresh process (wall, interpreter and import included), "
                     f"empty / warm kernel cache: `fastgd phase` (defaults) "
                     f"{t['phase_cold_s']:.1f} / {t['phase_warm_s']:.1f} s; a d = 10 SGD "
                     f"sweep {t['sgd_d10_cold_s']:.1f} / {t['sgd_d10_warm_s']:.1f} s; "
                     f"`fastgd net phase` {t['net_phase_cold_s']:.1f} / "
                     f"{t['net_phase_warm_s']:.1f} s.")
    return lines


def _avx512_worker(spec: str) -> None:
    s = json.loads(spec)
    rows = fastgd_rates(s["dims"], Size(**s["size"]))
    print(json.dumps(dict(vector_bits=M.compiled_vector_bits(), rows=rows)))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--avx512"]:
        _avx512_worker(sys.argv[2])
