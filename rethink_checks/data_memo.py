"""Datasets made once per process: a spec string loaded once, a torch dataset or array tuple
materialized once per object, and a new map-style dataset whose content key matches one already
read reusing that read (so a function-scoped fixture does not read its dataset once per item).

The plugin keeps one :class:`DataMemo` per pytest process; plain-Python users can keep one too.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["DataMemo", "OBJECTS_HELD"]

#: objects kept for the by-identity memo; the oldest go
OBJECTS_HELD = 8


@dataclass
class DataMemo:
    """Dataset per spec string, per object, and per content key (see the module docstring)."""

    by_key: dict[str, Any] = field(default_factory=dict)
    # id(object) -> (the object, kept alive so its id stays unique; its Dataset)
    object_data: dict[int, tuple[Any, Any]] = field(default_factory=dict)

    def load(self, spec: Any, progress: Any = None) -> Any:
        """The Dataset for what ``rethink_data`` gave, made once per process.

        A spec string is loaded once; a Dataset is returned as is; any other object (torch
        datasets, array tuples: :func:`rethink_checks.data.as_dataset`'s forms) is
        materialized once per object, and a new map-style dataset with the content
        fingerprint (``materialize.cache_key``) of one already read reuses that read, so a
        function-scoped fixture does not read its dataset once per item.
        """
        if isinstance(spec, str):
            if spec not in self.by_key:
                from .data import load

                self.by_key[spec] = load(spec)
            return self.by_key[spec]
        from .data import Dataset

        if isinstance(spec, Dataset) or getattr(spec, "streamed", False):  # streaming.Streamed too
            return spec
        held = self.object_data.get(id(spec))
        if held is not None and held[0] is spec:
            return held[1]
        fingerprint = _fingerprint(spec)
        if fingerprint is not None and fingerprint in self.by_key:
            dataset = self.by_key[fingerprint]
        else:
            from .materialize import materialize
            from .streaming import stream_if_large

            dataset = stream_if_large(spec) or materialize(spec, progress=progress)
            if fingerprint is not None:
                self.by_key[fingerprint] = dataset
        self.object_data[id(spec)] = (spec, dataset)
        while len(self.object_data) > OBJECTS_HELD:  # a function-scoped fixture's objects
            del self.object_data[next(iter(self.object_data))]
        return dataset


def _fingerprint(obj: Any) -> str | None:
    """A content key for a map-style dataset or a (train, test) pair of them, else None.

    Reads a fixed sample of items (``materialize.cache_key``), not the whole dataset; array
    tuples get None (materializing them again costs no item reads).
    """
    from .materialize import cache_key

    def one(ds: Any) -> str | None:
        if isinstance(ds, (str, bytes, tuple, list, dict)) or not hasattr(ds, "__len__") \
                or not hasattr(ds, "__getitem__") or hasattr(ds, "shape"):
            return None
        try:
            return f"{type(ds).__module__}.{type(ds).__qualname__}:{cache_key(ds)}"
        except Exception:  # an unreadable item: materialize says which, with its index
            return None

    if isinstance(obj, (tuple, list)) and len(obj) == 2:
        keys = [one(v) for v in obj]
        return "pair:" + "|".join(keys) if None not in keys else None  # type: ignore[arg-type]
    key = one(obj)
    return "dataset:" + key if key is not None else None
