"""The LangChain boundary: ``NotebookHandler``, ``trace()`` and ``metric()``.

The only module that imports LangChain. Each ``on_*`` method turns LangChain's arguments into a recorder call in a
few lines: snapshot the payload into a bounded preview, then one O(1) write under the recorder's lock. Nothing here
ever raises into the user's chain: failures are caught, counted and kept for display.
"""

from __future__ import annotations

import contextlib
import decimal
import functools
import logging
import numbers
import re
import weakref
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, ParamSpec, cast

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.callbacks.manager import adispatch_custom_event, dispatch_custom_event
from langchain_core.tracers.context import register_configure_hook

from nbcallbacks.events import METRIC_EVENT, Limits
from nbcallbacks.payload import describe_error, preview
from nbcallbacks.recorder import Recorder

if TYPE_CHECKING:
    import os
    from collections.abc import Callable, Iterator, Sequence
    from uuid import UUID

    import pandas as pd
    from langchain_core.agents import AgentAction, AgentFinish
    from langchain_core.documents import Document
    from langchain_core.messages import BaseMessage
    from langchain_core.outputs import LLMResult
    from tenacity import RetryCallState

    from nbcallbacks.sinks import Sink, SinkWriter
    from nbcallbacks.widget import TraceWidget

__all__ = ["NotebookHandler", "ametric", "metric", "trace"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

_P = ParamSpec("_P")

_TEXT, _TOOL_CALL, _REASONING = 0, 1, 2
_BLOCK_KIND = {
    "text": _TEXT,
    "text-delta": _TEXT,
    "reasoning": _REASONING,
    "reasoning-delta": _REASONING,
    "thinking": _REASONING,
    "tool_call_chunk": _TOOL_CALL,
    "tool-call-delta": _TOOL_CALL,
    "input_json_delta": _TOOL_CALL,
    "tool_use": _TOOL_CALL,
}
_BLOCK_TEXT_KEYS = ("text", "reasoning", "thinking", "args", "partial_json")
_INTERRUPT_TYPES = frozenset({"GraphInterrupt", "NodeInterrupt", "Interrupt"})
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")
_MAX_SAFE_INT = 2**53 - 1
"""Larger integers lose precision in JavaScript (and huge ones cannot even be printed)."""


def _clean(text: str) -> str:
    """``text`` with lone surrogates (which no UTF-8 wire can carry) replaced by U+FFFD."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _LONE_SURROGATE.sub("\ufffd", text)
    return text


def _text(value: Any) -> str:
    """``str(value)`` for a name, tag or label: never raises, always encodable."""
    try:
        text = str(value)
    except Exception:  # noqa: BLE001 - a name whose str() raises must not cost the run
        return f"<{type(value).__name__}>"
    return _clean(text)


def _token_count(value: Any) -> int | None:
    """A token count from a provider's legacy ``llm_output``: a whole number, or None for anything else."""
    if isinstance(value, bool) or not (
        isinstance(value, numbers.Integral) or (isinstance(value, float) and value.is_integer())
    ):
        return None
    count = int(value)
    return count if 0 <= count <= _MAX_SAFE_INT else None


def _attr(obj: Any, name: str) -> Any:
    """``getattr(obj, name, None)`` that also survives a property or ``__getattr__`` raising anything else."""
    try:
        return getattr(obj, name, None)
    except Exception:  # noqa: BLE001 - legacy payloads may be any object
        return None


def _never_raises(method: Callable[_P, None]) -> Callable[_P, None]:
    """Wrap a callback so that a failure in it is counted and shown, never raised into the user's chain.

    (``on_llm_new_token``, the per-token path, does the same inline to save the extra call.)
    """
    where = method.__name__

    @functools.wraps(method)
    def guarded(*args: _P.args, **kwargs: _P.kwargs) -> None:
        try:
            method(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - never raise into the user's chain
            handler = cast("NotebookHandler", args[0])  # the method's self
            handler._failed(where, exc)  # noqa: SLF001 - the handler's own bookkeeping

    return guarded


def _run_name(name: str | None, serialized: dict[str, Any] | None, default: str = "Unnamed") -> str:
    """The name LangChain's own tracer gives a run: ``name``, else ``serialized`` name or class, else default."""
    if name:
        return _text(name)
    try:  # ``serialized`` comes from the user's objects: a dict or list subclass may lie or raise
        if serialized:
            if serialized.get("name"):
                return _text(serialized["name"])
            ids = serialized.get("id")
            if isinstance(ids, list) and ids:
                return _text(ids[-1])
    except Exception:  # an unreadable serialized form costs the name, not the run
        logger.debug("unreadable serialized form", exc_info=True)
    return default


def _is_interrupt(error: BaseException) -> bool:
    """A LangGraph ``interrupt()``: a pause, not a failure (checked by class name: no langgraph import)."""
    return any(cls.__name__ in _INTERRUPT_TYPES for cls in type(error).__mro__)


def _model_name(invocation_params: Any, metadata: Any) -> str | None:
    for source, keys in ((invocation_params, ("model", "model_name", "model_id")), (metadata, ("ls_model_name",))):
        if isinstance(source, dict):
            for key in keys:
                value = source.get(key)
                if value:
                    return _text(value)
    return None


def _usage(response: Any) -> tuple[tuple[int | None, int | None, int | None] | None, str | None]:
    """Token usage and model name of an ``LLMResult``: ``usage_metadata`` of the final messages, never chunk sums."""
    inputs = outputs = total = None
    model = None
    for generations in _attr(response, "generations") or []:
        for generation in generations[:1]:
            message = _attr(generation, "message")
            usage = _attr(message, "usage_metadata")
            if isinstance(usage, dict):
                inputs = (inputs or 0) + int(usage.get("input_tokens") or 0)
                outputs = (outputs or 0) + int(usage.get("output_tokens") or 0)
                total = (total or 0) + int(usage.get("total_tokens") or 0)
            metadata = _attr(message, "response_metadata")
            if not model and isinstance(metadata, dict):
                model = metadata.get("model_name") or metadata.get("model")
    if inputs is None:
        llm_output = _attr(response, "llm_output")
        token_usage = llm_output.get("token_usage") if isinstance(llm_output, dict) else None
        if isinstance(token_usage, dict):
            inputs = _token_count(token_usage.get("prompt_tokens"))
            outputs = _token_count(token_usage.get("completion_tokens"))
            total = _token_count(token_usage.get("total_tokens"))
        if not model and isinstance(llm_output, dict):
            model = llm_output.get("model_name")
    if inputs is None and outputs is None and total is None:
        return None, model
    return (inputs, outputs, total), model


def _generations_preview(response: Any) -> Any:
    """What a model run produced: its final message(s) or text(s)."""
    outputs = []
    for generations in _attr(response, "generations") or []:
        for generation in generations:
            message = _attr(generation, "message")
            text = _attr(generation, "text") if message is None else None
            outputs.append(message if message is not None else (text if text is not None else generation))
    return outputs[0] if len(outputs) == 1 else outputs


class NotebookHandler(BaseCallbackHandler):
    """Records every callback event of the runs it is attached to, and shows them live in the notebook.

    ``h = NotebookHandler()``; ``h`` (or ``display(h)``) shows the widget; ``chain.invoke(x, config={"callbacks":
    [h]})`` fills it in while the run goes. ``h.runs_dataframe()`` and ``h.to_dataframe()`` export what was recorded.

    Args:
        limits: bounds on previews, kept tokens and kept events (``Limits``); or pass its fields as keywords,
            e.g. ``NotebookHandler(max_string=500)``.
        title: a title shown in the widget's header.
        sinks: where to send every event and run as well, off the recording thread (``JSONLSink``,
            ``SQLiteSink``, ``LoggingSink`` or any object with ``write(batch)``; see ``nbcallbacks.sinks``).
        **limit_overrides: fields of ``Limits`` to override.
    """

    run_inline = True
    """Called on the thread that runs the chain, also under asyncio: no executor hop per event."""
    raise_error = False
    """LangChain must never re-raise from this handler (it catches its own errors anyway)."""

    def __init__(
        self,
        limits: Limits | None = None,
        *,
        title: str | None = None,
        sinks: Sequence[Sink] | None = None,
        **limit_overrides: int,
    ) -> None:
        """Create a handler with its own recorder."""
        super().__init__()
        if limit_overrides:
            base = limits if limits is not None else Limits()
            unknown = set(limit_overrides) - set(Limits.__dataclass_fields__)
            if unknown:
                msg = f"unknown NotebookHandler limits: {sorted(unknown)}; known: {sorted(Limits.__dataclass_fields__)}"
                raise TypeError(msg)
            limits = Limits(**{**{f: getattr(base, f) for f in Limits.__dataclass_fields__}, **limit_overrides})
        self.recorder = Recorder(limits)
        self.limits = self.recorder.limits
        self.title = title
        self._widget: TraceWidget | None = None
        self._sink_writer: SinkWriter | None = None
        for sink in sinks or ():
            self.add_sink(sink)
        if _in_notebook():
            _flag_abandoned_runs_after_each_cell(self)

    # A config that copies its callbacks must keep this very handler (it holds the recorder).
    def __copy__(self) -> NotebookHandler:
        """Return self: a copied config keeps recording into the same handler."""
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> NotebookHandler:
        """Return self: a deep-copied config keeps recording into the same handler."""
        return self

    def __repr__(self) -> str:
        """A one-line summary (the widget is shown through ``_repr_mimebundle_``)."""
        r = self.recorder
        return (
            f"NotebookHandler(runs={r.run_count}, running={r.running_count}, events={r.event_count}, "
            f"handler_errors={r.handler_error_count})"
        )

    def _preview(self, obj: Any) -> Any:
        return preview(obj, self.limits)

    def _failed(self, where: str, exc: BaseException) -> None:
        logger.debug("nbcallbacks %s failed", where, exc_info=exc)
        self.recorder.record_handler_error(where, exc)

    # --- starts

    def _start(  # noqa: PLR0913, PLR0917 - the facts every start carries
        self,
        event: str,
        run_type: str,
        name: str,
        inputs: Any,
        run_id: UUID,
        parent_run_id: UUID | None,
        tags: list[str] | None,
        metadata: dict[str, Any] | None,
        model: str | None = None,
    ) -> None:
        snapshot = self._preview(inputs)
        node = step = None
        if metadata:
            node = metadata.get("langgraph_node")
            step = metadata.get("langgraph_step")
        self.recorder.start_run(
            run_id,
            parent_run_id,
            event=event,
            name=name,
            run_type=run_type,
            tags=[_text(tag) for tag in tags] if tags else None,
            metadata=self._preview(metadata) if metadata else None,
            inputs=snapshot,
            data=snapshot,
            model=model,
            langgraph_node=None if node is None else _text(node),
            langgraph_step=step if type(step) is int and abs(step) <= _MAX_SAFE_INT else None,
            hidden=bool(tags) and "langsmith:hidden" in tags,  # type: ignore[operator]
        )

    @_never_raises
    def on_chain_start(  # noqa: PLR0913 - LangChain's signature
        self,
        serialized: dict[str, Any],
        inputs: dict[str, Any],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Record a chain (or prompt/parser, by ``run_type``) start."""
        run_type = kwargs.get("run_type") or "chain"
        name = _run_name(kwargs.get("name"), serialized)
        self._start("chain_start", run_type, name, inputs, run_id, parent_run_id, tags, metadata)

    @_never_raises
    def on_llm_start(  # noqa: PLR0913 - LangChain's signature
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Record a (text) LLM call start."""
        name = _run_name(kwargs.get("name"), serialized)
        model = _model_name(kwargs.get("invocation_params"), metadata)
        self._start("llm_start", "llm", name, {"prompts": prompts}, run_id, parent_run_id, tags, metadata, model)

    @_never_raises
    def on_chat_model_start(  # noqa: PLR0913 - LangChain's signature
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Record a chat model call start (implemented, so LangChain does not fall back to ``on_llm_start``)."""
        name = _run_name(kwargs.get("name"), serialized)
        model = _model_name(kwargs.get("invocation_params"), metadata)
        inputs = {"messages": messages[0] if len(messages) == 1 else messages}
        self._start("chat_model_start", "chat_model", name, inputs, run_id, parent_run_id, tags, metadata, model)

    @_never_raises
    def on_tool_start(  # noqa: PLR0913 - LangChain's signature
        self,
        serialized: dict[str, Any],
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Record a tool call start (structured ``inputs`` when LangChain gives them, else ``input_str``)."""
        name = _run_name(kwargs.get("name"), serialized)
        payload: Any = inputs if inputs is not None else input_str
        self._start("tool_start", "tool", name, payload, run_id, parent_run_id, tags, metadata)

    @_never_raises
    def on_retriever_start(  # noqa: PLR0913 - LangChain's signature
        self,
        serialized: dict[str, Any],
        query: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Record a retriever start."""
        name = _run_name(kwargs.get("name"), serialized, "Retriever")
        self._start("retriever_start", "retriever", name, {"query": query}, run_id, parent_run_id, tags, metadata)

    # --- tokens (the hot path)

    def on_llm_new_token(
        self,
        token: str | list[str | dict[str, Any]],
        *,
        chunk: Any = None,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """Record a streamed chunk: answer text, reasoning and tool-call arguments kept apart."""
        try:
            if type(token) is str:
                if token or chunk is None:
                    self.recorder.token(run_id, parent_run_id, token if token.isascii() else _clean(token), _TEXT)
                else:
                    self._empty_token(chunk, run_id, parent_run_id)
            else:
                self._block_token(token, run_id, parent_run_id)
        except Exception as exc:  # noqa: BLE001 - never raise into the user's chain
            self._failed("on_llm_new_token", exc)

    def _empty_token(self, chunk: Any, run_id: UUID, parent_run_id: UUID | None) -> None:
        """An empty text token: a tool-call fragment, reasoning in ``additional_kwargs``, or a closing chunk."""
        message = _attr(chunk, "message")
        pieces = []
        for call in _attr(message, "tool_call_chunks") or []:
            args = call.get("args") or ""
            name = call.get("name")
            pieces.append(f"{name} {args}" if name else args)
        if pieces:
            self.recorder.token(run_id, parent_run_id, _clean("".join(pieces)), _TOOL_CALL)
            return
        extra = _attr(message, "additional_kwargs")
        reasoning = extra.get("reasoning_content") if isinstance(extra, dict) else None
        if isinstance(reasoning, str) and reasoning:
            self.recorder.token(run_id, parent_run_id, _clean(reasoning), _REASONING)
            return
        self.recorder.token(run_id, parent_run_id, "", _TEXT)

    def _block_token(self, blocks: Any, run_id: UUID, parent_run_id: UUID | None) -> None:
        """A token given as a list of content blocks: one recorded chunk per kind present, in order."""
        by_kind: dict[int, list[str]] = {}
        for block in blocks if isinstance(blocks, list) else [blocks]:
            if isinstance(block, str):
                by_kind.setdefault(_TEXT, []).append(block)
            elif isinstance(block, dict):
                block_type = block.get("type")
                kind = _BLOCK_KIND.get(block_type, _TEXT) if isinstance(block_type, str) else _TEXT
                text = next((block[k] for k in _BLOCK_TEXT_KEYS if isinstance(block.get(k), str)), "")
                if kind == _TOOL_CALL and block.get("name"):
                    text = f"{_text(block['name'])} {text}"
                by_kind.setdefault(kind, []).append(text)
        if not by_kind:
            self.recorder.token(run_id, parent_run_id, "", _TEXT)
        for kind, texts in by_kind.items():
            self.recorder.token(run_id, parent_run_id, _clean("".join(texts)), kind)

    @_never_raises
    def on_stream_event(
        self,
        event: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """Record a content delta of the v2 streaming protocol (it replaces ``on_llm_new_token`` there)."""
        if isinstance(event, dict) and event.get("event") == "content-block-delta":
            delta = event.get("delta")
            if isinstance(delta, dict):
                self._block_token([delta], run_id, parent_run_id)

    # --- ends

    def _end(  # noqa: PLR0913, PLR0917 - the facts every end carries
        self,
        event: str,
        run_type: str,
        outputs: Any,
        run_id: UUID,
        parent_run_id: UUID | None,
        inputs: Any = None,
    ) -> None:
        snapshot = self._preview(outputs)
        self.recorder.end_run(
            run_id,
            parent_run_id,
            event=event,
            run_type=run_type,
            outputs=snapshot,
            data=snapshot,
            inputs=None if inputs is None else self._preview(inputs),
        )

    @_never_raises
    def on_chain_end(
        self,
        outputs: dict[str, Any],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """Record a chain's end (a streamed chain gets its real ``inputs`` only here)."""
        self._end("chain_end", "chain", outputs, run_id, parent_run_id, kwargs.get("inputs"))

    @_never_raises
    def on_llm_end(
        self,
        response: LLMResult,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """Record a model call's end with its token usage (``usage_metadata``, never summed from chunks)."""
        usage, model = _usage(response)
        snapshot = self._preview(_generations_preview(response))
        self.recorder.end_run(
            run_id,
            parent_run_id,
            event="llm_end",
            run_type="llm",
            outputs=snapshot,
            data=snapshot,
            usage=usage,
            model=None if model is None else _text(model),
        )

    @_never_raises
    def on_tool_end(
        self,
        output: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """Record a tool's end."""
        self._end("tool_end", "tool", output, run_id, parent_run_id)

    @_never_raises
    def on_retriever_end(
        self,
        documents: Sequence[Document],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """Record a retriever's end with its documents."""
        self._end("retriever_end", "retriever", {"documents": documents}, run_id, parent_run_id)

    # --- errors

    def _error(  # noqa: PLR0913, PLR0917 - the facts every error carries
        self,
        event: str,
        run_type: str,
        error: BaseException,
        run_id: UUID,
        parent_run_id: UUID | None,
        partial: Any = None,
        inputs: Any = None,
    ) -> None:
        message, error_type, traceback = describe_error(error, self.limits)
        interrupted = _is_interrupt(error)
        data: dict[str, Any] = {"error": message, "error_type": error_type}
        self.recorder.error_run(
            run_id,
            parent_run_id,
            event=event,
            run_type=run_type,
            error=message,
            error_type=error_type,
            traceback=traceback,
            interrupted=interrupted,
            outputs=None if partial is None else self._preview(partial),
            data=data,
            inputs=None if inputs is None else self._preview(inputs),
        )

    @_never_raises
    def on_chain_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """Record a chain's failure (a LangGraph interrupt is recorded as ``interrupted``)."""
        self._error("chain_error", "chain", error, run_id, parent_run_id, inputs=kwargs.get("inputs"))

    @_never_raises
    def on_llm_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """Record a model call's failure, with the partial output LangChain passes along."""
        response = kwargs.get("response")
        partial = _generations_preview(response) if response is not None else None
        self._error("llm_error", "llm", error, run_id, parent_run_id, partial)

    @_never_raises
    def on_tool_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """Record a tool's failure."""
        self._error("tool_error", "tool", error, run_id, parent_run_id)

    @_never_raises
    def on_retriever_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """Record a retriever's failure."""
        self._error("retriever_error", "retriever", error, run_id, parent_run_id)

    # --- events that do not change a run

    @_never_raises
    def on_custom_event(
        self,
        name: str,
        data: Any,
        *,
        run_id: UUID,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Record a custom event on its enclosing run; ``nbcallbacks.metric`` events become run metrics."""
        if name == METRIC_EVENT and isinstance(data, dict):
            self._metric(run_id, data)
            return
        self.recorder.event(run_id, None, event="custom_event", data={"name": _text(name), "data": self._preview(data)})

    def _metric(self, run_id: UUID, data: dict[str, Any]) -> None:
        name = _text(data.get("name"))
        value = data.get("value")
        labels = data.get("labels") or {}
        number = _metric_number(value)
        shown = number if number is not None else self._preview(value)
        if number is None:
            number = float("nan")
        self.recorder.metric(run_id, name, number, {"name": name, "value": shown, "labels": self._preview(labels)})

    @_never_raises
    def on_text(
        self,
        text: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """Record text printed by a legacy chain."""
        self.recorder.event(run_id, parent_run_id, event="text", data={"text": self._preview(text)})

    @_never_raises
    def on_retry(
        self,
        retry_state: RetryCallState,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """Record a retry attempt (emitted by legacy retrying code)."""
        outcome = _attr(retry_state, "outcome")
        failed = outcome is not None and _attr(outcome, "failed") is True
        data = {
            "attempt": self._preview(_attr(retry_state, "attempt_number")),
            "error": self._preview(outcome.exception()) if failed and outcome is not None else None,
        }
        self.recorder.event(run_id, parent_run_id, event="retry", data=data)

    @_never_raises
    def on_agent_action(
        self,
        action: AgentAction,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """Record a legacy agent's chosen action."""
        data = {
            "tool": self._preview(_attr(action, "tool")),
            "tool_input": self._preview(_attr(action, "tool_input")),
            "log": self._preview(_attr(action, "log")),
        }
        self.recorder.event(run_id, parent_run_id, event="agent_action", data=data)

    @_never_raises
    def on_agent_finish(
        self,
        finish: AgentFinish,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """Record a legacy agent's final answer."""
        data = {
            "return_values": self._preview(_attr(finish, "return_values")),
            "log": self._preview(_attr(finish, "log")),
        }
        self.recorder.event(run_id, parent_run_id, event="agent_finish", data=data)

    # --- consumers

    def add_sink(self, sink: Sink) -> None:
        """Send every event and run to ``sink`` as well: what was recorded so far, then each change.

        Writing happens on background threads (one per sink, each with a bounded backlog), never in the chain.
        """
        if self._sink_writer is None:
            from nbcallbacks.sinks import SinkWriter  # noqa: PLC0415 - only when sinks are used

            self._sink_writer = SinkWriter(self.recorder, title=self.title)
            finalizer = weakref.finalize(self, self._sink_writer.close, 0.0)
            finalizer.atexit = False  # at exit the sinks module flushes every writer, waiting for it
        self._sink_writer.add(sink)

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Block until every sink has written everything recorded so far; False if ``timeout`` passed first."""
        return True if self._sink_writer is None else self._sink_writer.flush(timeout)

    def sink_status(self) -> list[dict[str, Any]]:
        """Per sink: events and runs written, waiting, dropped, lost or failed, errors (``SinkWriter.status``)."""
        return [] if self._sink_writer is None else self._sink_writer.status()

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], session: str | int | None = None, run: str | None = None
    ) -> NotebookHandler:
        """A handler holding a trace saved by ``JSONLSink`` or ``SQLiteSink``, in this or any other process.

        Its runs, events, text, timings, DataFrames and charts are the saved ones; displaying it shows them.

        Args:
            path: the JSONL or SQLite file.
            session: a session id (or unique prefix), an index in start order, or ``None`` for the latest.
            run: keep only this run (id or unique prefix) and its descendants.
        """
        from nbcallbacks.history import load_trace  # noqa: PLC0415 - only when loading

        saved = load_trace(path, session=session, run=run)
        handler = cls(saved.limits, title=saved.title)
        handler.recorder.restore(saved.runs, saved.events, saved.first_time)
        return handler

    def runs_dataframe(self) -> pd.DataFrame:
        """One row per run, in start order (see ``nbcallbacks.export.runs_dataframe``)."""
        from nbcallbacks.export import runs_dataframe  # noqa: PLC0415 - pandas only when asked for

        return runs_dataframe(self.recorder)

    def to_dataframe(self) -> pd.DataFrame:
        """One row per callback event, in arrival order (see ``nbcallbacks.export.events_dataframe``)."""
        from nbcallbacks.export import events_dataframe  # noqa: PLC0415 - pandas only when asked for

        return events_dataframe(self.recorder)

    def metrics_dataframe(self) -> pd.DataFrame:
        """One row per recorded metric (see ``nbcallbacks.export.metrics_dataframe``)."""
        from nbcallbacks.export import metrics_dataframe  # noqa: PLC0415 - pandas only when asked for

        return metrics_dataframe(self.recorder)

    @property
    def widget(self) -> TraceWidget:
        """The live widget, created on first use (a handler never displayed opens no comm), again once closed."""
        if self._widget is None or self._widget.comm is None:  # a closed widget can no longer be displayed
            from nbcallbacks.widget import TraceWidget  # noqa: PLC0415 - anywidget only when displayed

            self._widget = TraceWidget(self.recorder, title=self.title)
        return self._widget

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """Show the widget when the handler is the last expression of a cell or passed to ``display``."""
        return self.widget._repr_mimebundle_(**kwargs)


# trace() and metric(): attach a handler to every run in a block, and record metrics from inside runs.

_ACTIVE: ContextVar[NotebookHandler | None] = ContextVar("nbcallbacks_active_handler", default=None)
register_configure_hook(_ACTIVE, inheritable=True)


def _in_notebook() -> bool:
    """True inside a Jupyter kernel (where displaying a widget makes sense)."""
    import sys  # noqa: PLC0415 - tiny, and keeps the module namespace clean

    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _flag_abandoned_runs_after_each_cell(handler: NotebookHandler) -> None:
    """When a notebook cell ends, flag runs that are still running as abandoned (see ``Recorder.mark_abandoned``).

    Held through a weak reference: the hook removes itself once the handler is gone.
    """
    import sys  # noqa: PLC0415 - tiny, and keeps the module namespace clean

    shell = sys.modules["IPython"].get_ipython()
    ref = weakref.ref(handler)

    def on_cell_end(*_: Any) -> None:
        alive = ref()
        if alive is None:
            shell.events.unregister("post_run_cell", on_cell_end)
            return
        try:
            alive.recorder.mark_abandoned()
        except Exception as exc:  # noqa: BLE001 - never raise into the kernel
            alive.recorder.record_handler_error("post_run_cell", exc)

    shell.events.register("post_run_cell", on_cell_end)


@contextlib.contextmanager
def trace(
    handler: NotebookHandler | None = None, *, display: bool | None = None, **handler_kwargs: Any
) -> Iterator[NotebookHandler]:
    """Attach a handler to every LangChain run inside the block, without passing ``callbacks=``.

    ``with nbcallbacks.trace() as h: agent.invoke(...)``. In a notebook the widget is displayed at the start of
    the block (``display=False`` to opt out).

    Args:
        handler: record into this handler instead of a new one.
        display: show the widget now; default: only inside a Jupyter kernel.
        **handler_kwargs: passed to ``NotebookHandler`` when a new one is made.
    """
    active = handler if handler is not None else NotebookHandler(**handler_kwargs)
    if display if display is not None else _in_notebook():
        from IPython.display import display as show  # noqa: PLC0415 - only in a notebook

        show(active)  # type: ignore[no-untyped-call]
    token = _ACTIVE.set(active)
    try:
        yield active
    finally:
        _ACTIVE.reset(token)
        if active._widget is not None:  # noqa: SLF001 - flush what the block recorded before the cell ends
            active._widget.flush()  # noqa: SLF001


def _metric_number(value: Any) -> float | None:
    """A metric's value as a float: any real number (bool, numpy scalars and ``Decimal`` included), else None."""
    if isinstance(value, (numbers.Real, decimal.Decimal)):
        try:
            return float(value)
        except (TypeError, ValueError, OverflowError):
            return None
    return None


def metric(name: str, value: float, /, **labels: Any) -> None:
    """Record a custom metric on the enclosing run (a tool, a node, a lambda).

    Sent as a LangChain custom event, so it works with any handler attached; ``NotebookHandler`` shows it on the
    run's row and in ``metrics_dataframe()``. Outside a run it is a no-op.
    """
    with contextlib.suppress(RuntimeError):  # no enclosing run: nothing to attach to
        dispatch_custom_event(METRIC_EVENT, {"name": name, "value": value, "labels": labels})


async def ametric(name: str, value: float, /, **labels: Any) -> None:
    """``metric`` for async code (Python 3.10 does not propagate the run context to ``metric``)."""
    with contextlib.suppress(RuntimeError):
        await adispatch_custom_event(METRIC_EVENT, {"name": name, "value": value, "labels": labels})
