"""Every bad input raises FastGDValueError / FastGDTypeError naming the argument, in the
message shape ``func: 'param' must be <expected>; got <got>.``, before any kernel runs."""

from __future__ import annotations

import numpy as np
import pytest

import fastgd as fg

VE, TE = fg.FastGDValueError, fg.FastGDTypeError

_X, _Y = fg.lecture_data()


def with_nan(a, value=np.nan):
    a = a.copy()
    a.flat[3] = value
    return a


def gd(**kw):
    args = {"X": _X, "y": _Y, "lr": 0.5, "steps": 10} | kw
    return fg.gd(args.pop("X"), args.pop("y"), args.pop("lr"), args.pop("steps"), **args)


def sgd(**kw):
    args = {"X": _X, "y": _Y, "lr": 0.1, "epochs": 2} | kw
    return fg.sgd(args.pop("X"), args.pop("y"), args.pop("lr"), args.pop("epochs"), **args)


# (id, callable, kwargs, exception, message pattern)
CASES = [
    # data: NaN / inf
    ("gd-X-nan", gd, {"X": with_nan(_X)}, VE, r"^gd: 'X' must be finite \(no NaN or inf\); got 1 non-finite"),
    ("gd-X-inf", gd, {"X": with_nan(_X, np.inf)}, VE, r"^gd: 'X' must be finite"),
    ("sgd-X-ninf", sgd, {"X": with_nan(_X, -np.inf)}, VE, r"^sgd: 'X' must be finite"),
    ("gd-y-nan", gd, {"y": with_nan(_Y)}, VE, r"^gd: 'y' must be finite"),
    ("sgd-y-inf", sgd, {"y": with_nan(_Y, np.inf)}, VE, r"^sgd: 'y' must be finite"),
    # shapes
    ("gd-y-short", gd, {"y": _Y[:99]}, VE, r"^gd: 'y' must be of length P = 100 .*; got length 99\.$"),
    ("sgd-y-long", sgd, {"y": np.append(_Y, 1.0)}, VE, r"^sgd: 'y' must be of length P = 100"),
    ("gd-y-2d", gd, {"y": np.c_[_Y, _Y]}, VE, r"^gd: 'y' must be a 1-D array; got 2-D"),
    ("sgd-y-2d", sgd, {"y": np.stack([_Y, _Y])}, VE, r"^sgd: 'y' must be a 1-D array"),
    ("gd-y-scalar", gd, {"y": 1.0}, VE, r"^gd: 'y' must be a 1-D array; got 0-D"),
    ("gd-X-3d", gd, {"X": _X[None]}, VE, r"^gd: 'X' must be a 2-D array; got 3-D"),
    ("gd-X-scalar", gd, {"X": 2.0}, VE, r"^gd: 'X' must be a 2-D array"),
    ("gd-w0-length", gd, {"w0": [0.0, 0.0, 0.0]}, VE, r"^gd: 'w0' must be of length 2; got length 3"),
    ("gd-w0-bias-length", gd, {"w0": [0.0], "bias": True}, VE, r"^gd: 'w0' must be of length 2 or 3 \(with the bias last\)"),
    ("sgd-w0-2d", sgd, {"w0": [[0.0, 0.0]]}, VE, r"^sgd: 'w0' must be a 1-D array"),
    ("gd-w0-nan", gd, {"w0": [0.0, np.nan]}, VE, r"^gd: 'w0' must be finite"),
    # empty data
    ("gd-empty", gd, {"X": np.zeros((0, 2)), "y": np.zeros(0)}, VE, r"^gd: 'X' must be non-empty; got shape \(0, 2\)"),
    ("sgd-empty", sgd, {"X": [], "y": []}, VE, r"^sgd: 'X' must be non-empty"),
    ("gd-no-inputs", gd, {"X": np.zeros((100, 0))}, VE, r"^gd: 'X' must be non-empty"),
    ("gd-y-empty", gd, {"X": np.zeros((3, 2)), "y": []}, VE, r"^gd: 'y' must be non-empty"),
    # learning rate
    ("gd-lr-zero", gd, {"lr": 0.0}, VE, r"^gd: 'lr' must be > 0; got 0\.0\.$"),
    ("gd-lr-negative", gd, {"lr": -0.1}, VE, r"^gd: 'lr' must be > 0; got -0\.1\.$"),
    ("sgd-lr-zero", sgd, {"lr": 0}, VE, r"^sgd: 'lr' must be > 0"),
    ("gd-lr-nan", gd, {"lr": np.nan}, VE, r"^gd: 'lr' must be finite; got nan"),
    ("gd-lr-inf", gd, {"lr": np.inf}, VE, r"^gd: 'lr' must be finite; got inf"),
    ("sgd-lr-ninf", sgd, {"lr": -np.inf}, VE, r"^sgd: 'lr' must be finite"),
    ("gd-lr-str", gd, {"lr": "0.1"}, TE, r"^gd: 'lr' must be a real number; got str '0.1'"),
    ("gd-lr-none", gd, {"lr": None}, TE, r"^gd: 'lr' must be a real number; got NoneType"),
    ("gd-lr-bool", gd, {"lr": True}, TE, r"^gd: 'lr' must be a real number; got bool"),
    ("sgd-lr-list", sgd, {"lr": [0.1]}, TE, r"^sgd: 'lr' must be a real number; got list"),
    ("gd-lr-complex", gd, {"lr": 1j}, TE, r"^gd: 'lr' must be a real number"),
    # steps / epochs
    ("gd-steps-negative", gd, {"steps": -1}, VE, r"^gd: 'steps' must be an integer >= 0; got -1\.$"),
    ("sgd-epochs-negative", sgd, {"epochs": -3}, VE, r"^sgd: 'epochs' must be an integer >= 0; got -3"),
    ("gd-steps-fraction", gd, {"steps": 2.5}, TE, r"^gd: 'steps' must be an integer; got float 2\.5"),
    ("sgd-epochs-none", sgd, {"epochs": None}, TE, r"^sgd: 'epochs' must be an integer"),
    ("sgd-epochs-str", sgd, {"epochs": "10"}, TE, r"^sgd: 'epochs' must be an integer"),
    # batch size
    ("sgd-batch-zero", sgd, {"batch_size": 0}, VE, r"^sgd: 'batch_size' must be an integer >= 1; got 0"),
    ("sgd-batch-negative", sgd, {"batch_size": -5}, VE, r"^sgd: 'batch_size' must be an integer >= 1"),
    ("sgd-batch-above-P", sgd, {"batch_size": 101}, VE, r"^sgd: 'batch_size' must be an integer <= 100; got 101"),
    ("sgd-batch-fraction", sgd, {"batch_size": 1.5}, TE, r"^sgd: 'batch_size' must be an integer"),
    # order
    ("sgd-order-unknown", sgd, {"order": "random"}, VE, r"^sgd: 'order' must be one of 'cyclic', 'shuffle', 'replacement'; got 'random'"),
    ("sgd-order-case", sgd, {"order": "Cyclic"}, VE, r"^sgd: 'order' must be one of"),
    ("sgd-order-int", sgd, {"order": 1}, TE, r"^sgd: 'order' must be one of"),
    ("sgd-order-none", sgd, {"order": None}, TE, r"^sgd: 'order' must be one of"),
    # other options
    ("gd-momentum-one", gd, {"momentum": 1.0}, VE, r"^gd: 'momentum' must be < 1\.0; got 1\.0"),
    ("sgd-momentum-negative", sgd, {"momentum": -0.1}, VE, r"^sgd: 'momentum' must be >= 0"),
    ("gd-momentum-nan", gd, {"momentum": np.nan}, VE, r"^gd: 'momentum' must be finite"),
    ("gd-nesterov-str", gd, {"nesterov": "yes"}, TE, r"^gd: 'nesterov' must be True or False; got str"),
    ("gd-bias-int", gd, {"bias": 1}, TE, r"^gd: 'bias' must be True or False; got int"),
    ("sgd-bias-none", sgd, {"bias": None}, TE, r"^sgd: 'bias' must be True or False"),
    ("gd-record-str", gd, {"record": "no"}, TE, r"^gd: 'record' must be True or False"),
    ("gd-tol-negative", gd, {"tol": -1e-3}, VE, r"^gd: 'tol' must be >= 0"),
    ("gd-tol-nan", gd, {"tol": np.nan}, VE, r"^gd: 'tol' must be finite"),
    ("gd-blowup-small", gd, {"blowup": 0.5}, VE, r"^gd: 'blowup' must be >= 1; got 0\.5"),
    ("sgd-blowup-nan", sgd, {"blowup": np.nan}, VE, r"^sgd: 'blowup' must be not NaN"),
    ("sgd-seed-negative", sgd, {"seed": -1}, VE, r"^sgd: 'seed' must be an integer >= 0; got -1"),
    ("sgd-seed-fraction", sgd, {"seed": 0.5}, TE, r"^sgd: 'seed' must be an integer"),
    # bad types for the data
    ("gd-X-str", gd, {"X": "abc"}, TE, r"^gd: 'X' must be a 2-D array of numbers; got str"),
    ("gd-X-none", gd, {"X": None}, TE, r"^gd: 'X' must be a 2-D array of numbers; got NoneType"),
    ("gd-X-ragged", gd, {"X": [[1.0, 2.0], [3.0]], "y": [1.0, 2.0]}, TE, r"^gd: 'X' must be a 2-D array of numbers; got list"),
    ("gd-X-complex", gd, {"X": _X + 0j}, TE, r"^gd: 'X' must be real-valued"),
    ("gd-X-object", gd, {"X": _X.astype(object)}, TE, r"^gd: 'X' must be a 2-D array of real numbers"),
    ("sgd-y-strings", sgd, {"y": np.array(["a"] * 100)}, TE, r"^sgd: 'y' must be a 1-D array of real numbers"),
    ("sgd-y-none", sgd, {"y": None}, TE, r"^sgd: 'y' must be a 1-D array of numbers"),
    ("gd-w0-str", gd, {"w0": "ab"}, TE, r"^gd: 'w0' must be a 1-D array of (real )?numbers"),
    # data and spectrum functions
    ("spectrum-nan", fg.spectrum, {"X": with_nan(_X)}, VE, r"^spectrum: 'X' must be finite"),
    ("spectrum-empty", fg.spectrum, {"X": np.zeros((0, 2))}, VE, r"^spectrum: 'X' must be non-empty"),
    ("spectrum-bias", fg.spectrum, {"X": _X, "bias": "no"}, TE, r"^spectrum: 'bias' must be True or False"),
    ("hessian-3d", fg.hessian, {"X": _X[None]}, VE, r"^hessian: 'X' must be a 2-D array"),
    ("gaussian-n-small", fg.gaussian_data, {"n": 2, "eigenvalues": [1.0, 1.0]}, VE, r"^gaussian_data: 'n' must be an integer >= 3; got 2"),
    ("gaussian-eig-negative", fg.gaussian_data, {"n": 10, "eigenvalues": [1.0, -1.0]}, VE, r"^gaussian_data: 'eigenvalues' must be >= 0"),
    ("gaussian-eig-nan", fg.gaussian_data, {"n": 10, "eigenvalues": [np.nan]}, VE, r"^gaussian_data: 'eigenvalues' must be finite"),
    ("gaussian-eig-empty", fg.gaussian_data, {"n": 10, "eigenvalues": []}, VE, r"^gaussian_data: 'eigenvalues' must be non-empty"),
    ("gaussian-labels", fg.gaussian_data, {"n": 10, "eigenvalues": [1.0], "labels": "noisy"}, VE, r"^gaussian_data: 'labels' must be one of 'classes', 'teacher'"),
    ("gaussian-noise", fg.gaussian_data, {"n": 10, "eigenvalues": [1.0], "noise": -1.0}, VE, r"^gaussian_data: 'noise' must be >= 0"),
    ("gaussian-seed", fg.gaussian_data, {"n": 10, "eigenvalues": [1.0], "seed": -2}, VE, r"^gaussian_data: 'seed' must be an integer >= 0"),
    ("gaussian-angle", fg.gaussian_data, {"n": 10, "eigenvalues": [1.0, 1.0], "angle": np.inf}, VE, r"^gaussian_data: 'angle' must be finite"),
    ("normalize-1d", fg.normalize, {"X": np.arange(3.0)}, VE, r"^normalize: 'X' must be a 2-D array"),
    ("whiten-nan", fg.whiten, {"X": with_nan(_X)}, VE, r"^whiten: 'X' must be finite"),
]


@pytest.mark.parametrize("func, kwargs, exc, pattern", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_input(no_kernels, func, kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern) as info:
        func(**kwargs)
    # the base classes callers can catch, and the one message shape
    assert isinstance(info.value, ValueError if exc is VE else TypeError)
    msg = str(info.value)
    assert "' must be " in msg and "; got " in msg and msg.endswith(".")


def test_good_inputs_reach_the_kernel(no_kernels):
    """The guard fixture is effective: valid arguments do reach the (patched) kernel."""
    with pytest.raises(AssertionError, match="kernel ran"):
        gd()
    with pytest.raises(AssertionError, match="kernel ran"):
        sgd()


@pytest.mark.parametrize("batch_size", [1, 100])
def test_batch_size_limits_are_inclusive(batch_size):
    assert sgd(batch_size=batch_size, epochs=1).losses.shape == (2,)


def test_exception_classes():
    assert issubclass(VE, ValueError) and issubclass(TE, TypeError)
    assert fg.FastGDValueError is not fg.FastGDTypeError


# --------------------------------------------------------------------------------------
# The hardening issue's examples: each is refused in the one message shape, naming the
# function and the argument, before any kernel runs, allocating almost nothing (checked
# with tracemalloc, not with a clock), and without a warning.
_BIGX = np.ones((5, 100_000))  # H would be 100000 x 100000 (80 GB)
_T = fg.theory
_CH = fg.chain


def _plot(name, *args, **kw):
    def call():
        import fastgd.plot as P

        return getattr(P, name)(*args, **kw)
    return call


HARDENING = [
    # integers a kernel cannot hold
    ("sweep", lambda: fg.sweep("gd", lr=[0.5], condition=[1], steps=2**70), "steps"),
    ("sweep", lambda: fg.sweep("sgd", lr=[0.5], condition=[1], epochs=2**70), "epochs"),
    ("critical_lr", lambda: fg.critical_lr(_X, _Y, method="sgd", epochs=2**70), "epochs"),
    ("sgd_as_critical_lr", lambda: _T.sgd_as_critical_lr(_X, epochs=2**70), "epochs"),
    ("limits", lambda: _T.limits(_X, epochs=2**70), "epochs"),
    ("chain_sweep", lambda: _CH.chain_sweep([[0.5, 0.5]], [0.1], steps=2**70), "steps"),
    # memory and work: refused with the figure, before anything is allocated
    ("gd", lambda: fg.gd(_BIGX, np.ones(5), 0.1, 10), "X"),
    ("spectrum", lambda: fg.spectrum(_BIGX), "X"),
    ("hessian", lambda: fg.hessian(_BIGX), "X"),
    ("whiten", lambda: fg.whiten(_BIGX), "X"),
    ("eta_max", lambda: _T.eta_max(_BIGX), "X"),
    ("limits", lambda: _T.limits(_BIGX), "X"),
    ("critical_lr", lambda: fg.critical_lr(_BIGX, np.ones(5)), "X"),
    ("gd", lambda: fg.gd(_X, _Y, 1.0, 10**12), "steps"),
    ("sweep", lambda: fg.sweep("sgd", lr=[0.1], condition=[1], seeds=10**12), "seeds"),
    ("sweep", lambda: fg.sweep("gd", lr=np.full(10**6, 0.5), condition=np.ones(10**6)), "lr"),
    ("limits", lambda: _T.limits(_X, batch_size=1, almost_sure=True, seeds=10**12), "seeds"),
    ("lsp_lambda_max", lambda: _T.lsp_lambda_max(_X, _Y, presentations=10**12),
     "presentations"),
    ("critical_lr", lambda: fg.critical_lr(_X, _Y, method="sgd", epochs=10**12), "epochs"),
    # validated before the work, not after
    ("sweep", lambda: fg.sweep("sgd", lr=[0.05], condition=[1], epochs=2, almost_sure="yes"),
     "almost_sure"),
    # raw NumPy / Python errors
    ("eta_max", lambda: _T.eta_max([[1.0, 2.0], [3.0]]), "X"),
    ("limits", lambda: _T.limits([[1.0, 2.0], [3.0]]), "X"),
    ("spectrum", lambda: fg.spectrum(_X * 1e200), "X"),
    ("critical_lr", lambda: fg.critical_lr(_X * 1e200, _Y), "X"),
    ("critical_lr", lambda: fg.critical_lr(_X, _Y, lr_range=5.0), "lr_range"),
    # overflow instead of warnings / NaN
    ("whiten", lambda: fg.whiten(_X * 1e200), "X"),
    ("gd", lambda: fg.gd(_X * 1e200, _Y, 0.5, 10), "X"),
    ("gd_trajectory", lambda: _T.gd_trajectory(_X, _Y, 1e6, 100), "steps"),
    ("gd_loss", lambda: _T.gd_loss(_X, _Y, 1e300, 5), "lr"),
    ("sgd_ms_error", lambda: _T.sgd_ms_error(_X, _Y, 5.0, 2000), "steps"),
    # accepted before, refused now
    ("sweep", lambda: fg.sweep("gd", lr=[0.5], condition=[1], progress="yes"), "progress"),
    ("sweep", lambda: fg.sweep("gd", lr=[0.5], condition=[1], dtype=None), "dtype"),
    ("warmup", lambda: fg.warmup(float32="yes"), "float32"),
    ("limits", lambda: _T.limits(_X, threads="x"), "threads"),
    ("limits", lambda: _T.limits(_X, threads=1000), "threads"),
    ("plot_data", _plot("plot_data", _X, _Y, legend="False"), "legend"),
    ("plot_regimes", _plot("plot_regimes", fg.spectrum(_X), lr_max=0), "lr_max"),
    ("plot_phase_diagram", _plot("plot_phase_diagram", fg.spectrum(_X)), "result"),
]


@pytest.mark.parametrize("func_name, call, name", HARDENING,
                         ids=[f"{c[0]}-{c[2]}-{k}" for k, c in enumerate(HARDENING)])
def test_hardening_examples(no_kernels, func_name, call, name):
    import tracemalloc
    import warnings

    tracemalloc.start()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises((VE, TE)) as info:
                call()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    msg = str(info.value)
    assert msg.startswith(f"{func_name}: '{name}' must be "), msg
    assert "; got " in msg and msg.endswith("."), msg
    assert not caught, [str(w.message) for w in caught]
    assert peak < 64 << 20, f"{peak / 2**20:.0f} MiB allocated before refusing"


def test_size_refusals_say_how_to_go_ahead():
    with pytest.raises(VE, match=r"1,000,000,000,001 recorded steps .* TiB; use fewer steps, "
                                 r"or set FASTGD_MAX_BYTES to go ahead\.$"):
        fg.gd(_X, _Y, 1.0, 10**12)
    with pytest.raises(VE, match=r"raise max_bytes= to go ahead\.$"):
        fg.sweep("gd", lr=[0.5] * 4, condition=[1.0], max_bytes=100)


def test_zero_inputs_have_infinite_rates():
    """H = 0: no rate diverges (documented on Spectrum)."""
    s = fg.spectrum(np.zeros((10, 2)))
    assert (s.eta_max, s.eta_opt, s.eta_minimax) == (np.inf, np.inf, np.inf)


def test_a_huge_budget_that_converges_early_costs_what_it_used():
    """`fg.gd(X, y, 1.0, 10**9)` converges in a few steps: it must not fill a 8 GB loss
    record first (it took 39 s and ~8 GB).  Records are allocated lazily and returned as
    views, so the process touches only the steps that ran (measured in a fresh process:
    its peak resident memory)."""
    import subprocess
    import sys

    from fastgd.engine import cost as _cost

    steps = int(min(10**9, _cost.memory_limit()[0] / 8 / 2))  # within this machine's limit
    # the same call with a small budget first, so that compiling the kernel (whose memory
    # depends on the cache's state, not on the budget) is in the baseline
    code = ("import resource, fastgd as fg; X, y = fg.lecture_data(); "
            "fg.gd(X, y, 1.0, 10); "
            "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; "
            f"r = fg.gd(X, y, 1.0, {steps}); "
            "print(r.status.name, r.steps_to_tol, len(r.losses), "
            "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    status, at, n, grown_kb = out.stdout.split()
    assert status == "CONVERGED" and int(n) == int(at) + 1 < 1000
    assert int(grown_kb) < 1 << 18  # < 256 MiB more resident, against 8 GB before
