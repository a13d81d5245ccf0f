"""The paper's CIFAR-10 models (appendix A), built for any input shape and class count.

For 3x28x28 inputs and 10 classes the trainable parameter counts equal the paper's:
small Inception 1,649,402 (with or without batch norm), small AlexNet 1,387,786,
MLP 1x512 1,209,866, MLP 3x512 1,735,178. The Inception count holds with conv biases
and batch norm *without* learned scale and shift (``affine=False``); with them it would
be 1,651,114. Every forward pass is static (no data-dependent Python control flow, no
``.item()``), so the models can be captured in CUDA graphs and run channels_last.
"""
from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence

import torch
from torch import nn

from .errors import ModelNameError

__all__ = [
    "PAPER_LEARNING_RATES", "MODELS", "build", "small_inception", "small_alexnet", "mlp",
    "count_parameters", "ModelNameError", "ConvModule", "InceptionModule", "DownsampleModule",
    "GlobalMeanPool",
]

#: The paper's SGD learning rates per model name (momentum 0.9, x0.95 per 391-step epoch of CIFAR-10).
PAPER_LEARNING_RATES: dict[str, float] = {
    "inception": 0.1,
    "inception_nobn": 0.1,
    "alexnet": 0.01,
    "mlp1x512": 0.01,
    "mlp3x512": 0.01,
}


def mlp(input_shape: tuple[int, ...], num_classes: int, depth: int = 1, width: int = 512) -> nn.Module:
    """Flatten, ``depth`` hidden layers of ``width`` ReLU units, then a linear classifier."""
    layers: list[nn.Module] = [nn.Flatten()]
    fan_in = math.prod(input_shape)
    for _ in range(depth):
        layers += [nn.Linear(fan_in, width), nn.ReLU(inplace=True)]
        fan_in = width
    layers.append(nn.Linear(fan_in, num_classes))
    return nn.Sequential(*layers)


class ConvModule(nn.Sequential):
    """conv (with bias) -> batch norm without affine parameters (optional) -> ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, batch_norm: bool = True):
        layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2)]
        if batch_norm:
            layers.append(nn.BatchNorm2d(c_out, affine=False))
        layers.append(nn.ReLU(inplace=False))
        super().__init__(*layers)


class InceptionModule(nn.Module):
    """Inc(c1, c3): concat of a 1x1 conv module (c1 channels) and a 3x3 one (c3 channels)."""

    def __init__(self, c_in: int, c1: int, c3: int, batch_norm: bool = True):
        super().__init__()
        self.branch1 = ConvModule(c_in, c1, 1, batch_norm=batch_norm)
        self.branch3 = ConvModule(c_in, c3, 3, batch_norm=batch_norm)
        self.out_channels = c1 + c3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch3(x)], dim=1)


class DownsampleModule(nn.Module):
    """Down(c3): concat of a 3x3 stride-2 conv module and a 3x3 stride-2 max pool (28->14->7)."""

    def __init__(self, c_in: int, c3: int, batch_norm: bool = True):
        super().__init__()
        self.conv = ConvModule(c_in, c3, 3, stride=2, batch_norm=batch_norm)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.out_channels = c3 + c_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.conv(x), self.pool(x)], dim=1)


class GlobalMeanPool(nn.Module):
    """Mean over the spatial dimensions: (N, C, H, W) -> (N, C), any H and W."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


#: Small Inception body after the first conv: ("inc", c1, c3) or ("down", c3).
_INCEPTION_PLAN: tuple[tuple[int, ...], ...] = (
    (32, 32), (32, 48), (80,), (112, 48), (96, 64), (80, 80), (48, 96), (96,), (176, 160), (176, 160),
)


def _as_shape(input_shape: Sequence[int]) -> tuple[int, ...] | None:
    """``input_shape`` as a tuple of positive Python ints, or None when it is not one."""
    try:
        shape = tuple(operator.index(s) for s in input_shape)
    except TypeError:
        return None
    return shape if shape and all(s >= 1 for s in shape) else None


def _check_image_shape(input_shape: Sequence[int], num_classes: int, who: str) -> tuple[int, int, int]:
    """Validate a (C, H, W) shape and a class count, or raise ModelNameError naming them."""
    shape = _as_shape(input_shape)
    if shape is None or len(shape) != 3:
        raise ModelNameError(f"{who}: input_shape={input_shape!r} is not allowed; "
                             "expected (channels, height, width) with positive ints, e.g. (3, 28, 28)")
    _check_classes(num_classes, who)
    return shape  # type: ignore[return-value]


def _check_classes(num_classes: int, who: str) -> int:
    """``num_classes`` as a Python int >= 1, or raise ModelNameError naming it."""
    try:
        k = operator.index(num_classes)
    except TypeError:
        k = 0
    if isinstance(num_classes, bool) or k < 1:
        raise ModelNameError(f"{who}: num_classes={num_classes!r} is not allowed; expected an int >= 1")
    return k


def small_inception(input_shape: tuple[int, ...] = (3, 28, 28), num_classes: int = 10,
                    batch_norm: bool = True) -> nn.Module:
    """The paper's small Inception (1,649,402 parameters at 3x28x28, 10 classes)."""
    c, _, _ = _check_image_shape(input_shape, num_classes, "small_inception")
    num_classes = operator.index(num_classes)
    layers: list[nn.Module] = [ConvModule(c, 96, 3, batch_norm=batch_norm)]
    channels = 96
    for spec in _INCEPTION_PLAN:
        block: InceptionModule | DownsampleModule
        if len(spec) == 2:
            block = InceptionModule(channels, *spec, batch_norm=batch_norm)
        else:
            block = DownsampleModule(channels, *spec, batch_norm=batch_norm)
        layers.append(block)
        channels = block.out_channels
    layers += [GlobalMeanPool(), nn.Linear(channels, num_classes)]
    return nn.Sequential(*layers)


def _pooled(size: int) -> int:
    """Output size of a SAME-padded 3x3 stride-2 pool: ceil(size / 2)."""
    return (size + 1) // 2


def small_alexnet(input_shape: tuple[int, ...] = (3, 28, 28), num_classes: int = 10) -> nn.Module:
    """The paper's small AlexNet with local response normalization (1,387,786 parameters)."""
    c, h, w = _check_image_shape(input_shape, num_classes, "small_alexnet")
    num_classes = operator.index(num_classes)
    layers: list[nn.Module] = []
    for c_in in (c, 64):
        layers += [
            nn.Conv2d(c_in, 64, 5, padding=2), nn.ReLU(inplace=False),
            nn.MaxPool2d(3, stride=2, padding=1),
            # TensorFlow's lrn(depth_radius=4, bias=1, alpha=0.001/9, beta=0.75) in torch terms.
            nn.LocalResponseNorm(9, alpha=0.001, beta=0.75, k=1.0),
        ]
        h, w = _pooled(h), _pooled(w)
    layers += [
        nn.Flatten(),
        nn.Linear(64 * h * w, 384), nn.ReLU(inplace=False),
        nn.Linear(384, 192), nn.ReLU(inplace=False),
        nn.Linear(192, num_classes),
    ]
    return nn.Sequential(*layers)


#: Model name -> builder(input_shape, num_classes).
MODELS: dict[str, Callable[[tuple[int, ...], int], nn.Module]] = {
    "inception": lambda shape, k: small_inception(shape, k, batch_norm=True),
    "inception_nobn": lambda shape, k: small_inception(shape, k, batch_norm=False),
    "alexnet": lambda shape, k: small_alexnet(shape, k),
    "mlp1x512": lambda shape, k: mlp(shape, k, depth=1, width=512),
    "mlp3x512": lambda shape, k: mlp(shape, k, depth=3, width=512),
}


def build(name: str, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Build the paper model ``name``; sets ``model.rethink_lr`` and ``model.rethink_name``."""
    if name not in MODELS:
        raise ModelNameError(f"build: name={name!r} is not a known model; allowed: {', '.join(MODELS)}")
    shape = _as_shape(input_shape)
    if shape is None:
        raise ModelNameError(f"build: input_shape={input_shape!r} is not allowed; "
                             "expected positive ints, e.g. (3, 28, 28)")
    model = MODELS[name](shape, _check_classes(num_classes, "build"))
    model.rethink_lr = PAPER_LEARNING_RATES[name]
    model.rethink_name = name
    return model


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
