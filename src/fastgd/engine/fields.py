"""Result fields the models share: a frozen result dataclass to and from its file (the
fields a schema names as arrays, every other field as JSON metadata: :func:`save_fields`;
back as the constructor's arguments with absent optional arrays as None:
:func:`read_fields`), and the ``max_loss_ratio`` of chain and network results
(:func:`loss_ratio`).  Files run on :mod:`fastgd.engine.files` (atomic writes, checksums,
everything checked before it is decompressed); the result kinds' readers and writers
(``linear.run_io``, ``chain.io``, ``net.io``) only name their schemas, metadata types
and invariants."""

from __future__ import annotations

import dataclasses

import numpy as np

from fastgd.engine.files import check_kinds, read_npz, status_rules, write_npz

__all__ = ["loss_ratio", "read_fields", "run_rules", "save_fields"]

#: what :func:`run_rules` says of an empty run or a status out of range
NO_RUN = "no losses, or a status that is not BOUNDED, CONVERGED or DIVERGED"


def loss_ratio(maxloss, loss0):
    """max_t E(w_t) / E(w0) per cell: 1 where E(w0) = 0, ``inf`` where the run diverged
    (``maxloss`` inf); the ``max_loss_ratio`` of chain and network results.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgd.engine.fields import loss_ratio
    >>> loss_ratio(np.array([3.0, 2.0, np.inf]), np.array([1.5, 0.0, 0.0])).tolist()
    [2.0, 1.0, inf]
    """
    with np.errstate(all="ignore"):
        ratio = np.where(loss0 > 0, maxloss / np.where(loss0 > 0, loss0, 1.0), 1.0)
    return np.where(np.isinf(maxloss), np.inf, ratio)


def run_rules(a, head, kinds, *, ok=True, what=NO_RUN):
    """What makes a single run's file impossible (None: nothing), the rules the linear
    and chain runs share, in this order: metadata of the types ``kinds``, method gd
    with unit step or sgd with epoch; then ``losses`` (n of them) not empty, a status
    BOUNDED, CONVERGED or DIVERGED and ``ok`` (``what`` otherwise); the status codes
    against ``diverged_at``/``steps_to_tol`` (:func:`fastgd.engine.files.status_rules`),
    n - 1 the step a CONVERGED or DIVERGED run ended at; losses never NaN or negative,
    finite unless the run diverged.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgd.engine.fields import run_rules
    >>> head = {"method": "gd", "unit": "step", "status": 1, "diverged_at": -1,
    ...         "steps_to_tol": 1, "loss": 0.0}
    >>> kinds = {k: (int, str, float) for k in head}
    >>> run_rules({"losses": np.array([1.0, 0.0])}, head, kinds) is None
    True
    >>> run_rules({"losses": np.array([1.0, 0.5, 0.0])}, head, kinds)
    '3 losses for a run that ended at 1 (expected 2)'
    """
    bad = check_kinds(head, kinds)
    if bad:
        return bad
    if head["method"] not in ("gd", "sgd") or head["unit"] != (
            "step" if head["method"] == "gd" else "epoch"):
        return "metadata method or unit out of range (gd with step, sgd with epoch)"
    losses = a["losses"]
    n, st, div, tol = losses.shape[0], head["status"], head["diverged_at"], head["steps_to_tol"]
    if n < 1 or st not in (0, 1, 2) or not ok:
        return what
    bad = status_rules(np.array([st]), np.array([div]), np.array([tol]),
                       np.array([head["loss"]]), n - 1)
    if bad:
        return bad
    end = {1: tol, 2: div}.get(st)
    if end is not None and end != n - 1:
        return f"{n} losses for a run that ended at {end} (expected {end + 1})"
    if np.isnan(losses).any() or (losses < 0).any() or (
            st != 2 and not np.isfinite(losses).all()):
        return "'losses' holds NaN or negative values, or infinite ones in a run that " \
               "did not diverge"
    return None


def save_fields(func, path, result, schema, fmt, check=None) -> str:
    """Write the dataclass ``result`` to ``path`` with :func:`fastgd.engine.files.write_npz`
    (``func`` names the caller in errors): its fields named in ``schema`` as arrays (a
    None one left out), all the others, in field order, as the JSON metadata.  Returns
    the path written.

    Examples
    --------
    >>> import dataclasses, numpy as np
    >>> from fastgd.engine.fields import read_fields, save_fields
    >>> @dataclasses.dataclass
    ... class R:
    ...     w: np.ndarray
    ...     curve: object
    ...     n: int
    >>> save_fields("R.save", "r", R(np.ones(2), None, 2), {"w": (("n",), "f")}, "r-1")
    'r.npz'
    """
    arrays, head = {}, {}
    for f in dataclasses.fields(result):  # arrays in the schema (None: left out), the rest JSON
        v = getattr(result, f.name)
        if f.name not in schema:
            head[f.name] = v
        elif v is not None:
            arrays[f.name] = v
    return write_npz(func, path, arrays, head, fmt, check)


def read_fields(path, schema, kinds, *, fmt, writer, optional=(), max_bytes=None,
                func="load", check=None, bind=None):
    """(arrays, head) of the file in ``path`` read by
    :func:`fastgd.engine.files.read_npz`, the metadata's types checked against
    ``kinds`` (:func:`fastgd.engine.files.check_kinds`) before ``bind(head)`` fixes
    lengths, and every ``optional`` array the file lacks set to None.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgd.engine.fields import read_fields
    >>> from fastgd.engine.files import write_npz
    >>> schema = {"w": (("n",), "f"), "curve": (("n",), "f")}
    >>> p = write_npz("R.save", "r2", {"w": np.ones(2)}, {"n": 2}, "r-1")
    >>> read_fields(p, schema, {"n": int}, fmt="r-1", writer="R.save", optional=("curve",))
    ({'w': array([1., 1.]), 'curve': None}, {'n': 2})
    """
    arrays, head = read_npz(path, schema, fmt=fmt, func=func, writer=writer,
                            optional=optional, max_bytes=max_bytes, check=check,
                            bind=lambda h: check_kinds(h, kinds) or (
                                bind(h) if bind is not None else {}))
    arrays.update({k: None for k in optional if k not in arrays})
    return arrays, head
