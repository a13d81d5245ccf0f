"""Image folders and tar archives of them, decoded once into uint8 arrays and cached as ``.npy``.

Layout: ``ROOT/train/<class>/<image>`` and ``ROOT/test/<class>/<image>`` (or a ``.tar.gz`` of
one). Kept apart from ``rethink_checks.data``, which turns the arrays into a
:class:`~rethink_checks.data.Dataset` (``data.load_image_folder``) and re-exports
:func:`default_cache_dir` and :data:`IMAGE_EXTENSIONS`.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import uuid
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import DataError

__all__ = ["read_image_folder", "default_cache_dir", "IMAGE_EXTENSIONS"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm")
_SPLITS = ("train", "test")
_LAYOUT = "ROOT/train/<class>/<image> and ROOT/test/<class>/<image> (class order = sorted folder names)"


def default_cache_dir() -> Path:
    """Where decoded image folders are cached: $RETHINK_CACHE, else ~/.cache/rethink_checks."""
    env = os.environ.get("RETHINK_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "rethink_checks"


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith(".")


def _decode(data: bytes, where: str) -> np.ndarray:
    """One encoded image as a (C, H, W) uint8 array (torchvision's decoders, PIL as fallback)."""
    try:  # torchvision's decoders are the fastest here; they are deprecated, so PIL stays the fallback
        from torchvision.io import decode_image

        img = decode_image(torch.frombuffer(bytearray(data), dtype=torch.uint8)).numpy()
        return img[0] if img.ndim == 4 else img  # animated GIF: first frame
    except (ImportError, RuntimeError, ValueError):
        pass
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as img:
            if img.mode not in ("L", "LA", "RGB", "RGBA"):
                img = img.convert("RGBA" if "A" in img.getbands() else "RGB")
            arr = np.asarray(img, dtype=np.uint8)
    except Exception as exc:  # PIL raises many types for broken files
        raise DataError(f"load_image_folder: cannot decode image {where}: {exc}") from None
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def _split_members(entries: dict[str, dict[str, list]], dirs: set[tuple[str, str]], where: str) -> list[str]:
    """Check both splits and their class folders; return the class names (sorted train folders)."""
    for split in _SPLITS:
        classes = {c for s, c in dirs if s == split} | set(entries.get(split, {}))
        if not classes:
            raise DataError(f"load_image_folder: {where}/{split} has no class folders (or is missing); "
                            f"expected {_LAYOUT}")
        for cls in sorted(classes):
            if not entries.get(split, {}).get(cls):
                raise DataError(f"load_image_folder: class folder {where}/{split}/{cls} has no images "
                                f"(looked for {', '.join(IMAGE_EXTENSIONS)})")
    classes = sorted(entries["train"])
    extra = sorted(set(entries["test"]) - set(classes))
    if extra:
        raise DataError(f"load_image_folder: {where}/test has class folders {extra} that {where}/train lacks; "
                        f"expected test classes to be among the training classes {classes}")
    return classes


def _scan_folder(base: Path) -> tuple[dict[str, dict[str, list[Path]]], list[str]]:
    """Image paths per split and class under an extracted folder."""
    entries: dict[str, dict[str, list[Path]]] = {}
    dirs: set[tuple[str, str]] = set()
    for split in _SPLITS:
        top = base / split
        entries[split] = {}
        if not top.is_dir():
            continue
        for cls_dir in sorted(p for p in top.iterdir() if p.is_dir() and not p.name.startswith(".")):
            dirs.add((split, cls_dir.name))
            files = sorted(e.path for e in os.scandir(cls_dir) if e.is_file() and _is_image(e.name))
            if files:
                entries[split][cls_dir.name] = [Path(f) for f in files]
    return entries, _split_members(entries, dirs, str(base))


def _folder_base(root: Path) -> Path:
    """The folder holding train/ and test/: ``root`` itself or its single subfolder."""
    if (root / "train").is_dir() or (root / "test").is_dir():
        return root
    subs = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    if len(subs) == 1 and ((subs[0] / "train").is_dir() or (subs[0] / "test").is_dir()):
        return subs[0]
    if not any(root.iterdir()):
        raise DataError(f"load_image_folder: folder {root} is empty; expected {_LAYOUT}")
    raise DataError(f"load_image_folder: {root} has no train/ and test/ folders; expected {_LAYOUT}")


def _read_tar(path: Path) -> tuple[dict[str, dict[str, list[tuple[str, bytes]]]], list[str]]:
    """Encoded images per split and class read straight from a tar archive (no extraction to disk)."""
    entries: dict[str, dict[str, list[tuple[str, bytes]]]] = {s: {} for s in _SPLITS}
    dirs: set[tuple[str, str]] = set()
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                parts = [p for p in member.name.split("/") if p not in ("", ".")]
                if member.isdir() and len(parts) >= 2 and parts[-2] in _SPLITS and not parts[-1].startswith("."):
                    dirs.add((parts[-2], parts[-1]))
                if (not member.isfile() or len(parts) < 3 or parts[-3] not in _SPLITS
                        or parts[-2].startswith(".") or not _is_image(parts[-1])):
                    continue
                split, cls = parts[-3], parts[-2]
                dirs.add((split, cls))
                fh = tar.extractfile(member)
                entries[split].setdefault(cls, []).append((f"{path}:{member.name}", fh.read() if fh else b""))
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataError(f"load_image_folder: cannot read archive {path}: {exc}") from None
    for classes in entries.values():
        for items in classes.values():
            items.sort(key=lambda item: item[0])
    return entries, _split_members(entries, dirs, str(path))


def _cache_key(root: Path, base: Path | None) -> str:
    """Hash of the source: an archive's path, size and mtime, or every image file's path, size and mtime."""
    h = hashlib.sha256(f"v1|{root}".encode())
    if base is None:
        st = root.stat()
        h.update(f"|{st.st_size}|{st.st_mtime_ns}".encode())
    else:
        for split in _SPLITS:
            top = base / split
            if not top.is_dir():
                continue
            for cls in sorted(os.scandir(top), key=lambda e: e.name):
                if cls.is_dir():
                    for e in sorted(os.scandir(cls.path), key=lambda e: e.name):
                        st = e.stat()
                        h.update(f"|{split}/{cls.name}/{e.name}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:24]


def _decode_all(items: list[tuple[str, Any]], workers: int) -> list[np.ndarray]:
    """Decode (where, bytes-or-path) items with a thread pool, preserving order."""
    def one(item: tuple[str, Any]) -> np.ndarray:
        where, src = item
        data = Path(src).read_bytes() if isinstance(src, Path) else src
        return _decode(data, where)

    def chunk(part: list[tuple[str, Any]]) -> list[np.ndarray]:
        return [one(item) for item in part]

    if workers <= 1 or len(items) < 64:
        return chunk(items)
    parts = [items[i:i + 256] for i in range(0, len(items), 256)]  # threads' map() does not chunk
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return [img for done in pool.map(chunk, parts) for img in done]


def _stack(images: list[np.ndarray], wheres: list[str], channels: int) -> np.ndarray:
    """Stack (C, H, W) images into one uint8 array with ``channels`` channels; sizes must agree."""
    h, w = images[0].shape[1:]
    out = np.empty((len(images), channels, h, w), dtype=np.uint8)
    for i, img in enumerate(images):
        if img.shape[1:] != (h, w):
            raise DataError(f"load_image_folder: {wheres[i]} is {img.shape[1]}x{img.shape[2]} but "
                            f"{wheres[0]} is {h}x{w}; expected every image to have the same size (resize them)")
        c = img.shape[0]
        if c == channels or (channels == 3 and c == 4):
            out[i] = img[:channels]
        else:  # gray (+alpha) into a colour dataset: repeat the gray plane
            out[i] = img[:1]
    return out


def _decode_splits(entries: dict[str, dict[str, list]], classes: list[str]) -> dict[str, np.ndarray]:
    """Decode both splits into uint8 arrays and int64 labels."""
    workers = min(32, os.cpu_count() or 1)
    decoded = {}
    for split in _SPLITS:
        items, labels = [], []
        for label, cls in enumerate(classes):
            for entry in entries[split].get(cls, []):
                items.append((str(entry), entry) if isinstance(entry, Path) else entry)
                labels.append(label)
        with warnings.catch_warnings():  # torchvision >= 0.29 warns on every decode call
            warnings.filterwarnings("ignore", message="The image decoding and encoding", category=DeprecationWarning)
            images = _decode_all(items, workers)
        decoded[split] = (images, [w for w, _ in items], np.asarray(labels, dtype=np.int64))
    all_channels = {img.shape[0] for imgs, _, _ in decoded.values() for img in imgs}
    channels = 3 if any(c >= 3 for c in all_channels) else 1
    out = {}
    first = decoded["train"][1][0]
    h, w = decoded["train"][0][0].shape[1:]
    for split, (imgs, wheres, labels) in decoded.items():
        if imgs[0].shape[1:] != (h, w):
            raise DataError(f"load_image_folder: {wheres[0]} is {imgs[0].shape[1]}x{imgs[0].shape[2]} but "
                            f"{first} is {h}x{w}; expected every image to have the same size (resize them)")
        out[f"{split}_x"] = _stack(imgs, wheres, channels)
        out[f"{split}_y"] = labels
    return out


def _load_cache(folder: Path) -> tuple[dict[str, np.ndarray], list[str]] | None:
    """The cached arrays and class names, or None when absent or unreadable."""
    if not (folder / "meta.json").is_file():
        return None
    try:
        meta = json.loads((folder / "meta.json").read_text())
        # Images memory-mapped: from_tensors' uint8 -> float pass then reads them once, no extra copy.
        arrays = {k: np.load(folder / f"{k}.npy", mmap_mode="r" if k.endswith("_x") else None)
                  for k in ("train_x", "train_y", "test_x", "test_y")}
        return arrays, list(meta["classes"])
    except (OSError, ValueError, KeyError) as exc:
        warnings.warn(f"load_image_folder: ignoring unreadable cache {folder}: {exc}", stacklevel=4)
        return None


def _save_cache(folder: Path, arrays: dict[str, np.ndarray], classes: list[str], source: Path,
                replace_existing: bool = False) -> None:
    """Write the arrays atomically (temp folder + rename); warn instead of failing when not writable.

    A complete entry written meanwhile by another process is kept (readers may have it open)
    unless ``replace_existing`` says the entry on disk is broken.
    """
    tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        tmp.mkdir(parents=True)
        for key, arr in arrays.items():
            np.save(tmp / f"{key}.npy", arr)
        meta = {"source": str(source), "classes": classes,
                "train": int(len(arrays["train_y"])), "test": int(len(arrays["test_y"]))}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        if folder.exists():
            if (folder / "meta.json").is_file() and not replace_existing:
                return  # another process won the race; its entry is identical
            shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
        _prune_stale(folder, source)
    except OSError as exc:
        if not (folder / "meta.json").is_file():  # another process may have won the race
            warnings.warn(f"load_image_folder: could not write cache {folder}: {exc}", stacklevel=4)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _prune_stale(keep: Path, source: Path) -> None:
    """Remove older cache entries of the same source (it changed since), so the cache cannot grow without end."""
    for entry in keep.parent.iterdir():
        if entry == keep or not (entry / "meta.json").is_file():
            continue
        try:
            same = json.loads((entry / "meta.json").read_text()).get("source") == str(source)
        except (OSError, ValueError):
            continue
        if same:
            shutil.rmtree(entry, ignore_errors=True)


def _archive_stem(path: Path) -> str:
    name = path.name
    for suffix in (".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def read_image_folder(root: str | os.PathLike, cache_dir: str | os.PathLike | None = None
                      ) -> tuple[dict[str, np.ndarray], list[str], str]:
    """The decoded ``train_x, train_y, test_x, test_y`` arrays, the class names and the dataset name.

    Decoded uint8 arrays are cached under ``cache_dir`` (default: :func:`default_cache_dir`),
    keyed by the source's absolute path, sizes and mtimes, so later loads skip decoding.
    """
    root = Path(root).expanduser().resolve()
    if not root.exists():
        raise DataError(f"load_image_folder: root={str(root)!r} does not exist; expected a folder laid out as "
                        f"{_LAYOUT}, or a .tar.gz archive of one")
    is_archive = root.is_file()
    if is_archive and not tarfile.is_tarfile(root):
        raise DataError(f"load_image_folder: {root} is a file but not a tar archive; expected a folder "
                        f"({_LAYOUT}) or a .tar/.tar.gz of one")
    base = None if is_archive else _folder_base(root)
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    folder = cache / "image_folder" / _cache_key(root, base)
    cached = _load_cache(folder)
    if cached is None:
        broken = folder.exists()  # entries appear only complete (renamed into place): this one is unreadable
        entries, classes = _read_tar(root) if is_archive else _scan_folder(base)
        arrays = _decode_splits(entries, classes)
        _save_cache(folder, arrays, classes, root, replace_existing=broken)
    else:
        arrays, classes = cached
    return arrays, classes, _archive_stem(root) if is_archive else root.name
