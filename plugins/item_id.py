"""The node id of a generated item, ``<module>::rethink[<check>(-<param>)]``: one format, one parse.

Collection builds it, and the xdist scheduler (one scope per model), the crash handler (the
entry of an item whose worker died), the recorder and the session's item count read it back
with :meth:`ItemId.parse`. Imports neither torch nor rethink_checks.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

__all__ = ["ItemId", "FUNCTION_NAME"]

FUNCTION_NAME = "rethink"
_MARK = f"::{FUNCTION_NAME}["


@dataclass(frozen=True)
class ItemId:
    """One item: its module's node id, its check, and the fixture parameter id (or "")."""

    module: str
    check: str
    param: str = ""

    def __str__(self) -> str:
        return f"{self.module}{_MARK}{self.check}{'-' + self.param if self.param else ''}]"

    @property
    def model_key(self) -> str:
        """The model's unique key: module node id, plus ``[param]`` when parametrized."""
        return self.module + (f"[{self.param}]" if self.param else "")

    @property
    def model(self) -> str:
        """The model's display name: the module's stem, plus ``[param]``."""
        return PurePosixPath(self.module).stem + (f"[{self.param}]" if self.param else "")

    @staticmethod
    def is_item(nodeid: str) -> bool:
        """Whether ``nodeid`` is a generated rethink item."""
        return _MARK in nodeid

    @staticmethod
    def plain(nodeid: str) -> str:
        """``nodeid`` without an xdist ``@group`` suffix."""
        module, sep, rest = nodeid.partition(_MARK)
        return module + sep + rest.split("@", 1)[0] if sep else nodeid

    @classmethod
    def parse(cls, nodeid: str, checks: tuple[str, ...] | list[str]) -> "ItemId | None":
        """The ItemId of ``nodeid``, or None for another test (or an unknown check).

        ``checks`` are the known names: the longest one that starts the bracket is the check
        and what follows its ``-`` the fixture parameter (which may hold ``-`` itself).
        """
        module, sep, rest = cls.plain(nodeid).partition(_MARK)
        if not sep or not rest.endswith("]"):
            return None
        ident = rest[:-1]
        check = max((c for c in checks if ident == c or ident.startswith(c + "-")), key=len,
                    default=None)
        if check is None:
            return None
        return cls(module, check, ident[len(check) + 1:])
