"""Phase-diagram sweep: batch GD with and without momentum on 64 x 48 problems.

Run:  python examples/phase_diagram.py [OUTDIR]      (a few seconds)
Writes phase_gd.npz / .png and phase_momentum.png, prints a summary per dataset.
"""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import fastgd as fg
from fastgd.plot import plot_phase_diagram

out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
out.mkdir(parents=True, exist_ok=True)
lr = np.geomspace(0.01, 40, 128)
kappa = np.geomspace(1, 1e4, 48)

fig, axs = plt.subplots(1, 2, figsize=(13, 5.8), layout="constrained", sharey=True)
for ax, beta in zip(axs, (0.0, 0.9), strict=True):
    res = fg.sweep("gd", lr=lr, condition=kappa, steps=1000, momentum=beta)
    print(f"momentum {beta}: {np.mean(res.converged):.0%} converged, "
          f"observed wall {np.nanmedian(res.critical_lr()):.4g} "
          f"(theory {np.nanmedian(res.momentum_limit if beta else res.gd_limit):.4g})")
    plot_phase_diagram(res, ax=ax, title=f"batch GD, momentum β = {beta:g}, 1000 steps")
    if beta == 0.0:
        res.save(out / "phase_gd.npz")
fig.savefig(out / "phase_gd_momentum.png", dpi=120)
print(f"wrote {out / 'phase_gd_momentum.png'} and {out / 'phase_gd.npz'}")
