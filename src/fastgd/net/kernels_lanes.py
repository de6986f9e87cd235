"""Per-lane helpers of the network kernels (:mod:`fastgd.net.kernels`): a lane's status
at a check (:func:`lane_status`), the squared gradient norms (:func:`grad_norm2`), one
heavy-ball step of every lane (:func:`_step`) and the sample at a position of an epoch
(:func:`_sample`).
"""

import numpy as np

from fastgd.kernels import CONVERGED, ORDER_REPLACEMENT, ORDER_SHUFFLE
from fastgd.kernels.jit import jit
from fastgd.kernels.rng import hash4, randbelow
from fastgd.kernels.steps import check, heavy_ball


@jit
def lane_status(x, thc, thd, g2, thg, gtol):
    """The status of a lane at a check: :func:`.steps.check` of its loss ``x`` (E* = 0:
    CONVERGED at ``thc`` = tol E(theta0), DIVERGED above ``thd`` or not finite), then, with
    ``gtol`` > 0, CONVERGED also when its squared full-batch gradient norm ``g2`` is at or
    below ``thg`` = gtol^2 |grad E(theta0)|^2 (the same check on g2, which a non-realizable
    target, E* > 0, reaches where the loss rule never does)."""
    st = check(x, thc, thd)
    if st == 0 and gtol > 0.0 and check(g2, thg, np.inf) == CONVERGED:
        return CONVERGED
    return st


@jit
def grad_norm2(G, g2):
    """``g2[l]`` = sum_n G[n, l]^2 (parameters in order, lanes innermost)."""
    for l in range(G.shape[1]):
        g2[l] = 0.0
    for n in range(G.shape[0]):
        for l in range(G.shape[1]):
            g2[l] += G[n, l] * G[n, l]


@jit
def _step(T, B, G, lre, beta, okp, Tp, save):
    """One heavy-ball step of every lane (:func:`.steps.heavy_ball`; beta = 0: plain
    GD / SGD, theta <- theta - lr g, which is the same arithmetic with the buffer left
    out); okp[l] turns False when a parameter of lane l is not finite.  With ``save``
    the parameters before the step are copied to ``Tp`` (the rollback of a divergence)
    in the same pass."""
    for n in range(T.shape[0]):
        if save:
            for l in range(T.shape[1]):
                Tp[n, l] = T[n, l]
        if beta == 0.0:
            for l in range(T.shape[1]):
                v = T[n, l] - lre[l] * G[n, l]
                T[n, l] = v
                okp[l] &= abs(v) < np.inf
        else:
            for l in range(T.shape[1]):
                v, B[n, l] = heavy_ball(T[n, l], G[n, l], B[n, l], lre[l], beta, False)
                T[n, l] = v
                okp[l] &= abs(v) < np.inf


@jit
def _sample(order, perm, k0, k1, t, pos, P):
    """The sample at position ``pos`` of epoch ``t`` in the order ``order``."""
    if order == ORDER_SHUFFLE:
        return perm[pos]
    if order == ORDER_REPLACEMENT:
        return randbelow(hash4(k0, k1, t, pos), P)
    return pos
