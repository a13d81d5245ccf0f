"""A tabular classifier under the randomization checks: scikit-learn's breast-cancer table.

569 patients x 30 numeric features, 2 classes, bundled with scikit-learn (no download).
The inputs are feature vectors (N, 30), so the input randomizations are the feature-vector
ones (docs/corruptions.md): ``shuffled_pixels`` permutes the 30 columns once for every row,
``random_pixels`` permutes each row's columns independently, ``gaussian`` replaces every row
by per-feature Gaussian noise with the training set's means and spreads.
Run: ``pytest --rethink examples/test_tabular.py -v`` (about 10 s on one loaded CPU core).
"""
import pytest
import torch
from sklearn.datasets import load_breast_cancer
from torch import nn

from rethink_checks.data import as_dataset

pytestmark = pytest.mark.rethink(checks=[
    "true_labels", "random_labels", "shuffled_pixels", "random_pixels", "gaussian",
    "partial_labels", "slowdown"])


@pytest.fixture(scope="module")
def rethink_data():
    table = load_breast_cancer()
    x = torch.tensor(table.data, dtype=torch.float32)
    y = torch.tensor(table.target)
    # (x, y) is split 80/20 with seed 0; float (N, D) inputs are "features".
    data = as_dataset((x, y), seed=0).replace(name="breast_cancer")
    # Standardize each column with the training split's statistics (the raw columns span
    # 0.001 to 4,000, which SGD at one learning rate cannot handle).
    mean, std = data.train_x.mean(0), data.train_x.std(0)
    return data.replace(train_x=(data.train_x - mean) / std, test_x=(data.test_x - mean) / std)


@pytest.fixture
def rethink_model():
    # A factory: the plugin passes input_shape=(30,) and num_classes=2.
    return lambda input_shape, num_classes: nn.Sequential(
        nn.Linear(input_shape[0], 512), nn.ReLU(), nn.Linear(512, num_classes))


@pytest.fixture
def rethink_config():
    return {
        # 455 training rows: batch 32 gives 15 steps an epoch; the paper's x0.95 decay per
        # epoch would stop learning long before random labels are memorized, so keep lr fixed.
        "lr": 0.05, "batch_size": 32, "lr_decay": 1.0, "max_epochs": 300,
        # Three corruption levels keep partial_labels to three fits.
        "partial_levels": [0.0, 0.5, 1.0],
        # True labels fit in about 10 epochs on this table, random labels in about 80 (seed
        # 0): a 20x slowdown. The default bound, 10x, suits the paper's CIFAR-10 runs, where
        # true labels themselves take many epochs; on a small table the ratio is larger.
        "max_slowdown": 40.0,
        "device": "cpu",
    }
