"""The linear model's kernel contract: the input arrays of its kernels, as one typed value.

:class:`LinearInputs` holds every array a linear grid kernel reads (the datasets'
statistics, the learning rates, the initial weights, the seeds' keys), ``None`` where
the method does not use one; :func:`linear_inputs` builds it from prepared problems
(:class:`fastgd.linear.problem.Problem`), the rates and the seeds, and
:func:`fastgd.linear.table.launch` is the one place that turns it into the kernels'
argument list.  :class:`LinearJob` adds the kernel spec and the grid's shape: what the
engines (:mod:`fastgd.engine.executors`) ship to a worker and what keys a checkpoint.

Convention: E(w) = 1/(2P) sum_p (y_p - w.x_p)^2, H = X^T X / P = R^T R.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from fastgd.engine.table import writable

__all__ = ["LinearInputs", "LinearJob", "lam_bounds", "linear_inputs"]


@dataclass(frozen=True, eq=False)
class LinearInputs:
    """The array inputs of the linear kernels, stacked over datasets, rates and seeds.

    Attributes
    ----------
    R : (n_data, d, d) array
        Square roots of the Hessians, H = R^T R (:func:`fastgd.linear.problem.hessian_roots`).
    wstar : (n_data, d) array
        Least-squares solutions w*.
    estar : (n_data,) array
        Minimum losses E(w*) (with the ½ convention).
    c0 : (n_data,) array
        max(E(w0), E(0)) of each dataset: the scale of the blow-up threshold.
    lr : (n_lr,) or (n_data, n_lr) array
        Learning rates, one per lane: one grid for every dataset, or one row per dataset
        (``sweep(lr_unit="eta_max")``; the kernels read row di of ``lr.ravel()``).
    beta : (n_lr,) array
        Momentum coefficients, one per lane.
    w0 : (d,) array
        Initial weights.
    X, y : (n_data, P_max, d) and (n_data, P_max) arrays, or None
        SGD: the samples, zero-padded to the largest P.
    P : (n_data,) int64 array, or None
        SGD: samples per dataset.
    bounds : (n_data, 2) array, or None
        SGD: bounds on the eigenvalues of each H (:func:`lam_bounds`); None: computed
        from R when the kernel is launched.
    keys : (n_seed, 2) int64 array, or None
        SGD: the key of each seed's sample order.
    lam, V : (n_data, d) and (n_data, d, d) arrays, or None
        Batch GD: the eigenbasis of each H (:func:`fastgd.linear.kernels.eig_basis`, in
        which the GD kernels iterate), computed once for the grid; None: computed from
        R when the kernel is launched (every block of a sweep did: 4 x 1.9 ms of a
        d = 100 sweep of 64 datasets).

    Examples
    --------
    >>> import numpy as np
    >>> from fastgd.linear.contract import LinearInputs
    >>> inp = LinearInputs(R=np.eye(2)[None], wstar=np.zeros((1, 2)), estar=np.zeros(1),
    ...                    c0=np.ones(1), lr=np.array([0.5, 1.0]), beta=np.zeros(2),
    ...                    w0=np.ones(2))
    >>> inp.take(lrs=[1]).lr
    array([1.])
    """

    R: np.ndarray
    wstar: np.ndarray
    estar: np.ndarray
    c0: np.ndarray
    lr: np.ndarray
    beta: np.ndarray
    w0: np.ndarray
    X: np.ndarray | None = None
    y: np.ndarray | None = None
    P: np.ndarray | None = None
    bounds: np.ndarray | None = None
    keys: np.ndarray | None = None
    lam: np.ndarray | None = None
    V: np.ndarray | None = None

    #: fields indexed by dataset (a chunk row's first column), by seed (second), by rate
    PER_DATA: ClassVar[tuple] = ("R", "wstar", "estar", "c0", "X", "y", "P", "bounds",
                                 "lam", "V")
    PER_SEED: ClassVar[tuple] = ("keys",)
    PER_LR: ClassVar[tuple] = ("lr", "beta")

    def take(self, data=None, seeds=None, lrs=None) -> LinearInputs:
        """The inputs restricted to the datasets ``data``, the seeds ``seeds`` and the
        rates ``lrs`` (index arrays or slices; None keeps all), as C-contiguous arrays
        (views where the selection is already contiguous)."""
        change = {}
        per_data = self.PER_DATA + (("lr",) if self.lr.ndim == 2 else ())  # a grid per row
        for names, idx in ((per_data, data), (self.PER_SEED, seeds), (self.PER_LR, lrs)):
            if idx is None:
                continue
            for k in names:
                v = change.get(k, getattr(self, k))
                if v is not None:  # rates: the last axis
                    change[k] = np.ascontiguousarray(v[..., idx] if names is self.PER_LR
                                                     else v[idx])
        return dataclasses.replace(self, **change)

    def writable(self) -> LinearInputs:
        """The inputs with every read-only array copied (:func:`fastgd.engine.table.writable`)."""
        return writable(self)


def lam_bounds(R):
    """(n_data, 2): a lower and an upper bound of the eigenvalues of H = R^T R for each
    R of the stack (the SGD kernels' cheap per-epoch check), in R's dtype.

    R = diag(s) V^T / sqrt(P) (:func:`fastgd.linear.problem.hessian_roots`) has
    orthogonal rows whose squared norms are the eigenvalues; the bounds are the extreme
    ones with a relative margin (1e-6, float32: 1e-3) that covers their rounding, that
    of |w - w*|^2 and of the exact excess.  The lower bound is 0 (every check exact)
    where kappa(H) > 1e7 (float32: 10), beyond which the rounding of the exact excess
    could cross it.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgd.linear.contract import lam_bounds
    >>> lam_bounds(np.diag([1.0, 2.0])[None]).round(3)
    array([[1., 4.]])
    """
    Rd = np.asarray(R, dtype=np.float64)
    lam = np.einsum("nij,nij->ni", Rd, Rd)
    f32 = R.dtype == np.float32
    margin, kmax = (1e-3, 10.0) if f32 else (1e-6, 1e7)
    top, bottom = lam.max(axis=1), lam.min(axis=1)
    hi = top * (1.0 + margin)
    lo = np.where(bottom * kmax >= top, bottom * (1.0 - margin), 0.0)
    return np.ascontiguousarray(np.stack([lo, hi], axis=1), dtype=R.dtype)


def linear_inputs(probs, lr, momentum, w0, *, seeds=None, dtype="float64") -> LinearInputs:
    """The kernel inputs of a grid over prepared problems, rates and seeds.

    Parameters
    ----------
    probs : sequence of fastgd.linear.problem.Problem
        The datasets (same d; P may differ).
    lr : (n_lr,) or (n_data, n_lr) array
        Learning rates (one lane each): one grid, or one row per dataset.
    momentum : float
        The momentum coefficient beta of every lane.
    w0 : (d,) array
        Initial weights.
    seeds : 1-D int array, optional
        SGD: the seeds of the sample orders (their keys, and the samples, are then
        included); None: batch GD (no samples needed; the eigenbasis of each H instead).
    dtype : {"float64", "float32"}
        Arithmetic of the kernels: every float array is converted once.

    Returns
    -------
    LinearInputs

    Examples
    --------
    >>> import numpy as np
    >>> import fastgd as fg
    >>> from fastgd.linear import problem
    >>> from fastgd.linear.contract import linear_inputs
    >>> X, y = fg.lecture_data()
    >>> inp = linear_inputs([problem.prepare("doc", X, y, False)], [0.5, 1.0], 0.0,
    ...                     np.zeros(2), seeds=[0, 1])
    >>> inp.R.shape, inp.X.shape, inp.keys.shape
    ((1, 2, 2), (1, 100, 2), (2, 2))
    """
    ft = np.float32 if dtype == "float32" else np.float64

    def a(x):
        return np.ascontiguousarray(np.asarray(x, dtype=ft))

    lr = a(lr)
    R = a(np.stack([p.R for p in probs]))
    inp = LinearInputs(R=R, wstar=a(np.stack([p.wstar for p in probs])),
                       estar=a([p.estar for p in probs]), c0=a([p.c0 for p in probs]),
                       lr=lr, beta=a(np.full(lr.shape[-1], momentum)), w0=a(w0))
    if seeds is None:
        lam, V = _eigenbases(probs, R)
        return dataclasses.replace(inp, lam=lam, V=V)
    from fastgd.engine.grid import seed_key
    from fastgd.linear.problem import padded

    Xs, ys, P = padded(probs)
    keys = np.ascontiguousarray(np.stack([seed_key(s) for s in np.atleast_1d(seeds)]))
    return dataclasses.replace(inp, X=a(Xs), y=a(ys), P=P, bounds=lam_bounds(R), keys=keys)


def _eigenbases(probs, R):
    """:func:`fastgd.linear.kernels.eig_basis` of the stack ``R`` (the problems' R in the
    kernels' dtype), each dataset's basis kept with its prepared problem (``theory``),
    so that sweeps repeated on cached datasets compute none (a dataset's basis does not
    depend on the others in the stack: the same bits)."""
    from fastgd.linear.kernels_gd import eig_basis

    key = ("eig_basis", R.dtype.str)
    todo = [k for k, p in enumerate(probs) if key not in p.theory]
    if todo:
        lam, V = eig_basis(R[todo] if len(todo) < len(probs) else R)
        for j, k in enumerate(todo):
            probs[k].theory[key] = (lam[j], V[j])
    return (np.ascontiguousarray(np.stack([p.theory[key][0] for p in probs])),
            np.ascontiguousarray(np.stack([p.theory[key][1] for p in probs])))


@dataclass(frozen=True, eq=False)
class LinearJob:
    """A linear grid as the engines ship it to a worker: the kernel spec, the inputs,
    the lanes per chunk, the curve length and the backend.  Picklable (arrays and
    scalars only); its fields key a checkpoint directory
    (:func:`fastgd.engine.checkpoint.spec_hash`).

    Examples
    --------
    >>> import numpy as np
    >>> from fastgd.linear.contract import LinearInputs, LinearJob
    >>> from fastgd.linear.table import KernelSpec
    >>> inp = LinearInputs(R=np.eye(2)[None], wstar=np.zeros((1, 2)), estar=np.zeros(1),
    ...                    c0=np.ones(1), lr=np.array([0.5]), beta=np.zeros(1),
    ...                    w0=np.ones(2))
    >>> LinearJob(KernelSpec("gd", 2, 10, 0.0, 1e12), inp, lanes=64).d
    2
    """

    spec: object  # fastgd.linear.table.KernelSpec
    inputs: LinearInputs
    lanes: int
    n_rec: int = 0
    backend: str = "cpu"

    @property
    def d(self) -> int:
        """The number of weights."""
        return int(self.spec.d)

    @property
    def n_lr(self) -> int:
        """The number of learning rates."""
        return int(self.inputs.lr.shape[-1])
