"""Models as they come: how a batch is passed to a model and how its logits are read.

Inputs (a batch): a tensor (``model(x)``), a tuple of tensors (``model(*xs)``) or a mapping of
tensors (``model(**batch)``, as Hugging Face models take ``input_ids=``, ``attention_mask=``).
Outputs: a logits tensor, an object with a ``.logits`` attribute (Hugging Face's
``SequenceClassifierOutput``), a mapping with a ``"logits"`` key, or a tuple/list whose first
element is the logits (torchvision's GoogLeNet and Inception3 return ``(logits, aux)`` in train
mode; the auxiliary terms are the user's ``train_step`` business). :data:`OUTPUT_FORMS` names
them; ``FitResult.settings["output"]`` records the one a model used. Anything else is a
:class:`~rethink_checks.errors.ModelError` naming the type and the fix.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Union

import torch
from torch import nn

from .errors import ModelError

__all__ = ["Batch", "OUTPUT_FORMS", "call_model", "logits_of", "output_form", "describe_batch"]

#: a model input: one tensor, a tuple of tensors (positional) or a mapping of tensors (keywords)
Batch = Union[torch.Tensor, tuple, Mapping]

#: the accepted output forms, as FitResult.settings["output"] names them
OUTPUT_FORMS = ("tensor", "logits attribute", "logits key", "first element")

_FIX = ("return the logits tensor (batch, num_classes), an object or mapping with 'logits', "
        "or a tuple whose first element is the logits")


def output_form(out: Any) -> str | None:
    """Which of :data:`OUTPUT_FORMS` ``out`` has (None: none of them)."""
    if isinstance(out, torch.Tensor):
        return "tensor"
    if isinstance(getattr(out, "logits", None), torch.Tensor):  # before the mapping: HF's ModelOutput is both
        return "logits attribute"
    if isinstance(out, Mapping):
        return "logits key" if isinstance(out.get("logits"), torch.Tensor) else None
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return "first element"
    return None


def logits_of(out: Any) -> torch.Tensor:
    """The logits tensor in a model output of any accepted form; ModelError for anything else."""
    if isinstance(out, torch.Tensor):
        return out
    form = output_form(out)
    if form is None:
        raise ModelError(f"the model returned {type(out).__name__}; expected logits: {_FIX}")
    if form == "logits key":
        return out["logits"]
    return out.logits if form == "logits attribute" else out[0]


def describe_batch(batch: Batch) -> str:
    """Shapes and dtypes of a batch, for error messages."""
    if isinstance(batch, torch.Tensor):
        return f"an input of shape {tuple(batch.shape)} ({batch.dtype})"
    if isinstance(batch, Mapping):
        parts = ", ".join(f"{k}={tuple(v.shape)}" for k, v in batch.items())
        return f"keyword inputs ({parts})"
    return "inputs (" + ", ".join(str(tuple(t.shape)) for t in batch) + ")"


def call_model(model: nn.Module, batch: Batch) -> Any:
    """Run the model on a batch of any accepted form; its own exceptions become a ModelError
    naming the inputs (a mapping batch missing a key the model needs is named here too)."""
    try:
        if isinstance(batch, torch.Tensor):
            return model(batch)
        if isinstance(batch, Mapping):
            return model(**batch)
        return model(*batch)
    except torch.cuda.OutOfMemoryError:
        raise
    except Exception as err:  # the user's model failed: say on what
        raise ModelError(f"the model raised {type(err).__name__} on {describe_batch(batch)}: {err}"
                         + _missing_key_hint(err, batch)) from err


def _missing_key_hint(err: Exception, batch: Batch) -> str:
    """A hint when a keyword model missed an argument the batch does not carry."""
    if isinstance(err, TypeError) and isinstance(batch, Mapping) and "required" in str(err):
        return f" (the batch's keys are {sorted(batch)}; add the missing key to every item)"
    return ""
