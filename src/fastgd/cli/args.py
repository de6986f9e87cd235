"""The ``fastgd`` command's shared argument helpers: :class:`UsageError`, grids
('LO:HI:N', lists, tables), TOML sweep specs merged with the flags, output file names
checked before any work, the options every figure-writing command shares, and saving a
figure.  A leaf of :mod:`fastgd.cli`: it imports none of the other command modules.

Bad usage raises :class:`UsageError` (exit 2, one line)."""

from __future__ import annotations

import argparse
import os
import stat
import sys
from pathlib import Path

FORMATS = ("png", "pdf", "svg")
SPEC_KEYS = {
    "method": "gd or sgd",
    "lr": "learning rates: a list, a number, 'LO:HI:N' (geometric) or {min, max, num, scale}",
    "lr_unit": "absolute, or eta_max (lr in multiples of each dataset's 2/lambda_max)",
    "condition": "condition numbers kappa of Gaussian datasets (as lr)",
    "data": "'lecture', 'lecture-normalized', 'lecture-whitened', a .npz with X and y, or a list",
    "transform": "rows per dataset: 'raw,standardize,whiten' or a list of them",
    "steps": "GD steps", "epochs": "SGD epochs", "batch_size": "SGD batch size",
    "order": "SGD order: cyclic, shuffle or replacement", "seeds": "number of SGD seeds",
    "seed": "first seed (SGD sample orders and the Gaussian data)",
    "momentum": "heavy-ball momentum beta", "nesterov": "Nesterov momentum (bool)",
    "bias": "append a constant input (bool)", "tol": "convergence tolerance",
    "blowup": "divergence threshold factor", "n": "samples per Gaussian dataset",
    "d": "inputs per Gaussian dataset", "fix": "lambda_max or lambda_min",
    "curve_points": "loss-curve points kept per cell", "lanes": "SIMD lanes per chunk",
    "threads": "worker threads", "theory": "compute SGD theory limits (bool)",
    "checkpoint": "directory that makes the sweep resumable (rerun to resume)",
    "dtype": "float64 or float32", "backend": "cpu or cuda",
}


#: The figure resolutions --dpi accepts: below, text cannot be rendered; above, one
#: figure's pixels take gigabytes.
DPI = (20, 1200)
#: Smallest magnitude (other than 0) of a grid value.
TINY = 1e-300
#: Most points in one grid axis given on the command line or in a spec.
GRID_MAX = 10**7


class UsageError(Exception):
    """Bad usage or a bad spec: exit 2 with a one-line message."""


# --------------------------------------------------------------------------- parsing
def parse_grid(text, name="value"):
    """'LO:HI:N' (geometric), 'LO:HI:N:lin', 'a,b,c' or a single number -> list of floats."""
    import math

    s = str(text).strip()
    try:
        if ":" in s:
            parts = s.split(":")
            if len(parts) not in (3, 4):
                raise ValueError
            lo, hi, num = float(parts[0]), float(parts[1]), int(parts[2])
            scale = parts[3] if len(parts) == 4 else "log"
            return _not_tiny(_grid(lo, hi, num, scale, name), name)
        vals = [float(v) for v in s.split(",") if v.strip()]
    except (ValueError, UsageError) as exc:
        if isinstance(exc, UsageError):
            raise
        raise UsageError(f"'{name}' must be 'LO:HI:N' (geometric), 'LO:HI:N:lin' or a comma "
                         f"list of numbers; got {text!r}") from None
    if not vals or not all(math.isfinite(v) for v in vals):
        raise UsageError(f"'{name}' must hold finite numbers; got {text!r}")
    return _not_tiny(vals, name)


def _not_tiny(vals, name):
    """``vals``, refusing magnitudes below 1e-300 other than 0 (subnormal numbers: their
    reciprocals overflow and no run can resolve them)."""
    if any(v != 0 and abs(v) < TINY for v in vals):
        raise UsageError(f"'{name}' must hold 0 or magnitudes of at least {TINY:g}; got "
                         f"{min(abs(v) for v in vals if v != 0):g}")
    return vals


def _grid(lo, hi, num, scale, name):
    import math

    if scale not in ("log", "lin"):
        raise UsageError(f"'{name}' scale must be 'log' or 'lin'; got {scale!r}")
    if not (math.isfinite(lo) and math.isfinite(hi)) or num < 1:
        raise UsageError(f"'{name}' must have finite ends and N >= 1; got {lo}:{hi}:{num}")
    if num > GRID_MAX:
        raise UsageError(f"'{name}' must have N <= {GRID_MAX:,} points; got N = {num:,} "
                         "(split the sweep, or pass the grid to fastgd.sweep from Python)")
    if scale == "log" and (lo <= 0 or hi <= 0):
        raise UsageError(f"'{name}' geometric grid needs LO, HI > 0; got {lo}:{hi}")
    if num == 1:
        return [lo]
    if scale == "log":
        a, b = math.log(lo), math.log(hi)
        return [math.exp(a + (b - a) * k / (num - 1)) for k in range(num)]
    return [lo + (hi - lo) * k / (num - 1) for k in range(num)]


def _int_arg(flag, minimum=None, maximum=None):
    """argparse type: an integer in [minimum, maximum] (one-line error naming ``flag``)."""
    def conv(text):
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{flag}' must be an integer; got {text!r}") \
                from None
        if minimum is not None and v < minimum:
            raise argparse.ArgumentTypeError(f"'{flag}' must be >= {minimum}; got {v}")
        if maximum is not None and v > maximum:
            raise argparse.ArgumentTypeError(f"'{flag}' must be <= {maximum}; got {v}")
        return v

    conv.__name__ = flag.lstrip("-")
    return conv


def _grid_arg(name):
    def conv(text):
        try:
            return parse_grid(text, name)
        except UsageError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    conv.__name__ = name
    return conv


def _spec_grid(value, name):
    if isinstance(value, bool):
        raise UsageError(f"spec: '{name}' must be numbers; got {value!r}")
    if isinstance(value, (int, float)):
        return [float(value)]
    if isinstance(value, str):
        return parse_grid(value, name)
    if isinstance(value, list):
        if not value or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                for v in value):
            raise UsageError(f"spec: '{name}' must be a non-empty list of numbers; got {value!r}")
        return _not_tiny([float(v) for v in value], name)
    if isinstance(value, dict):
        extra = set(value) - {"min", "max", "num", "scale"}
        if extra or not {"min", "max", "num"} <= set(value):
            raise UsageError(f"spec: '{name}' table needs min, max, num (and optional scale); "
                             f"got keys {sorted(value)}")
        try:
            return _grid(float(value["min"]), float(value["max"]), int(value["num"]),
                         value.get("scale", "log"), name)
        except (TypeError, ValueError):
            raise UsageError(f"spec: '{name}' min/max/num must be numbers; got {value!r}") from None
    raise UsageError(f"spec: '{name}' must be a list, a number, 'LO:HI:N' or a table; "
                     f"got {type(value).__name__}")


def read_toml(path, flag="--config"):
    """The table of a TOML spec file; a missing, special (directory, FIFO, device),
    oversized (over :data:`CONFIG_MAX` bytes), non-UTF-8 or malformed file exits 2
    naming ``flag``."""
    import tomllib

    p = str(path)
    fh, size = _open_regular(p, flag)
    with fh:
        raw = fh.read(CONFIG_MAX + 1)
    if max(size, len(raw)) > CONFIG_MAX:
        raise UsageError(f"'{flag}' must be a spec of at most {CONFIG_MAX:,} bytes; got "
                         f"{p!r} ({max(size, len(raw)):,} bytes)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"'{flag}' must be UTF-8 text; got {p!r} (invalid byte at "
                         f"offset {exc.start})") from None
    try:
        return tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError) as exc:
        raise UsageError(f"'{flag}' file {p!r} is not valid TOML: {exc}") from None


#: Most bytes of a ``--config`` spec.
CONFIG_MAX = 2**20
_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


def _kind(mode):
    return next((what for test, what in _KINDS if test(mode)), "not a regular file")


def _open_regular(path, flag):
    """(binary file, size) of the regular file ``path`` (links followed), opened without
    blocking; a missing, unreadable or special file (directory, FIFO, device, socket)
    exits 2 naming ``flag``, before anything is read."""
    p = str(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise UsageError(f"'{flag}' file {p!r} not found") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"'{flag}' file {p!r} cannot be read: {exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise UsageError(f"'{flag}' must be a regular file; got {p!r} ({_kind(st.st_mode)})")
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise UsageError(f"'{flag}' file {p!r} cannot be read: {exc.strerror}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):  # replaced since the first look
        os.close(fd)
        raise UsageError(f"'{flag}' must be a regular file; got {p!r} ({_kind(st.st_mode)})")
    return os.fdopen(fd, "rb"), st.st_size


def load_spec(path):
    """Read a TOML sweep spec; unknown keys and bad types exit 2."""
    p = Path(path)
    spec = read_toml(p)
    if "sweep" in spec and isinstance(spec["sweep"], dict) and len(spec) == 1:
        spec = spec["sweep"]
    unknown = sorted(set(spec) - set(SPEC_KEYS))
    if unknown:
        raise UsageError(f"spec {str(p)!r}: unknown key {unknown[0]!r} "
                         f"(known: {', '.join(sorted(SPEC_KEYS))})")
    return spec


def _check_type(spec, key, types, what):
    if key in spec and spec[key] is not None:
        v = spec[key]
        if isinstance(v, bool) and bool not in types:
            raise UsageError(f"spec: '{key}' must be {what}; got {v!r}")
        if not isinstance(v, types):
            raise UsageError(f"spec: '{key}' must be {what}; got {v!r}")


def _merge(args, spec):
    """Spec values overridden by the flags that were given -> a plain dict."""
    cfg = dict(spec)
    for key in ("method", "lr", "lr_unit", "condition", "data", "transform", "steps", "epochs",
                "batch_size", "order",
                "seeds", "momentum", "nesterov", "tol", "n", "d", "theory", "seed", "threads",
                "checkpoint", "dtype", "backend"):
        v = getattr(args, key, None)
        if v is not None:
            cfg[key] = v
    if getattr(args, "almost_sure", False):
        cfg["almost_sure"] = True
    return cfg


# --------------------------------------------------------------------------- output files
def _writable_target(p, flag="--out"):
    """Refuse, before any work, an output whose directory cannot be created or written:
    the nearest existing ancestor must be a writable directory."""
    import os

    if not p.name:
        raise UsageError(f"'{flag}' must be a file name; got {str(p)!r}")
    try:
        mode = os.stat(p).st_mode
    except OSError:
        mode = None
    if mode is not None and stat.S_ISDIR(mode):
        raise UsageError(f"'{flag}' must be a file name; got the directory {str(p)!r}")
    if mode is not None and not stat.S_ISREG(mode):  # a FIFO would block, a device vanish
        raise UsageError(f"'{flag}' must name a regular file (it is replaced); got {str(p)!r} "
                         f"({_kind(mode)})")
    parent = p.parent if str(p.parent) else Path(".")
    anc = parent
    while not anc.exists() and anc != anc.parent:
        anc = anc.parent
    if not anc.is_dir():
        raise UsageError(f"'{flag}' must be in a directory; got {str(p)!r} "
                         f"({str(anc)!r} is not a directory)")
    ok = os.access(anc, os.W_OK | os.X_OK) and (not p.exists() or os.access(p, os.W_OK))
    if ok:  # os.access trusts permission bits (root, read-only mounts): try for real
        import tempfile

        try:
            with tempfile.TemporaryFile(dir=anc):
                pass
        except OSError:
            ok = False
    if not ok:
        raise UsageError(f"'{flag}' must be writable; got {str(p)!r} "
                         f"({str(anc if not p.exists() else p)!r} is not writable)")
    return p


def _out_path(out, fmt, default_stem, flag="--out"):
    """The output file: --format wins; else the suffix of --out; else png.  Its
    directory must exist (or be creatable) and be writable: checked before any work."""
    return _writable_target(_out_name(out, fmt, default_stem, flag), flag)


def _out_name(out, fmt, default_stem, flag="--out"):
    if out is None:
        return Path(f"{default_stem}.{fmt or 'png'}")
    p = Path(out)
    if not str(out).strip() or not p.name:
        raise UsageError(f"'{flag}' must be a file name; got {out!r}")
    suf = p.suffix.lower().lstrip(".")
    if fmt is None:
        if suf in FORMATS:
            return p
        if suf:
            raise UsageError(f"'{flag}' must end in .png, .pdf or .svg (or give --format); "
                             f"got {out!r}")
        return p.with_suffix(".png")
    if suf == fmt:
        return p
    return p.with_name(p.name + f".{fmt}") if suf not in FORMATS else p.with_suffix(f".{fmt}")


# --------------------------------------------------------------------------- options
def common_options(p, *, seed=None, threads=True, progress=True, figures=True):
    """Add the shared options that apply to subcommand ``p``: ``--seed`` (with the help
    text ``seed``, none when it is None), ``--threads``, ``--progress`` and, for commands
    that write figures, ``--format`` and ``--dpi``."""
    if not (seed or threads or progress or figures):
        return
    g = p.add_argument_group("common options")
    if seed:
        g.add_argument("--seed", type=_int_arg("--seed", 0, 2**63 - 1), default=None,
                       metavar="INT", help=seed)
    if threads:
        g.add_argument("--threads", type=_int_arg("--threads", 1), default=None, metavar="N",
                       help="worker threads (default: all cores)")
    if progress:
        g.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                       help="progress bar (default: on for a terminal when the work is long)")
    if figures:
        g.add_argument("--format", choices=FORMATS, default=None,
                       help="figure format (default: from --out, else png)")
        g.add_argument("--dpi", type=_int_arg("--dpi", DPI[0], DPI[1]), default=150,
                       help=f"figure resolution, {DPI[0]} to {DPI[1]} (default 150)")


# --------------------------------------------------------------------------- figures
def _pyplot():
    """matplotlib.pyplot on the Agg backend (the commands only write files)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path, dpi):
    """Write ``fig`` to ``path`` atomically (a temporary file with the same extension in
    the same directory, flushed, then renamed over ``path``: an interrupted or failed
    write leaves the old figure whole), creating the directory; close the figure when
    pyplot manages it, and return the path; temporaries that writers killed there
    (SIGKILL) left are deleted first.  Ctrl-C waits until the file is whole
    (:data:`SIGINT`, whose ``written`` then holds the path: a caller that catches that
    Ctrl-C knows the figure is there)."""
    from fastgd.engine.checkpoint import TEMPORARIES, hold, remove_stale

    path = Path(path)
    with SIGINT.deferred():
        if path.parent and not path.parent.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale(path.parent, TEMPORARIES["figure"])  # those of killed writers
        tmp = path.with_name(f".tmp-{os.getpid()}-{os.urandom(4).hex()}-{path.name}")
        try:
            with hold(open(tmp, "wb")) as fh:
                fig.savefig(fh, dpi=dpi, format=path.suffix[1:] or None)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
            SIGINT.written.add(str(path))
        finally:
            if tmp.exists():
                tmp.unlink()
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.close(fig)
    return path


# --------------------------------------------------------------------------- Ctrl-C
class _Sigint:
    """Ctrl-C in the ``fastgd`` command (one instance, :data:`SIGINT`).

    While a command runs (:meth:`install`), the first SIGINT raises KeyboardInterrupt
    (the command then saves and draws what finished) and every later one is ignored, so
    that saving, drawing and exiting are never cut short (no truncated file, no
    traceback, no death by signal).  Inside :meth:`deferred` (a figure being written) a
    first SIGINT waits for the end of the block.  After the command (:meth:`finish`, the
    process entry point only), a SIGINT during the interpreter's exit prints one line
    and ends the process with 130 at once.
    """

    def __init__(self):
        self.count = 0          # SIGINTs since install()
        self.depth = 0          # nesting of deferred() blocks
        self.pending = False    # a first SIGINT that arrived inside deferred()
        self.cmd = "fastgd"     # who says "interrupted"
        self.reported = False   # the one line has been printed
        self.late = False       # the command has returned: only the exit is left
        self.previous = None    # the SIGINT handler install() replaced
        self.written = set()    # figures written whole since install() (_save)

    def handler(self, signum, frame):
        """The SIGINT handler (SIGTERM too, inside a checkpointed grid: it opts in with
        ``handles_sigterm``, :class:`fastgd.engine.executors.SigtermAsInterrupt`)."""
        self.count += 1
        if self.late:
            self._exit_now()
        if self.count > 1:
            return  # the first interrupt is being handled: let it finish
        if self.depth:
            self.pending = True
            return
        raise KeyboardInterrupt

    def _exit_now(self):
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 - a closed or broken stream: exit anyway
                pass
        if not self.reported:
            try:
                os.write(2, f"{self.cmd}: interrupted\n".encode())
            except OSError:
                pass
        os._exit(130)

    def report(self):
        """Print the one line 'CMD: interrupted' on stderr (once)."""
        if not self.reported:
            self.reported = True
            print(f"{self.cmd}: interrupted", file=sys.stderr)

    def install(self):
        """Handle SIGINT as above (main thread only); returns the handler to restore."""
        import signal
        import threading

        self.count, self.depth, self.pending = 0, 0, False
        self.reported = self.late = False
        self.cmd, self.previous, self.written = "fastgd", None, set()
        if threading.current_thread() is not threading.main_thread():
            return None
        self.previous = signal.signal(signal.SIGINT, self.handler)
        return self.previous

    def restore(self, previous):
        import signal

        if previous is not None:
            signal.signal(signal.SIGINT, previous)

    def end(self, rc, entry):
        """The command returned ``rc``: print the one line for 130, then :meth:`finish`
        (``entry``: the process entry point) or restore the handler :meth:`install`
        replaced.  Idempotent: a Ctrl-C raised while it runs (the first one can come
        at any moment) is caught by the caller, which calls it again with 130."""
        if rc == 130:
            self.report()
        if entry:
            self.finish()
        else:
            self.restore(self.previous)
        return rc

    def finish(self):
        """The command has returned (process entry point): a SIGINT from now on ends the
        process with 130 and one line at once; one during the interpreter's last steps
        (after the exit handlers) is blocked rather than killing the process."""
        import atexit
        import signal

        self.late = True
        if self.count:  # an interrupt was already handled: any further one just exits
            self.reported = True
        import threading

        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGINT) != self.handler:  # install() was cut short
            signal.signal(signal.SIGINT, self.handler)
        if hasattr(signal, "pthread_sigmask"):
            atexit.register(signal.pthread_sigmask, signal.SIG_BLOCK, {signal.SIGINT})

    def deferred(self):
        """A context in which a first SIGINT waits until the block ends."""
        import contextlib
        import signal
        import threading

        @contextlib.contextmanager
        def block():
            main = threading.current_thread() is threading.main_thread()
            previous = None
            if main and signal.getsignal(signal.SIGINT) != self.handler:
                previous = signal.signal(signal.SIGINT, self.handler)
                self.count, self.pending = 0, False
            self.depth += 1
            try:
                yield
            finally:
                self.depth -= 1
                if previous is not None:
                    signal.signal(signal.SIGINT, previous)
                if self.pending and not self.depth:
                    self.pending = False
                    if main and (previous is None or previous is not signal.SIG_IGN):
                        raise KeyboardInterrupt

        return block()


_Sigint.handler.handles_sigterm = True  # SigtermAsInterrupt hands SIGTERM to it

#: The command's Ctrl-C handling (see :class:`_Sigint`).
SIGINT = _Sigint()
