"""All theoretical learning-rate limits of one dataset in one dict, for reports and
plots (:func:`limits`)."""

from __future__ import annotations

import scipy.linalg

from fastgd import status as ST
from fastgd import validate as V
from fastgd.engine import cost as _cost
from fastgd.theory._common import _FLAT, _nonzero, _x_only
from fastgd.theory.almost_sure import sgd_as_critical_lr
from fastgd.theory.mean_square import _DENSE_MAX, sgd_ms_critical_lr
from fastgd.theory.momentum import momentum_lr_max

__all__ = ["limits"]


def limits(X, *, bias=False, momentum=0.0, nesterov=False, batch_size=None, order=None,
           y=None, almost_sure=False, seeds=64, epochs=200, threads=None) -> dict:
    """The theoretical learning-rate limits for one dataset, for reports and plots.

    Keys (floats; NaN where not applicable):

    * ``"lambda_max"``; ``"gd"``: 2/lambda_max; ``"gd_opt"``: 1/lambda_max;
      ``"minimax"``: 2/(lambda_max + lambda_min).
    * ``"momentum"``: :func:`momentum_lr_max` (NaN when momentum = 0).
    * ``"sgd_ms"``: :func:`sgd_ms_critical_lr` (needs ``batch_size``): batches with
      replacement for ``order="replacement"``, random B-subsets otherwise; for
      ``"shuffle"`` that is the i.i.d.-subset process, the nearest closed form to
      per-epoch reshuffling.  For ``order="cyclic"`` (deterministic) the exact limit.
    * ``"sgd_as"``: :func:`sgd_as_critical_lr` ``.lr``: exact and cheap for cyclic
      order, otherwise computed only when ``almost_sure=True`` (a simulation).

    ``y`` is accepted for symmetry and ignored (the limits do not depend on labels).
    Loss E(w) = 1/(2P) sum (y - w.x)^2.

    Parameters
    ----------
    X : array (P, d)
    bias, momentum, nesterov
        As in :func:`sgd_ms_critical_lr`.
    batch_size : int in [1, P], optional
        Needed for the SGD limits.
    order : {"replacement", "shuffle", "cyclic"}, optional
        SGD's sample order (default ``"shuffle"``).
    almost_sure, seeds, epochs, threads
        Simulate the almost-sure limit, with these :func:`sgd_as_critical_lr` arguments.

    Returns
    -------
    dict of str to float

    Examples
    --------
    >>> import fastgd as fg
    >>> lim = fg.theory.limits(fg.lecture_data().X, batch_size=1, order="cyclic")
    >>> round(lim["gd"], 6), round(lim["sgd_as"], 6), lim["sgd_ms"] == lim["sgd_as"]
    (2.380952, 2.463183, True)
    """
    f = "limits"
    Xa, H = _x_only(f, X, bias)
    P = Xa.shape[0]
    beta = V.momentum(f, momentum)
    nesterov = V.boolean(f, "nesterov", nesterov)
    almost_sure = V.boolean(f, "almost_sure", almost_sure)
    if order is not None:
        V.choice(f, "order", order, tuple(ST.ORDERS))
    if batch_size is not None:
        batch_size = V.integer(f, "batch_size", batch_size, minimum=1, maximum=P)
    V.threads(f, threads)
    seeds = V.integer(f, "seeds", seeds, minimum=2)
    epochs = V.integer(f, "epochs", epochs, minimum=1)
    if almost_sure and batch_size is not None and order != "cyclic":
        _cost.lyapunov(f, seeds, epochs, epochs // 10, 32, P, Xa.shape[1])
    lam = scipy.linalg.eigvalsh(H)
    _nonzero(f, lam)
    pos = lam[lam > _FLAT * lam[-1]]
    nan = float("nan")
    out = {"lambda_max": float(lam[-1]), "gd": float(2.0 / lam[-1]),
           "gd_opt": float(1.0 / lam[-1]), "minimax": float(2.0 / (pos[-1] + pos[0])),
           "momentum": momentum_lr_max(float(lam[-1]), beta, nesterov) if beta > 0 else nan,
           "sgd_ms": nan, "sgd_as": nan}
    if batch_size is not None:
        Xb = Xa[:, :-1] if bias else Xa
        out.update(_sgd_limits(Xb, bias, batch_size, order or "shuffle", beta, nesterov,
                               pos.size, almost_sure, seeds, epochs, threads))
    return out


def _sgd_limits(Xb, bias, batch_size, order, beta, nesterov, n_pos, almost_sure, seeds, epochs,
                threads):
    """The ``"sgd_ms"`` and ``"sgd_as"`` entries of :func:`limits` that apply (checked
    arguments; ``n_pos``: the number of non-flat directions)."""
    if order == "cyclic":
        a = sgd_as_critical_lr(Xb, batch_size=batch_size, order="cyclic", momentum=beta,
                               nesterov=nesterov, bias=bias)
        return {"sgd_ms": a.lr, "sgd_as": a.lr}
    out = {}
    if beta == 0.0 or n_pos <= _DENSE_MAX // 2:
        out["sgd_ms"] = sgd_ms_critical_lr(Xb, batch_size, order == "replacement", bias,
                                           momentum=beta, nesterov=nesterov)
    if almost_sure:
        out["sgd_as"] = sgd_as_critical_lr(Xb, batch_size=batch_size, order=order,
                                           momentum=beta, nesterov=nesterov, bias=bias,
                                           seeds=seeds, epochs=epochs, threads=threads).lr
    return out
