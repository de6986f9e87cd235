"""``python -m fastgd``: the same command as ``fastgd`` (see :mod:`fastgd.cli`), through
the console script's entry point (:func:`fastgd_entry.main`: a Ctrl-C while the command
is imported exits 130 with one line)."""

from fastgd_entry import main

if __name__ == "__main__":
    raise SystemExit(main())
