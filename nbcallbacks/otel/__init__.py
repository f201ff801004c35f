"""OpenTelemetry in both directions: ``OpenTelemetrySink`` exports runs as spans, ``from_otel`` reads spans back.

- ``OpenTelemetrySink`` (``nbcallbacks.otel.export``): one span per run, GenAI and OpenInference attributes.
- ``spans_from_otel`` (``nbcallbacks.otel.sources``): spans from anything (``ReadableSpan`` objects, OTLP/JSON
  files, OTLP protobuf bytes) as ``OtelSpan`` objects (``nbcallbacks.otel.span``, the form both directions share).
- ``handler_from_otel`` / ``records_from_otel`` (``nbcallbacks.otel.importer``): those spans as nbcallbacks runs.
- ``run_span``: what a run record's span says (ids, name, kind, attributes, status, events), without the SDK.
- ``conventions``: every attribute name, once, and the GenAI semantic-conventions version followed.

Importing this package imports nothing from OpenTelemetry; the names below load their module when first used.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["OpenTelemetrySink", "handler_from_otel", "records_from_otel", "spans_from_otel"]

_WHERE = {
    "OpenTelemetrySink": "nbcallbacks.otel.export",
    "handler_from_otel": "nbcallbacks.otel.importer",
    "records_from_otel": "nbcallbacks.otel.importer",
    "spans_from_otel": "nbcallbacks.otel.sources",
}


def __getattr__(name: str) -> Any:
    """Load ``OpenTelemetrySink`` and the import functions on first use."""
    module = _WHERE.get(name)
    if module is None:
        msg = f"module 'nbcallbacks.otel' has no attribute {name!r}"
        raise AttributeError(msg)
    return getattr(importlib.import_module(module), name)
