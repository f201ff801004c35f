"""Spans from anything, read into the neutral ``OtelSpan`` form: ``spans_from_otel(source)``.

Sources: ``ReadableSpan`` objects (e.g. ``InMemorySpanExporter().get_finished_spans()``), OTLP/JSON (a file or
bytes holding one ``ExportTraceServiceRequest`` per line, as the OpenTelemetry file exporter writes, or one JSON
document), OTLP protobuf bytes (the body of an OTLP/HTTP request), or a list mixing these.

Only protobuf bytes need an OpenTelemetry package (``opentelemetry-proto``, imported when first needed); OTLP/JSON
and ``ReadableSpan`` objects (read by their attributes) need none.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from nbcallbacks.otel._sdk import INSTALL_HINT
from nbcallbacks.otel.span import OtelSpan

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["OtelSpan", "spans_from_otel"]

_STATUS_NAMES: Final[dict[int, str]] = {0: "UNSET", 1: "OK", 2: "ERROR"}
_KIND_NAMES: Final[dict[int, str]] = {1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
"""OTLP's ``SpanKind`` numbers (0, unspecified, reads as ``INTERNAL``)."""


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


def first(mapping: dict[str, Any], *keys: str) -> Any:
    """The value of the first of ``keys`` that ``mapping`` holds and is not ``None`` (aliases of one field)."""
    for key in keys:
        value = mapping.get(key)
        if value is not None:
            return value
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
    array = first(value, "arrayValue", "array_value")
    if isinstance(array, dict):
        return tuple(_json_value(v) for v in array.get("values") or [])
    kvlist = first(value, "kvlistValue", "kvlist_value")
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


def _json_kind(kind: Any) -> str:
    """A span kind: a number, as OTLP/JSON writes enums, or a ``SPAN_KIND_*`` name, as protobuf's JSON mapping does."""
    if isinstance(kind, str):
        name = kind.removeprefix("SPAN_KIND_")
        return name if name in _KIND_NAMES.values() else "INTERNAL"
    return _KIND_NAMES.get(kind, "INTERNAL") if isinstance(kind, int) else "INTERNAL"


def _spans_from_json_request(request: dict[str, Any]) -> list[OtelSpan]:
    out: list[OtelSpan] = []
    for resource_spans in first(request, "resourceSpans", "resource_spans") or []:
        scopes = first(resource_spans, "scopeSpans", "scope_spans", "instrumentationLibrarySpans") or []
        for scope in scopes:
            for span in scope.get("spans") or []:
                parent = _id(first(span, "parentSpanId", "parent_span_id"), 8)
                end = first(span, "endTimeUnixNano", "end_time_unix_nano")
                code, message = _json_status(span.get("status"))
                out.append(
                    OtelSpan(
                        trace_id=_id(first(span, "traceId", "trace_id"), 16),
                        span_id=_id(first(span, "spanId", "span_id"), 8),
                        parent_span_id=parent or None,
                        name=str(span.get("name") or ""),
                        start_ns=int(first(span, "startTimeUnixNano", "start_time_unix_nano") or 0),
                        end_ns=int(end) if end else None,
                        attributes=_json_attributes(span.get("attributes")),
                        status_code=code,
                        status_message=message,
                        events=[
                            (
                                str(event.get("name") or ""),
                                int(first(event, "timeUnixNano", "time_unix_nano") or 0),
                                _json_attributes(event.get("attributes")),
                            )
                            for event in span.get("events") or []
                            if isinstance(event, dict)
                        ],
                        kind=_json_kind(span.get("kind")),
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
        msg = f"reading OTLP protobuf needs opentelemetry-proto: {INSTALL_HINT}"
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
                        kind=_KIND_NAMES.get(span.kind, "INTERNAL"),
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
