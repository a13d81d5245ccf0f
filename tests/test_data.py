"""Data sources: digits, CIFAR-10 / MNIST layouts, image folders and their cache, tensors, specs."""
from __future__ import annotations

import gzip
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

import rethink_checks.data as data_mod
import rethink_checks.imagefolder as imagefolder_mod
from rethink_checks.errors import InputTypeError
from rethink_checks.data import (DIGITS_FIT_DEFAULTS, IMAGE_CHECK_DEFAULTS, IMAGE_FIT_DEFAULTS,
                                 Dataset, DataError, default_cache_dir, from_arrays, from_tensors, load, load_cifar10,
                                 load_digits, load_image_folder, load_mnist, paper_preprocess, whiten_images)

SHARED_CIFAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpg.tar.gz"


# --------------------------------------------------------------------------- helpers

def write_folder(root: Path, counts: dict[str, dict[str, int]], size=(6, 5), mode="RGB", seed=0,
                 ext=".png") -> dict[str, list[tuple[str, np.ndarray]]]:
    """Write random PNG images as root/split/class/NN.png; return (class, HWC array) per split in name order."""
    rng = np.random.default_rng(seed)
    written: dict[str, list[tuple[str, np.ndarray]]] = {}
    for split, classes in counts.items():
        written[split] = []
        for cls in sorted(classes):
            folder = root / split / cls
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(classes[cls]):
                shape = (size[0], size[1], 3) if mode == "RGB" else size
                arr = rng.integers(0, 256, shape, dtype=np.uint8)
                Image.fromarray(arr, mode=mode).save(folder / f"{i:02d}{ext}")
                written[split].append((cls, arr))
    return written


COUNTS = {"train": {"cat": 3, "ant": 2, "dog": 2}, "test": {"cat": 1, "ant": 1, "dog": 2}}


@pytest.fixture()
def folder(tmp_path):
    root = tmp_path / "imgs"
    written = write_folder(root, COUNTS)
    return root, written


def expected_arrays(written, split):
    classes = sorted(COUNTS["train"])
    items = sorted(written[split], key=lambda item: classes.index(item[0]))  # stable: name order kept
    x = torch.tensor(np.stack([a.transpose(2, 0, 1) for _, a in items])).float() / 255
    y = torch.tensor([classes.index(c) for c, _ in items])
    return x, y


# --------------------------------------------------------------------------- digits and Dataset

def test_digits_shapes_ranges_and_split():
    d = load_digits()
    assert d.train_x.shape == (1438, 1, 8, 8) and d.test_x.shape == (359, 1, 8, 8)
    assert d.train_x.dtype == torch.float32 and d.train_y.dtype == torch.int64
    assert 0.0 <= float(d.train_x.min()) and float(d.train_x.max()) <= 1.0
    assert d.num_classes == 10 and set(d.train_y.tolist()) == set(range(10))
    assert d.input_shape == (1, 8, 8)


def test_digits_split_is_seeded():
    a, b, c = load_digits(seed=0), load_digits(seed=0), load_digits(seed=1)
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_y, b.test_y)
    assert not torch.equal(a.train_x, c.train_x)
    # Every image lands in exactly one split.
    assert torch.cat([a.train_x, a.test_x]).sum() == pytest.approx(float(c.train_x.sum() + c.test_x.sum()))


def test_map_inputs_transforms_both_splits_alike_and_keeps_labels():
    d = load_digits().subset(50, n_test=20)
    m = d.map_inputs(lambda x: 2 * x + 1, name="doubled")
    assert torch.equal(m.train_x, 2 * d.train_x + 1) and torch.equal(m.test_x, 2 * d.test_x + 1)
    assert torch.equal(m.train_y, d.train_y) and torch.equal(m.test_y, d.test_y)
    assert m.name == "doubled" and d.name != "doubled" and m.num_classes == d.num_classes
    flat = d.map_inputs(lambda x: x.flatten(1))  # another layout re-infers the kind, as replace does
    assert flat.kind == "features" and d.kind == "image"


def test_subset_is_deterministic_and_in_bounds():
    d = load_digits()
    s1, s2, s3 = d.subset(100, seed=3), d.subset(100, seed=3), d.subset(100, seed=4)
    assert len(s1.train_x) == 100 and torch.equal(s1.train_x, s2.train_x) and torch.equal(s1.train_y, s2.train_y)
    assert not torch.equal(s1.train_y, s3.train_y)
    assert len(s1.test_x) == len(d.test_x)
    # Every picked row is a row of the original with its own label.
    flat = d.train_x.flatten(1)
    for x, y in zip(s1.train_x[:10], s1.train_y[:10]):
        rows = (flat == x.flatten()).all(dim=1).nonzero().flatten()
        assert y in d.train_y[rows]
    assert len(d.subset(5, n_test=7).test_x) == 7
    for bad in (0, len(d.train_x) + 1):
        with pytest.raises(DataError, match=f"n_train={bad}"):
            d.subset(bad)
    with pytest.raises(DataError, match="n_test=0"):
        d.subset(5, n_test=0)


def test_dataset_repr_is_one_line_summary():
    text = repr(load_digits())
    assert "digits" in text and "train=1438" in text and "\n" not in text and len(text) < 300


# --------------------------------------------------------------------------- from_tensors / from_arrays

def _xy(n=4, shape=(1, 3, 3), k=3, dtype=torch.float32):
    x = torch.rand(n, *shape) if dtype.is_floating_point else torch.randint(0, 256, (n, *shape), dtype=dtype)
    return x, torch.arange(n) % k


def test_from_tensors_scales_uint8_and_infers_classes():
    tx, ty = _xy(dtype=torch.uint8)
    vx, vy = _xy(2, dtype=torch.uint8)
    before = tx.clone()
    d = from_tensors(tx, ty, vx, vy, name="mine")
    assert d.train_x.dtype == torch.float32 and torch.allclose(d.train_x, tx.float() / 255)
    assert d.num_classes == 3 and d.name == "mine" and d.train_y.dtype == torch.int64
    assert torch.equal(tx, before)


def test_from_tensors_adds_channel_to_rank3():
    d = from_tensors(torch.rand(4, 5, 5), torch.tensor([0, 1, 0, 1]), torch.rand(2, 5, 5), torch.tensor([1, 0]))
    assert d.input_shape == (1, 5, 5)


@pytest.mark.parametrize("change, needle, kind", [
    (dict(train_x=torch.rand(4)), "train_x: rank 1", DataError),
    (dict(train_x=torch.rand(4, 3)), "test_x: rank 4 (shape (2, 1, 3, 3)) does not fit kind='features'", DataError),
    (dict(test_x=torch.rand(2, 1, 3, 3, 1)), "test_x: rank 5", DataError),
    (dict(train_y=torch.tensor([0, 1, 2])), "train_y: has 3 labels but train_x has 4", DataError),
    (dict(train_y=torch.tensor([[0], [1], [2], [0]])), "train_y: rank 2", DataError),
    (dict(train_y=torch.tensor([0.0, 1.0, 2.0, 0.0])), "train_y: dtype torch.float32", InputTypeError),
    (dict(test_y=torch.tensor([0, 7])), "test_y: label 7 is outside [0, 3) at index 1", DataError),
    (dict(train_y=torch.tensor([0, -1, 2, 0])), "train_y: label -1 is outside [0, 3) at index 1", DataError),
    (dict(test_x=torch.rand(2, 1, 4, 4)), "test_x: image shape (1, 4, 4) differs", DataError),
    (dict(train_x=torch.full((4, 1, 3, 3), float("nan"))), "train_x: contains NaN", DataError),
    (dict(train_x=torch.zeros(4, 1, 3, 3, dtype=torch.int32)), "train_x: dtype torch.int32", InputTypeError),
    (dict(train_x=torch.rand(0, 1, 3, 3), train_y=torch.zeros(0, dtype=torch.int64)), "train_x: has no examples", DataError),
    (dict(train_x=np.zeros((4, 1, 3, 3))), "use from_arrays", InputTypeError),
    (dict(num_classes=1), "num_classes=1", DataError),
])
def test_from_tensors_rejects_bad_input(change, needle, kind):
    tx, ty = _xy()
    vx, vy = _xy(2)
    kwargs = dict(train_x=tx, train_y=ty, test_x=vx, test_y=vy, num_classes=3 if "num_classes" not in change else None)
    kwargs.update(change)
    with pytest.raises(kind) as info:  # a wrong type is a TypeError, a wrong value a ValueError
        from_tensors(**kwargs)
    assert needle in str(info.value)
    assert isinstance(info.value, TypeError if kind is InputTypeError else ValueError)


def test_from_tensors_inferred_single_class_is_an_error():
    x = torch.rand(3, 1, 2, 2)
    with pytest.raises(DataError, match="at least 2 classes"):
        from_tensors(x, torch.zeros(3, dtype=torch.int64), x, torch.zeros(3, dtype=torch.int64))


def test_from_arrays_accepts_hwc_and_chw():
    rng = np.random.default_rng(0)
    chw = rng.integers(0, 256, (4, 3, 5, 6), dtype=np.uint8)
    hwc = chw.transpose(0, 2, 3, 1).copy()
    y = np.array([0, 1, 1, 0])
    a = from_arrays(hwc, y, hwc[:2], y[:2])
    b = from_arrays(chw, y, chw[:2], y[:2])
    assert a.input_shape == b.input_shape == (3, 5, 6)
    assert torch.equal(a.train_x, b.train_x) and torch.allclose(a.train_x, torch.from_numpy(chw).float() / 255)
    # Ambiguous shapes follow the explicit layout.
    sq = rng.random((2, 3, 3, 3)).astype(np.float32)
    assert torch.equal(from_arrays(sq, [0, 1], sq, [1, 0], layout="NHWC").train_x,
                       torch.from_numpy(sq.transpose(0, 3, 1, 2).copy()))
    assert torch.equal(from_arrays(sq, [0, 1], sq, [1, 0], layout="NCHW").train_x, torch.from_numpy(sq))


@given(n=st.integers(1, 3), c=st.sampled_from([1, 3, 4]), h=st.integers(5, 9), w=st.integers(5, 9),
       seed=st.integers(0, 2**31 - 1), uint8=st.booleans())
def test_from_arrays_hwc_equals_chw(n, c, h, w, seed, uint8):
    rng = np.random.default_rng(seed)
    chw = rng.integers(0, 256, (n, c, h, w), dtype=np.uint8) if uint8 else rng.random((n, c, h, w), dtype=np.float32)
    hwc = chw.transpose(0, 2, 3, 1)  # a non-contiguous view on purpose
    y = np.arange(n) % 2
    a, b = from_arrays(hwc, y, hwc, y, num_classes=2), from_arrays(chw, y, chw, y, num_classes=2)
    assert a.input_shape == (c, h, w) and torch.equal(a.train_x, b.train_x)
    expected = torch.from_numpy(chw).float() / 255 if uint8 else torch.from_numpy(chw)
    assert torch.equal(b.test_x, expected)


def test_from_arrays_rejects_bad_layout_and_dtype():
    x = np.zeros((2, 1, 3, 3), dtype=np.float32)
    with pytest.raises(DataError, match="layout='HWC'"):
        from_arrays(x, [0, 1], x, [0, 1], layout="HWC")
    with pytest.raises(InputTypeError, match="train_y: dtype <U1"):
        from_arrays(x, ["a", "b"], x, [0, 1])


# --------------------------------------------------------------------------- paper preprocessing

@given(n=st.integers(1, 3), c=st.sampled_from([1, 3]), h=st.integers(28, 34), w=st.integers(28, 34),
       seed=st.integers(0, 2**31 - 1))
def test_paper_preprocess_crops_and_whitens_each_image(n, c, h, w, seed):
    x = torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed))
    before = x.clone()
    out = paper_preprocess(x)
    assert out.shape == (n, c, 28, 28) and torch.equal(x, before)
    assert torch.allclose(out.mean(dim=(1, 2, 3)), torch.zeros(n), atol=1e-5)
    assert torch.allclose(out.std(dim=(1, 2, 3), unbiased=False), torch.ones(n), atol=1e-4)
    top, left = (h - 28) // 2, (w - 28) // 2
    crop = x[:, :, top:top + 28, left:left + 28]
    manual = (crop - crop.mean(dim=(1, 2, 3), keepdim=True)) / crop.std(dim=(1, 2, 3), keepdim=True, unbiased=False)
    assert torch.allclose(out, manual, atol=1e-5)
    assert torch.allclose(paper_preprocess(x[0]), out[0], atol=1e-6)


def test_paper_preprocess_std_floor():
    flat = torch.full((3, 32, 32), 0.5)
    assert torch.equal(paper_preprocess(flat), torch.zeros(3, 28, 28))
    tiny = flat.clone()
    tiny[0, 16, 16] += 1e-4  # std far below 1/sqrt(3*28*28): divided by the floor instead
    out = paper_preprocess(tiny)
    centred = tiny[:, 2:30, 2:30] - tiny[:, 2:30, 2:30].mean()
    assert torch.allclose(out, centred * (3 * 28 * 28) ** 0.5, atol=1e-6)


def test_paper_preprocess_uint8_matches_scaled_float():
    x = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    assert torch.allclose(paper_preprocess(x), paper_preprocess(x.float() / 255), atol=1e-6)


@pytest.mark.parametrize("x, needle, kind", [
    (torch.rand(2, 3, 20, 32), "20x32 is smaller than the 28x28", DataError),
    (torch.rand(32, 32), "rank 2", DataError),
    (torch.zeros(3, 32, 32, dtype=torch.int64), "dtype torch.int64", InputTypeError),
    (np.zeros((3, 32, 32)), "expected a torch.Tensor, got ndarray", InputTypeError),
])
def test_paper_preprocess_rejects_bad_input(x, needle, kind):
    with pytest.raises(kind) as info:
        paper_preprocess(x)
    assert needle in str(info.value)


@given(shape=st.sampled_from([(1, 8, 8), (3, 5, 7), (2, 1, 12, 12), (4, 3, 6, 5)]),
       scale=st.floats(1, 100), shift=st.floats(-10, 10), seed=st.integers(0, 2**31 - 1))
def test_whiten_images_standardizes_each_image_and_ignores_its_scale(shape, scale, shift, seed):
    x = torch.rand(shape, generator=torch.Generator().manual_seed(seed)) + 0.01
    batch = x if x.dim() == 4 else x.unsqueeze(0)
    out = whiten_images(batch)
    assert out.shape == batch.shape and _whitened(out)
    # per image, a brighter or higher-contrast copy whitens to the same image (a lower-contrast
    # one may fall under the std floor, 1/sqrt(values), which is there to keep flat images finite)
    assert torch.allclose(whiten_images(batch * scale + shift), out, atol=1e-3)
    assert torch.allclose(whiten_images(out), out, atol=1e-5)  # idempotent
    assert torch.allclose(whiten_images(batch[0]), out[0], atol=1e-6)  # one image or a batch alike
    assert torch.equal(paper_preprocess(batch, size=min(shape[-2:])),
                       whiten_images(batch[..., :min(shape[-2:]), :min(shape[-2:])])
                       ) or shape[-1] != shape[-2]


def test_whiten_images_rejects_bad_input_naming_it():
    with pytest.raises(DataError, match="rank 2 .* in whiten_images"):
        whiten_images(torch.rand(4, 4))
    with pytest.raises(InputTypeError, match="dtype torch.int64 is not allowed in whiten_images"):
        whiten_images(torch.zeros(1, 4, 4, dtype=torch.int64))


# --------------------------------------------------------------------------- image folders

def test_image_folder_reads_labels_in_sorted_class_order(folder, tmp_path):
    root, written = folder
    d = load_image_folder(root, cache_dir=tmp_path / "cache")
    assert d.num_classes == 3 and d.name == "imgs" and d.input_shape == (3, 6, 5)
    for split in ("train", "test"):
        x, y = expected_arrays(written, split)
        assert torch.equal(getattr(d, f"{split}_x"), x)  # PNG is lossless: exact pixels
        assert torch.equal(getattr(d, f"{split}_y"), y)


def test_image_folder_second_load_reads_the_cache(folder, tmp_path, monkeypatch):
    root, _ = folder
    cache = tmp_path / "cache"
    first = load_image_folder(root, cache_dir=cache)

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded although the cache should have been used")

    monkeypatch.setattr(imagefolder_mod, "_decode", no_decoding)
    second = load_image_folder(root, cache_dir=cache)
    assert torch.equal(first.train_x, second.train_x) and torch.equal(first.test_y, second.test_y)
    assert list((cache / "image_folder").iterdir())[0].joinpath("train_x.npy").is_file()
    # The cached tensors are ordinary writable memory (not a read-only map of the cache).
    second.train_x[0, 0, 0, 0] = 0.5
    second.train_y[0] = 1


def test_image_folder_cache_follows_changes(folder, tmp_path):
    root, _ = folder
    cache = tmp_path / "cache"
    assert len(load_image_folder(root, cache_dir=cache).train_x) == 7
    Image.fromarray(np.zeros((6, 5, 3), dtype=np.uint8)).save(root / "train" / "ant" / "99.png")
    assert len(load_image_folder(root, cache_dir=cache).train_x) == 8
    # The stale entry of the same source is pruned; another source's entry stays.
    assert len(list((cache / "image_folder").iterdir())) == 1
    other = root.parent / "other"
    write_folder(other, {"train": {"a": 1, "b": 1}, "test": {"a": 1}})
    load_image_folder(other, cache_dir=cache)
    assert len(list((cache / "image_folder").iterdir())) == 2


def test_image_folder_default_cache_dir_from_env(folder, tmp_path, monkeypatch):
    root, _ = folder
    monkeypatch.setenv("RETHINK_CACHE", str(tmp_path / "envcache"))
    assert default_cache_dir() == tmp_path / "envcache"
    load_image_folder(root)
    assert any((tmp_path / "envcache" / "image_folder").iterdir())


def test_image_folder_broken_cache_is_rebuilt(folder, tmp_path):
    root, _ = folder
    cache = tmp_path / "cache"
    first = load_image_folder(root, cache_dir=cache)
    entry = next((cache / "image_folder").iterdir())
    (entry / "train_x.npy").write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="unreadable cache"):
        again = load_image_folder(root, cache_dir=cache)
    assert torch.equal(first.train_x, again.train_x)


@pytest.mark.parametrize("prefix", ["", "top/"])
def test_image_folder_from_tar_gz(folder, tmp_path, monkeypatch, prefix):
    root, _ = folder
    archive = tmp_path / "imgs.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname=prefix.rstrip("/") or ".")
    expected = load_image_folder(root, cache_dir=tmp_path / "c1")
    got = load_image_folder(archive, cache_dir=tmp_path / "c2")
    assert got.name == "imgs" and got.num_classes == 3
    assert torch.equal(got.train_x, expected.train_x) and torch.equal(got.test_y, expected.test_y)
    monkeypatch.setattr(imagefolder_mod, "_decode", lambda *a: (_ for _ in ()).throw(AssertionError("decoded")))
    assert torch.equal(load_image_folder(archive, cache_dir=tmp_path / "c2").train_x, expected.train_x)


def test_image_folder_tar_errors_name_the_member(tmp_path):
    root = tmp_path / "t"
    write_folder(root, {"train": {"a": 1, "b": 1}, "test": {"a": 1}})
    (root / "train" / "b" / "broken.jpg").write_bytes(b"nope")
    (root / "train" / ".hidden").mkdir()
    archive = tmp_path / "t.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname=".")
    with pytest.raises(DataError, match=r"cannot decode image .*t\.tgz:\./train/b/broken\.jpg"):
        load_image_folder(archive, cache_dir=tmp_path / "cache")
    empty = tmp_path / "e.tar.gz"
    with tarfile.open(empty, "w:gz") as tar:
        tar.add(root / "train" / ".hidden", arcname="train/.hidden")
        tar.add(root / "train" / "b", arcname="train/b", recursive=False)
    with pytest.raises(DataError, match=r"class folder .*e\.tar\.gz/train/b has no images"):
        load_image_folder(empty, cache_dir=tmp_path / "cache")


def test_image_folder_jpeg_and_gray_mixed_into_rgb(tmp_path):
    root = tmp_path / "mixed"
    write_folder(root, {"train": {"a": 2, "b": 1}, "test": {"a": 1}}, size=(8, 8), ext=".jpg")
    gray = np.full((8, 8), 200, dtype=np.uint8)
    Image.fromarray(gray, mode="L").save(root / "train" / "b" / "gray.png")
    d = load_image_folder(root, cache_dir=tmp_path / "cache")
    assert d.input_shape == (3, 8, 8) and len(d.train_x) == 4
    assert torch.allclose(d.train_x[3], torch.full((3, 8, 8), 200 / 255))  # "gray.png" sorts after "00.jpg"


def test_image_folder_grayscale_only_has_one_channel(tmp_path):
    root = tmp_path / "g"
    write_folder(root, {"train": {"a": 1, "b": 1}, "test": {"b": 1}}, mode="L")
    assert load_image_folder(root, cache_dir=tmp_path / "cache").input_shape == (1, 6, 5)


def test_image_folder_missing_root_says_where_and_layout(tmp_path):
    with pytest.raises(DataError) as info:
        load_image_folder(tmp_path / "nowhere", cache_dir=tmp_path / "cache")
    message = str(info.value)
    assert str(tmp_path / "nowhere") in message and "train/<class>" in message and ".tar.gz" in message


def test_image_folder_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"folder .*empty is empty"):
        load_image_folder(tmp_path / "empty", cache_dir=tmp_path / "cache")


def test_image_folder_class_without_images_named(folder, tmp_path):
    root, _ = folder
    (root / "train" / "eel").mkdir()
    (root / "train" / "eel" / "notes.txt").write_text("not an image")
    with pytest.raises(DataError) as info:
        load_image_folder(root, cache_dir=tmp_path / "cache")
    assert f"class folder {root / 'train' / 'eel'} has no images" in str(info.value)


def test_image_folder_split_without_classes_named(tmp_path):
    root = tmp_path / "only_train"
    write_folder(root, {"train": {"a": 1, "b": 1}})
    (root / "test").mkdir()
    with pytest.raises(DataError, match=r"only_train/test has no class folders"):
        load_image_folder(root, cache_dir=tmp_path / "cache")


def test_image_folder_unknown_test_class_named(tmp_path):
    root = tmp_path / "x"
    write_folder(root, {"train": {"a": 1, "b": 1}, "test": {"a": 1, "zebra": 1}})
    with pytest.raises(DataError, match=r"\['zebra'\]"):
        load_image_folder(root, cache_dir=tmp_path / "cache")


def test_image_folder_mixed_sizes_named(tmp_path):
    root = tmp_path / "sizes"
    write_folder(root, {"train": {"a": 1, "b": 1}, "test": {"a": 1}})
    Image.fromarray(np.zeros((9, 9, 3), dtype=np.uint8)).save(root / "train" / "b" / "big.png")
    with pytest.raises(DataError, match=r"big.png is 9x9 but .* is 6x5"):
        load_image_folder(root, cache_dir=tmp_path / "cache")


def test_image_folder_corrupt_image_named(tmp_path):
    root = tmp_path / "bad"
    write_folder(root, {"train": {"a": 1, "b": 1}, "test": {"a": 1}})
    (root / "train" / "a" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(DataError, match=r"cannot decode image .*broken.png"):
        load_image_folder(root, cache_dir=tmp_path / "cache")


def test_image_folder_plain_file_is_rejected(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("hello")
    with pytest.raises(DataError, match="not a tar archive"):
        load_image_folder(f, cache_dir=tmp_path / "cache")


# --------------------------------------------------------------------------- CIFAR-10 layout

def write_cifar(root: Path, n=3, bytes_keys=False) -> dict[str, np.ndarray]:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    parts = {"train_x": [], "train_y": [], "test_x": [], "test_y": []}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, n).tolist()
        batch = {b"data": data, b"labels": labels} if bytes_keys else {"data": data, "labels": labels}
        with open(folder / name, "wb") as fh:
            pickle.dump(batch, fh)
        split = "test" if name == "test_batch" else "train"
        parts[f"{split}_x"].append(data.reshape(n, 3, 32, 32))
        parts[f"{split}_y"].append(np.asarray(labels))
    return {k: np.concatenate(v) for k, v in parts.items()}


@pytest.mark.parametrize("bytes_keys", [False, True])
def test_cifar10_layout(tmp_path, bytes_keys):
    arrays = write_cifar(tmp_path, bytes_keys=bytes_keys)
    d = load_cifar10(tmp_path)
    assert d.name == "cifar10" and d.num_classes == 10 and d.train_x.shape == (15, 3, 32, 32)
    assert torch.equal(d.train_x, torch.from_numpy(arrays["train_x"]).float() / 255)
    assert torch.equal(d.test_y, torch.from_numpy(arrays["test_y"]))
    # The batches folder itself is accepted as root too.
    assert torch.equal(load_cifar10(tmp_path / "cifar-10-batches-py").test_x, d.test_x)


def test_cifar10_paper_preprocessing(tmp_path):
    write_cifar(tmp_path)
    d = load_cifar10(tmp_path, paper_preprocessing=True)
    assert d.input_shape == (3, 28, 28) and d.name == "cifar10+paper"
    assert torch.allclose(d.train_x.mean(dim=(1, 2, 3)), torch.zeros(15), atol=1e-5)


def test_cifar10_missing_root_says_where_and_how(tmp_path):
    with pytest.raises(DataError) as info:
        load_cifar10(tmp_path / "data")
    message = str(info.value)
    assert str(tmp_path / "data" / "cifar-10-batches-py") in message
    assert "download=True" in message and "load_image_folder" in message


def test_cifar10_missing_batch_and_corrupt_batch_named(tmp_path):
    write_cifar(tmp_path)
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="data_batch_3 is not a readable CIFAR-10 batch"):
        load_cifar10(tmp_path)
    batch.unlink()
    with pytest.raises(DataError, match="lacks data_batch_3"):
        load_cifar10(tmp_path)


# --------------------------------------------------------------------------- MNIST layout

def write_idx(path: Path, array: np.ndarray, compress: bool) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        payload = gzip.compress(payload)
    path.write_bytes(payload)


def write_mnist(root: Path, compress=False) -> dict[str, np.ndarray]:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    arrays = {"train_x": rng.integers(0, 256, (5, 28, 28)), "train_y": rng.integers(0, 10, 5),
              "test_x": rng.integers(0, 256, (3, 28, 28)), "test_y": rng.integers(0, 10, 3)}
    for key, stem in data_mod._MNIST_FILES.items():
        write_idx(raw / stem, arrays[key], compress)
    return arrays


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_layout(tmp_path, compress):
    arrays = write_mnist(tmp_path, compress)
    d = load_mnist(tmp_path)
    assert d.name == "mnist" and d.num_classes == 10 and d.train_x.shape == (5, 1, 28, 28)
    assert torch.equal(d.train_x[:, 0], torch.from_numpy(arrays["train_x"]).float() / 255)
    assert torch.equal(d.test_y, torch.from_numpy(arrays["test_y"]))


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_loads_without_a_warning(tmp_path, compress):
    """No "NumPy array is not writable" UserWarning: the idx bytes land in a writable buffer.

    torch warns about that only once per process, so the load runs in a fresh interpreter.
    """
    import subprocess
    import sys

    write_mnist(tmp_path, compress)
    stem = "train-images-idx3-ubyte" + (".gz" if compress else "")
    assert data_mod._read_idx(tmp_path / "MNIST" / "raw" / stem).flags.writeable
    code = ("import warnings; from rethink_checks.data import load_mnist\n"
            "with warnings.catch_warnings():\n"
            "    warnings.simplefilter('error')\n"
            f"    d = load_mnist({str(tmp_path)!r})\n"
            "assert d.train_x.shape == (5, 1, 28, 28)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Warning" not in proc.stderr


def test_mnist_missing_root_and_bad_file(tmp_path):
    with pytest.raises(DataError) as info:
        load_mnist(tmp_path / "m")
    assert str(tmp_path / "m" / "MNIST" / "raw") in str(info.value) and "download=True" in str(info.value)
    write_mnist(tmp_path)
    (tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x0d\x01")
    with pytest.raises(DataError, match="not an unsigned-byte IDX file"):
        load_mnist(tmp_path)
    (tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="lacks t10k-labels-idx1-ubyte"):
        load_mnist(tmp_path)


# --------------------------------------------------------------------------- spec strings

def _whitened(x: torch.Tensor) -> bool:
    """Every image has mean 0 and standard deviation 1."""
    n = len(x)
    return (torch.allclose(x.mean(dim=(1, 2, 3)), torch.zeros(n), atol=1e-5)
            and torch.allclose(x.std(dim=(1, 2, 3), unbiased=False), torch.ones(n), atol=1e-4))


def test_load_spec_sources_whiten_by_default(tmp_path):
    assert load("digits").name == "digits"
    write_cifar(tmp_path / "c")
    raw = load_cifar10(tmp_path / "c")
    d = load(f"cifar10:{tmp_path / 'c'}")
    assert d.input_shape == (3, 32, 32) and d.name == "cifar10"
    assert _whitened(d.train_x) and _whitened(d.test_x)
    assert torch.equal(d.train_x, whiten_images(raw.train_x)) and torch.equal(d.train_y, raw.train_y)
    assert torch.equal(load(f"cifar10:{tmp_path / 'c'},raw").train_x, raw.train_x)  # [0, 1] pixels, as loaded
    paper = load(f"cifar10:{tmp_path / 'c'},paper")
    assert paper.input_shape == (3, 28, 28) and torch.equal(paper.test_x, paper_preprocess(raw.test_x))
    write_mnist(tmp_path / "m")
    m = load(f" MNIST:{tmp_path / 'm'} ")
    assert m.input_shape == (1, 28, 28) and _whitened(m.train_x)
    assert torch.equal(load(f"mnist:{tmp_path / 'm'},raw").train_x, load_mnist(tmp_path / "m").train_x)


def test_load_spec_folder_with_paper_and_raw(tmp_path, monkeypatch):
    monkeypatch.setenv("RETHINK_CACHE", str(tmp_path / "cache"))
    write_folder(tmp_path / "f", {"train": {"a": 2, "b": 1}, "test": {"a": 1}}, size=(30, 30))
    whitened = load(f"folder:{tmp_path / 'f'}")
    assert whitened.input_shape == (3, 30, 30) and _whitened(whitened.train_x)
    raw = load(f"folder:{tmp_path / 'f'},raw")
    assert torch.equal(raw.train_x, load_image_folder(tmp_path / "f").train_x)
    assert raw.train_x.min() >= 0 and raw.train_x.max() <= 1
    d = load(f"folder:{tmp_path / 'f'},paper")
    assert d.input_shape == (3, 28, 28) and d.name == "f+paper"
    for loaded in (whitened, raw, d):  # every preprocessing of a real image source gets its defaults
        assert loaded.fit_defaults == IMAGE_FIT_DEFAULTS == {"max_epochs": 600}  # real images: a subset's budget
        assert loaded.check_defaults == IMAGE_CHECK_DEFAULTS == {"max_slowdown": 20.0}  # calibrated on the panel
    assert d.defaults == {"max_slowdown": 20.0, "max_epochs": 600}  # both, for CheckSettings.from_mapping
    assert load("digits").fit_defaults == DIGITS_FIT_DEFAULTS
    assert load("digits").defaults == {"max_slowdown": 20.0, "batch_size": 32, "max_epochs": 300}
    assert load("digits,raw").defaults == {}


@pytest.mark.parametrize("preprocess", ["auto", "paper", "none"])
def test_reproduction_preprocesses_unwhitened_pixels_itself(tmp_path, monkeypatch, preprocess):
    """The reproduction's --preprocess decides, on [0, 1] pixels: the spec's default whitening
    must not come first (none means raw; auto and paper mean exactly the paper's pipeline)."""
    from rethink_checks.reproduce import ReproduceOptions, prepare_data

    monkeypatch.setenv("RETHINK_CACHE", str(tmp_path / "cache"))
    write_folder(tmp_path / "f", {"train": {"a": 3, "b": 3}, "test": {"a": 2}}, size=(32, 32))
    raw = load_image_folder(tmp_path / "f")
    dataset, _, _, paper = prepare_data(ReproduceOptions(data=f"folder:{tmp_path / 'f'}", out=tmp_path / "o",
                                                         preprocess=preprocess))
    expected = raw.train_x if preprocess == "none" else paper_preprocess(raw.train_x)
    assert paper == (preprocess != "none") and torch.equal(dataset.train_x, expected)


@pytest.mark.parametrize("spec, needle", [
    ("", "expected one of 'digits'"),
    ("imagenet:/data", "unknown source 'imagenet'; allowed: digits, cifar10, mnist, folder"),
    ("cifar10", "'cifar10' needs a root"),
    ("digits:/x", "'digits' takes no root"),
    ("mnist:/x,paper", "option 'paper' is not allowed for 'mnist'; allowed: raw, download"),
    ("cifar10:/x,raw,paper", "options 'paper' and 'raw' exclude each other"),
    ("cifar10:/x,papr", "option 'papr' is not allowed"),
    ("digits,paper", "option 'paper' is not allowed for 'digits'; allowed: raw"),
    ("folder:/definitely/not/here", "does not exist"),
])
def test_load_spec_errors(spec, needle):
    with pytest.raises(DataError) as info:
        load(spec)
    assert needle in str(info.value)


def test_load_spec_download_reaches_torchvision(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(data_mod, "_torchvision_download", lambda cls, root: calls.append((cls, root)))
    with pytest.raises(DataError):
        load(f"cifar10:{tmp_path},download,paper")
    assert calls == [("CIFAR10", tmp_path)]


# --------------------------------------------------------------------------- the real CIFAR-10 copy

@pytest.mark.cifar
@pytest.mark.skipif(not SHARED_CIFAR.is_file(), reason=f"needs {SHARED_CIFAR}")
def test_real_cifar10_jpeg_archive():
    d = load_image_folder(SHARED_CIFAR)  # default cache: decoded once per machine
    assert d.train_x.shape == (50_000, 3, 32, 32) and d.test_x.shape == (10_000, 3, 32, 32)
    assert d.num_classes == 10
    assert torch.equal(d.train_y.bincount(), torch.full((10,), 5000))
    means = d.train_x.mean(dim=(0, 2, 3))
    assert torch.allclose(means, torch.tensor([0.4913, 0.4821, 0.4465]), atol=2e-3)
    assert isinstance(d, Dataset) and os.fspath(SHARED_CIFAR).endswith(".tar.gz")


def test_digits_spec_is_whitened_with_fit_defaults_and_raw_is_not():
    """The plugin's default data: per-image whitened digits plus a schedule that fits them."""
    from rethink_checks.data import DIGITS_FIT_DEFAULTS, load

    spec = load("digits")
    raw = load("digits,raw")
    assert spec.fit_defaults == DIGITS_FIT_DEFAULTS and raw.fit_defaults == {}
    per_image = spec.train_x.flatten(1)
    assert torch.allclose(per_image.mean(1), torch.zeros(len(per_image)), atol=1e-5)
    assert float(raw.train_x.min()) >= 0.0 and float(raw.train_x.max()) <= 1.0
    assert torch.equal(spec.train_y, raw.train_y)
    assert spec.subset(50, seed=1).fit_defaults == DIGITS_FIT_DEFAULTS
