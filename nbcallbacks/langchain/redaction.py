"""Streamed text through a redactor (``NotebookHandler(redact=...)``): a secret split across chunks is never kept.

Each streaming model run gets a ``StreamRedactor`` (``nbcallbacks.redact``) that holds back the tail of the text
until it cannot be the start of a secret; at the run's end what it held is released and the whole kept text is
checked once more. Only used when a redactor is set: the token path without one does not come here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Hashable

    from nbcallbacks.recorder import Recorder
    from nbcallbacks.redact import Redactor, StreamRedactor

__all__ = ["RedactedStreams"]


class RedactedStreams:
    """The stream redactors of a handler's model runs, and how their text reaches the recorder."""

    def __init__(self, recorder: Recorder, redactor: Redactor) -> None:
        """Streams into ``recorder`` through ``redactor``."""
        self._recorder = recorder
        self._redactor = redactor
        self._streams: dict[Hashable, StreamRedactor] = {}

    def token(self, run_id: Hashable, parent_run_id: Hashable | None, text: str, kind: int) -> None:
        """``Recorder.token`` of what the run's stream redactor releases now (a split secret never is).

        A chunk whose text is held back still counts as the run's first token.
        """
        stream = self._streams.get(run_id)
        if stream is None:
            stream = self._streams[run_id] = self._redactor.stream()
        recorder = self._recorder
        first = bool(text) and not stream.spoke
        now = recorder.clock() if first else 0.0
        recorder.token(run_id, parent_run_id, stream.feed(text, kind), kind)
        if first:
            stream.spoke = True
            recorder.mark_first_token(run_id, now)

    def end(self, run_id: Hashable) -> None:
        """At a model run's end: keep what its stream redactor held back, then check the whole kept text."""
        stream = self._streams.pop(run_id, None)
        if stream is not None:
            for kind, text in stream.finish():
                self._recorder.release_held_text(run_id, text, kind)
        self._recorder.rewrite_kept_text(run_id, self._redactor.redact_chunks)
