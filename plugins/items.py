"""Generating the ``rethink[<check>]`` items and running one check for one item.

Items are ordinary pytest ``Function`` items made by pytest's own machinery: a synthetic
test function ``rethink`` is placed in the module and handed back to
``pytest_pycollect_makeitem``, parametrized over the selected checks; fixture parameters
of ``rethink_model`` (or ``rethink_data``) multiply the items as for any test. The check
runs in the setup phase (so an unusable model or dataset is an ERROR carrying the
engine's message) and the test body asserts its criterion (so a missed criterion is a
FAIL). torch and rethink_checks are imported only when an item runs or is collected.
"""
from __future__ import annotations

import inspect
import re
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable

import pytest

FUNCTION_NAME = "rethink"


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
    grouped = collector.config.pluginmanager.hasplugin("xdist")  # else the mark is unknown
    for item in items:
        check = item.callspec.params["rethink_check"]
        param = _param_id(item, check)
        suffix = f"[{param}]" if param else ""
        info = ItemInfo(check=check, model=_module_label(collector) + suffix,
                        model_key=collector.nodeid + suffix)
        item.stash[ITEM_KEY] = info
        if check in KEYWORDS:  # e.g. -k memorization also selects rethink[suspects]
            item.extra_keyword_matches.update(KEYWORDS[check])
        if grouped:  # with --dist loadgroup a model's items share one worker (and its cache)
            item.add_marker(pytest.mark.xdist_group(name="rethink:" + info.model_key))
    return items


#: extra -k keywords of a check's items: the mislabel finder belongs to the memorization family
KEYWORDS = {"suspects": ("memorization",)}


def default_checks(known: list[str]) -> tuple[str, ...]:
    """The checks a module runs when nothing selects any: all but those run only on request."""
    from rethink_checks.checks import ON_REQUEST

    return tuple(name for name in known if name not in ON_REQUEST)


def module_checks(collector: pytest.Module, cli: tuple[str, ...] | None,
                  ini: tuple[str, ...] | None, default: tuple[str, ...],
                  known: list[str]) -> tuple[str, ...]:
    """Checks for one module: CLI, else the ``rethink`` marker's ``checks``, else ini, else all."""
    if cli:
        return cli
    marker = collector.get_closest_marker("rethink")
    chosen = marker.kwargs.get("checks") if marker is not None else None
    if chosen is not None:
        names = (chosen,) if isinstance(chosen, str) else tuple(chosen)
        names = tuple(n.strip() for name in names for n in str(name).split(",") if n.strip())
        unknown = [n for n in names if n not in known]
        if unknown or not names:
            raise collector.CollectError(
                f"{collector.nodeid}: pytest.mark.rethink(checks=...) names unknown check(s) "
                f"{unknown or names!r}; allowed: {', '.join(known)}")
        return tuple(dict.fromkeys(names))
    return ini or default


# ---------------------------------------------------------------- factories

_KNOWN = ("input_shape", "num_classes", "vocab_size")


def _factory_arguments(fn: Callable[..., Any], input_shape: tuple[int, ...], num_classes: int,
                       vocab_size: int | None) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """What to call ``fn`` with: the keywords it names (input_shape, num_classes, vocab_size),
    or (input_shape, num_classes) positionally for a factory of two required positional
    parameters named otherwise, such as ``lambda shape, k: ...``."""
    from rethink_checks.errors import ModelError

    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return (), {}
    values = {"input_shape": tuple(input_shape), "num_classes": int(num_classes),
              "vocab_size": None if vocab_size is None else int(vocab_size)}
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return (), {k: v for k, v in values.items() if v is not None}
    named = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    kwargs = {k: v for k, v in values.items() if k in named and v is not None}
    unknown = [p for p in params if p.default is p.empty and p.name not in _KNOWN
               and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if not unknown:
        return (), kwargs
    positional = all(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in unknown)
    if not kwargs and len(unknown) == 2 and positional:
        return (values["input_shape"], values["num_classes"]), {}
    raise ModelError(
        f"the rethink_model factory {getattr(fn, '__qualname__', fn)!r} requires "
        f"{', '.join(p.name for p in unknown)}, which the plugin cannot supply: a factory takes no "
        "arguments, keywords named input_shape / num_classes / vocab_size, or exactly two "
        "positional parameters (input_shape, num_classes); give the others defaults")


def model_factory(obj: Any, input_shape: tuple[int, ...], num_classes: int,
                  vocab_size: int | None = None) -> Callable[[], Any]:
    """A zero-argument factory from what ``rethink_model`` returned (module or factory)."""
    from torch import nn

    from rethink_checks.errors import ModelError

    if isinstance(obj, nn.Module):
        return obj  # training.fit copies a module, never trains it in place
    if not callable(obj):
        raise ModelError(
            f"the rethink_model fixture returned {type(obj).__module__}.{type(obj).__qualname__}; "
            "expected a torch.nn.Module or a factory returning one (a factory may take "
            "input_shape and/or num_classes keyword arguments)")
    args, kwargs = _factory_arguments(obj, input_shape, num_classes, vocab_size)
    given = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]

    def factory() -> Any:
        try:
            return obj(*args, **kwargs)
        except Exception as exc:  # the user's code: say where, keep the cause chained
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            error = ModelError(f"the rethink_model factory raised {type(exc).__name__}: {exc} "
                               f"(at {frame.filename}:{frame.lineno}, given "
                               f"{', '.join(given) or 'no arguments'})")
            error.rethink_factory = True  # type: ignore[attr-defined] - see run_item
            raise error from exc

    factory.__qualname__ = getattr(obj, "__qualname__", "factory")
    return factory


# ---------------------------------------------------------------- settings and data

def marker_settings(item: pytest.Item) -> dict[str, Any]:
    """Settings from ``pytest.mark.rethink(...)`` (closest marker wins), without ``checks``."""
    merged: dict[str, Any] = {}
    for mark in reversed(list(item.iter_markers("rethink"))):
        merged.update(mark.kwargs)
    merged.pop("checks", None)
    return merged


def split_config(config: Any) -> tuple[dict[str, Any], tuple[str, ...] | None]:
    """``rethink_config`` as (settings mapping, check selection or None)."""
    from rethink_checks.checks import SettingsError

    if config is None:
        return {}, None
    if not isinstance(config, Mapping):
        raise SettingsError(f"the rethink_config fixture returned {type(config).__name__}; "
                            "expected a dict of settings (e.g. {'lr': 0.01, 'max_epochs': 20})")
    mapping = dict(config)
    checks = mapping.pop("checks", None)
    if isinstance(checks, str):
        checks = tuple(c.strip() for c in checks.split(",") if c.strip())
    return mapping, (tuple(checks) if checks is not None else None)


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


def run_item(request: pytest.FixtureRequest, state: Any, check: str, model: Any, data: Any,
             config: Any, progress: Callable[[dict], None] | None) -> Any:
    """Resolve settings, data and factory for this item, run the check, return the CheckResult."""
    import dataclasses

    from rethink_checks.checks import CheckSettings, run_check
    from rethink_checks.errors import NotApplicable
    from rethink_checks.errors import RethinkError

    item = request.node
    info = item.stash[ITEM_KEY]
    mapping, config_checks = split_config(config)
    if config_checks is not None and not state.cli_checks and check not in config_checks:
        pytest.skip(f"{check} is not selected by rethink_config['checks'] = {list(config_checks)}")
    ini, cli = state.options.settings_layers()
    dataset = load_data(state, data_spec(data, state.data_default),
                        read_progress(request.config, state))
    # the data's own defaults (criteria, then fit settings) go under every user layer
    settings = CheckSettings.from_mapping({**dataset.defaults, **ini, **marker_settings(item), **mapping, **cli})
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
