"""Plot functions render with Agg; the tests read back the data drawn, not pixels."""

from __future__ import annotations

import subprocess
import sys

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import fastgd as fg  # noqa: E402
from fastgd import plot as P  # noqa: E402
from fastgd.status import Status  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def gd_result():
    return fg.sweep("gd", lr=np.geomspace(0.05, 5, 24), condition=np.geomspace(1, 100, 6),
                    steps=300)


def _line(ax, gid):
    hits = [l for l in ax.lines if l.get_gid() == gid]
    assert hits, f"no line {gid!r}: {[l.get_gid() for l in ax.lines]}"
    return hits[0]


def test_import_fastgd_does_not_import_matplotlib():
    code = "import sys, fastgd, fastgd.plot; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_phase_diagram_status(gd_result):
    ax = P.plot_phase_diagram(gd_result)
    mesh = ax.collections[0]
    data = mesh.get_array()
    assert not np.any(np.isnan(np.ma.getdata(data)))
    codes = np.asarray(data).reshape(gd_result.shape[:2])
    np.testing.assert_array_equal(codes, gd_result.status[:, :, 0])
    # categorical colours of all three outcomes are present
    assert {0, 1, 2} <= set(np.unique(codes).tolist())
    from matplotlib.colors import to_hex

    drawn = {to_hex(c) for c in mesh.to_rgba(np.asarray(data)).reshape(-1, 4)}
    want = {P.STATUS_COLORS[s].lower() for s in (Status.CONVERGED, Status.BOUNDED,
                                                 Status.DIVERGED)}
    assert want == drawn
    # the boundary line sits at 2/lambda_max (= 2 for these datasets)
    line = _line(ax, "gd_limit")
    np.testing.assert_allclose(line.get_xdata(), 2.0, rtol=1e-12)
    y = line.get_ydata()
    assert y[0] <= gd_result.condition.min() and y[-1] >= gd_result.condition.max()
    # log axes, edges geometric midpoints, labels with symbols
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert "η" in ax.get_xlabel() and "κ" in ax.get_ylabel()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("2/λ" in t for t in labels) and "diverged" in labels


def test_log_edges_are_geometric_midpoints():
    c = np.array([1.0, 10.0, 100.0])
    np.testing.assert_allclose(P.log_edges(c), [10 ** -0.5, 10 ** 0.5, 10 ** 1.5, 10 ** 2.5])


def test_phase_diagram_steps_masks_non_converged(gd_result):
    ax = P.plot_phase_diagram(gd_result, color="steps")
    meshes = ax.collections
    assert len(meshes) == 2
    steps = meshes[1].get_array()
    conv = gd_result.status[:, :, 0] == Status.CONVERGED
    assert np.ma.is_masked(steps)
    np.testing.assert_array_equal(np.ma.getmaskarray(steps).reshape(conv.shape), ~conv)
    assert np.all(np.isfinite(np.ma.getdata(steps)))
    np.testing.assert_array_equal(
        np.ma.getdata(steps).reshape(conv.shape)[conv],
        np.maximum(gd_result.steps_to_tol[:, :, 0][conv], 1))
    cbar_label = ax.figure.axes[-1].get_ylabel()
    assert "tolerance" in cbar_label


def test_phase_diagram_momentum_and_sgd_limits():
    res = fg.sweep("gd", lr=np.geomspace(0.1, 8, 16), condition=[1, 10, 100], steps=200,
                   momentum=0.5)
    ax = P.plot_phase_diagram(res)
    np.testing.assert_allclose(_line(ax, "momentum_limit").get_xdata(), 2 * 1.5 / 1.0)
    import dataclasses

    res2 = dataclasses.replace(res, sgd_ms_limit=np.array([0.5, 0.6, 0.7]))
    ax = P.plot_phase_diagram(res2)
    np.testing.assert_allclose(_line(ax, "sgd_ms_limit").get_xdata()[1:-1], [0.5, 0.6, 0.7])


def test_phase_diagram_interrupted_and_seeds():
    res = fg.sweep("sgd", lr=np.geomspace(0.01, 3, 8), condition=[1, 10], epochs=20, seeds=3)
    import dataclasses

    st = res.status.copy()
    st[1] = Status.NOT_RUN
    ax = P.plot_phase_diagram(dataclasses.replace(res, status=st))
    codes = np.asarray(ax.collections[0].get_array()).reshape(2, 8)
    assert np.all(codes[1] == Status.NOT_RUN)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "not run (interrupted)" in labels
    # a cell where only some seeds ran is grey (NOT_RUN), never "bounded"
    st = res.status.copy()
    st[0, 3, 1:] = Status.NOT_RUN
    st[0, 4, 0] = Status.NOT_RUN
    ax = P.plot_phase_diagram(dataclasses.replace(res, status=st))
    codes = np.asarray(ax.collections[0].get_array()).reshape(2, 8)
    assert codes[0, 3] == Status.NOT_RUN and codes[0, 4] == Status.NOT_RUN
    full = P.cell_status(res)
    np.testing.assert_array_equal(np.delete(codes[0], [3, 4]), np.delete(full[0], [3, 4]))
    ax = P.plot_phase_diagram(res, seed=2)
    np.testing.assert_array_equal(np.asarray(ax.collections[0].get_array()).reshape(2, 8),
                                  res.status[:, :, 2])


def test_weight_space(lecture):
    X, y = lecture
    w0 = np.array([-1.0, 0.0])
    r1 = fg.gd(X, y, 1.5, 50, w0=w0, record=True)
    r2 = fg.gd(X, y, 2.5, 300, w0=w0, record=True)
    r3 = fg.sgd(X, y, 0.2, 5, w0=w0, record=True)
    ax = P.plot_weight_space(X, y, [r1, r2, ("SGD", r3)], max_points=20)
    for k, r in enumerate((r1, r2, r3)):
        xy = _line(ax, f"run{k}").get_xydata()
        np.testing.assert_array_equal(xy[0], w0)  # trajectories start at w0
        n = min(20, r.trajectory.shape[0])
        np.testing.assert_array_equal(xy, r.trajectory[:n])
    wstar = np.linalg.lstsq(X, y, rcond=None)[0]
    np.testing.assert_allclose(_line(ax, "minimum").get_xydata()[0], wstar, rtol=1e-12)
    s = fg.spectrum(X)
    e = _line(ax, "eigen1").get_xydata()
    d = e[1] - e[0]
    assert abs(abs(d @ s.eigenvectors[:, 1]) / np.linalg.norm(d) - 1) < 1e-12
    assert _line(ax, "run1").get_label().endswith("(diverges)")
    assert ax.get_aspect() == 1.0
    assert "w$_1$" in ax.get_xlabel()


def test_weight_space_needs_trajectory(lecture):
    X, y = lecture
    with pytest.raises(fg.FastGDValueError, match="record=True"):
        P.plot_weight_space(X, y, [fg.gd(X, y, 1.0, 5)])
    with pytest.raises(fg.FastGDValueError, match="two-input"):
        P.plot_weight_space(np.ones((4, 3)), np.ones(4))


def test_losses(lecture):
    X, y = lecture
    g = fg.gd(X, y, 1.5, 30, tol=0.0)
    s = fg.sgd(X, y, 0.2, 30, tol=0.0)
    d = fg.gd(X, y, 2.5, 400)
    ax = P.plot_losses({"gd": g, "sgd": s, "div": d})
    np.testing.assert_array_equal(_line(ax, "run0").get_ydata(), g.losses)
    np.testing.assert_array_equal(_line(ax, "run1").get_xdata(), np.arange(31))
    yd = _line(ax, "run2").get_ydata()
    assert np.all(np.isfinite(yd)) and yd.size == d.losses.size - 1
    ax = P.plot_losses([g, s], per="update", updates_per_epoch=100, minimum=0.0238095,
                       logy=False)
    np.testing.assert_array_equal(_line(ax, "run1").get_xdata(), np.arange(31) * 100)
    with pytest.raises(fg.FastGDValueError, match="updates_per_epoch"):
        P.plot_losses([s], per="update")


def test_boundary(gd_result):
    """The boundary plot shows observed/predicted - 1 (percent), the prediction at 0."""
    ax = P.plot_boundary(gd_result)
    np.testing.assert_array_equal(_line(ax, "gd_limit").get_ydata(), [0, 0])
    obs = _line(ax, "observed").get_ydata()
    np.testing.assert_allclose(obs, gd_result.critical_lr() * gd_result.lambda_max / 2 - 1)
    assert np.all(np.abs(obs) < 0.25)
    assert ax.get_xscale() == "log" and "κ" in ax.get_xlabel()  # a condition grid


def test_regimes_and_data(lecture):
    s = fg.spectrum(lecture.X)
    ax = P.plot_regimes(s, marks=(1.5, 2.5))
    x, yv = _line(ax, "lam0").get_data()
    np.testing.assert_allclose(yv, np.abs(1 - x * 0.84), atol=1e-12)
    ax = P.plot_data(*lecture)
    assert len([l for l in ax.lines if l.get_gid() is None]) >= 2


def test_chain_landscape_hyperbola():
    runs = None
    try:
        from fastgd import chain as ch

        runs = [ch.chain_gd([0.2, 0.3], 0.1, 200, loss_scale=2.0, record=True)]
    except ImportError:  # chain module not built yet
        runs = [np.array([[0.2, 0.3], [0.5, 0.6]])]
    ax = P.plot_chain_landscape(runs, loss_scale=2.0, lim=2.0)
    for k in (0, 1):
        w1, w2 = _line(ax, f"hyperbola{k}").get_data()
        np.testing.assert_allclose(w1 * w2, 1.0, rtol=1e-12)
        assert np.all(np.abs(w1) <= 2.0 + 1e-12) and np.all(np.abs(w2) <= 2.0 + 1e-12)
    np.testing.assert_array_equal(_line(ax, "saddle").get_xydata()[0], [0.0, 0.0])
    np.testing.assert_allclose(_line(ax, "run0").get_xydata()[0], [0.2, 0.3])


def test_chain_phase():
    ch = pytest.importorskip("fastgd.chain")
    t = np.linspace(0, 1.5, 6)
    inits = np.stack([np.sqrt(0.2) * np.exp(t), np.sqrt(0.2) * np.exp(-t)], 1)
    res = ch.chain_sweep(inits, np.geomspace(0.02, 1.0, 10), 500, loss_scale=2.0)
    ax = P.plot_chain_phase(res)
    codes = np.asarray(ax.collections[0].get_array()).reshape(6, 10)
    np.testing.assert_array_equal(codes, res.regions())
    x, yv = _line(ax, "two_over_lambda0").get_data()
    np.testing.assert_allclose(x, 2 / res.lambda0)
    np.testing.assert_allclose(_line(ax, "max_stable_lr").get_xdata(), 0.5)


def test_every_function_takes_and_returns_ax(lecture, gd_result):
    X, y = lecture
    fig, axs = plt.subplots(2, 3)
    r = fg.gd(X, y, 1.0, 10, record=True)
    calls = [lambda a: P.plot_phase_diagram(gd_result, ax=a),
             lambda a: P.plot_weight_space(X, y, r, ax=a),
             lambda a: P.plot_losses(r, ax=a),
             lambda a: P.plot_boundary(gd_result, ax=a),
             lambda a: P.plot_regimes(fg.spectrum(X), ax=a),
             lambda a: P.plot_chain_landscape(ax=a)]
    for a, call in zip(axs.ravel(), calls, strict=True):
        assert call(a) is a


def test_plot_is_the_namespace_of_the_model_figures():
    """fastgd.plot re-exports the figures that live next to their models, and the shared
    helpers of fastgd.figures; importing the figure modules does not import matplotlib."""
    from fastgd import figures
    from fastgd.chain import plot as chain_plot
    from fastgd.linear import plot as linear_plot
    from fastgd.linear import plot_boundary, plot_phase2, plot_runs

    homes = {"plot_phase_diagram": linear_plot, "plot_boundary": plot_boundary,
             "plot_weight_space": plot_runs, "plot_losses": plot_runs, "plot_data": plot_runs,
             "plot_regimes": plot_runs, "plot_chain_landscape": chain_plot,
             "plot_chain_phase": chain_plot, "plot_adaptive_phase": plot_phase2}
    assert set(homes) == {n for n in P.__all__ if n.startswith("plot_")}
    for name, mod in homes.items():
        assert getattr(P, name) is getattr(mod, name)
    assert P.COLORS is figures.COLORS and P.STATUS_COLORS is figures.STATUS_COLORS
    assert P.cell_status is linear_plot.cell_status and P.log_edges is figures.log_edges
    with pytest.raises(TypeError, match="'legend'"):
        figures.check("plot_x", legend="False")
