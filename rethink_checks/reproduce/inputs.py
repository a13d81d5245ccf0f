"""The reproduction's data: a spec, a folder or an archive resolved to a ``data.load`` spec, loaded,
subset and preprocessed as :class:`~.options.ReproduceOptions` ask."""
from __future__ import annotations

import re
import tarfile
from pathlib import Path
from typing import Any

from ..errors import DataNotFoundError
from ..specs import PREPROCESSING_OPTIONS, SPEC_FORMS, SPEC_OPTIONS, DataSpec, parse_spec
from .options import ReproduceOptions

DIGITS_LABELS = {"digits": "digits (8x8, per-image whitened)",
                 "digits,raw": "digits (8x8, raw pixels in [0, 1])"}


class OptionError(ValueError):
    """A command-line value that only the loaded data shows to be wrong; names its option."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(message)
        self.option = option


def is_spec(data: str) -> bool:
    """Whether ``data`` is meant as a data spec rather than a path.

    A known kind before ``:`` or ``,`` (any case) is a spec; so are a blank value and any
    ``WORD:...`` that names no existing file, so that ``bogus:x`` and ``""`` are refused by
    :func:`parse_spec` as everywhere else.
    """
    if not data.strip():
        return True
    head = re.split(r"[:,]", data.strip(), maxsplit=1)[0].strip().lower()
    if head in SPEC_OPTIONS:
        return True
    return bool(re.match(r"^\s*[A-Za-z][\w.-]*:", data)) and not Path(data).expanduser().exists()


def _folder_spec(path: Path) -> str | None:
    """The ``data.load`` spec for a folder, looking one level down (archives add a top folder)."""
    for cand in (path, *sorted(p for p in path.iterdir() if p.is_dir())):
        if cand.name == "cifar-10-batches-py":
            return f"cifar10:{cand.parent}"
        if (cand / "cifar-10-batches-py").is_dir():
            return f"cifar10:{cand}"
        if (cand / "train").is_dir() and (cand / "test").is_dir():
            return f"folder:{cand}"
    return None


def resolve_data(data: str) -> tuple[str, str]:
    """(``data.load`` spec, label for the report) for a spec, a folder or a .tar(.gz) of one.

    A spec is validated by :func:`parse_spec` (its DataError, a ValueError, propagates); a
    path that is no usable file or folder raises DataNotFoundError (a FileNotFoundError).
    """
    label = "CIFAR-10 (JPEG re-encoded)" if "cifar10-jpg" in data else None
    if is_spec(data):
        parse_spec(data)
        return data, label or DIGITS_LABELS.get(data.strip().lower(), data)
    path = Path(data)
    if path.is_file() and tarfile.is_tarfile(path):
        spec = f"folder:{path.resolve()}"  # data.load_image_folder reads and caches archives
    elif path.is_dir():
        spec = _folder_spec(path)
    else:
        raise DataNotFoundError(f"{data!r} is no file or folder, nor a data spec ({SPEC_FORMS})")
    if spec is None:
        raise DataNotFoundError(f"{data!r}: found neither cifar-10-batches-py nor train/ and "
                                "test/ class folders in it (or one level down)")
    return spec, label or spec


def _subset(dataset: Any, options: ReproduceOptions) -> Any:
    """The seeded train/test subset; sizes beyond the data are an OptionError."""
    for option, size, have in (("--train-size", options.train_size, len(dataset.train_x)),
                               ("--test-size", options.test_size, len(dataset.test_x))):
        if size is not None and size > have:
            split = option[2:-5]
            raise OptionError(option, f"{size} {split} examples asked for, but the data has "
                                      f"{have}; allowed: 1 to {have}")
    if options.train_size is None and options.test_size is None:
        return dataset
    return dataset.subset(options.train_size or len(dataset.train_x), seed=options.seed,
                          n_test=options.test_size)


def _unwhitened(spec: str) -> DataSpec:
    """``spec`` loading [0, 1] pixels where it names no preprocessing: ``--preprocess`` decides
    here, not ``data.load``'s default whitening (the digits keep theirs, named by the spec)."""
    parsed = parse_spec(spec)
    if parsed.kind == "digits" or parsed.options & set(PREPROCESSING_OPTIONS):
        return parsed
    return DataSpec(parsed.kind, parsed.root, parsed.options | {"raw"})


def prepare_data(options: ReproduceOptions) -> tuple[Any, str, str, bool]:
    """(dataset, spec, label, paper preprocessing?): load, subset, preprocess CIFAR-like images.

    The data's own ``fit_defaults`` (the digits' batch 32 and 300 epochs) are not
    used: every run trains with the paper's schedule and the command's options.
    """
    from .. import data as data_mod

    spec, label = resolve_data(options.data)
    dataset = _subset(data_mod.load(_unwhitened(spec)), options)
    paper = options.preprocess == "paper" or (
        options.preprocess == "auto" and tuple(dataset.input_shape) == (3, 32, 32))
    if paper:
        dataset = dataset.map_inputs(data_mod.paper_preprocess)
    return dataset, spec, options.data_label or label, paper
