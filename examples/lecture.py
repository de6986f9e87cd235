"""The lecture's numbers from the Python API (the CLI's `fastgd lecture` draws the slides).

Run:  python examples/lecture.py        (seconds)
"""

import numpy as np

import fastgd as fg

X, y = fg.lecture_data()
s = fg.spectrum(X)
print(f"lambda = {s.eigenvalues.round(4)}, eta_opt = {s.eta_opt:.3g}, eta_max = {s.eta_max:.3g}")
for lr in (1.5, 2.5):
    r = fg.gd(X, y, lr, 1000, w0=[-1.0, 0.0])
    print(f"batch GD eta = {lr}: {r.status.name} "
          f"(step {r.steps_to_tol if r.converged else r.diverged_at}); "
          f"multipliers {s.multipliers(lr).round(3)}")
print(f"observed boundary: {fg.critical_lr(X, y).lr:.7f} = 2/0.84")
r = fg.sgd(X, y, 0.2, 30, w0=[-1.0, 0.0], order="shuffle", tol=0.0)
print(f"SGD eta = 0.2 per sample: excess loss per epoch {np.round(r.losses[:6] - r.losses.min(), 4)}")
print(f"  ~ batch rate {0.2 * len(y):g} per epoch; batch GD at 20: "
      f"{fg.gd(X, y, 20.0, 100).status.name}")
for name, Xv in (("raw", X), ("normalized", fg.normalize(X)), ("whitened", fg.whiten(X))):
    sv = fg.spectrum(Xv)
    r = fg.gd(Xv, y, sv.eta_minimax, 10000)
    print(f"{name:>10}: kappa {sv.condition_number:6.3g}, {r.steps_to_tol} steps at "
          f"eta = 2/(lmax + lmin)")
try:
    from fastgd import chain
except ImportError:
    chain = None
if chain is not None:
    for w0, lr in (((0.1, 2.0), 0.1), ((0.1, 2.0), 0.3), ((0.1, 2.0), 0.45)):
        r = chain.chain_gd(w0, lr, 2000, loss_scale=2.0)
        print(f"1-1-1, (1 - w1 w2)^2, w0 = {w0}, eta = {lr}: {r.status.name}, "
              f"sharpness {r.lambda0:.3g} -> {r.sharpness:.3g}, max loss ratio {r.max_loss_ratio:.3g}")
