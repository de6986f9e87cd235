"""Fuzz the result files: every kind of result (linear sweep and run, chain sweep and
run, network sweep and run) read from special files (FIFOs, devices, directories, symlinks to them,
empty and truncated files), bombs (huge declared shapes and headers, decompression
bombs, tens of thousands of members, duplicate members, JSON bombs) and well-formed but
impossible contents (negative or NaN losses, lambda_min > lambda_max, shapes that
disagree with the metadata, swapped arrays, metadata of the wrong types, status codes
that disagree with ``diverged_at``, checksum mismatches), and saved to bad places.

Every call must give a truthful result (a valid file loads equal to what was saved) or
one fastgd error that names the path.  Calls run in batches in children forked from
this process (which imported fastgd and built the results), each child with an
address-space cap (``RLIMIT_AS``) of its size at the fork plus :data:`MEMORY`, each
call under a :data:`SECONDS` real-time alarm whose default action kills the child; the
parent reads the child's reports from a pipe and waits on its exit (no sleeps), and a
call that killed its child is recorded and the batch resumes after it.

``python tests/test_fuzz_files.py`` prints the counts per category.
"""

from __future__ import annotations

import dataclasses
import inspect
import io
import json
import os
import resource
import signal
import socket
import struct
import sys
import warnings
import zipfile

import numpy as np
import pytest

import fastgd as fg
from fastgd.engine import files as F

MEMORY = 512 << 20
SECONDS = 2.0
CATEGORIES = ("special", "bomb", "impossible", "save", "valid")


# ------------------------------------------------------------------- the results
def results():
    """One small result of every kind (name -> object)."""
    from fastgd import chain as ch
    from fastgd import net as fn

    X = np.linspace(-1, 1, 6)[:, None]
    y = 0.5 * X[:, 0]
    out = {
        "linear": fg.sweep("sgd", lr=[0.1, 0.5, 3.0], condition=[1.0, 10.0], epochs=5,
                           seeds=2, curve_points=3, progress=False, weights=True),
        "chain": ch.chain_sweep([[0.5, 0.5], [2.0, 1.5]], [0.1, 1.0, 3.0], 300,
                                progress=False),
    }
    if hasattr(fn.NetSweepResult, "save"):
        out["net_sweep"] = fn.net_sweep(X, y, [1.0, 6.0, 20.0], 50, width=[4, 8],
                                        activation="identity", sharpness_every=10)
        out["net_run"] = fn.net_gd(X, y, 0.05, 30, width=3, sharpness_every=10,
                                   record=True, optimizer="adam", bias=True)
    if hasattr(fg.Run, "save"):
        out["linear_run"] = fg.gd(*fg.lecture_data(), lr=1.5, steps=100, record=True)
    if hasattr(ch.ChainRun, "save"):
        out["chain_run"] = ch.chain_gd([0.5, 0.5], 0.1, 300, x=[1.0, 2.0], y=[1.0, 2.5],
                                       record=True)
    return out


def same(a, b):
    """Every array bit-identical (dtype, shape, bytes), every other attribute equal
    (``meta`` as JSON holds it: arrays become lists)."""
    if type(a) is not type(b):
        return False
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            if not (isinstance(x, np.ndarray) and isinstance(y, np.ndarray)
                    and x.dtype == y.dtype and x.shape == y.shape
                    and x.tobytes() == y.tobytes()):
                return False
        elif f.name == "meta":
            if json.loads(json.dumps(x, default=F.json_default)) != y:
                return False
        elif not (x == y or (x != x and y != y)):
            return False
    return True


# ------------------------------------------------------- taking files apart
def parts(path):
    """(arrays, head) of a saved file, read without fastgd."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return arrays, json.loads(str(arrays.pop("_json")))


def npy(a):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asanyarray(a), allow_pickle=False)
    return buf.getvalue()


def reseal(arrays, head):
    """The checksum of the code under test (arrays and metadata, or arrays only)."""
    head = {k: v for k, v in head.items() if k != "sha256"}
    if "head" in inspect.signature(F.checksum).parameters:
        return dict(head, sha256=F.checksum(arrays, json.loads(json.dumps(head))))
    return dict(head, sha256=F.checksum(arrays))


def pack(path, arrays, head, *, seal=True, raw=None, text=None):
    """Write a file: arrays (``raw``: member name -> bytes, added as they are), the
    metadata (resealed unless ``seal=False``; ``text``: the JSON text itself)."""
    head = reseal(arrays, head) if seal else head
    members = {f"{k}.npy": npy(v) for k, v in arrays.items()}
    members["_json.npy"] = npy(np.array(text if text is not None else json.dumps(head)))
    members.update(raw or {})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return str(path)


def header_only(shape, dtype="<f8", version=(1, 0), tail=b""):
    buf = io.BytesIO()
    d = {"descr": dtype, "fortran_order": False, "shape": shape}
    if version == (1, 0):
        np.lib.format.write_array_header_1_0(buf, d)
    else:
        np.lib.format.write_array_header_2_0(buf, d)
    return buf.getvalue() + tail


def deflate_bomb(path, arrays, head, name, shape, fill=0.0):
    """``name`` as a member of ``shape`` float64 equal to ``fill``, streamed through
    zlib in chunks (hundreds of MiB from a few hundred KiB), the rest as usual."""
    pack(path, arrays, head)
    hdr = header_only(shape)
    n = int(np.prod(shape)) * 8
    chunk = np.full(1 << 17, fill).tobytes() * 8
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        with zf.open(f"{name}.npy", "w", force_zip64=True) as fh:
            fh.write(hdr)
            while n > 0:
                fh.write(chunk[: min(n, len(chunk))])
                n -= len(chunk)


def patch_sizes(path, member, size):
    """Make the central directory declare ``size`` uncompressed bytes for ``member``."""
    raw = bytearray(open(path, "rb").read())
    pos = raw.find(b"PK\x01\x02")
    while pos >= 0:
        n = struct.unpack_from("<H", raw, pos + 28)[0]
        if raw[pos + 46:pos + 46 + n].decode() == member:
            struct.pack_into("<I", raw, pos + 24, size)
        pos = raw.find(b"PK\x01\x02", pos + 46)
    open(path, "wb").write(bytes(raw))


def many_members(path, n, name=None):
    """A zip of ``n`` empty stored members (all called ``name`` when given: duplicates),
    its bytes packed directly (``zipfile`` takes quadratic time to write duplicates)."""
    local, central, off = [], [], 0
    for k in range(n):
        nm = (name or f"m{k}.npy").encode()
        head = struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 0, 0, 33, 0, 0, 0,
                           len(nm), 0) + nm
        central.append(struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, 0, 0, 0,
                                   33, 0, 0, 0, len(nm), 0, 0, 0, 0, 0, off) + nm)
        local.append(head)
        off += len(head)
    cd = b"".join(central)
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, n, n, len(cd), off, 0)
    open(path, "wb").write(b"".join(local) + cd + end)
    return str(path)


def zip64_claim(path, n):
    """An empty zip whose zip64 end record claims ``n`` members."""
    eocd64 = struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, n, n, 46 * n, 0)
    loc = struct.pack("<4sIQI", b"PK\x06\x07", 0, 0, 1)
    eocd = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF,
                       0xFFFFFFFF, 0)
    open(path, "wb").write(eocd64 + loc + eocd)
    return str(path)


# ------------------------------------------------------------------ the cases
def _set(key, f):
    def change(a, h):
        a[key] = f(a[key]) if callable(f) else f
    return change


def _meta(f):
    def change(a, h):
        f(h)
    return change


def _first(value):
    """Set the first element of the array (as a copy)."""
    def f(v):
        v = v.copy()
        v.flat[0] = value
        return v
    return f


def _cells(st_key, div_key, status, div):
    """One cell with this status code and diverged_at."""
    def change(a, h):
        a[st_key] = a[st_key].copy()
        a[div_key] = a[div_key].copy()
        a[st_key].flat[0] = status
        a[div_key].flat[0] = div
    return change


def _swap(k1, k2):
    def change(a, h):
        a[k1], a[k2] = a[k2].copy(), a[k1].copy()
    return change


# what every kind's file holds, by role
ROLES = {
    "linear": dict(status="status", div="diverged_at", tol="steps_to_tol",
                   loss="final_loss", lr="lr", dim="weights", pos="lambda_max",
                   meta_key="method", same_shape=("final_loss", "curves")),
    "chain": dict(status="status", div="diverged_at", tol="steps_to_tol", loss="loss",
                  lr="lr", dim="w", pos="loss0", meta_key="depth",
                  same_shape=("loss", "sharpness")),
    "net_sweep": dict(status="status", div="diverged_at", tol="steps_to_tol", loss="loss",
                      lr="lr", dim="sharpness_curve", pos="loss0", meta_key="activation",
                      same_shape=("loss", "sharpness")),
    "net_run": dict(status=None, div=None, tol=None, loss="losses", lr=None, dim="theta",
                    pos="losses", meta_key="activation",
                    same_shape=("sharpnesses", "preconditioned_sharpnesses")),
    "linear_run": dict(status=None, div=None, tol=None, loss="losses", lr=None, dim="w",
                       pos="losses", meta_key="method", same_shape=("w", "w_star")),
    "chain_run": dict(status=None, div=None, tol=None, loss="losses", lr=None, dim="w",
                      pos="sharpnesses", meta_key="method",
                      same_shape=("losses", "sharpnesses")),
}


def impossible(kind):
    """(name, change(arrays, head)) of well-formed but impossible files (resealed)."""
    r = ROLES[kind]
    out = [
        ("loss negative", _set(r["loss"], _first(-1.0))),
        ("loss NaN", _set(r["loss"], _first(np.nan))),
        (f"{r['pos']} negative", _set(r["pos"], _first(-2.0))),
        (f"{r['pos']} NaN", _set(r["pos"], _first(np.nan))),
        ("last axis longer", _set(r["dim"], lambda v: np.concatenate([v, v], axis=-1))),
        ("last axis shorter", _set(r["dim"], lambda v: v[..., :1])),
        ("sha256 missing", _meta(lambda h: h.pop("sha256"))),
        ("format missing", _meta(lambda h: h.pop("format"))),
        ("format other", _meta(lambda h: h.update(format="fastgd-other-1"))),
        ("meta key null", _meta(lambda h: h.update({r["meta_key"]: None}))),
        ("meta key list", _meta(lambda h: h.update({r["meta_key"]: [1]}))),
        ("meta key int", _meta(lambda h: h.update({r["meta_key"]: 7}))),
        ("meta key bool", _meta(lambda h: h.update({r["meta_key"]: True}))),
        ("meta key huge string", _meta(lambda h: h.update({r["meta_key"]: "x" * 100000}))),
        ("JSON is a list", "[1, 2]"),
        ("JSON not JSON", "{not json"),
        ("JSON nesting bomb", "[" * 100_000 + "]" * 100_000),
        ("JSON object bomb", '{"a":' * 50_000 + "1" + "}" * 50_000),
        ("extra metadata", _meta(lambda h: h.update(evil=1))),
    ]
    if r["status"]:
        out += [
            ("status code 3", _set(r["status"], _first(3))),
            ("status code -5", _set(r["status"], _first(-5))),
            ("status code 100", _set(r["status"], _first(100))),
            ("status int64 2**40", _set(r["status"], lambda v: np.full(v.shape, 2**40))),
            ("DIVERGED without step", _cells(r["status"], r["div"], 2, -1)),
            ("BOUNDED with a step", _cells(r["status"], r["div"], 0, 3)),
            ("CONVERGED without tol", _cells(r["status"], r["tol"], 1, -1)),
            ("diverged_at below -1", _set(r["div"], _first(-7))),
            ("steps beyond the budget", _cells(r["status"], r["div"], 2, 10**9)),
            ("BOUNDED with inf loss", lambda a, h: (_cells(r["status"], r["div"], 0, -1)(a, h),
                                                    _set(r["loss"], _first(np.inf))(a, h))),
            ("lr negative", _set(r["lr"], _first(-0.5))),
            ("lr NaN", _set(r["lr"], _first(np.nan))),
            ("lr zero", _set(r["lr"], _first(0.0))),
            ("status float", _set(r["status"], lambda v: v.astype(float))),
            ("status 1 more axis", _set(r["status"], lambda v: v[..., None])),
            ("lr one more", _set(r["lr"], lambda v: np.append(v, 1.0))),
        ]
    else:
        out += [
            ("status code 3", _meta(lambda h: h.update(status=3))),
            ("status a string", _meta(lambda h: h.update(status="CONVERGED"))),
            ("DIVERGED without step", _meta(lambda h: h.update(status=2, diverged_at=-1))),
            ("BOUNDED with a step", _meta(lambda h: h.update(status=0, diverged_at=3))),
            ("CONVERGED without tol", _meta(lambda h: h.update(status=1, steps_to_tol=-1))),
            ("step beyond the losses", _meta(lambda h: h.update(diverged_at=10**6))),
            ("lr negative", _meta(lambda h: h.update(lr=-1.0))),
            ("lr NaN", _meta(lambda h: h.update(lr=float("nan")))),
            ("lr a string", _meta(lambda h: h.update(lr="0.1"))),
            ("unit for sgd", _meta(lambda h: h.update(unit="epoch"))),
            ("trajectory other N", _set("trajectory", lambda v: v[:, :1])),
            ("trajectory one row less", _set("trajectory", lambda v: v[:-1])),
            ("losses empty", _set("losses", lambda v: v[:0])),
            ("losses 2-D", _set("losses", lambda v: v[None])),
            ("loss NaN (metadata)", _meta(lambda h: h.update(loss=float("nan")))),
            ("loss inf, not diverged", _meta(lambda h: h.update(loss=float("inf")))),
            ("status a float", _meta(lambda h: h.update(status=1.0))),
            ("steps_to_tol null", _meta(lambda h: h.update(steps_to_tol=None))),
        ]
    if kind in ("linear_run", "chain_run"):  # the end step fixes the number of losses
        out += [("losses one more", _set("losses", lambda v: np.append(v, v[-1]))),
                ("losses inf, not diverged", _set("losses", _first(np.inf))),
                ("status NOT_RUN", _meta(lambda h: h.update(status=-1)))]
    if kind == "net_run":  # losses may be recorded every k steps: no length rule
        out += [("losses inf, not diverged", _set("losses", _first(np.inf))),
                ("status NOT_RUN", _meta(lambda h: h.update(status=-1)))]
    if kind == "net_run":
        out += [("width 0", _meta(lambda h: h.update(width=0))),
                ("width wrong", _meta(lambda h: h.update(width=h["width"] + 1))),
                ("d wrong", _meta(lambda h: h.update(d=h["d"] + 2))),
                ("optim a list", _meta(lambda h: h.update(optim=[1, 2]))),
                ("activation unknown", _meta(lambda h: h.update(activation="sigmoid")))]
    if kind == "linear_run":
        out += [("growing on a CONVERGED run", _meta(lambda h: h.update(growing=True))),
                ("growing an int", _meta(lambda h: h.update(growing=1))),
                ("w_star NaN", _set("w_star", _first(np.nan))),
                ("w_star other d", _set("w_star", lambda v: np.append(v, 1.0))),
                ("loss_star negative", _meta(lambda h: h.update(loss_star=-1.0))),
                ("loss_star inf", _meta(lambda h: h.update(loss_star=float("inf")))),
                ("excess NaN", _meta(lambda h: h.update(excess=float("nan")))),
                ("method adam", _meta(lambda h: h.update(method="adam"))),
                ("optimizer on a plain run", _meta(lambda h: h.update(optimizer="adam"))),
                ("adaptive format, no optimizer",
                 _meta(lambda h: h.update(format="fastgd-adaptive-run-1")))]
    if kind == "chain_run":
        out += [("depth 1", lambda a, h: (_set("w", lambda v: v[:1])(a, h),
                                          _set("trajectory", lambda v: v[:, :1])(a, h))),
                ("sharpnesses without trajectory", lambda a, h: a.pop("trajectory")),
                ("trajectory without sharpnesses", lambda a, h: a.pop("sharpnesses")),
                ("sharpnesses one more", _set("sharpnesses", lambda v: np.append(v, 1.0))),
                ("sharpness negative", _meta(lambda h: h.update(sharpness=-1.0))),
                ("ntk0 NaN", _meta(lambda h: h.update(ntk0=float("nan")))),
                ("lambda0 negative", _meta(lambda h: h.update(lambda0=-3.0))),
                ("max_loss_ratio NaN", _meta(lambda h: h.update(max_loss_ratio=float("nan")))),
                ("loss0 negative", _meta(lambda h: h.update(loss0=-1.0))),
                ("loss_scale 0", _meta(lambda h: h.update(loss_scale=0.0))),
                ("loss_scale inf", _meta(lambda h: h.update(loss_scale=float("inf")))),
                ("excess NaN", _meta(lambda h: h.update(excess=float("nan")))),
                ("method adam", _meta(lambda h: h.update(method="adam"))),
                ("depth in metadata", _meta(lambda h: h.update(depth=2)))]
    if kind == "linear":
        out += [
            ("lambda_min > lambda_max", _set("lambda_min", lambda v: v + 1e3)),
            ("names null", _meta(lambda h: h.update(names=None))),
            ("names a dict", _meta(lambda h: h.update(names={"a": 1}))),
            ("names ints", _meta(lambda h: h.update(names=[1, 2]))),
            ("names one too many", _meta(lambda h: h.update(names=h["names"] + ["x"]))),
            ("name of 2 MB", _meta(lambda h: h.update(names=["x" * (2 << 20), "y"]))),
            ("meta.spec a list", _meta(lambda h: h["meta"].update(spec=[1, 2]))),
            ("meta a list", _meta(lambda h: h.update(meta=[1]))),
            ("meta.spec.w0 other d", _meta(lambda h: h["meta"]["spec"].update(w0=[0.0]))),
            ("lr_unit unknown", _meta(lambda h: h.update(lr_unit="hour"))),
            ("growing on a DIVERGED cell", _set("growing", lambda v: np.ones_like(v))),
        ]
    if kind == "chain":
        out += [("depth wrong", _meta(lambda h: h.update(depth=h["depth"] + 1))),
                ("depth 2.5", _meta(lambda h: h.update(depth=2.5))),
                ("meta a list", _meta(lambda h: h.update(meta=[1])))]
    if kind == "net_sweep":
        out += [("width 0", _set("width", _first(0))),
                ("lr_unit unknown", _meta(lambda h: h.update(lr_unit="hour"))),
                ("optim a string", _meta(lambda h: h.update(optim="adam")))]
    return out


def _special(tmp, saved):
    """(name, path) of special files; the loader must refuse each cleanly."""
    d = tmp / "special"
    d.mkdir()
    fifo = d / "fifo.npz"
    os.mkfifo(fifo)
    os.mkfifo(d / "fifo_noext")
    for name, target in (("zero.npz", "/dev/zero"), ("urandom.npz", "/dev/urandom"),
                         ("null.npz", "/dev/null"), ("tofifo.npz", str(fifo)),
                         ("dangling.npz", str(d / "nothing"))):
        os.symlink(target, d / name)
    os.symlink(d / "loop2.npz", d / "loop1.npz")
    os.symlink(d / "loop1.npz", d / "loop2.npz")
    (d / "dir.npz").mkdir()
    (d / "empty.npz").write_bytes(b"")
    (d / "one.npz").write_bytes(b"P")
    (d / "text.npz").write_text("hello, not a zip")
    (d / "eocd_only.npz").write_bytes(b"PK\x05\x06" + bytes(18))
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(d / "sock.npz"))
    out = [("FIFO", fifo), ("FIFO without .npz", d / "fifo_noext"),
           ("/dev/zero", "/dev/zero"), ("/dev/urandom", "/dev/urandom"),
           ("/dev/null", "/dev/null"), ("/dev/stdin", "/dev/stdin"),
           ("symlink to /dev/zero", d / "zero.npz"),
           ("symlink to /dev/urandom", d / "urandom.npz"),
           ("symlink to /dev/null", d / "null.npz"), ("symlink to a FIFO", d / "tofifo.npz"),
           ("dangling symlink", d / "dangling.npz"), ("symlink loop", d / "loop1.npz"),
           ("directory", d / "dir.npz"), ("directory as given", d), ("missing", d / "none"),
           ("empty", d / "empty.npz"), ("one byte", d / "one.npz"), ("text", d / "text.npz"),
           ("end record only", d / "eocd_only.npz"), ("socket", d / "sock.npz"),
           ("/proc/self/mem", "/proc/self/mem")]
    return [(n, str(p)) for n, p in out], sock


def _truncations(kind, path, tmp):
    raw = open(path, "rb").read()
    out = []
    for k, frac in enumerate((0.0, 0.02, 0.1, 0.25, 0.5, 0.75, 0.9, 0.98, 0.999)):
        p = tmp / f"{kind}_cut{k}.npz"
        p.write_bytes(raw[: int(len(raw) * frac) or 4])
        out.append((f"cut at {frac:.1%}", str(p)))
    b = bytearray(raw)
    for k in range(60, 90):
        b[k] ^= 0xFF
    (tmp / f"{kind}_flip.npz").write_bytes(bytes(b))
    out.append(("bytes flipped", str(tmp / f"{kind}_flip.npz")))
    return out


def _bombs(kind, path, tmp):
    """(name, path) of bombs built from a valid file of ``kind``."""
    a, h = parts(path)
    r = ROLES[kind]
    dim, loss = r["dim"], r["loss"]
    big = (1 << 22) // int(np.prod(a[dim].shape[:-1]) or 1)  # 32 MiB as float64
    out = []

    def p(name):
        return str(tmp / f"{kind}_{name}.npz")

    out.append(("header claims 1e12", pack(p("h12"), {k: v for k, v in a.items() if k != loss},
                                           h, raw={f"{loss}.npy": header_only((10**12,))})))
    out.append(("header claims 2**62 (v2)", pack(p("h62"), {k: v for k, v in a.items()
                                                            if k != loss},
                                                 h, raw={f"{loss}.npy": header_only(
                                                     (2**62,), version=(2, 0))})))
    hl = b"\x93NUMPY\x02\x00" + struct.pack("<I", 0xFFFFFFF0) + b"{" * 64
    out.append(("header length 4 GiB", pack(p("hlen"), {k: v for k, v in a.items()
                                                        if k != loss},
                                            h, raw={f"{loss}.npy": hl})))
    q = pack(p("size"), a, h)
    patch_sizes(q, f"{loss}.npy", 3 << 30)
    out.append(("declared 3 GiB uncompressed", q))
    shape = a[dim].shape[:-1] + (big,)
    deflate_bomb(p("dimbomb"), {k: v for k, v in a.items() if k != dim}, h, dim, shape)
    out.append(("32 MiB deflate bomb, wrong last axis", p("dimbomb")))
    free = "curves" if kind == "linear" else "sharpness_curve" if kind == "net_sweep" \
        else loss
    claim = (1 << 27) // max(1, int(np.prod(a[free].shape[:-1])))
    out.append(("member claims 1 GiB, holds 1 KiB", pack(
        p("short"), {k: v for k, v in a.items() if k != free}, h,
        raw={f"{free}.npy": header_only(a[free].shape[:-1] + (claim,), tail=bytes(1024))})))
    shared = tmp / "shared"
    if not shared.exists():  # the same for every kind
        shared.mkdir()
        many_members(shared / "many.npz", 60_000)
        many_members(shared / "seventy.npz", 70)
        many_members(shared / "dups.npz", 5_000, name="lr.npy")
    out += [("60,000 empty members", str(shared / "many.npz")),
            ("70 members", str(shared / "seventy.npz")),
            ("5,000 duplicates", str(shared / "dups.npz"))]
    dup = pack(p("dup2"), a, h)
    with zipfile.ZipFile(dup, "a") as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        zf.writestr(f"{loss}.npy", npy(a[loss]))
    out.append(("one duplicate member", dup))
    out.append(("zip64 claims 2**40 members", zip64_claim(p("z64"), 1 << 40)))
    out.append(("JSON of 100 M characters declared", pack(
        p("jbomb"), a, h, raw={"_json.npy": header_only((), dtype="<U100000000")})))
    out.append(("JSON of 4 MB", pack(p("jbig"), a, h, text=json.dumps(
        dict(reseal(a, h), pad="x" * (4 << 20))))))
    out.append(("object array (pickle)", pack(p("pickle"), {k: v for k, v in a.items()
                                                            if k != loss}, h, raw={
        f"{loss}.npy": header_only((1,), dtype="|O", tail=b"\x80\x04K\x01.")})))
    return out


def build(tmp, saved):
    """Every case: dict(kind, category, name, call, arg, expect)."""
    cases = []

    def add(kind, cat, name, call, arg, expect="error"):
        cases.append(dict(kind=kind, category=cat, name=name, call=call, arg=str(arg),
                          expect=expect))

    specials, sock = _special(tmp, saved)
    loaders = ["load"] + (["chain_load"] if "chain" in saved else [])
    for kind in saved:
        for name, p in specials:
            call = "chain_load" if kind == "chain" else "load"
            add(kind, "special", name, call, p)
    for kind, (res, path) in saved.items():
        call = "chain_load" if kind == "chain" else "load"
        add(kind, "valid", "as saved", "load", path, expect="ok")
        add(kind, "valid", "without .npz", "load", path[:-4], expect="ok")
        for name, p in _truncations(kind, path, tmp):
            add(kind, "special", name, call, p)
        for name, p in _bombs(kind, path, tmp):
            add(kind, "bomb", name, call, p)
        add(kind, "bomb", "max_bytes 1000", call + ":max_bytes=1000", path)
        a, h = parts(path)
        for k, (name, change) in enumerate(impossible(kind)):
            p = tmp / f"{kind}_imp{k}.npz"
            a2 = {x: v.copy() for x, v in a.items()}
            h2 = json.loads(json.dumps(h))
            if isinstance(change, str):
                pack(p, a2, h2, text=change)
            else:
                change(a2, h2)
                pack(p, a2, h2, seal=name != "sha256 missing")
            add(kind, "impossible", name, call, p)
        r = ROLES[kind]
        for k, (name, change) in enumerate([
                ("byte flipped, old checksum", _set(r["loss"], lambda v: v[::-1].copy())),
                ("arrays swapped, old checksum", _swap(*r["same_shape"])),
                ("checksum of another file", None), ("checksum an int", None)]):
            p = tmp / f"{kind}_sum{k}.npz"
            a2, h2 = {x: v.copy() for x, v in a.items()}, json.loads(json.dumps(h))
            if change is not None:
                change(a2, h2)
            elif name.endswith("int"):
                h2["sha256"] = 12345
            else:
                h2["sha256"] = F.checksum({"x": np.zeros(3)})
            pack(p, a2, h2, seal=False)
            add(kind, "impossible", name, call, p)
        for name, arg in (("into a directory", tmp / "special" / "dir.npz"),
                          ("into a missing folder", tmp / "no" / "such" / "x.npz"),
                          ("empty path", ""), ("NUL in path", "a\0b.npz"),
                          ("None", None), ("over a FIFO", tmp / f"{kind}_fifo.npz"),
                          ("over a good file", tmp / f"{kind}_over.npz"),
                          ("under /proc", "/proc/self/x.npz")):
            if name == "over a FIFO":
                os.mkfifo(arg)
            if name == "over a good file":
                res.save(arg)
            ok = name in ("over a FIFO", "over a good file")
            add(kind, "save", name, "save", arg if arg is not None else "None",
                expect="ok" if ok else "error")
        if kind == "linear":
            add(kind, "save", "a name of 2 MB", "save_longname", tmp / "long.npz")
    del loaders
    return cases, sock


# -------------------------------------------------------------------- running
def one(case, saved):
    """Outcome of one case in the child: (verdict, detail)."""
    kind, call, arg = case["kind"], case["call"], case["arg"]
    res = saved[kind][0]
    try:
        if call.startswith("save"):
            if call == "save_longname":
                res = dataclasses.replace(res, names=("x" * (2 << 20), "y"))
            target = None if arg == "None" else arg
            out = fg.load(res.save(target)) if target is not None else res.save(None)
        else:
            kw = {"max_bytes": 1000} if call.endswith(":max_bytes=1000") else {}
            fn = fg.chain.chain_load if call.startswith("chain_load") else fg.load
            out = fn(arg, **kw)
    except (fg.FastGDValueError, fg.FastGDTypeError) as exc:
        msg = str(exc)
        if case["expect"] == "ok":
            return "wrong", f"refused a valid file: {msg[:200]}"
        named = arg == "None" or repr(arg)[1:-1][:40] in msg or arg[:40] in msg
        return ("clean" if named else "unclear"), msg[:200]
    except BaseException as exc:  # noqa: BLE001 - everything else is a crash
        return "crash", f"{type(exc).__name__}: {str(exc)[:200]}"
    if case["expect"] == "ok":
        return ("clean", "") if same(res, out) else ("wrong", "loaded but not equal")
    return "wrong", f"accepted: {type(out).__name__}"


def _child(cases, start, saved, wfd):
    """In the forked child: run cases[start:], one report line per case; never returns."""
    try:
        with open("/proc/self/status") as fh:
            vm = int(fh.read().split("VmSize:")[1].split()[0]) << 10
        resource.setrlimit(resource.RLIMIT_AS, (vm + MEMORY, vm + MEMORY))
        signal.signal(signal.SIGALRM, signal.SIG_DFL)  # the alarm kills the child
        for j in range(start, len(cases)):
            os.write(wfd, f"S {j}\n".encode())
            signal.setitimer(signal.ITIMER_REAL, SECONDS)
            verdict, detail = one(cases[j], saved)
            signal.setitimer(signal.ITIMER_REAL, 0)
            line = json.dumps([j, verdict, detail]).encode()
            os.write(wfd, b"R " + line + b"\n")
    finally:
        os._exit(0)


def run(cases, saved):
    """Run every case (batches in forked children); returns one (verdict, detail) per
    case."""
    out = [None] * len(cases)
    start = 0
    while start < len(cases):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            os.close(r)
            _child(cases, start, saved, w)
        os.close(w)
        with os.fdopen(r, "rb") as fh:
            lines = fh.read().decode().splitlines()
        _, status = os.waitpid(pid, 0)
        last = start - 1
        for line in lines:
            if line.startswith("S "):
                last = int(line[2:])
            elif line.startswith("R "):
                j, verdict, detail = json.loads(line[2:])
                out[j] = (verdict, detail)
        if last >= start and out[last] is None:
            sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
            why = {signal.SIGALRM: f"over {SECONDS} s"}.get(sig, f"child ended ({status})")
            out[last] = ("crash", why)
        start = max(last + 1, start + 1)
    return out


def tally(cases, out):
    """{category: {calls, clean, crash, wrong, unclear}} and the failures."""
    table, bad = {}, []
    for c, (verdict, detail) in zip(cases, out, strict=True):
        row = table.setdefault(c["category"], dict(calls=0, clean=0, crash=0, wrong=0,
                                                    unclear=0))
        row["calls"] += 1
        row[verdict] += 1
        if verdict != "clean":
            bad.append(f"{c['kind']}/{c['category']}/{c['name']}: {verdict}: {detail}")
    return table, bad


def fuzz(tmp):
    saved = {}
    for kind, res in results().items():
        saved[kind] = (res, res.save(tmp / f"{kind}.npz"))
    cases, sock = build(tmp, saved)
    try:
        out = run(cases, saved)
    finally:
        sock.close()
    return cases, out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork, FIFOs, /proc")
def test_files_fuzz(tmp_path):
    cases, out = fuzz(tmp_path)
    table, bad = tally(cases, out)
    print(json.dumps(table, indent=1))
    assert len(cases) >= 300
    assert {c["kind"] for c in cases} >= {"linear", "chain", "net_sweep", "net_run",
                                          "linear_run", "chain_run"}
    assert not bad, "\n".join(bad)


if __name__ == "__main__":  # counts per category (and the failures) for the report
    import pathlib
    import tempfile

    cases, out = fuzz(pathlib.Path(tempfile.mkdtemp()))
    table, bad = tally(cases, out)
    kinds = {}
    for c, (verdict, _) in zip(cases, out, strict=True):
        row = kinds.setdefault(c["kind"], dict(calls=0, clean=0, crash=0, wrong=0, unclear=0))
        row["calls"] += 1
        row[verdict] += 1
    print(json.dumps({"by category": table, "by kind": kinds}, indent=1))
    print("\n".join(bad))
