"""How one ``pytest --rethink`` item travels through the package: modules visited and re-entries.

Runs ``rethink[<check>]`` of a one-layer model on the digits for one epoch in-process, traces
every call and return inside ``rethink_checks`` and the plugin from the start of the item's run
(``run_item``) to its end, and counts the modules the path visits and its re-entries: a call into a module
that is already on the call stack below another module (left, and entered again before it
returned: an upward call or a callback). The training loop runs one epoch here, so the count
measures the layering, not the budget; the distinct (caller -> re-entered) edges are listed.

    python benchmarks/module_path.py [--check random_labels] [--json PATH] [--before-ref REF]

``--before-ref de1ac70`` also traces that commit's tree (``git archive`` into a temporary
folder, run in a subprocess with it first on PYTHONPATH and its ``plugins/`` as
``rethink_checks_pytest``) and writes both counts.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

PACKAGES = ("rethink_checks", "rethink_checks_pytest")
TEST = """
import pytest
import torch

pytestmark = pytest.mark.rethink(train_size=64, max_epochs=1, device="cpu", batch_size=32)

@pytest.fixture
def rethink_model():
    return lambda input_shape, num_classes: torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(64, num_classes))
"""


def trace(check: str) -> list[tuple[str, str]]:
    """Every re-entry of the item's run: (the module that called, the module re-entered).

    A call re-enters module M when M is already on the call stack below another package module
    (M was left for another module and is entered again before it returned): an upward call, a
    callback, or a helper module calling back into its caller.
    """
    import pytest

    events: list[tuple[str, str]] = []
    visited: set[str] = set()

    def module_of(frame) -> str | None:
        name = frame.f_globals.get("__name__", "")
        return name if name.split(".")[0] in PACKAGES else None

    def is_item_run(frame) -> bool:
        return frame.f_code.co_name == "run_item" and \
            (module_of(frame) or "").split(".")[-1] in ("items", "running")

    def tracer(frame, event, arg):  # called on every Python call; no line events (returns None)
        module = module_of(frame)
        if module is None:
            return None
        below, inside, caller = [], is_item_run(frame), frame.f_back
        while caller is not None:
            inside = inside or is_item_run(caller)
            outer = module_of(caller)
            if outer is not None:
                below.append(outer)
            caller = caller.f_back
        if not inside:
            return None
        visited.add(module)
        if below and below[0] != module and module in below:
            events.append((below[0], module))
        return None

    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "test_model.py").write_text(TEST)
        sys.settrace(tracer)
        try:
            pytest.main([tmp, "-q", "-p", "no:randomly", "-p", "no:cacheprovider", "--rethink",
                         f"--rethink-checks={check}", "-n", "0", "--rethink-threads=1"])
        finally:
            sys.settrace(None)
    trace.visited = sorted(visited)  # type: ignore[attr-defined]
    return events


def summary(events: list[tuple[str, str]]) -> dict:
    counts: dict[str, int] = {}
    for a, b in events:
        counts[f"{a} -> {b}"] = counts.get(f"{a} -> {b}", 0) + 1
    edges = [f"{edge} ({n})" for edge, n in sorted(counts.items())]
    visited = getattr(trace, "visited", [])
    return {"modules": len(visited), "reentries": len(events), "reentry_edges": len(edges),
            "edges": edges, "visited": visited}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", default="random_labels")
    parser.add_argument("--json", default=None, help="also write the summary here")
    parser.add_argument("--before-ref", default=None, help="also trace this git commit's tree")
    args = parser.parse_args(argv)
    before = _before(args.before_ref, args.check) if args.before_ref else None
    out = summary(trace(args.check))
    import rethink_checks

    out["tree"] = str(Path(rethink_checks.__file__).parents[1])
    out["check"] = args.check
    print(f"rethink[{args.check}]: {out['modules']} modules, {out['reentries']} re-entries over "
          f"{out['reentry_edges']} distinct edges ({out['tree']})")
    for edge in out["edges"]:
        print("  ", edge)
    if before is not None:
        print(f"before ({args.before_ref}): {before['modules']} modules, {before['reentries']} "
              f"re-entries over {before['reentry_edges']} distinct edges")
        for edge in before["edges"]:
            print("  ", edge)
        out = {"after": out, "before": {**before, "ref": args.before_ref}}
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


def _before(ref: str, check: str) -> dict:
    """The summary for git commit ``ref``'s tree, traced in a subprocess."""
    import os
    import subprocess

    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        tree, plugin = Path(tmp, "tree"), Path(tmp, "plugin")
        tree.mkdir()
        plugin.mkdir()
        archive = subprocess.run(["git", "-C", str(root), "archive", ref], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
        (plugin / "rethink_checks_pytest").symlink_to(tree / "plugins")
        out = Path(tmp, "before.json")
        env = {**os.environ, "PYTHONPATH": f"{tree}{os.pathsep}{plugin}"}
        subprocess.run([sys.executable, str(Path(__file__).resolve()), "--check", check, "--json",
                        str(out)], check=True, env=env, cwd=tree, capture_output=True)
        return json.loads(out.read_text())


if __name__ == "__main__":
    raise SystemExit(main())
