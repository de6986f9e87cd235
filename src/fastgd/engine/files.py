"""Result files (``.npz``, metadata as JSON in ``_json``): written atomically with a
SHA-256 of arrays and metadata (:func:`write_npz`), read so that any file loads bit for
bit or raises one :class:`fastgd.FastGDValueError` naming ``path`` (:func:`read_npz`:
regular files only, everything bounded and checked before decompressing, no unpickle);
plain data files read as safely (:func:`read_arrays`)."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import stat
import struct
import zipfile
import zlib

import numpy as np

from fastgd import validate as V
from fastgd.engine import checkpoint as CK

FORMAT = "fastgd-sweep-2"
#: SweepResult files written before metadata checksums (array-only checksum, or none)
LEGACY = "fastgd-sweep-1"
#: characters of JSON metadata allowed on top of 64 per point of the largest array's axes
JSON_BASE = 1 << 20
MAX_MEMBERS = 64  #: members a result file may hold (every kind has fewer than 40)
HEADER_MAX = 1 << 16  #: bytes of one ``.npy`` header (numpy writes < 200 for ours)
_MEMBER_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError,
                  NotImplementedError, RuntimeError, SyntaxError, RecursionError, struct.error)


def npz_path(func, path, *, reading=False):
    """``path`` with ``.npz`` appended when it lacks it (what ``save`` writes); when
    reading, ``path`` itself if it exists as given.

    Examples
    --------
    >>> from fastgd.engine.files import npz_path
    >>> npz_path("save", "out"), npz_path("save", "out.npz")
    ('out.npz', 'out.npz')
    """
    path = os.fsdecode(path) if isinstance(path, bytes) else path
    if not isinstance(path, (str, os.PathLike)):
        raise V.fail_type(func, "path", "a file path (str or os.PathLike)", path)
    path = os.fspath(path)
    if not path:
        raise V.fail(func, "path", "a file path", "an empty string")
    if "\0" in path:
        raise V.fail(func, "path", "a file path", f"{path!r} (a NUL character)")
    if reading and (path.endswith(".npz") or os.path.lexists(path)):
        return path
    return path if path.endswith(".npz") else path + ".npz"


def _bad(path, what, func="load", writer="SweepResult.save"):
    return V.fail(func, "path", f"a result file written by {writer}", f"{path!r}: {what}")


def max_bytes_default():
    """Bytes a file may make a reader allocate: half of memory or of ``RLIMIT_AS``.

    Examples
    --------
    >>> from fastgd.engine.files import max_bytes_default
    >>> max_bytes_default() > 0
    True
    """
    import resource

    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    soft = resource.getrlimit(resource.RLIMIT_AS)[0]
    return min(mem, mem if soft == resource.RLIM_INFINITY else soft) / 2


def _limit(func, max_bytes):
    return max_bytes_default() if max_bytes is None else V.real(
        func, "max_bytes", max_bytes, positive=True, finite=False)


_KIND = {stat.S_IFDIR: "a directory", stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFCHR:
         "a character device", stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket"}


def open_regular(func, path, limit, bad):
    """(binary file object, size) of ``path`` if it is a regular file of at most about
    ``limit`` bytes: ``stat`` first (devices, directories, FIFOs and symlinks to them are
    never opened), then ``O_NONBLOCK`` (a FIFO swapped in cannot block) and ``fstat``.

    Examples
    --------
    >>> from fastgd.engine.files import _bad, open_regular
    >>> open_regular("load", "/dev/zero", 1e9, _bad)
    Traceback (most recent call last):
    ...
    fastgd.validate.FastGDValueError: load: 'path' must be a result file ...character device).
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise V.fail(func, "path", "an existing file", f"{path!r} (no such file)") from None
    except (OSError, ValueError) as exc:
        raise bad(path, f"cannot be read ({getattr(exc, 'strerror', None) or exc})") from None
    _check_stat(st, path, limit, bad)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise bad(path, f"cannot be opened ({exc.strerror or exc})") from None
    try:
        st = os.fstat(fd)
        _check_stat(st, path, limit, bad)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb"), st.st_size


def _check_stat(st, path, limit, bad):  # a regular file of at most about limit bytes
    if not stat.S_ISREG(st.st_mode):
        raise bad(path, f"not a regular file ({_KIND.get(stat.S_IFMT(st.st_mode), 'special')})")
    if st.st_size > 1.01 * limit + 8 * JSON_BASE:
        raise bad(path, f"it has {st.st_size} bytes, more than the limit max_bytes = "
                  f"{limit / 2**30:.3g} GiB (pass a larger max_bytes to read it)")


def _zip_directory(fh, size, path, bad):
    """Members and directory bytes (zip64 too) bounded before ``zipfile`` parses them."""
    tail = min(size, (1 << 16) + 22)
    fh.seek(size - tail)
    buf = fh.read(tail)
    k = buf.rfind(b"PK\x05\x06")
    if k < 0 or k + 22 > len(buf):
        raise bad(path, "not a readable .npz (zip) file (no end of central directory)")
    n, cd = struct.unpack_from("<HI", buf, k + 10)
    if (n == 0xFFFF or cd == 0xFFFFFFFF) and k >= 20 and buf[k - 20:k - 16] == b"PK\x06\x07":
        off = struct.unpack_from("<Q", buf, k - 12)[0]
        if off + 56 <= size:
            fh.seek(off)
            rec = fh.read(56)
            if rec[:4] == b"PK\x06\x06":
                n, cd = struct.unpack_from("<QQ", rec, 32)
    if n > MAX_MEMBERS or cd > MAX_MEMBERS * 1200:
        raise bad(path, f"its zip directory declares {n} members in {cd} bytes, more than "
                  f"a result file has (at most {MAX_MEMBERS})")
    fh.seek(0)


@contextlib.contextmanager
def _open_zip(func, path, limit, bad):
    """The zip in ``path``, opened by :func:`open_regular`, its directory bounded."""
    fh, size = open_regular(func, path, limit, bad)
    with fh:
        _zip_directory(fh, size, path, bad)
        try:
            zf = zipfile.ZipFile(fh)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, struct.error,
                NotImplementedError, RuntimeError) as exc:
            raise bad(path, f"not a readable .npz (zip) file ({exc})") from None
        with zf:
            yield zf


def _header(zf, info, path, bad=_bad, fortran_ok=False):
    """(shape, dtype, fortran, header bytes) of one ``.npy`` member from its header
    alone (at most :data:`HEADER_MAX` bytes)."""
    fmt = np.lib.format
    try:
        with zf.open(info) as fp:
            magic = fp.read(8)
            if len(magic) < 8 or magic[:6] != b"\x93NUMPY" or magic[6] not in (1, 2):
                raise ValueError("no .npy magic of version 1 or 2")
            size = fp.read(2 if magic[6] == 1 else 4)
            hlen = struct.unpack("<H" if magic[6] == 1 else "<I", size)[0]
            if hlen > HEADER_MAX:
                raise ValueError(f"a header of {hlen} bytes")
            buf = io.BytesIO(size + fp.read(hlen))
            read = fmt.read_array_header_1_0 if magic[6] == 1 else fmt.read_array_header_2_0
            shape, fortran, dtype = read(buf)
    except _MEMBER_ERRORS + (MemoryError,) as exc:
        raise bad(path, f"member {info.filename!r} has no valid .npy header ({exc})") from exc
    if dtype.hasobject or dtype.fields is not None or dtype.kind not in "biufU":
        raise bad(path, f"member {info.filename!r} has dtype {dtype} (only numbers and "
                  "text are read: never objects, records, complex numbers or dates)")
    if fortran and len(shape) > 1 and not fortran_ok:
        raise bad(path, f"member {info.filename!r} is in Fortran order")
    nbytes = math.prod(shape) * dtype.itemsize
    if info.file_size != 8 + len(size) + hlen + nbytes:
        raise bad(path, f"member {info.filename!r} declares {info.file_size} bytes but its "
                  f"header implies {8 + len(size) + hlen + nbytes} (shape {shape}, dtype "
                  f"{dtype})")
    return shape, dtype, fortran, 8 + len(size) + hlen


# --------------------------------------------------------------- checksums and JSON
def checksum(arrays, head=None) -> str:
    """SHA-256 of arrays by name, dtype, shape and bytes (names sorted) and, when given,
    of the metadata ``head`` (its canonical JSON): what :func:`write_npz` stores and
    :func:`read_npz` checks.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgd.engine.files import checksum
    >>> checksum({"a": np.zeros(2)}) == checksum({"a": np.zeros(2)})
    True
    >>> checksum({"a": np.zeros(2)}) == checksum({"a": np.ones(2)})
    False
    >>> checksum({}, {"n": 1}) == checksum({}, {"n": 2})
    False
    """
    import hashlib

    h = hashlib.sha256()
    for k in sorted(arrays):
        a = np.ascontiguousarray(arrays[k])
        h.update(f"|{k}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.reshape(-1).view(np.uint8))  # the bytes, without a copy
    if head is not None:
        h.update(b"|_json|" + json.dumps(head, sort_keys=True).encode())
    return h.hexdigest()


def json_default(o):
    """JSON for NumPy scalars and arrays (anything else as its ``str``).

    Examples
    --------
    >>> import json, numpy as np
    >>> from fastgd.engine.files import json_default
    >>> json.dumps({"a": np.arange(2), "b": np.float32(0.5)}, default=json_default)
    '{"a": [0, 1], "b": 0.5}'
    """
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def _json_cap(shapes) -> int:
    """JSON characters allowed (save and load): :data:`JSON_BASE` + 64 per point of the
    largest array's axes."""
    return JSON_BASE + 64 * max((int(sum(s)) for s in shapes), default=0)


# ------------------------------------------------------------------------ writing
def write_npz(func, path, arrays, head, fmt, check=None) -> str:
    """Write arrays (compressed) and ``head`` (JSON with ``format`` = ``fmt`` and the
    :func:`checksum` of both) to a temporary file in the same directory, fsync, rename
    over ``path`` (``.npz`` appended), fsync the directory: a failure or a kill at any
    moment leaves the old file whole.  Refused before writing: ``check(arrays, head)``
    returning a message, metadata over :func:`_json_cap`.  Returns the path.

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
    try:  # one round trip: the metadata as load will see it (tuples as lists, ...)
        head = json.loads(json.dumps(dict(head, format=fmt), default=json_default))
        text = json.dumps(dict(head, sha256=checksum(arrays, head)), sort_keys=True)
    except (TypeError, ValueError, RecursionError) as exc:
        raise V.fail(func, "self", "a result whose metadata JSON can hold",
                     f"{type(exc).__name__}: {exc}") from None
    what = check(arrays, head) if check is not None else None
    if what:
        raise V.fail(func, "self", "a consistent result (what load accepts)",
                     f"{what} (nothing written to {path!r})")
    cap = _json_cap(a.shape for a in arrays.values())
    if len(text) > cap:
        raise V.fail(func, "self", f"a result whose metadata (names, meta) fits in {cap} "
                     "characters", f"{len(text)} characters (nothing written to {path!r})")
    folder = os.path.dirname(os.path.abspath(path))
    tmp = CK.temporary(folder, os.path.basename(path))  # killed writers' ones deleted
    try:
        with CK.hold(open(tmp, "xb")) as fh:
            CK.savez(fh, True, _json=np.array(text), **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _sync_folder(folder)
    except OSError as exc:
        raise V.fail(func, "path", "a file in a writable directory with space left",
                     f"{path!r} ({exc.strerror or exc})") from None
    finally:
        if os.path.lexists(tmp):
            os.remove(tmp)
    return path


def _sync_folder(folder):
    """Flush the rename to disk (where the file system allows it)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - file systems without directory fsync
        pass
    finally:
        os.close(fd)


# ------------------------------------------------------------------------ reading
def read_npz(path, schema, *, fmt, func="load", writer=None, optional=(), max_bytes=None,
             bind=None, check=None, legacy=None):
    """Validate and read a file written by :func:`write_npz`: (arrays, head without
    ``format`` and ``sha256``), or one :class:`fastgd.FastGDValueError` naming ``func``,
    ``path`` and what is wrong.

    ``schema``: name -> (dims, dtype kinds), dims ints or names (a name is one length in
    every array).  Before any array is decompressed: a regular file
    (:func:`open_regular`), at most :data:`MAX_MEMBERS` members, exactly the schema's
    (``optional`` ones may be absent), valid headers, shapes consistent with each other
    and with ``bind(head)`` (lengths the metadata fixes, e.g. ``{"d": 3}``, or an error
    message), JSON within :func:`_json_cap`, a total under ``max_bytes`` (default
    :func:`max_bytes_default`).  Then the checksum and ``check(arrays, head)`` (None or
    what is wrong).  Format ``legacy``: an array-only checksum, or none, is accepted.

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
    writer = writer or fmt

    def bad(p, what):
        return _bad(p, what, func, writer)

    path = npz_path(func, path, reading=True)
    limit = _limit(func, max_bytes)
    with _open_zip(func, path, limit, bad) as zf:
        heads = _members(zf, path, schema, optional, bad)
        total = sum(info.file_size for info, _ in heads.values())
        if total > limit:
            raise bad(path, f"its arrays declare {total / 2**30:.3g} GiB, more than the "
                      f"limit max_bytes = {limit / 2**30:.3g} GiB (pass a larger "
                      "max_bytes to read it)")
        cap = _json_cap(shp for k, (_, (shp, _dt)) in heads.items() if k != "_json")
        chars = heads["_json"][1][1].itemsize // 4
        if chars > cap:
            raise bad(path, f"its JSON metadata declares {chars} characters, more than "
                      f"{cap} for its arrays")
        head = _head(_read_member(zf, heads["_json"][0], path, bad), path, fmt, bad, legacy)
        fixed = bind(head) if bind is not None else {}
        if isinstance(fixed, str):
            raise bad(path, fixed)
        _bind_dims(path, schema, heads, bad, dict(fixed))
        arrays = {k: _read_member(zf, info, path, bad) for k, (info, _) in heads.items()
                  if k != "_json"}
    sha, old = head.pop("sha256", None), head.pop("format") == legacy
    if (sha, old) != (None, True) and sha != (checksum(arrays) if old else checksum(
            arrays, dict(head, format=fmt))):
        raise bad(path, "its content does not match its checksum (damaged or edited)")
    what = check(arrays, dict(head, format=fmt)) if check is not None else None
    if what:
        raise bad(path, what)
    return arrays, head


def _read_member(zf, info, path, bad):
    try:
        with zf.open(info) as fp:
            return np.lib.format.read_array(fp, allow_pickle=False)
    except MemoryError:
        raise bad(path, f"member {info.filename!r} needs {info.file_size} bytes: more "
                  "memory than is available (pass a smaller max_bytes to refuse such "
                  "files up front)") from None
    except _MEMBER_ERRORS as exc:
        raise bad(path, f"member {info.filename!r} is damaged ({exc})") from None


def _head(a, path, fmt, bad, legacy=None):
    """The parsed JSON metadata, an object of format ``fmt`` with a checksum."""
    try:
        head = json.loads(str(a))
    except (ValueError, RecursionError, MemoryError) as exc:
        raise bad(path, f"its JSON metadata is not valid JSON ({exc})") from None
    if not isinstance(head, dict):
        raise bad(path, f"its JSON metadata is a {type(head).__name__}, not an object")
    if head.get("format") not in (fmt, legacy or fmt):
        raise bad(path, f"format {str(head.get('format'))[:80]!r} (expected {fmt!r})")
    if not isinstance(head.get("sha256", "" if head["format"] == legacy else None), str):
        raise bad(path, "its metadata holds no checksum ('sha256')")
    return head


def _members(zf, path, schema, optional, bad):
    """{name: (ZipInfo, (shape, dtype))} of the members (headers only, kinds checked)."""
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise bad(path, f"{len(infos)} members, more than a result file has")
    seen = set()
    heads = {}
    for info in infos:
        if info.filename in seen:
            raise bad(path, f"member {info.filename!r} appears more than once")
        seen.add(info.filename)
        key = info.filename[:-4] if info.filename.endswith(".npy") else None
        if key not in schema and key != "_json":
            raise bad(path, f"unexpected member {info.filename[:80]!r}")
        if info.flag_bits & 0x1:
            raise bad(path, f"member {info.filename!r} is encrypted")
        heads[key] = (info, _header(zf, info, path, bad)[:2])
    missing = [k for k in ("_json", *schema) if k not in heads and k not in optional]
    if missing:
        raise bad(path, f"missing array(s) {', '.join(map(repr, missing))}")
    shp, dtype = heads["_json"][1]
    if shp != () or dtype.kind != "U":
        raise bad(path, f"'_json' has shape {shp} and dtype {dtype}; expected a text scalar")
    for k, (_, (_shp, dtype)) in heads.items():
        if k != "_json" and dtype.kind not in schema[k][1]:
            raise bad(path, f"{k!r} has dtype {dtype}; expected dtype kind(s) "
                      f"{schema[k][1]!r} (f float, iu integer, b bool)")
    return heads


def _bind_dims(path, schema, heads, bad, bound):
    """Bind the schema's named lengths (``bound``: fixed by the metadata) to shapes."""
    fixed = dict(bound)
    for k, (dims, _) in schema.items():
        if k not in heads:
            continue
        shp = heads[k][1][0]
        if len(shp) != len(dims):
            raise bad(path, f"{k!r} has shape {shp}; expected {len(dims)} axes {dims}")
        for n, d in zip(shp, dims, strict=True):
            want = d if isinstance(d, int) else bound.setdefault(d, n)
            if n != want:
                src = f" ({d} = {want} from the metadata)" if d in fixed else ""
                raise bad(path, f"{k!r} has shape {shp}; expected "
                          f"{tuple(bound.get(x, x) for x in dims)}{src}")
    return bound


def peek_format(path, max_bytes=None):
    """The ``format`` a result file declares, or None when it cannot tell (reads the
    small ``_json`` member only), so that ``load`` hands each file to its reader.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgd.engine.files import peek_format, write_npz
    >>> p = write_npz("demo", "peek", {"a": np.zeros(1)}, {}, "demo-1")
    >>> peek_format(p), peek_format("no-such-file.npz"), peek_format("/dev/zero")
    ('demo-1', None, None)
    """
    try:
        path = npz_path("load", path, reading=True)
        with _open_zip("load", path, _limit("load", max_bytes), _bad) as zf:
            info = zf.getinfo("_json.npy")
            if info.file_size > 4 * JSON_BASE + 4096:
                return None
            head = json.loads(str(_read_member(zf, info, path, _bad)))
    except Exception:  # anything unreadable: the reader says what is wrong
        return None
    fmt = head.get("format") if isinstance(head, dict) else None
    return fmt if isinstance(fmt, str) else None


# ------------------------------------------------------------------ data files
def read_arrays(func, path, names, *, rows=None, max_bytes=None):
    """The arrays ``names`` of a plain ``.npz`` (``np.savez``: a dataset's ``X`` and
    ``y``), read as safely as a result file (:func:`open_regular`, the zip directory and
    the headers bounded first): numbers only (bool, integer, float), and with ``rows``
    only the first ``rows`` rows of each array are decompressed.  One
    :class:`fastgd.FastGDValueError` naming ``func``, ``path`` and what is wrong.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgd.engine.files import read_arrays
    >>> np.savez("data.npz", X=np.arange(12.0).reshape(6, 2), y=np.ones(6))
    >>> a = read_arrays("demo", "data.npz", ("X", "y"), rows=2)
    >>> a["X"].tolist(), a["y"].shape
    ([[0.0, 1.0], [2.0, 3.0]], (2,))
    """
    def bad(p, what):
        return V.fail(func, "path", "an .npz file of numeric arrays "
                      + ", ".join(map(repr, names)), f"{p!r}: {what}")

    path = npz_path(func, path, reading=True)
    limit = _limit(func, max_bytes)
    with _open_zip(func, path, limit, bad) as zf:
        infos = {}
        for info in zf.infolist():
            if info.filename in infos:
                raise bad(path, f"member {info.filename!r} appears more than once")
            infos[info.filename] = info
        return {k: _rows(zf, infos, k, rows, limit, path, bad) for k in names}


def _rows(zf, infos, name, rows, limit, path, bad):
    """The first ``rows`` rows of one member (all of it when None or in Fortran order)."""
    info = infos.get(name + ".npy")
    if info is None:
        raise bad(path, f"no array {name!r} (it holds {sorted(infos)[:8]})")
    shape, dtype, fortran, skip = _header(zf, info, path, bad, fortran_ok=True)
    if dtype.kind not in "biuf":  # text
        raise bad(path, f"{name!r} has dtype {dtype}; expected numbers")
    cut = rows is not None and len(shape) > 0 and not (fortran and len(shape) > 1)
    keep = (min(rows, shape[0]),) + tuple(shape[1:]) if cut else tuple(shape)
    nbytes = math.prod(keep) * dtype.itemsize
    if nbytes > limit:
        raise bad(path, f"{name!r} needs {nbytes / 2**30:.3g} GiB, more than the limit "
                  f"max_bytes = {limit / 2**30:.3g} GiB")
    try:
        with zf.open(info) as fp:
            fp.read(skip)
            data = fp.read(nbytes)
        if len(data) != nbytes:
            raise EOFError(f"{len(data)} of {nbytes} bytes")
        a = np.frombuffer(data, dtype=dtype)
    except MemoryError:
        raise bad(path, f"{name!r} needs more memory than is available") from None
    except _MEMBER_ERRORS as exc:
        raise bad(path, f"member {info.filename!r} is damaged ({exc})") from None
    a = a.reshape(keep[::-1]).T if fortran else a.reshape(keep)
    return (a[:rows] if rows is not None and a.ndim else a).copy()


def check_kinds(head, kinds):
    """What is wrong with metadata's types (None: nothing); ``kinds``: field -> type or
    tuple of types (None allows null, ``...`` absence; float accepts integers, a bool
    is never a number).

    Examples
    --------
    >>> from fastgd.engine.files import check_kinds
    >>> check_kinds({"n": 2}, {"n": int}) is None, check_kinds({"n": True}, {"n": int})
    (True, "metadata 'n' must be int; it is bool True")
    """
    extra = sorted(set(head) - set(kinds) - {"format", "sha256"})
    if extra:
        return f"unexpected metadata {str(extra)[:80]}"
    for k, t in kinds.items():
        ts, v = t if isinstance(t, tuple) else (t,), head.get(k, ...)
        if (v is None and None in ts) or (v is ... and ... in ts):
            continue
        ok = [x for x in ts if x is not None and x is not ...] + ([int] if float in ts else [])
        if v is ... or not isinstance(v, tuple(ok)) or (isinstance(v, bool) and bool not in ok):
            got = "missing" if v is ... else f"{type(v).__name__} {str(v)[:40]}"
            return f"metadata {k!r} must be " + " or ".join(
                "null" if x is None else x.__name__ for x in ts if x is not ...) \
                + f"; it is {got}"
    return None


def status_rules(status, diverged_at, steps_to_tol, loss=None, steps=None):
    """What is wrong with outcome arrays (None: nothing): codes of :class:`fastgd.Status`;
    ``diverged_at`` >= 0 exactly where DIVERGED, ``steps_to_tol`` >= 0 where CONVERGED,
    both in [-1, ``steps``]; ``loss`` never NaN or < 0, finite unless DIVERGED/NOT_RUN.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgd.engine.files import status_rules
    >>> status_rules(np.array([1, 2]), np.array([-1, 4]), np.array([3, -1])) is None
    True
    >>> status_rules(np.array([1, 2]), np.array([-1, -1]), np.array([3, -1]))[:40]
    "'diverged_at' disagrees with 'status' (a"
    """
    from fastgd.status import Status

    st, div, tol = (np.asarray(a) for a in (status, diverged_at, steps_to_tol))
    codes = [int(s) for s in Status]  # plain ints (see fastgd.linear.problem.BOUNDED)
    B, C, D = (int(s) for s in (Status.BOUNDED, Status.CONVERGED, Status.DIVERGED))
    if st.dtype.kind not in "iu" or not np.isin(st, codes).all():
        return f"'status' holds codes outside {sorted(codes)}"
    if (div < -1).any() or (tol < -1).any():
        return "'diverged_at' or 'steps_to_tol' holds values below -1"
    if steps is not None and ((div > steps).any() or (tol > steps).any()):
        return f"'diverged_at' or 'steps_to_tol' beyond the budget of {steps}"
    if ((div >= 0) != (st == D)).any():
        return ("'diverged_at' disagrees with 'status' (a DIVERGED cell without a step, or "
                "a step on one that did not diverge)")
    if ((st == C) & (tol < 0)).any():
        return "'steps_to_tol' is -1 on a CONVERGED cell"
    if loss is not None:
        loss = np.asarray(loss, dtype=float)
        if np.isnan(loss).any() or (loss < 0).any():
            return "the final loss holds NaN or negative values"
        if not np.isfinite(loss[(st == B) | (st == C)]).all():
            return "a BOUNDED or CONVERGED cell has a non-finite final loss"
    return None
