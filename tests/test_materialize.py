"""data.as_dataset / rethink_checks.materialize: torch datasets, pairs, seeded splits, array tuples,
bad items named by index, the progress line and the on-disk cache. No downloads: torchvision
datasets are built from files written in tmp_path (ImageFolder) or generated (FakeData)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from torch.utils.data import Dataset as TorchDataset
from torch.utils.data import IterableDataset
from torchvision.transforms import ToTensor

import rethink_checks.materialize as mat
from rethink_checks.data import Dataset, as_dataset, load_digits
from rethink_checks.errors import DataError, InputTypeError


class Items(TorchDataset):
    """A user's map-style dataset: item i is (inputs[i], labels[i]); counts reads."""

    def __init__(self, inputs, labels):
        self.inputs, self.labels, self.reads = list(inputs), list(labels), 0

    def __len__(self):
        return len(self.inputs)

    def __getitem__(self, i):
        self.reads += 1
        return self.inputs[i], self.labels[i]


def features(n=20, d=4, seed=0, classes=3):
    gen = torch.Generator().manual_seed(seed)
    return Items(torch.randn(n, d, generator=gen), [i % classes for i in range(n)])


# ---------------------------------------------------------------- the accepted forms

def test_dataset_and_spec_pass_through():
    digits = load_digits()
    assert as_dataset(digits) is digits
    assert as_dataset("digits,raw").train_x.shape == digits.train_x.shape


def test_one_user_dataset_is_split_with_a_seed(tmp_path):
    ds = features(n=20)
    a = as_dataset(ds, seed=1, test_fraction=0.25, cache_dir=tmp_path)
    b = as_dataset(ds, seed=1, test_fraction=0.25, cache_dir=tmp_path)
    c = as_dataset(ds, seed=2, test_fraction=0.25, cache_dir=tmp_path)
    assert isinstance(a, Dataset) and a.kind == "features" and a.name == "Items"
    assert len(a.train_x) == 15 and len(a.test_x) == 5 and a.num_classes == 3
    assert torch.equal(a.train_x, b.train_x) and not torch.equal(a.test_x, c.test_x)
    every = torch.cat([a.train_x, a.test_x])  # a partition of the items, nothing dropped
    items = torch.stack(ds.inputs)
    assert torch.equal(every[every[:, 0].argsort()], items[items[:, 0].argsort()])


def test_pair_of_torchvision_datasets_from_files(tmp_path):
    """ImageFolder on PNGs written here, with a tensor transform: classes come from .classes."""
    rng = np.random.default_rng(0)
    for split, per_class in (("train", 3), ("test", 1)):
        for cls in ("ant", "bee", "cat"):
            folder = tmp_path / split / cls
            folder.mkdir(parents=True)
            for i in range(per_class):
                Image.fromarray(rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    train = torchvision.datasets.ImageFolder(str(tmp_path / "train"), transform=ToTensor())
    test = torchvision.datasets.ImageFolder(str(tmp_path / "test"), transform=ToTensor())
    data = as_dataset((train, test), cache_dir=tmp_path / "cache")
    assert data.kind == "image" and data.input_shape == (3, 5, 6) and data.num_classes == 3
    assert len(data.train_x) == 9 and len(data.test_x) == 3 and data.name == "ImageFolder"
    assert torch.equal(data.train_x[0], train[0][0]) and data.train_y.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_torchvision_fakedata_with_and_without_a_transform(tmp_path):
    with_tensor = torchvision.datasets.FakeData(size=12, image_size=(1, 4, 4), num_classes=3,
                                                transform=ToTensor())
    pil = torchvision.datasets.FakeData(size=12, image_size=(1, 4, 4), num_classes=3)  # PIL images
    a = as_dataset(with_tensor, cache_dir=tmp_path)
    b = as_dataset(pil, cache_dir=tmp_path)
    assert a.input_shape == b.input_shape == (1, 4, 4)
    assert torch.allclose(a.train_x, b.train_x)  # pil_to_tensor + /255 == ToTensor


def test_tokens_from_a_user_dataset(tmp_path):
    seqs = [torch.tensor([i % 5, (i + 1) % 5, 7]) for i in range(10)]
    data = as_dataset(Items(seqs, [i % 2 for i in range(10)]), cache_dir=tmp_path)
    assert data.kind == "tokens" and data.vocab_size == 8 and data.train_x.dtype == torch.int64


def test_a_list_of_items_is_a_dataset(tmp_path):
    items = [(torch.full((3,), float(i)), i % 2) for i in range(10)]
    data = as_dataset(items, cache_dir=tmp_path)
    assert data.kind == "features" and len(data.train_x) == 8 and data.name == "list"
    with pytest.raises(DataError, match="dataset: is empty"):
        as_dataset([], cache_dir=tmp_path)


@pytest.mark.parametrize("parts", [
    lambda x, y: (x, y), lambda x, y: (x.numpy(), y.numpy()),
    lambda x, y: (x[:8], y[:8], x[8:], y[8:]), lambda x, y: (x[:8].numpy(), y[:8], x[8:], y[8:].numpy()),
])
def test_tuples_of_arrays_or_tensors(parts):
    x, y = torch.rand(10, 3), torch.arange(10) % 2
    data = as_dataset(parts(x, y), seed=0)
    assert data.kind == "features" and len(data.train_x) + len(data.test_x) == 10


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("ds, needle", [
    (Items([], []), "dataset: is empty (len 0)"),
    (Items([torch.zeros(2)] * 3, [0, 1.0, 1]), "dataset item 1: label 1.0 (float) is not an integer"),
    (Items([torch.zeros(2)] * 3, [0, 1, -2]), "dataset item 2: label -2 is negative"),
    (Items([torch.zeros(2), torch.zeros(3), torch.zeros(2)], [0, 1, 0]),
     "dataset item 1: input of shape (3,) and dtype torch.float32; expected shape (2,)"),
    (Items([torch.tensor([1, 2]), torch.tensor([3, -1])], [0, 1]), "dataset item 1: negative token id -1"),
    (Items(["text", "more"], [0, 1]), "dataset item 0: input of type str"),
])
def test_bad_items_are_named_by_index(ds, needle, tmp_path):
    with pytest.raises(DataError) as info:
        as_dataset(ds, cache_dir=tmp_path)
    assert needle in str(info.value)


def test_items_that_are_not_pairs_and_labels_out_of_range(tmp_path):
    class Triples(Items):
        def __getitem__(self, i):
            return torch.zeros(2), 0, "extra"

    with pytest.raises(DataError, match=r"dataset item 0: is a tuple of 3; expected a pair \(input, label\)"):
        as_dataset(Triples([0, 1], [0, 1]), cache_dir=tmp_path)
    with pytest.raises(DataError, match=r"dataset item 2: label 5 is outside \[0, 3\)"):
        as_dataset(Items([torch.zeros(2)] * 3, [0, 1, 5]), num_classes=3, cache_dir=tmp_path)


def test_wrong_forms_list_what_is_accepted():
    class Stream(IterableDataset):
        def __iter__(self):
            yield torch.zeros(2), 0

    with pytest.raises(InputTypeError, match=r"iterable-style dataset .* pass list\(dataset\)"):
        as_dataset(Stream())
    with pytest.raises(InputTypeError, match=r"a pair \(train, test\) of map-style torch datasets"):
        as_dataset(42)
    with pytest.raises(DataError, match=r"test_fraction=1.5 is not allowed"):
        as_dataset(features(), test_fraction=1.5, cache=False)
    with pytest.raises(DataError, match="a tuple of 3 arrays"):
        as_dataset((torch.zeros(3, 2), torch.zeros(3), torch.zeros(3, 2)))


# ---------------------------------------------------------------- progress and cache

def test_progress_line_for_a_slow_read(monkeypatch, capsys):
    clock = iter(range(0, 10_000, 3))  # every look at the clock: 3 s later
    monkeypatch.setattr(mat.time, "monotonic", lambda: float(next(clock)))
    as_dataset(features(n=6), cache=False)
    err = capsys.readouterr().err
    assert "rethink_checks: reading Items (dataset): 6/6 items (100%)" in err
    lines = []
    mat.materialize(features(n=6), cache=False, progress=lambda *row: lines.append(row))
    assert lines and lines[-1][:3] == ("Items (dataset)", 6, 6)


def test_cache_is_reused_and_keyed_by_content(tmp_path):
    ds = features(n=30)
    first = mat.materialize(ds, cache_dir=tmp_path, cache=True)
    entries = list((tmp_path / "materialized").glob("Items-30-*.pt"))
    assert len(entries) == 1
    reads = ds.reads
    again = mat.materialize(ds, cache_dir=tmp_path, cache=True)
    assert torch.equal(first.train_x, again.train_x)
    assert ds.reads - reads < 30  # only the key's sample was read, not every item
    changed = features(n=30, seed=1)  # same class and length, other content: another key
    assert mat.cache_key(changed) != mat.cache_key(ds)
    assert not torch.equal(mat.materialize(changed, cache_dir=tmp_path).train_x, first.train_x)


def test_no_cache_writes_nothing_and_fast_reads_are_not_written(tmp_path):
    mat.materialize(features(), cache_dir=tmp_path, cache=False)
    mat.materialize(features(), cache_dir=tmp_path)  # cache=None: a fast read is not worth the disk
    assert not (tmp_path / "materialized").exists()


def test_a_damaged_entry_is_read_again_with_a_warning(tmp_path):
    ds = features(n=10)
    mat.materialize(ds, cache_dir=tmp_path, cache=True)
    (entry,) = (tmp_path / "materialized").glob("*.pt")
    entry.write_bytes(b"not a torch file")
    with pytest.warns(UserWarning, match="unreadable cache entry"):
        data = mat.materialize(ds, cache_dir=tmp_path, cache=True)
    assert len(data.train_x) == 8
