"""Items with several inputs or token sequences of different lengths, collated into one batch.

A dataset item is ``(input, label)`` or a mapping holding a ``"label"`` / ``"labels"`` key
beside its inputs (Hugging Face style). ``input`` may be a tensor, a tuple of tensors (the
model is called ``model(*inputs)``) or a mapping of tensors (``model(**inputs)``, e.g.
``input_ids`` and ``attention_mask``). :func:`pad_collate`, the default collate (replace it with
``as_dataset(..., collate=fn)``, ``fn(list_of_inputs) -> batch``), stacks inputs of one shape and
pads 1-D sequences of different lengths on the right with 0, adding an ``attention_mask`` (1 on
real tokens) when it padded and the items carry none. :func:`read_batch` reads every item,
checks that all share item 0's form and keys, collates and checks the collate's result;
:func:`split_parts` turns the batch into ``Dataset`` fields. Errors name the item index or key.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from .errors import DataError

__all__ = ["pad_collate", "read_batch", "split_parts", "is_structured", "LABEL_KEYS", "MASK_KEY"]

#: keys a mapping item may hold its label under
LABEL_KEYS = ("label", "labels")
#: the key of the padding mask (1 on real tokens, 0 on padding)
MASK_KEY = "attention_mask"
#: the name a plain sequence takes inside a padded batch
_PLAIN = "input_ids"


def is_structured(value: Any) -> bool:
    """Whether an item's input has several parts (a mapping, or a tuple/list of tensors)."""
    return isinstance(value, Mapping) or (
        isinstance(value, (tuple, list)) and bool(value) and all(isinstance(t, torch.Tensor) for t in value))


def _pad(values: list[torch.Tensor], where: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Stack one input of every item; 1-D sequences of different lengths are right-padded with
    0 and come back with their mask (None when no padding was needed)."""
    shapes = {tuple(t.shape) for t in values}
    if len(shapes) == 1:
        return torch.stack(values), None
    if any(t.dim() != 1 for t in values):
        raise DataError(f"{where}: inputs of shapes {sorted(shapes)[:3]}... differ and are not 1-D "
                        "sequences; expected one shape per input, or 1-D sequences (padded)")
    lengths = torch.tensor([len(t) for t in values])
    padded = torch.nn.utils.rnn.pad_sequence(values, batch_first=True, padding_value=0)
    mask = (torch.arange(padded.shape[1]) < lengths[:, None]).to(torch.int64)
    return padded, mask


def pad_collate(inputs: list[Any]) -> Any:
    """The default collate: a list of item inputs (all tensors, all tuples or all mappings) as
    one batch of the same form; see the module docstring."""
    first = inputs[0]
    if isinstance(first, Mapping):
        batch: dict[str, torch.Tensor] = {}
        masks = {}
        for key in first:
            batch[key], masks[key] = _pad([item[key] for item in inputs], f"key {key!r}")
        made = next((m for m in masks.values() if m is not None), None)
        if made is not None and MASK_KEY not in batch:
            batch[MASK_KEY] = made
        return batch
    if isinstance(first, (tuple, list)):
        return tuple(_pad([item[i] for item in inputs], f"input {i}")[0] for i in range(len(first)))
    padded, mask = _pad(list(inputs), "input")
    return padded if mask is None else {_PLAIN: padded, MASK_KEY: mask}


def _split_item(item: Any, where: str) -> tuple[Any, Any]:
    """An item's (input, label): a pair, or a mapping with a label key beside its inputs."""
    if isinstance(item, Mapping):
        key = next((k for k in LABEL_KEYS if k in item), None)
        if key is None:
            raise DataError(f"{where}: a mapping without a label key (one of {list(LABEL_KEYS)}); "
                            f"its keys are {sorted(item)}")
        return {k: v for k, v in item.items() if k != key}, item[key]
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        shown = f"a {type(item).__name__} of {len(item)}" if isinstance(item, (tuple, list)) \
            else type(item).__name__
        raise DataError(f"{where}: is {shown}; expected a pair (input, label) or a mapping with "
                        f"a {LABEL_KEYS[0]!r} key")
    return item[0], item[1]


def _signature(value: Any) -> tuple:
    """What every item's input must share with item 0's: its form and its keys or length."""
    if isinstance(value, Mapping):
        return ("mapping", tuple(value))
    if isinstance(value, (tuple, list)):
        return ("tuple", len(value))
    return ("tensor",)


def _as_input(value: Any, where: str, as_tensor: Callable[[Any, str], torch.Tensor]) -> Any:
    if isinstance(value, Mapping):
        return {k: as_tensor(v, f"{where}, key {k!r}") for k, v in value.items()}
    if isinstance(value, (tuple, list)) and value and not isinstance(value[0], (int, float)):
        return tuple(as_tensor(v, f"{where}, input {i}") for i, v in enumerate(value))
    return as_tensor(value, where)


def read_batch(sources: list[tuple[Any, str]], collate: Callable[[list], Any] | None,
               as_tensor: Callable[[Any, str], torch.Tensor],
               as_label: Callable[[Any, str], int]) -> tuple[Any, torch.Tensor]:
    """Every item of the ``(dataset, what)`` sources, in order, collated as one batch (so a
    train and a test split pad to one length): (batch, int64 labels). Items whose form or keys
    differ from the first item's and a collate result that is not one row per item are
    DataErrors naming them."""
    inputs, labels = [], []
    for ds, what in sources:
        if len(ds) == 0:
            raise DataError(f"{what}: is empty (len 0); expected at least 1 item")
        for i in range(len(ds)):
            where = f"{what} item {i}"
            try:
                item = ds[i]
            except Exception as exc:  # the user's dataset: say which item
                raise DataError(f"{where}: reading it raised {type(exc).__name__}: {exc}") from exc
            value, label = _split_item(item, where)
            value = _as_input(value, where, as_tensor)
            if inputs and _signature(value) != _signature(inputs[0]):
                raise DataError(f"{where}: its input is {_describe(value)} but the first item's is "
                                f"{_describe(inputs[0])}; expected every item in one form with the same keys")
            inputs.append(value)
            labels.append(as_label(label, where))
    what = " and ".join(w for _, w in sources)
    try:
        batch = (collate or pad_collate)(inputs)
    except DataError as err:
        raise DataError(f"{what}: {err}") from None
    except Exception as exc:  # the user's collate
        raise DataError(f"{what}: the collate raised {type(exc).__name__}: {exc}") from exc
    _check_batch(batch, len(inputs), what)
    return batch, torch.tensor(labels, dtype=torch.int64)


def _describe(value: Any) -> str:
    kind, *rest = _signature(value)
    if kind == "mapping":
        return f"a mapping with keys {list(rest[0])}"
    return f"a tuple of {rest[0]}" if kind == "tuple" else "a tensor"


def _check_batch(batch: Any, n: int, what: str) -> None:
    """A DataError unless the collate returned tensors (alone, in a tuple or a mapping) of n rows."""
    parts = batch.items() if isinstance(batch, Mapping) else \
        enumerate(batch) if isinstance(batch, (tuple, list)) else [("batch", batch)]
    for key, t in parts:
        if not isinstance(t, torch.Tensor) or t.dim() == 0 or len(t) != n:
            got = f"shape {tuple(t.shape)}" if isinstance(t, torch.Tensor) else type(t).__name__
            raise DataError(f"{what}: the collate returned {got} for {key!r}; expected a tensor with "
                            f"one row per item ({n}, ...)")


def split_parts(batch: Any, plain: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor], str, tuple[str, ...]]:
    """A collated batch as ``(main input, extras, input_form, input_keys)`` for a Dataset.

    Mapping: the main input is ``input_ids`` when present, else the first key. Tuple: input 0,
    the others keyed "1", "2", ... ``plain`` (the items were plain tensors): a padded batch keeps
    its mask as an extra the model is not passed.
    """
    if isinstance(batch, torch.Tensor):
        return batch, {}, "tensor", ()
    if isinstance(batch, Mapping):
        main = _PLAIN if _PLAIN in batch else next(iter(batch))
        extra = {k: v for k, v in batch.items() if k != main}
        if plain:
            return batch[main], extra, "tensor", (main,)
        return batch[main], extra, "mapping", (main, *extra)
    extra = {str(i): t for i, t in enumerate(batch) if i}
    return batch[0], extra, "tuple", ("0", *extra)
