"""Result files: ``fastgd.load`` reads a valid file bit for bit and turns every damaged
or hostile file into one ``FastGDValueError`` naming ``path`` (never a raw BadZipFile,
JSONDecodeError, KeyError, RecursionError, and never an unpickle or a large allocation);
``save`` and ``load`` agree on the ``.npz`` extension; None is refused cleanly."""

from __future__ import annotations

import io
import json
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
