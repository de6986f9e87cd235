"""The kernel table: which compiled kernel runs a grid, and the one way to call it.

Every CPU kernel fastgd runs is listed in :data:`FACTORIES` under (model, method); a
factory takes the specialisation key of :attr:`KernelSpec.key` (compile-time constants,
see :mod:`.linear`) and returns a serial chunk kernel ``rows(*inputs, chunks, wk,
nworkers, *outputs)``; :func:`select` builds it once per key and :func:`launch` fans its
chunks out over threads (:func:`.threads.fan_out`, the one threading model of every
kernel).  The argument lists are spelled here once: :data:`INPUTS` (arrays, by name,
from a mapping) and :data:`SCALARS` (from the spec); the outputs are
``out.kernel_args()`` (:class:`fastgd.engine.grid.Outputs`).  Callers -- single runs, sweeps,
engines, the boundary and theory code -- build a :class:`KernelSpec` and a mapping of
arrays and call :func:`launch`.

Specialisation keys (``D``, ``FULL``):

* ``D``: d itself for 1 <= d <= :data:`.linear.REGISTER_MAX_D` (register layout), else 0
  (streaming layout, any d); one plain kernel per small d (1-2 s of compile time each,
  once per machine: Numba's disk cache keys on the closure constants).
* ``FULL``: momentum, minibatches (SGD) or renormalisation in use; else the plain
  kernel (per-sample SGD, plain GD), which compiles in about half the time.
* ``BLOCK``: 4 for plain per-sample SGD in the streaming layout (blocks of four samples,
  :func:`.linear._block4`) unless the spec asks for ``exact`` arithmetic; else 1.

float32 grids call the same kernels with float32 arrays (a second signature).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fastgd.kernels.threads import fan_out
from fastgd.linear import kernels as linear

#: (model, method) -> factory(D, FULL, BLOCK)
FACTORIES = {("linear", "sgd"): linear.sgd_kernel,
             ("linear", "gd"): lambda D, FULL, BLOCK: linear.gd_kernel(D, FULL)}

#: the kernels' array inputs, by name, in argument order
INPUTS = {
    "sgd": ("X", "y", "P", "R", "bounds", "wstar", "estar", "c0", "lr", "beta"),
    "gd": ("lam", "V", "wstar", "estar", "c0", "lr", "beta"),
}
#: the scalar inputs (spec attributes) and the arrays between them, in argument order
SCALARS = {
    "sgd": ("nesterov", "w0", "T", "batch", "order", "keys", "tol", "blowup", "renorm"),
    "gd": ("nesterov", "w0", "T", "tol", "blowup", "renorm"),
}


@dataclass(frozen=True)
class KernelSpec:
    """What a grid kernel runs: model and method, the dimension and dtype, and the
    scalar parameters shared by every cell (budget ``T`` in steps or epochs)."""

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
    """The chunk kernel for ``spec`` (built on first use; compiled on its first call)."""
    key = spec.key
    if key not in _BUILT:
        _BUILT[key] = FACTORIES[key[:2]](*key[2:])
    return _BUILT[key]


def is_cold(spec: KernelSpec) -> bool:
    """Whether running ``spec`` will compile its kernel: no signature of this dtype
    compiled in this process and none in Numba's on-disk cache index (keyed on the
    source file's stamp: an edited source reads as cold).  False when unsure or when
    the JIT is off."""
    return kernel_is_cold(select(spec), spec.dtype)


def kernel_is_cold(kern, dtype="float64") -> bool:
    """Whether calling the jitted ``kern`` with ``dtype`` arrays first will compile it
    (:func:`is_cold`)."""
    sigs = getattr(kern, "signatures", None)  # None: NUMBA_DISABLE_JIT=1
    if sigs is None:
        return False

    def mine_dtype(sig):  # the dtype of the first array argument
        return str(getattr(sig[0], "dtype", "")) == dtype

    if any(mine_dtype(s) for s in sigs):
        return False
    try:  # index keys: (signature, machine, (code hash, closure-constants hash))
        mine = kern._cache._index_key(None, kern.targetctx.codegen())[1:]
        index = kern._cache._cache_file._load_index()
        return not any(k[1:] == mine and mine_dtype(k[0]) for k in index)
    except Exception:  # pragma: no cover - a Numba without this private layout
        return False


def lam_bounds(R):
    """(n_data, 2): a lower and an upper bound of the eigenvalues of H = R^T R for each
    R of the stack (the SGD kernels' cheap per-epoch check, :func:`.linear._quiet`), in
    R's dtype.  R = diag(s) V^T / sqrt(P) (:func:`fastgd.engine.grid.hessian_roots`) has
    orthogonal rows whose squared norms are the eigenvalues; the bounds are the extreme
    ones with a relative margin (1e-6, float32: 1e-3) that covers their rounding, that
    of |w - w*|^2 and of the exact excess.  The lower bound is 0 (every check exact)
    where kappa(H) > 1e7 (float32: 10), beyond which the rounding of the exact excess
    could cross it."""
    Rd = np.asarray(R, dtype=np.float64)
    lam = np.einsum("nij,nij->ni", Rd, Rd)
    f32 = R.dtype == np.float32
    margin, kmax = (1e-3, 10.0) if f32 else (1e-6, 1e7)
    top, bottom = lam.max(axis=1), lam.min(axis=1)
    hi = top * (1.0 + margin)
    lo = np.where(bottom * kmax >= top, bottom * (1.0 - margin), 0.0)
    return np.ascontiguousarray(np.stack([lo, hi], axis=1), dtype=R.dtype)


def launch(spec: KernelSpec, arrays, chunks, nworkers, out, *, kernel=None):
    """Run the rows ``chunks`` (data, seed, lr_start, lr_stop) of a grid on ``nworkers``
    threads: inputs from ``arrays`` (a mapping with the names of :data:`INPUTS` except
    lam / V and (optional) bounds, computed here from R, plus ``w0`` and, for SGD,
    ``keys``), outputs into
    ``out`` (:class:`fastgd.engine.grid.Outputs`).  ``kernel``: another chunk kernel of the
    same method than :func:`select`'s (tests and benchmarks compare layouts)."""
    src = dict(arrays)
    if spec.method == "gd":
        src["lam"], src["V"] = linear.eig_basis(src["R"])
    elif "bounds" not in src:  # sweeps compute them once (fastgd.sweep)
        src["bounds"] = lam_bounds(src["R"])
    head = [src[k] for k in INPUTS[spec.method]]
    head += [src[k] if k in ("w0", "keys") else getattr(spec, k)
             for k in SCALARS[spec.method]]
    head.append(np.ascontiguousarray(chunks, dtype=np.int64).reshape(-1, 4))
    fan_out(kernel or select(spec), tuple(head), nworkers, (spec.rec_every, *out.kernel_args()))
