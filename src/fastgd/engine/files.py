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


def _bad(path, what):
    return V.fail("load", "path", "a result file written by SweepResult.save",
                  f"{path!r}: {what}")


def _header(zf, info, path):
    """(shape, dtype, header length) of one ``.npy`` member, reading only its header."""
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
        raise _bad(path, f"member {info.filename!r} has no valid .npy header ({exc})") from exc
    if dtype.hasobject or dtype.fields is not None or dtype.kind not in "biufU":
        raise _bad(path, f"member {info.filename!r} has dtype {dtype} (object and structured "
                   "arrays are never read)")
    if fortran and len(shape) > 1:
        raise _bad(path, f"member {info.filename!r} is in Fortran order")
    nbytes = math.prod(shape) * dtype.itemsize
    if info.file_size != hlen + nbytes:
        raise _bad(path, f"member {info.filename!r} declares {info.file_size} bytes but its "
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
