"""Streamed data: the DataLoader path repeats the materialized fit exactly where it can."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import rethink_checks.streaming as streaming
from rethink_checks.corruptions import CorruptionSpec
from rethink_checks.data import as_dataset
from rethink_checks.errors import DataError
from rethink_checks.streaming import Streamed, streamed
from rethink_checks.training import fit


class Images(torch.utils.data.Dataset):
    """uint8 images with labels, as a torchvision dataset hands them over."""

    def __init__(self, n: int = 120, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.x = (torch.rand(n, 1, 8, 8, generator=g) * 255).to(torch.uint8)
        self.targets = (torch.arange(n) % 4).tolist()

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        return self.x[i], self.targets[i]


def net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(144, 4))


@pytest.mark.parametrize("randomization", [None, "random_labels", "shuffled_pixels"])
def test_streamed_and_materialized_fits_are_bit_identical(randomization):
    ds = Images()
    materialized, streamed_data = as_dataset(ds, cache=False), as_dataset(ds, stream=True)
    assert isinstance(streamed_data, Streamed)
    corruption = CorruptionSpec(randomization, seed=1) if randomization else None
    runs = [fit(net, d.subset(64, seed=2), max_epochs=3, batch_size=16, eval_every=1,
                corruption=corruption, device="cpu") for d in (materialized, streamed_data)]
    a, b = runs
    assert b.settings["streamed"] is True and a.settings["streamed"] is False
    assert a.curves["train_loss"] == b.curves["train_loss"]
    assert a.curves["train_accuracy"] == b.curves["train_accuracy"]
    assert a.test_accuracy == b.test_accuracy
    assert all(torch.equal(p, q) for p, q in zip(a.model.state_dict().values(), b.model.state_dict().values()))


def test_streamed_items_match_the_materialized_tensors():
    ds = Images()
    m, s = as_dataset(ds, cache=False), streamed(ds)
    for name in (None, "random_labels", "shuffled_pixels"):
        spec = CorruptionSpec(name, seed=5) if name else None
        mm, ss = (spec.apply(m), spec.apply(s)) if spec else (m, s)
        x, y = next(iter(ss.loader("train", None, len(ss.train_y), train=False)))
        assert torch.equal(x, mm.train_x) and torch.equal(y, mm.train_y)


@pytest.mark.parametrize("name", ["random_pixels", "gaussian"])
def test_per_index_noise_is_seeded_and_changes_the_inputs(name):
    s = streamed(Images())
    first, again = (CorruptionSpec(name, seed=3).apply(s) for _ in range(2))
    a = next(iter(first.loader("train", [0, 5], 2, train=False)))[0]
    b = next(iter(again.loader("train", [0, 5], 2, train=False)))[0]
    plain = next(iter(s.loader("train", [0, 5], 2, train=False)))[0]
    assert torch.equal(a, b) and not torch.equal(a, plain)
    if name == "random_pixels":  # a permutation of each image's own pixels
        assert torch.equal(a.flatten(1).sort(1).values, plain.flatten(1).sort(1).values)


def test_workers_and_a_per_epoch_transform():
    calls = []

    def flip(x):
        calls.append(1)  # counted in this process only when workers=0
        return x.flip(-1)

    s = streamed(Images(), transform=flip, workers=1)
    result = fit(net, s, max_epochs=2, batch_size=32, device="cpu")
    assert result.epochs == 2 and result.settings["workers"] == 1
    inline = streamed(Images(), transform=flip)
    fit(net, inline, max_epochs=2, batch_size=32, device="cpu")
    assert len(calls) == 2 * len(inline.train_y)  # every training input, every epoch; never the evaluation


def test_large_datasets_stream_by_default(monkeypatch):
    monkeypatch.setattr(streaming, "STREAM_ABOVE_BYTES", 1000)
    assert isinstance(as_dataset(Images()), Streamed)
    assert not isinstance(as_dataset(Images(), stream=False, cache=False), Streamed)


def test_analyses_needing_the_whole_tensor_say_the_data_is_streamed():
    with pytest.raises(DataError, match="the data is streamed"):
        streamed(Images()).train_x
