"""``python -m fastgd.cli``: the same command as ``fastgd`` and ``python -m fastgd``
(through :func:`fastgd_entry.main`)."""

from fastgd_entry import main

if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
