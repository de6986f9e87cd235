"""Resumable sweeps (issue 7): a sweep killed in the middle (SIGKILL, SIGTERM, Ctrl-C) and
run again returns the result of an uninterrupted run bit for bit and computes only the
missing chunks; corrupt or partial chunk files are recomputed, never used; a different
spec in the same directory is refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastgd as fg
import naive
from fastgd.engine import grid as G
from fastgd.engine.checkpoint import Checkpoint

# 128 chunks of 4 lanes.  The subprocess below writes its first batch (2 chunks) and then
# waits for the test's signal, so the work left when the signal comes never depends on
# the machine's speed.
SPEC = dict(lr=np.geomspace(0.01, 1.2, 64).tolist(), condition=[1.0, 3.0, 10.0, 30.0,
            100.0, 300.0, 1e3, 3e3], epochs=500, lanes=4, tol=0.0, order="shuffle",
            seeds=1, threads=1, progress=False)
SMALL = dict(lr=np.geomspace(0.05, 3.0, 24), condition=[1.0, 10.0], epochs=30, lanes=4,
             seeds=2, order="replacement", progress=False, curve_points=4)

# Test hooks run inside the subprocess.  PAUSE_AFTER_FIRST_FILE: once the first chunk
# file is on disk, say so on stdout and wait for a line on stdin (the test signals the
# process instead; a test that fails closes stdin and the sweep simply finishes).
# PAUSE_BEFORE_FIRST_RENAME: the same, but while the first chunk file still has its
# temporary name (an in-flight write another process must leave alone).
HOOKS = textwrap.dedent("""
    import os, sys
    import fastgd as fg
    from fastgd.engine import checkpoint as _ck
    from fastgd.linear import executors as _ex

    _ex.ONE_BATCH_S = 0.0  # batches however short the sweep (the batches fixture's)

    def pause(msg):
        print(msg, flush=True)
        sys.stdin.readline()

    def no_pause():
        pass

    def pause_after_first_file():
        real = _ck.Checkpoint.write

        def write(self, res):
            name = real(self, res)
            if name is not None and not getattr(write, "done", False):
                write.done = True
                pause("wrote " + name)
            return name

        _ck.Checkpoint.write = write

    def pause_before_first_rename():
        real = os.replace

        def replace(src, dst):
            if os.path.basename(src).startswith(".tmp-chunk-") and not replace.done:
                replace.done = True
                pause("writing " + src)
            return real(src, dst)

        replace.done = False
        _ck.os.replace = replace
""")

SCRIPT = HOOKS + textwrap.dedent("""
    import json
    spec = json.loads(sys.argv[2])
    {hook}()
    try:
        res = fg.sweep("sgd", checkpoint=sys.argv[1], **spec)
    except fg.SweepInterrupted as exc:
        print(json.dumps({{k: exc.result.meta[k] for k in ("chunks_resumed",
              "chunks_computed")}}))
        sys.exit(130)
    if len(sys.argv) > 3:
        res.save(sys.argv[3])
    print("finished")
""")


def _files(d):
    return [f for f in os.listdir(d) if f.startswith("chunk-") and f.endswith(".npz")]


def _rows_on_disk(d):
    """Distinct chunk rows held by the chunk files (a resume reads each row once)."""
    rows = set()
    for f in _files(d):
        with np.load(os.path.join(d, f)) as z:
            rows.update(map(tuple, z["rows"].tolist()))
    return len(rows)


# With NUMBA_DISABLE_JIT=1 a sweep long enough to be killed mid-way takes minutes.
long_sweep = pytest.mark.skipif(naive.JITLESS, reason="NUMBA_DISABLE_JIT=1: too slow")


@pytest.fixture(scope="module")
def reference():
    return fg.sweep("sgd", **SPEC)


def _start(tmp_path, ckdir, hook="pause_after_first_file", save=None):
    script = tmp_path / f"run_sweep_{hook}.py"
    script.write_text(SCRIPT.format(hook=hook))
    args = [sys.executable, str(script), str(ckdir), json.dumps(SPEC)]
    return subprocess.Popen(args + ([str(save)] if save else []), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(proc, prefix):
    """Block until the subprocess prints a line starting with ``prefix`` (True) or ends
    without printing one (False).  No polling, no delays: evidence, not time."""
    for line in proc.stdout:
        if line.startswith(prefix):
            return True
    return False


@long_sweep
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT],
                         ids=["SIGKILL", "SIGTERM", "SIGINT"])
def test_killed_sweep_resumes_bit_identical(tmp_path, reference, sig):
    ckdir = tmp_path / "ck"
    proc = _start(tmp_path, ckdir)
    started = _wait_for(proc, "wrote ")  # the first chunk file is on disk; it now waits
    if started:
        proc.send_signal(sig)
    out, err = proc.communicate(timeout=300)
    assert started, f"the sweep ended before writing a chunk file: {out} {err}"
    total = reference.meta["chunks_total"]
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:  # a clean stop between chunks: what finished was saved, exit 130
        assert proc.returncode == 130, err
        counts = json.loads(out.strip().splitlines()[-1])
        assert counts["chunks_resumed"] == 0
        assert _rows_on_disk(ckdir) == counts["chunks_computed"]
    on_disk = _rows_on_disk(ckdir)
    assert 0 < on_disk < total
    assert not [f for f in os.listdir(ckdir) if f.startswith(".tmp-")]
    res = fg.sweep("sgd", checkpoint=ckdir, **SPEC)
    assert res.equals(reference)
    assert res.meta["chunks_resumed"] == on_disk
    assert res.meta["chunks_computed"] == total - on_disk
    again = fg.sweep("sgd", checkpoint=ckdir, **SPEC)  # everything on disk now
    assert again.equals(reference)
    assert again.meta["chunks_resumed"] == total and again.meta["chunks_computed"] == 0


@long_sweep
def test_second_process_leaves_an_in_flight_write_alone(tmp_path, reference):
    """Process A is paused with its first chunk file under its temporary name; process B
    starts on the same directory, runs the whole sweep and ends; then A renames its file
    and finishes.  Both results equal the uninterrupted run (A would die with
    FileNotFoundError if B had cleaned A's temporaries)."""
    ckdir = tmp_path / "ck"
    a = _start(tmp_path, ckdir, hook="pause_before_first_rename", save=tmp_path / "a")
    paused = _wait_for(a, "writing ")
    assert paused, a.communicate(timeout=300)
    assert [f for f in os.listdir(ckdir) if f.startswith(".tmp-chunk-")]
    b = subprocess.run([sys.executable, "-c", HOOKS + textwrap.dedent("""
        import json
        fg.sweep("sgd", checkpoint=sys.argv[1], **json.loads(sys.argv[2])).save(sys.argv[3])
        """), str(ckdir), json.dumps(SPEC), str(tmp_path / "b")],
        capture_output=True, text=True, timeout=300)
    assert b.returncode == 0, b.stderr
    assert [f for f in os.listdir(ckdir) if f.startswith(".tmp-chunk-")]  # still there
    out, err = a.communicate("go\n", timeout=300)  # A renames its file and goes on
    assert a.returncode == 0 and out.strip().endswith("finished"), err
    for name in ("a", "b"):
        assert fg.load(tmp_path / f"{name}.npz").equals(reference)
    res = fg.sweep("sgd", checkpoint=ckdir, **SPEC)
    assert res.equals(reference) and res.meta["chunks_computed"] == 0
    assert not [f for f in os.listdir(ckdir) if f.startswith(".tmp-")]  # alone: cleaned


@long_sweep
def test_two_processes_started_together_on_a_new_directory(tmp_path, reference):
    """Started at once on a new directory (the start-up race: manifest, lock, cleaning):
    both finish, with the uninterrupted result.  Run twice: before the lock this failed in
    5 of 6 trials."""
    for trial in range(2):
        ckdir = tmp_path / f"ck{trial}"
        procs = [_start(tmp_path, ckdir, hook="no_pause", save=tmp_path / f"r{trial}{k}")
                 for k in range(2)]
        for p in procs:
            out, err = p.communicate(timeout=300)
            assert p.returncode == 0 and out.strip().endswith("finished"), err
        for k in range(2):
            assert fg.load(tmp_path / f"r{trial}{k}.npz").equals(reference)


def test_manifest_less_or_foreign_directory_is_never_emptied(tmp_path):
    ckdir = tmp_path / "ck"
    first = fg.sweep("sgd", checkpoint=ckdir, **SMALL)
    files = sorted(os.listdir(ckdir))
    os.remove(ckdir / "manifest.json")
    left = sorted(os.listdir(ckdir))
    other = dict(SMALL, epochs=31)
    for kw in (other, SMALL):  # another sweep, and even the same one: no manifest, refuse
        with pytest.raises(fg.FastGDValueError,
                           match=r"sweep: 'checkpoint' must be a new or empty directory, or "
                                 r"one with a fastgd manifest.json; got .*ck.*holds \d+ "
                                 r"file\(s\).* but no manifest.json; it is left untouched"):
            fg.sweep("sgd", checkpoint=ckdir, **kw)
        assert sorted(os.listdir(ckdir)) == left
    # a chunk file of another sweep next to a valid manifest: refused, nothing deleted
    ck2 = tmp_path / "ck2"
    fg.sweep("sgd", checkpoint=ck2, **other)
    stranger = sorted(_files(ck2))[0]
    (ckdir / "manifest.json").write_text((ck2 / "manifest.json").read_text())
    os.replace(ck2 / stranger, ckdir / stranger)
    for f in _files(ckdir):
        if f != stranger:
            os.remove(ckdir / f)
    (ck2 / "manifest.json").unlink()
    with pytest.raises(fg.FastGDValueError, match="holds a different sweep"):
        fg.sweep("sgd", checkpoint=ckdir, **SMALL)
    import shutil

    ck3 = tmp_path / "ck3"
    fg.sweep("sgd", checkpoint=ck3, **SMALL)
    shutil.copy(ckdir / stranger, ck3 / stranger)
    before = sorted(os.listdir(ck3))
    with pytest.raises(fg.FastGDValueError,
                       match=r"'checkpoint' must be a directory holding the chunk files of "
                             r"one sweep; got .*ck3.*1 chunk file\(s\) of another sweep"):
        fg.sweep("sgd", checkpoint=ck3, **SMALL)
    assert sorted(os.listdir(ck3)) == before
    assert first.equals(fg.sweep("sgd", **SMALL)) and files


@pytest.fixture
def read_only(monkeypatch):
    """Make directories read-only: chmod 0o555, and, for root (whom permissions do not
    stop), refuse file creation in them as the kernel would for a read-only mount."""
    import errno

    ro = []
    real_open = os.open

    def fake_open(path, flags, *a, **k):
        if flags & os.O_CREAT and any(os.path.dirname(os.fspath(path)) == d for d in ro):
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real_open(path, flags, *a, **k)

    monkeypatch.setattr(os, "open", fake_open)

    def make(d):
        os.chmod(d, 0o555)
        ro.append(os.fspath(d))

    yield make
    for d in ro:
        os.chmod(d, 0o755)


def test_read_only_directory_is_refused_before_computing(tmp_path, read_only, monkeypatch):
    from fastgd.linear import executors as E

    ran = []
    real = E.run_local
    monkeypatch.setattr(E, "run_local", lambda *a, **k: (ran.append(1), real(*a, **k))[1])
    new = tmp_path / "new"
    new.mkdir()
    part = tmp_path / "part"
    fg.sweep("sgd", checkpoint=part, **SMALL)
    for f in sorted(_files(part))[::2]:  # a partly finished directory
        os.remove(part / f)
    files = sorted(os.listdir(part))
    for d in (new, part):
        read_only(d)
        ran.clear()
        with pytest.raises(fg.FastGDValueError,
                           match=r"sweep: 'checkpoint' must be a directory this process can "
                                 r"write in; got .*(new|part).*Permission denied"):
            fg.sweep("sgd", checkpoint=d, **SMALL)
        assert not ran  # refused before any computation
    assert os.listdir(new) == [] and sorted(os.listdir(part)) == files


def test_corrupt_and_partial_files_are_recomputed(tmp_path):
    ref = fg.sweep("sgd", **SMALL)
    ckdir = tmp_path / "ck"
    first = fg.sweep("sgd", checkpoint=ckdir, **SMALL)
    assert first.equals(ref) and first.meta["chunks_computed"] == ref.meta["chunks_total"]
    # make several small files: rewrite the directory one block per chunk
    from fastgd.linear.executors import FIELDS

    with Checkpoint(ckdir, *_spec_and_chunks(SMALL)) as ck:  # holds the directory lock
        blocks = ck.load()
        for f in _files(ckdir):
            os.remove(ckdir / f)
        for b in blocks:
            pos = 0
            for r in b["rows"]:
                n = int(r[3] - r[2])
                ck.write({"rows": r[None], **{k: b[k][pos:pos + n] for k in FIELDS}})
                pos += n
    files = sorted(_files(ckdir))
    total = ref.meta["chunks_total"]
    assert len(files) == total
    # 1: truncated (a partial write), 2: flipped bytes in the data, 3: not a zip at all,
    # 4: a valid file with a value changed but the old checksum
    p1, p2, p3, p4 = (ckdir / files[k] for k in (0, 3, 5, 7))
    p1.write_bytes(p1.read_bytes()[:200])
    raw = bytearray(p2.read_bytes())
    raw[-300] ^= 0xFF
    p2.write_bytes(bytes(raw))
    p3.write_text("garbage")
    with np.load(p4) as z:
        d = {k: z[k] for k in z.files}
    d["tol_at"] = d["tol_at"] + 1
    np.savez(p4, **d)
    (ckdir / ".tmp-chunk-leftover.npz").write_bytes(b"partial")
    res = fg.sweep("sgd", checkpoint=ckdir, **SMALL)
    assert res.equals(ref)
    assert res.meta["chunks_computed"] == 4
    assert res.meta["chunks_resumed"] == total - 4
    assert not (ckdir / ".tmp-chunk-leftover.npz").exists()


def _spec_and_chunks(kw):
    """The kernel spec and chunk table that sweep() builds for these arguments."""
    import importlib

    from fastgd.linear import executors as E

    S = importlib.import_module("fastgd.linear.sweep")
    got = {}
    real = E.run_local

    def spy(spec, chunks, out, nthreads, **k):
        got["spec"], got["chunks"] = spec, chunks
        raise G.Interrupted(0, chunks.shape[0])

    E.run_local = spy
    try:
        with pytest.raises(fg.SweepInterrupted):
            S.sweep("sgd", **kw)
    finally:
        E.run_local = real
    return got["spec"], got["chunks"]


def test_different_spec_is_refused(tmp_path):
    ckdir = tmp_path / "ck"
    small = dict(SMALL, epochs=5)
    fg.sweep("sgd", checkpoint=ckdir, **small)
    man = json.loads((ckdir / "manifest.json").read_text())
    assert man["format"] == "fastgd-checkpoint-1" and man["fastgd"] == fg.__version__
    assert len(man["spec_hash"]) == 64
    for change in (dict(epochs=6), dict(lanes=8), dict(dtype="float32"),
                   dict(lr=SMALL["lr"][:-1]), dict(seeds=3)):
        with pytest.raises(fg.FastGDValueError,
                           match=r"sweep: 'checkpoint' must be a directory written by the "
                                 r"same sweep .* holds a different sweep"):
            fg.sweep("sgd", checkpoint=ckdir, **dict(small, **change))
    # engine and thread count do not change results: the same directory is accepted
    res = fg.sweep("sgd", checkpoint=ckdir, **dict(small, threads=1))
    assert res.meta["chunks_resumed"] == res.meta["chunks_total"]


def test_bad_directory(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(fg.FastGDValueError, match="'checkpoint' must be a directory that"):
        fg.sweep("gd", lr=[1.0], condition=[1.0], checkpoint=f / "sub")
    d = tmp_path / "d"
    d.mkdir()
    (d / "manifest.json").write_text("{not json")
    with pytest.raises(fg.FastGDValueError, match="unreadable manifest"):
        fg.sweep("gd", lr=[1.0], condition=[1.0], checkpoint=d)


def test_executor_checkpoint_resumes(tmp_path):
    import concurrent.futures as cf

    ref = fg.sweep("sgd", **SMALL)
    ckdir = tmp_path / "ck"
    with cf.ThreadPoolExecutor(2) as ex:
        a = fg.sweep("sgd", checkpoint=ckdir, engine=ex, **SMALL)
    assert a.equals(ref)
    # drop half of the files: only their chunks are recomputed, on the local engine
    files = sorted(_files(ckdir))
    gone = 0
    for f in files[::2]:
        with np.load(ckdir / f) as z:
            gone += z["rows"].shape[0]
        os.remove(ckdir / f)
    b = fg.sweep("sgd", checkpoint=ckdir, **SMALL)
    assert b.equals(ref) and b.meta["chunks_computed"] == gone


CLI_SPEC = """
method = "sgd"
lr = "0.01:1.2:64"
condition = [1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0]
epochs = 500
order = "shuffle"
tol = 0.0
lanes = 4
threads = 1
theory = false
"""


@long_sweep
def test_cli_checkpoint_sigterm_exit_130_and_resume(tmp_path):
    cfg = tmp_path / "spec.toml"
    cfg.write_text(CLI_SPEC)
    ckdir = tmp_path / "ck"
    cmd = [sys.executable, "-m", "fastgd", "sweep", "--config", str(cfg), "--no-progress"]
    # the command as `fastgd sweep` runs it, paused after its first chunk file
    script = tmp_path / "cli_paused.py"
    script.write_text(HOOKS + "\nfrom fastgd.cli import main\npause_after_first_file()\n"
                      "sys.exit(main(sys.argv[1:]))\n")
    proc = subprocess.Popen([sys.executable, str(script)] + cmd[3:]
                            + ["--checkpoint", str(ckdir), "--out", str(tmp_path / "a")],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    started = _wait_for(proc, "wrote ")
    if started:
        proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=300)
    assert started, f"finished before writing a chunk file: {out} {err}"
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "fastgd sweep: interrupted", err
    assert "Traceback" not in err
    partial = fg.load(tmp_path / "a.npz")
    assert not partial.complete
    again = subprocess.run(cmd + ["--checkpoint", str(ckdir), "--out", str(tmp_path / "a")],
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    fresh = subprocess.run(cmd + ["--out", str(tmp_path / "b")], capture_output=True,
                           text=True, timeout=300)
    assert fresh.returncode == 0, fresh.stderr
    a, b = fg.load(tmp_path / "a.npz"), fg.load(tmp_path / "b.npz")
    assert a.complete and a.equals(b)
    assert 0 < a.meta["chunks_resumed"] < a.meta["chunks_total"]
    assert a.meta["chunks_resumed"] + a.meta["chunks_computed"] == a.meta["chunks_total"]


# ---------------------------------------------------------------------------- Ctrl-C
THEORY = dict(lr=[0.1, 0.5, 3.0], condition=[1.0, 10.0], epochs=5, seeds=2,
              progress=False)


@pytest.fixture
def ctrl_c_in_almost_sure(monkeypatch):
    """fastgd.theory.limits raises KeyboardInterrupt (as Ctrl-C would) when asked for
    the almost-sure limit of a second dataset; the first, and mean-square limits, work."""
    from fastgd import theory

    real = theory.limits
    calls = []

    def limits(X, *a, almost_sure=False, **k):
        calls.append(almost_sure)
        if almost_sure and calls.count(True) > 1:
            raise KeyboardInterrupt
        return real(X, *a, almost_sure=almost_sure, **k)

    monkeypatch.setattr(theory, "limits", limits)
    return calls


def test_ctrl_c_in_theory_stage_keeps_the_finished_sweep(ctrl_c_in_almost_sure):
    plain = fg.sweep("sgd", **THEORY)
    with pytest.raises(fg.SweepInterrupted) as info:
        fg.sweep("sgd", almost_sure=True, **THEORY)
    res = info.value.result
    assert res.complete and res.meta["theory_interrupted"] is True
    for f in ("status", "final_loss", "steps_to_tol", "diverged_at", "lr", "lambda_max"):
        assert np.array_equal(getattr(res, f), getattr(plain, f), equal_nan=True), f
    assert np.isfinite(res.sgd_as_limit[0]) and np.isnan(res.sgd_as_limit[1])
    assert np.isnan(res.sgd_ms_limit[1])


def test_cli_ctrl_c_in_theory_stage_saves_draws_exit_130(tmp_path, ctrl_c_in_almost_sure,
                                                         capsys, monkeypatch):
    from fastgd import cli

    monkeypatch.setenv("MPLBACKEND", "Agg")
    # the sweep's own theory stage works (ms limits only); the CLI's almost-sure stage
    # is interrupted on its second dataset
    code = cli.main(["phase", "--method", "sgd", "--lr", "0.1:3:3", "--condition", "1:10:2",
                     "--epochs", "5", "--seeds", "2", "--almost-sure", "--no-progress",
                     "--save", str(tmp_path / "r.npz"), "--out", str(tmp_path / "p.png")])
    out, err = capsys.readouterr()
    assert code == 130
    assert err.strip().splitlines() == ["fastgd phase: interrupted"], err
    assert "Traceback" not in err and (tmp_path / "p.png").exists()
    res = fg.load(tmp_path / "r.npz")
    assert res.complete and res.status.shape == (2, 3, 2)
    assert True in ctrl_c_in_almost_sure


def test_cli_ctrl_c_while_parsing_exit_130_one_line(monkeypatch, capsys):
    from fastgd import cli

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert cli.main(["info"]) == 130
    assert capsys.readouterr().err.strip().splitlines() == ["fastgd: interrupted"]


def test_cli_ctrl_c_during_import_fastgd_exit_130_one_line():
    # exactly what the installed `fastgd` script runs, with Ctrl-C arriving while
    # `import fastgd` imports scipy (an import hook raises it: no timing involved)
    code = textwrap.dedent("""
        import sys
        class CtrlC:
            def find_spec(self, name, path=None, target=None):
                if name == "scipy":
                    raise KeyboardInterrupt
        sys.meta_path.insert(0, CtrlC())
        from fastgd_entry import main  # the console script's entry point (pyproject)
        sys.exit(main(["info"]))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 130, (out.returncode, out.stderr)
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
