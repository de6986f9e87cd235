"""Argument checks shared by the public API: one message shape everywhere.

``<func>: '<name>' must be <expected>; got <what came>.``  Errors are raised in
Python, before any kernel runs.
"""

from __future__ import annotations

import math
import numbers
import operator
import os

import numpy as np


class FastGDValueError(ValueError):
    """A fastgd argument has the right type but a bad value.

    Examples
    --------
    >>> import fastgd as fg
    >>> X, y = fg.lecture_data()
    >>> try:
    ...     fg.gd(X, y, lr=-1.0, steps=10)
    ... except fg.FastGDValueError as exc:
    ...     print(exc)
    gd: 'lr' must be > 0; got -1.0.
    """


class FastGDTypeError(TypeError):
    """A fastgd argument has the wrong type.

    Examples
    --------
    >>> import fastgd as fg
    >>> X, y = fg.lecture_data()
    >>> try:
    ...     fg.gd(X, y, lr="a", steps=10)
    ... except fg.FastGDTypeError as exc:
    ...     print(exc)
    gd: 'lr' must be a real number; got str 'a'.
    """


class DataConversionWarning(UserWarning):
    """Data were accepted in another shape than documented (``y`` of shape (P, 1)),
    like scikit-learn's warning of the same name.

    Examples
    --------
    >>> import warnings
    >>> import fastgd as fg
    >>> X, y = fg.lecture_data()
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     _ = fg.gd(X, y[:, None], 1.0, 10)
    >>> caught[0].category.__name__
    'DataConversionWarning'
    """


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
    if not arr.flags.writeable:
        # read-only (np.memmap mode 'r', pandas copy-on-write, writeable=False): a copy,
        # so that the kernels see the array type they were compiled for (no new compile)
        arr = arr.copy()
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise fail(func, name, "finite (no NaN or inf)", f"{bad} non-finite value(s)")
    return arr


def atleast_1d(func, name, value):
    """``np.atleast_1d`` that refuses ragged nested lists with a fastgd error."""
    if ndim_of(value) == -1:
        raise fail_type(func, name, "a 1-D array of numbers", value)
    return np.atleast_1d(value)


def ndim_of(value) -> int:
    """``np.ndim`` that returns -1 instead of raising (ragged nested lists)."""
    try:
        return np.ndim(value)
    except Exception:
        return -1


#: Largest |value|^2 x count accepted in data: sums of squares (H = X^T X / P, losses)
#: must stay finite in float64 with room for a few more products.
SQUARE_LIMIT = 1e300


def magnitude(func, name, arr, count):
    """Refuse values whose sums of ``count`` squares would overflow float64."""
    if arr.size == 0:
        return arr
    m = float(np.max(np.abs(arr)))
    if m > 0 and m * m * float(max(count, 1)) > SQUARE_LIMIT:
        raise fail(func, name, f"small enough for its sums of squares to be finite "
                   f"(|{name}|max^2 x {count} < {SQUARE_LIMIT:g}); rescale the data",
                   f"|{name}|max = {m:.3g}")
    return arr


# -- memory limits (the cost model's memory half: fastgd.engine.cost builds on it) -----
ENV_BYTES = "FASTGD_MAX_BYTES"


def env_limit(var, what="bytes"):
    """The limit set by the environment variable ``var`` (a number of ``what``; 0 or
    inf: no limit, returned as inf), or None when unset."""
    text = os.environ.get(var)
    if text is None or not text.strip():
        return None
    try:
        v = float(text)
    except ValueError:
        raise FastGDValueError(
            f"fastgd: environment variable '{var}' must be a number of {what} (0 or inf: "
            f"no limit); got {text!r}.") from None
    if math.isnan(v) or v < 0:
        raise FastGDValueError(
            f"fastgd: environment variable '{var}' must be >= 0 (0 or inf: no limit); "
            f"got {text!r}.")
    return math.inf if v == 0 else v


def physical_memory() -> int:
    """Bytes of physical memory (16 GiB when the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return 16 << 30


def memory_limit(max_bytes=None, func="fastgd"):
    """The memory limit in bytes and a phrase saying where it comes from: the argument
    ``max_bytes`` when given, else ``FASTGD_MAX_BYTES``, else half of physical memory."""
    if max_bytes is not None:
        return real(func, "max_bytes", max_bytes, positive=True, finite=False), "max_bytes"
    v = env_limit(ENV_BYTES)
    return (v, ENV_BYTES) if v is not None else (physical_memory() / 2,
                                                 "half of physical memory")


def fmt_bytes(n) -> str:
    """``n`` bytes in binary units (``"1.5 GiB"``)."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if n < 1024 or unit == "EiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.3g} B"  # pragma: no cover


def matrix_bytes(d, copies=3):
    """Memory of forming H (d x d float64) with its eigenvectors and a temporary."""
    return copies * 8.0 * float(d) * float(d)


def check_bytes(func, name, nbytes, *, what="", hint="reduce it", max_bytes=None):
    """Refuse ``func``'s call (naming argument ``name``) if ``nbytes`` exceeds the memory
    limit (:func:`memory_limit`)."""
    nbytes = float(nbytes)
    if nbytes <= 0:
        return
    limit, source = memory_limit(max_bytes, func)
    if nbytes > limit:
        how = ("raise max_bytes=" if source == "max_bytes"
               else "pass max_bytes= or set FASTGD_MAX_BYTES" if func == "sweep"
               else "set FASTGD_MAX_BYTES")
        raise fail(func, name,
                   f"small enough to fit in memory (limit {fmt_bytes(limit)}, {source})",
                   f"{what + ' = ' if what else ''}{fmt_bytes(nbytes)}; {hint}, "
                   f"or {how} to go ahead")


def design(func, X, *, name="X", forms_h=True):
    """Validate inputs X: (P, d), or (P,) for d = 1; finite, with finite squares
    (|X|max^2 x P x d < 1e300); when ``forms_h``, H (d x d) must fit in memory."""
    nd = ndim_of(X)
    if nd == -1:
        raise fail_type(func, name, "a 2-D array of numbers", X)
    if nd == 1 and not isinstance(X, (str, bytes)):
        X = np.asarray(X)[:, None]
    X = as_float_array(func, name, X, 2)
    if X.shape[1] == 0:
        raise fail(func, name, "of shape (P, d) with d >= 1", f"shape {X.shape}")
    if forms_h:
        check_bytes(func, name, matrix_bytes(X.shape[1]),
                    what=f"H = X^T X / P of {X.shape[1]} x {X.shape[1]}",
                    hint="use fewer inputs d")
    return magnitude(func, name, X, X.shape[0] * X.shape[1])


def data(func, X, y, *, xname="X", yname="y"):
    """Validate a dataset: X (P, d) or (P,) for d = 1, y (P,)."""
    X = design(func, X, name=xname)
    if ndim_of(y) == -1:
        raise fail_type(func, yname, "a 1-D array of numbers", y)
    if ndim_of(y) == 2 and np.shape(y)[1] == 1 and not isinstance(y, (str, bytes)):
        import warnings

        warnings.warn(DataConversionWarning(
            f"{func}: '{yname}' of shape {np.shape(y)} was converted to shape "
            f"({np.shape(y)[0]},); pass a 1-D array (e.g. y.ravel()) to silence this."),
            stacklevel=3)
        y = np.asarray(y)[:, 0]
    y = magnitude(func, yname, as_float_array(func, yname, y, 1), np.size(y))
    if X.shape[0] != y.shape[0]:
        raise fail(func, yname, f"of length P = {X.shape[0]} (rows of {xname})",
                   f"length {y.shape[0]}")
    return X, y


#: Default largest integer argument: kernels count in int64, with room for t + 1.
INT_MAX = 2**62


def integer(func, name, value, *, minimum=None, maximum=INT_MAX):
    """An integer (int, NumPy integer, or an integral float) in [minimum, maximum];
    ``maximum`` defaults to :data:`INT_MAX` (kernels count in int64)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, float) and float(value).is_integer():
            value = int(value)
        else:
            raise fail_type(func, name, "an integer", value)
    value = operator.index(value)
    if maximum is None:
        maximum = INT_MAX
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
    arr = as_float_array(func, name, atleast_1d(func, name, value), 1)
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


def boolean(func, name, value, *, allow_none=False):
    """True or False (a NumPy bool too); never a string such as 'False' or an int.
    ``allow_none``: None passes through (an automatic default)."""
    if value is None and allow_none:
        return None
    if not isinstance(value, (bool, np.bool_)):
        raise fail_type(func, name, "True or False" + (" or None" if allow_none else ""),
                        value)
    return bool(value)


def threads(func, value, name="threads"):
    """A thread count: None or an integer in [1, NUMBA_NUM_THREADS]."""
    if value is None:
        return None
    import numba

    return integer(func, name, value, minimum=1,
                   maximum=int(numba.config.NUMBA_NUM_THREADS))


def pair(func, name, value, *, positive=True, increasing=True):
    """A (lo, hi) pair of finite reals (lo < hi when ``increasing``)."""
    if isinstance(value, (str, bytes)) or value is None or ndim_of(value) != 1:
        raise fail_type(func, name, "a (lo, hi) pair of numbers", value)
    items = list(value)
    if len(items) != 2:
        raise fail(func, name, "a (lo, hi) pair", f"{len(items)} values")
    lo, hi = (real(func, name, v, positive=positive) for v in items)
    if increasing and not lo < hi:
        raise fail(func, name, "(lo, hi) with lo < hi", f"({lo:g}, {hi:g})")
    return lo, hi


def momentum(func, value):
    """Momentum coefficient beta in [0, 1)."""
    return real(func, "momentum", value, nonneg=True, below=1.0)


def blowup(func, value):
    """Divergence factor: a real number >= 1 (inf allowed: never flag a finite loss)."""
    v = real(func, "blowup", value, positive=True, finite=False)
    if v < 1:
        raise fail(func, "blowup", ">= 1", v)
    return v


def trajectory_steps(func, steps, lr, lam, cmax, wmax=0.0):
    """Refuse ``steps`` beyond which a closed-form GD trajectory
    w_t = w* + U diag((1 - lr lambda)^t) c overflows float64 (its entries would be
    inf or NaN): t <= (log 1e300 - log(d max|c|)) / log max|1 - lr lambda|."""
    with np.errstate(all="ignore"):
        g = float(np.max(np.abs(1.0 - lr * np.asarray(lam)), initial=0.0))
    scale = max(float(cmax) * max(np.size(lam), 1), float(wmax), 1.0)
    return growth_steps(func, steps, lr, g, scale, "|1 - lr*lambda|max")


def growth_steps(func, steps, lr, g, scale, what, limit=1e300):
    """Refuse ``steps`` past the step where ``scale x g^t`` exceeds ``limit`` (a
    closed-form or moment recursion that grows by ``g`` per step would overflow)."""
    if not g > 1.0:
        return steps
    t_max = int(max(0.0, (math.log(limit) - math.log(scale)) / math.log(g))) \
        if np.isfinite(g) else 0
    if steps > t_max:
        raise fail(func, "steps", f"<= {t_max:,} at lr = {lr:g} ({what} = {g:.3g} per step:"
                   " later values overflow float64); use fewer steps or a smaller lr",
                   steps)
    return steps



#: Largest lr x curvature accepted where a closed form squares it (gd_loss, the SGD
#: mean-square operator): far beyond any boundary (2), still finite when squared twice.
RATE_CAP = 1e100


def rate_cap(func, lr, curvature, name="lr"):
    """Refuse a rate whose products with the curvature overflow float64 in a closed form
    (``lr x curvature <= 1e100``: every rate past about 2/curvature diverges anyway)."""
    curvature = float(curvature)
    if curvature > 0 and not lr * curvature <= RATE_CAP:
        raise fail(func, name, f"<= {RATE_CAP:g} / {curvature:.3g} = {RATE_CAP / curvature:.3g} "
                   "(larger rates overflow float64; every rate above 2/lambda_max diverges)",
                   lr)
    return lr


def single_pair(data) -> bool:
    """Whether ``data`` (an argument that takes a list of (X, y) pairs) is one (X, y)
    pair itself: a 2-tuple whose second item is 1-D, or a (P, 1) column beside a 2-D X
    with P rows (accepted with a warning by :func:`data`)."""
    if not (isinstance(data, tuple) and len(data) == 2):
        return False
    try:
        xs, ys = np.shape(data[0]), np.shape(data[1])
    except ValueError:  # ragged: e.g. a tuple of two (X, y) pairs
        return False
    return len(ys) == 1 or (len(ys) == 2 and ys[1] == 1 and len(xs) == 2 and xs[0] == ys[0])
