"""The ``fastgd`` console script's entry point, outside the ``fastgd`` package.

``import fastgd`` loads NumPy, SciPy and Numba (about half a second): a Ctrl-C in that
window would reach a script that imported ``fastgd.cli`` at its top level as a bare
traceback with exit status -2.  This module imports nothing heavy itself, so the whole
import happens inside :func:`main`, where Ctrl-C gives exit 130 and one line, as
everywhere else in the command.  ``python -m fastgd`` and ``python -m fastgd.cli`` run
the same :func:`main` (there Python imports the ``fastgd`` package before any of the
command's code runs: a Ctrl-C during that import is Python's own traceback).
"""

import sys


def _early(signum, frame):
    """SIGINT before the command has installed its own handler (``fastgd.cli.main``),
    i.e. while it is imported: nothing is written yet, so exit 130 with one line at once
    (a KeyboardInterrupt raised there could escape every ``try``)."""
    import os

    try:
        os.write(2, b"fastgd: interrupted\n")
    except OSError:  # pragma: no cover - stderr closed
        pass
    os._exit(130)


def main(argv=None) -> int:
    """Run ``fastgd.cli.main(argv)``; a Ctrl-C while it is imported or before it starts
    exits 130 with one line.  As the process entry point (``argv`` None) that holds from
    the first statement on (a SIGINT handler that exits at once, until the command
    installs its own); called with ``argv`` (tests, scripts) the KeyboardInterrupt is
    caught."""
    if argv is None:  # as the command's own handler does (fastgd.cli.args.SIGINT)
        import signal

        try:
            signal.signal(signal.SIGINT, _early)
        except ValueError:  # pragma: no cover - not the main thread
            pass
    try:
        from fastgd.cli import main as cli_main
        from fastgd.cli.args import SIGINT

        SIGINT.reported = False  # cli_main sets it once it has said "interrupted"
        return cli_main(argv)
    except KeyboardInterrupt:  # while importing, or before cli_main's own handling
        args = sys.modules.get("fastgd.cli.args")
        if args is None or not args.SIGINT.reported:
            print("fastgd: interrupted", file=sys.stderr)
        return 130
