"""The public hypothesis strategies generate what they promise (shapes, dtypes, ranges)."""
from __future__ import annotations

import torch
from hypothesis import find, given
from hypothesis import strategies as st

from rethink_checks.corruptions import RANDOMIZATIONS, CorruptionSpec
from rethink_checks.data import Dataset
from rethink_checks.strategies import (
    FEATURE_DTYPES, IMAGE_DTYPES, KINDS, TOKEN_DTYPES, corruption_specs, datasets, feature_batches,
    image_batches, labels, token_batches)


@given(labels(num_classes=st.integers(2, 5), min_size=1, max_size=9))
def test_labels_are_class_indices(yk):
    y, k = yk
    assert 2 <= k <= 5 and 1 <= len(y) <= 9 and y.dim() == 1
    assert not y.is_floating_point() and 0 <= int(y.min()) and int(y.max()) < k


@given(image_batches(ranks=(3, 4), max_n=3, max_side=5))
def test_image_batches_shapes_and_dtypes(x):
    assert x.dim() in (3, 4) and x.dtype in IMAGE_DTYPES
    assert x.shape[-3] in (1, 3) and 1 <= x.shape[-1] <= 5 and 1 <= x.shape[-2] <= 5
    if x.dim() == 4:
        assert 1 <= x.shape[0] <= 3


@given(image_batches(distinct=True, channels=(3,)))
def test_distinct_images_have_distinct_values(x):
    for img in x:
        assert img.flatten().unique().numel() == img.numel()


def test_strategies_reach_every_dtype_rank_and_name():
    """Defaults cover all image dtypes, both ranks on request, and every randomization."""
    for dtype in IMAGE_DTYPES:
        assert find(image_batches(), lambda x, d=dtype: x.dtype == d).dtype == dtype
    assert find(image_batches(ranks=(3, 4)), lambda x: x.dim() == 3).dim() == 3
    for name in RANDOMIZATIONS:
        assert find(corruption_specs(), lambda s, n=name: s.name == n).name == name
    assert find(labels(), lambda yk: yk[0].dtype == torch.int32)[0].dtype == torch.int32


@given(corruption_specs(), datasets())
def test_specs_and_datasets_are_valid(spec, data):
    assert isinstance(spec, CorruptionSpec) and spec.name in RANDOMIZATIONS
    assert isinstance(data, Dataset) and data.input_shape == tuple(data.test_x.shape[1:])
    assert int(data.train_y.max()) < data.num_classes


@given(feature_batches(ranks=(1, 2), max_n=3, max_dim=5))
def test_feature_batches_shapes_and_dtypes(x):
    assert x.dim() in (1, 2) and x.dtype in FEATURE_DTYPES and 1 <= x.shape[-1] <= 5
    assert bool(torch.isfinite(x).all())


@given(token_batches(ranks=(1, 2), vocab_size=7, max_len=5))
def test_token_batches_are_ids_below_the_vocabulary(x):
    assert x.dim() in (1, 2) and x.dtype in TOKEN_DTYPES and 1 <= x.shape[-1] <= 5
    assert 0 <= int(x.min()) and int(x.max()) < 7


@given(st.one_of(feature_batches(distinct=True), token_batches(distinct=True)))
def test_distinct_rows_hold_a_permutation(x):
    for row in x:
        assert torch.equal(row.sort().values.long(), torch.arange(len(row)))


def test_datasets_reach_every_kind_and_rank_one_batches():
    for kind in KINDS:
        data = find(datasets(kinds=KINDS), lambda d, k=kind: d.kind == k)
        assert data.kind == kind and data.train_x.dim() == (4 if kind == "image" else 2)
    assert find(token_batches(ranks=(1, 2)), lambda x: x.dim() == 1).dim() == 1
    for dtype in TOKEN_DTYPES:
        assert find(token_batches(), lambda x, d=dtype: x.dtype == d).dtype == dtype
