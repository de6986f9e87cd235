"""Argument checks shared by the public API: one message shape everywhere.

``<func>: '<name>' must be <expected>; got <what came>.``  Errors are raised in
Python, before any kernel runs.
"""

from __future__ import annotations

import numbers
import operator

import numpy as np


class FastGDValueError(ValueError):
    """A fastgd argument has the right type but a bad value."""


class FastGDTypeError(TypeError):
    """A fastgd argument has the wrong type."""


def _describe(value) -> str:
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    r = repr(value)
    return r if len(r) <= 60 else r[:57] + "..."


def fail(func: str, name: str, expected: str, got) -> FastGDValueError:
    return FastGDValueError(f"{func}: '{name}' must be {expected}; got {got}.")


def fail_type(func: str, name: str, expected: str, value) -> FastGDTypeError:
    return FastGDTypeError(
        f"{func}: '{name}' must be {expected}; got {type(value).__name__} {_describe(value)}."
    )


def as_float_array(func, name, value, ndim, *, allow_empty=False):
    """Convert to a C-contiguous float64 array of exactly ``ndim`` dims, finite values."""
    if isinstance(value, (str, bytes)) or value is None:
        raise fail_type(func, name, f"a {ndim}-D array of numbers", value)
    try:
        arr = np.asarray(value)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise fail_type(func, name, f"a {ndim}-D array of numbers", value) from exc
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise fail_type(func, name, f"a {ndim}-D array of real numbers", value)
    if np.iscomplexobj(arr):
        raise fail_type(func, name, "real-valued", value)
    if arr.ndim != ndim:
        raise fail(func, name, f"a {ndim}-D array", f"{arr.ndim}-D with shape {arr.shape}")
    if arr.size == 0 and not allow_empty:
        raise fail(func, name, "non-empty", f"shape {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise fail(func, name, "finite (no NaN or inf)", f"{bad} non-finite value(s)")
    return arr


def ndim_of(value) -> int:
    """``np.ndim`` that returns -1 instead of raising (ragged nested lists)."""
    try:
        return np.ndim(value)
    except Exception:
        return -1


def data(func, X, y, *, xname="X", yname="y"):
    """Validate a dataset: X (P, d) or (P,) for d = 1, y (P,)."""
    if ndim_of(X) == 1:
        X = np.asarray(X)[:, None]
    X = as_float_array(func, xname, X, 2)
    y = as_float_array(func, yname, y, 1)
    if X.shape[1] == 0:
        raise fail(func, xname, "of shape (P, d) with d >= 1", f"shape {X.shape}")
    if X.shape[0] != y.shape[0]:
        raise fail(func, yname, f"of length P = {X.shape[0]} (rows of {xname})",
                   f"length {y.shape[0]}")
    return X, y


def integer(func, name, value, *, minimum=None, maximum=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, float) and float(value).is_integer():
            value = int(value)
        else:
            raise fail_type(func, name, "an integer", value)
    value = operator.index(value)
    if minimum is not None and value < minimum:
        raise fail(func, name, f"an integer >= {minimum}", value)
    if maximum is not None and value > maximum:
        raise fail(func, name, f"an integer <= {maximum}", value)
    return int(value)


def real(func, name, value, *, positive=False, nonneg=False, finite=True, below=None,
         inclusive_below=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise fail_type(func, name, "a real number", value)
    v = float(value)
    if np.isnan(v) or (finite and not np.isfinite(v)):
        raise fail(func, name, "finite" if finite else "not NaN", v)
    if positive and not v > 0:
        raise fail(func, name, "> 0", v)
    if nonneg and not v >= 0:
        raise fail(func, name, ">= 0", v)
    if below is not None:
        if inclusive_below and not v <= below:
            raise fail(func, name, f"<= {below}", v)
        if not inclusive_below and not v < below:
            raise fail(func, name, f"< {below}", v)
    return v


def rates(func, name, value):
    """A scalar or 1-D sequence of learning rates: finite and > 0 (returns a 1-D array)."""
    if isinstance(value, (str, bytes)) or value is None:
        raise fail_type(func, name, "a number or a 1-D array of numbers", value)
    arr = as_float_array(func, name, np.atleast_1d(value), 1)
    if not np.all(arr > 0):
        raise fail(func, name, "finite and > 0", f"min {arr.min():g}")
    return arr


def choice(func, name, value, options):
    if not isinstance(value, str) or value not in options:
        opts = ", ".join(repr(o) for o in options)
        if not isinstance(value, str):
            raise fail_type(func, name, f"one of {opts}", value)
        raise fail(func, name, f"one of {opts}", repr(value))
    return value


def boolean(func, name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise fail_type(func, name, "True or False", value)
    return bool(value)


def momentum(func, value):
    """Momentum coefficient beta in [0, 1)."""
    return real(func, "momentum", value, nonneg=True, below=1.0)


def blowup(func, value):
    """Divergence factor: a real number >= 1 (inf allowed: never flag a finite loss)."""
    v = real(func, "blowup", value, positive=True, finite=False)
    if v < 1:
        raise fail(func, "blowup", ">= 1", v)
    return v
