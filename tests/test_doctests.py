"""The Examples sections of the public docstrings run and print what they say."""

import doctest
import importlib
import os

import pytest

JITLESS = os.environ.get("NUMBA_DISABLE_JIT") == "1"

MODULES = ["fastgd.data", "fastgd.spectrum", "fastgd.linear.run", "fastgd.linear.sweep", "fastgd.theory",
           "fastgd.chain", "fastgd.net", "fastgd._warmup"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    if JITLESS and name == "fastgd.linear.sweep":
        pytest.skip("critical_lr's example runs 1e5-step growth measurements: minutes in "
                    "plain Python")
    mod = importlib.import_module(name)
    res = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    assert res.failed == 0
    assert res.attempted > 0, f"{name} has no doctested examples"
