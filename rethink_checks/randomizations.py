"""The one table of randomizations: name, what it changes, its seeded transform per input kind.

Each :class:`Randomization` says whether it changes labels or inputs, which ``p`` it takes,
its transform for each input kind (``image``, ``features``, ``tokens``; ``*`` for every kind)
and when it does not apply (with the reason). :meth:`CorruptionSpec.apply
<rethink_checks.corruptions.CorruptionSpec.apply>` looks the transform up here: a kind without
a transform is an error, never a fall-through to another randomization. Settings, the checks,
the plots and the plugin take the names from here.

This module is torch-free (settings import it): a transform is a callable, or the
``"module:function"`` name of one inside the package (the tensor code lives in
:mod:`rethink_checks.corruptions` for images and labels and :mod:`rethink_checks.vectors`
for features and tokens), imported on first use. A transform takes ``(spec, dataset,
test_seed)`` and returns the randomized dataset; it never mutates its input. Adding a
randomization: docs/architecture.md, "Adding a randomization".
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import DataError, NotApplicable

__all__ = ["Randomization", "RANDOMIZATIONS", "REGISTRY", "MEMORIZED", "FIGURE1", "KINDS", "LABEL_MODES",
           "get", "register"]

#: the input kinds a Dataset may have (``dataset.KINDS`` is this tuple)
KINDS = ("image", "features", "tokens")
#: label corruption modes: the paper's (uniform over all K classes) and Nakkiran et al.'s
LABEL_MODES = ("paper", "wrong_class")
Transform = Callable[[Any, Any, int], Any]


@dataclass(frozen=True)
class Randomization:
    """One randomization: what it changes, its ``p``, and its transform per input kind."""

    name: str
    changes: str                                   # "labels" | "inputs"
    doc: str
    transforms: Mapping[str, Transform | str]      # kind (or "*") -> transform
    fixed_p: float | None = None                   # true_labels 0, random_labels 1
    takes_p: bool = False                          # partial_labels: p required
    not_applicable: Callable[[str, Any], str | None] | None = field(default=None, compare=False)

    def transform(self, kind: str) -> Transform:
        """The transform for input kind ``kind``; none for it is a :class:`DataError`."""
        if kind not in KINDS:
            raise DataError(f"dataset.kind={kind!r} is unknown; allowed: {', '.join(KINDS)}")
        found = self.transforms.get(kind, self.transforms.get("*"))
        if found is None:
            raise DataError(f"the randomization {self.name!r} has no transform for kind={kind!r} "
                            f"(it has: {', '.join(self.transforms)})")
        if isinstance(found, str):
            module, _, attr = found.partition(":")
            found = getattr(importlib.import_module(f"rethink_checks.{module}"), attr)
        return found

    def transform_for(self, dataset: Any) -> Transform:
        """The transform for ``dataset``'s kind; :class:`NotApplicable` where it means nothing.

        The caller (``CorruptionSpec.apply``) calls it: the table hands out transforms, it never
        calls back into the modules that hold them.
        """
        kind = getattr(dataset, "kind", None)
        if kind is None:
            raise DataError(f"dataset has no kind; allowed: {', '.join(KINDS)}")
        transform = self.transform(kind)
        reason = self.not_applicable(kind, dataset) if self.not_applicable else None
        if reason:
            raise NotApplicable(self.name, kind, reason)
        return transform


_WHAT = {"features": "feature", "tokens": "token position"}


def _single_position(name: str) -> Callable[[str, Any], str | None]:
    """A permutation of the positions of a vector with one position is the identity."""
    def reason(kind: str, dataset: Any) -> str | None:
        x = dataset.train_x
        if kind == "image" or getattr(x, "ndim", 0) != 2 or x.shape[1] >= 2:
            return None
        return (f"{name} permutes {_WHAT[kind]}s, and an input with {x.shape[1]} {_WHAT[kind]} has "
                f"no permutation but the identity")
    return reason


_LABELS = {"*": "corruptions:relabel"}

#: every randomization by name, in the paper's order (section 2.1)
REGISTRY: dict[str, Randomization] = {r.name: r for r in (
    Randomization("true_labels", "labels", "the data as given", _LABELS, fixed_p=0.0),
    Randomization("partial_labels", "labels", "each training label redrawn with probability p",
                  _LABELS, takes_p=True),
    Randomization("random_labels", "labels", "every training label redrawn", _LABELS, fixed_p=1.0),
    Randomization("shuffled_pixels", "inputs",
                  "one fixed permutation of the pixels (positions) applied to every input",
                  {"image": "corruptions:shuffle_image_dataset",
                   "features": "vectors:shuffle_vector_dataset",
                   "tokens": "vectors:shuffle_vector_dataset"},
                  not_applicable=_single_position("shuffled_pixels")),
    Randomization("random_pixels", "inputs",
                  "an independent permutation of the pixels (positions) per input",
                  {"image": "corruptions:random_image_dataset",
                   "features": "vectors:random_vector_dataset",
                   "tokens": "vectors:random_vector_dataset"},
                  not_applicable=_single_position("random_pixels")),
    Randomization("gaussian", "inputs",
                  "inputs replaced by noise with the training set's statistics (tokens: uniform "
                  "ids from the training vocabulary)",
                  {"image": "corruptions:noise_image_dataset",
                   "features": "vectors:noise_feature_dataset",
                   "tokens": "vectors:random_token_dataset"}),
)}
#: the names, paper's order (``CorruptionSpec.name`` draws from them)
RANDOMIZATIONS = tuple(REGISTRY)
#: the randomizations with a memorization check of their own (slowdown times them)
MEMORIZED = ("random_labels", "shuffled_pixels", "random_pixels", "gaussian")
#: the runs of the paper's Figure 1a (loss curves), in its order
FIGURE1 = ("true_labels",) + MEMORIZED


def get(name: str) -> Randomization:
    """The randomization called ``name``; unknown names are a :class:`DataError` naming the allowed."""
    if name not in REGISTRY:
        raise DataError(f"name must be one of {RANDOMIZATIONS}, got {name!r}")
    return REGISTRY[name]


def register(randomization: Randomization) -> Randomization:
    """Add a randomization (a new name; its kinds must be known)."""
    unknown = [k for k in randomization.transforms if k != "*" and k not in KINDS]
    if randomization.name in REGISTRY or unknown:
        raise DataError(f"register: {randomization.name!r} "
                        + (f"has unknown kinds {unknown}" if unknown else "exists already"))
    REGISTRY[randomization.name] = randomization
    return randomization
