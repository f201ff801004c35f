"""Read OpenTelemetry spans made by anything back as nbcallbacks runs: ``NotebookHandler.from_otel(...)``.

Sources: ``ReadableSpan`` objects (e.g. ``InMemorySpanExporter().get_finished_spans()``), OTLP/JSON (a file or
bytes holding one ``ExportTraceServiceRequest`` per line, as the OpenTelemetry file exporter writes, or one JSON
document), OTLP protobuf bytes (the body of an OTLP/HTTP request), or a list mixing these.

Attributes of three conventions are mapped back (see ``nbcallbacks.otel.conventions``): nbcallbacks' own (a trace
exported by ``OpenTelemetrySink`` comes back with the same run ids, names, types, statuses, tree and tokens),
OpenInference and OpenTelemetry GenAI. A span none of them describes becomes a chain run with its attributes in
``metadata``. A span's parent is the span its parent id names; a span whose parent is not among the spans read
is an orphan root (``orphan=True``).

Only reading ``ReadableSpan`` objects or protobuf bytes needs OpenTelemetry packages; OTLP/JSON needs none.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from nbcallbacks import schema
from nbcallbacks.events import RunRecord
from nbcallbacks.otel import conventions as sc
from nbcallbacks.sinks.records import run_record
from nbcallbacks.tree import Tree

if TYPE_CHECKING:
    from collections.abc import Iterable

    from nbcallbacks.handler import NotebookHandler

__all__ = ["OtelSpan", "handler_from_otel", "records_from_otel", "spans_from_otel"]

_SESSION: Final = "otel"
_STATUS_NAMES: Final[dict[int, str]] = {0: "UNSET", 1: "OK", 2: "ERROR"}
_START_EVENT: Final[dict[str, str]] = {
    "chat_model": "chat_model_start",
    "llm": "llm_start",
    "tool": "tool_start",
    "retriever": "retriever_start",
}
_END_PREFIX: Final[dict[str, str]] = {"chat_model": "llm", "llm": "llm", "tool": "tool", "retriever": "retriever"}


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


# --- reading sources


def _id(value: Any, size: int) -> int:
    """An OTLP/JSON id: hex as the specification says, or base64 as protobuf's JSON mapping writes."""
    if isinstance(value, int):
        return value
    if not value:
        return 0
    text = str(value)
    if len(text) == size * 2:
        try:
            return int(text, 16)
        except ValueError:
            pass
    try:
        return int.from_bytes(base64.b64decode(text, validate=True), "big")
    except (binascii.Error, ValueError):
        return 0


def _get(obj: dict[str, Any], *names: str) -> Any:
    for name in names:
        if name in obj:
            return obj[name]
    return None


_SCALARS: Final[tuple[tuple[tuple[str, str], Any], ...]] = (
    (("stringValue", "string_value"), str),
    (("boolValue", "bool_value"), bool),
    (("intValue", "int_value"), int),  # a string in OTLP/JSON (64-bit)
    (("doubleValue", "double_value"), float),
    (("bytesValue", "bytes_value"), str),
)


def _json_value(value: Any) -> Any:
    """An OTLP/JSON ``AnyValue`` as a Python value."""
    if not isinstance(value, dict):
        return value
    for names, convert in _SCALARS:
        for name in names:
            if name in value:
                return convert(value[name])
    array = _get(value, "arrayValue", "array_value")
    if isinstance(array, dict):
        return tuple(_json_value(v) for v in array.get("values") or [])
    kvlist = _get(value, "kvlistValue", "kvlist_value")
    if isinstance(kvlist, dict):
        return {kv.get("key"): _json_value(kv.get("value")) for kv in kvlist.get("values") or []}
    return None


def _json_attributes(items: Any) -> dict[str, Any]:
    if not isinstance(items, list):
        return {}
    return {item["key"]: _json_value(item.get("value")) for item in items if isinstance(item, dict) and "key" in item}


def _json_status(status: Any) -> tuple[str, str | None]:
    if not isinstance(status, dict):
        return "UNSET", None
    code = status.get("code", 0)
    if isinstance(code, str):
        name = code.removeprefix("STATUS_CODE_")
        code_name = name if name in {"UNSET", "OK", "ERROR"} else "UNSET"
    else:
        code_name = _STATUS_NAMES.get(int(code), "UNSET")
    return code_name, status.get("message") or None


def _spans_from_json_request(request: dict[str, Any]) -> list[OtelSpan]:
    out: list[OtelSpan] = []
    for resource_spans in _get(request, "resourceSpans", "resource_spans") or []:
        scopes = _get(resource_spans, "scopeSpans", "scope_spans", "instrumentationLibrarySpans") or []
        for scope in scopes:
            for span in scope.get("spans") or []:
                parent = _id(_get(span, "parentSpanId", "parent_span_id"), 8)
                end = _get(span, "endTimeUnixNano", "end_time_unix_nano")
                code, message = _json_status(span.get("status"))
                kind = span.get("kind", "SPAN_KIND_INTERNAL")
                out.append(
                    OtelSpan(
                        trace_id=_id(_get(span, "traceId", "trace_id"), 16),
                        span_id=_id(_get(span, "spanId", "span_id"), 8),
                        parent_span_id=parent or None,
                        name=str(span.get("name") or ""),
                        start_ns=int(_get(span, "startTimeUnixNano", "start_time_unix_nano") or 0),
                        end_ns=int(end) if end else None,
                        attributes=_json_attributes(span.get("attributes")),
                        status_code=code,
                        status_message=message,
                        events=[
                            (
                                str(event.get("name") or ""),
                                int(_get(event, "timeUnixNano", "time_unix_nano") or 0),
                                _json_attributes(event.get("attributes")),
                            )
                            for event in span.get("events") or []
                            if isinstance(event, dict)
                        ],
                        kind=str(kind).removeprefix("SPAN_KIND_") if isinstance(kind, str) else str(kind),
                    )
                )
    return out


def _spans_from_json_text(text: str) -> list[OtelSpan]:
    """One JSON document, or one ``ExportTraceServiceRequest`` per line (torn or foreign lines are skipped)."""
    try:
        whole = json.loads(text)
    except ValueError:
        whole = None
    documents: list[Any]
    if whole is not None:
        documents = whole if isinstance(whole, list) else [whole]
    else:
        documents = []
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                documents.append(json.loads(line))
            except ValueError:
                continue
    out: list[OtelSpan] = []
    for document in documents:
        if isinstance(document, dict):
            out.extend(_spans_from_json_request(document))
    return out


def _proto_value(value: Any) -> Any:
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return tuple(_proto_value(v) for v in value.array_value.values)
    if which == "kvlist_value":
        return {kv.key: _proto_value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, which)


def _spans_from_protobuf(data: bytes) -> list[OtelSpan]:
    try:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (  # noqa: PLC0415 - optional
            ExportTraceServiceRequest,
        )
    except ImportError as exc:
        msg = 'reading OTLP protobuf needs opentelemetry-proto: pip install "nbcallbacks[otel]"'
        raise ImportError(msg) from exc
    request = ExportTraceServiceRequest.FromString(data)
    out: list[OtelSpan] = []
    for resource_spans in request.resource_spans:
        for scope in resource_spans.scope_spans:
            for span in scope.spans:
                parent = int.from_bytes(span.parent_span_id, "big") if span.parent_span_id else 0
                out.append(
                    OtelSpan(
                        trace_id=int.from_bytes(span.trace_id, "big"),
                        span_id=int.from_bytes(span.span_id, "big"),
                        parent_span_id=parent or None,
                        name=span.name,
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano or None,
                        attributes={kv.key: _proto_value(kv.value) for kv in span.attributes},
                        status_code=_STATUS_NAMES.get(span.status.code, "UNSET"),
                        status_message=span.status.message or None,
                        events=[
                            (
                                event.name,
                                event.time_unix_nano,
                                {kv.key: _proto_value(kv.value) for kv in event.attributes},
                            )
                            for event in span.events
                        ],
                        kind={1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}.get(
                            span.kind, "INTERNAL"
                        ),
                    )
                )
    return out


def _spans_from_bytes(data: bytes) -> list[OtelSpan]:
    stripped = data.lstrip()
    if stripped[:1] in {b"{", b"["}:
        return _spans_from_json_text(data.decode("utf-8", "replace"))
    return _spans_from_protobuf(data)


def _span_from_readable(span: Any) -> OtelSpan:
    """An SDK ``ReadableSpan``."""
    context = span.context
    parent = span.parent
    status = span.status
    return OtelSpan(
        trace_id=context.trace_id,
        span_id=context.span_id,
        parent_span_id=parent.span_id if parent is not None and parent.span_id else None,
        name=span.name,
        start_ns=int(span.start_time or 0),
        end_ns=int(span.end_time) if span.end_time else None,
        attributes=dict(span.attributes or {}),
        status_code=status.status_code.name if status is not None else "UNSET",
        status_message=(status.description or None) if status is not None else None,
        events=[(event.name, int(event.timestamp or 0), dict(event.attributes or {})) for event in span.events],
        kind=getattr(span.kind, "name", "INTERNAL"),
    )


def spans_from_otel(source: Any) -> list[OtelSpan]:  # noqa: PLR0911 - one return per kind of source
    """Spans from a path, bytes, a parsed OTLP/JSON request, ``ReadableSpan`` objects, or a list of these.

    Raises:
        FileNotFoundError: a path that is not a file.
        TypeError: a source of another kind.
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            msg = f"no OpenTelemetry spans at {str(path)!r}"
            raise FileNotFoundError(msg)
        return _spans_from_bytes(path.read_bytes())
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _spans_from_bytes(bytes(source))
    if isinstance(source, OtelSpan):
        return [source]
    if isinstance(source, dict):
        return _spans_from_json_request(source)
    if hasattr(source, "context") and hasattr(source, "attributes") and hasattr(source, "start_time"):
        return [_span_from_readable(source)]
    if hasattr(source, "resource_spans") and hasattr(source, "SerializeToString"):
        return _spans_from_protobuf(source.SerializeToString())
    if hasattr(source, "__iter__"):
        items: Iterable[Any] = source
        return [span for item in items for span in spans_from_otel(item)]
    msg = f"cannot read OpenTelemetry spans from {type(source).__name__}"
    raise TypeError(msg)


# --- spans to run records


def _json_or_text(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in {"{", "["}:
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _first(attrs: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        value = attrs.get(key)
        if value is not None:
            return value
    return None


def _run_type(attrs: dict[str, Any]) -> str | None:
    """The run type the attributes name, or ``None`` when no known convention describes the span."""
    own = attrs.get(sc.NB_RUN_TYPE)
    if isinstance(own, str) and own:
        return own
    operation = attrs.get(sc.GEN_AI_OPERATION_NAME)
    kind = attrs.get(sc.OI_SPAN_KIND)
    if kind == sc.KIND_LLM and operation not in {sc.OP_CHAT, sc.OP_TEXT_COMPLETION}:
        has_messages = any(key.startswith(sc.OI_INPUT_MESSAGES) for key in attrs)
        return "chat_model" if has_messages else "llm"
    if isinstance(operation, str) and operation in sc.OPERATION_TO_RUN_TYPE:
        return sc.OPERATION_TO_RUN_TYPE[operation]
    if isinstance(kind, str) and kind in sc.KIND_TO_RUN_TYPE:
        return sc.KIND_TO_RUN_TYPE[kind]
    if isinstance(kind, str) and kind:
        return "chain"
    return None


def _dict_attr(attrs: dict[str, Any], *keys: str) -> dict[str, Any] | None:
    for key in keys:
        value = _json_or_text(attrs.get(key))
        if isinstance(value, dict):
            return value
    return None


def _run_fields(span: OtelSpan, run_type: str | None) -> dict[str, Any]:
    """Everything a span says about its run except ids, parents and order."""
    attrs = span.attributes
    known = run_type is not None
    run_type = run_type or "chain"
    metadata = _dict_attr(attrs, sc.NB_METADATA, sc.OI_METADATA) if known else None
    if not known:
        metadata = {key: list(value) if isinstance(value, tuple) else value for key, value in attrs.items()}
        metadata["otel.span_kind"] = span.kind
    tags_value = _first(attrs, sc.NB_TAGS, sc.OI_TAGS)
    tags = [str(tag) for tag in tags_value] if isinstance(tags_value, (list, tuple)) else []
    node = _first(attrs, sc.NB_LANGGRAPH_NODE)
    step = _int(attrs.get(sc.NB_LANGGRAPH_STEP))
    if node is None and isinstance(metadata, dict) and isinstance(metadata.get("langgraph_node"), str):
        node = metadata["langgraph_node"]
        step = _int(metadata.get("langgraph_step"))
    input_tokens = _int(_first(attrs, sc.OI_TOKENS_PROMPT, sc.GEN_AI_USAGE_INPUT_TOKENS))
    output_tokens = _int(_first(attrs, sc.OI_TOKENS_COMPLETION, sc.GEN_AI_USAGE_OUTPUT_TOKENS))
    total_tokens = _int(attrs.get(sc.OI_TOKENS_TOTAL))
    if total_tokens is None and input_tokens is not None and output_tokens is not None:
        total_tokens = input_tokens + output_tokens
    inputs = _json_or_text(attrs.get(sc.OI_INPUT_VALUE))
    if inputs is None and sc.GEN_AI_INPUT_MESSAGES in attrs:
        inputs = {"messages": _json_or_text(attrs[sc.GEN_AI_INPUT_MESSAGES])}
    outputs = _json_or_text(attrs.get(sc.OI_OUTPUT_VALUE))
    if outputs is None and sc.GEN_AI_OUTPUT_MESSAGES in attrs:
        outputs = {"messages": _json_or_text(attrs[sc.GEN_AI_OUTPUT_MESSAGES])}
    metrics = {
        key.removeprefix(sc.NB_METRIC_PREFIX): float(value)
        for key, value in attrs.items()
        if key.startswith(sc.NB_METRIC_PREFIX) and isinstance(value, (int, float)) and not isinstance(value, bool)
    }
    out: dict[str, Any] = {
        "name": span.name or "(unnamed)",
        "run_type": run_type,
        "tags": tags,
        "metadata": metadata or None,
        "langgraph_node": node if isinstance(node, str) else None,
        "langgraph_step": step,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": total_tokens,
        "model": _first(attrs, sc.OI_MODEL_NAME, sc.GEN_AI_RESPONSE_MODEL, sc.GEN_AI_REQUEST_MODEL),
        "inputs": inputs,
        "outputs": outputs,
        "metrics": metrics,
        "streamed_chunks": _int(attrs.get(sc.NB_STREAMED_CHUNKS)) or 0,
        "chunks_not_kept": _int(attrs.get(sc.NB_CHUNKS_NOT_KEPT)) or 0,
        "thread": str(attrs.get(sc.NB_THREAD) or ""),
        "hidden": bool(attrs.get(sc.NB_HIDDEN)) or "langsmith:hidden" in tags,
        "provider": _first(attrs, sc.GEN_AI_PROVIDER_NAME, sc.OI_PROVIDER),
        "cache_read_tokens": _int(_first(attrs, sc.GEN_AI_USAGE_CACHE_READ, sc.OI_TOKENS_CACHE_READ)),
        "cache_creation_tokens": _int(_first(attrs, sc.GEN_AI_USAGE_CACHE_CREATION, sc.OI_TOKENS_CACHE_WRITE)),
        "reasoning_tokens": _int(_first(attrs, sc.GEN_AI_USAGE_REASONING, sc.OI_TOKENS_REASONING)),
    }
    _status_fields(span, out)
    return out


def _status_fields(span: OtelSpan, out: dict[str, Any]) -> None:
    attrs = span.attributes
    start = span.start_ns / 1e9
    end = span.end_ns / 1e9 if span.end_ns else None
    own_status = attrs.get(sc.NB_STATUS)
    exception = next((e for e in span.events if e[0] == sc.EXCEPTION_EVENT), None)
    exc_attrs = exception[2] if exception is not None else {}
    if attrs.get(sc.NB_INCOMPLETE) or own_status == "running" or end is None:
        status, end = "running", None
    elif own_status in {"ok", "error", "interrupted"}:
        status = own_status
    elif span.status_code == "ERROR":
        status = "error"
    else:
        status = "ok"
    out["status"] = status
    out["start"] = start
    out["end"] = end
    out["abandoned"] = status == "running" and bool(attrs.get(sc.NB_INCOMPLETE) or attrs.get(sc.NB_ABANDONED))
    ttft = attrs.get(sc.GEN_AI_TIME_TO_FIRST_CHUNK)
    out["first_token"] = start + float(ttft) if isinstance(ttft, (int, float)) and not isinstance(ttft, bool) else None
    if status in {"error", "interrupted"} or exception is not None:
        message = span.status_message or exc_attrs.get(sc.EXCEPTION_MESSAGE) or attrs.get(sc.NB_ERROR_MESSAGE)
        out["error"] = None if message is None else str(message)
        error_type = _first(attrs, sc.ERROR_TYPE) or exc_attrs.get(sc.EXCEPTION_TYPE)
        out["error_type"] = None if error_type is None else str(error_type)
        stack = exc_attrs.get(sc.EXCEPTION_STACKTRACE)
        out["traceback"] = None if stack is None else str(stack)


def _dedupe(spans: list[OtelSpan]) -> list[OtelSpan]:
    """One span per (trace, span) id: an ended copy wins over an open one, a later one over an earlier one."""
    chosen: dict[tuple[int, int], OtelSpan] = {}
    for span in spans:
        key = (span.trace_id, span.span_id)
        known = chosen.get(key)
        if known is None or span.end_ns is not None or known.end_ns is None:
            chosen[key] = span
    return list(chosen.values())


def _events(runs: list[RunRecord], spans: dict[str, OtelSpan], session: str) -> list[dict[str, Any]]:
    """Start, end or error, and custom events for every run, as event records in time order."""
    raw: list[tuple[float, int, str, RunRecord, Any]] = []
    for run in runs:
        prefix = _END_PREFIX.get(run.run_type, "chain")
        raw.append((run.start, 0, _START_EVENT.get(run.run_type, "chain_start"), run, run.inputs))
        for name, timestamp, attributes in spans[run.run_id].events:
            if name != sc.EXCEPTION_EVENT:
                data = {
                    "name": name,
                    "data": {k: list(v) if isinstance(v, tuple) else v for k, v in attributes.items()},
                }
                raw.append((timestamp / 1e9, 1, "custom_event", run, data))
        if run.end is None:
            continue
        if run.status in {"error", "interrupted"}:
            raw.append((run.end, 2, f"{prefix}_error", run, {"error": run.error, "error_type": run.error_type}))
        else:
            raw.append((run.end, 2, f"{prefix}_end", run, run.outputs))
    raw.sort(key=lambda item: (item[0], item[1], item[3].order))
    origin = raw[0][0] if raw else 0.0
    return [
        {
            "kind": "event",
            "session": session,
            "seq": seq,
            "time": time,
            "elapsed_s": time - origin,
            "event": event,
            "run_id": run.run_id,
            "parent_run_id": run.parent_run_id,
            "name": run.name,
            "run_type": run.run_type,
            "token": None,
            "token_kind": None,
            "data": data,
            "thread": run.thread,
        }
        for seq, (time, _, event, run, data) in enumerate(raw)
    ]


def records_from_otel(source: Any) -> list[dict[str, Any]]:
    """The spans of ``source`` as nbcallbacks records: ``"run"`` records (in start order), then ``"event"`` ones.

    The records have the sinks' format (``nbcallbacks.sinks``), so anything that reads a sink's output reads them.
    """
    spans = _dedupe(spans_from_otel(source))
    spans.sort(key=lambda s: s.start_ns)
    by_key = {(span.trace_id, span.span_id): span for span in spans}
    run_ids = {
        (span.trace_id, span.span_id): str(span.attributes.get(sc.NB_RUN_ID) or f"{span.span_id:016x}")
        for span in spans
    }
    parents: dict[str, str | None] = {}
    for span in spans:
        run_id = run_ids[span.trace_id, span.span_id]
        parent_key = (span.trace_id, span.parent_span_id) if span.parent_span_id else None
        if parent_key is not None and parent_key in by_key:
            parents[run_id] = run_ids[parent_key]
        elif parent_key is None or (sc.NB_RUN_ID in span.attributes and sc.NB_PARENT_RUN_ID not in span.attributes):
            parents[run_id] = None  # a root (or nbcallbacks' root run nested under a span that was not read)
        else:  # a parent that is not among the spans read: the tree shows the run as an orphan root
            own = span.attributes.get(sc.NB_PARENT_RUN_ID)
            parents[run_id] = str(own) if own else f"{span.parent_span_id:016x}"
    runs: list[RunRecord] = []
    by_run: dict[str, OtelSpan] = {}
    for order, span in enumerate(spans):
        run_id = run_ids[span.trace_id, span.span_id]
        by_run[run_id] = span
        runs.append(
            RunRecord(
                run_id=run_id,
                parent_run_id=parents[run_id],
                order=order,
                **_run_fields(span, _run_type(span.attributes)),
            )
        )
    tree = Tree.of(runs)
    records = [run_record(run, tree.derived(run.run_id), _SESSION) for run in runs]
    return records + _events(runs, by_run, _SESSION)


def handler_from_otel(
    source: Any,
    *,
    title: str | None = None,
    handler_class: type[NotebookHandler] | None = None,
) -> NotebookHandler:
    """A handler holding the runs of OpenTelemetry spans (see ``records_from_otel``), rebuilt as history does.

    The records go through ``schema.run_from_record`` / ``event_from_record``, then ``Recorder.restore``; the
    handler's widget, DataFrames and charts show the spans as runs.
    """
    if handler_class is None:
        from nbcallbacks.handler import NotebookHandler  # noqa: PLC0415 - the handler imports this lazily

        handler_class = NotebookHandler
    records = records_from_otel(source)
    runs = [schema.run_from_record(record) for record in records if record["kind"] == "run"]
    events = [schema.event_from_record(record) for record in records if record["kind"] == "event"]
    handler = handler_class(title=title)
    handler.recorder.restore(runs, events, events[0].time if events else None)
    return handler
