"""The ``rethink`` pytest plugin. Does nothing until ``--rethink`` is given.

With ``--rethink`` every test module defining a ``rethink_model`` fixture gets one item per
check, ``rethink[<check>]`` (``rethink[<check>-<param>]`` for parametrized fixtures); see
docs/plugin.md. This module imports neither torch nor rethink_checks at import time.
"""
from __future__ import annotations

import importlib.util
from typing import Any

import pytest

from . import collect, hosts, live, options, running, terminal, workers, zero_code
from .session import RethinkSession
from .state import STATE_KEY, RethinkState, get_state

MARKER = ("rethink(checks=None, **settings): rethink_checks settings for the module's "
          "rethink_model (checks: which checks to generate; other keys: CheckSettings/FitConfig)")


def pytest_addoption(parser: pytest.Parser) -> None:
    options.add_options(parser)


def _known_checks() -> list[str]:
    from rethink_checks.checks.registry import names

    return list(names())


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadgroup``: one scope per rethink model (plugins/scheduling.py); else xdist's."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from rethink_checks.checks.registry import names

    from .scheduling import ModelGroupScheduling

    return ModelGroupScheduling(config, log, checks=names())


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER)
    workerinput = getattr(config, "workerinput", None)
    if not config.getoption("rethink"):
        return
    opts = options.read_options(config)
    if workerinput is not None and workers.pins_gpu(opts.get("device", "auto")):
        workers.pin_worker_gpu(workerinput)  # before anything initialises CUDA here
    known = _known_checks()
    from rethink_checks.checks.registry import validate_names
    from rethink_checks.errors import RethinkError
    from rethink_checks.layers import validate_layer
    from rethink_checks.report import parse_compare_fail

    ini, cli = opts.settings_layers()
    try:  # the same validation as every other layer's (rethink_checks.layers)
        for source, checks, layer in (("ini option rethink_checks", opts.ini.get("checks"), ini),
                                      ("--rethink-checks", opts.cli.get("checks"), cli)):
            if checks:
                validate_names(checks, source)
        validate_layer("rethink settings from the ini", ini)
        validate_layer("rethink settings from the command line", cli)
    except RethinkError as exc:
        raise pytest.UsageError(str(exc)) from None
    for expr in opts.compare_fail:
        try:
            parse_compare_fail(expr)
        except RethinkError as exc:
            raise pytest.UsageError(f"--rethink-compare-fail: {exc}") from None
    if opts.get("plots") and importlib.util.find_spec("matplotlib") is None:
        raise pytest.UsageError("--rethink-plots needs matplotlib, which is not installed: "
                                "pip install 'rethink-checks[plots]'")
    state = RethinkState(opts, known, is_worker=workerinput is not None)
    zero_code.configure(config, state)  # --rethink-model: a bad spec is a usage error here
    config.stash[STATE_KEY] = state
    config.pluginmanager.register(RethinkSession(state, config), "rethink-session")
    config.pluginmanager.register(live.LiveProgress(config, opts.get("progress"),
                                                    opts.get("progress_interval"), workerinput),
                                  live.PLUGIN_NAME)


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    state = get_state(config)
    return terminal.header_lines(state) if state is not None else None


# ---------------------------------------------------------------- collection

@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: Any, name: str, obj: object) -> Any:
    if name != "rethink_model" or not isinstance(collector, pytest.Module):
        return None
    state = get_state(collector.config)
    if state is None:
        return None
    checks = collect.module_checks(collector, state.cli_checks, state.ini_checks,
                                   collect.default_checks(state.known_checks))
    if state.options.get("suspects") and "suspects" not in checks:
        checks = (*checks, "suspects")  # --rethink-suspects=N adds its item to any selection
    made = collect.collect(collector, checks)
    state.generated += len(made)
    return made


@pytest.hookimpl(tryfirst=True)  # before -k / -m / --deselect select among the items
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    state = get_state(config)
    if state is not None and state.models:  # --rethink-model: items without a test file
        items.extend(zero_code.collect(session, state.models))


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    collect.parametrize(metafunc)


# ---------------------------------------------------------------- fixtures

@pytest.fixture
def rethink_data() -> Any:
    """Data for the rethink checks: None uses --rethink-data (default digits). Override it."""
    return None


@pytest.fixture
def rethink_config() -> dict[str, Any]:
    """Per-model settings for the rethink checks (CheckSettings / FitConfig keys). Override it."""
    return {}


@pytest.fixture
def _rethink_result(request: pytest.FixtureRequest, rethink_check: str, rethink_model: Any,
                    rethink_data: Any, rethink_config: Any) -> Any:
    """Runs the item's check in the setup phase: an unusable model or input is an ERROR."""
    state = get_state(request.config)
    if state is None:
        pytest.skip("rethink checks run only with --rethink")
    info = request.node.stash[collect.ITEM_KEY]
    progress = live.item_progress(request.config, request.node.nodeid, info.model, rethink_check)
    return running.run_item(request, state, rethink_check, rethink_model, rethink_data,
                          rethink_config, progress)


# ---------------------------------------------------------------- reports

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    outcome = yield
    state = get_state(item.config)
    if collect.ITEM_KEY in item.stash and state is not None:
        report = outcome.get_result()
        running.annotate_report(item, call, report)
        if getattr(report, "rethink", None) is not None:  # where it ran: host, GPU, local rank
            place, info = hosts.item_machine(state, getattr(item.config, "workerinput", None))
            report.rethink["machine"] = place
            report.rethink_machine = info  # type: ignore[attr-defined] - merged per host


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    if not config.getoption("rethink"):
        return None
    gpus = workers.visible_gpus()
    return len(gpus) or None
