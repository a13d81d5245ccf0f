"""Collecting the ``rethink[<check>]`` items (running them is :mod:`.running`).

Items are ordinary pytest ``Function`` items made by pytest's own machinery: a synthetic
test function ``rethink`` is placed in the module and handed back to
``pytest_pycollect_makeitem``, parametrized over the selected checks; fixture parameters
of ``rethink_model`` (or ``rethink_data``) multiply the items as for any test. Their node
ids are :class:`.item_id.ItemId`. torch and rethink_checks are imported only when an item
runs or is collected.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import pytest

from .item_id import FUNCTION_NAME, ItemId


@dataclass(frozen=True)
class ItemInfo:
    """What the plugin knows about one generated item: which check of which model."""

    check: str
    model: str      # display name: module stem, plus [param] when parametrized
    model_key: str  # unique: module node id, plus [param]


ITEM_KEY = pytest.StashKey[ItemInfo]()
RESULT_KEY = pytest.StashKey[Any]()  # the CheckResult, once the check ran
SETTINGS_KEY = pytest.StashKey[dict]()  # the settings it ran with, as JSON


DOC = "A randomization check from the rethink plugin: passes when the check's criterion holds."


def synthetic_function(checks: tuple[str, ...]) -> Callable[..., None]:
    """A fresh ``rethink`` test function; :func:`parametrize` spreads it over ``checks``."""
    def rethink(rethink_check: str, _rethink_result: Any) -> None:
        if not _rethink_result.passed:
            pytest.fail(f"{rethink_check}: {_rethink_result.message}\n"
                        f"criterion: {_rethink_result.criterion}", pytrace=False)

    rethink.__doc__ = DOC
    rethink.__test__ = True  # type: ignore[attr-defined] - collected whatever python_functions says
    rethink.rethink_checks = checks  # type: ignore[attr-defined]
    return rethink


def parametrize(metafunc: pytest.Metafunc) -> None:
    """Parametrize a synthetic ``rethink`` function over its checks (first, so ids lead with them)."""
    checks = getattr(metafunc.function, "rethink_checks", None)
    if checks and "rethink_check" in metafunc.fixturenames:
        metafunc.parametrize("rethink_check", checks, ids=list(checks))


def _param_id(item: pytest.Item, check: str) -> str:
    callspec = getattr(item, "callspec", None)
    ident = callspec.id if callspec is not None else ""
    if ident == check:
        return ""
    return ident[len(check) + 1:] if ident.startswith(check + "-") else ident


def _module_label(module: pytest.Module) -> str:
    return getattr(module, "rethink_label", None) or module.path.stem


def collect(collector: pytest.Module, checks: tuple[str, ...]) -> list[pytest.Item]:
    """The module's rethink items, built by pytest's default python collection hook."""
    fn = synthetic_function(checks)
    setattr(collector.obj, FUNCTION_NAME, fn)
    made = collector.ihook.pytest_pycollect_makeitem(collector=collector, name=FUNCTION_NAME, obj=fn)
    items = [i for i in (made or []) if isinstance(i, pytest.Item)]
    for item in items:
        check = item.callspec.params["rethink_check"]
        item_id = ItemId(collector.nodeid, check, _param_id(item, check))
        suffix = f"[{item_id.param}]" if item_id.param else ""
        item.stash[ITEM_KEY] = ItemInfo(check=check, model=_module_label(collector) + suffix,
                                        model_key=item_id.model_key)
        item.extra_keyword_matches.update(_keywords(check))  # -k memorization selects suspects
    return items


def _keywords(check: str) -> tuple[str, ...]:
    """The extra -k keywords of a check's items (its family, from the registry)."""
    from rethink_checks.checks.registry import REGISTRY

    found = REGISTRY.get(check)
    return found.keywords if found is not None else ()


def default_checks(known: list[str]) -> tuple[str, ...]:
    """The checks a module runs when nothing selects any: all but those run only on request."""
    from rethink_checks.checks.registry import default_names

    defaults = set(default_names())
    return tuple(name for name in known if name in defaults)


def module_checks(collector: pytest.Module, cli: tuple[str, ...] | None,
                  ini: tuple[str, ...] | None, default: tuple[str, ...]) -> tuple[str, ...]:
    """Checks for one module: CLI, else the ``rethink`` marker's ``checks``, else ini, else all.

    The marker's selection is validated like every settings layer's
    (:func:`rethink_checks.layers.validate_layer`): unknown names are a collection error.
    """
    if cli:
        return cli
    marker = collector.get_closest_marker("rethink")
    chosen = marker.kwargs.get("checks") if marker is not None else None
    if chosen is not None:
        from rethink_checks.errors import SettingsError
        from rethink_checks.layers import validate_layer

        try:
            return validate_layer("pytest.mark.rethink", {"checks": chosen})[1] or ()
        except SettingsError as exc:
            raise collector.CollectError(f"{collector.nodeid}: {exc}") from None
    return ini or default
