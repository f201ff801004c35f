"""The packed, append-only event log of a recorder, bounded by ``Limits.max_events``.

Standard library only, and not thread-safe on its own: the recorder holds its lock around every call. Kept
column-wise in compact arrays, so a streamed token costs about a hundred bytes (its text lives in the run's
``token_texts``; the log keeps a timestamp, its index there and one packed integer), not a Python object per field.
The packing of an entry's run, thread and event code is written here once (``pack`` / ``unpack``).
"""

from __future__ import annotations

import threading
from array import array
from typing import TYPE_CHECKING, Any, Final

from nbcallbacks.events import EVENT_CODE, EVENT_NAMES, TOKEN_EVENT_CODE, TOKEN_KINDS, EventRow
from nbcallbacks.schema import event_dict

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from nbcallbacks.events import RunRecord


NO_RUN: Final = -1
"""Run index of an event whose run was never seen."""
NO_TOKEN: Final = -1
"""Token index of an event that carries no kept text."""
MAX_THREAD_INDEX: Final = 0xFFFF
"""Thread names are kept in 16 bits of an entry; later threads share the last slot."""


def pack(run_index: int, thread: int, code: int) -> int:
    """One log entry's run index (``NO_RUN`` allowed), thread index and event code as one integer."""
    return (run_index + 1) << 24 | thread << 8 | code


def unpack(meta: int) -> tuple[int, int, int]:
    """``(run index, thread index, event code)`` of a packed entry."""
    return (meta >> 24) - 1, (meta >> 8) & MAX_THREAD_INDEX, meta & 0xFF


class EventLog:
    """Events in arrival order; sequence number of entry ``i`` is ``base_seq + i``.

    Args:
        max_events: entries kept; past it the oldest tenth is dropped in one slice (amortised O(1) per event).
    """

    def __init__(self, max_events: int) -> None:
        """An empty log."""
        self.max_events = max_events
        self.times = array("d")
        self.metas = array("q")
        self.token_indices = array("l")
        """Per entry: index of its text in the run's ``token_texts``, or ``NO_TOKEN``."""
        self.data: dict[int, Any] = {}
        """Sequence number -> payload preview, for the entries that have one (tokens do not)."""
        self.unknown_runs: dict[int, tuple[str, str | None]] = {}
        """Sequence number -> (run id, parent run id) of entries whose run was never seen."""
        self.base_seq = 0
        self.thread_names: list[str] = []
        self._threads: dict[int, int] = {}
        """Thread ident -> index in ``thread_names``."""
        self.first_time: float | None = None
        """Time of the first event (or of the first run met), ``None`` before any: ``elapsed_s`` counts from it."""

    def __len__(self) -> int:
        """Entries kept."""
        return len(self.times)

    @property
    def end_seq(self) -> int:
        """Sequence number of the next entry (= events recorded, kept or dropped)."""
        return self.base_seq + len(self.times)

    def thread_slot(self, name: str) -> int:
        """Index of a new thread name (the last slot is shared past ``MAX_THREAD_INDEX``)."""
        index = min(len(self.thread_names), MAX_THREAD_INDEX)
        if index == len(self.thread_names):
            self.thread_names.append(name)
        return index

    def thread_index(self, ident: int, name: str | None = None) -> int:
        """Index of a thread by its ident; ``name`` when known (noted while it lived), else looked up."""
        index = self._threads.get(ident)
        if index is None:
            if name is None and ident == threading.get_ident():
                name = threading.current_thread().name
            if name is None:
                name = next((t.name for t in threading.enumerate() if t.ident == ident), f"Thread-{ident}")
            index = self.thread_slot(name)
            self._threads[ident] = index
        return index

    def _bound(self) -> None:
        if len(self.times) > self.max_events:
            self.drop_oldest(len(self.times) - self.max_events + max(1, self.max_events // 10))

    def extend_tokens(self, times: Sequence[float], run_index: int, thread: int, first_index: int, kept: int) -> None:
        """Add token entries of one run and thread: the first ``kept`` keep text from ``first_index`` on."""
        count = len(times)
        indices = range(first_index, first_index + kept)
        self.extend_entries(
            times,
            [pack(run_index, thread, TOKEN_EVENT_CODE)] * count,
            indices if kept == count else [*indices, *[NO_TOKEN] * (count - kept)],
        )

    def extend_entries(self, times: Sequence[float], metas: Sequence[int], token_indices: Sequence[int]) -> None:
        """Add entries column by column (``pack``ed metas; ``NO_TOKEN`` where no text is kept)."""
        if self.first_time is None and times:
            self.first_time = times[0]
        # fromlist takes about half the time of extend from anything but an array; the drain passes lists
        self.times.fromlist(times if type(times) is list else list(times))
        self.metas.fromlist(metas if type(metas) is list else list(metas))
        self.token_indices.fromlist(token_indices if type(token_indices) is list else list(token_indices))
        self._bound()

    def append(  # noqa: PLR0913, PLR0917 - one entry's columns
        self, time: float, run_index: int, thread: int, code: int, token_index: int = NO_TOKEN, data: Any = None
    ) -> int:
        """Add one entry; returns its sequence number."""
        if self.first_time is None:
            self.first_time = time
        seq = self.base_seq + len(self.times)
        self.times.append(time)
        self.metas.append(pack(run_index, thread, code))
        self.token_indices.append(token_index)
        if data is not None:
            self.data[seq] = data
        self._bound()
        return seq

    def drop_oldest(self, count: int) -> None:
        """Drop the oldest ``count`` entries (at least one is always kept)."""
        count = min(count, len(self.times) - 1)
        if count <= 0:
            return
        del self.times[:count]
        del self.metas[:count]
        del self.token_indices[:count]
        self.base_seq += count
        self.data = {seq: value for seq, value in self.data.items() if seq >= self.base_seq}
        if self.unknown_runs:
            self.unknown_runs = {seq: ids for seq, ids in self.unknown_runs.items() if seq >= self.base_seq}

    def restore(self, rows: Sequence[EventRow], runs: dict[str, RunRecord]) -> int:
        """Append saved event rows to an empty log, rebuilding the kept text of ``runs`` (by id) from token rows.

        Numbering starts at the first row's ``seq``. Returns how many rows were skipped because this version does
        not know their event name (a newer version wrote them).
        """
        self.base_seq = rows[0].seq if rows else 0
        skipped = 0
        for row in rows:
            code = EVENT_CODE.get(row.event)
            if code is None:
                skipped += 1
                continue
            thread = self.thread_names.index(row.thread) if row.thread in self.thread_names else -1
            if thread < 0:
                thread = self.thread_slot(row.thread)
            run = runs.get(row.run_id) if row.run_type else None
            if run is None:
                seq = self.append(row.time, NO_RUN, thread, code, NO_TOKEN, row.data)
                self.unknown_runs[seq] = (row.run_id, row.parent_run_id)
                continue
            token_index = NO_TOKEN
            if row.token is not None:
                token_index = len(run.token_texts)
                run.token_texts.append(row.token)
                run.token_kinds.append(TOKEN_KINDS.index(row.token_kind or "text"))
            self.append(row.time, run.order, thread, code, token_index, row.data)
        return skipped

    def touched(self, start: int, stop: int) -> tuple[set[int], set[int]]:
        """Run indices of entries ``start:stop``: those touched by tokens, and those touched by anything else."""
        by_tokens: set[int] = set()
        by_others: set[int] = set()
        for meta in set(self.metas[start:stop]):  # a stream's tokens share one packed integer
            run_index, _, code = unpack(meta)
            (by_tokens if code == TOKEN_EVENT_CODE else by_others).add(run_index)
        return by_tokens, by_others

    def records(
        self, start: int, stop: int, runs: Sequence[RunRecord], origin: float, head: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """The event records (``schema.event_dict``) of entries ``start:stop``, without building rows first.

        The sinks' writer and every live consumer read one record per streamed token, so each is a copy of its
        packed integer's template (what the run, event and thread say, made once when that integer changes)
        with the per-entry fields set: about half the cost of building each record from its fields.
        """
        out: list[dict[str, Any]] = []
        append = out.append
        times, token_indices, data, base = self.times, self.token_indices, self.data, self.base_seq
        for first, end, run, event, thread_name, is_token in self._segments(start, stop, runs):
            if run is None:
                template = event_dict(head, origin, 0, 0.0, event, "", None, "", "", None, None, None, thread_name)
            else:
                template = event_dict(
                    head, origin, 0, 0.0, event, run.run_id, run.parent_run_id, run.name, run.run_type,
                    None, None, None, thread_name,
                )  # fmt: skip
            for i in range(first, end):
                seq = base + i
                record = template.copy()
                record["seq"] = seq
                record["time"] = now = times[i]
                record["elapsed_s"] = now - origin
                if run is None:  # a run never seen: its ids were kept per entry
                    run_id, parent = self.unknown_runs.get(seq, ("", None))
                    record["run_id"] = run_id or None
                    record["parent_run_id"] = parent
                elif is_token:
                    token_index = token_indices[i]
                    if token_index != NO_TOKEN:
                        record["token"] = run.token_texts[token_index]
                        record["token_kind"] = TOKEN_KINDS[run.token_kinds[token_index]]
                payload = data.get(seq)
                if payload is not None:
                    record["data"] = payload
                append(record)
        return out

    def _segments(
        self, start: int, stop: int, runs: Sequence[RunRecord]
    ) -> Iterator[tuple[int, int, RunRecord | None, str, str, bool]]:
        """Entries ``start:stop`` in runs of consecutive entries sharing one packed integer, decoded once each.

        Yields ``(first, end, run or None if never seen, event name, thread name, is a token)``; a stream's tokens
        share one packed integer.
        """
        metas, names = self.metas, self.thread_names
        first = start
        while first < stop:
            meta = metas[first]
            end = first + 1
            while end < stop and metas[end] == meta:
                end += 1
            run_index, thread, code = unpack(meta)
            run = None if run_index == NO_RUN else runs[run_index]
            yield first, end, run, EVENT_NAMES[code], names[thread], code == TOKEN_EVENT_CODE
            first = end

    def rows(self, start: int, stop: int, runs: Sequence[RunRecord]) -> list[EventRow]:
        """Rows of entries ``start:stop`` (indices into the kept entries); ``runs`` are the runs by index."""
        out = []
        times, token_indices, data, base = self.times, self.token_indices, self.data, self.base_seq
        for first, end, run, event, thread_name, is_token in self._segments(start, stop, runs):
            run_id, parent, name, run_type = ("", None, "", "") if run is None else (
                run.run_id, run.parent_run_id, run.name, run.run_type
            )  # fmt: skip
            for i in range(first, end):
                seq = base + i
                token = token_kind = None
                if run is None:  # a run never seen: its ids were kept per entry
                    run_id, parent = self.unknown_runs.get(seq, ("", None))
                elif is_token:
                    token_index = token_indices[i]
                    if token_index != NO_TOKEN:
                        token = run.token_texts[token_index]
                        token_kind = TOKEN_KINDS[run.token_kinds[token_index]]
                out.append(
                    EventRow(
                        seq,
                        times[i],
                        event,
                        run_id,
                        parent,
                        name,
                        run_type,
                        token,
                        token_kind,
                        data.get(seq),
                        thread_name,
                    )
                )
        return out
