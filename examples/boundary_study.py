"""Boundary study: observed critical learning rate vs theory, GD and per-sample SGD.

Run:  python examples/boundary_study.py [OUTDIR]     (well under a minute)
For Gaussian problems of growing condition number: the GD boundary by growth-rate
bisection (lands on 2/lambda_max), and SGD's "half of 32 seeds diverged in 100 epochs"
boundary next to its mean-square limit (fastgd.theory, when available).
"""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import fastgd as fg

out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
out.mkdir(parents=True, exist_ok=True)
try:
    from fastgd import theory
except ImportError:  # theory module not available
    theory = None

kappas = np.geomspace(1, 1e3, 7)
rows = []
for k in kappas:
    X, y = fg.gaussian_data(100, np.geomspace(1 / k, 1, 2), seed=0)
    s = fg.spectrum(X)
    gd_c = fg.critical_lr(X, y).lr
    sgd_c = fg.critical_lr(X, y, method="sgd", seeds=32, epochs=100).lr
    ms = theory.sgd_ms_critical_lr(X, 1, replacement=False) if theory else np.nan
    rows.append((k, s.eta_max, gd_c, ms, sgd_c))
    print(f"kappa {k:8.3g}: 2/lambda_max {s.eta_max:.6g}  GD observed {gd_c:.6g}  "
          f"SGD mean-square {ms:.4g}  SGD half-diverged {sgd_c:.4g}")
r = np.array(rows)
fig, ax = plt.subplots(figsize=(6.4, 4.8), layout="constrained")
ax.plot(r[:, 0], r[:, 1], "k-", label="2/λ$_{max}$ (batch GD theory)")
ax.plot(r[:, 0], r[:, 2], "o", mfc="none", color="#0072B2", label="GD observed")
ax.plot(r[:, 0], r[:, 3], "-.", color="#009E73", label="SGD mean-square limit")
ax.plot(r[:, 0], r[:, 4], "s", mfc="none", color="#D55E00", label="SGD: half of 32 seeds diverge")
ax.set(xscale="log", yscale="log", xlabel="condition number κ", ylabel="critical learning rate η$_c$",
       title="divergence boundary: simulation vs theory")
ax.legend(fontsize="small")
fig.savefig(out / "boundary_study.png", dpi=120)
print(f"wrote {out / 'boundary_study.png'}")
