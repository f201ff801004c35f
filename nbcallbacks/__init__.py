"""nbcallbacks: every LangChain and LangGraph run, live, inside the notebook cell that started it.

``NotebookHandler`` records runs (attach it with ``config={"callbacks": [h]}`` or ``with trace() as h:``) and shows
them in a live widget; ``h.runs_dataframe()`` / ``h.to_dataframe()`` export them to pandas.
"""

from __future__ import annotations

from nbcallbacks.events import Limits
from nbcallbacks.handler import NotebookHandler, ametric, metric, trace

__all__ = ["Limits", "NotebookHandler", "ametric", "metric", "trace"]
__version__ = "0.1.0"
