"""Adaptive batch GD on the linear unit (fastgd.linear.adaptive): Adam, RMSProp and AdaGrad
kernels against a plain NumPy reference (1e-12 relative) and PyTorch where installed;
sweep cells equal single runs bit for bit, for any thread count and lane width; the
warm-up and schedules; the statuses of adaptive methods; bad arguments refused by name.

The reference is written from the conventions (PyTorch's ``torch.optim.Adam`` / optax's
``adam``; gradient X^T (X w - y) / P from the data), not from the kernel's code.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import fastgd as fg
from fastgd.engine.grid import max_threads
from fastgd.linear.adaptive import adaptive_gd, adaptive_sweep

RTOL = 1e-12


def rate(t, lr, warmup=0, lr_init=0.0, schedule="constant", decay_steps=1,
         decay_factor=1.0):
    """The learning rate of update t (0-based), as the docstrings state it."""
    if t < warmup:
        return lr_init + (lr - lr_init) * t / warmup
    u = t - warmup
    if schedule == "cosine":
        k = min(u, decay_steps) / decay_steps
        return lr * (decay_factor + (1 - decay_factor) * 0.5 * (1 + math.cos(math.pi * k)))
    if schedule == "step":
        return lr * decay_factor ** (u // decay_steps)
    return lr


def reference(X, y, lr, steps, optimizer="adam", betas=(0.9, 0.999), eps=1e-8, w0=None,
              freeze=None, pre_lr=None, **sched):
    """Plain NumPy: the weights and losses E(w_t) of ``steps`` updates (no stopping)."""
    P, d = X.shape
    b1, b2 = betas
    w = np.zeros(d) if w0 is None else np.array(w0, dtype=float)
    m, v = np.zeros(d), np.zeros(d)
    c1 = c2 = 1.0
    losses = [0.5 * np.sum((y - X @ w) ** 2) / P]
    for t in range(steps):
        g = X.T @ (X @ w - y) / P
        frozen = freeze is not None and t >= freeze
        eta = pre_lr if (pre_lr is not None and t < freeze) else rate(t, lr, **sched)
        if optimizer == "adam":
            m = b1 * m + (1 - b1) * g
            if not frozen:
                v = b2 * v + (1 - b2) * g * g
                c1, c2 = 1 - b1 ** (t + 1), 1 - b2 ** (t + 1)
            w = w - eta * (m / c1) / (np.sqrt(v / c2) + eps)
        else:
            if not frozen:
                v = b2 * v + (1 - b2) * g * g if optimizer == "rmsprop" else v + g * g
            w = w - eta * g / (np.sqrt(v) + eps)
        losses.append(0.5 * np.sum((y - X @ w) ** 2) / P)
    return w, np.array(losses)


@pytest.fixture(scope="module")
def diabetes():
    datasets = pytest.importorskip("sklearn.datasets")
    X, y = datasets.load_diabetes(return_X_y=True)
    return fg.normalize(X), y - y.mean()


@pytest.fixture(scope="module")
def lecture():
    return fg.lecture_data()


CASES = [
    dict(optimizer="adam"),
    dict(optimizer="adam", betas=(0.0, 0.99), eps=1e-3),
    dict(optimizer="adam", warmup=40, lr_init=0.01),
    dict(optimizer="adam", schedule="cosine", decay_steps=150, decay_factor=0.1),
    dict(optimizer="adam", warmup=20, schedule="step", decay_steps=50, decay_factor=0.5),
    dict(optimizer="adam", freeze=30),
    dict(optimizer="adam", freeze=30, pre_lr=0.02),
    dict(optimizer="rmsprop", betas=(0.9, 0.99)),
    dict(optimizer="rmsprop", warmup=30, freeze=50),
    dict(optimizer="adagrad", eps=1e-10),
]


def _api(case):
    """Reference keywords -> adaptive_gd keywords."""
    kw = dict(case)
    if "freeze" in kw:
        kw["freeze_preconditioner"] = kw.pop("freeze")
    if "pre_lr" in kw:
        kw["pre_freeze_lr"] = kw.pop("pre_lr")
    return kw


def _ref_kw(case):
    """adaptive_gd keywords -> the reference's (schedule defaults filled in)."""
    kw = dict(case)
    sched = {k: kw.pop(k) for k in ("warmup", "lr_init", "schedule", "decay_steps",
                                    "decay_factor") if k in kw}
    if sched.get("schedule") == "cosine":
        sched.setdefault("decay_factor", 0.0)
    return kw, sched


def close(a, b):
    """|a - b| <= RTOL x max|b| componentwise: relative to the size of the weights (a
    small component of a large vector carries the rounding of the large ones)."""
    np.testing.assert_allclose(a, b, rtol=0, atol=RTOL * np.abs(b).max())


@pytest.mark.parametrize("case", CASES, ids=[str(i) for i in range(len(CASES))])
def test_kernel_equals_numpy_reference(diabetes, case):
    # lr = 0.2: every case is well conditioned there (a 1e-15 change of X moves the
    # reference's weights by ~1e-15 relative); at 0.5 RMSProp without momentum is
    # chaotic and any two implementations part after a few hundred steps
    X, y = diabetes
    steps, lr = 300, 0.2
    r = adaptive_gd(X, y, lr, steps, tol=0.0, blowup=np.inf, record=True, **_api(case))
    kw, sched = _ref_kw(case)
    w, losses = reference(X, y, lr, steps, **kw, **sched)
    assert r.status == fg.Status.BOUNDED and r.losses.size == steps + 1
    close(r.w, w)
    close(r.trajectory[-1], w)
    np.testing.assert_allclose(r.losses, losses, rtol=RTOL, atol=0)


def test_reference_on_the_lecture_data_with_w0_and_bias(lecture):
    X, y = lecture
    w0 = [0.3, -0.2, 0.1]
    r = adaptive_gd(X, y, 0.05, 400, w0=w0, bias=True, tol=0.0, blowup=np.inf)
    Xa = np.hstack([X, np.ones((X.shape[0], 1))])
    w, losses = reference(Xa, y, 0.05, 400, w0=w0)
    close(r.w, w)
    assert r.loss == pytest.approx(losses[-1], rel=RTOL)


def test_frozen_preconditioner_is_reported(diabetes):
    X, y = diabetes
    T, b1, b2 = 25, 0.9, 0.999
    r = adaptive_gd(X, y, 0.3, 100, freeze_preconditioner=T, tol=0.0, blowup=np.inf)
    # v_hat at the freeze: the reference after T updates
    w, m, v = np.zeros(X.shape[1]), np.zeros(X.shape[1]), np.zeros(X.shape[1])
    for t in range(1, T + 1):
        g = X.T @ (X @ w - y) / X.shape[0]
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        w = w - 0.3 * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + 1e-8)
    np.testing.assert_allclose(r.frozen_v_hat, v / (1 - b2 ** T), rtol=RTOL)
    assert (r.frozen_at, r.frozen_factor) == (T, pytest.approx(1 - b1 ** T, rel=1e-15))
    assert adaptive_gd(X, y, 0.3, 10).frozen_v_hat is None
    # a run that stops before the freeze has none to report
    early = adaptive_gd(X, y, 0.3, 10, freeze_preconditioner=50)
    assert np.isnan(early.frozen_v_hat).all()


def torch_run(X, y, lr, steps, optimizer, betas, eps):
    torch = pytest.importorskip("torch")
    Xt = torch.tensor(X, dtype=torch.float64)
    yt = torch.tensor(y, dtype=torch.float64)
    w = torch.zeros(X.shape[1], dtype=torch.float64, requires_grad=True)
    if optimizer == "adam":
        opt = torch.optim.Adam([w], lr=lr, betas=betas, eps=eps)
    elif optimizer == "rmsprop":
        opt = torch.optim.RMSprop([w], lr=lr, alpha=betas[1], eps=eps)
    else:
        opt = torch.optim.Adagrad([w], lr=lr, eps=eps)
    for _ in range(steps):
        opt.zero_grad()
        loss = 0.5 * torch.mean((Xt @ w - yt) ** 2)
        loss.backward()
        opt.step()
    return w.detach().numpy()


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop", "adagrad"])
def test_equals_pytorch(diabetes, optimizer):
    X, y = diabetes
    w = torch_run(X, y, 0.5, 200, optimizer, (0.9, 0.99), 1e-8)
    r = adaptive_gd(X, y, 0.5, 200, optimizer=optimizer, betas=(0.9, 0.99),
                    tol=0.0, blowup=np.inf)
    np.testing.assert_allclose(r.w, w, rtol=1e-9, atol=1e-9 * np.abs(w).max())


SWEEP_CASES = [dict(optimizer="adam"),
               dict(optimizer="adam", warmup=50, schedule="cosine", freeze_preconditioner=80),
               dict(optimizer="rmsprop", schedule="step", decay_steps=60),
               dict(optimizer="adagrad")]


@pytest.mark.parametrize("case", SWEEP_CASES, ids=[c["optimizer"] for c in SWEEP_CASES])
def test_cells_equal_single_runs_bit_for_bit(diabetes, case):
    X, y = diabetes
    lrs = np.geomspace(0.01, 300.0, 37)
    steps = 400
    res = adaptive_sweep(lrs, steps, data={"diabetes": (X, y)}, curve_points=steps + 1,
                         weights=True, lanes=8, **case)
    assert res.curve_t.tolist() == list(range(steps + 1))
    for k in range(0, lrs.size, 4):
        r = adaptive_gd(X, y, lrs[k], steps, **case)
        assert int(res.status[0, k, 0]) == int(r.status)
        assert np.array_equal(res.weights[0, k, 0], r.w)
        assert np.array_equal(res.final_loss[0, k, 0], r.excess)
        assert res.steps_to_tol[0, k, 0] == r.steps_to_tol
        assert res.diverged_at[0, k, 0] == r.diverged_at
        assert bool(res.growing[0, k, 0]) == r.growing
        assert np.array_equal(res.curves[0, k, 0, : r.losses.size], r.losses)
        if case.get("freeze_preconditioner"):
            assert np.array_equal(res.meta["frozen_v_hat"][0, k, 0], r.frozen_v_hat)


def test_same_bits_for_any_threads_and_lanes(diabetes, lecture):
    data = [diabetes, (diabetes[0] * 2.0, diabetes[1])]
    kw = dict(data=data, warmup=30, freeze_preconditioner=60, curve_points=11)
    lrs = np.geomspace(0.01, 100.0, 70)
    a = adaptive_sweep(lrs, 300, threads=1, lanes=64, **kw)
    b = adaptive_sweep(lrs, 300, threads=min(2, max_threads()), lanes=5, **kw)
    assert a.equals(b)
    assert np.array_equal(a.meta["frozen_v_hat"], b.meta["frozen_v_hat"], equal_nan=True)


def test_warmup_schedule_and_its_effect(diabetes):
    X, y = diabetes
    # lr_init = 0: the first update does not move w (Adam's moments still do)
    r = adaptive_gd(X, y, 10.0, 50, warmup=10, tol=0.0, record=True)
    assert r.losses[1] == r.losses[0] and r.losses[2] < r.losses[0]
    assert np.array_equal(r.trajectory[1], r.trajectory[0])
    # Adam's first updates move every weight by about lr: at a large rate the loss spikes
    # above its start (4x at lr = 30); a linear warm-up over 100 updates removes the spike
    cold = adaptive_gd(X, y, 30.0, 1000, tol=0.0)
    warm = adaptive_gd(X, y, 30.0, 1000, warmup=100, tol=0.0)
    assert cold.losses.max() > 3 * cold.losses[0]
    assert warm.losses.max() == warm.losses[0]
    assert warm.loss == pytest.approx(cold.loss, rel=1e-9)   # both end at the minimum


def test_statuses_of_adaptive_methods(diabetes):
    """Adam's steps are bounded (about lr per component) and its preconditioner adapts:
    far above the frozen limit an unfrozen run spikes and settles, it does not diverge;
    frozen, the same rate diverges like GD above 2/lambda_max.  DIVERGED for an adaptive
    run means that the loss passed ``blowup`` x its start, which a first step of size
    lr / sqrt(1 - beta2) can do at an absurd rate without any instability."""
    X, y = diabetes
    r = adaptive_gd(X, y, 1000.0, 3000)
    assert r.status == fg.Status.CONVERGED and r.losses.max() > 1000 * r.losses[0]
    f = adaptive_gd(X, y, 1000.0, 3000, freeze_preconditioner=5, pre_freeze_lr=0.01)
    assert f.frozen_lr_max(X) < 100 and f.status == fg.Status.DIVERGED and f.loss == np.inf
    assert np.all(np.isfinite(f.w))   # the last finite iterate
    spike = adaptive_gd(X, y, 1e7, 3000, optimizer="rmsprop")
    assert spike.status == fg.Status.DIVERGED and spike.diverged_at == 1
    # a converged run stops at its step, like GD
    c = adaptive_gd(X, y, 0.5, 20000, freeze_preconditioner=100)
    assert c.status == fg.Status.CONVERGED and c.losses.size == c.steps_to_tol + 1
    ex0 = c.losses[0] - (c.loss - c.excess)   # E(w0) - E*
    assert c.excess <= fg.DEFAULT_TOL * ex0 * (1 + 1e-6)


BAD = [
    ("lr", dict(lr=-1.0)), ("steps", dict(steps=-1)), ("optimizer", dict(optimizer="sgd")),
    ("betas", dict(betas=(0.9,))), ("betas", dict(betas=(1.0, 0.999))),
    ("betas", dict(betas="ab")), ("eps", dict(eps=-1e-8)), ("warmup", dict(warmup=-1)),
    ("lr_init", dict(lr_init=-0.1)), ("schedule", dict(schedule="linear")),
    ("decay_steps", dict(schedule="step")), ("decay_steps", dict(decay_steps=0)),
    ("decay_factor", dict(decay_factor=2.0)),
    ("freeze_preconditioner", dict(freeze_preconditioner=0)),
    ("pre_freeze_lr", dict(pre_freeze_lr=0.1)),
    ("pre_freeze_lr", dict(freeze_preconditioner=5, pre_freeze_lr=0.0)),
    ("w0", dict(w0=[1.0])), ("tol", dict(tol=-1.0)), ("blowup", dict(blowup=0.5)),
    ("record", dict(record="yes")), ("bias", dict(bias=1)),
]


@pytest.mark.parametrize("name,kw", BAD, ids=[f"{n}-{i}" for i, (n, _) in enumerate(BAD)])
def test_bad_arguments_are_named(lecture, name, kw, monkeypatch):
    from fastgd.linear import adaptive

    def no_kernel(*a, **k):
        raise AssertionError("a kernel ran before the arguments were checked")

    monkeypatch.setattr(adaptive, "launch", no_kernel)
    X, y = lecture
    args = dict(lr=0.1, steps=10)
    args.update(kw)
    with pytest.raises((fg.FastGDValueError, fg.FastGDTypeError), match=name):
        adaptive_gd(X, y, args.pop("lr"), args.pop("steps"), **args)
    if name not in ("steps", "record"):
        sargs = {k: v for k, v in args.items() if k != "record"}
        lr = kw.get("lr", 0.1)
        with pytest.raises((fg.FastGDValueError, fg.FastGDTypeError), match=name):
            adaptive_sweep(lr, 10, data=(X, y), **sargs)
    with pytest.raises(fg.FastGDValueError, match="data"):
        adaptive_sweep(0.1, 10)
    with pytest.raises((fg.FastGDValueError, fg.FastGDTypeError), match="lanes"):
        adaptive_sweep(0.1, 10, data=(X, y), lanes=0)


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop", "adagrad"])
def test_gd_optimizer_delegates_bit_for_bit(optimizer):
    """fg.gd(optimizer=...) is adaptive_gd: same weights, losses and status, bit for bit."""
    X, y = fg.lecture_data()
    kw = dict(warmup=20, schedule="cosine", decay_steps=300, decay_factor=0.1)
    a = fg.gd(X, y, 0.05, 400, optimizer=optimizer, **kw)
    b = adaptive_gd(X, y, 0.05, 400, optimizer=optimizer, **kw)
    assert a.status == b.status
    np.testing.assert_array_equal(a.w, b.w)
    np.testing.assert_array_equal(a.losses, b.losses)


@pytest.mark.parametrize("kw,name", [
    (dict(optimizer="adam", momentum=0.5), "momentum"),
    (dict(optimizer="adam", nesterov=True), "momentum"),
    (dict(optimizer="nadam"), "optimizer"),
    (dict(warmup=10), "warmup"),
    (dict(schedule="cosine"), "schedule"),
    (dict(freeze_preconditioner=5), "freeze_preconditioner"),
])
def test_gd_optimizer_options_refused_by_name(kw, name, no_kernels):
    X, y = fg.lecture_data()
    with pytest.raises(fg.FastGDValueError, match=f"^gd: '{name}'"):
        fg.gd(X, y, 0.1, 10, **kw)


def test_sweep_optimizer_delegates_bit_for_bit():
    """fg.sweep(optimizer=...) is adaptive_sweep: the same result, bit for bit."""
    X, y = fg.lecture_data()
    kw = dict(betas=(0.5, 0.99), warmup=10, freeze_preconditioner=50)
    a = fg.sweep("gd", lr=[0.01, 0.1, 1.0], data=[(X, y)], steps=300, optimizer="adam", **kw)
    b = adaptive_sweep([0.01, 0.1, 1.0], 300, data=[(X, y)], optimizer="adam", **kw)
    assert a.equals(b)


@pytest.mark.parametrize("kw,name", [
    (dict(method="sgd", epochs=2), "method"),
    (dict(momentum=0.9), "momentum"),
    (dict(lr_unit="eta_max"), "lr_unit"),
    (dict(dtype="float32"), "dtype"),
    (dict(almost_sure=True), "almost_sure"),
])
def test_sweep_optimizer_unsupported_options_refused(kw, name, no_kernels):
    X, y = fg.lecture_data()
    args = dict(method="gd", lr=[0.1], data=[(X, y)], steps=10, optimizer="adam") | kw
    with pytest.raises(fg.FastGDValueError, match=f"^sweep: '{name}'"):
        fg.sweep(**args)


def test_sweep_adaptive_options_need_an_adaptive_optimizer(no_kernels):
    X, y = fg.lecture_data()
    with pytest.raises(fg.FastGDValueError, match="^sweep: 'warmup'"):
        fg.sweep("gd", lr=[0.1], data=[(X, y)], steps=10, warmup=5)


@pytest.mark.parametrize("beta1", [0.0, 0.9])
def test_critical_lr_of_a_frozen_adam_run_is_the_boundary(diabetes, beta1):
    """critical_lr(optimizer='adam', freeze_preconditioner=T, pre_freeze_lr=...) is the
    closed form on the frozen preconditioner, and runs meet it: stable at 0.98 x, DIVERGED
    at 1.02 x (standardised diabetes)."""
    X, y = diabetes
    kw = dict(optimizer="adam", betas=(beta1, 0.999), freeze_preconditioner=20,
              pre_freeze_lr=0.01)
    b = fg.critical_lr(X, y, **kw)
    assert b.criterion == "frozen-preconditioner" and b.lo == b.hi == b.lr > 0
    below = fg.gd(X, y, 0.98 * b.lr, 3000, **kw)
    above = fg.gd(X, y, 1.02 * b.lr, 3000, **kw)
    assert below.status != fg.Status.DIVERGED and above.status == fg.Status.DIVERGED


@pytest.mark.parametrize("kw,name", [
    (dict(optimizer="adam"), "freeze_preconditioner"),
    (dict(optimizer="rmsprop", freeze_preconditioner=5), "pre_freeze_lr"),
    (dict(optimizer="adam", method="sgd", freeze_preconditioner=5, pre_freeze_lr=0.1),
     "method"),
])
def test_critical_lr_says_when_an_adaptive_run_has_no_boundary(kw, name, no_kernels):
    X, y = fg.lecture_data()
    with pytest.raises(fg.FastGDValueError, match=f"^critical_lr: '{name}'"):
        fg.critical_lr(X, y, **kw)

