"""Lane blocks of the linear SGD kernel's register layout in plain Numba.

A block is a fixed number of lanes (a compile-time constant) whose weights and rates
live in fixed-size stack arrays (:func:`stack_empty`, allocated once in the entry block
of the kernel).  LLVM then knows that this state aliases nothing else: it vectorises the
loop over the block's lanes and keeps the weights in vector registers for the whole
epoch, as hand-written vector code would (:func:`register_block`, called by
:func:`fastgd.linear.kernels.sgd_kernel` for d <= ``REGISTER_MAX_D``, d compiled in).

The arithmetic is the per-sample loop's operation for operation (s = w.x summed from 0
in component order, c = lr (s - y), w <- w - c x, each product fused into its sum where
contraction fuses it), so a lane gives the same bits in a block or in the loops, for
any lane count (tested).
"""

import numpy as np
from numba import carray, literally, types
from numba.core import cgutils
from numba.extending import intrinsic

from fastgd.kernels.jit import jit


def register_lanes(d):
    """Lanes per block of the register layout for d compiled in: enough independent
    vectors to hide a step's latency, few enough that d x lanes weights stay in
    registers (bench/test_bench_layouts.py measured the choice).

    Examples
    --------
    >>> from fastgd.linear.kernels_plain import register_lanes
    >>> register_lanes(2), register_lanes(8)
    (64, 16)
    """
    return 64 if d <= 2 else 32 if d <= 4 else 16


@intrinsic
def stack_empty(typingctx, n, dtype):
    """``stack_empty(n, dtype)``: a pointer to ``n`` uninitialised elements of ``dtype``
    on the stack, allocated once in the entry block of the calling kernel (``n`` a
    compile-time constant); wrap it with ``numba.carray(ptr, shape)``.  The memory lives
    as long as the kernel's call: never return or store the array."""
    if not isinstance(n, types.IntegerLiteral) or not isinstance(dtype, types.DType):
        return None
    sig = types.CPointer(dtype.dtype)(n, dtype)

    def codegen(context, builder, signature, args):
        ty = context.get_value_type(dtype.dtype)
        return cgutils.alloca_once(builder, ty, size=n.literal_value)

    return sig, codegen


@jit
def register_block(w, lre, X, y, perm, di, b, P, zero, D, L, NW):
    """Per-sample steps on samples perm[0:P] of dataset di for lanes b .. b + L - 1 of w
    (D, nl), their weights and rates in stack arrays for the whole epoch; D, L and
    NW = D L compile-time constants (one compiled block per d)."""
    literally(D)
    literally(L)
    literally(NW)
    dt = X.dtype
    wl = carray(stack_empty(NW, dt), (D, L))
    rl = carray(stack_empty(L, dt), (L,))
    ub = np.uint64(b)  # unsigned: no negative-index wraparound in the vector loops
    for i in range(D):
        for l in range(L):
            wl[i, l] = w[i, ub + l]
    for l in range(L):
        rl[l] = lre[ub + l]
    for q in range(P):
        p = perm[q]
        yp = y[di, p]
        for l in range(L):
            s = zero
            for i in range(D):
                s += wl[i, l] * X[di, p, i]
            c = rl[l] * (s - yp)
            for i in range(D):
                wl[i, l] -= c * X[di, p, i]
    for i in range(D):
        for l in range(L):
            w[i, ub + l] = wl[i, l]
