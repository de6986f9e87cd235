"""The kernel table: which compiled kernel runs a grid, and the one way to call it.

Every CPU kernel of the linear model is listed in :data:`FACTORIES` under (model,
method); a factory takes the specialisation key of :attr:`KernelSpec.key` (compile-time
constants, see :mod:`fastgd.linear.kernels`) and returns a serial chunk kernel
``rows(*inputs, chunks, wk, nworkers, *outputs)``; :func:`select` builds it once per key
and :func:`launch` fans its chunks out over threads (:func:`fastgd.kernels.threads.fan_out`,
the one threading model of every kernel).  The kernels' argument lists are spelled in
:func:`launch` and nowhere else, from a :class:`KernelSpec` (the scalars) and a
:class:`fastgd.linear.contract.LinearInputs` (the arrays); the outputs are
``out.kernel_args()`` (:class:`fastgd.engine.grid.Outputs`).  Callers -- single runs,
sweeps, engines, the boundary and theory code -- build the two and call
:func:`fastgd.engine.table.launch`, where :mod:`fastgd.linear.executors` registers
:func:`launch` for ("linear", "gd") and ("linear", "sgd") on the CPU (the GPU runs its
own kernels, :mod:`fastgd.linear.gpu`).

Specialisation keys (``D``, ``FULL``, ``BLOCK``):

* ``D``: d itself for 1 <= d <= :data:`fastgd.linear.kernels.REGISTER_MAX_D` (register
  layout), else 0 (streaming layout, any d); one plain kernel per small d (compiled once
  per machine: Numba's disk cache keys on the closure constants).
* ``FULL``: momentum, minibatches (SGD) or renormalisation in use; else the plain
  kernel (per-sample SGD, plain GD), which compiles in about half the time.
* ``BLOCK``: 4 for plain per-sample SGD in the streaming layout (blocks of four samples)
  unless the spec asks for ``exact`` arithmetic; else 1.

float32 grids call the same kernels with float32 arrays (a second signature).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fastgd.engine.notice import first_compile
from fastgd.kernels.threads import fan_out
from fastgd.linear import kernels as linear
from fastgd.linear.contract import LinearInputs, lam_bounds

__all__ = ["FACTORIES", "KernelSpec", "LinearInputs", "is_cold", "kernel_is_cold",
           "lam_bounds", "launch", "select"]

#: (model, method) -> factory(D, FULL, BLOCK)
FACTORIES = {("linear", "sgd"): linear.sgd_kernel,
             ("linear", "gd"): lambda D, FULL, BLOCK: linear.gd_kernel(D, FULL)}


@dataclass(frozen=True)
class KernelSpec:
    """What a grid kernel runs: model and method, the dimension and dtype, and the
    scalar parameters shared by every cell (budget ``T`` in steps or epochs).

    Examples
    --------
    >>> from fastgd.linear.table import KernelSpec
    >>> KernelSpec("sgd", 2, 100, 1e-8, 1e12).key
    ('linear', 'sgd', 2, False, 1)
    >>> KernelSpec("sgd", 30, 100, 1e-8, 1e12, batch=5).key   # FULL: one kernel, any d
    ('linear', 'sgd', 0, True, 1)
    """

    method: str  # "gd" | "sgd"
    d: int
    T: int
    tol: float
    blowup: float
    momentum: bool = False  # some lane has beta != 0
    nesterov: bool = False
    batch: int = 1
    order: int = 0  # ORDER_* code
    renorm: int = 0
    rec_every: int = 1
    dtype: str = "float64"
    exact: bool = False  # per-sample SGD: every sample on its own at any d (no blocks)
    model: str = "linear"

    @property
    def full(self) -> bool:
        """Whether the plain kernel does not cover this spec (momentum, minibatches,
        renormalisation)."""
        return bool(self.momentum or self.renorm > 0
                    or (self.method == "sgd" and self.batch > 1))

    @property
    def layout(self) -> str:
        """``"register"`` (d compiled in, d <= REGISTER_MAX_D) or ``"streaming"``."""
        return "register" if 1 <= self.d <= linear.REGISTER_MAX_D else "streaming"

    @property
    def key(self) -> tuple:
        """(model, method, D, FULL, BLOCK): one compiled kernel per key.  FULL kernels
        always take the streaming layout (D = 0): one of them serves every d (their
        minibatch and momentum loops do not use the register layout), so momentum or
        minibatches at a new d compile nothing new.  BLOCK = 4: plain per-sample SGD in
        the streaming layout takes four samples per pass over the weights (unless
        ``exact``)."""
        register = self.layout == "register" and not self.full
        block = 4 if (self.method == "sgd" and not register and not self.full
                      and not self.exact) else 1
        return (self.model, self.method, self.d if register else 0, self.full, block)


_BUILT: dict = {}


def select(spec: KernelSpec):
    """The chunk kernel for ``spec`` (built on first use; compiled on its first call).

    Examples
    --------
    >>> from fastgd.linear.table import KernelSpec, select
    >>> select(KernelSpec("gd", 2, 10, 0.0, 1e12)) is select(KernelSpec("gd", 2, 99, 0.0, 1.0))
    True
    """
    key = spec.key
    if key not in _BUILT:
        _BUILT[key] = FACTORIES[key[:2]](*key[2:])
    return _BUILT[key]


def is_cold(spec: KernelSpec) -> bool:
    """Whether running ``spec`` will compile its kernel (:func:`kernel_is_cold`).

    Examples
    --------
    >>> from fastgd.linear.table import KernelSpec, is_cold
    >>> isinstance(is_cold(KernelSpec("gd", 2, 10, 0.0, 1e12)), bool)
    True
    """
    return kernel_is_cold(select(spec), spec.dtype)


def kernel_is_cold(kern, dtype="float64") -> bool:
    """Whether calling the jitted ``kern`` with ``dtype`` arrays first will compile it:
    :func:`fastgd.engine.notice.first_compile` (True once per machine, kernel and dtype;
    False when the JIT is off).

    Examples
    --------
    >>> from fastgd.linear.table import kernel_is_cold
    >>> kernel_is_cold(len)
    False
    """
    return first_compile(kern, dtype)


def launch(spec: KernelSpec, inputs: LinearInputs, chunks, nworkers, out, *, kernel=None):
    """Run the rows ``chunks`` (data, seed, lr_start, lr_stop) of a grid on ``nworkers``
    threads, outputs into ``out`` (:class:`fastgd.engine.grid.Outputs`).

    Parameters
    ----------
    spec : KernelSpec
        The kernel and its scalar parameters.
    inputs : fastgd.linear.contract.LinearInputs
        The arrays (GD: the eigenbasis of each H is computed here from R when
        ``inputs.lam`` is None; SGD: the eigenvalue bounds when ``inputs.bounds`` is).
    chunks : (n, 4) int array
        Rows of the chunk table.
    nworkers : int
        Worker threads.
    out : fastgd.engine.grid.Outputs
        Full-size outputs indexed [data, seed, lr] of ``inputs``.
    kernel : optional
        Another chunk kernel of the same method than :func:`select`'s (tests and
        benchmarks compare layouts).

    Examples
    --------
    >>> import numpy as np
    >>> from fastgd.engine.grid import Outputs, make_chunks
    >>> from fastgd.linear.contract import LinearInputs
    >>> from fastgd.linear.table import KernelSpec, launch
    >>> inp = LinearInputs(R=np.diag([1.0, 0.5])[None], wstar=np.ones((1, 2)),
    ...                    estar=np.zeros(1), c0=np.ones(1), lr=np.array([0.5, 3.0]),
    ...                    beta=np.zeros(2), w0=np.zeros(2))
    >>> out = Outputs(1, 1, 2, 2)
    >>> with np.errstate(all="ignore"):
    ...     launch(KernelSpec("gd", 2, 100, 1e-8, 1e12), inp, make_chunks(1, 1, 2, 2), 1, out)
    >>> out.status[0, 0].tolist()          # 0.5 converges, 3.0 > 2/lambda_max diverges
    [1, 2]
    """
    if not isinstance(inputs, LinearInputs):
        raise TypeError(f"launch: inputs must be a LinearInputs, got {type(inputs).__name__}")
    i = inputs
    rows = np.ascontiguousarray(chunks, dtype=np.int64).reshape(-1, 4)
    lr = i.lr.ravel()  # (n_data, n_lr) rates: the kernels read row di of the flat array
    if spec.method == "gd":
        lam, V = (i.lam, i.V) if i.lam is not None else linear.eig_basis(i.R)
        args = (lam, V, i.wstar, i.estar, i.c0, lr, i.beta, spec.nesterov, i.w0, spec.T,
                spec.tol, spec.blowup, spec.renorm, rows)
    else:
        bounds = lam_bounds(i.R) if i.bounds is None else i.bounds
        args = (i.X, i.y, i.P, i.R, bounds, i.wstar, i.estar, i.c0, lr, i.beta,
                spec.nesterov, i.w0, spec.T, spec.batch, spec.order, i.keys, spec.tol,
                spec.blowup, spec.renorm, rows)
    fan_out(kernel or select(spec), args, nworkers, (spec.rec_every, *out.kernel_args()))
