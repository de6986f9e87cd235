"""Datasets: the lecture's two-class example, Gaussian inputs with a prescribed Hessian
spectrum, and the input transformations Efficient BackProp recommends.

Convention (everywhere in fastgd): E(w) = 1/(2P) sum_p (y_p - w.x_p)^2, so the
Hessian is H = X^T X / P exactly and batch GD diverges above eta_max = 2/lambda_max.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fastgd import validate as V
from fastgd.engine import cost as _cost

LECTURE_MEAN = (0.4, 0.8)
LECTURE_EIGENVALUES = (0.84, 0.036)


@dataclass(frozen=True)
class Dataset:
    """Inputs ``X`` (P, d), targets ``y`` (P,), and a one-line description.

    Unpacks like a tuple: ``X, y = fastgd.lecture_data()``.

    Examples
    --------
    >>> import fastgd as fg
    >>> ds = fg.gaussian_data(50, [0.1, 1.0])
    >>> X, y = ds
    >>> ds.P, ds.d, X.shape
    (50, 2, (50, 2))
    """

    X: np.ndarray
    y: np.ndarray
    description: str = ""

    def __iter__(self):
        yield self.X
        yield self.y

    def __repr__(self):
        """One line: the shape and the description (the arrays are attributes)."""
        desc = f": {self.description}" if self.description else ""
        shape = np.shape(self.X)
        P, d = (shape[0] if shape else 0), (shape[1] if len(shape) > 1 else 1)
        return f"Dataset(P={P}, d={d}{desc})"

    @property
    def P(self) -> int:
        """Number of samples."""
        return self.X.shape[0]

    @property
    def d(self) -> int:
        """Number of inputs."""
        return self.X.shape[1]


def _whiten_exact(Z):
    """Centre Z and make Z^T Z / n = I exactly (up to rounding)."""
    Z = Z - Z.mean(axis=0)
    S = Z.T @ Z / Z.shape[0]
    lam, U = np.linalg.eigh(S)
    return Z @ (U / np.sqrt(lam)) @ U.T


def _rotation(d, angle, rng):
    if d == 1:
        return np.ones((1, 1))
    if d == 2:
        c, s = np.cos(angle), np.sin(angle)
        return np.array([[c, -s], [s, c]])
    Q, R = np.linalg.qr(rng.standard_normal((d, d)))
    return Q * np.sign(np.diag(R))


def lecture_data() -> Dataset:
    """The lecture's dataset (Efficient BackProp, sec. 5.2; LeCun's slides).

    100 points in two classes of 50 (``y = -1`` and ``y = +1``) whose sample means are
    exactly -(0.4, 0.8) and +(0.4, 0.8), so the inputs have zero mean.  The Hessian of
    E(w) = 1/(2P) sum (y - w.x)^2, H = X^T X / P, has eigenvalues exactly 0.84 (along
    (1, 2)/sqrt(5)) and 0.036: lambda_max = 0.84, eta_opt = 1/0.84 = 1.19,
    eta_max = 2/0.84 = 2.38.  The class means contribute 0.8 along (1, 2)/sqrt(5); the
    within-class scatter supplies 0.04 along it and 0.036 across it.  Deterministic.

    Examples
    --------
    >>> import fastgd as fg
    >>> X, y = fg.lecture_data()
    >>> X.shape, sorted(set(y.tolist()))
    ((100, 2), [-1.0, 1.0])
    >>> [round(v, 12) for v in fg.spectrum(X).eigenvalues.tolist()]
    [0.036, 0.84]
    """
    rng = np.random.default_rng(19981)
    P2 = 50
    mu = np.array(LECTURE_MEAN)
    u = mu / np.linalg.norm(mu)
    v = np.array([-u[1], u[0]])
    lam_max, lam_min = LECTURE_EIGENVALUES
    within_u = lam_max - mu @ mu  # 0.04
    A = np.sqrt(within_u) * np.outer(u, u) + np.sqrt(lam_min) * np.outer(v, v)
    Z = rng.standard_normal((2 * P2, 2))
    Z[:P2] -= Z[:P2].mean(axis=0)
    Z[P2:] -= Z[P2:].mean(axis=0)
    S = Z.T @ Z / Z.shape[0]
    lam, U = np.linalg.eigh(S)
    Z = Z @ (U / np.sqrt(lam)) @ U.T @ A  # pooled within-class scatter = A A^T
    Z[:P2] -= Z[:P2].mean(axis=0)
    Z[P2:] -= Z[P2:].mean(axis=0)
    X = np.empty((2 * P2, 2))
    X[:P2] = -mu + Z[:P2]
    X[P2:] = mu + Z[P2:]
    y = np.concatenate([-np.ones(P2), np.ones(P2)])
    return Dataset(np.ascontiguousarray(X), y, "LeCun's lecture: 2 classes at ±(0.4, 0.8)")


def gaussian_data(n, eigenvalues, *, angle=0.0, seed=0, labels="classes", noise=0.1) -> Dataset:
    """Zero-mean Gaussian inputs whose Hessian H = X^T X / n has a prescribed spectrum.

    Parameters
    ----------
    n : int
        Number of samples (>= d + 1).
    eigenvalues : sequence of float, length d >= 1
        The eigenvalues of H (>= 0).  They hold exactly (to rounding): the sample is
        centred and whitened before being scaled.
    angle : float
        For d = 2, the angle (radians) of the first eigenvector from the x-axis.  For
        d > 2 the eigenbasis is a random orthogonal matrix drawn from ``seed``.
    seed : int
        Seed of ``numpy.random.default_rng``.
    labels : {"classes", "teacher"}
        ``"classes"``: y = sign(x.w_t) in {-1, +1} for a random teacher w_t.
        ``"teacher"``: y = x.w_t + noise * N(0, 1).
    noise : float
        Label noise of the ``"teacher"`` labels (>= 0).

    Returns
    -------
    Dataset

    Examples
    --------
    >>> import numpy as np
    >>> import fastgd as fg
    >>> X, y = fg.gaussian_data(200, [0.1, 1.0], angle=0.3, seed=1)
    >>> np.round(np.linalg.eigvalsh(X.T @ X / 200), 6)
    array([0.1, 1. ])
    """
    f = "gaussian_data"
    lam = V.as_float_array(f, "eigenvalues", V.atleast_1d(f, "eigenvalues", eigenvalues), 1)
    if np.any(lam < 0):
        raise V.fail(f, "eigenvalues", ">= 0", f"min {lam.min():g}")
    d = lam.size
    n = V.integer(f, "n", n, minimum=d + 1)
    if float(lam.max()) * n * d * 100 > V.SQUARE_LIMIT:
        raise V.fail(f, "eigenvalues", f"small enough for the data's sums of squares to be "
                     f"finite (max x n x d x 100 < {V.SQUARE_LIMIT:g})", f"max {lam.max():g}")
    _cost.check(f, "n", nbytes=6.0 * 8 * n * (d + 1) + _cost.matrix_bytes(d),
                what=f"{n:,} samples x {d} inputs x 8 B x 6", hint="use a smaller n")
    angle = V.real(f, "angle", angle)
    seed = V.integer(f, "seed", seed, minimum=0)
    V.choice(f, "labels", labels, ("classes", "teacher"))
    noise = V.real(f, "noise", noise, nonneg=True)
    Xs, ys = _gaussian_stack(n, lam[None], angle, seed, labels, noise)
    X, y = Xs[0], ys[0]
    desc = f"gaussian_data(n={n}, eigenvalues={_rounded(lam)}, seed={seed})"
    return Dataset(X, np.ascontiguousarray(y), desc)


def _rounded(values):
    """``[0.1, 1.0]`` (plain floats, 6 decimals) for a description string."""
    return [round(float(v), 6) for v in values]


def _gaussian_stack(n, rows, angle, seed, labels, noise):
    """The inputs and labels of ``gaussian_data(n, row, ...)`` for every row of
    eigenvalues, as stacks Xs (k, n, d) and ys (k, n).  All members share the basis,
    whitened sample, teacher and noise drawn from ``seed`` (only the eigenvalues
    differ), so these are drawn once and each stacked operation runs once;
    :func:`gaussian_data` is this with one row, so the two agree bit for bit."""
    d = rows.shape[1]
    rng = np.random.default_rng(seed)
    Q = _rotation(d, angle, rng)
    Z = _whiten_exact(rng.standard_normal((n, d)))
    wt = rng.standard_normal(d)
    wt /= np.linalg.norm(wt)
    Xs = np.ascontiguousarray((Z[None] * np.sqrt(rows)[:, None, :]) @ Q.T)
    s = Xs @ wt
    if labels == "classes":
        ys = np.where(s >= 0, 1.0, -1.0)
    else:
        ys = s + noise * rng.standard_normal(n)
    return Xs, np.ascontiguousarray(ys)


def gaussian_family(n, eigenvalue_rows, *, angle=0.0, seed=0, labels="classes", noise=0.1,
                    describe=True):
    """``[gaussian_data(n, row, angle=angle, seed=seed, ...) for row in rows]``, drawn at
    once (a test checks that the results are identical).  Used by sweeps over condition
    numbers (with ``describe=False``: no description strings).

    Examples
    --------
    >>> from fastgd.data import gaussian_family
    >>> [ds.X.shape for ds in gaussian_family(20, [[0.1, 1.0], [0.5, 1.0]])]
    [(20, 2), (20, 2)]
    """
    rows = np.asarray(eigenvalue_rows, dtype=float)
    Xs, ys = _gaussian_stack(n, rows, angle, seed, labels, noise)
    return [Dataset(Xs[k], ys[k],
                    f"gaussian_data(n={n}, eigenvalues={_rounded(lam)}, seed={seed})"
                    if describe else "")
            for k, lam in enumerate(rows)]


def normalize(X):
    """Zero mean and unit variance per input (column), as Efficient BackProp recommends.

    Variance uses 1/P, so the normalized inputs have diag(H) = 1 exactly.
    Raises if a column is constant.

    Examples
    --------
    >>> import numpy as np
    >>> import fastgd as fg
    >>> X, _ = fg.lecture_data()
    >>> Z = fg.normalize(X)
    >>> bool(np.allclose(Z.mean(axis=0), 0)), bool(np.allclose((Z * Z).mean(axis=0), 1))
    (True, True)
    """
    f = "normalize"
    X = V.as_float_array(f, "X", X, 2)
    V.magnitude(f, "X", X, X.size)
    Xc = X - X.mean(axis=0)
    sd = np.sqrt((Xc ** 2).mean(axis=0))
    if np.any(sd == 0):
        raise V.fail(f, "X", "free of constant columns", f"column(s) {np.flatnonzero(sd == 0).tolist()} constant")
    return Xc / sd


def whiten(X):
    """Decorrelate and equalise the inputs (PCA whitening): centred, H = I exactly.

    The columns of the result are the principal components, each scaled to unit
    variance (1/P convention).  Raises if the inputs are linearly dependent.

    Examples
    --------
    >>> import numpy as np
    >>> import fastgd as fg
    >>> X, _ = fg.lecture_data()
    >>> W = fg.whiten(X)
    >>> bool(np.allclose(W.T @ W / len(W), np.eye(2)))
    True
    """
    f = "whiten"
    X = V.as_float_array(f, "X", X, 2)
    V.magnitude(f, "X", X, X.size)
    _cost.check(f, "X", nbytes=_cost.matrix_bytes(X.shape[1]),
                what=f"the {X.shape[1]} x {X.shape[1]} covariance", hint="use fewer inputs")
    Xc = X - X.mean(axis=0)
    lam, U = np.linalg.eigh(Xc.T @ Xc / X.shape[0])
    if lam[0] <= 1e-12 * max(lam[-1], 1e-300):
        raise V.fail(f, "X", "linearly independent columns (a full-rank covariance)",
                     f"smallest covariance eigenvalue {lam[0]:.3g}")
    return Xc @ (U / np.sqrt(lam))
