"""``OtelSpan``: one span in a neutral form, the meeting point of both directions.

The export builds one from a run record (``run_span``) before handing it to the SDK's tracer; the import reads one
from any source (``sources``) before mapping it to a run record (``importer``). Plain data: no OpenTelemetry import.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["OtelSpan"]


@dataclass
class OtelSpan:
    """One span, whatever it was read from (ids as integers, times in nanoseconds since the epoch)."""

    trace_id: int
    span_id: int
    parent_span_id: int | None
    name: str
    start_ns: int
    end_ns: int | None
    attributes: dict[str, Any] = field(default_factory=dict)
    status_code: str = "UNSET"
    status_message: str | None = None
    events: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)
    kind: str = "INTERNAL"
