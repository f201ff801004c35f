"""Decoding of what LangChain passes to callbacks into plain values for the recorder.

No LangChain import is needed here (the values are read by attribute and key), but the vocabulary is LangChain's:
run names, usage metadata, content blocks, chunks, interrupts. Every function tolerates any object: payloads come
from user code, providers and third-party integrations.
"""

from __future__ import annotations

import logging
import numbers
from typing import Any, Final

from nbcallbacks.recorder import Usage
from nbcallbacks.text import safe_str

logger = logging.getLogger("nbcallbacks.handler")
logger.addHandler(logging.NullHandler())

TEXT, TOOL_CALL, REASONING = 0, 1, 2
"""Token kinds (indices of ``nbcallbacks.events.TOKEN_KINDS``)."""

BLOCK_KIND: Final = {
    "text": TEXT,
    "text-delta": TEXT,
    "reasoning": REASONING,
    "reasoning-delta": REASONING,
    "thinking": REASONING,
    "tool_call_chunk": TOOL_CALL,
    "tool-call-delta": TOOL_CALL,
    "input_json_delta": TOOL_CALL,
    "tool_use": TOOL_CALL,
}
BLOCK_TEXT_KEYS: Final = ("text", "reasoning", "thinking", "args", "partial_json")
_INTERRUPT_TYPES: Final = frozenset({"GraphInterrupt", "NodeInterrupt", "Interrupt"})
MAX_SAFE_INT: Final = 2**53 - 1
"""Larger integers lose precision in JavaScript (and huge ones cannot even be printed)."""


def attr(obj: Any, name: str) -> Any:
    """``getattr(obj, name, None)`` that also survives a property or ``__getattr__`` raising anything else."""
    try:
        return getattr(obj, name, None)
    except Exception:  # noqa: BLE001 - legacy payloads may be any object
        return None


def token_count(value: Any) -> int | None:
    """A token count: a whole number in JavaScript's safe range, or None for anything else."""
    if isinstance(value, bool) or not (
        isinstance(value, numbers.Integral) or (isinstance(value, float) and value.is_integer())
    ):
        return None
    count = int(value)
    return count if 0 <= count <= MAX_SAFE_INT else None


def run_name(name: str | None, serialized: dict[str, Any] | None, default: str = "Unnamed") -> str:
    """The name LangChain's own tracer gives a run: ``name``, else ``serialized`` name or class, else default."""
    if name:
        return safe_str(name)
    try:  # ``serialized`` comes from the user's objects: a dict or list subclass may lie or raise
        if serialized:
            if serialized.get("name"):
                return safe_str(serialized["name"])
            ids = serialized.get("id")
            if isinstance(ids, list) and ids:
                return safe_str(ids[-1])
    except Exception:  # an unreadable serialized form costs the name, not the run
        logger.debug("unreadable serialized form", exc_info=True)
    return default


def is_interrupt(error: BaseException) -> bool:
    """A LangGraph ``interrupt()``: a pause, not a failure (checked by class name: no langgraph import)."""
    return any(cls.__name__ in _INTERRUPT_TYPES for cls in type(error).__mro__)


def model_name(invocation_params: Any, metadata: Any) -> str | None:
    """The model a call asked for: invocation parameters first, else LangChain's ``ls_model_name`` metadata."""
    for source, keys in ((invocation_params, ("model", "model_name", "model_id")), (metadata, ("ls_model_name",))):
        if isinstance(source, dict):
            for key in keys:
                value = source.get(key)
                if value:
                    return safe_str(value)
    return None


def provider_name(metadata: Any) -> str | None:
    """The model provider from LangChain's ``ls_provider`` metadata (``openai``, ``anthropic``, ...)."""
    if isinstance(metadata, dict):
        value = metadata.get("ls_provider")
        if value:
            return safe_str(value)
    return None


def _detail(details: Any, *keys: str) -> int | None:
    if not isinstance(details, dict):
        return None
    for key in keys:
        count = token_count(details.get(key))
        if count is not None:
            return count
    return None


def _cache_creation(details: Any) -> int | None:
    """Input tokens written to the cache: ``cache_creation``, else Anthropic's ``ephemeral_5m`` + ``ephemeral_1h``."""
    count = _detail(details, "cache_creation")
    if count is None:
        count = _add(_detail(details, "ephemeral_5m_input_tokens"), _detail(details, "ephemeral_1h_input_tokens"))
    return count


def _add(total: int | None, value: int | None) -> int | None:
    if value is None:
        return total
    return value if total is None else total + value


def usage(response: Any) -> tuple[Usage | None, str | None]:
    """Token usage and model name of an ``LLMResult``: ``usage_metadata`` of the final messages, never chunk sums.

    Cache-read, cache-creation and reasoning counts come from ``input_token_details`` /
    ``output_token_details`` when the provider reports them; the legacy ``llm_output["token_usage"]`` is the
    fallback for models that give no ``usage_metadata``.
    """
    inputs = outputs = total = cache_read = cache_creation = reasoning = None
    model = None
    for generations in attr(response, "generations") or []:
        for generation in generations[:1]:
            message = attr(generation, "message")
            found = attr(message, "usage_metadata")
            if isinstance(found, dict):
                inputs = (inputs or 0) + (token_count(found.get("input_tokens")) or 0)
                outputs = (outputs or 0) + (token_count(found.get("output_tokens")) or 0)
                total = (total or 0) + (token_count(found.get("total_tokens")) or 0)
                cache_read = _add(cache_read, _detail(found.get("input_token_details"), "cache_read"))
                cache_creation = _add(cache_creation, _cache_creation(found.get("input_token_details")))
                reasoning = _add(reasoning, _detail(found.get("output_token_details"), "reasoning"))
            metadata = attr(message, "response_metadata")
            if not model and isinstance(metadata, dict):
                model = metadata.get("model_name") or metadata.get("model")
    if inputs is None:
        llm_output = attr(response, "llm_output")
        token_usage = llm_output.get("token_usage") if isinstance(llm_output, dict) else None
        if isinstance(token_usage, dict):
            inputs = token_count(token_usage.get("prompt_tokens"))
            outputs = token_count(token_usage.get("completion_tokens"))
            total = token_count(token_usage.get("total_tokens"))
        if not model and isinstance(llm_output, dict):
            model = llm_output.get("model_name")
    model_text = None if model is None else safe_str(model)
    if inputs is None and outputs is None and total is None:
        return None, model_text
    return Usage(inputs, outputs, total, cache_read, cache_creation, reasoning), model_text


def generations_preview(response: Any) -> Any:
    """What a model run produced: its final message(s) or text(s)."""
    outputs = []
    for generations in attr(response, "generations") or []:
        for generation in generations:
            message = attr(generation, "message")
            text = attr(generation, "text") if message is None else None
            outputs.append(message if message is not None else (text if text is not None else generation))
    return outputs[0] if len(outputs) == 1 else outputs


def empty_token(chunk: Any) -> tuple[str, int]:
    """What an empty text token carries: a tool-call fragment, reasoning in ``additional_kwargs``, or nothing."""
    message = attr(chunk, "message")
    pieces = []
    for call in attr(message, "tool_call_chunks") or []:
        args = call.get("args") or ""
        name = call.get("name")
        pieces.append(f"{name} {args}" if name else args)
    if pieces:
        return "".join(pieces), TOOL_CALL
    extra = attr(message, "additional_kwargs")
    reasoning = extra.get("reasoning_content") if isinstance(extra, dict) else None
    if isinstance(reasoning, str) and reasoning:
        return reasoning, REASONING
    return "", TEXT


def block_tokens(blocks: Any) -> list[tuple[str, int]]:
    """A token given as content blocks: one ``(text, kind)`` per kind present, in order of first appearance."""
    by_kind: dict[int, list[str]] = {}
    for block in blocks if isinstance(blocks, list) else [blocks]:
        if isinstance(block, str):
            by_kind.setdefault(TEXT, []).append(block)
        elif isinstance(block, dict):
            block_type = block.get("type")
            kind = BLOCK_KIND.get(block_type, TEXT) if isinstance(block_type, str) else TEXT
            text = next((block[k] for k in BLOCK_TEXT_KEYS if isinstance(block.get(k), str)), "")
            if kind == TOOL_CALL and block.get("name"):
                text = f"{safe_str(block['name'])} {text}"
            by_kind.setdefault(kind, []).append(text)
    if not by_kind:
        return [("", TEXT)]
    return [("".join(texts), kind) for kind, texts in by_kind.items()]


def metric_number(value: Any) -> float | None:
    """A metric's value as a float: any real number (bool, numpy scalars and ``Decimal`` included), else None."""
    import decimal  # noqa: PLC0415 - rare path

    if isinstance(value, (numbers.Real, decimal.Decimal)):
        try:
            return float(value)
        except (TypeError, ValueError, OverflowError):
            return None
    return None
