"""Two-layer networks: catapults, progressive sharpening and the edge of stability.

Model (width m, d inputs, scalar output)::

    f(x) = s a . phi(W x + b),   s = 1/sqrt(m) (param="ntk") or 1 (param="standard"),

phi in {"identity", "tanh", "relu"} (relu'(0) = 0), the bias b optional.  Loss (note
the 1/2: fastgd's convention everywhere, DESIGN.md)::

    E(theta) = 1/(2P) sum_p (y_p - f(x_p))^2.

The parameters are one flat vector theta of length N = m (d + 1 + bias): W row-major
(``W[j, i]`` at ``j d + i``), then b (with ``bias=True``), then a (:func:`net_unpack`).
Float64 only.  Learning rates are in the same units as 1/curvature: GD on a quadratic
with top Hessian eigenvalue lambda diverges above 2/lambda.

Curvature: exact Hessian-vector products (Pearlmutter's R-operator written out for this
model, a Numba kernel and a NumPy twin), the sharpness S = lambda_max(Hessian) by
Lanczos on HVPs, the NTK eigenvalue lambda0 = lambda_max(J J^T / P) (J the Jacobian of
the outputs w.r.t. theta; at a zero-loss point the Hessian is J^T J / P, with the same
non-zero eigenvalues) and the LeCun-Simard-Pearlmutter on-line estimate.

Status of a run (as for chains, :mod:`fastgd.chain`): CONVERGED when E <= tol x E(theta0)
(E* = 0 is assumed: the networks here can fit their data) and, for batch GD, the minimum
reached is linearly stable, lr x S <= 2 (1 + momentum); DIVERGED when E or a parameter is
not finite or E > blowup x max(E(theta0), E(0)), E(0) = mean(y^2)/2 the loss of the zero
output (so a catapult's spike is not a divergence; the step is recorded, the parameters
reported are the last finite iterate and the loss is ``inf``); BOUNDED otherwise.
A *catapult* is a converged run whose loss rose above ``spike`` x E(theta0) on the way
(``max_loss_ratio > spike``; :meth:`NetSweepResult.regions`, the rule of
:meth:`fastgd.chain.ChainSweepResult.regions`).

Facts (tests/test_net.py): for wide networks (NTK parametrisation) GD with
lr < 2/lambda0 stays lazy (the sharpness barely moves); for 2/lambda0 < lr < lr_max the
loss spikes, then the run converges to a flatter point with sharpness < 2/lr (the
catapult); above lr_max it diverges.  With tanh on real data (standard
parametrisation) the sharpness rises during training (progressive sharpening) until it
reaches 2/lr and then hovers there (the edge of stability) while the loss keeps falling.

References: Lewkowycz, Bahri, Dyer, Sohl-Dickstein, Gur-Ari, "The large learning rate
phase of deep learning: the catapult mechanism", 2020; Cohen, Kaur, Li, Kolter,
Talwalkar, "Gradient Descent on Neural Networks Typically Occurs at the Edge of
Stability", ICLR 2021; Pearlmutter, "Fast exact multiplication by the Hessian", Neural
Computation 1994; LeCun, Simard, Pearlmutter, NIPS 5, 1993.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy as np

from fastgd import status as ST
from fastgd import validate as V
from fastgd.engine import cost as _cost
from fastgd.engine import grid as G
from fastgd.status import DEFAULT_ORDER, DEFAULT_TOL, Status

__all__ = [
    "ACTIVATIONS",
    "NetRun",
    "NetSweepResult",
    "net_gd",
    "net_grad",
    "net_hessian",
    "net_hvp",
    "net_init",
    "net_loss",
    "net_ntk",
    "net_sgd",
    "net_sharpness",
    "net_sweep",
    "net_unpack",
    "online_sharpness",
    "plot_net_eos",
    "plot_net_phase",
]

ACTIVATIONS = ("identity", "tanh", "relu")
_ACT = {"identity": 0, "tanh": 1, "relu": 2}
LANCZOS_ITERS = 40  # Lanczos steps of the sharpness (fewer when N is smaller: exact)
#: learning rates per chunk (SIMD lanes sharing one initialisation), and for wide
#: networks one vector block of the kernel (``_kernels.simd``: 8).  A chunk's arrays
#: are [param][lane]: with 32 lanes a block's rows sit 256 bytes apart and use a quarter
#: of the cache's sets, which costs nothing while a block's parameters, gradient and
#: activations fit a quarter of the cache and a lot when they do not (relu, d = 8, one
#: thread, G multiply-adds/s with 32 / 8 lanes: m = 64 16.8 / 15.0, m = 1024 5.7 / 14.3)
LANES = 32
LANES_WIDE = 8
_FIT = 4096  # cache lines (256 KB): the largest block footprint run with LANES


def _lanes(m, d, bias):
    """Lanes per chunk for width m: a block touches ~3 N + 8 m lines (parameters,
    gradient and rollback copy, activations of 8 samples)."""
    N = m * (d + 1 + int(bias))
    return LANES if 3 * N + 8 * m <= _FIT else LANES_WIDE


# ----------------------------------------------------------------------------- inputs
@dataclass(frozen=True)
class _Model:
    X: np.ndarray
    y: np.ndarray
    act: int
    activation: str
    param: str
    bias: bool
    c0: float

    @property
    def P(self):
        return self.X.shape[0]

    @property
    def d(self):
        return self.X.shape[1]

    def per(self):
        return self.d + 1 + int(self.bias)

    def scale(self, m):
        return 1.0 / np.sqrt(m) if self.param == "ntk" else 1.0


def _model(f, X, y, activation, param, bias) -> _Model:
    X, y = V.data(f, X, y)
    activation = V.choice(f, "activation", activation, ACTIVATIONS)
    param = V.choice(f, "param", param, ("ntk", "standard"))
    bias = V.boolean(f, "bias", bias)
    c0 = 0.5 * float(np.mean(y * y))
    return _Model(X, y, _ACT[activation], activation, param, bias, c0)


def _theta(f, name, theta, M: _Model):
    """theta as float64 (N,) with N a multiple of d + 1 + bias; returns (theta, m)."""
    if isinstance(theta, (str, bytes)) or theta is None or V.ndim_of(theta) != 1:
        raise V.fail_type(f, name, "a 1-D array of parameters of length m (d + 1 + bias)",
                          theta)
    t = V.as_float_array(f, name, theta, 1)
    per = M.per()
    if t.size % per != 0:
        raise V.fail(f, name, f"of length m x {per} (m (d + 1{' + 1' if M.bias else ''}) "
                     f"with d = {M.d}{', bias' if M.bias else ''})", f"length {t.size}")
    V.magnitude(f, name, t, max(M.P, 1) * t.size)
    return t, t.size // per


def net_unpack(theta, d, *, bias=False):
    """Split a flat parameter vector into (W (m, d), b (m,) or None, a (m,)) (views).

    Examples
    --------
    >>> import fastgd.net as fn
    >>> W, b, a = fn.net_unpack([1.0, 2.0, 3.0, 4.0], 1)   # m = 2, d = 1
    >>> W.tolist(), b, a.tolist()
    ([[1.0], [2.0]], None, [3.0, 4.0])
    """
    f = "net_unpack"
    d = V.integer(f, "d", d, minimum=1)
    bias = V.boolean(f, "bias", bias)
    if isinstance(theta, (str, bytes)) or theta is None or V.ndim_of(theta) != 1:
        raise V.fail_type(f, "theta", "a 1-D array of parameters", theta)
    t = V.as_float_array(f, "theta", theta, 1)
    per = d + 1 + int(bias)
    if t.size % per:
        raise V.fail(f, "theta", f"of length m x {per}", f"length {t.size}")
    return _split(t, d, bias)


def _split(t, d, bias):
    m = t.shape[-1] // (d + 1 + int(bias))
    W = t[..., : m * d].reshape(t.shape[:-1] + (m, d))
    b = t[..., m * d: m * d + m] if bias else None
    a = t[..., m * d + (m if bias else 0):]
    return W, b, a


def net_init(width, d, *, scale=1.0, seed=0, bias=False):
    """Initial parameters: W and a drawn i.i.d. N(0, scale^2), b = 0 (flat, length
    m (d + 1 + bias)).

    Draws ``numpy.random.default_rng(seed)``: W (m x d, row-major) first, then a.  In the
    NTK parametrisation f = a.phi(W x + b)/sqrt(m) with scale 1 the NTK has a finite
    limit as m grows; in the standard one, f = a.phi(W x + b).

    Examples
    --------
    >>> import fastgd.net as fn
    >>> fn.net_init(4, 2, seed=1).shape
    (12,)
    """
    f = "net_init"
    m = V.integer(f, "width", width, minimum=1, maximum=10**7)
    d = V.integer(f, "d", d, minimum=1, maximum=10**7)
    scale = V.real(f, "scale", scale, nonneg=True)
    seed = V.integer(f, "seed", seed, minimum=0)
    bias = V.boolean(f, "bias", bias)
    _cost.check(f, "width", nbytes=8.0 * m * (d + 2), what=f"{m:,} x {d + 2:,} parameters",
                hint="use a smaller width")
    return _init(m, d, scale, seed, bias)


def _init(m, d, scale, seed, bias):
    rng = np.random.default_rng(seed)
    W = scale * rng.standard_normal((m, d))
    a = scale * rng.standard_normal(m)
    parts = [W.ravel(), np.zeros(m)] if bias else [W.ravel()]
    return np.ascontiguousarray(np.concatenate(parts + [a]))


# ----------------------------------------------------------------- NumPy references
def _phi(z, act):
    """phi, phi', phi'' (NumPy)."""
    if act == 1:
        t = np.tanh(z)
        g1 = 1.0 - t * t
        return t, g1, -2.0 * t * g1
    if act == 2:
        return np.maximum(z, 0.0), (z > 0).astype(float), np.zeros_like(z)
    return z, np.ones_like(z), np.zeros_like(z)


def _forward_np(t, M, m):
    W, b, a = _split(t, M.d, M.bias)
    Z = M.X @ W.T
    if M.bias:
        Z = Z + b
    H, H1, H2 = _phi(Z, M.act)
    s = M.scale(m)
    return W, b, a, Z, H, H1, H2, s


def _loss_np(t, M, m):
    with np.errstate(all="ignore"):
        _, _, a, _, H, _, _, s = _forward_np(t, M, m)
        r = s * (H @ a) - M.y
        return 0.5 * float(np.mean(r * r))


def _grad_np(t, M, m):
    with np.errstate(all="ignore"):
        W, b, a, Z, H, H1, _, s = _forward_np(t, M, m)
        r = s * (H @ a) - M.y
        c = r * (s / M.P)
        ga = H.T @ c
        D = c[:, None] * a[None, :] * H1
        gW = D.T @ M.X
        parts = [gW.ravel(), D.sum(0)] if M.bias else [gW.ravel()]
        return np.concatenate(parts + [ga])


def _hvp_np(t, v, M, m):
    """The R-operator in NumPy (the twin of ``_kernels.net.hvp_lanes``)."""
    with np.errstate(all="ignore"):
        W, b, a, Z, H, H1, H2, s = _forward_np(t, M, m)
        VW, Vb, Va = _split(v, M.d, M.bias)
        U = M.X @ VW.T
        if M.bias:
            U = U + Vb
        r = s * (H @ a) - M.y
        rf = s * (H @ Va + (H1 * U) @ a)
        c = r * (s / M.P)
        cr = rf * (s / M.P)
        ha = H.T @ cr + (H1 * U).T @ c
        HZ = cr[:, None] * a * H1 + c[:, None] * (Va * H1 + a * H2 * U)
        hW = HZ.T @ M.X
        parts = [hW.ravel(), HZ.sum(0)] if M.bias else [hW.ravel()]
        return np.concatenate(parts + [ha])


def _jacobian(t, M, m):
    """J (P, N): d f(x_p) / d theta."""
    W, b, a, Z, H, H1, _, s = _forward_np(t, M, m)
    A = s * a * H1  # (P, m)
    JW = (A[:, :, None] * M.X[:, None, :]).reshape(M.P, -1)
    parts = [JW, A] if M.bias else [JW]
    return np.concatenate(parts + [s * H], axis=1)


def _ntk_top(t, M, m):
    """lambda_max(J J^T / P), without forming J: K = s^2/P (H H^T + (A A^T) o (X X^T + bias))."""
    with np.errstate(all="ignore"):
        W, b, a, Z, H, H1, _, s = _forward_np(t, M, m)
        A = a * H1
        G = M.X @ M.X.T + (1.0 if M.bias else 0.0)
        K = (s * s / M.P) * (H @ H.T + (A @ A.T) * G)
    if not np.all(np.isfinite(K)):
        return np.inf
    return float(np.linalg.eigvalsh(K)[-1])


# ------------------------------------------------------------------ batched curvature
def _hvp_batch(M, m, Th, Vv):
    """H v for rows of Th, Vv (n, N) through the Numba kernel (lanes = rows)."""
    from fastgd.net.kernels import hvp_lanes

    T = np.ascontiguousarray(Th.T)
    Vt = np.ascontiguousarray(Vv.T)
    G = np.empty_like(T)
    HV = np.empty_like(T)
    lo = np.empty(T.shape[1])
    with np.errstate(all="ignore"):
        hvp_lanes(M.X, M.y, M.act, M.bias, m, M.scale(m), T, Vt, G, HV, lo)
    return HV.T


def _hvp_point(M, m, t):
    """v -> H v at one parameter vector t: :func:`_hvp_np` with the forward pass (z,
    phi, phi', phi'', residuals) computed once, for the Lanczos steps of a single
    network (the batched kernel runs one lane as scalar code: 110 against 43 us per
    product at m = 64, d = 8, P = 64)."""
    with np.errstate(all="ignore"):
        W, b, a, Z, H, H1, H2, s = _forward_np(t, M, m)
        c = (s * (H @ a) - M.y) * (s / M.P)
        aH1 = a * H1
        caH2 = c[:, None] * (a * H2)
        cH1 = c[:, None] * H1
    ss = s * s / M.P

    def hv(v):
        with np.errstate(all="ignore"):
            VW, Vb, Va = _split(v, M.d, M.bias)
            U = M.X @ VW.T
            if M.bias:
                U = U + Vb
            H1U = H1 * U
            cr = (H @ Va + H1U @ a) * ss
            ha = H.T @ cr + H1U.T @ c
            HZ = cr[:, None] * aH1 + cH1 * Va + caH2 * U
            hW = HZ.T @ M.X
            parts = [hW.ravel(), HZ.sum(0)] if M.bias else [hW.ravel()]
            return np.concatenate(parts + [ha])

    return hv


def _top_eig(M, m, Th, iters=LANCZOS_ITERS, chunk=256):
    """Top Hessian eigenvalue of each row of Th (n, N) by Lanczos (full
    reorthogonalisation, a fixed start vector): k = min(N, iters) steps, exact for
    N <= iters.  ``inf`` where the parameters or the Hessian are not finite."""
    Th = np.atleast_2d(np.asarray(Th, dtype=np.float64))
    n, N = Th.shape
    out = np.full(n, np.inf)
    ok = np.flatnonzero(np.all(np.isfinite(Th), axis=1))
    for lo in range(0, ok.size, chunk):
        sel = ok[lo: lo + chunk]
        out[sel] = _lanczos(M, m, Th[sel], min(N, iters))
    return out


def _lanczos(M, m, Th, k):
    n, N = Th.shape
    q = np.random.default_rng(12345).standard_normal(N)
    q = np.broadcast_to(q / np.linalg.norm(q), (n, N)).copy()
    Q = np.zeros((k, n, N))
    al = np.zeros((n, k))
    be = np.zeros((n, k))
    alive = np.ones(n, dtype=bool)
    size = np.full(n, k)
    point = _hvp_point(M, m, Th[0]) if n == 1 else None
    with np.errstate(all="ignore"):
        for j in range(k):
            Q[j] = q
            w = point(q[0])[None] if n == 1 else _hvp_batch(M, m, Th, q)
            a = np.einsum("nN,nN->n", w, q)
            al[:, j] = np.where(alive, a, 0.0)
            for _ in range(2):  # full reorthogonalisation, twice
                c = np.einsum("jnN,nN->jn", Q[: j + 1], w)
                w = w - np.einsum("jn,jnN->nN", c, Q[: j + 1])
            b = np.linalg.norm(w, axis=1)
            scale = np.maximum(np.abs(al[:, : j + 1]).max(axis=1), be[:, :j].max(axis=1)
                               if j else 0.0)
            dead = alive & ~(b > 1e-10 * scale)
            size[dead] = j + 1
            alive &= ~dead
            be[:, j] = np.where(alive, b, 0.0)
            q = np.where(alive[:, None], w / np.where(b > 0, b, 1.0)[:, None], 0.0)
        Tm = np.zeros((n, k, k))
        ii = np.arange(k)
        Tm[:, ii, ii] = al
        Tm[:, ii[:-1], ii[1:]] = be[:, :-1]
        Tm[:, ii[1:], ii[:-1]] = be[:, :-1]
        # pad the rows past a breakdown below every eigenvalue of the leading block
        pad = np.abs(al).max(axis=1) + 2 * np.abs(be).max(axis=1) + 1.0
        for r in np.flatnonzero(size < k):
            Tm[r, size[r]:, :] = 0.0
            Tm[r, :, size[r]:] = 0.0
            Tm[r, ii[size[r]:], ii[size[r]:]] = -pad[r]
        good = np.all(np.isfinite(Tm), axis=(1, 2))
        res = np.full(n, np.inf)
        if good.any():
            res[good] = np.linalg.eigvalsh(Tm[good])[:, -1]
    return res


# --------------------------------------------------------------------- point functions
_POINT_DOC = """
    Parameters
    ----------
    theta : array (N,)
        Flat parameters, N = m (d + 1 + bias) (:func:`net_unpack`).
    X : array (P, d)
    y : array (P,)
    activation : {"identity", "tanh", "relu"}
    param : {"ntk", "standard"}
        Output scale 1/sqrt(m) or 1.
    bias : bool
"""


def _point(f, theta, X, y, activation, param, bias):
    M = _model(f, X, y, activation, param, bias)
    t, m = _theta(f, "theta", theta, M)
    return M, t, m


def net_loss(theta, X, y, *, activation="tanh", param="ntk", bias=False):
    """Loss E = 1/(2P) sum_p (y_p - f(x_p))^2 (note the 1/2) of a two-layer network.
    """ + _POINT_DOC + """
    Returns
    -------
    float (``inf`` when it overflows)

    Examples
    --------
    >>> import numpy as np, fastgd.net as fn
    >>> X, y = np.ones((2, 1)), np.array([1.0, 1.0])
    >>> fn.net_loss([2.0, 0.5], X, y, activation="identity", param="standard")
    0.0
    """
    M, t, m = _point("net_loss", theta, X, y, activation, param, bias)
    v = _loss_np(t, M, m)
    return v if np.isfinite(v) else np.inf


def net_grad(theta, X, y, *, activation="tanh", param="ntk", bias=False):
    """Gradient of :func:`net_loss` w.r.t. the flat parameters, shape (N,).
    """ + _POINT_DOC + """
    Examples
    --------
    >>> import numpy as np, fastgd.net as fn
    >>> fn.net_grad([1.0, 3.0], np.ones((1, 1)), [1.0], activation="identity",
    ...             param="standard").tolist()   # r = 3 - 1 = 2: (2*3, 2*1)
    [6.0, 2.0]
    """
    M, t, m = _point("net_grad", theta, X, y, activation, param, bias)
    return _grad_np(t, M, m)


def net_hvp(theta, v, X, y, *, activation="tanh", param="ntk", bias=False, engine="numba"):
    """Exact Hessian-vector product H v of :func:`net_loss` (Pearlmutter's R-operator).
    """ + _POINT_DOC + """
    v : array (N,)
        The direction.
    engine : {"numba", "numpy"}
        The Numba kernel (``_kernels.net.hvp_lanes``) or its NumPy twin; they agree to
        rounding.

    Notes
    -----
    With z = W x + b, h = phi(z), u = V_W x + V_b, r = f - y and
    Rf = s sum_j (V_a,j h_j + a_j phi'_j u_j)::

        (Hv)_a,j  = s/P sum_p (Rf h_j + r phi'_j u_j)
        (Hv)_W,ji = s/P sum_p (Rf a_j phi'_j + r (V_a,j phi'_j + a_j phi''_j u_j)) x_i

    and (Hv)_b,j like W without x_i.  Cost: about two gradients.

    Examples
    --------
    >>> import numpy as np, fastgd.net as fn
    >>> fn.net_hvp([0.0, 0.0], [1.0, 0.0], np.ones((1, 1)), [1.0],
    ...            activation="identity", param="standard").tolist()   # saddle: H = [[0,-1],[-1,0]]
    [0.0, -1.0]
    """
    f = "net_hvp"
    M, t, m = _point(f, theta, X, y, activation, param, bias)
    if isinstance(v, (str, bytes)) or v is None or V.ndim_of(v) != 1:
        raise V.fail_type(f, "v", "a 1-D array of length N (as theta)", v)
    v = V.as_float_array(f, "v", v, 1)
    if v.shape != t.shape:
        raise V.fail(f, "v", f"of length N = {t.size} (as theta)", f"length {v.size}")
    engine = V.choice(f, "engine", engine, ("numba", "numpy"))
    if engine == "numpy":
        return _hvp_np(t, v, M, m)
    return _hvp_batch(M, m, t[None], v[None])[0].copy()


def net_hessian(theta, X, y, *, activation="tanh", param="ntk", bias=False):
    """The full Hessian (N, N) of :func:`net_loss`, assembled from N exact HVPs (one
    Numba call with N lanes) and symmetrised.
    """ + _POINT_DOC + """
    Examples
    --------
    >>> import numpy as np, fastgd.net as fn
    >>> fn.net_hessian([0.0, 0.0], np.ones((1, 1)), [1.0], activation="identity",
    ...                param="standard").tolist()
    [[0.0, -1.0], [-1.0, 0.0]]
    """
    f = "net_hessian"
    M, t, m = _point(f, theta, X, y, activation, param, bias)
    N = t.size
    _cost.check(f, "theta", nbytes=_cost.matrix_bytes(N, 4),
                work=float(N) * N * M.P * 4, what=f"a {N:,} x {N:,} Hessian",
                work_what=f"{N:,} HVPs x {N * M.P * 4:,}", hint="use a smaller width")
    H = _hvp_batch(M, m, np.broadcast_to(t, (N, N)), np.eye(N))
    return 0.5 * (H + H.T)


def net_sharpness(theta, X, y, *, activation="tanh", param="ntk", bias=False,
                  iters=LANCZOS_ITERS):
    """Sharpness: the top eigenvalue of the Hessian of :func:`net_loss` (Lanczos on exact
    HVPs, full reorthogonalisation; exact to rounding when N <= ``iters``).
    """ + _POINT_DOC + """
    iters : int
        Lanczos steps (>= 1).

    Returns
    -------
    float
        lambda_max(H) (the largest, not the largest in modulus); GD is locally stable at a
        minimum iff lr x sharpness < 2.  ``inf`` when the Hessian overflows.

    Examples
    --------
    >>> import numpy as np, fastgd.net as fn
    >>> round(fn.net_sharpness([2.0, 0.5], np.ones((1, 1)), [1.0], activation="identity",
    ...                        param="standard"), 12)   # a minimum of the 1-1-1 net: w1^2 + w2^2
    4.25
    """
    f = "net_sharpness"
    M, t, m = _point(f, theta, X, y, activation, param, bias)
    iters = V.integer(f, "iters", iters, minimum=1, maximum=10**5)
    return float(_top_eig(M, m, t[None], iters)[0])


def net_ntk(theta, X, y, *, activation="tanh", param="ntk", bias=False):
    """Top NTK eigenvalue lambda0 = lambda_max(J J^T / P), J (P, N) the Jacobian of the
    outputs f(x_p) w.r.t. theta (the Gauss-Newton part J^T J / P of the Hessian has the
    same non-zero eigenvalues).  At a zero-loss point it equals the sharpness.
    """ + _POINT_DOC + """
    Examples
    --------
    >>> import numpy as np, fastgd.net as fn
    >>> fn.net_ntk([1.0, 1.0], np.ones((1, 1)), [1.0], activation="identity",
    ...            param="standard")
    2.0
    """
    M, t, m = _point("net_ntk", theta, X, y, activation, param, bias)
    return _ntk_top(t, M, m)


def online_sharpness(theta, X, y, *, activation="tanh", param="ntk", bias=False,
                     presentations=5000, leak=0.01, alpha=1e-4, window=1000,
                     order="shuffle", seed=0):
    """On-line estimate of the largest-magnitude Hessian eigenvalue, one pattern at a time.

    The LeCun-Simard-Pearlmutter power method (THEORY.md section 2; Efficient BackProp
    sec. 9.2): for each presented pattern p,

        Psi <- (1 - leak) Psi + (leak/alpha) [grad E_p(theta + alpha Psi/|Psi|) - grad E_p(theta)],

    whose fixed point has |Psi| = the top eigenvalue of H = mean_p H_p (in modulus; the
    top one near a minimum).  E_p = (y_p - f(x_p))^2 / 2.  The estimate is the mean of
    |Psi| over the last ``window`` presentations.
    """ + _POINT_DOC + """
    presentations : int
    leak : float in (0, 1)
    alpha : float > 0
        Finite-difference step (relative to |Psi|: a step of length alpha).
    window : int in [1, presentations]
    order : {"shuffle", "replacement", "cyclic"}
    seed : int
        Seeds the start Psi and the order.

    Returns
    -------
    fastgd.theory.LSPEstimate
        ``estimate``, ``history`` (|Psi| per presentation), ``psi``, ``window``.
    """
    from fastgd.theory import LSPEstimate

    f = "online_sharpness"
    M, t, m = _point(f, theta, X, y, activation, param, bias)
    presentations = V.integer(f, "presentations", presentations, minimum=1)
    leak = V.real(f, "leak", leak, positive=True, below=1.0)
    alpha = V.real(f, "alpha", alpha, positive=True)
    _cost.python_loop(f, "presentations", presentations, 16, 8 * t.size)
    window = V.integer(f, "window", window, minimum=1, maximum=presentations)
    V.choice(f, "order", order, ("shuffle", "replacement", "cyclic"))
    seed = V.integer(f, "seed", seed, minimum=0)
    rng = np.random.default_rng(seed)
    psi = rng.standard_normal(t.size)
    psi /= np.linalg.norm(psi)
    P = M.P
    if order == "replacement":
        idx = rng.integers(0, P, presentations)
    elif order == "shuffle":
        idx = np.concatenate([rng.permutation(P) for _ in range(-(-presentations // P))])
    else:
        idx = np.arange(presentations) % P
    # per-pattern gradients from a one-sample model
    hist = np.empty(presentations)
    nrm = 1.0
    s = M.scale(m)
    W0, b0, a0 = _split(t, M.d, M.bias)

    def grad_p(tt, p):
        W, b, a = _split(tt, M.d, M.bias)
        z = W @ M.X[p] + (b if M.bias else 0.0)
        h, h1, _ = _phi(z, M.act)
        r = s * float(h @ a) - M.y[p]
        da = r * s * a * h1
        parts = [np.outer(da, M.X[p]).ravel(), da] if M.bias else \
            [np.outer(da, M.X[p]).ravel()]
        return np.concatenate(parts + [r * s * h])

    with np.errstate(all="ignore"):
        for k in range(presentations):
            p = idx[k]
            if nrm > 0 and np.isfinite(nrm):
                hv = (grad_p(t + alpha * psi / nrm, p) - grad_p(t, p)) / alpha
                psi = (1.0 - leak) * psi + leak * hv
            nrm = float(np.linalg.norm(psi))
            hist[k] = nrm
    est = float(hist[-window:].mean())
    return LSPEstimate(estimate=est if np.isfinite(est) else np.inf, history=hist, psi=psi,
                       window=window)


# ------------------------------------------------------------------------------- runs
class _Out:
    """Flat per-cell kernel outputs (cells: init-major, lr-minor)."""

    def __init__(self, Ns, n_lr, n_rec=0, rec_every=0, n_th=0):
        n = len(Ns) * n_lr
        per_cell_N = np.repeat(np.asarray(Ns, dtype=np.int64), n_lr)
        self.status = np.full(n, Status.NOT_RUN, dtype=np.int8)
        self.theta_off = np.concatenate([[0], np.cumsum(per_cell_N)]).astype(np.int64)
        self.theta = np.zeros(int(self.theta_off[-1]))
        self.loss = np.full(n, np.inf)
        self.tol_at = np.full(n, -1, dtype=np.int64)
        self.div_at = np.full(n, -1, dtype=np.int64)
        self.maxloss = np.full(n, np.inf)
        self.rec_loss = np.full((n, n_rec), np.inf)
        self.rec_every = int(rec_every)
        self.rec_off = np.concatenate([[0], np.cumsum(per_cell_N * n_th)]).astype(np.int64)
        self.rec_theta = np.zeros(int(self.rec_off[-1]) if rec_every else 0)
        self.per_cell_N = per_cell_N

    def tail(self):
        return (self.rec_every, self.status, self.theta, self.theta_off, self.loss,
                self.tol_at, self.div_at, self.maxloss, self.rec_loss, self.rec_theta,
                self.rec_off)

    def theta_of(self, k):
        return self.theta[self.theta_off[k]: self.theta_off[k + 1]]

    def rec_of(self, k):
        N = self.per_cell_N[k]
        return self.rec_theta[self.rec_off[k]: self.rec_off[k + 1]].reshape(-1, N)


def _execute(f, M, method, inits, lrs, steps, beta, batch, order, tol, blowup, n_rec,
             rec_every, threads, progress, lanes=None):
    """Run every (init, lr) cell; ``inits``: list of (m, theta0, key)."""
    from fastgd.linear.table import kernel_is_cold
    from fastgd.net.kernels import grid_net, rows_net

    if kernel_is_cold(rows_net):
        print("fastgd: compiling the two-layer network kernels, first run only (cached on "
              "disk, about 10 s)...", file=sys.stderr, flush=True)

    n_th = steps // rec_every + 1 if rec_every else 0
    Ns = [t.size for _, t, _ in inits]
    out = _Out(Ns, lrs.size, n_rec, rec_every, n_th)
    widths = np.array([mm for mm, _, _ in inits], dtype=np.int64)
    scales = np.array([M.scale(mm) for mm in widths], dtype=np.float64)
    init_off = np.concatenate([[0], np.cumsum(Ns)]).astype(np.int64)
    flat = np.ascontiguousarray(np.concatenate([t for _, t, _ in inits]))
    keys = np.ascontiguousarray(np.stack([k for _, _, k in inits]).astype(np.int64))
    rows = []
    for c in range(len(inits)):
        n = lanes or _lanes(inits[c][0], M.d, M.bias)
        for a in range(0, lrs.size, n):
            rows.append((c, a, min(a + n, lrs.size)))
    chunks = np.ascontiguousarray(np.array(rows, dtype=np.int64).reshape(-1, 3))
    code = 0 if method == "gd" else 1

    def call(rows_, nw):
        with np.errstate(all="ignore"):
            grid_net(M.X, M.y, M.act, M.bias, code, widths, scales, init_off, flat, keys, lrs,
                     beta, steps, batch, order, tol, blowup, M.c0, rows_, nw, *out.tail())

    t0 = time.perf_counter()
    with G.using_threads(f, threads) as nw:
        G.execute(call, chunks, nw, progress=progress, desc=f)
    return out, time.perf_counter() - t0, nw


def _ratio(maxloss, loss0):
    with np.errstate(all="ignore"):
        ratio = np.where(loss0 > 0, maxloss / np.where(loss0 > 0, loss0, 1.0), 1.0)
    return np.where(np.isinf(maxloss), np.inf, ratio)


def _stable_check(method, status, tol_at, lr, sharp, beta):
    """Batch GD: a converged cell whose minimum is linearly unstable (lr S > 2 (1 + beta))
    met the tolerance on a pass near it and is BOUNDED (in place)."""
    if method != "gd":
        return
    bad = (status == Status.CONVERGED) & (lr * sharp > 2.0 * (1.0 + beta) * (1 + 1e-9))
    status[bad] = Status.BOUNDED
    tol_at[bad] = -1


@dataclass(frozen=True)
class NetRun:
    """Result of one two-layer network run (:func:`net_gd`, :func:`net_sgd`).

    Attributes
    ----------
    status : Status
        CONVERGED, DIVERGED or BOUNDED (module doc).
    theta : (N,) array
        Final parameters (for a diverged run the last iterate that passed the check).
    loss, loss0 : float
        E at the end (``inf`` when diverged) and at theta0.
    sharpness, lambda0 : float
        Top Hessian eigenvalue at the end and at theta0 (Lanczos on exact HVPs).
    ntk, ntk0 : float
        Top NTK eigenvalue lambda_max(J J^T / P) at the end and at theta0.
    max_loss_ratio : float
        max_t E_t / E(theta0) over the checked iterates (> 1: the loss spiked; ``inf``
        when diverged).
    steps_to_tol, diverged_at : int
        Step (epoch) of convergence / divergence, -1 if none.
    losses : (n,) array
        E per step (epoch) from E(theta0) up to the step it finished (``inf`` at a
        divergence step).
    sharpness_steps, sharpnesses : arrays or None
        The sharpness every ``sharpness_every`` steps (epochs) up to the end (the last
        reported iterate after it), with ``sharpness_every > 0``.
    lr, momentum : float;  width, d : int;  activation, param : str;  bias : bool
    method, unit : str
        ``"gd"``/``"step"`` or ``"sgd"``/``"epoch"``.
    """

    status: Status
    theta: np.ndarray
    loss: float
    loss0: float
    sharpness: float
    lambda0: float
    ntk: float
    ntk0: float
    max_loss_ratio: float
    steps_to_tol: int
    diverged_at: int
    losses: np.ndarray
    sharpness_steps: np.ndarray | None
    sharpnesses: np.ndarray | None
    lr: float
    momentum: float
    width: int
    d: int
    activation: str
    param: str
    bias: bool
    method: str
    unit: str

    @property
    def converged(self) -> bool:
        return self.status == Status.CONVERGED

    @property
    def diverged(self) -> bool:
        return self.status == Status.DIVERGED

    def catapult(self, spike=2.0) -> bool:
        """Converged after the loss rose above ``spike`` x its initial value."""
        return bool(self.converged and self.max_loss_ratio > spike)


def _run_opts(f, steps, stepname, tol, blowup, momentum, sharpness_every, iters):
    steps = V.integer(f, stepname, steps, minimum=0)
    tol = V.real(f, "tol", tol, nonneg=True)
    blowup = V.blowup(f, blowup)
    beta = V.momentum(f, momentum)
    every = V.integer(f, "sharpness_every", sharpness_every, minimum=0)
    iters = V.integer(f, "sharpness_iters", iters, minimum=1, maximum=10**5)
    return steps, tol, blowup, beta, every, iters


def _start(f, M, theta0, width, scale, seed):
    """theta0 given (width inferred and checked) or drawn from (width, scale, seed)."""
    if theta0 is not None:
        t, m = _theta(f, "theta0", theta0, M)
        if width is not None:
            w = V.integer(f, "width", width, minimum=1)
            if w != m:
                raise V.fail(f, "theta0", f"of length {w} x {M.per()} (width {w})",
                             f"length {t.size}")
        return t, m
    m = V.integer(f, "width", 64 if width is None else width, minimum=1, maximum=10**7)
    scale = V.real(f, "scale", scale, nonneg=True)
    seed = V.integer(f, "seed", seed, minimum=0)
    return _init(m, M.d, scale, seed, M.bias), m


def _single(f, method, X, y, lr, steps, width, theta0, scale, seed, activation, param, bias,
            momentum, tol, blowup, sharpness_every, sharpness_iters, sgd=None):
    M = _model(f, X, y, activation, param, bias)
    lr = V.real(f, "lr", lr, positive=True)
    stepname = "steps" if method == "gd" else "epochs"
    steps, tol, blowup, beta, every, iters = _run_opts(f, steps, stepname, tol, blowup,
                                                       momentum, sharpness_every,
                                                       sharpness_iters)
    batch, code, key = 1, 0, np.zeros(2, dtype=np.int64)
    if method == "sgd":
        batch_size, order, oseed = sgd
        batch = V.integer(f, "batch_size", batch_size, minimum=1, maximum=M.P)
        code = ST.ORDERS[V.choice(f, "order", order, tuple(ST.ORDERS))]
        key = G.seed_key(V.integer(f, "seed", oseed, minimum=0))
    t0, m = _start(f, M, theta0, width, scale, seed)
    N = t0.size
    n_th = steps // every + 1 if every else 0
    _cost.run(f, stepname, steps, 0, 4.0 * M.P * N, False)
    _cost.check(f, "sharpness_every", nbytes=8.0 * n_th * N,
                work=float(n_th) * iters * 4 * M.P * N,
                what=f"{n_th:,} recorded parameter vectors x {N:,}",
                work_what=f"{n_th:,} sharpness estimates x {iters} HVPs",
                hint="record the sharpness less often")
    out, _, _ = _execute(f, M, method, [(m, t0, key)], np.array([lr]), steps, beta, batch,
                         code, tol, blowup, steps + 1, every, None, False, lanes=1)
    st = np.array([out.status[0]])
    tol_at = np.array([out.tol_at[0]])
    theta = out.theta_of(0).copy()
    lam = _top_eig(M, m, np.stack([t0, theta]), iters)
    _stable_check(method, st, tol_at, lr, lam[1:], beta)
    status = Status(int(st[0]))
    end = {Status.DIVERGED: int(out.div_at[0])}.get(status, None)
    if end is None:
        end = int(out.tol_at[0]) if out.status[0] == Status.CONVERGED else steps
    loss0 = _loss_np(t0, M, m)
    sharp_steps = sharps = None
    if every:
        rec = out.rec_of(0)
        sharp_steps = np.arange(rec.shape[0]) * every
        keep = sharp_steps <= end
        sharp_steps = sharp_steps[keep]
        sharps = _top_eig(M, m, rec[keep], iters)
    return NetRun(
        status=status, theta=theta, loss=float(out.loss[0]), loss0=loss0,
        sharpness=float(lam[1]), lambda0=float(lam[0]), ntk=_ntk_top(theta, M, m),
        ntk0=_ntk_top(t0, M, m), max_loss_ratio=float(_ratio(out.maxloss[0], loss0)),
        steps_to_tol=int(tol_at[0]), diverged_at=int(out.div_at[0]),
        losses=out.rec_loss[0, : end + 1].copy(), sharpness_steps=sharp_steps,
        sharpnesses=sharps, lr=lr, momentum=beta, width=m, d=M.d, activation=M.activation,
        param=M.param, bias=M.bias, method=method, unit="step" if method == "gd" else "epoch")


_RUN_DOC = """
    X : array (P, d)
        Inputs (standardise them: the curvature scales with |x|^2).
    y : array (P,)
        Targets.
    lr : float
        Learning rate eta > 0 (GD on a quadratic diverges above 2/lambda_max).
    width : int, optional
        Hidden units m (default 64; inferred from ``theta0`` when given).
    theta0 : array (N,), optional
        Initial parameters (flat, :func:`net_unpack`); default drawn by :func:`net_init`
        from (width, scale, seed).
    scale : float
        Standard deviation of the initial W and a (b starts at 0).
    seed : int
        Seeds the initial parameters (and, for SGD, the sample order).
    activation : {"identity", "tanh", "relu"}
    param : {"ntk", "standard"}
        f = a.phi(W x + b)/sqrt(m) or a.phi(W x + b).
    bias : bool
    momentum : float in [0, 1)
        Heavy ball in PyTorch's form: buf <- momentum buf + g, theta <- theta - lr buf.
    tol : float
        Converged when E <= tol x E(theta0) (E* = 0 assumed).
    blowup : float (>= 1)
        Diverged when E > blowup x max(E(theta0), mean(y^2)/2) or not finite.
    sharpness_every : int
        Record the sharpness every k steps (epochs) (0: only at the start and the end).
    sharpness_iters : int
        Lanczos steps per sharpness.
"""


def net_gd(X, y, lr, steps, *, width=None, theta0=None, scale=1.0, seed=0,
           activation="tanh", param="ntk", bias=False, momentum=0.0, tol=DEFAULT_TOL,
           blowup=1e12, sharpness_every=0, sharpness_iters=LANCZOS_ITERS) -> NetRun:
    """Full-batch gradient descent on a two-layer network, E = 1/(2P) sum (y - f(x))^2.

    Parameters
    ----------
    """ + _RUN_DOC + """
    steps : int
        Step budget (>= 0).

    Returns
    -------
    NetRun
        A :func:`net_sweep` cell with the same arguments is bit-identical.

    Examples
    --------
    >>> import numpy as np, fastgd.net as fn
    >>> X = np.linspace(-1, 1, 8)[:, None]; y = np.sin(2 * X[:, 0])
    >>> r = fn.net_gd(X, y, lr=0.5, steps=3000, width=32, tol=1e-3)
    >>> r.status.name, bool(r.loss < 1e-3 * r.loss0)
    ('CONVERGED', True)
    """
    return _single("net_gd", "gd", X, y, lr, steps, width, theta0, scale, seed, activation,
                   param, bias, momentum, tol, blowup, sharpness_every, sharpness_iters)


def net_sgd(X, y, lr, epochs, *, batch_size=1, order=DEFAULT_ORDER, width=None, theta0=None,
            scale=1.0, seed=0, activation="tanh", param="ntk", bias=False, momentum=0.0,
            tol=DEFAULT_TOL, blowup=1e12, sharpness_every=0,
            sharpness_iters=LANCZOS_ITERS) -> NetRun:
    """Per-sample or minibatch SGD on a two-layer network (status checked once per epoch
    on the full loss; the step on a batch B is -lr times the gradient of its mean loss
    1/(2|B|) sum_B (y - f)^2).

    Parameters
    ----------
    """ + _RUN_DOC + """
    epochs : int
        Passes over the data.
    batch_size : int in [1, P]
        The last batch of an epoch is smaller when it does not divide P.
    order : {"cyclic", "shuffle", "replacement"}
        Counter-based sample order from ``seed`` (as :func:`fastgd.sgd`).

    Returns
    -------
    NetRun
        Per epoch.  CONVERGED is the plain rule (no stability condition).

    Examples
    --------
    >>> import numpy as np, fastgd.net as fn
    >>> X = np.linspace(-1, 1, 8)[:, None]; y = 0.5 * X[:, 0]
    >>> r = fn.net_sgd(X, y, 0.05, 200, width=16, activation="identity", tol=1e-6)
    >>> r.status.name
    'CONVERGED'
    """
    return _single("net_sgd", "sgd", X, y, lr, epochs, width, theta0, scale, seed, activation,
                   param, bias, momentum, tol, blowup, sharpness_every, sharpness_iters,
                   (batch_size, order, seed))


# ----------------------------------------------------------------------------- sweeps
@dataclass(frozen=True)
class NetSweepResult:
    """Outcome of a (width x scale x seed x learning rate) grid of network runs.

    Per-cell arrays are shaped (n_width, n_scale, n_seed, n_lr); per-initialisation
    arrays (n_width, n_scale, n_seed).

    Attributes
    ----------
    lr, width, scale, seeds : 1-D arrays (the axes)
    status : int8            Status codes (BOUNDED 0, CONVERGED 1, DIVERGED 2).
    loss : float             Final E (``inf`` when diverged).
    max_loss_ratio : float   max_t E_t / E(theta0) (> 1: a spike; ``inf`` when diverged).
    sharpness : float        Final top Hessian eigenvalue (``inf`` where not computed).
    steps_to_tol, diverged_at : int64 (-1 if not).
    lambda0, ntk0, loss0 : per initialisation: initial sharpness, NTK eigenvalue, loss.
    sharpness_curve : (..., n_k) or None   sharpness every ``sharpness_every`` steps.
    activation, param, method : str;  bias : bool;  d, steps, sharpness_every : int
    momentum, tol, blowup : float;  seconds : float (kernels);  threads : int
    """

    lr: np.ndarray
    width: np.ndarray
    scale: np.ndarray
    seeds: np.ndarray
    status: np.ndarray
    loss: np.ndarray
    max_loss_ratio: np.ndarray
    sharpness: np.ndarray
    steps_to_tol: np.ndarray
    diverged_at: np.ndarray
    lambda0: np.ndarray
    ntk0: np.ndarray
    loss0: np.ndarray
    sharpness_curve: np.ndarray | None
    activation: str
    param: str
    bias: bool
    method: str
    d: int
    steps: int
    sharpness_every: int
    momentum: float
    tol: float
    blowup: float
    seconds: float
    threads: int

    @property
    def lr_ntk0(self):
        """lr x lambda0 (NTK) per cell (the naive limit is 2)."""
        return self.lr * self.ntk0[..., None]

    @property
    def lr_lambda0(self):
        """lr x initial sharpness per cell."""
        return self.lr * self.lambda0[..., None]

    def regions(self, spike=2.0):
        """Per-cell region code, index into :data:`fastgd.chain.REGIONS`: 0 no convergence
        (BOUNDED), 1 monotone convergence (max loss ratio <= ``spike``), 2 convergence
        after a loss spike (a catapult), 3 divergence."""
        spike = V.real("NetSweepResult.regions", "spike", spike, positive=True)
        code = np.zeros(self.status.shape, dtype=np.int8)
        conv = self.status == Status.CONVERGED
        code[conv & (self.max_loss_ratio <= spike)] = 1
        code[conv & (self.max_loss_ratio > spike)] = 2
        code[self.status == Status.DIVERGED] = 3
        return code

    def catapult(self, spike=2.0):
        """Boolean per cell: converged after the loss rose above ``spike`` x E(theta0)."""
        return self.regions(spike) == 2

    def observed_lr_max(self):
        """Per initialisation: the smallest learning rate that diverged (``inf`` if none)."""
        order = np.argsort(self.lr)
        div = (self.status == Status.DIVERGED)[..., order]
        lr = self.lr[order]
        first = np.where(div.any(-1), np.argmax(div, axis=-1), -1)
        return np.where(first >= 0, lr[np.maximum(first, 0)], np.inf)


def net_sweep(X, y, lr, steps=1000, *, width=64, scale=1.0, seeds=1, method="gd",
              batch_size=1, order=DEFAULT_ORDER, activation="tanh", param="ntk", bias=False,
              momentum=0.0, tol=DEFAULT_TOL, blowup=1e12, sharpness=True, sharpness_every=0,
              sharpness_iters=LANCZOS_ITERS, threads=None, progress=None) -> NetSweepResult:
    """Run every (width, scale, seed, learning rate) cell of a two-layer network on shared
    data (Numba lanes: the learning rates of one initialisation run as SIMD lanes).

    Parameters
    ----------
    X, y, activation, param, bias, momentum, tol, blowup, sharpness_every, sharpness_iters
        As in :func:`net_gd`.
    lr : float or array (n_lr,)
        Learning rates (> 0).
    steps : int
        Step budget (epochs for ``method="sgd"``).
    width : int or array of ints
        Widths m.
    scale : float or array
        Initial standard deviations of W and a.
    seeds : int or list of ints
        A count n (seeds 0..n-1) or the seeds: each seeds the initial parameters (and the
        SGD sample order); every learning rate of a seed shares them.
    method : {"gd", "sgd"}
    batch_size, order
        SGD options as in :func:`net_sgd`.
    sharpness : bool
        Compute the final sharpness of every cell (Lanczos, ``sharpness_iters`` HVPs each).
    threads : int, optional
    progress : bool, optional

    Returns
    -------
    NetSweepResult
        A cell equals :func:`net_gd` (:func:`net_sgd`) with the same arguments bit for bit.

    Examples
    --------
    >>> import numpy as np, fastgd.net as fn
    >>> X = np.linspace(-1, 1, 8)[:, None]; y = np.sin(2 * X[:, 0])
    >>> res = fn.net_sweep(X, y, [0.1, 1.0, 100.0], 200, width=[16, 32])
    >>> res.status.shape, int(res.status[0, 0, 0, 2])   # lr = 100 diverges
    ((2, 1, 1, 3), 2)
    """
    f = "net_sweep"
    M = _model(f, X, y, activation, param, bias)
    lrs = V.rates(f, "lr", lr)
    method = V.choice(f, "method", method, ("gd", "sgd"))
    steps, tol, blowup, beta, every, iters = _run_opts(f, steps, "steps", tol, blowup,
                                                       momentum, sharpness_every,
                                                       sharpness_iters)
    widths = _int_list(f, "width", width)
    scales = V.as_float_array(f, "scale", V.atleast_1d(f, "scale", scale), 1)
    if not np.all(scales >= 0):
        raise V.fail(f, "scale", ">= 0", f"min {scales.min():g}")
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        seed_list = np.arange(V.integer(f, "seeds", seeds, minimum=1, maximum=10**6))
    else:
        seed_list = _int_list(f, "seeds", seeds, minimum=0)
    batch = V.integer(f, "batch_size", batch_size, minimum=1, maximum=M.P)
    code = ST.ORDERS[V.choice(f, "order", order, tuple(ST.ORDERS))]
    sharp = V.boolean(f, "sharpness", sharpness)
    progress = V.boolean(f, "progress", progress, allow_none=True)
    V.threads(f, threads)
    n_init = widths.size * scales.size * seed_list.size
    n = n_init * lrs.size
    Nsum = float(np.sum(widths) * M.per()) * scales.size * seed_list.size
    n_th = steps // every + 1 if every else 0
    G.check_memory(f, n, 8 * 8 + 8 * n_th)
    _cost.check(f, "width" if widths.size > 1 else "lr",
                nbytes=Nsum * lrs.size * 8 * (1 + n_th),
                what=f"{n:,} cells' parameters", hint="use fewer cells or narrower networks")
    per = 4.0 * M.P * (1 if method == "gd" else 1.5)
    _cost.check(f, "steps", work=Nsum * lrs.size * steps * per
                + (Nsum * lrs.size * iters * 4 * M.P * (n_th + 1) if sharp else 0),
                work_what=f"{n:,} cells x {steps:,} steps x {per * Nsum / n_init:,.0f}",
                hint="use fewer cells or steps")
    inits = []
    for m in widths:
        for sc in scales:
            for sd in seed_list:
                inits.append((int(m), _init(int(m), M.d, float(sc), int(sd), M.bias),
                              G.seed_key(int(sd)) if method == "sgd"
                              else np.zeros(2, dtype=np.int64)))
    out, seconds, nw = _execute(f, M, method, inits, lrs, steps, beta, batch, code, tol,
                                blowup, 0, every, threads, progress)
    n_lr = lrs.size
    status = out.status.copy()
    tol_at = out.tol_at.copy()
    lam0 = np.empty(n_init)
    ntk0 = np.empty(n_init)
    loss0 = np.empty(n_init)
    final = np.full(n, np.inf)
    curves = np.full((n, n_th), np.inf) if every else None
    for c, (m, t0, _) in enumerate(inits):
        lam0[c] = _top_eig(M, m, t0[None], iters)[0]
        ntk0[c] = _ntk_top(t0, M, m)
        loss0[c] = _loss_np(t0, M, m)
        ks = range(c * n_lr, (c + 1) * n_lr)
        if sharp or every:
            Th = np.stack([out.theta_of(k) for k in ks])
            if sharp:
                final[c * n_lr: (c + 1) * n_lr] = _top_eig(M, m, Th, iters)
            if every:
                R = np.stack([out.rec_of(k) for k in ks])  # (n_lr, n_th, N)
                curves[c * n_lr: (c + 1) * n_lr] = _top_eig(
                    M, m, R.reshape(-1, R.shape[-1]), iters).reshape(n_lr, n_th)
    lr_cells = np.tile(lrs, n_init)
    if sharp:
        _stable_check(method, status, tol_at, lr_cells, final, beta)
    shape = (widths.size, scales.size, seed_list.size)
    cell = shape + (n_lr,)
    return NetSweepResult(
        lr=lrs, width=widths, scale=scales, seeds=seed_list, status=status.reshape(cell),
        loss=out.loss.reshape(cell),
        max_loss_ratio=_ratio(out.maxloss, np.repeat(loss0, n_lr)).reshape(cell),
        sharpness=final.reshape(cell), steps_to_tol=tol_at.reshape(cell),
        diverged_at=out.div_at.reshape(cell), lambda0=lam0.reshape(shape),
        ntk0=ntk0.reshape(shape), loss0=loss0.reshape(shape),
        sharpness_curve=None if curves is None else curves.reshape(cell + (n_th,)),
        activation=M.activation, param=M.param, bias=M.bias, method=method, d=M.d,
        steps=steps, sharpness_every=every, momentum=beta, tol=tol, blowup=blowup,
        seconds=seconds, threads=nw)


def _int_list(f, name, value, minimum=1):
    if isinstance(value, (str, bytes)) or value is None or isinstance(value, bool):
        raise V.fail_type(f, name, "an integer or a 1-D list of integers", value)
    if V.ndim_of(value) not in (0, 1):
        raise V.fail_type(f, name, "an integer or a 1-D list of integers", value)
    items = np.atleast_1d(np.asarray(value, dtype=object)).tolist()
    if not items:
        raise V.fail(f, name, "non-empty", "an empty list")
    return np.array([V.integer(f, name, v, minimum=minimum, maximum=10**7) for v in items],
                    dtype=np.int64)


def plot_net_phase(result, *, ax=None, seed=0, scale=0, spike=2.0, title=None, legend=True):
    """Catapult phase diagram of a :func:`net_sweep` (see :mod:`fastgd.net.plot`)."""
    from fastgd.net.plot import plot_net_phase as _p

    return _p(result, ax=ax, seed=seed, scale=scale, spike=spike, title=title, legend=legend)


def plot_net_eos(runs, *, ax=None, loss_ax=None, title=None, legend=True):
    """Sharpness against step for several runs with their 2/lr lines (edge of stability;
    see :mod:`fastgd.net.plot`)."""
    from fastgd.net.plot import plot_net_eos as _p

    return _p(runs, ax=ax, loss_ax=loss_ax, title=title, legend=legend)
