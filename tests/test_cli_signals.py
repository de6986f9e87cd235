"""Ctrl-C in the ``fastgd`` command: exit 130 with one line on stderr, what finished kept
(saved, drawn), never a truncated figure, and a second Ctrl-C or one while the process
exits ends just as cleanly.

Each test runs the command in a subprocess through a small wrapper that makes the work
wait at a known point (after the first batch of a sweep, before the second run of a
loop, inside a figure write) and tells the test so by creating a file; the test sends
SIGINT only then (no fixed sleep races the work) and lets the wrapper go on by creating
another file.  The wrapper patches only the test's own hooks, never the command.
"""

from __future__ import annotations

import hooks

#: the wrapper: FASTGD_HOOK names where the child waits (hooks.PRELUDE)
WRAPPER = hooks.PRELUDE + r'''
def after_first(module, name):
    """module.name runs once normally, then waits before every later call."""
    orig = getattr(module, name)
    calls = [0]
    def patched(*a, **k):
        calls[0] += 1
        if calls[0] > 1:
            wait(name)
        return orig(*a, **k)
    setattr(module, name, patched)

if hook in ("execute", "execute+savefig"):
    import fastgd.engine.grid as G
    orig_execute = G.execute
    def execute(call, chunks, nworkers, **kw):
        kw.pop("first", None)  # batches, however short the sweep
        calls = [0]
        def paced(rows, nw):
            calls[0] += 1
            if calls[0] > 1:
                wait("batch")
            return call(rows, nw)
        return orig_execute(paced, chunks, nworkers, **kw)
    G.execute = execute
if hook in ("savefig", "execute+savefig"):
    from matplotlib.figure import Figure
    orig_savefig = Figure.savefig
    def savefig(self, fh, **kw):
        wait("savefig")  # the test interrupts a figure write
        return orig_savefig(self, fh, **kw)
    Figure.savefig = savefig
if hook == "net_gd":
    import fastgd.net as fn
    after_first(fn, "net_gd")
if hook == "net_sweep":
    import fastgd.net as fn
    after_first(fn, "net_sweep")
if hook == "exit":
    def linger():  # a non-daemon thread the interpreter's exit waits for
        while threading.main_thread().is_alive():
            time.sleep(0.01)
        wait("exit")
    threading.Thread(target=linger).start()

from fastgd.cli import main
sys.argv = ["fastgd", *sys.argv[1:]]
raise SystemExit(main())
'''


def _start(tmp_path, hook, *argv):
    return hooks.start(tmp_path, WRAPPER, hook, *argv)


def _one_line(rc, err, cmd):
    hooks.one_line(rc, err, cmd)
    assert "Traceback" not in err


_wait_for, _finish, _figure_ok = hooks.wait_for, hooks.finish, hooks.figure_ok
_interrupt = hooks.interrupt


def test_phase_keeps_finished_cells(tmp_path):
    proc, mark = _start(tmp_path, "execute", "phase", "--lr", "0.1:3:40", "--condition",
                        "1:100:12", "--steps", "50", "--threads", "1", "--out", "p.png",
                        "--save", "r.npz")
    _interrupt(proc, mark, 1)
    rc, out, err = _finish(proc)
    _one_line(rc, err, "fastgd phase")
    _figure_ok(tmp_path / "p.png")
    import fastgd as fg

    res = fg.load(tmp_path / "r.npz")
    assert (res.status < 0).any() and (res.status >= 0).any()  # finished cells kept


def test_phase_second_interrupt_while_drawing(tmp_path):
    """A second Ctrl-C while the partial figure is written: still one line, 130, and a
    whole figure."""
    proc, mark = _start(tmp_path, "execute+savefig", "phase", "--lr", "0.1:3:40",
                        "--condition", "1:100:12", "--steps", "50", "--threads", "1",
                        "--out", "p.png")
    _interrupt(proc, mark, 1)   # in the sweep
    _interrupt(proc, mark, 2)   # while the figure of the finished cells is written
    rc, out, err = _finish(proc)
    _one_line(rc, err, "fastgd phase")
    _figure_ok(tmp_path / "p.png")


def test_lecture_never_leaves_a_truncated_figure(tmp_path):
    """Ctrl-C inside a figure write: the figure is finished (whole) and the command
    stops there with 130."""
    proc, mark = _start(tmp_path, "savefig", "lecture", "--out", "slides")
    (mark / "go-1").write_text("")  # the first figure is written without interruption
    _interrupt(proc, mark, 2)
    rc, out, err = _finish(proc)
    _one_line(rc, err, "fastgd lecture")
    pngs = sorted((tmp_path / "slides").glob("*.png"))
    assert [p.name for p in pngs] == ["01_data_spectrum.png", "02_batch_gd_1.5.png"]
    for p in pngs:
        _figure_ok(p)


def test_interrupt_while_exiting(tmp_path):
    """Ctrl-C after the command is done, while the interpreter exits: 130, one line."""
    proc, mark = _start(tmp_path, "exit", "info")
    _interrupt(proc, mark, 1)
    rc, out, err = _finish(proc)
    _one_line(rc, err, "fastgd info")
    assert "fastgd" in out


def test_net_eos_keeps_finished_runs(tmp_path):
    proc, mark = _start(tmp_path, "net_gd", "net", "eos", "--data", "sphere", "--samples",
                        "12", "--width", "8", "--steps", "60", "--every", "20", "--lr",
                        "0.1,0.2,0.3", "--out", "e.png")
    _interrupt(proc, mark, 1)
    rc, out, err = _finish(proc)
    _one_line(rc, err, "fastgd net eos")
    _figure_ok(tmp_path / "e.png")
    assert "1 of 3 runs" in out


def test_net_warmup_keeps_finished_rows(tmp_path):
    proc, mark = _start(tmp_path, "net_sweep", "net", "warmup", "--data", "sphere",
                        "--samples", "12", "--width", "8", "--steps", "60", "--warmup",
                        "0,10,30", "--lr-sharp", "0.5:8:6", "--threads", "1", "--out",
                        "w.png")
    _interrupt(proc, mark, 1)
    rc, out, err = _finish(proc)
    _one_line(rc, err, "fastgd net warmup")
    _figure_ok(tmp_path / "w.png")
    assert "1 of 3 warm-up lengths" in out


def test_net_phase_keeps_finished_cells(tmp_path):
    proc, mark = _start(tmp_path, "execute", "net", "phase", "--width", "4,8,16",
                        "--lr-ntk", "0.5:8:12", "--steps", "40", "--samples", "8",
                        "--threads", "1", "--out", "n.png")
    _interrupt(proc, mark, 1)
    rc, out, err = _finish(proc)
    _one_line(rc, err, "fastgd net phase")
    _figure_ok(tmp_path / "n.png")
