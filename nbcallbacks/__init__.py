"""nbcallbacks: every LangChain and LangGraph run, live, inside the notebook cell that started it.

``NotebookHandler`` records runs (attach it with ``config={"callbacks": [h]}`` or ``with trace() as h:``) and shows
them in a live widget; ``h.runs_dataframe()`` / ``h.to_dataframe()`` export them to pandas.
``NotebookHandler(sinks=[SQLiteSink("runs.db")])`` keeps a history too: ``history("runs.db")`` lists it,
``NotebookHandler.load("runs.db")`` replays it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from nbcallbacks.events import Limits
from nbcallbacks.handler import NotebookHandler, ametric, metric, trace
from nbcallbacks.history import history
from nbcallbacks.sinks import JSONLSink, LoggingSink, Sink, SQLiteSink
from nbcallbacks.version import __version__

if TYPE_CHECKING:
    from nbcallbacks.otel.export import OpenTelemetrySink

__all__ = [
    "JSONLSink",
    "Limits",
    "LoggingSink",
    "NotebookHandler",
    "OpenTelemetrySink",
    "SQLiteSink",
    "Sink",
    "__version__",
    "ametric",
    "compare",
    "history",
    "metric",
    "trace",
]

_LAZY_SUBMODULES = frozenset({"demo", "plot", "export", "otel", "share"})


def __getattr__(name: str) -> Any:
    """``nbcallbacks.plot`` / ``nbcallbacks.demo`` / ``OpenTelemetrySink`` without importing their dependencies."""
    if name == "OpenTelemetrySink":  # the OpenTelemetry SDK only when asked for (pip install "nbcallbacks[otel]")
        from nbcallbacks.otel.export import OpenTelemetrySink  # noqa: PLC0415 - lazy on purpose

        return OpenTelemetrySink
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"nbcallbacks.{name}")
    if name == "compare":  # nbcallbacks.compare(a, b), without importing pandas up front
        return importlib.import_module("nbcallbacks.comparison").compare
    msg = f"module 'nbcallbacks' has no attribute {name!r}"
    raise AttributeError(msg)
