"""Datasets: the lecture's two-class example, prescribed spectra, normalize/whiten."""

from __future__ import annotations

import numpy as np
import pytest

import fastgd as fg


def H_of(X):
    return X.T @ X / X.shape[0]


# ------------------------------------------------------------------ lecture_data


def test_lecture_shapes_and_labels(lecture):
    X, y = lecture
    assert isinstance(lecture, fg.Dataset)
    assert X.shape == (100, 2) and y.shape == (100,)
    assert X.dtype == np.float64 and y.dtype == np.float64
    assert lecture.P == 100 and lecture.d == 2
    assert set(np.unique(y)) == {-1.0, 1.0}
    assert np.sum(y == -1) == 50 and np.sum(y == 1) == 50


def test_lecture_eigenvalues_exact(lecture):
    lam = np.linalg.eigvalsh(H_of(lecture.X))
    np.testing.assert_allclose(lam, [0.036, 0.84], rtol=0, atol=1e-12)
    # the steep direction is the class-mean direction (1, 2)/sqrt(5)
    u = np.array([1.0, 2.0]) / np.sqrt(5.0)
    np.testing.assert_allclose(H_of(lecture.X) @ u, 0.84 * u, rtol=0, atol=1e-12)


def test_lecture_class_means_exact(lecture):
    X, y = lecture
    mu = np.array([0.4, 0.8])
    np.testing.assert_allclose(X[y == 1].mean(axis=0), mu, rtol=0, atol=1e-15)
    np.testing.assert_allclose(X[y == -1].mean(axis=0), -mu, rtol=0, atol=1e-15)
    np.testing.assert_allclose(X.mean(axis=0), 0.0, rtol=0, atol=1e-15)


def test_lecture_deterministic(lecture):
    again = fg.lecture_data()
    assert np.array_equal(again.X, lecture.X) and np.array_equal(again.y, lecture.y)
    # and the arrays are not shared (mutating one call cannot corrupt the next)
    assert not np.shares_memory(again.X, lecture.X)


def test_dataset_unpacks():
    X, y = fg.lecture_data()
    assert X.shape == (100, 2) and y.shape == (100,)


# ----------------------------------------------------------------- gaussian_data

SPECTRA = {1: [0.7], 2: [1.0, 0.1], 5: [3.0, 1.0, 0.5, 0.2, 0.05]}


@pytest.mark.parametrize("d", sorted(SPECTRA))
def test_gaussian_spectrum_exact(d):
    lam = SPECTRA[d]
    ds = fg.gaussian_data(50, lam, seed=3)
    assert ds.X.shape == (50, d) and ds.y.shape == (50,)
    got = np.linalg.eigvalsh(H_of(ds.X))
    np.testing.assert_allclose(got, np.sort(lam), rtol=1e-12, atol=0)
    np.testing.assert_allclose(ds.X.mean(axis=0), 0.0, rtol=0, atol=1e-14)


@pytest.mark.parametrize("angle", [0.0, 0.3, -1.2, np.pi / 2])
def test_gaussian_angle_d2(angle):
    lam = [1.0, 0.1]
    H = H_of(fg.gaussian_data(30, lam, angle=angle, seed=0).X)
    u = np.array([np.cos(angle), np.sin(angle)])  # first eigenvector
    v = np.array([-np.sin(angle), np.cos(angle)])
    np.testing.assert_allclose(H @ u, lam[0] * u, rtol=0, atol=1e-12)
    np.testing.assert_allclose(H @ v, lam[1] * v, rtol=0, atol=1e-12)


def test_gaussian_random_basis_d5():
    lam = SPECTRA[5]
    H1 = H_of(fg.gaussian_data(40, lam, seed=1).X)
    H2 = H_of(fg.gaussian_data(40, lam, seed=2).X)
    # a random orthogonal basis: H is not diagonal, and it depends on the seed
    off = H1 - np.diag(np.diag(H1))
    assert np.abs(off).max() > 0.05
    assert not np.allclose(H1, H2)
    np.testing.assert_allclose(np.linalg.eigvalsh(H2), np.sort(lam), rtol=1e-12)


def test_gaussian_deterministic_in_seed():
    a = fg.gaussian_data(20, [1.0, 0.5, 0.1], seed=7)
    b = fg.gaussian_data(20, [1.0, 0.5, 0.1], seed=7)
    c = fg.gaussian_data(20, [1.0, 0.5, 0.1], seed=8)
    assert np.array_equal(a.X, b.X) and np.array_equal(a.y, b.y)
    assert not np.array_equal(a.X, c.X)


def test_gaussian_zero_eigenvalue_flat_direction():
    ds = fg.gaussian_data(20, [1.0, 0.0], seed=0)
    lam = np.linalg.eigvalsh(H_of(ds.X))
    np.testing.assert_allclose(lam, [0.0, 1.0], rtol=0, atol=1e-12)


def test_gaussian_labels_classes():
    ds = fg.gaussian_data(200, [1.0, 0.3, 0.1], seed=4, labels="classes")
    assert set(np.unique(ds.y)) == {-1.0, 1.0}
    # the labels come from a linear teacher's sign: a linear fit separates most of them
    w = np.linalg.lstsq(ds.X, ds.y, rcond=None)[0]
    assert np.mean(np.sign(ds.X @ w) == ds.y) > 0.9


@pytest.mark.parametrize("noise", [0.0, 0.1])
def test_gaussian_labels_teacher(noise):
    ds = fg.gaussian_data(400, [1.0, 0.3], seed=5, labels="teacher", noise=noise)
    assert len(np.unique(ds.y)) > 2
    w = np.linalg.lstsq(ds.X, ds.y, rcond=None)[0]
    resid = ds.y - ds.X @ w
    if noise == 0.0:
        assert np.abs(resid).max() < 1e-12  # y = X w_t exactly
        assert np.isclose(np.linalg.norm(w), 1.0)  # a unit-norm teacher
    else:
        assert 0.7 * noise < resid.std() < 1.3 * noise


# ------------------------------------------------------------- normalize / whiten


def test_normalize_zero_mean_unit_variance(lecture):
    Xs = lecture.X * [3.0, 0.2] + [5.0, -2.0]
    Z = fg.normalize(Xs)
    np.testing.assert_allclose(Z.mean(axis=0), 0.0, rtol=0, atol=1e-14)
    np.testing.assert_allclose((Z ** 2).mean(axis=0), 1.0, rtol=1e-12)  # 1/P variance
    np.testing.assert_allclose(np.diag(H_of(Z)), 1.0, rtol=1e-12)
    # affine per-column changes do not matter
    np.testing.assert_allclose(Z, fg.normalize(lecture.X), rtol=0, atol=1e-12)


@pytest.mark.parametrize("d", [1, 2, 5])
def test_whiten_identity_hessian(d):
    ds = fg.gaussian_data(30, SPECTRA[d], seed=6)
    Xs = ds.X + np.arange(1.0, d + 1)  # shifted: whitening must centre too
    W = fg.whiten(Xs)
    assert W.shape == Xs.shape
    np.testing.assert_allclose(W.mean(axis=0), 0.0, rtol=0, atol=1e-13)
    np.testing.assert_allclose(H_of(W), np.eye(d), rtol=0, atol=1e-12)


def test_normalizing_cures_ill_conditioning(lecture):
    """Efficient BackProp sec. 4.3: a non-zero input mean creates a huge eigenvalue."""
    X = lecture.X
    Xs = X + [5.0, 5.0]
    s0 = fg.spectrum(X)
    s_shift = fg.spectrum(Xs)
    s_norm = fg.spectrum(fg.normalize(Xs))
    s_white = fg.spectrum(fg.whiten(Xs))
    assert s_shift.lambda_max > 50 * s0.lambda_max  # ~ |mean|^2 = 50 vs 0.84
    assert s_shift.eta_max < 0.05  # the usable rate collapses (2.38 before)
    assert s_shift.condition_number > 300.0  # 440 (23 before the shift)
    assert s_norm.condition_number < s_shift.condition_number / 20  # 15.6
    assert s_norm.condition_number < s0.condition_number  # equalising helps here too
    np.testing.assert_allclose(s_white.condition_number, 1.0, rtol=1e-12)


def test_normalize_rejects_constant_column():
    X = np.column_stack([np.arange(5.0), np.ones(5)])
    with pytest.raises(fg.FastGDValueError, match=r"normalize: 'X' must be free of constant"):
        fg.normalize(X)


def test_whiten_rejects_dependent_columns():
    a = np.arange(6.0)
    with pytest.raises(fg.FastGDValueError, match=r"whiten: 'X' must be linearly independent"):
        fg.whiten(np.column_stack([a, 2 * a]))


@pytest.mark.parametrize("d,labels", [(2, "classes"), (3, "teacher"), (1, "classes")])
def testgaussian_family_equals_one_by_one(d, labels):
    from fastgd.data import gaussian_family

    rows = [np.geomspace(1.0 / k, 1.0, d) if d > 1 else [1.0] for k in (1.0, 10.0, 1e3)]
    fam = gaussian_family(50, rows, angle=0.4, seed=7, labels=labels, noise=0.3)
    for ds, row in zip(fam, rows, strict=True):
        ref = fg.gaussian_data(50, row, angle=0.4, seed=7, labels=labels, noise=0.3)
        assert np.array_equal(ds.X, ref.X) and np.array_equal(ds.y, ref.y)
