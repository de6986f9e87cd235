"""``sweep(lr_unit="eta_max")``: every cell equals, bit for bit, a sweep of that dataset
alone at its absolute rates ``lr * 2/lambda_max`` (the per-dataset sweeps stacked by
hand), for GD and SGD, float64 and float32, 1 and 2 threads, checkpointed, interrupted
and resumed."""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import importlib

import numpy as np
import pytest

import fastgd as fg
from fastgd.engine.grid import max_threads
from fastgd.status import Status

E = importlib.import_module("fastgd.linear.executors")

REL = np.geomspace(0.05, 3.0, 10)  # the last rates diverge
TWO = min(2, max_threads())  # numba allows one thread on one core (taskset -c 0)


@pytest.fixture(scope="module")
def data():
    """Three datasets of very different scales (d = 2): raw, standardised, tiny."""
    X, y = fg.lecture_data()
    return {"raw": (X * np.array([300.0, 40.0]) + np.array([20.0, -10.0]), y),
            "std": (fg.normalize(X), y), "tiny": (X[:40] * 1e-3, y[:40])}


def _by_hand(method, data, rel, **kw):
    """The relative sweep the old way: one absolute sweep per dataset, stacked."""
    parts = []
    for X, y in data.values():
        eta = fg.sweep("gd", lr=[1.0], data=[(X, y)], steps=0,
                       bias=kw.get("bias", False)).gd_limit[0]
        parts.append(fg.sweep(method, lr=rel * eta, data=[(X, y)], **kw))
    first = parts[0]
    fields = {}
    for f in dataclasses.fields(fg.SweepResult):
        v = getattr(first, f.name)
        if isinstance(v, np.ndarray) and f.name not in ("lr", "seeds", "curve_t"):
            v = np.concatenate([getattr(p, f.name) for p in parts])
        fields[f.name] = v
    fields.update(lr=rel, lr_unit="eta_max", names=tuple(data))
    return fg.SweepResult(**fields)


def _same(got, want):
    assert got.equals(want)
    assert got.lr_unit == "eta_max" and got.names == want.names
    np.testing.assert_array_equal(got.lr, want.lr)
    spec = got.meta["spec"]
    assert spec["lr_unit"] == "eta_max"
    np.testing.assert_array_equal(spec["lr"], want.lr)
    for name in ("weights", "curves"):
        assert (getattr(got, name) is None) == (getattr(want, name) is None)


CASES = [
    ("gd", dict(steps=300, curve_points=5, weights=True)),
    ("gd", dict(steps=200, momentum=0.5, dtype="float32")),
    ("sgd", dict(epochs=6, seeds=2, curve_points=4, weights=True)),
    ("sgd", dict(epochs=4, seeds=[3, 1], batch_size=4, order="replacement",
                 momentum=0.3, nesterov=True)),
    ("sgd", dict(epochs=4, order="cyclic", dtype="float32")),
]


@pytest.mark.parametrize("method, kw", CASES)
def test_relative_equals_per_dataset_sweeps(data, method, kw):
    want = _by_hand(method, data, REL, threads=TWO, **kw)
    assert want.diverged.any() and (want.status != Status.DIVERGED).any()
    for threads in (TWO, 1):
        got = fg.sweep(method, lr=REL, lr_unit="eta_max", data=data, threads=threads, **kw)
        _same(got, want)
    np.testing.assert_array_equal(got.absolute_lr, REL[None] * got.gd_limit[:, None])
    if method == "gd" and "dtype" not in kw:  # an executor runs the same cells
        with cf.ThreadPoolExecutor(2) as ex:
            _same(fg.sweep(method, lr=REL, lr_unit="eta_max", data=data, engine=ex,
                           lanes=4, **kw), want)


def test_relative_condition_family():
    kw = dict(condition=[1.0, 30.0, 1e3], n=50, steps=150)
    got = fg.sweep("gd", lr=REL, lr_unit="eta_max", threads=TWO, **kw)
    abs_ = fg.sweep("gd", lr=[1.0], condition=kw["condition"], n=50, steps=0)
    for k in range(3):
        one = fg.sweep("gd", lr=REL * abs_.gd_limit[k], condition=kw["condition"][k], n=50,
                       steps=150)
        assert one.equals(dataclasses.replace(
            got, lr=one.lr, lr_unit="absolute", **{f: getattr(got, f)[k:k + 1] for f in (
                "lambda_max", "lambda_min", "condition", "status", "final_loss",
                "steps_to_tol", "diverged_at", "gd_limit", "momentum_limit", "sgd_ms_limit",
                "sgd_as_limit", "growing")}, names=one.names))
    np.testing.assert_array_equal(got.meta["spec"]["condition"], kw["condition"])


def test_relative_checkpoint_interrupt_resume(data, tmp_path, monkeypatch, batches):
    kw = dict(epochs=5, seeds=2, lanes=4, threads=TWO)
    want = _by_hand("sgd", data, REL, **kw)
    ck = tmp_path / "ck"
    real, calls = E.run_block, []

    def run_block(*a, **k):  # Ctrl-C while the second block runs
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(E, "run_block", run_block)
    with pytest.raises(fg.SweepInterrupted) as info:
        fg.sweep("sgd", lr=REL, lr_unit="eta_max", data=data, checkpoint=ck, **kw)
    monkeypatch.setattr(E, "run_block", real)
    part = info.value.result
    done = part.status != Status.NOT_RUN
    assert done.any() and not done.all()
    assert part.lr_unit == "eta_max" and part.names == tuple(data)
    np.testing.assert_array_equal(part.gd_limit, want.gd_limit)
    for name in ("status", "final_loss", "steps_to_tol", "diverged_at"):
        np.testing.assert_array_equal(getattr(part, name)[done], getattr(want, name)[done])
    resumed = fg.sweep("sgd", lr=REL, lr_unit="eta_max", data=data, checkpoint=ck, **kw)
    _same(resumed, want)
    assert resumed.meta["chunks_resumed"] > 0 and resumed.meta["chunks_computed"] > 0
    again = fg.sweep("sgd", lr=REL, lr_unit="eta_max", data=data, checkpoint=ck, **kw)
    _same(again, want)
    assert again.meta["chunks_resumed"] == again.meta["chunks_total"]


@pytest.mark.parametrize("scale, arg", [(0.0, "lr_unit"), (1e-160, "data")])
def test_relative_without_eta_max_is_refused(scale, arg):
    X, y = fg.lecture_data()
    with pytest.raises(fg.FastGDValueError, match=f"'{arg}'.*eta_max"):
        fg.sweep("gd", lr=[0.5], lr_unit="eta_max", data=[(X, y), (X * scale, y)], steps=5)
