"""Per-sample and minibatch SGD (fastgd.sgd): the lecture's eta = 0.2, the naive reference
for every order / batch size / momentum / bias / dimension, scikit-learn, and batch GD."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import fastgd as fg
import naive

P = 24  # 6 divides it, 7 does not
SPECTRA = {1: [0.7], 2: [1.0, 0.1], 5: [3.0, 1.0, 0.5, 0.2, 0.05], 12: np.geomspace(0.05, 1.0, 12)}
ORDERS = ["cyclic", "shuffle", "replacement"]
METHODS = [(0.0, False), (0.6, False), (0.6, True)]  # plain, heavy ball, Nesterov


def problem(d, bias, seed=0, n=P):
    ds = fg.gaussian_data(n, SPECTRA[d], seed=seed, labels="teacher", noise=0.3)
    X = ds.X + (0.2 * np.arange(1, d + 1) if bias else 0.0)
    return X, ds.y


def safe_lr(X, bias, factor=0.5):
    """A per-sample rate with lr ||x_p||^2 <= factor for every sample (stable, lively)."""
    Xa = naive.augment(X, bias)
    return factor / np.max(np.sum(Xa ** 2, axis=1))


def contract():
    from fastgd.kernels import jit as _jit

    return _jit.contract()


# ---------------------------------------------------------------- the lecture's SGD


def test_lecture_eta_0_2_bounded_near_minimum(lecture):
    """Per-sample SGD at eta = 0.2 (100 updates per epoch) neither converges nor diverges."""
    X, y = lecture
    _, estar = naive.minimiser(X, y)
    r = fg.sgd(X, y, 0.2, 100)
    assert r.status == fg.Status.BOUNDED and not r.diverged and not r.converged
    assert r.diverged_at == -1 and r.steps_to_tol == -1
    assert r.losses.shape == (101,) and np.all(np.isfinite(r.losses))
    assert 1e-7 < r.excess < 1e-2  # small but not zero (measured 3.7e-5)
    np.testing.assert_allclose(r.loss, estar + r.excess, rtol=1e-12)
    # the whole second half stays near the minimum, never on it
    late = r.losses[50:] - estar
    assert np.all(late > 1e-7) and np.all(late < 1e-2)
    assert r.method == "sgd" and r.unit == "epoch"


@pytest.mark.parametrize("order", ["shuffle", "replacement"])
def test_lecture_eta_0_2_fluctuates(lecture, order):
    """With a random order the end-of-epoch loss keeps fluctuating around the minimum."""
    X, y = lecture
    _, estar = naive.minimiser(X, y)
    r = fg.sgd(X, y, 0.2, 100, order=order, seed=1)
    assert r.status == fg.Status.BOUNDED
    late = r.losses[50:] - estar
    assert np.all(late > 1e-8) and np.all(late < 0.05)
    assert late.std() > 1e-5 and len(np.unique(late)) == len(late)


def test_lecture_cyclic_cycle_is_not_the_minimum(lecture):
    """Cyclic order converges to a limit cycle: inside an epoch the loss moves, and the
    epoch-end point is not w* (its excess is the floor the fixed rate leaves)."""
    X, y = lecture
    r = fg.sgd(X, y, 0.2, 100, record=True, order="cyclic")
    # within-epoch fluctuation, from the reference one sample at a time
    _, estar = naive.minimiser(X, y)
    w = r.trajectory[-1].copy()
    inner = []
    for p in range(100):
        w -= 0.2 * (w @ X[p] - y[p]) * X[p]
        inner.append(naive.loss(X, y, w) - estar)
    inner = np.array(inner)
    assert inner.max() > 10 * inner.min() > 0
    np.testing.assert_allclose(w, r.trajectory[-1], rtol=1e-9)  # a cycle of one epoch


def test_lecture_large_rate_diverges_cleanly(lecture):
    X, y = lecture
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = fg.sgd(X, y, 3.0, 100, record=True, order="shuffle")
    assert r.status == fg.Status.DIVERGED and r.diverged_at >= 0
    assert r.loss == np.inf and r.losses[-1] == np.inf
    assert len(r.losses) == r.diverged_at + 1
    assert not np.any(np.isnan(r.losses)) and not np.any(np.isnan(r.trajectory))
    assert np.all(np.isfinite(r.w))


def test_noise_free_teacher_converges():
    ds = fg.gaussian_data(30, [1.0, 0.3], seed=2, labels="teacher", noise=0.0)
    r = fg.sgd(ds.X, ds.y, 0.3, 2000, tol=1e-10)
    assert r.status == fg.Status.CONVERGED and r.steps_to_tol >= 1
    assert len(r.losses) == r.steps_to_tol + 1
    assert r.excess <= 1e-10 * (r.losses[0] - naive.minimiser(ds.X, ds.y)[1])


# ------------------------------------------------------------------ naive reference


@pytest.mark.parametrize("momentum, nesterov", METHODS)
@pytest.mark.parametrize("batch_size", [1, 6, 7, P])
@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("d", [1, 2, 5])
def test_matches_naive(d, bias, order, batch_size, momentum, nesterov):
    """Epoch for epoch against the NumPy reference (which re-derives the sample order).

    Tolerance 1e-12 normwise relative to ||w|| (the two differ only in summation order).
    """
    X, y = problem(d, bias, seed=d)
    lr = safe_lr(X, bias) * (2.0 if batch_size > 1 else 1.0)
    w0 = np.linspace(0.5, -0.5, d + int(bias))
    epochs = 6
    r = fg.sgd(X, y, lr, epochs, batch_size=batch_size, order=order, seed=11, w0=w0,
               momentum=momentum, nesterov=nesterov, bias=bias, record=True, tol=0.0)
    traj, losses = naive.sgd_linear(X, y, lr, epochs, batch_size=batch_size, order=order,
                                    seed=11, w0=w0, momentum=momentum, nesterov=nesterov,
                                    bias=bias)
    assert r.status == fg.Status.BOUNDED and r.trajectory.shape == traj.shape
    naive.assert_rows_close(r.trajectory, traj, rtol=1e-12, what="trajectory")
    np.testing.assert_allclose(r.losses, losses, rtol=1e-12)
    # the run moved: a comparison of two standing-still runs would prove nothing
    assert np.linalg.norm(traj[-1] - traj[0]) > 0.05 * np.linalg.norm(traj[0])


@settings(deadline=None, max_examples=25)
@given(P_=st.integers(1, 13), d=st.integers(1, 4), data=st.data(),
       order=st.sampled_from(ORDERS), method=st.sampled_from(METHODS), bias=st.booleans(),
       seed=st.integers(0, 2**40), epochs=st.integers(0, 4))
def test_matches_naive_property(P_, d, data, order, method, bias, seed, epochs):
    """Any P (also P < d, and P = 1), any batch size in [1, P], any seed."""
    batch_size = data.draw(st.integers(1, P_), label="batch_size")
    g = np.random.default_rng(seed % 1000)
    X, y = g.standard_normal((P_, d)), g.standard_normal(P_)
    lr = safe_lr(X, bias, factor=0.8)
    momentum, nesterov = method
    kw = dict(batch_size=batch_size, order=order, seed=seed, momentum=momentum,
              nesterov=nesterov, bias=bias)
    r = fg.sgd(X, y, lr, epochs, record=True, tol=0.0, **kw)
    traj, losses = naive.sgd_linear(X, y, lr, epochs, **kw)
    naive.assert_rows_close(r.trajectory, traj, rtol=1e-12, what="trajectory")
    # losses: absolute floor at the initial loss (E* may be ~0 when P <= d)
    np.testing.assert_allclose(r.losses, losses, rtol=1e-12, atol=1e-12 * losses[0])


def test_orders_differ_and_seed_matters():
    X, y = problem(2, False)
    lr = safe_lr(X, False)
    ws = {o: fg.sgd(X, y, lr, 3, order=o, seed=5, tol=0.0).w for o in ORDERS}
    assert not np.array_equal(ws["cyclic"], ws["shuffle"])
    assert not np.array_equal(ws["shuffle"], ws["replacement"])
    for o in ("shuffle", "replacement"):
        other = fg.sgd(X, y, lr, 3, order=o, seed=6, tol=0.0).w
        assert not np.array_equal(ws[o], other)
    # the seed is irrelevant for the cyclic order
    assert np.array_equal(ws["cyclic"], fg.sgd(X, y, lr, 3, order="cyclic", seed=6, tol=0.0).w)


# ------------------------------------------------------------- the sample orders


def test_naive_hash_matches_kernel_rng():
    """The reference's hash (written from the documented recipe) is the kernel's."""
    from fastgd.engine.grid import seed_key
    from fastgd.kernels import rng

    for seed in (0, 1, 2**31 + 5):
        key = naive.seed_key(seed)
        assert list(seed_key(seed)) == list(key)
        for epoch in (0, 1, 7, 2**33 + 1):
            for pos in (0, 1, 99, 12345):
                h = naive.counter_hash(key, epoch, pos)
                assert 0 <= h < 2**32
                assert int(rng.hash4(key[0], key[1], epoch, pos)) == h
                assert int(rng.randbelow(h, 97)) == naive.below(h, 97)
        perm = np.empty(31, dtype=np.int64)
        rng.permutation(key[0], key[1], 3, perm)
        np.testing.assert_array_equal(perm, naive.epoch_permutation(key, 3, 31))


@pytest.mark.parametrize("n", [1, 2, 24, 101])
def test_shuffle_is_a_fresh_permutation_each_epoch(n):
    key = naive.seed_key(4)
    perms = [naive.sample_order("shuffle", n, ep, key) for ep in range(20)]
    for p in perms:
        assert sorted(p.tolist()) == list(range(n))
    if n > 2:
        assert len({tuple(p) for p in perms}) == 20  # a different one every epoch
        other = naive.sample_order("shuffle", n, 0, naive.seed_key(5))
        assert not np.array_equal(perms[0], other)


def test_shuffle_positions_uniform():
    """Where sample 0 lands over many epochs: uniform over the n positions."""
    n, epochs = 8, 4000
    key = naive.seed_key(9)
    counts = np.zeros(n)
    for ep in range(epochs):
        counts[int(np.flatnonzero(naive.sample_order("shuffle", n, ep, key) == 0)[0])] += 1
    assert stats.chisquare(counts).pvalue > 1e-3


def test_replacement_indices_uniform():
    n, epochs = 10, 1000
    key = naive.seed_key(3)
    idx = np.concatenate([naive.sample_order("replacement", n, ep, key)
                          for ep in range(epochs)])
    assert idx.min() >= 0 and idx.max() < n
    counts = np.bincount(idx, minlength=n)
    assert stats.chisquare(counts).pvalue > 1e-3
    # i.i.d. draws, not a permutation: repeats within an epoch are the rule
    first = naive.sample_order("replacement", n, 0, key)
    assert len(np.unique(first)) < n
    # consecutive draws are not correlated
    assert abs(np.corrcoef(idx[:-1], idx[1:])[0, 1]) < 0.05


# ----------------------------------------------------------------------- sklearn

SKLEARN_CASES = [(2, 0.2, 1), (2, 0.2, 100), (2, 0.05, 7), (1, 0.3, 20), (5, 0.05, 9),
                 (12, 0.01, 6)]


@pytest.mark.parametrize("d, lr, epochs", SKLEARN_CASES)
def test_cyclic_equals_sklearn(lecture, d, lr, epochs):
    """Cyclic per-sample SGD is scikit-learn's SGDRegressor with shuffle=False and a
    constant rate, no penalty: to 1e-12 with FMA contraction (the default), bit for bit
    with ``FASTGD_CONTRACT=0``; at d > 8 with ``exact=True`` (no sample blocks)."""
    linear_model = pytest.importorskip("sklearn.linear_model")
    if d == 2:
        X, y = lecture
    else:
        X, y = problem(d, False, seed=d)
    w0 = np.linspace(-0.3, 0.4, d)
    model = linear_model.SGDRegressor(loss="squared_error", penalty=None, alpha=0,
                                      fit_intercept=False, learning_rate="constant", eta0=lr,
                                      shuffle=False, tol=None, max_iter=epochs)
    init = w0.copy()  # scikit-learn overwrites coef_init in place
    model.fit(X, y, coef_init=init)
    r = fg.sgd(X, y, lr, epochs, w0=w0, tol=0.0, order="cyclic", exact=True)
    np.testing.assert_allclose(r.w, model.coef_, rtol=1e-12, atol=0)
    if not contract():
        assert np.array_equal(r.w, model.coef_)  # measured: bit-identical


# ------------------------------------------------------------- batch = P is batch GD


@pytest.mark.parametrize("momentum, nesterov", METHODS)
@pytest.mark.parametrize("bias", [False, True])
def test_full_batch_cyclic_equals_gd(momentum, nesterov, bias):
    """batch_size = P with cyclic order takes one full-gradient step per epoch: gd()."""
    X, y = problem(5, bias, seed=3)
    lr = 0.8 / fg.spectrum(X, bias=bias).lambda_max
    w0 = np.full(5 + int(bias), 0.2)
    steps = 40
    a = fg.sgd(X, y, lr, steps, batch_size=P, w0=w0, bias=bias, momentum=momentum,
               nesterov=nesterov, record=True, tol=0.0)
    b = fg.gd(X, y, lr, steps, w0=w0, bias=bias, momentum=momentum, nesterov=nesterov,
              record=True, tol=0.0)
    naive.assert_rows_close(a.trajectory, b.trajectory, rtol=1e-12, what="sgd(B=P) vs gd")
    np.testing.assert_allclose(a.losses, b.losses, rtol=1e-12)


def test_full_batch_status_matches_gd(lecture):
    X, y = lecture
    for lr in (1.5, 2.5):
        a = fg.sgd(X, y, lr, 1000, batch_size=100)
        b = fg.gd(X, y, lr, 1000)
        assert a.status == b.status
        # same step up to one (the two compute the excess from differently rounded w)
        assert abs(a.diverged_at - b.diverged_at) <= 1
        assert abs(a.steps_to_tol - b.steps_to_tol) <= 1
