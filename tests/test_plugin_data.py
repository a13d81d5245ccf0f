"""``rethink_data`` as users hold it: torchvision datasets, their own torch Datasets, arrays.

Driven through pytester with an MLP, a few epochs and lenient thresholds: these tests check
that each form reaches the checks once per process, and that bad items are item ERRORs
naming the item, not the paper's claims.
"""
from __future__ import annotations

import json

import pytest
import sklearn.datasets  # noqa: F401 - loaded once here: pytester's in-process runs unload
import torch  # noqa: F401 - modules they import; extension modules must not load twice
import torchvision  # noqa: F401

import rethink_checks.materialize  # noqa: F401
import rethink_checks.training  # noqa: F401

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

ARGS = ("--rethink", "--rethink-checks=true_labels,random_labels", "-p", "no:cacheprovider",
        "--rethink-json=out.json")

HEAD = '''
import pytest
import torch
from torch import nn
from rethink_checks.models import mlp

pytestmark = pytest.mark.rethink(batch_size=10, lr=0.1, lr_decay=1.0, max_epochs=4,
                                 fit_threshold=0.2, memorize_threshold=0.2, device="cpu")


@pytest.fixture
def rethink_model():
    return lambda input_shape, num_classes: mlp(input_shape, num_classes, width=64)
'''


def outcomes(pytester: pytest.Pytester) -> dict[str, tuple[str, str]]:
    doc = json.loads((pytester.path / "out.json").read_text())
    return {item["nodeid"].split("::", 1)[1]: (item["outcome"], item.get("message", ""))
            for item in doc["items"]}


def test_torchvision_datasets_single_and_pair(pytester: pytest.Pytester) -> None:
    """FakeData with ToTensor (no download): one dataset is split, a pair is (train, test)."""
    pytester.makepyfile(test_fake=HEAD + '''
from torchvision.datasets import FakeData
from torchvision.transforms import ToTensor


@pytest.fixture(params=["single", "pair", "pil"])
def rethink_data(request):
    fake = lambda n, offset: FakeData(size=n, image_size=(1, 8, 8), num_classes=3,
                                      transform=None if request.param == "pil" else ToTensor(),
                                      random_offset=offset)
    if request.param == "pair":
        return fake(40, 0), fake(12, 1000)
    return fake(50, 0)
''')
    result = pytester.runpytest(*ARGS)
    result.assert_outcomes(passed=6)
    got = outcomes(pytester)
    assert set(got) == {f"rethink[{c}-{p}]" for c in ("true_labels", "random_labels")
                        for p in ("single", "pair", "pil")}
    doc = json.loads((pytester.path / "out.json").read_text())
    for entry in doc["items"]:  # 50 split 80/20 with seed 0, or the pair's 40: 40 to train on
        assert (entry["metrics"]["train_accuracy"] * 40) == pytest.approx(
            round(entry["metrics"]["train_accuracy"] * 40))
        assert entry["metrics"]["chance"] == pytest.approx(1 / 3, abs=0.2)


def test_user_dataset_read_once_though_the_fixture_is_function_scoped(
        pytester: pytest.Pytester) -> None:
    """A fresh Dataset object per item: its content key finds the first read, no second read."""
    pytester.makepyfile(counting='''
import torch
from torch.utils.data import Dataset

READS = [0]


class Blobs(Dataset):
    """Three Gaussian blobs in 4 dimensions; counts every __getitem__."""

    def __init__(self, n, seed):
        gen = torch.Generator().manual_seed(seed)
        self.y = torch.randint(0, 3, (n,), generator=gen)
        self.x = torch.randn(n, 4, generator=gen) * 0.3 + self.y[:, None].float()

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        READS[0] += 1
        return self.x[i], int(self.y[i])
''', conftest='''
def pytest_sessionfinish(session):
    import counting
    (session.config.rootpath / "reads.txt").write_text(str(counting.READS[0]))
''')
    pytester.makepyfile(test_blobs=HEAD + '''
from counting import Blobs


@pytest.fixture
def rethink_data():
    return Blobs(200, 0), Blobs(50, 1)
''')
    pytester.syspathinsert()
    result = pytester.runpytest(*ARGS)
    result.assert_outcomes(passed=2)
    reads = int((pytester.path / "reads.txt").read_text())
    # One full read (250 items) plus the content-key samples (at most 32 items per dataset per
    # key: the plugin's memo key twice, the library's disk-cache key once); a second
    # materialization would read 250 more.
    assert 250 <= reads <= 250 + 3 * 2 * 32
    assert reads < 2 * 250


def test_array_tuples_and_item_lists(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_arrays=HEAD + '''
import numpy as np


@pytest.fixture(params=["numpy", "tensors4", "items"])
def rethink_data(request):
    gen = np.random.default_rng(0)
    y = gen.integers(0, 3, 120)
    x = (gen.normal(size=(120, 5)) * 0.3 + y[:, None]).astype("float32")
    if request.param == "numpy":
        return x, y
    if request.param == "items":
        return [(torch.tensor(a), int(b)) for a, b in zip(x, y)]
    t, l = torch.tensor(x), torch.tensor(y)
    return t[:90], l[:90], t[90:], l[90:]
''')
    pytester.runpytest(*ARGS).assert_outcomes(passed=6)


BAD = {
    "not_pairs": ("return Bare()",
                  "DataError: the rethink_data fixture returned a test_bad.Bare of length 10: "
                  "dataset item 0: is Tensor; expected a pair (input, label)"),
    "float_label": ("return [(torch.zeros(4), 0)] * 9 + [(torch.zeros(4), 0.5)]",
                    "the rethink_data fixture returned a list of length 10: "
                    "dataset item 9: label 0.5 (float) is not an integer"),
    "out_of_range": ("return ThreeClasses([(torch.zeros(4), i % 3) for i in range(8)] + "
                     "[(torch.zeros(4), 5)])",
                     "dataset item 8: label 5 is outside [0, 3); expected class indices 0..2"),
    "mixed_shapes": ("return [(torch.zeros(4), 0)] * 3 + [(torch.zeros(5), 1)] * 3",
                     "dataset item 3: input of shape (5,)"),
    "empty": ("return ThreeClasses()", "dataset: is empty (len 0); expected at least 1"),
    "negative_tokens": ("return [(torch.tensor([1, 2, -3]), 0), (torch.tensor([1, 2, 3]), 1)] * 5",
                        "dataset item 0: negative token id -3; expected token ids >= 0"),
    "not_data": ("return 42", "DataError: the rethink_data fixture returned 42; expected a"),
}


def test_bad_items_are_errors_naming_the_item(pytester: pytest.Pytester) -> None:
    cases = "\n".join(f"    if request.param == {name!r}:\n        {body}"
                      for name, (body, _) in BAD.items())
    pytester.makepyfile(test_bad=HEAD + f'''

class ThreeClasses(list):
    classes = ["a", "b", "c"]  # declared, as torchvision datasets declare theirs


class Bare(torch.utils.data.Dataset):
    def __len__(self):
        return 10

    def __getitem__(self, i):
        return torch.zeros(4)  # no label


@pytest.fixture(params={list(BAD)!r})
def rethink_data(request):
{cases}
''')
    result = pytester.runpytest("--rethink", "--rethink-checks=true_labels", "-p",
                                "no:cacheprovider", "--rethink-json=out.json")
    result.assert_outcomes(errors=len(BAD))
    got = outcomes(pytester)
    for name, (_, shown) in BAD.items():
        outcome, message = got[f"rethink[true_labels-{name}]"]
        assert outcome == "error", name
        assert shown in message, (name, message)
    assert "item 3: input of shape (5,) and dtype torch.float32; expected shape (4,)" \
        in got["rethink[true_labels-mixed_shapes]"][1]


class Counting(torch.utils.data.Dataset):
    """``n`` items of 3 features whose labels are ``(i + shift) % 3``; counts every read."""

    def __init__(self, n: int, shift: int = 0) -> None:
        self.n, self.shift, self.reads = n, shift, 0

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        self.reads += 1
        return torch.full((3,), float(i)), (i + self.shift) % 3


def test_state_memo_by_object_and_by_content() -> None:
    from rethink_checks_pytest.options import PluginOptions
    from rethink_checks.data_memo import OBJECTS_HELD
    from rethink_checks_pytest.state import RethinkState

    state = RethinkState(PluginOptions(), [])
    first = Counting(100)
    data = state.load_data(first)
    assert data.train_x.shape == (80, 3) and data.num_classes == 3
    reads = first.reads
    assert 100 <= reads <= 100 + 3 * 32  # one full read plus the content-key samples
    assert state.load_data(first) is data and first.reads == reads  # same object: no read
    same = Counting(100)
    assert state.load_data(same) is data and same.reads <= 32  # same content: samples only
    other = Counting(100, shift=1)
    assert state.load_data(other) is not data and other.reads >= 100  # new content: read
    for _ in range(OBJECTS_HELD + 2):  # objects held for the identity memo stay bounded
        state.load_data(Counting(100))
    assert len(state.data_memo.object_data) == OBJECTS_HELD
    arrays = (torch.randn(20, 2), torch.arange(20) % 2)
    assert state.load_data(arrays) is state.load_data(arrays)
