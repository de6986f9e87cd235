"""The ``fastgd`` command (also ``python -m fastgd``).

Subcommands::

    fastgd phase     [--method gd|sgd] [--lr LO:HI:N] [--condition LO:HI:N] [--out FILE]
    fastgd lecture   --out DIR             the lecture, slide by slide, and a table of its numbers
    fastgd sweep     --config SPEC.toml --out RESULT.npz   (flags override the spec)
    fastgd plot      RESULT.npz --out FILE
    fastgd boundary  [--config SPEC.toml | --condition ...] [--method gd|sgd]
    fastgd info      versions, threads, threading layer, vector width, cache dir

Exit codes: 0 done, 1 failure, 2 bad usage or spec (one line on stderr, no
traceback), 130 interrupted (a sweep saves and plots what finished first).
Set ``FASTGD_DEBUG=1`` to see the traceback of a failure.

Numba (through fastgd's kernels) and matplotlib are imported only after the
arguments are parsed, so ``fastgd --help`` is fast.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

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
PHASE_DEFAULTS = {
    "gd": {"lr": "0.01:10:128", "condition": "1:1e4:48", "steps": 1000},
    "sgd": {"lr": "0.01:4:96", "condition": "1:1e3:32", "epochs": 100, "seeds": 4},
}
#: Default grids for given data (--data): multiples of each dataset's eta_max = 2/lambda_max,
#: so that raw and standardised data alike show the boundary (at 1) inside the frame.
DATA_LR_DEFAULTS = {"gd": "0.01:4:128", "sgd": "0.001:4:96"}
#: GD steps for given data without --steps: STEPS_PER_KAPPA x the largest condition number
#: (the slowest direction needs about kappa/2 steps per e-fold near eta_max), at least
#: the phase default and at most STEPS_MAX.
STEPS_PER_KAPPA, STEPS_MAX = 5, 100_000


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


def load_spec(path):
    """Read a TOML sweep spec; unknown keys and bad types exit 2."""
    import tomllib

    p = Path(path)
    try:
        with open(p, "rb") as fh:
            spec = tomllib.load(fh)
    except FileNotFoundError:
        raise UsageError(f"spec file {str(p)!r} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"spec file {str(p)!r} is not valid TOML: {exc}") from None
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
                   help="SGD sample order (default shuffle)")
    g.add_argument("--seeds", type=int, default=None, help="SGD seeds per cell")
    g.add_argument("--momentum", type=float, default=None, help="heavy-ball momentum β")
    g.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=None,
                   help="Nesterov momentum")
    g.add_argument("--tol", type=float, default=None, help="convergence tolerance (1e-8)")
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
    return p


# --------------------------------------------------------------------------- helpers
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path, dpi):
    path = Path(path)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    _pyplot().close(fig)
    return path


def _lecture_variant(name):
    import fastgd as fg

    X, y = fg.lecture_data()
    if name == "lecture":
        return X, y
    if name == "lecture-normalized":
        return fg.normalize(X), y
    if name == "lecture-whitened":
        return fg.whiten(X), y
    raise KeyError(name)


def _load_data(item):
    """A data name or .npz path -> (X, y, label)."""
    import numpy as np

    if not isinstance(item, str):
        raise UsageError(f"'data' entries must be strings; got {item!r}")
    try:
        X, y = _lecture_variant(item)
        return X, y, item
    except KeyError:
        pass
    p = Path(item)
    if p.suffix != ".npz":
        raise UsageError(f"'data' must be lecture, lecture-normalized, lecture-whitened or a "
                         f".npz file with arrays X and y; got {item!r}")
    if not p.exists():
        raise UsageError(f"data file {item!r} not found")
    with np.load(p, allow_pickle=False) as z:
        if "X" not in z.files or "y" not in z.files:
            raise UsageError(f"data file {item!r} must hold arrays 'X' and 'y'; has {z.files}")
        return z["X"], z["y"], p.stem


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


def _sweep_from(cfg, *, defaults=None, progress=None):
    """Run the sweep a merged config describes; returns (result, datasets) (datasets:
    the given ones, None for a condition grid, which the sweep draws itself)."""
    import dataclasses

    import numpy as np

    import fastgd as fg

    from . import _cost

    method = cfg.get("method", "gd")
    if method not in ("gd", "sgd"):
        raise UsageError(f"'method' must be 'gd' or 'sgd'; got {method!r}")
    dflt = dict((defaults or {}).get(method, {}))
    for key, types, what in (("steps", int, "an integer"), ("epochs", int, "an integer"),
                             ("batch_size", int, "an integer"), ("seeds", int, "an integer"),
                             ("seed", int, "an integer"), ("n", int, "an integer"),
                             ("d", int, "an integer"), ("threads", int, "an integer"),
                             ("momentum", (int, float), "a number"),
                             ("tol", (int, float), "a number"), ("blowup", (int, float), "a number"),
                             ("nesterov", bool, "true or false"), ("bias", bool, "true or false"),
                             ("theory", bool, "true or false"), ("order", str, "a string"),
                             ("fix", str, "a string"), ("curve_points", int, "an integer"),
                             ("lanes", int, "an integer"), ("checkpoint", str, "a string"),
                             ("dtype", str, "a string"), ("backend", str, "a string")):
        _check_type(cfg, key, types if isinstance(types, tuple) else (types,), what)
    given = "data" in cfg and cfg["data"] is not None
    lr_unit = cfg.get("lr_unit")
    if lr_unit is not None and lr_unit not in ("absolute", "eta_max"):
        raise UsageError(f"'lr_unit' must be absolute or eta_max; got {lr_unit!r}")
    if "lr" in cfg:
        lr = _spec_grid(cfg["lr"], "lr")
    elif given and (defaults is not None or lr_unit == "eta_max"):
        lr = parse_grid(DATA_LR_DEFAULTS[method], "lr")
        lr_unit = lr_unit or "eta_max"
    elif "lr" in dflt:
        lr = parse_grid(dflt["lr"], "lr")
    else:
        raise UsageError("'lr' is required (in the spec or as --lr)")
    lr_unit = lr_unit or "absolute"
    seed = int(cfg.get("seed", 0))
    if seed < 0:
        raise UsageError(f"'seed' must be >= 0; got {seed}")
    datasets, labels, where = None, None, {}
    if given:
        if "condition" in cfg:
            raise UsageError("give 'data' or 'condition', not both")
        items = cfg["data"] if isinstance(cfg["data"], list) else [cfg["data"]]
        loaded = [_load_data(it) for it in items]
        datasets = [(X, y) for X, y, _ in loaded]
        labels = _unique([lab for _, _, lab in loaded])
        where = {"data": dict(zip(labels, datasets, strict=True))}
    else:
        kappa = _spec_grid(cfg["condition"], "condition") if "condition" in cfg else \
            parse_grid(dflt.get("condition", "1:1e4:48"), "condition")
        n, d = int(cfg.get("n", 100)), int(cfg.get("d", 2))
        fix = cfg.get("fix", "lambda_max")
        if fix not in ("lambda_max", "lambda_min"):
            raise UsageError(f"'fix' must be lambda_max or lambda_min; got {fix!r}")
        if any(k < 1 for k in kappa):
            raise UsageError(f"'condition' must be >= 1; got min {min(kappa):g}")
        if d < 2 or n < d + 1:
            raise UsageError(f"'d' must be >= 2 and 'n' >= d + 1; got d = {d}, n = {n}")
        T = cfg.get("steps", dflt.get("steps")) if method == "gd" else None
        E = cfg.get("epochs", dflt.get("epochs")) if method == "sgd" else None
        _cost.sweep_grid("sweep", method, len(lr), None, kappa, T, E,
                         int(cfg.get("seeds", dflt.get("seeds", 1))), n, d,
                         cfg.get("curve_points", 0), None)
        # the sweep draws the same datasets as gaussian_data(n, geomspace(1/k, 1, d), seed)
        where = {"condition": np.asarray(kappa), "n": n, "d": d, "fix": fix,
                 "data_seed": seed}
        labels = [f"κ = {k:.4g}" for k in kappa]
    kw = dict(lr=np.asarray(lr), lr_unit=lr_unit, momentum=float(cfg.get("momentum", 0.0)),
              nesterov=bool(cfg.get("nesterov", False)), bias=bool(cfg.get("bias", False)),
              threads=cfg.get("threads"), progress=progress, **where)
    for key in ("tol", "blowup", "curve_points", "lanes", "checkpoint", "dtype", "backend"):
        if key in cfg:
            kw[key] = cfg[key]
    if method == "gd":
        for key in ("epochs", "batch_size", "order", "seeds"):
            if key in cfg and key in ("epochs",):
                raise UsageError("'epochs' is for --method sgd; GD takes 'steps'")
        if "steps" in cfg or not given:
            kw["steps"] = int(cfg.get("steps", dflt.get("steps", 1000)))
        else:
            kw["steps"] = _data_steps(datasets, int(dflt.get("steps", 1000)), kw["bias"])
    else:
        if "steps" in cfg:
            raise UsageError("'steps' is for --method gd; SGD takes 'epochs'")
        kw["epochs"] = int(cfg.get("epochs", dflt.get("epochs", 100)))
        kw["batch_size"] = int(cfg.get("batch_size", 1))
        kw["order"] = cfg.get("order", "shuffle")
        nseeds = int(cfg.get("seeds", dflt.get("seeds", 1)))
        if nseeds < 1:
            raise UsageError(f"'seeds' must be >= 1; got {nseeds}")
        if given:
            _cost.sweep_grid("sweep", "sgd", len(lr), datasets, None, None, kw["epochs"],
                             nseeds, 100, 2, kw.get("curve_points", 0), None)
        kw["seeds"] = list(range(seed, seed + nseeds))
        kw["almost_sure"] = bool(cfg.get("almost_sure", False))
    res = fg.sweep(method, **kw)
    res.meta["cli"] = {"datasets": labels, "config": {k: v for k, v in cfg.items()}}
    if method == "sgd" and not cfg.get("theory", True):  # limits the user did not ask for
        nan = np.full(res.shape[0], np.nan)
        res = dataclasses.replace(res, sgd_ms_limit=nan, sgd_as_limit=nan.copy())
    return res, datasets


def _unique(labels):
    """Dataset names, made unique (``x``, ``x (2)``, ...) when two files share a stem."""
    out, seen = [], {}
    for lab in labels:
        seen[lab] = seen.get(lab, 0) + 1
        out.append(lab if seen[lab] == 1 else f"{lab} ({seen[lab]})")
    return out


def _data_steps(datasets, floor, bias):
    """GD steps for given data: STEPS_PER_KAPPA x the largest finite condition number
    (rounded up to two digits), between ``floor`` and STEPS_MAX."""
    import math

    import fastgd as fg

    kappa = max((fg.spectrum(X, bias=bias).condition_number for X, _ in datasets),
                default=1.0)
    if not math.isfinite(kappa):
        return STEPS_MAX
    t = STEPS_PER_KAPPA * kappa
    if t <= floor:
        return floor
    e = 10 ** max(int(math.floor(math.log10(t))) - 1, 0)
    return int(min(math.ceil(t / e) * e, STEPS_MAX))


def _phase_figure(res, args, title=None):
    plt = _pyplot()
    from .plot import plot_phase_diagram

    fig, ax = plt.subplots(figsize=(7.2, 5.6), layout="constrained")
    plot_phase_diagram(res, ax=ax, color=getattr(args, "color", "status"), title=title)
    return fig


def _print_counts(res, seconds):
    import numpy as np

    from ._core import Status

    st = res.status
    parts = [f"{s.name.lower()} {int(np.sum(st == s))}" for s in Status if np.any(st == s)]
    cells = st.size
    print(f"fastgd: {res.method} sweep of {res.shape[0]} datasets x {res.shape[1]} rates x "
          f"{res.shape[2]} seeds = {cells} runs in {seconds:.2f} s ({', '.join(parts)})")


# --------------------------------------------------------------------------- commands
def cmd_phase(args):
    spec = load_spec(args.config) if args.config else {}
    cfg = _merge(args, spec)
    out = _out_path(args.out, args.format, "phase")
    if args.save:
        _writable_target(Path(args.save), "--save")
    t0 = time.perf_counter()
    try:
        res, _ = _sweep_from(cfg, defaults=PHASE_DEFAULTS, progress=args.progress)
    except _interrupted() as exc:
        res = exc.result
        _phase_out(res, args, out, partial=True)
        raise
    _print_counts(res, time.perf_counter() - t0)
    _phase_out(res, args, out)
    return 0


def _interrupted():
    from .sweep import SweepInterrupted

    return SweepInterrupted


def _phase_out(res, args, out, partial=False):
    if args.save:
        path = res.save(args.save)
        print(f"fastgd: saved {'partial ' if partial else ''}result to {path}")
    fig = _phase_figure(res, args,
                        title=None if not partial else "interrupted: grey cells did not run")
    print(f"fastgd: wrote {_save(fig, out, args.dpi)}")


def cmd_sweep(args):
    spec = load_spec(args.config) if args.config else {}
    cfg = _merge(args, spec)
    if "lr" not in cfg:
        raise UsageError("'lr' is required (in the spec or as --lr)")
    out = Path(args.out)
    if out.suffix != ".npz":
        out = out.with_name(out.name + ".npz")
    _writable_target(out)
    plot_out = _out_path(args.plot, args.format, out.stem) if args.plot else None
    t0 = time.perf_counter()
    try:
        res, _ = _sweep_from(cfg, progress=args.progress)
    except _interrupted() as exc:
        path = exc.result.save(out)
        print(f"fastgd: interrupted; saved the finished cells to {path}", file=sys.stderr)
        raise
    _print_counts(res, time.perf_counter() - t0)
    path = res.save(out)
    print(f"fastgd: saved {path}")
    print(res.summary())
    if plot_out:
        print(f"fastgd: wrote {_save(_phase_figure(res, args), plot_out, args.dpi)}")
    return 0


def cmd_plot(args):
    import fastgd as fg

    src = Path(args.result)
    if not src.exists():
        raise UsageError(f"result file {str(src)!r} not found")
    try:
        res = fg.load(src)
    except (OSError, ValueError, KeyError) as exc:
        raise UsageError(f"{str(src)!r} is not a fastgd result: {exc}") from None
    out = _out_path(args.out, args.format, src.with_suffix("").as_posix()
                    + ("" if args.kind == "phase" else "_boundary"))
    if args.kind == "phase":
        fig = _phase_figure(res, args)
    else:
        plt = _pyplot()
        from .plot import plot_boundary

        fig, ax = plt.subplots(figsize=(6.4, 4.8), layout="constrained")
        plot_boundary(res, ax=ax, title=f"{res.method.upper()} divergence boundary")
    print(f"fastgd: wrote {_save(fig, out, args.dpi)}")
    return 0


def cmd_boundary(args):
    import types

    import numpy as np

    import fastgd as fg

    spec = load_spec(args.config) if args.config else {}
    cfg = _merge(args, spec)
    method = cfg.get("method", "gd")
    if method not in ("gd", "sgd"):
        raise UsageError(f"'method' must be 'gd' or 'sgd'; got {method!r}")
    if args.out:
        _out_path(args.out, args.format, "boundary")  # refuse a bad --out before the work
    if "condition" in cfg and cfg.get("data") is None:
        kappa = _spec_grid(cfg["condition"], "condition")
        n, d = int(cfg.get("n", 100)), int(cfg.get("d", 2))
        seed = int(cfg.get("seed", 0))
        data = []
        for k in kappa:
            ds = fg.gaussian_data(n, np.geomspace(1.0 / k, 1.0, d), seed=seed)
            data.append((ds.X, ds.y, f"κ = {k:.4g}"))
    else:
        items = cfg.get("data", "lecture")
        data = [_load_data(it) for it in (items if isinstance(items, list) else [items])]
    mom = float(cfg.get("momentum", 0.0))
    nest = bool(cfg.get("nesterov", False))
    bs = int(cfg.get("batch_size", 1))
    order = cfg.get("order", "shuffle")
    try:
        from . import theory
    except ImportError:  # pragma: no cover
        theory = None
    rows, obs, cond, lims = [], [], [], []
    for X, y, label in data:
        kw = dict(method=method, momentum=mom, nesterov=nest, threads=cfg.get("threads"))
        if method == "sgd":
            kw.update(batch_size=bs, order=order, seeds=int(cfg.get("seeds", 64)),
                      epochs=int(cfg.get("epochs", 100)))
        t0 = time.perf_counter()
        b = fg.critical_lr(X, y, **kw)
        dt = time.perf_counter() - t0
        s = fg.spectrum(X)
        lim = {"gd": s.eta_max, "momentum": np.nan, "sgd_ms": np.nan, "sgd_as": np.nan}
        if theory is not None:
            try:
                lim.update(theory.limits(X, momentum=mom, nesterov=nest,
                                         batch_size=bs if method == "sgd" else None,
                                         order=order if method == "sgd" else None))
            except Exception:  # pragma: no cover - a limit that cannot be computed
                pass
        pred = lim["momentum"] if mom > 0 else (lim["sgd_ms"] if method == "sgd" else lim["gd"])
        obs.append(b.lr)
        cond.append(s.condition_number)
        lims.append(lim)
        rows.append((label, s.condition_number, s.lambda_max, lim["gd"], lim["momentum"],
                     lim["sgd_ms"], lim["sgd_as"], b.lr, b.lr / pred - 1 if pred == pred else
                     float("nan"), dt))
    head = (f"{'data':<20} {'κ':>9} {'λ_max':>9} {'2/λ_max':>10} {'momentum':>10} "
            f"{'SGD ms':>10} {'SGD as':>10} {'observed':>11} {'obs/pred-1':>11} {'time':>7}")
    print(f"fastgd boundary ({method}, criterion "
          f"{'growth rate' if method == 'gd' else 'half of the seeds diverged'})")
    print(head)
    for r in rows:
        print(f"{r[0]:<20} {r[1]:>9.4g} {r[2]:>9.4g} {r[3]:>10.6g} {r[4]:>10.6g} "
              f"{r[5]:>10.6g} {r[6]:>10.6g} {r[7]:>11.7g} {r[8]:>11.2e} {r[9]:>6.2f}s")
    if args.out:
        plt = _pyplot()
        from .plot import plot_boundary

        labels = _unique([r[0] for r in rows])
        grid = "condition" in cfg and cfg.get("data") is None
        ns = types.SimpleNamespace(
            method=method, names=tuple(labels),
            meta={"spec": {"condition": [float(c) for c in cond] if grid else None}},
            condition=np.array(cond), gd_limit=np.array([l["gd"] for l in lims]),
            momentum_limit=np.array([l["momentum"] for l in lims], dtype=float),
            sgd_ms_limit=np.array([l["sgd_ms"] for l in lims], dtype=float),
            sgd_as_limit=np.array([l["sgd_as"] for l in lims], dtype=float))
        out = _out_path(args.out, args.format, "boundary")
        fig, ax = plt.subplots(figsize=(6.4, 4.8), layout="constrained")
        plot_boundary(ns, ax=ax, observed=np.array(obs),
                      title=f"{method.upper()}: observed vs predicted critical η")
        print(f"fastgd: wrote {_save(fig, out, args.dpi)}")
    return 0


def cmd_info(args):
    import platform

    import numpy as np

    import fastgd as fg

    def version(mod):
        try:
            m = __import__(mod)
            return getattr(m, "__version__", "?")
        except ImportError:
            return "not installed"

    import numba

    print(f"fastgd        {fg.__version__}")
    print(f"python        {platform.python_version()} ({platform.python_implementation()})")
    for mod in ("numpy", "numba", "llvmlite", "scipy", "matplotlib", "tqdm"):
        print(f"{mod:<13} {version(mod)}")
    print(f"platform      {platform.platform()}")
    print(f"cpu count     {os.cpu_count()}")
    env_threads = os.environ.get("NUMBA_NUM_THREADS")
    print(f"numba threads {numba.config.NUMBA_NUM_THREADS} (max; NUMBA_NUM_THREADS="
          f"{env_threads or 'unset'}), using {numba.get_num_threads()}")
    # linear-unit sweeps run nogil kernels on Python worker threads; numba's threading
    # layer (chosen when the first parallel kernel runs) serves the chain kernels
    try:
        layer = numba.threading_layer()
    except ValueError:
        layer = "not started yet (used by the chain kernels)"
    print(f"threading     linear sweeps: worker threads (nogil kernels); numba layer {layer} "
          f"(NUMBA_THREADING_LAYER={os.environ.get('NUMBA_THREADING_LAYER', 'default')})")
    from fastgd._kernels import _jit

    print(f"FMA contract  {'on' if _jit.contract() else 'off'} (FASTGD_CONTRACT="
          f"{os.environ.get('FASTGD_CONTRACT', 'unset')})")
    try:
        import llvmlite.binding as ll

        cpu = ll.get_host_cpu_name()
        feats = ll.get_host_cpu_features()
        has = {k for k, v in feats.items() if v}
    except Exception:  # pragma: no cover
        cpu, has = "unknown", set()
    cfg_cpu = numba.config.CPU_NAME or cpu
    cfg_feat = numba.config.CPU_FEATURES or ""
    width = 512 if "avx512f" in has else 256 if "avx2" in has or "avx" in has else 128
    simd = [f for f in ("sse4.2", "avx", "avx2", "fma", "avx512f", "avx512vl", "neon", "sve")
            if f in has]
    print(f"cpu           {cfg_cpu} (host {cpu}); SIMD: {' '.join(simd) or 'none found'}")
    lanes = width // 64
    note = ""
    if width == 512 and "-prefer-256-bit" not in cfg_feat:
        note = ("; numba prefers 256-bit vectors here by default: NUMBA_CPU_FEATURES with "
                "'-prefer-256-bit' enables 512 (see README, Performance)")
    print(f"vector width  {width} bit = {lanes} float64 lanes available{note}")
    print(f"NUMBA_CPU_NAME={os.environ.get('NUMBA_CPU_NAME', 'unset')} "
          f"NUMBA_CPU_FEATURES={'set' if cfg_feat else 'unset'}")
    cache = numba.config.CACHE_DIR or str(Path(fg.__file__).parent / "_kernels" / "__pycache__")
    n_cached = len(list(Path(cache).glob("*.nbi"))) if Path(cache).exists() else 0
    print(f"kernel cache  {cache} ({n_cached} index files; NUMBA_CACHE_DIR="
          f"{os.environ.get('NUMBA_CACHE_DIR', 'unset')})")
    print(f"numpy BLAS    {_blas(np)}")
    return 0


def _blas(np):
    try:
        cfg = np.show_config(mode="dicts")
        b = cfg.get("Build Dependencies", {}).get("blas", {})
        return f"{b.get('name', '?')} {b.get('version', '')}".strip()
    except Exception:  # pragma: no cover - older numpy
        return "?"


# --------------------------------------------------------------------------- lecture
LECTURE_W0 = (-1.0, 0.0)   # start of the weight-space slides (off both eigen-axes)


def _per_update_path(X, y, lr, epochs, w0, seed=0):
    """Per-sample SGD iterates in a fresh random order each epoch (the weight-space
    picture of SGD: fastgd.sgd records once per epoch)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    w = np.array(w0, dtype=float)
    path = [w.copy()]
    for _ in range(epochs):
        for p in rng.permutation(X.shape[0]):
            w = w - lr * (w @ X[p] - y[p]) * X[p]
            path.append(w.copy())
    return np.array(path)


class _Table:
    def __init__(self):
        self.rows = []

    def add(self, slide, what, value, lecture=""):
        self.rows.append((slide, what, value, lecture))

    def print(self):
        w = [max(len(str(r[i])) for r in self.rows + [("slide", "quantity", "fastgd",
                                                          "lecture")]) for i in range(4)]
        head = ("slide", "quantity", "fastgd", "lecture")
        print("  ".join(str(h).ljust(w[i]) for i, h in enumerate(head)))
        print("  ".join("-" * w[i] for i in range(4)))
        for r in self.rows:
            print("  ".join(str(v).ljust(w[i]) for i, v in enumerate(r)).rstrip())


def cmd_lecture(args):
    import numpy as np

    import fastgd as fg

    from . import plot as P

    plots = not args.no_plots
    fmt = args.format or "png"
    outdir = Path(args.out)
    if plots:
        _writable_target(outdir / f"figure.{fmt}")
        plt = _pyplot()
        outdir.mkdir(parents=True, exist_ok=True)
    seed = args.seed or 0
    written = []

    def save(fig, name):
        written.append(_save(fig, outdir / f"{name}.{fmt}", args.dpi))

    T = _Table()
    X, y = fg.lecture_data()
    P_ = X.shape[0]
    s = fg.spectrum(X)
    wstar = np.linalg.lstsq(X, y, rcond=None)[0]
    estar = 0.5 * float(np.mean((y - X @ wstar) ** 2))
    w0 = np.array(LECTURE_W0)

    # 1. the data and the Hessian's spectrum ------------------------------------
    T.add("1 spectrum", "λ_max, λ_min of H = XᵀX/P", f"{s.lambda_max:.4g}, {s.lambda_min:.4g}",
          "0.84, 0.036")
    T.add("1 spectrum", "condition number κ", f"{s.condition_number:.4g}", "")
    T.add("1 spectrum", "η_opt = 1/λ_max", f"{s.eta_opt:.4g}", "1.19")
    T.add("1 spectrum", "η_max = 2/λ_max", f"{s.eta_max:.4g}", "2.38")
    T.add("1 spectrum", "fastest η = 2/(λ_max+λ_min)", f"{s.eta_minimax:.4g}", "")
    if plots:
        fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.8), layout="constrained")
        P.plot_data(X, y, ax=a, title="the lecture's data: two classes at ±(0.4, 0.8)")
        P.plot_regimes(s, ax=b, marks=(1.5, 2.5), title="batch GD: error multiplier per "
                       "eigen-direction")
        save(fig, "01_data_spectrum")

    # 2-3. batch GD at 1.5 and 2.5 ----------------------------------------------
    g15 = fg.gd(X, y, 1.5, 1000, w0=w0, record=True)
    g25 = fg.gd(X, y, 2.5, 1000, w0=w0, record=True)
    b = fg.critical_lr(X, y)
    T.add("2 GD η=1.5", "status, steps to tol 1e-10", f"{g15.status.name.lower()}, "
          f"{g15.steps_to_tol} steps", "converges")
    T.add("2 GD η=1.5", "multipliers 1 − ηλ", ", ".join(f"{m:+.3g}" for m in
                                                        s.multipliers(1.5)[::-1]), "")
    T.add("3 GD η=2.5", "status", f"{g25.status.name.lower()} (flagged at step "
          f"{g25.diverged_at})", "diverges")
    T.add("3 GD η=2.5", "multipliers 1 − ηλ", ", ".join(f"{m:+.3g}" for m in
                                                        s.multipliers(2.5)[::-1]), "")
    T.add("3 GD boundary", "critical η by simulation", f"{b.lr:.7g}", "2.38")
    for name, run, n in (("02_batch_gd_1.5", g15, 60), ("03_batch_gd_2.5", g25, 14)):
        if not plots:
            break
        fig, (a, c) = plt.subplots(1, 2, figsize=(11, 5.2), layout="constrained")
        lab = f"batch GD η = {run.lr:g}" + (" (diverges)" if run.diverged else "")
        ext = None
        if run.diverged:
            half = 2.2
            ext = (wstar[0] - half, wstar[0] + half, wstar[1] - half, wstar[1] + half)
        P.plot_weight_space(X, y, {lab: run}, ax=a, max_points=n, extent=ext,
                            title=f"weight space: {lab}")
        P.plot_losses({lab: run}, ax=c, minimum=estar, title="excess loss per step")
        c.set_xlabel("step (= epoch for batch GD)")
        save(fig, name)

    # 4. SGD at 0.2 ---------------------------------------------------------------
    epochs = 30
    sg = fg.sgd(X, y, 0.2, epochs, order="shuffle", seed=seed, w0=w0, record=True, tol=0.0)
    gd_ep = fg.gd(X, y, 1.5, epochs, w0=w0, record=True, tol=0.0)
    first = int(np.argmax(sg.losses - estar < 0.01 * (sg.losses[0] - estar)))
    T.add("4 SGD η=0.2", f"excess loss after {epochs} epochs",
          f"{sg.excess:.2e} (fluctuates; E* = {estar:.4g})", "fluctuates")
    T.add("4 SGD η=0.2", "epochs to 1% of initial excess",
          f"SGD {first}, batch GD η=1.5 "
          f"{int(np.argmax(gd_ep.losses - estar < 0.01 * (gd_ep.losses[0] - estar)))}",
          "SGD much faster")
    try:
        from . import theory

        ms = theory.sgd_ms_critical_lr(X, 1, replacement=False)
        T.add("4 SGD η=0.2", "SGD mean-square limit (B = 1)", f"{ms:.4g}", "")
    except Exception:  # pragma: no cover - theory module not available
        pass
    if plots:
        path = _per_update_path(X, y, 0.2, 2, w0, seed)
        gc, sc = P.COLORS["blue"], P.COLORS["vermillion"]
        fig, (a, c) = plt.subplots(1, 2, figsize=(11, 5.2), layout="constrained")
        P.plot_weight_space(X, y, {"batch GD η = 1.5": gd_ep,
                                   "SGD η = 0.2, every update (2 epochs, shuffled)": path},
                            ax=a, max_points=201, colors=[gc, sc],
                            title="weight space: SGD fluctuates")
        P.plot_losses({"batch GD η = 1.5": gd_ep, "SGD η = 0.2 (per sample)": sg}, ax=c,
                      minimum=estar, colors=[gc, sc], title="excess loss per epoch")
        save(fig, "04_sgd_0.2")

    # 5. per-sample rate vs batch rate ------------------------------------------
    g20 = fg.gd(X, y, 0.2 * P_, 200, w0=w0)
    small = 0.005
    sg_s = fg.sgd(X, y, small, 40, order="cyclic", w0=w0, record=True, tol=0.0)
    gd_s = fg.gd(X, y, small * P_, 40, w0=w0, record=True, tol=0.0)
    T.add("5 SGD ~ batch", "P·η for η = 0.2 per sample", f"{0.2 * P_:g} = "
          f"{0.2 * P_ / s.eta_max:.3g} η_max", "20")
    T.add("5 SGD ~ batch", "batch GD at η = 20", f"{g20.status.name.lower()} (step "
          f"{g20.diverged_at})", "")
    ex_s, ex_g = sg_s.losses[-1] - estar, gd_s.losses[-1] - estar
    T.add("5 SGD ~ batch", f"excess after 40 epochs: SGD η={small:g} | GD η={small * P_:g}",
          f"{ex_s:.3e} | {ex_g:.3e}", "")
    if plots:
        fig, ax = plt.subplots(figsize=(7.2, 5.0), layout="constrained")
        P.plot_losses({f"SGD η = {small:g} per sample": sg_s,
                       f"batch GD η = P·{small:g} = {small * P_:g}": gd_s,
                       "SGD η = 0.2 per sample": sg,
                       "batch GD η = P·0.2 = 20 (diverges)": fg.gd(X, y, 20.0, 8, w0=w0,
                                                                   tol=0.0)},
                      ax=ax, minimum=estar,
                      title="one SGD epoch ≈ one batch step with rate P·η (to first order)")
        ax.set_ylim(1e-6, 1e3)
        save(fig, "05_sgd_vs_batch_rate")

    # 6. normalizing the inputs ---------------------------------------------------
    offset = np.array([1.0, 1.0])
    variants = [("inputs + (1, 1) (not centred)", "offset inputs", X + offset),
                ("normalized (centred, unit variance)", "normalized", fg.normalize(X + offset)),
                ("whitened (PCA)", "whitened", fg.whiten(X + offset))]
    if plots:
        fig, axs = plt.subplots(1, 3, figsize=(15, 6.6), layout="constrained")
    for k, (name, short, Xv) in enumerate(variants):
        sv = fg.spectrum(Xv)
        lr = sv.eta_minimax
        r = fg.gd(Xv, y, lr, 100000, record=plots)
        T.add("6 normalizing", f"{short}: κ, GD steps at 2/(λ_max+λ_min)",
              f"κ = {sv.condition_number:.3g}, {r.steps_to_tol} steps", "")
        if plots:
            P.plot_weight_space(Xv, y, {f"GD η = {lr:.3g}: {r.steps_to_tol} steps to tol "
                                        f"(κ = {sv.condition_number:.3g})": r},
                                ax=axs[k], max_points=40, title=name)
    if plots:
        save(fig, "06_normalizing")

    # 7. the 1-1-1 network --------------------------------------------------------
    try:
        from . import chain as ch
    except ImportError:  # pragma: no cover - chain module not available
        ch = None
    c = 2.0  # the lecture's (1 - W1 W2)^2 is the unhalved loss
    if ch is not None:
        m = ch.chain_minima(2, loss_scale=c)
        T.add("7 1-1-1", "loss (1 − w1·w2)² (c = 2): minima", "hyperbola w1·w2 = 1", "")
        T.add("7 1-1-1", "saddle at 0: Hessian eigenvalues", f"±{m.saddle_curvature:g}", "")
        T.add("7 1-1-1", "flattest minimum: sharpness, 2/sharpness",
              f"{m.min_sharpness:g}, {m.max_stable_lr:g}", "")
        runs = {}
        for w, lr in (((0.2, 0.3), 0.1), ((0.1, 2.0), 0.1), ((0.1, 2.0), 0.3),
                      ((0.1, 2.0), 0.45)):
            r = ch.chain_gd(w, lr, 2000, loss_scale=c, record=True)
            kind = {"converged": "converges", "diverged": "diverges",
                    "bounded": "bounded"}[r.status.name.lower()]
            if r.converged and r.max_loss_ratio > 1:
                kind = f"catapult: loss ×{r.max_loss_ratio:.2g}, then converges"
            label = f"w0 = {w}, η = {lr:g} (η·λ0 = {lr * r.lambda0:.2g}): {kind}"
            runs[label] = r
            T.add("7 1-1-1", f"GD from {w} at η = {lr:g}",
                  f"{r.status.name.lower()}; λ0 = {r.lambda0:.3g}, final sharpness "
                  f"{r.sharpness:.3g}" + (f", loss spike ×{r.max_loss_ratio:.2g}"
                                          if r.max_loss_ratio > 1 and r.converged else ""), "")
        if plots:
            fig, ax = plt.subplots(figsize=(7.6, 7.4), layout="constrained")
            P.plot_chain_landscape(runs, ax=ax, loss_scale=c, lim=2.5, max_points=60,
                                   title="1-1-1 network: E = (1 − w1·w2)², GD trajectories")
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=1, frameon=False,
                      fontsize="small")
            save(fig, "07_one_one_one")
            t = np.linspace(0.0, 2.0, 81)
            inits = np.stack([np.sqrt(0.2) * np.exp(t), np.sqrt(0.2) * np.exp(-t)], axis=1)
            res = ch.chain_sweep(inits, np.geomspace(0.01, 1.0, 121), 2000, loss_scale=c,
                                 threads=args.threads, progress=args.progress)
            fig, ax = plt.subplots(figsize=(7.6, 5.8), layout="constrained")
            P.plot_chain_phase(res, ax=ax, title="1-1-1 network, GD from w1·w2 = 0.2: "
                               "outcome after 2000 steps")
            save(fig, "08_one_one_one_phase")
    else:
        T.add("7 1-1-1", "chain module", "not available in this build", "")
        if plots:
            fig, ax = plt.subplots(figsize=(7.6, 7.4), layout="constrained")
            P.plot_chain_landscape(ax=ax, loss_scale=c, title="1-1-1 network: E = (1 − w1·w2)²")
            save(fig, "07_one_one_one")

    print(f"fastgd lecture: LeCun's 'Convergence of Gradient Descent' on the built-in data "
          f"(E = 1/(2P) Σ (y − w·x)², w0 = {tuple(LECTURE_W0)})")
    T.print()
    for p in written:
        print(f"fastgd: wrote {p}")
    return 0


# --------------------------------------------------------------------------- main
def _max_threads():
    """Most worker threads a call may use: numba's NUMBA_NUM_THREADS once numba is
    imported (or when set), else the number of cores."""
    if "numba" in sys.modules:
        return int(sys.modules["numba"].config.NUMBA_NUM_THREADS)
    env = os.environ.get("NUMBA_NUM_THREADS", "")
    return int(env) if env.strip().isdigit() and int(env) > 0 else (os.cpu_count() or 1)


def main(argv=None) -> int:
    """Entry point of the ``fastgd`` command; returns the exit code.

    Ctrl-C (or SIGTERM during a checkpointed sweep) anywhere in a command, parsing and
    the heavy imports included, exits 130 with one line on stderr; a command that was
    sweeping saves / draws what finished first.
    """
    try:
        return _main(argv)
    except KeyboardInterrupt:  # outside a command's own handling (e.g. while parsing)
        print("fastgd: interrupted", file=sys.stderr)
        return 130


def _main(argv):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from . import __version__

        print(f"fastgd {__version__}")
        return 0
    if args.command is None:
        parser.print_help()
        return 2
    cmd = f"fastgd {args.command}"
    threads = getattr(args, "threads", None)
    if threads is not None:
        top = _max_threads()
        if threads < 1 or threads > top:
            print(f"{cmd}: error: '--threads' must be between 1 and {top} (NUMBA_NUM_THREADS "
                  f"or the cores); got {threads}", file=sys.stderr)
            return 2
        if "numba" not in sys.modules and "NUMBA_NUM_THREADS" not in os.environ:
            os.environ["NUMBA_NUM_THREADS"] = str(max(threads, os.cpu_count() or 1))
    from ._validate import FastGDTypeError, FastGDValueError

    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"{cmd}: error: {exc}", file=sys.stderr)
        return 2
    except (FastGDValueError, FastGDTypeError) as exc:
        print(f"{cmd}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{cmd}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # pragma: no cover - e.g. piped into head
        return 1
    except Exception as exc:
        if os.environ.get("FASTGD_DEBUG"):
            raise
        print(f"{cmd}: failed: {type(exc).__name__}: {exc} (FASTGD_DEBUG=1 shows the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
