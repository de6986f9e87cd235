"""Scalar chain networks f(x) = w_L ... w_1 x (depth L >= 2; L = 2 is the lecture's 1-1-1).

Loss (note the 1/2 and the loss scale c = ``loss_scale``)::

    E(w) = c/(2P) sum_p (y_p - pi x_p)^2,   pi = w_1 w_2 ... w_L.

c = 1 is fastgd's convention everywhere; c = 2 reproduces the lecture's unhalved
(1 - W1 W2)^2.  Every threshold in the learning rate eta scales as 1/c.

E depends on w only through the product pi, as a 1-D quadratic::

    E = E* + c/2 Sxx (pi - pi*)^2,  Sxx = mean x^2, Sxy = mean x y, pi* = Sxy / Sxx,

with E* = c/2 mean (y - pi* x)^2 the residual of the least-squares fit of the product:
E* = 0 when the samples can be fitted (one sample, or y_p / x_p the same for all p).
When they cannot (inconsistent ratios), the minima are those of the 1-D problem in pi,
and "converged" and the excess losses refer to E - E* (DESIGN.md).  Batch GD is called
converged only where the nearby minimum is linearly stable (lr NTK(w) <= 2), see
:func:`chain_gd`.

Gradient dE/dw_i = c r p_i with r = Sxx (pi - pi*) and p_i = prod_{j != i} w_j.
Hessian: H_ii = c Sxx p_i^2, H_ik = c (Sxx p_i p_k + r p_ik) (i != k, p_ik the product
without w_i and w_k).  The NTK (Gauss-Newton curvature) is c Sxx sum_i p_i^2; at a
minimum (r = 0) it equals the sharpness.

Facts (L = 2, tested in tests/test_chain.py):

* GD conserves nothing, but w1'^2 - w2'^2 = (w1^2 - w2^2)(1 - c^2 eta^2 e^2), e = Sxx(w1 w2 - pi*)
  (e = w1 w2 - y for one sample x = 1).
* Every minimum has sharpness c Sxx (w1^2 + w2^2) >= 2 c |Sxy|, so no minimum is stable
  once c eta |Sxy| >= 1 (c eta y >= 1 for x = 1).  Depth L: min sharpness
  c Sxx L |pi*|^(2 - 2/L).
* On the balanced line w1 = w2 = u (kept by GD) let z = eta c Sxx u^2 and b = eta c Sxy.
  Then z' = z (1 + b - z)^2: z = 2 + b is a fixed point (u' = -u), z > 2 + b grows
  without bound, and for 0 < b <= 2 the interval [0, 2 + b] is invariant (the maximum of
  z (1 + b - z)^2 below 1 + b is 4 (1 + b)^3 / 27 <= 2 + b).  With NTK0 = 2 c Sxx u^2 = 2z/eta
  the divergence boundary is exactly eta NTK0 = 4 + 2 c eta Sxy.  In terms of the
  initial sharpness lambda0 = c (3 Sxx u^2 - Sxy) (for u^2 >= Sxy/(2 Sxx)) it reads
  eta lambda0 = 6 + 2 c eta Sxy: the naive 2/lambda0 is far from the measured boundary.

References: Lewkowycz et al., "The large learning rate phase of deep learning: the
catapult mechanism", 2020; Cohen et al., "Gradient Descent on Neural Networks Typically
Occurs at the Edge of Stability", ICLR 2021; Kreisler et al., ICML 2023.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from fastgd import status as ST
from fastgd import validate as V
from fastgd.engine import cost as _cost
from fastgd.engine import grid as G
from fastgd.status import Status

__all__ = [
    "ChainMinima",
    "ChainRun",
    "ChainSweepResult",
    "chain_gd",
    "chain_grad",
    "chain_hessian",
    "chain_loss",
    "chain_minima",
    "chain_ntk",
    "chain_sgd",
    "chain_sharpness",
    "chain_sweep",
]

LANES = 64  # cells per chunk (SIMD lanes)


# ----------------------------------------------------------------------------- inputs
@dataclass(frozen=True)
class _Stats:
    X: np.ndarray
    Y: np.ndarray
    c: float
    sxx: float
    sxy: float
    pstar: float
    estar: float
    c0: float


def _stats(func, x, y, loss_scale) -> _Stats:
    c = V.real(func, "loss_scale", loss_scale, positive=True)
    xs = np.isscalar(x) or V.ndim_of(x) == 0
    ys = np.isscalar(y) or V.ndim_of(y) == 0
    X = V.as_float_array(func, "x", V.atleast_1d(func, "x", x), 1)
    Y = V.as_float_array(func, "y", V.atleast_1d(func, "y", y), 1)
    if xs and not ys:
        X = np.full(Y.shape, X[0])
    elif ys and not xs:
        Y = np.full(X.shape, Y[0])
    if X.shape != Y.shape:
        raise V.fail(func, "y", f"a number or of length P = {X.shape[0]} (the length of 'x')",
                     f"length {Y.shape[0]}")
    if not np.any(X != 0):
        raise V.fail(func, "x", "not all zero (the loss would not depend on w)", "all zeros")
    with np.errstate(all="ignore"):
        sxx = float(np.mean(X * X))
        sxy = float(np.mean(X * Y))
        pstar = sxy / sxx
        res = Y - pstar * X
        estar = 0.5 * c * float(np.mean(res * res))
        c0 = 0.5 * c * float(np.mean(Y * Y))
    if not all(np.isfinite(v) for v in (sxx, sxy, pstar, estar, c0)):
        raise V.fail(func, "x", "small enough for mean x^2, mean x y, mean y^2 to be finite",
                     "overflow")
    return _Stats(np.ascontiguousarray(X), np.ascontiguousarray(Y), c, sxx, sxy, pstar,
                  estar, c0)


def _weights(func, name, w, *, batch=True):
    """w as float64 (..., L) with L >= 2 (only (L,) when ``batch`` is False)."""
    if isinstance(w, (str, bytes)) or w is None:
        raise V.fail_type(func, name, "an array of weights with the depth L >= 2 last", w)
    if V.ndim_of(w) == -1:
        raise V.fail_type(func, name, "an array of weights with the depth L >= 2 last", w)
    arr = np.asarray(w)
    if arr.ndim == 0:
        raise V.fail(func, name, "an array with the depth L >= 2 as its last axis",
                     "a scalar")
    if not batch and arr.ndim != 1:
        raise V.fail(func, name, "a 1-D array of length L >= 2", f"shape {arr.shape}")
    arr = V.as_float_array(func, name, arr, arr.ndim)
    if arr.shape[-1] < 2:
        raise V.fail(func, name, "of depth L >= 2 (last axis)", f"shape {arr.shape}")
    return arr


def _loo(w):
    """Leave-one-out products p[..., i] = prod_{j != i} w[..., j] (no division)."""
    L = w.shape[-1]
    p = np.empty_like(w)
    for i in range(L):
        p[..., i] = np.prod(np.delete(w, i, axis=-1), axis=-1)
    return p


# --------------------------------------------------------------------- point functions
def chain_loss(w, x=1.0, y=1.0, *, loss_scale=1.0):
    """Loss E(w) = c/(2P) sum_p (y_p - w_L ... w_1 x_p)^2 of a scalar chain.

    Parameters
    ----------
    w : array (..., L)
        Weights, depth L >= 2 last (w[..., 0] multiplies the input).  Leading axes are
        a batch: ``chain_loss(np.stack([W1, W2], -1))`` evaluates a landscape grid.
    x, y : float or array (P,)
        Samples (a scalar broadcasts against the other).
    loss_scale : float
        c > 0; c = 2 is the lecture's unhalved (1 - W1 W2)^2.  Thresholds in eta scale as 1/c.

    Returns
    -------
    array (...) (a NumPy float for a single point)
        Computed as E* + c/2 Sxx (pi - pi*)^2 (module doc): the same form the kernels use.

    Examples
    --------
    >>> import fastgd.chain as ch
    >>> float(ch.chain_loss([0.0, 0.0], loss_scale=2.0)), float(ch.chain_loss([2.0, 0.5]))
    (1.0, 0.0)
    """
    f = "chain_loss"
    s = _stats(f, x, y, loss_scale)
    return _loss(_weights(f, "w", w), s)


def _loss(w, s):
    with np.errstate(all="ignore"):
        d = np.prod(w, axis=-1) - s.pstar
        return s.estar + 0.5 * s.c * s.sxx * d * d


def chain_grad(w, x=1.0, y=1.0, *, loss_scale=1.0):
    """Gradient dE/dw_i = c Sxx (pi - pi*) prod_{j != i} w_j, shape (..., L).

    Parameters as in :func:`chain_loss`.

    Examples
    --------
    >>> import fastgd.chain as ch
    >>> ch.chain_grad([1.0, 3.0], y=1.0).tolist()   # r = 3 - 1 = 2: (2*3, 2*1)
    [6.0, 2.0]
    """
    f = "chain_grad"
    s = _stats(f, x, y, loss_scale)
    w = _weights(f, "w", w)
    with np.errstate(all="ignore"):
        r = s.sxx * (np.prod(w, axis=-1) - s.pstar)
        return s.c * r[..., None] * _loo(w)


def chain_hessian(w, x=1.0, y=1.0, *, loss_scale=1.0):
    """Analytic Hessian of :func:`chain_loss`, shape (..., L, L).

    H_ii = c Sxx p_i^2 and H_ik = c (Sxx p_i p_k + r p_ik) for i != k, with
    p_i = prod_{j != i} w_j, p_ik = prod_{j != i, k} w_j and r = Sxx (pi - pi*).

    Examples
    --------
    >>> import fastgd.chain as ch
    >>> ch.chain_hessian([0.0, 0.0]).tolist()   # the saddle at the origin: eigenvalues +-1
    [[0.0, -1.0], [-1.0, 0.0]]
    """
    f = "chain_hessian"
    s = _stats(f, x, y, loss_scale)
    w = _weights(f, "w", w)
    return _hessian(w, s)


def _hessian(w, s):
    L = w.shape[-1]
    with np.errstate(all="ignore"):
        p = _loo(w)
        r = s.sxx * (np.prod(w, axis=-1) - s.pstar)
        H = s.sxx * p[..., :, None] * p[..., None, :]
        for i in range(L):
            for k in range(i + 1, L):
                pik = np.prod(np.delete(w, [i, k], axis=-1), axis=-1)
                H[..., i, k] += r * pik
                H[..., k, i] = H[..., i, k]
        return s.c * H


def _sharpness(w, s):
    H = _hessian(w, s)
    ok = np.all(np.isfinite(H), axis=(-2, -1))
    out = np.full(H.shape[:-2], np.inf)
    if np.any(ok):
        out[ok] = np.linalg.eigvalsh(H[ok])[..., -1]
    return out


def _ntk(w, s):
    with np.errstate(all="ignore"):
        p = _loo(w)
        return s.c * s.sxx * np.sum(p * p, axis=-1)


def chain_sharpness(w, x=1.0, y=1.0, *, loss_scale=1.0):
    """Sharpness: the top eigenvalue of :func:`chain_hessian`, shape (...).

    ``inf`` where the Hessian overflows.  At a minimum of L = 2 it equals
    c Sxx (w1^2 + w2^2) (= c (w1^2 + w2^2) for x = 1); GD is locally stable at a
    minimum iff eta * sharpness < 2.

    Examples
    --------
    >>> import fastgd.chain as ch
    >>> float(ch.chain_sharpness([2.0, 0.5]))   # a minimum of the lecture's hyperbola, c = 1
    4.25
    """
    f = "chain_sharpness"
    s = _stats(f, x, y, loss_scale)
    return _sharpness(_weights(f, "w", w), s)


def chain_ntk(w, x=1.0, y=1.0, *, loss_scale=1.0):
    """NTK (Gauss-Newton curvature) c mean_p x_p^2 sum_i prod_{j != i} w_j^2, shape (...).

    Equals the sharpness at a minimum.  On the balanced line of L = 2 GD diverges
    exactly above eta * NTK0 = 4 + 2 c eta Sxy (module doc).

    Examples
    --------
    >>> import fastgd.chain as ch
    >>> float(ch.chain_ntk([1.0, 1.0], loss_scale=2.0))
    4.0
    """
    f = "chain_ntk"
    s = _stats(f, x, y, loss_scale)
    return _ntk(_weights(f, "w", w), s)


@dataclass(frozen=True)
class ChainMinima:
    """The solution set {w : prod_i w_i = pi*} of a depth-L chain (module doc).

    Attributes
    ----------
    depth : int
    product : float
        pi* = Sxy / Sxx: every minimum has w_1 ... w_L = pi* (for L = 2 and pi* != 0 the
        hyperbola w2 = pi*/w1, two branches).
    loss : float
        E* (0 when the samples can be fitted).
    exact : bool
        Whether the samples can be fitted exactly (y_p = pi* x_p for all p, to rounding).
    min_sharpness : float
        Smallest sharpness over the minima, c Sxx L |pi*|^(2 - 2/L), at the balanced
        minima |w_i| = |pi*|^(1/L) (2 c |Sxy| for L = 2).
    max_stable_lr : float
        2 / min_sharpness: at and above this eta no minimum is (strictly) stable
        (``inf`` when pi* = 0).  Scales as 1/c.
    saddle_curvature : float
        For L = 2: the Hessian at the origin (a saddle) has eigenvalues +-c|Sxy|;
        for L >= 3 the origin is a degenerate critical point (0).
    loss_scale : float
    """

    depth: int
    product: float
    loss: float
    exact: bool
    min_sharpness: float
    max_stable_lr: float
    saddle_curvature: float
    loss_scale: float

    def point(self, free):
        """Complete the first L - 1 weights ``free`` (..., L - 1) to a minimum (..., L)."""
        free = np.asarray(free, dtype=np.float64)
        if free.ndim == 0 or free.shape[-1] != self.depth - 1:
            raise V.fail("ChainMinima.point", "free", f"of shape (..., {self.depth - 1})",
                         f"shape {free.shape}")
        with np.errstate(all="ignore"):
            last = self.product / np.prod(free, axis=-1)
        return np.concatenate([free, last[..., None]], axis=-1)

    def hyperbola(self, w1):
        """L = 2: the second weight w2 = pi*/w1 on the solution set (for plots)."""
        if self.depth != 2:
            raise V.fail("ChainMinima.hyperbola", "depth", "2", self.depth)
        with np.errstate(all="ignore"):
            return self.product / np.asarray(w1, dtype=np.float64)


def chain_minima(depth=2, x=1.0, y=1.0, *, loss_scale=1.0) -> ChainMinima:
    """Describe the minima of the depth-``depth`` chain on samples (x, y).

    Examples
    --------
    >>> import fastgd.chain as ch
    >>> m = ch.chain_minima(2, loss_scale=2.0)    # the lecture: (1 - W1 W2)^2
    >>> m.product, m.min_sharpness, m.max_stable_lr
    (1.0, 4.0, 0.5)
    """
    f = "chain_minima"
    depth = V.integer(f, "depth", depth, minimum=2)
    s = _stats(f, x, y, loss_scale)
    ms = s.c * s.sxx * depth * abs(s.pstar) ** (2.0 - 2.0 / depth)
    exact = bool(np.all(np.abs(s.Y - s.pstar * s.X) <= 1e-12 * np.max(np.abs(s.Y))))
    return ChainMinima(depth=depth, product=float(s.pstar), loss=0.0 if exact else s.estar,
                       exact=exact, min_sharpness=float(ms),
                       max_stable_lr=float(2.0 / ms) if ms > 0 else float("inf"),
                       saddle_curvature=float(s.c * abs(s.sxy)) if depth == 2 else 0.0,
                       loss_scale=s.c)


# ------------------------------------------------------------------------------- runs
class _Out:
    """Flat per-cell kernel outputs."""

    def __init__(self, n, depth, n_rec=0, rec_w=False):
        self.status = np.full(n, Status.NOT_RUN, dtype=np.int8)
        self.w = np.zeros((n, depth))
        self.excess = np.full(n, np.inf)
        self.tol_at = np.full(n, -1, dtype=np.int64)
        self.div_at = np.full(n, -1, dtype=np.int64)
        self.maxloss = np.full(n, np.inf)
        self.rec_loss = np.full((n, n_rec), np.inf)
        self.rec_w = np.zeros((n, n_rec if rec_w else 0, depth))

    def args(self):
        return (self.status, self.w, self.excess, self.tol_at, self.div_at, self.maxloss,
                self.rec_loss, self.rec_w)


def _common(f, steps, stepname, tol, blowup):
    steps = V.integer(f, stepname, steps, minimum=0)
    tol = V.real(f, "tol", tol, nonneg=True)
    blowup = V.blowup(f, blowup)
    return steps, tol, blowup


def _sgd_opts(f, s, batch_size, order, seed):
    batch_size = V.integer(f, "batch_size", batch_size, minimum=1, maximum=s.X.shape[0])
    code = ST.ORDERS[V.choice(f, "order", order, tuple(ST.ORDERS))]
    seed = V.integer(f, "seed", seed, minimum=0)
    return batch_size, code, seed


def _launch(method, s, inits, lrs, steps, tol, blowup, out, chunks, nworkers, sgd):
    """Call the grid driver of ``method`` on the chunk rows (one kernel family)."""
    with np.errstate(all="ignore"):
        if method == "gd":
            from fastgd.chain.kernels import grid_gd_chain

            grid_gd_chain(s.sxx, s.pstar, s.estar, s.c0, s.c, inits, lrs, steps, tol, blowup,
                          chunks, nworkers, *out.args())
        else:
            from fastgd.chain.kernels import grid_sgd_chain

            batch, code, key = sgd
            grid_sgd_chain(s.X, s.Y, s.sxx, s.pstar, s.estar, s.c0, s.c, inits, lrs, steps,
                           batch, code, key, tol, blowup, chunks, nworkers, *out.args())


def _ratio(maxloss, loss0):
    with np.errstate(all="ignore"):
        ratio = np.where(loss0 > 0, maxloss / np.where(loss0 > 0, loss0, 1.0), 1.0)
    return np.where(np.isinf(maxloss), np.inf, ratio)


@dataclass(frozen=True)
class ChainRun:
    """Result of one chain run (:func:`chain_gd`, :func:`chain_sgd`).

    Attributes
    ----------
    status : Status
        CONVERGED (excess loss E - E* <= tol x initial excess), DIVERGED (E not finite or
        > blowup x max(E(w0), E(0))), or BOUNDED.
    w : (L,) array
        Final weights; for a diverged run the last iterate that passed the check.
    loss : float
        E(w) at the end (``inf`` when diverged).  excess : float, E(w) - E*.
    sharpness : float
        Top Hessian eigenvalue at ``w`` (a converged run ends with sharpness <= 2/lr).
    ntk : float
        NTK at ``w``.
    lambda0, ntk0, loss0 : float
        Sharpness, NTK and loss at w0 (read lr in units of lr * lambda0 or lr * ntk0).
    max_loss_ratio : float
        max_t E(w_t) / E(w0) over the checked iterates (> 1: the loss spiked, e.g. a
        catapult; ``inf`` when diverged; 1 when E(w0) = 0).
    steps_to_tol : int
        Step (epoch for SGD) at which it converged, -1 if never.
    diverged_at : int
        Step / epoch at which divergence was detected, -1 if none.
    losses : (n,) array
        E per step (epoch), starting with E(w0), up to the step it finished
        (``inf`` at a divergence step).
    trajectory : (n, L) array or None
        Weights per step (``record=True``); at a divergence step the reported ``w``.
    sharpnesses : (n,) array or None
        Sharpness per step (``record=True``).
    lr, loss_scale : float
    method, unit : str
        ``"gd"``/``"step"`` or ``"sgd"``/``"epoch"``.
    """

    status: Status
    w: np.ndarray
    loss: float
    excess: float
    sharpness: float
    ntk: float
    lambda0: float
    ntk0: float
    loss0: float
    max_loss_ratio: float
    steps_to_tol: int
    diverged_at: int
    losses: np.ndarray
    trajectory: np.ndarray | None
    sharpnesses: np.ndarray | None
    lr: float
    loss_scale: float
    method: str
    unit: str

    @property
    def converged(self) -> bool:
        return self.status == Status.CONVERGED

    @property
    def diverged(self) -> bool:
        return self.status == Status.DIVERGED


def _single(f, method, w0, lr, steps, x, y, loss_scale, record, tol, blowup, sgd_opts=None):
    s = _stats(f, x, y, loss_scale)
    w0 = _weights(f, "w0", w0, batch=False)
    lr = V.real(f, "lr", lr, positive=True)
    steps, tol, blowup = _common(f, steps, "steps" if method == "gd" else "epochs", tol,
                                 blowup)
    record = V.boolean(f, "record", record)
    sgd = None
    if method == "sgd":
        batch, code, seed = _sgd_opts(f, s, *sgd_opts)
        sgd = (batch, code, G.seed_key(seed))
    L = w0.shape[0]
    _cost.run(f, "steps" if method == "gd" else "epochs", steps, L,
              L * (s.X.shape[0] if method == "sgd" else 1), record)
    out = _Out(1, L, n_rec=steps + 1, rec_w=record)
    chunks = G.make_chunks(1, 1, 1, 1)
    _launch(method, s, w0[None], np.array([lr]), steps, tol, blowup, out, chunks, 1, sgd)
    st = Status(int(out.status[0]))
    end = {Status.CONVERGED: int(out.tol_at[0]), Status.DIVERGED: int(out.div_at[0])}.get(
        st, steps)
    w = out.w[0].copy()
    excess = float(out.excess[0])
    loss0 = float(_loss(w0, s))
    traj = out.rec_w[0, : end + 1].copy() if record else None
    return ChainRun(
        status=st, w=w, loss=float(s.estar + excess), excess=excess,
        sharpness=float(_sharpness(w, s)), ntk=float(_ntk(w, s)),
        lambda0=float(_sharpness(w0, s)), ntk0=float(_ntk(w0, s)), loss0=loss0,
        max_loss_ratio=float(_ratio(out.maxloss[0], loss0)),
        steps_to_tol=int(out.tol_at[0]), diverged_at=int(out.div_at[0]),
        losses=out.rec_loss[0, : end + 1].copy(), trajectory=traj,
        sharpnesses=_sharpness(traj, s) if record else None, lr=lr, loss_scale=s.c,
        method=method, unit="step" if method == "gd" else "epoch")


def chain_gd(w0, lr, steps, x=1.0, y=1.0, *, loss_scale=1.0, record=False, tol=1e-10,
             blowup=1e12) -> ChainRun:
    """Batch gradient descent on a scalar chain, E = c/(2P) sum_p (y_p - w_L...w_1 x_p)^2.

    Parameters
    ----------
    w0 : array (L,)
        Initial weights, depth L >= 2 (w0[0] multiplies the input).
    lr : float
        Learning rate eta > 0.  Thresholds in eta scale as 1/c.
    steps : int
        Step budget (>= 0).
    x, y : float or array (P,)
        Samples (default the lecture's x = y = 1).
    loss_scale : float
        c; c = 2 is the lecture's (1 - W1 W2)^2.
    record : bool
        Keep the weight trajectory and the sharpness per step.
    tol : float
        Converged when E - E* <= tol * (E(w0) - E*) and the nearby minimum is linearly
        stable, lr * NTK(w) <= 2 (beyond the edge of stability a chaotic orbit can pass
        within tol of an unstable minimum and leave again: that is not convergence);
        the run stops there.
    blowup : float (>= 1)
        Diverged when E is not finite or E > blowup * max(E(w0), E(0)), E(0) = c/2 mean y^2.
        The floor E(0) keeps a catapult (a run starting next to a minimum that spikes
        10^4-10^5 x its initial loss, then settles at a flatter minimum) from being
        called diverged.

    Returns
    -------
    ChainRun

    Notes
    -----
    A single run is a grid of one cell through the sweep kernel
    (``_kernels.chain.grid_gd_chain``): a :func:`chain_sweep` cell and the matching run
    are bit-identical.  Each step costs O(L) for any number of samples (sufficient
    statistics mean x^2, mean x y).

    Examples
    --------
    >>> import fastgd.chain as ch
    >>> r = ch.chain_gd([0.5, 0.5], lr=0.1, steps=1000, loss_scale=2.0)
    >>> r.status.name, round(float(r.w[0] * r.w[1]), 4)
    ('CONVERGED', 1.0)
    """
    return _single("chain_gd", "gd", w0, lr, steps, x, y, loss_scale, record, tol, blowup)


def chain_sgd(w0, lr, epochs, x=1.0, y=1.0, *, batch_size=1, order="cyclic", seed=0,
              loss_scale=1.0, record=False, tol=1e-10, blowup=1e12) -> ChainRun:
    """Stochastic (per-sample or minibatch) gradient descent on a scalar chain.

    Each epoch presents the P samples in batches of ``batch_size`` (the last batch
    smaller when it does not divide P); each batch takes one step on its mean gradient
    c (1/B) sum_p x_p (pi x_p - y_p) p_i.  ``batch_size=P`` with ``order="cyclic"`` is
    batch GD (to rounding).  Status, losses, trajectory are per epoch; the loss is the
    full E.  When the samples cannot be fitted (inconsistent y/x), SGD fluctuates
    around the minima and typically ends BOUNDED.  Unlike :func:`chain_gd`, CONVERGED is
    the plain rule (excess <= tol x initial excess, checked once per epoch), without the
    linear-stability condition lr NTK <= 2 (SGD's per-sample stability differs).

    Parameters
    ----------
    w0, lr, x, y, loss_scale, record, tol, blowup
        As in :func:`chain_gd`.
    epochs : int
        Number of passes (>= 0).
    batch_size : int in [1, P]
    order : {"cyclic", "shuffle", "replacement"}
        As in :func:`fastgd.sgd` (counter-based, from ``seed``).
    seed : int

    Returns
    -------
    ChainRun

    Examples
    --------
    >>> import fastgd.chain as ch
    >>> r = ch.chain_sgd([0.5, 0.5], 0.05, 500, x=[1.0, 2.0, -1.0], y=[2.0, 4.0, -2.0],
    ...                  order="shuffle", seed=1)
    >>> r.status.name, round(float(r.w[0] * r.w[1]), 4)
    ('CONVERGED', 2.0)
    """
    return _single("chain_sgd", "sgd", w0, lr, epochs, x, y, loss_scale, record, tol, blowup,
                   (batch_size, order, seed))


# ----------------------------------------------------------------------------- sweeps
REGIONS = ("no convergence", "monotone convergence", "convergence after a spike",
           "divergence")


@dataclass(frozen=True)
class ChainSweepResult:
    """Outcome of a (initialisation x learning rate) grid of chain runs.

    Per-cell arrays are shaped (n_init, n_lr).

    Attributes
    ----------
    inits : (n_init, L)      lr : (n_lr,)
    status : int8            Status codes (BOUNDED 0, CONVERGED 1, DIVERGED 2).
    w : (n_init, n_lr, L)    Final weights (last checked iterate when diverged).
    loss, excess : float     Final E and E - E* (``inf`` when diverged).
    sharpness : float        Final top Hessian eigenvalue (at ``w``).
    max_loss_ratio : float   max_t E(w_t) / E(w0) (> 1: a spike; ``inf`` when diverged).
    steps_to_tol, diverged_at : int64 (-1 if not).
    lambda0, ntk0, loss0 : (n_init,)  Initial sharpness, NTK and loss.
    product_star : float     pi*, the product at every minimum.
    loss_star : float        E*.
    depth, steps : int;  loss_scale, tol, blowup : float;  method : str
    seconds : float          Wall time of the kernels; threads : int.
    """

    inits: np.ndarray
    lr: np.ndarray
    status: np.ndarray
    w: np.ndarray
    loss: np.ndarray
    excess: np.ndarray
    sharpness: np.ndarray
    max_loss_ratio: np.ndarray
    steps_to_tol: np.ndarray
    diverged_at: np.ndarray
    lambda0: np.ndarray
    ntk0: np.ndarray
    loss0: np.ndarray
    product_star: float
    loss_star: float
    depth: int
    steps: int
    loss_scale: float
    tol: float
    blowup: float
    method: str
    seconds: float
    threads: int

    @property
    def product(self):
        """Final product w_1 ... w_L per cell (pi* at a minimum)."""
        return np.prod(self.w, axis=-1)

    @property
    def branch(self):
        """Sign pattern of the final weights: bit i set when w_i < 0 (which minimum)."""
        bits = (self.w < 0).astype(np.int64) << np.arange(self.depth)
        return bits.sum(axis=-1)

    @property
    def imbalance(self):
        """w_1^2 - w_L^2 at the end (for L = 2 the lecture's w1^2 - w2^2)."""
        return self.w[..., 0] ** 2 - self.w[..., -1] ** 2

    @property
    def lr_lambda0(self):
        """eta * lambda0 per cell (the naive boundary is 2)."""
        return self.lr[None, :] * self.lambda0[:, None]

    @property
    def lr_ntk0(self):
        """eta * NTK0 per cell (balanced L = 2: diverges above 4 + 2 c eta Sxy)."""
        return self.lr[None, :] * self.ntk0[:, None]

    def regions(self, spike=1.0):
        """Per-cell region code, index into :data:`REGIONS`: 0 no convergence
        (BOUNDED), 1 monotone convergence (max loss ratio <= ``spike``), 2 convergence
        after a loss spike, 3 divergence."""
        code = np.zeros(self.status.shape, dtype=np.int8)
        conv = self.status == Status.CONVERGED
        code[conv & (self.max_loss_ratio <= spike)] = 1
        code[conv & (self.max_loss_ratio > spike)] = 2
        code[self.status == Status.DIVERGED] = 3
        return code


def chain_sweep(inits, lr, steps=1000, x=1.0, y=1.0, *, loss_scale=1.0, method="gd",
                batch_size=1, order="cyclic", seed=0, tol=1e-10, blowup=1e12, threads=None,
                progress=None) -> ChainSweepResult:
    """Run every (initialisation, learning rate) pair of a scalar chain (lanes kernels).

    Parameters
    ----------
    inits : array (n_init, L) or (L,)
        Initial weights, depth L >= 2.
    lr : float or array (n_lr,)
        Learning rates (> 0).  Thresholds scale as 1/c.
    steps : int
        Step budget (epochs for ``method="sgd"``).
    x, y, loss_scale, tol, blowup
        As in :func:`chain_gd`.
    method : {"gd", "sgd"}
        Batch GD, or SGD with ``batch_size``/``order``/``seed`` as in :func:`chain_sgd`
        (one seed: every cell sees the same sample order).
    threads : int, optional
        Numba threads for this call (default: numba's current setting).
    progress : bool, optional
        Progress bar (tqdm) for long sweeps; None = automatic.

    Returns
    -------
    ChainSweepResult
        Cell (i, j) equals ``chain_gd(inits[i], lr[j], steps, ...)`` bit for bit.

    Examples
    --------
    >>> import numpy as np, fastgd.chain as ch
    >>> u = np.linspace(0.2, 2.0, 10)
    >>> res = ch.chain_sweep(np.stack([u, u], 1), [0.05, 0.5], 2000, loss_scale=2.0)
    >>> res.status.shape, bool(np.all(res.sharpness[res.status == 1] <= 2 / 0.05))
    ((10, 2), True)
    """
    f = "chain_sweep"
    s = _stats(f, x, y, loss_scale)
    inits = _weights(f, "inits", inits)
    if inits.ndim == 1:
        inits = inits[None]
    if inits.ndim != 2:
        raise V.fail(f, "inits", "of shape (n_init, L) or (L,)", f"shape {inits.shape}")
    inits = np.ascontiguousarray(inits)
    lrs = V.rates(f, "lr", lr)
    method = V.choice(f, "method", method, ("gd", "sgd"))
    steps, tol, blowup = _common(f, steps, "steps", tol, blowup)
    sgd = None
    batch, code, seed = _sgd_opts(f, s, batch_size, order, seed)  # checked for GD too
    if method == "sgd":
        sgd = (batch, code, G.seed_key(seed))
    progress = V.boolean(f, "progress", progress, allow_none=True)
    V.threads(f, threads)
    n_init, L = inits.shape
    n = n_init * lrs.shape[0]
    G.check_memory(f, n, 2 * (1 + 8 * (L + 8)))
    per = L * (s.X.shape[0] if method == "sgd" else 1)
    _cost.check(f, "steps", work=float(n) * steps * per,
                work_what=f"{n:,} cells x {steps:,} steps x {per:,}",
                hint="use fewer cells or steps")
    out = _Out(n, L)
    chunks = G.make_chunks(1, 1, n, LANES)

    def call(rows, nw):
        _launch(method, s, inits, lrs, steps, tol, blowup, out, rows, nw, sgd)

    t0 = time.perf_counter()
    with G.using_threads(f, threads) as nw:
        G.execute(call, chunks, nw, progress=progress, desc=f)
    seconds = time.perf_counter() - t0
    shape = (n_init, lrs.shape[0])
    w = out.w.reshape(shape + (L,))
    loss0 = _loss(inits, s)
    excess = out.excess.reshape(shape)
    return ChainSweepResult(
        inits=inits, lr=lrs, status=out.status.reshape(shape), w=w, loss=s.estar + excess,
        excess=excess, sharpness=_sharpness(w, s),
        max_loss_ratio=_ratio(out.maxloss.reshape(shape), loss0[:, None]),
        steps_to_tol=out.tol_at.reshape(shape), diverged_at=out.div_at.reshape(shape),
        lambda0=_sharpness(inits, s), ntk0=_ntk(inits, s), loss0=loss0,
        product_star=float(s.pstar), loss_star=float(s.estar), depth=L, steps=steps,
        loss_scale=s.c, tol=tol, blowup=blowup, method=method, seconds=seconds, threads=nw)
