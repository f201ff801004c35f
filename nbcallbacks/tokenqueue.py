"""Streamed tokens on their way into a recorder: appended lock-free, applied in batches under its lock.

Standard library only. ``append`` (a ``deque.append``, atomic under the GIL) is all the per-token work the
chain's thread does; ``drain`` applies what waits to the runs and the event log, and the recorder calls it under
its lock before any other write or read, so one thread's events keep their order and every read sees every token.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from nbcallbacks.eventlog import NO_TOKEN

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable

    from nbcallbacks.eventlog import EventLog
    from nbcallbacks.events import RunRecord
    from nbcallbacks.runtable import RunTable

Pending = tuple[Any, Any, str, int, float, int]
"""A queued token: ``(run id, parent run id, text, kind, time, thread ident)``."""


class TokenQueue:
    """Queued tokens and how they are applied.

    Args:
        runs: the recorder's runs.
        log: the recorder's event log.
        max_tokens: kept chunks per run (``Limits.max_tokens_per_run``); later ones are counted only.
        placeholder: makes the run of a token met before its start: ``(key, parent key, time) -> run``.
    """

    def __init__(
        self,
        runs: RunTable,
        log: EventLog,
        max_tokens: int,
        placeholder: Callable[[Hashable, Hashable | None, float], RunRecord],
    ) -> None:
        """An empty queue."""
        self.pending: deque[Pending] = deque()
        self._runs = runs
        self._log = log
        self._max_tokens = max_tokens
        self._placeholder = placeholder
        # LangChain passes the same run id object for every chunk of a stream: an identity check skips hashing
        # the UUID (a Python-level __hash__) on all but the first chunk.
        self._last_key: object = object()
        self._last_run: RunRecord | None = None

    def __len__(self) -> int:
        """Tokens waiting."""
        return len(self.pending)

    def drain(self) -> None:
        """Apply the tokens queued so far (recorder lock held); tokens queued meanwhile wait for the next drain."""
        pending = self.pending
        count = len(pending)
        if not count:
            return
        popleft = pending.popleft
        items = [popleft() for _ in range(count)]
        run_ids = [item[0] for item in items]
        idents = {item[5] for item in items}
        if len(idents) == 1 and run_ids[0] is self._last_key and len(set(map(id, run_ids))) == 1:
            self._apply_stream(items, next(iter(idents)))  # the common case: one stream on one thread
        else:
            for item in items:
                self._apply_one(item)

    def _run_of(self, key: Any, parent_key: Any, now: float) -> RunRecord:
        if key is self._last_key and self._last_run is not None:
            return self._last_run
        known = self._runs.by_key.get(key)
        run = known if known is not None else self._placeholder(key, parent_key, now)
        self._last_key = key
        self._last_run = run
        return run

    def _apply_one(self, item: Pending) -> None:
        key, parent_key, text, kind, now, ident = item
        run = self._run_of(key, parent_key, now)
        run.streamed_chunks += 1
        run.abandoned = False  # it is alive after all
        if run.first_token is None and text:
            run.first_token = now
        texts = run.token_texts
        index = len(texts)
        if index < self._max_tokens:
            texts.append(text)
            run.token_kinds.append(kind)
            self._log.extend_tokens((now,), run.order, self._log.thread_index(ident), index, 1)
        else:
            run.chunks_not_kept += 1
            self._log.extend_tokens((now,), run.order, self._log.thread_index(ident), NO_TOKEN, 0)

    def _apply_stream(self, items: list[Pending], ident: int) -> None:
        """Tokens that all belong to the last streamed run and one thread, applied column by column."""
        run = self._run_of(items[0][0], items[0][1], items[0][4])
        _, _, texts, kinds, times, _ = zip(*items, strict=True)
        count = len(items)
        run.streamed_chunks += count
        run.abandoned = False
        if run.first_token is None:
            spoken = next((i for i, text in enumerate(texts) if text), None)
            if spoken is not None:
                run.first_token = times[spoken]
        kept = run.token_texts
        start = len(kept)
        room = max(0, min(count, self._max_tokens - start))
        if room:
            kept.extend(texts[:room])
            run.token_kinds.extend(bytes(kinds[:room]))
        run.chunks_not_kept += count - room
        self._log.extend_tokens(times, run.order, self._log.thread_index(ident), start, room)
