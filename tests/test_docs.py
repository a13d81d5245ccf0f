"""Docs that match the code: the option table against the parser, and the snippets.

Snippet convention (docs/architecture.md, "Snippets in the docs"): every ``python``, ``bash``,
``sh`` or ``console`` block of README.md and docs/*.md either runs here or follows an
``<!-- illustrative -->`` line (a template naming your own project, a run that needs CIFAR-10,
a GPU or minutes). A ``console`` block is a transcript: each ``$ `` line is run from the
repository root and the lines under it are the output it claims, in order (``...`` matches
anything); a ``python`` or ``bash`` block runs and must exit 0.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from rethink_checks_pytest import options

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MARK = "<!-- illustrative -->"
LANGS = ("python", "bash", "sh", "console")
SNIPPET_TIMEOUT = 300
HINT = f"(a block not meant to run here needs a line {MARK} before it)"


# ---------------------------------------------------------------- options table

class Recorder:
    """Stands in for pytest's parser and option group: records what the plugin registers."""

    def __init__(self) -> None:
        self.flags: set[str] = set()
        self.ini: set[str] = set()

    def getgroup(self, *args, **kwargs) -> "Recorder":
        return self

    def addoption(self, *names, **kwargs) -> None:
        self.flags.update(names)

    def addini(self, name, *args, **kwargs) -> None:
        self.ini.add(name)


def table_rows(text: str) -> list[tuple[set[str], set[str]]]:
    """(flags, ini keys) of each row of the table headed ``| command line | ini |``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| command line | ini |"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows.append((set(re.findall(r"--rethink[a-z-]*", cells[0])),
                     set(re.findall(r"\brethink_[a-z_]+", cells[1]))))
    return rows


def test_every_option_and_ini_key_has_a_row_in_plugin_md_and_back() -> None:
    parser = Recorder()
    options.add_options(parser)  # type: ignore[arg-type]
    rows = table_rows((ROOT / "docs" / "plugin.md").read_text(encoding="utf-8"))
    flags = set().union(*(f for f, _ in rows))
    ini = set().union(*(i for _, i in rows))
    problems = [f"option {f} has no row in docs/plugin.md's option table"
                for f in sorted(parser.flags - flags)]
    problems += [f"ini key {k} is in no row of docs/plugin.md's option table"
                 for k in sorted(parser.ini - ini)]
    problems += [f"docs/plugin.md's option table has {f}, which the parser does not register"
                 for f in sorted(flags - parser.flags)]
    problems += [f"docs/plugin.md's option table has ini key {k}, which the parser does not "
                 "register" for k in sorted(ini - parser.ini)]
    assert not problems, "\n".join(problems)


def test_each_option_row_pairs_the_flag_with_its_own_ini_key() -> None:
    rows = table_rows((ROOT / "docs" / "plugin.md").read_text(encoding="utf-8"))
    for opt in options.OPTIONS:
        row = next(((f, i) for f, i in rows if opt.flag in f), None)
        assert row is not None and opt.ini in row[1], f"{opt.flag}: ini column should say {opt.ini}"


# ---------------------------------------------------------------- snippets

@dataclass(frozen=True)
class Snippet:
    path: Path
    line: int
    lang: str
    body: str
    illustrative: bool

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def snippets(path: Path) -> list[Snippet]:
    lines = path.read_text(encoding="utf-8").splitlines()
    found, i = [], 0
    while i < len(lines):
        match = re.match(r"^```(\w+)\s*$", lines[i])
        if match:
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            previous = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()), "")
            if match.group(1) in LANGS:
                found.append(Snippet(path, i + 1, match.group(1), "\n".join(lines[i + 1:end]),
                                     previous == MARK))
            i = end
        i += 1
    return found


ALL = [s for doc in DOCS for s in snippets(doc)]
RUNNABLE = [s for s in ALL if not s.illustrative]


def test_the_convention_finds_snippets_of_both_kinds() -> None:
    assert len(ALL) >= 20 and RUNNABLE and any(s.lang == "console" for s in RUNNABLE)


def env(shims: Path) -> dict[str, str]:
    """This interpreter first on PATH, ``pytest`` meaning ``python -m pytest`` with it (a
    console script's shebang may name another environment's interpreter)."""
    shims.mkdir(exist_ok=True)
    shim = shims / "pytest"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m pytest "$@"\n')
    shim.chmod(0o755)
    path = os.pathsep.join([str(shims), str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return {**os.environ, "PATH": path, "PYTHONHASHSEED": "0", "COLUMNS": "100"}


def transcript(body: str) -> list[tuple[str, list[str]]]:
    """``$ command`` lines and the output lines claimed under each."""
    steps: list[tuple[str, list[str]]] = []
    for line in body.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif steps and line.strip():
            steps[-1][1].append(line)
    return steps


def pattern(line: str) -> str:
    return "*" if line.strip() == "..." else re.escape(line.rstrip()).replace(r"\.\.\.", ".*")


def assert_claimed(output: str, claimed: list[str], where: str) -> None:
    """Every claimed line appears in the output, in order (``...`` matches anything)."""
    lines = output.splitlines()
    at = 0
    for want in claimed:
        if want.strip() == "...":
            continue
        regex = re.compile(pattern(want) + r"\s*$")
        at = next((k + 1 for k in range(at, len(lines)) if regex.match(lines[k])), -1)
        assert at > 0, f"{where}: the output has no line {want!r} (in order); output:\n{output}"


@pytest.mark.parametrize("snippet", RUNNABLE, ids=[s.id for s in RUNNABLE])
def test_snippet_runs_as_written(snippet: Snippet, tmp_path: Path) -> None:
    if snippet.lang == "python":
        proc = subprocess.run([sys.executable, "-c", snippet.body], cwd=tmp_path,
                              env=env(tmp_path / "bin"),
                              capture_output=True, text=True, timeout=SNIPPET_TIMEOUT)
        assert proc.returncode == 0, f"{snippet.id} {HINT}: {proc.stderr[-2000:]}"
        return
    steps = transcript(snippet.body) if snippet.lang == "console" else [(snippet.body, [])]
    for command, claimed in steps:
        proc = subprocess.run(["bash", "-c", command], cwd=ROOT, env=env(tmp_path / "bin"),
                              capture_output=True, text=True, timeout=SNIPPET_TIMEOUT)
        output = proc.stdout + proc.stderr
        if not claimed:
            assert proc.returncode == 0, f"{snippet.id}: {command!r} failed {HINT}:\n{output[-2000:]}"
        assert_claimed(output, claimed, f"{snippet.id} ({command})")
