"""Interrupting a CLI command at a chosen point, for the signal tests
(``test_cli_signals.py``, ``test_ctrl_c_leftovers.py``): waits for evidence, never a time.

A test runs the command in a child through a wrapper script that starts with
:data:`PRELUDE`: the child's ``wait(tag)`` creates ``waiting-N`` in ``FASTGD_MARK`` (the
N-th wait) and goes on once ``go-N`` exists.  :func:`interrupt` sends SIGINT while the
child waits, then lets it go on: the signal's handler runs before the child sees ``go-N``
(its sleep is interrupted and Python runs handlers first).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

PNG = b"\x89PNG\r\n\x1a\n"

#: the start of every wrapper: FASTGD_HOOK names where the child waits
PRELUDE = r'''
import os, sys, time, threading
from pathlib import Path

mark = Path(os.environ["FASTGD_MARK"])
hook = os.environ["FASTGD_HOOK"]
seen = [0]

def wait(tag):
    seen[0] += 1
    n = seen[0]
    (mark / f"waiting-{n}").write_text(tag)
    while not (mark / f"go-{n}").exists():
        time.sleep(0.01)
'''


def start(tmp_path, wrapper, hook, *argv, **env):
    """Run ``python -c wrapper argv...`` in ``tmp_path`` with FASTGD_HOOK = ``hook``;
    return (process, mark folder)."""
    mark = tmp_path / "mark"
    mark.mkdir(exist_ok=True)
    env = dict(os.environ, FASTGD_MARK=str(mark), FASTGD_HOOK=hook, MPLBACKEND="Agg", **env)
    env.pop("NUMBA_DISABLE_JIT", None)
    proc = subprocess.Popen([sys.executable, "-c", wrapper, *map(str, argv)], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    return proc, mark


def wait_for(proc, mark, n, timeout=300):
    """Block until the child waits the n-th time (it created waiting-n)."""
    t0 = time.monotonic()
    while not (mark / f"waiting-{n}").exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the command ended before waiting ({proc.returncode}): {out}\n{err}")
        if time.monotonic() - t0 > timeout:
            proc.kill()
            pytest.fail("the command never reached its waiting point")
        time.sleep(0.01)


def interrupt(proc, mark, n=1):
    """SIGINT while the child waits the n-th time, then let it go on (go-n)."""
    wait_for(proc, mark, n)
    proc.send_signal(signal.SIGINT)
    (mark / f"go-{n}").write_text("")


def finish(proc):
    """(exit code, stdout, stderr) of the child, which must end within 300 s."""
    try:
        out, err = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the command did not end after Ctrl-C: {out}\n{err}")
    return proc.returncode, out, err


#: the first-run notices a cold kernel cache prints before compiling (whether the cache
#: is cold depends on which tests ran first on this clone, so they are not counted)
COMPILE_NOTICE = "fastgd: compiling "


def one_line(rc, err, cmd):
    """Exit 130 and one line on stderr: ``cmd: interrupted`` (besides any first-run
    compile notice, :data:`COMPILE_NOTICE`)."""
    assert rc == 130, (rc, err)
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith(COMPILE_NOTICE)]
    assert lines == [f"{cmd}: interrupted"], err


def figure_ok(path):
    """A whole PNG at ``path`` and no temporary beside it."""
    assert path.exists(), f"{path} not written"
    assert path.read_bytes().startswith(PNG)
    from matplotlib.image import imread

    assert imread(path).ndim == 3  # decodes whole
    assert not list(path.parent.glob(".tmp-*"))
