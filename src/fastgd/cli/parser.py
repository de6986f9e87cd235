"""The ``fastgd`` command's arguments: the argparse parser, TOML sweep specs merged with
the flags, grids ('LO:HI:N', lists, tables) and output file names, checked before any
work.  Bad usage raises :class:`UsageError` (exit 2, one line)."""

from __future__ import annotations

import argparse
from pathlib import Path

from fastgd.status import DEFAULT_ORDER, DEFAULT_TOL  # already loaded by `import fastgd`

FORMATS = ("png", "pdf", "svg")
SPEC_KEYS = {
    "method": "gd or sgd",
    "lr": "learning rates: a list, a number, 'LO:HI:N' (geometric) or {min, max, num, scale}",
    "lr_unit": "absolute, or eta_max (lr in multiples of each dataset's 2/lambda_max)",
    "condition": "condition numbers kappa of Gaussian datasets (as lr)",
    "data": "'lecture', 'lecture-normalized', 'lecture-whitened', a .npz with X and y, or a list",
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


#: Most points in one grid axis given on the command line or in a spec.
GRID_MAX = 10**7


class UsageError(Exception):
    """Bad usage or a bad spec: exit 2 with a one-line message."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2) instead of usage + message."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


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
            return _grid(lo, hi, num, scale, name)
        vals = [float(v) for v in s.split(",") if v.strip()]
    except (ValueError, UsageError) as exc:
        if isinstance(exc, UsageError):
            raise
        raise UsageError(f"'{name}' must be 'LO:HI:N' (geometric), 'LO:HI:N:lin' or a comma "
                         f"list of numbers; got {text!r}") from None
    if not vals or not all(math.isfinite(v) for v in vals):
        raise UsageError(f"'{name}' must hold finite numbers; got {text!r}")
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
        return [float(v) for v in value]
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


def read_toml(path):
    """The table of a TOML spec file; a missing or malformed file exits 2."""
    import tomllib

    p = Path(path)
    try:
        with open(p, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise UsageError(f"spec file {str(p)!r} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"spec file {str(p)!r} is not valid TOML: {exc}") from None


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
    for key in ("method", "lr", "lr_unit", "condition", "data", "steps", "epochs",
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

    if p.exists() and p.is_dir():
        raise UsageError(f"'{flag}' must be a file name; got the directory {str(p)!r}")
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


def _out_path(out, fmt, default_stem):
    """The output file: --format wins; else the suffix of --out; else png.  Its
    directory must exist (or be creatable) and be writable: checked before any work."""
    return _writable_target(_out_name(out, fmt, default_stem))


def _out_name(out, fmt, default_stem):
    if out is None:
        return Path(f"{default_stem}.{fmt or 'png'}")
    p = Path(out)
    suf = p.suffix.lower().lstrip(".")
    if fmt is None:
        if suf in FORMATS:
            return p
        if suf:
            raise UsageError(f"'--out' must end in .png, .pdf or .svg (or give --format); "
                             f"got {out!r}")
        return p.with_suffix(".png")
    if suf == fmt:
        return p
    return p.with_name(p.name + f".{fmt}") if suf not in FORMATS else p.with_suffix(f".{fmt}")


# --------------------------------------------------------------------------- parser
def _common(p):
    g = p.add_argument_group("common options")
    g.add_argument("--seed", type=int, default=None, metavar="INT",
                   help="first seed: SGD sample orders (seeds SEED..SEED+n-1) and the "
                        "Gaussian datasets (default 0)")
    g.add_argument("--threads", type=_int_arg("--threads", 1), default=None, metavar="N",
                   help="worker threads (default: all cores)")
    g.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar (default: on for a terminal when the work is long)")
    g.add_argument("--format", choices=FORMATS, default=None,
                   help="figure format (default: from --out, else png)")
    g.add_argument("--dpi", type=_int_arg("--dpi", 1, 10000), default=150,
                   help="figure resolution (default 150)")


def _sweep_flags(p, defaults_note):
    g = p.add_argument_group(f"sweep ({defaults_note})")
    g.add_argument("--method", choices=("gd", "sgd"), default=None,
                   help="batch gradient descent or stochastic (default gd)")
    g.add_argument("--lr", type=_grid_arg("lr"), default=None, metavar="GRID",
                   help="learning rates: LO:HI:N (geometric), LO:HI:N:lin, or a,b,c "
                        "(with --data and no --lr: 0.01:4:128 x each dataset's η_max for "
                        "GD, 0.001:4:96 for SGD)")
    g.add_argument("--lr-unit", choices=("absolute", "eta_max"), default=None,
                   help="unit of --lr: absolute, or multiples of each dataset's η_max = "
                        "2/λ_max (default: eta_max for the default grid of --data, "
                        "else absolute)")
    g.add_argument("--condition", type=_grid_arg("condition"), default=None, metavar="GRID",
                   help="condition numbers κ of Gaussian datasets (λ_max = 1), as --lr")
    g.add_argument("--data", default=None, action="append",
                   help="instead of --condition: lecture, lecture-normalized, "
                        "lecture-whitened, or FILE.npz with arrays X and y; repeat for "
                        "several datasets (rows named after the files)")
    g.add_argument("--steps", type=int, default=None,
                   help="GD steps (default 1000; with --data, 5 κ up to 100000)")
    g.add_argument("--epochs", type=int, default=None, help="SGD epochs")
    g.add_argument("--batch-size", type=int, default=None, help="SGD batch size (default 1)")
    g.add_argument("--order", choices=("cyclic", "shuffle", "replacement"), default=None,
                   help=f"SGD sample order (default {DEFAULT_ORDER})")
    g.add_argument("--seeds", type=int, default=None, help="SGD seeds per cell")
    g.add_argument("--momentum", type=float, default=None, help="heavy-ball momentum β")
    g.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=None,
                   help="Nesterov momentum")
    g.add_argument("--tol", type=float, default=None,
                   help=f"convergence tolerance ({DEFAULT_TOL:g})")
    g.add_argument("--n", type=int, default=None, help="samples per Gaussian dataset (100)")
    g.add_argument("--d", type=int, default=None, help="inputs per Gaussian dataset (2)")
    g.add_argument("--theory", action=argparse.BooleanOptionalAction, default=None,
                   help="SGD: compute the mean-square limit per dataset (default on) ")
    g.add_argument("--almost-sure", action="store_true",
                   help="SGD: also estimate the almost-sure (typical-run) limit (slower)")
    g.add_argument("--checkpoint", default=None, metavar="DIR",
                   help="write finished chunks to DIR; the same command run again resumes "
                        "(Ctrl-C / SIGTERM stop cleanly, exit 130)")
    g.add_argument("--dtype", choices=("float64", "float32"), default=None,
                   help="arithmetic of the runs (float32: faster, boundaries to ~1e-5)")
    g.add_argument("--backend", choices=("cpu", "cuda"), default=None,
                   help="cuda: one run per GPU thread (needs fastgd[cuda] and a GPU)")


def build_parser():
    # the commands import this module; they import nothing heavy until they run
    from fastgd.cli.commands import cmd_boundary, cmd_info, cmd_phase, cmd_plot, cmd_sweep
    from fastgd.cli.lecture import cmd_lecture

    p = _Parser(prog="fastgd", description="When does gradient descent converge, how fast, "
                "and where does it blow up? Phase diagrams, boundaries and the lecture.",
                epilog="Exit codes: 0 done, 1 failure, 2 bad usage or spec, 130 interrupted.")
    p.add_argument("--version", action="store_true", help="print the version and exit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    ph = sub.add_parser("phase", help="a phase diagram from built-in defaults (the main job)",
                        description="Sweep learning rate × condition number and draw the "
                        "phase diagram (converged / bounded / diverged) with the theory's "
                        "boundaries. GD defaults: η 0.01:10:128, κ 1:1e4:48, d = 2, 1000 "
                        "steps. SGD defaults: η 0.01:4:96, κ 1:1e3:32, 100 epochs, 4 seeds.")
    _sweep_flags(ph, "defaults above")
    ph.add_argument("--config", default=None, help="a TOML spec (flags override it)")
    ph.add_argument("--color", choices=("status", "steps"), default="status",
                    help="categorical outcome, or steps to tolerance (default status)")
    ph.add_argument("--out", default=None, help="figure file (default phase.png)")
    ph.add_argument("--save", default=None, metavar="RESULT.npz", help="also save the sweep")
    _common(ph)
    ph.set_defaults(func=cmd_phase)

    le = sub.add_parser("lecture", help="reproduce the lecture slide by slide",
                        description="The lecture on the built-in data: spectrum, batch GD at "
                        "η = 1.5 and 2.5, SGD at 0.2, SGD's per-sample rate vs the batch "
                        "rate, normalising the inputs, the 1-1-1 network. One figure per "
                        "slide in DIR and a table of the numbers on stdout.")
    le.add_argument("--out", default="lecture", help="output directory (default ./lecture)")
    le.add_argument("--no-plots", action="store_true", help="only print the table")
    _common(le)
    le.set_defaults(func=cmd_lecture)

    sw = sub.add_parser("sweep", help="run a sweep from a TOML spec and save it",
                        description="Run the sweep a TOML spec describes (keys: "
                        + ", ".join(sorted(SPEC_KEYS)) + "); flags override the spec. "
                        "Saves RESULT.npz (fastgd.load reads it).")
    sw.add_argument("--config", default=None, help="TOML spec")
    sw.add_argument("--out", default="result.npz", help="result file (default result.npz)")
    sw.add_argument("--plot", default=None, metavar="FILE", help="also draw the phase diagram")
    _sweep_flags(sw, "override the spec")
    _common(sw)
    sw.set_defaults(func=cmd_sweep)

    pl = sub.add_parser("plot", help="draw a saved sweep",
                        description="Draw a result saved by 'fastgd sweep' or fastgd.SweepResult.save.")
    pl.add_argument("result", help="RESULT.npz")
    pl.add_argument("--out", default=None, help="figure file (default RESULT.png)")
    pl.add_argument("--kind", choices=("phase", "boundary"), default="phase")
    pl.add_argument("--color", choices=("status", "steps"), default="status")
    _common(pl)
    pl.set_defaults(func=cmd_plot)

    bo = sub.add_parser("boundary", help="critical learning rate vs theory",
                        description="The divergence boundary by simulation (critical_lr: "
                        "growth-rate bisection for GD, half of the seeds diverged for SGD) "
                        "next to the theory's limits, on the lecture's data (default), "
                        "--data, or Gaussian datasets of given --condition.")
    bo.add_argument("--config", default=None, help="a TOML spec (data/condition, method, ...)")
    bo.add_argument("--method", choices=("gd", "sgd"), default=None)
    bo.add_argument("--data", default=None, action="append",
                    help="repeatable; lecture (default), lecture-normalized, "
                    "lecture-whitened, or FILE.npz")
    bo.add_argument("--condition", type=_grid_arg("condition"), default=None, metavar="GRID")
    bo.add_argument("--momentum", type=float, default=None)
    bo.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=None)
    bo.add_argument("--batch-size", type=int, default=None)
    bo.add_argument("--order", choices=("cyclic", "shuffle", "replacement"), default=None)
    bo.add_argument("--seeds", type=int, default=None, help="SGD seeds (default 64)")
    bo.add_argument("--epochs", type=int, default=None, help="SGD epochs (default 100)")
    bo.add_argument("--n", type=int, default=None)
    bo.add_argument("--d", type=int, default=None)
    bo.add_argument("--out", default=None, help="also draw observed vs predicted to FILE")
    _common(bo)
    bo.set_defaults(func=cmd_boundary)

    inf = sub.add_parser("info", help="versions, threads, threading layer, vector width",
                         description="Print what fastgd runs on: versions, numba threads and "
                         "threading layer, CPU and SIMD vector width, the kernel cache.")
    _common(inf)
    inf.set_defaults(func=cmd_info)

    from fastgd.cli.net import add_parser as _add_net

    _add_net(sub, _common)
    return p
