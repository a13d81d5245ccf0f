"""Issue #10 scenario: a small BN + dropout CNN on 2,000 CIFAR-10 images (true and random labels).

Run by ``benchmarks/bench_cpu_budget.py`` with
``--rethink --rethink-data=folder:CIFAR --rethink-train-size=2000``; the target is <= 180 s on
2 cores (issue #10). The model trains as built, dropout and batch norm included.
"""
import pytest

from nets import bn_cnn

pytestmark = pytest.mark.rethink(checks=["true_labels", "random_labels"])


@pytest.fixture
def rethink_model():
    return bn_cnn
