"""A user's own data on the command line: ``--data FILE.npz`` read with bounds
(:func:`read_data`), ``--transform raw,standardize,whiten`` (named
rows from one file, through :func:`fastgd.normalize` and :func:`fastgd.whiten`), the
initial excess loss that ``--color excess`` divides by, and the one-line explanation of
a GD row in which no cell converged (κ, the steps GD would need, the transform that
would help).  A leaf of :mod:`fastgd.cli` next to :mod:`fastgd.cli.args`."""

from __future__ import annotations

import math

from fastgd.cli.args import UsageError, _open_regular

#: The transforms of --transform, in their canonical spelling, and each one's row label.
TRANSFORMS = {"raw": "raw", "standardize": "standardized", "whiten": "whitened"}
_ALIASES = {"raw": "raw", "none": "raw", "standardize": "standardize",
            "standardise": "standardize", "normalize": "standardize",
            "normalise": "standardize", "whiten": "whiten"}
#: The largest step count the explanation computes exactly (beyond it: "never").
_MAX_STEPS = 10**18


def parse_transforms(value):
    """The transforms of ``--transform`` ('raw,standardize,whiten') or of a spec's
    ``transform`` (a string or a list of strings) -> a tuple of canonical names, None
    when not given.

    Examples
    --------
    >>> parse_transforms("raw, standardise,whiten")
    ('raw', 'standardize', 'whiten')
    >>> parse_transforms(None) is None
    True
    """
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(v, str) for v in items):
        raise UsageError(f"'transform' must be a comma list or a list of raw, standardize, "
                         f"whiten; got {value!r}")
    out = []
    for v in (v.strip().lower() for v in items if v.strip()):
        if v not in _ALIASES:
            raise UsageError(f"'transform' must name raw, standardize or whiten; got {v!r}")
        if _ALIASES[v] not in out:
            out.append(_ALIASES[v])
    if not out:
        raise UsageError(f"'transform' must name at least one of raw, standardize, whiten; "
                         f"got {value!r}")
    return tuple(out)


def _apply(name, X):
    import fastgd as fg

    if name == "standardize":
        return fg.normalize(X)
    if name == "whiten":
        return fg.whiten(X)
    return X


def transformed(loaded, transforms):
    """[(X, y, label)] -> each dataset under each transform, labelled
    ``"name (standardized)"``; ``loaded`` itself when ``transforms`` is None.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 2.0], [2.0, 1.0], [4.0, 0.0]])
    >>> [lab for _, _, lab in transformed([(X, np.ones(3), "mine")], ("raw", "whiten"))]
    ['mine (raw)', 'mine (whitened)']
    """
    if transforms is None:
        return loaded
    from fastgd.validate import FastGDTypeError, FastGDValueError

    out = []
    for X, y, label in loaded:
        for t in transforms:
            try:
                out.append((_apply(t, X), y, f"{label} ({TRANSFORMS[t]})"))
            except (FastGDValueError, FastGDTypeError) as exc:
                raise UsageError(f"--transform {t} of {label!r}: {exc}") from None
    return out


def initial_excess(datasets, bias=False):
    """E(w0) − E* of each dataset at the CLI's start w0 = 0 (what ``--color excess``
    divides the final excess by), from :func:`fastgd.theory.gd_loss` at t = 0.

    Examples
    --------
    >>> import fastgd as fg
    >>> [round(v, 6) for v in initial_excess([fg.lecture_data()])]
    [0.47619]
    """
    import fastgd as fg
    from fastgd import theory

    out = []
    for X, y in datasets:
        s = fg.spectrum(X, bias=bias)
        lr = s.eta_opt if math.isfinite(s.eta_opt) and s.eta_opt > 0 else 1.0
        out.append(float(theory.gd_loss(X, y, lr, 0, bias=bias, excess=True)))
    return out


def _num(x):
    """A count or ratio in a few characters: 470, 3,170, 5.2e6, 1.1e13."""
    if x < 1e6:
        return f"{x:,.0f}" if x >= 100 or float(x).is_integer() else f"{x:.3g}"
    m, e = f"{x:.3g}".split("e")
    return f"{m}e{int(e)}"


def _gd_steps(X, y, tol, bias):
    """(κ, steps GD needs at η_opt = 1/λ_max from w0 = 0 (-1: never), κ·ln(1/tol)/2)."""
    import fastgd as fg
    from fastgd import theory

    s = fg.spectrum(X, bias=bias)
    kappa = s.condition_number
    rough = kappa * math.log(1.0 / tol) / 2 if tol > 0 else math.inf
    try:
        steps = theory.gd_steps_to_tol(X, y, s.eta_opt, tol, bias=bias, max_steps=_MAX_STEPS)
    except Exception:  # e.g. a singular H the closed form refuses: the rough figure stands
        steps = -1
    return kappa, steps, rough


def _helps(X, y, tol, bias, budget, transform):
    """'--transform standardize (κ = 470, ≈ 2900 steps)' or whiten, the first that
    converges within ``budget``; '' when the row is already whitened."""
    if transform == "whiten":
        return ""
    cands = ("standardize", "whiten") if transform in (None, "raw") else ("whiten",)
    for t in cands:
        try:
            Xt = _apply(t, X)
        except Exception:  # e.g. dependent columns cannot be whitened
            continue
        kappa, steps, _ = _gd_steps(Xt, y, tol, bias)
        if 0 <= steps <= budget or t == cands[-1]:
            n = ("never" if steps < 0 else "1 step" if steps == 1 else
                 f"{steps} steps" if steps < 1000 else f"≈ {_num(steps)} steps")
            return f"--transform {t} (κ = {_num(kappa)}: {n})"
    return ""


def explain_rows(res, datasets, labels, transforms=None, bias=False):
    """For each row of a GD sweep over given data: '' when a cell converged (or did not
    all run), else why none did: κ, the steps GD needs at its best rate η = 1/λ_max
    (exact, :func:`fastgd.theory.gd_steps_to_tol`; ≈ κ·ln(1/tol)/2) against the budget,
    and the transform that would help.  Returns (figure notes, stderr lines)."""
    import numpy as np

    from fastgd.status import DEFAULT_TOL, Status

    spec = res.meta.get("spec", {}) if isinstance(res.meta, dict) else {}
    tol = float(spec.get("tol") or DEFAULT_TOL)
    budget = int(spec.get("steps") or 0)
    st = np.asarray(res.status)
    notes, lines = [], []
    for k, ((X, y), label) in enumerate(zip(datasets, labels, strict=True)):
        if res.method != "gd" or (st[k] == Status.CONVERGED).any() or \
                (st[k] == Status.NOT_RUN).any():
            notes.append("")
            continue
        kappa, steps, rough = _gd_steps(X, y, tol, bias)
        t = transforms[k % len(transforms)] if transforms else None
        need = f"≈ {_num(steps)} steps" if steps >= 0 else "more steps than any budget"
        helps = _helps(X, y, tol, bias, budget, t)
        notes.append(f"no cell converged in {budget:,} steps\nκ = {_num(kappa)}: GD needs "
                     + (f"≈ {_num(steps)} steps" if steps >= 0 else "more than any budget")
                     + f"\n(at η = 1/λ$_{{max}}$; κ·ln(1/tol)/2 = {_num(rough)})"
                     + (f"\ntry {helps}" if helps else ""))
        lines.append(f"{label}: no cell converged within {budget:,} steps: κ = {_num(kappa)}, "
                     f"so GD needs {need} at its best rate η = 1/λ_max (≈ κ·ln(1/tol)/2 = "
                     f"{_num(rough)} for tol {tol:g})" + (f"; try {helps}" if helps else ""))
    return notes, lines


# --------------------------------------------------------------------------- --data files
#: Most bytes the arrays of a ``--data`` file may take once read (larger data: load it
#: in Python and call the API).
DATA_MAX = 2**30
#: A ``--data`` array of over BOMB_BYTES that inflates more than BOMB_RATIO-fold from
#: its compressed size is refused unread (a decompression bomb; real data compresses
#: a few-fold at most).
BOMB_BYTES, BOMB_RATIO = 2**24, 200
_DTYPE_WORDS = {"c": "complex numbers (fastgd fits real data: give the real and imaginary "
                     "parts as separate columns)",
                "O": "Python objects", "U": "strings", "S": "byte strings",
                "m": "time spans (convert them to numbers, e.g. seconds)",
                "M": "dates (convert them to numbers)",
                "V": "a structured array (give a plain numeric array)"}


def read_data(path, flag="--data", rows=None):
    """(X, y) as float64 arrays from a ``.npz`` file (numpy.savez), read with bounds: a
    regular file only, a zip of ``X.npy`` and ``y.npy`` whose headers are checked
    (real numbers, X 1-D or 2-D, y one value per row) before any data is read, the first
    ``rows`` rows only when given, at most :data:`DATA_MAX` bytes, no member inflating
    like a decompression bomb, and finite values.  Anything else exits 2 naming
    ``flag``.

    Examples
    --------
    >>> import tempfile, os, numpy as np
    >>> d = tempfile.mkdtemp(); f = os.path.join(d, "mine.npz")
    >>> np.savez(f, X=np.arange(12.0).reshape(6, 2), y=np.arange(6))
    >>> X, y = read_data(f, rows=4)
    >>> X.shape, y.tolist()
    ((4, 2), [0.0, 1.0, 2.0, 3.0])
    """
    import zipfile

    import numpy as np

    p = str(path)
    fh, _ = _open_regular(p, flag)
    with fh:
        try:
            zf = zipfile.ZipFile(fh)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise UsageError(f"'{flag}' must be a .npz file (numpy.savez: a zip of arrays X "
                             f"and y); got {p!r} ({exc})") from None
        with zf:
            infos = {i.filename: i for i in zf.infolist()[:10_000]}
            if "X.npy" not in infos or "y.npy" not in infos:
                has = sorted(n.removesuffix(".npy") for n in infos)[:8]
                raise UsageError(f"'{flag}' file {p!r} must hold arrays 'X' and 'y'; has "
                                 f"{has}")
            X = _member(zf, infos["X.npy"], f"'{flag}' file {p!r}: X", rows, (1, 2))
            y = _member(zf, infos["y.npy"], f"'{flag}' file {p!r}: y", rows, (1, 2))
    if y.ndim == 2 and y.shape[1] != 1:
        raise UsageError(f"'{flag}' file {p!r}: y must be one target per row (1-D); got "
                         f"shape {y.shape}")
    y = y.reshape(-1)
    if X.shape[0] == 0 or X.size == 0:
        raise UsageError(f"'{flag}' file {p!r}: X must hold at least one sample; got shape "
                         f"{X.shape}")
    if y.shape[0] != X.shape[0]:
        raise UsageError(f"'{flag}' file {p!r}: y must have one value per row of X "
                         f"({X.shape[0]}); got {y.shape[0]}")
    for name, a in (("X", X), ("y", y)):
        bad = int(a.size - np.count_nonzero(np.isfinite(a)))
        if bad:
            raise UsageError(f"'{flag}' file {p!r}: {name} must be finite; got {bad} NaN or "
                             "infinite value(s)")
    return X, y


def _member(zf, info, where, rows, ndims):
    """One .npy member as float64, its header checked before its data is read."""
    import zipfile
    import zlib

    import numpy as np
    from numpy.lib import format as npf

    try:
        with zf.open(info) as m:
            version = npf.read_magic(m)
            if version not in ((1, 0), (2, 0)):
                raise ValueError(f"unsupported .npy version {version}")
            read = npf.read_array_header_1_0 if version == (1, 0) else \
                npf.read_array_header_2_0
            shape, fortran, dtype = read(m, max_header_size=10_000)
            _check_header(where, shape, dtype, ndims)
            n = shape[0] if rows is None or fortran else min(int(rows), shape[0])
            per_row = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
            nbytes = n * per_row
            if int(np.prod(shape, dtype=object)) * dtype.itemsize > info.file_size:
                raise ValueError("the file is shorter than the array's shape says")
            if nbytes > DATA_MAX:
                raise UsageError(f"{where} must take at most {DATA_MAX:,} bytes to read; got "
                                 f"{nbytes:,} (load it in Python and call fastgd's API)")
            if nbytes > BOMB_BYTES and nbytes > BOMB_RATIO * max(info.compress_size, 1):
                raise UsageError(f"{where} must not inflate more than {BOMB_RATIO}-fold; got "
                                 f"{info.compress_size:,} compressed bytes for {nbytes:,} "
                                 "(a decompression bomb?)")
            data = m.read(nbytes)
    except UsageError:
        raise
    except (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError, RuntimeError,
            NotImplementedError, MemoryError) as exc:
        raise UsageError(f"{where} cannot be read: {exc}") from None
    if len(data) < nbytes:
        raise UsageError(f"{where} cannot be read: the file is truncated")
    arr = np.frombuffer(data, dtype=dtype)
    if fortran:
        arr = arr.reshape(shape[::-1]).T
    else:
        arr = arr.reshape((n,) + tuple(shape[1:]))
    return np.array(arr[:n], dtype=np.float64)


def _check_header(where, shape, dtype, ndims):
    if dtype.kind not in "biuf" or dtype.hasobject or dtype.fields:
        what = _DTYPE_WORDS.get(dtype.kind, f"dtype {dtype}")
        raise UsageError(f"{where} must hold real numbers; got {what}")
    if len(shape) not in ndims:
        raise UsageError(f"{where} must be a {' or '.join(f'{k}-D' for k in ndims)} array; "
                         f"got {len(shape)}-D (shape {shape})")
