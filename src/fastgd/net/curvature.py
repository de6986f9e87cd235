"""Point functions of a two-layer network (:mod:`fastgd.net`): the loss, its gradient,
exact Hessian-vector products, the dense Hessian, the sharpness (top Hessian eigenvalue),
the top NTK eigenvalue and the LeCun-Simard-Pearlmutter on-line estimate, each at one
flat parameter vector theta (layout: :func:`fastgd.net.net_unpack`).

The loss everywhere is E(theta) = 1/(2P) sum_p (y_p - f(x_p))^2 (note the 1/2); the
curvatures are in the units of 1/lr: GD is linearly stable at a minimum iff
lr x sharpness < 2.
"""

from __future__ import annotations

import numpy as np

from fastgd import validate as V
from fastgd.engine import cost as _cost
from fastgd.net.model import (
    LANCZOS_ITERS,
    NTK_DENSE,
    _grad_np,
    _hvp_batch,
    _hvp_np,
    _loss_np,
    _model,
    _ntk_top,
    _phi,
    _split,
    _theta,
    _top_eig,
    _with_params,
)

__all__ = ["net_grad", "net_hessian", "net_hvp", "net_loss", "net_ntk", "net_sharpness",
           "online_sharpness"]

#: the arguments every point function takes (:func:`fastgd.net.model._with_params`)
_POINT_DOC = """\
    theta : array (N,)
        Flat parameters, N = m (d + 1 + bias) (layout: :func:`net_unpack`).
    X : array (P, d)
        Inputs, one sample a row.
    y : array (P,)
        Targets.
    activation : {"identity", "tanh", "relu"}
        phi (relu'(0) = 0).
    param : {"ntk", "standard"}
        Output scale s = 1/sqrt(m) or 1: f(x) = s a . phi(W x + b).
    bias : bool
        Whether theta holds hidden biases b.
"""


def _point(f, theta, X, y, activation, param, bias):
    M = _model(f, X, y, activation, param, bias)
    t, m = _theta(f, "theta", theta, M)
    return M, t, m


@_with_params(params=_POINT_DOC)
def net_loss(theta, X, y, *, activation="tanh", param="ntk", bias=False):
    """Loss E = 1/(2P) sum_p (y_p - f(x_p))^2 (note the 1/2) of a two-layer network.

    Parameters
    ----------
    {params}

    Returns
    -------
    float
        E(theta) (``inf`` when it overflows).

    Examples
    --------
    >>> import numpy as np, fastgd.net as fn
    >>> X, y = np.ones((2, 1)), np.array([1.0, 1.0])
    >>> fn.net_loss([2.0, 0.5], X, y, activation="identity", param="standard")
    0.0
    >>> t = fn.net_init(4, 2, seed=0)        # width 4, d = 2
    >>> X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]); y = np.array([0.5, -0.5, 0.0])
    >>> bool(fn.net_loss(t, X, y) > 0)
    True
    """
    M, t, m = _point("net_loss", theta, X, y, activation, param, bias)
    v = _loss_np(t, M, m)
    return v if np.isfinite(v) else np.inf


@_with_params(params=_POINT_DOC)
def net_grad(theta, X, y, *, activation="tanh", param="ntk", bias=False):
    """Gradient of :func:`net_loss` w.r.t. the flat parameters.

    Parameters
    ----------
    {params}

    Returns
    -------
    array (N,)
        dE/dtheta, in the layout of theta.

    Examples
    --------
    >>> import numpy as np, fastgd.net as fn
    >>> fn.net_grad([1.0, 3.0], np.ones((1, 1)), [1.0], activation="identity",
    ...             param="standard").tolist()   # r = 3 - 1 = 2: (2*3, 2*1)
    [6.0, 2.0]
    """
    M, t, m = _point("net_grad", theta, X, y, activation, param, bias)
    return _grad_np(t, M, m)


@_with_params(params=_POINT_DOC)
def net_hvp(theta, v, X, y, *, activation="tanh", param="ntk", bias=False, engine="numba"):
    """Exact Hessian-vector product H v of :func:`net_loss` (Pearlmutter's R-operator).

    Parameters
    ----------
    {params}
    v : array (N,)
        The direction.
    engine : {"numba", "numpy"}
        The Numba kernel (:func:`fastgd.net.kernels.hvp_lanes`) or its NumPy twin; they
        agree to rounding.

    Returns
    -------
    array (N,)
        H v, in the layout of theta.

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
    _cost.check(f, "theta", nbytes=8.0 * t.size * 6 + 8.0 * M.P * m * 4,
                what=f"{t.size:,} parameters and their forward parts",
                work=8.0 * M.P * t.size, hint="use a smaller width")
    if engine == "numpy":
        return _hvp_np(t, v, M, m)
    return _hvp_batch(M, m, t[None], v[None])[0].copy()


@_with_params(params=_POINT_DOC)
def net_hessian(theta, X, y, *, activation="tanh", param="ntk", bias=False):
    """The full Hessian of :func:`net_loss`, assembled from N exact HVPs (one Numba call
    with N lanes) and symmetrised.

    Parameters
    ----------
    {params}

    Returns
    -------
    array (N, N)
        Symmetric, in the layout of theta.

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
    # N lanes of HVPs: parameters, directions, gradients, products, then H + H^T
    _cost.check(f, "theta", nbytes=_cost.matrix_bytes(N, 7),
                work=float(N) * N * M.P * 8, what=f"a {N:,} x {N:,} Hessian",
                work_what=f"{N:,} HVPs x {N * M.P * 8:,}", hint="use a smaller width")
    H = _hvp_batch(M, m, np.broadcast_to(t, (N, N)), np.eye(N))
    return 0.5 * (H + H.T)


@_with_params(params=_POINT_DOC)
def net_sharpness(theta, X, y, *, activation="tanh", param="ntk", bias=False,
                  iters=LANCZOS_ITERS):
    """Sharpness: the top eigenvalue of the Hessian of :func:`net_loss` (Lanczos on exact
    HVPs, full reorthogonalisation, stopped once the top Ritz pair's residual is below
    1e-10 of the spectrum's scale, :mod:`fastgd.net.lanczos`; exact to rounding when
    N <= ``iters``).

    Parameters
    ----------
    {params}
    iters : int
        Lanczos steps at most (>= 1).

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
    name = "iters" if iters > LANCZOS_ITERS else "X" if M.P > t.size else "theta"
    _cost.lanczos(f, name, 1, t.size, M.P, m, iters, hint="use fewer iters or a smaller width")
    return float(_top_eig(M, m, t[None], iters)[0])


@_with_params(params=_POINT_DOC)
def net_ntk(theta, X, y, *, activation="tanh", param="ntk", bias=False):
    """Top NTK eigenvalue lambda0 = lambda_max(J J^T / P), J (P, N) the Jacobian of the
    outputs f(x_p) w.r.t. theta.

    The Gauss-Newton part J^T J / P of the Hessian has the same non-zero eigenvalues, so
    at a zero-loss point lambda0 equals the sharpness.  Up to 1024 samples from the
    dense P x P kernel; above, matrix-free (Lanczos on K v = J (J^T v) / P, never
    forming P x P or J).

    Parameters
    ----------
    {params}

    Returns
    -------
    float
        lambda0 (``inf`` when the kernel overflows).

    Examples
    --------
    >>> import numpy as np, fastgd.net as fn
    >>> fn.net_ntk([1.0, 1.0], np.ones((1, 1)), [1.0], activation="identity",
    ...            param="standard")
    2.0
    """
    M, t, m = _point("net_ntk", theta, X, y, activation, param, bias)
    _cost.ntk("net_ntk", "X", 1, M.P, t.size, m, NTK_DENSE)
    return _ntk_top(t, M, m)


@_with_params(params=_POINT_DOC)
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

    Parameters
    ----------
    {params}
    presentations : int
        Patterns presented (>= 1).
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

    Examples
    --------
    >>> import numpy as np, fastgd.net as fn
    >>> est = fn.online_sharpness([2.0, 0.5], np.ones((1, 1)), [1.0], activation="identity",
    ...                           param="standard", presentations=3000, window=500)
    >>> round(est.estimate, 3)   # the sharpness of this minimum is 4.25
    4.25
    """
    from fastgd.theory import LSPEstimate

    f = "online_sharpness"
    M, t, m = _point(f, theta, X, y, activation, param, bias)
    presentations = V.integer(f, "presentations", presentations, minimum=1)
    leak = V.real(f, "leak", leak, positive=True, below=1.0)
    alpha = V.real(f, "alpha", alpha, positive=True)
    # each presentation: two one-sample gradients, a dozen NumPy calls
    _cost.python_loop(f, "presentations", presentations, 16, 5 * _cost.PY_STEP + 8 * t.size)
    window = V.integer(f, "window", window, minimum=1, maximum=presentations)
    V.choice(f, "order", order, ("shuffle", "replacement", "cyclic"))
    seed = V.integer(f, "seed", seed, minimum=0)
    rng = np.random.default_rng(seed)
    psi = rng.standard_normal(t.size)
    psi /= np.linalg.norm(psi)
    idx = _order(order, rng, M.P, presentations)
    grad_p = _pattern_gradient(M, m)
    hist = np.empty(presentations)
    nrm = 1.0
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


def _order(order, rng, P, presentations):
    """The patterns presented, drawn from ``rng`` after the start vector."""
    if order == "replacement":
        return rng.integers(0, P, presentations)
    if order == "shuffle":
        return np.concatenate([rng.permutation(P) for _ in range(-(-presentations // P))])
    return np.arange(presentations) % P


def _pattern_gradient(M, m):
    """(theta, p) -> gradient of E_p = (y_p - f(x_p))^2 / 2 (a one-sample model)."""
    s = M.scale(m)

    def grad_p(tt, p):
        W, b, a = _split(tt, M.d, M.bias)
        z = W @ M.X[p] + (b if M.bias else 0.0)
        h, h1, _ = _phi(z, M.act)
        r = s * float(h @ a) - M.y[p]
        da = r * s * a * h1
        parts = [np.outer(da, M.X[p]).ravel(), da] if M.bias else \
            [np.outer(da, M.X[p]).ravel()]
        return np.concatenate(parts + [r * s * h])

    return grad_p
