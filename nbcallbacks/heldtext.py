"""What a stream redactor needs from a recorder: text held back from a run's stream, then released or rewritten.

Standard library only; ``Recorder`` inherits it (``NotebookHandler(redact=...)``, see
``nbcallbacks.langchain.redaction``).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from nbcallbacks.events import TOKEN_EVENT_CODE

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable

    from nbcallbacks.eventlog import EventLog
    from nbcallbacks.events import Limits
    from nbcallbacks.runtable import RunTable

__all__ = ["HeldText"]

_get_ident = threading.get_ident


class HeldText:
    """The recorder's methods for redacted streams (its lock, runs and log are the recorder's own)."""

    limits: Limits
    _clock: Callable[[], float]
    _lock: threading.Lock
    _runs: RunTable
    _log: EventLog

    def _drain(self) -> None:
        raise NotImplementedError

    def _wake(self) -> None:
        raise NotImplementedError

    def mark_first_token(self, run_id: Hashable, when: float) -> None:
        """A chunk with text arrived at ``when``, but a redactor held its text back: it is still the first token."""
        with self._lock:
            self._drain()
            run = self._runs.by_key.get(run_id)
            if run is not None and run.first_token is None:
                run.first_token = when

    def release_held_text(self, run_id: Hashable, text: str, kind: int) -> None:
        """Keep text a redactor held back from a run's stream, now that the run ends.

        It is kept and logged like a streamed chunk (a token event with data ``{"held_back": True}``), so every
        consumer reads it, but it is not counted as one: ``streamed_chunks`` stays the number of chunks received.
        """
        now = self._clock()
        with self._lock:
            self._drain()
            run = self._runs.by_key.get(run_id)
            if run is None or len(run.token_texts) >= self.limits.max_tokens_per_run:
                return
            index = self._runs.keep_text(run, text, kind)
            thread = self._log.thread_index(_get_ident())
            self._log.append(now, run.order, thread, TOKEN_EVENT_CODE, index, {"held_back": True})
        self._wake()

    def rewrite_kept_text(self, run_id: Hashable, rewrite: Callable[[list[str], bytearray], list[str] | None]) -> None:
        """Replace a run's kept chunk texts by ``rewrite(texts, kinds)`` (same count), unless it returns None.

        ``rewrite`` runs outside the lock; nothing is replaced if chunks arrived meanwhile.
        """
        with self._lock:
            self._drain()
            run = self._runs.by_key.get(run_id)
            if run is None or not run.token_texts:
                return
            texts, kinds = list(run.token_texts), bytearray(run.token_kinds)
        replaced = rewrite(texts, kinds)
        if replaced is None or len(replaced) != len(texts):
            return
        with self._lock:
            if len(run.token_texts) == len(texts):
                run.token_texts[:] = replaced
