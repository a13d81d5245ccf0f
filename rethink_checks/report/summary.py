"""The summary table with the check registry's legend (the table module itself knows no check)."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..checks.registry import legend_lines
from . import table

__all__ = ["LEGEND", "format_table"]

#: the legend, with one key-column line per check that has one (``Check.legend``)
LEGEND = table.legend_text(legend_lines())


def format_table(rows: Iterable[Mapping[str, Any]], legend: bool = True) -> str:
    """:func:`rethink_checks.report.table.format_table` with the registry's legend (checks
    registered after import included)."""
    return table.format_table(rows, table.legend_text(legend_lines()) if legend else False)
