"""The recipe through the plugin (issue #21): command-line options, user-data budgets, bad input.

A small table on defaults, a tiny BERT and a tiny ViT with AdamW + warmup + cosine from the
command line, and bad recipe settings that fail their own items only. The full-size models
and the paper-vs-AdamW comparison live in benchmarks/bench_recipes.py.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import sklearn.datasets  # noqa: F401 - loaded once here: pytester's in-process runs unload
import torch  # noqa: F401 - modules they import; extension modules must not load twice

import rethink_checks.training  # noqa: F401

for _optional in ("timm", "transformers"):  # imported once here, for the same reason
    try:
        __import__(_optional)
    except ImportError:
        pass

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

SHARED_CIFAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpg.tar.gz"


def items(pytester: pytest.Pytester) -> dict[str, dict]:
    doc = json.loads((pytester.path / "out.json").read_text())
    return {item["nodeid"].split("::", 1)[1]: item for item in doc["items"]}


WINE = '''
import pytest
import torch
from sklearn.datasets import load_wine
from torch import nn
from rethink_checks.data import from_arrays


@pytest.fixture(scope="module")
def rethink_data():
    table = load_wine()  # 178 x 13: 140 rows to train on, as in the issue
    order = torch.randperm(178, generator=torch.Generator().manual_seed(0)).numpy()
    x, y = table.data[order].astype("float32"), table.target[order]
    mean, std = x[:140].mean(0), x[:140].std(0)
    x = (x - mean) / std
    return from_arrays(x[:140], y[:140], x[140:], y[140:], name="wine")


@pytest.fixture
def rethink_model():
    return lambda input_shape, num_classes: nn.Sequential(
        nn.Linear(input_shape[0], 256), nn.ReLU(), nn.Linear(256, num_classes))
'''


def test_a_small_table_passes_on_defaults(pytester: pytest.Pytester) -> None:
    """140 rows, 13 features, a 256-unit MLP: batch 128 and 100 epochs were 200 steps and failed."""
    pytester.makepyfile(test_wine=WINE)
    result = pytester.runpytest("--rethink", "--rethink-device=cpu", "-p", "no:cacheprovider",
                                "--rethink-checks=true_labels,random_labels,partial_labels,slowdown",
                                "--rethink-json=out.json")
    got = items(pytester)
    assert {k: v["outcome"] for k, v in got.items()} == {
        f"rethink[{c}]": "passed" for c in ("true_labels", "random_labels", "partial_labels", "slowdown")}
    result.assert_outcomes(passed=4)
    fit = got["rethink[random_labels]"]["settings"]["fit"]
    assert fit["batch_size"] == 16 and fit["max_epochs"] == 445 and fit["optimizer"] == "sgd"


def test_recipe_options_reach_every_fit_and_the_json(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_wine=WINE)
    pytester.runpytest("--rethink", "--rethink-device=cpu", "-p", "no:cacheprovider",
                       "--rethink-checks=random_labels", "--rethink-json=out.json",
                       "--rethink-optimizer=adamw", "--rethink-lr=0.003", "--rethink-schedule=cosine",
                       "--rethink-warmup=0.1", "--rethink-batch-size=32", "--rethink-precision=fp32")
    item = items(pytester)["rethink[random_labels]"]
    assert item["outcome"] == "passed", item["message"]
    fit = item["settings"]["fit"]
    assert (fit["optimizer"], fit["lr"], fit["schedule"], fit["warmup"], fit["batch_size"],
            fit["precision"]) == ("adamw", 0.003, "cosine", 0.1, 32, "fp32")
    assert item["metrics"]["recipe"].startswith("adamw lr=0.003, cosine warmup=0.1, cross_entropy")


@pytest.mark.parametrize("flag, shown", [
    ("--rethink-optimizer=lamb", "FitConfig.optimizer='lamb' is invalid; allowed: sgd, adam, adamw"),
    ("--rethink-schedule=step", "FitConfig.schedule='step' is invalid; allowed: paper, constant"),
    ("--rethink-precision=fp8", "FitConfig.precision='fp8' is invalid; allowed: auto, fp32, bf16, fp16"),
    ("--rethink-warmup=-1", "FitConfig.warmup=-1.0 is invalid; allowed: a number >= 0"),
])
def test_bad_recipe_options_are_usage_errors(pytester: pytest.Pytester, flag: str, shown: str) -> None:
    pytester.makepyfile(test_wine=WINE)
    result = pytester.runpytest("--rethink", flag)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{flag.split('=')[0]}*{shown}*"])


BAD = '''
import math
import pytest
import torch
from torch import nn
from rethink_checks.data import from_tensors


def _schedule_raises(step, total):
    raise RuntimeError("no schedule today")


def _nan_step(model, batch, optimizer):
    x, y = batch
    return nn.functional.cross_entropy(model(x), y) * math.nan


def _vector_step(model, batch, optimizer):
    x, y = batch
    return nn.functional.cross_entropy(model(x), y, reduction="none")


CASES = {"good": {}, "not_an_optimizer": {"optimizer": lambda params: "adam"},
         "unknown_optimizer": {"optimizer": "lamb"}, "schedule_raises": {"schedule": _schedule_raises},
         "nan_step": {"train_step": _nan_step}, "vector_step": {"train_step": _vector_step},
         "long_warmup": {"warmup": 100000}}


@pytest.fixture(scope="module")
def rethink_data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(60, 6, generator=g)
    y = (x[:, 0] > 0).long()
    return from_tensors(x[:48], y[:48], x[48:], y[48:])


@pytest.fixture
def rethink_model():
    return lambda input_shape, num_classes: nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 2))


@pytest.fixture(params=sorted(CASES))
def rethink_config(request):
    return {"device": "cpu", "max_epochs": 40, "lr": 0.1, **CASES[request.param]}
'''


def test_bad_recipes_fail_their_own_items_with_one_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_bad=BAD)
    pytester.runpytest("--rethink", "--rethink-checks=true_labels", "-p", "no:cacheprovider",
                       "--rethink-json=out.json")
    got = {k.split("-", 1)[1].rstrip("]"): v for k, v in items(pytester).items()}
    assert got["good"]["outcome"] == "passed", got["good"]["message"]
    expected = {
        "not_an_optimizer": "FitConfig.optimizer=test_bad.<lambda> returned builtins.str; allowed: "
                            "a callable (params) -> torch.optim.Optimizer",
        "unknown_optimizer": "FitConfig.optimizer='lamb' is invalid; allowed: sgd, adam, adamw, rmsprop",
        "schedule_raises": "FitConfig.schedule=test_bad._schedule_raises raised RuntimeError at step 0",
        "nan_step": "FitConfig.train_step=test_bad._nan_step returned a non-finite loss (nan) at step 0",
        "vector_step": "FitConfig.train_step=test_bad._vector_step returned shape (4,) at step 0",
        "long_warmup": "FitConfig.warmup=100000 is invalid; allowed: fewer steps than the fit's step budget",
    }
    for case, text in expected.items():
        assert got[case]["outcome"] in ("error", "failed"), case
        assert text in got[case]["message"], (case, got[case]["message"])
        assert "\n" not in got[case]["message"].strip(), case


BERT = '''
import sys

import pytest

sys.path.insert(0, "{benchmarks}")
from bench_recipes import BertLogits, token_corpus  # the benchmark's model and corpus, smaller


@pytest.fixture(scope="module")
def rethink_data():
    return token_corpus(72, length=12)


@pytest.fixture
def rethink_model():
    return lambda input_shape, num_classes, vocab_size: BertLogits(vocab_size, num_classes)
'''

VIT = '''
import pytest
from rethink_checks.data import load


@pytest.fixture(scope="module")
def rethink_data():
    # real CIFAR-10 (whitened), 32 training and 64 test images: the test split is measured whole
    return load("folder:{path}").subset(32, seed=0, n_test=64)


@pytest.fixture
def rethink_model():
    import timm

    # vit_tiny_patch16_224 with patch 4 on 32x32 images; 2 of its 12 blocks keep the test small
    # (the whole model is benchmarks/bench_recipes.py's)
    return lambda input_shape, num_classes: timm.create_model(
        "vit_tiny_patch16_224", pretrained=False, patch_size=4, img_size=32, depth=2,
        num_classes=num_classes)
'''

ADAMW = ("--rethink-optimizer=adamw", "--rethink-schedule=cosine", "--rethink-warmup=0.05",
         "--rethink-device=cpu", "--rethink-checks=true_labels,random_labels", "-p", "no:cacheprovider",
         "--rethink-json=out.json")


def test_tiny_bert_with_adamw_warmup_cosine_from_the_command_line(pytester: pytest.Pytester) -> None:
    pytest.importorskip("transformers")
    pytester.makepyfile(test_bert=BERT.replace("{benchmarks}", str(Path(__file__).resolve().parents[1] / "benchmarks")))
    result = pytester.runpytest("--rethink", *ADAMW, "--rethink-max-epochs=60")
    got = items(pytester)
    assert {k: v["outcome"] for k, v in got.items()} == {
        "rethink[true_labels]": "passed", "rethink[random_labels]": "passed"}, \
        {k: v["message"] for k, v in got.items()}
    result.assert_outcomes(passed=2)


@pytest.mark.skipif(not SHARED_CIFAR.is_file(), reason=f"needs {SHARED_CIFAR}")
def test_tiny_vit_on_real_cifar10_with_adamw_warmup_cosine(pytester: pytest.Pytester) -> None:
    pytest.importorskip("timm")
    pytester.makepyfile(test_vit=VIT.replace("{path}", str(SHARED_CIFAR)))
    result = pytester.runpytest("--rethink", *ADAMW, "--rethink-batch-size=8", "--rethink-max-epochs=80")
    got = items(pytester)
    assert {k: v["outcome"] for k, v in got.items()} == {
        "rethink[true_labels]": "passed", "rethink[random_labels]": "passed"}, \
        {k: v["message"] for k, v in got.items()}
    result.assert_outcomes(passed=2)
