"""Module surgery for the paper's ablations: copies of a model with dropout or batch norm removed.

Only modules are removed (replaced by ``nn.Identity``); dropout called functionally inside a
``forward`` (``F.dropout``) cannot be seen from outside and stays. Local response
normalization, layer/group/instance norm are not regularizers in the paper's sense and stay.
``fit`` calls these for ``FitConfig.remove`` ("dropout", "batchnorm"; "all").
"""
from __future__ import annotations

import copy

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from .errors import ModelError

__all__ = ["remove_dropout", "remove_batchnorm", "DROPOUT_TYPES", "BATCHNORM_TYPES"]

DROPOUT_TYPES: tuple[type[nn.Module], ...] = (
    nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout,
)
# _BatchNorm covers BatchNorm1d/2d/3d, their lazy variants and SyncBatchNorm.
BATCHNORM_TYPES: tuple[type[nn.Module], ...] = (_BatchNorm,)


def remove_dropout(model: nn.Module) -> tuple[nn.Module, list[str]]:
    """A deep copy of ``model`` with every dropout module replaced by ``nn.Identity``, and their paths."""
    return _replace_modules(model, DROPOUT_TYPES)


def remove_batchnorm(model: nn.Module) -> tuple[nn.Module, list[str]]:
    """A deep copy of ``model`` with every batch-norm module replaced by ``nn.Identity``, and their paths."""
    return _replace_modules(model, BATCHNORM_TYPES)


def _replace_modules(model: nn.Module, types: tuple[type[nn.Module], ...]) -> tuple[nn.Module, list[str]]:
    """Deep-copy ``model`` and swap each module of ``types`` for ``nn.Identity``; return the copy and paths."""
    if not isinstance(model, nn.Module):
        raise ModelError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    copied = copy.deepcopy(model)
    if isinstance(copied, types):
        return nn.Identity(), ["(root)"]
    removed: list[str] = []
    for name, module in copied.named_modules():
        inside_removed = any(name.startswith(done + ".") for done in removed)
        if name and isinstance(module, types) and not inside_removed:
            removed.append(name)
    for path in removed:
        parent_path, _, child = path.rpartition(".")
        parent = copied.get_submodule(parent_path) if parent_path else copied
        setattr(parent, child, nn.Identity())
    return copied, removed
