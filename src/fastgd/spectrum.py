"""Hessian and its spectrum for the linear unit.

With E(w) = 1/(2P) sum_p (y_p - w.x_p)^2 the Hessian is H = X^T X / P (the input
covariance for centred inputs), independent of w and y.  Batch GD with rate eta
multiplies the error along eigenvector i by (1 - eta*lambda_i) per step
(Efficient BackProp, eqs. 20-39): it converges iff eta < eta_max = 2/lambda_max.

Two paths (:func:`spectrum`): from the data X, eigenvalues accurate to ~1e-15 relative
even for kappa(H) = 1e16 (the SVD of X, refined in double-double arithmetic: a formed
X^T X / P in float64 loses every eigenvalue below ~1e-16 lambda_max); from a given H,
``scipy.linalg.eigh`` (H is all there is: its rounding bounds the accuracy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from fastgd import validate as V


def _augment(X, bias):
    if bias:
        return np.hstack([X, np.ones((X.shape[0], 1))])
    return X


def hessian(X, *, bias=False):
    """H = X^T X / P, with a constant input 1 appended when ``bias=True``.

    Parameters
    ----------
    X : array (P, d)
    bias : bool
        Append a constant input (the unit's bias).  H is then the augmented
        second-moment matrix, of shape (d + 1, d + 1).

    Examples
    --------
    >>> import fastgd as fg
    >>> fg.hessian(fg.lecture_data().X).shape
    (2, 2)
    """
    return _hessian("hessian", X, bias)


def _hessian(f, X, bias):
    """hessian() with errors named after the public function ``f``."""
    X = _augment(V.design(f, X), V.boolean(f, "bias", bias))
    return X.T @ X / X.shape[0]


_REGIMES = np.array(["flat", "monotone", "one-step", "oscillating", "marginal", "diverging"])


@dataclass(frozen=True)
class Spectrum:
    """Eigen-decomposition of H = X^T X / P.

    Attributes
    ----------
    eigenvalues : (d,) ascending
    eigenvectors : (d, d), columns
    lambda_max, lambda_min : float
    condition_number : float
        lambda_max / lambda_min (inf when H is singular).
    eta_opt : float
        1/lambda_max, the lecture's "optimal" rate (one step along the steepest
        direction; Efficient BackProp eq. 39).
    eta_max : float
        2/lambda_max: batch GD diverges above it (eq. 38).
    eta_minimax : float
        2/(lambda_max + lambda_min): minimises the worst contraction max_i |1 - eta lambda_i|.

    When H = 0 (X all zeros) the loss does not depend on w: no rate diverges and
    ``eta_opt``, ``eta_max`` and ``eta_minimax`` are ``inf``.

    Examples
    --------
    >>> import fastgd as fg
    >>> s = fg.spectrum(fg.lecture_data().X)
    >>> round(s.eta_max, 5)          # 2 / lambda_max
    2.38095
    """

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray

    def __repr__(self):
        """Three lines: the extremes and kappa, the three rates, the eigenvalues (the
        first and last three when d > 8)."""
        lam = np.asarray(self.eigenvalues)
        ev = np.array2string(lam, precision=6, threshold=8, edgeitems=3,
                             max_line_width=10**6)
        return (f"Spectrum(d={lam.size}: lambda_max={self.lambda_max:.7g}, "
                f"lambda_min={self.lambda_min:.7g}, kappa={self.condition_number:.4g})\n"
                f"  eta_opt={self.eta_opt:.7g}, eta_max={self.eta_max:.7g}, "
                f"eta_minimax={self.eta_minimax:.7g}\n"
                f"  eigenvalues (ascending): {ev}; eigenvectors: {lam.size} x {lam.size}")

    @property
    def lambda_max(self) -> float:
        return float(self.eigenvalues[-1])

    @property
    def lambda_min(self) -> float:
        return float(self.eigenvalues[0])

    @property
    def condition_number(self) -> float:
        lo = self.lambda_min
        return float(self.lambda_max / lo) if lo > 0 else float("inf")

    @property
    def eta_opt(self) -> float:
        lam = self.lambda_max
        return 1.0 / lam if lam > 0 else float("inf")

    @property
    def eta_max(self) -> float:
        lam = self.lambda_max
        return 2.0 / lam if lam > 0 else float("inf")

    @property
    def eta_minimax(self) -> float:
        lam = self.lambda_max + self.lambda_min
        return 2.0 / lam if lam > 0 else float("inf")

    def multipliers(self, lr):
        """Per-direction error multipliers 1 - lr*lambda_i of one batch GD step."""
        lr = V.real("Spectrum.multipliers", "lr", lr, positive=True)
        with np.errstate(over="ignore"):  # -inf for a rate whose product overflows
            return 1.0 - lr * self.eigenvalues

    def regime(self, lr, *, rtol=1e-9):
        """Per-direction regime of batch GD at rate ``lr`` (array of str, ascending lambda).

        ``"monotone"`` (eta*lambda < 1), ``"one-step"`` (= 1), ``"oscillating"``
        (1 < eta*lambda < 2, converging), ``"marginal"`` (= 2: oscillates forever),
        ``"diverging"`` (> 2), ``"flat"`` (lambda = 0: the error never moves).
        Equalities hold to relative tolerance ``rtol``.
        """
        lr = V.real("Spectrum.regime", "lr", lr, positive=True)
        rtol = V.real("Spectrum.regime", "rtol", rtol, nonneg=True)
        with np.errstate(over="ignore"):
            z = lr * self.eigenvalues
        tiny = 1e-14 * max(self.lambda_max, 1e-300)
        code = np.where(self.eigenvalues <= tiny, 0,
               np.where(np.abs(z - 1) <= rtol, 2,
               np.where(z < 1, 1,
               np.where(np.abs(z - 2) <= 2 * rtol, 4, np.where(z < 2, 3, 5)))))
        return _REGIMES[code]


def spectrum(X=None, *, bias=False, H=None) -> Spectrum:
    """Spectrum of H = X^T X / P (see :class:`Spectrum`), from the data or from H.

    Parameters
    ----------
    X : array (P, d), optional
        Inputs.  The eigenvalues come from the SVD of X (sigma_i^2 / P), refined in
        double-double arithmetic (:func:`eigenvalues_from_data`): accurate to ~1e-15
        relative for every eigenvalue down to 1e-16 lambda_max (kappa(H) = 1e16), where
        ``eigh`` of a formed X^T X / P (the lecture's recipe, SciPy's ``eigh``) is off by
        eps x kappa(H) (0.3 % for lambda_min of NIST's Wampler 1, kappa = 4e13).
        Eigenvalues below ~1e-29 d lambda_max are beyond that arithmetic and read 0.
    bias : bool
        Append a constant input 1 to X (the unit's bias): the augmented H.
    H : array (d, d), optional
        A Hessian (symmetric, positive semi-definite) instead of X: ``scipy.linalg.eigh``
        of the given matrix (its own rounding is all the information there is; small
        eigenvalues are then accurate to ~eps lambda_max, not relatively).

    Exactly one of ``X`` and ``H`` is given.

    Examples
    --------
    >>> import fastgd as fg
    >>> s = fg.spectrum(fg.lecture_data().X)
    >>> round(s.lambda_max, 12), round(s.eta_max, 4)
    (0.84, 2.381)
    >>> s2 = fg.spectrum(H=fg.hessian(fg.lecture_data().X))     # eigh of a given H
    >>> round(s2.lambda_min, 12)
    0.036
    """
    f = "spectrum"
    if (X is None) == (H is None):
        raise V.fail(f, "X", "given, or H= instead (exactly one of them)",
                     "neither" if X is None else "both X and H")
    if H is not None:
        H = _given_hessian(f, H)
        V.boolean(f, "bias", bias)
        lam, vec = scipy.linalg.eigh(H)
        return Spectrum(np.maximum(lam, 0.0), vec)  # H is PSD: clip rounding below 0
    X = _augment(V.design(f, X), V.boolean(f, "bias", bias))
    lam, vec = _eig_from_data(X)
    return Spectrum(lam, vec)


def _given_hessian(f, H):
    """A given H: square, finite, symmetric (to 1e-12 of its largest entry)."""
    H = V.as_float_array(f, "H", H, 2)
    if H.shape[0] != H.shape[1] or H.shape[0] == 0:
        raise V.fail(f, "H", "a square matrix (d, d) with d >= 1", f"shape {H.shape}")
    if not np.isfinite(H).all():
        raise V.fail(f, "H", "finite", "non-finite entries")
    scale = float(np.max(np.abs(H)))
    if np.max(np.abs(H - H.T)) > 1e-12 * scale:
        raise V.fail(f, "H", "symmetric", "H != H^T")
    return 0.5 * (H + H.T)


def eigenvalues_from_data(X, *, bias=False):
    """Eigenvalues of H = X^T X / P (ascending) from X, accurate to ~1e-15 relative
    down to lambda_min = 1e-16 lambda_max.

    How: X is scaled by a power of 2 (exact); X^T X is formed *exactly* as a sum of
    float64 matrices (Ozaki's error-free splitting: slices of X with so few bits that
    BLAS adds their products without rounding) and kept in double-double; the right
    singular vectors V of X's float64 SVD turn it into a nearly diagonal V^T (X^T X) V
    (double-double), which cyclic Jacobi rotations diagonalise to relative accuracy
    (Demmel & Veselic 1992: each rotation, orthogonal to eps, moves every eigenvalue
    by at most ~eps relative).  The exact X^T X costs one BLAS product per pair of
    slices (~10-20 x forming X^T X in float64), the rotations O(d^3) NumPy operations.
    Well-conditioned data (kappa(H) <= :data:`REFINE_KAPPA`) and d >
    :data:`REFINE_MAX_D` take sigma_i^2 / P from the SVD alone (relative accuracy
    ~eps sqrt(kappa(H)): ~1e-14 for kappa 1e4).  Eigenvalues below 64 d eps^2
    lambda_max (the double-double arithmetic's reach) are reported as 0.

    Parameters
    ----------
    X : array (P, d)
    bias : bool
        Append a constant input 1.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgd.spectrum import eigenvalues_from_data
    >>> x = np.arange(21.0)
    >>> X = np.vander(x, 6, increasing=True)          # NIST Wampler 1's design, kappa 4e13
    >>> lam = eigenvalues_from_data(X)
    >>> f"{lam[-1] / lam[0]:.3e}"
    '4.095e+13'
    """
    X = _augment(V.design("eigenvalues_from_data", X),
                 V.boolean("eigenvalues_from_data", "bias", bias))
    return _eig_from_data(X)[0]


#: largest d for which :func:`spectrum` refines the SVD (the Jacobi rotations cost
#: O(d^3) NumPy operations); above it, sigma^2 / P from the SVD alone
REFINE_MAX_D = 128
#: kappa(H) up to which sigma^2 / P from the SVD alone is accurate enough (relative
#: error ~eps sqrt(kappa) x a small factor, ~1e-14 here), and no refinement runs
REFINE_KAPPA = 1e4


def _eig_from_data(X):
    """(eigenvalues ascending, eigenvectors) of X^T X / P for a validated 2-D X."""
    P, d = X.shape
    amax = float(np.max(np.abs(X))) if X.size else 0.0
    if amax == 0.0:  # H = 0
        return np.zeros(d), np.eye(d)
    e = math.frexp(amax)[1]
    Xs = np.ldexp(X, -e)  # exact: max |Xs| in [0.5, 1)
    # the singular values and right vectors of X from its R factor (Householder QR
    # then the SVD of R: the same backward error as an SVD of X, without its P x d U)
    R = np.linalg.qr(Xs, mode="r") if P > d else Xs
    _, sv, Vt = np.linalg.svd(R, full_matrices=P < d)
    Q = np.ascontiguousarray(Vt.T)
    kappa = (sv[0] / sv[-1]) ** 2 if sv.size == d and sv[-1] > 0 else np.inf
    if d > REFINE_MAX_D or kappa <= REFINE_KAPPA:
        lam = np.zeros(d)
        lam[: sv.size] = sv * sv
        lam, vec = lam[::-1], Q[:, ::-1]
    else:
        # bits of X^T X to keep: enough for 1e-15 of lambda_min (capped at double-double)
        bits = min(116, math.log2(min(kappa, 1e32)) + 60 + math.log2(d * math.sqrt(P)))
        Gh, Gl = _exact_gram(Xs, bits)
        Th, Tl = _congruence(Gh, Gl, Q)
        lam, vec = _jacobi(Th, Tl, Q)
        order = np.argsort(lam, kind="stable")
        lam, vec = lam[order], vec[:, order]
        lam[lam <= 64.0 * d * _EPS * _EPS * lam[-1]] = 0.0  # below the arithmetic's reach
    lam = np.ldexp(np.maximum(lam, 0.0), 2 * e) / P
    return lam, np.ascontiguousarray(vec)


# -- double-double arithmetic (elementwise NumPy: no contraction into FMA) ------------
_EPS = float(np.finfo(np.float64).eps)
_SPLIT = 134217729.0  # 2**27 + 1, Dekker's splitter


def _two_sum(a, b):
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _two_prod(a, b):
    p = a * b
    ca = _SPLIT * a
    ah = ca - (ca - a)
    al = a - ah
    cb = _SPLIT * b
    bh = cb - (cb - b)
    bl = b - bh
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def _dd_add(ah, al, bh, bl):
    s, e = _two_sum(ah, bh)
    e = e + (al + bl)
    h = s + e
    return h, e - (h - s)


def _dd_scale(h, l, c):
    """(h + l) * c for a float c, in double-double."""
    p, e = _two_prod(h, c)
    e = e + l * c
    s = p + e
    return s, e - (s - p)


def _slices(A, n, axis, bits):
    """Float64 slices summing to A (to 2**-bits of each row's (``axis=1``) or column's
    (``axis=0``) largest entry), each with at most 53 - rho bits on a grid common to its
    row / column, so that a product of slices summed over an inner dimension of ``n``
    is exact in any order (Ozaki, Ogita, Oishi & Rump 2012).  Returns (slices, bits
    per slice)."""
    rho = math.ceil((54 + math.log2(max(n, 2))) / 2)
    out = []
    for _ in range(math.ceil(bits / (53 - rho)) + 1):
        mu = np.max(np.abs(A), axis=axis, keepdims=True)
        if not mu.any():
            break
        sigma = np.ldexp(1.0, np.frexp(np.where(mu > 0, mu, 1.0))[1] + rho)
        hi = (A + sigma) - sigma
        out.append(hi)
        A = A - hi
    return out, 53 - rho


def _exact_product(A, B, bits=116, gram=False):
    """A @ B in double-double (hi, lo) from the exact products of the slices of A (by
    row) and B (by column), summed smallest first; products below 2**-bits of the
    largest are left out.  ``gram``: B = A^T (A @ A^T, each pair of slices once)."""
    m, n = A.shape
    sa, beta = _slices(A, n, 1, bits)
    sb = [S.T for S in sa] if gram else _slices(B, n, 0, bits)[0]
    p = sb[0].shape[1] if sb else B.shape[1]
    h = np.zeros((m, p))
    lo = np.zeros((m, p))
    pairs = [(a + b, a, b) for a in range(len(sa)) for b in range(len(sb))
             if (a + b - 1) * beta <= bits and not (gram and b < a)]
    for _, a, b in sorted(pairs, reverse=True):
        C = sa[a] @ sb[b]
        if gram and a != b:
            C, e = _two_sum(C, C.T)
            h, lo = _dd_add(h, lo, C, e)
        else:
            h, lo = _dd_add(h, lo, C, 0.0)
    return h, lo


def _exact_gram(X, bits):
    """X^T X in double-double, in blocks of rows (memory ~ 2**20 x slices floats)."""
    P, d = X.shape
    rows = max(64, (1 << 20) // d)
    h = np.zeros((d, d))
    lo = np.zeros((d, d))
    for a in range(0, P, rows):
        bh, bl = _exact_product(np.ascontiguousarray(X[a:a + rows].T), None, bits, gram=True)
        h, lo = _dd_add(h, lo, bh, bl)
    return h, lo


def _congruence(Gh, Gl, Q):
    """Q^T G Q in double-double, symmetrised."""
    zh, zl = _exact_product(Gh, Q)
    zh, zl = _dd_add(zh, zl, Gl @ Q, 0.0)
    Qt = np.ascontiguousarray(Q.T)
    th, tl = _exact_product(Qt, zh)
    th, tl = _dd_add(th, tl, Qt @ zl, 0.0)
    return _dd_scale(*_dd_add(th, tl, th.T, tl.T), 0.5)


def _round_robin(d):
    """Disjoint (p, q) index pairs, step by step, covering every pair once per sweep."""
    n = d + d % 2
    idx = list(range(n))
    steps = []
    for _ in range(n - 1):
        pairs = [(min(idx[i], idx[n - 1 - i]), max(idx[i], idx[n - 1 - i]))
                 for i in range(n // 2)]
        pairs = [pq for pq in pairs if pq[1] < d]
        if pairs:
            steps.append(np.array(pairs, dtype=np.int64).T)
        idx = [idx[0], idx[-1]] + idx[1:-1]
    return steps


def _rotate(h, lo, p, q, c, s, axis):
    """Rows (``axis=0``) or columns (1) p, q of a double-double matrix times the
    rotation [[c, s], [-s, c]] (J^T T for rows, T J for columns)."""
    if axis == 0:
        hp, lp, hq, lq = h[p], lo[p], h[q], lo[q]
        c, s = c[:, None], s[:, None]
    else:
        hp, lp, hq, lq = h[:, p], lo[:, p], h[:, q], lo[:, q]
    a = _dd_scale(hp, lp, c)
    b = _dd_scale(hq, lq, -s)
    np_ = _dd_add(*a, *b)
    a = _dd_scale(hp, lp, s)
    b = _dd_scale(hq, lq, c)
    nq = _dd_add(*a, *b)
    if axis == 0:
        h[p], lo[p], h[q], lo[q] = np_[0], np_[1], nq[0], nq[1]
    else:
        h[:, p], lo[:, p], h[:, q], lo[:, q] = np_[0], np_[1], nq[0], nq[1]


def _jacobi(h, lo, Q, max_sweeps=40):
    """Cyclic Jacobi on the symmetric double-double matrix (h, lo), rotations (float64
    parameters, applied in double-double) accumulated into Q; stops when every
    |T_pq| <= eps sqrt(|T_pp T_qq|).  Returns (diagonal, Q), in place."""
    h, lo, Q = h.copy(), lo.copy(), Q.copy()
    steps = _round_robin(h.shape[0])
    for _ in range(max_sweeps):
        rotated = False
        for p, q in steps:
            app, aqq, apq = h[p, p] + lo[p, p], h[q, q] + lo[q, q], h[p, q] + lo[p, q]
            need = np.abs(apq) > _EPS * np.sqrt(np.abs(app * aqq))
            if not need.any():
                continue
            rotated = True
            p, q, apq = p[need], q[need], apq[need]
            diff = (h[q, q] - h[p, p]) + (lo[q, q] - lo[p, p])
            with np.errstate(over="ignore"):
                theta = diff / (2.0 * apq)
                t = np.where(np.abs(theta) > 1e150, 0.5 / theta,
                             np.copysign(1.0, theta) / (np.abs(theta)
                                                        + np.sqrt(1.0 + theta * theta)))
            c = 1.0 / np.sqrt(1.0 + t * t)
            s = t * c
            _rotate(h, lo, p, q, c, s, 0)
            _rotate(h, lo, p, q, c, s, 1)
            Qp, Qq = Q[:, p].copy(), Q[:, q].copy()
            Q[:, p] = Qp * c - Qq * s
            Q[:, q] = Qp * s + Qq * c
        if not rotated:
            break
    return np.diag(h) + np.diag(lo), Q
