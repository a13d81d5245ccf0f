"""Running one ``rethink[<check>]`` item: its data, its layered settings, its check, its report.

The item's settings come from :func:`rethink_checks.layers.layered` (package < data < ini <
command line < marker < ``rethink_config``), its model factory from
:func:`rethink_checks.factories.model_factory`, its dataset from the session's
:class:`rethink_checks.data_memo.DataMemo`; the check runs in the setup phase (an unusable
model or dataset is an ERROR carrying the engine's message) and the test body asserts its
criterion (a missed criterion is a FAIL).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Callable

import pytest

from .collect import ITEM_KEY, RESULT_KEY, SETTINGS_KEY

# ---------------------------------------------------------------- settings and data

def marker_settings(item: pytest.Item) -> dict[str, Any]:
    """Settings from ``pytest.mark.rethink(...)`` (closest marker wins), ``checks`` included."""
    merged: dict[str, Any] = {}
    for mark in reversed(list(item.iter_markers("rethink"))):
        merged.update(mark.kwargs)
    return merged


DATA_FORMS = ("a rethink_checks.data.Dataset, a data spec string, a pair (train, test) of map-style "
              "torch datasets of (input, label) items, one such dataset, a list of such items, or "
              "a tuple of arrays/tensors (x, y) or (train_x, train_y, test_x, test_y)")


def data_spec(obj: Any, default: str) -> Any:
    """What to load: the ``rethink_data`` fixture's value, else ``default`` (``--rethink-data``).

    A string must pass :func:`rethink_checks.specs.parse_spec`, as ``--rethink-data`` must. A
    Dataset is used as is; any other value (a pair of torch datasets, one dataset, a list of
    ``(input, label)`` items, a tuple of arrays or tensors) goes to
    :func:`rethink_checks.data.as_dataset`'s reader when the item runs (:func:`load_data`).
    """
    from rethink_checks.data import Dataset
    from rethink_checks.errors import DataError
    from rethink_checks.specs import SPEC_FORMS, parse_spec

    if obj is None:
        return default
    if isinstance(obj, Dataset) or getattr(obj, "streamed", False):  # streaming.Streamed too
        return obj
    if isinstance(obj, str):
        try:
            parse_spec(obj)
        except DataError as exc:
            raise DataError(f"the rethink_data fixture returned {obj!r}: {exc}") from None
    elif not isinstance(obj, (tuple, list)) and not hasattr(obj, "__getitem__") \
            and not hasattr(obj, "__iter__"):
        raise DataError(f"the rethink_data fixture returned {obj!r}; expected {DATA_FORMS} "
                        f"(spec strings: {SPEC_FORMS})")
    return obj


def load_data(state: Any, spec: Any, progress: Callable[[str, int, int, float], None] | None) -> Any:
    """The item's Dataset (memoized by ``state``); a read error names the ``rethink_data`` fixture."""
    from rethink_checks.errors import RethinkError

    try:
        return state.load_data(spec, progress=progress)
    except RethinkError as exc:
        if isinstance(spec, str):
            raise
        error = type(exc)(f"the rethink_data fixture returned {_short(spec)}: {exc}")
        raise error.with_traceback(None) from exc.__cause__


def _short(obj: Any) -> str:
    """``a list of length 10``, ``a mypkg.Blobs of length 200``: what the fixture returned."""
    cls = type(obj)
    name = cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    try:
        return f"a {name} of length {len(obj)}"
    except Exception:  # no len (an iterable-style dataset)
        return f"a {name}"


def read_progress(config: pytest.Config, state: Any) -> Callable[[str, int, int, float], None] | None:
    """Progress lines of a long dataset read on the terminal (stderr is captured in setup)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or state.is_worker or config.getoption("verbose") < 0:
        return None

    def progress(name: str, done: int, total: int, seconds: float) -> None:
        reporter.write_line(f"rethink: reading {name}: {done:,}/{total:,} items "
                            f"({100 * done // max(total, 1)}%), {seconds:.0f} s")
    return progress


# ---------------------------------------------------------------- running one item

def properties(check: str, metrics: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """Scalar metrics as ``rethink.<check>.<metric>`` user properties (they reach JUnit XML)."""
    return [(f"rethink.{check}.{name}", value) for name, value in metrics.items()
            if isinstance(value, (bool, int, float, str))]


def item_settings(state: Any, item: pytest.Item, dataset: Any, config: Any) -> Any:
    """The item's layers merged by :func:`rethink_checks.layers.layered` (each one validated)."""
    from rethink_checks.layers import layered

    ini, cli = state.options.settings_layers()
    return layered(dataset, ini=ini, cli=cli, marker=marker_settings(item), config=config)


def run_item(request: pytest.FixtureRequest, state: Any, check: str, model: Any, data: Any,
             config: Any, progress: Callable[[dict], None] | None) -> Any:
    """Resolve settings, data and factory for this item, run the check, return the CheckResult."""
    import dataclasses

    from rethink_checks.checks import run_check
    from rethink_checks.errors import NotApplicable, RethinkError
    from rethink_checks.factories import model_factory

    from rethink_checks.layers import validate_layer

    item = request.node
    info = item.stash[ITEM_KEY]
    chosen = validate_layer("rethink_config", config)[1]  # before any data is read
    if chosen is not None and not state.cli_checks and check not in chosen:
        pytest.skip(f"{check} is not selected by rethink_config['checks'] = {list(chosen)}")
    dataset = load_data(state, data_spec(data, state.data_default),
                        read_progress(request.config, state))
    settings = item_settings(state, item, dataset, config).settings
    if progress is not None:
        settings = dataclasses.replace(settings, fit=dataclasses.replace(settings.fit,
                                                                         progress=progress))
    factory = model_factory(model, dataset.input_shape, dataset.num_classes,
                            getattr(dataset, "vocab_size", None))
    item.stash[SETTINGS_KEY] = settings.to_dict()
    try:
        result = run_check(check, factory, dataset, settings, state.cache_for(info.model_key))
    except NotApplicable as exc:  # e.g. a permutation of one feature: a skip with the reason
        pytest.skip(str(exc))
    except RethinkError as exc:
        cause = exc.__cause__
        if getattr(cause, "rethink_factory", False):  # the engine wrapped our message: say it once
            raise cause from cause.__cause__
        raise
    add_suspects(request, state, result, dataset, settings)
    item.stash[RESULT_KEY] = result
    item.user_properties.extend(properties(check, result.metrics))
    return result


def add_suspects(request: pytest.FixtureRequest, state: Any, result: Any, dataset: Any,
                 settings: Any) -> None:
    """``--rethink-suspects=N`` with ``--rethink-plots=DIR``: the suspects item's image grid."""
    plots = state.options.get("plots")
    if result.check != "suspects" or not plots or not result.tables.get("suspects"):
        return
    from pathlib import Path

    from rethink_checks.fits import prepared
    from rethink_checks.plots import plot_suspects

    info = request.node.stash[ITEM_KEY]
    name = re.sub(r"[^A-Za-z0-9_.]+", "-", info.model).strip("-") or "model"
    path = Path(request.config.invocation_params.dir) / plots / f"{name}_suspects.png"
    plot_suspects(prepared(dataset, settings).train_x, result.tables["suspects"], path,
                  title=f"suspected mislabels ({getattr(dataset, 'name', '')})")


def annotate_report(item: pytest.Item, call: pytest.CallInfo, report: pytest.TestReport) -> None:
    """Short message for engine errors; the JSON entry as ``report.rethink`` (survives xdist)."""
    from rethink_checks.errors import RethinkError
    from rethink_checks.report import item_entry

    info = item.stash[ITEM_KEY]
    excinfo = call.excinfo
    message = ""
    if excinfo is not None and not report.skipped:
        message = f"{excinfo.type.__name__}: {excinfo.value}"
        if isinstance(excinfo.value, RethinkError):
            report.longrepr = f"rethink[{info.check}] on {info.model}: {message}"
        elif report.when == "call" and excinfo.errisinstance(pytest.fail.Exception):
            message = ""  # a missed criterion: the check's own message says it
    if report.when == "setup" and report.passed:
        return
    if report.when == "teardown":
        return
    if report.skipped:
        outcome = "skipped"
        message = message or (report.longrepr[2] if isinstance(report.longrepr, tuple) else "")
    elif report.when == "setup":
        outcome = "error"
    else:
        outcome = report.outcome
    result = item.stash.get(RESULT_KEY, None)
    entry = item_entry(report.nodeid, info.model, info.check, outcome, result, message)
    entry["model_key"] = info.model_key
    entry["settings"] = item.stash.get(SETTINGS_KEY, None)
    report.rethink = entry  # type: ignore[attr-defined]
