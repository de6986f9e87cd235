"""Reading and writing result files (``.npz``: one ``.npy`` member per array and the
metadata as JSON in ``_json``), validated so that any file, however damaged or hostile,
either loads bit for bit or raises one :class:`fastgd.FastGDValueError` naming ``path``.

Reading never unpickles (``allow_pickle=False``) and never allocates in proportion to
what a file merely claims: the ``.npy`` header of every member is read first (a few
hundred bytes), every member's declared uncompressed size must equal what its header's
shape and dtype imply, the shapes must agree with each other (``status`` fixes
``(n_data, n_lr, n_seed)``), and their total must fit in ``max_bytes`` before any array
is decompressed.  Values are then checked (status codes, learning rates, spectra) and
the JSON parsed (its size bounded by the grid; nesting too deep for the parser is an
error like any other).
"""

from __future__ import annotations

import json
import math
import os
import zipfile
import zlib

import numpy as np

from fastgd import validate as V

FORMAT = "fastgd-sweep-1"
#: characters of JSON metadata allowed on top of 64 per grid point
JSON_BASE = 1 << 20
_MEMBER_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError,
                  NotImplementedError, RuntimeError)


def npz_path(func, path, *, reading=False):
    """The file a result is saved to / read from: ``path`` with ``.npz`` appended when it
    lacks it (what :meth:`SweepResult.save` writes).  When reading, ``path`` itself is
    used if it exists as given."""
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, (str, os.PathLike)):
        raise V.fail_type(func, "path", "a file path (str or os.PathLike)", path)
    path = os.fspath(path)
    if not path:
        raise V.fail(func, "path", "a file path", "an empty string")
    if reading and (path.endswith(".npz") or os.path.exists(path)):
        return path
    return path if path.endswith(".npz") else path + ".npz"


def _bad(path, what, func="load", writer="SweepResult.save"):
    return V.fail(func, "path", f"a result file written by {writer}", f"{path!r}: {what}")


def _header(zf, info, path, bad=_bad):
    """(shape, dtype) of one ``.npy`` member, reading only its header (``bad(path,
    what)`` makes the error)."""
    fmt = np.lib.format
    try:
        with zf.open(info) as fp:
            version = fmt.read_magic(fp)
            if version == (1, 0):
                shape, fortran, dtype = fmt.read_array_header_1_0(fp)
            elif version == (2, 0):
                shape, fortran, dtype = fmt.read_array_header_2_0(fp)
            else:
                raise ValueError(f".npy format version {version}")
            hlen = fp.tell()
    except _MEMBER_ERRORS as exc:
        raise bad(path, f"member {info.filename!r} has no valid .npy header ({exc})") from exc
    if dtype.hasobject or dtype.fields is not None or dtype.kind not in "biufU":
        raise bad(path, f"member {info.filename!r} has dtype {dtype} (object and structured "
                  "arrays are never read)")
    if fortran and len(shape) > 1:
        raise bad(path, f"member {info.filename!r} is in Fortran order")
    nbytes = math.prod(shape) * dtype.itemsize
    if info.file_size != hlen + nbytes:
        raise bad(path, f"member {info.filename!r} declares {info.file_size} bytes but its "
                  f"header implies {hlen + nbytes} (shape {shape}, dtype {dtype})")
    return shape, dtype


def _expected_shapes(fields, n_data, n_lr, n_seed, n_t):
    grid = (n_data, n_lr, n_seed)
    shapes = {"lr": (n_lr,), "seeds": (n_seed,), "curve_t": (n_t,),
              "curves": grid + (n_t,)}
    for k in ("status", "final_loss", "steps_to_tol", "diverged_at", "growing"):
        shapes[k] = grid
    for k in ("lambda_max", "lambda_min", "condition", "gd_limit", "momentum_limit",
              "sgd_ms_limit", "sgd_as_limit"):
        shapes[k] = (n_data,)
    return {k: v for k, v in shapes.items() if k in fields}


_KINDS = {"status": "iu", "steps_to_tol": "iu", "diverged_at": "iu", "seeds": "iu",
          "curve_t": "iu", "growing": "b"}


def read_result(path, fields, optional, *, max_bytes=None):
    """Validate and read a result file; returns (arrays, scalars).

    ``fields``: names of the result's array fields; ``optional``: those that may be
    absent (together: ``curves`` and ``curve_t``).
    """
    path = npz_path("load", path, reading=True)
    if max_bytes is None:
        max_bytes = _physical_memory() / 2
    else:
        max_bytes = V.real("load", "max_bytes", max_bytes, positive=True, finite=False)
    if not os.path.exists(path):
        raise V.fail("load", "path", "an existing file", f"{path!r} (no such file)")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        what = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise _bad(path, f"not a readable .npz (zip) file ({what})") from exc
    with zf:
        return _read(zf, path, tuple(fields), tuple(optional), max_bytes)


def _read(zf, path, fields, optional, max_bytes):
    infos = zf.infolist()
    names = [i.filename for i in infos]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise _bad(path, f"member {dup[0]!r} appears more than once")
    known = set(fields) | {"_json"}
    members = {}
    for info in infos:
        key = info.filename[:-4] if info.filename.endswith(".npy") else None
        if key not in known:
            raise _bad(path, f"unexpected member {info.filename!r}")
        if info.flag_bits & 0x1:
            raise _bad(path, f"member {info.filename!r} is encrypted")
        members[key] = info
    missing = [k for k in ("_json",) + fields if k not in members and k not in optional]
    if missing:
        raise _bad(path, f"missing array(s) {', '.join(map(repr, missing))}")
    if ("curves" in members) != ("curve_t" in members):
        raise _bad(path, "'curves' and 'curve_t' must both be present or both absent")
    heads = {k: _header(zf, info, path) for k, info in members.items()}

    shape, _ = heads["status"]
    if len(shape) != 3:
        raise _bad(path, f"'status' has shape {shape}; expected (n_data, n_lr, n_seed)")
    n_t = heads["curve_t"][0][0] if "curve_t" in heads and len(heads["curve_t"][0]) == 1 \
        else 0
    expect = _expected_shapes(fields, *shape, n_t)
    for k, (shp, dtype) in heads.items():
        if k == "_json":
            if shp != () or dtype.kind != "U":
                raise _bad(path, f"'_json' has shape {shp} and dtype {dtype}; expected a "
                           "text scalar")
            continue
        if k in expect and shp != expect[k]:
            raise _bad(path, f"{k!r} has shape {shp}; expected {expect[k]} from 'status' "
                       f"{shape}" + (" and 'curve_t'" if k == "curves" else ""))
        if k == "weights" and (len(shp) != 4 or shp[:3] != tuple(shape)):
            raise _bad(path, f"'weights' has shape {shp}; expected {tuple(shape) + ('d',)} "
                       f"from 'status' {shape}")
        kinds = _KINDS.get(k, "f")
        if dtype.kind not in kinds:
            raise _bad(path, f"{k!r} has dtype {dtype}; expected "
                       + {"iu": "integers", "b": "booleans"}.get(kinds, "floating point"))
    grid_points = int(sum(shape)) + n_t
    json_chars = heads["_json"][1].itemsize // 4
    if json_chars > JSON_BASE + 64 * grid_points:
        raise _bad(path, f"its JSON metadata declares {json_chars} characters, more than "
                   f"{JSON_BASE + 64 * grid_points} for a grid of shape {shape}")
    total = sum(info.file_size for info in members.values())
    if total > max_bytes:
        raise _bad(path, f"its arrays declare {total / 2**30:.3g} GiB, more than the limit "
                   f"max_bytes = {max_bytes / 2**30:.3g} GiB (pass a larger max_bytes "
                   "to read it)")

    arrays = {}
    for k, info in members.items():
        try:
            with zf.open(info) as fp:
                a = np.lib.format.read_array(fp, allow_pickle=False)
        except _MEMBER_ERRORS as exc:
            raise _bad(path, f"member {info.filename!r} is damaged ({exc})") from exc
        arrays[k] = a
    text = str(arrays.pop("_json"))
    scal = _parse_json(path, text)
    _check_names(path, scal, shape[0])
    _check_values(path, arrays)
    return arrays, scal


def _check_names(path, scal, n_data):
    """``names`` (one str per dataset) and ``lr_unit``: optional (files written before
    they existed load with the defaults), valid when present."""
    names = scal.get("names")
    if names is not None:
        if not isinstance(names, list) or len(names) != n_data or \
                not all(isinstance(x, str) for x in names):
            raise _bad(path, f"'names' must be a list of {n_data} strings (one per "
                       f"dataset); got {str(names)[:60]}")
    unit = scal.get("lr_unit")
    if unit is not None and unit not in ("absolute", "eta_max"):
        raise _bad(path, f"lr_unit {unit!r} (expected 'absolute' or 'eta_max')")


def _parse_json(path, text):
    try:
        scal = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise _bad(path, f"its JSON metadata is not valid JSON ({exc})") from exc
    if not isinstance(scal, dict):
        raise _bad(path, f"its JSON metadata is a {type(scal).__name__}, not an object")
    if scal.get("format") != FORMAT:
        raise _bad(path, f"format {scal.get('format')!r} (expected {FORMAT!r})")
    for key, ok in (("method", ("gd", "sgd")), ("unit", ("step", "epoch"))):
        if scal.get(key) not in ok:
            raise _bad(path, f"{key} {scal.get(key)!r} (expected one of {ok})")
    if not isinstance(scal.get("meta"), dict):
        raise _bad(path, "its metadata has no 'meta' object")
    return scal


def _check_values(path, a):
    from fastgd.status import Status

    st = a["status"]
    codes = np.array([int(s) for s in Status])
    bad = ~np.isin(st, codes)
    if bad.any():
        raise _bad(path, f"'status' holds {int(bad.sum())} code(s) outside "
                   f"{sorted(codes.tolist())} (e.g. {st[bad].flat[0]})")
    lr = a["lr"]
    if not np.all(np.isfinite(lr) & (lr > 0)):
        raise _bad(path, "'lr' holds values that are not finite and > 0")
    for k in ("lambda_max", "lambda_min"):
        v = a[k]
        if np.isnan(v).any() or (v < 0).any():
            raise _bad(path, f"{k!r} holds NaN or negative values")
    if np.isnan(a["condition"]).any():
        raise _bad(path, "'condition' holds NaN")
    if (a["seeds"] < 0).any():
        raise _bad(path, "'seeds' holds negative values")


def _physical_memory():
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return 16 << 30


# --------------------------------------------------------------- any result kind
def checksum(arrays) -> str:
    """SHA-256 of arrays by name, dtype, shape and bytes (names sorted): what
    :func:`write_npz` stores and :func:`read_npz` checks.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgd.engine.files import checksum
    >>> checksum({"a": np.zeros(2)}) == checksum({"a": np.zeros(2)})
    True
    >>> checksum({"a": np.zeros(2)}) == checksum({"a": np.ones(2)})
    False
    """
    import hashlib

    h = hashlib.sha256()
    for k in sorted(arrays):
        a = np.ascontiguousarray(arrays[k])
        h.update(f"|{k}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def json_default(o):
    """JSON for NumPy scalars and arrays (anything else as its ``str``)."""
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def write_npz(func, path, arrays, head, fmt) -> str:
    """Write a result file atomically: the arrays (``.npz``, compressed) and ``head``
    (JSON in ``_json``, with ``format`` = ``fmt`` and the arrays' :func:`checksum`) to a
    temporary file in the same directory, flushed to disk, then renamed over ``path``
    (``.npz`` appended when it lacks it): a failure at any moment leaves the old file
    whole.  Returns the path written.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgd.engine.files import read_npz, write_npz
    >>> p = write_npz("demo", "demo", {"a": np.arange(3.0)}, {"n": 3}, "demo-1")
    >>> arrays, head = read_npz(p, {"a": (("n",), "f")}, fmt="demo-1")
    >>> arrays["a"].tolist(), head["n"], p
    ([0.0, 1.0, 2.0], 3, 'demo.npz')
    """
    path = npz_path(func, path)
    arrays = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    head = dict(head, format=fmt, sha256=checksum(arrays))
    text = json.dumps(head, default=json_default, sort_keys=True)
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".tmp-{os.path.basename(path)}-{os.getpid()}-"
                       f"{os.urandom(4).hex()}")
    try:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, _json=np.array(text), **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise V.fail(func, "path", "a file in a writable directory",
                     f"{path!r} ({exc.strerror or exc})") from exc
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def read_npz(path, schema, *, fmt, func="load", writer=None, optional=(), max_bytes=None):
    """Validate and read a file written by :func:`write_npz`; returns (arrays, head).

    ``schema`` maps each array's name to (dims, kinds): ``dims`` a tuple of ints and
    names (the same name is the same length in every array), ``kinds`` the allowed
    dtype kinds (``"f"``, ``"iu"``, ``"b"``).  Before anything is decompressed: the path
    must be a regular file and a zip whose members are exactly the schema's (those in
    ``optional`` may be absent) with valid ``.npy`` headers, consistent shapes, a JSON
    size bounded by the grid and a total size under ``max_bytes`` (default: half of
    physical memory).  Then the JSON must be an object of format ``fmt`` and the
    arrays must match its checksum.  Any failure: one
    :class:`fastgd.FastGDValueError` naming ``func``, ``path`` and what is wrong.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgd.engine.files import read_npz, write_npz
    >>> p = write_npz("demo", "demo2.npz", {"a": np.zeros((2, 3))}, {}, "demo-1")
    >>> read_npz(p, {"a": (("n", 3), "f")}, fmt="demo-1")[0]["a"].shape
    (2, 3)
    >>> read_npz(p, {"a": (("n", 4), "f")}, fmt="demo-1")
    Traceback (most recent call last):
    ...
    fastgd.validate.FastGDValueError: load: 'path' must be a result file ...
    """
    import stat

    writer = writer or fmt

    def bad(p, what):
        return _bad(p, what, func, writer)

    path = npz_path(func, path, reading=True)
    limit = _physical_memory() / 2 if max_bytes is None else V.real(
        func, "max_bytes", max_bytes, positive=True, finite=False)
    try:
        st = os.stat(path)
    except OSError as exc:
        raise V.fail(func, "path", "an existing file", f"{path!r} ({exc.strerror})") from exc
    if not stat.S_ISREG(st.st_mode):
        raise bad(path, "not a regular file")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise bad(path, f"not a readable .npz (zip) file ({exc})") from exc
    with zf:
        heads = _members(zf, path, schema, optional, bad)
        dims = _bind_dims(path, schema, heads, bad)
        json_chars = heads["_json"][1][1].itemsize // 4
        cap = JSON_BASE + 64 * int(sum(dims.values()))
        if json_chars > cap:
            raise bad(path, f"its JSON metadata declares {json_chars} characters, more "
                      f"than {cap} for its arrays")
        total = sum(info.file_size for info, _ in heads.values())
        if total > limit:
            raise bad(path, f"its arrays declare {total / 2**30:.3g} GiB, more than the "
                      f"limit max_bytes = {limit / 2**30:.3g} GiB")
        arrays = {}
        for k, (info, _) in heads.items():
            try:
                with zf.open(info) as fp:
                    arrays[k] = np.lib.format.read_array(fp, allow_pickle=False)
            except _MEMBER_ERRORS as exc:
                raise bad(path, f"member {info.filename!r} is damaged ({exc})") from exc
    try:
        head = json.loads(str(arrays.pop("_json")))
    except (ValueError, RecursionError) as exc:
        raise bad(path, f"its JSON metadata is not valid JSON ({exc})") from exc
    if not isinstance(head, dict) or head.get("format") != fmt:
        got = head.get("format") if isinstance(head, dict) else type(head).__name__
        raise bad(path, f"format {got!r} (expected {fmt!r})")
    if head.get("sha256") != checksum(arrays):
        raise bad(path, "its arrays do not match their checksum (damaged or edited)")
    return arrays, head


def _members(zf, path, schema, optional, bad):
    """{name: (ZipInfo, (shape, dtype))} of the members, each checked against the
    schema's dtype kinds (headers only)."""
    infos = zf.infolist()
    names = [i.filename for i in infos]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise bad(path, f"member {dup[0]!r} appears more than once")
    heads = {}
    for info in infos:
        key = info.filename[:-4] if info.filename.endswith(".npy") else None
        if key not in schema and key != "_json":
            raise bad(path, f"unexpected member {info.filename!r}")
        if info.flag_bits & 0x1:
            raise bad(path, f"member {info.filename!r} is encrypted")
        heads[key] = (info, _header(zf, info, path, bad))
    missing = [k for k in ("_json", *schema) if k not in heads and k not in optional]
    if missing:
        raise bad(path, f"missing array(s) {', '.join(map(repr, missing))}")
    shp, dtype = heads["_json"][1]
    if shp != () or dtype.kind != "U":
        raise bad(path, f"'_json' has shape {shp} and dtype {dtype}; expected a text scalar")
    for k, (_, (_shp, dtype)) in heads.items():
        if k != "_json" and dtype.kind not in schema[k][1]:
            raise bad(path, f"{k!r} has dtype {dtype}; expected " + {
                "iu": "integers", "b": "booleans"}.get(schema[k][1], "floating point"))
    return heads


def _bind_dims(path, schema, heads, bad):
    """The named lengths of the schema, bound from the members' shapes in schema order;
    a shape that disagrees with a bound name (or a fixed length) is an error."""
    bound = {}
    for k, (dims, _) in schema.items():
        if k not in heads:
            continue
        shp = heads[k][1][0]
        if len(shp) != len(dims):
            raise bad(path, f"{k!r} has shape {shp}; expected {len(dims)} axes {dims}")
        for n, d in zip(shp, dims, strict=True):
            want = d if isinstance(d, int) else bound.setdefault(d, n)
            if n != want:
                raise bad(path, f"{k!r} has shape {shp}; expected "
                          f"{tuple(bound.get(x, x) for x in dims)}")
    return bound


def peek_format(path):
    """The ``format`` a result file declares in its JSON metadata, or None when it
    cannot tell (not a readable zip, no ``_json`` member, metadata over
    :data:`JSON_BASE` characters, not JSON): reads one small member, so that one
    ``load`` can hand each kind of result file to its reader, which validates it.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgd.engine.files import peek_format, write_npz
    >>> peek_format(write_npz("demo", "peek", {"a": np.zeros(1)}, {}, "demo-1"))
    'demo-1'
    >>> peek_format("no-such-file.npz") is None
    True
    """
    try:
        path = npz_path("load", path, reading=True)
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo("_json.npy")
            if info.file_size > 4 * JSON_BASE + 4096:
                return None
            with zf.open(info) as fp:
                text = str(np.lib.format.read_array(fp, allow_pickle=False))
        head = json.loads(text)
    except Exception:  # anything unreadable: the reader says what is wrong
        return None
    fmt = head.get("format") if isinstance(head, dict) else None
    return fmt if isinstance(fmt, str) else None
