"""Result files: ``fastgd.load`` reads a valid file bit for bit and turns every damaged
or hostile file into one ``FastGDValueError`` naming ``path`` (never a raw BadZipFile,
JSONDecodeError, KeyError, RecursionError, and never an unpickle or a large allocation);
``save`` and ``load`` agree on the ``.npz`` extension; None is refused cleanly."""

from __future__ import annotations

import io
import json
import os
import struct
import tracemalloc
import zipfile

import numpy as np
import pytest

import fastgd as fg


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    res = fg.sweep("sgd", lr=[0.1, 0.5, 3.0], condition=[1.0, 10.0], epochs=5, seeds=2,
                   curve_points=3, progress=False)
    path = res.save(tmp_path_factory.mktemp("f") / "ok")
    return res, path


def _parts(path):
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays.pop("_json")))
    return arrays, meta


def _npy(a, allow_pickle=False):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asanyarray(a), allow_pickle=allow_pickle)
    return buf.getvalue()


def _zip(path, members):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def _write(path, arrays, meta=None, json_text=None, extra=None):
    members = {f"{k}.npy": _npy(v) for k, v in arrays.items()}
    if json_text is None and meta is not None:
        json_text = json.dumps(meta)
    if json_text is not None:
        members["_json.npy"] = _npy(np.array(json_text))
    members.update(extra or {})
    _zip(path, members)


def _set(key, value):
    def f(a, m):
        a[key] = value(a[key]) if callable(value) else value
    return f


def _drop(key):
    def f(a, m):
        a.pop(key)
    return f


def _meta(fn):
    def f(a, m):
        fn(m)
    return f


def _huge_header(a, m):  # header claims 1e9 float64 for 3 rates: 8 GB from a 1 kB file
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False,
                                               "shape": (10**9,)})
    a["__raw__lr.npy"] = buf.getvalue() + np.ones(3).tobytes()


TAMPER = [
    ("status 2-D", _set("status", lambda s: s[:, :, 0])),
    ("status 4-D", _set("status", lambda s: s[..., None])),
    ("status NaN (float)", _set("status", lambda s: np.where(s == 1, np.nan, s * 1.0))),
    ("status float, no NaN", _set("status", lambda s: s * 1.0)),
    ("status code 3", _set("status", lambda s: np.where(s == s.flat[0], 3, s).astype(s.dtype))),
    ("status code -2", _set("status", lambda s: np.full_like(s, -2))),
    ("status code 2**40", _set("status", lambda s: np.full(s.shape, 2**40))),
    ("status strings", _set("status", lambda s: s.astype("U3"))),
    ("lr one too long", _set("lr", lambda v: np.append(v, 4.0))),
    ("lr one too short", _set("lr", lambda v: v[:-1])),
    ("lr 2-D", _set("lr", lambda v: v[None])),
    ("lr negative", _set("lr", lambda v: -v)),
    ("lr NaN", _set("lr", lambda v: np.where(v > 1, np.nan, v))),
    ("lr ints", _set("lr", lambda v: np.arange(v.size))),
    ("lambda_max negative", _set("lambda_max", lambda v: -v)),
    ("lambda_max NaN", _set("lambda_max", lambda v: v * np.nan)),
    ("lambda_max wrong length", _set("lambda_max", lambda v: v[:1])),
    ("lambda_min NaN", _set("lambda_min", lambda v: v * np.nan)),
    ("condition NaN", _set("condition", lambda v: v * np.nan)),
    ("seeds wrong length", _set("seeds", lambda v: v[:1])),
    ("seeds negative", _set("seeds", lambda v: -v - 1)),
    ("final_loss wrong shape", _set("final_loss", lambda v: v[:1])),
    ("steps_to_tol float", _set("steps_to_tol", lambda v: v * 1.0)),
    ("curves wrong shape", _set("curves", lambda v: v[..., :2])),
    ("curves without curve_t", _drop("curve_t")),
    ("curve_t without curves", _drop("curves")),
    ("missing status", _drop("status")),
    ("missing lr", _drop("lr")),
    ("missing lambda_max", _drop("lambda_max")),
    ("missing diverged_at", _drop("diverged_at")),
    ("missing _json", "no json"),
    ("extra member", _set("evil", np.zeros(3))),
    ("object array (a pickle)", "pickle"),
    ("header claims 8 GB", _huge_header),
    ("JSON not JSON", "{not json"),
    ("JSON an array", "[1, 2]"),
    ("JSON recursion bomb", "[" * 200_000 + "]" * 200_000),
    ("JSON object bomb", '{"a":' * 100_000 + "1" + "}" * 100_000),
    ("JSON wrong format", _meta(lambda m: m.update(format="fastgd-sweep-0"))),
    ("JSON no format", _meta(lambda m: m.pop("format"))),
    ("JSON no method", _meta(lambda m: m.pop("method"))),
    ("JSON method adam", _meta(lambda m: m.update(method="adam"))),
    ("JSON unit hour", _meta(lambda m: m.update(unit="hour"))),
    ("JSON meta a list", _meta(lambda m: m.update(meta=[1]))),
    ("JSON huge", "x"),
    ("_json an integer", "int json"),
]


def _build(path, saved_path, change):
    arrays, meta = _parts(saved_path)
    extra = {}
    if change == "no json":
        _write(path, arrays)
    elif change == "pickle":
        members = {f"{k}.npy": _npy(v) for k, v in arrays.items()}
        members["status.npy"] = _npy(np.array([{"x": 1}], dtype=object), allow_pickle=True)
        members["_json.npy"] = _npy(np.array(json.dumps(meta)))
        _zip(path, members)
    elif change == "int json":
        _write(path, arrays, extra={"_json.npy": _npy(np.array(7))})
    elif change == "x":
        _write(path, arrays, json_text=json.dumps(dict(meta, pad="x" * (2 << 20))))
    elif isinstance(change, str):
        _write(path, arrays, json_text=change)
    else:
        change(arrays, meta)
        for k in [k for k in arrays if k.startswith("__raw__")]:
            extra[k[7:]] = arrays.pop(k)
            arrays.pop(k[7:-4], None)
        _write(path, arrays, meta, extra=extra)


def _assert_clean(path, **kw):
    with pytest.raises(fg.FastGDValueError, match=r"^load: 'path' must be a result file "
                       r"written by SweepResult.save; got '.*': ") as info:
        fg.load(path, **kw)
    return str(info.value)


@pytest.mark.parametrize("name, change", TAMPER, ids=[t[0] for t in TAMPER])
def test_tampered_file_gives_one_fastgd_error(tmp_path, saved, name, change):
    path = tmp_path / "bad.npz"
    _build(path, saved[1], change)
    tracemalloc.start()
    try:
        _assert_clean(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20, f"{name}: {peak / 2**20:.0f} MiB allocated"


@pytest.mark.parametrize("cut", ["empty", "text", "half", "flip", "directory"])
def test_not_a_zip_or_damaged_bytes(tmp_path, saved, cut):
    raw = open(saved[1], "rb").read()
    path = tmp_path / "bad.npz"
    if cut == "empty":
        path.write_bytes(b"")
    elif cut == "text":
        path.write_text("hello")
    elif cut == "half":
        path.write_bytes(raw[: len(raw) // 2])
    elif cut == "flip":  # inside the first member's compressed data: CRC or zlib error
        b = bytearray(raw)
        for k in range(60, 90):
            b[k] ^= 0xFF
        path.write_bytes(bytes(b))
    else:
        path.mkdir()
    _assert_clean(path)


def _patch_declared_size(path, member, size):
    """Make the zip's central directory declare ``size`` bytes for ``member``."""
    raw = bytearray(open(path, "rb").read())
    pos = raw.find(b"PK\x01\x02")
    while pos >= 0:
        n = struct.unpack_from("<H", raw, pos + 28)[0]
        if raw[pos + 46:pos + 46 + n].decode() == member:
            struct.pack_into("<I", raw, pos + 24, size)
        pos = raw.find(b"PK\x01\x02", pos + 46)
    open(path, "wb").write(bytes(raw))


def test_size_caps_before_decompressing(tmp_path, saved):
    arrays, meta = _parts(saved[1])
    # a member that declares more than its header implies (a bomb's usual shape)
    path = tmp_path / "a.npz"
    _write(path, arrays, meta)
    _patch_declared_size(path, "final_loss.npy", 3 << 30)
    assert "declares 3221225472 bytes" in _assert_clean(path)
    # a self-consistent file larger than max_bytes: refused before any array is read
    with pytest.raises(fg.FastGDValueError, match=r"more than the limit max_bytes"):
        fg.load(saved[1], max_bytes=1000)
    assert fg.load(saved[1], max_bytes=1e6).equals(saved[0])


def test_valid_file_round_trips_bit_for_bit(tmp_path, saved):
    res, path = saved
    back = fg.load(path)
    assert back.equals(res) and back.meta["spec"]["dtype"] == "float64"
    for f in ("status", "final_loss", "steps_to_tol", "diverged_at", "curves", "lr"):
        a, b = getattr(res, f), getattr(back, f)
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
    gd = fg.sweep("gd", lr=[0.5, 2.5], condition=[1.0, 4.0], steps=10, progress=False)
    assert fg.load(gd.save(tmp_path / "gd.npz")).equals(gd)


def test_save_and_load_agree_on_the_extension(tmp_path, saved):
    res = saved[0]
    written = res.save(tmp_path / "noext")
    assert written.endswith("noext.npz") and (tmp_path / "noext.npz").exists()
    assert fg.load(tmp_path / "noext").equals(res)
    assert fg.load(str(tmp_path / "noext.npz")).equals(res)
    # a file that exists under the given name is read as it is
    (tmp_path / "renamed").write_bytes((tmp_path / "noext.npz").read_bytes())
    assert fg.load(tmp_path / "renamed").equals(res)
    with pytest.raises(fg.FastGDValueError, match=r"load: 'path' must be an existing file; "
                                                  r"got .*missing\.npz"):
        fg.load(tmp_path / "missing")


def test_none_is_refused_and_equals_is_false(saved):
    res = saved[0]
    with pytest.raises(fg.FastGDTypeError, match=r"SweepResult.save: 'path' must be a file "
                                                 r"path .*got NoneType None"):
        res.save(None)
    with pytest.raises(fg.FastGDTypeError, match=r"load: 'path' must be a file path"):
        fg.load(None)
    assert res.equals(None) is False and res.equals("x") is False
    assert res.equals(res) is True


# ------------------------------------------------------------------------- chain sweeps
@pytest.fixture(scope="module")
def chain_saved(tmp_path_factory):
    res = fg.chain.chain_sweep([[0.5, 0.5, 0.7], [2.0, 1.5, 1.0]], [0.05, 0.5, 1.5], 200,
                               [1.0, 2.0], [1.0, 2.5], method="sgd", order="shuffle",
                               seed=3, progress=False)
    return res, res.save(tmp_path_factory.mktemp("c") / "chain")


def test_chain_sweep_round_trips_with_its_metadata(tmp_path, chain_saved):
    res, path = chain_saved
    assert path.endswith("chain.npz")
    back = fg.chain.chain_load(path)
    assert back.equals(res)
    assert back.seconds == res.seconds and back.threads == res.threads
    assert back.meta["spec"]["order"] == "shuffle" and back.meta["spec"]["seed"] == 3
    assert back.meta["fastgd"] == fg.__version__ and back.meta["engine"] == "local"
    assert fg.chain.chain_load(path[:-4]).equals(res)        # the name save() was given
    assert repr(back) == repr(res)


def test_chain_save_is_atomic(tmp_path, chain_saved, monkeypatch):
    """A save that fails midway leaves the old file whole and no temporary behind."""
    res, _ = chain_saved
    path = res.save(tmp_path / "r.npz")
    before = (tmp_path / "r.npz").read_bytes()

    def fail(fh, **arrays):
        fh.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez_compressed", fail)
    with pytest.raises(fg.FastGDValueError, match=r"ChainSweepResult.save: 'path'.*No space"):
        res.save(path)
    assert (tmp_path / "r.npz").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.npz"]


@pytest.mark.parametrize("change,fragment", [
    (_set("status", lambda v: v + 5), "checksum"),
    (_set("w", lambda v: v[:, :, :2]), "'w' has shape"),
    (_set("status", lambda v: v.astype(float)), "'status' has dtype float64"),
    (_drop("lambda0"), "missing array(s) 'lambda0'"),
    (_set("extra", np.zeros(2)), "unexpected member 'extra.npy'"),
    (_meta(lambda m: m.update(format="fastgd-sweep-1")), "format 'fastgd-sweep-1'"),
], ids=["checksum", "shape", "dtype", "missing", "extra", "format"])
def test_tampered_chain_file_gives_one_fastgd_error(tmp_path, chain_saved, change, fragment):
    _, path = chain_saved
    arrays, meta = _parts(path)
    change(arrays, meta)
    bad = tmp_path / "bad.npz"
    _write(bad, arrays, meta)
    with pytest.raises(fg.FastGDValueError, match="chain_load: 'path' must be a result "
                       "file written by ChainSweepResult.save") as info:
        fg.chain.chain_load(bad)
    assert fragment in str(info.value)


def test_chain_load_refuses_what_is_not_a_file(tmp_path, chain_saved):
    _, path = chain_saved
    with pytest.raises(fg.FastGDValueError, match="not a regular file"):
        fg.chain.chain_load(tmp_path)
    with pytest.raises(fg.FastGDValueError, match="an existing file"):
        fg.chain.chain_load(tmp_path / "none.npz")
    (tmp_path / "cut.npz").write_bytes(open(path, "rb").read()[:300])
    with pytest.raises(fg.FastGDValueError, match="chain_load: 'path'"):
        fg.chain.chain_load(tmp_path / "cut.npz")
    with pytest.raises(fg.FastGDValueError, match="more than the limit"):
        fg.chain.chain_load(path, max_bytes=100)
    with pytest.raises(fg.FastGDTypeError, match="ChainSweepResult.save: 'path'"):
        chain_saved[0].save(None)


def test_sweep_save_is_atomic(tmp_path, monkeypatch):
    """SweepResult.save writes a temporary file and renames it: a failure midway leaves
    the old file whole (and loadable) and no temporary behind."""
    X, y = fg.lecture_data()
    res = fg.sweep("gd", lr=[0.5, 3.0], data=[(X, y)], steps=50)
    path = res.save(tmp_path / "s.npz")
    before = (tmp_path / "s.npz").read_bytes()

    def fail(fh, **arrays):
        fh.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez_compressed", fail)
    with pytest.raises(fg.FastGDValueError, match=r"SweepResult.save: 'path'.*No space"):
        res.save(path)
    monkeypatch.undo()
    assert (tmp_path / "s.npz").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.npz"]
    assert fg.load(path).equals(res)


# ------------------------------------------------------------- every result kind
@pytest.fixture(scope="module")
def every_kind():
    """One result of each kind (network runs: plain, recorded, Adam, SGD, diverged)."""
    from test_fuzz_files import results

    X = np.linspace(-1, 1, 6)[:, None]
    y = 0.5 * X[:, 0]
    out = results()
    out["net_sweep_adam"] = fg.net.net_sweep(X, y, [0.5, 1.0], 30, width=3,
                                             lr_unit="lambda0", optimizer="adam",
                                             sharpness_every=10)
    out["net_gd_plain"] = fg.net.net_gd(X, y, 0.5, 40, width=4)
    out["net_gd_diverged"] = fg.net.net_gd(X, y, 50.0, 30, width=3)
    out["net_sgd"] = fg.net.net_sgd(X, y, 0.1, 5, width=3, bias=True)
    Xl, yl = fg.lecture_data()
    out["gd_diverged"] = fg.gd(Xl, yl, 50.0, 100, record=True)
    out["gd_bias_momentum"] = fg.gd(Xl, yl, 0.5, 60, bias=True, momentum=0.5)
    out["sgd_run"] = fg.sgd(Xl, yl, 0.05, 5, order="shuffle", seed=2, record=True)
    out["adam_run"] = fg.gd(Xl, yl, 0.05, 40, optimizer="adam")
    out["adam_frozen"] = fg.gd(Xl, yl, 0.05, 40, optimizer="adam", freeze_preconditioner=10,
                               record=True)
    out["rmsprop_unfrozen"] = fg.gd(Xl, yl, 0.05, 20, optimizer="rmsprop",
                                    freeze_preconditioner=100)   # v_hat NaN: never frozen
    out["chain_sgd_run"] = fg.chain.chain_sgd([0.5, 0.5, 0.7], 0.05, 20, [1.0, 2.0],
                                              [1.0, 2.5], batch_size=2, order="shuffle")
    out["chain_diverged"] = fg.chain.chain_gd([3.0, 3.0], 1.0, 200, record=True)
    out["chain_overflow"] = fg.chain.chain_gd([1e100, 1e100], 1e-300, 10)  # loss0 = inf
    return out


def test_every_kind_round_trips_exactly(tmp_path, every_kind):
    """Every array bit-identical (dtype, shape, bytes), every attribute equal, through
    ``fastgd.load`` (which tells the kinds apart by the format a file declares)."""
    from test_fuzz_files import same

    for name, res in every_kind.items():
        path = res.save(tmp_path / name)
        assert path == str(tmp_path / name) + ".npz"
        back = fg.load(path)
        assert type(back) is type(res) and same(res, back), name
        assert repr(back) == repr(res), name
    assert fg.load(tmp_path / "net_gd_diverged").status == fg.Status.DIVERGED
    assert fg.load(tmp_path / "net_sweep_adam").optim["betas"] == (0.9, 0.999)
    assert type(fg.load(tmp_path / "adam_frozen")).__name__ == "AdaptiveRun"
    assert fg.load(tmp_path / "adam_frozen").betas == (0.9, 0.999)
    assert np.isnan(fg.load(tmp_path / "rmsprop_unfrozen").frozen_v_hat).all()
    assert fg.load(tmp_path / "chain_overflow").loss0 == np.inf


_ENOSPC = OSError(28, "No space left on device")


def _fail(point):
    """A monkeypatch target and replacement that fails ``save`` at ``point``."""
    if point == "write":
        def partial(fh, **arrays):
            fh.write(b"partial")
            raise _ENOSPC
        return np, "savez_compressed", partial

    def raise_(*a, **k):
        raise _ENOSPC if point == "fsync" else OSError(18, "Invalid cross-device link")
    return os, {"fsync": "fsync", "rename": "replace"}[point], raise_


@pytest.mark.parametrize("point", ["write", "fsync", "rename"])
@pytest.mark.parametrize("kind", ["linear", "chain", "net_sweep", "net_run", "linear_run",
                                  "chain_run", "adam_frozen"])
def test_failed_save_leaves_the_old_file(tmp_path, every_kind, kind, point, monkeypatch):
    """A full disk (ENOSPC while writing or flushing) or a failed rename: one clean
    FastGDValueError naming the path, the old file byte for byte, no temporary left."""
    from test_fuzz_files import same

    res = every_kind[kind]
    path = res.save(tmp_path / "r.npz")
    before = (tmp_path / "r.npz").read_bytes()
    monkeypatch.setattr(*_fail(point))
    with pytest.raises(fg.FastGDValueError, match=r"\.save: 'path' must be a file in a "
                       r"writable directory with space left; got '.*r\.npz' \(") as info:
        res.save(path)
    monkeypatch.undo()
    assert ("No space" in str(info.value)) == (point != "rename")
    assert (tmp_path / "r.npz").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.npz"]
    assert same(res, fg.load(path))


def test_save_to_places_it_cannot_write(tmp_path, every_kind):
    res = every_kind["net_run"]
    (tmp_path / "d.npz").mkdir()
    for target in (tmp_path / "d.npz", tmp_path / "no" / "x.npz", "/proc/self/x.npz"):
        with pytest.raises(fg.FastGDValueError, match=r"NetRun.save: 'path' must be a file "
                           r"in a writable directory"):
            res.save(target)
    with pytest.raises(fg.FastGDValueError, match=r"NetRun.save: 'path' must be a file path"):
        res.save("a\0b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.npz"]


def test_dataset_names_over_the_limit_are_refused_at_save(tmp_path, saved):
    """A name of 2 MB: refused by save (nothing written, the old file intact), never a
    file that save wrote and load refuses."""
    import dataclasses

    res = saved[0]
    path = res.save(tmp_path / "n.npz")
    long = dataclasses.replace(res, names=("x" * (2 << 20), "y"))
    with pytest.raises(fg.FastGDValueError, match=r"SweepResult.save: 'self' must be a "
                       r"consistent result.*'names' must be a list of 2 strings of at most "
                       r"4096 characters \(nothing written to '.*n\.npz'\)"):
        long.save(path)
    assert fg.load(path).names == res.names
    ok = dataclasses.replace(res, names=("é" * 4096, "y"))   # at the limit: round trips
    assert fg.load(ok.save(tmp_path / "ok")).names == ok.names


# ------------------------------------------------------------------ killed saves
class _Tap:
    """A file whose writes call ``hook(n)`` after the n-th write."""

    def __init__(self, fh, hook):
        self.fh, self.hook, self.n = fh, hook, 0

    def write(self, b):
        out = self.fh.write(b)
        self.n += 1
        self.hook(self.n)
        return out

    def __getattr__(self, k):
        return getattr(self.fh, k)


def _tapped(hook):
    real = np.savez_compressed
    return lambda fh, **arrays: real(_Tap(fh, hook), **arrays)


def _kill_save(res, path, point):
    """Fork a child that saves ``res`` over ``path`` and stops at ``point`` (("write",
    n), "before rename" or "after rename") to report it through a pipe; SIGKILL it once
    the report has arrived (no sleep); returns the report."""
    import signal

    report_r, report_w = os.pipe()
    hold_r, hold_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(report_r)
            os.close(hold_w)

            def hold(tag):
                os.write(report_w, tag.encode() + b"\n")
                os.read(hold_r, 1)   # nobody writes: blocks until killed

            np.savez_compressed = _tapped(lambda n: point == ("write", n) and hold(f"write {n}"))
            real_replace = os.replace

            def replace(a, b):
                if point == "before rename":
                    hold(point)
                real_replace(a, b)
                if point == "after rename":
                    hold(point)
            os.replace = replace
            res.save(path)
            os.write(report_w, b"finished\n")
        finally:
            os._exit(0)
    os.close(report_w)
    os.close(hold_r)
    with os.fdopen(report_r) as fh:
        line = fh.readline().strip()   # the child is now blocked at ``point``
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    os.close(hold_w)
    return line


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_killed_save_leaves_the_previous_file_loadable_and_equal(tmp_path, monkeypatch):
    """SIGKILL at random writes of a save of MBs over a good file, just before and just
    after the rename: the file then loads equal to the old result (or, after the rename,
    to the new one), never anything in between."""
    from test_fuzz_files import same

    old = fg.sweep("gd", lr=[0.5, 1.5], condition=[1.0, 10.0], steps=50, progress=False)
    new = fg.sweep("gd", lr=np.linspace(0.05, 2.2, 60), condition=[1.0, 10.0, 100.0, 1e3],
                   steps=1000, curve_points=1000, weights=True, progress=False)
    path = old.save(tmp_path / "r.npz")
    writes = []
    monkeypatch.setattr(np, "savez_compressed", _tapped(writes.append))
    new.save(tmp_path / "count.npz")    # how many writes a full save makes
    monkeypatch.undo()
    assert os.path.getsize(tmp_path / "count.npz") > 1 << 19 and len(writes) > 100, (
        os.path.getsize(tmp_path / "count.npz"), len(writes))
    rng = np.random.default_rng(25)
    points = [("write", int(n)) for n in sorted({1, len(writes), *rng.integers(
        2, len(writes), size=2)})] + ["before rename", "after rename"]
    for point in points:
        report = _kill_save(new, path, point)
        assert report == (point if isinstance(point, str) else f"write {point[1]}")
        back = fg.load(path)
        assert same(new if point == "after rename" else old, back), point
        old.save(path)   # the old file again for the next kill
    leftovers = [p.name for p in tmp_path.iterdir() if p.name not in ("r.npz", "count.npz")]
    assert all(p.startswith(".tmp-r.npz-") for p in leftovers)   # killed writers' temporaries


# ------------------------------------------------------------------- data files
def test_read_arrays_reads_only_the_rows_it_needs(tmp_path):
    """``engine.files.read_arrays`` (what ``--data FILE.npz`` should read with): a file
    declaring a billion rows costs the rows asked for; special files, duplicates and
    non-numeric arrays are refused with one FastGDValueError naming the path."""
    from fastgd.engine.files import read_arrays

    X = np.arange(40.0).reshape(20, 2)
    np.savez(tmp_path / "d.npz", X=X, y=np.arange(20.0), F=np.asfortranarray(X),
             c=np.ones(3, complex), s=np.array(["a"]), t=np.array([1], "m8[s]"))
    got = read_arrays("cli", tmp_path / "d.npz", ("X", "y", "F"), rows=16)
    assert got["X"].tolist() == X[:16].tolist() and got["y"].shape == (16,)
    assert got["F"].tolist() == X[:16].tolist() and got["X"].flags.writeable
    for k in "cst":
        with pytest.raises(fg.FastGDValueError, match=r"cli: 'path' must be an .npz file of "
                           r"numeric arrays .*d\.npz'"):
            read_arrays("cli", tmp_path / "d.npz", (k,))
    # a bomb: X declares 2**27 rows (2 GiB), its stream holds 1 KiB: 16 rows are read
    hdr = io.BytesIO()
    np.lib.format.write_array_header_1_0(hdr, {"descr": "<f8", "fortran_order": False,
                                               "shape": (2**27, 2)})
    _zip(tmp_path / "bomb.npz", {"X.npy": hdr.getvalue() + bytes(1024),
                                 "y.npy": _npy(np.zeros(16))})
    _patch_declared_size(tmp_path / "bomb.npz", "X.npy", len(hdr.getvalue()) + 2**31)
    tracemalloc.start()
    try:
        got = read_arrays("cli", tmp_path / "bomb.npz", ("X", "y"), rows=16)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got["X"].shape == (16, 2) and peak < 1 << 20
    with pytest.raises(fg.FastGDValueError, match="truncated|damaged"):
        read_arrays("cli", tmp_path / "bomb.npz", ("X",), rows=2**20)
    os.mkfifo(tmp_path / "fifo.npz")
    with pytest.raises(fg.FastGDValueError, match=r"not a regular file \(a FIFO"):
        read_arrays("cli", tmp_path / "fifo.npz", ("X",))


def test_files_written_before_metadata_checksums_still_load(tmp_path, saved):
    """Format ``fastgd-sweep-1`` (earlier versions): no checksum, or one over the arrays
    only, is accepted and verified when present; the invariants are checked as ever;
    a current file stripped of its checksum is refused."""
    from fastgd.engine.files import LEGACY, checksum

    arrays, meta = _parts(saved[1])
    old = {k: v for k, v in arrays.items() if k not in ("growing", "weights")}
    head = {k: v for k, v in meta.items() if k not in ("sha256", "names", "lr_unit")}
    _write(tmp_path / "v1.npz", old, dict(head, format=LEGACY))
    back = fg.load(tmp_path / "v1.npz")
    assert back.names == ("κ=1", "κ=10") and back.weights is None and not back.growing.any()
    _write(tmp_path / "v1sum.npz", old, dict(head, format=LEGACY, sha256=checksum(old)))
    assert fg.load(tmp_path / "v1sum.npz").status.tolist() == back.status.tolist()
    for bad, what in ((dict(head, format=LEGACY, sha256=checksum(arrays)), "checksum"),
                      (head, "no checksum")):
        _write(tmp_path / "bad.npz", old, bad)
        assert what in _assert_clean(tmp_path / "bad.npz")
    old["final_loss"] = -old["final_loss"]
    _write(tmp_path / "neg.npz", old, dict(head, format=LEGACY))
    assert "NaN or negative" in _assert_clean(tmp_path / "neg.npz")


# ------------------------------------------------------------------ single runs
@pytest.mark.parametrize("kind,writer", [("linear_run", "Run"), ("adam_frozen", "AdaptiveRun"),
                                         ("chain_run", "ChainRun")])
def test_damaged_run_files_are_refused_cleanly(tmp_path, every_kind, kind, writer):
    """Truncated, byte-flipped, edited (old checksum) and impossible-but-resealed run
    files: one FastGDValueError naming ``load``, the writer and the path."""
    from test_fuzz_files import parts, reseal, same

    res = every_kind[kind]
    path = res.save(tmp_path / "ok")
    raw = open(path, "rb").read()
    (tmp_path / "cut.npz").write_bytes(raw[: len(raw) // 2])
    flipped = bytearray(raw)
    for k in range(60, 90):
        flipped[k] ^= 0xFF
    (tmp_path / "flip.npz").write_bytes(bytes(flipped))
    arrays, head = parts(path)
    arrays["losses"] = arrays["losses"][::-1].copy()
    _write(tmp_path / "edited.npz", arrays, head)            # the old checksum
    arrays, head = parts(path)
    head["status"], head["diverged_at"] = 2, -1              # DIVERGED without a step
    _write(tmp_path / "impossible.npz", arrays, reseal(arrays, head))
    for name, what in (("cut", ""), ("flip", ""), ("edited", "checksum"),
                       ("impossible", "'diverged_at' disagrees with 'status'")):
        with pytest.raises(fg.FastGDValueError, match=r"load: 'path' must be a result file "
                           rf"written by ({writer}|SweepResult)\.save") as info:
            fg.load(tmp_path / f"{name}.npz")
        assert f"{name}.npz" in str(info.value) and what in str(info.value), name
    assert same(res, fg.load(path))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
@pytest.mark.parametrize("kind", ["linear_run", "chain_run"])
def test_killed_run_save_leaves_the_previous_file(tmp_path, every_kind, kind):
    """SIGKILL at the first write, before and after the rename of a run's save over a
    good file of another run: the file loads equal to the old run, or after the rename
    to the new one."""
    from test_fuzz_files import same

    new = every_kind[kind]
    old = every_kind["gd_diverged" if kind == "linear_run" else "chain_diverged"]
    path = old.save(tmp_path / "r.npz")
    for point in (("write", 1), "before rename", "after rename"):
        report = _kill_save(new, path, point)
        assert report == (point if isinstance(point, str) else f"write {point[1]}")
        assert same(new if point == "after rename" else old, fg.load(path)), point
        old.save(path)


def test_runs_refuse_to_write_what_load_would_refuse(tmp_path, every_kind):
    """A run edited into an impossible state is refused by ``save`` (nothing written,
    the old file intact), never written for ``load`` to refuse."""
    import dataclasses

    from test_fuzz_files import same

    for kind, change, writer in (
            ("linear_run", dict(status=fg.Status.DIVERGED), "Run"),
            ("linear_run", dict(losses=np.array([np.nan])), "Run"),
            ("chain_run", dict(lr=-1.0), "ChainRun"),
            ("chain_run", dict(sharpnesses=None), "ChainRun"),
            ("adam_frozen", dict(frozen_v_hat=None), "AdaptiveRun")):
        res = every_kind[kind]
        path = res.save(tmp_path / "r.npz")
        bad = dataclasses.replace(res, **change)
        with pytest.raises(fg.FastGDValueError, match=rf"{writer}\.save: 'self' must be a "
                           r"consistent result.*nothing written"):
            bad.save(path)
        assert same(res, fg.load(path))
