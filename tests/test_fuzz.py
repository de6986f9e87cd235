"""Fuzz the API boundary: bad arguments for every public function raise a fastgd error
naming the function and the argument, before any kernel runs, without a warning.

A table of bad values per kind of argument (wrong type, negative, zero, NaN, inf, huge
integers, strings, None, ragged and wrong-shaped arrays, the string 'False' for a
boolean, sizes that would not fit in memory or would take absurdly long) is crossed with
the arguments of every function exported by ``fastgd``, ``fastgd.theory``,
``fastgd.chain``, ``fastgd.net``, ``fastgd.plot`` and with the CLI's subcommands; hypothesis adds
random scalars.  Every kernel is replaced by one that fails, so a call that got past
validation would fail the test, and nothing here depends on machine speed.

``N_BAD_CALLS`` is the size of the table (printed by ``test_fuzz_table_size``).
"""

from __future__ import annotations

import dataclasses
import re
import warnings

import numpy as np
import pytest

import fastgd as fg
from fastgd import chain as ch
from fastgd import cli
from fastgd import net as NN
from fastgd import plot as P
from fastgd import theory as T
from fastgd.linear import phase2 as PH2

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

VE, TE = fg.FastGDValueError, fg.FastGDTypeError
_X, _Y = fg.lecture_data()
_BIG = 2**70


def _nan(a, v=np.nan):
    a = np.array(a, dtype=float)
    a.flat[1] = v
    return a


# --------------------------------------------------------------- bad values by kind
RAGGED2 = [[1.0, 2.0], [3.0]]
BAD = {
    "bool": ["False", "yes", 1, 0, None, 1.0, [True], np.array([True, False])],
    "bool|None": ["False", "no", 1, 0.0, [True]],
    "int>=0": [-1, 2.5, "10", None, _BIG, np.nan, np.inf, True, [1], 1j],
    "int>=1": [0, -3, 1.5, "1", None, _BIG, np.nan, True, [2]],
    "int|None": [0, -3, 1.5, "1", _BIG, np.nan, True],
    "real>0": [0, 0.0, -0.1, np.nan, np.inf, -np.inf, "0.1", None, True, [0.1], 1j],
    "real>0|None": [0, -0.1, np.nan, np.inf, "0.1", True, 1j],
    "real>=0": [-1e-3, np.nan, np.inf, "x", None, True, [0.0]],
    "real": [np.nan, np.inf, -np.inf, "0", None, True, [0.0]],
    "momentum": [1.0, 1.5, -0.1, np.nan, np.inf, "0.5", None, True],
    "blowup": [0.5, 0, -1.0, np.nan, "x", None, True],
    "choice": ["nope", "", 1, None, b"gd", ["gd"]],
    "seed": [-1, 0.5, "0", _BIG, None, True, np.nan],
    "threads": [0, -1, 1000, "2", 1.5, _BIG, True],
    "rates": [[], [-0.1], [0.0], [np.nan], [np.inf], "0.1", None, [[0.1]], RAGGED2, -1.0,
              [0.1, "a"], np.array([1j])],
    "X": [RAGGED2, None, "abc", _X * 1e200, _nan(_X), _nan(_X, np.inf), _X[None],
          np.zeros((0, 2)), _X + 0j, _X.astype(object), 3.0, np.zeros((100, 0)),
          np.array(["a"] * 200).reshape(100, 2)],
    "X:H": [np.ones((5, 100_000))],  # H would be 100000 x 100000: refused by size
    "y": [_Y[:-1], np.column_stack([_Y, _Y]), _nan(_Y), None, "abc", [[1.0], [2.0, 3.0]], _Y * 1e200,
          np.append(_Y, 1.0), 1.0],
    "w0": [[0.0, 0.0, 0.0], [0.0, np.nan], "ab", [[0.0, 0.0]], [0.0, np.inf], [], None],
    "ax": [5, "ax", object(), [None]],
    "title": [5, ["t"], b"x", 1.0],
    "colors": ["red", [], [1, 2], ["not-a-colour"], 5],
}
# w0=None is valid where w0 is optional
BAD_OPT_W0 = [v for v in BAD["w0"] if v is not None]


def _bad(kind):
    return BAD[kind]


# ----------------------------------------------------------------- fixed results
def _sweep_result(n_data=2, n_lr=3, n_seed=1):
    nan = np.full(n_data, np.nan)
    return fg.SweepResult(
        method="gd", unit="step", lr=np.geomspace(0.5, 3.0, n_lr),
        seeds=np.arange(n_seed), lambda_max=np.ones(n_data), lambda_min=np.full(n_data, 0.1),
        condition=np.geomspace(1, 100, n_data),
        status=np.zeros((n_data, n_lr, n_seed), np.int8),
        final_loss=np.zeros((n_data, n_lr, n_seed)),
        steps_to_tol=np.full((n_data, n_lr, n_seed), 3),
        diverged_at=np.full((n_data, n_lr, n_seed), -1), gd_limit=np.full(n_data, 2.0),
        momentum_limit=nan, sgd_ms_limit=nan, sgd_as_limit=nan)


def _chain_result():
    kw = {}
    shape = (2, 2)
    for f in dataclasses.fields(ch.ChainSweepResult):
        kw[f.name] = np.zeros(shape)
    kw.update(inits=np.array([[0.5, 0.5], [1.0, 0.2]]), lr=np.array([0.1, 0.5]),
              status=np.ones(shape, np.int8), w=np.ones(shape + (2,)),
              steps_to_tol=np.ones(shape, np.int64), diverged_at=np.full(shape, -1),
              lambda0=np.ones(2), ntk0=np.ones(2), loss0=np.ones(2), product_star=1.0,
              loss_star=0.0, depth=2, steps=10, loss_scale=1.0, tol=1e-10, blowup=1e12,
              method="gd", seconds=0.0, threads=1)
    return ch.ChainSweepResult(**{k: v for k, v in kw.items()
                                  if k in {f.name for f in dataclasses.fields(ch.ChainSweepResult)}})


def _net_result():
    shape = (1, 1, 1, 2)
    return NN.NetSweepResult(
        lr=np.array([0.1, 1.0]), width=np.array([8]), scale=np.array([1.0]),
        seeds=np.array([0]), status=np.ones(shape, np.int8), loss=np.zeros(shape),
        max_loss_ratio=np.ones(shape), sharpness=np.ones(shape),
        steps_to_tol=np.ones(shape, np.int64), diverged_at=np.full(shape, -1),
        lambda0=np.ones(shape[:3]), ntk0=np.ones(shape[:3]), loss0=np.ones(shape[:3]),
        sharpness_curve=None, activation="tanh", param="ntk", bias=False, method="gd", d=2,
        steps=10, sharpness_every=0, momentum=0.0, tol=1e-8, blowup=1e12, seconds=0.0,
        threads=1)


_PHASE2 = PH2.PhaseTable("linear", "gd", "beta1", np.zeros(2), np.array([1.0, 2.0]),
                         np.array([[1, 2], [1, 1]], dtype=np.int8), np.zeros((2, 2)), 10)


def _net_run():
    return NN.NetRun(
        status=fg.Status.BOUNDED, theta=np.zeros(12), loss=0.1, loss0=1.0, sharpness=1.0,
        lambda0=1.0, ntk=1.0, ntk0=1.0, max_loss_ratio=1.0, steps_to_tol=-1, diverged_at=-1,
        losses=np.linspace(1.0, 0.1, 11), sharpness_steps=np.array([0, 10]),
        sharpnesses=np.array([1.0, 1.0]), lr=0.5, momentum=0.0, width=3, d=2,
        activation="tanh", param="ntk", bias=False, method="gd", unit="step")


def _run():
    traj = T.gd_trajectory(_X, _Y, 1.5, 5)
    return fg.Run(w=traj[-1], loss=0.1, losses=np.linspace(0.5, 0.1, 6), status=fg.Status.BOUNDED,
                  diverged_at=-1, steps_to_tol=-1, trajectory=traj, lr=1.5, method="gd",
                  unit="step", excess=0.01)


_RES = _sweep_result()
_TH = np.linspace(-1.0, 1.0, 9)  # a width-3 network on the lecture's d = 2 inputs
_NETRES = _net_result()
_NETRUN = _net_run()
_SPEC = fg.spectrum(_X)
_RUN = _run()

# ------------------------------------------------------------------ the table
# (function name in messages, callable, base kwargs, [(arg, kind or list, expected names)])
S = "sweep"
TABLE = [
    ("gd", fg.gd, dict(X=_X, y=_Y, lr=0.5, steps=10), [
        ("X", "X"), ("X", "X:H"), ("y", "y"), ("lr", "real>0"), ("steps", "int>=0"),
        ("steps", [10**12]), ("w0", BAD_OPT_W0), ("momentum", "momentum"),
        ("nesterov", "bool"), ("bias", "bool"), ("record", "bool"), ("tol", "real>=0"),
        ("blowup", "blowup")]),
    ("sgd", fg.sgd, dict(X=_X, y=_Y, lr=0.1, epochs=2), [
        ("X", "X"), ("y", "y"), ("lr", "real>0"), ("epochs", "int>=0"),
        ("epochs", [10**12]), ("batch_size", "int>=1"), ("batch_size", [101]),
        ("order", "choice"), ("order", ["Cyclic"]), ("seed", "seed"), ("w0", BAD_OPT_W0),
        ("momentum", "momentum"), ("nesterov", "bool"), ("bias", "bool"),
        ("record", "bool"), ("tol", "real>=0"), ("blowup", "blowup"), ("exact", "bool")]),
    (S, fg.sweep, dict(method="gd", lr=[0.5, 1.0], condition=[1.0, 10.0], steps=10), [
        ("method", "choice"), ("lr", "rates"), ("condition", [[0.5], [np.nan], "x", [], [[1.0]]]),
        ("steps", [-1, 2.5, "10", _BIG, np.nan, np.inf, True, [1]]), ("epochs", [5]),
        ("momentum", "momentum"),
        ("nesterov", "bool"), ("bias", "bool"), ("w0", BAD_OPT_W0), ("tol", "real>=0"),
        ("blowup", "blowup"), ("n", [2, -1, 2.5, "100", 10**12, _BIG]),
        ("d", [0, 2.5, "2", _BIG]), ("fix", "choice"), ("data_seed", "seed"),
        ("curve_points", "int>=0"), ("lanes", "int|None"),
        ("lanes", [5000]), ("threads", "threads"), ("progress", "bool|None"),
        ("max_bytes", [0, -1, np.nan, "x", True]), ("almost_sure", "bool"),
        ("dtype", [None, "float16", 5, "f"]), ("backend", "choice"),
        ("engine", [5, "pool", object()]), ("exact", "bool")]),
    (S, fg.sweep, dict(method="gd", lr=[0.5], data=[(_X, _Y)], steps=10), [
        ("data", [[], "abc", 5, [(_X,)], [(_X, _Y, _Y)]], ("data", "data[0]")),
        ("data", [[(_X, _Y[:-1])]], "data[0][1]"), ("data", [[(_nan(_X), _Y)]], "data[0][0]"),
        ("data", [[(RAGGED2, [1.0, 2.0])]], "data[0][0]"),
        ("data", [[(_X * 1e200, _Y)]], "data[0][0]"),
        ("condition", [[1.0]], "data")]),
    (S, fg.sweep, dict(method="sgd", lr=[0.05], condition=[1.0], epochs=2), [
        ("epochs", [-1, 2.5, "10", _BIG, np.nan, np.inf, True, [1]]), ("steps", [5]),
        ("batch_size", "int>=1"), ("batch_size", [1000]),
        ("order", "choice"), ("seeds", [0, -1, 10**12, _BIG, "4", [], [-1], [1.5], [[1]]]),
        ("almost_sure", "bool")]),
    # grids that would not fit or would take absurdly long: refused in milliseconds
    (S, fg.sweep, dict(method="gd", lr=np.full(1000, 0.5), condition=np.ones(1000)), [
        ("steps", [10**9, 10**13]), ("curve_points", [10**7])]),
    (S, fg.sweep, dict(method="gd", lr=np.full(10**6, 0.5), steps=10), [
        ("condition", [np.ones(10**6)], ("lr", "condition"))]),
    ("critical_lr", fg.critical_lr, dict(X=_X, y=_Y), [
        ("X", "X"), ("X", "X:H"), ("y", "y"), ("method", "choice"),
        ("momentum", "momentum"), ("nesterov", "bool"), ("bias", "bool"),
        ("rtol", "real>0|None"), ("steps", [5, -1, 2.5, "x", _BIG, 10**12]),
        ("lr_range", [5.0, (1.0,), (2.0, 1.0), (0.0, 1.0), (np.nan, 1.0), "ab",
                      (1.0, 2.0, 3.0), (1.0, "x")]),
        ("threads", "threads"), ("progress", "bool|None"),
        ("max_work", [0, -1.0, np.nan, "1e9", True, 1j])]),
    ("critical_lr", fg.critical_lr, dict(X=_X, y=_Y, method="sgd"), [
        ("epochs", [-1, _BIG, 10**12, "x", 2.5]), ("seeds", [0, 10**12, _BIG, 1.5]),
        ("batch_size", "int>=1"), ("order", "choice"), ("blowup", "blowup"),
        ("max_work", [1e3], ("epochs",))]),
    # a simulation whose estimated work exceeds max_work: refused before any round
    ("critical_lr", fg.critical_lr, dict(X=_X, y=_Y, check=True), [
        ("max_work", [1e3], ("steps",))]),
    ("spectrum", fg.spectrum, dict(X=_X), [("X", "X"), ("X", "X:H"), ("bias", "bool"),
                                           ("H", [np.eye(2)], ("X",))]),
    ("spectrum", fg.spectrum, dict(H=np.eye(2)), [
        ("H", [RAGGED2, "abc", np.ones((2, 3)), np.zeros((0, 0)), _nan(np.eye(2)),
               np.array([[1.0, 2.0], [0.0, 1.0]]), np.eye(2) + 0j, np.ones(3)]),
        ("bias", "bool")]),
    ("sample_order", fg.sample_order, dict(n=10), [
        ("n", [0, -1, 2.5, "10", None, _BIG, 2**31, True, [10]]), ("seed", "seed"),
        ("epoch", "int>=0"), ("order", "choice"),
        ("batch_size", [0, -1, 11, 1.5, "2", None, True, _BIG])]),
    ("hessian", fg.hessian, dict(X=_X), [("X", "X"), ("X", "X:H"), ("bias", "bool")]),
    ("normalize", fg.normalize, dict(X=_X), [("X", "X"), ("X", [np.ones((5, 2))])]),
    ("whiten", fg.whiten, dict(X=_X), [("X", "X"), ("X", "X:H"), ("X", [np.ones((5, 2))])]),
    ("gaussian_data", fg.gaussian_data, dict(n=10, eigenvalues=[1.0, 0.5]), [
        ("n", [2, -1, 2.5, "10", None, _BIG, 10**12]),
        ("eigenvalues", [[], [-1.0], [np.nan], "x", None, [[1.0]], RAGGED2, [1e300]]),
        ("angle", "real"), ("seed", "seed"), ("labels", "choice"), ("noise", "real>=0")]),
    ("warmup", fg.warmup, {}, [("float32", "bool"), ("chain", "bool"),
                               ("threads", "threads")]),
    ("load", fg.load, dict(path="/nonexistent/result.npz"), [("path", [None, 5, 1.5])]),
    ("chain_load", ch.chain_load, dict(path="/nonexistent/result.npz"), [
        ("path", [None, 5, 1.5, "/nonexistent/result.npz"]), ("max_bytes", [-1, "x"])]),
    ("Spectrum.multipliers", _SPEC.multipliers, dict(lr=0.5), [("lr", "real>0")]),
    ("Spectrum.regime", _SPEC.regime, dict(lr=0.5), [("lr", "real>0"), ("rtol", "real>=0")]),
    ("SweepResult.critical_lr", _RES.critical_lr, {}, [
        ("fraction", [0, -0.5, 1.5, np.nan, "x", None])]),
    # theory
    ("gd_trajectory", T.gd_trajectory, dict(X=_X, y=_Y, lr=1.5, steps=10), [
        ("X", "X"), ("X", "X:H"), ("y", "y"), ("lr", "real>0"), ("steps", "int>=0"),
        ("steps", [10**10]), ("w0", BAD_OPT_W0), ("bias", "bool")]),
    ("gd_trajectory", T.gd_trajectory, dict(X=_X, y=_Y, lr=1e6), [
        ("steps", [100, 10**6])]),
    ("gd_loss", T.gd_loss, dict(X=_X, y=_Y, lr=1.5, t=10), [
        ("X", "X"), ("y", "y"), ("lr", "real>0"),
        ("t", [-1, 2.5, "x", None, [1, -1], np.nan, [[1], [2, 3]]]), ("w0", BAD_OPT_W0),
        ("bias", "bool"), ("excess", "bool")]),
    ("gd_steps_to_tol", T.gd_steps_to_tol, dict(X=_X, y=_Y, lr=1.5, tol=1e-6), [
        ("X", "X"), ("y", "y"), ("lr", "real>0"), ("tol", "real>=0"), ("w0", BAD_OPT_W0),
        ("bias", "bool"), ("max_steps", "int>=1")]),
    ("regime", T.regime, dict(lr=1.0, lam=0.5), [
        ("lr", "real>0"), ("lam", [-1.0, np.nan, np.inf, "x", None]), ("rtol", "real>=0")]),
    ("regimes", T.regimes, dict(X=_X, lr=1.0), [
        ("X", "X"), ("lr", "real>0"), ("bias", "bool"), ("rtol", "real>=0")]),
    ("eta_opt", T.eta_opt, dict(X=_X), [("X", "X"), ("X", "X:H"), ("bias", "bool")]),
    ("eta_max", T.eta_max, dict(X=_X), [("X", "X"), ("X", "X:H"), ("bias", "bool")]),
    ("minimax_lr", T.minimax_lr, dict(X=_X), [("X", "X"), ("bias", "bool")]),
    ("contraction", T.contraction, dict(X=_X, lr=1.0), [
        ("X", "X"), ("lr", "real>0"), ("bias", "bool")]),
    ("momentum_lr_max", T.momentum_lr_max, dict(lam_max=1.0, beta=0.5), [
        ("lam_max", "real>0"), ("beta", "momentum"), ("nesterov", "bool")]),
    ("momentum_rate", T.momentum_rate, dict(lr=0.5, eigenvalues=[1.0, 0.1], beta=0.5), [
        ("lr", "real>0"), ("eigenvalues", [[], [-1.0], [np.nan], "x", None, RAGGED2]),
        ("beta", "momentum"), ("nesterov", "bool")]),
    ("optimal_heavy_ball", T.optimal_heavy_ball, dict(lam_min=0.1, lam_max=1.0), [
        ("lam_min", "real>0"), ("lam_max", "real>0"), ("lam_min", [2.0])]),
    ("adaptive_threshold", T.adaptive_threshold, dict(lr=0.5, beta1=0.9), [
        ("lr", "real>0"), ("beta1", "momentum")]),
    ("adaptive_lr_max", T.adaptive_lr_max, dict(H=np.eye(2), v_hat=[1.0, 1.0], t=3), [
        ("H", [[[1.0, 2.0], [3.0, 4.0]], [[np.nan, 0.0], [0.0, 1.0]], np.ones((2, 3)), "x", None]),
        ("v_hat", [[-1.0, 1.0], [1.0], [np.nan, 1.0], "x", None]),
        ("beta1", "momentum"), ("eps", [-1.0, np.nan, "0", None]),
        ("t", [0, -1, 1.5, "2", True])]),
    ("preconditioned_sharpness", T.preconditioned_sharpness, dict(H=np.eye(2), v_hat=[1.0, 1.0]), [
        ("H", [[[1.0, 2.0], [3.0, 4.0]], np.ones((2, 3)), "x", None]),
        ("v_hat", [[-1.0, 1.0], [1.0], [np.inf, 1.0], "x", None]),
        ("beta1", "momentum"), ("eps", [-1.0, np.nan, "0", None]),
        ("t", [0, -1, 1.5, "2", True])]),
    ("sgd_ms_operator", T.sgd_ms_operator, dict(X=_X, lr=0.1), [
        ("X", "X"), ("lr", "real>0"), ("batch_size", "int>=1"), ("batch_size", [101]),
        ("replacement", "bool"), ("bias", "bool"), ("momentum", "momentum"),
        ("nesterov", "bool")]),
    ("sgd_ms_critical_lr", T.sgd_ms_critical_lr, dict(X=_X), [
        ("X", "X"), ("batch_size", "int>=1"), ("replacement", "bool"), ("bias", "bool"),
        ("momentum", "momentum"), ("nesterov", "bool"), ("method", "choice")]),
    ("sgd_ms_error", T.sgd_ms_error, dict(X=_X, y=_Y, lr=0.1, steps=5), [
        ("X", "X"), ("y", "y"), ("lr", "real>0"), ("steps", "int>=0"), ("steps", [10**9]),
        ("w0", BAD_OPT_W0), ("batch_size", "int>=1"), ("replacement", "bool"),
        ("bias", "bool")]),
    ("sgd_stationary_loss", T.sgd_stationary_loss, dict(X=_X, y=_Y, lr=0.1), [
        ("X", "X"), ("y", "y"), ("lr", "real>0"), ("batch_size", "int>=1"),
        ("replacement", "bool"), ("bias", "bool")]),
    ("sgd_as_critical_lr", T.sgd_as_critical_lr, dict(X=_X), [
        ("X", "X"), ("X", "X:H"), ("y", [_Y[:-1], "abc", _nan(_Y)]), ("batch_size", "int>=1"),
        ("order", "choice"), ("momentum", "momentum"), ("nesterov", "bool"),
        ("seeds", [1, -1, 2.5, "x", None, _BIG, 10**12]),
        ("epochs", [0, -1, 2.5, "x", None, _BIG, 10**12]),
        ("burn_in", [-3, 1.5, "1", _BIG, np.nan, True]),
        ("confidence", [0, 1.0, 1.5, np.nan, "x"]), ("bias", "bool"),
        ("threads", "threads"), ("lanes", [0, 3, 1000, "x", 2.5])]),
    ("lsp_lambda_max", T.lsp_lambda_max, dict(X=_X, y=_Y), [
        ("X", "X"), ("y", "y"), ("presentations", "int>=1"),
        ("presentations", [10**12]), ("leak", [0, 1.0, -0.1, np.nan, "x"]),
        ("alpha", "real>0"), ("window", [0, 10**6, 2.5, "x"]), ("w", BAD_OPT_W0),
        ("order", "choice"), ("seed", "seed"), ("bias", "bool")]),
    ("power_lambda_max", T.power_lambda_max, dict(X=_X), [
        ("X", "X"), ("y", [_Y[:-1], "abc"]), ("tol", "real>0"), ("max_iter", "int>=1"),
        ("max_iter", [10**12]), ("alpha", "real>0"), ("w", BAD_OPT_W0), ("seed", "seed"),
        ("bias", "bool")]),
    ("limits", T.limits, dict(X=_X), [
        ("X", "X"), ("X", "X:H"), ("bias", "bool"), ("momentum", "momentum"),
        ("nesterov", "bool"), ("batch_size", "int|None"), ("batch_size", [101]),
        ("order", [1, "nope"]), ("almost_sure", "bool"),
        ("seeds", [1, _BIG, "x"]), ("epochs", [0, _BIG, "x"]), ("threads", "threads")]),
    ("limits", T.limits, dict(X=_X, batch_size=1, almost_sure=True), [
        ("seeds", [10**12]), ("epochs", [10**12])]),
    # chain
    *[(name, fn, dict(w=[0.5, 0.5]), [
        ("w", [None, "ab", 1.0, [1.0], [np.nan, 1.0], RAGGED2]),
        ("x", [np.nan, "x", None, [[1.0]], 0.0]), ("y", [np.nan, "y", [[1.0, 2.0]]]),
        ("loss_scale", "real>0")])
      for name, fn in [("chain_loss", ch.chain_loss), ("chain_grad", ch.chain_grad),
                       ("chain_hessian", ch.chain_hessian),
                       ("chain_sharpness", ch.chain_sharpness), ("chain_ntk", ch.chain_ntk)]],
    ("chain_minima", ch.chain_minima, {}, [
        ("depth", [1, 0, 2.5, "2", None, _BIG]), ("x", [np.nan, "x"]),
        ("loss_scale", "real>0")]),
    ("chain_gd", ch.chain_gd, dict(w0=[0.5, 0.5], lr=0.1, steps=10), [
        ("w0", [None, "ab", 1.0, [1.0], [np.nan, 1.0], [[0.5, 0.5]]]), ("lr", "real>0"),
        ("steps", "int>=0"), ("steps", [10**12]), ("x", [np.nan, "x", None]),
        ("loss_scale", "real>0"), ("record", "bool"), ("tol", "real>=0"),
        ("blowup", "blowup")]),
    ("chain_sgd", ch.chain_sgd, dict(w0=[0.5, 0.5], lr=0.1, epochs=2, x=[1.0, 2.0],
                                     y=[1.0, 2.0]), [
        ("epochs", "int>=0"), ("epochs", [10**12]), ("batch_size", "int>=1"),
        ("batch_size", [3]), ("order", "choice"), ("seed", "seed"), ("record", "bool")]),
    ("chain_sweep", ch.chain_sweep, dict(inits=[[0.5, 0.5]], lr=[0.1, 0.2], steps=10), [
        ("inits", [None, "ab", [[0.5]], [[np.nan, 1.0]], np.zeros((2, 2, 2))]),
        ("lr", "rates"), ("steps", "int>=0"), ("method", "choice"), ("order", "choice"),
        ("batch_size", "int>=1"), ("seed", "seed"), ("tol", "real>=0"),
        ("blowup", "blowup"), ("threads", "threads"), ("progress", "bool|None")]),
    ("chain_sweep", ch.chain_sweep, dict(inits=np.full((1000, 2), 0.5),
                                         lr=np.full(1000, 0.1)), [("steps", [10**9])]),
    # two-layer networks
    *[(name, fn, dict(theta=_TH, X=_X, y=_Y), [
        ("theta", [None, "ab", 1.0, [1.0], _nan(_TH), np.ones(8), RAGGED2, np.ones((3, 3))]),
        ("X", "X"), ("y", "y"), ("activation", "choice"), ("param", "choice"),
        ("bias", "bool")])
      for name, fn in [("net_loss", NN.net_loss), ("net_grad", NN.net_grad),
                       ("net_hessian", NN.net_hessian), ("net_ntk", NN.net_ntk),
                       ("net_sharpness", NN.net_sharpness),
                       ("online_sharpness", NN.online_sharpness)]],
    ("net_hvp", NN.net_hvp, dict(theta=_TH, v=_TH, X=_X, y=_Y), [
        ("theta", [None, "ab", np.ones(8)]), ("X", "X"), ("y", "y"),
        ("v", [None, "ab", 1.0, np.ones(8), _nan(_TH), np.ones((3, 3))]),
        ("engine", "choice"), ("activation", "choice"), ("bias", "bool")]),
    ("net_hessian", NN.net_hessian, dict(theta=np.ones(3 * 30000), X=_X, y=_Y), [
        ("bias", [False])], "theta"),
    ("net_sharpness", NN.net_sharpness, dict(theta=_TH, X=_X, y=_Y), [
        ("iters", "int>=1")]),
    ("online_sharpness", NN.online_sharpness, dict(theta=_TH, X=_X, y=_Y), [
        ("presentations", "int>=1"), ("presentations", [10**12]),
        ("leak", [0, 1.0, -0.1, np.nan, "x"]), ("alpha", "real>0"),
        ("window", [0, 10**6, 2.5, "x"]), ("order", "choice"), ("seed", "seed")]),
    ("net_init", NN.net_init, dict(width=4, d=2), [
        ("width", [0, -1, 2.5, "4", None, _BIG, True]), ("d", [0, -1, 2.5, "2", None, _BIG]),
        ("scale", "real>=0"), ("seed", "seed"), ("bias", "bool")]),
    ("net_unpack", NN.net_unpack, dict(theta=_TH, d=2), [
        ("theta", [None, "ab", 1.0, np.ones(8), _nan(_TH), np.ones((3, 3))]),
        ("d", [0, -1, 2.5, "2", None]), ("bias", "bool")]),
    *[(name, fn, dict(X=_X, y=_Y, lr=0.1, **{unit: 10}, width=4), [
        ("X", "X"), ("X", "X:H"), ("y", "y"), ("lr", "real>0"), (unit, "int>=0"),
        (unit, [10**12]), ("width", [0, -1, 2.5, "4", True, _BIG]),
        ("theta0", [_TH, "ab", 1.0, np.ones(8), _nan(_TH), np.ones((3, 3))]),
        ("scale", "real>=0"), ("seed", "seed"), ("activation", "choice"),
        ("param", "choice"), ("bias", "bool"), ("momentum", "momentum"),
        ("tol", "real>=0"), ("blowup", "blowup"), ("sharpness_every", "int>=0"),
        ("sharpness_iters", "int>=1")])
      for name, fn, unit in [("net_gd", NN.net_gd, "steps"), ("net_sgd", NN.net_sgd, "epochs")]],
    ("net_sgd", NN.net_sgd, dict(X=_X, y=_Y, lr=0.1, epochs=2), [
        ("batch_size", "int>=1"), ("batch_size", [101]), ("order", "choice"),
        ("order", ["Cyclic"])]),
    ("net_sweep", NN.net_sweep, dict(X=_X, y=_Y, lr=[0.1, 0.2], steps=10, width=4), [
        ("X", "X"), ("y", "y"), ("lr", "rates"), ("steps", "int>=0"),
        ("width", [0, -1, [4, 0], "4", [], [[4]], True, [2.5], RAGGED2]),
        ("scale", [[-1.0], [np.nan], "x", [], [[1.0]]]),
        ("theta0", [[np.nan] * 28, "x", [[np.inf] * 28]]),
        ("lr_unit", ["lambda", "", None, 1]), ("gtol", [-1.0, np.nan, "x"]),
        ("seeds", [0, -1, "2", None, [], [-1], [1.5], True, _BIG]),
        ("method", "choice"), ("batch_size", "int>=1"), ("batch_size", [101]),
        ("order", "choice"), ("activation", "choice"), ("param", "choice"),
        ("bias", "bool"), ("momentum", "momentum"), ("tol", "real>=0"),
        ("blowup", "blowup"), ("sharpness", "bool"), ("sharpness_every", "int>=0"),
        ("sharpness_iters", "int>=1"), ("threads", "threads"), ("progress", "bool|None")]),
    ("net_sweep", NN.net_sweep, dict(X=_X, y=_Y, lr=np.full(1000, 0.1), width=[512] * 4), [
        ("steps", [10**9])]),
    ("plot_net_phase", NN.plot_net_phase, dict(result=_NETRES), [
        ("result", [None, _RES, 5, _chain_result()]), ("ax", "ax"),
        ("seed", [-1, 5, 2.5, "0"]), ("scale", [-1, 5, "0"]), ("spike", "real>0"),
        ("title", "title"), ("legend", "bool")]),
    ("plot_net_warmup", NN.plot_net_warmup, dict(warmups=[0, 10], lr_max=[1.0, 2.0]), [
        ("warmups", [[-1, 10], "x", None, [[0, 1]], [np.nan, 1]]),
        ("lr_max", [[1.0], "x", None, [1.0, 2.0, 3.0]]), ("lr0", [0, -1.0, "x", np.nan]),
        ("ax", "ax"), ("title", "title"), ("legend", "bool")]),
    ("net_adaptive_phase", NN.net_adaptive_phase,
     dict(X=_X, y=_Y, lr=[0.1, 0.2], axis="beta1", values=[0.0, 0.5], steps=5, width=4), [
        ("X", "X"), ("y", "y"), ("lr", "rates"), ("axis", "choice"),
        ("values", [[], "x", None, [1.5], [np.nan], [[0.1]]]), ("steps", "int>=0"),
        ("optimizer", "choice"), ("width", [0, -1, "4", 2.5]),
        ("scale", [-1.0, np.nan, "x"]), ("seed", "seed"), ("activation", "choice"),
        ("param", "choice"), ("bias", "bool"), ("tol", "real>=0"), ("blowup", "blowup"),
        ("warmup", [-1, 2.5, "x"]), ("threads", "threads")]),
    ("net_adaptive_phase", NN.net_adaptive_phase,
     dict(X=_X, y=_Y, lr=[0.1, 0.2], axis="width", values=[4, 8], steps=5), [
        ("values", [[0, 4], [2.5], [-1], ["4"]])]),
    ("adaptive_phase", PH2.adaptive_phase,
     dict(X=_X, y=_Y, lr=[0.1, 0.2], axis="beta1", values=[0.0, 0.5], steps=5), [
        ("X", "X"), ("y", "y"), ("lr", "rates"), ("axis", "choice"), ("axis", ["width"]),
        ("values", [[], "x", None, [1.5], [np.nan], [[0.1]]]), ("steps", "int>=0"),
        ("optimizer", "choice"), ("bias", "bool"),
        ("tol", "real>=0"), ("blowup", "blowup"), ("threads", "threads"),
        ("freeze_preconditioner", [-1, 2.5, "x"]), ("pre_freeze_lr", [-1.0, np.nan, "x"])]),
    ("plot_adaptive_phase", P.plot_adaptive_phase, dict(table=_PHASE2), [
        ("table", [None, _RES, 5, _chain_result()]), ("ax", "ax"), ("title", "title"),
        ("legend", "bool"), ("theory", "bool")]),
    ("plot_net_eos", NN.plot_net_eos, dict(runs=[_NETRUN]), [
        ("runs", [5, "abc", [5], [None], [], None]), ("ax", "ax"),
        ("loss_ax", [5, "ax", object()]), ("title", "title"), ("legend", "bool")]),
    # plots
    ("plot_phase_diagram", P.plot_phase_diagram, dict(result=_RES), [
        ("result", [None, _SPEC, 5, "result.npz", _chain_result()]), ("ax", "ax"),
        ("color", "choice"), ("seed", [-1, 1, 2.5, "0"]), ("theory", "bool"),
        ("legend", "bool"), ("colorbar", "bool"), ("title", "title")]),
    ("plot_boundary", P.plot_boundary, dict(result=_RES), [
        ("result", [None, _SPEC, 5, _chain_result()]), ("ax", "ax"),
        ("observed", ["x", [1.0], [[1.0, 2.0]], [-1.0, 1.0], [np.inf, 1.0]]),
        ("fraction", [0, 1.5, np.nan, "x"]), ("title", "title"), ("legend", "bool")]),
    ("plot_regimes", P.plot_regimes, dict(spectrum=_SPEC), [
        ("spectrum", [None, _X, _RES, 5]), ("ax", "ax"), ("lr_max", "real>0|None"),
        ("lr_max", [1e308]), ("marks", [None, "x", [-1.0], [np.nan], [[1.0]]]),
        ("title", "title"), ("legend", "bool")]),
    ("plot_regimes", P.plot_regimes, dict(spectrum=fg.spectrum(np.zeros((10, 2)))), [
        ("lr_max", [None])], "spectrum"),
    ("plot_data", P.plot_data, dict(X=_X, y=_Y), [
        ("X", "X"), ("X", [np.ones((100, 3))]), ("y", "y"), ("ax", "ax"), ("eigen", "bool"),
        ("title", "title"), ("legend", "bool")]),
    ("plot_weight_space", P.plot_weight_space, dict(X=_X, y=_Y, runs=[_RUN]), [
        ("X", "X"), ("y", "y"), ("runs", [5, "abc", [5], [None], [np.zeros((3, 3))]]),
        ("ax", "ax"), ("eigen_axes", "bool"), ("max_points", [1, "x", None]),
        ("extent", [5, "abcd", (1, 2, 3), (1, 0, 0, 1), (np.nan, 1, 0, 1)]),
        ("levels", [1, "x", 2.5]), ("title", "title"), ("legend", "bool"),
        ("markers", "bool"), ("colors", "colors")]),
    ("plot_losses", P.plot_losses, dict(runs=[_RUN]), [
        ("runs", [5, "abc", [5], [None]]), ("per", "choice"), ("ax", "ax"),
        ("minimum", [np.nan, np.inf, "0", True, [0.0]]),
        ("updates_per_epoch", [0, -1, 2.5, "x"]), ("logy", "bool"),
        ("title", "title"), ("legend", "bool"), ("colors", "colors")]),
    ("plot_chain_landscape", P.plot_chain_landscape, {}, [
        ("runs", [5, "abc", [5]]), ("ax", "ax"), ("x", [np.nan, "x"]),
        ("loss_scale", "real>0"), ("lim", "real>0"), ("lim", [1e200]),
        ("levels", [1, "x"]), ("max_points", [1, "x"]), ("title", "title"),
        ("legend", "bool")]),
    ("plot_chain_phase", P.plot_chain_phase, dict(result=_chain_result()), [
        ("result", [None, _RES, 5]), ("ax", "ax"), ("y", "choice"), ("spike", "real>0"),
        ("title", "title"), ("legend", "bool"), ("guides", "bool")]),
]


def _cases():
    out = []
    for entry in TABLE:
        func_name, fn, base, specs = entry[:4]
        forced = entry[4] if len(entry) > 4 else None
        for spec in specs:
            arg, kind = spec[0], spec[1]
            names = spec[2] if len(spec) > 2 else (forced or arg)
            values = _bad(kind) if isinstance(kind, str) else kind
            for k, v in enumerate(values):
                kw = dict(base)
                kw[arg] = v
                label = kind if isinstance(kind, str) else "v"
                out.append(pytest.param(func_name, fn, kw, names,
                                        id=f"{func_name}-{arg}-{label}-{k}"))
    return out


CASES = _cases()


def _cli_cases():
    """CLI calls that must exit 2 with one line naming the flag, before any sweep."""
    bad = []
    for sub in ("phase", "boundary", "sweep", "lecture"):
        bad += [([sub, "--threads", "1000"], "--threads"), ([sub, "--threads", "0"], "--threads"),
                ([sub, "--threads", "x"], "--threads"), ([sub, "--dpi", "0"], "--dpi"),
                ([sub, "--dpi", "-5"], "--dpi"), ([sub, "--dpi", "1.5"], "--dpi")]
    for flag in ("--lr", "--condition"):
        bad += [(["phase", flag, v], flag.lstrip("-"))
                for v in ("0.1:4:100000000", "x", "1:2", "nan", "0:1:5", "1:2:3:cubic", "")]
    bad += [(["phase", "--out", "/proc/fastgd-fuzz.png"], "--out"),
            (["phase", "--out", __file__ + "/x.png"], "--out"),  # a file as directory
            (["phase", "--out", "x.gif"], "--out"),
            (["phase", "--save", "/proc/fastgd-fuzz.npz"], "--save"),
            (["boundary", "--out", "/proc/fastgd-fuzz.png"], "--out"),
            (["lecture", "--out", "/proc/fastgd-fuzz"], "--out"),
            (["sweep", "--lr", "0.5", "--out", "/proc/fastgd-fuzz"], "--out"),
            (["phase", "--steps", str(_BIG)], "steps"),
            (["phase", "--steps", "-1"], "steps"),
            (["phase", "--method", "sgd", "--seeds", str(10**12)], "seeds"),
            (["phase", "--method", "sgd", "--epochs", str(_BIG)], "epochs"),
            (["phase", "--lr", "0.1:4:1000000", "--condition", "1:100:10000"], "lr"),
            (["phase", "--momentum", "nan"], "momentum"),
            (["phase", "--momentum", "1.5"], "momentum"),
            (["phase", "--tol", "-1"], "tol"),
            (["phase", "--n", str(10**12)], "n"),
            (["phase", "--method", "gd", "--epochs", "5"], "epochs"),
            (["phase", "--method", "nope"], "method"),
            (["phase", "--order", "nope"], "order"),
            (["phase", "--dtype", "float16"], "dtype"),
            (["boundary", "--method", "sgd", "--batch-size", "0"], "batch_size"),
            (["plot", "/nonexistent.npz"], "not found"),
            (["net", "phase", "--width", "x"], "width"),
            (["net", "phase", "--lr-ntk", "0:1:5"], "lr_ntk"),
            (["net", "phase", "--threads", "0"], "--threads"),
            (["net", "phase", "--out", "x.gif"], "--out"),
            (["net", "phase", "--activation", "sigmoid"], "--activation"),
            (["net", "eos", "--steps", "-1"], "--steps"),
            (["net", "eos", "--lr", "x"], "lr"),
            (["net", "eos", "--data", "nope.csv"], "data"),
            (["net", "eos", "--out", "/proc/fastgd-fuzz.png"], "--out")]
    return [pytest.param(argv, flag, id="cli-" + "-".join(argv)[:60] + f"-{i}")
            for i, (argv, flag) in enumerate(bad)]


CLI_CASES = _cli_cases()

#: How many bad calls the table makes (hypothesis examples come on top).
N_BAD_CALLS = len(CASES) + len(CLI_CASES)


@pytest.fixture
def no_kernels(monkeypatch):
    """Every kernel fails if called: errors must come before any work."""
    from fastgd.chain import kernels as kc
    from fastgd.linear import kernels as kl
    from fastgd.linear import table
    from fastgd.net import kernels as kn

    def forbidden(*args, **kwargs):
        raise AssertionError("a kernel ran before the arguments were validated")

    monkeypatch.setattr(table, "launch", forbidden)  # every linear-unit kernel
    for mod in (kl, kc, kn):
        for name in dir(mod):
            if name.startswith("grid_"):
                monkeypatch.setattr(mod, name, forbidden)
    return forbidden


def _names(names):
    return (names,) if isinstance(names, str) else tuple(names)


def check_clean_error(func_name, call, names):
    """``call()`` raises a fastgd error naming ``func_name`` and one of ``names``, in the
    one message shape, and warns nothing."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises((VE, TE)) as info:
            call()
    msg = str(info.value)
    heads = [f"{func_name}: '{n}'" for n in _names(names)]
    assert any(msg.startswith(h) for h in heads), f"{msg!r} does not start with {heads}"
    assert " must be " in msg and "; got " in msg and msg.endswith("."), msg
    assert isinstance(info.value, ValueError if isinstance(info.value, VE) else TypeError)
    assert not caught, [str(w.message) for w in caught]
    return info.value


@pytest.mark.parametrize("func_name, fn, kwargs, names", CASES)
def test_bad_call(no_kernels, func_name, fn, kwargs, names):
    check_clean_error(func_name, lambda: fn(**kwargs), names)


@pytest.mark.parametrize("argv, flag", CLI_CASES)
def test_bad_cli(no_kernels, capsys, tmp_path, monkeypatch, argv, flag):
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            rc = cli.main(argv)
        except SystemExit as exc:  # argparse errors
            rc = exc.code
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert len(err.splitlines()) == 1, err
    assert flag in err, err
    assert not caught, [str(w.message) for w in caught]
    assert not list(tmp_path.iterdir())  # nothing written


def test_fuzz_table_size():
    """Every public function is in the table; report the number of calls."""
    covered = {entry[0] for entry in TABLE}
    public = set()
    for mod, names in ((fg, fg.__all__), (T, T.__all__), (ch, ch.__all__), (P, P.__all__),
                       (NN, NN.__all__)):
        for n in names:
            obj = getattr(mod, n)
            # lecture_data: fixed data; cache_info, clear_cache: no arguments to get wrong
            if callable(obj) and not isinstance(obj, type) and n not in (
                    "lecture_data", "cache_info", "clear_cache"):
                public.add(n)
    missing = public - covered
    assert not missing, f"public functions without bad calls: {sorted(missing)}"
    assert N_BAD_CALLS >= 1000, N_BAD_CALLS
    print(f"\nfastgd fuzz: {N_BAD_CALLS} bad calls in the table "
          f"({len(CASES)} API, {len(CLI_CASES)} CLI) over {len(covered)} functions")


# ------------------------------------------------------------------ hypothesis
_SET = settings(max_examples=60, deadline=None, derandomize=True, database=None)
_any_scalar = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(min_value=-2**80, max_value=2**80),
    st.text(max_size=4), st.none(), st.booleans(), st.complex_numbers(max_magnitude=10))


def _valid_or_named(func_name, call, names):
    """Either the call reaches the (forbidden) kernel / returns, or it is refused cleanly."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            call()
        except AssertionError as exc:
            assert "kernel ran" in str(exc)
        except (VE, TE) as exc:
            msg = str(exc)
            assert any(msg.startswith(f"{func_name}: '{n}'") for n in _names(names)), msg
    assert not caught, [str(w.message) for w in caught]


@_SET
@given(lr=_any_scalar, steps=_any_scalar)
def test_gd_scalars(lr, steps):
    from fastgd.linear import table

    def forbidden(*a, **k):
        raise AssertionError("kernel ran")

    old = table.launch
    table.launch = forbidden
    try:
        _valid_or_named("gd", lambda: fg.gd(_X, _Y, lr, steps), ("lr", "steps"))
    finally:
        table.launch = old


@_SET
@given(scale=st.floats(min_value=-300, max_value=300), p=st.integers(2, 30),
       d=st.integers(1, 4))
def test_spectrum_any_scale(scale, p, d):
    """spectrum / eta limits of X * 10**scale: finite results or a clean error on X,
    never a warning, NaN or ZeroDivisionError."""
    rng = np.random.default_rng(p * 7 + d)
    X = rng.standard_normal((p, d)) * 10.0 ** scale

    def call():
        s = fg.spectrum(X)
        vals = [s.lambda_max, s.lambda_min, s.eta_opt, s.eta_max, s.eta_minimax,
                s.condition_number]
        assert not any(np.isnan(v) for v in vals), vals
        assert not np.any(np.isnan(s.eigenvalues))

    _valid_or_named("spectrum", call, ("X",))


@_SET
@given(lr=st.floats(min_value=1e-3, max_value=1e300), steps=st.integers(0, 3000))
def test_trajectory_never_nan(lr, steps):
    """gd_trajectory either refuses (naming 'steps') or returns rows without NaN."""
    def call():
        W = T.gd_trajectory(_X, _Y, lr, steps)
        assert not np.any(np.isnan(W))

    _valid_or_named("gd_trajectory", call, ("steps",))


@_SET
@given(lr=st.floats(min_value=1e-3, max_value=1e120), steps=st.integers(0, 400))
def test_closed_forms_never_nan(lr, steps):
    """gd_loss and sgd_ms_error either refuse (naming 'lr' or 'steps') or return arrays
    without NaN, and warn nothing."""
    def call():
        v = T.gd_loss(_X, _Y, lr, [0, steps, 10 * steps])
        assert not np.any(np.isnan(v))
        r = T.sgd_ms_error(_X, _Y, lr, min(steps, 60))
        assert not any(np.any(np.isnan(a)) for a in (r.dist2, r.excess, r.mean))

    _valid_or_named_any(call, ("gd_loss", "sgd_ms_error"), ("lr", "steps"))


def _valid_or_named_any(call, funcs, names):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            call()
        except (VE, TE) as exc:
            msg = str(exc)
            assert any(msg.startswith(f"{f}: '{n}'") for f in funcs for n in names), msg
    assert not caught, [str(w.message) for w in caught]


def test_zero_data_spectrum_is_documented_inf():
    s = fg.spectrum(np.zeros((10, 2)))
    assert s.eta_max == np.inf and s.eta_opt == np.inf and s.eta_minimax == np.inf


def test_limits_are_overridable(monkeypatch):
    """The refusal says how to go ahead, and going ahead works (env variables)."""
    err = check_clean_error("gd", lambda: fg.gd(_X, _Y, 1.0, 10**12), "steps")
    assert "FASTGD_MAX_BYTES" in str(err)
    monkeypatch.setenv("FASTGD_MAX_WORK", "1")
    err = check_clean_error("gd", lambda: fg.gd(_X, _Y, 1.0, 10), "steps")
    assert "FASTGD_MAX_WORK" in str(err)
    monkeypatch.setenv("FASTGD_MAX_WORK", "0")  # 0: no limit
    monkeypatch.setenv("FASTGD_MAX_BYTES", "1e3")
    err = check_clean_error("sweep", lambda: fg.sweep("gd", lr=[0.5] * 10, condition=[1.0]),
                            ("lr", "condition", "seeds", "n"))
    assert re.search(r"max_bytes=|FASTGD_MAX_BYTES", str(err))
    err = check_clean_error("sweep", lambda: fg.sweep("gd", lr=[0.5] * 10, condition=[1.0],
                                                      max_bytes=10), ("lr", "condition", "n"))
    assert "raise max_bytes=" in str(err)
