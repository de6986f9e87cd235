"""``fastgd phase --optimizer adam|rmsprop|adagrad|gd [--axis condition|beta1|warmup]`` and
``fastgd net phase2 --axis beta1|warmup|width``: phase diagrams of the adaptive methods.

    fastgd phase --optimizer adam [--beta1 B] [--beta2 B] [--warmup T] [--freeze T] ...
        the linear phase diagram over (lr, condition number) -- or over (lr, the given
        datasets) -- run with that optimizer (batch); with --freeze and --pre-freeze-lr
        each row's frozen-preconditioner limit eta* is drawn beside GD's 2/lambda_max.
    fastgd phase --optimizer adam --axis beta1|warmup [--values LIST] [--data NAME]
        the two-axis diagram of one dataset (:func:`fastgd.linear.phase2.adaptive_phase`):
        rows beta1 (GD: heavy-ball momentum) or warm-up length, columns lr; plain GD's
        diagram beside it where GD has that axis (--gd).
    fastgd net phase2 --axis beta1|warmup|width [--optimizer adam] [--values LIST] ...
        the same for a two-layer network (:func:`fastgd.net.net_adaptive_phase`), Adam
        (or the --optimizer given) beside plain GD; flags and/or a TOML spec
        (``--config``; flags override it; keys are the flags' names with underscores).

Ctrl-C draws the tables (rows, cells) that finished and exits 130 (:func:`_tables`).

Plain ``fastgd phase`` (no --optimizer, no --axis) is :func:`fastgd.cli.commands.cmd_phase`.
Heavy imports happen after parsing.
"""

from __future__ import annotations

import argparse
import time

from fastgd.cli.args import (
    SIGINT,
    UsageError,
    _grid_arg,
    _int_arg,
    _out_path,
    _save,
    _spec_grid,
    common_options,
    read_toml,
)

OPTIMIZERS = ("gd", "adam", "rmsprop", "adagrad")
_AXIS_NAME = {"beta1": "β1 or momentum β", "warmup": "warm-up length", "width": "width"}
#: default rows and learning rates of the two-axis diagrams (linear unit)
LINEAR_AXIS = {"beta1": "0,0.3,0.5,0.7,0.8,0.9,0.95", "warmup": "0,10,30,100,300,1000"}
LINEAR_LR = {"adaptive": "0.01:100:49", "gd": "0.05:2:41"}
#: the (lr, condition) diagram of an adaptive optimizer on Gaussian data (lambda_max = 1)
ADAPTIVE_CONDITION = {"lr": "0.001:100:61", "condition": "1:1e4:33", "steps": 1000}
#: ``fastgd net phase2`` defaults
NET = {"data": "diabetes", "samples": 100, "activation": "relu", "param": "ntk",
       "scale": 1.0, "width": 64, "steps": 2000, "tol": 1e-3,
       "values": {"beta1": "0,0.5,0.8,0.9,0.95", "warmup": "0,10,30,100,300,1000",
                  "width": "16,32,64,128,256,512"},
       "lr": {"gd": "0.02:20:31", "adaptive": "0.0003:1:31"}}


def _unit_arg(flag):
    """argparse type: a number in [0, 1) (one-line error naming ``flag``)."""
    def conv(text):
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{flag}' must be a number; got {text!r}") \
                from None
        if not 0 <= v < 1:
            raise argparse.ArgumentTypeError(f"'{flag}' must be in [0, 1); got {v:g}")
        return v

    conv.__name__ = flag.lstrip("-")
    return conv


def _positive_arg(flag):
    """argparse type: a finite number > 0."""
    def conv(text):
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{flag}' must be a number; got {text!r}") \
                from None
        if not 0 < v < float("inf"):
            raise argparse.ArgumentTypeError(f"'{flag}' must be > 0; got {v:g}")
        return v

    conv.__name__ = flag.lstrip("-")
    return conv


def _optimizer_flags(g, axes):
    g.add_argument("--optimizer", choices=OPTIMIZERS, default=None,
                   help="gd (plain, the default) or an adaptive method (PyTorch's/optax's "
                        "convention, batch updates; with it --data also takes diabetes: "
                        "scikit-learn's, standardised)")
    g.add_argument("--axis", choices=axes, default=None,
                   help="the second axis of the diagram (rows): " + ", ".join(axes)
                   + " (beta1 with --optimizer gd: the heavy-ball momentum)")
    g.add_argument("--values", type=_grid_arg("values"), default=None, metavar="LIST",
                   help="the rows of --axis, e.g. 0,0.5,0.9 or 0,100,1000")
    g.add_argument("--beta1", type=_unit_arg("--beta1"), default=None,
                   help="Adam's first-moment decay β1 (default 0.9)")
    g.add_argument("--beta2", type=_unit_arg("--beta2"), default=None,
                   help="second-moment decay β2 (default 0.999)")
    g.add_argument("--warmup", type=_int_arg("--warmup", 0), default=None,
                   help="linear warm-up length in updates, from 0 to the target rate "
                        "(default 0)")
    g.add_argument("--gd", action=argparse.BooleanOptionalAction, default=None,
                   help="with --axis: draw plain GD's diagram beside the optimizer's "
                        "(default on where GD has the axis)")


def add_phase_flags(ph):
    """Add the optimizer options of ``fastgd phase`` to its parser ``ph``."""
    g = ph.add_argument_group("optimizer (batch runs)")
    _optimizer_flags(g, ("condition", "beta1", "warmup"))
    g.add_argument("--freeze", type=_int_arg("--freeze", 0), default=None, metavar="T",
                   help="freeze the preconditioner after T updates (0: never; default 0, "
                        "with --axis 5), so that each row has a stability limit η*")
    g.add_argument("--pre-freeze-lr", type=_positive_arg("--pre-freeze-lr"), default=None,
                   metavar="LR", help="rate of the updates before the freeze (default 0.01 "
                   "with --freeze): every rate of a row freezes the same preconditioner")


def cmd_phase(args):
    """``fastgd phase``: plain GD over (lr, condition) unless --optimizer or --axis asks
    for more."""
    from fastgd.cli.commands import cmd_phase as plain

    axis = args.axis or "condition"
    if axis == "condition" and args.optimizer in (None, "gd"):
        for flag in ("beta1", "beta2", "warmup", "freeze", "pre_freeze_lr", "values", "gd"):
            if getattr(args, flag) is not None:
                raise UsageError(f"'--{flag.replace('_', '-')}' needs --optimizer adam, "
                                 "rmsprop or adagrad, or --axis beta1|warmup")
        return plain(args)
    if axis == "condition":
        return _adaptive_condition(args)
    return _linear_axis(args)


def add_net_phase2(net_parser):
    """Register ``fastgd net phase2`` on the ``fastgd net`` parser ``net_parser``."""
    nsub = next(a for a in net_parser._actions if isinstance(a, argparse._SubParsersAction))
    helptext = "phase diagram over (η, β1 | warm-up | width), Adam beside GD"
    q = nsub.add_parser("phase2", help=helptext, description=helptext + "; defaults: "
                        + ", ".join(f"{k}={v}" for k, v in NET.items()))
    g = q.add_argument_group("optimizer and axes")
    _optimizer_flags(g, ("beta1", "warmup", "width"))
    g.add_argument("--lr", type=_grid_arg("lr"), default=None, metavar="GRID",
                   help="(target) learning rates, absolute: LO:HI:N or a,b,c (default "
                        "per optimizer, see above)")
    q.add_argument("--data", default=None,
                   help="diabetes (scikit-learn, default), sphere or FILE.npz with X, y")
    q.add_argument("--samples", type=_int_arg("--samples", 2, 10**6), default=None,
                   help="samples (first ones of the data)")
    q.add_argument("--steps", type=_int_arg("--steps", 0), default=None,
                   help="updates per run, the warm-up included")
    q.add_argument("--width", type=_int_arg("--width", 1, 10**6), default=None,
                   help="width m when --axis is not width")
    q.add_argument("--activation", choices=("identity", "tanh", "relu"), default=None,
                   help="hidden-unit activation φ")
    q.add_argument("--param", choices=("ntk", "standard"), default=None,
                   help="parametrisation: ntk (f = a·φ(Wx)/√m) or standard (without 1/√m)")
    q.add_argument("--tol", type=float, default=None,
                   help="convergence tolerance: loss ≤ tol × E(θ0)")
    q.add_argument("--out", default=None, help="figure file (default net_phase2.png)")
    q.add_argument("--config", default=None, help="a TOML spec (flags override it); keys: "
                   "the flags' names with underscores (axis, values, lr, beta1, ...)")
    common_options(q, seed="seed of the initial weights (default 0)", progress=False)
    q.set_defaults(func=_net_phase2, _phase2_parser=q)
    return q


#: flags of ``fastgd net phase2`` that a --config spec does not set
_NOT_IN_SPEC = ("help", "config", "out", "format", "dpi", "func", "_phase2_parser")


def _apply_spec(args):
    """Set the flags that were not given from the ``--config`` spec, each value checked
    as its flag checks it (a bad key or value exits 2 naming it)."""
    acts = {a.dest: a for a in args._phase2_parser._actions if a.dest not in _NOT_IN_SPEC}
    for key, v in read_toml(args.config).items():
        a = acts.get(key)
        if a is None:
            raise UsageError(f"spec {args.config!r}: unknown key {key!r} (known: "
                             f"{', '.join(sorted(acts))})")
        if getattr(args, key, None) is None:  # the flag wins
            setattr(args, key, _spec_value(key, v, a))


def _spec_value(key, v, action):
    """The spec value ``v`` of flag ``action`` (dest ``key``), as the flag would parse it."""
    flag = isinstance(action, argparse.BooleanOptionalAction)
    if flag != isinstance(v, bool):
        want = "true or false" if flag else "a number or a string"
        raise UsageError(f"spec: '{key}' must be {want}; got {v!r}")
    if flag:
        return v
    if key in ("values", "lr"):
        return _spec_grid(v, key)
    if not isinstance(v, (str, int, float)):
        raise UsageError(f"spec: '{key}' must be a number or a string; got {v!r}")
    try:
        v = action.type(str(v)) if action.type is not None else v
    except (argparse.ArgumentTypeError, ValueError) as exc:
        raise UsageError(f"spec: '{key}': {exc}") from None
    if action.choices is not None and v not in action.choices:
        raise UsageError(f"spec: '{key}' must be one of {', '.join(action.choices)}; got "
                         f"{v!r}")
    return v


def _figure(ncols, size):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, list(axes)


def _draw(tables, out, dpi, suptitle):
    """Draw each table on its own panel, side by side, and save the figure to ``out``."""
    from fastgd.linear.plot_phase2 import plot_adaptive_phase

    fig, axes = _figure(len(tables), (6.6 * len(tables), 5.6))
    for ax, t in zip(axes, tables, strict=True):
        plot_adaptive_phase(t, ax=ax)
    fig.suptitle(suptitle, fontsize=11)
    return _save(fig, out, dpi)


def _report(cmd, tables, seconds, out):
    """One line per table and per row on stdout."""
    cells = sum(t.status.size for t in tables)
    print(f"fastgd {cmd}: {cells} runs in {seconds:.1f} s -> {out}")
    for t in tables:
        print(f"  {t.optimizer}:")
        for k, v in enumerate(t.values):
            line = f"    {t.axis} = {v:g}: largest rate below the first diverged: " \
                   f"{t.boundary[k]:.4g}"
            if t.theory is not None:
                line += f" (theory {t.theory[k]:.4g})"
            print(line)


def _tables(cmd, opts, one, out, dpi, suptitle):
    """Run ``one(o)`` (a :class:`~fastgd.linear.phase2.PhaseTable`) for each optimizer
    of ``opts``, draw the tables side by side to ``out`` and report them.  A Ctrl-C
    anywhere -- in a table (its :class:`fastgd.SweepInterrupted` carries the rows and
    cells that finished), after the tables, while drawing -- draws what finished unless
    the figure is already written whole, says so on stdout, then stops (exit 130)."""
    tables, t0 = [], time.perf_counter()
    try:
        for o in opts:
            tables.append(one(o))
        path = _draw(tables, out, dpi, suptitle)
        _report(cmd, tables, time.perf_counter() - t0, path)
    except KeyboardInterrupt as exc:
        from fastgd.linear.phase2 import PhaseTable

        part = getattr(exc, "result", None)
        kept = tables + ([part] if isinstance(part, PhaseTable) else [])
        if kept and str(out) not in SIGINT.written:
            ran = sum(int((t.status >= 0).sum()) for t in kept)
            cut = len(kept) < len(opts) or ran < sum(t.status.size for t in kept)
            path = _draw(kept, out, dpi, ("interrupted: grey cells did not run\n" if cut
                                          else "") + suptitle)
            print(f"fastgd {cmd}: interrupted: {ran} runs finished; wrote {path}")
        raise
    return 0


# ------------------------------------------------------------------ the linear unit
#: flags of ``fastgd phase`` that the optimizer diagrams do not take: (dest, flag)
_NOT_ADAPTIVE = (("lr_unit", "--lr-unit"), ("transform", "--transform"),
                 ("epochs", "--epochs"), ("batch_size", "--batch-size"), ("order", "--order"),
                 ("seeds", "--seeds"), ("nesterov", "--nesterov"), ("theory", "--theory"),
                 ("checkpoint", "--checkpoint"), ("dtype", "--dtype"),
                 ("backend", "--backend"), ("config", "--config"), ("save", "--save"))
_NOT_AXIS = (("condition", "--condition"), ("n", "--n"), ("d", "--d"))


def _refuse(args, pairs, why):
    for dest, flag in pairs:
        v = getattr(args, dest, None)
        if v not in (None, False):
            raise UsageError(f"'{flag}' does not apply {why}")
    if getattr(args, "almost_sure", False):
        raise UsageError(f"'--almost-sure' does not apply {why}")
    if getattr(args, "method", None) not in (None, "gd"):
        raise UsageError(f"'--method' must be gd {why} (batch runs)")
    if getattr(args, "color", "status") != "status":
        raise UsageError(f"'--color' must be status {why}")


def _linear_data(name):
    """(X, y, label) of a dataset name of the linear diagrams: diabetes (scikit-learn,
    inputs standardised with fastgd.normalize, targets centred), or what ``fastgd phase
    --data`` takes."""
    if name != "diabetes":
        from fastgd.cli.commands import _load_data

        return _load_data(name)
    try:
        from sklearn.datasets import load_diabetes
    except ImportError:
        raise UsageError("'--data diabetes' needs scikit-learn (pip install scikit-learn)") \
            from None
    import fastgd as fg

    X, y = load_diabetes(return_X_y=True)
    return fg.normalize(X), y - y.mean(), "diabetes (standardised)"


def _adaptive_opts(args, opt, freeze_default):
    """betas, warm-up and freeze of the optimizer flags, checked (UsageError names the
    flag)."""
    if opt in ("rmsprop", "adagrad", "gd") and args.beta1 is not None:
        raise UsageError(f"'--beta1' applies to --optimizer adam; got {opt}")
    if opt in ("adagrad", "gd") and args.beta2 is not None:
        raise UsageError(f"'--beta2' applies to --optimizer adam or rmsprop; got {opt}")
    if args.momentum not in (None, 0.0) and opt != "gd":
        raise UsageError(f"'--momentum' applies to --optimizer gd (Adam's momentum is "
                         f"--beta1); got {args.momentum:g}")
    freeze = args.freeze if args.freeze is not None else freeze_default
    pre = args.pre_freeze_lr
    if pre is not None and not freeze:
        raise UsageError("'--pre-freeze-lr' needs '--freeze T' with T >= 1")
    if freeze and opt == "gd":
        raise UsageError("'--freeze' needs an adaptive --optimizer (GD has no "
                         "preconditioner)")
    return dict(betas=(0.9 if args.beta1 is None else args.beta1,
                       0.999 if args.beta2 is None else args.beta2),
                warmup=args.warmup or 0, freeze_preconditioner=freeze or None,
                pre_freeze_lr=(pre if pre is not None else 0.01) if freeze else None)


def _adaptive_condition(args):
    """``fastgd phase --optimizer adam``: (lr, condition number or dataset) with the
    optimizer; each row's frozen limit eta* where the preconditioner is frozen."""
    import numpy as np

    from fastgd.cli.args import parse_grid
    from fastgd.linear.sweep import sweep

    _refuse(args, _NOT_ADAPTIVE, "with --optimizer adam|rmsprop|adagrad")
    if args.values is not None or args.gd is not None:
        raise UsageError("'--values' and '--gd' need --axis beta1|warmup")
    out = _out_path(args.out, args.format, "phase")
    opts = _adaptive_opts(args, args.optimizer, 0)
    lr = np.asarray(args.lr if args.lr is not None else parse_grid(ADAPTIVE_CONDITION["lr"]))
    if args.data:
        if args.condition is not None:
            raise UsageError("give --data or --condition, not both")
        loaded = [_linear_data(item) for item in args.data]
        where = {"data": {lab: (X, y) for X, y, lab in loaded}}
        Hs = [X.T @ X / X.shape[0] for X, _, _ in loaded]
    else:
        from fastgd.cli.commands import _gaussians

        kappa = args.condition or parse_grid(ADAPTIVE_CONDITION["condition"])
        where = dict(condition=np.asarray(kappa), n=args.n or 100, d=args.d or 2,
                     data_seed=args.seed or 0)
        Hs = [X.T @ X / X.shape[0] for X, _ in _gaussians(dict(where, fix="lambda_max"))]
    t0, got = time.perf_counter(), {}
    try:
        got["res"] = res = sweep("gd", lr=lr, steps=args.steps or ADAPTIVE_CONDITION["steps"],
                                 optimizer=args.optimizer, threads=args.threads,
                                 tol=args.tol if args.tol is not None else 1e-8,
                                 **opts, **where)
        got["eta"] = _frozen_rows(res, Hs, opts, args.optimizer)
        path = _condition_out(res, got["eta"], args, opts, out)
        counts = ", ".join(f"{k.lower()} {v}" for k, v in _counts(res.status).items())
        print(f"fastgd phase: {args.optimizer} sweep of {res.status.size} runs in "
              f"{time.perf_counter() - t0:.1f} s ({counts}) -> {path}")
    except KeyboardInterrupt as exc:  # draw what finished (the sweep's cells), then 130
        res = getattr(exc, "result", None) if "res" not in got else got["res"]
        if res is not None and str(out) not in SIGINT.written:
            path = _condition_out(res, got.get("eta"), args, opts, out)
            print(f"fastgd phase: interrupted: {int((res.status >= 0).sum())} of "
                  f"{res.status.size} runs finished; wrote {path}")
        raise
    return 0


def _condition_out(res, eta, args, opts, out):
    """Draw the (lr, condition) diagram of ``res`` (grey: cells not run) to ``out``."""
    fig, ax = _figure(1, (7.4, 5.8))
    _condition_figure(ax[0], res, eta, args.optimizer, opts)
    return _save(fig, out, args.dpi)


def _counts(status):
    import numpy as np

    from fastgd.status import Status

    n = {s.name: int(np.count_nonzero(status == int(s))) for s in Status}  # numpy gh-14801
    return {k: v for k, v in n.items() if v}


def _frozen_rows(res, Hs, opts, opt):
    """eta* per dataset of a frozen sweep (NaN where none), or None without a freeze."""
    import numpy as np

    from fastgd.theory import adaptive_lr_max

    if not opts["freeze_preconditioner"]:
        return None
    vh = res.meta["frozen_v_hat"][:, :, 0]
    out = np.full(len(Hs), np.nan)
    for k, H in enumerate(Hs):
        ok = np.flatnonzero(np.all(np.isfinite(vh[k]), axis=1))
        if ok.size:
            adam = opt == "adam"
            out[k] = adaptive_lr_max(H, vh[k, ok[0]], beta1=opts["betas"][0] if adam else 0,
                                     eps=1e-8, t=opts["freeze_preconditioner"] if adam else None)
    return out


def _condition_figure(ax, res, eta, opt, opts):
    """The ordinary phase diagram of the sweep, titled for the optimizer, with eta*."""
    import numpy as np

    from fastgd.figures import halo
    from fastgd.linear.plot import plot_phase_diagram

    name = {"adam": "Adam", "rmsprop": "RMSProp", "adagrad": "AdaGrad"}[opt]
    b1, b2 = opts["betas"]
    sub = {"adam": f"β = ({b1:g}, {b2:g})", "rmsprop": f"β2 = {b2:g}", "adagrad": ""}[opt]
    fr = opts["freeze_preconditioner"]
    if fr:
        sub += f", preconditioner frozen after {fr} updates at η = {opts['pre_freeze_lr']:g}"
    if opts["warmup"]:
        sub += f", warm-up {opts['warmup']}"
    title = f"{name} on the linear unit, {res.meta['spec']['steps']} steps\n{sub.strip(', ')}"
    if (res.status < 0).any():
        title = "interrupted: grey cells did not run\n" + title
    plot_phase_diagram(res, ax=ax, title=title, notes=False)
    if eta is None:
        return
    grid = res.meta["spec"].get("condition") is not None and np.size(res.condition) > 1
    y = np.asarray(res.condition if grid else np.arange(eta.size), dtype=float)
    order = np.argsort(y)
    label = ("frozen limit η* = (2 + 2β1)/((1 − β1) λ$_{max}$(P⁻¹H))" if opt == "adam"
             else "frozen limit η* = 2/λ$_{max}$(P⁻¹H)")
    ax.plot(eta[order], y[order], color="black", lw=2.0, ls=(0, (1, 1.2)), marker="o",
            ms=3, label=label, path_effects=halo(4.0, "white"))
    old = ax.get_legend()
    handles = (list(old.legend_handles) if old is not None else []) + [ax.lines[-1]]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2,
              frameon=False, fontsize="small")


def _linear_axis(args):
    """``fastgd phase --axis beta1|warmup``: the two-axis diagram of one dataset."""
    import numpy as np

    from fastgd.cli.args import parse_grid
    from fastgd.linear.phase2 import adaptive_phase

    _refuse(args, _NOT_ADAPTIVE + _NOT_AXIS, "with --axis beta1|warmup")
    opt, axis = args.optimizer or "gd", args.axis
    if axis == "beta1" and args.beta1 is not None:
        raise UsageError("'--beta1' is the axis with --axis beta1: give its rows as --values")
    if axis == "warmup" and args.warmup is not None:
        raise UsageError("'--warmup' is the axis with --axis warmup: give its rows as "
                         "--values")
    if len(args.data or []) > 1:
        raise UsageError("'--data' takes one dataset with --axis")
    X, y, label = _linear_data((args.data or ["lecture"])[0])
    out = _out_path(args.out, args.format, f"phase_{axis}")
    values = args.values if args.values is not None else parse_grid(LINEAR_AXIS[axis])
    steps = args.steps or 2000
    tol = args.tol if args.tol is not None else 1e-8
    opts = [opt] + (["gd"] if opt != "gd" and axis == "beta1" and args.gd is not False
                    else [])
    if opt == "gd":
        _adaptive_opts(args, "gd", 0)  # refuses the adaptive flags
    kws = {o: _adaptive_opts(args, o, 5) if o != "gd" else {"momentum": args.momentum or 0.0}
           for o in opts}

    def one(o):
        lr = args.lr if args.lr is not None and o == opt else \
            parse_grid(LINEAR_LR["gd" if o == "gd" else "adaptive"])
        return adaptive_phase(X, y, np.asarray(lr), axis=axis, values=values, steps=steps,
                              optimizer=o, tol=tol, threads=args.threads, **kws[o])

    return _tables("phase", opts, one, out, args.dpi,
                   f"phase diagrams over (η, {_AXIS_NAME[axis]}): {label}")


# ------------------------------------------------------------------ networks
def _net_phase2(args):
    """``fastgd net phase2``: the two-axis diagram of a network, the optimizer beside GD."""
    import numpy as np

    from fastgd.cli.args import parse_grid
    from fastgd.cli.net import _data
    from fastgd.net.phase2 import net_adaptive_phase

    if args.config:
        _apply_spec(args)
    if args.axis is None:
        raise UsageError("'--axis' is required: beta1, warmup or width")
    opt, axis = args.optimizer or "adam", args.axis
    if opt in ("rmsprop", "adagrad", "gd") and args.beta1 is not None:
        raise UsageError(f"'--beta1' applies to --optimizer adam; got {opt}")
    if opt in ("adagrad", "gd") and args.beta2 is not None:
        raise UsageError(f"'--beta2' applies to --optimizer adam or rmsprop; got {opt}")
    cfg = {k: getattr(args, k, None) for k in ("data", "samples", "activation", "param",
                                               "width", "steps", "tol")}
    cfg = {k: (NET[k] if v is None else v) for k, v in cfg.items()}
    cfg["seed"] = args.seed or 0
    if axis == "width" and args.width is not None:
        raise UsageError("'--width' is the axis with --axis width: give its rows as --values")
    if axis == "width" and args.values is not None and not all(
            v == int(v) and 1 <= v <= 10**6 for v in args.values):  # as --width
        raise UsageError(f"'--values' must hold widths (integers in [1, 1000000]) with "
                         f"--axis width; got {args.values}")
    for flag, dest in (("--beta1", "beta1"), ("--warmup", "warmup")):
        if axis == dest and getattr(args, dest) is not None:
            raise UsageError(f"'{flag}' is the axis with --axis {axis}: give its rows as "
                             "--values")
    X, y, label = _data(cfg)
    values = args.values if args.values is not None else parse_grid(NET["values"][axis])
    opts = [opt] + (["gd"] if opt != "gd" and args.gd is not False else [])
    out = _out_path(args.out, args.format, "net_phase2")

    def one(o):
        lr = args.lr if args.lr is not None and o == opt else \
            parse_grid(NET["lr"]["gd" if o == "gd" else "adaptive"])
        kw = {} if o == "gd" else dict(betas=(0.9 if args.beta1 is None else args.beta1,
                                              0.999 if args.beta2 is None else args.beta2))
        return net_adaptive_phase(
            X, y, np.asarray(lr), axis=axis, values=values, steps=cfg["steps"], optimizer=o,
            warmup=args.warmup or 0, width=int(cfg["width"]), seed=cfg["seed"],
            activation=cfg["activation"], param=cfg["param"], tol=cfg["tol"],
            threads=args.threads, **kw)

    return _tables("net phase2", opts, one, out, args.dpi,
                   f"two-layer network over (η, {_AXIS_NAME[axis]}): {label}")
