"""GPU check for the CUDA backend (issue 7): run on a machine with an NVIDIA GPU.

    pip install -e '.[cuda]'        # numba-cuda (and a CUDA toolkit / driver)
    python scripts/gpu_check.py [--quick] [--json OUT.json]

1. Agreement: GD and SGD sweeps on a large grid (64 condition numbers x 256 learning
   rates, SGD with 4 seeds and shuffled order) on the CPU and on the GPU: statuses and
   steps identical except at most a few cells whose rate sits at the boundary (the GPU
   contracts multiply-adds, which moves the last bits), losses of finite cells to 1e-9.
2. Timing: an SGD sweep of >= 1e8 per-sample updates (64 kappa x 4096 lr x 100 epochs
   x P = 100 = 2.6e9 with all runs stable, shuffled order) on the GPU, float64 and
   float32, against the CPU's time for the same sweep; figures in updates per second
   (``seconds_run``: the chunk execution, without the per-dataset analysis).

``--tiny`` runs the whole script on tiny grids under the CUDA simulator
(``NUMBA_ENABLE_CUDASIM=1 python scripts/gpu_check.py --tiny``): a check of the script,
not of a GPU.

Prints one JSON object at the end (also written with --json).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def _sweep(method, backend, **kw):
    import fastgd as fg

    t0 = time.perf_counter()
    res = fg.sweep(method, backend=backend, progress=False, **kw)
    return res, time.perf_counter() - t0


def _updates(res, budget, P=100, per_sample=True):
    stop = np.where(res.diverged, res.diverged_at,
                    np.where(res.converged, res.steps_to_tol, budget))
    return int(stop.sum()) * (P if per_sample else 1)


def agreement(quick, tiny=False):
    nk, nl = (2, 8) if tiny else (8, 64) if quick else (64, 256)
    kappa = np.geomspace(1, 1e4, nk)
    lrs = np.geomspace(0.01, 4.0, nl)
    out = {}
    T = 10 if tiny else 1000
    E = 3 if tiny else 100
    for method, kw in (("gd", dict(steps=T, momentum=0.0)),
                       ("gd", dict(steps=T, momentum=0.5, nesterov=True)),
                       ("sgd", dict(epochs=E, seeds=4, order="shuffle")),
                       ("sgd", dict(epochs=E, seeds=2, order="replacement", batch_size=5,
                                    momentum=0.3))):
        a, ta = _sweep(method, "cpu", lr=lrs, condition=kappa, **kw)
        b, tb = _sweep(method, "cuda", lr=lrs, condition=kappa, **kw)
        same = a.status == b.status
        # losses compared where runs are well inside the stable region (near the
        # boundary rounding differences are amplified by the dynamics themselves)
        inside = lrs[None, :, None] < 0.5 * a.gd_limit[:, None, None]
        fin = np.isfinite(a.final_loss) & np.isfinite(b.final_loss) & inside
        rel = np.abs(b.final_loss[fin] - a.final_loss[fin]) / np.maximum(
            np.abs(a.final_loss[fin]), 1e-300)
        key = f"{method}:{','.join(f'{k}={v}' for k, v in kw.items())}"
        out[key] = {"cells": int(a.status.size), "status_mismatch": int((~same).sum()),
                    "max_rel_loss_diff": float(rel.max()) if rel.size else 0.0,
                    "median_rel_loss_diff": float(np.median(rel)) if rel.size else 0.0,
                    "cpu_s": ta, "gpu_s": tb}
        print(key, out[key], flush=True)
    return out


def timing(quick, tiny=False):
    nk, nl, ep = (2, 16, 2) if tiny else (8, 512, 20) if quick else (64, 4096, 100)
    kappa = np.geomspace(1, 100, nk)
    lrs = np.geomspace(0.001, 0.9, nl)  # all stable: every run does every update
    kw = dict(lr=lrs, condition=kappa, epochs=ep, order="shuffle", tol=0.0)
    out = {}
    for backend, dtype in (("cuda", "float64"), ("cuda", "float32"), ("cpu", "float64"),
                           ("cpu", "float32")):
        _sweep("sgd", backend, dtype=dtype, **dict(kw, lr=lrs[:4], condition=kappa[:1],
                                                   epochs=1))
        res, t = _sweep("sgd", backend, dtype=dtype, **kw)
        n = _updates(res, ep)
        run_s = res.meta.get("seconds_run", t)
        out[f"{backend}-{dtype}"] = {"updates": n, "seconds": t, "seconds_run": run_s,
                                     "updates_per_s": n / run_s}
        print(backend, dtype, out[f"{backend}-{dtype}"], flush=True)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small grids (a first look)")
    p.add_argument("--tiny", action="store_true",
                   help="tiny grids: a smoke test of this script under NUMBA_ENABLE_CUDASIM=1")
    p.add_argument("--json", default=None, help="write the figures to this file")
    args = p.parse_args(argv)
    import numba

    import fastgd as fg
    from fastgd.linear import gpu

    gpu.require("gpu_check")
    from numba import cuda

    try:
        name = cuda.get_current_device().name
        name = name.decode() if isinstance(name, bytes) else str(name)
    except AttributeError:  # the simulator
        name = "CUDA simulator"
    info = {"device": name,
            "simulator": gpu.simulated(), "numba": numba.__version__,
            "fastgd": fg.__version__}
    print(info, flush=True)
    fg.warmup(chain=False)
    report = {"info": info, "agreement": agreement(args.quick, args.tiny),
              "timing": timing(args.quick, args.tiny)}
    ok = all(v["status_mismatch"] <= max(3, v["cells"] // 10000) and
             v["max_rel_loss_diff"] < 1e-6 for v in report["agreement"].values())
    report["ok"] = bool(ok)
    text = json.dumps(report, indent=1)
    if args.json:
        with open(args.json, "w") as fh:
            fh.write(text)
    print(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
