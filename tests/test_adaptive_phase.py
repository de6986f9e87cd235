"""Two-axis phase tables (issue 24, item 5): every cell equals its single run bit for bit,
the GD rows sit on 2/lambda_max on standardised diabetes, the frozen Adam rows on the
closed form, bad input is refused by name, and the CLI draws them."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import fastgd as fg
import fastgd.net as fn
from fastgd.linear.phase2 import PhaseTable, adaptive_phase


@pytest.fixture(scope="module")
def diabetes():
    datasets = pytest.importorskip("sklearn.datasets")
    X, y = datasets.load_diabetes(return_X_y=True)
    return fg.normalize(X), y - y.mean()


@pytest.fixture(scope="module")
def small_net():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((12, 3))
    return X, np.tanh(X @ np.array([1.0, -0.5, 0.3]))


@pytest.mark.parametrize("case", [
    dict(axis="beta1", values=[0.0, 0.6], optimizer="gd"),
    dict(axis="beta1", values=[0.0, 0.9], optimizer="adam", freeze_preconditioner=5,
         pre_freeze_lr=0.01),
    dict(axis="warmup", values=[0, 40], optimizer="rmsprop"),
], ids=["gd-momentum", "adam-beta1", "rmsprop-warmup"])
def test_linear_cells_equal_single_runs(diabetes, case):
    X, y = diabetes
    lrs = np.geomspace(0.05, 60.0, 9)
    t = adaptive_phase(X, y, lrs, steps=150, **case)
    assert t.shape == (2, lrs.size) and t.model == "linear"
    extra = {k: v for k, v in case.items() if k not in ("axis", "values", "optimizer")}
    for i, v in enumerate(case["values"]):
        for j in range(0, lrs.size, 2):
            kw = dict(extra, optimizer=case["optimizer"])
            if case["axis"] == "beta1" and case["optimizer"] == "gd":
                kw["momentum"] = v
            elif case["axis"] == "beta1":
                kw["betas"] = (v, 0.999)
            else:
                kw["warmup"] = v
            if case["optimizer"] == "gd":
                kw.pop("optimizer")
            r = fg.gd(X, y, lrs[j], 150, **kw)
            assert int(t.status[i, j]) == int(r.status), (v, lrs[j])
            assert np.array_equal(t.final_loss[i, j], r.excess), (v, lrs[j])


def test_gd_rows_sit_on_the_closed_form(diabetes):
    X, y = diabetes
    lam = np.linalg.eigvalsh(X.T @ X / X.shape[0])[-1]
    eta = 2.0 / lam
    t = adaptive_phase(X, y, eta * np.array([0.98, 1.02]), axis="beta1", values=[0.0, 0.5],
                       optimizer="gd", steps=3000)
    assert t.status[0].tolist() == [fg.Status.CONVERGED, fg.Status.DIVERGED]
    assert t.theory[0] == pytest.approx(eta, rel=1e-12)
    assert t.theory[1] == pytest.approx(1.5 * eta, rel=1e-12)   # 2(1 + beta)/lambda_max
    assert t.boundary[0] == pytest.approx(0.98 * eta) and t.boundary[1] == np.inf
    assert t.reference is None


def test_frozen_adam_rows_sit_on_their_eta_star(diabetes):
    X, y = diabetes
    kw = dict(axis="beta1", values=[0.0, 0.9], freeze_preconditioner=5, pre_freeze_lr=0.01)
    probe = adaptive_phase(X, y, [0.01], steps=10, **kw)
    eta = probe.theory
    assert np.all(np.isfinite(eta)) and eta[1] > eta[0]
    for k, b1 in enumerate(kw["values"]):
        t = adaptive_phase(X, y, eta[k] * np.array([0.98, 1.02]), steps=20000,
                           **dict(kw, values=[b1]))
        assert t.status[0].tolist() == [fg.Status.CONVERGED, fg.Status.DIVERGED]
        assert t.theory[0] == eta[k]
    # unfrozen Adam: no closed-form boundary, GD's 2/lambda_max only for scale
    t = adaptive_phase(X, y, [0.1, 1.0], axis="warmup", values=[0, 10], steps=50)
    assert t.theory is None and t.reference is not None


def test_net_cells_equal_single_runs(small_net):
    X, y = small_net
    lrs = np.array([0.05, 0.5, 5.0, 50.0])
    cases = [dict(axis="width", values=[4, 8], optimizer="gd"),
             dict(axis="warmup", values=[0, 30], optimizer="adam"),
             dict(axis="beta1", values=[0.0, 0.9], optimizer="gd")]
    for case in cases:
        t = fn.net_adaptive_phase(X, y, lrs, steps=60, width=6, activation="tanh", **case)
        assert t.shape == (2, lrs.size) and t.model == "net"
        for i, v in enumerate(case["values"]):
            kw = dict(width=6, optimizer=case["optimizer"])
            key = {"width": "width", "warmup": "warmup", "beta1": "momentum"}[case["axis"]]
            kw[key] = v
            for j in (0, 2, 3):
                r = fn.net_gd(X, y, lrs[j], 60, activation="tanh", **kw)
                assert int(t.status[i, j]) == int(r.status), (case, v, lrs[j])
                assert np.array_equal(t.final_loss[i, j], r.loss), (case, v, lrs[j])


@pytest.mark.parametrize("call, name", [
    (lambda X, y: adaptive_phase(X, y, [0.1], axis="width", values=[4]), "axis"),
    (lambda X, y: adaptive_phase(X, y, [0.1], axis="beta1", values=[1.0]), "values"),
    (lambda X, y: adaptive_phase(X, y, [0.1], axis="warmup", values=[1.5]), "values"),
    (lambda X, y: adaptive_phase(X, y, [0.1], axis="warmup", values=[], ), "values"),
    (lambda X, y: adaptive_phase(X, y, [-1.0], axis="warmup", values=[0]), "lr"),
    (lambda X, y: adaptive_phase(X, y, [0.1], axis="warmup", values=[0], optimizer="gd"),
     "axis"),
    (lambda X, y: adaptive_phase(X, y, [0.1], axis="beta1", values=[0],
                                 optimizer="rmsprop"), "axis"),
    (lambda X, y: adaptive_phase(X, y, [0.1], axis="beta1", values=[0], tol=-1), "tol"),
    (lambda X, y: adaptive_phase(X, y, [0.1], axis="beta1", values=[0], optimizer="gd",
                                 momentum=0.5), "momentum"),
    (lambda X, y: fn.net_adaptive_phase(X, y, [0.1], axis="width", values=[0]), "values"),
    (lambda X, y: fn.net_adaptive_phase(X, y, [0.1], axis="depth", values=[1]), "axis"),
    (lambda X, y: fn.net_adaptive_phase(X, y, [0.1], axis="warmup", values=[0],
                                        steps=-1), "steps"),
])
def test_bad_input_is_refused_by_name(call, name):
    X, y = fg.lecture_data()
    with pytest.raises((fg.FastGDValueError, fg.FastGDTypeError), match=f"'{name}'") as e:
        call(X, y)
    assert str(e.value).split(":")[0] in ("adaptive_phase", "net_adaptive_phase")


def test_boundary_repr_and_plot():
    import matplotlib

    matplotlib.use("Agg")
    from fastgd.plot import plot_adaptive_phase

    st = np.array([[1, 1, 2], [0, 1, 1]], dtype=np.int8)
    t = PhaseTable("linear", "gd", "beta1", np.array([0.0, 0.5]), np.array([1.0, 2.0, 3.0]),
                   st, np.zeros((2, 3)), 10, theory=np.array([2.5, 5.0]),
                   theory_label="GD: 2(1 + β)/λ")
    assert t.boundary.tolist() == [2.0, np.inf]
    assert "beta1 = 0.5: boundary inf (theory 5)" in repr(t)
    ax = plot_adaptive_phase(t)
    assert [ln.get_label() for ln in ax.get_lines()] == ["GD: 2(1 + β)/λ"]
    x = ax.get_lines()[0].get_xdata()
    assert np.nanmax(x) == 2.5    # 5 lies outside the frame: not drawn
    with pytest.raises(fg.FastGDTypeError, match="'table'"):
        plot_adaptive_phase("nope")


def _cli(*args, cwd):
    env = dict(os.environ, MPLBACKEND="Agg")
    env.pop("NUMBA_DISABLE_JIT", None)
    return subprocess.run([sys.executable, "-m", "fastgd", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=600)


def test_cli_draws_the_diagrams(tmp_path):
    out = _cli("phase", "--optimizer", "adam", "--axis", "beta1", "--values", "0,0.9",
               "--lr", "0.1,10,100", "--steps", "100", "--out", "b.png", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "b.png").stat().st_size > 10_000 and "theory" in out.stdout
    out = _cli("phase", "--optimizer", "rmsprop", "--lr", "0.01,1", "--condition", "1,10",
               "--steps", "50", "--freeze", "5", "--out", "c.png", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "c.png").stat().st_size > 10_000
    out = _cli("net", "phase2", "--axis", "width", "--values", "4,8", "--data", "sphere",
               "--samples", "8", "--lr", "0.1,10", "--steps", "30", "--no-gd",
               "--out", "n.png", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "n.png").stat().st_size > 10_000


@pytest.mark.parametrize("args, flag", [
    (("phase", "--optimizer", "adam", "--beta1", "1.5"), "--beta1"),
    (("phase", "--beta1", "0.5"), "--beta1"),
    (("phase", "--optimizer", "rmsprop", "--beta1", "0.5"), "--beta1"),
    (("phase", "--optimizer", "adam", "--momentum", "0.5"), "--momentum"),
    (("phase", "--optimizer", "adam", "--pre-freeze-lr", "0.1"), "--pre-freeze-lr"),
    (("phase", "--axis", "beta1", "--optimizer", "adam", "--beta1", "0.5"), "--beta1"),
    (("phase", "--axis", "beta1", "--condition", "1,10"), "--condition"),
    (("phase", "--axis", "warmup", "--optimizer", "adam", "--values", "0,1.5"), "values"),
    (("phase", "--warmup", "-3", "--optimizer", "adam"), "--warmup"),
    (("net", "phase2"), "--axis"),
    (("net", "phase2", "--axis", "width", "--width", "8"), "--width"),
])
def test_cli_bad_values_exit_2_naming_the_flag(args, flag, tmp_path, monkeypatch, capsys):
    from fastgd.cli import main

    monkeypatch.chdir(tmp_path)   # in process: the refusals come before any work
    try:
        rc = main(list(args))
    except SystemExit as exc:     # argparse's own refusals
        rc = exc.code
    err = capsys.readouterr().err
    assert rc == 2, err
    assert flag in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())
