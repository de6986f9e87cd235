"""The sample order of SGD: which samples a seed presents in an epoch.

The kernels draw it from a counter-based hash of (seed key, epoch, position)
(:mod:`fastgd.kernels.rng`), so it is a pure function of the seed and the epoch, the same
for any thread count, chunking or engine; :func:`sample_order` returns it, computed by
the kernels' own functions, to follow a run step by step outside fastgd.
"""

from __future__ import annotations

import numpy as np

from fastgd import status as ST
from fastgd import validate as V
from fastgd.engine import cost as _cost

__all__ = ["sample_order"]


def sample_order(n, seed=0, epoch=0, *, order=ST.DEFAULT_ORDER, batch_size=1):
    """The indices of the samples SGD presents in one epoch, in the order presented.

    Exactly what :func:`fastgd.sgd` (``seed=seed``) and the SGD cells of
    :func:`fastgd.sweep` with that seed visit in that epoch, on data of ``n`` samples:
    the seed's key is ``numpy.random.SeedSequence(seed)``'s first two 32-bit words, and
    position q of epoch e is decided by a hash of (key, e, q) (:mod:`fastgd.kernels.rng`).

    Parameters
    ----------
    n : int
        Number of samples P (>= 1, < 2**31).
    seed : int
        The run's ``seed`` (>= 0).  The ``cyclic`` order does not depend on it.
    epoch : int
        The pass, counted from 0 (epoch 0 is the first pass over the data).
    order : {"shuffle", "cyclic", "replacement"}
        As in :func:`fastgd.sgd` (default ``fastgd.DEFAULT_ORDER``, "shuffle"):
        ``shuffle`` a permutation of 0..n-1 (Fisher-Yates from the top, a fresh one each
        epoch), ``cyclic`` 0..n-1, ``replacement`` n independent draws from 0..n-1.
    batch_size : int in [1, n]
        1: the (n,) array of indices.  B > 1: the list of the epoch's ceil(n / B)
        minibatches (consecutive slices of that array; the last one smaller when B does
        not divide n), one step each.

    Returns
    -------
    (n,) int64 array, or a list of int64 arrays (``batch_size > 1``)

    Examples
    --------
    >>> import fastgd as fg
    >>> fg.sample_order(5, order="cyclic").tolist()
    [0, 1, 2, 3, 4]
    >>> p = fg.sample_order(100, seed=3, epoch=2)          # shuffle: a permutation
    >>> sorted(p.tolist()) == list(range(100)), p[:3].tolist() == fg.sample_order(100, 3, 2)[:3].tolist()
    (True, True)
    >>> [b.tolist() for b in fg.sample_order(5, order="cyclic", batch_size=2)]
    [[0, 1], [2, 3], [4]]
    """
    f = "sample_order"
    n = V.integer(f, "n", n, minimum=1, maximum=2**31 - 1)
    seed = V.integer(f, "seed", seed, minimum=0)
    epoch = V.integer(f, "epoch", epoch, minimum=0)
    code = ST.ORDERS[V.choice(f, "order", order, tuple(ST.ORDERS))]
    batch_size = V.integer(f, "batch_size", batch_size, minimum=1, maximum=n)
    _cost.check(f, "n", nbytes=8.0 * n, what=f"{n:,} indices x 8 B", work=float(n),
                hint="use a smaller n")
    idx = _order(n, seed, epoch, code)
    if batch_size == 1:
        return idx
    return [idx[a:a + batch_size] for a in range(0, n, batch_size)]


def _order(n, seed, epoch, code):
    """The epoch's indices by the kernels' own functions (:mod:`fastgd.kernels.rng`)."""
    from fastgd.engine.grid import seed_key
    from fastgd.kernels import ORDER_REPLACEMENT, ORDER_SHUFFLE
    from fastgd.kernels.rng import draws, permutation

    idx = np.arange(n, dtype=np.int64)
    if code == ORDER_SHUFFLE or code == ORDER_REPLACEMENT:
        k0, k1 = (int(k) for k in seed_key(seed))
        if code == ORDER_SHUFFLE:
            permutation(k0, k1, epoch, idx)
        else:
            draws(k0, k1, epoch, idx, n)
    return idx
