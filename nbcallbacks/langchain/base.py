"""The shared base of the LangChain intake: its state, previews, redaction of kept text, failure accounting.

Nothing in the intake ever raises into the user's chain: ``never_raises`` wraps each callback, and failures are
counted and kept for display.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any, ParamSpec, cast

from langchain_core.callbacks import BaseCallbackHandler

from nbcallbacks.payload import preview

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable

    from nbcallbacks.events import Limits
    from nbcallbacks.langchain.redaction import RedactedStreams
    from nbcallbacks.recorder import Recorder
    from nbcallbacks.redact import Redactor

__all__ = ["IntakeBase", "never_raises"]

logger = logging.getLogger("nbcallbacks.handler")
logger.addHandler(logging.NullHandler())

_P = ParamSpec("_P")


def never_raises(method: Callable[_P, None]) -> Callable[_P, None]:
    """Wrap a callback so that a failure in it is counted and shown, never raised into the user's chain.

    (``on_llm_new_token``, the per-token path, does the same inline to save the extra call.)
    """
    where = method.__name__

    @functools.wraps(method)
    def guarded(*args: _P.args, **kwargs: _P.kwargs) -> None:
        try:
            method(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - never raise into the user's chain
            intake = cast("IntakeBase", args[0])  # the method's self
            intake.failed(where, exc)

    return guarded


class IntakeBase(BaseCallbackHandler):
    """What every part of the intake shares: the recorder, limits, redaction, failure accounting."""

    run_inline = True
    """Called on the thread that runs the chain, also under asyncio: no executor hop per event."""
    raise_error = False
    """LangChain must never re-raise from this handler (it catches its own errors anyway)."""

    # LangChain reads one of these before every callback it makes, a token's included. BaseCallbackHandler has
    # them as properties (a Python call each time); nothing is ever ignored here, so plain attributes do.
    ignore_llm = False
    ignore_retry = False
    ignore_chain = False
    ignore_agent = False
    ignore_retriever = False
    ignore_chat_model = False
    ignore_custom_event = False

    recorder: Recorder
    limits: Limits
    root_start_hooks: list[Callable[[str], None]]
    """Called on the chain's thread when a root run (no parent) starts, with its run id (e.g. to capture an
    ambient OpenTelemetry context). Each must be tiny and must not raise (a failure is counted)."""
    redactor: Redactor | None = None
    """Masks secrets in every string kept (``NotebookHandler(redact=...)``); None: nothing to do, at no cost."""
    streams: RedactedStreams | None = None
    """Streamed text on its way through the redactor (only with a redactor; see ``redaction``)."""
    put_token: Callable[[Hashable, Hashable | None, str, int], None]
    """Where a decoded chunk goes: ``recorder.token``, or ``streams.token`` when redacting (bound once, so the
    per-token path makes no choice)."""

    def record_into(self, recorder: Recorder, streams: RedactedStreams | None = None) -> None:
        """Record into ``recorder``; streamed text through ``streams`` first when given (redaction)."""
        self.recorder = recorder
        self.streams = streams
        self.put_token = recorder.token if streams is None else streams.token

    def _root_started(self, run_id: str) -> None:
        for hook in self.root_start_hooks:
            try:
                hook(run_id)
            except Exception as exc:  # noqa: BLE001, PERF203 - a hook must never break the chain
                self.failed("root start hook", exc)

    def _redacted(self, text: str) -> str:
        return text if self.redactor is None else self.redactor.redact_text(text)

    def _preview(self, obj: Any) -> Any:
        if self.redactor is None:
            return preview(obj, self.limits)
        return self.redactor.redact_preview(preview(obj, self.limits))

    def failed(self, where: str, exc: BaseException) -> None:
        """Count and keep a failure of the handler's own code (shown in the widget)."""
        logger.debug("nbcallbacks %s failed", where, exc_info=exc)
        self.recorder.record_handler_error(where, exc)
