"""Streamed tokens (the hot path): answer text, reasoning and tool-call arguments, kept apart.

A plain text token costs one lock-free append in the recorder; content blocks, tool-call chunks and the v2
streaming protocol's deltas are decoded first (``nbcallbacks.langchain.decode``).
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from nbcallbacks.langchain.base import IntakeBase, never_raises
from nbcallbacks.langchain.decode import TEXT, block_tokens, empty_token
from nbcallbacks.text import clean

if TYPE_CHECKING:
    from uuid import UUID

    from nbcallbacks.langchain.redaction import RedactedStreams
    from nbcallbacks.recorder import Recorder

__all__ = ["TokenIntake"]


class TokenIntake(IntakeBase):
    """``on_llm_new_token`` and ``on_stream_event``."""

    def record_into(self, recorder: Recorder, streams: RedactedStreams | None = None) -> None:
        """Record into ``recorder``; without redaction, text tokens are queued by ``recorder.token_callback``.

        That callback, set on the instance, is what LangChain calls (``getattr(handler, "on_llm_new_token")``):
        a text token costs one frame instead of this method's and ``Recorder.token``'s. Any other token comes back
        to this method. Not when redacting, nor when a subclass overrides this method (it sees every token). The
        callback holds the handler weakly, so that a dropped handler is freed at once (its finalizers close its
        sinks).
        """
        super().record_into(recorder, streams)
        if streams is not None or type(self).on_llm_new_token is not TokenIntake.on_llm_new_token:
            # Every token through the redactor, or through a subclass's own on_llm_new_token: the method.
            vars(self).pop("on_llm_new_token", None)
            return
        ref = weakref.ref(self)

        def decode(token: Any, chunk: Any, run_id: UUID, parent_run_id: UUID | None) -> None:
            intake = ref()
            if intake is not None:
                intake._decode_other(token, chunk, run_id, parent_run_id)  # noqa: SLF001 - its own intake

        def failed(exc: Exception) -> None:
            intake = ref()
            if intake is not None:
                intake.failed("on_llm_new_token", exc)

        vars(self)["on_llm_new_token"] = recorder.token_callback(decode, failed)

    def on_llm_new_token(
        self,
        token: str | list[str | dict[str, Any]],
        *,
        chunk: Any = None,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,  # named, though unused: LangChain always passes it, and **kwargs would
        **kwargs: Any,  # then build a dictionary per token
    ) -> None:
        """Record a streamed chunk: answer text, reasoning and tool-call arguments kept apart."""
        try:
            if type(token) is str and token:
                self.put_token(run_id, parent_run_id, token if token.isascii() else clean(token), TEXT)
            else:
                self._decode_other(token, chunk, run_id, parent_run_id)
        except Exception as exc:  # noqa: BLE001 - never raise into the user's chain
            self.failed("on_llm_new_token", exc)

    def _decode_other(self, token: Any, chunk: Any, run_id: UUID, parent_run_id: UUID | None) -> None:
        """Any token but non-empty text (the recorder's callback hands these here too).

        An empty string is a tool-call fragment, reasoning in ``additional_kwargs`` or a closing chunk (kept as
        empty text when no chunk says more); a list holds content blocks.
        """
        if type(token) is not str:
            self._block_token(token, run_id, parent_run_id)
        elif chunk is None:
            self.put_token(run_id, parent_run_id, token, TEXT)
        else:
            text, kind = empty_token(chunk)
            self.put_token(run_id, parent_run_id, clean(text), kind)

    def _block_token(self, blocks: Any, run_id: UUID, parent_run_id: UUID | None) -> None:
        """A token given as a list of content blocks: one recorded chunk per kind present, in order."""
        for text, kind in block_tokens(blocks):
            self.put_token(run_id, parent_run_id, clean(text), kind)

    @never_raises
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
