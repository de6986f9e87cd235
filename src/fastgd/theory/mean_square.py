"""SGD in mean square: the exact second moment of the error and its stability limit.

The second moment E[(w - w*)(w - w*)^T] of SGD with batches drawn i.i.d. across steps
evolves by a linear map T (plus a forcing from the residuals at the minimum); the mean
square stays bounded iff rho(T) < 1 (R. Mulayoff, T. Michaeli, "Exact Mean Square
Linear Stability Analysis for SGD", COLT 2024).  Loss E(w) = 1/(2P) sum (y - w.x)^2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

from fastgd import validate as V
from fastgd.engine import cost as _cost
from fastgd.linear import problem as PB
from fastgd.theory._common import _batch_c, _brentq, _lr, _nonzero, _reduce, _x_only
from fastgd.theory.momentum import momentum_lr_max

__all__ = ["MSPrediction", "sgd_ms_critical_lr", "sgd_ms_error", "sgd_ms_operator",
           "sgd_stationary_loss"]

_DENSE_MAX = 40  # dense d^2 x d^2 mean-square operators up to this d (non-flat)
#: the closed form's dense symmetric eigenproblem (all d^2 eigenvalues) up to this d;
#: above it Lanczos for the top one, matrix-free (agree to 1e-15 relative at d = 8-40;
#: d = 30: 99-136 -> 1.4-5.4 ms, which a default-order sweep pays per dataset)
_CLOSED_DENSE_MAX = 10


def _kron_moment(Xr, H, c):
    """K = E[H_B (x) H_B] = (1 - c) H (x) H + c (1/P) sum_i H_i (x) H_i, (r^2, r^2)."""
    P = Xr.shape[0]
    V2 = np.einsum("pi,pj->pij", Xr, Xr).reshape(P, -1)  # vec(x x^T) per sample
    S = V2.T @ V2 / P
    return (1.0 - c) * np.kron(H, H) + c * S


def _dense_guard(func, r, beta):
    n = r * (2 if beta > 0 else 1)
    lim = _DENSE_MAX if beta == 0 else _DENSE_MAX // 2
    if r > lim:
        raise V.fail(func, "X", f"at most {lim} non-flat input dimensions for the dense "
                     f"{n * n} x {n * n} mean-square operator", f"{r}")


def _ms_matrix(Xr, H, lr, c, beta=0.0, nesterov=False):
    """The mean-square operator on vec(E[z z^T]); z = e (beta = 0) or (e, buf)."""
    r = H.shape[0]
    K = _kron_moment(Xr, H, c)
    if beta == 0.0:
        A = np.eye(r) - lr * H
        # E[(I - lr H_B) (x) (I - lr H_B)] = A (x) A + lr^2 (K - H (x) H)
        return np.kron(A, A) + lr * lr * (K - np.kron(H, H))
    # z' = (C + a (x) H_B) z with a acting on the (e, buf) block index
    I = np.eye(r)
    if nesterov:
        Cm = np.block([[I, -lr * beta * beta * I], [np.zeros((r, r)), beta * I]])
        a = np.array([[-lr * (1.0 + beta), 0.0], [1.0, 0.0]])
    else:
        Cm = np.block([[I, -lr * beta * I], [np.zeros((r, r)), beta * I]])
        a = np.array([[-lr, 0.0], [1.0, 0.0]])
    Dbar = np.kron(a, H)
    # E[D (x) D] with D = a (x) H_B: entries a[A,B] a[C,D] E[H_B[i,j] H_B[k,l]]
    # kron(Z, Z)[(p, p'), (q, q')] = Z[p, q] Z[p', q'] (row-major vec); with
    # Z = a (x) H_B, p = (A, i), q = (B, j): a[A,B] a[C,D] E[H_B[i,j] H_B[k,l]]
    E4 = K.reshape(r, r, r, r).transpose(0, 2, 1, 3)  # E4[i,j,k,l] = E[H_ij H_kl]
    n = 2 * r
    E_DD = np.einsum("AB,CD,ijkl->AiCkBjDl", a, a, E4).reshape(n * n, n * n)
    return np.kron(Cm, Cm) + np.kron(Cm, Dbar) + np.kron(Dbar, Cm) + E_DD


def _ms_apply(Xr, H, lr, c, beta, nesterov):
    """The momentum mean-square operator of :func:`_ms_matrix` as a function on vec(S),
    S the (2r, 2r) second moment of z = (e, buf): T(S) = E[Z S Z^T] with Z = Cm + a (x)
    H_B, a = [[alpha, 0], [1, 0]], so E[D S D^T] = (a0 a0^T) (x) E[H_B S00 H_B] and
    E[H_B M H_B] = (1 - c) H M H + c (1/P) sum_p (x_p.M x_p) x_p x_p^T: O(P r^2 + r^3)
    a product against the dense matrix's 16 r^4, and no matrix to build (agrees with
    it to rounding, tested)."""
    r = H.shape[0]
    P = Xr.shape[0]
    cb = lr * beta * beta if nesterov else lr * beta
    al = -lr * (1.0 + beta) if nesterov else -lr

    def dsc(S):  # Dbar S Cm^T, Dbar = a (x) H, Cm = [[I, -cb I], [0, beta I]]
        h0 = H @ S[:r, :r]
        h1 = H @ S[:r, r:]
        t = h0 - cb * h1
        return np.block([[al * t, al * beta * h1], [t, beta * h1]])

    def matvec(v):
        S = v.reshape(2 * r, 2 * r)
        top = S[:r] - cb * S[r:]  # rows of Cm S
        bot = beta * S[r:]
        CSC = np.block([[top[:, :r] - cb * top[:, r:], beta * top[:, r:]],
                        [bot[:, :r] - cb * bot[:, r:], beta * bot[:, r:]]])
        S00 = S[:r, :r]
        q = np.einsum("pi,pi->p", Xr @ S00, Xr)
        G = (1.0 - c) * (H @ S00 @ H) + c * ((Xr * q[:, None]).T @ Xr) / P
        EDD = np.block([[al * al * G, al * G], [al * G, G]])
        return (CSC + dsc(S) + dsc(S.T).T + EDD).ravel()

    return matvec


def sgd_ms_operator(X, lr, batch_size=1, replacement=True, bias=False, *, momentum=0.0,
                    nesterov=False):
    """The linear map T carrying M = E[(w - w*)(w - w*)^T] through one SGD step.

    Each step draws a fresh batch of B samples, i.i.d. across steps: B draws with
    replacement (``replacement=True``) or B distinct samples (a random B-subset).
    With H_B = (1/B) sum_{p in B} x_p x_p^T (loss E(w) = 1/(2P) sum (y - w.x)^2) and
    noise-free labels, e' = (I - lr H_B) e, so vec M' = T vec M with

        T = I(x)I - lr (H(x)I + I(x)H) + lr^2 [(1 - c) H(x)H + c (1/P) sum_i H_i(x)H_i],

    c = 1/B with replacement, c = (P - B)/(B (P - 1)) for a random B-subset
    (Mulayoff & Michaeli 2024; THEORY.md sec. 3).  E||w_t - w*||^2 = tr(T^t M_0).
    Per-epoch reshuffling is not such a process (see :func:`sgd_as_critical_lr`).

    Parameters
    ----------
    X : array (P, d)
    lr : float
    batch_size : int in [1, P]
    replacement : bool
    bias : bool
    momentum, nesterov
        With momentum beta > 0 the state is z = (e, buf) (PyTorch's form) and T acts
        on vec E[z z^T], of size (2d)^2.

    Returns
    -------
    array (d^2, d^2) (or ((2d)^2, (2d)^2) with momentum), acting on row-major vec(M).
    Symmetric when momentum = 0.

    Examples
    --------
    >>> import numpy as np
    >>> import fastgd as fg
    >>> X = fg.lecture_data().X
    >>> T = fg.theory.sgd_ms_operator(X, 0.5)
    >>> T.shape, fg.theory.sgd_ms_operator(X, 0.5, momentum=0.5).shape
    ((4, 4), (16, 16))
    >>> bool(np.abs(np.linalg.eigvals(T)).max() < 1)  # 0.5 is mean-square stable
    True
    """
    f = "sgd_ms_operator"
    Xa, H = _x_only(f, X, bias)
    lr = V.rate_cap(f, _lr(f, lr), np.max(np.einsum("pi,pi->p", Xa, Xa)))
    _, c = _batch_c(f, Xa.shape[0], batch_size, replacement)
    beta = V.momentum(f, momentum)
    nesterov = V.boolean(f, "nesterov", nesterov)
    _dense_guard(f, Xa.shape[1], beta)
    return _ms_matrix(Xa, H, lr, c, beta, nesterov)


#: operators up to this size get all their eigenvalues (LAPACK); larger ones only the
#: dominant one (ARPACK)
_RHO_DENSE = 100


def _rho(T):
    """The spectral radius of a mean-square operator T (n x n, n = m^2 acting on vec of
    m x m moment matrices): :func:`_rho_arpack` above :data:`_RHO_DENSE`, else (or where
    ARPACK does not converge) all eigenvalues (LAPACK)."""
    if T.shape[0] > _RHO_DENSE and np.all(np.isfinite(T)):
        rho = _rho_arpack(T, T.shape[0])
        if rho is not None:
            return rho
    return float(np.abs(np.linalg.eigvals(T)).max())


def _rho_arpack(op, n):
    """The dominant |eigenvalue| of a mean-square operator (a matrix or a
    LinearOperator, n = m^2) by ARPACK from vec(I); None where ARPACK does not converge.
    T maps PSD matrices to PSD matrices, so rho(T) is itself an eigenvalue with a PSD
    eigenvector (Krein-Rutman), which the start vec(I) never misses.  It agrees with the
    dense spectrum to 1e-13 relative at d = 3-15 with momentum, also at the root rho = 1;
    ARPACK on the dense matrix took 6 ms where all eigenvalues took 36 ms at d = 10 (n =
    400), 5 ms for 265 ms at d = 15: a momentum sweep on 16 datasets of d = 10 spent
    10.8 s in this limit."""
    import scipy.sparse.linalg as sla

    m = int(round(np.sqrt(n)))
    if m * m != n:
        return None
    try:
        vals = sla.eigs(op, k=1, which="LM", tol=0.0, v0=np.eye(m).ravel(),
                        return_eigenvectors=False)
    except sla.ArpackError:  # ArpackNoConvergence too
        return None
    rho = float(np.abs(vals).max())
    return rho if np.isfinite(rho) else None


def _ms_crit_closed(Xr, lam, c):
    """Closed form of the root of rho(T(eta)) = 1 without momentum (Xr in H's eigenbasis).

    T = I - eta L + eta^2 K with L = H (+) H, K = E[H_B (x) H_B] (both symmetric, L > 0
    on the range).  T maps PSD matrices to PSD matrices, so rho(T) is its largest
    eigenvalue (Krein-Rutman) and rho(T) < 1 iff eta K - L < 0, i.e.
    eta < 1/lambda_max(L^-1/2 K L^-1/2).  In H's eigenbasis L is diagonal.
    """
    r = lam.size
    s = 1.0 / np.sqrt((lam[:, None] + lam[None, :]).ravel())
    if r <= _CLOSED_DENSE_MAX:
        K = _kron_moment(Xr, np.diag(lam), c)
        Ks = K * s[:, None] * s[None, :]
        top = scipy.linalg.eigvalsh(0.5 * (Ks + Ks.T))[-1]
        return float(1.0 / top)
    # matrix-free for large d: K(M) = (1 - c) H M H + c (1/P) sum_p (x_p.M x_p) x_p x_p^T
    import scipy.sparse.linalg as sla

    P = Xr.shape[0]
    S2 = s.reshape(r, r)

    def matvec(v):
        M = S2 * v.reshape(r, r)
        q = np.einsum("pj,pj->p", Xr @ M, Xr)  # x_p.M x_p: a GEMM, not einsum's triple loop
        KM = (1.0 - c) * (lam[:, None] * M * lam[None, :]) + c * ((Xr * q[:, None]).T @ Xr) / P
        return (S2 * KM).ravel()

    op = sla.LinearOperator((r * r, r * r), matvec=matvec, dtype=np.float64)
    top = sla.eigsh(op, k=1, which="LA", tol=1e-13, v0=np.eye(r).ravel())[0][0]
    return float(1.0 / top)


def _ms_crit_brentq(Xr, H, c, beta, nesterov, upper, rtol):
    """Root of rho(T(eta)) - 1 on (0, upper] by brentq (general, with momentum)."""

    n = (2 * H.shape[0]) ** 2 if beta > 0 else H.shape[0] ** 2

    def g(eta):
        if beta > 0 and n > _RHO_DENSE:  # matrix-free (the dense matrix where ARPACK fails)
            import scipy.sparse.linalg as sla

            op = sla.LinearOperator((n, n), matvec=_ms_apply(Xr, H, eta, c, beta, nesterov),
                                    dtype=np.float64)
            rho = _rho_arpack(op, n)
            if rho is not None:
                return rho - 1.0
        return _rho(_ms_matrix(Xr, H, eta, c, beta, nesterov)) - 1.0

    hi = upper * (1.0 + 1e-9)
    if g(hi) < 0:  # pragma: no cover - the mean-square limit is below the GD limit
        return float("inf")
    lo = hi
    for _ in range(60):
        lo *= 0.5
        if g(lo) < 0:
            break
    else:  # pragma: no cover
        return float("nan")
    return float(_brentq(g, lo, hi, rtol=rtol, xtol=1e-300, maxiter=500))


def sgd_ms_critical_lr(X, batch_size=1, replacement=True, bias=False, *, momentum=0.0,
                       nesterov=False, method="auto") -> float:
    """The mean-square stability limit of SGD: the rate at which rho(T) reaches 1.

    T is :func:`sgd_ms_operator`.  Below the returned rate E||w_t - w*||^2 -> 0
    (noise-free labels) or to a finite stationary value (:func:`sgd_stationary_loss`);
    above it the mean square grows without bound, **although typical single runs may
    still converge** up to the almost-sure limit (:func:`sgd_as_critical_lr`; see the
    :mod:`fastgd.theory` docstring).  Flat directions of H are removed first (the error
    there never moves).  It never exceeds the batch-GD limit (2/lambda_max, or the momentum limit),
    and equals it for ``batch_size = P`` without replacement.

    Parameters
    ----------
    X, batch_size, replacement, bias, momentum, nesterov
        As in :func:`sgd_ms_operator`.
    method : {"auto", "closed", "brentq"}
        ``"brentq"``: root of rho(T(eta)) - 1 by ``scipy.optimize.brentq`` (relative
        tolerance 1e-12; dense eigenvalues of the d^2 (or (2d)^2) operator: d <= 40,
        or 20 with momentum).  ``"closed"`` (momentum 0 only): the same root in closed
        form, 1/lambda_max(L^-1/2 K L^-1/2) with L = H(+)H and K = E[H_B (x) H_B] (one
        symmetric eigenproblem of size d^2; matrix-free Lanczos above d = 10, any d).
        ``"auto"``: closed without momentum, brentq with.

    Returns
    -------
    float

    Examples
    --------
    >>> import fastgd as fg
    >>> X = fg.lecture_data().X
    >>> lr = fg.theory.sgd_ms_critical_lr(X, batch_size=100, replacement=False)
    >>> round(lr * 0.84, 10)
    2.0
    """
    f = "sgd_ms_critical_lr"
    Xa, H = _x_only(f, X, bias)
    _, c = _batch_c(f, Xa.shape[0], batch_size, replacement)
    beta = V.momentum(f, momentum)
    nesterov = V.boolean(f, "nesterov", nesterov)
    V.choice(f, "method", method, ("auto", "closed", "brentq"))
    if method == "closed" and beta > 0:
        raise V.fail(f, "method", "'auto' or 'brentq' when momentum > 0", "'closed'")
    lam_all = scipy.linalg.eigvalsh(H)
    _nonzero(f, lam_all)
    Xr, lam, U_r = _reduce(Xa, H)
    if method == "closed" or (method == "auto" and beta == 0.0):
        return _ms_crit_closed(Xr, lam, c)
    _dense_guard(f, lam.size, beta)
    upper = momentum_lr_max(float(lam[-1]), beta, nesterov)
    return _ms_crit_brentq(Xr, np.diag(lam), c, beta, nesterov, upper, 1e-12)


@dataclass(frozen=True)
class MSPrediction:
    """Exact first and second moments of SGD's error, step by step.

    Attributes
    ----------
    dist2 : (steps + 1,) E||w_t - w*||^2
    excess : (steps + 1,) E[E(w_t)] - E* = tr(H M_t)/2
    mean : (steps + 1, d) E[w_t] - w*
    rho : float, spectral radius of the mean-square operator T (NaN for d > 40)
    lr, batch_size, replacement

    Examples
    --------
    >>> import fastgd as fg
    >>> X, y = fg.lecture_data()
    >>> p = fg.theory.sgd_ms_error(X, y, 0.5, 100)
    >>> p.dist2.shape, p.mean.shape, round(p.rho, 6)
    ((101,), (101, 2), 0.965215)
    """

    dist2: np.ndarray
    excess: np.ndarray
    mean: np.ndarray
    rho: float
    lr: float
    batch_size: int
    replacement: bool


def sgd_ms_error(X, y, lr, steps, *, w0=None, batch_size=1, replacement=True, bias=False):
    """Predicted E||w_t - w*||^2 and expected excess loss of SGD, exactly, for t <= steps.

    One step: e' = (I - lr H_B) e + lr v_B with v_B = (1/B) sum_{p in B} r_p x_p,
    r = y - X w* the residuals at the minimum.  With m = E e and M = E[e e^T]:

        m' = (I - lr H) m,
        M' = T(M) + lr^2 c [Q - 2 R(m)],  Q = (1/P) sum r_p^2 x_p x_p^T,
                                          R(m) = (1/P) sum r_p (x_p.m) x_p x_p^T,

    T the operator of :func:`sgd_ms_operator` and c as there.  Exact for batches
    drawn i.i.d. across steps (``order="replacement"`` in :func:`fastgd.sgd` for
    ``replacement=True``).  O(P d^2) per step.

    Returns
    -------
    MSPrediction

    Examples
    --------
    >>> import fastgd as fg
    >>> X, y = fg.lecture_data()
    >>> p = fg.theory.sgd_ms_error(X, y, 0.5, 100)
    >>> bool(p.excess[-1] < p.excess[0]), bool(p.rho < 1)
    (True, True)
    """
    f = "sgd_ms_error"
    prob = PB.prepare(f, X, y, bias)
    lr = _lr(f, lr)
    steps = V.integer(f, "steps", steps, minimum=0)
    _cost.python_loop(f, "steps", steps + 1, 8 * (prob.d + 2), 4.0 * prob.P * prob.d ** 2)
    B, c = _batch_c(f, prob.P, batch_size, replacement)
    w0 = PB.initial_weights(f, w0, prob, prob.d - int(prob.bias))
    V.rate_cap(f, lr, np.max(np.einsum("pi,pi->p", prob.X, prob.X)))
    Xr_, lam_, _ = _reduce(prob.X, prob.H)
    if 0 < lam_.size <= _DENSE_MAX:  # the second moment grows by rho(T) per step
        with np.errstate(all="ignore"):
            rho_ = _rho(_ms_matrix(Xr_, np.diag(lam_), lr, c))
        m2 = float(np.sum((w0 - prob.wstar) ** 2)) + float(np.max(np.abs(prob.X))) ** 2
        V.growth_steps(f, steps, lr, rho_, max(m2, 1.0) * 1e20, "mean-square growth rho")
    Xa, H, P = prob.X, prob.H, prob.P
    res = prob.y - Xa @ prob.wstar
    Q = (Xa * (res * res)[:, None]).T @ Xa / P
    m = w0 - prob.wstar
    M = np.outer(m, m)
    A = np.eye(prob.d) - lr * H
    dist2 = np.empty(steps + 1)
    excess = np.empty(steps + 1)
    mean = np.empty((steps + 1, prob.d))
    with np.errstate(all="ignore"):
        for t in range(steps + 1):
            dist2[t] = np.trace(M)
            excess[t] = 0.5 * np.sum(H * M)
            mean[t] = m
            if t == steps:
                break
            q = np.einsum("pi,ij,pj->p", Xa, M, Xa)
            S = (Xa * q[:, None]).T @ Xa / P
            TM = A @ M @ A + lr * lr * ((1.0 - c) * (H @ M @ H) + c * S - H @ M @ H)
            Rm = (Xa * (res * (Xa @ m))[:, None]).T @ Xa / P
            M = TM + lr * lr * c * (Q - 2.0 * Rm)
            M = 0.5 * (M + M.T)
            m = A @ m
    Xr, lam, _ = _reduce(Xa, H)
    rho = float("nan")
    if 0 < lam.size <= _DENSE_MAX:
        rho = _rho(_ms_matrix(Xr, np.diag(lam), lr, c))
    return MSPrediction(dist2, excess, mean, rho, lr, B, bool(replacement))


def sgd_stationary_loss(X, y, lr, *, batch_size=1, replacement=True, bias=False) -> float:
    """Predicted excess loss of SGD's stationary fluctuation around the minimum.

    With residuals r = y - X w* != 0 SGD does not converge at a constant rate: it
    "fluctuates near the minimum" (the lecture).  In the mean-square stable range the
    stationary second moment S solves S = T(S) + lr^2 c Q (T, c as in
    :func:`sgd_ms_operator`, Q = (1/P) sum r_p^2 x_p x_p^T), and the expected excess
    loss is tr(H S)/2 (loss E(w) = 1/(2P) sum (y - w.x)^2): about lr c tr(Q)/4 for
    small lr, i.e. proportional to lr (Efficient BackProp sec. 4.1).

    For batches drawn i.i.d. across steps (``order="replacement"``); per-epoch
    reshuffling fluctuates less.

    Returns
    -------
    float
        The expected excess loss E[E(w)] - E* at stationarity; ``inf`` at or above the
        mean-square limit (:func:`sgd_ms_critical_lr`); 0 when the data are fit exactly.

    Examples
    --------
    >>> import fastgd as fg
    >>> X, y = fg.lecture_data()
    >>> s = fg.theory.sgd_stationary_loss(X, y, 0.2)
    >>> bool(0 < s < 0.05)
    True
    """
    f = "sgd_stationary_loss"
    prob = PB.prepare(f, X, y, bias)
    lr = V.rate_cap(f, _lr(f, lr), np.max(np.einsum("pi,pi->p", prob.X, prob.X)))
    _, c = _batch_c(f, prob.P, batch_size, replacement)
    Xa = prob.X
    lam_all = scipy.linalg.eigvalsh(prob.H)
    _nonzero(f, lam_all)
    Xr, lam, U_r = _reduce(Xa, prob.H)
    r = lam.size
    _dense_guard(f, r, 0.0)
    res = prob.y - Xa @ prob.wstar
    Q = (Xr * (res * res)[:, None]).T @ Xr / prob.P
    T = _ms_matrix(Xr, np.diag(lam), lr, c)
    if _rho(T) >= 1.0:
        return float("inf")
    s = np.linalg.solve(np.eye(r * r) - T, lr * lr * c * Q.ravel())
    S = s.reshape(r, r)
    return float(0.5 * np.sum(lam * np.diag(S)))
