"""Files of single linear runs: :class:`fastgd.linear.run.Run` (``fastgd.gd``,
``fastgd.sgd``) and :class:`fastgd.linear.adaptive.AdaptiveRun` (Adam, RMSProp,
AdaGrad) saved and read back bit for bit through :mod:`fastgd.engine.files` (atomic
writes, a checksum of arrays and metadata, shapes checked against each other and against
the statuses, the run's invariants checked at save and at load).  ``fastgd.load`` reads
both; ``Run.save`` calls :func:`save_run`.

This module does not import the result classes (their module imports it):
:func:`read_run` returns the constructor's arguments.
"""

from __future__ import annotations

import numpy as np

from fastgd.engine.fields import read_fields, run_rules, save_fields

__all__ = ["ADAPTIVE_RUN_FORMAT", "RUN_FORMAT", "read_run", "save_run"]

#: the format of a saved :class:`fastgd.linear.run.Run`
RUN_FORMAT = "fastgd-run-1"
#: the format of a saved :class:`fastgd.linear.adaptive.AdaptiveRun`
ADAPTIVE_RUN_FORMAT = "fastgd-adaptive-run-1"

_SCHEMA = {"w": (("d",), "f"), "losses": (("n",), "f"), "trajectory": (("n", "d"), "f"),
           "w_star": (("d",), "f")}
_ADAPTIVE_SCHEMA = {**_SCHEMA, "frozen_v_hat": (("d",), "f")}
_KINDS = {"loss": float, "status": int, "diverged_at": int, "steps_to_tol": int,
          "lr": float, "method": str, "unit": str, "excess": float, "growing": bool,
          "loss_star": (float, None)}
_ADAPTIVE_KINDS = {**_KINDS, "optimizer": str, "betas": list, "eps": float,
                   "frozen_at": (int, None), "frozen_factor": (float, None)}
#: the adaptive methods (:data:`fastgd.linear.adaptive.OPTIMIZERS`; not imported: that
#: module imports the result classes, which import this one)
_OPTIMIZERS = ("adam", "rmsprop", "adagrad")
_KIND = {RUN_FORMAT: ("Run", _SCHEMA, _KINDS, ("trajectory", "w_star")),
         ADAPTIVE_RUN_FORMAT: ("AdaptiveRun", _ADAPTIVE_SCHEMA, _ADAPTIVE_KINDS,
                               ("trajectory", "w_star", "frozen_v_hat"))}


def _format(run):
    return ADAPTIVE_RUN_FORMAT if hasattr(run, "optimizer") else RUN_FORMAT


def save_run(run, path) -> str:
    """Write a :class:`~fastgd.linear.run.Run` (or an ``AdaptiveRun``) to ``path``
    (``.npz`` appended when it lacks it) atomically: a temporary file in the same
    directory, flushed, renamed over ``path`` (the old file survives any failure or
    kill), with a checksum of arrays and metadata.  Returns the path written.

    Examples
    --------
    >>> import fastgd as fg
    >>> run = fg.gd(*fg.lecture_data(), lr=1.5, steps=100, record=True)
    >>> back = fg.load(save_run(run, "run"))
    >>> back.status == run.status, bool((back.trajectory == run.trajectory).all())
    (True, True)
    """
    fmt = _format(run)
    name, schema, _, _ = _KIND[fmt]
    return save_fields(f"{name}.save", path, run, schema, fmt, _check)


def read_run(path, fmt, *, max_bytes=None, func="load"):
    """The constructor's arguments of the run in ``path`` (format ``fmt``:
    :data:`RUN_FORMAT` or :data:`ADAPTIVE_RUN_FORMAT`), validated: shapes against each
    other (``w``, ``w_star``, ``trajectory`` and ``frozen_v_hat`` share d; ``losses``
    and ``trajectory`` share n, and n - 1 is the step a CONVERGED or DIVERGED run ended
    at), status codes against ``diverged_at``/``steps_to_tol``, losses never NaN or
    negative and finite unless the run diverged, metadata of the right types, the
    checksum.  Anything else: one :class:`fastgd.FastGDValueError` naming ``path``.

    Examples
    --------
    >>> import fastgd as fg
    >>> run = fg.sgd(*fg.lecture_data(), lr=0.05, epochs=5)
    >>> kw = read_run(save_run(run, "sgd_run"), RUN_FORMAT)
    >>> kw["status"].name, kw["unit"], kw["losses"].shape
    ('BOUNDED', 'epoch', (6,))
    """
    from fastgd.status import Status

    name, schema, kinds, optional = _KIND[fmt]
    arrays, head = read_fields(path, schema, kinds, fmt=fmt, writer=f"{name}.save",
                               optional=optional, max_bytes=max_bytes, func=func,
                               check=_check)
    head["status"] = Status(head["status"])
    if "betas" in head:  # JSON has no tuples
        head["betas"] = tuple(head["betas"])
    return {**arrays, **head}


def _check(a, head):
    """What makes a run file impossible (None: nothing)."""
    adaptive = head["format"] == ADAPTIVE_RUN_FORMAT
    what = run_rules(a, head, _ADAPTIVE_KINDS if adaptive else _KINDS)
    if what:
        return what
    st = head["status"]
    if not (np.isfinite(head["lr"]) and head["lr"] > 0):
        return "metadata lr not finite and > 0"
    if np.isnan(head["excess"]) or (head["growing"] and st != 0):
        return "metadata excess is NaN, or growing is set on a run that is not BOUNDED"
    star = head["loss_star"]
    if star is not None and not (np.isfinite(star) and star >= 0):
        return "metadata loss_star not finite and >= 0"
    if a.get("w_star") is not None and not np.isfinite(a["w_star"]).all():
        return "'w_star' holds values that are not finite"
    return _check_adaptive(a, head) if adaptive else None


def _check_adaptive(a, head):
    betas, frozen = head["betas"], head["frozen_at"]
    if head["optimizer"] not in _OPTIMIZERS or head["method"] != "gd":
        return f"metadata optimizer {str(head['optimizer'])[:40]!r} (expected one of " \
               f"{_OPTIMIZERS}, method gd)"
    if len(betas) != 2 or not all(isinstance(b, (int, float)) and not isinstance(b, bool)
                                  and 0 <= b < 1 for b in betas):
        return "metadata betas must be two numbers in [0, 1)"
    if not (np.isfinite(head["eps"]) and head["eps"] >= 0):
        return "metadata eps not finite and >= 0"
    held = [frozen is not None, head["frozen_factor"] is not None,
            a.get("frozen_v_hat") is not None]
    if any(held) != all(held) or (frozen is not None and frozen < 1):
        return "frozen_at, frozen_factor and 'frozen_v_hat' must be given together " \
               "(frozen_at >= 1)"
    return None
