"""Your own data: scikit-learn's datasets, raw, standardised and whitened.

Run:  python examples/real_data.py [OUTDIR]      (about half a minute on 2 cores; needs
      scikit-learn: pip install 'fastgd[sklearn]')

For diabetes (d = 10), breast cancer (d = 30), wine (d = 13) and iris (d = 4), each raw,
standardised (``fg.normalize``) and whitened (``fg.whiten``), it prints the spectrum of
H = XᵀX/P, the observed SGD boundary (half of the seeds diverge within the budget,
``fg.critical_lr``) against the mean-square limit of ``fastgd.theory.limits``, and
writes ``real_data.png``: the spectra, GD and SGD phase diagrams of diabetes with one
named row per variant on a grid relative to each row's η_max = 2/λ_max
(``lr_unit="eta_max"``), and the SGD boundaries of all twelve against theory.
"""

from __future__ import annotations

import sys
import time
import types
from pathlib import Path

import numpy as np

import fastgd as fg

VARIANTS = ("raw", "standardised", "whitened")


def load():
    """{dataset: (X, y)} from scikit-learn, inputs and targets as float64."""
    from sklearn import datasets as D

    raw = {"diabetes": D.load_diabetes(return_X_y=True, scaled=False),
           "breast cancer": D.load_breast_cancer(return_X_y=True),
           "wine": D.load_wine(return_X_y=True),
           "iris": D.load_iris(return_X_y=True)}
    return {k: (np.asarray(X, float), np.asarray(y, float)) for k, (X, y) in raw.items()}


def variants(X, y):
    return {"raw": (X, y), "standardised": (fg.normalize(X), y), "whitened": (fg.whiten(X), y)}


def sgd_boundaries(data):
    """Observed SGD boundary and the mean-square limit of every dataset and variant."""
    from fastgd import theory

    rows = []
    for name, (X, y) in data.items():
        for v, (Xv, yv) in variants(X, y).items():
            t0 = time.perf_counter()
            s = fg.spectrum(Xv)
            lim = theory.limits(Xv, batch_size=1, order="shuffle")
            big = Xv.shape[1] > 20  # breast cancer: a smaller budget keeps this quick
            b = fg.critical_lr(Xv, yv, method="sgd", epochs=10 if big else 20,
                               seeds=8 if big else 16, rtol=1e-2)
            rows.append(dict(name=f"{name} {v}", kappa=s.condition_number,
                             lam=s.lambda_max, eta_max=s.eta_max, ms=lim["sgd_ms"],
                             observed=b.lr, seconds=time.perf_counter() - t0))
    return rows


def print_table(rows):
    print(f"{'data':<26} {'κ':>9} {'λ_max':>9} {'2/λ_max':>10} {'SGD ms':>10} "
          f"{'SGD obs':>10} {'obs/ms':>7} {'time':>6}")
    for r in rows:
        print(f"{r['name']:<26} {r['kappa']:>9.3g} {r['lam']:>9.3g} {r['eta_max']:>10.4g} "
              f"{r['ms']:>10.4g} {r['observed']:>10.4g} {r['observed'] / r['ms']:>7.3f} "
              f"{r['seconds']:>5.1f}s")


def plot_spectra(ax, data):
    """Eigenvalues of H for every dataset and variant: one row each, log scale."""
    from fastgd.plot import CYCLE

    names, k = [], 0
    for i, (name, (X, y)) in enumerate(data.items()):
        for v, (Xv, _) in variants(X, y).items():
            lam = fg.spectrum(Xv).eigenvalues
            lam = lam[lam > 1e-12 * lam[-1]]
            ax.plot(lam, np.full(lam.size, k), ls="none", marker="|", ms=11, mew=1.6,
                    color=CYCLE[i % len(CYCLE)], gid=f"spectrum{k}")
            names.append(f"{name} {v}")
            k += 1
    ax.set_xscale("log")
    ax.set_yticks(range(len(names)), labels=names)
    ax.set_ylim(len(names) - 0.5, -0.5)
    ax.set_xlabel("eigenvalues λ of H = XᵀX/P")
    ax.set_title("spectra: standardising and whitening shrink κ = λ$_{max}$/λ$_{min}$",
                 fontsize="medium")
    ax.grid(axis="x", color="0.9")


def main(out="."):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fastgd.plot import plot_boundary, plot_phase_diagram

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    data = load()
    diabetes = variants(*data["diabetes"])
    # one relative grid serves all three variants: multiples of each one's eta_max
    gd = fg.sweep("gd", lr=np.geomspace(0.01, 4, 96), lr_unit="eta_max", data=diabetes,
                  steps=3000)
    sgd = fg.sweep("sgd", lr=np.geomspace(0.003, 4, 64), lr_unit="eta_max", data=diabetes,
                   epochs=30, seeds=4)
    print(gd.summary())
    print(sgd.summary())
    rows = sgd_boundaries(data)
    print_table(rows)

    fig, axs = plt.subplots(2, 2, figsize=(14, 11), layout="constrained")
    plot_spectra(axs[0, 0], data)
    plot_phase_diagram(gd, ax=axs[0, 1], title="diabetes, batch GD for 3000 steps")
    plot_phase_diagram(sgd, ax=axs[1, 0], title="diabetes, SGD for 30 epochs")
    nan = np.full(len(rows), np.nan)
    boundary = types.SimpleNamespace(
        method="sgd", names=tuple(r["name"] for r in rows), meta={"spec": {}},
        condition=np.array([r["kappa"] for r in rows]), gd_limit=nan,
        momentum_limit=nan, sgd_ms_limit=np.array([r["ms"] for r in rows]), sgd_as_limit=nan)
    plot_boundary(boundary, ax=axs[1, 1], observed=np.array([r["observed"] for r in rows]),
                  title="SGD: observed boundary vs the mean-square limit")
    path = out / "real_data.png"
    fig.savefig(path, dpi=110)
    print(f"wrote {path} in {time.perf_counter() - t0:.1f} s")
    return path


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
