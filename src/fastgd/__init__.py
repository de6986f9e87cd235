"""fastgd: when does gradient descent converge, how fast, and where does it blow up?

Fast, exact answers for the linear unit of LeCun's lecture "The Convergence of
Gradient Descent" (and scalar chain networks), from Numba kernels that run thousands
of learning rates as SIMD lanes.

Convention: squared-error losses carry a 1/2, E(w) = 1/(2P) sum_p (y_p - w.x_p)^2, so
that H = X^T X / P exactly and batch GD diverges above eta_max = 2/lambda_max.
"""

from fastgd._vector import apply_opt_in as _apply_opt_in

_apply_opt_in()  # FASTGD_AVX512=1: 512-bit vectors, must happen before numba is imported

from fastgd.status import DEFAULT_ORDER, DEFAULT_TOL, GROWING_FACTOR, Status  # noqa: E402
from fastgd.validate import DataConversionWarning, FastGDTypeError, FastGDValueError
from fastgd.data import Dataset, gaussian_data, lecture_data, normalize, whiten
from fastgd.linear.run import Run, gd, sgd
from fastgd.spectrum import Spectrum, hessian, spectrum
from fastgd import chain, net, theory
from fastgd.chain import chain_gd
from fastgd.linear.result import SweepInterrupted, SweepResult, load
from fastgd.linear.boundary import Boundary, critical_lr
from fastgd.linear.sweep import sweep
from fastgd._warmup import warmup

from fastgd.version import __version__ as __version__

__all__ = [
    "DEFAULT_ORDER",
    "DEFAULT_TOL",
    "GROWING_FACTOR",
    "Boundary",
    "DataConversionWarning",
    "Dataset",
    "FastGDTypeError",
    "FastGDValueError",
    "Run",
    "Spectrum",
    "Status",
    "chain",
    "chain_gd",
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
    "sgd",
    "spectrum",
    "sweep",
    "warmup",
    "whiten",
]
