"""The Examples sections of the docstrings run and print what they say.

Every module under ``src/fastgd`` is collected by walking the package, so a new module's
examples run without touching this file; a module that defines a callable exported in an
``__all__`` must have examples (``tests/test_structure.py`` says which callables lack
them).  Each docstring's examples run in a fresh temporary directory, with NumPy's and
Python's global random generators seeded and NumPy's print options restored afterwards,
so they give the same output in any order and leave nothing behind.
"""

import contextlib
import doctest
import functools
import importlib
import inspect
import io
import os
import pathlib
import random
import sys

import numpy as np
import pytest

PKG = pathlib.Path(__file__).resolve().parents[1] / "src" / "fastgd"

JITLESS = os.environ.get("NUMBA_DISABLE_JIT") == "1"

#: Modules not collected, with the reason.  (None today: every module imports without
#: optional dependencies; the CUDA backend imports ``numba.cuda`` inside its functions.
#: A module whose import needs an optional package is skipped with that package's name.)
SKIP_MODULES: dict[str, str] = {}

#: Examples too slow without the JIT (NUMBA_DISABLE_JIT=1 runs the kernels as plain
#: Python), keyed by the public object whose docstring holds them.
JITLESS_SLOW = {
    "critical_lr": "critical_lr's example runs 1e5-step growth measurements: minutes in "
                   "plain Python",
}

FLAGS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS


def _module_names():
    names = []
    for path in sorted(PKG.rglob("*.py")):
        parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names.append(".".join(parts))
    return names


MODULES = _module_names()


def _import(name):
    if name in SKIP_MODULES:
        pytest.skip(SKIP_MODULES[name])
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:  # an optional dependency, never fastgd itself
        if exc.name and exc.name.split(".")[0] != "fastgd":
            pytest.skip(f"{name} needs the optional package {exc.name}")
        raise


@functools.cache
def _exported_homes():
    """Modules that define a public function or class listed in some ``__all__``."""
    homes = set()
    for name in MODULES:
        if name in SKIP_MODULES:
            continue
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError:
            continue
        for attr in getattr(mod, "__all__", ()):
            obj = getattr(mod, attr, None)
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and not attr.startswith("_"):
                homes.add(obj.__module__)
    return homes


def _jitless_skips():
    import fastgd as fg

    out = {}
    for attr, reason in JITLESS_SLOW.items():
        obj = getattr(fg, attr)
        out[f"{obj.__module__}.{obj.__qualname__}"] = reason
    return out


@contextlib.contextmanager
def _isolated(tmp_path):
    """Seeded global generators, restored print options, a private working directory,
    and no figure left open."""
    cwd, opts = os.getcwd(), np.get_printoptions()
    state, np_state = random.getstate(), np.random.get_state()
    random.seed(0)
    np.random.seed(0)
    os.chdir(tmp_path)
    try:
        yield
    finally:
        os.chdir(cwd)
        np.set_printoptions(**opts)
        random.setstate(state)
        np.random.set_state(np_state)
        if "matplotlib.pyplot" in sys.modules:
            sys.modules["matplotlib.pyplot"].close("all")


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, tmp_path):
    mod = _import(name)
    skips = _jitless_skips() if JITLESS else {}
    tests = [t for t in doctest.DocTestFinder().find(mod, name) if t.examples]
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report, attempted, failed, skipped = io.StringIO(), 0, 0, []
    for test in sorted(tests, key=lambda t: t.name):
        if test.name in skips:
            skipped.append(f"{test.name}: {skips[test.name]}")
            continue
        with _isolated(tmp_path):
            result = runner.run(test, out=report.write)
        attempted += result.attempted
        failed += result.failed
    assert failed == 0, f"{name}: {failed} failing examples\n{report.getvalue()}"
    if skipped and not attempted:
        pytest.skip("; ".join(skipped))
    if name in _exported_homes():
        assert attempted > 0, f"{name} defines exported callables but has no doctested examples"
