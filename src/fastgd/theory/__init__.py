"""Closed forms and stability limits that every fastgd simulation is checked against.

Convention (everywhere in fastgd): the squared-error loss carries a 1/2,
E(w) = 1/(2P) sum_p (y_p - w.x_p)^2, so the Hessian is H = X^T X / P and batch GD
diverges above eta_max = 2/lambda_max (LeCun, Bottou, Orr, Mueller, "Efficient
BackProp", 1998, eqs. 20-39).  With ``bias=True`` a constant input 1 is appended and
H is the augmented second-moment matrix.

What is here
------------
* **Batch GD, exactly** (:func:`gd_trajectory`, :func:`gd_loss`, :func:`regimes`,
  :func:`gd_steps_to_tol`, :func:`eta_opt`, :func:`minimax_lr`): in the eigenbasis
  of H the error along direction i is multiplied by 1 - eta*lambda_i per step.
* **Momentum** (:func:`momentum_lr_max`, :func:`momentum_rate`,
  :func:`optimal_heavy_ball`): per eigenvalue a 2x2 companion matrix, stable by the
  Jury conditions.
* **SGD, mean square** (:func:`sgd_ms_operator`, :func:`sgd_ms_critical_lr`,
  :func:`sgd_ms_error`, :func:`sgd_stationary_loss`): the second moment
  E[(w - w*)(w - w*)^T] evolves by a linear map T; it stays bounded iff rho(T) < 1.
* **SGD, typical runs** (:func:`sgd_as_critical_lr`): the almost-sure boundary, where
  the top Lyapunov exponent of the random product of per-step matrices crosses 0,
  estimated by simulation with the lane kernels, with a confidence interval.
* **lambda_max without H** (:func:`lsp_lambda_max`, :func:`power_lambda_max`).
* **Adam / RMSProp with a frozen preconditioner** (:func:`adaptive_lr_max`,
  :func:`preconditioned_sharpness`, :func:`adaptive_threshold`): stable iff
  lambda_max(P^-1 H) < (2 + 2 beta1)/(eta (1 - beta1)) (Cohen et al. 2022).
* **A summary** for reports (:func:`limits`).

Modules: :mod:`~fastgd.theory.gd`, :mod:`~fastgd.theory.momentum`,
:mod:`~fastgd.theory.mean_square`, :mod:`~fastgd.theory.almost_sure` (with
:mod:`~fastgd.theory.lyapunov`), :mod:`~fastgd.theory.lambda_max`,
:mod:`~fastgd.theory.summary`, :mod:`~fastgd.theory.adaptive`; every public name is re-exported here.

Two SGD boundaries: read this before using either
-------------------------------------------------
SGD on least squares has *two* different divergence boundaries in the learning rate,
and they are not the same number:

1. The **mean-square** boundary (:func:`sgd_ms_critical_lr`): above it the *average*
   of ||w_t - w*||^2 over runs grows without bound.
2. The **almost-sure** boundary (:func:`sgd_as_critical_lr`): above it a *typical
   single run* grows without bound (the top Lyapunov exponent of the random matrix
   product is positive).

The mean-square boundary is always the lower one (Jensen: E log ||e|| <= 1/2 log
E ||e||^2).  **Between the two, every single run stays finite and most runs even
converge, yet the mean square is infinite**: the distribution of ||w_t - w*|| is
heavy-tailed, a few runs show rare, huge spikes, and averages over runs are dominated
by those rare runs and never settle.  On two-cluster data like the lecture's the two
boundaries differ by tens of percent; on Gaussian inputs by much more.  So: a
learning rate between the two is *not* "diverging" for the run you are watching, and
it is *not* safe either (its mean-square loss is infinite and a longer run will spike).
A simulated "half of the seeds diverged within T steps" boundary (``critical_lr`` with
``method="sgd"``) lies above the mean-square limit but is *not* bounded by the
almost-sure one: runs just above it grow slowly and may not reach the blowup threshold
within the budget, so the budget boundary is biased upward (on scikit-learn's digits
it lies about 9 % above the almost-sure limit with 100 epochs).

References
----------
Y. LeCun, L. Bottou, G. B. Orr, K.-R. Mueller, "Efficient BackProp", in Neural
Networks: Tricks of the Trade, LNCS 1524, Springer 1998.
Y. LeCun, P. Simard, B. Pearlmutter, "Automatic Learning Rate Maximization by On-Line
Estimation of the Hessian's Eigenvectors", NIPS 5, 1993.
L. Wu, C. Ma, W. E, "How SGD Selects the Global Minima in Over-parameterized
Learning: A Dynamical Stability Perspective", NeurIPS 2018.
R. Mulayoff, T. Michaeli, "Exact Mean Square Linear Stability Analysis for SGD",
COLT 2024.
B. T. Polyak, "Some methods of speeding up the convergence of iteration methods",
USSR Comput. Math. Math. Phys. 4, 1964.
J. Cohen et al., "Adaptive Gradient Methods at the Edge of Stability", 2022.

Examples
--------
>>> import fastgd as fg
>>> X = fg.lecture_data().X
>>> round(fg.theory.eta_max(X) * 0.84, 12)
2.0
"""

from __future__ import annotations

from fastgd.theory.adaptive import adaptive_lr_max, adaptive_threshold, preconditioned_sharpness
from fastgd.theory.almost_sure import ASBoundary, sgd_as_critical_lr
from fastgd.theory.gd import (
    Regimes,
    contraction,
    eta_max,
    eta_opt,
    gd_loss,
    gd_steps_to_tol,
    gd_trajectory,
    minimax_lr,
    regime,
    regimes,
)
from fastgd.theory.lambda_max import LSPEstimate, PowerEstimate, lsp_lambda_max, power_lambda_max
from fastgd.theory.lyapunov import _epoch_product_log_rho  # noqa: F401 (tests/test_friendly.py)
from fastgd.theory.mean_square import (
    MSPrediction,
    sgd_ms_critical_lr,
    sgd_ms_error,
    sgd_ms_operator,
    sgd_stationary_loss,
)
from fastgd.theory.momentum import HeavyBall, momentum_lr_max, momentum_rate, optimal_heavy_ball
from fastgd.theory.summary import limits

__all__ = [
    "adaptive_lr_max",
    "adaptive_threshold",
    "preconditioned_sharpness",
    "ASBoundary",
    "HeavyBall",
    "LSPEstimate",
    "MSPrediction",
    "PowerEstimate",
    "Regimes",
    "contraction",
    "eta_max",
    "eta_opt",
    "gd_loss",
    "gd_steps_to_tol",
    "gd_trajectory",
    "limits",
    "lsp_lambda_max",
    "minimax_lr",
    "momentum_lr_max",
    "momentum_rate",
    "optimal_heavy_ball",
    "power_lambda_max",
    "regime",
    "regimes",
    "sgd_as_critical_lr",
    "sgd_ms_critical_lr",
    "sgd_ms_error",
    "sgd_ms_operator",
    "sgd_stationary_loss",
]
