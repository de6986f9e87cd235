"""Minibatch and momentum SGD throughput (the FULL kernel) beside plain per-sample SGD on
the same grid, measured in the same run: 32 datasets x 256 learning rates, P = 100,
cyclic order, float64, 2 threads, d = 10, 30, 100 (bench/_kernels_table.py's data and
rates; momentum 0.9 runs at a tenth of the rates, so that no lane diverges).

Rates are sample visits per second (an epoch is P of them whatever the batch), each
reported as a share of the 256-bit FMA ceiling at 2d + 1 multiply-adds per visit and as
a ratio to plain per-sample SGD.  A minibatch costs about what a sample does (its dot
product and its share of the gradient; the step once per batch); per-sample momentum
costs more (the gradient and the momentum buffer: four arrays stored per component).

Run:  python -m pytest bench/test_bench_minibatch.py --benchmark-enable -s
In the default run (``--benchmark-disable``) each row runs once on a small grid.
"""

from __future__ import annotations

import pytest

import fastgd as fg

from . import _kernels_table as K
from ._machine import fma_ceiling, record

DIMS = (10, 30, 100)
EPOCHS = 40
VARIANTS = {"plain": {}, "batch10": {"batch_size": 10}, "momentum": {"momentum": 0.9}}
RESULTS = {}


def _kwargs(d, variant, smoke):
    size = K.SMOKE if smoke else K.Size()
    kw = dict(K.sweep_kwargs(d, size, epochs=2 if smoke else EPOCHS), **VARIANTS[variant])
    if variant == "momentum":
        kw["lr"] = kw["lr"] * 0.1
    return kw


@pytest.mark.parametrize("d", DIMS)
@pytest.mark.parametrize("variant", list(VARIANTS))  # plain first: the others' reference
def test_bench_minibatch_and_momentum(benchmark, d, variant):
    kw = _kwargs(d, variant, benchmark.disabled)
    res = fg.sweep("sgd", **kw)  # warm-up: compile / cache load
    updates = K.check_ran(res, kw)  # every lane runs every epoch: the rates compare
    benchmark.group = f"sweep: minibatch / momentum SGD beside plain, d={d}"
    out = benchmark.pedantic(fg.sweep, args=("sgd",), kwargs=kw, rounds=3, iterations=1,
                             warmup_rounds=0)
    assert out.equals(res)
    rate = record(benchmark, updates, K.fma_per_update(d), kw["threads"], variant=variant)
    if rate is None:
        return
    RESULTS[(d, variant)] = rate
    plain = RESULTS.get((d, "plain"))
    if plain:
        benchmark.extra_info["over_plain"] = rate / plain
    share = rate / fma_ceiling(K.fma_per_update(d), kw["threads"], doubles=4)
    print(f"\n[sgd {variant} d={d}] {rate / 1e9:.3f} G visits/s, {share:.0%} of the 256-bit "
          f"FMA ceiling" + (f", {rate / plain:.2f}x plain" if variant != "plain" else ""))
