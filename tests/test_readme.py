"""README.md and docs/: every code block works as written.

* every ```python block runs, each in a fresh namespace and a private working directory
  (so each block must be self-contained: a reader copies one block, not the page);
* every shell block (```bash / ```sh / ```console, and an unlabelled block whose lines
  are commands) is split with :mod:`shlex`; each ``fastgd ...`` line is parsed by the
  command's own argument parser (an option the README names must exist), and the cheap
  ones (``fastgd info``, ``fastgd boundary`` on the lecture's data, ``--help``) run;
* the test command of README's first lines is the one ``.ci/run`` runs.

A block is left out with a visible reason by an HTML comment on the line above its fence:
``<!-- test: skip (needs a CUDA GPU) -->``.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
import shlex
import tomllib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
JITLESS = os.environ.get("NUMBA_DISABLE_JIT") == "1"

SHELL = {"bash", "sh", "shell", "console"}
COMMANDS = {"fastgd", "python", "python3", "pip"}
_FENCE = re.compile(r"^(\s*)```\s*([\w+-]*)\s*$")
_SKIP = re.compile(r"<!--\s*test:\s*skip\s*\(?(.*?)\)?\s*-->")


@dataclasses.dataclass(frozen=True)
class Block:
    file: str
    line: int          # line of the opening fence (1-based)
    lang: str
    section: str       # the last heading above the block
    code: str
    skip: str | None   # the reason given by a skip comment

    @property
    def id(self):
        return f"{self.file}:{self.line}"


def _blocks(path: pathlib.Path) -> list[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    out, i, section = [], 0, ""
    rel = str(path.relative_to(ROOT))
    while i < len(lines):
        if lines[i].startswith("#"):
            section = lines[i].lstrip("#").strip()
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, lang = m.group(1), m.group(2).lower()
        j = i + 1
        while j < len(lines) and lines[j].strip() != "```":
            j += 1
        code = "\n".join(ln[len(indent):] if ln.startswith(indent) else ln
                         for ln in lines[i + 1:j])
        prev = next((ln for ln in reversed(lines[:i]) if ln.strip()), "")
        skip = _SKIP.search(prev)
        reason = (skip.group(1).strip() or "marked skip") if skip else None
        out.append(Block(rel, i + 1, lang, section, code + "\n", reason))
        i = j + 1
    return out


def _pages():
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


ALL = [b for page in _pages() for b in _blocks(page)]
PYTHON = [b for b in ALL if b.lang in ("python", "py", "python3")]


def _looks_like_commands(block: Block) -> bool:
    words = [ln.split()[0] for ln in block.code.splitlines() if ln.strip()]
    return bool(words) and all(w in COMMANDS for w in words)


SHELL_BLOCKS = [b for b in ALL if b.lang in SHELL or (b.lang == "" and _looks_like_commands(b))]


def _quick_tour_holds(ns, tmp_path):
    fg = ns["fg"]
    assert fg.gd(ns["X"], ns["y"], lr=1.5, steps=500).status == fg.Status.CONVERGED
    assert (tmp_path / "phase.npz").exists()


#: Checks after a block has run, keyed by its section's heading.
AFTER = {"Quick tour": _quick_tour_holds}


def test_blocks_are_found():
    assert any(b.section == "Quick tour" for b in PYTHON)
    assert any("fastgd phase" in b.code for b in SHELL_BLOCKS)


@pytest.mark.parametrize("block", PYTHON, ids=[b.id for b in PYTHON])
def test_python_block_runs(block, tmp_path, monkeypatch):
    if block.skip:
        pytest.skip(f"{block.id}: {block.skip}")
    if JITLESS:
        pytest.skip("README examples run sweeps of thousands of cells: minutes as plain Python")
    monkeypatch.chdir(tmp_path)
    ns = {"__name__": "__readme__"}
    try:
        exec(compile(block.code, f"{block.id} ({block.section})", "exec"), ns)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] not in ("fastgd",):
            pytest.skip(f"{block.id} needs {exc.name}")
        raise
    finally:
        import matplotlib.pyplot as plt

        plt.close("all")
    if block.section in AFTER:
        AFTER[block.section](ns, tmp_path)


def _commands(block: Block) -> list[list[str]]:
    """The block's commands as argument lists (``\\`` continuations joined, comments and
    ``$`` prompts dropped, ``&&`` chains split)."""
    text = block.code.replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("$ "):
            line = line[2:]
        if not line or line.startswith("#"):
            continue
        argv = shlex.split(line, comments=True)
        cmd = []
        for word in argv + ["&&"]:
            if word in ("&&", "||", ";"):
                if cmd:
                    out.append(cmd)
                cmd = []
            else:
                cmd.append(word)
    return out


def _cheap(argv: list[str]) -> bool:
    """Commands that take a second or two: run them, not just parse them."""
    if "--help" in argv or "-h" in argv or argv[1:] == ["--version"]:
        return True
    return argv[1:] == ["info"] or (argv[1:] == ["boundary"] and not JITLESS)


@pytest.mark.parametrize("block", SHELL_BLOCKS, ids=[b.id for b in SHELL_BLOCKS])
def test_shell_block_parses(block, tmp_path, monkeypatch, capsys):
    if block.skip:
        pytest.skip(f"{block.id}: {block.skip}")
    from fastgd.cli import main
    from fastgd.cli.parser import build_parser

    commands = _commands(block)
    assert commands, f"{block.id}: no command in the block"
    monkeypatch.chdir(tmp_path)
    for argv in commands:
        if argv[0] != "fastgd":
            continue
        try:
            build_parser().parse_args(argv[1:])
        except SystemExit as exc:
            err = capsys.readouterr().err.strip()
            if exc.code:
                pytest.fail(f"{block.id}: `{shlex.join(argv)}` does not parse: {err}")
            continue  # --help / --version print and exit 0
        if _cheap(argv):
            assert main(argv[1:]) == 0, f"{block.id}: `{shlex.join(argv)}` failed"


TOML = [b for b in ALL if b.lang == "toml"]


@pytest.mark.parametrize("block", TOML, ids=[b.id for b in TOML])
def test_toml_block_parses(block):
    tomllib.loads(block.code)


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text().splitlines()
    ci = (ROOT / ".ci" / "run").read_text()
    test_cmd = next(line.split("#")[0].strip() for line in readme[:8] if "pytest" in line)
    assert test_cmd in ci
