"""One fixture, several architectures: every check runs once per fixture parameter.

Width and depth change how fast a network memorizes random labels; the summary table has
one row per architecture and check. Default data and training settings (the digits'
defaults, docs/plugin.md). Run: ``pytest --rethink examples/test_parametrized.py -v``, or
``... -k partial_labels`` for the label-corruption sweeps alone.
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

# Checks shared by every architecture:
#   true_labels, random_labels  fit the real labels; memorize random ones,
#   partial_labels              the paper's Figure 1b/1c: corrupt a fraction p of the labels
#                               (p = 0, 0.2, ..., 1); every level must fit and test error may
#                               only grow with p,
#   regularizers                weight decay on vs off (a plain MLP's only regularizer).
pytestmark = pytest.mark.rethink(
    checks=["true_labels", "random_labels", "partial_labels", "regularizers"],
    ablated_regularizers=["weight_decay"],
    # The paper's MLP learning rate; a plain nn.Sequential has no `rethink_lr` of its own.
    lr=0.01,
)


@pytest.fixture(params=sorted(ARCHITECTURES))
def rethink_model(request):
    widths = ARCHITECTURES[request.param]
    return lambda input_shape, num_classes: mlp(input_shape, num_classes, widths)
