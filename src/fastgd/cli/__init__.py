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

The package: :mod:`~fastgd.cli.args` (the shared helpers: usage errors, grids, TOML
specs, output names, saving figures; it imports no other command module),
:mod:`~fastgd.cli.commands` (phase, sweep, plot, boundary), :mod:`~fastgd.cli.info`,
:mod:`~fastgd.cli.owndata` (--transform, --color excess, why a row has no converged cell),
:mod:`~fastgd.cli.lecture` (the lecture script), :mod:`~fastgd.cli.net` (two-layer
networks) and :mod:`~fastgd.cli.parser` (the argparse parser over all of them);
:func:`main` runs them.
"""

from __future__ import annotations

import os
import sys

from fastgd.cli.args import SIGINT, UsageError, load_spec, parse_grid  # noqa: F401
from fastgd.cli.commands import _data_steps, _unique  # noqa: F401
from fastgd.cli.parser import build_parser


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
    sweeping saves / draws what finished first (``phase``, ``sweep`` and ``boundary``
    also when the Ctrl-C comes after the work, while the outputs are written).  A second Ctrl-C while it does is
    ignored, and figures are written whole (:data:`fastgd.cli.args.SIGINT`).  Called as
    the process entry point (``argv`` None), a Ctrl-C while the interpreter exits also
    ends with 130 and one line; called with ``argv`` (tests, scripts) the previous
    SIGINT handler is restored on return.
    """
    rc = 130
    try:  # a Ctrl-C can come at any moment, install() included
        SIGINT.install()
        rc = _main(argv)
    except KeyboardInterrupt:  # outside a command's own handling (e.g. while parsing)
        rc = 130
    except SystemExit as exc:  # argparse's usage errors and --help
        rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    try:
        return SIGINT.end(rc, argv is None)
    except KeyboardInterrupt:  # the first Ctrl-C came as the command returned
        return SIGINT.end(130, argv is None)  # later ones are ignored: no second raise


def _main(argv):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from fastgd.version import __version__

        print(f"fastgd {__version__}")
        return 0
    if args.command is None:
        parser.print_help()
        return 2
    cmd = f"fastgd {args.command}" + (f" {args.figure}" if getattr(args, "figure", None)
                                      else "")
    SIGINT.cmd = cmd
    threads = getattr(args, "threads", None)
    if threads is not None:
        top = _max_threads()
        if threads < 1 or threads > top:
            print(f"{cmd}: error: '--threads' must be between 1 and {top} (NUMBA_NUM_THREADS "
                  f"or the cores); got {threads}", file=sys.stderr)
            return 2
        if "numba" not in sys.modules and "NUMBA_NUM_THREADS" not in os.environ:
            os.environ["NUMBA_NUM_THREADS"] = str(max(threads, os.cpu_count() or 1))
    from fastgd.validate import FastGDTypeError, FastGDValueError

    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"{cmd}: error: {exc}", file=sys.stderr)
        return 2
    except (FastGDValueError, FastGDTypeError) as exc:
        print(f"{cmd}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130  # main() prints the one line
    except BrokenPipeError:  # pragma: no cover - e.g. piped into head
        return 1
    except Exception as exc:
        if os.environ.get("FASTGD_DEBUG"):
            raise
        print(f"{cmd}: failed: {type(exc).__name__}: {exc} (FASTGD_DEBUG=1 shows the traceback)",
              file=sys.stderr)
        return 1
