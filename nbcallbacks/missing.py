"""Whether a value read from a runs DataFrame row or a record is missing. Standard library only."""

from __future__ import annotations

from typing import Any

__all__ = ["is_missing"]


def is_missing(value: Any) -> bool:
    """True for None, NaN, NaT and ``pandas.NA`` (and for a value that cannot even be compared with itself)."""
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN, NaT, pandas.NA  # noqa: PLR0124 - the NaN test
    except (TypeError, ValueError):
        return True
