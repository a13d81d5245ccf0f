"""The benchmark models that are not in ``rethink_checks.models``: factories ``(input_shape, num_classes)``.

Shared by ``bench_cpu_step.py`` (imported as ``scenarios.nets``) and the scenario test modules
next to this file (imported as ``nets``: pytest puts this folder on ``sys.path``).
"""
from __future__ import annotations

from torch import nn


class BNDropoutCNN(nn.Module):
    """The issue's small CNN: two 3x3 convs with batch norm, max pools, dropout 0.2, a linear head."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, width: int = 32):
        super().__init__()
        channels, height, width_px = input_shape
        self.features = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1, bias=False), nn.BatchNorm2d(2 * width), nn.ReLU(),
            nn.MaxPool2d(2), nn.Flatten())
        self.classifier = nn.Sequential(
            nn.Dropout(0.2), nn.Linear(2 * width * (height // 4) * (width_px // 4), num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


def bn_cnn(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """The small BN + dropout CNN."""
    return BNDropoutCNN(input_shape, num_classes)


def resnet18(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """torchvision's ResNet-18 as the issue names it (ImageNet stem; 32x32 input ends at 1x1)."""
    import torchvision

    return torchvision.models.resnet18(num_classes=num_classes)


def mobilenet_v3_small(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """torchvision's MobileNetV3-small (batch norm, hardswish, dropout 0.2 in the head)."""
    import torchvision

    return torchvision.models.mobilenet_v3_small(num_classes=num_classes)
