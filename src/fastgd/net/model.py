"""The two-layer network itself (:mod:`fastgd.net`): argument checks, the flat parameter
layout (:func:`net_unpack`, :func:`net_init`), the loss, gradient, Hessian-vector product
and NTK in plain NumPy (the references the kernels are tested against), and the top
Hessian eigenvalue by Lanczos on exact HVPs.

Model and loss (the 1/2 is fastgd's convention everywhere, DESIGN.md)::

    f(x) = s a . phi(W x + b),   E(theta) = 1/(2P) sum_p (y_p - f(x_p))^2,

s = 1/sqrt(m) (param="ntk") or 1 (param="standard").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fastgd import validate as V
from fastgd.engine import cost as _cost

#: the activations phi of f(x) = s a . phi(W x + b) (relu'(0) = 0)
ACTIVATIONS = ("identity", "tanh", "relu")
_ACT = {"identity": 0, "tanh": 1, "relu": 2}
LANCZOS_ITERS = 40  # Lanczos steps of the sharpness (fewer when N is smaller: exact)

# ----------------------------------------------------------------------------- inputs
@dataclass(frozen=True, eq=False)
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

    Parameters
    ----------
    theta : array (N,)
        Flat parameters, N = m (d + 1 + bias): W row-major (``W[j, i]`` at ``j d + i``),
        then b (with ``bias=True``), then a.
    d : int
        Number of inputs (>= 1).
    bias : bool
        Whether theta holds the hidden biases b.

    Returns
    -------
    W : array (m, d)
    b : array (m,) or None
        None without ``bias``.
    a : array (m,)
        Output weights.

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

    Parameters
    ----------
    width : int
        Hidden units m (>= 1).
    d : int
        Number of inputs (>= 1).
    scale : float
        Standard deviation of W and a (>= 0).
    seed : int
        Seed of ``numpy.random.default_rng``.
    bias : bool
        Append m zero biases after W.

    Returns
    -------
    array (m (d + 1 + bias),)
        Flat parameters in the layout of :func:`net_unpack`.

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
    """The R-operator in NumPy (the twin of :func:`fastgd.net.kernels.hvp_lanes`)."""
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


#: samples up to which the NTK's top eigenvalue comes from the dense P x P kernel; above,
#: matrix-free Lanczos on K v = J (J^T v) / P (never forming P x P)
NTK_DENSE = 1024
_NTK_ITERS, _NTK_RTOL = 200, 1e-13


def _ntk_top(t, M, m):
    """lambda_max(J J^T / P), without forming J: K = s^2/P (H H^T + (A A^T) o (X X^T + bias))
    for P <= :data:`NTK_DENSE`, else :func:`_ntk_lanczos`."""
    with np.errstate(all="ignore"):
        W, b, a, Z, H, H1, _, s = _forward_np(t, M, m)
        A = a * H1
        if M.P > NTK_DENSE:
            return _ntk_lanczos(M, s, H, A)
        G = M.X @ M.X.T + (1.0 if M.bias else 0.0)
        K = (s * s / M.P) * (H @ H.T + (A @ A.T) * G)
    if not np.all(np.isfinite(K)):
        return np.inf
    return float(np.linalg.eigvalsh(K)[-1])


def _ntk_lanczos(M, s, H, A):
    """Top eigenvalue of K = J J^T / P by Lanczos with full reorthogonalisation on the
    products K v = s^2/P (H (H^T v) + sum_j A_j o (X (X^T (A_j o v)) + bias)), O(P m d)
    each, stopped when the top Ritz pair's residual is below 1e-13 of its value."""
    if not (np.all(np.isfinite(H)) and np.all(np.isfinite(A))):
        return np.inf
    c = s * s / M.P

    def kv(v):
        G = (A * v[:, None]).T @ M.X  # (m, d): J_W^T v / s
        out = H @ (H.T @ v) + np.einsum("pj,pj->p", A, M.X @ G.T)
        if M.bias:
            out += A @ (A.T @ v)
        return c * out

    q = np.random.default_rng(12345).standard_normal(M.P)
    Q = [q / np.linalg.norm(q)]
    al, be = [], []
    top = 0.0
    for j in range(min(_NTK_ITERS, M.P)):
        w = kv(Q[j])
        al.append(float(w @ Q[j]))
        B = np.array(Q)
        for _ in range(2):
            w = w - B.T @ (B @ w)
        b = float(np.linalg.norm(w))
        Tm = np.diag(al) + np.diag(be, 1) + np.diag(be, -1)
        vals, vecs = np.linalg.eigh(Tm)
        top = float(vals[-1])
        if not np.isfinite(top):
            return np.inf
        if b * abs(vecs[-1, -1]) <= _NTK_RTOL * max(abs(top), 1e-300) or b == 0.0:
            break
        be.append(b)
        Q.append(w / b)
    return max(top, 0.0)


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


def _top_eig(M, m, Th, iters=LANCZOS_ITERS, start=None, vectors=False, threads=None,
             max_bytes=128e6, diag=None):
    """Top Hessian eigenvalue of each row of Th (n, N) by Lanczos over lanes
    (:func:`fastgd.net.lanczos.top_eig`: full reorthogonalisation, at most
    k = min(N, iters) steps, exact for N <= iters), from the fixed start vector or the
    rows of ``start``; in groups of lanes whose Lanczos vectors fit ``max_bytes`` (a lane's
    result does not depend on its group).  ``inf`` where the parameters or the Hessian are
    not finite.  With ``vectors``: (values, top Ritz vectors (n, N)).  ``diag`` (n, N):
    of D H D instead, D = diag(row) (the preconditioned sharpness)."""
    from fastgd.net.lanczos import BLOCK, top_eig

    Th = np.atleast_2d(np.asarray(Th, dtype=np.float64))
    n, N = Th.shape
    lane = 8.0 * (N * (min(N, iters) + 3 + 2 * (diag is not None)) + M.P * (4 * m + 1))
    per = max(BLOCK, int(max_bytes // lane) // (2 * BLOCK) * 2 * BLOCK)  # even blocks
    vals = np.empty(n)
    vecs = np.zeros((n, N)) if vectors else None
    for lo in range(0, n, per):
        sl = slice(lo, lo + per)
        got = top_eig(M, m, Th[sl], iters, None if start is None else start[sl], vectors,
                      threads, None if diag is None else diag[sl])
        if vectors:
            vals[sl], vecs[sl] = got
        else:
            vals[sl] = got
    return (vals, vecs) if vectors else vals


def _with_params(**parts):
    """Decorator: put each text ``parts[name]`` (numpydoc parameter lines indented by four
    spaces) in place of the line ``    {name}`` of the function's docstring, so that
    functions with the same arguments share their descriptions and ``__doc__`` is
    complete."""

    def put(fn):
        if fn.__doc__ is not None:  # None under python -OO
            for name, text in parts.items():
                line = "    {" + name + "}\n"
                assert line in fn.__doc__, (fn.__name__, name)
                fn.__doc__ = fn.__doc__.replace(line, text)
        return fn

    return put
