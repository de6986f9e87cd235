"""Shared fixtures for the fastgd test suite (keep them small and generic).

Reference implementations and helpers live in ``tests/naive.py`` (``import naive``).
"""

from __future__ import annotations

import numpy as np
import pytest

import fastgd as fg


@pytest.fixture(scope="session")
def lecture():
    """The lecture's dataset (fresh arrays are cheap, but keep one per session)."""
    return fg.lecture_data()


@pytest.fixture
def rng():
    """A fixed-seed generator (each test gets its own)."""
    return np.random.default_rng(12345)


@pytest.fixture
def no_kernels(monkeypatch):
    """Make every linear-unit grid kernel fail if called: errors must come first."""
    from fastgd.linear import table

    def forbidden(*args, **kwargs):
        raise AssertionError("a kernel ran before the arguments were validated")

    monkeypatch.setattr(table, "launch", forbidden)
    return forbidden
