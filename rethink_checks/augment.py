"""Data augmentation on the device: the paper's random crop and horizontal flip, drawn per image.

``rethink_checks.training`` re-exports :func:`augment_images` and calls it once per epoch
when ``FitConfig.augment`` is on.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .errors import DataError

__all__ = ["augment_images"]


def augment_images(x: torch.Tensor, generator: torch.Generator, chunk: int = 8192) -> torch.Tensor:
    """Random crop with zero padding (4 px per 32 px of height) and a random horizontal flip, per image.

    ``x`` is N x C x H x W on any device; the random draws come from ``generator`` (on the CPU) so
    the same seed gives the same crops on every device.
    """
    if x.dim() != 4:
        raise DataError(f"augment=True needs image inputs (N, C, H, W); got input shape {tuple(x.shape)}")
    n, _, h, w = x.shape
    pad = max(1, round(4 * h / 32))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    flip = (torch.rand(n, generator=generator) < 0.5).to(x.device)
    out = torch.empty_like(x)
    rows_base, cols_base = torch.arange(h, device=x.device), torch.arange(w, device=x.device)
    for lo in range(0, n, chunk):
        hi = min(lo + chunk, n)
        padded = F.pad(x[lo:hi], (pad, pad, pad, pad))
        rows = dy[lo:hi, None] + rows_base                      # (b, h)
        cols = dx[lo:hi, None] + cols_base                      # (b, w)
        cols = torch.where(flip[lo:hi, None], cols.flip(1), cols)
        batch = torch.arange(hi - lo, device=x.device)[:, None, None]
        crops = padded[batch, :, rows[:, :, None], cols[:, None, :]]  # (b, h, w, c)
        out[lo:hi] = crops.permute(0, 3, 1, 2)
    return out
