"""Where a file sink writes: its directory must exist."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


def check_parent(path: Path, kind: str) -> None:
    """Raise a ValueError naming ``kind`` and the path when the directory ``path`` would be written in is missing."""
    parent = path.parent
    if not parent.is_dir():
        msg = f"{kind} cannot write to {str(path)!r}: directory {str(parent)!r} does not exist"
        raise ValueError(msg)
