"""Streamed tokens on their way into a recorder: appended lock-free, applied in batches under its lock.

Standard library only. ``append`` (a ``list.append``, atomic under the GIL) is all the per-token work the
chain's thread does; ``drain`` applies what waits to the runs and the event log, and the recorder calls it under
its lock before any other write or read, so one thread's events keep their order and every read sees every token.
"""

from __future__ import annotations

import itertools
import threading
from typing import TYPE_CHECKING, Any, Final

from nbcallbacks.eventlog import NO_TOKEN, pack
from nbcallbacks.events import TOKEN_EVENT_CODE, TOKEN_KINDS
from nbcallbacks.text import clean

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Sequence

    from nbcallbacks.eventlog import EventLog
    from nbcallbacks.events import RunRecord
    from nbcallbacks.runtable import RunTable

SETTLE_AT: Final = 512
"""Queued tokens past which the writing thread applies them itself (no reader did), bounding the queue's memory."""
_TEXT: Final = TOKEN_KINDS.index("text")
_get_ident = threading.get_ident

FIELDS: Final = 5
"""Entries per queued token in ``TokenQueue.pending``: run slot, text, kind, time, thread ident."""
SETTLE_ENTRIES: Final = SETTLE_AT * FIELDS


class TokenQueue:
    """Queued tokens and how they are applied.

    Args:
        runs: the recorder's runs.
        log: the recorder's event log.
        max_tokens: kept chunks per run (``Limits.max_tokens_per_run``); later ones are counted only.
        placeholder: makes the run of a token met before its start: ``(key, parent key, time) -> run``.
        clock: the recorder's clock (a token's time).
        after: called on the token's thread when more than ``wake_at`` tokens wait (the recorder wakes its
            consumers, and applies the tokens itself past ``SETTLE_AT``).
    """

    def __init__(  # noqa: PLR0913 - what a queue feeds and is fed by
        self,
        runs: RunTable,
        log: EventLog,
        max_tokens: int,
        placeholder: Callable[[Hashable, Hashable | None, float], RunRecord],
        *,
        clock: Callable[[], float],
        after: Callable[[], None],
    ) -> None:
        """An empty queue."""
        self.clock = clock
        self.after = after
        self.wake_at = SETTLE_ENTRIES
        """Queued entries (``FIELDS`` per token) past which a new token calls ``after``: 0 while a consumer waits."""
        self._last: tuple[object, int] = (object(), -1)
        """``(run id object, slot)`` of the last token: LangChain passes one run id object per stream, so an identity
        check finds the slot without hashing the UUID. Replaced whole: no thread sees a key with another's slot."""
        self.pending: list[Any] = []
        """``FIELDS`` entries per token, flat: run slot, text, kind, time, thread ident (only atoms). Extended by any
        thread without a lock, a token's entries by one ``list.extend`` (atomic under the GIL, so they stay
        together); only ``drain`` (under the recorder's lock) takes from the front, with one slice and one slice
        deletion (each atomic), so tokens queued meanwhile are kept. Flat rather than a tuple per token: the drain
        takes each column with one strided slice instead of transposing tuples, and no object per token waits
        for the collector."""
        self._slots: dict[Hashable, int] = {}
        self._keys: dict[int, tuple[Hashable, Hashable | None]] = {}
        self._next_slot = itertools.count().__next__
        self._slot_runs: dict[int, RunRecord] = {}
        self._thread_names: dict[int, str] = {}
        """Thread ident -> name, noted on the token's own thread (a thread may be gone when its tokens are applied)."""
        self._runs = runs
        self._log = log
        self._max_tokens = max_tokens
        self._placeholder = placeholder

    # --- the token hot path (any thread, no lock)

    @property
    def queued(self) -> int:
        """Tokens waiting to be applied."""
        return len(self.pending) // FIELDS

    def put(self, run_id: Hashable, parent_run_id: Hashable | None, text: str, kind: int) -> None:
        """Queue one streamed chunk of a run (``kind`` indexes ``TOKEN_KINDS``)."""
        last = self._last
        if last[0] is run_id:
            slot = last[1]
        else:
            slot = self.slot(run_id, parent_run_id)
            self._last = (run_id, slot)
        pending = self.pending
        pending.extend((slot, text, kind, self.clock(), _get_ident()))
        if len(pending) > self.wake_at:
            self.after()

    def callback(self, fallback: Callable[..., None], failed: Callable[[Exception], None]) -> Callable[..., None]:
        """A per-token callback, in ``on_llm_new_token``'s shape, that queues a text token in its own frame.

        It takes the token, then ``run_id``, ``parent_run_id`` and any other keywords. A non-empty string is queued
        as text, as ``put`` would, with lone surrogates replaced; any other token goes to
        ``fallback(token, chunk, run_id, parent_run_id)``, to be decoded and then ``put``. An exception in either
        goes to ``failed``, never to the caller. LangChain calls it once per chunk of a stream: one frame, the
        names it needs bound in it, instead of a method calling ``put``.
        """
        queue, pending, clock, slot_of = self, self.pending, self.clock, self.slot
        extend = pending.extend
        last: tuple[object, int] = (object(), -1)  # as ``_last``

        def on_token(
            token: Any,
            *,
            run_id: Hashable,
            parent_run_id: Hashable | None = None,
            chunk: Any = None,  # named, as LangChain always passes them: **kwargs would build a dictionary per token
            tags: Any = None,  # noqa: ARG001 - LangChain passes it
            **kwargs: Any,  # noqa: ARG001 - whatever else a LangChain version passes
        ) -> None:
            nonlocal last
            try:
                if type(token) is str and token:
                    cached = last
                    if cached[0] is run_id:
                        slot = cached[1]
                    else:
                        slot = slot_of(run_id, parent_run_id)
                        last = (run_id, slot)
                    extend((slot, token if token.isascii() else clean(token), _TEXT, clock(), _get_ident()))
                    if len(pending) > queue.wake_at:
                        queue.after()
                else:
                    fallback(token, chunk, run_id, parent_run_id)
            except Exception as exc:  # noqa: BLE001 - never raise into the caller's stream
                failed(exc)

        return on_token

    # --- applying

    def slot(self, key: Hashable, parent_key: Hashable | None) -> int:
        """The slot of a run id (made on its first token; any thread, no lock): once per stream, not per token.

        Two threads meeting a new run at once may give it two slots; both lead to the same run when applied.
        """
        slot = self._slots.get(key)
        if slot is None:
            slot = self._next_slot()
            self._keys[slot] = (key, parent_key)
            self._slots[key] = slot
        self._thread_names[threading.get_ident()] = threading.current_thread().name
        return slot

    def drain(self) -> None:
        """Apply the tokens queued so far (recorder lock held); tokens queued meanwhile wait for the next drain."""
        pending = self.pending
        count = len(pending)
        if not count:
            return
        items = pending[:count]  # whole tokens: every extend adds FIELDS entries at once
        del pending[:count]
        slots, texts, kinds, times, idents = (items[i::FIELDS] for i in range(FIELDS))
        tokens = len(slots)
        if slots.count(slots[0]) == tokens and idents.count(idents[0]) == tokens:  # (cheaper than two sets)
            self._apply_stream(slots[0], texts, kinds, times, idents[0])  # the common case: one stream, one thread
        else:
            self._apply_mixed(slots, texts, kinds, times, idents)

    def _thread_index(self, ident: int) -> int:
        return self._log.thread_index(ident, self._thread_names.get(ident))

    def _run_of(self, slot: int, now: float) -> RunRecord:
        run = self._slot_runs.get(slot)
        if run is None:
            key, parent_key = self._keys[slot]
            known = self._runs.by_key.get(key)
            run = known if known is not None else self._placeholder(key, parent_key, now)
            self._slot_runs[slot] = run
        return run

    def _apply_mixed(
        self,
        slots: Sequence[int],
        texts: Sequence[str],
        kinds: Sequence[int],
        times: Sequence[float],
        idents: Sequence[int],
    ) -> None:
        """Tokens of several runs or threads (a batch's streams), applied in arrival order.

        Each run is looked up once per drain, each (run, thread) packed once, and the log extended once.
        """
        runs: dict[int, RunRecord] = {}
        metas: dict[tuple[int, int], int] = {}
        entry_metas: list[int] = []
        indices: list[int] = []
        log, max_tokens = self._log, self._max_tokens
        for slot, text, kind, now, ident in zip(slots, texts, kinds, times, idents, strict=True):
            run = runs.get(slot)
            if run is None:
                run = runs[slot] = self._run_of(slot, now)
                run.abandoned = False  # it is alive after all
            run.streamed_chunks += 1
            if run.first_token is None and text:
                run.first_token = now
            kept = run.token_texts
            if len(kept) < max_tokens:
                indices.append(len(kept))
                kept.append(text)
                run.token_kinds.append(kind)
            else:
                indices.append(NO_TOKEN)
                run.chunks_not_kept += 1
            meta = metas.get((slot, ident))
            if meta is None:
                meta = metas[slot, ident] = pack(run.order, self._thread_index(ident), TOKEN_EVENT_CODE)
            entry_metas.append(meta)
        log.extend_entries(times, entry_metas, indices)

    def _apply_stream(
        self,
        slot: int,
        texts: Sequence[str],
        kinds: Sequence[int],
        times: Sequence[float],
        ident: int,
    ) -> None:
        """Tokens that all belong to one run and one thread, applied column by column."""
        run = self._run_of(slot, times[0])
        count = len(texts)
        run.streamed_chunks += count
        run.abandoned = False
        if run.first_token is None:
            spoken = next((i for i, text in enumerate(texts) if text), None)
            if spoken is not None:
                run.first_token = times[spoken]
        kept = run.token_texts
        start = len(kept)
        room = max(0, min(count, self._max_tokens - start))
        if room == count:  # the common case: no slices
            kept.extend(texts)
            run.token_kinds.extend(bytes(kinds))
        elif room:
            kept.extend(texts[:room])
            run.token_kinds.extend(bytes(kinds[:room]))
        run.chunks_not_kept += count - room
        self._log.extend_tokens(times, run.order, self._thread_index(ident), start, room)
