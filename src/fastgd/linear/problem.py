"""The linear unit's prepared problem: sufficient statistics (SVD of X, w*, E*) and its
cache (the final check of every cell from residuals: :mod:`fastgd.linear.checks`)."""


from __future__ import annotations

import collections
import dataclasses
import hashlib
import threading
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from fastgd import validate as V
from fastgd.engine import blas
from fastgd.status import Status

#: The status codes as plain ints, for comparisons with arrays: NumPy converts an IntEnum
#: (:class:`fastgd.Status`) through Python calls (the enum's ``__getattr__``) and drops
#: an exception raised there, so a Ctrl-C arriving in that window would be lost (numpy
#: gh-14801); with ints no Python code runs and the results are the same.
BOUNDED, CONVERGED, DIVERGED = (int(s) for s in (Status.BOUNDED, Status.CONVERGED,
                                                  Status.DIVERGED))


@dataclass(frozen=True)
class Problem:
    """A linear-unit problem reduced to what the kernels need.

    X : (P, d) float64, with the constant column appended when ``bias``.
    H = X^T X / P; R = diag(s) V^T / sqrt(P) (d x d, zero rows past rank P) from the
    SVD X = U diag(s) V^T, so that R^T R = H and the excess loss is |R (w - w*)|^2 / 2
    (the kernels' form: R keeps the small singular values that a formed H loses);
    wstar: min-norm least-squares minimiser; estar = E(w*); c0 = E(0) = y.y / (2P)
    (the divergence scale's floor).  ``theory``: what the sweeps computed from X alone
    and keep with the cached problem (the SGD limits of :func:`fastgd.linear.datasets.
    _sgd_limits`, by their arguments; GD's eigenbasis of H,
    :func:`fastgd.linear.contract._eigenbases`).
    """

    X: np.ndarray
    y: np.ndarray
    H: np.ndarray
    R: np.ndarray
    wstar: np.ndarray
    estar: float
    c0: float
    bias: bool
    theory: dict = dataclasses.field(default_factory=dict, compare=False, repr=False)

    @property
    def P(self):
        return self.X.shape[0]

    @property
    def d(self):
        return self.X.shape[1]


def prepare(func, X, y, bias=False, *, xname="X", yname="y", checked=False) -> Problem:
    """Validate (X, y) and compute H, w*, E*, E(0) once, in float64.

    ``checked=True``: (X, y) already passed :func:`fastgd.validate.data` (sweep's
    datasets are validated, or generated, before this; it saves ~20 us per dataset)."""
    if not checked:
        X, y = V.data(func, X, y, xname=xname, yname=yname)
    bias = V.boolean(func, "bias", bias)
    key = _cache_key(X, y, bias)
    hit = _recall(key)
    if hit is not None:
        return hit
    X0, y0 = X, y
    if bias:
        X = np.ascontiguousarray(np.hstack([X, np.ones((X.shape[0], 1))]))
    wstar, H, R, estar, c0 = _stack_statistics(X[None], y[None])
    prob = Problem(X, y, H[0], R[0], wstar[0], float(estar[0]), float(c0[0]), bias)
    if key is not None:
        # the cache keeps private copies: a caller who later changes X in place changes
        # its key, never a cached problem
        if X is X0:
            X = X.copy()
        prob = dataclasses.replace(prob, X=X, y=y0.copy())
        _remember(key, prob)
    return prob


#: prepared problems kept by :func:`prepare` and :func:`prepare_many` (least recently
#: used dropped first), so that repeated runs and sweeps on the same data skip the
#: least-squares solve and the SVD: at most CACHE_SIZE problems and CACHE_BYTES of
#: their arrays
CACHE_SIZE = 1024
CACHE_BYTES = 256 << 20
#: datasets larger than this (bytes of X) are not cached (the cache holds a copy)
CACHE_MAX_BYTES = 64 << 20
_CACHE: collections.OrderedDict = collections.OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_HELD = [0]  # bytes of the cached problems' arrays


def _nbytes(p):
    return p.X.nbytes + p.y.nbytes + p.H.nbytes + p.R.nbytes + p.wstar.nbytes


def _recall(key):
    """The cached problem of ``key`` (None: not cached or no key)."""
    if key is None:
        return None
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            _CACHE.move_to_end(key)
        return hit


def _remember(key, prob):
    """Cache ``prob`` (private arrays) under ``key``; drop the least recently used
    problems beyond CACHE_SIZE and CACHE_BYTES."""
    with _CACHE_LOCK:
        old = _CACHE.pop(key, None)
        if old is not None:
            _CACHE_HELD[0] -= _nbytes(old)
        _CACHE[key] = prob
        _CACHE_HELD[0] += _nbytes(prob)
        while len(_CACHE) > CACHE_SIZE or (_CACHE_HELD[0] > CACHE_BYTES and len(_CACHE) > 1):
            _CACHE_HELD[0] -= _nbytes(_CACHE.popitem(last=False)[1])


_HASH = []  # the digest of _cache_key, chosen on first use (_hash)


def _hash():
    """The faster of SHA-256 and BLAKE2b on this machine, timed once on 64 KB: SHA-256
    where the CPU has SHA instructions (1.8 GB/s on the Zen 4 VM against BLAKE2b's 0.9:
    a d = 10 sweep of 32 datasets hashes them in 0.15 ms instead of 0.3), else BLAKE2b
    (about twice SHA-256's speed without them).  Keys live in this process only."""
    if not _HASH:
        import time

        buf = bytes(1 << 16)
        best = {}
        for make in (hashlib.sha256, lambda: hashlib.blake2b(digest_size=32)):
            t = []
            for _ in range(3):
                t0 = time.perf_counter()
                make().update(buf)
                t.append(time.perf_counter() - t0)
            best[make] = min(t)
        _HASH.append(min(best, key=best.get))
    return _HASH[0]()


def _cache_key(X, y, bias):
    """Key of a validated (X, y): shapes and a SHA-256 or BLAKE2b digest (:func:`_hash`)
    of the bytes (content, not identity: an array changed in place gets a new key).
    None when too large."""
    if X.nbytes > CACHE_MAX_BYTES:
        return None
    h = _hash()
    h.update(X.data)
    h.update(y.data)
    return (X.shape, bool(bias), h.digest())


class CacheInfo(NamedTuple):
    """What the prepared-problem cache holds (:func:`cache_info`, :func:`clear_cache`).

    Examples
    --------
    >>> import fastgd as fg
    >>> info = fg.cache_info()
    >>> info._fields
    ('problems', 'bytes', 'max_problems', 'max_bytes')
    >>> info.max_problems
    1024
    """

    #: datasets held (each with its SVD, least-squares solution and a copy of X and y)
    problems: int
    #: bytes of their arrays
    bytes: int
    #: the limits: least recently used problems are dropped beyond either
    max_problems: int
    max_bytes: int


def cache_info() -> CacheInfo:
    """What the prepared-problem cache holds now, and its limits.

    Every run and sweep of the linear unit prepares its datasets once (validation, the
    SVD of X, the least-squares minimiser w*, E*) and keeps the result, keyed by the
    datasets' content (a digest of X and y: an array changed in place is a new
    dataset), so that repeated runs and sweeps on the same data skip that work.  The
    cache keeps private copies of X and y, at most ``max_problems`` datasets and
    ``max_bytes`` bytes (the least recently used are dropped first); a dataset whose X
    is larger than 64 MiB is never cached.  :func:`clear_cache` empties it.

    Returns
    -------
    CacheInfo
        ``(problems, bytes, max_problems, max_bytes)``.

    Examples
    --------
    >>> import fastgd as fg
    >>> X, y = fg.lecture_data()                    # 100 x 2 inputs, labels +-1
    >>> _ = fg.clear_cache()
    >>> _ = fg.gd(X, y, lr=1.0, steps=10)           # prepares (X, y) and keeps it
    >>> info = fg.cache_info()
    >>> info.problems, info.bytes > X.nbytes, info.max_bytes // 2**20   # MiB
    (1, True, 256)
    """
    with _CACHE_LOCK:
        return CacheInfo(len(_CACHE), int(_CACHE_HELD[0]), int(CACHE_SIZE),
                         int(CACHE_BYTES))


def clear_cache() -> CacheInfo:
    """Forget every prepared problem (see :func:`cache_info`), freeing the copies of
    the datasets the cache holds.  Results never depend on the cache: a run after it
    recomputes the same statistics, bit for bit.

    Returns
    -------
    CacheInfo
        What the cache held just before (``problems``, ``bytes``) and its limits.

    Examples
    --------
    >>> import fastgd as fg
    >>> X, y = fg.lecture_data()
    >>> a = fg.sgd(X, y, lr=0.02, epochs=5, seed=0)
    >>> freed = fg.clear_cache()
    >>> freed.problems >= 1, fg.cache_info().problems
    (True, 0)
    >>> b = fg.sgd(X, y, lr=0.02, epochs=5, seed=0)  # prepared afresh: the same bits
    >>> bool((a.w == b.w).all())
    True
    """
    with _CACHE_LOCK:
        info = CacheInfo(len(_CACHE), int(_CACHE_HELD[0]), int(CACHE_SIZE),
                         int(CACHE_BYTES))
        _CACHE.clear()
        _CACHE_HELD[0] = 0
        return info


def _statistics(Xs, ys, ws, svd=None):
    """H = X^T X / P, its square root R (see :class:`Problem`), E* = |y - X w*|^2 / (2P)
    and E(0) = |y|^2 / (2P) for a stack of same-shape problems, each by one stacked
    NumPy call (``svd``: the stack's singular values and right singular vectors, when
    already computed).  Every call treats each problem of the stack on its own, so a
    problem's statistics do not depend on the company it is prepared in (bit for bit;
    tested)."""
    n, P, d = Xs.shape
    H = np.ascontiguousarray(np.matmul(Xs.transpose(0, 2, 1), Xs) / P)
    R = hessian_roots(Xs) if svd is None else _roots(P, d, *svd)
    res = ys - np.matmul(Xs, ws[:, :, None])[:, :, 0]
    estar = 0.5 * np.matmul(res[:, None, :], res[:, :, None])[:, 0, 0] / P
    c0 = 0.5 * np.matmul(ys[:, None, :], ys[:, :, None])[:, 0, 0] / P
    return H, R, estar, c0


def hessian_roots(Xs):
    """R = diag(s) V^T / sqrt(P) for each X = U diag(s) V^T of a stack (n, P, d): the
    (d, d) square roots of H = X^T X / P with R^T R = H (rows past min(P, d) are 0)."""
    n, P, d = Xs.shape
    _, s, Vt = np.linalg.svd(Xs, full_matrices=False)
    return _roots(P, d, s, Vt)


def _roots(P, d, s, Vt):
    R = np.zeros((s.shape[0], d, d))
    R[:, : s.shape[1]] = (s / np.sqrt(P))[:, :, None] * Vt
    return R


def _lapack_part(Xs, ys, W, s, Vt, parts, wk, nworkers):
    """Worker ``wk`` of :func:`_stack_statistics`: the least-squares solutions and the
    SVDs of its slices ``parts[k] = (a, b)`` of the stack (LAPACK releases the GIL)."""
    from numpy.linalg import _umath_linalg

    P, d = Xs.shape[1:]
    for a, b in parts[wk::nworkers]:
        with np.errstate(invalid="raise", over="ignore", divide="ignore", under="ignore"):
            W[a:b] = _umath_linalg.lstsq(Xs[a:b], ys[a:b, :, None],
                                         np.finfo(np.float64).eps * max(P, d),
                                         signature="ddd->ddid")[0][..., 0]
        _, s[a:b], Vt[a:b] = np.linalg.svd(Xs[a:b], full_matrices=False)


#: least-squares solutions and SVDs of a stack run on threads from this many
#: multiply-adds of LAPACK work (~n P d^2; below it a thread hand-off costs more)
LAPACK_THREADED_WORK = 2_000_000


def _stack_statistics(Xs, ys, nworkers=1):
    """(w*, H, R, E*, E(0)) of a stack of same-shape problems (n, P, d).

    w* comes from NumPy's own ``lstsq`` gufunc (the LAPACK routine ``np.linalg.lstsq``
    runs, hence the same bits) and R from one SVD per problem.  BLAS runs on one thread
    for these calls (:func:`fastgd.engine.blas.one_thread`: OpenBLAS's SVD bits depend on
    its thread count, and two of our threads each calling a threaded BLAS would
    oversubscribe the cores) and, where that limit is available, with ``nworkers`` > 1
    and enough work, the stack is cut in slices that run on our threads (LAPACK
    releases the GIL; each problem is solved on its own, so the bits depend
    neither on the cut nor on the company a problem is prepared in).  Raises
    ``np.linalg.LinAlgError`` where LAPACK fails."""
    from fastgd.kernels.threads import fan_out

    n, P, d = Xs.shape
    k = min(P, d)
    W = np.empty((n, d))
    s = np.empty((n, k))
    Vt = np.empty((n, k, d))
    nw = max(1, min(int(nworkers), n))
    if not blas.available() or n * P * d * d < LAPACK_THREADED_WORK:
        nw = 1
    cuts = np.linspace(0, n, nw + 1).astype(np.int64)
    parts = np.ascontiguousarray(np.stack([cuts[:-1], cuts[1:]], axis=1))
    try:
        with blas.one_thread():  # the stacked products too (many small GEMMs)
            fan_out(_lapack_part, (Xs, ys, W, s, Vt, parts), nw, ())
            H, R, estar, c0 = _statistics(Xs, ys, W, svd=(s, Vt))
    except FloatingPointError as exc:  # the gufunc's LAPACK failure flag
        raise np.linalg.LinAlgError("SVD did not converge in Linear Least Squares") from exc
    return W, H, R, estar, c0


#: datasets' cache keys are hashed on threads from this many bytes in all (hashlib
#: releases the GIL; below it a thread hand-off costs more than it saves)
KEYS_THREADED_BYTES = 1 << 20


def _keys_part(datasets, bias, keys, parts, wk, nworkers):
    """Worker ``wk`` of :func:`_cache_keys`: the keys of its slices of the datasets."""
    for a, b in parts[wk::nworkers]:
        for i in range(a, b):
            keys[i] = _cache_key(*datasets[i], bias)


def _cache_keys(datasets, bias, nworkers=1):
    """:func:`_cache_key` of every (X, y), on up to ``nworkers`` threads for large data
    (1-2 GB/s a core: 1.4-2.6 ms for 32 datasets of 100 x 100)."""
    n = len(datasets)
    keys = [None] * n
    nbytes = sum(X.nbytes for X, _ in datasets)
    nw = max(1, min(int(nworkers), n)) if nbytes >= KEYS_THREADED_BYTES else 1
    cuts = np.linspace(0, n, nw + 1).astype(np.int64)
    from fastgd.kernels.threads import fan_out

    fan_out(_keys_part, (datasets, bias, keys, np.stack([cuts[:-1], cuts[1:]], axis=1)),
            nw, ())
    return keys


def prepare_many(func, datasets, bias=False, nworkers=1) -> list[Problem]:
    """:func:`prepare` for a list of checked (X, y) pairs; bit for bit the same Problems.

    Datasets prepared before (by either function, same content) come from the cache.
    When the others share one shape, their least-squares solutions and SVDs come from
    stacked LAPACK calls over ``nworkers`` threads (:func:`_stack_statistics`, the code
    :func:`prepare` runs on a stack of one).  Otherwise each dataset goes through
    :func:`prepare`.
    """
    bias = V.boolean(func, "bias", bias)
    keys = _cache_keys(datasets, bias, nworkers)
    out = [_recall(k) for k in keys]
    todo = [i for i, p in enumerate(out) if p is None]
    new = [datasets[i] for i in todo]
    if len({(X.shape, y.shape) for X, y in new}) == 1:
        Xs = np.stack([X for X, _ in new])  # private copies: the cache may keep them
        if bias:
            Xs = np.concatenate([Xs, np.ones(Xs.shape[:2] + (1,))], axis=2)
        ys = np.stack([y for _, y in new])
        W, H, R, estar, c0 = _stack_statistics(Xs, ys, nworkers)
        for j, i in enumerate(todo):
            out[i] = Problem(Xs[j], ys[j], H[j], R[j], W[j], float(estar[j]), float(c0[j]),
                             bias)
            if keys[i] is not None:
                _remember(keys[i], out[i])
    else:
        for i in todo:
            X, y = datasets[i]
            out[i] = prepare(func, X, y, bias, checked=True)
    return out


def padded(probs):
    """(X, y, P) of prepared problems as new zero-padded stacks (n, P_max, d),
    (n, P_max) and (n,) int64 (the SGD kernels' samples, the final check's data)."""
    Pmax = max(p.P for p in probs)
    X = np.zeros((len(probs), Pmax, probs[0].d))
    y = np.zeros((len(probs), Pmax))
    for k, p in enumerate(probs):
        X[k, : p.P] = p.X
        y[k, : p.P] = p.y
    return X, y, np.array([p.P for p in probs], dtype=np.int64)


def spectra(probs):
    """(lambda_max, lambda_min) of each problem's H, from its square root R: the rows of
    R = diag(s) V^T / sqrt(P) are orthogonal and their squared norms are the eigenvalues
    s^2 / P (to the relative precision of the singular values; nothing recomputed)."""
    R = np.stack([p.R for p in probs])
    lam = np.einsum("nij,nij->ni", R, R)
    return lam.max(axis=1), np.maximum(lam.min(axis=1), 0.0)


def initial_weights(func, w0, prob: Problem, d_in: int, name="w0"):
    """w0=None -> zeros; a length-d vector gets bias 0 appended when bias=True.
    ``name``: the argument's name in error messages."""
    if w0 is None:
        return np.zeros(prob.d)
    w0 = V.as_float_array(func, name, V.atleast_1d(func, name, w0), 1)
    if prob.bias and w0.size == d_in:
        w0 = np.append(w0, 0.0)
    if w0.size != prob.d:
        want = f"{d_in} or {d_in + 1} (with the bias last)" if prob.bias else f"{d_in}"
        raise V.fail(func, name, f"of length {want}", f"length {w0.size}")
    return np.ascontiguousarray(w0)
