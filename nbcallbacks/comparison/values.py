"""Values of a run row as the comparison reads them: numbers, and outputs as text to compare."""

from __future__ import annotations

import json
import math
from typing import Any, Final

from nbcallbacks.missing import is_missing
from nbcallbacks.text import one_line

__all__ = ["as_float", "as_int", "delta", "epoch", "output_text", "shorten"]

_OUTPUT_CHARS: Final = 200
"""Characters of an output kept in the ``output_a``/``output_b`` columns."""


def as_float(value: Any) -> float | None:
    """A finite number, else None (missing values, booleans, text)."""
    if is_missing(value) or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def as_int(value: Any) -> int | None:
    """:func:`as_float`, truncated to an int."""
    number = as_float(value)
    return None if number is None else int(number)


_VOLATILE_KEYS: Final = frozenset({"id", "tool_call_id", "run_id"})
"""Keys whose values differ between any two runs (message and call ids): left out of compared output text."""


def _stable(value: Any, depth: int = 0) -> Any:
    """``value`` without the ids that differ between any two runs, so equal outputs compare equal."""
    if depth > 50:  # noqa: PLR2004 - previews are at most 50 levels deep
        return value
    if isinstance(value, dict):
        return {k: _stable(v, depth + 1) for k, v in value.items() if k not in _VOLATILE_KEYS}
    if isinstance(value, list):
        return [_stable(v, depth + 1) for v in value]
    return value


def output_text(value: Any) -> str:
    """A run's output preview as text to compare: a message's content (and tool calls), a string, or compact JSON.

    Message and tool-call ids (different in every run) are left out.
    """
    if not isinstance(value, (dict, list)) and is_missing(value):
        return ""
    value = _stable(value)
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        content = value.get("content")
        if isinstance(content, str) and ("type" in value or "tool_calls" in value):
            calls = value.get("tool_calls")
            if calls:
                return (content + "\n" if content else "") + "tool calls: " + _json(calls)
            return content
        if len(value) == 1:
            (only,) = value.values()
            if isinstance(only, str):
                return only
    return _json(value)


def _json(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


def shorten(text: str, limit: int = _OUTPUT_CHARS) -> str:
    """``text`` on one line, cut to ``limit`` characters (``nbcallbacks.text.one_line``)."""
    return one_line(text, limit)


def epoch(value: Any) -> float | None:
    """A time (a pandas Timestamp, a datetime, or seconds) as seconds since the epoch; None when missing."""
    if is_missing(value):
        return None
    timestamp = getattr(value, "timestamp", None)
    return as_float(timestamp() if callable(timestamp) else value)


def delta(a: float | None, b: float | None) -> float | None:
    """``b - a``, or None unless both are known."""
    return None if a is None or b is None else b - a
