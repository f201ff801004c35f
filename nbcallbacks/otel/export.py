"""``OpenTelemetrySink``: one OpenTelemetry span per run, built off the hot path from the sink's run records.

The sink is an ordinary nbcallbacks sink: the handler's ``SinkWriter`` hands it run records on the sink's own worker
thread, and it turns each run that ended into a span with the run's own start and end times. Span ids are derived
from run ids (the trace id from the root run's UUID, the span id from the run's UUID, as LangSmith's exporter does),
so a span's parent is its parent run's span whatever order runs end in, and no span has to wait for another.

The only work on the chain's thread is ``on_root_start``: when a root run starts, the sink notes the caller's active
OpenTelemetry span (if any), so that the run's tree nests under it.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import math
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any, Final

from nbcallbacks.otel import conventions as sc
from nbcallbacks.otel._sdk import require_sdk

require_sdk()

from opentelemetry import context as context_api  # noqa: E402 - after the clear ImportError above
from opentelemetry import trace as trace_api  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import SpanLimits, SpanProcessor, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import (  # noqa: E402
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.id_generator import IdGenerator  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.util.types import AttributeValue

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

_MAX_MESSAGES: Final = 50
_MAX_OUTER: Final = 10_000
"""Root runs whose caller's span is remembered (a late child of a finished root still joins its trace)."""
_LOW_64: Final = (1 << 64) - 1
_MODEL_RUN_TYPES: Final = frozenset({"llm", "chat_model"})
_ROLES: Final[dict[str, str]] = {
    "human": "user",
    "user": "user",
    "ai": "assistant",
    "assistant": "assistant",
    "system": "system",
    "tool": "tool",
    "function": "tool",
    "chat": "user",
}


# --- ids


def _hash_id(text: str, size: int) -> int:
    value = int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=size).digest(), "big")
    return value or 1


def trace_id_of(run_id: str) -> int:
    """The trace id of a tree whose root run is ``run_id``: the UUID's 128 bits (a hash for other ids)."""
    try:
        value = uuid.UUID(run_id).int
    except ValueError:
        return _hash_id(run_id, 16)
    return value or _hash_id(run_id, 16)


def span_id_of(run_id: str) -> int:
    """The span id of run ``run_id``: the UUID's low 64 bits (random in UUID v4 and v7; a hash for other ids)."""
    try:
        value = uuid.UUID(run_id).int & _LOW_64
    except ValueError:
        return _hash_id(run_id, 8)
    return value or _hash_id(run_id, 8)


class _ChosenIds(IdGenerator):
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


class SpanExportError(RuntimeError):
    """Spans were dropped (the export backlog was full) or the exporter failed on them; counted in sink_status()."""


# --- the bounded export pipeline of endpoint= mode


class _CountingExporter(SpanExporter):
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


class _BoundedBatchProcessor(SpanProcessor):
    """A ``BatchSpanProcessor`` that never holds more than ``max_queue_size`` spans, and counts what it drops.

    The SDK's own processor drops silently (a log line) when its queue is full; this one counts spans handed on
    minus spans the exporter finished with, and drops (counted) before the SDK would.
    """

    def __init__(self, exporter: SpanExporter, max_queue_size: int, schedule_delay_millis: float) -> None:
        self.counter = _CountingExporter(exporter)
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


# --- attribute values


def _bounded(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    marker = f"…[{len(text) - limit:,} more chars]"
    keep = max(0, limit - len(marker))
    return text[:keep] + marker


def _json(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    except (TypeError, ValueError):
        return str(value)


def _int(value: Any) -> int | None:
    return value if type(value) is int else None


def _message_parts(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    content = message.get("content")
    if isinstance(content, str):
        if content:
            parts.append({"type": "text", "content": content})
    elif isinstance(content, list):
        for block in content:
            if isinstance(block, str):
                parts.append({"type": "text", "content": block})
            elif isinstance(block, dict) and isinstance(block.get("text"), str):
                parts.append({"type": "text", "content": block["text"]})
    calls = message.get("tool_calls")
    if isinstance(calls, list):
        parts.extend(
            {"type": "tool_call", "id": call.get("id"), "name": call.get("name"), "arguments": call.get("args")}
            for call in calls
            if isinstance(call, dict)
        )
    if message.get("type") == "tool" or message.get("tool_call_id"):
        text = "".join(p["content"] for p in parts if p.get("type") == "text")
        parts = [{"type": "tool_call_response", "id": message.get("tool_call_id"), "response": text}]
    return parts


def _messages(value: Any) -> list[dict[str, Any]] | None:
    """LangChain message previews as GenAI ``{"role", "parts"}`` messages (``None`` when it holds none)."""
    if isinstance(value, dict) and "messages" in value:
        value = value["messages"]
    if isinstance(value, list) and value and all(isinstance(v, list) for v in value):
        value = [m for conversation in value for m in conversation]  # a batch of one conversation, flattened
    if isinstance(value, dict) and "type" in value:
        value = [value]
    if not isinstance(value, list):
        return None
    out = []
    for message in value[:_MAX_MESSAGES]:
        if isinstance(message, dict):
            role = _ROLES.get(str(message.get("type") or message.get("role") or ""), "user")
            entry: dict[str, Any] = {"role": role, "parts": _message_parts(message)}
            finish = (message.get("response_metadata") or {}).get("finish_reason")
            if role == "assistant" and isinstance(finish, str):
                entry["finish_reason"] = finish
            out.append(entry)
        elif isinstance(message, str):
            out.append({"role": "user", "parts": [{"type": "text", "content": message}]})
    return out or None


# --- the sink


def _default_provider(  # noqa: PLR0913 - the sink's settings, passed on
    *,
    endpoint: str | None,
    headers: Mapping[str, str] | None,
    max_attribute_chars: int,
    max_queue_size: int,
    export_timeout: float,
    schedule_delay: float,
) -> tuple[TracerProvider, _BoundedBatchProcessor]:
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: PLC0415
    except ImportError as exc:
        msg = (
            "OpenTelemetrySink without tracer_provider= exports over OTLP/HTTP, which needs "
            'opentelemetry-exporter-otlp-proto-http: pip install "nbcallbacks[otel]"'
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
    processor = _BoundedBatchProcessor(exporter, max_queue_size, schedule_delay * 1000)
    provider.add_span_processor(processor)
    return provider, processor


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
        self._processor: _BoundedBatchProcessor | None = None
        if tracer_provider is None:
            tracer_provider, self._processor = _default_provider(
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
        self._ids = _ChosenIds()
        self._tracer = copy.copy(tracer)  # our own copy: the provider's cached tracer keeps its id generator
        self._tracer.id_generator = self._ids
        self._runs: dict[str, tuple[str | None, str | None]] = {}
        """Run id -> (parent run id, LangGraph node) of every run seen, to find roots and graphs."""
        self._graphs: set[str] = set()
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
                self._learn(record)
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

    def _learn(self, record: dict[str, Any]) -> None:
        run_id = record["run_id"]
        parent = record.get("parent_run_id")
        node = record.get("langgraph_node")
        self._runs[run_id] = (parent, node)
        if node is not None and parent is not None:  # a LangGraph node's parent without a node is the graph
            known = self._runs.get(parent)
            if known is not None and known[1] is None:
                self._graphs.add(parent)

    def _root(self, run_id: str) -> str:
        """The top of ``run_id``'s tree: its root run, or the missing parent of its highest known ancestor."""
        current = run_id
        for _ in range(len(self._runs) + 1):
            parent = self._runs.get(current, (None, None))[0]
            if parent is None:
                return current
            if parent not in self._runs:
                return parent
            current = parent
        return current  # a cycle (never made by LangChain): stop anywhere, deterministically

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
        root = self._root(run_id)
        outer = self._outer.get(root)
        trace_id = outer.trace_id if outer is not None else trace_id_of(root)
        flags = outer.trace_flags if outer is not None else trace_api.TraceFlags(trace_api.TraceFlags.SAMPLED)
        if parent is not None:
            parent_context = trace_api.SpanContext(trace_id, span_id_of(parent), is_remote=False, trace_flags=flags)
            ctx = trace_api.set_span_in_context(trace_api.NonRecordingSpan(parent_context), context_api.Context())
        elif outer is not None:
            ctx = trace_api.set_span_in_context(trace_api.NonRecordingSpan(outer), context_api.Context())
        else:
            ctx = context_api.Context()
        self._ids.trace_id = trace_id
        self._ids.span_id = span_id_of(run_id)
        run_type = record.get("run_type") or "chain"
        kind = trace_api.SpanKind.CLIENT if run_type in _MODEL_RUN_TYPES else trace_api.SpanKind.INTERNAL
        start_ns = _ns(record.get("start"))
        span = self._tracer.start_span(
            record.get("name") or "(unknown)",
            context=ctx,
            kind=kind,
            attributes=self._attributes(record, incomplete=incomplete),
            start_time=start_ns,
            record_exception=False,
            set_status_on_exception=False,
        )
        end_ns = max(start_ns, _ns(record.get("end")) if not incomplete else time.time_ns())
        status = record.get("status")
        if status == "error":
            message = _bounded(str(record.get("error") or ""), self.max_attribute_chars)
            span.set_status(trace_api.Status(trace_api.StatusCode.ERROR, message))
            event: dict[str, AttributeValue] = {
                sc.EXCEPTION_TYPE: str(record.get("error_type") or "Exception"),
                sc.EXCEPTION_MESSAGE: message,
            }
            if record.get("traceback"):
                event[sc.EXCEPTION_STACKTRACE] = _bounded(str(record["traceback"]), self.max_attribute_chars)
            span.add_event(sc.EXCEPTION_EVENT, event, timestamp=end_ns)
        elif status == "ok":
            span.set_status(trace_api.Status(trace_api.StatusCode.OK))
        span.end(end_time=end_ns)

    def _attributes(self, record: dict[str, Any], *, incomplete: bool) -> dict[str, AttributeValue]:  # noqa: C901, PLR0912, PLR0915 - one flat mapping, field by field
        limit = self.max_attribute_chars
        attrs: dict[str, AttributeValue] = {}

        def put(key: str, value: Any) -> None:
            if value is None:
                return
            if isinstance(value, str):
                attrs[key] = _bounded(value, limit)
            elif isinstance(value, float) and not math.isfinite(value):
                return
            else:
                attrs[key] = value

        run_id = record["run_id"]
        run_type = record.get("run_type") or "chain"
        name = record.get("name") or "(unknown)"
        raw_metadata = record.get("metadata")
        metadata: dict[str, Any] = raw_metadata if isinstance(raw_metadata, dict) else {}
        is_graph = run_type == "chain" and run_id in self._graphs
        kind = sc.KIND_AGENT if is_graph else sc.RUN_TYPE_TO_KIND.get(run_type, sc.KIND_CHAIN)
        put(sc.OI_SPAN_KIND, kind)
        operation = sc.OP_INVOKE_AGENT if is_graph else sc.RUN_TYPE_TO_OPERATION.get(run_type)
        put(sc.GEN_AI_OPERATION_NAME, operation)
        if is_graph:
            put(sc.GEN_AI_AGENT_NAME, name)
        if run_type == "tool":
            put(sc.GEN_AI_TOOL_NAME, name)
            put(sc.OI_TOOL_NAME, name)
        if run_type in _MODEL_RUN_TYPES:
            model = record.get("model")
            provider = record.get("provider") or metadata.get("ls_provider")
            put(sc.GEN_AI_PROVIDER_NAME, provider if isinstance(provider, str) else None)
            put(sc.OI_PROVIDER, provider if isinstance(provider, str) else None)
            requested = metadata.get("ls_model_name")
            put(sc.GEN_AI_REQUEST_MODEL, requested if isinstance(requested, str) else model)
            put(sc.GEN_AI_RESPONSE_MODEL, model)
            put(sc.OI_MODEL_NAME, model)
            input_tokens = _int(record.get("input_tokens"))
            output_tokens = _int(record.get("output_tokens"))
            total_tokens = _int(record.get("total_tokens"))
            put(sc.GEN_AI_USAGE_INPUT_TOKENS, input_tokens)
            put(sc.GEN_AI_USAGE_OUTPUT_TOKENS, output_tokens)
            put(sc.OI_TOKENS_PROMPT, input_tokens)
            put(sc.OI_TOKENS_COMPLETION, output_tokens)
            put(sc.OI_TOKENS_TOTAL, total_tokens)
            cache_read = _int(record.get("cache_read_tokens"))
            cache_creation = _int(record.get("cache_creation_tokens"))
            reasoning = _int(record.get("reasoning_tokens"))
            put(sc.GEN_AI_USAGE_CACHE_READ, cache_read)
            put(sc.OI_TOKENS_CACHE_READ, cache_read)
            put(sc.GEN_AI_USAGE_CACHE_CREATION, cache_creation)
            put(sc.OI_TOKENS_CACHE_WRITE, cache_creation)
            put(sc.GEN_AI_USAGE_REASONING, reasoning)
            put(sc.OI_TOKENS_REASONING, reasoning)
            ttft = record.get("ttft_s")
            put(sc.GEN_AI_TIME_TO_FIRST_CHUNK, float(ttft) if isinstance(ttft, (int, float)) else None)
            outputs = record.get("outputs")
            if isinstance(outputs, dict):  # not content: the finish reason and response id of the answer
                response_metadata = outputs.get("response_metadata")
                finish = response_metadata.get("finish_reason") if isinstance(response_metadata, dict) else None
                if isinstance(finish, str):
                    attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] = (finish,)
                response_id = outputs.get("id")
                put(sc.GEN_AI_RESPONSE_ID, response_id if isinstance(response_id, str) else None)
            put(sc.NB_STREAMED_CHUNKS, _int(record.get("streamed_chunks")) or None)
            put(sc.NB_CHUNKS_NOT_KEPT, _int(record.get("chunks_not_kept")) or None)
        conversation = metadata.get("thread_id") or metadata.get("session_id") or metadata.get("conversation_id")
        if isinstance(conversation, (str, int)) and not isinstance(conversation, bool):
            put(sc.GEN_AI_CONVERSATION_ID, str(conversation))
            put(sc.OI_SESSION_ID, str(conversation))
        status = record.get("status") or "running"
        if status == "error":
            put(sc.ERROR_TYPE, str(record.get("error_type") or "_OTHER"))
        put(sc.NB_RUN_ID, run_id)
        put(sc.NB_PARENT_RUN_ID, record.get("parent_run_id"))
        put(sc.NB_RUN_TYPE, run_type)
        put(sc.NB_STATUS, status)
        if incomplete:
            put(sc.NB_INCOMPLETE, True)  # noqa: FBT003 - an attribute value
        if record.get("abandoned"):
            put(sc.NB_ABANDONED, True)  # noqa: FBT003 - an attribute value
        if record.get("hidden"):
            put(sc.NB_HIDDEN, True)  # noqa: FBT003 - an attribute value
        put(sc.NB_LANGGRAPH_NODE, record.get("langgraph_node"))
        put(sc.NB_LANGGRAPH_STEP, _int(record.get("langgraph_step")))
        put(sc.NB_THREAD, record.get("thread") or None)
        put(sc.NB_SESSION, record.get("session") or self._session)
        tags = record.get("tags")
        if isinstance(tags, list) and tags:
            bounded = tuple(_bounded(str(tag), limit) for tag in tags[:_MAX_MESSAGES])
            attrs[sc.NB_TAGS] = bounded
            attrs[sc.OI_TAGS] = bounded
        if metadata:
            text = _json(metadata)
            put(sc.NB_METADATA, text)
            put(sc.OI_METADATA, text)
        metrics = record.get("metrics")
        if isinstance(metrics, dict):
            for metric, value in metrics.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    put(f"{sc.NB_METRIC_PREFIX}{metric}", float(value))
        if self.capture_content:
            self._content(record, run_type, put)
        return attrs

    def _content(self, record: dict[str, Any], run_type: str, put: Any) -> None:
        for key, value_key, mime_key in (
            ("inputs", sc.OI_INPUT_VALUE, sc.OI_INPUT_MIME),
            ("outputs", sc.OI_OUTPUT_VALUE, sc.OI_OUTPUT_MIME),
        ):
            value = record.get(key)
            if value is None:
                continue
            if isinstance(value, str):
                put(value_key, value)
                put(mime_key, sc.MIME_TEXT)
            else:
                put(value_key, _json(value))
                put(mime_key, sc.MIME_JSON)
        if run_type in _MODEL_RUN_TYPES:
            for key, genai_key, flat_key in (
                ("inputs", sc.GEN_AI_INPUT_MESSAGES, sc.OI_INPUT_MESSAGES),
                ("outputs", sc.GEN_AI_OUTPUT_MESSAGES, sc.OI_OUTPUT_MESSAGES),
            ):
                with contextlib.suppress(Exception):  # previews of foreign shapes: no messages, not a failure
                    messages = _messages(record.get(key))
                    if not messages:
                        continue
                    put(genai_key, _json(messages))
                    for index, message in enumerate(messages):  # OpenInference's flattened form (Phoenix's view)
                        put(f"{flat_key}.{index}.{sc.OI_MESSAGE_ROLE}", message["role"])
                        text = "".join(p.get("content", "") for p in message["parts"] if p.get("type") == "text")
                        put(f"{flat_key}.{index}.{sc.OI_MESSAGE_CONTENT}", text or None)


def _ns(seconds: Any) -> int:
    if not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        return time.time_ns()
    return round(seconds * 1e9)
