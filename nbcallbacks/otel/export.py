"""``OpenTelemetrySink``: one OpenTelemetry span per run, built off the hot path from the sink's run records.

The sink is an ordinary nbcallbacks sink: the handler's ``SinkWriter`` hands it run records on the sink's own worker
thread, and it turns each run that ended into a span with the run's own start and end times. What a run's span says
(ids, name, kind, attributes, status, events) is ``nbcallbacks.otel.run_span``; the provider it builds when given
none, and the counting export pipeline, are ``nbcallbacks.otel._pipeline``. Span ids are derived from run ids, so a
span's parent is its parent run's span whatever order runs end in, and no span has to wait for another.

The only work on the chain's thread is ``on_root_start``: when a root run starts, the sink notes the caller's active
OpenTelemetry span (if any), so that the run's tree nests under it.
"""

from __future__ import annotations

import contextlib
import copy
import threading
from typing import TYPE_CHECKING, Any, Final

from nbcallbacks.otel import conventions as sc
from nbcallbacks.otel._sdk import require_sdk
from nbcallbacks.otel.run_span import Lineage, span_id_of, span_of_run, trace_id_of

require_sdk()

from opentelemetry import context as context_api  # noqa: E402 - after the clear ImportError above
from opentelemetry import trace as trace_api  # noqa: E402

from nbcallbacks.otel._pipeline import BoundedBatchProcessor, ChosenIds, default_provider  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "DEFAULT_MAX_ATTRIBUTE_CHARS",
    "DEFAULT_MAX_QUEUE_SIZE",
    "OpenTelemetrySink",
    "SpanExportError",
    "span_id_of",
    "trace_id_of",
]

DEFAULT_MAX_ATTRIBUTE_CHARS: Final = 4_096
"""Characters kept of any one string attribute (content, metadata, tracebacks)."""

DEFAULT_MAX_QUEUE_SIZE: Final = 2_048
"""Spans that may wait for the OTLP exporter (``endpoint=`` mode) before new ones are dropped and counted."""

_MAX_OUTER: Final = 10_000
"""Root runs whose caller's span is remembered (a late child of a finished root still joins its trace)."""


class SpanExportError(RuntimeError):
    """Spans were dropped (the export backlog was full) or the exporter failed on them; counted in sink_status()."""


class OpenTelemetrySink:
    """Sends every run to OpenTelemetry as one span (GenAI and OpenInference attributes), off the chain's thread.

    ``NotebookHandler(sinks=[OpenTelemetrySink(endpoint="http://127.0.0.1:6006/v1/traces")])``.

    Args:
        tracer_provider: an OpenTelemetry SDK ``TracerProvider``: spans go through its processors, exporters and
            resource. ``None`` builds one with a bounded batch processor and the OTLP/HTTP exporter.
        endpoint: the OTLP/HTTP traces URL for the built provider (``None``: the standard
            ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_ENDPOINT`` variables, else localhost:4318).
        headers: HTTP headers for the built provider's exporter (e.g. ``{"x-mlflow-experiment-id": "1"}``;
            ``None``: ``OTEL_EXPORTER_OTLP_HEADERS``).
        capture_content: also send inputs, outputs and messages (``input.value``, ``output.value``,
            ``gen_ai.input.messages``, ``gen_ai.output.messages``); off by default.
        max_attribute_chars: characters kept of any one string attribute.
        max_queue_size: spans the built provider may hold for the exporter; past that, spans are dropped and
            counted in ``sink_status()``.
        export_timeout: seconds one OTLP request may take (built provider).
        schedule_delay: seconds the built provider's batch processor waits to gather spans.

    Runs that ended become spans as soon as the sink receives them. A run still open is exported, marked
    ``nbcallbacks.incomplete=true``, when the handler is flushed after the run was flagged abandoned (its cell
    ended without it), and in any case when the handler closes; a run is exported once.
    """

    shares_records = True
    """Only reads the records it is given (see ``nbcallbacks.sinks.Sink``): no copies are made for it."""

    def __init__(  # noqa: PLR0913 - configuration, all keyword-only but the provider
        self,
        tracer_provider: Any = None,
        *,
        endpoint: str | None = None,
        headers: Mapping[str, str] | None = None,
        capture_content: bool = False,
        max_attribute_chars: int = DEFAULT_MAX_ATTRIBUTE_CHARS,
        max_queue_size: int = DEFAULT_MAX_QUEUE_SIZE,
        export_timeout: float = 10.0,
        schedule_delay: float = 0.5,
    ) -> None:
        """Build the span pipeline now, so a bad configuration fails here and not in the background."""
        if not isinstance(max_attribute_chars, int) or max_attribute_chars < 16:  # noqa: PLR2004 - room for a marker
            msg = f"max_attribute_chars must be an int >= 16, got {max_attribute_chars!r}"
            raise ValueError(msg)
        if not isinstance(max_queue_size, int) or max_queue_size < 1:
            msg = f"max_queue_size must be a positive int, got {max_queue_size!r}"
            raise ValueError(msg)
        self.capture_content = capture_content
        self.max_attribute_chars = max_attribute_chars
        self.endpoint = endpoint
        self.export_timeout = export_timeout
        self._processor: BoundedBatchProcessor | None = None
        if tracer_provider is None:
            tracer_provider, self._processor = default_provider(
                endpoint=endpoint,
                headers=headers,
                max_attribute_chars=max_attribute_chars,
                max_queue_size=max_queue_size,
                export_timeout=export_timeout,
                schedule_delay=schedule_delay,
            )
            self._owns_provider = True
        else:
            if endpoint is not None or headers is not None:
                msg = "endpoint= and headers= configure the sink's own provider; with tracer_provider= they are unused"
                raise ValueError(msg)
            self._owns_provider = False
        self.tracer_provider = tracer_provider
        from nbcallbacks import __version__  # noqa: PLC0415 - the package imports this module lazily

        tracer = tracer_provider.get_tracer(sc.INSTRUMENTATION_NAME, __version__, schema_url=sc.SCHEMA_URL)
        if not hasattr(tracer, "id_generator"):
            msg = (
                "OpenTelemetrySink needs an OpenTelemetry SDK TracerProvider (opentelemetry.sdk.trace.TracerProvider) "
                f"to give spans their run-derived ids; got {type(tracer_provider).__name__}"
            )
            raise TypeError(msg)
        self._ids = ChosenIds()
        self._tracer = copy.copy(tracer)  # our own copy: the provider's cached tracer keeps its id generator
        self._tracer.id_generator = self._ids
        self._lineage = Lineage()
        self._open: dict[str, dict[str, Any]] = {}
        self._exported: set[str] = set()
        self._outer: dict[str, trace_api.SpanContext] = {}
        self._session: str | None = None
        self._lock = threading.Lock()
        self._reported_losses = (0, 0)
        self.spans_ended = 0
        self.spans_incomplete = 0
        self.span_errors = 0

    def describe(self) -> str:
        """Name shown in ``sink_status()`` and handler errors."""
        return f"OpenTelemetrySink({self.endpoint})" if self.endpoint else "OpenTelemetrySink"

    def __repr__(self) -> str:
        """``OpenTelemetrySink(endpoint=...)``."""
        return f"OpenTelemetrySink(endpoint={self.endpoint!r}, capture_content={self.capture_content})"

    # --- the chain's thread (keep tiny)

    def on_root_start(self, run_id: str) -> None:
        """Note the caller's active span when a root run starts, so the run's tree nests under it."""
        span_context = trace_api.get_current_span().get_span_context()
        if span_context.is_valid:
            outer = self._outer
            outer[str(run_id)] = span_context
            if len(outer) > _MAX_OUTER:  # roots that never ended: forget the oldest
                with contextlib.suppress(StopIteration, KeyError, RuntimeError):
                    del outer[next(iter(outer))]

    # --- the worker thread

    def open(self, session: dict[str, Any]) -> None:
        """Keep the session id (written on every span)."""
        self._session = session.get("session")

    def write(self, batch: list[dict[str, Any]]) -> None:
        """Export every run of the batch that ended (runs still open wait for their end, flush or close)."""
        runs = [record for record in batch if record.get("kind") == "run"]
        with self._lock:
            for record in runs:  # first learn the whole tree of the batch: a parent may come before its children
                self._lineage.learn(record)
            ended = []
            for record in runs:
                run_id = record["run_id"]
                if run_id in self._exported:
                    continue
                if record.get("end") is None:
                    self._open[run_id] = record
                else:
                    self._open.pop(run_id, None)
                    ended.append(record)
            ended.sort(key=lambda r: r["end"])  # in the order they ended: children before their parents
            for record in ended:
                self._export(record, incomplete=False)

    def flush(self) -> None:
        """Export runs flagged abandoned (as incomplete spans), then flush the span processors."""
        with self._lock:
            for run_id, record in list(self._open.items()):
                if record.get("abandoned"):
                    del self._open[run_id]
                    self._export(record, incomplete=True)
        self._force_flush()
        self._report_losses()

    def close(self) -> None:
        """Export every run still open (as incomplete spans), flush, and shut down the sink's own provider."""
        with self._lock:
            for record in sorted(self._open.values(), key=lambda r: r.get("order", 0), reverse=True):
                self._export(record, incomplete=True)
            self._open.clear()
        self._force_flush()
        if self._owns_provider:
            self.tracer_provider.shutdown()
        self._report_losses()

    def _report_losses(self) -> None:
        """Raise (once per new loss) so the writer shows it as a sink error in the widget; counts stay exact."""
        processor = self._processor
        if processor is None:
            return
        dropped, failed = processor.dropped, processor.counter.failed
        if (dropped, failed) == self._reported_losses:
            return
        self._reported_losses = (dropped, failed)
        msg = (
            f"{dropped:,} spans dropped (more than {processor.max_queue_size:,} waiting for the exporter) and "
            f"{failed:,} failed to export to {self.endpoint or 'the OTLP endpoint'}; see sink_status()"
        )
        raise SpanExportError(msg)

    def status(self) -> dict[str, Any]:
        """Span counts, merged into ``sink_status()``: ended, incomplete, and (own provider) exported/dropped."""
        out: dict[str, Any] = {
            "spans_ended": self.spans_ended,
            "spans_incomplete": self.spans_incomplete,
            "span_errors": self.span_errors,
        }
        processor = self._processor
        if processor is not None:
            out["spans_exported"] = processor.counter.exported
            out["spans_failed"] = processor.counter.failed
            out["spans_dropped"] = processor.dropped
            out["spans_queued"] = processor.queued
        return out

    def _force_flush(self) -> None:
        force_flush = getattr(self.tracer_provider, "force_flush", None)
        if callable(force_flush):
            force_flush(round(max(30.0, 2 * self.export_timeout) * 1000))

    def _export(self, record: dict[str, Any], *, incomplete: bool) -> None:
        run_id = record["run_id"]
        self._exported.add(run_id)
        try:
            self._start_and_end(record, incomplete=incomplete)
        except Exception:
            self.span_errors += 1
            raise
        if incomplete:
            self.spans_incomplete += 1
        else:
            self.spans_ended += 1

    def _start_and_end(self, record: dict[str, Any], *, incomplete: bool) -> None:
        run_id = record["run_id"]
        parent = record.get("parent_run_id")
        root = self._lineage.root(run_id)
        outer = self._outer.get(root)
        trace_id = outer.trace_id if outer is not None else trace_id_of(root)
        flags = outer.trace_flags if outer is not None else trace_api.TraceFlags(trace_api.TraceFlags.SAMPLED)
        parent_context: trace_api.SpanContext | None = None
        if parent is not None:
            parent_context = trace_api.SpanContext(trace_id, span_id_of(parent), is_remote=False, trace_flags=flags)
        elif outer is not None:
            parent_context = outer
        ctx = context_api.Context()
        if parent_context is not None:
            ctx = trace_api.set_span_in_context(trace_api.NonRecordingSpan(parent_context), ctx)
        data = span_of_run(
            record,
            trace_id=trace_id,
            parent_span_id=parent_context.span_id if parent_context is not None else None,
            incomplete=incomplete,
            is_graph=run_id in self._lineage.graphs,
            session=self._session,
            max_attribute_chars=self.max_attribute_chars,
            capture_content=self.capture_content,
        )
        self._ids.trace_id = data.trace_id
        self._ids.span_id = data.span_id
        span = self._tracer.start_span(
            data.name,
            context=ctx,
            kind=trace_api.SpanKind[data.kind],
            attributes=data.attributes,
            start_time=data.start_ns,
            record_exception=False,
            set_status_on_exception=False,
        )
        if data.status_code == "ERROR":
            span.set_status(trace_api.Status(trace_api.StatusCode.ERROR, data.status_message))
        elif data.status_code == "OK":
            span.set_status(trace_api.Status(trace_api.StatusCode.OK))
        for name, timestamp, attributes in data.events:
            span.add_event(name, attributes, timestamp=timestamp)
        span.end(end_time=data.end_ns)
