"""Seeds: validation, private CPU generators and derived seeds, shared by every randomization.

A randomization never touches torch's global RNG: it draws from a fresh CPU generator seeded
from its own seed, so the same seed gives bit-identical results on every device.
"""
from __future__ import annotations

import hashlib
import numbers
from typing import Any

import torch

from .errors import DataError, InputTypeError

__all__ = ["MAX_SEED", "check_seed", "generator", "derive_seed"]

MAX_SEED = 2**64 - 1


def check_seed(seed: Any, arg: str = "seed") -> int:
    """Return ``seed`` as an int, or raise naming it: seeds are ints in [0, 2**64)."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise InputTypeError(f"{arg} must be an int in [0, 2**64), got {seed!r} "
                                  f"({type(seed).__name__})")
    if not 0 <= int(seed) <= MAX_SEED:
        raise DataError(f"{arg} must be an int in [0, 2**64), got {seed!r}")
    return int(seed)


def generator(seed: int) -> torch.Generator:
    """A fresh CPU generator: draws are identical on every device and never touch global RNG."""
    return torch.Generator(device="cpu").manual_seed(seed)


def derive_seed(seed: int, purpose: str) -> int:
    """A seed for ``purpose`` derived from ``seed`` (stable across runs, platforms, versions)."""
    digest = hashlib.sha256(f"{check_seed(seed)}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1
