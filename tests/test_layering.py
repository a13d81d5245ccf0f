"""Package-wide rules checked on the source: library errors and module dependencies."""
from __future__ import annotations

import ast
import builtins
import subprocess
import sys
from pathlib import Path

import rethink_checks

PACKAGE = Path(rethink_checks.__file__).parent

# (file, builtin) pairs raised on purpose, with the reason.
DELIBERATE = {
    # the module-level __getattr__ protocol: an unknown attribute must be an AttributeError
    ("__init__.py", "AttributeError"),
}


def _builtin_raises(path: Path) -> list[tuple[str, int]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Raise) or node.exc is None:
            continue
        exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
        obj = getattr(builtins, exc.id, None) if isinstance(exc, ast.Name) else None
        if isinstance(obj, type) and issubclass(obj, BaseException):
            found.append((exc.id, node.lineno))
    return sorted(found, key=lambda f: f[1])


def test_the_library_raises_no_bare_builtin_exceptions():
    """Every library error is a RethinkError subclass (which is also the fitting builtin)."""
    bad = [f"{path.relative_to(PACKAGE)}:{line}: raise {name}"
           for path in sorted(PACKAGE.rglob("*.py"))
           for name, line in _builtin_raises(path)
           if (path.relative_to(PACKAGE).as_posix(), name) not in DELIBERATE]
    assert bad == [], "use a rethink_checks.errors type (or list it in DELIBERATE with why)"


def test_the_scan_finds_a_bare_raise(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("def f(x):\n    if x:\n        raise ValueError('x')\n    raise KeyError\n")
    assert _builtin_raises(src) == [("ValueError", 3), ("KeyError", 4)]


def test_capacity_imports_neither_theory_nor_report():
    code = ("import sys, rethink_checks.capacity; "
            "print(sorted(m for m in sys.modules if m in ('rethink_checks.theory', "
            "'rethink_checks.report')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_table_imports_nothing_from_the_package():
    """The table formats plain rows; it knows neither documents, baselines nor any check."""
    tree = ast.parse((PACKAGE / "report" / "table.py").read_text(encoding="utf-8"))
    nodes = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert not [n for n in nodes if isinstance(n, ast.ImportFrom) and n.level > 0]
    names = {a.name for n in nodes for a in n.names} | {
        n.module for n in nodes if isinstance(n, ast.ImportFrom)}
    assert not {m for m in names if m and m.startswith("rethink_checks")}
