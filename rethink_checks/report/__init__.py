"""Reports of a check session, pytest-free, split by concern.

- :mod:`.table`: the terminal summary table and its legend;
- :mod:`.document`: item entries, the session JSON document, the machine description;
- :mod:`.baselines`: the ``.rethink/`` baseline store and compare-fail rules;
- :mod:`.html` (with :mod:`.svg`): the session as one self-contained HTML page.

Every public name is re-exported here, so ``from rethink_checks.report import X`` works as
it did when this was one module.
"""
from __future__ import annotations

from .baselines import (DEFAULT_ROOT, KEY_METRICS, BaselineStore, CompareFail, ReportError,
                        StoredBaseline, compare, compare_baseline, find_baseline,
                        format_comparison, load_baseline, metric_direction, parse_compare_fail,
                        save_baseline)
from .document import (SCHEMA_VERSION, item_entry, machine_id, machine_info, session_document,
                       write_json)
from .html import html_page, write_html
from .table import LEGEND, VERDICTS, format_key_metric, format_table

__all__ = [
    "LEGEND", "VERDICTS", "format_table", "format_key_metric",
    "SCHEMA_VERSION", "item_entry", "session_document", "write_json", "machine_info",
    "machine_id", "html_page", "write_html",
    "DEFAULT_ROOT", "ReportError", "BaselineStore", "StoredBaseline", "save_baseline",
    "find_baseline", "load_baseline", "CompareFail", "metric_direction", "parse_compare_fail",
    "compare_baseline", "compare", "format_comparison", "KEY_METRICS",
]
