"""Package-wide rules checked on the source: library errors and module dependencies."""
from __future__ import annotations

import ast
import builtins
import subprocess
import sys
from pathlib import Path

import pytest

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


# ---------------------------------------------------------------- the import graph

def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(path: Path, lazy: bool) -> set[str]:
    """Package modules ``path`` imports; ``lazy`` adds imports inside functions.

    Imports under ``if TYPE_CHECKING:`` never run, so they are left out.
    """
    module, is_package = _module_name(path), path.name == "__init__.py"
    found: set[str] = set()

    def target(node: ast.ImportFrom) -> str:
        if node.level == 0:
            return node.module or ""
        parts = module.split(".")[:len(module.split(".")) - (0 if is_package else 1)]
        parts = parts[:len(parts) - (node.level - 1)]
        return ".".join(parts + ([node.module] if node.module else []))

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if (lazy or not in_function) and isinstance(child, ast.ImportFrom):
                base = target(child)
                found.update(f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base
                             for a in child.names)
            elif (lazy or not in_function) and isinstance(child, ast.Import):
                found.update(a.name for a in child.names)
            visit(child, inner)

    visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return {m for m in found if m in MODULES and m != module and not module.startswith(m + ".")
            and m != "rethink_checks"}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return out


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("lazy", [False, True], ids=["module-level", "with-lazy-imports"])
def test_no_import_cycle_in_the_package(lazy):
    """Imports run one way: no circle among module-level imports, nor when imports made
    inside functions (the lazy ones that keep torch out of a plain import) are counted too."""
    graph = {name: _imports(path, lazy) for name, path in MODULES.items()}
    assert _cycles(graph) == []


def test_no_private_name_is_re_exported():
    """A module imports another's private name only to use it, never to pass it on."""
    offenders = []
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | {
            n.value.id for n in ast.walk(tree)
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    local = alias.asname or alias.name
                    if alias.name.startswith("_") and not alias.name.startswith("__") \
                            and local not in used:
                        offenders.append(f"{name}: {alias.name}")
    assert offenders == []


LONG_MODULE = 400


def test_long_modules_say_why():
    """A module over ~400 lines holds two ideas, or its docstring says why it does not."""
    unexplained = []
    for name, path in MODULES.items():
        lines = len(path.read_text(encoding="utf-8").splitlines())
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        if lines > LONG_MODULE and "over 400 lines because" not in doc:
            unexplained.append(f"{name} ({lines} lines)")
    assert unexplained == []
