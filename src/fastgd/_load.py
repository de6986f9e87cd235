"""``fastgd.load``: one reader for every kind of result file (it looks at the format a
file declares and hands it to its model's reader, which validates it)."""

from __future__ import annotations

from fastgd.chain.sweep import FORMAT as CHAIN_FORMAT
from fastgd.chain.sweep import chain_load
from fastgd.engine.files import peek_format
from fastgd.linear.result import load as load_sweep


def load(path, *, max_bytes=None):
    """Read a result saved with ``.save(path)``: a :class:`fastgd.SweepResult` (linear
    unit), a linear run (``fastgd.gd``/``fastgd.sgd``, Adam/RMSProp/AdaGrad runs too), a
    :class:`fastgd.chain.ChainSweepResult`, a :class:`fastgd.chain.ChainRun`, a
    :class:`fastgd.net.NetSweepResult` or a :class:`fastgd.net.NetRun`, told apart by
    the format the file declares.

    Parameters
    ----------
    path : str or os.PathLike
        The file (``.npz`` is appended when missing, as ``save`` does).  Only a regular
        file is read (a device, a FIFO, a directory or a symlink to one is refused
        without blocking).
    max_bytes : float, optional
        Refuse files whose arrays would take more memory (default: half of physical
        memory or of the address-space limit), before decompressing anything.

    Returns
    -------
    SweepResult, Run, AdaptiveRun, ChainSweepResult, ChainRun, NetSweepResult or NetRun
        Checked against its metadata (shapes, invariants, checksum) before it is returned.

    Raises
    ------
    FastGDValueError
        Not a fastgd result file, damaged, tampered with, impossible or too large (one
        message naming the path and what is wrong).

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
    >>> fg.load(fg.gd(X, y, lr=1.5, steps=100).save("gd_run")).status.name
    'CONVERGED'
    """
    from fastgd.chain import io as chain_io
    from fastgd.linear import run_io
    from fastgd.net import io as net_io

    fmt = peek_format(path, max_bytes)
    if fmt == CHAIN_FORMAT:
        return chain_load(path, max_bytes=max_bytes)
    if fmt == chain_io.CHAIN_RUN_FORMAT:
        from fastgd.chain.runs import ChainRun

        return ChainRun(**chain_io.read_chain_run(path, max_bytes=max_bytes))
    if fmt == run_io.RUN_FORMAT:
        from fastgd.linear.result import Run

        return Run(**run_io.read_run(path, fmt, max_bytes=max_bytes))
    if fmt == run_io.ADAPTIVE_RUN_FORMAT:
        from fastgd.linear.adaptive import AdaptiveRun

        return AdaptiveRun(**run_io.read_run(path, fmt, max_bytes=max_bytes))
    if fmt == net_io.NET_SWEEP_FORMAT:
        from fastgd.net.sweep import NetSweepResult

        return NetSweepResult(**net_io.read_net(path, fmt, max_bytes=max_bytes))
    if fmt == net_io.NET_RUN_FORMAT:
        from fastgd.net.runs import NetRun

        return NetRun(**net_io.read_net(path, fmt, max_bytes=max_bytes))
    return load_sweep(path, max_bytes=max_bytes)
