"""float32 twins of float64 kernels, built from the *same* Python functions.

A kernel allocates its per-lane state with ``np.empty(shape)`` / ``np.zeros(shape)``
(float64 by default).  :func:`float32_twin` recompiles a kernel's Python function with a
module namespace in which ``np`` is a thin stand-in whose ``empty`` / ``zeros`` /
``ones`` default to float32 (an explicit ``dtype=`` is kept) and every other name is
NumPy's.  Fed float32 arrays, the twin then keeps its whole state in float32 (twice
the SIMD lanes per register), while the float64 kernel keeps exactly one compiled
signature.  Calls to other kernels are redirected with ``replace`` (a twin calls twins).

The twins are separate dispatchers with their own cache entries (qualified name
suffixed ``_f32``) and the njit options of :mod:`._jit` (no fastmath: NaN/inf checks,
hence divergence flags, stay exact).
"""

import types as _pytypes

import numpy as np
from numba import types
from numba.extending import overload

from ._jit import variant


def _allocator(fill, name):
    def alloc(shape, dtype=None):
        return fill(shape, np.float32 if dtype is None else dtype)

    alloc.__name__ = alloc.__qualname__ = f"{name}_f32"

    @overload(alloc)
    def _typed(shape, dtype=None):
        if dtype is None or isinstance(dtype, (types.Omitted, types.NoneType)):
            return lambda shape, dtype=None: fill(shape, np.float32)
        return lambda shape, dtype=None: fill(shape, dtype)

    return alloc


np32 = _pytypes.ModuleType("fastgd_np32", "NumPy with float32 as the default dtype of "
                           "empty / zeros / ones (for float32 kernel twins).")
np32.empty = _allocator(np.empty, "empty")
np32.zeros = _allocator(np.zeros, "zeros")
np32.ones = _allocator(np.ones, "ones")
np32.__getattr__ = lambda name: getattr(np, name)


def float32_twin(kernel, **replace):
    """A new dispatcher compiled from ``kernel``'s Python function with ``np`` -> np32
    and the globals named in ``replace`` swapped (e.g. ``gd_linear=gd_linear_f32``)."""
    return variant(kernel, "_f32", np=np32, **replace)
