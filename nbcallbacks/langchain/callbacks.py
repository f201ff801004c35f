"""``CallbackIntake``: LangChain's callback interface, each method decoding its arguments and delegating.

Every ``on_*`` method turns LangChain's arguments into one recorder call: snapshot the payload into a bounded
preview, then one O(1) write under the recorder's lock (a streamed token: one lock-free append). Nothing here
ever raises into the user's chain: failures are caught, counted and kept for display.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any, ParamSpec, cast

from langchain_core.callbacks import BaseCallbackHandler

from nbcallbacks.events import METRIC_EVENT
from nbcallbacks.langchain.decode import (
    MAX_SAFE_INT,
    TEXT,
    attr,
    block_tokens,
    empty_token,
    generations_preview,
    is_interrupt,
    metric_number,
    model_name,
    provider_name,
    run_name,
    usage,
)
from nbcallbacks.payload import describe_error, preview
from nbcallbacks.text import clean, safe_str

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Sequence
    from uuid import UUID

    from langchain_core.agents import AgentAction, AgentFinish
    from langchain_core.documents import Document
    from langchain_core.messages import BaseMessage
    from langchain_core.outputs import LLMResult
    from tenacity import RetryCallState

    from nbcallbacks.events import Limits
    from nbcallbacks.recorder import Recorder
    from nbcallbacks.redact import Redactor, StreamRedactor

__all__ = ["CallbackIntake"]

logger = logging.getLogger("nbcallbacks.handler")
logger.addHandler(logging.NullHandler())

_P = ParamSpec("_P")


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
            intake = cast("CallbackIntake", args[0])  # the method's self
            intake.failed(where, exc)

    return guarded


class CallbackIntake(BaseCallbackHandler):
    """LangChain's callback interface over a ``Recorder``: decode, snapshot, record; never raise.

    ``NotebookHandler`` is this plus what consumes the recorder (widget, DataFrames, sinks).
    """

    run_inline = True
    """Called on the thread that runs the chain, also under asyncio: no executor hop per event."""
    raise_error = False
    """LangChain must never re-raise from this handler (it catches its own errors anyway)."""

    recorder: Recorder
    limits: Limits
    root_start_hooks: list[Callable[[str], None]]
    """Called on the chain's thread when a root run (no parent) starts, with its run id (e.g. to capture an
    ambient OpenTelemetry context). Each must be tiny and must not raise (a failure is counted)."""
    redactor: Redactor | None = None
    """Masks secrets in every string kept (``NotebookHandler(redact=...)``); None: nothing to do, at no cost."""
    streams: dict[Hashable, StreamRedactor]
    """Per streaming model run, its stream redactor (only with a redactor)."""

    def _root_started(self, run_id: str) -> None:
        for hook in self.root_start_hooks:
            try:
                hook(run_id)
            except Exception as exc:  # noqa: BLE001, PERF203 - a hook must never break the chain
                self.failed("root start hook", exc)

    def _preview(self, obj: Any) -> Any:
        if self.redactor is None:
            return preview(obj, self.limits)
        return self.redactor.redact_preview(preview(obj, self.limits))

    def failed(self, where: str, exc: BaseException) -> None:
        """Count and keep a failure of the handler's own code (shown in the widget)."""
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
            tags=[self._redacted(safe_str(tag)) for tag in tags] if tags else None,
            metadata=self._preview(metadata) if metadata else None,
            inputs=snapshot,
            data=snapshot,
            model=model,
            provider=provider_name(metadata) if model is not None or run_type in {"llm", "chat_model"} else None,
            langgraph_node=None if node is None else safe_str(node),
            langgraph_step=step if type(step) is int and abs(step) <= MAX_SAFE_INT else None,
            hidden=bool(tags) and "langsmith:hidden" in tags,  # type: ignore[operator]
        )
        if parent_run_id is None and self.root_start_hooks:
            self._root_started(str(run_id))

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
        name = run_name(kwargs.get("name"), serialized)
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
        name = run_name(kwargs.get("name"), serialized)
        model = model_name(kwargs.get("invocation_params"), metadata)
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
        name = run_name(kwargs.get("name"), serialized)
        model = model_name(kwargs.get("invocation_params"), metadata)
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
        name = run_name(kwargs.get("name"), serialized)
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
        name = run_name(kwargs.get("name"), serialized, "Retriever")
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
                    self.recorder.token(run_id, parent_run_id, token if token.isascii() else clean(token), TEXT)
                else:
                    self._empty_token(chunk, run_id, parent_run_id)
            else:
                self._block_token(token, run_id, parent_run_id)
        except Exception as exc:  # noqa: BLE001 - never raise into the user's chain
            self.failed("on_llm_new_token", exc)

    def _empty_token(self, chunk: Any, run_id: UUID, parent_run_id: UUID | None) -> None:
        """An empty text token: a tool-call fragment, reasoning in ``additional_kwargs``, or a closing chunk."""
        text, kind = empty_token(chunk)
        self.recorder.token(run_id, parent_run_id, clean(text), kind)

    def _block_token(self, blocks: Any, run_id: UUID, parent_run_id: UUID | None) -> None:
        """A token given as a list of content blocks: one recorded chunk per kind present, in order."""
        for text, kind in block_tokens(blocks):
            self.recorder.token(run_id, parent_run_id, clean(text), kind)

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

    # --- redaction (NotebookHandler(redact=...)): only reached when a redactor is set

    def _redacted(self, text: str) -> str:
        return text if self.redactor is None else self.redactor.redact_text(text)

    def redacted_token(self, run_id: Hashable, parent_run_id: Hashable | None, text: str, kind: int) -> None:
        """``Recorder.token`` through the run's stream redactor: what it releases now (a split secret never is).

        The handler puts this in place of its recorder's ``token`` when redacting. A chunk whose text is held
        back still counts as the run's first token.
        """
        stream = self.streams.get(run_id)
        if stream is None:
            stream = self.streams[run_id] = cast("Redactor", self.redactor).stream()
        first = bool(text) and not stream.spoke
        now = self.recorder.clock() if first else 0.0
        type(self.recorder).token(self.recorder, run_id, parent_run_id, stream.feed(text, kind), kind)
        if first:
            stream.spoke = True
            self.recorder.mark_first_token(run_id, now)

    def _end_stream(self, run_id: Hashable) -> None:
        """At a model run's end: keep what its stream redactor held back, then check the whole kept text."""
        stream = self.streams.pop(run_id, None)
        if stream is not None:
            for kind, text in stream.finish():
                self.recorder.release_held_text(run_id, text, kind)
        self.recorder.rewrite_kept_text(run_id, cast("Redactor", self.redactor).redact_chunks)

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
        reported, model = usage(response)
        if self.redactor is not None:
            self._end_stream(run_id)
        snapshot = self._preview(generations_preview(response))
        self.recorder.end_run(
            run_id,
            parent_run_id,
            event="llm_end",
            run_type="llm",
            outputs=snapshot,
            data=snapshot,
            usage=reported,
            model=model,
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
        if self.redactor is not None:
            message = self.redactor.redact_text(message)
            traceback = None if traceback is None else self.redactor.redact_text(traceback)
            self._end_stream(run_id)
        interrupted = is_interrupt(error)
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
        partial = generations_preview(response) if response is not None else None
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
        data = {"name": safe_str(name), "data": self._preview(data)}
        self.recorder.event(run_id, None, event="custom_event", data=data)

    def _metric(self, run_id: UUID, data: dict[str, Any]) -> None:
        name = safe_str(data.get("name"))
        value = data.get("value")
        labels = data.get("labels") or {}
        number = metric_number(value)
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
        outcome = attr(retry_state, "outcome")
        failed = outcome is not None and attr(outcome, "failed") is True
        data = {
            "attempt": self._preview(attr(retry_state, "attempt_number")),
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
            "tool": self._preview(attr(action, "tool")),
            "tool_input": self._preview(attr(action, "tool_input")),
            "log": self._preview(attr(action, "log")),
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
            "return_values": self._preview(attr(finish, "return_values")),
            "log": self._preview(attr(finish, "log")),
        }
        self.recorder.event(run_id, parent_run_id, event="agent_finish", data=data)
