"""Thread-safe state of everything a handler saw: runs by id, the event log, streamed text, errors.

Standard library only (no LangChain, no pandas, no Jupyter): the handler writes here, and consumers (the widget,
the DataFrames, the sinks) read here. Every write is O(1) under one lock. Consumers subscribe and read only what
changed since their cursor, so a reader polling at 30 Hz during a 100,000-token stream pays for the new events
only.

The event log is kept column-wise in compact arrays: a streamed token costs about a hundred bytes (its text,
a timestamp and a few small integers), not a Python object per field.
"""

from __future__ import annotations

import contextlib
import threading
import time
import traceback as traceback_module
import uuid
from array import array
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from nbcallbacks.events import (
    EVENT_CODE,
    EVENT_NAMES,
    TOKEN_EVENT_CODE,
    TOKEN_KINDS,
    Delta,
    EventRow,
    HandlerError,
    Limits,
    RunRecord,
    Status,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Iterator

_MAX_HANDLER_ERRORS_KEPT = 200
_MAX_THREAD_INDEX = 0xFFFF  # thread names kept in 16 bits of an event's packed metadata
_now = time.time
_get_ident = threading.get_ident
_NO_RUN = -1
_NO_TOKEN = -1


class Subscription:
    """A consumer's place in a recorder: its cursor and its wake-up callback.

    The callback runs at most once between two reads (it is re-armed by ``read``), on whatever thread recorded
    the change, outside the recorder's lock. Keep it tiny (set a ``threading.Event``); a callback that raises is
    counted as a handler error and never reaches the user's chain.
    """

    __slots__ = ("_recorder", "armed", "callback", "cursor", "error_cursor", "token_sent")

    def __init__(self, recorder: Recorder, callback: Callable[[], None] | None, cursor: int) -> None:
        """Create a subscription; use ``Recorder.subscribe``."""
        self._recorder = recorder
        self.callback = callback
        self.cursor = cursor
        self.error_cursor = 0
        self.token_sent: dict[int, int] = {}
        """Per run order index, how many kept chunks this consumer has read."""
        self.armed = True

    def read(self, *, rows: bool = True) -> Delta:
        """Everything that changed since the last read, and re-arm the callback (``rows``: see ``read_delta``)."""
        return self._recorder.read_delta(self, rows=rows)

    def close(self) -> None:
        """Stop being notified."""
        self._recorder.unsubscribe(self)


class Recorder:
    """All runs and events of one handler. Safe to write from any thread; readers never block writers long."""

    def __init__(self, limits: Limits | None = None) -> None:
        """Create an empty recorder bounded by ``limits`` (defaults: ``Limits()``)."""
        self.limits = limits if limits is not None else Limits()
        self._lock = threading.Lock()
        self._runs: dict[Hashable, RunRecord] = {}
        self._run_list: list[RunRecord] = []
        self._run_index: dict[str, int] = {}
        # The event log, column-wise. Sequence number of entry i is self._base_seq + i.
        self._ev_time = array("d")
        self._ev_meta = array("q")
        """Per event: ``(run index + 1) << 24 | thread index << 8 | event code`` (run index -1: unknown run)."""
        self._ev_token = array("l")
        """Per event: index of its text in the run's ``token_texts``, or -1."""
        self._ev_data: dict[int, Any] = {}
        """Sequence number -> payload preview, for the events that have one (tokens do not)."""
        self._last_token_key: object = object()  # matches no run id until the first token
        self._last_token_run = RunRecord(run_id="", parent_run_id=None, order=-1, name="", run_type="", start=0.0)
        self._max_events = self.limits.max_events
        self._max_tokens = self.limits.max_tokens_per_run
        self._base_seq = 0
        self._unknown_run_ids: dict[int, tuple[str, str | None]] = {}
        """Sequence number -> (run id, parent run id) for events whose run was never seen."""
        self._threads: dict[int, int] = {}
        self._thread_names: list[str] = []
        self._handler_errors: list[HandlerError] = []
        self.handler_error_count = 0
        self._subscriptions: list[Subscription] = []
        self._armed = False
        self._first_time: float | None = None
        self._running = 0

    # --- writing (called by the handler)

    def _thread_index(self) -> int:
        ident = _get_ident()
        index = self._threads.get(ident)
        if index is None:
            index = min(len(self._thread_names), _MAX_THREAD_INDEX)  # the last slot is shared past that
            self._threads[ident] = index
            if index == len(self._thread_names):
                self._thread_names.append(threading.current_thread().name)
        return index

    def _append(self, now: float, code: int, run_index: int, data: Any, token_index: int) -> int:
        """Append one event to the log (lock held); returns its sequence number."""
        if self._first_time is None:
            self._first_time = now
        seq = self._base_seq + len(self._ev_time)
        self._ev_time.append(now)
        self._ev_meta.append((run_index + 1) << 24 | self._thread_index() << 8 | code)
        self._ev_token.append(token_index)
        if data is not None:
            self._ev_data[seq] = data
        if len(self._ev_time) > self._max_events:
            self._drop_oldest(len(self._ev_time) - self._max_events + max(1, self._max_events // 10))
        return seq

    def _drop_oldest(self, count: int) -> None:
        """Drop the oldest events in one slice (amortised O(1) per event)."""
        count = min(count, len(self._ev_time) - 1)
        if count <= 0:
            return
        del self._ev_time[:count]
        del self._ev_meta[:count]
        del self._ev_token[:count]
        self._base_seq += count
        self._ev_data = {seq: data for seq, data in self._ev_data.items() if seq >= self._base_seq}
        if self._unknown_run_ids:
            self._unknown_run_ids = {seq: ids for seq, ids in self._unknown_run_ids.items() if seq >= self._base_seq}

    def _new_run(  # noqa: PLR0913 - a run has this many facts at birth
        self,
        key: Hashable,
        parent_key: Hashable | None,
        *,
        name: str,
        run_type: str,
        now: float,
        started: bool,
    ) -> RunRecord:
        parent = self._runs.get(parent_key) if parent_key is not None else None
        run = RunRecord(
            run_id=str(key),
            parent_run_id=None if parent_key is None else str(parent_key),
            order=len(self._run_list),
            name=name,
            run_type=run_type,
            start=now,
            depth=0 if parent is None else parent.depth + 1,
            orphan=parent_key is not None and parent is None,
            started=started,
            thread=threading.current_thread().name,
        )
        self._runs[key] = run
        self._run_list.append(run)
        if self._first_time is None:  # a token met before any start is the first event: keep elapsed_s >= 0
            self._first_time = now
        self._run_index[run.run_id] = run.order
        self._running += 1
        return run

    def _placeholder(self, key: Hashable, parent_key: Hashable | None, run_type: str, now: float) -> RunRecord:
        """A run met first through an end, error or token: kept, marked as never started."""
        return self._new_run(key, parent_key, name="(unknown)", run_type=run_type, now=now, started=False)

    def start_run(  # noqa: PLR0913 - a start event carries all of these
        self,
        run_id: Hashable,
        parent_run_id: Hashable | None,
        *,
        event: str,
        name: str,
        run_type: str,
        tags: list[str] | None = None,
        metadata: Any = None,
        inputs: Any = None,
        data: Any = None,
        model: str | None = None,
        langgraph_node: str | None = None,
        langgraph_step: int | None = None,
        hidden: bool = False,
    ) -> None:
        """Record a run's start. A second start for a known id updates it instead of duplicating it."""
        now = time.time()
        with self._lock:
            run = self._runs.get(run_id)
            if run is None:
                run = self._new_run(run_id, parent_run_id, name=name, run_type=run_type, now=now, started=True)
            else:  # met before through a token/end (out of order) or started twice: update in place
                run.name = name
                run.run_type = run_type
                if not run.started:
                    run.start = min(run.start, now)
                run.started = True
            run.tags = list(tags) if tags else []
            run.metadata = metadata
            run.inputs = inputs
            run.model = model
            run.langgraph_node = langgraph_node
            run.langgraph_step = langgraph_step
            run.hidden = hidden
            self._append(now, EVENT_CODE[event], run.order, data, _NO_TOKEN)
        if self._armed:
            self._notify()

    def token(self, run_id: Hashable, parent_run_id: Hashable | None, text: str, kind: int) -> None:
        """Record one streamed chunk of a model run; ``kind`` indexes ``TOKEN_KINDS``."""
        # The hot path: everything inline, three array appends, no per-token objects but the text itself.
        now = _now()
        with self._lock:
            # LangChain passes the same run id object for every chunk of a stream: an identity check
            # skips hashing the UUID (a Python-level __hash__) on all but the first chunk.
            if run_id is self._last_token_key:
                run = self._last_token_run
            else:
                known = self._runs.get(run_id)
                run = known if known is not None else self._placeholder(run_id, parent_run_id, "llm", now)
                self._last_token_key = run_id
                self._last_token_run = run
            run.token_count += 1
            if run.abandoned:  # it is alive after all
                run.abandoned = False
            if run.first_token is None and text:
                run.first_token = now
            texts = run.token_texts
            token_index = len(texts)
            if token_index < self._max_tokens:
                texts.append(text)
                run.token_kinds.append(kind)
            else:
                token_index = _NO_TOKEN
                run.tokens_dropped += 1
            thread = self._threads.get(_get_ident())
            if thread is None:
                thread = self._thread_index()
            self._ev_time.append(now)
            self._ev_meta.append((run.order + 1) << 24 | thread << 8 | TOKEN_EVENT_CODE)
            self._ev_token.append(token_index)
            if len(self._ev_time) > self._max_events:
                self._drop_oldest(len(self._ev_time) - self._max_events + max(1, self._max_events // 10))
        if self._armed:
            self._notify()

    def end_run(  # noqa: PLR0913 - an end event carries all of these
        self,
        run_id: Hashable,
        parent_run_id: Hashable | None,
        *,
        event: str,
        run_type: str,
        outputs: Any = None,
        data: Any = None,
        usage: tuple[int | None, int | None, int | None] | None = None,
        model: str | None = None,
        inputs: Any = None,
    ) -> None:
        """Record a run's successful end, with token usage ``(input, output, total)`` for model runs.

        ``inputs``, when given, replaces the inputs recorded at the start (a streamed chain gets its real
        inputs only at its end).
        """
        now = time.time()
        with self._lock:
            run = self._runs.get(run_id)
            if run is None:
                run = self._placeholder(run_id, parent_run_id, run_type, now)
            self._finish(run, "ok", now)
            run.outputs = outputs
            if inputs is not None:
                run.inputs = inputs
            if usage is not None:
                run.input_tokens, run.output_tokens, run.total_tokens = usage
            if model and not run.model:
                run.model = model
            self._append(now, EVENT_CODE[event], run.order, data, _NO_TOKEN)
        if self._armed:
            self._notify()

    def error_run(  # noqa: PLR0913 - an error event carries all of these
        self,
        run_id: Hashable,
        parent_run_id: Hashable | None,
        *,
        event: str,
        run_type: str,
        error: str,
        error_type: str,
        traceback: str | None,
        interrupted: bool = False,
        outputs: Any = None,
        data: Any = None,
        inputs: Any = None,
    ) -> None:
        """Record a run's failure (or LangGraph interrupt, which is a pause, not a failure).

        ``inputs``, when given, replaces the inputs recorded at the start (as in ``end_run``).
        """
        now = time.time()
        with self._lock:
            run = self._runs.get(run_id)
            if run is None:
                run = self._placeholder(run_id, parent_run_id, run_type, now)
            self._finish(run, "interrupted" if interrupted else "error", now)
            run.error = error
            run.error_type = error_type
            run.traceback = traceback
            if outputs is not None:
                run.outputs = outputs
            if inputs is not None:
                run.inputs = inputs
            self._append(now, EVENT_CODE[event], run.order, data, _NO_TOKEN)
        if self._armed:
            self._notify()

    def _finish(self, run: RunRecord, status: Status, now: float) -> None:
        if run.status == "running":
            self._running -= 1
        run.status = status
        run.end = now
        run.abandoned = False

    def event(self, run_id: Hashable | None, parent_run_id: Hashable | None, *, event: str, data: Any) -> None:
        """Record an event that does not change a run's state (custom event, text, retry, agent step).

        The event is kept even when its run was never seen; it then names the run id it came with.
        """
        now = time.time()
        with self._lock:
            run = self._runs.get(run_id) if run_id is not None else None
            index = _NO_RUN if run is None else run.order
            seq = self._append(now, EVENT_CODE[event], index, data, _NO_TOKEN)
            if run is None:
                self._unknown_run_ids[seq] = (
                    "" if run_id is None else str(run_id),
                    None if parent_run_id is None else str(parent_run_id),
                )
        if self._armed:
            self._notify()

    def metric(self, run_id: Hashable | None, name: str, value: float, data: Any) -> None:
        """Record a custom metric on a run (the last value of a name is shown on the run)."""
        now = time.time()
        with self._lock:
            run = self._runs.get(run_id) if run_id is not None else None
            index = _NO_RUN
            if run is not None:
                run.metrics[name] = value
                index = run.order
            seq = self._append(now, EVENT_CODE["metric"], index, data, _NO_TOKEN)
            if run is None:
                self._unknown_run_ids[seq] = ("" if run_id is None else str(run_id), None)
        if self._armed:
            self._notify()

    def mark_abandoned(self) -> int:
        """Flag every still-running run as abandoned; returns how many were flagged.

        Called when the code that started them is over (a notebook cell finished) while they never ended: an
        abandoned generator, an interrupted kernel, a handler that missed the end. A later event of the run
        clears the flag (background work that is still alive).
        """
        now = time.time()
        count = 0
        with self._lock:
            if not self._running:
                return 0
            for run in self._run_list:
                if run.status == "running" and not run.abandoned:
                    run.abandoned = True
                    count += 1
                    self._append(now, EVENT_CODE["run_abandoned"], run.order, None, _NO_TOKEN)
        if count and self._armed:
            self._notify()
        return count

    def record_handler_error(self, where: str, exc: BaseException, *, notify: bool = True) -> None:
        """Keep a failure of nbcallbacks' own code for display; never raises.

        With ``notify=False`` subscribers are not woken for it (they see it with their next read).
        """
        try:
            error = f"{type(exc).__name__}: {exc}"[:2000]
            trace = "".join(traceback_module.format_exception(type(exc), exc, exc.__traceback__))[-8000:]
            entry = HandlerError(  # shown in the widget: lone surrogates would make its messages unencodable
                time=time.time(),
                where=where,
                error=error.encode("utf-8", "backslashreplace").decode("utf-8"),
                traceback=trace.encode("utf-8", "backslashreplace").decode("utf-8"),
            )
        except Exception:  # noqa: BLE001 - an exception whose str() raises must not escape either
            entry = HandlerError(time=time.time(), where=where, error=type(exc).__name__, traceback="")
        with self._lock:
            self.handler_error_count += 1
            if len(self._handler_errors) < _MAX_HANDLER_ERRORS_KEPT:
                self._handler_errors.append(entry)
        if notify and self._armed:
            self._notify()

    # --- subscriptions

    def subscribe(self, callback: Callable[[], None] | None = None, *, from_start: bool = True) -> Subscription:
        """Register a consumer. With ``from_start`` its first read returns everything kept so far."""
        with self._lock:
            sub = Subscription(self, callback, 0 if from_start else self._base_seq + len(self._ev_time))
            if not from_start:
                sub.error_cursor = len(self._handler_errors)
                for run in self._run_list:
                    sub.token_sent[run.order] = len(run.token_texts)
            self._subscriptions = [*self._subscriptions, sub]
            self._armed = True
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Forget a consumer."""
        with self._lock:
            self._subscriptions = [s for s in self._subscriptions if s is not sub]
            self._armed = any(s.armed and s.callback is not None for s in self._subscriptions)

    def _notify(self) -> None:
        """Wake armed subscribers once (outside the lock). Their failures are counted, never raised."""
        to_call = []
        with self._lock:
            for sub in self._subscriptions:
                if sub.armed and sub.callback is not None:
                    sub.armed = False
                    to_call.append(sub.callback)
            self._armed = False
        for callback in to_call:
            try:
                callback()
            except Exception as exc:  # noqa: BLE001, PERF203 - a consumer's failure must not reach the chain
                # Without waking anyone: a consumer that reads and raises would be woken by its own error,
                # again and again, recursing until the stack runs out.
                self.record_handler_error("subscriber", exc, notify=False)

    def read_delta(self, sub: Subscription, *, rows: bool = True) -> Delta:
        """What changed since ``sub``'s cursor; advances it and re-arms its callback. O(new events).

        With ``rows=False`` the delta's ``events`` list stays empty: a consumer that needs only the touched runs
        and the new text (the widget) skips building one object per token.
        """
        with self._lock:
            end_seq = self._base_seq + len(self._ev_time)
            dropped = max(0, self._base_seq - sub.cursor)
            start = max(sub.cursor, self._base_seq) - self._base_seq
            stop = end_seq - self._base_seq
            events = self._event_rows(start, stop) if rows else []
            by_tokens: set[int] = set()
            by_others: set[int] = set()
            for meta in self._ev_meta[start:stop]:
                (by_tokens if meta & 0xFF == TOKEN_EVENT_CODE else by_others).add((meta >> 24) - 1)
            token_only = set() if dropped else {self._run_list[i].run_id for i in by_tokens - by_others}
            # When events were dropped unseen, every run counts as touched.
            touched = range(len(self._run_list)) if dropped else sorted((by_tokens | by_others) - {_NO_RUN})
            runs = [self._run_list[i].to_wire() for i in touched]
            tokens: dict[str, list[list[str]]] = {}
            for i in touched:
                run = self._run_list[i]
                sent = sub.token_sent.get(i, 0)
                kept = len(run.token_texts)
                if kept > sent:
                    tokens[run.run_id] = _merge_pieces(run.token_texts, run.token_kinds, sent, kept)
                    sub.token_sent[i] = kept
            errors = self._handler_errors[sub.error_cursor :]
            sub.error_cursor = len(self._handler_errors)
            sub.cursor = end_seq
            sub.armed = True
            self._armed = True
        return Delta(
            cursor=end_seq,
            events=events,
            runs=runs,
            tokens=tokens,
            dropped_events=dropped,
            handler_errors=errors,
            token_only_runs=token_only,
        )

    # --- reading

    def _event_rows(self, start: int, stop: int) -> list[EventRow]:
        """Rows of log entries ``start:stop`` (lock held)."""
        rows = []
        run_list = self._run_list
        names = self._thread_names
        for i in range(start, stop):
            meta = self._ev_meta[i]
            code = meta & 0xFF
            run_index = (meta >> 24) - 1
            seq = self._base_seq + i
            token = token_kind = None
            if run_index == _NO_RUN:
                run_id, parent = self._unknown_run_ids.get(seq, ("", None))
                name, run_type = "", ""
            else:
                run = run_list[run_index]
                run_id, parent, name, run_type = run.run_id, run.parent_run_id, run.name, run.run_type
                if code == TOKEN_EVENT_CODE:
                    token_index = self._ev_token[i]
                    if token_index != _NO_TOKEN:
                        token = run.token_texts[token_index]
                        token_kind = TOKEN_KINDS[run.token_kinds[token_index]]
            rows.append(
                EventRow(
                    seq=seq,
                    time=self._ev_time[i],
                    event=EVENT_NAMES[code],
                    run_id=run_id,
                    parent_run_id=parent,
                    name=name,
                    run_type=run_type,
                    token=token,
                    token_kind=token_kind,
                    data=self._ev_data.get(seq),
                    thread=names[(meta >> 8) & 0xFFFF],
                )
            )
        return rows

    def events(self) -> list[EventRow]:
        """Every kept event, in arrival order."""
        with self._lock:
            return self._event_rows(0, len(self._ev_time))

    def iter_event_columns(self) -> Iterator[tuple[str, list[Any]]]:
        """The kept events as columns (name, values): the cheap path for building a DataFrame."""
        rows = self.events()
        for field_name in EventRow.__slots__:
            yield field_name, [getattr(row, field_name) for row in rows]

    def runs(self) -> list[RunRecord]:
        """Copies of every run, in start order (safe to read while recording goes on)."""
        with self._lock:
            return [replace(run, token_texts=[], token_kinds=bytearray()) for run in self._run_list]

    def run(self, run_id: str) -> RunRecord | None:
        """A copy of one run by its id string, or ``None``."""
        with self._lock:
            index = self._run_index.get(run_id)
            if index is None:
                return None
            return replace(self._run_list[index], token_texts=[], token_kinds=bytearray())

    def run_text(self, run_id: str, kind: str | None = "text") -> str:
        """The kept streamed text of a run (``kind=None`` for all kinds together)."""
        with self._lock:
            index = self._run_index.get(run_id)
            if index is None:
                return ""
            run = self._run_list[index]
            if kind is None:
                return "".join(run.token_texts)
            code = TOKEN_KINDS.index(kind)
            return "".join(t for t, k in zip(run.token_texts, run.token_kinds, strict=True) if k == code)

    def run_pieces(self, run_id: str) -> list[list[str]]:
        """The kept streamed text of a run as ``[kind, text]`` pieces, adjacent same-kind merged."""
        with self._lock:
            index = self._run_index.get(run_id)
            if index is None:
                return []
            run = self._run_list[index]
            return _merge_pieces(run.token_texts, run.token_kinds, 0, len(run.token_texts))

    def handler_errors(self) -> list[HandlerError]:
        """The first failures of nbcallbacks' own code (see ``handler_error_count`` for all)."""
        with self._lock:
            return list(self._handler_errors)

    @property
    def first_time(self) -> float | None:
        """Time of the first event, or ``None`` before any."""
        return self._first_time

    @property
    def dropped_events(self) -> int:
        """Events dropped from the log because of ``Limits.max_events``."""
        return self._base_seq

    @property
    def event_count(self) -> int:
        """Events recorded so far, kept or dropped."""
        return self._base_seq + len(self._ev_time)

    @property
    def run_count(self) -> int:
        """Runs recorded so far."""
        return len(self._run_list)

    @property
    def running_count(self) -> int:
        """Runs started and not yet ended."""
        return self._running

    # --- importing (replay of a saved trace)

    def restore(self, runs: list[RunRecord], events: list[EventRow], first_time: float | None) -> None:
        """Fill an empty recorder with saved runs and events, so every reader sees them as if recorded here.

        ``runs`` are complete run records (their kept text is rebuilt from the token events); ``events`` are in
        ``seq`` order, each linked to its run by ``run_id`` unless its ``run_type`` is empty (an event of a run
        that was never seen). Runs are renumbered in start order; event numbering starts at the first event's
        ``seq`` and closes any gap.

        Raises:
            ValueError: the recorder already holds something.
        """
        with self._lock:
            if self._run_list or self._ev_time:
                msg = "restore() needs an empty recorder"
                raise ValueError(msg)
            by_id = self._restore_runs(runs)
            self._base_seq = events[0].seq if events else 0
            for row in events:
                seq = self._base_seq + len(self._ev_time)
                run = by_id.get(row.run_id) if row.run_type else None
                token_index = _NO_TOKEN
                if run is None:
                    run_index = _NO_RUN
                    self._unknown_run_ids[seq] = (row.run_id, row.parent_run_id)
                else:
                    run_index = run.order
                    if row.token is not None:
                        token_index = len(run.token_texts)
                        run.token_texts.append(row.token)
                        run.token_kinds.append(TOKEN_KINDS.index(row.token_kind or "text"))
                self._ev_time.append(row.time)
                self._ev_meta.append(
                    (run_index + 1) << 24 | self._restore_thread(row.thread) << 8 | EVENT_CODE[row.event]
                )
                self._ev_token.append(token_index)
                if row.data is not None:
                    self._ev_data[seq] = row.data
            self._first_time = first_time if first_time is not None else (events[0].time if events else None)
        if self._armed:
            self._notify()

    def _restore_runs(self, runs: list[RunRecord]) -> dict[str, RunRecord]:
        """Add saved runs in start order (lock held); returns them by id."""
        by_id: dict[str, RunRecord] = {}
        for order, saved in enumerate(sorted(runs, key=lambda r: r.order)):
            run = replace(saved, order=order, token_texts=[], token_kinds=bytearray(), tags=list(saved.tags))
            key: Hashable = run.run_id
            with contextlib.suppress(ValueError):
                key = uuid.UUID(run.run_id)  # LangChain's run ids: a later live event finds the run
            self._runs[key] = run
            self._run_list.append(run)
            self._run_index[run.run_id] = order
            by_id[run.run_id] = run
            if run.status == "running":
                self._running += 1
        return by_id

    def _restore_thread(self, name: str) -> int:
        """Index of a thread name in the log (lock held)."""
        if name in self._thread_names:
            return self._thread_names.index(name)
        index = min(len(self._thread_names), _MAX_THREAD_INDEX)
        if index == len(self._thread_names):
            self._thread_names.append(name)
        return index


def _merge_pieces(texts: list[str], kinds: bytearray, start: int, stop: int) -> list[list[str]]:
    """``[kind, text]`` pieces for chunks ``start:stop``, adjacent chunks of one kind joined."""
    pieces: list[list[str]] = []
    current_kind = -1
    parts: list[str] = []
    for i in range(start, stop):
        kind = kinds[i]
        if kind != current_kind:
            if parts:
                pieces.append([TOKEN_KINDS[current_kind], "".join(parts)])
            parts = []
            current_kind = kind
        parts.append(texts[i])
    if parts:
        pieces.append([TOKEN_KINDS[current_kind], "".join(parts)])
    return pieces
