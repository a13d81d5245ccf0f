"""The plugin's option parsing (no pytest run needed): values, errors, precedence layers."""
from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from rethink_checks.checks import CHECKS
from rethink_checks.checks.registry import validate_names
from rethink_checks.errors import SettingsError
from rethink_checks_pytest.options import OPTIONS_BY_NAME, PluginOptions

NAMES = list(CHECKS)


@given(st.lists(st.sampled_from(NAMES), min_size=1), st.sampled_from([",", ", ", " ,"]))
def test_check_lists_parse_in_order_without_repeats(picked: list[str], sep: str) -> None:
    parsed = OPTIONS_BY_NAME["checks"].parse(sep.join(picked))
    assert validate_names(parsed, "--rethink-checks") == tuple(dict.fromkeys(picked))


@given(st.lists(st.sampled_from(NAMES), min_size=1), st.text("xyz_", min_size=1))
def test_an_unknown_check_is_an_error_naming_the_setting_and_the_allowed(picked, bogus) -> None:
    with pytest.raises(SettingsError, match="^--rethink-checks=.*allowed: true_labels, random_labels"):
        validate_names(tuple(picked) + (bogus,), "--rethink-checks")


@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=8))
def test_partial_levels_round_trip(levels: list[float]) -> None:
    text = ",".join(repr(v) for v in levels)
    assert OPTIONS_BY_NAME["partial_levels"].parse(text) == tuple(levels)


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_thresholds_accept_exactly_the_unit_interval_above_zero(value: float) -> None:
    parse = OPTIONS_BY_NAME["fit_threshold"].parse
    if 0.0 < value <= 1.0:
        assert parse(str(value)) == value
    else:
        with pytest.raises(ValueError):
            parse(str(value))


@pytest.mark.parametrize("spec, ok", [
    ("digits", True), ("digits,raw", True), ("digits,whiten", False), ("cifar10:/data/c10", True), ("mnist:~/m", True), ("folder:x.tar.gz", True),
    ("cifar10", False), ("imagenet:/x", False), ("", False), ("folder:", False),
    ("DIGITS", True), ("cifar10:/x,paper", True), ("mnist:", False), ("digits:/x", False),
])
def test_data_specs(spec: str, ok: bool) -> None:
    parse = OPTIONS_BY_NAME["data"].parse
    if ok:
        assert parse(spec) == spec
    else:
        with pytest.raises(ValueError):
            parse(spec)


def test_a_refused_data_spec_is_a_usage_error_carrying_parse_specs_message() -> None:
    from rethink_checks.errors import DataError
    from rethink_checks.specs import parse_spec
    from rethink_checks_pytest.options import _parse

    with pytest.raises(DataError) as library:
        parse_spec("mnist:/m,paper")
    with pytest.raises(pytest.UsageError) as plugin:
        _parse(OPTIONS_BY_NAME["data"], "mnist:/m,paper", "--rethink-data")
    assert str(plugin.value) == f"--rethink-data: invalid value 'mnist:/m,paper': {library.value}"


def test_settings_layers_keep_cli_over_ini_and_drop_plugin_only_options() -> None:
    opts = PluginOptions(cli={"max_epochs": 3, "json": "x.json"},
                         ini={"max_epochs": 9, "seed": 2, "time_budget": 5.0, "checks": ("gaussian",)})
    ini, cli = opts.settings_layers()
    assert ini == {"max_epochs": 9, "seed": 2, "time_budget": 5.0}
    assert cli == {"max_epochs": 3}
    assert opts.get("max_epochs") == 3 and opts.get("seed") == 2 and opts.get("data", "digits") == "digits"


def test_slowdown_randomizations_parse_through_check_settings() -> None:
    parse = OPTIONS_BY_NAME["slowdown_randomizations"].parse
    assert parse("all") == ("random_labels", "shuffled_pixels", "random_pixels", "gaussian")
    assert parse(["gaussian,random_labels"]) == ("random_labels", "gaussian")  # ini args, any order
    assert parse(["gaussian", "random_labels"]) == ("random_labels", "gaussian")
    with pytest.raises(ValueError, match=r"CheckSettings.slowdown_randomizations=\['noise'\] is "
                                         r"invalid; allowed: a non-empty list drawn from"):
        parse("noise")
