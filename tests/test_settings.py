"""Settings (FitConfig, CheckSettings): torch-free import, one error style, renamed fields."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
import warnings

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rethink_checks.errors import SettingsError
from rethink_checks.settings import REGULARIZERS, REMOVABLE, CheckSettings, FitConfig

INVALID = r"(FitConfig|CheckSettings)\.\w+=.+ is invalid; allowed: .+"


def test_importing_settings_does_not_import_torch():
    code = ("import sys, rethink_checks.settings, rethink_checks; rethink_checks.FitConfig(); "
            "print(sorted(m for m in ('torch', 'rethink_checks.training', 'rethink_checks.step') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("make", [
    lambda: FitConfig(batch_size=0), lambda: FitConfig(lr=0.0), lambda: FitConfig(momentum=2),
    lambda: FitConfig(precision="fp8"), lambda: FitConfig(device="tpu"), lambda: FitConfig(seed=1.5),
    lambda: FitConfig(augment="maybe"), lambda: FitConfig(remove=["l1"]), lambda: FitConfig(max_seconds=0),
    lambda: CheckSettings(fit_threshold=0), lambda: CheckSettings(label_mode="x"),
    lambda: CheckSettings(partial_levels=[2.0]), lambda: CheckSettings(seed=-1),
    lambda: CheckSettings(ablated_regularizers=["l1"]), lambda: CheckSettings(fit=3),
    lambda: CheckSettings(max_slowdown=float("nan")), lambda: CheckSettings(train_size=0),
])
def test_every_rejection_names_owner_field_value_and_allowed(make):
    with pytest.raises(SettingsError, match=INVALID):
        make()


def test_message_example_from_the_docs():
    with pytest.raises(SettingsError) as err:
        FitConfig(batch_size=0)
    assert str(err.value) == "FitConfig.batch_size=0 is invalid; allowed: an integer >= 1"


@given(names=st.lists(st.sampled_from(REMOVABLE + ("all",)), max_size=6), as_text=st.booleans())
def test_remove_has_one_canonical_form(names, as_text):
    """Any spelling (list, comma text, repeats, any order, "all") gives REMOVABLE order, no repeats."""
    config = FitConfig(remove=",".join(names) if as_text else names)
    expected = REMOVABLE if "all" in names else tuple(r for r in REMOVABLE if r in names)
    assert config.remove == expected
    same = CheckSettings(fit=FitConfig(remove=tuple(reversed(expected))))
    assert same.key() == CheckSettings(fit=config).key()


def test_new_names_work_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = CheckSettings.from_mapping({"ablated_regularizers": "augment,dropout",
                                        "ablation_weight_decay": 1e-3, "remove": "all"})
        c = FitConfig(remove=("dropout",))
    assert s.ablated_regularizers == ("augment", "dropout") and s.ablation_weight_decay == 1e-3
    assert s.fit.remove == REMOVABLE and c.remove == ("dropout",)
    assert s.fit.weight_decay == 0.0  # the fit's own weight decay is untouched
    assert "remove" in CheckSettings.allowed_keys() and "ablated_regularizers" in CheckSettings.allowed_keys()


@pytest.mark.parametrize("old, new, warned", [
    (dict(regularizers="none"), dict(remove="all"), "FitConfig.regularizers"),
    (dict(regularizers="model"), dict(), "FitConfig.regularizers"),
    (dict(remove_dropout=True), dict(remove=("dropout",)), "FitConfig.remove_dropout"),
    (dict(remove_batchnorm=True), dict(remove=("batchnorm",)), "FitConfig.remove_batchnorm"),
    (dict(remove_dropout=True, remove_batchnorm=True), dict(remove=("dropout", "batchnorm")),
     "FitConfig.remove_"),
])
def test_old_fit_config_names_warn_and_map(old, new, warned):
    with pytest.warns(DeprecationWarning, match=rf"{warned}\w* is deprecated.*use FitConfig.remove"):
        config = FitConfig(**old)
    assert config == FitConfig(**new)


def test_old_fit_names_through_replace_and_mappings():
    base = FitConfig(remove=("batchnorm",))
    with pytest.warns(DeprecationWarning, match="FitConfig.remove_dropout"):
        assert dataclasses.replace(base, remove_dropout=True).remove == ("dropout", "batchnorm")
    with pytest.warns(DeprecationWarning, match="FitConfig.remove_batchnorm"):
        assert dataclasses.replace(base, remove_batchnorm="false").remove == ()
    with pytest.warns(DeprecationWarning, match="FitConfig.regularizers"):
        nested = CheckSettings.from_mapping({"fit": {"regularizers": "none"}})
    assert nested == CheckSettings.from_mapping({"remove": "all"})
    with pytest.warns(DeprecationWarning, match="FitConfig.remove_dropout"):
        ini = CheckSettings.from_mapping({"remove-dropout": "true"})  # ini and marker spelling
    assert ini == CheckSettings.from_mapping({"remove": "dropout"})
    with pytest.raises(SettingsError, match=r"FitConfig.regularizers='some' is invalid; allowed: 'model' or 'none'"):
        with pytest.warns(DeprecationWarning):
            FitConfig(regularizers="some")


def test_old_check_settings_names_warn_and_give_the_same_settings():
    new = CheckSettings.from_mapping({"ablated_regularizers": ["dropout"], "ablation_weight_decay": 1e-3})
    with pytest.warns(DeprecationWarning) as record:
        old = CheckSettings.from_mapping({"regularizers": ["dropout"], "weight_decay": 1e-3})
    text = " ".join(str(w.message) for w in record)
    assert "use CheckSettings.ablated_regularizers" in text and "use CheckSettings.ablation_weight_decay" in text
    assert old == new and old.key() == new.key() and old.fit.weight_decay == 0.0
    with pytest.warns(DeprecationWarning, match="CheckSettings.regularizers"):
        assert CheckSettings(regularizers=("augment",)) == CheckSettings(ablated_regularizers=("augment",))
    with pytest.warns(DeprecationWarning, match="CheckSettings.weight_decay"):
        assert new.updated(weight_decay=0.0).ablation_weight_decay == 0.0


def test_key_is_stable_and_ignores_criteria():
    a = CheckSettings.from_mapping({"lr": 0.05, "remove": "dropout"})
    b = CheckSettings(fit=FitConfig(lr=0.05, remove=["dropout"]))
    assert a.key() == b.key() and a.key() == CheckSettings.from_mapping({"lr": 0.05, "remove": "dropout"}).key()
    assert a.updated(max_slowdown=3).key() == a.key()
    assert a.updated(remove="all").key() != a.key()
    assert a.updated(ablated_regularizers=["augment"]).key() != a.key()


def test_defaults():
    s = CheckSettings()
    assert s.fit == FitConfig() and s.fit.remove == ()
    assert s.ablated_regularizers == REGULARIZERS and s.ablation_weight_decay == 5e-4


def test_old_names_read_with_a_warning():
    with pytest.warns(DeprecationWarning, match="FitConfig.regularizers is deprecated.*FitConfig.remove"):
        assert FitConfig(remove="all").regularizers == "none"
    with pytest.warns(DeprecationWarning, match="FitConfig.remove_dropout"):
        assert FitConfig(remove="dropout").remove_dropout is True
    with pytest.warns(DeprecationWarning, match="CheckSettings.weight_decay.*ablation_weight_decay"):
        assert CheckSettings(ablation_weight_decay=0.1).weight_decay == 0.1
