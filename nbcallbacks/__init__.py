"""nbcallbacks: every LangChain and LangGraph run, live, inside the notebook cell that started it."""

from __future__ import annotations

from nbcallbacks.events import Limits

__all__ = ["Limits"]
__version__ = "0.1.0"
