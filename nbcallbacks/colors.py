"""The run-type colours every view shares: the Plotly charts (`nbcallbacks.plot`) and the comparison view.

Standard library only, so a view can import it without Plotly or pandas.
"""

from __future__ import annotations

from typing import Final

__all__ = ["ERROR_COLOR", "OTHER_COLOR", "RUN_TYPE_COLORS"]

RUN_TYPE_COLORS: Final[dict[str, str]] = {
    "chain": "#4C78A8",
    "chat_model": "#F58518",
    "llm": "#B279A2",
    "tool": "#54A24B",
    "retriever": "#72B7B2",
    "prompt": "#9D755D",
    "parser": "#BAB0AC",
}
"""Bar colour of each run type (colour-blind safe, readable on light and dark themes)."""

OTHER_COLOR: Final = "#888888"
"""Colour of a run type not listed in `RUN_TYPE_COLORS`."""

ERROR_COLOR: Final = "#D62728"
"""Outline and marker colour of runs that failed."""
