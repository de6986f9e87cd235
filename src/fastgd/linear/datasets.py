"""Preparing a sweep's datasets: the ``data`` argument (a list or a dict of (X, y)
pairs) or a family of Gaussian datasets of given condition numbers, and the pieces that
put a sweep's result together (the SGD limits of each dataset, the versions that ran
it).

Convention: E(w) = 1/(2P) sum_p (y_p - w.x_p)^2, H = X^T X / P.
"""

from __future__ import annotations

import platform

import numpy as np

from fastgd import validate as V
from fastgd.linear.result import default_names


def _named(f, data):
    """``data`` as given -> (list of (X, y) or the original object, names or None):
    a dict maps names to (X, y) pairs."""
    if isinstance(data, dict):
        if not data:
            raise V.fail(f, "data", "a non-empty dict of name -> (X, y)", "an empty dict")
        bad = [k for k in data if not isinstance(k, str)]
        if bad:
            raise V.fail_type(f, "data", "a dict with str keys (dataset names)", bad[0])
        return list(data.values()), tuple(data)
    return data, None


def _datasets(f, data, condition, n, d, fix, data_seed):
    """-> (list of (X, y), condition grid or None, names)."""
    if (data is None) == (condition is None):
        raise V.fail(f, "data", "given, or 'condition' given (exactly one of them)",
                     "both" if data is not None else "neither")
    if data is not None:
        data, names = _named(f, data)
        if V.single_pair(data):
            data = [data]
        try:
            items = list(data)
        except TypeError as exc:
            raise V.fail_type(f, "data", "a list of (X, y) pairs", data) from exc
        if not items:
            raise V.fail(f, "data", "a non-empty list of (X, y) pairs", "an empty list")
        out = _plain_pairs(items)
        if out is None:
            out = [_pair(f, k, item) for k, item in enumerate(items)]
        ds = {x.shape[1] for x, _ in out}
        if len(ds) > 1:
            raise V.fail(f, "data", "datasets with the same number of inputs d",
                         f"d in {sorted(ds)}")
        return out, None, names or default_names(len(out))
    from fastgd.data import gaussian_family

    kappa = V.as_float_array(f, "condition", np.atleast_1d(condition), 1)
    if np.any(kappa < 1):
        raise V.fail(f, "condition", "condition numbers >= 1", f"min {kappa.min():g}")
    d = V.integer(f, "d", d, minimum=1)
    if d == 1 and np.any(kappa != 1):
        raise V.fail(f, "d", ">= 2 when a condition number > 1 is asked for", d)
    n = V.integer(f, "n", n, minimum=d + 1)
    V.choice(f, "fix", fix, ("lambda_max", "lambda_min"))
    # eigenvalues geometrically spaced from 1/kappa to 1 (one row per kappa), all at once
    frac = np.linspace(-1.0, 0.0, d) if d > 1 else np.zeros(1)
    rows = np.exp(np.log(kappa)[:, None] * frac[None, :])
    if d > 1:
        rows[:, 0], rows[:, -1] = 1.0 / kappa, 1.0
    if fix == "lambda_min":
        rows = rows * kappa[:, None]
    data_seed = V.integer(f, "data_seed", data_seed, minimum=0)
    # the same as gaussian_data(n, row, seed=data_seed) for each row, drawn once
    family = gaussian_family(n, rows, seed=data_seed, describe=False)
    return [(ds.X, ds.y) for ds in family], kappa, default_names(kappa.size, kappa)


def _pair(f, k, item):
    """``data[k]`` checked (:func:`fastgd.validate.data`)."""
    try:
        X, y = item
    except (TypeError, ValueError) as exc:
        raise V.fail_type(f, f"data[{k}]", "an (X, y) pair", item) from exc
    return V.data(f, X, y, xname=f"data[{k}][0]", yname=f"data[{k}][1]")


def _plain_pairs(items):
    """The (X, y) pairs as given when :func:`fastgd.validate.data` would pass each of them
    through unchanged: float64 ndarrays (not subclasses), X (P, d) and y (P,) of one
    shape for all, C-contiguous and writeable, finite, with finite sums of squares and H
    within the memory limit; checked on the stack at once (a few NumPy calls instead of
    a dozen per dataset).  None otherwise: the checks per dataset then say what is wrong
    (or convert what they accept)."""
    try:
        pairs = [(X, y) for X, y in items]
    except (TypeError, ValueError):
        return None
    X0, y0 = pairs[0] if pairs else (None, None)
    if not (type(X0) is np.ndarray and type(y0) is np.ndarray and X0.ndim == 2
            and y0.ndim == 1 and X0.size > 0 and y0.shape[0] == X0.shape[0]):
        return None
    for X, y in pairs:
        if not (type(X) is np.ndarray and type(y) is np.ndarray and X.shape == X0.shape
                and y.shape == y0.shape and X.dtype == np.float64 and y.dtype == np.float64
                and X.flags.c_contiguous and X.flags.writeable and y.flags.c_contiguous
                and y.flags.writeable):
            return None
    P, d = X0.shape
    for arrays, count in ((np.stack([X for X, _ in pairs]), P * d),
                          (np.stack([y for _, y in pairs]), P)):
        m = np.max(np.abs(arrays.reshape(len(pairs), -1)), axis=1)
        with np.errstate(over="ignore", invalid="ignore"):  # refused below, then explained
            if not np.all(np.isfinite(m) & (m * m * float(count) <= V.SQUARE_LIMIT)):
                return None
    try:
        V.check_bytes("sweep", "X", V.matrix_bytes(d))
    except ValueError:
        return None
    return pairs


def _sgd_limits(res, datasets, bias, batch_size, order, momentum, nesterov, almost_sure,
                threads, probs=None):
    """Fill the SGD mean-square (and, on request, almost-sure) limits of each dataset.
    ``probs``: the datasets' prepared problems, which keep the limits (not the simulated
    almost-sure ones) for the next sweep on the same data: a limit costs up to ~10 ms a
    dataset at d = 100 (a Lanczos solve), more with momentum."""
    from fastgd.theory import limits

    if order == "cyclic" and not almost_sure:
        return  # the exact cyclic limit needs an epoch-product root search per dataset
    key = ("sgd_limits", bool(bias), batch_size, order, float(momentum), bool(nesterov))
    for k, (X, _) in enumerate(datasets):
        memo = probs[k].theory if probs is not None and not almost_sure else {}
        got = memo.get(key)
        if got is None:
            try:
                lim = limits(X, bias=bias, momentum=momentum, nesterov=nesterov,
                             batch_size=batch_size, order=order, almost_sure=almost_sure,
                             threads=threads)
            except ValueError:  # e.g. too many directions for the dense operator
                continue
            got = memo[key] = (lim["sgd_ms"], lim["sgd_as"])
        res.sgd_ms_limit[k], res.sgd_as_limit[k] = got


def _versions():
    import numba

    from fastgd.version import __version__

    return {"fastgd": __version__, "numba": numba.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


