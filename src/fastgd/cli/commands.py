"""The ``fastgd`` commands phase, sweep, plot and boundary (info is in
:mod:`fastgd.cli.info`): a merged spec becomes a sweep (:func:`_sweep_from`), a figure,
a table.  NumPy, Numba and matplotlib are
imported inside the commands, after the arguments are parsed."""

from __future__ import annotations

import time
from pathlib import Path

from fastgd.cli.args import (
    SIGINT,
    UsageError,
    _check_type,
    _merge,
    _open_regular,
    _out_path,
    _pyplot,
    _save,
    _spec_grid,
    _writable_target,
    load_spec,
    parse_grid,
)
from fastgd.cli.owndata import (
    explain_rows,
    initial_excess,
    parse_transforms,
    read_data,
    transformed,
)
from fastgd.status import DEFAULT_ORDER

PHASE_DEFAULTS = {
    "gd": {"lr": "0.01:10:128", "condition": "1:1e4:48", "steps": 1000},
    "sgd": {"lr": "0.01:4:96", "condition": "1:1e3:32", "epochs": 100, "seeds": 4},
}
#: Default grids for given data (--data): multiples of each dataset's eta_max = 2/lambda_max,
#: so that raw and standardised data alike show the boundary (at 1) inside the frame.
DATA_LR_DEFAULTS = {"gd": "0.01:4:128", "sgd": "0.001:4:96"}
#: GD steps for given data without --steps: STEPS_PER_KAPPA x the largest condition number
#: (the slowest direction needs about kappa/2 steps per e-fold near eta_max), at least
#: the phase default and at most STEPS_MAX.
STEPS_PER_KAPPA, STEPS_MAX = 5, 100_000


# --------------------------------------------------------------------------- helpers
def _pyplot_soon():
    """Import matplotlib on a background thread while the sweep runs: on a cold kernel
    cache the compiler's LLVM passes release the GIL, so the import overlaps them."""
    import threading

    threading.Thread(target=_pyplot, name="fastgd-import-matplotlib", daemon=True).start()


def _lecture_variant(name):
    import fastgd as fg

    X, y = fg.lecture_data()
    if name == "lecture":
        return X, y
    if name == "lecture-normalized":
        return fg.normalize(X), y
    if name == "lecture-whitened":
        return fg.whiten(X), y
    raise KeyError(name)


def _load_data(item):
    """A data name or .npz path -> (X, y, label)."""
    if not isinstance(item, str):
        raise UsageError(f"'data' entries must be strings; got {item!r}")
    try:
        X, y = _lecture_variant(item)
        return X, y, item
    except KeyError:
        pass
    p = Path(item)
    if p.suffix != ".npz":
        raise UsageError(f"'data' must be lecture, lecture-normalized, lecture-whitened or a "
                         f".npz file with arrays X and y; got {item!r}")
    X, y = read_data(p, "--data")  # bounded: regular files, checked headers
    return X, y, p.stem


#: Types of the spec keys a sweep reads: (key, types, what the message says).
_CFG_TYPES = (("steps", int, "an integer"), ("epochs", int, "an integer"),
              ("batch_size", int, "an integer"), ("seeds", int, "an integer"),
              ("seed", int, "an integer"), ("n", int, "an integer"),
              ("d", int, "an integer"), ("threads", int, "an integer"),
              ("momentum", (int, float), "a number"),
              ("tol", (int, float), "a number"), ("blowup", (int, float), "a number"),
              ("nesterov", bool, "true or false"), ("bias", bool, "true or false"),
              ("theory", bool, "true or false"), ("order", str, "a string"),
              ("fix", str, "a string"), ("curve_points", int, "an integer"),
              ("lanes", int, "an integer"), ("checkpoint", str, "a string"),
              ("dtype", str, "a string"), ("backend", str, "a string"))


def _lr_grid(cfg, dflt, method, given, defaults):
    """(rates, unit) of a merged config: the given grid, the default grid in units of
    η_max for given data, or the command's default."""
    lr_unit = cfg.get("lr_unit")
    if lr_unit is not None and lr_unit not in ("absolute", "eta_max"):
        raise UsageError(f"'lr_unit' must be absolute or eta_max; got {lr_unit!r}")
    if "lr" in cfg:
        lr = _spec_grid(cfg["lr"], "lr")
    elif given and (defaults is not None or lr_unit == "eta_max"):
        lr = parse_grid(DATA_LR_DEFAULTS[method], "lr")
        lr_unit = lr_unit or "eta_max"
    elif "lr" in dflt:
        lr = parse_grid(dflt["lr"], "lr")
    else:
        raise UsageError("'lr' is required (in the spec or as --lr)")
    return lr, lr_unit or "absolute"


def _given_data(cfg):
    """(datasets, labels, sweep keywords) of the config's ``data`` entries."""
    if "condition" in cfg:
        raise UsageError("give 'data' or 'condition', not both")
    items = cfg["data"] if isinstance(cfg["data"], list) else [cfg["data"]]
    loaded = transformed([_load_data(it) for it in items],
                         parse_transforms(cfg.get("transform")))
    datasets = [(X, y) for X, y, _ in loaded]
    labels = _unique([lab for _, _, lab in loaded])
    return datasets, labels, {"data": dict(zip(labels, datasets, strict=True))}


def _condition_data(cfg, dflt, method, lr, seed):
    """(None, labels, sweep keywords) of a grid of Gaussian datasets, its size checked
    before any work."""
    import numpy as np

    from fastgd.engine import cost

    if cfg.get("transform") is not None:
        raise UsageError("'transform' applies to given data (--data); the Gaussian datasets "
                         "of 'condition' are already centred with λ_max = 1")
    kappa = _spec_grid(cfg["condition"], "condition") if "condition" in cfg else \
        parse_grid(dflt.get("condition", "1:1e4:48"), "condition")
    n, d = int(cfg.get("n", 100)), int(cfg.get("d", 2))
    fix = cfg.get("fix", "lambda_max")
    if fix not in ("lambda_max", "lambda_min"):
        raise UsageError(f"'fix' must be lambda_max or lambda_min; got {fix!r}")
    if any(k < 1 for k in kappa):
        raise UsageError(f"'condition' must be >= 1; got min {min(kappa):g}")
    if d < 2 or n < d + 1:
        raise UsageError(f"'d' must be >= 2 and 'n' >= d + 1; got d = {d}, n = {n}")
    T = cfg.get("steps", dflt.get("steps")) if method == "gd" else None
    E = cfg.get("epochs", dflt.get("epochs")) if method == "sgd" else None
    cost.sweep_grid("sweep", method, len(lr), None, kappa, T, E,
                    int(cfg.get("seeds", dflt.get("seeds", 1))), n, d,
                    cfg.get("curve_points", 0), None)
    # the sweep draws the same datasets as gaussian_data(n, geomspace(1/k, 1, d), seed)
    where = {"condition": np.asarray(kappa), "n": n, "d": d, "fix": fix, "data_seed": seed}
    return None, [f"κ = {k:.4g}" for k in kappa], where


def _gd_options(kw, cfg, dflt, given, datasets):
    """Add the GD budget to the sweep keywords ``kw`` (SGD keys refused)."""
    if "epochs" in cfg:
        raise UsageError("'epochs' is for --method sgd; GD takes 'steps'")
    if "steps" in cfg or not given:
        kw["steps"] = int(cfg.get("steps", dflt.get("steps", 1000)))
    else:
        kw["steps"] = _data_steps(datasets, int(dflt.get("steps", 1000)), kw["bias"])


def _sgd_options(kw, cfg, dflt, given, datasets, n_lr, seed):
    """Add the SGD budget, batch, order and seeds to the sweep keywords ``kw``."""
    from fastgd.engine import cost

    if "steps" in cfg:
        raise UsageError("'steps' is for --method gd; SGD takes 'epochs'")
    kw["epochs"] = int(cfg.get("epochs", dflt.get("epochs", 100)))
    kw["batch_size"] = int(cfg.get("batch_size", 1))
    kw["order"] = cfg.get("order", DEFAULT_ORDER)
    nseeds = int(cfg.get("seeds", dflt.get("seeds", 1)))
    if nseeds < 1:
        raise UsageError(f"'seeds' must be >= 1; got {nseeds}")
    if given:
        cost.sweep_grid("sweep", "sgd", n_lr, datasets, None, None, kw["epochs"],
                        nseeds, 100, 2, kw.get("curve_points", 0), None)
    kw["seeds"] = list(range(seed, seed + nseeds))
    kw["almost_sure"] = bool(cfg.get("almost_sure", False))


def _sweep_from(cfg, *, defaults=None, progress=None, got=None):
    """Run the sweep a merged config describes; returns (result, datasets) (datasets:
    the given ones, None for a condition grid, which the sweep draws itself).  ``got``
    (a dict) receives the finished sweep as soon as it returns (``res``, ``datasets``,
    ``annotate``): a Ctrl-C after that keeps it (:func:`_kept`)."""
    import numpy as np

    import fastgd as fg

    method = cfg.get("method", "gd")
    if method not in ("gd", "sgd"):
        raise UsageError(f"'method' must be 'gd' or 'sgd'; got {method!r}")
    dflt = dict((defaults or {}).get(method, {}))
    for key, types, what in _CFG_TYPES:
        _check_type(cfg, key, types if isinstance(types, tuple) else (types,), what)
    given = "data" in cfg and cfg["data"] is not None
    lr, lr_unit = _lr_grid(cfg, dflt, method, given, defaults)
    seed = int(cfg.get("seed", 0))
    if seed < 0:
        raise UsageError(f"'seed' must be >= 0; got {seed}")
    datasets, labels, where = _given_data(cfg) if given else \
        _condition_data(cfg, dflt, method, lr, seed)
    kw = dict(lr=np.asarray(lr), lr_unit=lr_unit, momentum=float(cfg.get("momentum", 0.0)),
              nesterov=bool(cfg.get("nesterov", False)), bias=bool(cfg.get("bias", False)),
              threads=cfg.get("threads"), progress=progress, **where)
    for key in ("tol", "blowup", "curve_points", "lanes", "checkpoint", "dtype", "backend"):
        if key in cfg:
            kw[key] = cfg[key]
    if method == "gd":
        _gd_options(kw, cfg, dflt, given, datasets)
    else:
        _sgd_options(kw, cfg, dflt, given, datasets, len(lr), seed)
    res = fg.sweep(method, **kw)
    ctx = (cfg, labels, datasets if given else None, where, kw["bias"])
    if got is not None:
        got.update(res=res, datasets=datasets, annotate=lambda r: _annotate(r, *ctx))
    return _annotate(res, *ctx), datasets


def _annotate(res, cfg, labels, datasets, where, bias):
    """The command's metadata on a finished sweep (run again on the same sweep when a
    Ctrl-C cut it short: it only sets fields)."""
    import dataclasses

    import numpy as np

    res.meta["cli"] = {"datasets": labels, "config": {k: v for k, v in cfg.items()}}
    # E(w0) - E* per dataset: what --color excess divides the final excess by
    res.meta["initial_excess"] = initial_excess(
        datasets if datasets is not None else _gaussians(where), bias)
    if res.method == "sgd" and not cfg.get("theory", True):  # limits not asked for
        nan = np.full(res.shape[0], np.nan)
        res = dataclasses.replace(res, sgd_ms_limit=nan, sgd_as_limit=nan.copy())
    return res


def _kept(exc, got):
    """(result, partial) that a Ctrl-C ``exc`` leaves to save and draw: the finished
    cells of an interrupted sweep, the whole sweep when it had returned (``got``, see
    :func:`_sweep_from`; annotated again: later Ctrl-C are ignored), else (None, False)."""
    if isinstance(exc, _interrupted()):
        return exc.result, True
    if "res" in got:
        return got["annotate"](got["res"]), False
    return None, False


def _gaussians(where):
    """The (X, y) of a condition grid, drawn as the sweep draws them
    (:mod:`fastgd.linear.datasets`: eigenvalues 1/κ .. 1, geometric)."""
    import numpy as np

    from fastgd.data import gaussian_family

    kappa, d = np.asarray(where["condition"], dtype=float), where["d"]
    rows = np.exp(np.log(kappa)[:, None] * np.linspace(-1.0, 0.0, d)[None, :])
    rows[:, 0], rows[:, -1] = 1.0 / kappa, 1.0
    if where["fix"] == "lambda_min":
        rows = rows * kappa[:, None]
    fam = gaussian_family(where["n"], rows, seed=where["data_seed"], describe=False)
    return [(ds.X, ds.y) for ds in fam]


def _unique(labels):
    """Dataset names, made unique (``x``, ``x (2)``, ...) when two files share a stem."""
    out, seen = [], {}
    for lab in labels:
        seen[lab] = seen.get(lab, 0) + 1
        out.append(lab if seen[lab] == 1 else f"{lab} ({seen[lab]})")
    return out


def _data_steps(datasets, floor, bias):
    """GD steps for given data: STEPS_PER_KAPPA x the largest finite condition number
    (rounded up to two digits), between ``floor`` and STEPS_MAX."""
    import math

    import fastgd as fg

    kappa = max((fg.spectrum(X, bias=bias).condition_number for X, _ in datasets),
                default=1.0)
    if not math.isfinite(kappa):
        return STEPS_MAX
    t = STEPS_PER_KAPPA * kappa
    if t <= floor:
        return floor
    e = 10 ** max(int(math.floor(math.log10(t))) - 1, 0)
    return int(min(math.ceil(t / e) * e, STEPS_MAX))


def _phase_figure(res, args, title=None, notes=True):
    plt = _pyplot()
    from fastgd.plot import plot_phase_diagram

    fig, ax = plt.subplots(figsize=(7.2, 5.6), layout="constrained")
    plot_phase_diagram(res, ax=ax, color=getattr(args, "color", "status"), title=title,
                       notes=notes)
    return fig


def _explain(res, datasets, cfg, cmd="phase"):
    """Per-row figure notes of a GD sweep over given data where no cell converged, each
    also one line on stderr; True (the figure's own notes) for a condition grid."""
    import sys

    if datasets is None:
        return True
    notes, lines = explain_rows(res, datasets, res.names,
                                parse_transforms(cfg.get("transform")),
                                bool(cfg.get("bias", False)))
    for line in lines:
        print(f"fastgd {cmd}: {line}", file=sys.stderr)
    return notes


def _print_counts(res, seconds):
    import numpy as np

    from fastgd.status import Status

    st = res.status
    n = {s: int(np.count_nonzero(st == int(s))) for s in Status}  # int: numpy gh-14801
    parts = [f"{s.name.lower()} {k}" for s, k in n.items() if k]
    cells = st.size
    print(f"fastgd: {res.method} sweep of {res.shape[0]} datasets x {res.shape[1]} rates x "
          f"{res.shape[2]} seeds = {cells} runs in {seconds:.2f} s ({', '.join(parts)})")


# --------------------------------------------------------------------------- commands
def cmd_phase(args):
    spec = load_spec(args.config) if args.config else {}
    cfg = _merge(args, spec)
    out = _out_path(args.out, args.format, "phase")
    if args.save:
        _writable_target(Path(args.save), "--save")
    _pyplot_soon()
    t0 = time.perf_counter()
    got, done = {}, {}
    try:
        res, datasets = _sweep_from(cfg, defaults=PHASE_DEFAULTS, progress=args.progress,
                                    got=got)
        _print_counts(res, time.perf_counter() - t0)
        _phase_out(res, args, out, notes=_explain(res, datasets, cfg), done=done)
    except KeyboardInterrupt as exc:  # what finished is saved and drawn, then exit 130
        res, partial = _kept(exc, got)
        if res is not None:
            _phase_out(res, args, out, partial=partial, done=done)
        raise
    return 0


def _interrupted():
    from fastgd.linear.result import SweepInterrupted

    return SweepInterrupted


def _phase_out(res, args, out, partial=False, notes=True, done=None):
    """Save (--save) and draw a sweep; ``done`` records what is written, so that a call
    after a Ctrl-C writes only what is missing."""
    done = {} if done is None else done
    if args.save and "save" not in done:
        done["save"] = res.save(args.save)
        print(f"fastgd: saved {'partial ' if partial else ''}result to {done['save']}")
    if not _drawn(out, done):
        fig = _phase_figure(res, args, title=_partial_title(res) if partial else None,
                            notes=notes)
        done["figure"] = _save(fig, out, args.dpi)
        print(f"fastgd: wrote {done['figure']}")


def _drawn(out, done):
    """Whether the figure ``out`` is written: ``done`` says so, or a Ctrl-C came while
    :func:`fastgd.cli.args._save` wrote it whole (:data:`SIGINT` ``.written``)."""
    return "figure" in done or str(out) in SIGINT.written


def _partial_title(res):
    """The title of an interrupted sweep's figure: cells not run, or (all ran) Ctrl-C in
    the SGD theory stage."""
    return ("interrupted: grey cells did not run" if (res.status < 0).any() else
            "interrupted before the SGD theory limits were computed")


def cmd_sweep(args):
    spec = load_spec(args.config) if args.config else {}
    cfg = _merge(args, spec)
    if "lr" not in cfg:
        raise UsageError("'lr' is required (in the spec or as --lr)")
    out = Path(args.out)
    if not out.name:
        raise UsageError(f"'--out' must be a file name; got {args.out!r}")
    if out.suffix != ".npz":
        out = out.with_name(out.name + ".npz")
    _writable_target(out)
    plot_out = _out_path(args.plot, args.format, out.stem, "--plot") if args.plot is not None \
        else None
    t0 = time.perf_counter()
    got, done = {}, {}
    try:
        res, datasets = _sweep_from(cfg, progress=args.progress, got=got)
        _print_counts(res, time.perf_counter() - t0)
        _sweep_out(res, args, out, plot_out, done,
                   notes=lambda: _explain(res, datasets, cfg, "sweep"))
    except KeyboardInterrupt as exc:  # what finished is saved (and drawn), then exit 130
        res, partial = _kept(exc, got)
        if res is not None:
            _sweep_out(res, args, out, plot_out, done, partial=partial)
        raise
    return 0


def _sweep_out(res, args, out, plot_out, done, partial=False, notes=None):
    """Save a sweep to ``out`` and draw it to ``plot_out`` (when given); ``done``
    records what is written (see :func:`_phase_out`)."""
    if "save" not in done:
        done["save"] = path = res.save(out)
        print(f"fastgd: saved the finished cells to {path}" if partial else
              f"fastgd: saved {path}")  # stderr: one line, by main()
        if not partial:
            print(res.summary())
    notes = notes() if notes is not None else True  # also the stderr lines (_explain)
    if plot_out and not _drawn(plot_out, done):
        fig = _phase_figure(res, args, title=_partial_title(res) if partial else None,
                            notes=notes)
        done["figure"] = _save(fig, plot_out, args.dpi)
        print(f"fastgd: wrote {done['figure']}")


def cmd_plot(args):
    import fastgd as fg

    src = Path(args.result)
    _open_regular(src, "result")[0].close()  # a regular file: a FIFO or device never blocks
    try:
        res = fg.load(src)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, EOFError,
            MemoryError) as exc:  # fg.load's FastGDValueError, or a file it cannot parse
        raise UsageError(f"'result' {str(src)!r} is not a fastgd result: {exc}") from None
    out = _out_path(args.out, args.format, src.with_suffix("").as_posix()
                    + ("" if args.kind == "phase" else "_boundary"))
    if args.kind == "phase":
        fig = _phase_figure(res, args)
    else:
        plt = _pyplot()
        from fastgd.plot import plot_boundary

        fig, ax = plt.subplots(figsize=(6.4, 4.8), layout="constrained")
        plot_boundary(res, ax=ax, title=f"{res.method.upper()} divergence boundary")
    print(f"fastgd: wrote {_save(fig, out, args.dpi)}")
    return 0


def _boundary_data(cfg):
    """[(X, y, label)] of a boundary config: Gaussian datasets of ``condition`` (unless
    ``data`` is given), else the named or file datasets (default: the lecture's)."""
    import numpy as np

    import fastgd as fg

    if "condition" in cfg and cfg.get("data") is None:
        if cfg.get("transform") is not None:
            raise UsageError("'transform' applies to given data (--data), not to the "
                             "Gaussian datasets of 'condition'")
        kappa = _spec_grid(cfg["condition"], "condition")
        n, d = int(cfg.get("n", 100)), int(cfg.get("d", 2))
        seed = int(cfg.get("seed", 0))
        data = []
        for k in kappa:
            ds = fg.gaussian_data(n, np.geomspace(1.0 / k, 1.0, d), seed=seed)
            data.append((ds.X, ds.y, f"κ = {k:.4g}"))
        return data
    items = cfg.get("data", "lecture")
    return transformed([_load_data(it) for it in (items if isinstance(items, list) else [items])],
                       parse_transforms(cfg.get("transform")))


def _boundary_row(X, y, label, method, cfg, opts):
    """Observed critical rate of one dataset and the theory's limits: (table row,
    observed rate, κ, limits); ``opts`` = (momentum, nesterov, batch size, order)."""
    import numpy as np

    import fastgd as fg
    from fastgd import theory

    mom, nest, bs, order = opts
    kw = dict(method=method, momentum=mom, nesterov=nest, threads=cfg.get("threads"))
    if method == "sgd":
        kw.update(batch_size=bs, order=order, seeds=int(cfg.get("seeds", 64)),
                  epochs=int(cfg.get("epochs", 100)))
    t0 = time.perf_counter()
    b = fg.critical_lr(X, y, **kw)
    dt = time.perf_counter() - t0
    s = fg.spectrum(X)
    lim = {"gd": s.eta_max, "momentum": np.nan, "sgd_ms": np.nan, "sgd_as": np.nan}
    try:
        lim.update(theory.limits(X, momentum=mom, nesterov=nest,
                                 batch_size=bs if method == "sgd" else None,
                                 order=order if method == "sgd" else None))
    except Exception:  # pragma: no cover - a limit that cannot be computed
        pass
    pred = lim["momentum"] if mom > 0 else (lim["sgd_ms"] if method == "sgd" else lim["gd"])
    row = (label, s.condition_number, s.lambda_max, lim["gd"], lim["momentum"],
           lim["sgd_ms"], lim["sgd_as"], b.lr, b.lr / pred - 1 if pred == pred else
           float("nan"), dt)
    return row, b.lr, s.condition_number, lim


def _print_boundary(method, rows):
    head = (f"{'data':<20} {'κ':>9} {'λ_max':>9} {'2/λ_max':>10} {'momentum':>10} "
            f"{'SGD ms':>10} {'SGD as':>10} {'observed':>11} {'obs/pred-1':>11} {'time':>7}")
    print(f"fastgd boundary ({method}, criterion "
          f"{'growth rate' if method == 'gd' else 'half of the seeds diverged'})")
    print(head)
    for r in rows:
        print(f"{r[0]:<20} {r[1]:>9.4g} {r[2]:>9.4g} {r[3]:>10.6g} {r[4]:>10.6g} "
              f"{r[5]:>10.6g} {r[6]:>10.6g} {r[7]:>11.7g} {r[8]:>11.2e} {r[9]:>6.2f}s")


def _boundary_figure(args, cfg, method, rows, obs, cond, lims, done):
    """Draw observed / predicted − 1 per dataset to ``args.out``."""
    import types

    import numpy as np

    from fastgd.plot import plot_boundary

    plt = _pyplot()
    labels = _unique([r[0] for r in rows])
    grid = "condition" in cfg and cfg.get("data") is None
    ns = types.SimpleNamespace(
        method=method, names=tuple(labels),
        meta={"spec": {"condition": [float(c) for c in cond] if grid else None}},
        condition=np.array(cond), gd_limit=np.array([l["gd"] for l in lims]),
        momentum_limit=np.array([l["momentum"] for l in lims], dtype=float),
        sgd_ms_limit=np.array([l["sgd_ms"] for l in lims], dtype=float),
        sgd_as_limit=np.array([l["sgd_as"] for l in lims], dtype=float))
    out = _out_path(args.out, args.format, "boundary")
    fig, ax = plt.subplots(figsize=(6.4, 4.8), layout="constrained")
    plot_boundary(ns, ax=ax, observed=np.array(obs),
                  title=f"{method.upper()}: observed vs predicted critical η")
    done["figure"] = _save(fig, out, args.dpi)
    print(f"fastgd: wrote {done['figure']}")


def _boundary_out(args, cfg, method, finished, done, total=None):
    """Print the table of the ``finished`` rows and draw them (--out); ``total``: the
    datasets of an interrupted run.  ``done`` records what is written."""
    if "table" not in done:
        if total is not None:
            print(f"fastgd boundary: interrupted: {len(finished)} of {total} datasets "
                  "finished")
        _print_boundary(method, [f[0] for f in finished])
        done["table"] = True
    if args.out is not None and not _drawn(_out_path(args.out, args.format, "boundary"),
                                           done):
        rows, obs, cond, lims = (list(c) for c in zip(*finished, strict=True))
        _boundary_figure(args, cfg, method, rows, obs, cond, lims, done)


def cmd_boundary(args):
    spec = load_spec(args.config) if args.config else {}
    cfg = _merge(args, spec)
    method = cfg.get("method", "gd")
    if method not in ("gd", "sgd"):
        raise UsageError(f"'method' must be 'gd' or 'sgd'; got {method!r}")
    if args.out is not None:
        _out_path(args.out, args.format, "boundary")  # refuse a bad --out before the work
    data = _boundary_data(cfg)
    opts = (float(cfg.get("momentum", 0.0)), bool(cfg.get("nesterov", False)),
            int(cfg.get("batch_size", 1)), cfg.get("order", DEFAULT_ORDER))
    finished, done = [], {}  # (row, observed rate, κ, limits) per dataset
    try:
        for X, y, label in data:
            finished.append(_boundary_row(X, y, label, method, cfg, opts))
        _boundary_out(args, cfg, method, finished, done)
    except KeyboardInterrupt:  # the rows that finished are printed and drawn: exit 130
        if finished:
            _boundary_out(args, cfg, method, finished, done, total=len(data))
        raise
    return 0
