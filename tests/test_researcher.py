"""What a researcher checking fastgd against their own code needs: Run.w_star and
Run.loss_star, the SGD sample order of a seed (fastgd.sample_order), critical_lr(check=True)
with progress and a bound on its cost, and reprs that summarise."""

from __future__ import annotations

import numpy as np
import pytest

import fastgd as fg
import naive

ORDERS = ["cyclic", "shuffle", "replacement"]


def contract():
    from fastgd.kernels import jit as _jit

    return _jit.contract()


def teacher(P=24, d=3, seed=0, bias_shift=0.0):
    ds = fg.gaussian_data(P, np.linspace(0.2, 1.0, d), seed=seed, labels="teacher",
                          noise=0.3)
    return ds.X + bias_shift, ds.y


# ----------------------------------------------------------------- w*, E*
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("method", ["gd", "sgd"])
def test_w_star_and_loss_star_are_least_squares(method, bias):
    X, y = teacher(bias_shift=0.5)
    r = fg.gd(X, y, 0.1, 5, bias=bias) if method == "gd" else fg.sgd(X, y, 0.01, 2, bias=bias)
    Xa = naive.augment(X, bias)
    w, *_ = np.linalg.lstsq(Xa, y, rcond=None)
    np.testing.assert_allclose(r.w_star, w, rtol=1e-12)
    res = y - Xa @ w
    np.testing.assert_allclose(r.loss_star, 0.5 * res @ res / len(y), rtol=1e-12)  # the 1/2
    np.testing.assert_allclose(r.loss - r.loss_star, r.excess, rtol=1e-9)
    assert r.w_star.shape == r.w.shape


def test_w_star_is_min_norm_when_rank_deficient():
    X, y = teacher(P=5, d=3)
    X = np.column_stack([X, X[:, 0]])  # a repeated column
    r = fg.gd(X, y, 0.05, 3)
    np.testing.assert_allclose(r.w_star, np.linalg.pinv(X) @ y, rtol=1e-10, atol=1e-12)


def test_runs_converge_to_w_star(lecture):
    r = fg.gd(*lecture, lr=1.5, steps=1000, tol=1e-20)
    np.testing.assert_allclose(r.w, r.w_star, rtol=1e-9)


# ----------------------------------------------------------------- sample order
@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("n", [1, 7, 100])
def test_sample_order_is_the_documented_hash(order, n):
    for seed in (0, 5, 2**40):
        key = naive.seed_key(seed)
        for epoch in (0, 1, 9):
            got = fg.sample_order(n, seed, epoch, order=order)
            assert got.dtype == np.int64 and got.shape == (n,)
            np.testing.assert_array_equal(got, naive.sample_order(order, n, epoch, key))


def test_sample_order_batches():
    full = fg.sample_order(10, 3, 4)
    batches = fg.sample_order(10, 3, 4, batch_size=4)
    assert [b.size for b in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate(batches), full)
    assert fg.sample_order(10, 3, 4, batch_size=1).shape == (10,)


def numpy_sgd(X, y, lr, epochs, *, seed, order, batch_size=1, w0=None):
    """SGD that asks fastgd only for the sample order, in the kernels' operation order
    (w.x accumulated from 0.0 in component order; one step per batch on its mean
    gradient)."""
    P, d = X.shape
    w = np.zeros(d) if w0 is None else np.array(w0, dtype=float)
    for ep in range(epochs):
        batches = (fg.sample_order(P, seed, ep, order=order, batch_size=batch_size)
                   if batch_size > 1 else fg.sample_order(P, seed, ep, order=order)[:, None])
        for b in batches:
            if len(b) == 1:  # per sample: c = lr (w.x - y); w_i -= c x_i
                p = int(b[0])
                s = 0.0
                for i in range(d):
                    s += w[i] * X[p, i]
                c = lr * (s - y[p])
                for i in range(d):
                    w[i] -= c * X[p, i]
            else:
                g = np.zeros(d)
                for p in b:
                    r = 0.0 + w[0] * X[p, 0]
                    for i in range(1, d):
                        r += w[i] * X[p, i]
                    r = r - y[p]
                    for i in range(d):
                        g[i] += r * X[p, i]
                inv = 1.0 / len(b)
                for i in range(d):
                    w[i] -= lr * (g[i] * inv)
    return w


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("batch_size", [1, 5])
def test_numpy_sgd_following_sample_order_equals_fastgd(order, batch_size):
    """Bit for bit without FMA contraction (FASTGD_CONTRACT=0); with it (the default) the
    kernels fuse each multiply into its add, a rounding apart: 1e-12 relative."""
    X, y = teacher(P=23, d=3)
    lr = 0.05
    w0 = np.array([0.3, -0.2, 0.1])
    r = fg.sgd(X, y, lr, 6, seed=11, order=order, batch_size=batch_size, w0=w0, tol=0.0)
    w = numpy_sgd(X, y, lr, 6, seed=11, order=order, batch_size=batch_size, w0=w0)
    np.testing.assert_allclose(r.w, w, rtol=1e-12)
    if not contract():
        assert np.array_equal(r.w, w)
    if order != "cyclic":  # and another seed is another run
        assert not np.allclose(w, numpy_sgd(X, y, lr, 6, seed=12, order=order,
                                            batch_size=batch_size, w0=w0))


# ----------------------------------------------------------------- critical_lr
class _Recorder:
    """Stands in for the engine's Progress: records what critical_lr reports."""

    calls: list = []

    def __init__(self, total, progress, desc):
        self.total = total
        _Recorder.calls.append(("start", total, progress, desc))

    def update(self, done):
        _Recorder.calls.append(("update", done))

    def close(self):
        _Recorder.calls.append(("close",))


def test_critical_lr_check_reports_progress(lecture, monkeypatch):
    from fastgd.engine import grid

    _Recorder.calls = []
    monkeypatch.setattr(grid, "Progress", _Recorder)
    b = fg.critical_lr(*lecture, check=True, progress=True)
    calls = _Recorder.calls
    assert calls[0] == ("start", 4, True, "critical_lr gd")  # 1 bracket + 3 refinements
    updates = [c[1] for c in calls if c[0] == "update"]
    assert updates[-1] == 4 and updates == sorted(updates) and len(updates) >= 4
    assert calls[-1] == ("close",)
    assert abs(b.lr * 0.84 / 2 - 1) < 1e-6


def test_critical_lr_closes_its_progress_on_error(lecture, monkeypatch):
    from fastgd.engine import grid
    from fastgd.linear import boundary

    _Recorder.calls = []
    monkeypatch.setattr(grid, "Progress", _Recorder)

    def boom(*args, **kwargs):
        raise RuntimeError("stop")

    monkeypatch.setattr(boundary, "_gd_growth", boom)
    with pytest.raises(RuntimeError):
        fg.critical_lr(*lecture, check=True)
    assert _Recorder.calls[-1] == ("close",)


def test_critical_lr_check_refuses_out_of_budget_work_before_running(monkeypatch):
    """Wampler 1 (kappa 4e13): ~4 rounds x 64 rates x 6e6 steps; refused with the
    estimate and the way out, before any kernel."""
    from fastgd.linear import boundary

    def forbidden(*args, **kwargs):
        raise AssertionError("a kernel ran")

    monkeypatch.setattr(boundary, "_gd_growth", forbidden)
    x = np.arange(21.0)
    X = np.vander(x, 6, increasing=True)[:, 1:]
    with pytest.raises(fg.FastGDValueError) as info:
        fg.critical_lr(X, X.sum(axis=1), bias=True, check=True, max_work=1e9)
    msg = str(info.value)
    assert msg.startswith("critical_lr: 'steps' must be small enough")
    assert "rounds x 64 rates x" in msg and "larger rtol" in msg and "max_work=" in msg
    monkeypatch.setenv("FASTGD_MAX_WORK", "1e9")  # the environment's limit, same refusal
    with pytest.raises(fg.FastGDValueError, match="FASTGD_MAX_WORK"):
        fg.critical_lr(X, X.sum(axis=1), bias=True, check=True)


def test_critical_lr_sgd_reports_rounds(lecture, monkeypatch):
    from fastgd.engine import grid

    _Recorder.calls = []
    monkeypatch.setattr(grid, "Progress", _Recorder)
    fg.critical_lr(*lecture, method="sgd", epochs=10, seeds=2, rtol=0.05)
    outer = [c for c in _Recorder.calls if c[0] == "start" and c[3] == "critical_lr sgd"]
    assert len(outer) == 1 and outer[0][1] == 2


def test_critical_lr_uses_the_exact_spectrum():
    x = np.arange(21.0)
    X = np.vander(x, 6, increasing=True)[:, 1:]
    b = fg.critical_lr(X, X.sum(axis=1), bias=True)
    assert b.lr == fg.spectrum(X, bias=True).eta_max


# ----------------------------------------------------------------- reprs
def _lines(obj):
    text = repr(obj)
    assert "array(" not in text
    return text.splitlines()


def test_run_repr_is_a_summary(lecture):
    r = fg.gd(*lecture, lr=2.5, steps=500, record=True)
    lines = _lines(r)
    assert len(lines) <= 15 and len(repr(r)) < 600
    assert "DIVERGED" in lines[0] and "gd" in lines[0] and "lr=2.5" in lines[0]
    assert any("trajectory" in ln and str(r.trajectory.shape) in ln for ln in lines)
    assert any(f"{r.losses.size} values" in ln for ln in lines)
    assert str(r) == repr(r)
    big = fg.sgd(np.ones((50, 40)), np.ones(50), 1e-3, 500, tol=0.0)
    assert len(_lines(big)) <= 15 and len(repr(big)) < 600  # 501 losses, 40 weights


def test_sweep_result_repr_says_where_it_came_from():
    res = fg.sweep("gd", lr=np.geomspace(0.1, 4, 64), condition=np.geomspace(1, 1e3, 64),
                   steps=100, progress=False)
    lines = _lines(res)
    assert len(lines) <= 15
    assert "shape=(64, 64, 1)" in lines[0] and "100 steps" in lines[0]
    assert f"fastgd {fg.__version__}" in lines[0]
    assert "converged" in lines[1] and "diverged" in lines[1] and "more datasets" in repr(res)


def test_spectrum_boundary_dataset_reprs(lecture):
    s = fg.spectrum(lecture.X)
    lines = _lines(s)
    assert len(lines) <= 15 and "lambda_max=0.84" in lines[0] and "kappa=23.33" in lines[0]
    big = fg.spectrum(np.random.default_rng(0).standard_normal((300, 200)))
    assert len(_lines(big)) <= 15 and len(repr(big)) < 500
    b = fg.critical_lr(*lecture)
    assert len(_lines(b)) <= 15 and "spectrum" in repr(b)
    assert repr(lecture) == f"Dataset(P=100, d=2: {lecture.description})"
    assert len(_lines(fg.gaussian_data(10**4, np.ones(50)))) == 1
