"""scripts/perf_map.py: the perf map names the kernels this process compiled, with
their sizes from the object code."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

import perf_map  # noqa: E402


def test_perf_map_names_a_fresh_kernel(tmp_path):
    @numba.njit(cache=False)
    def scale_rows_for_perf_map(a, s):
        for i in range(a.shape[0]):
            a[i] *= s
        return a

    scale_rows_for_perf_map(np.ones(4), 2.0)
    path = perf_map.write_perf_map(str(tmp_path / "perf.map"))
    rows = [line.split(maxsplit=2) for line in open(path)]
    mine = [r for r in rows if "scale_rows_for_perf_map" in r[2]]
    assert mine, "the compiled function is not in the map"
    addresses = [int(r[0], 16) for r in rows]
    assert addresses == sorted(addresses)
    if shutil.which("nm"):
        assert all(int(r[1], 16) > 16 for r in mine)  # sizes from nm, not the fallback
