"""Sweep results and their files: :class:`SweepResult` (arrays shaped (n_data, n_lr,
n_seed) with the limits and the metadata to reproduce them), :class:`SweepInterrupted`
(Ctrl-C with the finished cells), :meth:`SweepResult.save` and :func:`load`
(validated by :mod:`fastgd.engine.files`).

:func:`fastgd.sweep` produces them; this module does not import it.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field

import numpy as np

from fastgd import status as ST
from fastgd import validate as V
from fastgd.status import Status

_FIELDS = ("status", "final_loss", "steps_to_tol", "diverged_at")
#: SweepResult fields that are not arrays, saved in the file's JSON
_SCALAR_FIELDS = ("names", "lr_unit")


@dataclass(frozen=True)
class Run:
    """Result of one run.

    Attributes
    ----------
    w : (d,) array
        Final weights (bias last when ``bias=True``).  For a diverged run: the last
        finite iterate that was checked (the iterate at detection when finite).
    loss : float
        E(w) at the end (``inf`` when diverged).
    losses : (n,) array
        E(w) per step (``gd``) or per epoch (``sgd``), starting with the initial loss.
        The run stops when it converges or diverges: ``n - 1`` is then that step; the
        entry of a diverged step is ``inf``.
    status : Status
    diverged_at : int
        Step (gd) or epoch (sgd) at which divergence was detected, -1 if none.
    steps_to_tol : int
        Step / epoch at which the excess loss first reached tol x its initial value, -1 if never.
    trajectory : (n, d) array or None
        Weights per step / epoch (``record=True``), aligned with ``losses``.
    lr : float
    method : str
        ``"gd"`` or ``"sgd"``.
    unit : str
        ``"step"`` or ``"epoch"``: the time unit of ``losses``, ``diverged_at``, ``steps_to_tol``.
    excess : float
        E(w) - E(w*) at the end.
    growing : bool
        BOUNDED, yet the final loss exceeds ``fastgd.GROWING_FACTOR`` (1e3) x
        max(initial loss, loss at w = 0): the loss grew by orders of magnitude without
        reaching the ``blowup`` threshold within the budget (e.g. just above
        2/lambda_max); a longer run would most likely diverge.
    w_star : (d,) array
        The least-squares minimiser of the run's data (min-norm when X is rank
        deficient; bias last with ``bias=True``), the point the run converges to: the
        same w* the kernels and the statuses use (one ``np.linalg.lstsq`` per dataset).
    loss_star : float
        E* = E(w*) = 1/(2P) sum_p (y_p - w*.x_p)^2 (the 1/2 convention: half the mean
        squared residual), so that ``excess = loss - loss_star`` up to rounding.

    ``print(run)`` shows a summary (status, losses at start and end, shapes); the arrays
    are attributes.

    Examples
    --------
    >>> import fastgd as fg
    >>> r = fg.gd(*fg.lecture_data(), lr=1.5, steps=100)
    >>> r.status.name, r.unit, bool(r.losses[0] > r.losses[-1])
    ('CONVERGED', 'step', True)
    >>> r.w_star.round(6).tolist(), round(r.loss_star, 6)   # the lecture's minimiser
    ([0.47619, 0.952381], 0.02381)
    """

    w: np.ndarray
    loss: float
    losses: np.ndarray
    status: Status
    diverged_at: int
    steps_to_tol: int
    trajectory: np.ndarray | None
    lr: float
    method: str
    unit: str
    excess: float
    growing: bool = False
    w_star: np.ndarray | None = None
    loss_star: float | None = None

    def __repr__(self):
        unit = self.unit
        head = f"Run({self.method}, lr={self.lr:.6g}: {self.status.name}"
        if self.status == Status.CONVERGED:
            head += f" at {unit} {self.steps_to_tol}"
        elif self.status == Status.DIVERGED:
            head += f" at {unit} {self.diverged_at}"
        elif self.growing:
            head += f" but growing (loss > {ST.GROWING_FACTOR:g} x its start)"
        n = int(np.size(self.losses))
        star = "" if self.loss_star is None else f", loss_star {self.loss_star:.6g}"
        lines = [head + ")",
                 f"  loss {self.loss:.6g}, excess {self.excess:.3g}{star}",
                 "  w = " + np.array2string(np.asarray(self.w), precision=6, threshold=8,
                                            edgeitems=3, max_line_width=10**6)]
        if n:
            lines.append(f"  losses: {n} values, one per {unit} 0..{n - 1}, from "
                         f"{self.losses[0]:.4g} to {self.losses[-1]:.4g}")
        lines.append("  trajectory: " + ("not recorded (record=True keeps it)"
                                         if self.trajectory is None
                                         else f"array of shape {np.shape(self.trajectory)}"))
        return "\n".join(lines)

    @property
    def diverged(self) -> bool:
        return self.status == Status.DIVERGED

    @property
    def converged(self) -> bool:
        return self.status == Status.CONVERGED

    def save(self, path):
        """Write the run to ``path`` (``.npz`` appended) atomically, with a checksum;
        ``fastgd.load`` reads it back bit for bit (:func:`fastgd.linear.run_io.save_run`).

        Examples
        --------
        >>> import fastgd as fg
        >>> r = fg.gd(*fg.lecture_data(), lr=1.5, steps=100)
        >>> fg.load(r.save("gd_run")).steps_to_tol == r.steps_to_tol
        True
        """
        from fastgd.linear.run_io import save_run

        return save_run(self, path)


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`fastgd.sweep`; ``.result`` holds the finished cells
    (unfinished ones have status ``NOT_RUN``).

    Examples
    --------
    >>> import fastgd as fg
    >>> issubclass(fg.SweepInterrupted, KeyboardInterrupt)   # Ctrl-C handlers catch it too
    True
    """

    def __init__(self, result):
        super().__init__("sweep interrupted; finished cells are in .result")
        self.result = result


@dataclass(frozen=True, eq=False)
class SweepResult:
    """Outcome of a sweep: arrays shaped (n_data, n_lr, n_seed).

    Attributes
    ----------
    method : str
        ``"gd"`` or ``"sgd"``.
    unit : str
        Time unit of ``steps_to_tol`` / ``diverged_at``: ``"step"`` or ``"epoch"``.
    lr : (n_lr,) learning rates.
    seeds : (n_seed,) seeds of the sample order (a single 0 for GD).
    lambda_max, lambda_min, condition : (n_data,) spectrum of each dataset's H.
    status : int8 array, codes of :class:`fastgd.Status`.
    final_loss : excess loss E(w) - E(w*) at the end (inf for diverged cells).
    steps_to_tol : first step / epoch with excess <= tol * initial excess (-1: never).
    diverged_at : step / epoch of divergence (-1: none).
    curves : (n_data, n_lr, n_seed, n_t) loss E(w) at ``curve_t``, or None.
    curve_t : (n_t,) steps / epochs of the curve points, or None.
    gd_limit : (n_data,) 2/lambda_max (the batch-GD limit; Efficient BackProp eq. 38).
    momentum_limit : (n_data,) largest stable rate with the sweep's momentum (NaN without).
    sgd_ms_limit, sgd_as_limit : (n_data,) SGD mean-square and almost-sure (typical
        run) limits when computed (NaN otherwise); see :mod:`fastgd.theory`.
    meta : dict
        Versions, spec, threads, seeds: what is needed to reproduce the sweep.
    growing : bool array shaped like ``status``
        BOUNDED cells whose final loss exceeds ``fastgd.GROWING_FACTOR`` (1e3) x
        max(initial loss, loss at w = 0): not diverged within the budget, yet their
        loss grew by orders of magnitude (most would diverge with a longer budget; just
        above 2/lambda_max the loss grows like ((eta lambda_max - 1)^2)^t, far from the
        ``blowup`` threshold after 1000 steps).  Read BOUNDED as "fine" only where this
        is False.
    weights : (n_data, n_lr, n_seed, d) array or None
        Final weights of every cell (bias last), kept only with ``sweep(weights=True)``.
    names : tuple of str
        One name per dataset: the keys of ``data={"raw": (X, y), ...}``, else
        ``"data 0"``, ``"data 1"``, ... (``"κ=10"``, ... for a ``condition=`` grid).
    lr_unit : {"absolute", "eta_max"}
        Unit of ``lr``.  ``"eta_max"``: multiples of each dataset's 2/lambda_max
        (``gd_limit``), so that one grid serves datasets of any scale; the rates run
        are ``absolute_lr`` (n_data, n_lr) = ``lr * gd_limit[:, None]``, and
        :meth:`critical_lr` / :meth:`observed_boundary` answer in the same unit as
        ``lr`` (multiply by ``gd_limit`` for absolute rates).

    Examples
    --------
    >>> import fastgd as fg
    >>> res = fg.sweep("gd", lr=[1.0, 2.5], condition=[1, 10], steps=100)
    >>> res.shape, res.diverged[:, :, 0].tolist()
    ((2, 2, 1), [[False, True], [False, True]])
    """

    method: str
    unit: str
    lr: np.ndarray
    seeds: np.ndarray
    lambda_max: np.ndarray
    lambda_min: np.ndarray
    condition: np.ndarray
    status: np.ndarray
    final_loss: np.ndarray
    steps_to_tol: np.ndarray
    diverged_at: np.ndarray
    gd_limit: np.ndarray
    momentum_limit: np.ndarray
    sgd_ms_limit: np.ndarray
    sgd_as_limit: np.ndarray
    curves: np.ndarray | None = None
    curve_t: np.ndarray | None = None
    meta: dict = field(default_factory=dict)
    names: tuple = ()
    lr_unit: str = "absolute"
    growing: np.ndarray | None = None
    weights: np.ndarray | None = None

    def __post_init__(self):
        if self.growing is None:  # files written before the flag existed: none flagged
            object.__setattr__(self, "growing", np.zeros(np.shape(self.status), dtype=bool))
        # names: a tuple of str, one per dataset (default names when none are given)
        n = int(np.shape(self.status)[0]) if np.ndim(self.status) else 0
        names = tuple(str(x) for x in self.names) if self.names else ()
        if len(names) != n:
            names = default_names(n, self.meta.get("spec", {}).get("condition")
                                  if isinstance(self.meta, dict) else None)
        object.__setattr__(self, "names", names)

    @property
    def absolute_lr(self):
        """(n_data, n_lr) learning rates actually run: ``lr`` for every dataset, or
        ``lr * gd_limit`` per dataset when ``lr_unit == "eta_max"``."""
        lr = np.asarray(self.lr, dtype=float)
        if self.lr_unit == "eta_max":
            return lr[None, :] * np.asarray(self.gd_limit, dtype=float)[:, None]
        return np.broadcast_to(lr, (np.shape(self.status)[0], lr.size)).copy()

    # -- derived views -------------------------------------------------------
    @property
    def shape(self):
        return self.status.shape

    @property
    def diverged(self):
        return self.status == Status.DIVERGED

    @property
    def converged(self):
        return self.status == Status.CONVERGED

    @property
    def bounded(self):
        return self.status == Status.BOUNDED

    @property
    def complete(self) -> bool:
        """False when the sweep was interrupted (some cells NOT_RUN)."""
        return bool(np.all(self.status != Status.NOT_RUN))

    def diverged_fraction(self):
        """(n_data, n_lr) fraction of seeds that diverged."""
        return self.diverged.mean(axis=2)

    def observed_boundary(self):
        """(n_data,) smallest learning rate on the grid at which any run diverged (NaN: none)."""
        out = np.full(self.status.shape[0], np.nan)
        div = self.diverged.any(axis=2)
        for i in range(out.size):
            if div[i].any():
                out[i] = self.lr[div[i]].min()
        return out

    def critical_lr(self, fraction=0.5):
        """(n_data,) rate at which the diverged fraction first reaches ``fraction``,
        interpolated linearly in log(lr) between grid points (NaN when never reached).
        For GD (one seed) this is the boundary between the last non-diverged and the
        first diverged rate (geometric mean)."""
        fraction = V.real("SweepResult.critical_lr", "fraction", fraction, positive=True,
                          below=1.0, inclusive_below=True)
        order = np.argsort(self.lr)
        lr = self.lr[order]
        frac = self.diverged_fraction()[:, order]
        out = np.full(frac.shape[0], np.nan)
        for i in range(frac.shape[0]):
            hit = np.flatnonzero(frac[i] >= fraction)
            if hit.size == 0:
                continue
            k = hit[0]
            if k == 0:
                out[i] = lr[0]
                continue
            f0, f1 = frac[i, k - 1], frac[i, k]
            a = (fraction - f0) / (f1 - f0) if f1 > f0 else 1.0
            if self.status.shape[2] == 1:
                a = 0.5
            out[i] = math.exp((1 - a) * math.log(lr[k - 1]) + a * math.log(lr[k]))
        return out

    def summary(self, max_rows=None) -> str:
        """A short table per dataset: limits and the observed boundary; the first line
        counts the cells of each status (and the BOUNDED cells flagged ``growing``).
        ``max_rows``: at most this many dataset rows (the first and last ones)."""
        w = max(4, *(len(x) for x in self.names)) if self.names else 4
        rows = [f"  {'data':<{w}} kappa      lambda_max   2/lambda_max  observed   "
                + ("momentum   " if np.isfinite(self.momentum_limit).any() else "")
                + ("sgd_ms     sgd_as" if self.method == "sgd" else "")]
        obs = self.critical_lr()  # in the unit of lr; the table is absolute
        if self.lr_unit == "eta_max":
            obs = obs * self.gd_limit
        for i in range(self.status.shape[0]):
            r = (f"  {self.names[i]:<{w}} {self.condition[i]:<10.4g} {self.lambda_max[i]:<12.5g} "
                 f"{self.gd_limit[i]:<13.6g} {obs[i]:<10.5g} ")
            if np.isfinite(self.momentum_limit).any():
                r += f"{self.momentum_limit[i]:<10.5g} "
            if self.method == "sgd":
                r += f"{self.sgd_ms_limit[i]:<10.5g} {self.sgd_as_limit[i]:<10.5g}"
            rows.append(r)
        if max_rows is not None and len(rows) - 1 > max_rows:
            k = max(1, max_rows - max_rows // 3)
            rows = (rows[: 1 + k] + [f"  ... {len(rows) - 1 - max_rows} more datasets ..."]
                    + rows[len(rows) - (max_rows - k):])
        counts = {s.name.lower(): int((self.status == s).sum()) for s in Status}
        n_grow = int(np.count_nonzero(self.growing))
        head = (f"fastgd sweep ({self.method}): {self.status.shape[0]} datasets x "
                f"{self.lr.size} rates"
                + (" (x 2/lambda_max of each dataset)" if self.lr_unit == "eta_max" else "")
                + f" x {self.seeds.size} seeds; "
                + ", ".join(f"{k} {v}" for k, v in counts.items() if v)
                + (f" ({n_grow} bounded but growing: loss > {ST.GROWING_FACTOR:g} x its "
                   "start)" if n_grow else ""))
        return "\n".join([head] + rows)

    def __repr__(self):
        """At most 15 lines: where it came from (budget, tolerance, version) and
        :meth:`summary` with at most 10 dataset rows."""
        spec = self.meta.get("spec", {}) if isinstance(self.meta, dict) else {}
        budget = spec.get("steps" if self.method == "gd" else "epochs")
        origin = [f"{budget:,} {self.unit}s" if isinstance(budget, (int, np.integer))
                  else None,
                  f"tol {spec['tol']:g}" if isinstance(spec.get("tol"), float) else None,
                  f"order {spec['order']}" if self.method == "sgd" and spec.get("order")
                  else None]
        versions = self.meta.get("versions", {}) if isinstance(self.meta, dict) else {}
        if isinstance(versions, dict) and versions.get("fastgd"):
            origin.append(f"fastgd {versions['fastgd']}")
        origin = ", ".join(o for o in origin if o)
        return (f"<SweepResult {self.method} shape={self.shape}"
                + (f": {origin}" if origin else "") + ">\n"
                + self.summary(max_rows=10))

    # -- files ---------------------------------------------------------------
    def save(self, path):
        """Write ``.npz`` (arrays) with the metadata as JSON inside and a checksum of
        both, atomically (a temporary file renamed over ``path``: the old file survives
        any failure or kill); ``fastgd.load`` reads it.

        ``.npz`` is appended to ``path`` when it lacks it.  Returns the path written.
        Raises :class:`fastgd.FastGDTypeError` when ``path`` is not a str or
        os.PathLike, :class:`fastgd.FastGDValueError` when the directory cannot be
        written (no space, no permission: the old file intact) or when the result
        could not be read back (invariants, names over 4096 characters).

        Examples
        --------
        >>> import fastgd as fg
        >>> res = fg.sweep("gd", lr=[1.0, 2.5], condition=[1, 10], steps=100)
        >>> res.save("sweep")
        'sweep.npz'
        """
        from fastgd.engine.files import FORMAT, write_npz

        arrays = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                  if isinstance(getattr(self, f.name), np.ndarray)}
        scalars = {"method": self.method, "unit": self.unit, "meta": self.meta,
                   "names": list(self.names), "lr_unit": self.lr_unit}
        return write_npz("SweepResult.save", path, arrays, scalars, FORMAT, _check)

    def equals(self, other) -> bool:
        """True when every array is identical (bit for bit, NaN == NaN) and so are
        ``method`` and ``unit`` (``meta`` is not compared).  Anything that is not a
        :class:`SweepResult` (None included) is not equal: False, never an error."""
        if not isinstance(other, SweepResult):
            return False
        for f in dataclasses.fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
                if a is None or b is None or a.shape != b.shape or a.dtype != b.dtype:
                    return False
                if not np.array_equal(a, b, equal_nan=a.dtype.kind == "f"):
                    return False
            elif f.name != "meta" and a != b:
                return False
        return True

    def to_pandas(self):
        """Long-format ``pandas.DataFrame``, one row per cell (needs pandas)."""
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("to_pandas() needs pandas: pip install 'fastgd[pandas]'") from exc
        nd, nl, ns = self.shape
        di, li, si = np.meshgrid(np.arange(nd), np.arange(nl), np.arange(ns), indexing="ij")
        return pd.DataFrame({
            "data": di.ravel(), "condition": self.condition[di.ravel()],
            "name": np.asarray(self.names, dtype=object)[di.ravel()],
            "lambda_max": self.lambda_max[di.ravel()], "lr": self.lr[li.ravel()],
            "lr_abs": self.absolute_lr[di.ravel(), li.ravel()],
            "seed": self.seeds[si.ravel()],
            "status": pd.Categorical.from_codes(self.status.ravel() + 1,
                                                [s.name.lower() for s in Status]),
            "growing": self.growing.ravel(),
            "final_loss": self.final_loss.ravel(), "steps_to_tol": self.steps_to_tol.ravel(),
            "diverged_at": self.diverged_at.ravel(),
            # per-dataset limits, only those this sweep has (no all-NaN columns)
            **{k: getattr(self, k)[di.ravel()] for k in self._limit_fields()}})

    def _limit_fields(self):
        """The per-dataset limits with at least one value (GD: no SGD columns)."""
        return [k for k in ("gd_limit", "momentum_limit", "sgd_ms_limit", "sgd_as_limit")
                if np.isfinite(getattr(self, k)).any()]

    def to_xarray(self):
        """``xarray.Dataset`` with dims (data, lr, seed) (needs xarray)."""
        from fastgd.engine.files import json_default

        try:
            import xarray as xr
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("to_xarray() needs xarray: pip install 'fastgd[xarray]'") from exc
        dims = ("data", "lr", "seed")
        coords = {"data": np.arange(self.shape[0]), "lr": self.lr, "seed": self.seeds,
                  "name": ("data", list(self.names)),
                  "condition": ("data", self.condition), "lambda_max": ("data", self.lambda_max),
                  "lambda_min": ("data", self.lambda_min)}
        dv = {k: (dims, getattr(self, k)) for k in _FIELDS + ("growing",)}
        # every limit, NaN where this sweep has none (the variables keep one schema)
        for k in ("gd_limit", "momentum_limit", "sgd_ms_limit", "sgd_as_limit"):
            dv[k] = ("data", getattr(self, k))
        dv["absolute_lr"] = (("data", "lr"), self.absolute_lr)
        if self.curves is not None:
            coords["t"] = self.curve_t
            dv["curves"] = (dims + ("t",), self.curves)
        if self.weights is not None:
            dv["weights"] = (dims + ("input",), self.weights)
        attrs = {"method": self.method, "unit": self.unit, "lr_unit": self.lr_unit,
                 "growing_factor": ST.GROWING_FACTOR,
                 "meta": json.dumps(self.meta, default=json_default)}
        return xr.Dataset(dv, coords=coords, attrs=attrs)


def load(path, *, max_bytes=None) -> SweepResult:
    """Read a result written by :meth:`SweepResult.save`, bit for bit.

    Parameters
    ----------
    path : str or os.PathLike
        The file; ``load("r")`` reads ``r.npz`` when ``r`` itself does not exist (the
        name ``save("r")`` writes).
    max_bytes : float, optional
        Refuse a file whose arrays declare more than this many bytes uncompressed
        (default: half of physical memory), before decompressing anything.

    Raises
    ------
    FastGDValueError
        Naming ``path`` and what is wrong, for any file that is not a complete, valid
        result: not a zip, a damaged member, missing or unexpected arrays, shapes that
        disagree, status codes outside :class:`fastgd.Status`, bad learning rates or
        spectra, bad JSON metadata, sizes over ``max_bytes``.  Nothing is unpickled.
    FastGDTypeError
        When ``path`` is not a str or os.PathLike (None included).

    Examples
    --------
    >>> import fastgd as fg
    >>> res = fg.sweep("gd", lr=[1.0, 2.5], condition=[1, 10], steps=100)
    >>> path = res.save("sweep.npz")
    >>> fg.load(path).equals(res)
    True
    """
    from fastgd.engine.files import FORMAT, LEGACY, read_npz

    # files written before metadata checksums (format LEGACY) load with their checks
    arrays, scal = read_npz(path, _SCHEMA, fmt=FORMAT, func="load", writer="SweepResult.save",
                            optional=("curves", "curve_t", "growing", "weights"),
                            max_bytes=max_bytes, bind=_bind, check=_check, legacy=LEGACY)
    arrays.setdefault("curves", None)
    arrays.setdefault("curve_t", None)
    # files written before names / lr_unit existed get the defaults
    arrays.update({k: scal[k] for k in _SCALAR_FIELDS if k in scal})
    if "names" in arrays:
        arrays["names"] = tuple(arrays["names"])
    return SweepResult(method=scal["method"], unit=scal["unit"], meta=scal["meta"], **arrays)


#: the arrays of a SweepResult file: name -> (dims, dtype kinds)
_GRID = ("n_data", "n_lr", "n_seed")
_SCHEMA = {"lr": (("n_lr",), "f"), "seeds": (("n_seed",), "iu"),
           **{k: (("n_data",), "f") for k in ("lambda_max", "lambda_min", "condition",
                                              "gd_limit", "momentum_limit", "sgd_ms_limit",
                                              "sgd_as_limit")},
           "status": (_GRID, "iu"), "final_loss": (_GRID, "f"), "steps_to_tol": (_GRID, "iu"),
           "diverged_at": (_GRID, "iu"), "growing": (_GRID, "b"),
           "curve_t": (("n_t",), "iu"), "curves": (_GRID + ("n_t",), "f"),
           "weights": (_GRID + ("d",), "f")}
#: characters of one dataset name (longer names are refused at save)
NAME_MAX = 4096


def _bind(head):
    """Lengths the metadata fixes before any array is read: ``d`` = len(spec.w0), or an
    error message for metadata of the wrong types."""
    meta = head.get("meta")
    if not isinstance(meta, dict) or not isinstance(meta.get("spec", {}), dict):
        return "its metadata 'meta' (and 'meta.spec') must be JSON objects"
    w0 = meta.get("spec", {}).get("w0")
    return {"d": len(w0)} if isinstance(w0, list) else {}


def _check(a, head):
    """What makes a SweepResult file impossible (None: nothing)."""
    from fastgd.engine.files import status_rules

    for key, ok in (("method", ("gd", "sgd")), ("unit", ("step", "epoch")),
                    ("lr_unit", ("absolute", "eta_max", None))):
        if head.get(key) not in ok:
            return f"metadata {key} {str(head.get(key))[:40]!r} (expected one of {ok})"
    what = _bind(head)
    if isinstance(what, str):
        return what
    extra = set(head) - {"method", "unit", "meta", "names", "lr_unit", "format", "sha256"}
    if extra:
        return f"unexpected metadata {sorted(extra)[:5]}"
    names, n = head.get("names", []), a["status"].shape[0]
    if "names" in head and (not isinstance(names, list) or len(names) != n or not all(
            isinstance(x, str) and len(x) <= NAME_MAX for x in names)):
        return f"'names' must be a list of {n} strings of at most {NAME_MAX} characters"
    spec = head["meta"].get("spec", {})
    budget = spec.get("steps" if head["method"] == "gd" else "epochs")
    what = status_rules(a["status"], a["diverged_at"], a["steps_to_tol"], a["final_loss"],
                        budget if isinstance(budget, int) else None)
    if what:
        return what
    lr, lo, hi = a["lr"], a["lambda_min"], a["lambda_max"]
    if not np.all(np.isfinite(lr) & (lr > 0)):
        return "'lr' holds values that are not finite and > 0"
    if not (np.isfinite(hi).all() and (lo >= 0).all() and (lo <= hi).all()):
        return "the spectra are impossible (need 0 <= lambda_min <= lambda_max < inf)"
    if np.isnan(a["condition"]).any() or (a["condition"] < 1).any():
        return "'condition' holds NaN or values below 1"
    if (a["seeds"] < 0).any():
        return "'seeds' holds negative values"
    if "growing" in a and (a["growing"] & (a["status"] != Status.BOUNDED)).any():
        return "'growing' flags cells that are not BOUNDED"
    return None


def default_names(n_data, condition=None):
    """Names of datasets that were given none: ``"κ=10"`` for a condition grid (when
    ``condition`` holds n_data numbers), else ``"data 0"``, ``"data 1"``, ..."""
    try:
        kappa = [float(k) for k in np.atleast_1d(np.asarray(condition, dtype=float))]
    except (TypeError, ValueError):
        kappa = []
    if condition is not None and len(kappa) == n_data:
        return tuple(f"κ={k:.4g}" for k in kappa)
    return tuple(f"data {k}" for k in range(n_data))
