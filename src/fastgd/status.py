"""Status codes and the one set of defaults of runs, sweeps and the CLI."""

from __future__ import annotations

import enum

import numpy as np

from fastgd import kernels as K

ORDERS = {"cyclic": K.ORDER_CYCLIC, "shuffle": K.ORDER_SHUFFLE,
          "replacement": K.ORDER_REPLACEMENT}

#: The one set of defaults of runs (:func:`fastgd.gd`, :func:`fastgd.sgd`), sweeps,
#: :func:`fastgd.critical_lr` and the CLI, so that a run and the matching sweep cell agree
#: with default arguments.  SGD presents the samples in a fresh random permutation every
#: epoch ("shuffle": what SGD means in practice); ``order="cyclic"`` is 0..P-1 every epoch,
#: scikit-learn's ``SGDRegressor(shuffle=False)`` bit for bit.
DEFAULT_ORDER = "shuffle"
#: Convergence tolerance on the excess loss relative to its initial value.
DEFAULT_TOL = 1e-8
#: A run that neither converged nor diverged but whose final loss exceeds
#: ``GROWING_FACTOR`` x max(initial loss, loss at w = 0) is flagged ``growing``: BOUNDED
#: by the budget, yet its loss grew by orders of magnitude (it would diverge with a
#: longer budget, or is a catapult still in flight).
GROWING_FACTOR = 1e3


class Status(enum.IntEnum):
    """Outcome of a run (the integer codes stored in result arrays).

    * ``BOUNDED`` (0): neither converged nor diverged within the budget (slow
      convergence, SGD's stationary fluctuation, or a bounded oscillation).
    * ``CONVERGED`` (1): the excess loss *of the weights returned* (from residuals, on
      the float64 data) <= tol x initial excess loss.
    * ``DIVERGED`` (2): a weight or the loss is non-finite, or the loss > blowup x
      max(initial loss, loss at w = 0); ``blowup=inf`` still counts non-finite values.

    Statuses are exact up to a relative ~d eps kappa(X) in the excess compared with the
    tolerance (kappa(X) = sqrt(kappa(H))): guaranteed for kappa(H) up to 1e16 in
    float64; float32 sweeps are checked on the float64 data as well.
    * ``NOT_RUN`` (-1): a sweep cell that was not computed (interrupted sweep).

    Examples
    --------
    >>> import fastgd as fg
    >>> fg.Status(2).name, int(fg.Status.CONVERGED)
    ('DIVERGED', 1)
    """

    NOT_RUN = -1
    BOUNDED = K.BOUNDED
    CONVERGED = K.CONVERGED
    DIVERGED = K.DIVERGED

    def __str__(self):  # print(r.status) -> Status.CONVERGED, not 1
        return f"{type(self).__name__}.{self.name}"

    def __format__(self, spec):
        return str(self) if not spec else format(int(self), spec)


# NumPy looks these two up on the class of an operand (``array == Status.X``,
# ``np.where(m, Status.X, a)``); found here, the lookup runs no Python code, where on
# Python 3.11 EnumType.__getattr__ would run and a Ctrl-C arriving in it is lost (numpy
# gh-14801).  ndarray's own methods mean "no override": results are unchanged.
Status.__array_ufunc__ = np.ndarray.__array_ufunc__
Status.__array_function__ = np.ndarray.__array_function__
