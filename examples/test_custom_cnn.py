"""Your own model under the full randomization suite: a small CNN written right here.

Run: ``pytest --rethink examples/test_custom_cnn.py -v`` (long checks print live progress).
Copy this file next to your own tests and put your model in ``rethink_model``.
"""
import pytest
from torch import nn


class SmallCNN(nn.Module):
    """Two 3x3 conv layers, a max pool and two linear layers; sized for any input shape."""

    def __init__(self, input_shape, num_classes):
        super().__init__()
        channels, height, width = input_shape
        self.features = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2), nn.Flatten())
        self.classifier = nn.Sequential(
            nn.Linear(64 * (height // 2) * (width // 2), 256), nn.ReLU(),
            nn.Dropout(0.25),  # the `regularizers` check trains with and without it
            nn.Linear(256, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


@pytest.fixture
def rethink_model():
    # A factory: the plugin passes the data's input_shape and num_classes.
    return SmallCNN


@pytest.fixture
def rethink_config():
    # Scaled down for a laptop CPU on the built-in 8x8 digits: 100 training images,
    # batch 10, constant learning rate (the paper decays it by 0.95 per epoch over
    # 390 steps an epoch; here an epoch is 10 steps). The thresholds stay the paper's:
    # 100% train accuracy on real labels, 99% on every randomization.
    return {
        "train_size": 100,
        "batch_size": 10,
        "lr": 0.05,
        "lr_decay": 1.0,
        "max_epochs": 100,
        "regularizers": ["weight_decay", "dropout"],  # what this model uses...
        "remove_dropout": True,  # ...but, as in the paper, randomization runs go without it
        "partial_levels": [0.0, 0.5, 1.0],            # a short label-corruption sweep
    }
