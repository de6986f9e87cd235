"""The per-lane step math, once: scalars in, scalars out.

The CPU lane kernels (:mod:`fastgd.linear.kernels`, :mod:`fastgd.chain.kernels`,
:mod:`fastgd.net.kernels`) call the ``jit`` versions inside their loops over lanes (LLVM
inlines them; the loops still vectorise); the one-run-per-thread kernels of
:mod:`fastgd.linear.scalar` (CPU and ``numba.cuda``) are compiled with these same Python
functions (:data:`PY`, see :func:`fastgd.linear.scalar.compile_for`).  A change to a
status rule, a threshold or the momentum update is therefore made here and nowhere else.
"""

import math

from fastgd.kernels import CONVERGED, DIVERGED
from fastgd.kernels.jit import jit


def _check(x, thc, thd):
    """The status an excess loss ``x`` decides: DIVERGED when it is above the divergence
    threshold ``thd`` or not finite (NaN, or inf even under ``blowup=inf``), CONVERGED
    when at or below the tolerance ``thc``, else 0 (keep going)."""
    if (not (x <= thd)) | (x == math.inf):
        return DIVERGED
    if x <= thc:
        return CONVERGED
    return 0


def _thresholds(es, x0, c0, tol, blowup):
    """(thc, thd): a run converges when its excess loss falls to tol x its initial excess
    ``x0``, and diverges when its loss E* + excess passes blowup x max(E(w0), E(0))
    (``es`` = E*, ``c0`` = E(0): a catapult that settles is not a divergence)."""
    return tol * x0, blowup * max(es + x0, c0) - es


def _heavy_ball(z, g, buf, lr, beta, nesterov):
    """One momentum step (PyTorch ``SGD``, dampening 0) of one component with gradient
    ``g``: buf' = beta buf + g, z' = z - lr (g + beta buf') (Nesterov) or z - lr buf';
    beta = 0 is plain gradient descent.  Returns (z', buf')."""
    bf = beta * buf + g
    if nesterov:
        return z - lr * (g + beta * bf), bf
    return z - lr * bf, bf


#: the plain Python functions, for compilation to other targets (:mod:`.scalar`)
PY = {"check": _check, "thresholds": _thresholds, "heavy_ball": _heavy_ball}

check = jit(_check)
thresholds = jit(_thresholds)
heavy_ball = jit(_heavy_ball)
