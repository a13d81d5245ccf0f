"""The randomizations' table: one entry per name, a transform per input kind, no fall-through.

The outputs are pinned to the values the per-kind branches of ``CorruptionSpec.apply`` gave
before the table existed (commit de1ac70): sha256 of the four tensors of a small dataset per
kind, randomization and option set.
"""
from __future__ import annotations

import hashlib
import re

import pytest
import torch
from hypothesis import given, settings as hsettings, strategies as st

from rethink_checks import randomizations
from rethink_checks.corruptions import CorruptionSpec
from rethink_checks.data import from_tensors
from rethink_checks.errors import DataError, NotApplicable

PINNED = {
    "image:true_labels:[]": "c952b1edbdddf41c",
    "image:partial_labels:[('p', 0.5)]": "25f851e52961ba39",
    "image:random_labels:[('corrupt_test_labels', True)]": "9065aec415eda2b1",
    "image:random_labels:[('mode', 'wrong_class')]": "67dd41a2eed75766",
    "image:shuffled_pixels:[]": "440c8825ba895ff1",
    "image:random_pixels:[]": "99307e86de998cda",
    "image:gaussian:[]": "fe9a2af7a591a39c",
    "image:gaussian:[('per_channel', False)]": "d61a2c5bc87c7628",
    "features:true_labels:[]": "8c73bbf74e659d46",
    "features:partial_labels:[('p', 0.5)]": "cd96d007ee337a0b",
    "features:random_labels:[('corrupt_test_labels', True)]": "3390f1f2b448d5c0",
    "features:random_labels:[('mode', 'wrong_class')]": "e5fe22c3bd387e51",
    "features:shuffled_pixels:[]": "7c951a879388ee52",
    "features:random_pixels:[]": "72fe923b5c766221",
    "features:gaussian:[]": "2865a87e1551ca1c",
    "features:gaussian:[('per_channel', False)]": "f3cef2532ba68648",
    "tokens:true_labels:[]": "c4ee8223a3bc89ea",
    "tokens:partial_labels:[('p', 0.5)]": "e6434aa75f6f8990",
    "tokens:random_labels:[('corrupt_test_labels', True)]": "7c1414bc56ee1f25",
    "tokens:random_labels:[('mode', 'wrong_class')]": "a20f108801d42cfd",
    "tokens:shuffled_pixels:[]": "8ffb2c935be45434",
    "tokens:random_pixels:[]": "28f46fe62a4ee358",
    "tokens:gaussian:[]": "c89f92524deb05ba",
    "tokens:gaussian:[('per_channel', False)]": "c89f92524deb05ba",
}


def _digest(d) -> str:
    h = hashlib.sha256()
    for t in (d.train_x, d.train_y, d.test_x, d.test_y):
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _datasets() -> dict:
    g = torch.Generator().manual_seed(0)
    return {
        "image": from_tensors(torch.randn(12, 3, 4, 5, generator=g), torch.randint(0, 3, (12,), generator=g),
                              torch.randn(6, 3, 4, 5, generator=g), torch.randint(0, 3, (6,), generator=g),
                              num_classes=3),
        "features": from_tensors(torch.randn(12, 7, generator=g), torch.randint(0, 3, (12,), generator=g),
                                 torch.randn(6, 7, generator=g), torch.randint(0, 3, (6,), generator=g),
                                 num_classes=3, kind="features"),
        "tokens": from_tensors(torch.randint(0, 50, (12, 9), generator=g), torch.randint(0, 3, (12,), generator=g),
                               torch.randint(0, 50, (6, 9), generator=g), torch.randint(0, 3, (6,), generator=g),
                               num_classes=3, kind="tokens", vocab_size=50),
    }


def test_outputs_are_bit_identical_to_the_pinned_ones() -> None:
    got = {}
    for kind, data in _datasets().items():
        for name, kw in [("true_labels", {}), ("partial_labels", {"p": 0.5}),
                         ("random_labels", {"corrupt_test_labels": True}),
                         ("random_labels", {"mode": "wrong_class"}), ("shuffled_pixels", {}),
                         ("random_pixels", {}), ("gaussian", {}), ("gaussian", {"per_channel": False})]:
            got[f"{kind}:{name}:{sorted(kw.items())}"] = _digest(CorruptionSpec(name=name, seed=3, **kw).apply(data))
    assert got == PINNED


def test_every_randomization_has_a_transform_for_every_kind() -> None:
    for entry in randomizations.REGISTRY.values():
        assert entry.changes in ("labels", "inputs")
        for kind in randomizations.KINDS:
            assert callable(entry.transform(kind))
    assert randomizations.RANDOMIZATIONS[:3] == ("true_labels", "partial_labels", "random_labels")


@hsettings(max_examples=25, deadline=None)
@given(st.sampled_from(randomizations.RANDOMIZATIONS), st.text(min_size=1, max_size=8))
def test_an_unknown_or_missing_kind_is_an_error_not_a_fall_through(name: str, kind: str) -> None:
    entry = randomizations.get(name)
    if kind in randomizations.KINDS:
        return
    with pytest.raises(DataError, match=re.escape(f"dataset.kind={kind!r} is unknown; allowed: image, features, tokens")):
        entry.transform(kind)

    class NoKind:
        train_x = torch.zeros(2, 3)

    with pytest.raises(DataError, match="dataset has no kind"):
        entry.transform_for(NoKind())


def test_a_randomization_without_a_transform_for_a_kind_says_so() -> None:
    only_images = randomizations.Randomization("flip_rows", "inputs", "rows reversed",
                                               {"image": lambda spec, d, s: d})
    assert only_images.transform("image")(None, "d", 0) == "d"
    with pytest.raises(DataError, match="'flip_rows' has no transform for kind='tokens' .it has: image."):
        only_images.transform("tokens")
    with pytest.raises(DataError, match="unknown kinds"):
        randomizations.register(randomizations.Randomization("x", "inputs", "", {"audio": "m:f"}))


@hsettings(max_examples=20, deadline=None)
@given(st.sampled_from(["shuffled_pixels", "random_pixels"]), st.sampled_from(["features", "tokens"]),
       st.integers(0, 2**31 - 1))
def test_a_permutation_of_one_position_is_not_applicable_with_the_reason(name, kind, seed) -> None:
    x = torch.zeros(4, 1, dtype=torch.int64 if kind == "tokens" else torch.float32)
    data = from_tensors(x, torch.tensor([0, 1, 0, 1]), x.clone(), torch.tensor([0, 1, 0, 1]),
                        num_classes=2, kind=kind)
    with pytest.raises(NotApplicable, match="has no permutation but the identity"):
        CorruptionSpec(name=name, seed=seed).apply(data)


def test_unknown_names_list_the_allowed() -> None:
    with pytest.raises(DataError, match="name must be one of .*'gaussian'.*got 'gauss'"):
        CorruptionSpec(name="gauss")
