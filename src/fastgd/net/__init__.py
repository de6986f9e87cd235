"""Two-layer networks: catapults, progressive sharpening and the edge of stability.

Model (width m, d inputs, scalar output)::

    f(x) = s a . phi(W x + b),   s = 1/sqrt(m) (param="ntk") or 1 (param="standard"),

phi in {"identity", "tanh", "relu"} (relu'(0) = 0), the bias b optional.  Loss (note
the 1/2: fastgd's convention everywhere, DESIGN.md)::

    E(theta) = 1/(2P) sum_p (y_p - f(x_p))^2.

The parameters are one flat vector theta of length N = m (d + 1 + bias): W row-major
(``W[j, i]`` at ``j d + i``), then b (with ``bias=True``), then a (:func:`net_unpack`).
Float64 only.  Learning rates are in the same units as 1/curvature: GD on a quadratic
with top Hessian eigenvalue lambda diverges above 2/lambda.

Curvature: exact Hessian-vector products (Pearlmutter's R-operator written out for this
model, a Numba kernel and a NumPy twin), the sharpness S = lambda_max(Hessian) by
Lanczos on HVPs, the NTK eigenvalue lambda0 = lambda_max(J J^T / P) (J the Jacobian of
the outputs w.r.t. theta; at a zero-loss point the Hessian is J^T J / P, with the same
non-zero eigenvalues) and the LeCun-Simard-Pearlmutter on-line estimate.

Status of a run (as for chains, :mod:`fastgd.chain`): CONVERGED when E <= tol x E(theta0)
-- the loss rule, which assumes E* = 0 (a network that can fit its data) -- or, with
``gtol`` > 0, when the full-batch gradient has fallen to |grad E| <= gtol x
|grad E(theta0)| -- the gradient rule, which also ends a run on a target the network
cannot fit (E* > 0: duplicated inputs with different labels, noise, a narrow network),
where the loss rule never fires and the run would otherwise stay BOUNDED to the end of
its budget (:attr:`NetRun.converged_by` says which rule fired; both are checked when the
loss is, at every step of GD and at the start of every SGD epoch, on the full batch) --
and, for batch GD, the point reached is linearly stable, lr x S <= 2 (1 + momentum);
DIVERGED when E or a parameter is
not finite or E > blowup x max(E(theta0), E(0)), E(0) = mean(y^2)/2 the loss of the zero
output (so a catapult's spike is not a divergence; the step is recorded, the parameters
reported are the last finite iterate and the loss is ``inf``); BOUNDED otherwise.
A *catapult* is a converged run whose loss rose above ``spike`` x E(theta0) on the way
(``max_loss_ratio > spike``; :meth:`NetSweepResult.regions`, the rule of
:meth:`fastgd.chain.ChainSweepResult.regions`).

Facts (tests/test_net.py): for wide networks (NTK parametrisation) GD with
lr < 2/lambda0 stays lazy (the sharpness barely moves); for 2/lambda0 < lr < lr_max the
loss spikes, then the run converges to a flatter point with sharpness < 2/lr (the
catapult); above lr_max it diverges.  With tanh on real data (standard
parametrisation) the sharpness rises during training (progressive sharpening) until it
reaches 2/lr and then hovers there (the edge of stability) while the loss keeps falling.

Modules: :mod:`~fastgd.net.model` (parameter layout, NumPy references, Lanczos),
:mod:`~fastgd.net.curvature` (loss, gradient, HVP, Hessian, sharpness, NTK at a point),
:mod:`~fastgd.net.runs` (:func:`net_gd`, :func:`net_sgd`), :mod:`~fastgd.net.sweep`
(:func:`net_sweep`; ``lr_unit="lambda0"`` for a grid of eta x lambda0, ``theta0`` for
given start parameters), :mod:`~fastgd.net.adaptive` (``optimizer="adam"``, "rmsprop",
"adagrad", warm-up and schedules, the preconditioned sharpness lambda_max(P^-1 H)),
:mod:`~fastgd.net.contract` (the kernel contract: ``NetSpec``, ``NetInputs``, ``NetJob``),
:mod:`~fastgd.net.launch` (chunks, outputs, the launcher registered in
:mod:`fastgd.engine.table`, the sweep's blocks on the engines, the final status rules),
:mod:`~fastgd.net.io` (``NetSweepResult.save`` / ``NetRun.save`` files; ``fastgd.load``),
:mod:`~fastgd.net.plot` (figures), :mod:`~fastgd.net.report` (short reprs),
:mod:`~fastgd.net.kernels` and :mod:`~fastgd.net.kernels_adaptive` (Numba).

References: Lewkowycz, Bahri, Dyer, Sohl-Dickstein, Gur-Ari, "The large learning rate
phase of deep learning: the catapult mechanism", 2020; Cohen, Kaur, Li, Kolter,
Talwalkar, "Gradient Descent on Neural Networks Typically Occurs at the Edge of
Stability", ICLR 2021; Pearlmutter, "Fast exact multiplication by the Hessian", Neural
Computation 1994; LeCun, Simard, Pearlmutter, NIPS 5, 1993.
"""

from fastgd.net.curvature import (
    net_grad,
    net_hessian,
    net_hvp,
    net_loss,
    net_ntk,
    net_sharpness,
    online_sharpness,
)
from fastgd.net.model import ACTIVATIONS, net_init, net_unpack
from fastgd.net.phase2 import net_adaptive_phase
from fastgd.net.plot import plot_net_eos, plot_net_phase, plot_net_warmup
from fastgd.net.runs import NetRun, net_gd, net_sgd
from fastgd.net.sweep import NetSweepResult, net_sweep

__all__ = [
    "ACTIVATIONS",
    "NetRun",
    "NetSweepResult",
    "net_adaptive_phase",
    "net_gd",
    "net_grad",
    "net_hessian",
    "net_hvp",
    "net_init",
    "net_loss",
    "net_ntk",
    "net_sgd",
    "net_sharpness",
    "net_sweep",
    "net_unpack",
    "online_sharpness",
    "plot_net_eos",
    "plot_net_phase",
    "plot_net_warmup",
]
