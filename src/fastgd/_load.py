"""``fastgd.load``: one reader for every kind of result file (it looks at the format a
file declares and hands it to its model's reader, which validates it)."""

from __future__ import annotations

from fastgd.chain.sweep import FORMAT as CHAIN_FORMAT
from fastgd.chain.sweep import chain_load
from fastgd.engine.files import peek_format
from fastgd.linear.result import load as load_sweep


def load(path, *, max_bytes=None):
    """Read a result saved with ``.save(path)``: a :class:`fastgd.SweepResult` (linear
    unit) or a :class:`fastgd.chain.ChainSweepResult`, told apart by the format the file
    declares.

    Parameters
    ----------
    path : str or os.PathLike
        The file (``.npz`` is appended when missing, as ``save`` does).
    max_bytes : int, optional
        Refuse files whose arrays would take more memory (default: the package limit,
        ``FASTGD_MAX_BYTES``).

    Returns
    -------
    SweepResult or ChainSweepResult
        Checked against its metadata (shapes, invariants, checksum) before it is returned.

    Raises
    ------
    FastGDValueError
        Not a fastgd result file, damaged, tampered with or too large (one message naming
        what is wrong).

    Examples
    --------
    >>> import fastgd as fg
    >>> X, y = fg.lecture_data()
    >>> res = fg.sweep("gd", lr=[1.5, 2.5], data=[(X, y)], steps=200)
    >>> fg.load(res.save("lecture_sweep")).equals(res)
    True
    >>> ch = fg.chain.chain_sweep(lr=[0.1, 0.5], inits=[(0.5, 0.5)], steps=100)
    >>> type(fg.load(ch.save("chain_sweep"))).__name__
    'ChainSweepResult'
    """
    if peek_format(path) == CHAIN_FORMAT:
        return chain_load(path, max_bytes=max_bytes)
    return load_sweep(path, max_bytes=max_bytes)
