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
import time

import numpy as np
import pytest

import fastgd as fg
import naive
from fastgd import _core as C
from fastgd.checkpoint import Checkpoint

# Long enough that a subprocess is still running when its first chunk file appears
# (files are flushed about once a second): ~128 chunks of 4 lanes x 8000 epochs.
SPEC = dict(lr=np.geomspace(0.01, 1.2, 64).tolist(), condition=[1.0, 3.0, 10.0, 30.0,
            100.0, 300.0, 1e3, 3e3], epochs=8000, lanes=4, tol=0.0, order="shuffle",
            seeds=1, threads=1, progress=False)
SMALL = dict(lr=np.geomspace(0.05, 3.0, 24), condition=[1.0, 10.0], epochs=30, lanes=4,
             seeds=2, order="replacement", progress=False, curve_points=4)

SCRIPT = textwrap.dedent("""
    import json, sys
    import fastgd as fg
    spec = json.loads(sys.argv[2])
    try:
        res = fg.sweep("sgd", checkpoint=sys.argv[1], **spec)
    except fg.SweepInterrupted as exc:
        print(json.dumps({k: exc.result.meta[k] for k in ("chunks_resumed",
              "chunks_computed")}))
        sys.exit(130)
    print("finished")
""")


def _files(d):
    return [f for f in os.listdir(d) if f.startswith("chunk-") and f.endswith(".npz")]


def _rows_on_disk(d, spec):
    """Chunk rows held by valid files (read like a resume would, without deleting)."""
    n = 0
    for f in _files(d):
        with np.load(os.path.join(d, f)) as z:
            n += z["rows"].shape[0]
    return n


# With NUMBA_DISABLE_JIT=1 a sweep long enough to be killed mid-way takes minutes.
long_sweep = pytest.mark.skipif(naive.JITLESS, reason="NUMBA_DISABLE_JIT=1: too slow")


@pytest.fixture(scope="module")
def reference():
    return fg.sweep("sgd", **SPEC)


def _start(tmp_path, ckdir):
    script = tmp_path / "run_sweep.py"
    script.write_text(SCRIPT)
    return subprocess.Popen([sys.executable, str(script), str(ckdir), json.dumps(SPEC)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_first_file(proc, ckdir):
    while proc.poll() is None:
        if os.path.isdir(ckdir) and _files(ckdir):
            return True
        time.sleep(0.01)
    return False


@long_sweep
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT],
                         ids=["SIGKILL", "SIGTERM", "SIGINT"])
def test_killed_sweep_resumes_bit_identical(tmp_path, reference, sig):
    ckdir = tmp_path / "ck"
    proc = _start(tmp_path, ckdir)
    started = _wait_for_first_file(proc, ckdir)
    out, err = "", ""
    if started:
        proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert started, f"the sweep finished before writing a chunk file: {out} {err}"
    total = reference.meta["chunks_total"]
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:  # a clean stop between chunks: what finished was saved, exit 130
        assert proc.returncode == 130, err
        counts = json.loads(out.strip().splitlines()[-1])
        assert counts["chunks_resumed"] == 0
        assert _rows_on_disk(ckdir, SPEC) == counts["chunks_computed"]
    on_disk = _rows_on_disk(ckdir, SPEC)
    assert 0 < on_disk < total
    res = fg.sweep("sgd", checkpoint=ckdir, **SPEC)
    assert res.equals(reference)
    assert res.meta["chunks_resumed"] == on_disk
    assert res.meta["chunks_computed"] == total - on_disk
    again = fg.sweep("sgd", checkpoint=ckdir, **SPEC)  # everything on disk now
    assert again.equals(reference)
    assert again.meta["chunks_resumed"] == total and again.meta["chunks_computed"] == 0


def test_corrupt_and_partial_files_are_recomputed(tmp_path):
    ref = fg.sweep("sgd", **SMALL)
    ckdir = tmp_path / "ck"
    first = fg.sweep("sgd", checkpoint=ckdir, **SMALL)
    assert first.equals(ref) and first.meta["chunks_computed"] == ref.meta["chunks_total"]
    # make several small files: rewrite the directory one block per chunk
    ck = Checkpoint(ckdir, *_spec_and_chunks(SMALL))
    blocks = ck.load()
    for f in _files(ckdir):
        os.remove(ckdir / f)
    from fastgd._engine import FIELDS

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

    from fastgd import _engine as E

    S = importlib.import_module("fastgd.sweep")
    got = {}
    real = E.run_local

    def spy(spec, chunks, out, nthreads, **k):
        got["spec"], got["chunks"] = spec, chunks
        raise C.Interrupted(0, chunks.shape[0])

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
epochs = 20000
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
    proc = subprocess.Popen(cmd + ["--checkpoint", str(ckdir), "--out", str(tmp_path / "a")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started = _wait_for_first_file(proc, ckdir)
    if started:
        proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert started, f"finished before writing a chunk file: {out} {err}"
    assert proc.returncode == 130, err
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
