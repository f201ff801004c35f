"""A run record as the span it becomes: ids, name, kind, times, status, exception event, attributes (pure).

``OpenTelemetrySink`` (``nbcallbacks.otel.export``) decides nothing about a span's content itself: it asks
``span_of_run`` for an ``OtelSpan`` and hands that to the SDK's tracer on its worker thread. This module imports no
OpenTelemetry (an import-linter contract keeps it so), so what a run becomes is testable without a provider.

Span ids are derived from run ids (the trace id from the root run's UUID, the span id from the run's UUID, as
LangSmith's exporter does), so a span's parent is its parent run's span whatever order runs end in. ``Lineage``
remembers the tree of the runs seen, to find each run's root and the LangGraph graphs (exported as agent spans).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import time
import uuid
from typing import TYPE_CHECKING, Any, Final

from nbcallbacks.events import MODEL_RUN_TYPES
from nbcallbacks.otel import conventions as sc
from nbcallbacks.otel.span import OtelSpan

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["Lineage", "span_id_of", "span_of_run", "trace_id_of"]

_MAX_MESSAGES: Final = 50
_LOW_64: Final = (1 << 64) - 1
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


# --- the tree of the runs seen


class Lineage:
    """Run id -> (parent run id, LangGraph node) of every run seen: each run's root, and which runs are graphs."""

    def __init__(self) -> None:
        """No run seen yet."""
        self.runs: dict[str, tuple[str | None, str | None]] = {}
        self.graphs: set[str] = set()
        """Parents, themselves outside any node, of a LangGraph node's run: a graph (when a chain run)."""

    def learn(self, record: dict[str, Any]) -> None:
        """Remember a run's parent and LangGraph node; a node's parent already seen outside any node is a graph."""
        run_id = record["run_id"]
        parent = record.get("parent_run_id")
        node = record.get("langgraph_node")
        self.runs[run_id] = (parent, node)
        if node is not None and parent is not None:  # a LangGraph node's parent without a node is the graph
            known = self.runs.get(parent)
            if known is not None and known[1] is None:
                self.graphs.add(parent)

    def root(self, run_id: str) -> str:
        """The top of ``run_id``'s tree: its root run, or the missing parent of its highest known ancestor."""
        current = run_id
        for _ in range(len(self.runs) + 1):
            parent = self.runs.get(current, (None, None))[0]
            if parent is None:
                return current
            if parent not in self.runs:
                return parent
            current = parent
        return current  # a cycle (never made by LangChain): stop anywhere, deterministically


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


def _ns(seconds: Any) -> int:
    if not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        return time.time_ns()
    return round(seconds * 1e9)


# --- the span


_USAGE_ATTRIBUTES: Final = (
    (sc.GEN_AI_USAGE_INPUT_TOKENS, "input_tokens"),
    (sc.GEN_AI_USAGE_OUTPUT_TOKENS, "output_tokens"),
    (sc.OI_TOKENS_PROMPT, "input_tokens"),
    (sc.OI_TOKENS_COMPLETION, "output_tokens"),
    (sc.OI_TOKENS_TOTAL, "total_tokens"),
    (sc.GEN_AI_USAGE_CACHE_READ, "cache_read_tokens"),
    (sc.OI_TOKENS_CACHE_READ, "cache_read_tokens"),
    (sc.GEN_AI_USAGE_CACHE_CREATION, "cache_creation_tokens"),
    (sc.OI_TOKENS_CACHE_WRITE, "cache_creation_tokens"),
    (sc.GEN_AI_USAGE_REASONING, "reasoning_tokens"),
    (sc.OI_TOKENS_REASONING, "reasoning_tokens"),
)
"""A model run's token counts, each under its GenAI and its OpenInference name (in the order written)."""


def span_of_run(  # noqa: PLR0913 - the span's place in its trace and the sink's settings
    record: dict[str, Any],
    *,
    trace_id: int,
    parent_span_id: int | None,
    incomplete: bool,
    is_graph: bool,
    session: str | None,
    max_attribute_chars: int,
    capture_content: bool,
) -> OtelSpan:
    """The span of run record ``record``, in trace ``trace_id`` under span ``parent_span_id``.

    Args:
        record: a run record (the sinks' format).
        trace_id: the span's trace (the root run's, or the caller's span's when the tree nests under it).
        parent_span_id: the parent span (the parent run's, or the caller's span for a root run), if any.
        incomplete: the run has not ended: its span ends now and says ``nbcallbacks.incomplete=true``.
        is_graph: the run is a LangGraph graph (exported as an agent span).
        session: the session id written when the record has none.
        max_attribute_chars: characters kept of any one string attribute.
        capture_content: also write inputs, outputs and messages.
    """
    run_type = record.get("run_type") or "chain"
    name = record.get("name") or "(unknown)"
    start_ns = _ns(record.get("start"))
    end_ns = max(start_ns, _ns(record.get("end")) if not incomplete else time.time_ns())
    span = OtelSpan(
        trace_id=trace_id,
        span_id=span_id_of(record["run_id"]),
        parent_span_id=parent_span_id,
        name=name,
        start_ns=start_ns,
        end_ns=end_ns,
        attributes=_attributes(
            record,
            run_type,
            name,
            incomplete=incomplete,
            is_graph=is_graph,
            session=session,
            limit=max_attribute_chars,
            capture_content=capture_content,
        ),
        kind="CLIENT" if run_type in MODEL_RUN_TYPES else "INTERNAL",
    )
    status = record.get("status")
    if status == "error":
        message = _bounded(str(record.get("error") or ""), max_attribute_chars)
        span.status_code, span.status_message = "ERROR", message
        event: dict[str, Any] = {
            sc.EXCEPTION_TYPE: str(record.get("error_type") or "Exception"),
            sc.EXCEPTION_MESSAGE: message,
        }
        if record.get("traceback"):
            event[sc.EXCEPTION_STACKTRACE] = _bounded(str(record["traceback"]), max_attribute_chars)
        span.events.append((sc.EXCEPTION_EVENT, end_ns, event))
    elif status == "ok":
        span.status_code = "OK"
    return span


def _attributes(  # noqa: C901, PLR0912, PLR0913, PLR0915 - one flat mapping, field by field
    record: dict[str, Any],
    run_type: str,
    name: str,
    *,
    incomplete: bool,
    is_graph: bool,
    session: str | None,
    limit: int,
    capture_content: bool,
) -> dict[str, Any]:
    attrs: dict[str, Any] = {}

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
    raw_metadata = record.get("metadata")
    metadata: dict[str, Any] = raw_metadata if isinstance(raw_metadata, dict) else {}
    is_graph = run_type == "chain" and is_graph
    kind = sc.KIND_AGENT if is_graph else sc.RUN_TYPE_TO_KIND.get(run_type, sc.KIND_CHAIN)
    put(sc.OI_SPAN_KIND, kind)
    operation = sc.OP_INVOKE_AGENT if is_graph else sc.RUN_TYPE_TO_OPERATION.get(run_type)
    put(sc.GEN_AI_OPERATION_NAME, operation)
    if is_graph:
        put(sc.GEN_AI_AGENT_NAME, name)
    if run_type == "tool":
        put(sc.GEN_AI_TOOL_NAME, name)
        put(sc.OI_TOOL_NAME, name)
    if run_type in MODEL_RUN_TYPES:
        _model_attributes(record, metadata, put, attrs)
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
    put(sc.NB_SESSION, record.get("session") or session)
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
    if capture_content:
        _content(record, run_type, put)
    return attrs


def _model_attributes(
    record: dict[str, Any], metadata: dict[str, Any], put: Callable[[str, Any], None], attrs: dict[str, Any]
) -> None:
    """A model run's provider, models, token counts, time to first chunk, finish reason and response id."""
    model = record.get("model")
    provider = record.get("provider") or metadata.get("ls_provider")
    put(sc.GEN_AI_PROVIDER_NAME, provider if isinstance(provider, str) else None)
    put(sc.OI_PROVIDER, provider if isinstance(provider, str) else None)
    requested = metadata.get("ls_model_name")
    put(sc.GEN_AI_REQUEST_MODEL, requested if isinstance(requested, str) else model)
    put(sc.GEN_AI_RESPONSE_MODEL, model)
    put(sc.OI_MODEL_NAME, model)
    for key, field in _USAGE_ATTRIBUTES:
        put(key, _int(record.get(field)))
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


def _content(record: dict[str, Any], run_type: str, put: Callable[[str, Any], None]) -> None:
    """Inputs and outputs (``input.value``, ``output.value``) and, of a model run, its messages."""
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
    if run_type in MODEL_RUN_TYPES:
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
