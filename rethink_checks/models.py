"""The paper's CIFAR-10 models (appendix A), built for any input shape and class count."""
from __future__ import annotations

import math

from torch import nn


def mlp(input_shape: tuple[int, ...], num_classes: int, depth: int = 1, width: int = 512) -> nn.Module:
    """Flatten, ``depth`` hidden layers of ``width`` ReLU units, then a linear classifier."""
    layers: list[nn.Module] = [nn.Flatten()]
    fan_in = math.prod(input_shape)
    for _ in range(depth):
        layers += [nn.Linear(fan_in, width), nn.ReLU(inplace=True)]
        fan_in = width
    layers.append(nn.Linear(fan_in, num_classes))
    return nn.Sequential(*layers)
