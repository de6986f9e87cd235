"""``fastgd net``: two-layer networks.

    fastgd net phase [--width GRID] [--lr-ntk GRID] [--steps N] [--config SPEC.toml] [--out FILE]
        the catapult phase diagram over (lr x lambda0, width) with lr = 2/lambda0 and the
        observed lr_max (default: relu, NTK parametrisation, widths 64..1024, 16 points
        on the unit sphere in d = 4, y = sign(x_1)).
    fastgd net eos [--data diabetes|FILE.npz] [--lr GRID] [--width M] [--steps N] ...
        sharpness against step for several learning rates with their 2/lr lines (edge
        of stability; default: scikit-learn's diabetes data, first 100 samples,
        standardised, tanh, standard parametrisation, width 16).  With ``--optimizer adam``
        (or rmsprop, adagrad) the preconditioned sharpness against its threshold 38/lr
        beside the ordinary one against 2/lr, the loss below (default: all 442 samples,
        lr 0.02,0.05,0.1, betas 0.9, 0.98, 3000 steps).
    fastgd net warmup [--warmup LIST] [--lr-sharp GRID] [--steps N] ...
        the largest trainable learning rate against the length of a linear warm-up
        (default: diabetes, first 100 samples, relu, NTK parametrisation, width 64, 3000
        steps; trainable: not diverged and the final loss below half the initial one).

Both take flags and/or a TOML spec (``--config``; flags override it); keys are the
flags' names with underscores (``lr_ntk``, ``every``, ...).  Heavy imports happen after
parsing.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

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
from fastgd.cli.owndata import read_data

PHASE = {"width": "64,128,256,512,1024", "lr_ntk": "0.5:12:28", "steps": 1500, "tol": 1e-5,
         "activation": "relu", "param": "ntk", "scale": 1.0, "samples": 16, "d": 4,
         "data": "sphere", "seed": 0, "momentum": 0.0, "bias": False}
EOS = {"width": 16, "lr": "0.12,0.16,0.2", "steps": 4000, "every": 100, "tol": 0.0,
       "activation": "tanh", "param": "standard", "scale": 0.5, "samples": 100,
       "data": "diabetes", "seed": 0, "momentum": 0.0, "bias": False}
EOS_ADAPTIVE = {"lr": "0.02,0.05,0.1", "samples": 442, "steps": 3000, "every": 10,
                "beta1": 0.9, "beta2": 0.98}
WARMUP = {"width": 64, "warmup": "0,10,30,100,300,1000", "lr_sharp": "0.5:64:29",
          "steps": 3000, "activation": "relu", "param": "ntk", "scale": 1.0, "samples": 100,
          "data": "diabetes", "seed": 0, "bias": False}
_TYPES = {"width": "grid", "lr_ntk": "grid", "lr": "grid", "steps": int, "tol": float,
          "activation": str, "param": str, "scale": float, "samples": int, "d": int,
          "data": str, "seed": int, "momentum": float, "bias": bool, "every": int,
          "threads": int, "optimizer": str, "beta1": float, "beta2": float,
          "warmup": "grid", "lr_sharp": "grid"}


def add_parser(sub):
    """Register ``fastgd net phase`` and ``fastgd net eos`` on the subparsers ``sub``."""
    p = sub.add_parser("net", help="two-layer networks: catapult phase diagram, edge of "
                       "stability, warm-up", description="Two-layer networks f = "
                       "a.φ(Wx + b)/√m: 'phase' draws the catapult phase diagram over "
                       "(η·λ0, width), 'eos' the sharpness against step for several η with "
                       "the 2/η lines (with --optimizer adam: the preconditioned sharpness "
                       "and 38/η), 'warmup' the largest trainable η against the warm-up "
                       "length.")
    nsub = p.add_subparsers(dest="figure", metavar="FIGURE")
    p.set_defaults(func=_no_figure, _net_parser=p)
    for name, dflt, helptext in (
            ("phase", PHASE, "catapult phase diagram over (η·λ0, width)"),
            ("eos", EOS, "sharpness vs step with 2/η lines (edge of stability)"),
            ("warmup", WARMUP, "largest trainable η vs warm-up length")):
        q = nsub.add_parser(name, help=helptext, description=helptext + "; defaults: " +
                            ", ".join(f"{k}={v}" for k, v in dflt.items()))
        q.add_argument("--config", default=None, help="a TOML spec (flags override it)")
        if name == "phase":
            q.add_argument("--lr-ntk", type=_grid_arg("lr_ntk"), default=None, metavar="GRID",
                           help="learning rates in units of 1/λ0 (η·λ0): LO:HI:N or a,b,c")
            q.add_argument("--width", type=_grid_arg("width"), default=None, metavar="LIST",
                           help="widths m, e.g. 64,256,1024")
            q.add_argument("--d", type=_int_arg("--d", 1, 10**4), default=None,
                           help="inputs of the built-in data")
        elif name == "eos":
            q.add_argument("--lr", type=_grid_arg("lr"), default=None, metavar="GRID",
                           help="learning rates, e.g. 0.12,0.16,0.2")
            q.add_argument("--width", type=_int_arg("--width", 1, 10**6), default=None,
                           help="width m (hidden units)")
            q.add_argument("--every", type=_int_arg("--every", 1), default=None,
                           help="steps between sharpness estimates")
            q.add_argument("--optimizer", choices=("gd", "adam", "rmsprop", "adagrad"),
                           default=None, help="gd (default) or an adaptive method: then the "
                           "preconditioned sharpness against its threshold")
            q.add_argument("--beta1", type=float, default=None,
                           help="Adam's first-moment decay (default 0.9)")
            q.add_argument("--beta2", type=float, default=None,
                           help="second-moment decay (default 0.98 here)")
        else:
            q.add_argument("--warmup", type=_grid_arg("warmup"), default=None,
                           metavar="LIST", help="warm-up lengths, e.g. 0,10,100,1000")
            q.add_argument("--lr-sharp", type=_grid_arg("lr_sharp"), default=None,
                           metavar="GRID", help="target rates in units of 1/λ0 (λ0 the "
                           "sharpness at the start): LO:HI:N or a,b,c")
            q.add_argument("--width", type=_int_arg("--width", 1, 10**6), default=None,
                           help="width m (hidden units)")
        q.add_argument("--data", default=None,
                       help="sphere (built-in), diabetes (scikit-learn) or FILE.npz with X, y")
        q.add_argument("--samples", type=_int_arg("--samples", 2, 10**6), default=None,
                       help="samples (first ones of the data)")
        q.add_argument("--steps", type=_int_arg("--steps", 0), default=None, help="GD steps")
        q.add_argument("--activation", choices=("identity", "tanh", "relu"), default=None,
                       help="hidden-unit activation φ")
        q.add_argument("--param", choices=("ntk", "standard"), default=None,
                       help="parametrisation: ntk (f = a·φ(Wx + b)/√m) or standard "
                            "(without the 1/√m)")
        q.add_argument("--scale", type=float, default=None, help="initial std of W and a")
        if name != "warmup":
            q.add_argument("--momentum", type=float, default=None, help="heavy-ball β")
            q.add_argument("--tol", type=float, default=None, help="convergence tolerance")
        q.add_argument("--bias", action=argparse.BooleanOptionalAction, default=None,
                       help="hidden-unit biases b")
        q.add_argument("--out", default=None, help=f"figure file (default net_{name}.png)")
        # eos runs one network after another: no worker threads, no progress bar
        common_options(q, seed="seed of the initial weights and of the sphere data "
                       "(default 0)", threads=name != "eos", progress=name != "eos")
        q.set_defaults(func={"phase": cmd_net_phase, "eos": cmd_net_eos,
                             "warmup": cmd_net_warmup}[name])
    return p


def _kept(cmd, values, run, draw, out, what="runs"):
    """``[run(v) for v in values]``, then ``draw(done, head)``, which builds the figure of
    the results ``done`` (``head``: a first title line, '' unless runs are missing) and
    saves it to ``out``; returns the results.  A Ctrl-C in the runs, after them or while
    drawing draws the finished ones (unless the figure is already written whole,
    :data:`fastgd.cli.args.SIGINT`), says so on stdout, then stops (exit 130); one
    before the first result stops at once."""
    done = []
    try:
        for v in values:
            done.append(run(v))
        draw(done, "")
    except KeyboardInterrupt:
        if done and str(out) not in SIGINT.written:
            draw(done, "" if len(done) == len(values) else
                 f"interrupted: {len(done)} of {len(values)} {what} finished\n")
        if done:
            print(f"fastgd {cmd}: {len(done)} of {len(values)} {what} finished; wrote {out}")
        raise
    return done


def _no_figure(args):
    args._net_parser.print_help()
    return 2


def _config(args, defaults):
    cfg = dict(defaults)
    if args.config:
        cfg.update(_load(args.config, defaults))
    for key in _TYPES:
        v = getattr(args, key, None)
        if v is not None:
            cfg[key] = v
    _check_numbers(cfg)
    return cfg


#: Smallest value of each integer key (flags or spec).
_MIN_INT = {"steps": 0, "samples": 2, "d": 1, "seed": 0, "every": 1, "threads": 1}
#: Each real key's range [lo, hi) and what it is: checked before any work, so that no
#: NumPy warning, or a message about another argument, comes later.
_RANGES = {"scale": (1e-6, 1e6, "the initial std of W and a"),
           "tol": (0.0, 1e300, "the convergence tolerance"),
           "momentum": (0.0, 1.0, "heavy-ball β"),
           "beta1": (0.0, 1.0, "Adam's first-moment decay"),
           "beta2": (0.0, 1.0, "the second-moment decay")}
#: Largest step budget (the API's bound), refused before the data and lambda0 are computed
_MAX_STEPS = 2**62
#: Largest grid value of these keys (rates in units of 1/λ0 beyond it diverge at once).
_GRID_MAX = {"lr_ntk": 1e6, "lr_sharp": 1e6}


def _one_width(cfg):
    """The one width of eos / warmup: an integer >= 1 (a one-element list allowed)."""
    w = cfg["width"]
    w = w[0] if isinstance(w, list) and len(w) == 1 else w
    if isinstance(w, bool) or not isinstance(w, (int, float)) or w != int(w) or w < 1:
        raise UsageError(f"'width' must be one integer >= 1; got {cfg['width']}")
    return int(w)


def _check_numbers(cfg):
    """Refuse, naming the key, integers below their minimum and reals out of range."""
    import math

    for key, lo in _MIN_INT.items():
        v = cfg.get(key)
        if v is not None and v < lo:
            raise UsageError(f"'{key}' must be >= {lo}; got {v}")
    if cfg.get("steps") is not None and cfg["steps"] > _MAX_STEPS:  # before the data
        raise UsageError(f"'steps' must be <= {_MAX_STEPS}; got {cfg['steps']}")
    for key, (lo, hi, what) in _RANGES.items():
        v = cfg.get(key)
        if v is not None and not (math.isfinite(v) and lo <= v < hi):
            raise UsageError(f"'{key}' ({what}) must be in [{lo:g}, {hi:g}); got {v!r}")
    for key, hi in _GRID_MAX.items():
        if cfg.get(key) is not None and not all(0 < x <= hi for x in _grid(cfg, key)):
            raise UsageError(f"'{key}' must hold rates in (0, {hi:g}] (units of 1/λ0); "
                             f"got {cfg[key]}")


def _load(path, defaults):
    p = Path(path)
    spec = read_toml(p)
    known = set(defaults) | {"threads"} | ({"optimizer"} | set(EOS_ADAPTIVE)
                                           if "every" in defaults else set())
    for key, v in spec.items():
        if key not in known:
            raise UsageError(f"spec {str(p)!r}: unknown key {key!r} (known: "
                             f"{', '.join(sorted(known))})")
        kind = _TYPES[key]
        if kind == "grid":
            spec[key] = _spec_grid(v, key)
        elif kind is float:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise UsageError(f"spec: '{key}' must be a number; got {v!r}")
            spec[key] = float(v)
        elif isinstance(v, bool) != (kind is bool) or not isinstance(v, kind):
            raise UsageError(f"spec: '{key}' must be {kind.__name__}; got {v!r}")
    return spec


def _grid(cfg, key):
    v = cfg[key]
    return _spec_grid(v, key) if not isinstance(v, list) else [float(x) for x in v]


def _data(cfg):
    """(X, y, label) of the configured data: standardised inputs and targets."""
    import numpy as np

    name, n = cfg["data"], int(cfg["samples"])
    if name == "sphere":
        rng = np.random.default_rng(cfg["seed"])
        d = int(cfg.get("d") or 4)
        X = rng.standard_normal((n, d))
        X /= np.linalg.norm(X, axis=1, keepdims=True)
        return X, np.where(X[:, 0] >= 0, 1.0, -1.0), f"{n} points on the unit sphere, d = {d}"
    if name == "diabetes":
        try:
            from sklearn.datasets import load_diabetes
        except ImportError:
            raise UsageError("'--data diabetes' needs scikit-learn (pip install scikit-learn); "
                             "or give --data FILE.npz or --data sphere") from None
        X, y = load_diabetes(return_X_y=True)
        label = f"diabetes (first {min(n, X.shape[0])} samples, standardised)"
    else:
        p = Path(name)
        if p.suffix != ".npz":
            raise UsageError(f"'data' must be sphere, diabetes or a .npz file; got {name!r}")
        X, y = read_data(p, "--data", rows=n)  # bounded: only the first n rows are read
        label = f"{p.stem} (first {min(n, X.shape[0])} samples, standardised)"
    X, y = X[:n], y[:n]
    if X.ndim == 1:
        X = X[:, None]
    sx = X.std(0)
    X = (X - X.mean(0)) / np.where(sx > 0, sx, 1.0)
    sy = y.std()
    y = (y - y.mean()) / (sy if sy > 0 else 1.0)
    return X, y, label


def _matplotlib():
    """matplotlib's Figure on the Agg canvas, the modules the figures below draw with."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.backends.backend_agg  # noqa: F401  (savefig's canvas)
    from matplotlib.figure import Figure

    return Figure


def _matplotlib_when_idle():
    """Import matplotlib while this process waits for a kernel's helper, if it does (a
    cold cache: :func:`fastgd.engine.helper.when_idle`)."""
    from fastgd.engine import helper

    helper.when_idle(_matplotlib)


def _figure(ncols=1, size=(7.2, 5.0), rows=False):
    Figure = _matplotlib()

    fig = Figure(figsize=size, layout="constrained")
    if ncols > 1 and rows:  # stacked: the first above, sharing the x axis
        return fig, fig.subplots(ncols, 1, sharex=True, height_ratios=[3, 2])
    axes = fig.subplots(1, ncols) if ncols > 1 else fig.subplots()
    return fig, axes


def cmd_net_phase(args):
    cfg = _config(args, PHASE)
    out = _out_path(args.out, args.format, "net_phase")
    _matplotlib_when_idle()
    import numpy as np

    import fastgd.net as fn

    t0 = time.perf_counter()
    X, y, label = _data(cfg)
    widths = [int(w) for w in _grid(cfg, "width")]
    if any(w < 1 or w != v for w, v in zip(widths, _grid(cfg, "width"), strict=True)):
        raise UsageError(f"'width' must hold integers >= 1; got {cfg['width']}")
    mult = np.array(_grid(cfg, "lr_ntk"))
    if not np.all(mult > 0):
        raise UsageError("'lr_ntk' must be > 0")
    kw = dict(activation=cfg["activation"], param=cfg["param"], bias=cfg["bias"])
    # one grid of η·λ0 for every width, each relative to its own NTK eigenvalue λ0: the
    # rows align (absolute rates would give each width a different η·λ0 range)
    got = {}
    try:
        got["res"] = res = fn.net_sweep(
            X, y, mult, cfg["steps"], width=widths, scale=cfg["scale"], seeds=[cfg["seed"]],
            momentum=cfg["momentum"], tol=cfg["tol"], lr_unit="lambda0",
            threads=cfg.get("threads", args.threads), progress=args.progress, **kw)
        _net_phase_figure(res, cfg, label, out, args)
    except KeyboardInterrupt as exc:  # the engine's partial result, or the whole sweep
        res = got.get("res", getattr(exc, "result", None))  # when the Ctrl-C came after it
        if res is not None and str(out) not in SIGINT.written:
            _net_phase_figure(res, cfg, label, out, args)
        raise
    codes = res.regions()[:, 0, 0]
    print(f"fastgd net phase: {res.status.size} runs in {time.perf_counter() - t0:.1f} s -> "
          f"{out}")
    for k, w in enumerate(res.width):
        cat = res.lr[codes[k] == 2]  # in units of η·λ0
        mx = res.observed_lr_max()[k, 0, 0] * res.ntk0[k, 0, 0]
        span = f"{cat.min():.2f}..{cat.max():.2f}" if cat.size else "none"
        print(f"  width {w:6d}: λ0 = {res.ntk0[k, 0, 0]:.4g}, catapults at η·λ0 in {span}, "
              f"observed η_max·λ0 = {mx:.3g}")
    return 0


def _net_phase_figure(res, cfg, label, out, args):
    """Draw the catapult phase diagram to ``out``; cells of an interrupted sweep that did
    not run (status < 0) are grey, and the title says so."""
    import numpy as np

    import fastgd.net as fn

    fig, ax = _figure(size=(7.4, 5.2))
    title = (f"catapults: {cfg['activation']} network ({cfg['param']} param.), GD "
             f"{cfg['steps']} steps\n{label}")
    missing = np.asarray(res.status) < 0
    if missing.any():
        title = (f"interrupted: {int((~missing).sum())} of {missing.size} runs finished "
                 f"(grey: not run)\n" + title)
    fn.plot_net_phase(res, ax=ax, title=title)
    if missing.any():
        from fastgd.figures import log_edges

        ow, ol = np.argsort(res.width, kind="stable"), np.argsort(res.lr)
        w = res.width[ow].astype(float)
        ye = log_edges(w) if w.size > 1 else np.array([w[0] / 1.4, w[0] * 1.4])
        grey = np.ma.masked_where(~missing[:, 0, 0][np.ix_(ow, ol)], np.ones((w.size, ol.size)))
        ax.pcolormesh(log_edges(res.lr[ol]), ye, grey, cmap="Greys", vmin=0, vmax=2.5,
                      shading="flat", zorder=1.5)
        print(f"fastgd net phase: {int((~missing).sum())} of {missing.size} runs finished; "
              f"wrote {_save(fig, out, args.dpi)}")
    else:
        _save(fig, out, args.dpi)


def cmd_net_eos(args):
    cfg = _config(args, EOS)
    opt = cfg.get("optimizer", "gd")
    if opt in ("rmsprop", "adagrad", "gd") and cfg.get("beta1") is not None:
        raise UsageError(f"'--beta1' applies to --optimizer adam; got {opt}")
    if opt in ("adagrad", "gd") and cfg.get("beta2") is not None:
        raise UsageError(f"'--beta2' applies to --optimizer adam or rmsprop; got {opt}")
    if opt != "gd" and cfg["momentum"] != 0.0:
        raise UsageError(f"'--momentum' applies to --optimizer gd (Adam's momentum is "
                         f"--beta1); got {cfg['momentum']:g}")
    if opt != "gd":  # the adaptive defaults, then spec and flags
        cfg = _config(args, {**EOS, **EOS_ADAPTIVE})
        return _eos_adaptive(args, cfg)
    out = _out_path(args.out, args.format, "net_eos")
    _matplotlib_when_idle()
    import numpy as np

    import fastgd.net as fn

    t0 = time.perf_counter()
    X, y, label = _data(cfg)
    lrs = _grid(cfg, "lr")
    if not all(1e-300 <= v <= 1e300 for v in lrs):  # 2/η and η·λ stay finite
        raise UsageError(f"'lr' must hold rates in [1e-300, 1e300]; got {cfg['lr']}")
    every = int(cfg["every"]) if cfg.get("every") else max(1, cfg["steps"] // 40)
    width = cfg["width"][0] if isinstance(cfg["width"], list) else cfg["width"]
    if int(width) != width or width < 1:
        raise UsageError(f"'width' must be an integer >= 1; got {width}")
    cfg["width"] = int(width)
    theta0 = fn.net_init(int(cfg["width"]), X.shape[1], scale=cfg["scale"], seed=cfg["seed"],
                         bias=cfg["bias"])

    def draw(runs, head):
        fig, (ax, lax) = _figure(2, size=(11.0, 4.6))
        fn.plot_net_eos(runs, ax=ax, loss_ax=lax,
                        title=head + f"edge of stability: {cfg['activation']}, "
                        f"width {cfg['width']}, {cfg['param']} param.\n{label}")
        lax.set_title("loss (full batch)")
        _save(fig, out, args.dpi)

    runs = _kept("net eos", lrs, lambda lr: fn.net_gd(
        X, y, lr, cfg["steps"], theta0=theta0, activation=cfg["activation"],
        param=cfg["param"], bias=cfg["bias"], momentum=cfg["momentum"], tol=cfg["tol"],
        sharpness_every=every), draw, out)
    print(f"fastgd net eos: {len(runs)} runs in {time.perf_counter() - t0:.1f} s -> {out}")
    for r in runs:
        tail = r.sharpnesses[-max(1, r.sharpnesses.size // 4):]
        print(f"  η = {r.lr:g}: sharpness {r.lambda0:.3g} -> {float(np.mean(tail)):.3g} "
              f"(2/η = {2 / r.lr:.3g}), loss {r.loss0:.3g} -> {r.loss:.3g}, {r.status.name}")
    return 0


def _eos_adaptive(args, cfg):
    """``fastgd net eos --optimizer adam``: the adaptive edge of stability."""
    out = _out_path(args.out, args.format, "net_adaptive_eos")
    _matplotlib_when_idle()
    import numpy as np

    import fastgd.net as fn

    t0 = time.perf_counter()
    X, y, label = _data(cfg)
    lrs = _grid(cfg, "lr")
    if not all(1e-300 <= v <= 1e300 for v in lrs):  # 2/η and η·λ stay finite
        raise UsageError(f"'lr' must hold rates in [1e-300, 1e300]; got {cfg['lr']}")
    width = _one_width(cfg)
    betas = (cfg["beta1"], cfg["beta2"])
    if not all(0 <= b < 1 for b in betas):
        raise UsageError(f"'beta1' and 'beta2' must be in [0, 1); got {betas}")
    theta0 = fn.net_init(width, X.shape[1], scale=cfg["scale"], seed=cfg["seed"],
                         bias=cfg["bias"])

    def draw(runs, head):
        fig, (ax, lax) = _figure(2, size=(7.6, 8.2), rows=True)
        fn.plot_net_eos(runs, ax=ax, loss_ax=lax,
                        title=head + "adaptive edge of stability: "
                        f"{cfg['optimizer']} (β = {betas[0]:g}, "
                        f"{betas[1]:g}), {cfg['activation']}, width {width}, {cfg['param']} "
                        f"param.\n{label}")
        lax.set_title("loss (full batch)")
        _save(fig, out, args.dpi)

    runs = _kept("net eos", lrs, lambda lr: fn.net_gd(
        X, y, lr, cfg["steps"], theta0=theta0, activation=cfg["activation"],
        param=cfg["param"], bias=cfg["bias"], tol=cfg["tol"],
        sharpness_every=int(cfg["every"]), optimizer=cfg["optimizer"], betas=betas),
        draw, out)
    print(f"fastgd net eos: {len(runs)} {cfg['optimizer']} runs in "
          f"{time.perf_counter() - t0:.1f} s -> {out}")
    for r in runs:
        st = r.sharpness_steps
        last = st > 2 * st[-1] / 3
        ps = float(np.median(r.preconditioned_sharpnesses[last]))
        sh = float(np.median(r.sharpnesses[last]))
        print(f"  η = {r.lr:g}: median over the last third: λmax(P⁻¹H) = {ps:.4g} = "
              f"{ps / r.threshold:.3f} × threshold {r.threshold:.4g}; λmax(H) = {sh:.3g} = "
              f"{sh * r.lr / 2:.3f} × 2/η; loss {r.loss0:.3g} -> {r.loss:.3g}")
    return 0


def cmd_net_warmup(args):
    cfg = _config(args, WARMUP)
    out = _out_path(args.out, args.format, "net_warmup")
    _matplotlib_when_idle()
    import numpy as np

    import fastgd.net as fn

    t0 = time.perf_counter()
    X, y, label = _data(cfg)
    warmups = [int(w) for w in _grid(cfg, "warmup")]
    if any(w < 0 or w != v for w, v in zip(warmups, _grid(cfg, "warmup"), strict=True)):
        raise UsageError(f"'warmup' must hold integers >= 0; got {cfg['warmup']}")
    if max(warmups, default=0) > cfg["steps"]:  # the target rate would never be reached
        raise UsageError(f"'warmup' must hold lengths <= 'steps' ({cfg['steps']}): a longer "
                         f"warm-up never reaches the target rate; got {max(warmups)}")
    mult = np.array(_grid(cfg, "lr_sharp"))
    if not np.all(mult > 0):
        raise UsageError("'lr_sharp' must be > 0")
    width = _one_width(cfg)
    kw = dict(activation=cfg["activation"], param=cfg["param"], bias=cfg["bias"])
    theta0 = fn.net_init(width, X.shape[1], scale=cfg["scale"], seed=cfg["seed"],
                         bias=cfg["bias"])
    lam0 = fn.net_sharpness(theta0, X, y, **kw)
    if not (math.isfinite(lam0) and lam0 > 1e-300):
        raise UsageError(f"'scale' must give a network with a positive sharpness at the start "
                         f"(the rates are multiples of 1/λ0); got λ0 = {lam0:g}")
    lrs = mult / lam0

    def trainable(T):
        res = fn.net_sweep(X, y, lrs, cfg["steps"], theta0=theta0, tol=0.0, warmup=T,
                           sharpness=False, threads=cfg.get("threads", args.threads),
                           progress=args.progress, **kw)
        ok = (res.status[0, 0, 0] != 2) & (res.loss[0, 0, 0] < 0.5 * res.loss0[0, 0, 0])
        return float(lrs[ok].max()) if ok.any() else float("nan")

    def draw(best, head):  # the rows of an interrupt: those that finished
        fig, ax = _figure(size=(7.0, 4.8))
        fn.plot_net_warmup(warmups[:len(best)], np.array(best), lr0=2.0 / lam0, ax=ax,
                           label="largest trainable η (not diverged, final loss < ½ E(θ0); "
                           f"grid steps ×{mult[1] / mult[0]:.2f})" if mult.size > 1 else None,
                           title=head + f"warm-up: {cfg['activation']} network, width "
                           f"{width}, {cfg['param']} param., GD {cfg['steps']} steps\n{label}")
        _save(fig, out, args.dpi)

    best = _kept("net warmup", warmups, trainable, draw, out, "warm-up lengths")
    print(f"fastgd net warmup: {len(warmups) * lrs.size} runs in "
          f"{time.perf_counter() - t0:.1f} s -> {out}")
    print(f"  λ0 = {lam0:.4g} (sharpness at the start); trainable: not diverged, final "
          f"loss < ½ E(θ0)")
    for T, b in zip(warmups, best, strict=True):
        print(f"  warm-up {T:5d} steps: largest trainable η = {b:.4g} = {b * lam0:.3g}/λ0 "
              f"({b / best[0]:.2f}× no warm-up)")
    return 0
