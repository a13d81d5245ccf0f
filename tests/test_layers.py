"""Settings layered once (rethink_checks.layers): the order, the validation of every layer, and
``fit`` applying the data's own defaults."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings as hsettings, strategies as st

from rethink_checks import fit
from rethink_checks.corruptions import CorruptionSpec
from rethink_checks.errors import SettingsError
from rethink_checks.layers import LAYERS, layered, validate_layer
from rethink_checks.settings import FitConfig


def mlp_64_512_10() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 512), torch.nn.ReLU(),
                               torch.nn.Linear(512, 10))


def test_layers_are_in_the_issue_order() -> None:
    assert LAYERS == ("package", "data", "ini", "command line", "marker", "rethink_config")


@hsettings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from([None, 2, 3, 4, 5]), min_size=5, max_size=5))
def test_a_later_layer_wins_key_by_key(epochs: list[int | None]) -> None:
    """Each of data, ini, command line, marker, rethink_config may set max_epochs (or not); the
    highest one that did decides, else the package default (100)."""
    class Data:
        defaults = {} if epochs[0] is None else {"max_epochs": epochs[0]}

    given_layers = [None if e is None else {"max_epochs": e, "seed": i} for i, e in enumerate(epochs)]
    got = layered(Data(), ini=given_layers[1], cli=given_layers[2], marker=given_layers[3],
                  config=given_layers[4]).settings
    set_ = [e for e in epochs if e is not None]
    assert got.fit.max_epochs == (set_[-1] if set_ else 100)


def test_the_data_layer_sits_under_every_user_layer(digits_full) -> None:
    out = layered(digits_full, cli={"max_slowdown": 5.0}).settings
    assert (out.fit.batch_size, out.fit.max_epochs, out.max_slowdown) == (32, 300, 5.0)


@pytest.mark.parametrize("source, mapping, shown", [
    ("rethink_config", {"checks": ["random_lables"]},
     "rethink_config: checks=['random_lables'] is invalid: unknown check(s) 'random_lables'; "
     "allowed: true_labels, random_labels"),
    ("marker", {"expect": {"random_lable": "met"}}, "marker: CheckSettings.expect="),
    ("ini", {"learning_rate": 0.1}, "ini: unknown settings key(s) ['learning_rate']"),
    ("command line", {"batch_size": 0}, "command line: FitConfig.batch_size=0 is invalid"),
])
def test_every_layer_is_validated_by_the_same_code(source, mapping, shown) -> None:
    with pytest.raises(SettingsError) as info:
        layered(**{{"rethink_config": "config", "marker": "marker", "ini": "ini",
                    "command line": "cli"}[source]: mapping})
    assert shown in str(info.value)
    with pytest.raises(SettingsError):
        validate_layer(source, mapping)


def test_a_check_selection_comes_from_the_highest_layer_that_made_one() -> None:
    out = layered(marker={"checks": "true_labels,slowdown"}, config={"checks": ["gaussian"]})
    assert (out.checks, out.checks_from) == (("gaussian",), "rethink_config")
    assert layered(ini={"seed": 1}).checks is None


@pytest.fixture(scope="module")
def digits_full():
    from rethink_checks.data import load

    return load("digits")


def test_fit_applies_the_data_defaults_under_its_keywords(digits_full) -> None:
    torch.manual_seed(0)
    run = fit(mlp_64_512_10, digits_full, max_epochs=1)
    assert run.settings["batch_size"] == 32 and run.settings["max_epochs"] == 1  # keyword > data
    explicit = fit(mlp_64_512_10, digits_full, FitConfig(max_epochs=1))
    assert explicit.settings["batch_size"] == 128  # a FitConfig given is complete: used as is


def test_fit_with_the_data_defaults_memorizes_random_labels(digits_full) -> None:
    """The issue's example: plain ``fit`` on the digits with random labels and an MLP 64-512-10
    (batch 32 from the data; on all 1,437 training images it memorizes in 199 epochs, 30 s on a
    loaded 2-core CPU; here a 300-image subset keeps the test at seconds)."""
    data = digits_full.subset(300, seed=0)
    run = fit(mlp_64_512_10, data, corruption=CorruptionSpec("random_labels", seed=0))
    assert run.fitted and run.train_accuracy == 1.0 and run.settings["batch_size"] == 32
