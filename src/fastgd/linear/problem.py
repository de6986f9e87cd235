"""The linear unit's prepared problem: sufficient statistics (SVD of X, w*, E*), its cache,
and the final check of every cell's status from residuals."""


from __future__ import annotations

import collections
import dataclasses
import hashlib
import threading
from dataclasses import dataclass

import numpy as np

from fastgd import validate as V
from fastgd.status import GROWING_FACTOR, Status


@dataclass(frozen=True)
class Problem:
    """A linear-unit problem reduced to what the kernels need.

    X : (P, d) float64, with the constant column appended when ``bias``.
    H = X^T X / P; R = diag(s) V^T / sqrt(P) (d x d, zero rows past rank P) from the
    SVD X = U diag(s) V^T, so that R^T R = H and the excess loss is |R (w - w*)|^2 / 2
    (the kernels' form: R keeps the small singular values that a formed H loses);
    wstar: min-norm least-squares minimiser; estar = E(w*); c0 = E(0) = y.y / (2P)
    (the divergence scale's floor).
    """

    X: np.ndarray
    y: np.ndarray
    H: np.ndarray
    R: np.ndarray
    wstar: np.ndarray
    estar: float
    c0: float
    bias: bool

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
    if key is not None:
        with _CACHE_LOCK:
            hit = _CACHE.get(key)
            if hit is not None:
                _CACHE.move_to_end(key)
                return hit
    X0, y0 = X, y
    if bias:
        X = np.ascontiguousarray(np.hstack([X, np.ones((X.shape[0], 1))]))
    wstar = np.linalg.lstsq(X, y, rcond=None)[0]
    H, R, estar, c0 = _statistics(X[None], y[None], wstar[None])
    prob = Problem(X, y, H[0], R[0], np.ascontiguousarray(wstar), float(estar[0]),
                   float(c0[0]), bias)
    if key is not None:
        # the cache keeps private copies: a caller who later changes X in place changes
        # its key, never a cached problem
        if X is X0:
            X = X.copy()
        prob = dataclasses.replace(prob, X=X, y=y0.copy())
        with _CACHE_LOCK:
            _CACHE[key] = prob
            while len(_CACHE) > CACHE_SIZE:
                _CACHE.popitem(last=False)
    return prob


#: prepared problems kept by :func:`prepare` (least recently used dropped first), so that
#: repeated runs on the same data skip the least-squares solve and the SVD
CACHE_SIZE = 8
#: datasets larger than this (bytes of X) are not cached (the cache holds a copy)
CACHE_MAX_BYTES = 64 << 20
_CACHE: collections.OrderedDict = collections.OrderedDict()
_CACHE_LOCK = threading.Lock()


def _cache_key(X, y, bias):
    """Key of a validated (X, y): shapes and a BLAKE2 digest of the bytes (content, not
    identity: an array changed in place gets a new key).  None when too large."""
    if X.nbytes > CACHE_MAX_BYTES:
        return None
    h = hashlib.blake2b(digest_size=20)
    h.update(X.data)
    h.update(y.data)
    return (X.shape, bool(bias), h.digest())


def clear_cache():
    """Forget every prepared problem (:func:`prepare`'s cache)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def _statistics(Xs, ys, ws):
    """H = X^T X / P, its square root R (see :class:`Problem`), E* = |y - X w*|^2 / (2P)
    and E(0) = |y|^2 / (2P) for a stack of same-shape problems, each by one stacked
    NumPy call.  :func:`prepare` calls it with a stack of one, so a problem's statistics
    do not depend on the company it is prepared in (bit for bit; tested)."""
    n, P, d = Xs.shape
    H = np.ascontiguousarray(np.matmul(Xs.transpose(0, 2, 1), Xs) / P)
    R = hessian_roots(Xs)
    res = ys - np.matmul(Xs, ws[:, :, None])[:, :, 0]
    estar = 0.5 * np.matmul(res[:, None, :], res[:, :, None])[:, 0, 0] / P
    c0 = 0.5 * np.matmul(ys[:, None, :], ys[:, :, None])[:, 0, 0] / P
    return H, R, estar, c0


def hessian_roots(Xs):
    """R = diag(s) V^T / sqrt(P) for each X = U diag(s) V^T of a stack (n, P, d): the
    (d, d) square roots of H = X^T X / P with R^T R = H (rows past min(P, d) are 0)."""
    n, P, d = Xs.shape
    _, s, Vt = np.linalg.svd(Xs, full_matrices=False)
    R = np.zeros((n, d, d))
    R[:, : s.shape[1]] = (s / np.sqrt(P))[:, :, None] * Vt
    return R


def prepare_many(func, datasets, bias=False) -> list[Problem]:
    """:func:`prepare` for a list of checked (X, y) pairs; bit for bit the same Problems.

    When the datasets share one shape, their least-squares solutions come from one call
    of NumPy's own ``lstsq`` gufunc over the stack (the routine ``np.linalg.lstsq`` runs
    per dataset, hence the same LAPACK call and bits; measured 0.24 ms instead of 0.9 ms
    for 64 datasets of 100 x 2) and their statistics from :func:`_statistics` once.
    Otherwise, or if that private entry point is missing or reports a failure, each
    dataset goes through :func:`prepare`.
    """
    bias = V.boolean(func, "bias", bias)
    if len({(X.shape, y.shape) for X, y in datasets}) == 1:
        Xs = np.stack([X for X, _ in datasets])
        if bias:
            Xs = np.concatenate([Xs, np.ones(Xs.shape[:2] + (1,))], axis=2)
        ys = np.stack([y for _, y in datasets])
        m, n = Xs.shape[-2:]
        try:
            from numpy.linalg import _umath_linalg

            with np.errstate(invalid="raise", over="ignore", divide="ignore",
                             under="ignore"):
                W = _umath_linalg.lstsq(Xs, ys[..., None],
                                        np.finfo(np.float64).eps * max(n, m),
                                        signature="ddd->ddid")[0][..., 0]
        except Exception:  # pragma: no cover - private NumPy API moved, or LAPACK failed
            W = None
        if W is not None:
            W = np.ascontiguousarray(W)
            H, R, estar, c0 = _statistics(Xs, ys, W)
            return [Problem(Xs[k], ys[k], H[k], R[k], W[k], float(estar[k]), float(c0[k]),
                            bias)
                    for k in range(len(datasets))]
    return [prepare(func, X, y, bias, checked=True) for X, y in datasets]


#: relative slack of the CONVERGED check on the returned weights: the kernels' excess
#: (from R) and the residuals' agree to ~d * eps * kappa(X), 6e-7 at d = 64, kappa(H) = 1e16
CONVERGED_SLACK = 1e-6


def true_losses(prob: Problem, W, nworkers=1):
    """E(w) and E(w) - E* of weights ``W`` (m, d), from the data: the loss from the
    residuals y - X w, the excess as |X (w - w*)|^2 / (2P) (not as a difference of two
    losses, which cancels).  Never negative; inf where a weight is huge or non-finite.

    Per-row arithmetic does not depend on the other rows (a Numba loop), so a sweep
    cell and the matching single run agree bit for bit; ``nworkers`` threads."""
    from fastgd.kernels.threads import fan_out
    from fastgd.linear.kernels import residual_losses

    Wt = np.ascontiguousarray(np.asarray(W, dtype=np.float64).T)
    m = Wt.shape[1]
    loss = np.empty(m)
    excess = np.empty(m)
    starts = np.arange(0, m, 64, dtype=np.int64)  # blocks of cells, spread over threads
    chunks = np.ascontiguousarray(np.stack([starts, np.minimum(starts + 64, m)], axis=1))
    if m * prob.X.size < 1_000_000:  # under ~0.3 ms of work: a thread hand-off costs more
        nworkers = 1
    with np.errstate(all="ignore"):  # overflow is a result here (NUMBA_DISABLE_JIT=1 too)
        fan_out(residual_losses, (np.ascontiguousarray(prob.X), np.ascontiguousarray(prob.y),
                                  np.ascontiguousarray(prob.wstar), Wt, loss, excess, chunks),
                nworkers, ())
    bad = ~(np.isfinite(loss) & np.isfinite(excess))
    loss[bad] = np.inf
    excess[bad] = np.inf
    return loss, excess


def _check_cells(prob, cells, w0, tol, T, nworkers=1):
    """The checks of :func:`finalize` on the cells of one dataset: ``cells`` is a dict
    of flat per-cell arrays (status, w, loss, excess, tol_at, div_at), changed in place.
    Idempotent (a checked block read back from a checkpoint comes out unchanged)."""
    st = cells["status"]
    idx = np.flatnonzero((st == Status.BOUNDED) | (st == Status.CONVERGED))
    if idx.size == 0:
        return
    loss, excess = true_losses(prob, cells["w"][idx], nworkers)
    ex0 = true_losses(prob, np.asarray(w0, dtype=np.float64)[None])[1][0]
    s = st[idx]
    diverged = ~np.isfinite(loss)
    unmet = (s == Status.CONVERGED) & ~(excess <= tol * ex0 * (1.0 + CONVERGED_SLACK))
    s = np.where(diverged, Status.DIVERGED, np.where(unmet, Status.BOUNDED, s))
    st[idx] = s
    cells["loss"][idx] = loss
    cells["excess"][idx] = excess
    cells["div_at"][idx] = np.where(diverged, T, cells["div_at"][idx])
    cells["tol_at"][idx] = np.where(s == Status.CONVERGED, cells["tol_at"][idx], -1)


_CHECKED = ("status", "w", "loss", "excess", "tol_at", "div_at")


def finalize(probs, out, w0, tol, T):
    """Check every finished cell of ``out`` against the truth of the weights it returns
    (in place): loss and excess recomputed from residuals (:func:`true_losses`), so the
    reported loss is the loss of the reported weights on the float64 data, whatever the
    kernel's precision or kappa; a BOUNDED cell whose loss is not finite becomes
    DIVERGED (at the end of its budget ``T``); a CONVERGED cell whose excess exceeds
    ``tol`` x its initial excess (up to :data:`CONVERGED_SLACK`) becomes BOUNDED -- the
    tolerance was met in the kernel's arithmetic, not by the weights returned."""
    for di, prob in enumerate(probs):
        cells = {k: getattr(out, k)[di].reshape((-1,) + getattr(out, k).shape[3:])
                 for k in _CHECKED}  # views: contiguous per-dataset slices
        _check_cells(prob, cells, w0, tol, T)


def fill_records(out):
    """Curves of a sweep stay flat after a run stopped: the kernels write a cell's record
    at its last step only, so each converged or bounded cell's last finite record is
    carried forward over the inf its unwritten records start at (also for a CONVERGED
    cell that :func:`finalize` turned BOUNDED: it stopped early).  Diverged cells keep
    inf after their end; cells not run stay inf throughout."""
    rec = out.rec_loss
    if rec.shape[-1] == 0:
        return
    k = np.arange(rec.shape[-1])
    last = np.maximum.accumulate(np.where(np.isfinite(rec), k, 0), axis=-1)
    filled = np.take_along_axis(rec, last, axis=-1)
    keep = (out.status == Status.DIVERGED)[..., None] | np.isfinite(rec)
    rec[...] = np.where(keep, rec, filled)


def finalize_block(probs, res, w0, tol, T, nworkers=1):
    """:func:`finalize` for one block of results (a dict of per-cell arrays in row order,
    :func:`fastgd.linear.executors.run_block`), in place.  Idempotent: a block that was already
    checked (e.g. read back from a checkpoint) comes out unchanged."""
    rows = res["rows"]
    cell_data = np.repeat(rows[:, 0], rows[:, 3] - rows[:, 2])
    for di in np.unique(cell_data):
        sel = np.flatnonzero(cell_data == di)
        cells = {k: res[k][sel] for k in _CHECKED}
        _check_cells(probs[int(di)], cells, w0, tol, T, nworkers)
        for k in _CHECKED:
            res[k][sel] = cells[k]


def growing(probs, out, w0):
    """(n_data, n_seed, n_lr) bool: BOUNDED cells whose final loss exceeds
    :data:`GROWING_FACTOR` x max(initial loss, loss at w = 0)."""
    w0 = np.asarray(w0, dtype=np.float64)
    scale = np.array([max(true_losses(p, w0[None])[0][0], p.c0) for p in probs])
    with np.errstate(invalid="ignore", over="ignore"):
        return (out.status == Status.BOUNDED) & \
            (out.loss > GROWING_FACTOR * scale[:, None, None])


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
