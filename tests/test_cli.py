"""The fastgd command end to end, in subprocesses (python -m fastgd)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import fastgd as fg

COMMANDS = ("phase", "lecture", "sweep", "plot", "boundary", "info")


def run(*args, cwd=None, check=None):
    env = dict(os.environ, MPLBACKEND="Agg")
    # The command is tested as users run it, compiled: under NUMBA_DISABLE_JIT=1 (the
    # jitless coverage run) `boundary` and `lecture` would take hours in plain Python,
    # and the kernels' Python paths are covered by the other test files.
    env.pop("NUMBA_DISABLE_JIT", None)
    out = subprocess.run([sys.executable, "-m", "fastgd", *map(str, args)], cwd=cwd,
                         capture_output=True, text=True, env=env, timeout=600)
    if check is not None:
        assert out.returncode == check, (out.returncode, out.stdout, out.stderr)
    return out


#: The shared options each subcommand lists: only those that do something there.
COMMON = {"phase": {"--seed", "--threads", "--progress", "--format", "--dpi"},
          "lecture": {"--seed", "--threads", "--progress", "--format", "--dpi"},
          "sweep": {"--seed", "--threads", "--progress", "--format", "--dpi"},
          "plot": {"--format", "--dpi"},
          "boundary": {"--seed", "--threads", "--format", "--dpi"},
          "info": set(),
          "net phase": {"--seed", "--threads", "--progress", "--format", "--dpi"},
          "net eos": {"--seed", "--format", "--dpi"},
          "net warmup": {"--seed", "--threads", "--progress", "--format", "--dpi"}}


def test_help_every_subcommand():
    out = run("--help", check=0)
    for c in COMMANDS:
        assert c in out.stdout
    for c in COMMANDS:
        o = run(c, "--help", check=0)
        assert "usage: fastgd " + c in o.stdout


def _subparsers(parser):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield name, sub
                for sub_name, subsub in _subparsers(sub):
                    yield f"{name} {sub_name}", subsub


def test_help_lists_only_options_that_apply_and_describes_each():
    from fastgd.cli import build_parser

    subs = dict(_subparsers(build_parser()))
    assert set(COMMON) <= set(subs)
    shared = set().union(*COMMON.values())
    for name, sub in subs.items():
        flags = {f for a in sub._actions for f in a.option_strings}
        if name in COMMON:
            assert flags & shared == COMMON[name], name
        for a in sub._actions:
            if a.option_strings or a.dest not in ("command", "figure"):
                assert a.help and a.help.strip(), (name, a.option_strings or a.dest)


def test_parser_does_not_import_the_commands_back():
    """cli.args is a leaf; the commands do not import the parser (no import circle)."""
    import ast
    import pathlib

    import fastgd.cli

    folder = pathlib.Path(fastgd.cli.__file__).parent
    imports = {}
    for f in folder.glob("*.py"):
        mods = set()
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                mods.add(node.module)
            elif isinstance(node, ast.Import):
                mods.update(a.name for a in node.names)
        imports[f.stem] = {m.rsplit(".", 1)[-1] for m in mods if m.startswith("fastgd.cli.")}
    assert imports["args"] == set()
    assert imports["owndata"] <= {"args"} and imports["info"] == set()  # leaves too
    for name in ("commands", "lecture", "net"):
        assert "parser" not in imports[name] and imports[name] <= {"args", "owndata"}, name


def test_help_does_not_import_numba_or_matplotlib():
    code = ("import sys; from fastgd.cli import build_parser; build_parser().format_help(); "
            "print('numba' in sys.modules, 'matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize("args, msg", [
    (("phase", "--bogus"), "unrecognized arguments"),
    (("phase", "--method", "adam"), "invalid choice"),
    (("phase", "--lr", "1:2"), "LO:HI:N"),
    (("phase", "--lr=-1:2:5"), "LO, HI > 0"),
    (("phase", "--steps", "-3", "--lr", "1", "--condition", "1"), "'steps'"),
    (("phase", "--out", "x.jpg", "--lr", "1", "--condition", "1"), ".png, .pdf or .svg"),
    (("plot", "missing.npz"), "not found"),
    (("nonsense",), "invalid choice"),
])
def test_bad_usage_exits_2_with_one_line(args, msg, tmp_path):
    out = run(*args, cwd=tmp_path)
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and msg in lines[0], out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("spec, msg", [
    ('method = "gd"\nlr = [0.5, 1]\ncondition = [1, 10]\nstepz = 3\n', "unknown key 'stepz'"),
    ('lr = "fast"\ncondition = [1]\n', "LO:HI:N"),
    ('lr = [1.0]\ncondition = [1]\nsteps = "ten"\n', "'steps' must be an integer"),
    ('lr = [1.0\n', "not valid TOML"),
    ('lr = [1.0]\ndata = "nope.csv"\n', "'data' must be"),
    ('method = "sgd"\nlr = [1.0]\ncondition = [0.5]\n', "'condition' must be >= 1"),
])
def test_bad_spec_exits_2(spec, msg, tmp_path):
    (tmp_path / "s.toml").write_text(spec)
    out = run("sweep", "--config", "s.toml", "--out", "r.npz", cwd=tmp_path)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert msg in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_phase_end_to_end(tmp_path):
    out = run("phase", "--lr", "0.1:5:16", "--condition", "1:100:5", "--steps", "200",
              "--out", "p.png", "--save", "r.npz", "--no-progress", cwd=tmp_path, check=0)
    assert (tmp_path / "p.png").stat().st_size > 10_000
    assert "wrote" in out.stdout
    res = fg.load(tmp_path / "r.npz")
    assert res.shape == (5, 16, 1) and res.method == "gd"
    assert np.all(res.diverged[:, res.lr > 2.05]) and not res.diverged[:, res.lr < 1.95].any()
    # --format wins over the default name
    run("phase", "--lr", "0.5,1,3", "--condition", "1,10", "--steps", "50", "--format", "svg",
        cwd=tmp_path, check=0)
    assert (tmp_path / "phase.svg").exists()


def test_phase_sgd_small(tmp_path):
    run("phase", "--method", "sgd", "--lr", "0.05:3:8", "--condition", "1,10", "--epochs", "10",
        "--seeds", "2", "--seed", "3", "--color", "steps", "--save", "s.npz", "--out", "s.png",
        cwd=tmp_path, check=0)
    res = fg.load(tmp_path / "s.npz")
    assert list(res.seeds) == [3, 4]
    assert (tmp_path / "s.png").exists()


def test_sweep_config_flags_override_then_plot(tmp_path):
    (tmp_path / "spec.toml").write_text(
        'method = "gd"\nlr = {min = 0.1, max = 4, num = 12}\ncondition = [1, 10, 100]\n'
        'steps = 100\n')
    out = run("sweep", "--config", "spec.toml", "--steps", "300", "--out", "res.npz",
              "--plot", "res.png", cwd=tmp_path, check=0)
    assert "saved" in out.stdout
    res = fg.load(tmp_path / "res.npz")
    assert res.shape == (3, 12, 1)
    assert res.meta["spec"]["steps"] == 300            # the flag overrode the spec
    assert (tmp_path / "res.png").exists()
    run("plot", "res.npz", "--out", "again.pdf", cwd=tmp_path, check=0)
    assert (tmp_path / "again.pdf").exists()
    run("plot", "res.npz", "--kind", "boundary", "--out", "b.png", cwd=tmp_path, check=0)
    assert (tmp_path / "b.png").exists()


def test_sweep_on_lecture_data(tmp_path):
    (tmp_path / "spec.toml").write_text(
        'lr = "1:3:9"\ndata = ["lecture", "lecture-whitened"]\nsteps = 2000\n')
    run("sweep", "--config", "spec.toml", "--out", "r", cwd=tmp_path, check=0)
    res = fg.load(tmp_path / "r.npz")
    np.testing.assert_allclose(res.gd_limit, [2 / 0.84, 2.0], rtol=1e-12)


def test_boundary_lecture(tmp_path):
    out = run("boundary", "--out", "b.png", cwd=tmp_path, check=0)
    assert "2.380952" in out.stdout
    assert (tmp_path / "b.png").exists()


def test_lecture_end_to_end(tmp_path):
    out = run("lecture", "--out", "slides", cwd=tmp_path, check=0)
    for number in ("0.84, 0.036", "1.19", "2.381", "= 8.4 η_max", "diverged", "converged"):
        assert number in out.stdout, number
    pngs = sorted(p.name for p in (tmp_path / "slides").glob("*.png"))
    assert pngs[:6] == ["01_data_spectrum.png", "02_batch_gd_1.5.png", "03_batch_gd_2.5.png",
                        "04_sgd_0.2.png", "05_sgd_vs_batch_rate.png", "06_normalizing.png"]
    assert "07_one_one_one.png" in pngs


def test_info():
    out = run("info", check=0)
    for key in ("numba", "threading", "vector width", "kernel cache"):
        assert key in out.stdout


@pytest.mark.parametrize("env", [False, True])
def test_info_counts_cache_files_in_as_many_calls_whatever_the_cache_holds(tmp_path, env):
    """``fastgd info`` counts the kernel cache's index files (NUMBA_CACHE_DIR or the
    package's __pycache__ folders) in a number of Python calls that does not grow with
    them: the signal fuzz plans a signal at the Nth call of a count run, and other
    processes compile or prune kernels between that run and the signalled ones."""
    import sys

    from fastgd.cli.info import _kernel_cache

    root = tmp_path / "pkg"
    for sub in ("kernels", "linear", "net"):
        (root / sub / "__pycache__").mkdir(parents=True)
    (root / "x.py").write_text("")

    def calls(n_files):
        for k in range(n_files):
            (root / "linear" / "__pycache__" / f"k{k}.nbi").write_text("")
            (root / "linear" / "__pycache__" / f"k{k}.nbc").write_text("")
        seen = []
        sys.setprofile(lambda frame, what, arg: seen.append(1) if what == "call" else None)
        try:
            where, n = _kernel_cache(root, str(root) if env else None)
        finally:
            sys.setprofile(None)
        return n, len(seen)

    calls(0)  # first calls of the Python functions involved (their set-up) out of the way
    n3, c3 = calls(3)
    n30, c30 = calls(30)
    assert (n3, n30) == (3, 30) and c3 == c30


def test_figures_are_written_atomically(tmp_path, monkeypatch):
    """A figure write that fails midway leaves the old file whole and no temporary."""
    from matplotlib.figure import Figure

    from fastgd.cli import args

    fig = Figure()
    fig.subplots().plot([0, 1], [0, 1])
    path = args._save(fig, tmp_path / "f.png", 50)
    before = path.read_bytes()
    assert before[:8] == b"\x89PNG\r\n\x1a\n"

    def fail(self, fh, **kw):
        fh.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", fail)
    with pytest.raises(OSError, match="No space"):
        args._save(fig, path, 50)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.png"]
