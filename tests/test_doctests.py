"""The Examples sections of the public docstrings run and print what they say."""

import doctest
import importlib

import pytest

MODULES = ["fastgd.data", "fastgd.spectrum", "fastgd.run", "fastgd.sweep", "fastgd.theory",
           "fastgd.chain"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    mod = importlib.import_module(name)
    res = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    assert res.failed == 0
    assert res.attempted > 0, f"{name} has no doctested examples"
