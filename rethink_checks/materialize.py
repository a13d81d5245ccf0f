"""Torch datasets and array tuples turned into a :class:`~rethink_checks.data.Dataset`, once.

Forms (:func:`materialize`, public as :func:`rethink_checks.data.as_dataset`):

* a pair ``(train, test)`` of map-style ``torch.utils.data.Dataset`` objects whose items are
  ``(input, label)`` (any ``torchvision.datasets`` class with a tensor transform; PIL images
  are converted with ``pil_to_tensor`` too);
* one such dataset (or a plain list of ``(input, label)`` items), split with a seed into
  train and test (``test_fraction``);
* a tuple of arrays or tensors: ``(x, y)`` (split likewise) or ``(train_x, train_y, test_x, test_y)``.

Each item is read once (a progress line on stderr when a read takes over 2 s), checked (an
item that is not ``(input, label)``, a label that is not a non-negative integer, an input of
another shape or dtype than item 0, a negative token id: a ``DataError`` naming the item
index), and stacked; :func:`~rethink_checks.data.from_tensors` then validates the whole.

Cache: a read that took at least :data:`CACHE_MIN_SECONDS` (or any read with ``cache=True``)
is saved under ``CACHE/materialized/<class>-<len>-<key>.pt`` (CACHE: ``cache_dir``, else
:func:`~rethink_checks.imagefolder.default_cache_dir`). The key is a SHA-256 of the class's
module and name, ``len``, and the bytes, shape and dtype of the inputs and the labels of a
fixed sample of items (the first, the last and 30 drawn with seed 0): it is computed without
reading the whole dataset, which is the point of a cache, so an edit to an item outside the
sample goes unnoticed (delete the entry, or pass ``cache=False``); any change of length, class,
transform output or of a sampled item gives a new key. A random transform is applied once,
at reading. At most 4 entries are kept per class and length (the oldest go).
"""
from __future__ import annotations

import hashlib
import io
import numbers
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .collate import is_structured, read_batch, split_parts
from .dataset import Dataset, from_arrays, from_tensors
from .errors import DataError, InputTypeError
from .imagefolder import default_cache_dir

__all__ = ["materialize", "read_items", "split_indices", "cache_key", "CACHE_MIN_SECONDS", "FORMAT"]

#: Reads faster than this are not written to the cache (reading beats the disk round trip).
CACHE_MIN_SECONDS = 1.0
#: Version of the cache entries' layout; part of every key.
FORMAT = 1
_SAMPLE = 30
_KEEP = 4
_FORMS = ("a rethink_checks.data.Dataset, a spec string, a pair (train, test) of map-style torch "
          "datasets of (input, label) items, one such dataset, or a tuple of arrays/tensors "
          "(x, y) or (train_x, train_y, test_x, test_y), or a list of (input, label) items")


def _is_array(obj: Any) -> bool:
    return isinstance(obj, (torch.Tensor, np.ndarray))


def _is_map_dataset(obj: Any) -> bool:
    if isinstance(obj, (str, bytes, Mapping, list, tuple)) or _is_array(obj):
        return False
    return callable(getattr(obj, "__getitem__", None)) and callable(getattr(obj, "__len__", None))


def _is_item_list(obj: Any) -> bool:
    """A plain list of ``(input, label)`` items (e.g. ``list(iterable_dataset)``) is a dataset too."""
    return isinstance(obj, list) and (not obj or isinstance(obj[0], Mapping) or (
        isinstance(obj[0], (tuple, list)) and len(obj[0]) == 2 and not _is_map_dataset(obj[0])))


def materialize(obj: Any, *, seed: int = 0, test_fraction: float = 0.2, num_classes: int | None = None,
                kind: str | None = None, cache_dir: str | os.PathLike | None = None,
                cache: bool | None = None,
                progress: Callable[[str, int, int, float], None] | None = None,
                collate: Callable[[list], Any] | None = None) -> Dataset:
    """A validated Dataset from torch datasets or array tuples (see the module docstring).

    ``cache``: None writes reads slower than :data:`CACHE_MIN_SECONDS`, True writes every read,
    False neither reads nor writes the cache. ``progress(name, done, total, seconds)`` replaces
    the stderr line. Items with several inputs (a tuple or mapping), mapping items with a
    label key, token sequences of different lengths, or any items when ``collate`` is given are
    read by :mod:`rethink_checks.collate` (no cache).
    """
    try:
        return _materialize(obj, seed, test_fraction, num_classes, kind,
                            dict(cache_dir=cache_dir, cache=cache, progress=progress), collate)
    except _Ragged:
        return _materialize(obj, seed, test_fraction, num_classes, kind, {}, collate, structured=True)


class _Ragged(DataError):
    """Plain 1-D inputs of different lengths: read again through the padding collate."""


def _first_input(ds: Any) -> Any:
    try:
        item = ds[0]
    except Exception:  # reported with the item's index by the read that follows
        return None
    return item if isinstance(item, Mapping) else item[0] if isinstance(item, (tuple, list)) and item else None


def _materialize(obj: Any, seed: int, test_fraction: float, num_classes: int | None, kind: str | None,
                 opts: dict, collate: Callable | None, structured: bool = False) -> Dataset:
    from torch.utils.data import IterableDataset

    if isinstance(obj, IterableDataset):
        raise InputTypeError(f"data: {type(obj).__name__} is an iterable-style dataset (no len, no "
                             f"indexing); pass list(dataset) to read it into a list, or one of: {_FORMS}")
    if isinstance(obj, (tuple, list)) and obj and all(_is_array(v) for v in obj):
        return _from_arrays(tuple(obj), seed, test_fraction, num_classes, kind)
    pair = isinstance(obj, (tuple, list)) and len(obj) == 2 and all(_is_map_dataset(v) for v in obj)
    if pair or _is_map_dataset(obj) or _is_item_list(obj):
        first = _first_input(obj[0] if pair else obj)
        if structured or collate is not None or is_structured(first) or isinstance(first, Mapping):
            return _collated(obj, pair, seed, test_fraction, num_classes, kind, collate)
    if pair:
        train, test = obj
        k = num_classes if num_classes is not None else _classes(train)
        tx, ty = read_items(train, "train dataset", num_classes=k, **opts)
        vx, vy = read_items(test, "test dataset", num_classes=k, **opts)
        _check_tokens(tx, "train dataset", kind)
        _check_tokens(vx, "test dataset", kind)
        return _tensors(tx, ty, vx, vy, k, type(train).__name__, kind)
    if _is_map_dataset(obj) or _is_item_list(obj):
        k = num_classes if num_classes is not None else _classes(obj)
        x, y = read_items(obj, "dataset", num_classes=k, **opts)
        _check_tokens(x, "dataset", kind)
        train, test = split_indices(len(x), seed, test_fraction)
        return _tensors(x[train], y[train], x[test], y[test], k, type(obj).__name__, kind)
    raise InputTypeError(f"data: got {_describe(obj)}; expected {_FORMS}")


def _collated(obj: Any, pair: bool, seed: int, test_fraction: float, num_classes: int | None,
              kind: str | None, collate: Callable | None) -> Dataset:
    """A Dataset from items read and collated by :mod:`rethink_checks.collate` (both splits
    collated together, so padded sequences share one length)."""
    sources = [(obj[0], "train dataset"), (obj[1], "test dataset")] if pair else [(obj, "dataset")]
    batch, y = read_batch(sources, collate, _as_tensor, _label)
    plain = not is_structured(_first_input(sources[0][0])) and not isinstance(_first_input(sources[0][0]), Mapping)
    x, extra, form, keys = split_parts(batch, plain)
    if pair:
        n = len(obj[0])
        train, test = torch.arange(n), torch.arange(n, len(y))
    else:
        train, test = split_indices(len(y), seed, test_fraction)
    k = num_classes if num_classes is not None else _classes(sources[0][0])
    _check_tokens(x, "dataset", kind)
    data = _tensors(x[train], y[train], x[test], y[test], k, type(sources[0][0]).__name__, kind)
    return data.replace(train_extra={key: t[train] for key, t in extra.items()},
                        test_extra={key: t[test] for key, t in extra.items()}, input_form=form, input_keys=keys)


def _describe(obj: Any) -> str:
    if isinstance(obj, (tuple, list)):
        inner = ", ".join(type(v).__name__ for v in obj[:5])
        return f"a {type(obj).__name__} of {len(obj)} ({inner}{', ...' if len(obj) > 5 else ''})"
    return type(obj).__module__ + "." + type(obj).__qualname__


def _classes(ds: Any) -> int | None:
    """The class count a torchvision-style dataset declares (``.classes``), else None."""
    classes = getattr(ds, "classes", None)
    return len(classes) if isinstance(classes, (list, tuple)) and len(classes) >= 2 else None


def _tensors(tx, ty, vx, vy, k, name, kind) -> Dataset:
    return from_tensors(tx, ty, vx, vy, num_classes=k, name=name, kind=kind)


def split_indices(n: int, seed: int, test_fraction: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded (train, test) index sets of ``range(n)``, each in ascending order; test gets
    ``round(n * test_fraction)`` (at least 1, at most n - 1)."""
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, numbers.Real) \
            or not 0.0 < float(test_fraction) < 1.0:
        raise DataError(f"test_fraction={test_fraction!r} is not allowed; expected a number in (0, 1)")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise DataError(f"seed={seed!r} is not allowed; expected an int >= 0")
    if n < 2:
        raise DataError(f"data: {n} example(s) cannot be split into train and test; expected at least 2")
    n_test = min(n - 1, max(1, round(n * float(test_fraction))))
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))
    return perm[n_test:].sort().values, perm[:n_test].sort().values


def _from_arrays(parts: tuple, seed: int, test_fraction: float, num_classes: int | None,
                 kind: str | None) -> Dataset:
    if len(parts) == 2:
        x, y = parts
        if len(x) != len(y):
            raise DataError(f"data: (x, y) has {len(x)} inputs but {len(y)} labels; expected equal lengths")
        train, test = split_indices(len(x), seed, test_fraction)
        parts = (x[train.numpy()], y[train.numpy()], x[test.numpy()], y[test.numpy()]) \
            if any(isinstance(v, np.ndarray) for v in parts) else (x[train], y[train], x[test], y[test])
    elif len(parts) != 4:
        raise DataError(f"data: a tuple of {len(parts)} arrays; expected (x, y) or "
                        "(train_x, train_y, test_x, test_y)")
    if all(isinstance(v, torch.Tensor) for v in parts):
        return from_tensors(*parts, num_classes=num_classes, kind=kind)
    arrays = [v.cpu().numpy() if isinstance(v, torch.Tensor) else v for v in parts]
    return from_arrays(*arrays, num_classes=num_classes, kind=kind)


# --------------------------------------------------------------------------- reading items

def _as_tensor(value: Any, where: str) -> torch.Tensor:
    """An item's input as a tensor: tensors as they are, arrays and numbers converted, PIL decoded."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.array(value))
    if type(value).__module__.startswith("PIL."):
        from torchvision.transforms.functional import pil_to_tensor

        return pil_to_tensor(value)  # uint8 (C, H, W): from_tensors scales it by 1/255
    try:
        return torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError):
        raise DataError(f"{where}: input of type {type(value).__name__} is not a tensor, array, number "
                        "list or PIL image; expected (input, label) with a tensor input (add a "
                        "ToTensor-like transform)") from None


def _label(value: Any, where: str) -> int:
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_floating_point() \
            and value.dtype != torch.bool:
        value = int(value.reshape(()))
    elif isinstance(value, np.ndarray) and value.size == 1 and value.dtype.kind in "iu":
        value = int(value.reshape(()))
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise DataError(f"{where}: label {value!r} ({type(value).__name__}) is not an integer; expected "
                        "an integer class index >= 0")
    if value < 0:
        raise DataError(f"{where}: label {value} is negative; expected an integer class index >= 0")
    return int(value)


def _item(ds: Any, i: int, what: str) -> tuple[torch.Tensor, int]:
    where = f"{what} item {i}"
    try:
        item = ds[i]
    except Exception as exc:  # the user's dataset: say which item, keep the cause chained
        raise DataError(f"{where}: reading it raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        shown = f"a {type(item).__name__} of {len(item)}" if isinstance(item, (tuple, list)) \
            else type(item).__name__
        raise DataError(f"{where}: is {shown}; expected a pair (input, label)")
    return _as_tensor(item[0], where), _label(item[1], where)


def _stderr_progress(name: str, done: int, total: int, seconds: float) -> None:
    sys.stderr.write(f"rethink_checks: reading {name}: {done:,}/{total:,} items "
                     f"({100 * done // max(total, 1)}%), {seconds:.0f} s\n")
    sys.stderr.flush()


def _read_all(ds: Any, what: str, progress: Callable | None) -> tuple[torch.Tensor, torch.Tensor]:
    n = len(ds)
    if n == 0:
        raise DataError(f"{what}: is empty (len 0); expected at least 1 (input, label) item")
    report = progress or _stderr_progress
    name = f"{type(ds).__name__} ({what})"
    first, label = _item(ds, 0, what)
    x = torch.empty((n, *first.shape), dtype=first.dtype)
    y = torch.empty(n, dtype=torch.int64)
    x[0], y[0] = first, label
    start = last = time.monotonic()
    shown = False
    for i in range(1, n):
        xi, y[i] = _item(ds, i, what)
        if xi.dim() == first.dim() == 1 and xi.shape != first.shape and xi.dtype == first.dtype \
                and not xi.is_floating_point():  # token sequences of different lengths: padded
            raise _Ragged(f"{what} item {i}: a sequence of length {len(xi)}; item 0's has {len(first)}")
        if xi.shape != first.shape or xi.dtype != first.dtype:
            raise DataError(f"{what} item {i}: input of shape {tuple(xi.shape)} and dtype {xi.dtype}; "
                            f"expected shape {tuple(first.shape)} and dtype {first.dtype} like item 0 "
                            "(every input must have the same shape; resize or pad them)")
        x[i] = xi
        now = time.monotonic()
        if now - last >= 2.0 and now - start >= 2.0:
            report(name, i + 1, n, now - start)
            last, shown = now, True
    if shown:
        report(name, n, n, time.monotonic() - start)
    return x, y


def read_items(ds: Any, what: str = "dataset", *, num_classes: int | None = None,
               cache_dir: str | os.PathLike | None = None, cache: bool | None = None,
               progress: Callable | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Every ``(input, label)`` item of a map-style dataset, stacked: (inputs, int64 labels)."""
    key = cache_key(ds) if cache is not False else None
    path = _entry(ds, key, cache_dir) if key else None
    x = y = None
    if path is not None and path.is_file():
        try:
            entry = torch.load(path, weights_only=True)
            x, y = entry["x"], entry["y"]
        except Exception as exc:  # a damaged entry: read again
            warnings.warn(f"rethink_checks: unreadable cache entry {path} ({exc}); reading {what} again",
                          stacklevel=2)
    if x is None:
        started = time.monotonic()
        x, y = _read_all(ds, what, progress)
        if path is not None and (cache or time.monotonic() - started >= CACHE_MIN_SECONDS):
            _write(path, x, y)
    if num_classes is not None:
        bad = (y >= num_classes).nonzero()
        if len(bad):
            i = int(bad[0])
            raise DataError(f"{what} item {i}: label {int(y[i])} is outside [0, {num_classes}); expected "
                            f"class indices 0..{num_classes - 1}")
    return x, y


def _check_tokens(x: torch.Tensor, what: str, kind: str | None) -> None:
    """Token inputs (integer, one sequence per item): a negative id is an error naming the item."""
    if kind in (None, "tokens") and x.dim() == 2 and not x.is_floating_point() and bool((x < 0).any()):
        i = int((x < 0).nonzero()[0, 0])
        raise DataError(f"{what} item {i}: negative token id {int(x[i].min())}; expected token ids >= 0")


# --------------------------------------------------------------------------- cache

def cache_key(ds: Any) -> str:
    """The hex SHA-256 key of a dataset's cache entry (see the module docstring for what it covers)."""
    n = len(ds)
    h = hashlib.sha256(f"{FORMAT}:{type(ds).__module__}.{type(ds).__qualname__}:{n}".encode())
    if n:
        drawn = torch.randint(0, n, (_SAMPLE,), generator=torch.Generator().manual_seed(0)).tolist()
        for i in sorted({0, n - 1, *drawn}):
            x, label = _item(ds, i, "dataset")
            x = x.contiguous()
            h.update(f"|{i}:{label}:{tuple(x.shape)}:{x.dtype}|".encode())
            buffer = io.BytesIO()
            np.save(buffer, x.numpy() if x.dtype != torch.bfloat16 else x.float().numpy())
            h.update(buffer.getvalue())
    return h.hexdigest()


def _entry(ds: Any, key: str, cache_dir: str | os.PathLike | None) -> Path:
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return root / "materialized" / f"{type(ds).__name__}-{len(ds)}-{key[:20]}.pt"


def _write(path: Path, x: torch.Tensor, y: torch.Tensor) -> None:
    """Save atomically (temp file + rename); an unwritable folder only warns. Keep the newest few."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            torch.save({"x": x, "y": y, "format": FORMAT}, fh)
        os.replace(tmp, path)
        prefix = path.name.rsplit("-", 1)[0] + "-"
        older = sorted((p for p in path.parent.glob(prefix + "*.pt") if p != path),
                       key=lambda p: p.stat().st_mtime, reverse=True)
        for stale in older[_KEEP - 1:]:
            stale.unlink(missing_ok=True)
    except OSError as exc:
        warnings.warn(f"rethink_checks: could not write the cache entry {path}: {exc}", stacklevel=3)
