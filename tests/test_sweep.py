"""sweep(), SweepResult and critical_lr(): agreement with single runs, the 2/lambda_max
boundary, determinism across threads and chunk sizes, files, and bad grids."""

import os

import numpy as np
import pytest

import fastgd as fg
import fastgd.engine.grid as G
import fastgd.linear.checks as CK
import fastgd.linear.problem as PB
import fastgd.status as ST
from fastgd import Status
from fastgd.linear.contract import LinearInputs

JITLESS = os.environ.get("NUMBA_DISABLE_JIT") == "1"


def _datasets():
    return [tuple(fg.gaussian_data(40, [0.05, 1.0], angle=0.3, seed=1)),
            tuple(fg.gaussian_data(30, [0.2, 2.0], angle=1.1, seed=2, labels="teacher"))]


def test_gd_sweep_equals_single_runs_cell_for_cell():
    data = _datasets()
    lrs = np.array([0.05, 0.5, 0.9, 0.99, 1.01, 1.5])
    res = fg.sweep("gd", lr=lrs, data=data, steps=300, tol=1e-9, lanes=4)
    assert res.shape == (2, lrs.size, 1)
    for i, (X, y) in enumerate(data):
        for j, lr in enumerate(lrs):
            r = fg.gd(X, y, lr, 300, tol=1e-9)
            assert res.status[i, j, 0] == r.status
            assert res.diverged_at[i, j, 0] == r.diverged_at
            assert res.steps_to_tol[i, j, 0] == r.steps_to_tol
            assert res.final_loss[i, j, 0] == r.excess  # bit-identical: same kernel


@pytest.mark.parametrize("order", ["cyclic", "shuffle", "replacement"])
def test_sgd_sweep_equals_single_runs(order):
    data = _datasets()
    lrs = np.array([0.01, 0.3, 1.0, 3.0])
    res = fg.sweep("sgd", lr=lrs, data=data, epochs=20, order=order, seeds=[3, 7],
                   batch_size=3, momentum=0.5, lanes=3)
    assert res.shape == (2, 4, 2)
    for i, (X, y) in enumerate(data):
        for j, lr in enumerate(lrs):
            for k, s in enumerate([3, 7]):
                r = fg.sgd(X, y, lr, 20, order=order, seed=s, batch_size=3, momentum=0.5)
                assert res.status[i, j, k] == r.status
                assert res.final_loss[i, j, k] == r.excess
                assert res.diverged_at[i, j, k] == r.diverged_at


def test_curves_match_run_losses():
    X, y = fg.lecture_data()
    res = fg.sweep("gd", lr=[0.5, 1.5, 2.5], data=[(X, y)], steps=200, tol=0.0,
                   curve_points=11)
    assert res.curve_t.tolist() == list(range(0, 201, 20))
    for j, lr in enumerate([0.5, 1.5, 2.5]):
        r = fg.gd(X, y, lr, 200, tol=0.0)
        n = len(r.losses)
        for k, t in enumerate(res.curve_t):
            if t < n and np.isfinite(r.losses[t]):
                assert res.curves[0, j, 0, k] == r.losses[t]
    # the diverged run's curve is inf after divergence, never NaN
    assert not np.isnan(res.curves).any()
    assert np.isinf(res.curves[0, 2, 0, -1])


def _random_problem(d, kappa, seed):
    lam = np.geomspace(1.0 / kappa, 1.0, d) * (0.5 + seed)
    return fg.gaussian_data(max(4 * d, 30), lam, seed=seed, angle=0.7)


CRIT_CASES = [(2, 1.0, 0), (2, 30.0, 1), (2, 1e4, 2), (10, 100.0, 3), (10, 1e4, 4)]


@pytest.mark.parametrize("d,kappa,seed", CRIT_CASES[:2] if JITLESS else CRIT_CASES)
def test_critical_lr_gd_is_two_over_lambda_max(d, kappa, seed):
    X, y = _random_problem(d, kappa, seed)
    lam_max = fg.spectrum(X).lambda_max
    # without the JIT the kernels run as plain Python: a shorter run, a looser bracket
    rtol, kw = (1e-3, dict(rtol=1e-3, steps=3000)) if JITLESS else (1e-6, {})
    b = fg.critical_lr(X, y, **kw)
    assert b.lr == pytest.approx(2 / lam_max, rel=rtol)
    assert b.lo < 2 / lam_max * (1 + rtol) and b.hi > 2 / lam_max * (1 - rtol)


@pytest.mark.parametrize("momentum,nesterov", [(0.5, False), (0.9, False), (0.5, True)])
def test_critical_lr_gd_momentum_limits(momentum, nesterov):
    X, y = fg.lecture_data()
    rtol, kw = (1e-3, dict(rtol=1e-3, steps=3000)) if JITLESS else (1e-6, {})
    b = fg.critical_lr(X, y, momentum=momentum, nesterov=nesterov, **kw)
    want = fg.theory.momentum_lr_max(0.84, momentum, nesterov)
    assert b.lr == pytest.approx(want, rel=rtol)


def test_grid_classification_on_both_sides_of_the_boundary():
    kappas = [1.0, 10.0, 1e2, 1e3, 1e4]
    # 1.01 x the limit grows the error by 1.02 per step: 1e12 needs ~1400 steps.  Without
    # the JIT (plain Python kernels) use a 20% margin and a short budget instead.
    m, steps = (0.2, 300) if JITLESS else (0.01, 3000)
    for d in (2, 10):
        res = fg.sweep("gd", lr=np.concatenate([np.linspace(0.1, 1 - m, 20) * 2,
                                                np.linspace(1 + m, 3, 20) * 2]),
                       condition=kappas, d=d, steps=steps)
        below = res.lr[None, :] < (1 - m) * res.gd_limit[:, None]
        above = res.lr[None, :] > (1 + m) * res.gd_limit[:, None]
        st = res.status[..., 0]
        assert np.all(st[below] != Status.DIVERGED)
        assert np.all(st[above] == Status.DIVERGED)
        assert np.allclose(res.lambda_max, 1.0)
        assert np.allclose(res.condition, kappas, rtol=1e-9)


def test_condition_fix_lambda_min():
    res = fg.sweep("gd", lr=[0.1], condition=[1, 10], fix="lambda_min", steps=10)
    assert np.allclose(res.lambda_min, 1.0) and np.allclose(res.lambda_max, [1, 10])


@pytest.mark.skipif(JITLESS, reason="thread count is meaningless without the JIT")
def test_identical_across_threads_and_chunk_sizes():
    kw = dict(lr=np.geomspace(0.01, 4, 37), condition=[1, 30, 1e3], epochs=15, seeds=3,
              order="shuffle")
    two = min(2, G.max_threads())  # 1 under `taskset -c 0` (NUMBA_NUM_THREADS = 1)
    a = fg.sweep("sgd", threads=1, lanes=64, **kw)
    b = fg.sweep("sgd", threads=two, lanes=5, **kw)
    c = fg.sweep("sgd", threads=two, lanes=64, **kw)
    assert a.equals(b) and a.equals(c)
    g1 = fg.sweep("gd", lr=kw["lr"], condition=kw["condition"], threads=1, lanes=8)
    g2 = fg.sweep("gd", lr=kw["lr"], condition=kw["condition"], threads=two, lanes=64)
    assert g1.equals(g2)


def test_save_load_round_trip(tmp_path):
    res = fg.sweep("sgd", lr=[0.1, 1.0, 5.0], condition=[1, 10], epochs=5, seeds=2,
                   curve_points=3)
    path = res.save(tmp_path / "r")
    back = fg.load(path)
    assert back.equals(res)
    assert back.meta["spec"]["epochs"] == 5
    assert back.meta["versions"]["fastgd"] == fg.__version__
    assert back.method == "sgd" and back.unit == "epoch"


def test_observed_boundary_and_summary():
    res = fg.sweep("gd", lr=np.linspace(1.5, 2.5, 11), condition=[1, 10], steps=2000)
    ob = res.observed_boundary()
    assert np.allclose(ob, 2.1)
    crit = res.critical_lr()
    assert np.all((crit > 2.0) & (crit < 2.1))
    text = res.summary()
    assert "2/lambda_max" in text and "diverged" in text


def test_sgd_critical_lr_half_diverged():
    X, y = fg.lecture_data()
    seeds, epochs = (4, 5) if JITLESS else (16, 30)
    b = fg.critical_lr(X, y, method="sgd", seeds=seeds, epochs=epochs,
                       rtol=0.2 if JITLESS else 1e-2)
    assert b.lo <= b.lr <= b.hi
    assert b.fraction.shape == b.lrs.shape
    frac_lo = fg.sweep("sgd", lr=[b.lo * 0.8], data=[(X, y)], seeds=seeds, epochs=epochs,
                       tol=0.0).diverged_fraction()[0, 0]
    frac_hi = fg.sweep("sgd", lr=[b.hi * 1.25], data=[(X, y)], seeds=seeds, epochs=epochs,
                       tol=0.0).diverged_fraction()[0, 0]
    assert frac_lo < 0.5 < frac_hi


def test_interrupt_returns_finished_cells(monkeypatch, batches):
    import fastgd.linear.table as KT

    real = KT.launch
    calls = {"n": 0}

    def flaky(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(KT, "launch", flaky)
    with pytest.raises(fg.SweepInterrupted) as info:
        fg.sweep("gd", lr=np.linspace(0.1, 3, 40), condition=[1, 10, 100, 1000], lanes=4,
                 threads=1, steps=50)
    part = info.value.result
    assert not part.complete
    done = part.status != Status.NOT_RUN
    assert done.any() and (~done).any()
    full = fg.sweep("gd", lr=np.linspace(0.1, 3, 40), condition=[1, 10, 100, 1000], steps=50)
    assert np.array_equal(part.status[done], full.status[done])


def test_progress_bar_runs():
    pytest.importorskip("tqdm")
    res = fg.sweep("gd", lr=np.linspace(0.1, 3, 30), condition=[1, 10], progress=True,
                   lanes=4, steps=20)
    assert res.complete


@pytest.mark.parametrize("kwargs,match", [
    (dict(lr=[]), "'lr' must be non-empty"),
    (dict(lr=[0.1, np.nan]), "'lr' must be finite"),
    (dict(lr=[0.1, -1.0]), "'lr' must be finite and > 0"),
    (dict(lr="fast"), "'lr' must be"),
    (dict(lr=[0.1], condition=[0.5]), "'condition' must be condition numbers >= 1"),
    (dict(lr=[0.1], condition=[np.inf]), "'condition' must be finite"),
    (dict(lr=[0.1], condition=None), "'data' must be given"),
    (dict(lr=[0.1], data=[]), "'data' must be a non-empty list"),
    (dict(lr=[0.1], data=[(np.ones((5, 2)), np.ones(5)), (np.ones((5, 3)), np.ones(5))]),
     "datasets with the same number of inputs"),
    (dict(lr=[0.1], data=[(np.ones((5, 2)), np.ones(4))]), r"'data\[0\]\[1\]' must be of length"),
    (dict(lr=np.linspace(0.1, 1, 1000), condition=np.arange(1, 1001), max_bytes=1 << 20),
     "fit in memory"),
    (dict(lr=[0.1], condition=[1], steps=-1), "'steps' must be an integer >= 0"),
    (dict(lr=[0.1], condition=[1], lanes=0), "'lanes' must be an integer >= 1"),
    (dict(lr=[0.1], condition=[1], epochs=3), "'epochs' must be None"),
    (dict(lr=[0.1], condition=[1], threads=0), "'threads' must be an integer >= 1"),
])
def test_bad_grids(kwargs, match):
    kw = dict(condition=[1.0])
    kw.update(kwargs)
    if "data" in kwargs:
        kw.pop("condition")
    with pytest.raises((ValueError, TypeError), match=match):
        fg.sweep("gd", **kw)


@pytest.mark.parametrize("kwargs,match", [
    (dict(seeds=0), "'seeds' must be an integer >= 1"),
    (dict(seeds=[1.5]), "'seeds' must be"),
    (dict(seeds=[-1]), "'seeds' must be non-negative"),
    (dict(batch_size=500), "'batch_size' must be an integer <= 100"),
    (dict(order="random"), "'order' must be one of"),
    (dict(steps=10), "'steps' must be None"),
])
def test_bad_sgd_arguments(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        fg.sweep("sgd", lr=[0.1], condition=[1.0], **kwargs)


def test_bad_method_and_critical_lr_arguments():
    X, y = fg.lecture_data()
    with pytest.raises(ValueError, match="'method' must be one of"):
        fg.sweep("adam", lr=[0.1], condition=[1])
    with pytest.raises(ValueError, match="'rtol' must be > 0"):
        fg.critical_lr(X, y, rtol=0)
    with pytest.raises(ValueError, match="'lr_range' must be"):
        fg.critical_lr(X, y, lr_range=(2.0, 1.0))


def test_execute_converts_keyboard_interrupt():
    seen = []

    def call(rows, nw):
        seen.append(len(rows))
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(G.Interrupted) as info:
        G.execute(call, G.make_chunks(1, 1, 100, 1), 1, progress=False)
    assert info.value.done == seen[0] and 0 < seen[0] < 100


def test_to_pandas_and_to_xarray():
    res = fg.sweep("sgd", lr=[0.1, 1.0, 5.0], condition=[1, 10], epochs=5, seeds=2,
                   curve_points=3)
    pd = pytest.importorskip("pandas")
    df = res.to_pandas()
    assert isinstance(df, pd.DataFrame) and len(df) == 2 * 3 * 2
    row = df[(df["data"] == 1) & (df["lr"] == 5.0) & (df["seed"] == 1)].iloc[0]
    assert row["status"] == Status(res.status[1, 2, 1]).name.lower()
    assert row["final_loss"] == res.final_loss[1, 2, 1]
    pytest.importorskip("xarray")
    xa = res.to_xarray()
    assert xa["status"].shape == res.shape
    assert np.array_equal(xa["final_loss"].values, res.final_loss, equal_nan=True)
    assert xa["curves"].shape == res.curves.shape and xa.attrs["method"] == "sgd"


@pytest.mark.parametrize("method, n_data, n_seed, n_lr, want", [
    ("sgd", 64, 1, 256, 256), ("gd", 64, 1, 256, 64), ("sgd", 1, 1, 256, 32),
    ("sgd", 2, 4, 1000, 256), ("sgd", 1, 4, 100, 32), ("gd", 1, 1, 3, 32), ("sgd", 1, 1, 1 << 20, 256),
    ("sgd", 1, 1, 128, 32), ("gd", 1, 1, 128, 32)])  # never below MIN_LANES = 32
def test_default_lanes_depend_on_the_grid_only(method, n_data, n_seed, n_lr, want):
    from fastgd.linear.sweep import auto_lanes

    assert auto_lanes(method, n_data, n_seed, n_lr) == want


def test_default_lanes_give_the_same_cells_as_explicit_lanes():
    data = _datasets()
    lrs = np.geomspace(0.01, 3.0, 40)
    for method, kw in (("gd", dict(steps=200)), ("sgd", dict(epochs=10, seeds=2))):
        auto = fg.sweep(method, lr=lrs, data=data, progress=False, **kw)
        assert auto.meta["spec"]["lanes"] == 32  # 2 data x (1 or 2 seeds) x 40 lr: MIN_LANES
        assert auto.equals(fg.sweep(method, lr=lrs, data=data, lanes=3, progress=False, **kw))


@pytest.mark.parametrize("blowup", [1e12, 1e3, np.inf])
def test_gd_recording_changes_no_cell(blowup):
    """Recording a curve changes no cell of a GD sweep, bit for bit, including lanes that
    stop at step 0 or (blowup = inf) run into inf; a single run with and without
    recording agrees too."""
    data = _datasets()
    lrs = np.concatenate([np.geomspace(0.01, 3.5, 45), [1e3, 1e200]])
    kw = dict(lr=lrs, data=data, steps=301, tol=1e-9, blowup=blowup, progress=False)
    fast = fg.sweep("gd", **kw)
    slow = fg.sweep("gd", curve_points=302, **kw)
    for f in ("status", "steps_to_tol", "diverged_at", "final_loss"):
        a, b = getattr(fast, f), getattr(slow, f)
        assert np.array_equal(a, b, equal_nan=True), f
    # blowup = inf: the lanes that run into inf / NaN are DIVERGED too (never "nothing
    # diverges")
    assert len(np.unique(fast.status)) == 3
    X, y = data[0]
    for lr in lrs[::4]:  # the final weights too (a single run records unless told not to)
        a = fg.gd(X, y, lr, 301, tol=1e-9, blowup=blowup, record=False)
        b = fg.gd(X, y, lr, 301, tol=1e-9, blowup=blowup, record=True)
        assert a.status == b.status and np.array_equal(a.w, b.w, equal_nan=True)


@pytest.mark.parametrize("bias", [False, True])
def test_prepare_many_equals_prepare_bit_for_bit(bias):
    """Sweeps solve the least squares of all their datasets in one stacked LAPACK call;
    the Problems are the ones prepare() builds one by one (rank-deficient included)."""
    from fastgd.linear import problem as PB

    rng = np.random.default_rng(5)
    same = [(rng.normal(size=(30, 3)), rng.normal(size=30)) for _ in range(5)]
    X = same[2][0].copy()
    X[:, 2] = X[:, 0] - X[:, 1]  # rank 2
    same[2] = (X, same[2][1])
    mixed = same[:2] + [(rng.normal(size=(20, 3)), rng.normal(size=20))]
    for datasets in (same, mixed):
        PB.clear_cache()  # both computed here, neither taken from the other's cache entry
        many = PB.prepare_many("test", datasets, bias)
        for p, (X, y) in zip(many, datasets, strict=True):
            PB.clear_cache()
            q = PB.prepare("test", X, y, bias)
            assert q is not p
            assert np.array_equal(p.wstar, q.wstar) and np.array_equal(p.H, q.H)
            assert p.estar == q.estar and p.c0 == q.c0 and np.array_equal(p.X, q.X)


def _stacked(datasets, d):
    """Kernel inputs (:func:`fastgd.linear.table.launch`) for several datasets."""
    probs = PB.prepare_many("test", datasets, False)
    P = max(p.P for p in probs)
    X = np.zeros((len(probs), P, d))
    y = np.zeros((len(probs), P))
    for i, p in enumerate(probs):
        X[i, :p.P], y[i, :p.P] = p.X, p.y
    return {"X": X, "y": y, "P": np.array([p.P for p in probs]),
            "R": np.stack([p.R for p in probs]), "wstar": np.stack([p.wstar for p in probs]),
            "estar": np.array([p.estar for p in probs]),
            "c0": np.array([p.c0 for p in probs]),
            "keys": np.stack([G.seed_key(s) for s in (3, 11)])}


@pytest.mark.parametrize("d", [2, 7])
@pytest.mark.parametrize("order", ["cyclic", "shuffle", "replacement"])
@pytest.mark.parametrize("lanes", [64, 7])
def test_kernel_layouts_agree_bit_for_bit(d, order, lanes):
    """Every kernel of the table that can run a plain grid gives the same outputs bit for
    bit, final weights included: the register layout (d compiled in) and the streaming
    layout (any d), the plain and the FULL kernel (streaming; momentum / minibatch / renorm
    paths compiled in but unused), with and without recording, in chunks of many lanes and of
    one lane each (the SGD lane loops skip finished lanes at the ends of a chunk's lane
    range, which a one-lane chunk never does); GD and per-sample SGD, lanes that
    converge, stay bounded and diverge (to inf too).  d = 7 exercises the streaming
    layout's blocks of four components and its remainder loops."""
    from fastgd.linear import kernels as linear
    from fastgd.linear import table

    rng = np.random.default_rng(d)
    X0 = rng.normal(size=(40, d)) * np.geomspace(1, 3, d)
    data = [(X0, X0 @ rng.normal(size=d)),  # realizable: SGD converges
            (rng.normal(size=(33, d)), rng.normal(size=33))]
    arrays = _stacked(data, d)
    lam_max = max(np.linalg.eigvalsh(X.T @ X / X.shape[0])[-1] for X, _ in data)
    lrs = np.concatenate([np.geomspace(0.002, 2.2, 70) / lam_max, [1e3, 1e200]])
    arrays.update(lr=lrs, beta=np.zeros(lrs.size), w0=np.linspace(0.3, -0.2, d))
    for method, n, tol, dt in (("gd", 301, 1e-9, "float64"), ("sgd", 40, 1e-3, "float64"),
                               ("sgd", 40, 1e-3, "float32")):
        if dt == "float32":  # float32 inputs: the same kernels, 8 lanes per vector
            with np.errstate(over="ignore"):  # the rate 1e200 becomes inf: diverges
                arrays = {k: (v.astype(np.float32) if v.dtype == np.float64 else v)
                          for k, v in arrays.items()}
        nseed = 1 if method == "gd" else 2
        factory = table.FACTORIES[("linear", method)]
        # the table's layouts: register (d compiled in) and streaming, plain, and FULL
        # (always streaming: a FULL kernel with d compiled in is never picked)
        kernels = [factory(d, False, 1), factory(0, False, 1), factory(0, True, 1)]
        assert d <= linear.REGISTER_MAX_D
        outs = []
        for kern in kernels:
            for n_rec, lanes_ in ((0, lanes), (n + 1, lanes), (0, 1)):
                spec = table.KernelSpec(method, d, n, tol, 1e12, order=ST.ORDERS[order],
                                        dtype=dt)
                out = G.Outputs(2, nseed, lrs.size, d, n_rec=n_rec)
                with np.errstate(all="ignore"):
                    table.launch(spec, LinearInputs(**arrays), G.make_chunks(2, nseed, lrs.size, lanes_), 2,
                                 out, kernel=kern)
                outs.append(out)
        ref = outs[0]
        for k, out in enumerate(outs[1:]):
            for f in ("status", "w", "loss", "excess", "tol_at", "div_at"):
                assert np.array_equal(getattr(ref, f), getattr(out, f)), (method, k, f)
        assert set(np.unique(ref.status)) == {0, 1, 2}, method
        assert spec.key == ("linear", method, d, False, 1)  # the table's pick: registers
        full = table.KernelSpec(method, d, n, tol, 1e12, momentum=True)
        assert full.key == ("linear", method, 0, True, 1)


@pytest.mark.parametrize("d", [9, 33])
@pytest.mark.parametrize("dt", ["float64", "float32"])
def test_gd_blocks_of_steps_at_any_d_agree_with_steps(d, dt):
    """Plain GD at any d (d not compiled in) keeps blocks of 16 steps whose excess bounds
    stay inside every lane's thresholds (each lane's bounds summed in component order,
    the lanes innermost and vectorised): the same outputs bit for bit as the step loop
    (the FULL kernel, and recording, take no blocks), with lanes that converge, stay
    bounded and diverge mid-block, in chunks of many lanes and of one."""
    from fastgd.linear import table

    rng = np.random.default_rng(d)
    X0 = rng.normal(size=(60, d)) * np.geomspace(1, 4, d)
    data = [(X0, X0 @ rng.normal(size=d)), (rng.normal(size=(45, d)), rng.normal(size=45))]
    arrays = _stacked(data, d)
    lam_max = max(np.linalg.eigvalsh(X.T @ X / X.shape[0])[-1] for X, _ in data)
    lrs = np.concatenate([np.geomspace(0.01, 2.3, 61) / lam_max, [1e3]])
    arrays.update(lr=lrs, beta=np.zeros(lrs.size), w0=np.linspace(0.3, -0.2, d))
    if dt == "float32":
        arrays = {k: (v.astype(np.float32) if v.dtype == np.float64 else v)
                  for k, v in arrays.items()}
    factory = table.FACTORIES[("linear", "gd")]
    spec = table.KernelSpec("gd", d, 500, 1e-7, 1e6, dtype=dt)
    assert spec.key == ("linear", "gd", 0, False, 1)  # the table's pick: this kernel
    outs = []
    for kern, n_rec, lanes in ((factory(0, False, 1), 0, 64), (factory(0, False, 1), 0, 1),
                               (factory(0, False, 1), 501, 64), (factory(0, True, 1), 0, 64)):
        out = G.Outputs(2, 1, lrs.size, d, n_rec=n_rec)
        with np.errstate(all="ignore"):
            table.launch(spec, LinearInputs(**arrays), G.make_chunks(2, 1, lrs.size, lanes),
                         2, out, kernel=kern)
        outs.append(out)
    for out in outs[1:]:
        for f in ("status", "w", "loss", "excess", "tol_at", "div_at"):
            assert np.array_equal(getattr(outs[0], f), getattr(out, f)), f
    assert set(np.unique(outs[0].status)) == {0, 1, 2}
    assert (outs[0].tol_at[outs[0].status == 1] % 16 != 0).any()  # stops inside blocks


@pytest.mark.parametrize("d", [9, 30])
@pytest.mark.parametrize("order", ["cyclic", "shuffle"])
def test_sample_blocks_agree_with_per_sample_steps(d, order):
    """d > 8: plain per-sample SGD takes four samples per pass over the weights (Gram
    entries of the block), the same steps in exact arithmetic.  Against ``exact=True``
    (every sample on its own): the same statuses, and the weights and losses of every
    bounded cell to 1e-10 relative (P = 38: two samples per epoch outside the blocks);
    single runs equal their sweep cells bit for bit in both modes."""
    rng = np.random.default_rng(d)
    X = rng.normal(size=(38, d)) * np.geomspace(1, 4, d)
    data = [(X, X @ rng.normal(size=d) + 0.3 * rng.normal(size=38))]
    lam = np.linalg.eigvalsh(X.T @ X / 38)[-1]
    lrs = np.concatenate([np.geomspace(1e-3, 0.3, 40), [30.0, 300.0]]) / (d * lam)
    kw = dict(lr=lrs, data=data, epochs=25, order=order, seeds=[5], tol=0.0, weights=True,
              progress=False)
    fast, exact = fg.sweep("sgd", **kw), fg.sweep("sgd", exact=True, **kw)
    assert not fast.equals(exact)  # the blocks do round differently
    np.testing.assert_array_equal(fast.status, exact.status)
    assert set(np.unique(fast.status)) == {Status.BOUNDED, Status.DIVERGED}
    b = fast.bounded
    np.testing.assert_allclose(fast.weights[b], exact.weights[b], rtol=1e-10, atol=0)
    np.testing.assert_allclose(fast.final_loss[b], exact.final_loss[b], rtol=1e-10)
    # float32: lanes in register blocks (64 per chunk) equal lanes in the loops (7)
    kw32 = dict(kw, dtype="float32", weights=False)
    assert fg.sweep("sgd", lanes=64, **kw32).equals(fg.sweep("sgd", lanes=7, **kw32))
    for res, ex in ((fast, False), (exact, True)):
        for j in (0, 25, 39):
            r = fg.sgd(X, data[0][1], lrs[j], 25, order=order, seed=5, tol=0.0, exact=ex)
            assert np.array_equal(r.w, res.weights[0, j, 0]), (ex, j)


@pytest.mark.parametrize("order", ["cyclic", "shuffle"])
@pytest.mark.parametrize("lanes", [64, 7])
def test_float32_curves_change_no_cell(order, lanes):
    """float32 sweeps with and without curves agree cell for cell."""
    data = _datasets()
    lrs = np.geomspace(0.005, 4.0, 70)
    kw = dict(lr=lrs, data=data, order=order, epochs=30, seeds=[3], lanes=lanes,
              dtype="float32", progress=False)
    a, b = fg.sweep("sgd", **kw), fg.sweep("sgd", curve_points=31, **kw)
    for f in ("status", "steps_to_tol", "diverged_at", "final_loss"):
        assert np.array_equal(getattr(a, f), getattr(b, f)), f


def test_fill_records_carries_the_last_value_of_stopped_cells():
    """Kernels write a cell's record at its last step only; the sweep fills the rest:
    flat after a converged or bounded cell's end (a CONVERGED cell demoted to BOUNDED by
    the final check stopped early too), inf after divergence, inf where nothing ran."""
    out = G.Outputs(1, 1, 4, 2, n_rec=4)
    out.status[0, 0] = [Status.CONVERGED, Status.BOUNDED, Status.DIVERGED, Status.NOT_RUN]
    inf = np.inf
    out.rec_loss[0, 0] = [[1.0, 0.5, inf, inf], [1.0, 0.7, 0.6, inf],
                          [1.0, 2.0, inf, inf], [inf, inf, inf, inf]]
    CK.fill_records(out)
    np.testing.assert_array_equal(out.rec_loss[0, 0], [[1.0, 0.5, 0.5, 0.5],
                                                       [1.0, 0.7, 0.6, 0.6],
                                                       [1.0, 2.0, inf, inf],
                                                       [inf, inf, inf, inf]])


@pytest.mark.parametrize("d", [1, 3, 4, 5, 6, 8, 12, 20])
def test_vector_code_equals_the_loops_at_every_d(d):
    """The lanes of a chunk that fill a register block run the lane blocks (plain Numba,
    ``linear/kernels_plain.py``, or ``kernels/simd.sgd_lanes`` at d = 3, 4) for d <= 8,
    the rest the loops: a sweep in chunks of 64 lanes equals one in chunks of 3 (loops only) bit
    for bit, on unstandardised data with some lanes diverging; float64 at every d, float32
    at d = 3, 4 (the IR blocks) and 12 (the sample blocks).  The plain blocks' float32 is
    checked in tests/test_layouts.py (d = 2, 7): each float32 layout compiles once."""
    rng = np.random.default_rng(100 + d)
    X = rng.normal(size=(37, d)) * np.geomspace(1, 20, d) + 0.5
    data = [(X, X @ rng.normal(size=d) + 0.1 * rng.normal(size=37))]
    lam = np.linalg.eigvalsh(X.T @ X / 37)[-1]
    lrs = np.geomspace(1e-3, 30.0, 64) / (d * lam)
    for dtype in ("float64", "float32") if d in (3, 4, 12) else ("float64",):
        kw = dict(lr=lrs, data=data, epochs=12, order="shuffle", seeds=[4], tol=1e-6,
                  dtype=dtype, progress=False)
        a = fg.sweep("sgd", lanes=64, **kw)
        assert a.equals(fg.sweep("sgd", lanes=3, **kw)), dtype
        assert len(np.unique(a.status)) >= 2, dtype
