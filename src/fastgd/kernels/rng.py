"""Counter-based random numbers: a pure function of (key, epoch, position).

A 32-bit integer hash (lowbias32-style, with multipliers below 2**31 so that every
product fits in a signed 64-bit integer: no overflow in Numba and identical results
in plain Python under ``NUMBA_DISABLE_JIT=1``).  Because the stream is a function of
the counter, results do not depend on threads, chunking or evaluation order.
"""

from fastgd.kernels.jit import jit

M32 = 0xFFFFFFFF


@jit
def mix32(x):
    """Bijective 32-bit mixer; ``x`` is an integer in [0, 2**32)."""
    x = x & M32
    x ^= x >> 16
    x = (x * 0x7FEB352D) & M32
    x ^= x >> 15
    x = (x * 0x446CA68B) & M32
    x ^= x >> 16
    return x


@jit
def hash4(k0, k1, epoch, pos):
    """32-bit hash of a 64-bit key (two 32-bit words), an epoch and a position."""
    h = mix32(k0 ^ 0x2545F491)
    h = mix32(h ^ k1)
    h = mix32(h ^ (epoch & M32))
    h = mix32(h ^ (pos & M32))
    return h


@jit
def randbelow(h, n):
    """Map a 32-bit hash to an integer in [0, n) (Lemire's multiply-shift), n < 2**31."""
    return (h * n) >> 32


@jit
def permutation(k0, k1, epoch, perm):
    """Fill ``perm`` with the epoch's permutation of 0..n-1 (Fisher-Yates)."""
    n = perm.shape[0]
    for i in range(n):
        perm[i] = i
    for i in range(n - 1, 0, -1):
        j = randbelow(hash4(k0, k1, epoch, i), i + 1)
        t = perm[i]
        perm[i] = perm[j]
        perm[j] = t


@jit
def draws(k0, k1, epoch, out, n):
    """Fill ``out`` with the epoch's draws with replacement: position q holds
    ``randbelow(hash4(k0, k1, epoch, q), n)`` (the SGD kernels' ``replacement`` order,
    written inline there)."""
    for q in range(out.shape[0]):
        out[q] = randbelow(hash4(k0, k1, epoch, q), n)
