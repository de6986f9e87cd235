"""Batch-GD sweeps end to end (issue 22, item 3): 64 datasets x 256 learning rates,
P = 200, 1000 steps, d = 2, 10, 100, through ``fg.sweep("gd")``, against

* a NumPy reference that runs all lanes of a dataset as matrix products,
  W <- W - eta (W H - b) with H = X^T X / P and b = X^T y / P, every rate at once
  (stacked over the datasets: one batched matmul per step);
* the bound that limits the kernel: the 256-bit FMA ceiling of one multiply per
  component and step (the eigenbasis step z_i <- (1 - eta lambda_i) z_i), and a
  memory control: the kernel's own array traffic (the excess sum_i lambda_i z_i^2 / 2
  and the update, over the same (d, 64-lane) arrays, every step) with nothing else,
  on the same threads.  The kernel cannot beat the control; where the control runs far
  below the FMA ceiling the kernel is memory (cache) bound.

Units: G step.d/s = lane-steps x d per second (one multiply each in the eigenbasis).
Shared by ``python -m bench.table --gd`` and ``bench/test_bench_gd_e2e.py``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np

import fastgd as fg

from . import _machine as M

DIMS = (2, 10, 100)


@dataclass(frozen=True)
class Grid:
    n_data: int = 64
    n_lr: int = 256
    P: int = 200
    steps: int = 1000
    dims: tuple = DIMS
    rounds: int = 3
    lanes: int = 64  # the GD sweep's default chunk width


FULL = Grid()
SMOKE = Grid(n_data=2, n_lr=8, P=20, steps=5, dims=(2, 10), rounds=1)


def make_data(d: int, grid: Grid, seed: int = 22) -> list:
    out = []
    for k in range(grid.n_data):
        rng = np.random.default_rng([seed, d, k])
        X = rng.standard_normal((grid.P, d))
        out.append((X, X @ rng.standard_normal(d) / np.sqrt(d)
                    + 0.1 * rng.standard_normal(grid.P)))
    return out


def rates(data, n_lr: int) -> np.ndarray:
    """0.001-0.1 x the smallest eta_max = 2/lambda_max over the datasets: stable on every
    dataset, and far enough from 1/lambda that no iterate reaches w* exactly (with
    tol = 0 no lane stops early; counted from the result anyway)."""
    lam = max(np.linalg.eigvalsh(X.T @ X / len(X))[-1] for X, _ in data)
    return np.geomspace(0.001, 0.1, n_lr) * 2.0 / lam


def numpy_gd(H, b, lr, steps):
    """Batch GD for every rate and dataset as matrix products; weights (K, L, d)."""
    W = np.zeros((H.shape[0], lr.size, H.shape[1]))
    step = lr[None, :, None]
    for _ in range(steps):
        W -= step * (np.matmul(W, H) - b[:, None, :])
    return W


def numpy_steps(d: int, steps: int) -> int:
    """NumPy runs a fraction of the steps (same cost per step) above d = 2."""
    return max(1, steps if d <= 2 else steps // 10 if d <= 10 else steps // 100)


def _control_kernel():
    import numba

    @numba.njit(nogil=True, fastmath={"contract"}, cache=False)
    def control(z, zn, mult, hl, ex, steps):
        d, nl = z.shape
        for _ in range(steps):
            for l in range(nl):
                ex[l] = 0.0
            for i in range(d):
                for l in range(nl):
                    ex[l] += hl[i] * (z[i, l] * z[i, l])
            for i in range(d):
                for l in range(nl):
                    zn[i, l] = mult[i, l] * z[i, l]
            z, zn = zn, z
        return ex[0]

    return control


def control_rate(d: int, lanes: int, threads: int, steps: int) -> float:
    """step.d/s of the memory control on ``threads`` threads (one chunk each)."""
    control = _control_kernel()
    arrs = []
    for _ in range(threads):
        z = np.full((d, lanes), 0.5)
        arrs.append((z, z.copy(), np.full((d, lanes), 0.999), np.full(d, 0.5),
                     np.zeros(lanes)))
    control(*arrs[0], 2)
    best = float("inf")
    for _ in range(3):
        ts = [threading.Thread(target=control, args=(*a, steps)) for a in arrs]
        t = time.perf_counter()
        for th in ts:
            th.start()
        for th in ts:
            th.join()
        best = min(best, time.perf_counter() - t)
    return threads * lanes * steps * d / best


def measure_d(d: int, grid: Grid = FULL, threads: int = 2) -> dict:
    data = make_data(d, grid)
    lr = rates(data, grid.n_lr)
    kw = dict(data=data, lr=lr, tol=0.0, threads=threads, progress=False)
    X = np.stack([x for x, _ in data])
    y = np.stack([v for _, v in data])
    H = np.matmul(X.transpose(0, 2, 1), X) / grid.P
    b = np.einsum("kpd,kp->kd", X, y) / grid.P
    n_np = numpy_steps(d, grid.steps)
    fg.sweep("gd", steps=0, **kw)  # warm-up
    best = {"fg": float("inf"), "fixed": float("inf"), "np": float("inf")}
    res = None
    for _ in range(grid.rounds):
        t = time.perf_counter()
        numpy_gd(H, b, lr, n_np)
        best["np"] = min(best["np"], time.perf_counter() - t)
        M.settle_blas()  # numpy_gd's threaded matmuls: their threads spin on after them
        M.warm_up(lambda: fg.sweep("gd", steps=grid.steps // 10, **kw))  # out of the pause
        t = time.perf_counter()
        res = fg.sweep("gd", steps=grid.steps, **kw)
        best["fg"] = min(best["fg"], time.perf_counter() - t)
        t = time.perf_counter()
        fg.sweep("gd", steps=0, **kw)
        best["fixed"] = min(best["fixed"], time.perf_counter() - t)
    stop = np.where(res.diverged, res.diverged_at,
                    np.where(res.converged, res.steps_to_tol, grid.steps))
    work = int(stop.sum()) * d  # lane-steps actually run x d
    rate = work / best["fg"]
    np_rate = grid.n_data * grid.n_lr * n_np * d / best["np"]
    ceiling = M.fma_ceiling(1, threads, doubles=4)  # one multiply per component-step
    ctrl = control_rate(d, grid.lanes, threads, max(10, 20_000_000 // (grid.lanes * d)))
    return dict(d=d, seconds=best["fg"], rate=rate, fraction_256=rate / ceiling,
                fixed_s=best["fixed"], fixed_share=best["fixed"] / best["fg"],
                numpy_rate=np_rate, numpy_steps=n_np, fastgd_over_numpy=rate / np_rate,
                control_rate=ctrl, control_fraction=ctrl / ceiling,
                kernel_over_control=(work / max(best["fg"] - best["fixed"], 1e-9)) / ctrl,
                threads=threads)


def measure(grid: Grid = FULL, threads: int = 2) -> list[dict]:
    threads = min(threads, M.cores())
    return [measure_d(d, grid, threads) for d in grid.dims]


def markdown(rows: list[dict]) -> str:
    lines = ["| d | fastgd G step·d/s | % of 256-bit FMA ceiling | fixed cost (steps = 0) | "
             "fixed / sweep | NumPy (matrix products) G step·d/s | fastgd / NumPy | "
             "memory control G step·d/s (% of ceiling) | kernel alone / control |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['d']} | {r['rate'] / 1e9:.3g} | {r['fraction_256']:.1%} | "
                     f"{r['fixed_s'] * 1e3:.1f} ms | {r['fixed_share']:.0%} | "
                     f"{r['numpy_rate'] / 1e9:.3g} | {r['fastgd_over_numpy']:.3g}× | "
                     f"{r['control_rate'] / 1e9:.3g} ({r['control_fraction']:.0%}) | "
                     f"{r['kernel_over_control']:.2f} |")
    return "\n".join(lines)


def notes(rows: list[dict], grid: Grid = FULL) -> list[str]:
    threads = rows[0]["threads"] if rows else 2
    return [f"Workload: {grid.n_data} datasets × {grid.n_lr} learning rates, P = {grid.P}, "
            f"{grid.steps} steps of batch GD through fg.sweep(), tol = 0, float64, {threads} "
            f"threads, min of {grid.rounds}; NumPy runs 1, 1/10, 1/100 of the steps at d = 2, "
            "10, 100 (same cost per step).",
            f"Ceiling: {M.cores()} cores × 2 FMA units × 4 doubles × {M.cpu_ghz():.2f} GHz, one "
            "multiply per component and step; 'kernel alone' is (sweep − fixed cost).",
            f"Bound on the fixed cost: the final check of a cell's weights from residuals "
            f"costs 2 P d multiply-adds, {2 * grid.P / grid.steps:.0%} of the kernel's "
            f"{grid.steps} d multiplies: at equal speed the check alone is "
            f"{2 * grid.P / (grid.steps + 2 * grid.P):.0%} of a sweep (the back-transform "
            "w = w* + V z adds d^2 per cell)."]
