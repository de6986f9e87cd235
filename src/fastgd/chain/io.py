"""Files of single chain runs: :class:`fastgd.chain.ChainRun` (:func:`fastgd.chain.chain_gd`,
:func:`fastgd.chain.chain_sgd`) saved and read back bit for bit through
:mod:`fastgd.engine.files` (atomic writes, a checksum of arrays and metadata, shapes
checked against each other and against the statuses, the run's invariants checked at
save and at load).  ``fastgd.load`` reads them; ``ChainRun.save`` calls
:func:`save_chain_run`.

This module does not import :class:`~fastgd.chain.ChainRun` (its module imports this
one): :func:`read_chain_run` returns the constructor's arguments.
"""

from __future__ import annotations

import numpy as np

from fastgd.engine.fields import read_fields, run_rules, save_fields

__all__ = ["CHAIN_RUN_FORMAT", "read_chain_run", "save_chain_run"]

#: the format of a saved :class:`fastgd.chain.ChainRun`
CHAIN_RUN_FORMAT = "fastgd-chain-run-1"

_SCHEMA = {"w": (("L",), "f"), "losses": (("n",), "f"), "trajectory": (("n", "L"), "f"),
           "sharpnesses": (("n",), "f")}
_OPTIONAL = ("trajectory", "sharpnesses")
#: curvatures and losses: never NaN, never negative (inf where a run overflowed)
_NONNEG = ("loss", "sharpness", "ntk", "lambda0", "ntk0", "loss0", "max_loss_ratio")
_KINDS = {"status": int, "steps_to_tol": int, "diverged_at": int, "method": str,
          "unit": str, **{k: float for k in _NONNEG + ("excess", "lr", "loss_scale")}}


def save_chain_run(run, path) -> str:
    """Write a :class:`~fastgd.chain.ChainRun` to ``path`` (``.npz`` appended when it
    lacks it) atomically: a temporary file in the same directory, flushed, renamed over
    ``path`` (the old file survives any failure or kill), with a checksum of arrays and
    metadata.  Returns the path written.

    Examples
    --------
    >>> import fastgd as fg, fastgd.chain as ch
    >>> run = ch.chain_gd([0.5, 0.5], 0.1, 500, record=True)
    >>> back = fg.load(save_chain_run(run, "chain_run"))
    >>> back.status == run.status, bool((back.sharpnesses == run.sharpnesses).all())
    (True, True)
    """
    return save_fields("ChainRun.save", path, run, _SCHEMA, CHAIN_RUN_FORMAT, _check)


def read_chain_run(path, *, max_bytes=None, func="load"):
    """The constructor's arguments of the chain run in ``path``, validated: shapes
    against each other (``w`` and ``trajectory`` share the depth, at least 2;
    ``losses``, ``trajectory`` and ``sharpnesses`` share n, and n - 1 is the step a
    CONVERGED or DIVERGED run ended at), status codes against
    ``diverged_at``/``steps_to_tol``, losses and curvatures never NaN or negative,
    losses finite unless the run diverged, metadata of the right types, the checksum.
    Anything else: one :class:`fastgd.FastGDValueError` naming ``path``.

    Examples
    --------
    >>> import fastgd.chain as ch
    >>> run = ch.chain_sgd([0.5, 0.5], 0.05, 20, x=[1.0, 2.0], y=[2.0, 4.0])
    >>> kw = read_chain_run(save_chain_run(run, "chain_sgd_run"))
    >>> kw["status"].name, kw["unit"], kw["trajectory"] is None
    ('CONVERGED', 'epoch', True)
    """
    from fastgd.status import Status

    arrays, head = read_fields(path, _SCHEMA, _KINDS, fmt=CHAIN_RUN_FORMAT,
                               writer="ChainRun.save", optional=_OPTIONAL,
                               max_bytes=max_bytes, func=func, check=_check)
    head["status"] = Status(head["status"])
    return {**arrays, **head}


def _check(a, head):
    """What makes a chain run file impossible (None: nothing)."""
    what = run_rules(a, head, _KINDS, ok=a["w"].shape[0] >= 2, what="no losses, a depth "
                     "below 2, or a status that is not BOUNDED, CONVERGED or DIVERGED")
    if what:
        return what
    if not all(head[k] >= 0 for k in _NONNEG) or np.isnan(head["excess"]):
        return f"metadata {', '.join(_NONNEG)} must be >= 0 (not NaN), excess not NaN"
    if not all(np.isfinite(head[k]) and head[k] > 0 for k in ("lr", "loss_scale")):
        return "metadata lr or loss_scale not finite and > 0"
    if (a.get("trajectory") is None) != (a.get("sharpnesses") is None):
        return "'trajectory' and 'sharpnesses' must be saved together (record=True)"
    s = a.get("sharpnesses")
    if s is not None and (np.isnan(s).any() or (s < 0).any()):
        return "'sharpnesses' holds NaN or negative values"
    return None
