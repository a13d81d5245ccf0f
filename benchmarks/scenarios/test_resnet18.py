"""Issue #10 scenario: torchvision ResNet-18 on 256 CIFAR-10 images (true, random labels, slowdown).

Run by ``benchmarks/bench_cpu_budget.py`` with
``--rethink --rethink-data=folder:CIFAR --rethink-train-size=256``; the target is <= 90 s on 2
cores with correct verdicts (issue #10).
"""
import pytest

from nets import resnet18

pytestmark = pytest.mark.rethink(checks=["true_labels", "random_labels", "slowdown"])


@pytest.fixture
def rethink_model():
    return resnet18
