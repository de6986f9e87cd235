"""Issue 15 (your own data, first-class): one set of defaults, fast paths, memory,
the ``growing`` flag and friendly input / output."""

import os
import sys

import numpy as np
import pytest

import fastgd as fg
import naive
from fastgd import Status
from fastgd.engine import grid as G
from fastgd.linear import problem as PB

#: tests that run big grids: minutes when the kernels run as plain Python
JIT_ONLY = pytest.mark.skipif(naive.JITLESS, reason="NUMBA_DISABLE_JIT=1: too slow")

S = sys.modules["fastgd.linear.sweep"]


@pytest.fixture(scope="module")
def lecture():
    return fg.lecture_data()


# -- one set of defaults -----------------------------------------------------
def test_defaults_are_one_set():
    import inspect

    for fn in (fg.sgd, fg.sweep, fg.critical_lr):
        assert inspect.signature(fn).parameters["order"].default == fg.DEFAULT_ORDER
    for fn in (fg.gd, fg.sgd, fg.sweep):
        assert inspect.signature(fn).parameters["tol"].default == fg.DEFAULT_TOL
    assert fg.DEFAULT_ORDER == "shuffle"


@pytest.mark.parametrize("factor", [0.3, 0.9, 1.1])
def test_run_and_sweep_cell_agree_with_default_arguments(lecture, factor):
    X, y = lecture
    lr = factor * 0.4  # per-sample rates around the lecture's SGD wall
    r = fg.sgd(X, y, lr, 50)
    c = fg.sweep("sgd", lr=[lr], data=[(X, y)], epochs=50, progress=False)
    assert c.status[0, 0, 0] == r.status
    assert c.final_loss[0, 0, 0] == r.excess
    assert c.steps_to_tol[0, 0, 0] == r.steps_to_tol
    g = fg.gd(X, y, factor * 2.0, 400)
    cg = fg.sweep("gd", lr=[factor * 2.0], data=[(X, y)], steps=400, progress=False)
    assert cg.status[0, 0, 0] == g.status and cg.steps_to_tol[0, 0, 0] == g.steps_to_tol


def test_default_sgd_fluctuates_near_the_minimum(lecture):
    # README's quick tour: with shuffled order the loss keeps moving (no limit cycle)
    X, y = lecture
    r = fg.sgd(X, y, lr=0.2, epochs=100)
    assert r.status == Status.BOUNDED and 0 < r.excess < 0.01
    assert np.unique(np.round(r.losses[-10:], 12)).size > 5
    cyc = fg.sgd(X, y, lr=0.2, epochs=100, order="cyclic")  # the limit cycle: constant
    assert np.ptp(cyc.losses[-10:]) < 1e-12 * cyc.losses[-1]


# -- readable output ---------------------------------------------------------
def test_status_prints_its_name(lecture):
    X, y = lecture
    r = fg.gd(X, y, 1.5, 500)
    assert str(r.status) == "Status.CONVERGED" == f"{r.status}"
    assert f"{r.status:d}" == "1" and int(r.status) == 1


def test_reprs_are_summaries(lecture):
    res = fg.sweep("gd", lr=np.geomspace(0.1, 4, 64), condition=np.geomspace(1, 1e3, 64),
                   steps=100, progress=False)
    text = repr(res)
    assert len(text.splitlines()) <= 16 and "more datasets" in text
    assert "array(" not in text
    b = fg.critical_lr(*lecture, method="sgd", epochs=20, seeds=4, rtol=0.05)
    assert "array" not in repr(b) and len(repr(b)) < 200 and "half-diverged" in repr(b)


def test_gd_tables_have_no_sgd_columns_and_xarray_is_complete(lecture):
    pd = pytest.importorskip("pandas")
    X, y = lecture
    res = fg.sweep("gd", lr=[1.0, 3.0], data={"lec": (X, y)}, momentum=0.5, steps=100,
                   progress=False)
    df = res.to_pandas()
    assert isinstance(df, pd.DataFrame)
    assert "sgd_ms_limit" not in df and "sgd_as_limit" not in df
    assert "momentum_limit" in df and "gd_limit" in df and "growing" in df
    assert not df.isna().all().any()
    xr = pytest.importorskip("xarray")
    xa = res.to_xarray()
    assert isinstance(xa, xr.Dataset)
    for k in ("momentum_limit", "sgd_ms_limit", "sgd_as_limit", "gd_limit", "growing",
              "absolute_lr"):
        assert k in xa
    assert list(xa["name"].values) == ["lec"]
    sg = fg.sweep("sgd", lr=[0.1, 0.5], data=[(X, y)], epochs=5, progress=False).to_pandas()
    assert "sgd_ms_limit" in sg


# -- y of shape (P, 1) --------------------------------------------------------
def test_column_y_is_accepted_with_one_warning(lecture):
    X, y = lecture
    for call in (lambda yy: fg.gd(X, yy, 1.0, 50), lambda yy: fg.sgd(X, yy, 0.1, 5),
                 lambda yy: fg.sweep("gd", lr=[1.0], data=[(X, yy)], steps=50,
                                     progress=False).final_loss,
                 lambda yy: fg.critical_lr(X, yy).lr):
        with pytest.warns(fg.DataConversionWarning, match="shape \\(100, 1\\)") as rec:
            a = call(y[:, None])
        assert len(rec) == 1
        b = call(y)
        if isinstance(a, fg.Run):
            assert np.array_equal(a.w, b.w)
        else:
            assert np.array_equal(a, b)
    with pytest.raises(fg.FastGDValueError):
        fg.gd(X, np.c_[y, y], 1.0, 5)


# -- growing -----------------------------------------------------------------
def test_growing_flags_bounded_runs_whose_loss_exploded(lecture):
    X, y = lecture
    eta = fg.spectrum(X).eta_max
    r = fg.gd(X, y, 1.005 * eta, 1000)  # loss x ~1e8: far from blowup = 1e12
    assert r.status == Status.BOUNDED and r.growing
    assert r.loss > fg.GROWING_FACTOR * max(r.losses[0], 0.5 * np.mean(y ** 2))
    assert not fg.gd(X, y, 0.9 * eta, 1000).growing
    assert not fg.gd(X, y, 1.1 * eta, 1000).growing  # diverged, not "growing"
    res = fg.sweep("gd", lr=np.array([0.9, 1.005, 1.1]) * eta, data=[(X, y)], steps=1000,
                   progress=False)
    assert res.growing.shape == res.status.shape and res.growing.dtype == bool
    assert res.growing[0, :, 0].tolist() == [False, True, False]
    assert "1 bounded but growing" in res.summary() and "growing" in repr(res)


def test_growing_and_weights_round_trip_and_old_files_load(tmp_path, lecture):
    import zipfile

    X, y = lecture
    res = fg.sweep("gd", lr=[1.0, 2.39], data=[(X, y)], steps=1000, weights=True,
                   progress=False)
    back = fg.load(res.save(tmp_path / "r.npz"))
    assert back.equals(res) and back.growing.any() and back.weights.shape == (1, 2, 1, 2)
    # a file written before growing / weights existed
    old = tmp_path / "old.npz"
    with zipfile.ZipFile(tmp_path / "r.npz") as zi, zipfile.ZipFile(old, "w") as zo:
        for item in zi.infolist():
            if item.filename == "_json.npy":   # an earlier version's file: no checksum
                import io
                import json

                meta = json.loads(str(np.load(io.BytesIO(zi.read(item.filename)))))
                meta.pop("sha256")
                meta["format"] = "fastgd-sweep-1"
                buf = io.BytesIO()
                np.save(buf, np.array(json.dumps(meta)))
                zo.writestr(item, buf.getvalue())
            elif item.filename not in ("growing.npy", "weights.npy"):
                zo.writestr(item, zi.read(item.filename))
    o = fg.load(old)
    assert o.weights is None and not o.growing.any() and o.growing.shape == o.status.shape


# -- memory: weights only on request ------------------------------------------
def test_weights_only_when_asked_and_equal_to_runs(lecture, monkeypatch):
    X, y = lecture
    lrs = np.geomspace(0.1, 3.0, 40)
    a = fg.sweep("gd", lr=lrs, data=[(X, y), (X, -y)], steps=300, progress=False)
    assert a.weights is None
    b = fg.sweep("gd", lr=lrs, data=[(X, y), (X, -y)], steps=300, weights=True,
                 progress=False)
    assert b.weights.shape == (2, 40, 1, 2)
    for k in (3, 20, 39):
        assert np.array_equal(b.weights[1, k, 0], fg.gd(X, -y, lrs[k], 300).w)
    import dataclasses

    assert dataclasses.replace(b, weights=None).equals(a)
    # blocks of a few rows (weights held per block, then dropped): the same cells
    monkeypatch.setattr(sys.modules["fastgd.linear.executors"], "BLOCK_BYTES", 1)
    c = fg.sweep("sgd", lr=lrs, data=[(X, y), (X, -y)], epochs=20, seeds=3, lanes=8,
                 weights=True, progress=False)
    monkeypatch.undo()
    d = fg.sweep("sgd", lr=lrs, data=[(X, y), (X, -y)], epochs=20, seeds=3, lanes=8,
                 weights=True, progress=False)
    assert c.equals(d)


@JIT_ONLY
def test_size_check_counts_what_is_stored():
    per = G.Outputs.bytes_per_cell(64)
    lean = G.Outputs.bytes_per_cell(64, keep_w=False)
    assert per - lean == 8 * 64
    kw = dict(lr=np.geomspace(0.1, 2, 20000), condition=[1, 10], d=64, n=100, steps=2,
              progress=False)
    need = 2 * 20000 * 2 * lean  # with the result's copy
    fg.sweep("gd", max_bytes=1.5 * need, **kw)  # fits without weights
    with pytest.raises(fg.FastGDValueError, match="grid|memory|bytes"):
        fg.sweep("gd", max_bytes=1.5 * need, weights=True, **kw)


# -- fast paths --------------------------------------------------------------
@JIT_ONLY
def test_gd_critical_lr_from_the_spectrum_and_the_check_agrees(lecture):
    X, y = lecture
    b = fg.critical_lr(X, y)
    assert b.criterion == "spectrum" and b.lr == fg.spectrum(X).eta_max
    m = fg.critical_lr(X, y, momentum=0.5, nesterov=True)
    assert m.lr == pytest.approx(fg.theory.momentum_lr_max(0.84, 0.5, True), rel=1e-12)
    chk = fg.critical_lr(X, y, momentum=0.5, nesterov=True, check=True)
    assert chk.criterion == "growth" and chk.lr == pytest.approx(m.lr, rel=1e-5)


@JIT_ONLY
def test_cyclic_sgd_critical_lr_runs_one_seed(lecture, monkeypatch):
    X, y = lecture
    seen = []
    real = S.sweep

    def spy(**kw):
        seen.append(kw["seeds"])
        return real(**kw)

    monkeypatch.setattr(S, "sweep", spy)
    b = fg.critical_lr(X, y, method="sgd", order="cyclic", epochs=20, seeds=64, rtol=0.01)
    assert seen and all(list(s) == [0] for s in seen)
    assert np.isfinite(b.lr)


@JIT_ONLY
def test_cyclic_limit_is_a_bracketed_root():
    from fastgd.theory import _epoch_product_log_rho, limits

    X = fg.gaussian_data(200, np.geomspace(0.05, 1, 6), seed=3).X
    for kw in (dict(batch_size=1), dict(batch_size=5), dict(batch_size=1, momentum=0.5)):
        lr = limits(X, order="cyclic", **kw)["sgd_as"]
        B, beta = kw["batch_size"], kw.get("momentum", 0.0)
        assert _epoch_product_log_rho(X, lr * (1 - 1e-6), B, beta, False) < 0
        assert _epoch_product_log_rho(X, lr * (1 + 1e-6), B, beta, False) > 0
        for f in (0.1, 0.3, 0.6, 0.9):  # stable below it (the first crossing)
            assert _epoch_product_log_rho(X, f * lr, B, beta, False) < 0
    a = fg.theory.sgd_as_critical_lr(X, order="cyclic")
    assert a.lrs.size < 40  # a handful of epoch products, not a 200-point scan


def test_prepared_statistics_are_reused_and_never_stale():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 3))
    y = rng.standard_normal(50)
    p1 = PB.prepare("t", X, y)
    x00 = X[0, 0]
    assert PB.prepare("t", X, y) is p1
    X[0, 0] += 1.0  # changed in place: a new key, new statistics
    p2 = PB.prepare("t", X, y)
    assert p2 is not p1 and not np.array_equal(p2.X, p1.X)
    assert np.array_equal(p2.wstar, np.linalg.lstsq(X, y, rcond=None)[0])
    assert p1.X[0, 0] == x00  # the cache kept its own copy


def test_first_run_on_a_cold_cache_says_it_is_compiling(tmp_path):
    """One line on stderr while the kernels compile (a fresh NUMBA_CACHE_DIR), once per
    process; a second process with the now warm cache prints nothing; the next cold
    compile removes the cache files of older fastgd code and keeps the current ones."""
    import subprocess

    code = ("import fastgd as fg; X, y = fg.lecture_data(); "
            "fg.gd(X, y, 1.5, 50); fg.gd(X, y, 1.0, 50)")
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    env.pop("NUMBA_DISABLE_JIT", None)
    cold = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=600)
    assert cold.returncode == 0, cold.stderr
    lines = [x for x in cold.stderr.splitlines() if "compiling" in x]
    assert lines == ["fastgd: compiling kernels for batch GD at d = 2, first run only "
                     "(cached on disk, a few seconds)..."], cold.stderr
    warm = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=600)
    assert warm.returncode == 0 and "compiling" not in warm.stderr, warm.stderr

    # cache files of older fastgd code (another SOURCE_DIGEST, or none: before digests)
    # go at the next cold compile; the current files stay
    from fastgd.kernels.jit import SOURCE_DIGEST

    cache = tmp_path / "cache"
    current = sorted(p for p in cache.rglob("*") if p.is_file())
    index = [p for p in current if p.suffix == ".nbi" and f"_{SOURCE_DIGEST}_" in p.name]
    assert index
    stale = []
    for p in index[:3]:
        for name in (p.name.replace(SOURCE_DIGEST, "0badc0de"),
                     p.name.replace(f"_{SOURCE_DIGEST}", ""),
                     p.name.replace(SOURCE_DIGEST, "0badc0de").replace(".nbi", ".1.nbc"),
                     "fastgd-compiled-0badc0de-0123456789ab"):
            stale.append(p.with_name(name))
            stale[-1].write_bytes(p.read_bytes())
    code = "import fastgd as fg; X, y = fg.lecture_data(); fg.sgd(X, y, 0.05, 3)"
    cold = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=600)
    assert cold.returncode == 0 and "per-sample SGD" in cold.stderr, cold.stderr
    assert not [p for p in stale if p.exists()]
    assert all(p.exists() for p in current)


_COLD_NET = """
import os, sys, numpy as np, fastgd.net as fn
from fastgd.net import kernels_rows as K
from fastgd.net.kernels import ACT_TANH
X = np.linspace(-1, 1, 24).reshape(12, 2)
r = fn.net_sweep(X, np.sin(X.sum(1)), [0.05, 0.5, 5.0], 30, width=4, activation="tanh",
                 progress=False)
st = K.rows_kernel(False, K.PLAIN, ACT_TANH).stats
np.savez(sys.argv[1], status=r.status, loss=r.loss, sharpness=r.sharpness,
         lambda0=r.lambda0, hits=sum(st.cache_hits.values()),
         misses=sum(st.cache_misses.values()), cpus=len(os.sched_getaffinity(0)),
         threads=r.threads)
"""


def _cold_run(tmp_path, script_text, notice):
    """Run ``script_text`` (it saves an npz with the kernel's cache ``hits`` and
    ``misses``, ``cpus`` and ``threads``) in a fresh process on an empty kernel cache;
    check it said ``notice`` once and that its kernel came from a helper process's
    disk cache exactly where one could run (two CPUs, two threads); return the npz."""
    import subprocess

    script = tmp_path / "cold.py"
    script.write_text(script_text)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    for var in ("NUMBA_DISABLE_JIT", "FASTGD_PRECOMPILE"):
        env.pop(var, None)
    cold = subprocess.run([sys.executable, str(script), str(tmp_path / "cold.npz")],
                          capture_output=True, text=True, env=env, timeout=600)
    assert cold.returncode == 0, cold.stderr
    assert [x for x in cold.stderr.splitlines() if "compiling" in x] == [notice], cold.stderr
    got = np.load(tmp_path / "cold.npz")
    helped = int(got["cpus"]) >= 2 and int(got["threads"]) >= 2
    assert (int(got["hits"]), int(got["misses"])) == ((1, 0) if helped else (0, 1))
    return got


def test_cold_net_sweep_compiles_its_training_kernel_in_a_helper_process(tmp_path):
    """A first net_sweep on an empty kernel cache says so once, and (two CPUs, two
    threads; not under ``taskset -c 0``) a helper process compiles its training kernel
    while it compiles the curvature's: the sweep then loads that kernel from the disk
    cache instead of compiling it; its cells equal the same sweep's in this process bit
    for bit."""
    import fastgd.net as fn

    got = _cold_run(tmp_path, _COLD_NET, "fastgd: compiling the two-layer network kernels, "
                    "first run only (cached on disk)...")
    X = np.linspace(-1, 1, 24).reshape(12, 2)
    ref = fn.net_sweep(X, np.sin(X.sum(1)), [0.05, 0.5, 5.0], 30, width=4,
                       activation="tanh", progress=False)
    for name in ("status", "loss", "sharpness", "lambda0"):
        np.testing.assert_array_equal(got[name], getattr(ref, name), err_msg=name)


_COLD_LINEAR = """
import os, sys, numpy as np, fastgd as fg
from fastgd.linear.kernels_gd import cell_losses
t = np.linspace(0, 2 * np.pi, 20, endpoint=False)
X = np.c_[np.cos(t), 0.5 * np.sin(t)]
r = fg.sweep("sgd", data=[(X, X @ [1.0, -2.0])], lr=[0.05, 1.0, 20.0], epochs=20,
             tol=1e-3, progress=False)
st = cell_losses.stats
np.savez(sys.argv[1], status=r.status, loss=r.final_loss, hits=sum(st.cache_hits.values()),
         misses=sum(st.cache_misses.values()), cpus=len(os.sched_getaffinity(0)),
         threads=r.meta["threads"])
"""


def test_cold_linear_sweep_compiles_its_check_kernel_in_a_helper_process(tmp_path):
    """A first linear sweep on an empty kernel cache (two CPUs, so two threads by
    default; not under ``taskset -c 0``) compiles the final check's kernel in a helper
    process while it compiles its chunk kernel, then loads the check from the disk
    cache instead of compiling it; its cells equal the same sweep's in this process bit
    for bit."""
    got = _cold_run(tmp_path, _COLD_LINEAR, "fastgd: compiling kernels for per-sample SGD "
                    "at d = 2, first run only (cached on disk, a few seconds)...")
    t = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    X = np.c_[np.cos(t), 0.5 * np.sin(t)]
    ref = fg.sweep("sgd", data=[(X, X @ [1.0, -2.0])], lr=[0.05, 1.0, 20.0], epochs=20,
                   tol=1e-3, progress=False)
    np.testing.assert_array_equal(got["status"], ref.status)
    np.testing.assert_array_equal(got["loss"], ref.final_loss)
    assert len(np.unique(ref.status)) == 3


def test_one_pair_with_a_column_y_is_one_dataset(lecture):
    """sweep(data=(X, y)) with y of shape (P, 1): one dataset, like a 1-D y (with the
    conversion warning), not 'data[0] must be a pair'."""
    X, y = lecture
    with pytest.warns(fg.DataConversionWarning):
        a = fg.sweep("gd", lr=[0.5, 3.0], data=(X, y[:, None]), steps=20, progress=False)
    b = fg.sweep("gd", lr=[0.5, 3.0], data=(X, y), steps=20, progress=False)
    assert a.shape == b.shape == (1, 2, 1) and a.equals(b)


def test_work_registered_for_idle_time_runs_while_waiting_for_a_live_helper(tmp_path):
    """helper.when_idle: the work runs once, in the waiting thread, when the process
    waits for a helper that is still running (here a process that exits only once that
    work has written its file: the evidence), and never without such a wait."""
    import subprocess

    from fastgd.engine import helper

    flag = tmp_path / "idle-ran"
    child = ("import os, sys, time\n"
             "for _ in range(6000):\n"
             "    if os.path.exists(sys.argv[1]): sys.exit(0)\n"
             "    time.sleep(0.01)\n"
             "sys.exit(1)\n")  # gives up after about a minute: the work never ran
    ran = []

    def work():
        ran.append(True)
        flag.write_text("x")

    helper.when_idle(work)
    helper.wait(("test", "no such helper"))  # nothing to wait for: the work waits too
    assert not ran
    proc = subprocess.Popen([sys.executable, "-c", child, str(flag)])
    with helper._LOCK:
        helper._HELPERS[("test", "idle")] = proc
    helper.wait(("test", "idle"))
    assert ran == [True] and proc.returncode == 0
    helper.wait(("test", "idle"))  # once only
    assert ran == [True] and not helper._IDLE
