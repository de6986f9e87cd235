"""Fuzz the ``fastgd`` command: bad flags, bad files, special files and extreme numbers
for every subcommand, each call in its own forked child with a memory cap and a time
limit.

Each case is ``fastgd.cli.main(argv)`` run in a child forked from this process (which
has already imported fastgd, NumPy and matplotlib, so a call costs milliseconds), with
``RLIMIT_AS`` at the child's size at the fork plus :data:`MEMORY` and killed after
:data:`LIMIT_S` seconds (:data:`LIMIT_DRAW_S` for the few calls that draw a figure).  A case expects either exit 2 with one line on stderr naming the
flag (or its spec key), or exit 0 with a truthful output (a valid figure).  Every kernel
is replaced by one that fails in the child, unless the case is a run the test means to
finish, so a call that got past validation shows up as a wrong accept; nothing depends
on machine speed beyond the generous limit.  No case may print a traceback or a NumPy
``RuntimeWarning``, leave a temporary file, or write a file when it refuses.

``python tests/test_fuzz_cli.py`` prints the counts (calls, clean, crashes, wrong
accepts, unclear messages, wrong refusals).
"""

from __future__ import annotations

import io
import os
import resource
import signal
import sys
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

import fastgd as fg
from fastgd import cli

LIMIT_S = 2.0
#: The few calls that must draw a figure (exit 0) get longer: matplotlib's drawing alone
#: takes about a second on a loaded machine, and the limit is there to catch hangs.
LIMIT_DRAW_S = 10.0
MEMORY = 512 * 2**20
_BIG = str(2**70)
PNG = b"\x89PNG\r\n\x1a\n"

# ----------------------------------------------------------------------------- files


def _npz(path, **arrays):
    np.savez(path, **arrays)


def _bomb(path, rows):
    """A compressed .npz whose X (rows x 4 zeros) inflates about 1000-fold."""
    hdr = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        hdr, {"descr": "<f8", "fortran_order": False, "shape": (rows, 4)})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        with z.open("X.npy", "w", force_zip64=True) as fh:
            fh.write(hdr.getvalue())
            block = bytes(2**22)
            left = rows * 32
            while left:
                fh.write(block[:min(left, len(block))])
                left -= min(left, len(block))
        buf = io.BytesIO()
        np.save(buf, np.zeros(rows))
        z.writestr("y.npy", buf.getvalue())


def make_files(d):
    """Every file a case names, in the folder ``d`` (the children's working directory)."""
    d = Path(d)
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((20, 3)), rng.standard_normal(20)
    _npz(d / "good.npz", X=X, y=y)
    _npz(d / "fortran.npz", X=np.asfortranarray(X), y=y)
    np.savez(d / "obj.npz", X=np.array([[1, "a"], [2, None]], dtype=object), y=np.ones(2),
             allow_pickle=True)
    _npz(d / "str.npz", X=np.array([["1", "2"], ["3", "4"], ["5", "7"]]), y=np.ones(3))
    _npz(d / "bytes.npz", X=np.array([[b"1", b"2"], [b"3", b"4"], [b"5", b"7"]]),
         y=np.ones(3))
    _npz(d / "complex.npz", X=X + 1j * X, y=y)
    _npz(d / "complexy.npz", X=X, y=y + 1j)
    _npz(d / "timedelta.npz", X=np.arange(60).reshape(20, 3).astype("m8[s]"), y=y)
    _npz(d / "datetime.npz", X=np.arange(60).reshape(20, 3).astype("M8[D]"), y=y)
    _npz(d / "struct.npz", X=np.zeros(20, dtype=[("a", "f8"), ("b", "f8")]), y=y)
    _npz(d / "zerod.npz", X=np.array(3.0), y=np.array(1.0))
    _npz(d / "threed.npz", X=np.zeros((4, 3, 2)), y=np.ones(4))
    _npz(d / "empty.npz", X=np.zeros((0, 3)), y=np.zeros(0))
    _npz(d / "noy.npz", X=X)
    _npz(d / "nox.npz", y=y)
    _npz(d / "badlen.npz", X=X, y=y[:7])
    _npz(d / "nan.npz", X=np.where(X > 1, np.nan, X), y=y)
    _npz(d / "inf.npz", X=X, y=np.where(y > 1, np.inf, y))
    _npz(d / "y2d.npz", X=X, y=np.ones((20, 3)))
    (d / "notzip.npz").write_bytes(b"this is not a zip file\n" * 10)
    (d / "empty_file.npz").write_bytes(b"")
    good = (d / "good.npz").read_bytes()
    (d / "truncated.npz").write_bytes(good[:len(good) // 2])
    (d / "noise.npz").write_bytes(rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())
    (d / "dir.npz").mkdir()
    (d / "dir.toml").mkdir()
    (d / "outdir.png").mkdir()
    for name in ("fifo.npz", "fifo.toml", "fifo.png", "fifo_out.npz"):
        os.mkfifo(d / name)
    (d / "zero.npz").symlink_to("/dev/zero")
    for name, dev in (("null.png", "/dev/null"), ("full.svg", "/dev/full"),
                      ("null.npz", "/dev/null")):  # devices under output names
        (d / name).symlink_to(dev)
    (d / "zero.toml").symlink_to("/dev/zero")
    (d / "urandom.npz").symlink_to("/dev/urandom")
    (d / "dangling.npz").symlink_to(d / "nowhere.npz")
    _bomb(d / "bomb.npz", 2**23)  # 256 MiB of zeros in about 0.3 MiB
    (d / "badutf8.toml").write_bytes(b'lr = "\xff\xfe"\n')
    (d / "huge.toml").write_bytes(b"# " + b"x" * (8 * 2**20) + b"\n")
    (d / "syntax.toml").write_text("lr = [1.0\n")
    # a saved linear result, as `fastgd sweep` writes it
    res = fg.SweepResult(
        method="gd", unit="step", lr=np.geomspace(0.5, 3.0, 3), seeds=np.arange(1),
        lambda_max=np.ones(2), lambda_min=np.full(2, 0.1), condition=np.array([1.0, 10.0]),
        status=np.zeros((2, 3, 1), np.int8), final_loss=np.zeros((2, 3, 1)),
        steps_to_tol=np.full((2, 3, 1), 3), diverged_at=np.full((2, 3, 1), -1),
        gd_limit=np.full(2, 2.0), momentum_limit=np.full(2, np.nan),
        sgd_ms_limit=np.full(2, np.nan), sgd_as_limit=np.full(2, np.nan))
    res.save(d / "result.npz")
    raw = (d / "result.npz").read_bytes()
    (d / "result_truncated.npz").write_bytes(raw[: len(raw) - 200])
    (d / "result_noext").write_bytes(raw)


# ----------------------------------------------------------------------------- cases
def _toml(text):
    """A --config case: the spec text is written to a file named after its hash."""
    return ("toml", text)


def _specs():
    """(argv, expect): expect is a flag (exit 2 naming it), a tuple of acceptable flags,
    or 0 (exit 0 with a valid figure at the path that follows --out, if any)."""
    cases = []
    figs = {"phase": ["phase", "--lr", "0.5", "--condition", "1"],
            "boundary": ["boundary", "--out", "b.png"],
            "sweep": ["sweep", "--lr", "0.5", "--condition", "1", "--plot", "p.png"],
            "plot": ["plot", "result.npz"],
            "lecture": ["lecture"],
            "net phase": ["net", "phase"],
            "net eos": ["net", "eos", "--data", "sphere"],
            "net warmup": ["net", "warmup", "--data", "sphere"]}
    threads = ("phase", "boundary", "sweep", "lecture", "net phase", "net warmup")
    # the options every figure-writing command shares
    for sub, base in figs.items():
        for v in ("0", "1", "-5", "1.5", "x", "10000", "1e3", _BIG):
            cases.append((base + ["--dpi", v], "--dpi"))
        cases.append((base + ["--format", "gif"], "--format"))
        if sub in threads:
            for v in ("0", "1000", "x", _BIG):
                cases.append((base + ["--threads", v], "--threads"))
        if sub != "plot":
            for v in ("-1", "x", "1.5", _BIG):
                cases.append((base + ["--seed", v], "seed"))
    # where the figure goes
    for sub in ("phase", "boundary", "net phase", "net eos", "net warmup", "plot"):
        base = [a for a in figs[sub] if a != "b.png" and a != "--out"]
        for v in ("fifo.png", "outdir.png", "null.png", "/proc/fastgd-fuzz.png",
                  "good.npz/x.png", "x.gif", "", "full.svg"):
            cases.append((base + ["--out", v], "--out"))
    cases += [(["sweep", "--lr", "0.5", "--condition", "1", "--out", v], "--out")
              for v in ("fifo_out.npz", "dir.npz", "null.npz", "/proc/x.npz", "")]
    cases += [(figs["sweep"][:-1] + [v], "--plot") for v in ("fifo.png", "outdir.png", "x.gif")]
    cases += [(["phase", "--lr", "0.5", "--condition", "1", "--save", v], "--save")
              for v in ("fifo_out.npz", "dir.npz", "null.npz", "/proc/x.npz")]
    cases += [(["lecture", "--out", v], "--out") for v in ("good.npz", "/proc/x", "fifo.png")]
    # data files, for every command that reads --data
    bad_data = ("obj", "str", "bytes", "complex", "complexy", "timedelta", "datetime",
                "struct", "zerod", "threed", "empty", "noy", "nox", "badlen", "nan", "inf",
                "notzip", "empty_file", "truncated", "noise", "dir", "fifo", "zero",
                "urandom", "dangling", "missing", "y2d")
    for name in bad_data:
        f = f"{name}.npz"
        cases.append((["phase", "--data", f, "--lr", "0.5", "--steps", "5"], "data"))
        cases.append((["boundary", "--data", f], "data"))
        cases.append((["sweep", "--data", f, "--lr", "0.5", "--steps", "5"], "data"))
        cases.append((["net", "phase", "--data", f, "--steps", "5"], "data"))
        cases.append((["net", "eos", "--data", f, "--steps", "5"], "data"))
        cases.append((["net", "warmup", "--data", f, "--steps", "5"], "data"))
    cases += [(["phase", "--data", "bomb.npz", "--lr", "0.5", "--steps", "5"], "data"),
              (["sweep", "--data", "bomb.npz", "--lr", "0.5", "--steps", "5"], "data"),
              (["boundary", "--data", "bomb.npz"], "data"),
              (["phase", "--data", "good.txt"], "data"),
              (["net", "eos", "--data", "good.txt"], "data")]
    # spec files
    for sub in ("phase", "boundary", "sweep", "net phase", "net eos", "net warmup"):
        base = sub.split()
        for f in ("badutf8.toml", "dir.toml", "fifo.toml", "zero.toml", "huge.toml",
                  "syntax.toml", "missing.toml", "good.npz"):
            cases.append((base + ["--config", f], "--config"))
    # linear spec values
    for text, key in (("d = 0", "d"), ("d = 1", "d"), ("d = -3", "d"), ("n = 1", "n"),
                      ("n = 0", "n"), ("steps = -1", "steps"), ("steps = 1.5", "steps"),
                      ("lr = []", "lr"), ("lr = [0.0]", "lr"), ("lr = [-1.0]", "lr"),
                      ("lr = nan", "lr"), ("lr = inf", "lr"), ("lr = 'x'", "lr"),
                      ("lr = {min = 1}", "lr"), ("lr = true", "lr"),
                      ("condition = [0.5]", "condition"), ("condition = [nan]", "condition"),
                      ("method = 'adam'", "method"), ("method = 3", "method"),
                      ("fix = 'x'", "fix"), ("dtype = 'float16'", "dtype"),
                      ("backend = 'x'", "backend"), ("checkpoint = 5", "checkpoint"),
                      ("tol = nan", "tol"), ("tol = -1", "tol"), ("momentum = 2", "momentum"),
                      ("momentum = nan", "momentum"), ("lr_unit = 'x'", "lr_unit"),
                      ("transform = 'x'", "transform"), ("data = [1]", "data"),
                      ("data = 5", "data"), ("stepz = 3", "stepz"), ("seed = -1", "seed"),
                      ("blowup = -1", "blowup"), ("curve_points = -1", "curve_points"),
                      ("lanes = 0", "lanes"), ("threads = 0", "threads"),
                      ("[sweep]\nd = 0", "d")):
        spec = "lr = [0.5]\ncondition = [1.0]\n" if key not in ("lr", "condition") else ""
        if key == "condition":
            spec = "lr = [0.5]\n"
        cases.append((["sweep", "--config", _toml(spec + text)], key))
    for text, key in (("method = 'sgd'\nseeds = 0", "seeds"),
                      ("method = 'sgd'\nbatch_size = 0", "batch_size"),
                      ("method = 'sgd'\norder = 'x'", "order"),
                      ("method = 'sgd'\nepochs = -1", "epochs"),
                      ("method = 'sgd'\nsteps = 5", "steps")):
        cases.append((["sweep", "--config", _toml("lr = [0.5]\ncondition = [1.0]\n" + text)],
                      key))
    # network spec values
    for sub in ("phase", "eos", "warmup"):
        for text, key in (("d = 0", "d"), ("d = -1", "d"), ("samples = 1", "samples"),
                          ("steps = -1", "steps"), ("scale = 0", "scale"),
                          ("scale = -1", "scale"), ("scale = nan", "scale"),
                          ("scale = inf", "scale"), ("activation = 'sigmoid'", "activation"),
                          ("param = 'x'", "param"), ("data = 5", "data"),
                          ("seed = -1", "seed"), ("bias = 1", "bias"), ("what = 1", "what"),
                          ("steps = 'x'", "steps"), ("width = 0", "width"),
                          ("width = 1.5", "width"), ("width = -4", "width")):
            data = "" if sub == "phase" or key == "data" else "data = 'sphere'\n"
            cases.append((["net", sub, "--config", _toml(data + text)], key))
    for text, key in (("lr_ntk = [0.0]", "lr_ntk"), ("lr_ntk = [-1.0]", "lr_ntk"),
                      ("lr_ntk = [1e308]", "lr_ntk"), ("tol = nan", "tol"),
                      ("tol = -1", "tol"), ("momentum = 1.5", "momentum"),
                      ("momentum = nan", "momentum")):
        cases.append((["net", "phase", "--config", _toml(text)], key))
    for text, key in (("lr = [0.0]", "lr"), ("lr = [1e-320]", "lr"), ("every = 0", "every"),
                      ("optimizer = 'sgd'", "optimizer"), ("beta1 = 1.0", "beta1")):
        cases.append((["net", "eos", "--config", _toml("data = 'sphere'\n" + text)], key))
    for text, key in (("warmup = [-1]", "warmup"), ("warmup = [1.5]", "warmup"),
                      ("lr_sharp = [0.0]", "lr_sharp"), ("lr_sharp = [1e308]", "lr_sharp")):
        cases.append((["net", "warmup", "--config", _toml("data = 'sphere'\n" + text)], key))
    # numbers on the command line
    for flag, vals in (("--lr", ("nan", "inf", "-1", "0", "1e-320", "1e400", "1:2:0",
                                 "0:1:5", "x", "1,,x", "0.1:4:100000000")),
                       ("--condition", ("0.5", "nan", "-1", "0:10:3")),
                       ("--steps", (_BIG, "-1", "1.5", "x")),
                       ("--momentum", ("nan", "inf", "1", "-0.1", "x")),
                       ("--tol", ("nan", "-1", "inf")),
                       ("--n", ("0", "1", str(10**12))), ("--d", ("0", "1", str(10**9))),
                       ("--batch-size", ("0", "-1")), ("--seeds", ("0", "-1", str(10**12))),
                       ("--epochs", ("-1", _BIG))):
        for v in vals:
            argv = ["phase", "--lr", "0.5", "--condition", "1"]
            if flag in ("--batch-size", "--seeds", "--epochs"):
                argv += ["--method", "sgd"]
            cases.append((argv + [f"{flag}={v}"], flag))
    for flag, vals in (("--scale", ("0", "-1", "nan", "inf", "1e308", "1e-320")),
                       ("--lr-ntk", ("1e308", "0", "-1", "nan", "1e400")),
                       ("--width", ("0", "-1", "1.5", str(10**9))),
                       ("--samples", ("0", "1", str(10**9))), ("--steps", ("-1", _BIG)),
                       ("--d", ("0", "-1")), ("--momentum", ("nan", "1.5")),
                       ("--tol", ("nan", "-1"))):
        for v in vals:
            cases.append((["net", "phase", f"{flag}={v}"], flag))
    for flag, vals in (("--lr", ("1e-320", "0", "-1", "1e308", "nan")),
                       ("--scale", ("0", "-1", "nan")), ("--every", ("0", "-1")),
                       ("--width", ("0", str(10**9))), ("--beta1", ("1", "-0.1", "nan")),
                       ("--momentum", ("nan",))):
        for v in vals:
            argv = ["net", "eos", "--data", "sphere", f"{flag}={v}"]
            if flag == "--beta1":
                argv += ["--optimizer", "adam"]
            cases.append((argv, flag))
    for flag, vals in (("--warmup", ("-1", "1.5", "x")), ("--lr-sharp", ("0", "1e308", "nan")),
                       ("--scale", ("0", "-1")), ("--width", ("0",))):
        for v in vals:
            cases.append((["net", "warmup", "--data", "sphere", f"{flag}={v}"], flag))
    cases += _net_specs()
    # result files for `fastgd plot`
    for f in ("missing.npz", "dir.npz", "fifo.npz", "zero.npz", "urandom.npz", "notzip.npz",
              "empty_file.npz", "noise.npz", "truncated.npz", "result_truncated.npz",
              "good.npz", "bomb.npz", "dangling.npz"):
        cases.append((["plot", f], "result"))
    # calls that must succeed, with a true figure
    cases += [(["info"], 0), (["--version"], 0),
              (["plot", "result.npz", "--out", "ok1.png"], 0),
              (["plot", "result.npz", "--kind", "boundary", "--out", "ok2.png"], 0),
              (["plot", "result_noext", "--out", "ok3.svg"], 0),
              (["plot", "result.npz", "--dpi", "20", "--out", "ok4.png"], 0),
              (["plot", "result.npz", "--dpi", "100", "--out", "ok5.png"], 0)]
    return cases


def _net_specs():
    """More of ``fastgd net``: every flag of phase, eos, warmup and phase2 with bad and
    extreme values, grids and lists, data and spec files for phase2, spec keys."""
    cases = []
    eos = ["net", "eos", "--data", "sphere"]
    warm = ["net", "warmup", "--data", "sphere"]
    p2 = ["net", "phase2", "--data", "sphere", "--axis", "beta1"]
    bases = {"phase": ["net", "phase"], "eos": eos, "warmup": warm, "phase2": p2}
    # choices and the flags every network command shares
    for sub, base in bases.items():
        for flag, vals in (("--activation", ("sigmoid", "", "RELU")),
                           ("--param", ("mup", "")),
                           ("--samples", ("0", "1", "-3", "x", "1.5", _BIG)),
                           ("--steps", ("-1", "x", "1e3", _BIG)),
                           ("--data", ("", "nosuch", "diabetes.npz"))):
            for v in vals:
                cases.append((base + [f"{flag}={v}"], flag if flag != "--data" else "data"))
        if sub != "phase2":
            for v in ("0", "-1", "nan", "inf", "x", "1e400"):
                cases.append((base + [f"--scale={v}"], "--scale"))
            cases.append((base + ["--bias=1"], "--bias"))
        cases.append((base + ["--no-such-flag"], "--no-such-flag"))
        cases.append((base + ["--config", "good.npz"] if sub != "phase2" else
                      base + ["--config", "x.toml"], "--config"))
    # grids and lists
    for v in ("1:2:0", "x", "", "0.1,nan", "-0.1,0.2", "1e-320", "1e400",
              "0.1:4:100000000", "inf"):
        cases.append((["net", "phase", f"--lr-ntk={v}"], "--lr-ntk"))
        cases.append((eos + [f"--lr={v}"], "--lr"))
        cases.append((warm + [f"--lr-sharp={v}"], "--lr-sharp"))
        cases.append((p2 + [f"--lr={v}"], "--lr"))
    for v in ("0,64", "x", "", "64,-1", str(10**9), "1.5,2", "64:128:3"):
        cases.append((["net", "phase", f"--width={v}"], "--width"))
    for v in ("x", "", "1.5", "-1", str(10**9), "64,128"):
        cases.append((eos + [f"--width={v}"], "--width"))
        cases.append((warm + [f"--width={v}"], "--width"))
        cases.append((p2 + [f"--width={v}"], "--width"))
    for v in ("0,1e9", "", "x", "-5,10", "10:20:0", _BIG):
        cases.append((warm + [f"--warmup={v}"], "--warmup"))
    # eos: the sharpness estimates and the optimizer
    for flag, vals in (("--every", ("x", "1.5", _BIG)), ("--optimizer", ("sgd", "", "ADAM")),
                       ("--beta2", ("1", "-0.1", "nan", "x")), ("--tol", ("nan", "-1", "inf")),
                       ("--momentum", ("1", "-0.5", "inf"))):
        for v in vals:
            argv = eos + [f"{flag}={v}"]
            if flag == "--beta2":
                argv += ["--optimizer", "adam"]
            cases.append((argv, flag))
    cases += [(eos + ["--beta1=0.5"], "--beta1"), (eos + ["--beta2=0.5"], "--beta2"),
              (eos + ["--optimizer", "adam", "--momentum", "0.5"], ("--momentum",
                                                                    "--optimizer"))]
    # phase2: the axes, their rows and the optimizer's hyper-parameters
    for flag, vals in (("--axis", ("x", "", "lr")), ("--optimizer", ("sgd", "x")),
                       ("--beta1", ("1", "-0.1", "nan", "x")),
                       ("--beta2", ("1", "-0.1", "nan")),
                       ("--warmup", ("-1", "1.5", "x", _BIG)),
                       ("--tol", ("nan", "-1", "inf", "x")),
                       ("--threads", ("0", "x", _BIG)), ("--seed", ("-1", "x", _BIG)),
                       ("--dpi", ("0", "10000", "x")), ("--format", ("gif",))):
        for v in vals:
            argv = (p2[:4] + ["--axis", "warmup"]) if flag == "--beta1" else p2
            if flag == "--warmup":
                argv = p2
            cases.append((argv + [f"{flag}={v}"], flag if flag != "--seed" else "seed"))
    for axis, vals in (("beta1", ("1.0", "-0.5", "nan", "x", "", "0.5,1")),
                       ("warmup", ("-1", "1.5", "x", _BIG)),
                       ("width", ("0", "-4", "1.5", str(10**9), "x"))):
        for v in vals:
            cases.append((p2[:4] + ["--axis", axis, f"--values={v}"], "--values"))
    cases += [(["net", "phase2", "--data", "sphere"], "--axis"),
              (p2[:4] + ["--axis", "width", "--width", "16"], "--width"),
              (p2 + ["--beta1", "0.5"], "--beta1"),
              (p2[:4] + ["--axis", "warmup", "--warmup", "10"], "--warmup"),
              (p2 + ["--optimizer", "gd", "--beta2", "0.5"], ("--beta2", "--optimizer")),
              (p2 + ["--steps", str(10**9)], ("--steps",))]
    for name in ("obj", "str", "complex", "timedelta", "zerod", "threed", "empty", "noy",
                 "badlen", "nan", "notzip", "truncated", "dir", "fifo", "zero", "urandom",
                 "dangling", "missing", "y2d"):
        cases.append((["net", "phase2", "--axis", "beta1", "--data", f"{name}.npz"], "data"))
    for v in ("fifo.png", "outdir.png", "null.png", "/proc/fastgd-fuzz.png", "x.gif", "",
              "full.svg"):
        cases.append((p2 + ["--out", v], "--out"))
    # spec keys (TOML) of the network commands
    for sub in ("phase", "eos", "warmup"):
        data = "" if sub == "phase" else "data = 'sphere'\n"
        for text, key in (("samples = 0", "samples"), ("samples = 'x'", "samples"),
                          ("samples = 1e9", "samples"), ("steps = 1e400", "steps"),
                          ("steps = true", "steps"), ("scale = 'x'", "scale"),
                          ("scale = 1e400", "scale"), ("activation = 3", "activation"),
                          ("param = []", "param"), ("bias = 'yes'", "bias"),
                          ("seed = 1.5", "seed"), ("data = ''", "data"),
                          ("data = 'fifo.npz'", "data"), ("data = 'zero.npz'", "data"),
                          ("[net]\nwidth = 0", "width"), ("width = [0]", "width"),
                          ("width = 'x'", "width")):
            cases.append((["net", sub, "--config", _toml(
                (data if key != "data" else "") + text)], key))
    for text, key in (("lr_ntk = []", "lr_ntk"), ("lr_ntk = 'x'", "lr_ntk"),
                      ("lr_ntk = [nan]", "lr_ntk"), ("width = []", "width"),
                      ("width = [64, -1]", "width"), ("d = 1e9", "d"), ("d = 'x'", "d"),
                      ("momentum = 1", "momentum"), ("tol = 'x'", "tol")):
        cases.append((["net", "phase", "--config", _toml(text)], key))
    for text, key in (("lr = []", "lr"), ("lr = 'x'", "lr"), ("every = -1", "every"),
                      ("every = 1.5", "every"), ("beta2 = 1.0", "beta2"),
                      ("optimizer = 3", "optimizer"), ("tol = nan", "tol"),
                      ("momentum = -1", "momentum"), ("width = 0", "width")):
        cases.append((["net", "eos", "--config", _toml("data = 'sphere'\n" + text)], key))
    for text, key in (("warmup = []", "warmup"), ("warmup = 'x'", "warmup"),
                      ("warmup = [1e12]", "warmup"), ("lr_sharp = []", "lr_sharp"),
                      ("lr_sharp = 'x'", "lr_sharp"), ("lr_sharp = [nan]", "lr_sharp")):
        cases.append((["net", "warmup", "--config", _toml("data = 'sphere'\n" + text)], key))
    return cases


CASES = _specs()


# ----------------------------------------------------------------------------- the child
def _forbid_kernels():
    from fastgd.chain import kernels as kc
    from fastgd.linear import kernels as kl
    from fastgd.linear import table
    from fastgd.net import kernels as kn

    def forbidden(*args, **kwargs):
        raise AssertionError("a kernel ran before the arguments were validated")

    table.launch = forbidden
    for mod in (kl, kc, kn):
        for name in dir(mod):
            if name.startswith("grid_"):
                setattr(mod, name, forbidden)


def _vm_bytes():
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # pragma: no cover - not Linux
        pass
    return 0


def _child(argv, cwd, logdir, kernels):
    """In the forked child: run the command, its output to files; never returns."""
    rc = 99
    try:
        os.chdir(cwd)
        for fd, name in ((1, "stdout"), (2, "stderr")):
            f = os.open(logdir / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(f, fd)
            os.close(f)
        sys.stdout = open(1, "w", buffering=1, closefd=False, encoding="utf-8")
        sys.stderr = open(2, "w", buffering=1, closefd=False, encoding="utf-8")
        signal.signal(signal.SIGINT, signal.default_int_handler)
        cap = _vm_bytes() + MEMORY
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        warnings.resetwarnings()
        warnings.simplefilter("default")  # every warning shows, as for a user
        if not kernels:
            _forbid_kernels()
        try:
            rc = cli.main(argv)
        except SystemExit as exc:  # argparse's errors and --help
            rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        except BaseException:  # noqa: BLE001 - report anything as a crash
            import traceback

            traceback.print_exc()
            rc = 98
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(rc if isinstance(rc, int) else 97)


def call(argv, cwd, logdir, kernels=False, limit=LIMIT_S):
    """(exit code or 'timeout' or -signal, stdout, stderr, seconds) of one forked call."""
    sys.stdout.flush()
    sys.stderr.flush()
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        _child(argv, cwd, logdir, kernels)
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() - t0 > limit:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            status = None
            break
        time.sleep(0.002)
    secs = time.monotonic() - t0
    if status is None:
        rc = "timeout"
    elif os.WIFSIGNALED(status):
        rc = -os.WTERMSIG(status)
    else:
        rc = os.WEXITSTATUS(status)
    out = (logdir / "stdout").read_text(errors="replace")
    err = (logdir / "stderr").read_text(errors="replace")
    return rc, out, err, secs


def _resolve(argv, cwd):
    """Write the spec text of a ('toml', text) argument to a file; its name replaces it."""
    out = []
    for a in argv:
        if isinstance(a, tuple):
            name = f"spec{abs(hash(a[1])) % 10**10}.toml"
            (Path(cwd) / name).write_text(a[1])
            a = name
        out.append(a)
    return out


def _named(expect, err):
    names = (expect,) if isinstance(expect, str) else expect
    keys = set()
    for n in names:
        keys |= {n, n.lstrip("-"), n.lstrip("-").replace("-", "_")}
    return any(k in err for k in keys)


def verdict(argv, expect, rc, out, err, before, after):
    """'clean', 'crash', 'wrong accept', 'unclear' or 'wrong refusal' for one call."""
    if rc == "timeout" or not isinstance(rc, int) or rc < 0:
        return "crash"
    if "Traceback" in err or "RuntimeWarning" in err or "Warning:" in err:
        return "crash"
    if any(p.name.startswith(".tmp-") for p in after):
        return "crash"
    if "a kernel ran before" in err:
        return "wrong accept"
    if expect == 0:
        if rc != 0:
            return "wrong refusal" if rc == 2 else "crash"
        if "--out" in argv:
            p = Path(argv[argv.index("--out") + 1])
            fig = next((q for q in after if q.name == p.name), None)
            if fig is None:
                return "crash"
            data = fig.read_bytes()
            ok = data.startswith(PNG) if p.suffix == ".png" else b"<svg" in data[:2000]
            if not ok:
                return "crash"
        return "clean"
    if rc == 0:
        return "wrong accept"
    if rc != 2:
        return "crash"
    lines = err.strip().splitlines()
    if len(lines) != 1 or not _named(expect, lines[0]):
        return "unclear"
    if set(after) - set(before) - {q for q in after if q.suffix == ".toml"}:
        return "wrong accept"  # a refusal wrote something
    return "clean"


def _listing(d):
    return [p for p in Path(d).iterdir()]


def run_case(argv, expect, cwd, logdir):
    argv = _resolve(argv, cwd)
    before = _listing(cwd)
    rc, out, err, secs = call(argv, cwd, logdir, limit=LIMIT_DRAW_S if expect == 0 else LIMIT_S)
    after = _listing(cwd)
    v = verdict(argv, expect, rc, out, err, before, after)
    for p in set(after) - set(before):  # keep the folder as the next case expects it
        if p.suffix != ".toml" and p.is_file() and not p.is_symlink():
            p.unlink()
    return v, rc, err, secs


def _preload():
    """Import here, once, what the commands import (the children inherit it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401

    import fastgd.chain  # noqa: F401
    import fastgd.chain.kernels  # noqa: F401
    import fastgd.engine.executors  # noqa: F401
    import fastgd.linear.kernels  # noqa: F401
    import fastgd.linear.table  # noqa: F401
    import fastgd.net  # noqa: F401
    import fastgd.net.kernels  # noqa: F401
    import fastgd.plot  # noqa: F401
    import fastgd.theory  # noqa: F401


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    _preload()
    d = tmp_path_factory.mktemp("fuzz_cli")
    work, logs = d / "work", d / "logs"
    work.mkdir()
    logs.mkdir()
    make_files(work)
    return work, logs


def _id(argv):
    parts = [a if isinstance(a, str) else "toml:" + a[1].replace("\n", ";") for a in argv]
    return " ".join(parts)[:80]


@pytest.mark.parametrize("argv, expect", [pytest.param(a, e, id=f"{i}-{_id(a)}")
                                          for i, (a, e) in enumerate(CASES)])
def test_cli_call(folder, argv, expect):
    v, rc, err, secs = run_case(argv, expect, *folder)
    assert v == "clean", (v, rc, err, f"{secs:.2f} s")


def test_fuzz_cli_size():
    assert len(CASES) >= 300, len(CASES)
    assert sum(a[0] == "net" for a, _ in CASES) >= 300   # the network commands alone


def test_data_reads_only_the_rows_it_uses(folder):
    """The network commands read only the first --samples rows of a 256 MiB
    decompression bomb; the linear ones, which use every row, refuse it unread."""
    work, logs = folder
    from fastgd.cli.args import UsageError
    from fastgd.cli.owndata import read_data

    X, y = read_data(work / "bomb.npz", rows=16)
    assert X.shape == (16, 4) and y.shape == (16,) and X.dtype == np.float64
    with pytest.raises(UsageError, match="inflate"):
        read_data(work / "bomb.npz")
    Xf, _ = read_data(work / "fortran.npz")
    Xg, _ = read_data(work / "good.npz", rows=5)
    np.testing.assert_array_equal(Xf[:5], Xg)


def main():  # pragma: no cover - the counts for a report
    import collections
    import tempfile

    with tempfile.TemporaryDirectory() as t:
        work, logs = Path(t) / "work", Path(t) / "logs"
        work.mkdir()
        logs.mkdir()
        make_files(work)
        _preload()
        counts = collections.Counter()
        report = open(sys.argv[1] if len(sys.argv) > 1 else os.devnull, "w")
        for argv, expect in CASES:
            v, rc, err, secs = run_case(argv, expect, work, logs)
            counts[v] += 1
            if v != "clean":
                print(f"{v:14s} rc={rc} {secs:.2f}s {_id(argv)!r}: {err.strip()[-300:]!r}",
                      file=report, flush=True)
    line = f"calls {len(CASES)}: " + ", ".join(f"{k} {n}" for k, n in sorted(counts.items()))
    print(line, file=report, flush=True)
    print(line)


if __name__ == "__main__":  # pragma: no cover
    main()
