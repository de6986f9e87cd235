"""README.md: the quick tour runs, and the test command is the one .ci/run uses."""

import os
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT") == "1",
                    reason="a 16 K-cell sweep and critical_lr take minutes as plain Python")
def test_quick_tour_runs(tmp_path, monkeypatch):
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## Quick tour\s+```python\n(.*?)```", text, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    ns = {}
    exec(compile(block, "README quick tour", "exec"), ns)
    assert ns["fg"].gd(ns["X"], ns["y"], lr=1.5, steps=500).status == ns["fg"].Status.CONVERGED
    assert (tmp_path / "phase.npz").exists()


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text().splitlines()
    ci = (ROOT / ".ci" / "run").read_text()
    test_cmd = next(line.split("#")[0].strip() for line in readme[:8] if "pytest" in line)
    assert test_cmd in ci
