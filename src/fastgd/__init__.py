"""fastgd: when does gradient descent converge, how fast, and where does it blow up?

Fast, exact answers for the linear unit of LeCun's lecture "The Convergence of
Gradient Descent" (and scalar chain networks), from Numba kernels that run thousands
of learning rates as SIMD lanes.

Convention: squared-error losses carry a 1/2, E(w) = 1/(2P) sum_p (y_p - w.x_p)^2, so
that H = X^T X / P exactly and batch GD diverges above eta_max = 2/lambda_max.

Quick start
-----------
>>> import numpy as np
>>> import fastgd as fg
>>> X, y = fg.lecture_data()                      # the lecture's 100 points, d = 2
>>> s = fg.spectrum(X)
>>> round(s.lambda_max, 2), round(s.eta_max, 2)   # eta_max = 2 / lambda_max
(0.84, 2.38)
>>> fg.gd(X, y, lr=1.5, steps=500).status         # below eta_max: converges
<Status.CONVERGED: 1>
>>> fg.gd(X, y, lr=2.5, steps=500).diverged       # above: diverges (a result, not an error)
True
>>> res = fg.sweep("gd", lr=np.geomspace(0.5, 4, 16), data=[(X, y)], steps=500)
>>> round(float(res.critical_lr()[0]) / s.eta_max, 1)   # the observed boundary
1.0

Where to look: runs and sweeps of the linear unit here (``gd``, ``sgd``, ``sweep``,
``critical_lr``, ``load``; ``sample_order`` for the samples an SGD seed presents);
closed forms in :mod:`fastgd.theory`; the 1-1-1 chain in :mod:`fastgd.chain`; two-layer
networks in :mod:`fastgd.net`; figures in :mod:`fastgd.plot`; the ``fastgd`` command
(``fastgd --help``).
"""

from fastgd._vector import apply_opt_in as _apply_opt_in

_apply_opt_in()  # FASTGD_AVX512=1: 512-bit vectors, must happen before numba is imported

from fastgd.status import DEFAULT_ORDER, DEFAULT_TOL, GROWING_FACTOR, Status  # noqa: E402
from fastgd.validate import DataConversionWarning, FastGDTypeError, FastGDValueError
from fastgd.data import Dataset, gaussian_data, lecture_data, normalize, whiten
from fastgd.linear.run import Run, gd, sgd
from fastgd.linear.orders import sample_order
from fastgd.spectrum import Spectrum, hessian, spectrum
from fastgd import chain, net, theory
from fastgd.chain import chain_gd
from fastgd.linear.result import SweepInterrupted, SweepResult
from fastgd._load import load
from fastgd.linear.boundary import Boundary, critical_lr
from fastgd.linear.sweep import sweep
from fastgd._warmup import warmup
from fastgd.linear.problem import CacheInfo, cache_info, clear_cache

from fastgd.version import __version__ as __version__

__all__ = [
    "DEFAULT_ORDER",
    "DEFAULT_TOL",
    "GROWING_FACTOR",
    "Boundary",
    "CacheInfo",
    "DataConversionWarning",
    "Dataset",
    "FastGDTypeError",
    "FastGDValueError",
    "Run",
    "Spectrum",
    "Status",
    "chain",
    "cache_info",
    "chain_gd",
    "clear_cache",
    "net",
    "theory",
    "SweepInterrupted",
    "SweepResult",
    "critical_lr",
    "gaussian_data",
    "gd",
    "hessian",
    "lecture_data",
    "load",
    "normalize",
    "sample_order",
    "sgd",
    "spectrum",
    "sweep",
    "warmup",
    "whiten",
]
