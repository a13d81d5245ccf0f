"""Two session JSON files (``--rethink-json``) compared item by item, timings left out.

For every item (by node id): the outcome, the check, the set of metric keys and every metric
value that is not a timing (keys naming seconds, the device or the timing budget), the item's
table names and its summary row's key metric. Prints the differences (none: "identical") and
returns 1 when there are any. Used to show a refactor left verdicts, metrics and JSON keys
unchanged:

    python benchmarks/compare_sessions.py BEFORE.json AFTER.json [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

TIMING = ("seconds", "time_budget", "device")


def _timing(key: str) -> bool:
    return any(t in key for t in TIMING)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return a == b


def item_view(item: dict[str, Any]) -> dict[str, Any]:
    metrics = item.get("metrics") or {}
    return {"outcome": item.get("outcome"), "check": item.get("check"),
            "metric_keys": sorted(metrics),
            "metrics": {k: v for k, v in metrics.items() if not _timing(k)},
            "tables": sorted(item.get("tables") or {}),
            "key": [(k.get("label"), k.get("value")) for k in (item.get("summary") or {}).get("key") or []],
            "entry_keys": sorted(item)}


def compare(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    old = {i["nodeid"]: item_view(i) for i in before["items"]}
    new = {i["nodeid"]: item_view(i) for i in after["items"]}
    out = [f"only before: {n}" for n in sorted(set(old) - set(new))]
    out += [f"only after: {n}" for n in sorted(set(new) - set(old))]
    for nodeid in sorted(set(old) & set(new)):
        a, b = old[nodeid], new[nodeid]
        for field in ("outcome", "check", "metric_keys", "tables", "key", "entry_keys"):
            if a[field] != b[field]:
                out.append(f"{nodeid}: {field} {a[field]!r} -> {b[field]!r}")
        for k in sorted(set(a["metrics"]) & set(b["metrics"])):
            if not _same(a["metrics"][k], b["metrics"][k]):
                out.append(f"{nodeid}: metric {k} {a['metrics'][k]!r} -> {b['metrics'][k]!r}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--json", default=None, help="write the comparison here")
    args = parser.parse_args(argv)
    before = json.loads(Path(args.before).read_text())
    after = json.loads(Path(args.after).read_text())
    diffs = compare(before, after)
    items = len(before["items"])
    values = sum(len(item_view(i)["metrics"]) for i in before["items"])
    print(f"{items} items, {values} metric values compared (timings left out): "
          + ("identical" if not diffs else f"{len(diffs)} difference(s)"))
    for line in diffs:
        print("  " + line)
    if args.json:
        Path(args.json).write_text(json.dumps({"items": items, "metric_values": values,
                                               "differences": diffs}, indent=1))
    return 1 if diffs else 0


if __name__ == "__main__":
    raise SystemExit(main())
