"""Print the README's kernel table at full size (bench/_kernels_table.py).

    python -m bench.table        (or: python bench/table.py)

Takes a few minutes on the 2-core development machine (the NumPy reference, and cold
compiles for the 512-bit subprocess and the latency rows).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for python bench/table.py

from bench import _kernels_table as K  # noqa: E402  (imports fastgd before numba)
from bench import _machine as M  # noqa: E402


def main() -> None:
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
    print(f"Command: python -m bench.table   ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
