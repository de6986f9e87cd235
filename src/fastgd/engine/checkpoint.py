"""Checkpoint directories for resumable sweeps (``fastgd.sweep(..., checkpoint=DIR)``).

Layout of DIR::

    manifest.json          format, fastgd version, the spec's hash, a readable summary
    chunk-<hash>-<k>.npz   one block of finished chunks each (rows of the chunk table
                           and their results), written to a temporary name and renamed
                           atomically (os.replace) once complete

Every chunk file carries the spec's hash and a SHA-256 checksum of its arrays: a file
that is truncated, corrupt or from another spec is detected, ignored and recomputed,
never used.  A rerun of the same call reads the finished chunks, computes only the
missing ones and returns a result bit-identical to an uninterrupted run; a different
spec in the same directory is refused with :class:`fastgd.FastGDValueError`.  A process
killed at any moment (SIGKILL included) leaves a resumable directory: only the chunks
whose files had not yet been renamed are lost.

Several processes may run the same sweep on one directory at once (each computes its
missing chunks; duplicates are harmless, every process returns the same result).  Each
holds a shared ``fcntl.flock`` on ``DIR/.lock`` while it works; temporaries
(``.tmp-*``, named per process) are deleted by a process that could take the lock
exclusively, i.e. when no other process is writing; while others work, only those whose
writer is gone (:func:`remove_stale`: its PID is no live process and nobody holds the
file's lock, which a writer takes while it writes, :func:`hold`).  A directory is refused, before any
computation, when it cannot be written, when it holds chunk files or other files but no
manifest (never emptied: they may belong to another sweep), or when it holds chunk files
of another spec.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import stat
import sys
import time
import traceback

import numpy as np

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no locking, temporaries never cleaned
    fcntl = None

from fastgd import validate as V

FORMAT = "fastgd-checkpoint-1"
LOCK = ".lock"
#: the per-cell result fields of a block when the caller names none (the linear
#: model's, :data:`fastgd.linear.executors.FIELDS`); every model may name its own
FIELDS = ("status", "w", "loss", "excess", "tol_at", "div_at", "rec_loss")


def _canon(v):
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (tuple, list)):
        return [_canon(x) for x in v]
    return v


def _flat(spec, prefix=""):
    """``spec`` as (name, value) pairs: a dict's items, a dataclass's fields (nested
    dataclasses flattened with dotted names)."""
    if dataclasses.is_dataclass(spec) and not isinstance(spec, type):
        items = [(f.name, getattr(spec, f.name)) for f in dataclasses.fields(spec)]
    else:
        items = list(spec.items())
    out = []
    for k, v in items:
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            out += _flat(v, f"{prefix}{k}.")
        else:
            out.append((f"{prefix}{k}", v))
    return out


def spec_hash(spec, chunks) -> str:
    """SHA-256 of a canonical form of a grid's job (a dataclass of arrays and scalars,
    e.g. :class:`fastgd.linear.contract.LinearJob`, or a dict) and its chunk table:
    scalars as sorted JSON, each array by name, dtype, shape and bytes.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgd.engine.checkpoint import spec_hash
    >>> h = spec_hash({"lr": np.array([0.5]), "T": 10}, np.zeros((1, 4), int))
    >>> len(h), h == spec_hash({"lr": np.array([0.5]), "T": 11}, np.zeros((1, 4), int))
    (64, False)
    """
    h = hashlib.sha256()
    items = dict(_flat(spec))
    scal = {k: _canon(v) for k, v in sorted(items.items()) if not isinstance(v, np.ndarray)}
    h.update(json.dumps(scal, sort_keys=True, default=str).encode())
    for k in sorted(k for k, v in items.items() if isinstance(v, np.ndarray)):
        a = np.ascontiguousarray(items[k])
        h.update(f"|{k}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    c = np.ascontiguousarray(chunks, dtype=np.int64)
    h.update(f"|chunks|{c.shape}|".encode())
    h.update(c.tobytes())
    return h.hexdigest()


def _digest(arrays, names) -> str:
    h = hashlib.sha256()
    for k in names:
        a = np.ascontiguousarray(arrays[k])
        h.update(f"|{k}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


class Checkpoint:
    """An open checkpoint directory for one sweep spec.

    Parameters
    ----------
    path : str or os.PathLike
        The directory (created if missing).
    spec : dataclass or dict
        The grid's job (arrays and scalars; e.g. a
        :class:`fastgd.linear.contract.LinearJob`).
    chunks : (n, 4) int64
        The sweep's chunk table.
    summary : dict
        A JSON-able description written into the manifest for people.
    func : str
        Name used in error messages.
    fields : tuple of str
        The per-cell result arrays of a block besides ``rows`` (default
        :data:`FIELDS`); a file lacking one is invalid (recomputed).
    """

    def __init__(self, path, spec, chunks, summary=None, func="sweep", fields=FIELDS):
        from fastgd.version import __version__

        self.path = os.fspath(path)
        self.func = func
        self.arrays = ("rows",) + tuple(fields)
        self.chunks = np.asarray(chunks, dtype=np.int64)
        self.hash = spec_hash(spec, self.chunks)
        self.version = __version__
        self._count = 0
        self._lock = None
        try:
            os.makedirs(self.path, exist_ok=True)
        except OSError as exc:
            raise V.fail(func, "checkpoint", "a directory that can be created",
                         f"{self.path!r} ({exc.strerror})") from exc
        _probe_writable(self.path, func)
        alone = self._acquire()
        try:
            self._open_manifest(summary)
            if alone:  # nobody else is writing: temporaries are leftovers of dead processes
                for name in os.listdir(self.path):
                    if name.startswith(".tmp-"):
                        _remove(os.path.join(self.path, name))
            else:  # others are writing: only the temporaries of writers that are gone
                remove_stale(self.path, TEMPORARIES["checkpoint"])
            if self._lock is not None and alone:
                fcntl.flock(self._lock, fcntl.LOCK_SH)  # let other processes join
        except BaseException:
            self.close()
            raise

    def _acquire(self):
        """Open DIR/.lock; return True when this process has it exclusively (no other
        process is working in the directory), else hold it shared."""
        if fcntl is None:  # pragma: no cover - not POSIX
            return False
        self._lock = open(os.path.join(self.path, LOCK), "a+")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            fcntl.flock(self._lock, fcntl.LOCK_SH)  # waits only for another's start-up
            return False

    def _open_manifest(self, summary):
        func = self.func
        man = os.path.join(self.path, "manifest.json")
        names = os.listdir(self.path)
        ours = f"chunk-{self.hash[:12]}-"
        foreign = sorted(n for n in names if n.startswith("chunk-") and n.endswith(".npz")
                         and not n.startswith(ours))
        if not os.path.exists(man):
            other = sorted(n for n in names if n != LOCK and not n.startswith(".tmp-"))
            if other:
                raise V.fail(func, "checkpoint", "a new or empty directory, or one with a "
                             "fastgd manifest.json",
                             f"{self.path!r}, which holds {len(other)} file(s) (e.g. "
                             f"{other[0]!r}) but no manifest.json; it is left untouched: use "
                             "another directory")
            m = {"format": FORMAT, "fastgd": self.version, "spec_hash": self.hash,
                 "n_chunks": int(self.chunks.shape[0]), "created": time.time(),
                 "spec": summary or {}}
            _atomic_write_text(man, json.dumps(m, indent=1, default=str, sort_keys=True))
            return
        try:
            with open(man) as fh:
                m = json.load(fh)
            if not isinstance(m, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError, RecursionError) as exc:
            raise V.fail(func, "checkpoint", "a fastgd checkpoint directory",
                         f"{self.path!r} with an unreadable manifest.json") from exc
        if m.get("format") != FORMAT:
            raise V.fail(func, "checkpoint", "a fastgd checkpoint directory",
                         f"{self.path!r} (manifest format {m.get('format')!r})")
        if m.get("spec_hash") != self.hash:
            raise V.fail(func, "checkpoint",
                         "a directory written by the same sweep (same data, grid and "
                         "options) or a new directory",
                         f"{self.path!r}, which holds a different sweep (spec hash "
                         f"{str(m.get('spec_hash'))[:12]}..., this sweep "
                         f"{self.hash[:12]}...); use another directory or delete it")
        if m.get("fastgd") != self.version:
            raise V.fail(func, "checkpoint", f"a directory written by fastgd "
                         f"{self.version}", f"{self.path!r}, written by fastgd "
                         f"{m.get('fastgd')}; use a new directory")
        if foreign:
            raise V.fail(func, "checkpoint", "a directory holding the chunk files of one "
                         "sweep", f"{self.path!r}, which also holds {len(foreign)} chunk "
                         f"file(s) of another sweep (e.g. {foreign[0]!r}); it is left "
                         "untouched: use another directory")

    def close(self):
        """Release the directory lock (the sweep calls it when it ends)."""
        if self._lock is not None:
            self._lock.close()  # closing the file releases the flock
            self._lock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # -- reading ---------------------------------------------------------------
    def files(self):
        return sorted(f for f in os.listdir(self.path)
                      if f.startswith("chunk-") and f.endswith(".npz"))

    def load(self):
        """Valid finished blocks as a list of result dicts; invalid files of this spec
        (truncated, corrupt) are deleted.  Files appear only by atomic rename, so a file
        another process is writing is never seen here."""
        table = {tuple(r) for r in self.chunks.tolist()}
        blocks, seen = [], set()
        for name in self.files():
            full = os.path.join(self.path, name)
            res = self._read(full, table)
            if res is None:
                _remove(full)
                continue
            key = [tuple(r) for r in res["rows"].tolist()]
            if seen.intersection(key):  # a duplicate (e.g. two runs raced): keep one
                continue
            seen.update(key)
            blocks.append(res)
        return blocks

    def _read(self, full, table):
        try:
            with np.load(full, allow_pickle=False) as z:
                head = json.loads(str(z["_json"]))
                res = {k: z[k] for k in self.arrays}
        except Exception:  # truncated, not a zip, missing keys, bad JSON...
            return None
        if not isinstance(head, dict) or head.get("spec_hash") != self.hash \
                or head.get("sha256") != _digest(res, self.arrays):
            return None
        rows = res["rows"]
        if rows.ndim != 2 or rows.shape[1] != 4:
            return None
        n = int((rows[:, 3] - rows[:, 2]).sum())
        if any(res[k].ndim == 0 or res[k].shape[0] != n for k in self.arrays[1:]):
            return None
        if not all(tuple(r) in table for r in rows.tolist()):
            return None
        return res

    # -- writing ---------------------------------------------------------------
    def write(self, res):
        """Write one block of results atomically (temporary file, then os.replace)."""
        if res["rows"].shape[0] == 0:
            return None
        arrays = {k: np.ascontiguousarray(res[k]) for k in self.arrays}
        head = {"spec_hash": self.hash, "sha256": _digest(arrays, self.arrays),
                "fastgd": self.version}
        self._count += 1
        r0 = arrays["rows"][0]
        name = (f"chunk-{self.hash[:12]}-{int(r0[0]):06d}-{int(r0[1]):06d}-{int(r0[2]):08d}"
                f"-{os.getpid()}-{os.urandom(3).hex()}-{self._count:06d}.npz")
        tmp = os.path.join(self.path, f".tmp-{name}")
        with hold(open(tmp, "wb")) as fh:
            savez(fh, False, _json=np.array(json.dumps(head)), **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, os.path.join(self.path, name))
        return name


def _probe_writable(path, func):
    """Refuse, before any computation, a directory this process cannot write in (read-only
    permissions, a read-only mount): create and delete a temporary file there."""
    probe = os.path.join(path, f".tmp-probe-{os.getpid()}-{os.urandom(4).hex()}")
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise V.fail(func, "checkpoint", "a directory this process can write in",
                     f"{path!r} ({exc.strerror or exc}); use a writable directory") from exc
    os.close(fd)
    _remove(probe)


def _atomic_write_text(path, text):
    tmp = os.path.join(os.path.dirname(path), f".tmp-{os.path.basename(path)}-"
                       f"{os.getpid()}-{os.urandom(4).hex()}")
    with hold(open(tmp, "w")) as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _remove(path):
    try:
        os.remove(path)
    except OSError:  # pragma: no cover - already gone / read-only
        pass


# ------------------------------------------------------------------ stale temporaries
#: The temporary names fastgd writes, each with its writer's PID (the first group that
#: matched): checkpoint chunks, probes and manifests (:class:`Checkpoint`), result files
#: (:func:`fastgd.engine.files.write_npz`), figures (``fastgd.cli.args._save``).
TEMPORARIES = {
    "checkpoint": re.compile(r"\.tmp-(?:chunk-[0-9a-f]{12}-\d+-\d+-\d+-(\d+)-[0-9a-f]{6}"
                             r"-\d+\.npz|(?:probe|manifest\.json)-(\d+)-[0-9a-f]{8})"),
    "npz": re.compile(r"\.tmp-.+\.npz-(\d+)-[0-9a-f]{8}"),
    "figure": re.compile(r"\.tmp-(\d+)-[0-9a-f]{8}-.+\.(?:png|pdf|svg)"),
}


def savez(fh, compress, **arrays):
    """``np.savez`` (``compress``: ``np.savez_compressed``) into the open file ``fh``.  A
    Ctrl-C inside a member's close comes out as the KeyboardInterrupt itself, not as the
    ValueError ("an open writing handle") that zipfile's cleanup raises over it, and the
    half-closed ZipFile is dropped here, silently (its ``__del__`` would print that
    ValueError again when the interrupt's traceback goes)."""
    try:
        (np.savez_compressed if compress else np.savez)(fh, **arrays)
        return
    except ValueError as exc:
        ki = exc.__context__
        while ki is not None and not isinstance(ki, KeyboardInterrupt):
            ki = ki.__context__
        if ki is None:
            raise
        hook, sys.unraisablehook = sys.unraisablehook, lambda _: None
        try:
            for tb in (exc.__traceback__, ki.__traceback__):
                traceback.clear_frames(tb)
        finally:
            sys.unraisablehook = hook
    raise ki  # outside the handler: no ValueError chained to it


def hold(fh):
    """Lock the temporary file ``fh`` this process is writing (``fcntl.flock``, released
    when it is closed) and return it: :func:`remove_stale` never deletes a locked file,
    so a writer on another machine or in another PID namespace (whose PID means nothing
    here) keeps its temporary."""
    if fcntl is not None:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
    return fh


def temporary(folder, name):
    """A fresh temporary name for the result file ``name`` in ``folder``
    (:func:`fastgd.engine.files.write_npz`: ``.tmp-NAME-PID-HEX``), after deleting the
    ones that writers killed there left (:func:`remove_stale`)."""
    remove_stale(folder, TEMPORARIES["npz"])
    return os.path.join(folder, f".tmp-{name}-{os.getpid()}-{os.urandom(4).hex()}")


def _alive(pid):
    """Whether ``pid`` may be a live process (POSIX ``kill(pid, 0)``; any doubt: True)."""
    if pid <= 0 or pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # EPERM: alive, another user's; EINVAL, too big
        return True
    return True


def _unlocked(path):
    """Whether ``path`` is a regular file that nobody holds a lock on (not followed when
    it is a link; never opened when it is not a regular file)."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return False
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # releases the lock just taken


def remove_stale(folder, pattern):
    """Delete the temporaries left in ``folder`` by writers that are gone (killed, e.g.
    SIGKILL): the names that fully match ``pattern`` (one of :data:`TEMPORARIES`) whose
    writer's PID is no live process of this machine and whose file nobody has locked
    (:func:`hold`).  Any other file, and every file where there is any doubt, is left
    alone; on systems without ``fcntl`` nothing is deleted.  Returns the names deleted.

    Examples
    --------
    >>> import os, subprocess, sys, tempfile
    >>> from fastgd.engine.checkpoint import TEMPORARIES, remove_stale
    >>> gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
    ...                       capture_output=True, text=True).stdout.strip()
    >>> d = tempfile.mkdtemp()
    >>> for pid in (gone, os.getpid()):
    ...     open(os.path.join(d, f".tmp-r.npz-{pid}-0badcafe"), "w").close()
    >>> remove_stale(d, TEMPORARIES["npz"]) == [f".tmp-r.npz-{gone}-0badcafe"]
    True
    >>> os.listdir(d) == [f".tmp-r.npz-{os.getpid()}-0badcafe"]   # a live writer's: kept
    True
    """
    if fcntl is None:  # pragma: no cover - not POSIX: kill(pid, 0) would signal
        return []
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    gone = []
    for name in names:
        m = pattern.fullmatch(name) if name.startswith(".tmp-") else None
        pid = next((int(g) for g in m.groups() if g is not None), 0) if m else 0
        full = os.path.join(folder, name)
        if m and not _alive(pid) and _unlocked(full):
            _remove(full)
            gone.append(name)
    return gone
