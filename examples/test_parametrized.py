"""One fixture, several architectures: every check runs once per fixture parameter.

Width and depth change how fast a network memorizes random labels; the summary table
shows one row per architecture and check. Run:
``pytest --rethink examples/test_parametrized.py -k partial_labels`` to see one sweep.
"""
import pytest
from torch import nn


def mlp(input_shape, num_classes, widths):
    """Flatten, then ReLU layers of the given widths, then a linear classifier."""
    layers, fan_in = [nn.Flatten()], 1
    for size in input_shape:
        fan_in *= size
    for width in widths:
        layers += [nn.Linear(fan_in, width), nn.ReLU()]
        fan_in = width
    return nn.Sequential(*layers, nn.Linear(fan_in, num_classes))


ARCHITECTURES = {
    "wide": [1024],          # one wide hidden layer
    "deep": [256, 256],      # two narrower ones
}

# Checks and budget shared by every architecture. The label-corruption sweep is the
# paper's Figure 1b/1c: every level must fit, and test error may only grow with p.
pytestmark = pytest.mark.rethink(
    checks=["true_labels", "random_labels", "partial_labels", "regularizers"],
    train_size=100, batch_size=10, lr=0.05, lr_decay=1.0, max_epochs=150,
    partial_levels=[0.0, 0.5, 1.0],
    regularizers=["weight_decay"],  # plain MLPs: weight decay is their only regularizer
)


@pytest.fixture(params=sorted(ARCHITECTURES))
def rethink_model(request):
    widths = ARCHITECTURES[request.param]
    return lambda input_shape, num_classes: mlp(input_shape, num_classes, widths)
