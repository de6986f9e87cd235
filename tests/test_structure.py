"""The house rules of ``src/fastgd``, checked on its source (issue 21).

* the ``fastgd.*`` import graph has no cycle, not even two modules importing each other
  lazily inside a function;
* no private (underscore) name or module crosses a folder: the folders are the top-level
  ``fastgd`` files and each subpackage (``engine``, ``kernels``, ``linear``, ``chain``,
  ``net``, ``theory``, ``cli``); inside one folder private names are fine;
* no module over 600 lines, no function over 80 (Numba kernels excepted);
* every name a module exports in ``__all__`` is documented, and every public function or
  class among them has an ``Examples`` section (which ``tests/test_doctests.py`` runs).

Everything but the last two tests reads the source with :mod:`ast` and imports nothing, so
a failure names the file and line even when the package does not import.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import pathlib
import re
from functools import cache

import pytest

SRC = pathlib.Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "fastgd"

MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80

#: Kernel loops that the decorator and factory rules below cannot see, allowed over
#: MAX_FUNCTION_LINES because splitting them costs speed: inside a Numba kernel a call to
#: another kernel with array arguments is not free (a reference-count update per array,
#: and the compiler no longer sees one loop nest to vectorise), so per-step and per-lane
#: code is written out in one loop.  Only kernel loops belong here, never API code; an
#: entry that is no longer long, or no longer exists, fails ``test_allow_list_is_current``.
#: Entries are (module, qualified name), each with a comment saying which loop it is.
KERNEL_LOOPS: set[tuple[str, str]] = set()


# ----------------------------------------------------------------------------- source

@dataclasses.dataclass(frozen=True)
class Module:
    name: str          # fastgd.linear.run; a package's __init__ is named after the package
    path: pathlib.Path
    is_pkg: bool
    tree: ast.Module
    lines: int

    @property
    def package(self) -> str:
        """The package that relative imports start from."""
        return self.name if self.is_pkg else self.name.rpartition(".")[0]

    @property
    def folder(self) -> str:
        """``fastgd`` for the top-level files, else the subpackage (``linear``, ...)."""
        parts = self.name.split(".")
        if len(parts) == 1 or (len(parts) == 2 and not self.is_pkg):
            return "fastgd"
        return parts[1]

    def where(self, node) -> str:
        return f"{self.path.relative_to(SRC.parent)}:{node.lineno}"


@cache
def modules() -> dict[str, Module]:
    out = {}
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(SRC).with_suffix("")
        parts = list(rel.parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts.pop()
        text = path.read_text(encoding="utf-8")
        name = ".".join(parts)
        try:
            tree = ast.parse(text, str(path))
        except SyntaxError as exc:  # reported by test_every_module_parses
            UNPARSED[name] = f"{path.relative_to(SRC.parent)}:{exc.lineno}: {exc.msg}"
            tree = ast.Module(body=[], type_ignores=[])
        out[name] = Module(name, path, is_pkg, tree, len(text.splitlines()))
    return out


UNPARSED: dict[str, str] = {}


def test_every_module_parses():
    modules()
    assert not UNPARSED, "\n".join(UNPARSED.values())


def folder_of(name: str) -> str:
    mod = modules().get(name)
    if mod is not None:
        return mod.folder
    parts = name.split(".")
    return "fastgd" if len(parts) <= 2 else parts[1]


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


@dataclasses.dataclass(frozen=True)
class Import:
    src: str           # importing module
    target: str        # imported fastgd module
    names: tuple       # names imported from it (empty for ``import a.b`` or a submodule)
    where: str


def _resolve_from(mod: Module, node: ast.ImportFrom) -> str | None:
    if node.level == 0:
        return node.module
    base = mod.package.split(".")
    if node.level > 1:
        base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


@cache
def imports() -> tuple[Import, ...]:
    """Every import of a ``fastgd`` module, at top level or inside a function.

    ``from fastgd.x import y`` imports the module ``fastgd.x.y`` when that is a module,
    else the name ``y`` of ``fastgd.x``.  The implicit imports of parent packages
    (``import fastgd.a.b`` runs ``fastgd/a/__init__.py``) are not edges: every module
    would then import ``fastgd`` and the graph would say nothing.
    """
    known = modules()
    out = []
    for mod in known.values():
        for node in ast.walk(mod.tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name == "fastgd" or alias.name.startswith("fastgd."):
                        out.append(Import(mod.name, alias.name, (), mod.where(node)))
            elif isinstance(node, ast.ImportFrom):
                base = _resolve_from(mod, node)
                if base is None or not (base == "fastgd" or base.startswith("fastgd.")):
                    continue
                plain = []
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    if sub in known:
                        out.append(Import(mod.name, sub, (), mod.where(node)))
                    else:
                        plain.append(alias.name)
                if plain:
                    out.append(Import(mod.name, base, tuple(plain), mod.where(node)))
    return tuple(out)


def graph() -> dict[str, set[str]]:
    g = {name: set() for name in modules()}
    for imp in imports():
        if imp.target != imp.src:
            g[imp.src].add(imp.target)
    return g


def find_cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a path a -> ... -> a) per strongly connected component (Tarjan)."""
    index, low, stack, on_stack, comps = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(g.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(comp)

    for v in sorted(g):
        if v not in index:
            visit(v)

    cycles = []
    for comp in comps:  # shortest cycle through the component's first module (BFS)
        start = min(comp)
        prev, frontier, end = {start: None}, [start], None
        while frontier and end is None:
            nxt = []
            for v in frontier:
                for w in sorted(g[v] & comp):
                    if w == start:
                        end = v
                        break
                    if w not in prev:
                        prev[w] = v
                        nxt.append(w)
                if end is not None:
                    break
            frontier = nxt
        path = [end]
        while prev[path[-1]] is not None:
            path.append(prev[path[-1]])
        cycles.append(path[::-1] + [start])
    return cycles


def test_the_graph_sees_the_package():
    g = graph()
    assert {"fastgd", "fastgd.linear.run", "fastgd.kernels.jit"} <= set(g)
    assert "fastgd.linear.run" in g["fastgd"]
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]


def test_no_two_modules_import_each_other():
    g = graph()
    pairs = sorted({tuple(sorted((a, b))) for a in g for b in g[a] if a in g.get(b, ())})
    where = {(i.src, i.target): i.where for i in imports()}
    assert not pairs, "modules importing each other:\n" + "\n".join(
        f"  {a} ({where[a, b]}) <-> {b} ({where[b, a]})" for a, b in pairs)


def test_no_import_cycle():
    cycles = find_cycles(graph())
    assert not cycles, "import cycles:\n" + "\n".join("  " + " -> ".join(c) for c in cycles)


# ------------------------------------------------------------------------ private names

def _module_aliases(mod: Module) -> dict[str, str]:
    """Local names bound to a fastgd module anywhere in ``mod`` (``from fastgd.x import
    grid``, ``import fastgd.x.grid as grid``)."""
    known = modules()
    out = {}
    for node in ast.walk(mod.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname and alias.name in known:
                    out[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom):
            base = _resolve_from(mod, node)
            for alias in node.names:
                if base and f"{base}.{alias.name}" in known:
                    out[alias.asname or alias.name] = f"{base}.{alias.name}"
    return out


def private_crossings() -> list[str]:
    bad = []
    for imp in imports():
        if folder_of(imp.src) == folder_of(imp.target):
            continue
        hidden = [p for p in imp.target.split(".")[1:] if is_private(p)]
        if hidden:
            bad.append(f"{imp.where}: {imp.src} imports the private module {imp.target}")
        names = [n for n in imp.names if is_private(n)]
        if names:
            bad.append(f"{imp.where}: {imp.src} imports {', '.join(names)} from {imp.target}")
    # the same through an imported module: ``from fastgd.engine import grid; grid._x``
    for mod in modules().values():
        aliases = _module_aliases(mod)
        for node in ast.walk(mod.tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in aliases and is_private(node.attr)):
                target = aliases[node.value.id]
                if folder_of(target) != mod.folder:
                    bad.append(f"{mod.where(node)}: {mod.name} uses {target}.{node.attr}")
    return sorted(set(bad))


def test_no_private_name_crosses_a_folder():
    bad = private_crossings()
    assert not bad, "private names used from another folder:\n" + "\n".join(
        "  " + b for b in bad)


# ------------------------------------------------------------------------------ sizes

def test_no_module_over_600_lines():
    long = sorted((m.lines, m.name) for m in modules().values() if m.lines > MAX_MODULE_LINES)
    assert not long, f"modules over {MAX_MODULE_LINES} lines:\n" + "\n".join(
        f"  {name}: {n}" for n, name in long[::-1])


def _numba_names(mod: Module) -> tuple[set[str], set[str]]:
    """(names bound to numba modules, names bound to numba objects or fastgd's jit)."""
    modules_, objects = set(), set()
    for node in ast.walk(mod.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "numba":
                    modules_.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            base = _resolve_from(mod, node) or ""
            if base.split(".")[0] == "numba" or base.startswith("numba_cuda"):
                objects.update(a.asname or a.name for a in node.names)
            elif base == "fastgd.kernels.jit" or base == "fastgd.kernels":
                objects.update(a.asname or a.name for a in node.names if a.name == "jit")
    if mod.name == "fastgd.kernels.jit":
        objects.add("jit")
    return modules_, objects


def _root(expr) -> str | None:
    while isinstance(expr, (ast.Call, ast.Attribute)):
        expr = expr.func if isinstance(expr, ast.Call) else expr.value
    return expr.id if isinstance(expr, ast.Name) else None


def _is_kernel_module(mod: Module) -> bool:
    return mod.name.endswith(".kernels") or mod.name.startswith("fastgd.kernels.")


def function_lengths() -> list[tuple[str, str, int, bool]]:
    """(module, qualified name, lines, is_kernel) for every function.

    A function's length runs from its ``def`` line to its last line, less its docstring
    (documentation is never a reason to split a function) and less the nested kernels
    it defines (a kernel factory is as long as its own code).  A kernel is a function
    decorated with numba's or fastgd's ``jit`` (``@jit``, ``@njit(...)``, ``@numba.*``,
    ``@intrinsic``, ``@cuda.jit``), passed to ``jit(...)`` in its module, or defined
    inside a function of a kernels module (``kernels.py``, ``fastgd/kernels/*``: a kernel
    factory).
    """
    return [row for mod in modules().values() for row in _functions(mod)]


def _functions(mod: Module) -> list[tuple[str, str, int, bool]]:
    np_mods, np_objs = _numba_names(mod)
    numba_ = np_objs | np_mods
    jitted = {a.id for node in ast.walk(mod.tree)
              if isinstance(node, ast.Call) and _root(node.func) in numba_
              for a in node.args if isinstance(a, ast.Name)}
    kernel_module = _is_kernel_module(mod)
    out = []

    def walk(node, prefix, nested):
        """Record the functions under ``node``; return (lines, is_kernel) of those
        directly under it (through statements, not through other functions)."""
        found = []
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                qual = prefix + child.name
                first = child.body[0]
                n = child.end_lineno - child.lineno + 1
                if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                        and isinstance(first.value.value, str)):
                    n -= first.end_lineno - first.lineno + 1
                n -= sum(ln for ln, k in walk(child, qual + ".", True) if k)
                is_k = (child.name in jitted or (nested and kernel_module)
                        or any(_root(d) in numba_ for d in child.decorator_list))
                out.append((mod.name, qual, n, is_k))
                found.append((child.end_lineno - child.lineno + 1, is_k))
            elif isinstance(child, ast.ClassDef):
                walk(child, prefix + child.name + ".", nested)
            else:
                found += walk(child, prefix, nested)
        return found

    walk(mod.tree, "", False)
    return out


def test_no_function_over_80_lines():
    long = sorted(((n, m, q) for m, q, n, k in function_lengths()
                   if n > MAX_FUNCTION_LINES and not k and (m, q) not in KERNEL_LOOPS),
                  reverse=True)
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines (docstring excluded):\n" + \
        "\n".join(f"  {m}.{q}: {n}" for n, m, q in long)


def test_allow_list_is_current():
    lengths = {(m, q): (n, k) for m, q, n, k in function_lengths()}
    stale = [f"{m}.{q}: " + ("gone" if (m, q) not in lengths else
                             "detected as a kernel already" if lengths[m, q][1] else
                             f"{lengths[m, q][0]} lines")
             for m, q in sorted(KERNEL_LOOPS)
             if (m, q) not in lengths or lengths[m, q][1] or lengths[m, q][0] <= MAX_FUNCTION_LINES]
    assert not stale, "KERNEL_LOOPS entries to remove:\n" + "\n".join("  " + s for s in stale)


def test_kernel_detection():
    kernels = {(m, q) for m, q, n, k in function_lengths() if k}
    assert ("fastgd.kernels.rng", "mix32") in kernels            # @jit
    assert ("fastgd.kernels.steps", "_check") in kernels         # check = jit(_check)
    assert ("fastgd.linear.run", "gd") not in kernels


# ------------------------------------------------------------------------ public names

@cache
def _all_modules() -> tuple[str, ...]:
    """fastgd, and every module whose source assigns ``__all__``."""
    found = {"fastgd"}
    for mod in modules().values():
        for node in mod.tree.body:
            targets = (node.targets if isinstance(node, ast.Assign) else
                       [node.target] if isinstance(node, (ast.AnnAssign, ast.AugAssign)) else [])
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
                found.add(mod.name)
    return tuple(sorted(found))


def _import(name):
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:  # an optional dependency, never fastgd itself
        if exc.name and exc.name.split(".")[0] != "fastgd":
            pytest.skip(f"{name} needs {exc.name}")
        raise


def _data_documented(module, name) -> bool:
    """A constant is documented by a ``#:`` comment above its assignment or a string
    right after it (Sphinx's attribute docstrings), in the module that assigns it."""
    for mod in modules().values():
        body = mod.tree.body
        lines = mod.path.read_text(encoding="utf-8").splitlines()
        for i, node in enumerate(body):
            targets = (node.targets if isinstance(node, ast.Assign) else
                       [node.target] if isinstance(node, ast.AnnAssign) else [])
            if not any(isinstance(t, ast.Name) and t.id == name for t in targets):
                continue
            above = lines[node.lineno - 2].strip() if node.lineno >= 2 else ""
            after = body[i + 1] if i + 1 < len(body) else None
            if above.startswith("#:") or (
                    isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                    and isinstance(after.value.value, str) and after.value.value.strip()):
                return True
    return False


def _own_doc(obj) -> str:
    """The docstring ``obj`` itself carries (not one inherited from its type or base, nor
    the signature that ``dataclass`` writes when there is none)."""
    if inspect.isclass(obj):
        doc = obj.__dict__.get("__doc__") or ""
        if dataclasses.is_dataclass(obj) and doc.startswith(obj.__name__ + "("):
            return ""
        return doc
    if inspect.ismodule(obj) or callable(obj):
        return getattr(obj, "__doc__", None) or ""
    return ""


def _exports(modname):
    """(name, object) of ``modname.__all__``, less those that the module defining the
    object exports itself (each object is checked once, where it is defined)."""
    mod = _import(modname)
    for name in mod.__all__:
        if name.startswith("__") and name.endswith("__"):
            continue
        obj = getattr(mod, name)
        owner = getattr(obj, "__module__", None)
        if owner and owner != modname and owner in _all_modules() \
                and name in getattr(importlib.import_module(owner), "__all__", ()):
            continue
        yield name, obj


@pytest.mark.parametrize("modname", _all_modules())
def test_exported_names_are_documented(modname):
    mod = _import(modname)
    missing = []
    for name, obj in _exports(modname):
        if inspect.isclass(obj) or inspect.isroutine(obj) or inspect.ismodule(obj) \
                or callable(obj):
            ok = bool(_own_doc(obj).strip())
        else:
            ok = _data_documented(mod, name)
        if not ok:
            missing.append(name)
    assert not missing, f"{modname}.__all__ names without a docstring: {missing}"


_EXAMPLES = re.compile(r"^\s*Examples\s*\n\s*-{3,}\s*\n(.*)", re.M | re.S)


@pytest.mark.parametrize("modname", _all_modules())
def test_exported_callables_have_examples(modname):
    missing = []
    for name, obj in _exports(modname):
        if not (inspect.isclass(obj) or inspect.isfunction(obj)) or is_private(name):
            continue
        m = _EXAMPLES.search(_own_doc(obj))
        if m is None or ">>>" not in m.group(1):
            missing.append(f"{name} ({obj.__module__})")
    assert not missing, f"{modname}.__all__ without an Examples section (>>>): {missing}"
