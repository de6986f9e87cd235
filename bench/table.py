"""Print the README's end-to-end table (bench/_e2e_table.py): per-sample SGD through
``fg.sweep()`` at E = 10, 100, 1000 epochs and d = 2, 10, 30, 100, with the fixed cost of
a sweep, the share of the 256-bit FMA ceiling and the ratio against plain NumPy.

    python -m bench.table             (or: python bench/table.py)   about 1-2 minutes
    python -m bench.table --gd        batch-GD sweeps against NumPy matrix products and
                                      the bound that limits them (bench/_gd_table.py)
    python -m bench.table --kernels   the kernel table of issue 14 (bench/_kernels_table.py:
                                      long sweeps, the 512-bit build, thread scaling,
                                      first-sweep latency; a few minutes)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for python bench/table.py

from bench import _e2e_table as E  # noqa: E402  (imports fastgd before numba)
from bench import _gd_table as GD  # noqa: E402
from bench import _kernels_table as K  # noqa: E402
from bench import _machine as M  # noqa: E402


def kernels_table() -> None:
    t0 = time.perf_counter()
    assert K.numpy_matches_fastgd()
    rows = [K.measure_row(d, K.FULL) for d in K.DIMS]
    avx512 = K.avx512_rates(K.DIMS, K.FULL)
    scaling = K.thread_scaling(10, K.FULL)
    with tempfile.TemporaryDirectory() as tmp:
        latency = K.first_sweep_latency(Path(tmp))
    clock = M.cpu_ghz()
    K.add_ceilings(rows, avx512, clock)
    print(K.markdown(rows))
    print()
    for line in K.extra_lines(clock, scaling, latency, rows):
        print(line)
    print(f"\nWorkload: {K.FULL.n_data} datasets × {K.FULL.n_lr} learning rates, P = {K.P}, "
          f"cyclic per-sample SGD, float64, {rows[0]['threads']} threads, epochs = "
          f"{K.FULL.epoch_budget}/d, min of {K.ROUNDS}; NumPy runs 1/{K.FULL.numpy_fraction} "
          "of the epochs.")
    print(f"Command: python -m bench.table --kernels   ({time.perf_counter() - t0:.0f} s)")


def e2e_table() -> None:
    t0 = time.perf_counter()
    assert K.numpy_matches_fastgd()
    rows = E.measure(E.FULL)
    print(E.markdown(rows))
    print()
    for line in E.notes(rows, E.FULL):
        print(line)
    print(f"Command: python -m bench.table   ({time.perf_counter() - t0:.0f} s)")


def gd_table() -> None:
    t0 = time.perf_counter()
    rows = GD.measure(GD.FULL)
    print(GD.markdown(rows))
    print()
    for line in GD.notes(rows, GD.FULL):
        print(line)
    print(f"Command: python -m bench.table --gd   ({time.perf_counter() - t0:.0f} s)")


def main() -> None:
    if "--kernels" in sys.argv[1:]:
        kernels_table()
    elif "--gd" in sys.argv[1:]:
        gd_table()
    else:
        e2e_table()


if __name__ == "__main__":
    main()
