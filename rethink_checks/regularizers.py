"""Module surgery for the paper's ablations: copies of a model with dropout or batch norm removed.

Only modules are removed (replaced by ``nn.Identity``). "dropout" takes out the dropout
modules and stochastic depth (timm's ``DropPath``, torchvision's ``StochasticDepth``: dropout
of whole residual branches). Dropout called functionally inside a ``forward``
(``F.dropout``) cannot be taken out from outside: ``fit`` finds it (two train-mode forwards on
one batch differ once the modules are gone) and names it in ``FitResult.removed`` as
``not_removable:...``, as it names a label-smoothing loss module inside the model (the
harness's own loss is plain cross-entropy). Local response normalization, layer/group/instance
norm are not regularizers in the paper's sense and stay. ``fit`` calls these for
``FitConfig.remove`` ("dropout", "batchnorm"; "all"), and :func:`reinitialize` for
``FitConfig.init="reinit"``.
"""
from __future__ import annotations

import copy
import sys

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from .errors import ModelError

__all__ = ["remove_dropout", "remove_batchnorm", "DROPOUT_TYPES", "BATCHNORM_TYPES", "droppath_types",
           "reinitialize", "label_smoothing_in", "initialize", "not_removable"]

DROPOUT_TYPES: tuple[type[nn.Module], ...] = (
    nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout,
)
# _BatchNorm covers BatchNorm1d/2d/3d, their lazy variants and SyncBatchNorm.
BATCHNORM_TYPES: tuple[type[nn.Module], ...] = (_BatchNorm,)


def droppath_types() -> tuple[type[nn.Module], ...]:
    """Stochastic-depth module types of the libraries already imported (timm's DropPath,
    torchvision's StochasticDepth): a model holding one imported its library, and importing
    one here (torchvision registers torch operators) is never needed."""
    found: list[type[nn.Module]] = []
    for module, name in (("torchvision.ops", "StochasticDepth"), ("timm.layers", "DropPath")):
        kind = getattr(sys.modules.get(module), name, None)
        if isinstance(kind, type):
            found.append(kind)
    return tuple(found)


def remove_dropout(model: nn.Module) -> tuple[nn.Module, list[str]]:
    """A deep copy of ``model`` with every dropout and stochastic-depth module replaced by
    ``nn.Identity``, and their paths."""
    return _replace_modules(model, DROPOUT_TYPES + droppath_types())


def reinitialize(model: nn.Module) -> list[str]:
    """Re-initialize ``model`` in place with each submodule's own ``reset_parameters`` (under the
    global RNG, which ``fit`` seeds); returns the paths of the modules reset. A parameter no
    module resets (held directly by a module without ``reset_parameters``) keeps its values."""
    reset = []
    for name, module in model.named_modules():
        method = getattr(module, "reset_parameters", None)
        if callable(method) and any(True for _ in module.parameters(recurse=False)):
            method()
            reset.append(name or "(root)")
    return reset


def label_smoothing_in(model: nn.Module) -> list[str]:
    """Paths of ``nn.CrossEntropyLoss`` modules with label smoothing held inside the model."""
    return [name or "(root)" for name, m in model.named_modules()
            if isinstance(m, nn.CrossEntropyLoss) and m.label_smoothing > 0]


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


def initialize(model: nn.Module, given: object, init: str) -> str:
    """Apply ``FitConfig.init`` to a fit's private ``model`` (built from ``given``, an instance
    or a factory); returns the init used, "as_given" or "reinit". "auto" re-initializes a module
    instance and keeps what a factory builds (already fresh, under the fit's seed)."""
    if init == "auto":
        init = "reinit" if isinstance(given, nn.Module) else "as_given"
    if init == "reinit":
        reinitialize(model)
    return init


def not_removable(model: nn.Module, remove: tuple[str, ...], settings: dict) -> list[str]:
    """The regularizers ``remove`` asked off that stay in a fitted ``model`` (as
    ``"not_removable:..."`` entries of ``FitResult.removed``): a random forward
    left once the dropout modules went (``settings["stochastic_forward"]``, found by the fit's
    probe: dropout called functionally), a label-smoothing loss module inside the model."""
    if "dropout" not in remove:
        return []
    found = ["functional dropout (two train-mode forwards on one batch differ)"] \
        if settings.get("stochastic_forward") else []
    found += [f"label_smoothing:{path}" for path in label_smoothing_in(model)]
    return [f"not_removable:{what}" for what in found]
