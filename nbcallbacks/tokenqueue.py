"""Streamed tokens on their way into a recorder: appended lock-free, applied in batches under its lock.

Standard library only. ``append`` (a ``list.append``, atomic under the GIL) is all the per-token work the
chain's thread does; ``drain`` applies what waits to the runs and the event log, and the recorder calls it under
its lock before any other write or read, so one thread's events keep their order and every read sees every token.
"""

from __future__ import annotations

import itertools
import threading
from typing import TYPE_CHECKING

from nbcallbacks.eventlog import NO_TOKEN, pack
from nbcallbacks.events import TOKEN_EVENT_CODE

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable

    from nbcallbacks.eventlog import EventLog
    from nbcallbacks.events import RunRecord
    from nbcallbacks.runtable import RunTable

Pending = tuple[int, str, int, float, int]
"""A queued token: ``(run slot, text, kind, time, thread ident)``. Only atoms (no run id object): CPython's
collector stops tracking such a tuple, so thousands of waiting tokens do not slow its collections."""


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
        self.pending: list[Pending] = []
        """Appended to by any thread without a lock; only ``drain`` (under the recorder's lock) takes from the front,
        with one slice and one slice deletion (each atomic under the GIL), so appends meanwhile are kept."""
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
        items = pending[:count]
        del pending[:count]
        slots, texts, kinds, times, idents = zip(*items, strict=True)
        if slots.count(slots[0]) == count and idents.count(idents[0]) == count:  # (cheaper than two sets)
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
        slots: tuple[int, ...],
        texts: tuple[str, ...],
        kinds: tuple[int, ...],
        times: tuple[float, ...],
        idents: tuple[int, ...],
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
        texts: tuple[str, ...],
        kinds: tuple[int, ...],
        times: tuple[float, ...],
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
        if room:
            kept.extend(texts[:room])
            run.token_kinds.extend(bytes(kinds[:room]))
        run.chunks_not_kept += count - room
        self._log.extend_tokens(times, run.order, self._thread_index(ident), start, room)
