"""Adam lanes against GD lanes (issue 24, item 6): the same grid -- 16 Gaussian datasets
(kappa 10 to 1e3, P = 100) x 128 learning rates x 2000 steps, d = 2 and d = 10, float64,
every thread -- run by :func:`fastgd.sweep` (batch GD, eigenbasis kernel) and by
:func:`fastgd.linear.adaptive.adaptive_sweep` (Adam, full-space kernel), alternating,
min of 3 repetitions each, in the same process.

Work per update (the FMA-ceiling figures, bench/_machine.py): plain GD in the eigenbasis
of H costs d multiplies; Adam costs 2 d^2 multiply-adds for the gradient R^T (R e) and
the excess |R e|^2 / 2, plus about 6 operations per component for the moments and the
step (a square root and two divisions among them, counted as one FMA each here, which
flatters the share).  Updates are counted as performed (a lane that stops early stops
counting).

Run:      pytest bench/test_bench_adaptive.py --benchmark-enable -s
In the default run (benchmarks disabled) the table runs once on a tiny grid.
"""

from __future__ import annotations

import time

import numpy as np

import fastgd as fg
from fastgd.linear.adaptive import adaptive_sweep

from . import _machine as M

FULL = dict(n_kappa=16, n_lr=128, steps=2000, repeats=3)
SMOKE = dict(n_kappa=2, n_lr=16, steps=20, repeats=1)
DIMS = (2, 10)


def _updates(res, steps):
    stop = np.where(res.diverged, res.diverged_at,
                    np.where(res.converged, res.steps_to_tol, steps))
    return int(stop.sum())


def _gd(kappa, d, steps, n_lr):
    return fg.sweep("gd", lr=np.geomspace(0.05, 1.9, n_lr), condition=kappa, d=d,
                    steps=steps, tol=0.0, blowup=np.inf)


def _adam(kappa, d, steps, n_lr):
    return adaptive_sweep(np.geomspace(1e-4, 1e-2, n_lr), steps, condition=kappa, d=d,
                          tol=0.0, blowup=np.inf)


def fma_per_update(method, d):
    """Multiply-adds per lane and step (module docstring)."""
    return d if method == "gd" else 2 * d * d + 6 * d


def measure(d, n_kappa, n_lr, steps, repeats):
    """{method: (updates, best seconds)} for GD and Adam on the same grid, alternating."""
    kappa = np.geomspace(10.0, 1e3, n_kappa)
    runs = {"gd": _gd, "adam": _adam}
    for fn in runs.values():  # compile / load the cache outside the timing
        fn(kappa[:1], d, 2, 2)
    best = {k: np.inf for k in runs}
    updates = {}
    for _ in range(repeats):
        for name, fn in runs.items():
            t = time.perf_counter()
            res = fn(kappa, d, steps, n_lr)
            best[name] = min(best[name], time.perf_counter() - t)
            updates[name] = _updates(res, steps)
    return {k: (updates[k], best[k]) for k in runs}


def table(size, with_ceiling):
    """Rows (d, method, updates/s, share of the 256-bit FMA ceiling) as markdown."""
    lines = ["| d | method | updates/s | FMA/update | % of 256-bit FMA ceiling |",
             "|---|---|---|---|---|"]
    rows = []
    for d in DIMS:
        for name, (n, s) in measure(d, **size).items():
            rate = n / s
            fpu = fma_per_update(name, d)
            share = rate / M.fma_ceiling(fpu, doubles=4) if with_ceiling else float("nan")
            rows.append({"d": d, "method": name, "updates_per_s": rate, "fma": fpu,
                         "share": share})
            lines.append(f"| {d} | {name} | {rate:.3g} | {fpu} | {100 * share:.1f} |")
    return rows, "\n".join(lines)


def test_bench_adam_vs_gd_lanes(benchmark):
    size = SMOKE if benchmark.disabled else FULL
    benchmark.group = "adaptive: Adam lanes vs GD lanes, 16 data x 128 lr x 2000 steps"
    rows, text = benchmark.pedantic(table, args=(size, not benchmark.disabled), rounds=1,
                                    iterations=1)
    for row in rows:
        key = f"d{row['d']}_{row['method']}"
        benchmark.extra_info[f"{key}_updates_per_s"] = row["updates_per_s"]
        benchmark.extra_info[f"{key}_fraction_of_ceiling"] = row["share"]
    if not benchmark.disabled:
        benchmark.extra_info["clock_ghz"] = M.cpu_ghz()
        benchmark.extra_info["cores"] = M.cores()
    assert all(r["updates_per_s"] > 0 for r in rows)
    print("\n" + text)
