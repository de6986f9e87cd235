"""``python -m fastgd``: the same command as ``fastgd`` (see :mod:`fastgd.cli`)."""

from fastgd.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
