"""spectrum(X) is exact: every eigenvalue of H = X^T X / P to 1e-12 relative up to
kappa(H) = 1e16, checked against exact arithmetic (no mpmath needed).

Two kinds of truth:

* an exact construction: X = U diag(s) V^T with U, V scaled Hadamard matrices and s
  powers of 2, so that every entry of X is a sum of a few powers of 2 and is stored
  exactly: the eigenvalues of the stored X's H are then exactly s^2 / P;
* a certificate for any float X: X's entries are rationals, X^T X is formed exactly with
  ``fractions.Fraction``, and the inertia of X^T X - mu I (an exact LDL^T, Sylvester's
  law) counts the eigenvalues below mu.  lambda_i is certified to ``rtol`` when exactly
  i eigenvalues lie below lambda_i (1 - rtol) and at least i + 1 below lambda_i (1 + rtol).

NIST's Wampler 1 and the Longley table are built from their definitions (no download):
Wampler 1 is the degree-5 polynomial design on x = 0..20; Longley's six regressors are
written out below (the certificate does not depend on the values being the published
ones to the last digit, only on their scale and collinearity).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from scipy.linalg import hadamard

import fastgd as fg
from fastgd.spectrum import eigenvalues_from_data


def exact_gram(X):
    rows = [[Fraction(float(v)) for v in r] for r in np.asarray(X, dtype=float)]
    d = len(rows[0])
    return [[sum(r[i] * r[j] for r in rows) for j in range(d)] for i in range(d)]


def count_below(G, mu):
    """Eigenvalues of the exact symmetric G below mu: negative pivots of LDL^T(G - mu)."""
    d = len(G)
    A = [[G[i][j] - (mu if i == j else 0) for j in range(d)] for i in range(d)]
    neg = 0
    for k in range(d):
        piv = A[k][k]
        assert piv != 0, "mu is an eigenvalue: pick another"
        neg += piv < 0
        for i in range(k + 1, d):
            f = A[i][k] / piv
            for j in range(k + 1, d):
                A[i][j] -= f * A[k][j]
    return neg


def assert_certified(X, lam, rtol=1e-12):
    """Each lam[i] (ascending) is within rtol of the i-th eigenvalue of X^T X / P (a
    reported 0 must be a true 0: below every positive rtol-bracket of the next ones)."""
    P = len(X)
    G = exact_gram(X)
    for i, v in enumerate(lam):
        if v == 0:
            continue
        below = count_below(G, Fraction(float(v)) * P * (1 - Fraction(rtol)))
        above = count_below(G, Fraction(float(v)) * P * (1 + Fraction(rtol)))
        assert below <= i < above, (i, v, below, above)


def _augment(X):
    return np.hstack([X, np.ones((X.shape[0], 1))])


def wampler1():
    """NIST Wampler 1: y = 1 + x + x^2 + x^3 + x^4 + x^5 on x = 0..20 (exact integers)."""
    x = np.arange(21.0)
    X = np.vander(x, 6, increasing=True)[:, 1:]  # x .. x^5; the intercept is bias=True
    return X, X.sum(axis=1) + 1.0


#: Longley (1967): GNP deflator, GNP, unemployed, armed forces, population, year
LONGLEY = np.array([
    [83.0, 234289, 2356, 1590, 107608, 1947], [88.5, 259426, 2325, 1456, 108632, 1948],
    [88.2, 258054, 3682, 1616, 109773, 1949], [89.5, 284599, 3351, 1650, 110929, 1950],
    [96.2, 328975, 2099, 3099, 112075, 1951], [98.1, 346999, 1932, 3594, 113270, 1952],
    [99.0, 365385, 1870, 3547, 115094, 1953], [100.0, 363112, 3578, 3350, 116219, 1954],
    [101.2, 397469, 2904, 3048, 117388, 1955], [104.6, 419180, 2822, 2857, 118734, 1956],
    [108.4, 442769, 2936, 2798, 120445, 1957], [110.8, 444546, 4681, 2637, 121950, 1958],
    [112.6, 482704, 3813, 2552, 123366, 1959], [114.2, 502601, 3931, 2514, 125368, 1960],
    [115.7, 518173, 4806, 2572, 127852, 1961], [116.9, 554894, 4007, 2827, 130081, 1962]])


# ------------------------------------------------------------- exact construction
@pytest.mark.parametrize("top", [6, 13, 20, 27])  # kappa(H) = 4**top: 4e3 .. 1.8e16
def test_exact_construction(top):
    P, d = 16, 4
    U = hadamard(P)[:, :d] / 4.0  # orthonormal columns, entries +-1/4
    Vm = hadamard(d) / 2.0  # orthogonal, entries +-1/2
    e = np.linspace(0, top, d).round()
    s = 2.0 ** -e
    X = U @ np.diag(s) @ Vm.T
    assert np.array_equal((X * 8 * 2.0 ** top) % 1, np.zeros_like(X))  # stored exactly
    want = np.sort(s * s / P)
    sp = fg.spectrum(X)
    np.testing.assert_allclose(sp.eigenvalues, want, rtol=1e-12, atol=0)
    np.testing.assert_allclose(sp.condition_number, 4.0 ** top, rtol=1e-12)
    # the eigenvectors: the columns of Vm, up to sign, in ascending order of s^2
    V = Vm[:, np.argsort(s * s)]
    np.testing.assert_allclose(np.abs(V.T @ sp.eigenvectors), np.eye(d), atol=1e-12)


# ------------------------------------------------------------- certificates
@pytest.mark.parametrize("kappa", [1e2, 0.99e4, 1e8, 1e12, 1e16])
@pytest.mark.parametrize("seed", [0, 1])
def test_dense_ill_conditioned_certified(kappa, seed):
    """X = U diag(s) V^T rounded to float64 (dense: no column scaling to exploit); the
    stored X's own spectrum, certified; a formed X^T X / P with eigh is far off."""
    rng = np.random.default_rng(seed)
    P, d = 40, 6
    U, _ = np.linalg.qr(rng.standard_normal((P, d)))
    Vm, _ = np.linalg.qr(rng.standard_normal((d, d)))
    X = (U * np.geomspace(1.0, kappa ** -0.5, d) * 3.7) @ Vm.T
    lam = fg.spectrum(X).eigenvalues
    assert_certified(X, lam)
    np.testing.assert_allclose(lam[-1] / lam[0], kappa, rtol=1e-3)


def test_wampler1_certified():
    X, y = wampler1()
    s = fg.spectrum(X, bias=True)
    assert_certified(_augment(X), s.eigenvalues)
    assert 4.0e13 < s.condition_number < 4.2e13  # NIST: kappa(H) = 4e13
    # the formed X^T X / P loses lambda_min (what the spectrum used to be)
    Xa = _augment(X)
    eigh = np.linalg.eigvalsh(Xa.T @ Xa / 21)
    assert abs(eigh[0] / s.lambda_min - 1) > 1e-6


def test_longley_certified():
    X = LONGLEY
    for bias in (False, True):
        s = fg.spectrum(X, bias=bias)
        assert_certified(_augment(X) if bias else X, s.eigenvalues)
    assert s.condition_number > 1e16  # with the intercept, beyond 1e16 and still exact


def test_gaussian_data_and_whitened_are_exact(rng):
    """Clustered and equal eigenvalues (whitened data: H = I) come out right too."""
    ds = fg.gaussian_data(50, [1e-9, 1e-9 * (1 + 1e-10), 0.5, 1.0], seed=3)
    assert_certified(ds.X, fg.spectrum(ds.X).eigenvalues)
    W = fg.whiten(rng.standard_normal((30, 4)))
    lam = fg.spectrum(W).eigenvalues
    assert_certified(W, lam)
    np.testing.assert_allclose(lam, 1.0, rtol=1e-12)


def test_eigenvalues_from_data_is_the_spectrum():
    X, _ = wampler1()
    np.testing.assert_array_equal(eigenvalues_from_data(X, bias=True),
                                  fg.spectrum(X, bias=True).eigenvalues)


def test_eigenvectors_diagonalise_to_relative_accuracy():
    """Each eigenvector's Rayleigh quotient (in exact arithmetic, on Wampler 1) equals its
    eigenvalue to 1e-12 relative, the smallest included (kappa = 4e13): the vectors are
    right relative to each lambda_i, not only to lambda_max."""
    X, _ = wampler1()
    Xa = _augment(X)
    s = fg.spectrum(X, bias=True)
    G = exact_gram(Xa)
    for i in range(s.eigenvalues.size):
        v = [Fraction(float(c)) for c in s.eigenvectors[:, i]]
        Gv = [sum(G[a][b] * v[b] for b in range(len(v))) for a in range(len(v))]
        rq = sum(a * b for a, b in zip(v, Gv, strict=True)) / sum(c * c for c in v) / 21
        assert abs(float(rq) / s.eigenvalues[i] - 1) < 1e-12


# ------------------------------------------------------------- edge cases
def test_singular_and_wide_data():
    a = np.arange(1.0, 6.0)
    s = fg.spectrum(np.column_stack([a, 2 * a, a]))  # rank 1
    assert s.eigenvalues[0] == s.eigenvalues[1] == 0.0 and s.condition_number == np.inf
    np.testing.assert_allclose(s.lambda_max, 6 * a @ a / 5, rtol=1e-14)
    Xw = np.random.default_rng(0).standard_normal((3, 7))  # P < d: rank 3
    lam = fg.spectrum(Xw).eigenvalues
    assert np.all(lam[:4] == 0.0)
    assert_certified(Xw, lam)
    np.testing.assert_allclose(lam[4:], np.sort(np.linalg.svd(Xw)[1] ** 2 / 3),
                               rtol=1e-12)
    z = fg.spectrum(np.zeros((4, 3)))
    assert np.all(z.eigenvalues == 0) and z.eta_max == np.inf


@pytest.mark.parametrize("scale", [1e-150, 1e-20, 1.0, 1e20, 1e140])
def test_any_scale(scale):
    X, _ = wampler1()
    ref = fg.spectrum(X, bias=True).eigenvalues
    s = fg.spectrum(np.hstack([X, np.ones((21, 1))]) * scale)
    np.testing.assert_allclose(s.eigenvalues, ref * scale ** 2, rtol=1e-13)


def test_given_hessian_uses_eigh(lecture):
    H = fg.hessian(lecture.X)
    s = fg.spectrum(H=H)
    lam, vec = np.linalg.eigh(H)
    np.testing.assert_allclose(s.eigenvalues, lam, rtol=1e-14)
    np.testing.assert_allclose(s.eigenvalues, fg.spectrum(lecture.X).eigenvalues,
                               rtol=1e-14)


@pytest.mark.parametrize("kwargs, name, what", [
    (dict(), "X", "exactly one"),
    (dict(X=np.eye(2), H=np.eye(2)), "X", "exactly one"),
    (dict(H=np.ones((2, 3))), "H", "square"),
    (dict(H=np.array([[1.0, 2.0], [0.0, 1.0]])), "H", "symmetric"),
    (dict(H=np.array([[1.0, np.nan], [np.nan, 1.0]])), "H", "finite"),
])
def test_spectrum_argument_errors(kwargs, name, what):
    with pytest.raises(fg.FastGDValueError, match=rf"spectrum: '{name}' must be .*{what}"):
        fg.spectrum(**kwargs)
