"""nbcallbacks: every LangChain and LangGraph run, live, inside the notebook cell that started it.

``NotebookHandler`` records runs (attach it with ``config={"callbacks": [h]}`` or ``with trace() as h:``) and shows
them in a live widget; ``h.runs_dataframe()`` / ``h.to_dataframe()`` export them to pandas.
``NotebookHandler(sinks=[SQLiteSink("runs.db")])`` keeps a history too: ``history("runs.db")`` lists it,
``NotebookHandler.load("runs.db")`` replays it.
"""

from __future__ import annotations

import importlib
from typing import Any

from nbcallbacks.events import Limits
from nbcallbacks.handler import NotebookHandler, ametric, metric, trace
from nbcallbacks.history import history
from nbcallbacks.sinks import JSONLSink, LoggingSink, Sink, SQLiteSink
from nbcallbacks.version import __version__

__all__ = [
    "JSONLSink",
    "Limits",
    "LoggingSink",
    "NotebookHandler",
    "SQLiteSink",
    "Sink",
    "__version__",
    "ametric",
    "history",
    "metric",
    "trace",
]

_LAZY_SUBMODULES = frozenset({"demo", "plot", "export"})


def __getattr__(name: str) -> Any:
    """``nbcallbacks.plot`` / ``nbcallbacks.demo`` without importing Plotly or LangGraph up front."""
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"nbcallbacks.{name}")
    msg = f"module 'nbcallbacks' has no attribute {name!r}"
    raise AttributeError(msg)
