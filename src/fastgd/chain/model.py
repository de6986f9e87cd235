"""The chain's model: sample statistics, loss, gradient, Hessian, sharpness, NTK, minima.

Everything here is NumPy on the sufficient statistics Sxx = mean x^2, Sxy = mean x y of
the samples (the formulas are in the package docstring, :mod:`fastgd.chain`); the run
and sweep modules call these for the initial and final curvature of every run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fastgd import validate as V

__all__ = [
    "ChainMinima",
    "chain_grad",
    "chain_hessian",
    "chain_loss",
    "chain_minima",
    "chain_ntk",
    "chain_sharpness",
]


# ----------------------------------------------------------------------------- inputs
@dataclass(frozen=True, eq=False)
class _Stats:
    """The samples as float64 arrays and the statistics every chain function uses:
    loss scale c, Sxx, Sxy, pi* = Sxy/Sxx, E* (the residual loss) and E(0) = c/2 mean y^2
    (the first fields of :class:`fastgd.chain.contract.ChainInputs`, which extends it;
    compared and hashed by identity, as the inputs are)."""

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
        pstar = sxy / sxx if sxx > 0 else np.inf
        res = Y - pstar * X
        estar = 0.5 * c * float(np.mean(res * res))
        c0 = 0.5 * c * float(np.mean(Y * Y))
    if not sxx > 0:  # every x^2 underflows: the loss would not depend on w in float64
        raise V.fail(func, "x", "large enough for mean x^2 to be > 0 in float64 "
                     "(|x|max above about 1e-154)", f"|x|max = {np.max(np.abs(X)):.3g}")
    if not all(np.isfinite(v) for v in (sxx, sxy, estar, c0)):
        _overflow(func, X, Y)
    if not np.isfinite(pstar):
        raise V.fail(func, "y", "small enough beside x for pi* = mean(x y) / mean(x^2) to be "
                     "finite", f"pi* overflows (mean x^2 = {sxx:.3g})")
    return _Stats(np.ascontiguousarray(X), np.ascontiguousarray(Y), c, sxx, sxy, pstar,
                  estar, c0)


def _overflow(func, X, Y):
    """Raise the error that names what overflowed: x (mean x^2), y (mean y^2 or
    mean x y), else the loss scale (c/2 mean y^2 or the residual E*)."""
    with np.errstate(all="ignore"):
        syy, sxx, sxy = (float(np.mean(a * b)) for a, b in ((Y, Y), (X, X), (X, Y)))
    if not np.isfinite(sxx):
        raise V.fail(func, "x", "small enough for mean x^2 to be finite in float64",
                     f"|x|max = {np.max(np.abs(X)):.3g} (overflow)")
    if not (np.isfinite(syy) and np.isfinite(sxy)):
        raise V.fail(func, "y", "small enough for mean y^2 and mean x y to be finite in "
                     "float64", f"|y|max = {np.max(np.abs(Y)):.3g} (overflow)")
    raise V.fail(func, "loss_scale", "small enough for c/2 mean y^2 and the residual loss "
                 "E* to be finite", "overflow")


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


_LOO_DIRECT = 32  # depths up to which a leave-one-out product is one np.prod


def _loo(w):
    """Leave-one-out products p[..., i] = prod_{j != i} w[..., j] (no division): one
    product per i up to depth :data:`_LOO_DIRECT`, prefix and suffix products (O(L))
    beyond."""
    L = w.shape[-1]
    if L > _LOO_DIRECT:
        with np.errstate(all="ignore"):
            one = np.ones(w.shape[:-1] + (1,))
            pre = np.cumprod(np.concatenate([one, w[..., :-1]], axis=-1), axis=-1)
            suf = np.cumprod(np.concatenate([one, w[..., :0:-1]], axis=-1), axis=-1)
            return pre * suf[..., ::-1]
    p = np.empty_like(w)
    for i in range(L):
        p[..., i] = np.prod(np.delete(w, i, axis=-1), axis=-1)
    return p


def _points(func, name, w, hessian):
    """``w`` (..., L), its curvatures refused when out of reach
    (:func:`fastgd.engine.cost.chain_curvature`)."""
    from fastgd.engine import cost

    cost.chain_curvature(func, name, max(w.size // w.shape[-1], 1), w.shape[-1], hessian)
    return w


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
    w = _points(f, "w", _weights(f, "w", w), True)
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
    return _sharpness(_points(f, "w", _weights(f, "w", w), True), s)


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
    return _ntk(_points(f, "w", _weights(f, "w", w), False), s)


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

    Examples
    --------
    >>> import fastgd.chain as ch
    >>> m = ch.chain_minima(2, x=[1.0, 2.0], y=[1.0, 2.0])   # y = 1 x: fitted exactly
    >>> m.product, m.exact, m.saddle_curvature
    (1.0, True, 2.5)
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
        """Complete the first L - 1 weights ``free`` (..., L - 1) to a minimum (..., L).

        Examples
        --------
        >>> import fastgd.chain as ch
        >>> ch.chain_minima(3, y=2.0).point([1.0, 4.0]).tolist()   # 1 * 4 * 0.5 = pi* = 2
        [1.0, 4.0, 0.5]
        """
        free = np.asarray(free, dtype=np.float64)
        if free.ndim == 0 or free.shape[-1] != self.depth - 1:
            raise V.fail("ChainMinima.point", "free", f"of shape (..., {self.depth - 1})",
                         f"shape {free.shape}")
        with np.errstate(all="ignore"):
            last = self.product / np.prod(free, axis=-1)
        return np.concatenate([free, last[..., None]], axis=-1)

    def hyperbola(self, w1):
        """L = 2: the second weight w2 = pi*/w1 on the solution set (for plots).

        Examples
        --------
        >>> import fastgd.chain as ch
        >>> ch.chain_minima(2, y=2.0).hyperbola([1.0, 4.0]).tolist()
        [2.0, 0.5]
        """
        if self.depth != 2:
            raise V.fail("ChainMinima.hyperbola", "depth", "2", self.depth)
        with np.errstate(all="ignore"):
            return self.product / np.asarray(w1, dtype=np.float64)


def chain_minima(depth=2, x=1.0, y=1.0, *, loss_scale=1.0) -> ChainMinima:
    """Describe the minima of the depth-``depth`` chain on samples (x, y).

    Parameters
    ----------
    depth : int
        L >= 2.
    x, y, loss_scale
        As in :func:`chain_loss`.

    Returns
    -------
    ChainMinima

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
