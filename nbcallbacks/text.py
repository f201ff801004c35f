"""Safe text: every string nbcallbacks keeps must be encodable (UTF-8 wires, files and databases).

Standard library only; used by every layer that turns outside values into kept text.
"""

from __future__ import annotations

import re
from typing import Any, Final

_LONE_SURROGATE: Final = re.compile(r"[\ud800-\udfff]")


def clean(text: str) -> str:
    """``text`` with lone surrogates (which no UTF-8 wire can carry) replaced by U+FFFD."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _LONE_SURROGATE.sub("\ufffd", text)
    return text


def safe_str(value: Any) -> str:
    """``str(value)`` for a name, tag or label: never raises, always encodable."""
    try:
        text = str(value)
    except Exception:  # noqa: BLE001 - a name whose str() raises must not cost the run
        return f"<{type(value).__name__}>"
    return clean(text)


def one_line(text: str, limit: int) -> str:
    """``text`` on one line (whitespace runs as one space), cut to ``limit`` characters (an ellipsis marks a cut)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
