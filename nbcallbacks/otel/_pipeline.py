"""The SDK side of ``OpenTelemetrySink``: the tracer's chosen ids and the bounded, counting export pipeline.

``default_provider`` builds the ``TracerProvider`` the sink uses when it is given none (``endpoint=`` mode): the
OTLP/HTTP exporter behind a batch processor that never holds more than ``max_queue_size`` spans and counts what it
drops, exports and fails on (``sink_status()`` reports the counts).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from nbcallbacks.otel._sdk import INSTALL_HINT, require_sdk

require_sdk()

from opentelemetry.sdk.resources import Resource  # noqa: E402 - after the clear ImportError above
from opentelemetry.sdk.trace import SpanLimits, SpanProcessor, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import (  # noqa: E402
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.id_generator import IdGenerator  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from opentelemetry import context as context_api
    from opentelemetry.sdk.trace import ReadableSpan

__all__ = ["BoundedBatchProcessor", "ChosenIds", "CountingExporter", "default_provider"]


# --- the ids of the span about to start


class ChosenIds(IdGenerator):
    """Hands the tracer the ids the sink chose for the span it is about to start (one worker thread)."""

    def __init__(self) -> None:
        self.trace_id = 0
        self.span_id = 0

    def generate_span_id(self) -> int:
        return self.span_id

    def generate_trace_id(self) -> int:
        return self.trace_id

    def is_trace_id_random(self) -> bool:
        return False


# --- the bounded export pipeline of endpoint= mode


class CountingExporter(SpanExporter):
    """Counts what the wrapped exporter took and what it failed on."""

    def __init__(self, exporter: SpanExporter) -> None:
        self.exporter = exporter
        self.lock = threading.Lock()
        self.exported = 0
        self.failed = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self.exporter.export(spans)
        except Exception:  # noqa: BLE001 - an exporter's failure is counted, never raised into the SDK thread
            result = SpanExportResult.FAILURE
        with self.lock:
            if result is SpanExportResult.SUCCESS:
                self.exported += len(spans)
            else:
                self.failed += len(spans)
        return result

    @property
    def done(self) -> int:
        return self.exported + self.failed

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.exporter.force_flush(timeout_millis)


class BoundedBatchProcessor(SpanProcessor):
    """A ``BatchSpanProcessor`` that never holds more than ``max_queue_size`` spans, and counts what it drops.

    The SDK's own processor drops silently (a log line) when its queue is full; this one counts spans handed on
    minus spans the exporter finished with, and drops (counted) before the SDK would.
    """

    def __init__(self, exporter: SpanExporter, max_queue_size: int, schedule_delay_millis: float) -> None:
        self.counter = CountingExporter(exporter)
        self.max_queue_size = max_queue_size
        self.inner = BatchSpanProcessor(
            self.counter,
            max_queue_size=max_queue_size,
            schedule_delay_millis=schedule_delay_millis,
            max_export_batch_size=min(512, max_queue_size),
        )
        self.handed = 0
        self.dropped = 0

    def on_start(self, span: Any, parent_context: context_api.Context | None = None) -> None:
        """Nothing to do when a span starts."""

    def on_end(self, span: ReadableSpan) -> None:
        if self.handed - self.counter.done >= self.max_queue_size:
            self.dropped += 1
            return
        self.handed += 1
        self.inner.on_end(span)

    @property
    def queued(self) -> int:
        return max(0, self.handed - self.counter.done)

    def shutdown(self) -> None:
        self.inner.shutdown()  # type: ignore[no-untyped-call]

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis)


# --- the provider of endpoint= mode


def default_provider(  # noqa: PLR0913 - the sink's settings, passed on
    *,
    endpoint: str | None,
    headers: Mapping[str, str] | None,
    max_attribute_chars: int,
    max_queue_size: int,
    export_timeout: float,
    schedule_delay: float,
) -> tuple[TracerProvider, BoundedBatchProcessor]:
    """The sink's own provider: resource, attribute limit, OTLP/HTTP exporter behind the bounded processor."""
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: PLC0415
    except ImportError as exc:
        msg = (
            "OpenTelemetrySink without tracer_provider= exports over OTLP/HTTP, which needs "
            f"opentelemetry-exporter-otlp-proto-http: {INSTALL_HINT}"
        )
        raise ImportError(msg) from exc
    from nbcallbacks import __version__  # noqa: PLC0415 - the package imports this module lazily

    resource = Resource.create({"service.version": __version__})
    if str(resource.attributes.get("service.name", "unknown_service")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": "nbcallbacks"}))  # OTEL_SERVICE_NAME wins when set
    provider = TracerProvider(  # shut down by the sink's close(), after it exported the runs left open
        resource=resource, span_limits=SpanLimits(max_attribute_length=max_attribute_chars), shutdown_on_exit=False
    )
    exporter = OTLPSpanExporter(endpoint=endpoint, headers=dict(headers) if headers else None, timeout=export_timeout)
    processor = BoundedBatchProcessor(exporter, max_queue_size, schedule_delay * 1000)
    provider.add_span_processor(processor)
    return provider, processor
