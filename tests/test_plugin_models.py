"""The zero-code entry ``--rethink-model=SPEC``: items for a model without a test file.

Runs on tiny digits subsets with one or two epochs: these tests check that the items exist,
run through the same path as fixture models (options, JSON, -k, xdist) and that a bad spec
is a usage error naming it, not the paper's claims.
"""
from __future__ import annotations

import json

import pytest
import sklearn.datasets  # noqa: F401 - loaded once here: pytester's in-process runs unload
import torch  # noqa: F401 - modules they import; extension modules must not load twice
import torchvision.models  # noqa: F401

import rethink_checks.training  # noqa: F401

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

NETS = '''
import math
from torch import nn


def make_net(input_shape, num_classes):
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), 128), nn.ReLU(),
                         nn.Linear(128, num_classes))


class Net(nn.Module):
    def __init__(self, input_shape, num_classes):
        super().__init__()
        self.body = make_net(input_shape, num_classes)

    def forward(self, x):
        return self.body(x)


def no_arguments():
    return make_net((1, 8, 8), 10)


def broken(input_shape, num_classes):
    raise ValueError("no layout for " + str(input_shape))


def wrong_output(input_shape, num_classes):
    return nn.Flatten()


NOT_CALLABLE = 3
'''

FAST = ("--rethink", "-p", "no:cacheprovider", "--rethink-train-size=40",
        "--rethink-max-epochs=4", "--rethink-fit-threshold=0.3", "--rethink-memorize-threshold=0.2",
        "--rethink-device=cpu")


def entries(pytester: pytest.Pytester, name: str = "out.json") -> dict[str, dict]:
    doc = json.loads((pytester.path / name).read_text())
    return {item["nodeid"]: item for item in doc["items"]}


def test_factory_and_class_specs_give_items_named_after_the_spec(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(mynets=NETS)
    specs = ("--rethink-model=mynets:make_net", "--rethink-model=mynets:Net")
    listed = pytester.runpytest(*FAST, *specs, "--rethink-checks=true_labels,random_labels",
                                "--collect-only", "-q").stdout.lines
    assert [line for line in listed if "rethink[" in line] == [
        "rethink-model::mynets:make_net::rethink[true_labels]",
        "rethink-model::mynets:make_net::rethink[random_labels]",
        "rethink-model::mynets:Net::rethink[true_labels]",
        "rethink-model::mynets:Net::rethink[random_labels]"]
    assert "4 tests collected" in "\n".join(listed)
    result = pytester.runpytest(*FAST, *specs, "--rethink-checks=true_labels,random_labels",
                                "-k", "mynets:Net and true_labels", "--rethink-json=out.json")
    result.assert_outcomes(passed=1, deselected=3)
    (entry,) = entries(pytester).values()
    assert entry["nodeid"] == "rethink-model::mynets:Net::rethink[true_labels]"
    assert entry["model"] == "mynets:Net" and entry["outcome"] == "passed"
    assert entry["settings"]["train_size"] == 40 and entry["settings"]["fit"]["max_epochs"] == 4


def test_file_spec_ini_list_and_test_modules_together(pytester: pytest.Pytester) -> None:
    """path/file.py:attr, the ini key as a line list, fixture models alongside, a conftest's
    rethink_config applying to the spec items too."""
    pytester.mkdir("nets")
    (pytester.path / "nets" / "arch.py").write_text(NETS)
    pytester.makeini("[pytest]\nrethink_model =\n    nets/arch.py:make_net\n    "
                     "nets/arch.py:no_arguments\n")
    pytester.makepyfile(test_fixture_model='''
import pytest
from rethink_checks.models import mlp

@pytest.fixture
def rethink_model():
    return lambda input_shape, num_classes: mlp(input_shape, num_classes, width=64)
''')
    pytester.makeconftest('''
import pytest

@pytest.fixture
def rethink_config():
    return {"batch_size": 8}
''')
    result = pytester.runpytest(*FAST, "--rethink-checks=true_labels", "--rethink-json=out.json")
    result.assert_outcomes(passed=3)
    assert {e["settings"]["fit"]["batch_size"] for e in entries(pytester).values()} == {8}
    assert set(entries(pytester)) == {
        "rethink-model::nets/arch.py:make_net::rethink[true_labels]",
        "rethink-model::nets/arch.py:no_arguments::rethink[true_labels]",
        "test_fixture_model.py::rethink[true_labels]"}


def test_torchvision_resnet18_on_digits(pytester: pytest.Pytester) -> None:
    """One epoch of ResNet-18 on 32 digits: the 1-channel images are repeated to 3 channels."""
    result = pytester.runpytest("--rethink", "-p", "no:cacheprovider",
                                "--rethink-model=torchvision:resnet18", "--rethink-checks=true_labels",
                                "--rethink-train-size=32", "--rethink-max-epochs=1",
                                "--rethink-device=cpu", "--rethink-json=out.json")
    got = entries(pytester)
    assert list(got) == ["rethink-model::torchvision:resnet18::rethink[true_labels]"]
    entry = got["rethink-model::torchvision:resnet18::rethink[true_labels]"]
    assert entry["outcome"] in ("passed", "failed"), entry["message"]  # 1 epoch: either
    assert entry["metrics"]["num_parameters"] > 11_000_000  # ResNet-18, 10 classes
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)


@pytest.mark.parametrize("spec, shown", [
    ("nosuchmodule:make_net", "--rethink-model=nosuchmodule:make_net: cannot import "
                              "'nosuchmodule': ModuleNotFoundError: No module named 'nosuchmodule'"),
    ("mynets:missing", "--rethink-model=mynets:missing: module 'mynets' has no attribute 'missing'"),
    ("mynets:NOT_CALLABLE", "mynets:NOT_CALLABLE is a int; expected a factory, an nn.Module class"),
    ("mynets:broken", "--rethink-model=mynets:broken: building it for digits (input shape "
                      "(1, 8, 8), 10 classes) failed: ModelError: the rethink_model factory raised "
                      "ValueError: no layout for (1, 8, 8)"),
    ("mynets:wrong_output", "--rethink-model=mynets:wrong_output: building it for digits (input "
                            "shape (1, 8, 8), 10 classes) failed: TypeError: its output for a "
                            "batch of 2 is (2, 64); expected (2, 10) (batch, num_classes)"),
    ("torchvision:no_such_net", "torchvision has no model 'no_such_net'; see "
                                "torchvision.models.list_models()"),
    ("torchvision:alexnet", "--rethink-model=torchvision:alexnet: building it for digits (input "
                            "shape (1, 8, 8), 10 classes) failed: RuntimeError"),
    ("missing/file.py:net", "--rethink-model=missing/file.py:net: no such file"),
    ("mynets", "--rethink-model: invalid value ['mynets']: 'mynets' is not TARGET:NAME; allowed: "),
])
def test_bad_specs_are_usage_errors(pytester: pytest.Pytester, spec: str, shown: str) -> None:
    pytester.makepyfile(mynets=NETS)
    result = pytester.runpytest("--rethink", "-p", "no:cacheprovider", f"--rethink-model={spec}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert shown in result.stderr.str()
    assert "INTERNALERROR" not in result.stderr.str() + result.stdout.str()


def test_rethink_model_ignored_without_rethink(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("-p", "no:cacheprovider", "--rethink-model=nosuchmodule:net")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_xdist_workers_collect_and_run_the_spec_items(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(mynets=NETS)
    result = pytester.runpytest_subprocess(
        *FAST, "-n", "2", "--rethink-model=mynets:make_net", "--rethink-model=mynets:Net",
        "--rethink-checks=true_labels,random_labels", "--rethink-json=out.json")
    result.assert_outcomes(passed=4)
    got = entries(pytester)
    assert len(got) == 4 and all(e["outcome"] == "passed" for e in got.values())
    assert {e["model"] for e in got.values()} == {"mynets:make_net", "mynets:Net"}
