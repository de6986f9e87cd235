"""A user's own data: learning rates relative to each dataset's eta_max, named datasets,
their figures (named rows, boundary plots, annotations) and the CLI on raw data."""

from __future__ import annotations

import dataclasses
import json
import sys
import types
import zipfile

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import fastgd as fg  # noqa: E402
import naive  # noqa: E402
from fastgd import cli  # noqa: E402
from fastgd import plot as P  # noqa: E402
from fastgd.status import Status  # noqa: E402

S = sys.modules["fastgd.linear.sweep"]  # the module (fastgd.sweep is the function)


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _raw(lecture):
    """An unstandardised copy of the lecture data: large, unequal scales, not centred."""
    X, y = lecture
    return X * np.array([300.0, 40.0]) + np.array([20.0, -10.0]), y


@pytest.fixture(scope="module")
def two(request):
    ds = fg.lecture_data()
    return {"raw": _raw(ds), "std": (fg.normalize(ds.X), ds.y)}


REL = np.geomspace(0.05, 4, 24)


# ------------------------------------------------------------------ relative grids
@pytest.mark.parametrize("method, kw", [("gd", dict(steps=400)),
                                        ("sgd", dict(epochs=15, seeds=3))])
def test_relative_grid_equals_absolute_sweeps(two, method, kw):
    res = fg.sweep(method, lr=REL, lr_unit="eta_max", data=two, **kw)
    assert res.lr_unit == "eta_max" and res.names == ("raw", "std")
    np.testing.assert_array_equal(res.lr, REL)  # the relative grid is what is stored
    np.testing.assert_array_equal(res.absolute_lr, REL[None] * res.gd_limit[:, None])
    lam = [fg.spectrum(X).lambda_max for X, _ in two.values()]
    np.testing.assert_allclose(res.gd_limit, 2 / np.array(lam), rtol=1e-12)
    assert res.gd_limit[0] < 0.02 * res.gd_limit[1]  # one absolute grid could not serve both
    for k, (X, y) in enumerate(two.values()):
        one = fg.sweep(method, lr=res.absolute_lr[k], data=[(X, y)], **kw)
        for name in ("status", "final_loss", "steps_to_tol", "diverged_at"):
            np.testing.assert_array_equal(getattr(res, name)[k], getattr(one, name)[0])
    # both datasets show the boundary at 1 in the relative unit
    div = res.diverged.any(axis=2)
    assert div[:, REL > 1.05].all() and not div[:, REL < 0.9].any()
    if method == "gd":
        np.testing.assert_allclose(res.critical_lr(), 1.0, rtol=0.15)
        assert np.all(np.isfinite(res.observed_boundary()))
        assert "x 2/lambda_max" in res.summary() and "raw" in res.summary()


def test_relative_grid_condition_and_validation():
    res = fg.sweep("gd", lr=[0.5, 1.5], lr_unit="eta_max", condition=[1, 10], steps=200)
    assert res.names == ("κ=1", "κ=10") and res.lr_unit == "eta_max"
    np.testing.assert_allclose(res.absolute_lr, [[1.0, 3.0], [1.0, 3.0]], rtol=1e-12)
    assert not res.diverged[:, 0].any() and res.diverged[:, 1].all()
    with pytest.raises(fg.FastGDValueError, match="lr_unit"):
        fg.sweep("gd", lr=[1.0], lr_unit="relative", condition=[1])


def test_relative_interrupted_marks_the_rest_not_run(two, monkeypatch, batches):
    E = sys.modules["fastgd.linear.executors"]
    real, calls = E.run_block, []

    def run_block(*a, **kw):  # Ctrl-C while the second block (the third dataset) runs
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **kw)

    monkeypatch.setattr(E, "run_block", run_block)
    three = dict(two, again=two["raw"])
    with pytest.raises(S.SweepInterrupted) as info:  # one chunk per dataset, 2 per block
        fg.sweep("gd", lr=REL, lr_unit="eta_max", data=three, steps=100, lanes=REL.size,
                 threads=1)
    res = info.value.result
    assert res.names == ("raw", "std", "again") and not res.complete
    assert np.all(res.status[2] == Status.NOT_RUN) and np.all(res.status[:2] != Status.NOT_RUN)
    assert np.all(np.isfinite(res.lambda_max)) and res.gd_limit[2] == res.gd_limit[0]


# ------------------------------------------------------------------ names and files
def test_dataset_names(lecture):
    X, y = lecture
    assert fg.sweep("gd", lr=[1.0], data=[(X, y), (X, y)], steps=5).names == ("data 0",
                                                                               "data 1")
    assert fg.sweep("gd", lr=[1.0], data={"a": (X, y)}, steps=5).names == ("a",)
    assert fg.sweep("gd", lr=[1.0], condition=[1, 100], steps=5).names == ("κ=1", "κ=100")
    with pytest.raises(fg.FastGDTypeError, match="str keys"):
        fg.sweep("gd", lr=[1.0], data={1: (X, y)})
    with pytest.raises(fg.FastGDValueError, match="non-empty dict"):
        fg.sweep("gd", lr=[1.0], data={})


def _rewrite_json(src, dst, edit):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "_json.npy":
                import io

                meta = json.loads(str(np.load(io.BytesIO(data))))
                edit(meta)
                meta.pop("sha256", None)   # an earlier version's file: no checksum
                meta["format"] = "fastgd-sweep-1"
                buf = io.BytesIO()
                np.save(buf, np.array(json.dumps(meta)))
                data = buf.getvalue()
            zout.writestr(info.filename, data)


def test_names_and_unit_round_trip_and_old_files(two, tmp_path):
    res = fg.sweep("gd", lr=REL[:6], lr_unit="eta_max", data=two, steps=50)
    back = fg.load(res.save(tmp_path / "r.npz"))
    assert back.equals(res) and back.names == ("raw", "std") and back.lr_unit == "eta_max"
    np.testing.assert_array_equal(back.absolute_lr, res.absolute_lr)
    # a file written before names / lr_unit existed loads with the defaults
    _rewrite_json(tmp_path / "r.npz", tmp_path / "old.npz",
                  lambda m: (m.pop("names"), m.pop("lr_unit")))
    old = fg.load(tmp_path / "old.npz")
    assert old.names == ("data 0", "data 1") and old.lr_unit == "absolute"
    for bad, msg in ((lambda m: m.update(names=["only one"]), "'names'"),
                     (lambda m: m.update(names=[1, 2]), "'names'"),
                     (lambda m: m.update(lr_unit="furlongs"), "lr_unit")):
        _rewrite_json(tmp_path / "r.npz", tmp_path / "bad.npz", bad)
        with pytest.raises(fg.FastGDValueError, match=msg):
            fg.load(tmp_path / "bad.npz")


def test_to_pandas_names_and_absolute_rates(two):
    pd = pytest.importorskip("pandas")
    del pd
    res = fg.sweep("gd", lr=[0.5, 2.0], lr_unit="eta_max", data=two, steps=20)
    df = res.to_pandas()
    assert list(df["name"]) == ["raw", "raw", "std", "std"]
    np.testing.assert_array_equal(df["lr_abs"], res.absolute_lr.ravel())


# ------------------------------------------------------------------ phase diagrams
def _line(ax, gid):
    hits = [ln for ln in ax.lines if ln.get_gid() == gid]
    assert hits, f"no line {gid!r}: {[ln.get_gid() for ln in ax.lines]}"
    return hits[0]


def test_phase_named_rows_and_relative_axis(two):
    res = fg.sweep("sgd", lr=REL, lr_unit="eta_max", data=two, epochs=10, seeds=2,
                   momentum=0.3)
    ax = P.plot_phase_diagram(res)
    # categorical rows named after the datasets, first on top; no log-kappa axis
    assert ax.get_yscale() == "linear" and ax.get_ylabel() == "dataset"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["raw", "std"]
    np.testing.assert_array_equal(ax.get_yticks(), [0, 1])
    assert ax.get_ylim() == (1.5, -0.5)
    codes = np.asarray(ax.collections[0].get_array()).reshape(2, REL.size)
    np.testing.assert_array_equal(codes, P.cell_status(res))
    # each row has its own theory marks: segments within the row, never across rows
    for gid, want in (("gd_limit", [1.0, 1.0]), ("momentum_limit", [1.3, 1.3]),
                      ("sgd_ms_limit", res.sgd_ms_limit / res.gd_limit)):
        x, yv = _line(ax, gid).get_data()
        x, yv = np.asarray(x, float), np.asarray(yv, float)
        assert np.isnan(x[2::3]).all() and np.isnan(yv[2::3]).all()  # separated
        seg_x, seg_y = x.reshape(-1, 3)[:, :2], yv.reshape(-1, 3)[:, :2]
        np.testing.assert_allclose(seg_x[:, 0], want, rtol=1e-12)
        np.testing.assert_array_equal(seg_x[:, 0], seg_x[:, 1])  # vertical marks
        for row, (lo, hi) in enumerate(seg_y):
            assert row - 0.5 < lo < hi < row + 0.5
    # the relative axis has a tick at 1, labelled "1"
    assert 1.0 in list(ax.get_xticks())
    assert "1" in [t.get_text() for t in ax.get_xticklabels()]
    assert "η$_{max}$" in ax.get_xlabel()
    # annotations: beta, batch, order, seeds with the majority rule, tol, the unit
    title = ax.get_title()
    for part in ("β = 0.3", "batch 1", "shuffle order", "2 seeds per cell", "≥ ½ of its seeds diverged",
                 "tol 1e-08", "units of each dataset"):
        assert part in title, (part, title)


def test_phase_single_dataset_names_lambda_max(lecture):
    res = fg.sweep("gd", lr=np.geomspace(0.5, 4, 16), data={"lecture": tuple(lecture)},
                   steps=200)
    ax = P.plot_phase_diagram(res)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["lecture"]
    assert "λ$_{max}$ = 0.84" in ax.get_title() and "2.381" in ax.get_title()
    x = np.asarray(_line(ax, "gd_limit").get_xdata(), float)
    np.testing.assert_allclose(x[:2], 2 / 0.84, rtol=1e-12)
    # a narrow absolute grid gets plain tick labels, not 2×10⁰
    labels = [t.get_text() for t in ax.get_xticklabels() + ax.get_xticklabels(minor=True)]
    assert "2" in labels and not any("times" in t for t in labels)


def test_phase_growing_cells_hatched(lecture):
    res = fg.sweep("gd", lr=np.geomspace(0.5, 4, 12), data=[tuple(lecture)] * 2, steps=100)
    g = np.zeros(res.shape, dtype=bool)
    g[0, 2:4] = True
    g[1, -1] = True  # a diverged cell is shown as diverged, not also as growing
    object.__setattr__(res, "growing", g)  # the field the truth issue adds
    ax = P.plot_phase_diagram(res)
    hatch = [c for c in ax.collections if c.get_gid() == "growing"]
    assert len(hatch) == 1 and hatch[0].get_hatch() == "////"
    shown = ~np.ma.getmaskarray(hatch[0].get_array()).reshape(res.shape[:2])
    want = g[:, :, 0] & ~res.diverged[:, :, 0]
    np.testing.assert_array_equal(shown, want)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(t.startswith("growing") for t in labels)
    # none flagged: no hatch and no legend entry
    object.__setattr__(res, "growing", np.zeros(res.shape, dtype=bool))
    ax = P.plot_phase_diagram(res)
    assert not [c for c in ax.collections if c.get_gid() == "growing"]
    assert not any(t.get_text().startswith("growing") for t in ax.get_legend().get_texts())


# ------------------------------------------------------------------ boundary plots
def _legend_matches_artists(ax):
    """Every legend entry belongs to an artist that draws data (the legend of the axes,
    or the figure's legend under a figure that holds only these axes)."""
    leg = ax.get_legend() or ax.figure.legends[0]
    for t in leg.get_texts():
        label = t.get_text()
        owners = [a for a in ax.lines + ax.collections + ax.containers
                  if a.get_label() == label]
        assert owners, f"legend entry {label!r} has no artist"
        for a in owners:
            if hasattr(a, "get_xydata"):
                assert np.isfinite(a.get_xydata()).any(), label
    return [t.get_text() for t in leg.get_texts()]


def _distinct_tick_labels(ax):
    labels = [t.get_text() for t in ax.get_yticklabels()]
    labels = [t for t in labels if t]
    assert len(labels) >= 3 and len(set(labels)) == len(labels), labels


def _texts(ax, gid):
    return [t.get_text() for t in ax.texts if t.get_gid() == gid]


def test_boundary_one_dataset_shows_numbers(lecture):
    """One GD dataset: the observed rate, 2/lambda_max and their relative difference as
    numbers, not a dot at "+0 %"."""
    ns = types.SimpleNamespace(method="gd", names=("lecture",), meta={"spec": {}},
                               condition=np.array([23.3]), gd_limit=np.array([2 / 0.84]),
                               momentum_limit=np.array([np.nan]),
                               sgd_ms_limit=np.array([np.nan]), sgd_as_limit=np.array([np.nan]))
    ax = P.plot_boundary(ns, observed=np.array([2 / 0.84 * (1 + 3e-8)]))
    values = _texts(ax, "single_gd")
    assert values == [f"{2 / 0.84 * (1 + 3e-8):.10g}", f"{2 / 0.84:.10g}", "+3.00e-08"]
    assert _texts(ax, "single_gd_name") == ["lecture"]
    assert not ax.axison and not ax.lines and ax.get_legend() is None
    # a grid crossing names its bracket
    res = fg.sweep("gd", lr=np.geomspace(2.3, 2.5, 9), data={"lecture": tuple(lecture)},
                   steps=2000)
    ax = P.plot_boundary(res)
    assert any("grid crossing" in t.get_text() for t in ax.texts)


def test_boundary_off_scale_marks_are_arrows():
    """Raw / standardised / whitened rows: the whitened batch limit at +30,000 % is an
    arrow with its value and does not set the range, so the observed points stay apart."""
    nan = np.full(3, np.nan)
    ns = types.SimpleNamespace(
        method="sgd", names=("raw", "standardised", "whitened"), meta={"spec": {}},
        condition=np.array([1e6, 470, 1.0]), gd_limit=np.array([2.7e-5, 0.5, 2.0]),
        momentum_limit=nan, sgd_ms_limit=np.array([2.4e-5, 0.08, 0.0066]), sgd_as_limit=nan)
    obs = np.array([2.6e-5, 0.11, 0.0095])
    ax = P.plot_boundary(ns, observed=obs)
    lo, hi = ax.get_ylim()
    err = obs / ns.sgd_ms_limit - 1
    assert lo < 0 and hi < 1.0 and hi > err.max()  # set by the points (44 %), not 30,000 %
    gd_rel = ns.gd_limit / ns.sgd_ms_limit - 1
    assert gd_rel[0] < hi  # the raw row's mark is on the scale
    arrows = [a for a in ax.texts if a.get_gid() == "gd_limit_offscale"]
    assert len(arrows) == 2
    assert _texts(ax, "gd_limit_offscale_value") == [f"{100 * gd_rel[1]:+,.0f} %",
                                                    f"{100 * gd_rel[2]:+,.0f} %"]
    assert "+30,203 %" in _texts(ax, "gd_limit_offscale_value")
    labels = _legend_matches_artists(ax)
    assert any("arrow: off the scale" in t for t in labels)
    # observed points spread over the frame: distinct, readable
    y = _line(ax, "observed").get_ydata()
    assert np.ptp(y) > 0.3 * (hi - lo)


def test_boundary_close_agreement_is_not_stretched():
    res = fg.sweep("gd", lr=np.geomspace(1.9, 2.1, 40), condition=[1, 10, 100], steps=4000)
    ax = P.plot_boundary(res)
    y = _line(ax, "observed").get_ydata()
    assert np.all(np.abs(y) < 0.005)  # within half a percent of 2/lambda_max
    lo, hi = ax.get_ylim()
    assert hi >= 0.01 and lo <= -0.01  # at least +-1 %: a 0.5 % offset looks small
    _distinct_tick_labels(ax)
    assert all(t.get_text().endswith("%") for t in ax.get_yticklabels() if t.get_text())
    labels = _legend_matches_artists(ax)
    assert "observed (simulation), grid bracket" in labels
    # the grid bracket is drawn as the error bar around each observed point
    (eb,) = ax.containers
    segs = eb.lines[2][0].get_segments()
    for (x0, y0), (x1, y1) in segs:
        assert x0 == x1 and y0 <= y1


def test_boundary_sgd_relative_to_mean_square(two):
    res = fg.sweep("sgd", lr=np.geomspace(0.05, 1.5, 32), lr_unit="eta_max", data=two,
                   epochs=20, seeds=4)
    ax = P.plot_boundary(res)
    assert _line(ax, "sgd_ms_limit").get_ydata()[0] == 0.0
    assert [t.get_text().split("\n")[0] for t in ax.get_xticklabels()] == ["raw", "std"]
    obs = res.critical_lr() * res.gd_limit / res.sgd_ms_limit - 1
    np.testing.assert_allclose(_line(ax, "observed").get_ydata(), obs[np.isfinite(obs)])
    gd = _line(ax, "gd_limit").get_ydata()  # 2/lambda_max relative to the SGD limit
    np.testing.assert_allclose(gd, res.gd_limit / res.sgd_ms_limit - 1)
    _legend_matches_artists(ax)


# ------------------------------------------------------------------ the command line
@pytest.fixture
def figures(monkeypatch):
    """Figures the CLI writes, kept open for inspection."""
    kept = []

    def save(fig, path, dpi):
        kept.append(fig)
        fig.savefig(path, dpi=40)
        return path

    monkeypatch.setattr(cli.commands, "_save", save)  # where the commands look it up
    return kept


def test_cli_phase_raw_data_default_grid(lecture, tmp_path, figures, capsys):
    X, y = _raw(lecture)
    np.savez(tmp_path / "raw.npz", X=X, y=y)
    np.savez(tmp_path / "std.npz", X=fg.normalize(lecture.X), y=y)
    # the absolute phase default grid (0.01..10) lies far above this dataset's eta_max
    assert fg.spectrum(X).eta_max < 0.01 / 10
    assert cli.main(["phase", "--data", str(tmp_path / "raw.npz"), "--out",
                     str(tmp_path / "x.png"), "--save", str(tmp_path / "r.npz")]) == 0
    res = fg.load(tmp_path / "r.npz")
    assert res.lr_unit == "eta_max" and res.names == ("raw",)
    assert res.converged.any() and res.diverged.any()  # both, by default
    (fig,) = figures
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["raw"]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "converged" in labels and "diverged" in labels
    # two files: two named rows on one relative grid
    figures.clear()
    assert cli.main(["phase", "--data", str(tmp_path / "raw.npz"), "--data",
                     str(tmp_path / "std.npz"), "--out", str(tmp_path / "y.png"),
                     "--save", str(tmp_path / "r2.npz")]) == 0
    res = fg.load(tmp_path / "r2.npz")
    assert res.names == ("raw", "std") and res.converged.any(axis=(1, 2)).all()
    assert [t.get_text() for t in figures[0].axes[0].get_yticklabels()] == ["raw", "std"]
    # an explicit --lr is absolute unless --lr-unit says otherwise
    assert cli.main(["phase", "--data", "lecture", "--lr", "1:3:8", "--out",
                     str(tmp_path / "z.png"), "--save", str(tmp_path / "r3.npz")]) == 0
    assert fg.load(tmp_path / "r3.npz").lr_unit == "absolute"


def test_cli_condition_grid_keeps_kappa_axis(tmp_path, figures):
    assert cli.main(["phase", "--lr", "0.5:3:12", "--condition", "1:100:4", "--steps", "200",
                     "--out", str(tmp_path / "p.png"), "--save", str(tmp_path / "p.npz")]) == 0
    res = fg.load(tmp_path / "p.npz")
    assert res.names == ("κ=1", "κ=4.642", "κ=21.54", "κ=100")
    ax = figures[0].axes[0]
    assert ax.get_yscale() == "log" and "κ" in ax.get_ylabel()
    # the same datasets as before: gaussian_data(n, geomspace(1/k, 1, d), seed)
    ds = fg.gaussian_data(100, np.geomspace(1 / 100, 1, 2), seed=0)
    np.testing.assert_allclose(res.lambda_min[-1], fg.spectrum(ds.X).lambda_min, rtol=1e-12)


def test_cli_boundary_and_plot_boundary(tmp_path, figures, capsys):
    assert cli.main(["boundary", "--out", str(tmp_path / "lb.png")]) == 0
    ax = figures[0].axes[0]  # one GD dataset: numbers, not a dot at +0 %
    assert _texts(ax, "single_gd")[1] == f"{2 / 0.84:.10g}"
    assert abs(float(_texts(ax, "single_gd")[2])) < 1e-5
    figures.clear()
    res = fg.sweep("gd", lr=np.geomspace(1.99, 2.03, 16), condition=[1, 10], steps=4000)
    res.save(tmp_path / "gd.npz")
    assert cli.main(["plot", str(tmp_path / "gd.npz"), "--kind", "boundary", "--out",
                     str(tmp_path / "b.png")]) == 0
    ax = figures[0].axes[0]
    lo, hi = ax.get_ylim()
    assert hi >= 0.01 and lo <= -0.01
    _distinct_tick_labels(ax)
    _legend_matches_artists(ax)


def test_example_module_imports():
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).parents[1] / "examples" / "real_data.py"
    spec = importlib.util.spec_from_file_location("real_data", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # defines functions only; main() runs the study
    assert callable(mod.main)


def test_cli_data_names_unique():
    assert cli._unique(["a", "b", "a", "a"]) == ["a", "b", "a (2)", "a (3)"]


@pytest.mark.parametrize("kappa, steps", [(1.0, 1000), (23.3, 1000), (2592.0, 13000),
                                          (1e9, 100_000)])
def test_cli_data_steps(kappa, steps, monkeypatch):
    monkeypatch.setattr(fg, "spectrum", lambda X, bias=False: types.SimpleNamespace(
        condition_number=kappa))
    assert cli._data_steps([(None, None)], 1000, False) == steps


def test_dataclass_replace_keeps_names(two):
    res = fg.sweep("gd", lr=[1.0], data=two, steps=5)
    assert dataclasses.replace(res, lr=np.array([2.0])).names == ("raw", "std")


@pytest.mark.skipif(naive.JITLESS, reason="NUMBA_DISABLE_JIT=1: too slow")
def test_example_real_data_runs(tmp_path, capsys):
    pytest.importorskip("sklearn")
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).parents[1] / "examples" / "real_data.py"
    spec = importlib.util.spec_from_file_location("real_data", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = mod.main(tmp_path)
    assert out.exists() and out.stat().st_size > 10_000
    table = [ln for ln in capsys.readouterr().out.splitlines()
             if ln.split(" ")[0] in ("diabetes", "breast", "wine", "iris")]
    assert len(table) == 12  # four datasets x raw / standardised / whitened
    for ln in table:  # the budget SGD boundary lies above the mean-square limit
        assert float(ln.split()[-2]) > 1.0


def test_relative_grid_checkpoint_resumes(two, tmp_path):
    kw = dict(lr=REL, lr_unit="eta_max", data=two, steps=100, checkpoint=tmp_path / "ck")
    first = fg.sweep("gd", **kw)
    again = fg.sweep("gd", **kw)  # every chunk from the checkpoint directory
    assert again.equals(first) and again.names == first.names
    assert again.meta["chunks_resumed"] == again.meta["chunks_total"] > 0
    assert (tmp_path / "ck" / "manifest.json").exists()
    # the per-dataset grid is part of the sweep's identity: other rates are refused
    with pytest.raises(fg.FastGDValueError, match="different sweep"):
        fg.sweep("gd", **dict(kw, data={"raw": two["raw"], "std": (two["std"][0] * 2,
                                                                   two["std"][1])}))


# ------------------------------------------------------------------ real data, transformed
def _sklearn_file(name, tmp_path):
    """scikit-learn's raw diabetes (κ ~ 1e6) or breast cancer (κ ~ 2e12) as an .npz."""
    sk = pytest.importorskip("sklearn.datasets")
    load = {"diabetes": lambda: sk.load_diabetes(return_X_y=True, scaled=False),
            "breast_cancer": lambda: sk.load_breast_cancer(return_X_y=True)}[name]
    X, y = load()
    path = tmp_path / f"{name}.npz"
    np.savez(path, X=np.asarray(X, float), y=np.asarray(y, float))
    return path


@pytest.mark.skipif(naive.JITLESS, reason="NUMBA_DISABLE_JIT=1: too slow")
@pytest.mark.parametrize("name, kappa, color", [("diabetes", 1e6, "status"),
                                                ("breast_cancer", 2e12, "excess")])
def test_cli_phase_transforms_on_real_data(name, kappa, color, tmp_path, figures, capsys):
    """Raw real data converges nowhere within the budget, and says why; its standardised
    and whitened rows, from the same file, show converged cells."""
    path = _sklearn_file(name, tmp_path)
    assert cli.main(["phase", "--data", str(path), "--transform", "raw,standardize,whiten",
                     "--color", color, "--out", str(tmp_path / "p.png"),
                     "--save", str(tmp_path / "r.npz")]) == 0
    res = fg.load(tmp_path / "r.npz")
    assert res.names == (f"{name} (raw)", f"{name} (standardized)", f"{name} (whitened)")
    assert res.lr_unit == "eta_max" and res.meta["spec"]["steps"] == 100_000
    assert 0.5 * kappa < res.condition[0] < 2 * kappa and res.condition[2] < 1 + 1e-6
    conv = res.converged.any(axis=(1, 2))
    assert not conv[0] and conv[2]  # raw: none; whitened: converged cells
    assert conv[1] == (name == "diabetes")  # standardised breast cancer: κ = 1e5
    assert res.diverged[:, -1].all()  # every row still shows the boundary
    # one line on stderr per row without a converged cell: κ, the steps, what would help
    err = capsys.readouterr().err.splitlines()
    raw = [ln for ln in err if ln.startswith(f"fastgd phase: {name} (raw): no cell converged")]
    assert len(raw) == 1 and len(err) == (1 if name == "diabetes" else 2), err
    X = np.load(path)["X"]
    s = fg.spectrum(X)
    steps = fg.theory.gd_steps_to_tol(X, np.load(path)["y"], s.eta_opt, fg.DEFAULT_TOL,
                                      max_steps=10**18)
    assert steps > 100_000
    assert "κ = " in raw[0] and "--transform " in raw[0] and "1/λ_max" in raw[0]
    assert ("--transform standardize" in raw[0]) == (name == "diabetes")
    # the figure: the same explanation in the raw row, none in a row that converged
    ax = figures[0].axes[0]
    notes = [t for t in ax.texts if t.get_gid() == "note"]
    assert len(notes) == len(err)
    assert notes[0].get_text().startswith("no cell converged in 100,000 steps")
    assert notes[0].get_position()[1] == 0.0  # in the raw row (the first)
    if color == "excess":  # the raw row still shows structure: progress varies with η
        (mesh,) = [c for c in ax.collections if c.get_gid() == "excess"]
        vals = np.ma.masked_invalid(mesh.get_array()).reshape(3, -1)
        raw_row = vals[0].compressed()
        assert raw_row.size > 50 and np.all(raw_row < 0) and np.ptp(raw_row) > 0.1
        assert raw_row[-1] < raw_row[0]  # more progress at a larger rate
        assert len(res.meta["initial_excess"]) == 3
        assert any("final / initial" in a.get_ylabel() for a in figures[0].axes)


def test_excess_color_without_initial_excess(lecture):
    res = fg.sweep("gd", lr=np.geomspace(0.5, 4, 12), data={"a": tuple(lecture)}, steps=30)
    ax = P.plot_phase_diagram(res, color="excess")
    (mesh,) = [c for c in ax.collections if c.get_gid() == "excess"]
    vals = np.ma.masked_invalid(mesh.get_array()).compressed()
    assert vals.size == np.sum(~res.diverged[0, :, 0])
    assert any("final excess loss" in a.get_ylabel() for a in ax.figure.axes)
    with pytest.raises(fg.FastGDTypeError, match="notes"):
        P.plot_phase_diagram(res, notes=["one", "two"])


def test_auto_note_on_a_named_row(lecture):
    X, y = _raw(lecture)
    res = fg.sweep("gd", lr=[0.5], lr_unit="eta_max", data={"raw": (X * [1, 1e-3], y)},
                   steps=50)
    assert not res.converged.any()
    ax = P.plot_phase_diagram(res)
    (note,) = [t.get_text() for t in ax.texts if t.get_gid() == "note"]
    assert "κ = " in note and "κ·ln(1/tol)/2" in note
    assert not [t for t in P.plot_phase_diagram(res, notes=False).texts
                if t.get_gid() == "note"]


@pytest.mark.parametrize("args, msg", [
    (["--transform", "raw,square"], "'transform' must name raw, standardize or whiten"),
    (["--transform", ","], "at least one"),
    (["--condition", "1:10:2", "--transform", "whiten"], "applies to given data"),
])
def test_cli_transform_refused(args, msg, capsys):
    data = [] if "--condition" in args else ["--data", "lecture"]
    assert cli.main(["phase", *data, *args, "--out", "never.png"]) == 2
    assert msg in capsys.readouterr().err


def test_cli_boundary_transforms(tmp_path, figures, capsys):
    np.savez(tmp_path / "mine.npz", X=_raw(fg.lecture_data())[0], y=fg.lecture_data().y)
    assert cli.main(["boundary", "--data", str(tmp_path / "mine.npz"), "--transform",
                     "raw,standardise,whiten", "--out", str(tmp_path / "b.png")]) == 0
    out = capsys.readouterr().out
    for row in ("mine (raw)", "mine (standardized)", "mine (whitened)"):
        assert row in out
    ax = figures[0].axes[0]
    assert [t.get_text().split("\n")[0] for t in ax.get_xticklabels()] == [
        "mine (raw)", "mine (standardized)", "mine (whitened)"]
    _legend_matches_artists(ax)
