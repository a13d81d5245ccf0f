"""Your own model under the randomization checks: a small CNN written right here.

Copy this file next to your tests and put your model in ``rethink_model``. Run:
``pytest --rethink examples/test_custom_cnn.py -v`` (long checks print live progress).

The data is the plugin's default (``--rethink-data=digits``: scikit-learn's 8x8 digits,
whitened per image, trained with batch 32 and up to 300 epochs, the digits' training defaults
(docs/plugin.md), under the paper's schedule: lr 0.01, x0.95 every 391 optimizer steps).
Nothing below changes that schedule.
"""
import pytest
from torch import nn


class SmallCNN(nn.Module):
    """Two 3x3 conv layers, a max pool, then a dropout-regularized classifier; any input size."""

    def __init__(self, input_shape, num_classes):
        super().__init__()
        channels, height, width = input_shape
        self.features = nn.Sequential(
            nn.Conv2d(channels, 8, 3, padding=1), nn.ReLU(),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2), nn.Flatten())
        self.classifier = nn.Sequential(
            nn.Linear(16 * (height // 2) * (width // 2), 128), nn.ReLU(),
            nn.Dropout(0.25),
            nn.Linear(128, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


# Which checks this module gets (the marker's `checks` decides at collection time, so
# `pytest --rethink --collect-only` lists exactly these):
#   true_labels    fits the real labels (100% train accuracy),
#   random_labels  memorizes random labels (99% train accuracy) - the paper's main result,
#   regularizers   trains with and without weight decay + dropout: how much do they buy?
pytestmark = pytest.mark.rethink(checks=["true_labels", "random_labels", "regularizers"])


@pytest.fixture
def rethink_model():
    # A factory (here the class itself): the plugin passes the data's input_shape and
    # num_classes, so the same fixture works on digits, MNIST or CIFAR-10.
    return SmallCNN


@pytest.fixture
def rethink_config():
    return {
        # Convolutions are slow on a CPU: a seeded 400-image subset of the 1,437 training
        # digits keeps this module to about half a minute. Drop the line on a GPU.
        "train_size": 400,
        # The paper's CNN learning rate on CIFAR-10 was 0.01 (0.1 for Inception); 0.01 with
        # momentum 0.9 works for this CNN on the digits too. Without "lr" the engine uses
        # 0.01 or the model's own `rethink_lr` attribute.
        "lr": 0.01,
        # The regularizers this model uses, for the `regularizers` check: its dropout, plus
        # weight decay (value: "ablation_weight_decay", default 5e-4). "With" trains with
        # these on, "without" strips every one of them; the check fails if removing them costs
        # more than max_regularizer_gain (0.10) test accuracy or the model no longer fits.
        "ablated_regularizers": ["weight_decay", "dropout"],
        # The memorization checks train the model as built, dropout included (does MY model
        # memorize?). The paper's randomization runs had no dropout; this line is that
        # paper-faithful choice. Delete it to test the model exactly as you ship it.
        "remove": ["dropout"],
    }
