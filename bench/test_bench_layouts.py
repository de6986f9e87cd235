"""The SGD kernel's lane blocks against the plain loops, per layout (issue 21 item 3).

Per-sample cyclic SGD, float64, 32 datasets x 256 learning rates, P = 100, 2 threads
(where the machine has them), no lane stopping early, at d = 2, 4, 8 (register layout)
and 10, 20, 30, 100 (streaming layout, blocks of four samples), called through
:func:`fastgd.linear.table.launch` with the kernel the table selects.  Variants, run
alternately in one process, min of ROUNDS each:

* ``blocks``: 256 lanes per chunk, so the lanes run in the table's lane blocks: plain
  Numba (:mod:`fastgd.linear.kernels_plain`, state in stack arrays), or the hand-written
  vector code where it is kept (d in ``kernels_sgd.REGISTER_IR_D``);
* ``plain`` (at d in ``REGISTER_IR_D`` and in the streaming layout, d > 8): the same
  with the plain-Numba blocks (``sgd_kernel(d, False, 1, IR=False)``; streaming:
  ``sgd_kernel(0, False, 4, IR=False)``, every lane in ``_block4``); ``ir_over_plain``
  is the row that keeps the vector code there (it must stay above 1.05);
* ``loops``: 3 lanes per chunk, narrower than any block: every lane runs the plain loops
  (lanes innermost, state in memory; streaming: ``_block4``, as ``plain``).

Every variant gives the same bits (checked here).  Each row's ``extra_info``: updates/s
of each, their ratios, and the share of the 256-bit FMA ceiling (cores x 2 FMA x 4
doubles x measured clock / (2d + 1) multiply-adds per update, bench/_machine.py).  The
vector code removed for the other d (and an earlier one of the streaming layout) was
measured the same way before it went (IR / plain ratios in the commit message).  The
machine is often shared: compare ratios (alternating runs), not absolute rates.

Run:   pytest bench/test_bench_layouts.py --benchmark-enable -s
In the default run (benchmarks disabled) one smoke-size row runs (correctness only).
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from . import _kernels_table as K
from . import _machine as M

DIMS = (2, 4, 8, 10, 20, 30, 100)
ROUNDS = 5
EPOCH_BUDGET = 2000  # epochs = EPOCH_BUDGET / d: about 0.2-1 s per run


def problem(d, n_data=32, n_lr=256, epochs=None, threads=2):
    """(spec, inputs, n_lr, threads) of one row's grid."""
    from fastgd.linear import problem as PB
    from fastgd.linear.contract import linear_inputs
    from fastgd.linear.table import KernelSpec

    data = K.make_data(d, n_data)
    lr = K.rates(data, n_lr)
    probs = [PB.prepare("bench", X, y, False) for X, y in data]
    inputs = linear_inputs(probs, lr, 0.0, np.zeros(d), seeds=[0])
    epochs = epochs or max(1, round(EPOCH_BUDGET / d))
    spec = KernelSpec("sgd", d, epochs, 0.0, 1e12, order=0)
    return spec, inputs, n_lr, min(threads, M.cores())


def run(spec, inputs, n_lr, threads, lanes, kernel=None):
    """Seconds and outputs of one launch of the grid in chunks of ``lanes``."""
    from fastgd.engine.grid import Outputs, make_chunks
    from fastgd.linear.table import launch

    n_data = inputs.R.shape[0]
    out = Outputs(n_data, 1, n_lr, spec.d)
    chunks = make_chunks(n_data, 1, n_lr, lanes)
    t = time.perf_counter()
    launch(spec, inputs, chunks, threads, out, kernel=kernel)
    return time.perf_counter() - t, out


def variants(d):
    """name -> (lanes per chunk, kernel or None for the table's)."""
    from fastgd.linear.kernels import REGISTER_MAX_D
    from fastgd.linear.kernels_sgd import REGISTER_IR_D, sgd_kernel

    out = {"blocks": (256, None), "loops": (3, None)}
    if d in REGISTER_IR_D:
        out["plain"] = (256, sgd_kernel(d, False, 1, IR=False))
    elif d > REGISTER_MAX_D:
        out["plain"] = (256, sgd_kernel(0, False, 4, IR=False))
    return out


def measure(d, rounds=ROUNDS, variants=variants, **size):
    """Alternating runs of every variant, min of ``rounds``; outputs checked equal bit for
    bit and every lane run to the end.  Returns the row (dict)."""
    spec, inputs, n_lr, threads = problem(d, **size)
    vs = variants(d)
    best = dict.fromkeys(vs, np.inf)
    outs = {}
    for lanes, kern in vs.values():  # warm-up: compile / load the cache
        run(spec, inputs, n_lr, threads, lanes, kern)
    for _ in range(rounds):
        for name, (lanes, kern) in vs.items():
            t, outs[name] = run(spec, inputs, n_lr, threads, lanes, kern)
            best[name] = min(best[name], t)
    ref = next(iter(outs.values()))
    for name, out in outs.items():
        assert (out.status == 0).all(), name  # bounded: nobody stopped early
        assert np.array_equal(out.w, ref.w), name  # same bits in every variant
    updates = inputs.R.shape[0] * n_lr * spec.T * int(inputs.P[0])
    row = dict(d=d, threads=threads, epochs=spec.T, updates=updates)
    for name, t in best.items():
        row[f"{name}_seconds"] = t
        row[f"{name}_updates_per_s"] = updates / t
    return row


def add_ceiling(row, clock=None):
    """The share of the 256-bit FMA ceiling of each variant (in place)."""
    ceiling = M.fma_ceiling(K.fma_per_update(row["d"]), row["threads"], doubles=4)
    row["clock_ghz"] = clock or M.cpu_ghz()
    row["fma_ceiling_updates_per_s"] = ceiling
    for k in [k for k in row if k.endswith("_updates_per_s")]:
        row[k[: -len("_updates_per_s")] + "_of_ceiling"] = row[k] / ceiling
    return row


@pytest.mark.parametrize("d", DIMS)
def test_bench_layouts(benchmark, d):
    """One row: lane blocks vs loops at d (smoke size unless --benchmark-enable)."""
    if benchmark.disabled and d not in (4, 10):
        pytest.skip("one smoke row per layout in the default run")
    size = (dict(n_data=2, n_lr=40, epochs=3) if benchmark.disabled else {})
    rounds = 1 if benchmark.disabled else ROUNDS
    benchmark.group = "layouts: per-sample SGD, 32 data x 256 lr, P=100, blocks vs loops"
    row = benchmark.pedantic(measure, args=(d, rounds), kwargs=size, rounds=1, iterations=1)
    if not benchmark.disabled:
        add_ceiling(row)
        row["blocks_over_loops"] = row["loops_seconds"] / row["blocks_seconds"]
        if "plain_seconds" in row:
            row["ir_over_plain"] = row["plain_seconds"] / row["blocks_seconds"]
            print(f"\nd={d}: vector code / plain blocks {row['ir_over_plain']:.3f}")
        print(f"\nd={d}: blocks {row['blocks_updates_per_s'] / 1e9:.3f} G/s "
              f"({100 * row['blocks_of_ceiling']:.0f} % of ceiling), loops "
              f"{row['loops_updates_per_s'] / 1e9:.3f} G/s, blocks/loops "
              f"{row['blocks_over_loops']:.2f}")
    benchmark.extra_info.update(row)
