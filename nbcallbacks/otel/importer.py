"""Read OpenTelemetry spans made by anything back as nbcallbacks runs: ``NotebookHandler.from_otel(...)``.

Reading the sources (``ReadableSpan`` objects, OTLP/JSON, OTLP protobuf bytes, or a list mixing these) into
``OtelSpan`` objects is ``nbcallbacks.otel.sources``; this module maps those spans to run and event records.

Attributes of three conventions are mapped back (see ``nbcallbacks.otel.conventions``): nbcallbacks' own (a trace
exported by ``OpenTelemetrySink`` comes back with the same run ids, names, types, statuses, tree and tokens),
OpenInference and OpenTelemetry GenAI. A span none of them describes becomes a chain run with its attributes in
``metadata``. A span's parent is the span its parent id names; a span whose parent is not among the spans read
is an orphan root (``orphan=True``).

Only reading ``ReadableSpan`` objects or protobuf bytes needs OpenTelemetry packages; OTLP/JSON needs none.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final

from nbcallbacks.events import EventRow, RunRecord
from nbcallbacks.otel import conventions as sc
from nbcallbacks.otel.sources import first, spans_from_otel
from nbcallbacks.otel.span import OtelSpan
from nbcallbacks.schema import origin_of
from nbcallbacks.sinks.records import event_record, tree_run_record
from nbcallbacks.tree import Tree

if TYPE_CHECKING:
    from nbcallbacks.handler import NotebookHandler

__all__ = ["OtelSpan", "handler_from_otel", "records_from_otel", "spans_from_otel"]

_SESSION: Final = "otel"
_START_EVENT: Final[dict[str, str]] = {
    "chat_model": "chat_model_start",
    "llm": "llm_start",
    "tool": "tool_start",
    "retriever": "retriever_start",
}
_END_PREFIX: Final[dict[str, str]] = {"chat_model": "llm", "llm": "llm", "tool": "tool", "retriever": "retriever"}


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
    metadata: dict[str, Any] | None
    if known:
        metadata = _dict_attr(attrs, sc.NB_METADATA, sc.OI_METADATA)
    else:  # a span no convention describes: all its attributes, and its kind
        metadata = {key: list(value) if isinstance(value, tuple) else value for key, value in attrs.items()}
        metadata["otel.span_kind"] = span.kind
    tags_value = first(attrs, sc.NB_TAGS, sc.OI_TAGS)
    tags = [str(tag) for tag in tags_value] if isinstance(tags_value, (list, tuple)) else []
    node = attrs.get(sc.NB_LANGGRAPH_NODE)
    step = _int(attrs.get(sc.NB_LANGGRAPH_STEP))
    if node is None and isinstance(metadata, dict) and isinstance(metadata.get("langgraph_node"), str):
        node = metadata["langgraph_node"]
        step = _int(metadata.get("langgraph_step"))
    input_tokens = _int(first(attrs, sc.OI_TOKENS_PROMPT, sc.GEN_AI_USAGE_INPUT_TOKENS))
    output_tokens = _int(first(attrs, sc.OI_TOKENS_COMPLETION, sc.GEN_AI_USAGE_OUTPUT_TOKENS))
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
        "model": first(attrs, sc.OI_MODEL_NAME, sc.GEN_AI_RESPONSE_MODEL, sc.GEN_AI_REQUEST_MODEL),
        "inputs": inputs,
        "outputs": outputs,
        "metrics": metrics,
        "streamed_chunks": _int(attrs.get(sc.NB_STREAMED_CHUNKS)) or 0,
        "chunks_not_kept": _int(attrs.get(sc.NB_CHUNKS_NOT_KEPT)) or 0,
        "thread": str(attrs.get(sc.NB_THREAD) or ""),
        "hidden": bool(attrs.get(sc.NB_HIDDEN)) or "langsmith:hidden" in tags,
        "provider": first(attrs, sc.GEN_AI_PROVIDER_NAME, sc.OI_PROVIDER),
        "cache_read_tokens": _int(first(attrs, sc.GEN_AI_USAGE_CACHE_READ, sc.OI_TOKENS_CACHE_READ)),
        "cache_creation_tokens": _int(first(attrs, sc.GEN_AI_USAGE_CACHE_CREATION, sc.OI_TOKENS_CACHE_WRITE)),
        "reasoning_tokens": _int(first(attrs, sc.GEN_AI_USAGE_REASONING, sc.OI_TOKENS_REASONING)),
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
        error_type = attrs.get(sc.ERROR_TYPE) or exc_attrs.get(sc.EXCEPTION_TYPE)
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


def _events(runs: list[RunRecord], spans: dict[str, OtelSpan]) -> list[EventRow]:
    """Start, end or error, and custom events for every run, in time order."""
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
    return [
        EventRow(
            seq=seq,
            time=time,
            event=event,
            run_id=run.run_id,
            parent_run_id=run.parent_run_id,
            name=run.name,
            run_type=run.run_type,
            token=None,
            token_kind=None,
            data=data,
            thread=run.thread,
        )
        for seq, (time, _, event, run, data) in enumerate(raw)
    ]


def records_from_otel(source: Any) -> list[dict[str, Any]]:
    """The spans of ``source`` as nbcallbacks records: ``"run"`` records (in start order), then ``"event"`` ones.

    The records have the sinks' format (``nbcallbacks.sinks``), so anything that reads a sink's output reads them.
    """
    runs, events = _read(source)
    tree = Tree.of(runs)
    origin = origin_of(None, events)
    return [tree_run_record(tree, run.run_id, _SESSION) for run in runs] + [
        event_record(row, origin, _SESSION) for row in events
    ]


def _read(source: Any) -> tuple[list[RunRecord], list[EventRow]]:
    """The runs (in start order) and events of the spans of ``source``."""
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
    return runs, _events(runs, by_run)


def handler_from_otel(
    source: Any,
    *,
    title: str | None = None,
    handler_class: type[NotebookHandler] | None = None,
) -> NotebookHandler:
    """A handler holding the runs of OpenTelemetry spans (see ``records_from_otel``).

    The spans' runs and events go straight into ``Recorder.restore``; the handler's widget, DataFrames and charts
    show the spans as runs.
    """
    if handler_class is None:
        from nbcallbacks.handler import NotebookHandler  # noqa: PLC0415 - the handler imports this lazily

        handler_class = NotebookHandler
    runs, events = _read(source)
    handler = handler_class(title=title)
    handler.recorder.restore(runs, events, None)  # first_time: the first event's
    return handler
