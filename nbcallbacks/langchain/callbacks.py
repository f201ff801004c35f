"""``CallbackIntake``: LangChain's callback interface, each method decoding its arguments and delegating.

Every ``on_*`` method turns LangChain's arguments into one recorder call: snapshot the payload into a bounded
preview, then one O(1) write under the recorder's lock (a streamed token: one lock-free append, see
``tokens``). Runs start, end and fail here; streamed tokens are in ``tokens``, events that do not change a run in
``notes``. Nothing here ever raises into the user's chain: failures are caught, counted and kept for display.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nbcallbacks.events import MODEL_RUN_TYPES
from nbcallbacks.langchain.base import never_raises
from nbcallbacks.langchain.decode import (
    MAX_SAFE_INT,
    generations_preview,
    is_interrupt,
    model_name,
    provider_name,
    run_name,
    usage,
)
from nbcallbacks.langchain.notes import NoteIntake
from nbcallbacks.langchain.tokens import TokenIntake
from nbcallbacks.payload import describe_error
from nbcallbacks.text import safe_str

if TYPE_CHECKING:
    from collections.abc import Sequence
    from uuid import UUID

    from langchain_core.documents import Document
    from langchain_core.messages import BaseMessage
    from langchain_core.outputs import LLMResult

__all__ = ["CallbackIntake"]


class CallbackIntake(TokenIntake, NoteIntake):
    """LangChain's callback interface over a ``Recorder``: decode, snapshot, record; never raise.

    ``NotebookHandler`` is this plus what consumes the recorder (widget, DataFrames, sinks).
    """

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
            name=self._redacted(name),
            run_type=run_type,
            tags=[self._redacted(safe_str(tag)) for tag in tags] if tags else None,
            metadata=self._preview(metadata) if metadata else None,
            inputs=snapshot,
            data=snapshot,
            model=model,
            provider=provider_name(metadata) if model is not None or run_type in MODEL_RUN_TYPES else None,
            langgraph_node=None if node is None else safe_str(node),
            langgraph_step=step if type(step) is int and abs(step) <= MAX_SAFE_INT else None,
            hidden=bool(tags) and "langsmith:hidden" in tags,  # type: ignore[operator]
        )
        if parent_run_id is None and self.root_start_hooks:
            self._root_started(str(run_id))

    @never_raises
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

    @never_raises
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

    @never_raises
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

    @never_raises
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

    @never_raises
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

    @never_raises
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

    @never_raises
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
        if self.streams is not None:
            self.streams.end(run_id)
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

    @never_raises
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

    @never_raises
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
        message = self._redacted(message)
        traceback = None if traceback is None else self._redacted(traceback)
        if self.streams is not None:
            self.streams.end(run_id)
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

    @never_raises
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

    @never_raises
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

    @never_raises
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

    @never_raises
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
