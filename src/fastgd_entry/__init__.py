"""The ``fastgd`` console script's entry point, outside the ``fastgd`` package.

``import fastgd`` loads NumPy, SciPy and Numba (about half a second): a Ctrl-C in that
window would reach a script that imported ``fastgd.cli`` at its top level as a bare
traceback with exit status -2.  This module imports nothing heavy itself, so the whole
import happens inside :func:`main`, where Ctrl-C gives exit 130 and one line, as
everywhere else in the command.
"""

import sys


def main(argv=None) -> int:
    """Run ``fastgd.cli.main(argv)``; Ctrl-C while importing it exits 130 with one line."""
    try:
        from fastgd.cli import main as cli_main
    except KeyboardInterrupt:
        print("fastgd: interrupted", file=sys.stderr)
        return 130
    return cli_main(argv)
