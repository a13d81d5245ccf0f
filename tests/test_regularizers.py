"""Dropout and batch-norm surgery: copies that still run, with no such modules left."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from rethink_checks.errors import ModelError
from rethink_checks.regularizers import (BATCHNORM_TYPES, DROPOUT_TYPES, remove_batchnorm,
                                         remove_dropout)


def conv_net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Dropout2d(0.1),
        nn.LocalResponseNorm(3),
        nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.GroupNorm(2, 8), nn.BatchNorm2d(8)),
        nn.Flatten(), nn.Linear(8 * 6 * 6, 16), nn.BatchNorm1d(16), nn.Dropout(0.5), nn.Linear(16, 4),
    )


def test_remove_batchnorm_leaves_a_runnable_copy():
    model = conv_net()
    stripped, removed = remove_batchnorm(model)
    assert removed == ["1", "5.2", "8"]
    assert not any(isinstance(m, BATCHNORM_TYPES) for m in stripped.modules())
    assert any(isinstance(m, nn.LocalResponseNorm) for m in stripped.modules())  # not a regularizer
    assert any(isinstance(m, nn.GroupNorm) for m in stripped.modules())
    assert sum(isinstance(m, BATCHNORM_TYPES) for m in model.modules()) == 3  # original untouched
    out = stripped(torch.randn(5, 3, 6, 6))
    assert out.shape == (5, 4)
    out.sum().backward()


def test_remove_dropout_keeps_eval_outputs():
    model = conv_net().eval()
    stripped, removed = remove_dropout(model)
    assert removed == ["3", "9"]
    assert not any(isinstance(m, DROPOUT_TYPES) for m in stripped.modules())
    x = torch.randn(4, 3, 6, 6)
    torch.testing.assert_close(stripped(x), model(x))  # dropout is the identity in eval mode
    stripped.train()
    assert stripped(x).shape == (4, 4)


def test_attributes_survive_surgery():
    model = conv_net()
    model.rethink_lr = 0.1
    stripped, _ = remove_batchnorm(model)
    assert stripped.rethink_lr == 0.1


def test_sync_batchnorm_and_every_dropout_kind():
    model = nn.Sequential(nn.SyncBatchNorm(4), nn.AlphaDropout(0.1), nn.FeatureAlphaDropout(0.1),
                          nn.Dropout1d(0.1), nn.Dropout3d(0.1), nn.InstanceNorm1d(4))
    _, bn = remove_batchnorm(model)
    _, drop = remove_dropout(model)
    assert bn == ["0"] and drop == ["1", "2", "3", "4"]


def test_root_module_and_nothing_to_remove():
    stripped, removed = remove_dropout(nn.Dropout(0.3))
    assert isinstance(stripped, nn.Identity) and removed == ["(root)"]
    plain = nn.Linear(3, 2)
    copy, removed = remove_batchnorm(plain)
    assert removed == [] and copy is not plain
    assert torch.equal(copy.weight, plain.weight)


def test_module_dict_and_list_children():
    model = nn.ModuleDict({"a": nn.ModuleList([nn.Linear(2, 2), nn.Dropout()]), "b": nn.Dropout()})
    stripped, removed = remove_dropout(model)
    assert sorted(removed) == ["a.1", "b"]
    assert isinstance(stripped["a"][1], nn.Identity) and isinstance(stripped["b"], nn.Identity)


@pytest.mark.parametrize("remove", [remove_dropout, remove_batchnorm])
def test_non_module_is_rejected(remove):
    with pytest.raises(ModelError, match="must be a torch.nn.Module; got list"):
        remove([nn.Dropout()])


LAYERS = {
    "linear": lambda: nn.Linear(6, 6), "relu": nn.ReLU, "dropout": lambda: nn.Dropout(0.2),
    "bn": lambda: nn.BatchNorm1d(6), "ln": lambda: nn.LayerNorm(6), "adrop": lambda: nn.AlphaDropout(0.1),
}
layer_trees = st.recursive(
    st.sampled_from(sorted(LAYERS)),
    lambda children: st.lists(children, min_size=1, max_size=4),
    max_leaves=12,
)


def build(tree) -> nn.Module:
    if isinstance(tree, str):
        return LAYERS[tree]()
    return nn.Sequential(*[build(t) for t in tree])


@settings(max_examples=40, deadline=None)
@given(tree=layer_trees.filter(lambda t: isinstance(t, list)))
def test_surgery_on_random_nested_models(tree):
    model = build(tree)
    counts = {kind: sum(isinstance(m, types) for m in model.modules())
              for kind, types in (("drop", DROPOUT_TYPES), ("bn", BATCHNORM_TYPES))}
    others = sum(not isinstance(m, DROPOUT_TYPES + BATCHNORM_TYPES + (nn.Sequential,))
                 for m in model.modules())
    no_drop, dropped = remove_dropout(model)
    no_bn, bns = remove_batchnorm(no_drop)
    assert len(dropped) == counts["drop"] and len(bns) == counts["bn"]
    assert not any(isinstance(m, DROPOUT_TYPES + BATCHNORM_TYPES) for m in no_bn.modules())
    identities = sum(isinstance(m, nn.Identity) for m in no_bn.modules())
    assert identities == counts["drop"] + counts["bn"]
    assert sum(not isinstance(m, (nn.Sequential, nn.Identity)) for m in no_bn.modules()) == others
    assert no_bn(torch.randn(3, 6)).shape == (3, 6)
