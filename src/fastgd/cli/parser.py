"""The ``fastgd`` command's argparse parser: one subparser per command, each listing only
the options that apply to it, every option described.  The command modules import
nothing heavy at import time, so building the parser (``fastgd --help``) stays fast."""

from __future__ import annotations

import argparse

from fastgd.cli.args import SPEC_KEYS, _grid_arg, common_options
from fastgd.cli.commands import cmd_boundary, cmd_plot, cmd_sweep
from fastgd.cli.info import cmd_info
from fastgd.cli.lecture import cmd_lecture
from fastgd.cli.net import add_parser as add_net_parser
from fastgd.cli.phase2 import add_net_phase2, add_phase_flags
from fastgd.cli.phase2 import cmd_phase as cmd_phase_any
from fastgd.status import DEFAULT_ORDER, DEFAULT_TOL  # already loaded by `import fastgd`

__all__ = ["build_parser"]

#: --seed of the commands that sweep the linear unit.
SWEEP_SEED = ("first seed: SGD sample orders (seeds SEED..SEED+n-1) and the Gaussian "
              "datasets (default 0)")


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2) instead of usage + message."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


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
    g.add_argument("--transform", default=None, metavar="LIST",
                   help="with --data: one row per dataset and transform, from raw, "
                        "standardize (fg.normalize: centred, unit variance) and whiten "
                        "(fg.whiten: H = I), e.g. raw,standardize,whiten")
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


def _add_phase(sub):
    ph = sub.add_parser("phase", help="a phase diagram from built-in defaults (the main job)",
                        description="Sweep learning rate × condition number and draw the "
                        "phase diagram (converged / bounded / diverged) with the theory's "
                        "boundaries. GD defaults: η 0.01:10:128, κ 1:1e4:48, d = 2, 1000 "
                        "steps. SGD defaults: η 0.01:4:96, κ 1:1e3:32, 100 epochs, 4 seeds.")
    _sweep_flags(ph, "defaults above")
    ph.add_argument("--config", default=None, help="a TOML spec (flags override it)")
    ph.add_argument("--color", choices=("status", "steps", "excess"), default="status",
                    help="categorical outcome, steps to tolerance, or excess: log10 of the "
                         "final / initial excess loss per cell, which shows progress where "
                         "nothing converges (default status)")
    ph.add_argument("--out", default=None, help="figure file (default phase.png)")
    ph.add_argument("--save", default=None, metavar="RESULT.npz", help="also save the sweep")
    add_phase_flags(ph)
    common_options(ph, seed=SWEEP_SEED)
    ph.set_defaults(func=cmd_phase_any)


def _add_lecture(sub):
    le = sub.add_parser("lecture", help="reproduce the lecture slide by slide",
                        description="The lecture on the built-in data: spectrum, batch GD at "
                        "η = 1.5 and 2.5, SGD at 0.2, SGD's per-sample rate vs the batch "
                        "rate, normalising the inputs, the 1-1-1 network. One figure per "
                        "slide in DIR and a table of the numbers on stdout.")
    le.add_argument("--out", default="lecture", help="output directory (default ./lecture)")
    le.add_argument("--no-plots", action="store_true", help="only print the table")
    common_options(le, seed="seed of the SGD sample orders (default 0)")
    le.set_defaults(func=cmd_lecture)


def _add_sweep(sub):
    sw = sub.add_parser("sweep", help="run a sweep from a TOML spec and save it",
                        description="Run the sweep a TOML spec describes (keys: "
                        + ", ".join(sorted(SPEC_KEYS)) + "); flags override the spec. "
                        "Saves RESULT.npz (fastgd.load reads it).")
    sw.add_argument("--config", default=None, help="TOML spec")
    sw.add_argument("--out", default="result.npz", help="result file (default result.npz)")
    sw.add_argument("--plot", default=None, metavar="FILE", help="also draw the phase diagram")
    _sweep_flags(sw, "override the spec")
    common_options(sw, seed=SWEEP_SEED)
    sw.set_defaults(func=cmd_sweep)


def _add_plot(sub):
    pl = sub.add_parser("plot", help="draw a saved sweep",
                        description="Draw a result saved by 'fastgd sweep' or fastgd.SweepResult.save.")
    pl.add_argument("result", help="RESULT.npz")
    pl.add_argument("--out", default=None, help="figure file (default RESULT.png)")
    pl.add_argument("--kind", choices=("phase", "boundary"), default="phase",
                    help="the phase diagram, or observed / predicted − 1 of the critical "
                         "rate per dataset (default phase)")
    pl.add_argument("--color", choices=("status", "steps", "excess"), default="status",
                    help="phase diagram: categorical outcome, steps to tolerance, or log10 "
                         "of the final / initial excess loss (default status)")
    common_options(pl, threads=False, progress=False)
    pl.set_defaults(func=cmd_plot)


def _add_boundary(sub):
    bo = sub.add_parser("boundary", help="critical learning rate vs theory",
                        description="The divergence boundary by simulation (critical_lr: "
                        "growth-rate bisection for GD, half of the seeds diverged for SGD) "
                        "next to the theory's limits, on the lecture's data (default), "
                        "--data, or Gaussian datasets of given --condition.")
    bo.add_argument("--config", default=None, help="a TOML spec (data/condition, method, ...)")
    bo.add_argument("--method", choices=("gd", "sgd"), default=None,
                    help="batch gradient descent or stochastic (default gd)")
    bo.add_argument("--data", default=None, action="append",
                    help="repeatable; lecture (default), lecture-normalized, "
                    "lecture-whitened, or FILE.npz")
    bo.add_argument("--transform", default=None, metavar="LIST",
                    help="with --data: one row per dataset and transform, from raw, "
                         "standardize (fg.normalize) and whiten (fg.whiten), e.g. "
                         "raw,standardize,whiten")
    bo.add_argument("--condition", type=_grid_arg("condition"), default=None, metavar="GRID",
                    help="instead of --data: condition numbers κ of Gaussian datasets "
                         "(λ_max = 1), LO:HI:N (geometric), LO:HI:N:lin or a,b,c")
    bo.add_argument("--momentum", type=float, default=None,
                    help="heavy-ball momentum β (default 0)")
    bo.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=None,
                    help="Nesterov momentum")
    bo.add_argument("--batch-size", type=int, default=None, help="SGD batch size (default 1)")
    bo.add_argument("--order", choices=("cyclic", "shuffle", "replacement"), default=None,
                    help=f"SGD sample order (default {DEFAULT_ORDER})")
    bo.add_argument("--seeds", type=int, default=None, help="SGD seeds (default 64)")
    bo.add_argument("--epochs", type=int, default=None, help="SGD epochs (default 100)")
    bo.add_argument("--n", type=int, default=None,
                    help="samples per Gaussian dataset of --condition (100)")
    bo.add_argument("--d", type=int, default=None,
                    help="inputs per Gaussian dataset of --condition (2)")
    bo.add_argument("--out", default=None, help="also draw observed vs predicted to FILE")
    common_options(bo, seed="seed of the Gaussian datasets of --condition (default 0)",
                   progress=False)
    bo.set_defaults(func=cmd_boundary)


def _add_info(sub):
    inf = sub.add_parser("info", help="versions, threads, threading layer, vector width",
                         description="Print what fastgd runs on: versions, numba threads and "
                         "threading layer, CPU and SIMD vector width, the kernel cache.")
    inf.set_defaults(func=cmd_info)


def build_parser():
    """The ``fastgd`` parser with every subcommand (phase, lecture, sweep, plot, boundary,
    info, net).

    Examples
    --------
    >>> from fastgd.cli import build_parser
    >>> args = build_parser().parse_args(["plot", "r.npz", "--dpi", "300"])
    >>> args.command, args.result, args.dpi, hasattr(args, "threads")
    ('plot', 'r.npz', 300, False)
    """
    p = _Parser(prog="fastgd", description="When does gradient descent converge, how fast, "
                "and where does it blow up? Phase diagrams, boundaries and the lecture.",
                epilog="Exit codes: 0 done, 1 failure, 2 bad usage or spec, 130 interrupted.")
    p.add_argument("--version", action="store_true", help="print the version and exit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_add_phase, _add_lecture, _add_sweep, _add_plot, _add_boundary, _add_info):
        add(sub)
    add_net_phase2(add_net_parser(sub))
    return p
