"""``python -m fastgd.cli``: the same command as ``fastgd`` and ``python -m fastgd``."""

from fastgd.cli import main

if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
