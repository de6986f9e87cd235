"""Fuzz the network and chain API at run time: every call in a forked child of this
process (which imported fastgd and loaded the kernels), with a memory cap (RLIMIT_AS:
512 MiB above this process's current address space) and a time limit (killed at 2 s),
asserting a clean fastgd error naming the function and the argument that is actually
wrong, or a truthful result (statuses checked against the finiteness of the losses,
curvatures against NumPy references), and no NumPy ``RuntimeWarning``.

Where :mod:`fastgd.test_fuzz` replaces the kernels and checks validation only, here the
calls run: out-of-reach sizes (widths, grids, seeds, Lanczos steps, dense Hessians and
NTKs, chain depths), extreme magnitudes (initial scales up to 1e200, inputs near the
underflow), read-only inputs, adaptive options.  The children run under the cost
model's environment knobs (``FASTGD_MAX_BYTES``, ``FASTGD_MAX_WORK``) set to the caps:
what the cost model lets through must finish inside them.

``python tests/test_fuzz_net.py`` prints the counts per area (calls, clean, crashes,
wrong accepts, unclear messages, over time, over memory, warnings).
"""

from __future__ import annotations

import os
import pickle
import resource
import signal
import sys
import time
import warnings

import numpy as np
import pytest

import fastgd as fg
from fastgd import chain as ch
from fastgd import net as fn

VE, TE = fg.FastGDValueError, fg.FastGDTypeError
TIME_LIMIT = 2.0  # seconds per call (a timed-out call is retried once before it counts)
HEADROOM = 512 << 20  # bytes of address space a child may add to this process's
# the cost model's knobs in the children: what it lets through must fit the caps
ENV = {"FASTGD_MAX_BYTES": str(256 << 20), "FASTGD_MAX_WORK": "5e8"}

_rng = np.random.default_rng(7)
X = _rng.standard_normal((8, 2))
Y = np.sin(X[:, 0]) + 0.3 * X[:, 1]
X1 = np.linspace(-1.0, 1.0, 6)[:, None]
Y1 = 0.5 * X1[:, 0]
TH = fn.net_init(3, 2, seed=1)  # width 3, d = 2: N = 12
XBIG = np.linspace(-1.0, 1.0, 60000)[:, None]
YBIG = np.sin(3 * XBIG[:, 0])


def _ro(a):
    a = np.array(a, dtype=np.float64)
    a.setflags(write=False)
    return a


# ------------------------------------------------------------------------ judges
def _finite(v):
    return bool(np.all(np.isfinite(v)))


def _judge_run(r):
    """A NetRun / ChainRun: its status agrees with its losses."""
    name = r.status.name
    if name == "CONVERGED":
        if not (np.isfinite(r.loss) and np.isfinite(r.loss0)):
            return f"CONVERGED with loss {r.loss}, loss0 {r.loss0}"
        if r.steps_to_tol < 0 or r.diverged_at != -1:
            return f"CONVERGED with steps_to_tol {r.steps_to_tol}"
        if not _finite(r.losses):
            return "CONVERGED with a non-finite recorded loss"
    elif name == "DIVERGED":
        if np.isfinite(r.loss) or r.diverged_at < 0:
            return f"DIVERGED with loss {r.loss} at {r.diverged_at}"
    elif name == "BOUNDED":
        if not np.isfinite(r.loss) or not _finite(r.losses):
            return f"BOUNDED with loss {r.loss}"
    else:
        return f"status {name}"
    if hasattr(r, "theta") and name == "CONVERGED":
        ref = fn.net_loss(r.theta, _CUR["X"], _CUR["y"], activation=r.activation,
                          param=r.param, bias=r.bias)
        if not abs(ref - r.loss) <= 1e-6 * max(abs(ref), 1e-300) + 1e-300:
            return f"loss {r.loss} but net_loss of theta {ref}"
    if np.isnan(getattr(r, "sharpness", 0.0)) or np.isnan(r.lambda0):
        return "NaN curvature"
    return None


def _judge_grid(res):
    """A NetSweepResult / ChainSweepResult: every cell's status agrees with its loss."""
    st, loss = np.asarray(res.status), np.asarray(res.loss)
    fin = np.isfinite(loss)
    if np.any((st == 1) & ~fin):
        return "a CONVERGED cell with a non-finite loss"
    if np.any((st == 2) & fin):
        return "a DIVERGED cell with a finite loss"
    if np.any((st == 0) & ~fin):
        return "a BOUNDED cell with a non-finite loss"
    if np.any(st < 0):
        return "a cell NOT_RUN"
    if np.any(np.isnan(np.asarray(res.lambda0))):
        return "NaN lambda0"
    return None


def _judge_scalar(v):
    v = np.asarray(v, dtype=float)
    return "NaN" if np.any(np.isnan(v)) else None


def _judge_ntk(v):
    """net_ntk: not NaN, >= 0, and the dense reference where it is small."""
    if np.isnan(v) or v < 0:
        return f"net_ntk {v}"
    Xc, yc, t = _CUR["X"], _CUR["y"], _CUR["theta"]
    if np.isfinite(v) and Xc.shape[0] * t.size <= 2e5 and _finite(t):
        from fastgd.net.model import _jacobian, _model

        kw = _CUR["kw"]
        M = _model("ref", Xc, yc, kw.get("activation", "tanh"), kw.get("param", "ntk"),
                   kw.get("bias", False))
        with np.errstate(all="ignore"):
            J = _jacobian(t, M, t.size // M.per())
            ref = np.linalg.eigvalsh(J.T @ J / M.P)[-1] if J.shape[1] < J.shape[0] else \
                np.linalg.eigvalsh(J @ J.T / M.P)[-1]
        if np.isfinite(ref) and not abs(ref - v) <= 1e-8 * abs(ref) + 1e-300:
            return f"net_ntk {v} but the dense reference {ref}"
    return None


def _judge_hessian(H):
    if H.ndim != 2 or H.shape[0] != H.shape[1]:
        return f"shape {H.shape}"
    if _finite(H) and not np.array_equal(H, H.T):
        return "not symmetric"
    return None


def _round_trip(r):
    """A result that ``save`` refuses or that does not load back bit for bit is a
    finding (the file invariants must hold for every truthful result)."""
    import shutil
    import tempfile

    from test_fuzz_files import same

    if not hasattr(r, "save"):
        return None
    d = tempfile.mkdtemp()
    try:
        back = fg.load(r.save(os.path.join(d, "r")))
    except (VE, TE) as exc:
        return f"save/load refused it: {str(exc)[:200]}"
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return None if same(r, back) else "did not load back bit for bit"


def _judge_any(r):
    if r is None:
        return None
    if isinstance(r, ch.ChainRun):
        return _judge_run(r) or _round_trip(r)
    if isinstance(r, fn.NetRun):
        return _judge_run(r)
    if isinstance(r, (fn.NetSweepResult, ch.ChainSweepResult)):
        return _judge_grid(r)
    if hasattr(r, "lr_max"):
        return None if np.isfinite(r.lr_max) and r.lr_max > 0 else f"lr_max {r.lr_max}"
    if hasattr(r, "estimate"):
        return _judge_scalar(r.estimate)
    if isinstance(r, np.ndarray) and r.ndim == 2 and r.shape[0] == r.shape[1] > 1:
        return _judge_hessian(r)
    if isinstance(r, (float, np.floating, np.ndarray)):
        return _judge_scalar(r)
    return None


# ------------------------------------------------------------------------ the cases
CASES = []  # (area, label, func name, callable, args, kwargs, expect, names, judge)
_CUR = {}


def case(area, func, args, kw=None, expect="either", names=(), judge=None, label=None,
         data=None):
    """``expect``: "error" (a fastgd error naming one of ``names``), "result" (a truthful
    result) or "either"."""
    kw = dict(kw or {})
    name = func.__name__
    label = label or f"{name}({', '.join(k + '=' + _short(v) for k, v in kw.items())})"
    CASES.append((area, label, name, func, tuple(args), kw, expect, tuple(names),
                  judge or _judge_any, data))


def _short(v):
    if isinstance(v, np.ndarray):
        return f"array{v.shape}" + ("ro" if not v.flags.writeable else "")
    r = repr(v)
    return r if len(r) < 24 else r[:21] + "..."


def _net_cases():
    A = "net"
    big_lr = np.geomspace(1e-3, 1.0, 256)
    # the examples: out-of-reach sizes refused or run in reach
    case(A, fn.net_gd, (X, Y, 0.1, 1), dict(width=10**6), names=("width", "steps"))
    case(A, fn.net_gd, (X, Y, 0.1, 1), dict(width=10**7), names=("width", "steps"))
    case(A, fn.net_sgd, (X, Y, 0.1, 1), dict(width=10**6), names=("width", "epochs"))
    case(A, fn.net_sweep, (X, Y, big_lr, 10), dict(width=20000),
         names=("width", "lr", "steps"))
    case(A, fn.net_sweep, (X, Y, big_lr, 10), dict(width=[20000, 30000]),
         names=("width", "lr", "steps"))
    case(A, fn.net_gd, (X, Y, 0.1, 5), dict(width=2000, sharpness_iters=3000),
         names=("sharpness_iters", "width", "steps"))
    case(A, fn.net_gd, (X, Y, 0.1, 50), dict(width=200, sharpness_every=1,
                                               sharpness_iters=3000),
         names=("sharpness_iters", "sharpness_every", "width", "steps"))
    case(A, fn.net_sweep, (X, Y, 0.1, 5), dict(width=4, seeds=10**6),
         names=("seeds", "steps"))
    case(A, fn.net_sweep, (X, Y, np.geomspace(1e-3, 1, 10**6), 5), dict(width=4),
         names=("lr", "steps"))
    case(A, fn.net_sweep, (X, Y, 0.1, 10**6), dict(width=4), names=("steps",))
    case(A, fn.net_gd, (X, Y, 0.1, 10**8), dict(width=4), names=("steps",))
    case(A, fn.net_sgd, (X, Y, 0.1, 10**7), dict(width=4), names=("epochs",))
    case(A, fn.net_gd, (X, Y, 0.1, 10**5), dict(width=4, record=True),
         names=("steps", "record", "record_every"))
    case(A, fn.net_gd, (XBIG, YBIG, 0.1, 1), dict(width=8), names=("X", "steps"))
    case(A, fn.net_gd, (XBIG[:20000], YBIG[:20000], 0.1, 1), dict(width=8),
         names=("X", "steps"))
    case(A, fn.net_sweep, (XBIG[:20000], YBIG[:20000], [0.1, 1.0], 2), dict(width=8),
         names=("X", "steps"))
    case(A, fn.net_sweep, (XBIG[:20000], YBIG[:20000], [1.0, 2.0], 2),
         dict(width=8, lr_unit="lambda0"), names=("X", "steps"))
    t8 = fn.net_init(8, 1, seed=0)
    case(A, fn.net_ntk, (t8, XBIG[:8000], YBIG[:8000]), names=("X",))
    case(A, fn.net_ntk, (t8, XBIG, YBIG), names=("X",))
    case(A, fn.net_sharpness, (t8, XBIG[:20000], YBIG[:20000]), names=("X", "iters"))
    case(A, fn.net_sharpness, (fn.net_init(2000, 2), X, Y), dict(iters=10**5),
         names=("iters", "theta"))
    case(A, fn.net_sharpness, (fn.net_init(10**5, 2), X, Y), names=("iters", "theta"))
    case(A, fn.net_hessian, (fn.net_init(3000, 2), X, Y), names=("theta",))
    case(A, fn.net_hessian, (fn.net_init(10**5, 2), X, Y), names=("theta",))
    case(A, fn.net_hessian, (fn.net_init(40, 2), X, Y), expect="result")
    case(A, fn.net_hvp, (fn.net_init(10**6, 2), np.ones(4 * 10**6), X, Y),
         names=("theta", "v"))
    case(A, fn.online_sharpness, (TH, X, Y), dict(presentations=10**7),
         names=("presentations",))
    case(A, fn.online_sharpness, (TH, X, Y), dict(presentations=300, window=100),
         expect="result")
    case(A, fn.net_init, (10**7, 10**7), names=("width", "d"))
    case(A, fn.net_init, (10**7, 100), names=("width", "d"))
    case(A, fn.net_init, (5, 3), expect="result")
    # status truth over initial scales (the false CONVERGED of scale=1e200)
    for sc in (1e-3, 1.0, 30.0, 1e50, 1e100, 1e155, 1e200):
        for act in ("tanh", "relu", "identity"):
            for param in ("ntk", "standard"):
                kw = dict(width=8, scale=sc, activation=act, param=param)
                case(A, fn.net_gd, (X, Y, 0.5, 20), kw, expect="result")
                case(A, fn.net_sgd, (X, Y, 0.5, 5), kw, expect="result")
            case(A, fn.net_sweep, (X, Y, [0.05, 0.5, 5.0], 20),
                 dict(width=[4, 8], scale=sc, activation=act, bias=True), expect="result")
    for opt in ("adam", "rmsprop", "adagrad"):
        for sc in (1.0, 1e100, 1e200):
            case(A, fn.net_gd, (X, Y, 0.01, 20), dict(width=6, scale=sc, optimizer=opt),
                 expect="result")
            case(A, fn.net_sgd, (X, Y, 0.01, 3), dict(width=6, scale=sc, optimizer=opt),
                 expect="result")
        case(A, fn.net_gd, (X, Y, 0.01, 20), dict(width=6, optimizer=opt, warmup=5,
                                                    schedule="cosine", decay_steps=10,
                                                    decay_factor=0.1), expect="result")
        case(A, fn.net_gd, (X, Y, 0.01, 20), dict(width=6, optimizer=opt,
                                                    freeze_preconditioner=5),
             expect="result")
        case(A, fn.net_sweep, (X, Y, [0.01, 0.1], 10), dict(width=4, optimizer=opt),
             expect="result")
    # theta0 magnitudes
    for mag in (1e-300, 1e-5, 1e10, 1e100, 1e140):
        case(A, fn.net_gd, (X, Y, 0.1, 10), dict(theta0=TH * mag), expect="either",
             names=("theta0",))
        case(A, fn.net_ntk, (TH * mag, X, Y), expect="either", names=("theta",),
             judge=_judge_ntk)
        case(A, fn.net_sharpness, (TH * mag, X, Y), expect="either", names=("theta",))
        case(A, fn.net_hvp, (TH * mag, TH, X, Y), expect="either", names=("theta",))
    # inputs near the overflow / underflow
    for xs in (1e-160, 1e-300, 1e100, 1e140):
        case(A, fn.net_gd, (X * xs, Y, 0.1, 10), dict(width=4), names=("X",))
        case(A, fn.net_sweep, (X * xs, Y, [1.0, 2.0], 10), dict(width=4, lr_unit="lambda0"),
             names=("X", "lr_unit", "lr"))
        case(A, fn.net_ntk, (TH, X * xs, Y), names=("X",), judge=_judge_ntk)
    # bad values, through the real path
    bad = {"lr": [0.0, -1.0, np.nan, np.inf, "a", None, [0.1]],
           "steps": [-1, 2.5, "3", None, 2**70, np.inf],
           "width": [0, -1, 2.5, "8", 10**8, [4]],
           "scale": [-1.0, np.nan, np.inf, "x"],
           "activation": ["sigmoid", 1, None],
           "param": ["mup", None],
           "bias": ["False", 1],
           "momentum": [1.0, -0.1, np.nan],
           "tol": [-1.0, np.nan],
           "blowup": [0.5, np.nan],
           "sharpness_every": [-1, 1.5],
           "sharpness_iters": [0, 10**6, 2.5],
           "record_every": [-1, "2"],
           "gtol": [-1.0, np.inf],
           "optimizer": ["sgd2", None],
           "betas": [(1.0, 0.9), (0.9,), "ab", (np.nan, 0.9)],
           "eps": [-1.0, np.nan],
           "warmup": [-1, 2.5],
           "theta0": [[1.0, 2.0], np.full(12, np.nan), "x", np.ones((3, 4))]}
    for arg, values in bad.items():
        for v in values:
            kw = dict(width=3)
            if arg == "theta0":
                kw = {}
            args = [X, Y, 0.1, 5]
            if arg in ("lr", "steps"):
                args[2 if arg == "lr" else 3] = v
            else:
                kw[arg] = v
            case(A, fn.net_gd, tuple(args), kw, expect="error", names=(arg,))
    for arg, values in {"seeds": [0, -1, [], [1.5], 10**8], "lr_unit": ["ntk", 1],
                        "method": ["adam", None], "batch_size": [0, 100],
                        "sharpness": ["yes"], "threads": [0, 10**4]}.items():
        for v in values:
            case(A, fn.net_sweep, (X, Y, [0.1], 5), {"width": 3, arg: v}, expect="error",
                 names=(arg,))
    for arg, values in {"X": [np.ones((8, 0)), X[:, :1].T, np.full((8, 2), np.nan),
                              X.astype(complex), X * 1e200],
                        "y": [Y[:-1], np.full(8, np.inf), Y * 1e200]}.items():
        for v in values:
            kw = {"X": X, "y": Y, arg: v}
            # a transposed X: its rows or y's length is at fault
            nm = (arg, "y") if arg == "X" else (arg,)
            case(A, fn.net_gd, (kw["X"], kw["y"], 0.1, 5), dict(width=3), expect="error",
                 names=nm)
            case(A, fn.net_ntk, (TH, kw["X"], kw["y"]), expect="error", names=nm)
    for v in (np.ones(11), np.ones(12) * np.nan, "v", np.ones((12, 1))):
        case(A, fn.net_hvp, (TH, v, X, Y), expect="error", names=("v",))
    for arg, values in {"presentations": [0, -1, 2.5], "leak": [0.0, 1.0, np.nan],
                        "alpha": [0.0, -1.0], "window": [0, 10**9],
                        "order": ["random"], "seed": [-1]}.items():
        for v in values:
            case(A, fn.online_sharpness, (TH, X, Y),
                 {"presentations": 200, "window": 100, arg: v},
                 expect="error", names=(arg,))
    for v in (0, 10**6, 1.5):
        case(A, fn.net_sharpness, (TH, X, Y), dict(iters=v), expect="error",
             names=("iters",))


def _chain_cases():
    A = "chain"
    tiny = dict(x=[1e-200, 2e-200], y=[1.0, 2.0])
    huge = dict(x=[1e200, 2e200], y=[1.0, 2.0])
    under = dict(x=[1e-160, 3e-160], y=[1.0, 1e10])
    for kw in (tiny, huge, under, dict(x=1e-200, y=1.0), dict(x=[1e-300, 1.0], y=[1.0, 1.0])):
        for func, args in ((ch.chain_gd, ([0.5, 0.5], 0.1, 50)),
                           (ch.chain_sgd, ([0.5, 0.5], 0.1, 5)),
                           (ch.chain_sweep, ([[0.5, 0.5]], [0.1, 0.2], 50)),
                           (ch.chain_loss, ([0.5, 0.5],)), (ch.chain_grad, ([0.5, 0.5],)),
                           (ch.chain_hessian, ([0.5, 0.5],)),
                           (ch.chain_sharpness, ([0.5, 0.5],)),
                           (ch.chain_ntk, ([0.5, 0.5],)), (ch.chain_minima, (2,))):
            case(A, func, args, kw, names=("x", "y"))
    # depths and grids out of reach
    for L in (10**3, 10**4, 10**5, 10**7):
        w = np.full(L, 1.0)
        case(A, ch.chain_gd, (w, 0.01, 10), names=("w0", "steps"))
        case(A, ch.chain_sgd, (w, 0.01, 2), names=("w0", "epochs"))
        case(A, ch.chain_hessian, (w,), names=("w",))
        case(A, ch.chain_sharpness, (w,), names=("w",))
        case(A, ch.chain_ntk, (w,), names=("w",))
        case(A, ch.chain_loss, (w,), names=("w",))
        case(A, ch.chain_sweep, (w[None], [0.01], 10), names=("inits", "steps"))
    case(A, ch.chain_minima, (10**9,), names=("depth",))
    case(A, ch.chain_minima, (10**18,), names=("depth",))
    case(A, ch.chain_sweep, (np.full((10**6, 2), 0.5), np.geomspace(0.01, 1, 1000), 10),
         names=("inits", "lr", "steps"))
    case(A, ch.chain_sweep, (np.full((1000, 2), 0.5), [0.1], 10**7),
         names=("inits", "steps"))
    case(A, ch.chain_gd, ([0.5, 0.5], 0.1, 10**9), names=("steps",))
    case(A, ch.chain_gd, ([0.5, 0.5], 0.1, 10**6), dict(record=True),
         names=("steps", "record"))
    case(A, ch.chain_sgd, ([0.5, 0.5], 0.1, 100, np.ones(10**6), np.ones(10**6)),
         names=("epochs", "x"))
    # magnitudes of the weights and status truth
    for mag in (1e-200, 1e-3, 1.0, 3.0, 1e50, 1e100, 1e160, 1e300):
        for L in (2, 3, 5):
            w0 = np.full(L, mag)
            case(A, ch.chain_gd, (w0, 0.1, 50), names=("w0",))
            case(A, ch.chain_sgd, (w0, 0.1, 5, [1.0, 2.0], [1.0, 3.0]), names=("w0",))
        case(A, ch.chain_sweep, (np.full((3, 2), mag), [0.01, 0.1, 1.0], 50),
             names=("inits",))
        case(A, ch.chain_sharpness, (np.full(3, mag),), names=("w",))
    for arg, values in {"lr": [0.0, -1.0, np.nan, "a"], "steps": [-1, 1.5, None],
                        "tol": [-1.0], "blowup": [0.5], "loss_scale": [0.0, np.inf],
                        "record": ["no"], "w0": [[1.0], "ab", [np.nan, 1.0], [[1.0, 2.0]]]}.items():
        for v in values:
            kw = dict(w0=[0.5, 0.5], lr=0.1, steps=10)
            kw[arg] = v
            case(A, ch.chain_gd, (), kw, expect="error", names=(arg,))
    for arg, values in {"batch_size": [0, 5], "order": ["x"], "seed": [-1]}.items():
        for v in values:
            case(A, ch.chain_sgd, ([0.5, 0.5], 0.1, 3, [1.0, 2.0], [1.0, 2.0]), {arg: v},
                 expect="error", names=(arg,))


_CHAIN_FUNCS = (  # (function, arguments before x, y; names a bad sample scale may blame)
    (ch.chain_gd, ([0.5, 0.5], 0.1, 30)), (ch.chain_sgd, ([0.5, 0.5], 0.1, 3)),
    (ch.chain_sweep, ([[0.5, 0.5], [1.0, 2.0]], [0.05, 0.5], 30)),
    (ch.chain_loss, ([0.5, 0.5],)), (ch.chain_grad, ([0.5, 0.5],)),
    (ch.chain_hessian, ([0.5, 0.5],)), (ch.chain_sharpness, ([0.5, 0.5],)),
    (ch.chain_ntk, ([0.5, 0.5],)), (ch.chain_minima, (2,)))


def _chain_scale_cases(A):
    """Samples and loss scales from 1e-300 to 1e300 (and bad ones) at every entry point."""
    for func, args in _CHAIN_FUNCS:
        for mag in (1e-300, 1e-160, 1e160, 1e300):
            case(A, func, args + ([mag, 2 * mag], [1.0, 2.0]), names=("x",),
                 label=f"{func.__name__}(x={mag:g})")
            case(A, func, args + ([1.0, 2.0], [mag, -mag]), names=("y",),
                 label=f"{func.__name__}(y={mag:g})")
        case(A, func, args + ([1.0, 2.0], [1e150, 1e150]), dict(loss_scale=1e300),
             names=("loss_scale",), label=f"{func.__name__}(y=1e150, loss_scale=1e300)")
        for c in (1e-300, 1e300, -1.0, np.nan, "x", True):
            case(A, func, args, dict(loss_scale=c), names=("loss_scale",),
                 expect="error" if c in (-1.0, "x", True) or c != c else "either")
        for x, y in (([], []), ([1.0, 2.0], [1.0]), ([np.nan, 1.0], [1.0, 1.0]),
                     ([1.0, 2.0], [np.inf, 1.0]), ([[1.0, 2.0]], [[1.0, 2.0]]),
                     (["a", "b"], [1.0, 2.0]), (None, 1.0), (0.0, 1.0)):
            case(A, func, args + (x, y), expect="error", names=("x", "y"),
                 label=f"{func.__name__}(x={_short(x)}, y={_short(y)})")


def _chain_weight_cases(A):
    """Weights of the model functions: empty, depth 1, non-finite, complex, None, 2-D."""
    for func in (ch.chain_loss, ch.chain_grad, ch.chain_hessian, ch.chain_sharpness,
                 ch.chain_ntk):
        for w in ([], [1.0], [np.inf, 1.0], [np.nan, 1.0], [1.0 + 1j, 1.0], None,
                  [[1e300, 1e300], [1e-300, 1e-300]], [1e308, 1e308, 1e308]):
            bad = not isinstance(w, list) or len(w) < 2 or (
                np.size(w) == 2 and not np.isfinite(np.asarray(w, dtype=complex)).all()) \
                or isinstance(w[0], complex)
            case(A, func, (w,), expect="error" if bad else "either", names=("w",),
                 label=f"{func.__name__}(w={_short(w)})")
    for depth in (0, 1, 2.5, -3, True, "2", None, np.int64(3), 2**40):
        case(A, ch.chain_minima, (depth,), names=("depth",),
             expect="either" if depth in (2**40,) or type(depth) is np.int64 else "error",
             label=f"chain_minima(depth={_short(depth)})")


def _chain_run_cases(A):
    """chain_gd / chain_sgd: rates, budgets, tolerances and thresholds at the extremes."""
    for func, budget in ((ch.chain_gd, "steps"), (ch.chain_sgd, "epochs")):
        extra = () if func is ch.chain_gd else ([1.0, 2.0], [1.0, 3.0])
        for lr in (1e-320, 1e-300, 1e300, np.inf, True, np.float32(0.1), 1j, [0.1]):
            bad = lr is True or isinstance(lr, (complex, list)) or lr == np.inf
            case(A, func, ([0.5, 0.5], lr, 5) + extra, expect="error" if bad else "either",
                 names=("lr",), label=f"{func.__name__}(lr={_short(lr)})")
        for n in (0, True, np.int64(5), 2**63, np.inf, "5"):
            bad = n is True or n == np.inf or n == "5" or n == 2**63
            case(A, func, ([0.5, 0.5], 0.1, n) + extra, expect="error" if bad else "either",
                 names=(budget,), label=f"{func.__name__}({budget}={_short(n)})")
        for arg, vals in (("tol", (np.nan, np.inf, 1e300, 1e-320, "x", 0.0)),
                          ("blowup", (1.0, np.inf, np.nan, 1e308, -1.0, "x"))):
            for v in vals:
                bad = isinstance(v, str) or v != v or v < 0 or (arg == "tol" and v == np.inf)
                case(A, func, ([0.5, 0.5], 0.1, 20) + extra, {arg: v}, names=(arg,),
                     expect="error" if bad else "either")
        for w0 in ([1e300, -1e300], [1e-300, 1e300], [0.0, 0.0], [-0.5, 0.5],
                   np.full(40, 1.2), [1e154, 1e154]):
            case(A, func, (w0, 0.1, 20) + extra, names=("w0",),
                 label=f"{func.__name__}(w0={_short(w0)})")
        case(A, func, ([0.5, 0.5], 0.1, 50) + extra, dict(record=True), expect="result")
        case(A, func, ([3.0, 3.0], 1.0, 50) + extra, dict(record=True), expect="result")
    for arg, vals in (("batch_size", (True, 1.5, 10**18, np.int64(2), None)),
                      ("order", (None, 3, "SHUFFLE", "")), ("seed", (2**64, 1.5, "1", None))):
        for v in vals:
            ok = type(v) is np.int64
            case(A, ch.chain_sgd, ([0.5, 0.5], 0.1, 3, [1.0, 2.0, 3.0], [1.0, 2.0, 2.5]),
                 {arg: v}, expect="either" if ok else "error", names=(arg,))


def _chain_sweep_cases(A):
    """chain_sweep: inits, rate grids, budgets, SGD options, engines and checkpoints."""
    base = ([[0.5, 0.5], [1.0, 2.0]], [0.05, 0.5], 20)
    for inits in ([0.5, 0.5], np.zeros((0, 2)), [[0.5], [1.0]], np.ones((2, 2, 2)),
                  [[np.nan, 1.0]], [[np.inf, 1.0]], [["a", "b"]], [[0.5, 0.5], [1.0]],
                  [[1e300, 1e300], [1e-300, 1e-300]], np.full((3, 50), 1.01)):
        ok = isinstance(inits, list) and len(inits) == 2 and not isinstance(inits[0], list) \
            or (isinstance(inits, np.ndarray) and inits.shape == (3, 50)) \
            or (isinstance(inits, list) and inits[0] == [1e300, 1e300])
        case(A, ch.chain_sweep, (inits, [0.05, 0.5], 20), names=("inits",),
             expect="either" if ok else "error", label=f"chain_sweep(inits={_short(inits)})")
    for lr in ([], [[0.1]], [0.1, np.nan], [1e-320], [1e300], np.geomspace(1e-300, 1e300, 7),
               ["a"], 0.1, [-0.1, 0.1], [0.5, 0.05, 0.5], np.ones(10**7), [np.inf]):
        ok = isinstance(lr, float) or (isinstance(lr, np.ndarray) and lr.size == 7) or (
            isinstance(lr, list) and len(lr) >= 1 and all(
                isinstance(v, float) and 0 < v < np.inf for v in lr))
        case(A, ch.chain_sweep, (base[0], lr, 20), names=("lr",),
             expect="either" if ok else "error", label=f"chain_sweep(lr={_short(lr)})")
    for n in (0, -1, 1.5, None, True, 10**12):
        case(A, ch.chain_sweep, base[:2] + (n,), names=("steps",),
             expect="either" if n == 0 and n is not True else "error",
             label=f"chain_sweep(steps={_short(n)})")
    sgd = dict(method="sgd", x=[1.0, 2.0, 3.0], y=[1.0, 2.0, 2.5])
    for arg, v in (("method", "adam"), ("method", None), ("method", "SGD"),
                   ("batch_size", 0), ("batch_size", 4), ("batch_size", 3),
                   ("order", "replacement"), ("order", "x"), ("seed", -1), ("seed", 2**63),
                   ("tol", np.nan), ("tol", 1e300), ("blowup", 0.5), ("blowup", np.inf),
                   ("threads", 0), ("threads", -1), ("threads", 1.5), ("threads", 10**6),
                   ("progress", "yes"), ("progress", False), ("backend", "x"),
                   ("backend", None), ("engine", "x"), ("engine", 5), ("checkpoint", 5),
                   ("checkpoint", ""), ("checkpoint", "/proc/fastgd-fuzz/ck"),
                   ("checkpoint", "/dev/null"), ("checkpoint", "a\0b")):
        kw = dict(sgd, **{arg: v}) if arg in ("batch_size", "order", "seed") else {arg: v}
        ok = (arg, v) in (("batch_size", 3), ("order", "replacement"), ("tol", 1e300),
                          ("blowup", np.inf), ("progress", False))
        case(A, ch.chain_sweep, base, kw, names=(arg,), expect="either" if ok else "error")


def _linear_cases():
    A = "linear"
    Xl, yl = fg.lecture_data()
    for rt in (1e-16, 3e-16, 1e-15, 1e-17, 1e-300):
        case(A, fg.critical_lr, (Xl, yl), dict(check=True, rtol=rt), names=("rtol",))
    case(A, fg.critical_lr, (Xl * 1e-300, yl), names=("X",))
    case(A, fg.critical_lr, (Xl * 1e-160, yl), names=("X",))
    case(A, fg.critical_lr, (Xl, yl), dict(check=True, lr_range=(1e-300, 1e-299)),
         names=("lr_range",))
    case(A, fg.critical_lr, (Xl[:20], yl[:20]), dict(check=True, lr_range=(1e-300, 1e-299)),
         names=("lr_range",))
    case(A, fg.critical_lr, (Xl, yl), dict(check=True, lr_range=(1e-3, 1e300)),
         names=("lr_range", "steps"))  # the work refusal names steps (tests/test_fuzz.py)
    case(A, fg.sweep, (), dict(method="gd", lr=[0.5, 1.0], data=[(Xl * 1e-160, yl)],
                               lr_unit="eta_max", steps=10), names=("data", "lr_unit"))
    case(A, fg.sweep, (), dict(method="gd", lr=[0.5, 1.0], data=[(Xl * 1e-150, yl)],
                               lr_unit="eta_max", steps=10), names=("data", "lr_unit"))
    # read-only inputs: no new compile (a compile would take far over the time limit)
    case(A, fg.gd, (_ro(Xl), _ro(yl), 0.5, 20), expect="result", label="gd(read-only X, y)")
    case(A, fg.sgd, (_ro(Xl), _ro(yl), 0.05, 2), expect="result",
         label="sgd(read-only X, y)")
    case(A, fn.net_gd, (_ro(X), _ro(Y), 0.1, 5), dict(width=3, theta0=None), expect="result",
         label="net_gd(read-only X, y)")
    case(A, fn.net_gd, (X, Y, 0.1, 5), dict(theta0=_ro(TH)), expect="result",
         label="net_gd(read-only theta0)")
    case(A, fn.net_sweep, (_ro(X), _ro(Y), _ro([0.1, 0.2]), 5), dict(width=3),
         expect="result", label="net_sweep(read-only X, y, lr)")
    case(A, fn.net_hvp, (_ro(TH), _ro(TH), _ro(X), _ro(Y)), expect="result",
         label="net_hvp(read-only)")
    case(A, fn.net_sharpness, (_ro(TH), _ro(X), _ro(Y)), expect="result",
         label="net_sharpness(read-only)")
    case(A, ch.chain_gd, (_ro([0.5, 0.5]), 0.1, 20, _ro([1.0, 2.0]), _ro([1.0, 2.0])),
         expect="result", label="chain_gd(read-only)")
    case(A, ch.chain_sweep, (_ro([[0.5, 0.5]]), _ro([0.1]), 20), expect="result",
         label="chain_sweep(read-only)")


_net_cases()
_chain_cases()
for _part in (_chain_scale_cases, _chain_weight_cases, _chain_run_cases, _chain_sweep_cases):
    _part("chain")
_linear_cases()


# ------------------------------------------------------------------- the harness
def _address_space():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0  # pragma: no cover


def _child(c, wfd, cap):
    area, label, name, func, args, kw, expect, names, judge, data = c
    try:
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    except (ValueError, OSError):  # pragma: no cover
        pass
    os.environ.update(ENV)
    from fastgd.kernels import threads as kt

    kt._POOL, kt._POOL_SIZE = None, 0  # the parent's pool threads do not exist here
    try:  # what the references need (NetRun, net_ntk)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if name == "net_ntk":
                _CUR.update(theta=np.asarray(args[0], dtype=float),
                            X=np.asarray(args[1], dtype=float),
                            y=np.asarray(args[2], dtype=float), kw=kw)
            elif name in ("net_gd", "net_sgd"):
                _CUR.update(X=np.asarray(args[0], dtype=float),
                            y=np.asarray(args[1], dtype=float))
    except Exception:  # noqa: BLE001 - bad data: the call itself reports it
        pass
    warn = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = func(*args, **kw)
            verdict = judge(res)
            warn = [str(w.message)[:200] for w in caught
                    if issubclass(w.category, RuntimeWarning)]
        out = ("result", verdict, warn)
    except (VE, TE) as exc:
        out = ("error", str(exc)[:400], warn)
    except MemoryError as exc:
        out = ("memory", f"MemoryError: {exc}"[:300], warn)
    except BaseException as exc:  # noqa: BLE001 - every other exception is a finding
        out = ("raw", f"{type(exc).__name__}: {exc}"[:300], warn)
    os.write(wfd, pickle.dumps(out))
    os._exit(0)


def _start(c, cap):
    """Fork a child running case ``c``: (pid, read end of its pipe, start time)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(r)
        try:
            _child(c, w, cap)
        finally:
            os._exit(3)
    os.close(w)
    return pid, r, time.monotonic()


def _poll(job, limit):
    """The child's outcome once it has ended (killed past ``limit`` seconds), else None."""
    pid, r, t0 = job
    done, status = os.waitpid(pid, os.WNOHANG)
    if not done:
        if time.monotonic() - t0 <= limit:
            return None
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(r)
        return ("time", f"killed after {limit:g} s", []), time.monotonic() - t0
    chunks = []
    while True:
        b = os.read(r, 1 << 16)
        if not b:
            break
        chunks.append(b)
    os.close(r)
    if os.WIFSIGNALED(status) or not chunks:
        return ("crash", f"child ended by {status}", []), time.monotonic() - t0
    return pickle.loads(b"".join(chunks)), time.monotonic() - t0


def _run_many(cases, cap, limit, jobs):
    """Outcomes of ``cases`` (in order), ``jobs`` children at a time."""
    outs, running, todo = [None] * len(cases), {}, list(range(len(cases)))
    while todo or running:
        while todo and len(running) < jobs:
            i = todo.pop(0)
            running[i] = _start(cases[i], cap)
        for i in list(running):
            got = _poll(running[i], limit)
            if got is not None:
                outs[i] = got
                del running[i]
        time.sleep(0.001)
    return outs


def _classify(c, out):
    area, label, name, func, args, kw, expect, names, judge, data = c
    kind, detail, warn = out
    if kind in ("time", "memory", "crash", "raw"):
        return {"time": "over time", "memory": "over memory", "crash": "crash",
                "raw": "crash"}[kind]
    if warn:
        return "warning"
    if kind == "error":
        ok = detail.startswith(f"{name}:") and (not names or any(
            f"'{n}'" in detail for n in names))
        return "clean" if ok and expect != "result" else "unclear"
    if detail is not None or expect == "error":
        return "wrong accept"
    return "clean"


KINDS = ("clean", "crash", "wrong accept", "unclear", "over time", "over memory", "warning")


def warm_up():
    """Load every kernel signature the cases use into this process (children inherit
    them: a child never compiles or reads the disk cache)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for act in ("tanh", "relu", "identity"):  # one kernel variant per activation
            for meth in (fn.net_gd, fn.net_sgd):
                for b in (False, True):
                    meth(X, Y, 0.1, 2, width=3, bias=b, activation=act)
                    meth(X, Y, 0.01, 2, width=3, bias=b, optimizer="adam", activation=act)
            fn.net_sweep(X, Y, np.geomspace(0.01, 1.0, 40), 2, width=[3, 4], bias=True,
                         activation=act)
            fn.net_sweep(X, Y, [0.1, 0.2], 2, width=3, method="sgd", activation=act)
            fn.net_sweep(X, Y, [0.01, 0.1], 2, width=3, optimizer="adam", activation=act)
        fn.net_hvp(TH, TH, X, Y)
        fn.net_hessian(TH, X, Y)
        fn.net_sharpness(TH, X, Y)
        ch.chain_gd([0.5, 0.5], 0.1, 2)
        ch.chain_sgd([0.5, 0.5], 0.1, 2, [1.0, 2.0], [1.0, 2.0])
        ch.chain_sweep([[0.5, 0.5]], [0.1, 0.2], 2)
        Xl, yl = fg.lecture_data()
        fg.gd(Xl, yl, 0.5, 5)
        fg.sgd(Xl, yl, 0.05, 1)
        fg.critical_lr(Xl, yl, check=True, rtol=1e-3)
        fg.sweep(method="gd", lr=[0.5, 1.0], data=[(Xl, yl)], lr_unit="eta_max", steps=5)


def run_all(cases=None, verbose=False, jobs=2):
    """Run the cases, ``jobs`` children at a time (a call that timed out runs once more,
    alone, so that a loaded machine does not fail a test); returns (counts per area and
    kind, failures)."""
    cases = CASES if cases is None else cases
    warm_up()
    cap = _address_space() + HEADROOM
    outs = _run_many(cases, cap, TIME_LIMIT, jobs)
    counts, failures = {}, []
    for c, (out, sec) in zip(cases, outs, strict=True):
        if out[0] == "time":
            out2, sec = _run_many([c], cap, TIME_LIMIT, 1)[0]
            if out2[0] != "time":
                out = out2
        kind = _classify(c, out)
        area = c[0]
        row = counts.setdefault(area, dict.fromkeys(("calls",) + KINDS, 0))
        row["calls"] += 1
        row[kind] += 1
        if kind != "clean":
            failures.append(f"[{area}] {c[1]}: {kind}: {out[1]} {out[2][:1]}")
        if verbose:
            print(f"{sec:6.2f}s {kind:12s} {c[1]}", flush=True)
    return counts, failures


def _table(counts):
    head = f"{'area':8s} {'calls':>6s} " + " ".join(f"{k:>12s}" for k in KINDS)
    rows = [head] + [f"{a:8s} {r['calls']:6d} " + " ".join(f"{r[k]:12d}" for k in KINDS)
                     for a, r in counts.items()]
    return "\n".join(rows)


def test_fuzz_table_size():
    assert len(CASES) >= 300


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork, /proc, RLIMIT_AS")
def test_fuzz_network_and_chain_calls():
    counts, failures = run_all()
    print("\n" + _table(counts))
    assert not failures, f"{len(failures)} calls not clean:\n" + "\n".join(failures)


if __name__ == "__main__":
    cnt, fails = run_all(verbose="-v" in sys.argv)
    print(_table(cnt))
    print("\n".join(fails))


def _specialisations():
    """Compiled signatures of every Numba kernel loaded so far."""
    from numba.core.registry import CPUDispatcher

    n = 0
    for mod in list(sys.modules.values()):
        if getattr(mod, "__name__", "").startswith("fastgd."):
            for obj in vars(mod).values():
                if isinstance(obj, CPUDispatcher):
                    n += len(obj.signatures)
    return n


def test_read_only_inputs_add_no_specialisation():
    """Read-only arrays (np.memmap mode 'r', pandas copy-on-write, writeable=False) give
    the same results through the kernels already compiled for writeable ones."""
    Xl, yl = fg.lecture_data()
    calls = [
        lambda ro: fn.net_gd(ro(X), ro(Y), 0.1, 5, theta0=ro(TH)).losses,
        lambda ro: fn.net_sweep(ro(X), ro(Y), ro([0.1, 0.2]), 5, width=3).loss,
        lambda ro: fn.net_sharpness(ro(TH), ro(X), ro(Y)),
        lambda ro: fn.net_hvp(ro(TH), ro(TH), ro(X), ro(Y)),
        lambda ro: ch.chain_gd(ro([0.5, 0.5]), 0.1, 20, ro([1.0, 2.0]), ro([1.0, 2.0])).losses,
        lambda ro: ch.chain_sweep(ro([[0.5, 0.5]]), ro([0.1]), 20).loss,
        lambda ro: fg.gd(ro(Xl), ro(yl), 0.5, 20).losses,
    ]
    for call in calls:
        ref = call(lambda a: np.array(a, dtype=np.float64))
        before = _specialisations()
        got = call(_ro)
        assert _specialisations() == before
        np.testing.assert_array_equal(got, ref)
