"""Scalar chain networks f(x) = w_L ... w_1 x (depth L >= 2; L = 2 is the lecture's 1-1-1).

Loss (note the 1/2 and the loss scale c = ``loss_scale``)::

    E(w) = c/(2P) sum_p (y_p - pi x_p)^2,   pi = w_1 w_2 ... w_L.

c = 1 is fastgd's convention everywhere; c = 2 reproduces the lecture's unhalved
(1 - W1 W2)^2.  Every threshold in the learning rate eta scales as 1/c.

E depends on w only through the product pi, as a 1-D quadratic::

    E = E* + c/2 Sxx (pi - pi*)^2,  Sxx = mean x^2, Sxy = mean x y, pi* = Sxy / Sxx,

with E* = c/2 mean (y - pi* x)^2 the residual of the least-squares fit of the product:
E* = 0 when the samples can be fitted (one sample, or y_p / x_p the same for all p).
When they cannot (inconsistent ratios), the minima are those of the 1-D problem in pi,
and "converged" and the excess losses refer to E - E*.  Batch GD is called
converged only where the nearby minimum is linearly stable (lr NTK(w) <= 2), see
:func:`chain_gd`.

Gradient dE/dw_i = c r p_i with r = Sxx (pi - pi*) and p_i = prod_{j != i} w_j.
Hessian: H_ii = c Sxx p_i^2, H_ik = c (Sxx p_i p_k + r p_ik) (i != k, p_ik the product
without w_i and w_k).  The NTK (Gauss-Newton curvature) is c Sxx sum_i p_i^2; at a
minimum (r = 0) it equals the sharpness.

Facts (L = 2, tested in tests/test_chain.py):

* GD conserves nothing, but w1'^2 - w2'^2 = (w1^2 - w2^2)(1 - c^2 eta^2 e^2), e = Sxx(w1 w2 - pi*)
  (e = w1 w2 - y for one sample x = 1).
* Every minimum has sharpness c Sxx (w1^2 + w2^2) >= 2 c |Sxy|, so no minimum is stable
  once c eta |Sxy| >= 1 (c eta y >= 1 for x = 1).  Depth L: min sharpness
  c Sxx L |pi*|^(2 - 2/L).
* On the balanced line w1 = w2 = u (kept by GD) let z = eta c Sxx u^2 and b = eta c Sxy.
  Then z' = z (1 + b - z)^2: z = 2 + b is a fixed point (u' = -u), z > 2 + b grows
  without bound, and for 0 < b <= 2 the interval [0, 2 + b] is invariant (the maximum of
  z (1 + b - z)^2 below 1 + b is 4 (1 + b)^3 / 27 <= 2 + b).  With NTK0 = 2 c Sxx u^2 = 2z/eta
  the divergence boundary is exactly eta NTK0 = 4 + 2 c eta Sxy.  In terms of the
  initial sharpness lambda0 = c (3 Sxx u^2 - Sxy) (for u^2 >= Sxy/(2 Sxx)) it reads
  eta lambda0 = 6 + 2 c eta Sxy: the naive 2/lambda0 is far from the measured boundary.

Modules: :mod:`~fastgd.chain.model` (statistics, loss, gradient, Hessian, sharpness, NTK,
minima), :mod:`~fastgd.chain.runs` (:func:`chain_gd`, :func:`chain_sgd`),
:mod:`~fastgd.chain.sweep` (:func:`chain_sweep` on any engine, with checkpoints;
:func:`chain_load`), :mod:`~fastgd.chain.contract` (the typed kernel contract: spec,
inputs, job), :mod:`~fastgd.chain.launch` (outputs, the CPU/GPU launchers registered in
:mod:`fastgd.engine.table`, the chain's part of the engines), :mod:`~fastgd.chain.kernels`
(the Numba kernels).

Examples
--------
>>> import fastgd.chain as ch
>>> m = ch.chain_minima(2, loss_scale=2.0)              # the lecture's (1 - W1 W2)^2
>>> r = ch.chain_gd([0.5, 0.5], lr=0.1, steps=1000, loss_scale=2.0)
>>> r.status.name, round(float(r.w[0] * r.w[1]), 4) == m.product
('CONVERGED', True)

References: Lewkowycz et al., "The large learning rate phase of deep learning: the
catapult mechanism", 2020; Cohen et al., "Gradient Descent on Neural Networks Typically
Occurs at the Edge of Stability", ICLR 2021; Kreisler et al., ICML 2023.
"""

from fastgd.chain.model import (
    ChainMinima,
    chain_grad,
    chain_hessian,
    chain_loss,
    chain_minima,
    chain_ntk,
    chain_sharpness,
)
from fastgd.chain.runs import ChainRun, chain_gd, chain_sgd
from fastgd.chain.sweep import REGIONS, ChainSweepResult, chain_load, chain_sweep

__all__ = [
    "ChainMinima",
    "ChainRun",
    "ChainSweepResult",
    "REGIONS",
    "chain_gd",
    "chain_grad",
    "chain_hessian",
    "chain_load",
    "chain_loss",
    "chain_minima",
    "chain_ntk",
    "chain_sgd",
    "chain_sharpness",
    "chain_sweep",
]
