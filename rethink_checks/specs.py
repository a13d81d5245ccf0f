"""The data-spec grammar, ``KIND[:ROOT][,OPTION...]``, parsed in one place and without torch.

``data.load``, the plugin's ``--rethink-data`` / ini ``rethink_data`` validation, its
``rethink_data`` fixture check and the reproduction command all call :func:`parse_spec`, so a
spec string is accepted or refused identically everywhere. Kept free of torch (and of every
heavy import) so the pytest plugin can validate a spec before anything else is loaded;
:mod:`rethink_checks.data` re-exports both names.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import DataError

__all__ = ["DataSpec", "parse_spec", "SPEC_OPTIONS", "SPEC_FORMS", "PREPROCESSING_OPTIONS"]

#: Spec kinds and the options each accepts after a comma.
SPEC_OPTIONS: dict[str, tuple[str, ...]] = {
    "digits": ("raw",), "cifar10": ("paper", "raw", "download"), "mnist": ("raw", "download"),
    "folder": ("paper", "raw"),
}
#: Options that choose the preprocessing; at most one per spec (whitening when none).
PREPROCESSING_OPTIONS = ("paper", "raw")
#: The spec forms, as the error messages list them.
SPEC_FORMS = ("digits, digits,raw, cifar10:ROOT[,paper|,raw][,download], mnist:ROOT[,raw][,download], "
              "folder:ROOT[,paper|,raw] (ROOT may be a .tar.gz for folder)")
_OPTION_WORD = re.compile(r"[a-z_]+")


@dataclass(frozen=True)
class DataSpec:
    """A parsed data spec: the source ``kind`` (lower case), its ``root`` ("" for digits) and options."""

    kind: str
    root: str = ""
    options: frozenset[str] = frozenset()

    def __str__(self) -> str:
        """The canonical spec string (kind lower case, options sorted)."""
        text = f"{self.kind}:{self.root}" if self.root else self.kind
        return ",".join([text, *sorted(self.options)])


def parse_spec(spec: str) -> DataSpec:
    """Split and validate ``KIND[:ROOT][,OPTION...]``; the kind is case-insensitive.

    Checks the kind, each option against :data:`SPEC_OPTIONS`, that ``digits`` has no root
    and that every other kind has one. Touches no file: whether ROOT holds data is
    :func:`rethink_checks.data.load`'s business. Raises :class:`DataError` naming the spec
    and what is allowed.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise DataError(f"spec={spec!r} is not allowed; expected one of 'digits', 'cifar10:ROOT', "
                        f"'mnist:ROOT', 'folder:ROOT' (options: ',paper', ',raw', ',download'); forms: {SPEC_FORMS}")
    text = spec.strip()
    head, sep, rest = text.partition(":")
    kind = head.strip().lower()
    if not sep and "," in kind:
        kind, _, rest = text.partition(",")
        kind, rest = kind.strip().lower(), "," + rest
    if kind not in SPEC_OPTIONS:
        raise DataError(f"spec={spec!r}: unknown source {kind!r}; allowed: {', '.join(SPEC_OPTIONS)} "
                        f"(forms: {SPEC_FORMS})")
    options: set[str] = set()
    while "," in rest:
        path, _, tail = rest.rpartition(",")
        word = tail.strip().lower()
        if not _OPTION_WORD.fullmatch(word):
            break
        if word not in SPEC_OPTIONS[kind]:
            allowed = ", ".join(SPEC_OPTIONS[kind]) or "none"
            raise DataError(f"spec={spec!r}: option {word!r} is not allowed for {kind!r}; allowed: {allowed}")
        options.add(word)
        rest = path
    chosen = sorted(options.intersection(PREPROCESSING_OPTIONS))
    if len(chosen) > 1:
        raise DataError(f"spec={spec!r}: options {' and '.join(repr(o) for o in chosen)} exclude each other; "
                        "choose one preprocessing (',paper' crops and whitens, ',raw' keeps [0, 1] pixels, "
                        "with neither option images are whitened)")
    root = rest.strip()
    if kind == "digits" and (root or sep):
        raise DataError(f"spec={spec!r}: 'digits' takes no root (it is bundled with scikit-learn); "
                        "allowed: digits, digits,raw")
    if kind != "digits" and not root:
        raise DataError(f"spec={spec!r}: {kind!r} needs a root, e.g. '{kind}:/path/to/data'")
    return DataSpec(kind, root, frozenset(options))
