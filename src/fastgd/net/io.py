"""Files of network results: :class:`fastgd.net.NetSweepResult` and
:class:`fastgd.net.NetRun` saved and read back bit for bit through
:mod:`fastgd.engine.files` (atomic writes, a checksum of arrays and metadata, every
shape checked against the metadata and the result's invariants checked before the
result is returned).  ``fastgd.load`` reads both; the classes' ``save`` methods call
:func:`save_net`.

This module does not import the result classes (their modules import it):
:func:`read_net` returns the constructor's arguments.
"""

from __future__ import annotations

import numpy as np

from fastgd.engine.fields import read_fields, save_fields
from fastgd.engine.files import check_kinds, status_rules
from fastgd.status import Status

__all__ = ["NET_RUN_FORMAT", "NET_SWEEP_FORMAT", "read_net", "save_net"]

#: the format of a saved :class:`fastgd.net.NetSweepResult`
NET_SWEEP_FORMAT = "fastgd-net-sweep-1"
#: the format of a saved :class:`fastgd.net.NetRun`
NET_RUN_FORMAT = "fastgd-net-run-1"

_CELL = ("n_width", "n_scale", "n_seed", "n_lr")
_INIT = _CELL[:3]
_SWEEP_SCHEMA = {
    "lr": (("n_lr",), "f"), "width": (("n_width",), "iu"), "scale": (("n_scale",), "f"),
    "seeds": (("n_seed",), "iu"), "status": (_CELL, "iu"),
    **{k: (_CELL, "f") for k in ("loss", "max_loss_ratio", "sharpness", "lr_abs",
                                 "preconditioned_sharpness")},
    "steps_to_tol": (_CELL, "iu"), "diverged_at": (_CELL, "iu"),
    **{k: (_INIT, "f") for k in ("lambda0", "ntk0", "loss0")},
    "sharpness_curve": (_CELL + ("n_k",), "f"),
    "preconditioned_sharpness_curve": (_CELL + ("n_k",), "f")}
_SWEEP_OPTIONAL = ("sharpness_curve", "lr_abs", "preconditioned_sharpness",
                   "preconditioned_sharpness_curve")
_COMMON = {"activation": str, "param": str, "bias": bool, "method": str, "d": int,
           "momentum": float, "tol": float, "gtol": float, "optimizer": str,
           "optim": (dict, None)}
_SWEEP_KINDS = {**_COMMON, "steps": int, "sharpness_every": int, "blowup": float,
                "seconds": float, "threads": int, "lr_unit": str, "given_theta0": bool,
                "meta": (dict, ...)}
_RUN_SCHEMA = {"theta": (("N",), "f"), "losses": (("n",), "f"),
               "sharpness_steps": (("n_k",), "iu"), "sharpnesses": (("n_k",), "f"),
               "preconditioned_sharpnesses": (("n_k",), "f"),
               "trajectory_steps": (("n_r",), "iu"), "trajectory": (("n_r", "N"), "f"),
               "preconditioner": (("N",), "f")}
_RUN_OPTIONAL = tuple(k for k in _RUN_SCHEMA if k not in ("theta", "losses"))
_RUN_KINDS = {**_COMMON, "status": int, "width": int, "unit": str, "lr": float,
              **{k: float for k in ("loss", "loss0", "sharpness", "lambda0", "ntk", "ntk0",
                                    "max_loss_ratio", "preconditioned_sharpness",
                                    "preconditioned_sharpness0")},
              "steps_to_tol": int, "diverged_at": int}
_KIND = {NET_SWEEP_FORMAT: ("NetSweepResult", _SWEEP_SCHEMA, _SWEEP_KINDS, _SWEEP_OPTIONAL),
         NET_RUN_FORMAT: ("NetRun", _RUN_SCHEMA, _RUN_KINDS, _RUN_OPTIONAL)}


def save_net(result, path) -> str:
    """Write a :class:`~fastgd.net.NetSweepResult` or :class:`~fastgd.net.NetRun` to
    ``path`` (``.npz`` appended when it lacks it) atomically: a temporary file in the
    same directory, flushed, renamed over ``path`` (the old file survives any failure
    or kill), with a checksum of arrays and metadata.  Returns the path written.

    Examples
    --------
    >>> import numpy as np, fastgd as fg, fastgd.net as fn
    >>> X = np.linspace(-1, 1, 6)[:, None]; y = 0.5 * X[:, 0]
    >>> run = fn.net_gd(X, y, 0.5, 50, width=4)
    >>> back = fg.load(save_net(run, "net_run"))
    >>> back.status == run.status, bool((back.theta == run.theta).all())
    (True, True)
    """
    fmt = NET_SWEEP_FORMAT if type(result).__name__ == "NetSweepResult" else NET_RUN_FORMAT
    name, schema, _, _ = _KIND[fmt]
    return save_fields(f"{name}.save", path, result, schema, fmt, _CHECK[fmt])


def read_net(path, fmt, *, max_bytes=None, func="load"):
    """The constructor's arguments of the network result in ``path`` (format ``fmt``:
    :data:`NET_SWEEP_FORMAT` or :data:`NET_RUN_FORMAT`), validated: shapes against each
    other and against the metadata (the parameter count of a run is width x (d + 1 +
    bias)), status codes against ``diverged_at``/``steps_to_tol``, losses finite and
    non-negative where the run did not diverge, metadata of the right types, the
    checksum.  Anything else: one :class:`fastgd.FastGDValueError` naming ``path``.

    Examples
    --------
    >>> import numpy as np, fastgd.net as fn
    >>> X = np.linspace(-1, 1, 6)[:, None]; y = 0.5 * X[:, 0]
    >>> res = fn.net_sweep(X, y, [1.0, 20.0], 50, width=4, activation="identity")
    >>> kw = read_net(save_net(res, "net_sweep"), NET_SWEEP_FORMAT)
    >>> kw["status"].tolist(), kw["activation"]
    ([[[[1, 2]]]], 'identity')
    """
    name, schema, kinds, optional = _KIND[fmt]
    bind = _bind_run if fmt == NET_RUN_FORMAT else _bind_sweep
    arrays, head = read_fields(path, schema, kinds, fmt=fmt, writer=f"{name}.save",
                               optional=optional, max_bytes=max_bytes, func=func,
                               check=_CHECK[fmt], bind=bind)
    if isinstance(head.get("optim"), dict):  # JSON has no tuples: (beta1, beta2)
        head["optim"] = {k: tuple(v) if isinstance(v, list) else v
                         for k, v in head["optim"].items()}
    if fmt == NET_RUN_FORMAT:
        head["status"] = Status(head["status"])
    else:
        arrays["status"] = arrays["status"].astype(np.int8)
    return {**arrays, **head}


def _bind_run(head):
    """N = width x (d + 1 + bias) parameters (:func:`fastgd.net.net_unpack`)."""
    if not (head["width"] >= 1 and head["d"] >= 1):
        return "metadata width and d must be >= 1"
    return {"N": head["width"] * (head["d"] + 1 + int(head["bias"]))}


def _bind_sweep(head):
    """n_k = steps // sharpness_every + 1 points of a sharpness curve (step 0 first)."""
    if head["steps"] < 0 or head["sharpness_every"] < 0:
        return "metadata steps and sharpness_every must be >= 0"
    every = head["sharpness_every"]
    return {"n_k": head["steps"] // every + 1} if every else {}


def _common(head):
    from fastgd.net.adaptive import OPTIMIZERS
    from fastgd.net.model import ACTIVATIONS

    for key, ok in (("activation", ACTIVATIONS), ("param", ("ntk", "standard")),
                    ("method", ("gd", "sgd")), ("optimizer", OPTIMIZERS)):
        if head[key] not in ok:
            return f"metadata {key} {str(head[key])[:40]!r} (expected one of {ok})"
    if head["d"] < 1 or not 0 <= head["momentum"] < 1:
        return "metadata d or momentum out of range"
    return None


def _check_sweep(a, head):
    what = check_kinds(head, _SWEEP_KINDS) or _common(head)
    if what:
        return what
    if head["lr_unit"] not in ("absolute", "lambda0") or head["steps"] < 0:
        return "metadata lr_unit or steps out of range"
    what = status_rules(a["status"], a["diverged_at"], a["steps_to_tol"], a["loss"],
                        head["steps"])
    if what:
        return what
    rates = [a["lr"]] + ([a["lr_abs"]] if a.get("lr_abs") is not None else [])
    if not all(np.all(np.isfinite(r) & (r > 0)) for r in rates) or (a["width"] < 1).any():
        return "'lr' (or 'lr_abs') not finite and > 0, or a width below 1"
    if np.isnan(a["loss0"]).any() or (a["loss0"] < 0).any() or (a["max_loss_ratio"] < 0).any():
        return "'loss0' or 'max_loss_ratio' holds NaN or negative values"
    return None


def _check_run(a, head):
    what = check_kinds(head, _RUN_KINDS) or _common(head)
    if what:
        return what
    n = a["losses"].shape[0]
    if n < 1 or head["unit"] != ("step" if head["method"] == "gd" else "epoch"):
        return "no losses, or a unit that does not match the method"
    what = status_rules(np.array([head["status"]]), np.array([head["diverged_at"]]),
                        np.array([head["steps_to_tol"]]), np.array([head["loss"]]), n - 1)
    if what:
        return what
    if not (np.isfinite(head["lr"]) and head["lr"] > 0):
        return "metadata lr not finite and > 0"
    losses = a["losses"]
    if np.isnan(losses).any() or (losses < 0).any() or not head["loss0"] >= 0:
        return "'losses' or loss0 holds NaN or negative values"
    if head["status"] == Status.NOT_RUN:
        return "a single run's status NOT_RUN"
    if head["status"] != Status.DIVERGED and not np.isfinite(losses).all():
        return "'losses' holds inf on a run that did not diverge"
    return None


_CHECK = {NET_SWEEP_FORMAT: _check_sweep, NET_RUN_FORMAT: _check_run}
