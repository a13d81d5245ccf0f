"""Scenario: torchvision MobileNetV3-small on 256 CIFAR-10 images (true, random labels, slowdown).

Run by ``benchmarks/bench_cpu_budget.py --only mobilenet`` (not in the default set) with
``--rethink-data=folder:CIFAR --rethink-train-size=256``.
"""
import pytest

from nets import mobilenet_v3_small

pytestmark = pytest.mark.rethink(checks=["true_labels", "random_labels", "slowdown"])


@pytest.fixture
def rethink_model():
    return mobilenet_v3_small
