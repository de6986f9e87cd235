"""The end-to-end table (issue 22, item 6): per-sample SGD through ``fg.sweep()`` at the
budgets people run (E = 10, 100, 1000 epochs) for d = 2, 10, 30, 100, with the fixed
cost of a sweep, the share of the 256-bit FMA ceiling at the measured clock and the
ratio against a plain-NumPy reference vectorised across all runs.

Workload of every row (the kernel table's, bench/_kernels_table.py): 32 datasets x 256
learning rates, P = 100, cyclic order, float64, 2 threads, tol = 0 and stable rates (no
lane stops early; checked from the result).

* **Fixed cost**: the time of the same sweep with ``epochs=0`` (validation, the SVD and
  least squares of every dataset, chunk launch, the final check of every cell, the
  result's assembly: everything but the epochs).  Its share of a sweep is fixed / time.
  The rows repeat sweeps on the same datasets, as a script does that sweeps them at
  several budgets: their SVDs and least squares come from the prepared-problem cache
  (:mod:`fastgd.linear.problem`).  "fixed, new data" times the E = 0 sweep with that
  cache cleared first: a first sweep on new datasets.
* **Rates**: updates performed / wall time of the whole call (fixed cost included),
  min of :data:`ROUNDS`; fastgd and NumPy alternate within a round.  The timed sweeps
  run as in a script's loop: after the pause that lets the NumPy reference's BLAS
  threads stop (:func:`bench._machine.settle_blas`), 0.2 s of untimed sweeps first
  (:func:`bench._machine.warm_up`: after 0.3 s idle the VM ran about a tenth of a
  second of work up to 1.4x slower: a d = 2 sweep of 0 epochs 1.8 -> 2.9 ms, a d = 10
  sweep of 100 epochs 40.5 -> 42-57 ms).
* **NumPy reference**: :func:`bench._kernels_table.numpy_sgd` (one pass of whole-array
  operations per sample over all 8192 runs) timed for one epoch, plus its final check
  (the losses of every run as one batched ``X @ W^T``); E epochs cost E x the epoch
  plus the check (its per-epoch cost does not change with E).
* **Ceiling**: 2 cores x 2 FMA units x 4 doubles (256-bit) x the clock measured from a
  dependent FMA chain / (2d + 1) FMAs per update (bench/_machine.py).

Shared by ``python -m bench.table`` (prints it) and ``bench/test_bench_e2e.py`` (smoke).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

import fastgd as fg
from fastgd.linear import problem as PB

from . import _kernels_table as K
from . import _machine as M

DIMS = (2, 10, 30, 100)
EPOCHS = (10, 100, 1000)
ROUNDS = 3


@dataclass(frozen=True)
class Grid:
    n_data: int = 32
    n_lr: int = 256
    dims: tuple = DIMS
    epochs: tuple = EPOCHS
    rounds: int = ROUNDS


FULL = Grid()
SMOKE = Grid(n_data=2, n_lr=8, dims=(2, 10), epochs=(1, 2), rounds=1)


def numpy_final(X, y, W):
    """The reference's final check: E(w) of every run, one batched product per dataset."""
    r = np.matmul(W, X.transpose(0, 2, 1)) - y[:, None, :]  # (K, L, P)
    return 0.5 * np.einsum("klp,klp->kl", r, r) / X.shape[1]


def _min_time(fn, rounds):
    best = float("inf")
    out = None
    for _ in range(rounds):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def measure_d(d: int, grid: Grid = FULL, threads: int = 2) -> list[dict]:
    """One row per budget at dimension d (fastgd and NumPy alternating, min of rounds)."""
    size = K.Size(n_data=grid.n_data, n_lr=grid.n_lr)
    base = K.sweep_kwargs(d, size, threads=threads, epochs=1)
    X, y, lr = K.numpy_args(base)
    fg.sweep("sgd", **dict(base, epochs=0))  # warm-up: compile / cache load
    best = {E: float("inf") for E in (0, *grid.epochs)}
    t_np = t_np_final = t_new = float("inf")
    res = {}
    for _ in range(grid.rounds):
        PB.clear_cache()  # a first sweep on these datasets
        t_new = min(t_new, _min_time(lambda: fg.sweep("sgd", **dict(base, epochs=0)), 1)[0])
        t, W = _min_time(lambda: K.numpy_sgd(X, y, lr, 1), 1)
        t_np = min(t_np, t)
        t_np_final = min(t_np_final, _min_time(lambda W=W: numpy_final(X, y, W), 1)[0])
        M.settle_blas()  # numpy_final's threaded BLAS: its threads spin on after it
        M.warm_up(lambda: fg.sweep("sgd", **dict(base, epochs=10)))  # out of the pause
        for E in best:
            kw = dict(base, epochs=E)
            t, res[E] = _min_time(lambda kw=kw: fg.sweep("sgd", **kw), 1)
            best[E] = min(best[E], t)
    rows = []
    fixed = best[0]
    for E in grid.epochs:
        kw = dict(base, epochs=E)
        updates = K.check_ran(res[E], kw)
        rate = updates / best[E]
        ceiling = M.fma_ceiling(K.fma_per_update(d), kw["threads"], doubles=4)
        t_ref = E * t_np + t_np_final
        rows.append(dict(d=d, epochs=E, seconds=best[E], updates=updates, updates_per_s=rate,
                         fraction_256=rate / ceiling, fixed_s=fixed,
                         fixed_share=fixed / best[E], fixed_new_s=t_new, numpy_seconds=t_ref,
                         numpy_updates_per_s=updates / t_ref,
                         fastgd_over_numpy=t_ref / best[E], threads=kw["threads"]))
    return rows


def measure(grid: Grid = FULL, threads: int = 2) -> list[dict]:
    threads = min(threads, M.cores())
    return [row for d in grid.dims for row in measure_d(d, grid, threads)]


def markdown(rows: list[dict]) -> str:
    lines = ["| d | epochs | fastgd G updates/s | % of 256-bit FMA ceiling | NumPy G updates/s "
             "| fastgd / NumPy | fixed cost (E = 0) | fixed / sweep | fixed, new data |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['d']} | {r['epochs']} | {r['updates_per_s'] / 1e9:.3g} | "
                     f"{r['fraction_256']:.0%} | {r['numpy_updates_per_s'] / 1e9:.3g} | "
                     f"{r['fastgd_over_numpy']:.3g}× | {r['fixed_s'] * 1e3:.1f} ms | "
                     f"{r['fixed_share']:.0%} | {r['fixed_new_s'] * 1e3:.1f} ms |")
    return "\n".join(lines)


def notes(rows: list[dict], grid: Grid = FULL) -> list[str]:
    clock = M.cpu_ghz()
    threads = rows[0]["threads"] if rows else 2
    return [
        f"Workload: {grid.n_data} datasets × {grid.n_lr} learning rates, P = {K.P}, cyclic "
        f"per-sample SGD through fg.sweep(), float64, {threads} threads, no lane stopping "
        f"early; min of {grid.rounds}, fastgd and NumPy alternating.",
        "Fixed cost: the same sweep with epochs = 0 (set-up, launch, final check, "
        "assembly), repeated on the same datasets (their SVD and least squares cached); "
        "'fixed / sweep' is its share of the whole call at that budget; 'fixed, new "
        "data': the same with the cache cleared (a first sweep on these datasets).",
        "NumPy: per-sample SGD vectorised across all runs (one pass of whole-array "
        "operations per sample), timed for 1 epoch and scaled by E, plus its final "
        "check (one batched X @ Wᵀ).",
        f"Ceiling: {M.cores()} cores × 2 FMA units × 4 doubles (256-bit) × {clock:.2f} GHz "
        f"(measured from a dependent FMA chain; nominal {M.nominal_ghz():.2f}) ÷ (2d + 1) "
        "FMAs per update.",
        "Bound on the fixed cost: the final check of a run's weights from residuals "
        "(y − X w and X (w − w*), 2 P d multiply-adds) is 2d / (E (2d + 1)) of the "
        f"multiply-adds of E epochs, {check_share(10, 2):.0%}-{check_share(10, 100):.0%} at "
        "E = 10 for d = 2-100: at equal speed the check alone takes about a tenth of a "
        "10-epoch sweep.",
    ]


def check_share(epochs: int, d: int) -> float:
    """The final check's multiply-adds over those of ``epochs`` epochs of per-sample
    SGD, per run: 2 P d / (E P (2d + 1))."""
    return 2 * d / (epochs * (2 * d + 1))
