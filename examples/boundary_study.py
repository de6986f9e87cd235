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
import matplotlib.ticker
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
fig, ax = plt.subplots(figsize=(6.4, 5.2), layout="constrained")
ax.plot(r[:, 0], r[:, 1], "k-", lw=2.5, label="2/λ$_{max}$ (batch GD theory)", zorder=2)
ax.plot(r[:, 0], r[:, 2], "o", ms=8, mfc="none", mew=1.6, color="#0072B2",
        label="GD observed (growth-rate bisection)", zorder=3, clip_on=False)
ax.plot(r[:, 0], r[:, 3], "-.", color="#009E73", label="SGD mean-square limit")
ax.plot(r[:, 0], r[:, 4], "s", mfc="none", color="#D55E00", label="SGD: half of 32 seeds diverge")
# room above the GD points (λ_max = 1: all at 2) and plain tick labels, not 2×10⁰
finite = r[:, 1:][np.isfinite(r[:, 1:]) & (r[:, 1:] > 0)]
ax.set_ylim(finite.min() / 1.6, finite.max() * 1.8)
ax.set(xscale="log", yscale="log", xlabel="condition number κ (λ$_{max}$ = 1)",
       ylabel="critical learning rate η$_c$", title="divergence boundary: simulation vs theory")
ax.set_xlim(r[0, 0] / 1.5, r[-1, 0] * 1.5)
plain = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}")
for axis in (ax.xaxis, ax.yaxis):
    axis.set_major_formatter(plain)
ax.yaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(
    lambda v, _: f"{v:g}" if round(v / 10 ** np.floor(np.log10(v))) in (2, 5) else ""))
ax.grid(which="both", color="0.92", lw=0.6)
ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2,
          frameon=False)
fig.savefig(out / "boundary_study.png", dpi=120)
print(f"wrote {out / 'boundary_study.png'}")
