"""A user's own data on the command line: ``--transform raw,standardize,whiten`` (named
rows from one file, through :func:`fastgd.normalize` and :func:`fastgd.whiten`), the
initial excess loss that ``--color excess`` divides by, and the one-line explanation of
a GD row in which no cell converged (κ, the steps GD would need, the transform that
would help).  A leaf of :mod:`fastgd.cli` next to :mod:`fastgd.cli.args`."""

from __future__ import annotations

import math

from fastgd.cli.args import UsageError

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
