"""Thread-safe state of everything a handler saw: runs by id, the event log, streamed text, errors.

Standard library only (no LangChain, no pandas, no Jupyter): the handler writes here, and consumers (the widget,
the DataFrames, the sinks) read here. Starts, ends and other events are O(1) under one lock. A streamed token is
cheaper still: what arrived added to a lock-free queue by one GIL-atomic ``list.extend``; run lookup,
counts, first-token time and the log entry are done by whoever next takes the lock (the next start or end on the
same thread, or a reader), so the order of one thread's events is kept and every read sees every token. Consumers
subscribe and read only what changed since their cursor.

Time comes from an injectable ``clock`` (``time.time`` by default), so tests set the time instead of sleeping.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import TYPE_CHECKING, Any

from nbcallbacks.eventlog import NO_RUN, EventLog
from nbcallbacks.events import EVENT_CODE, Delta, HandlerError, Limits, Usage
from nbcallbacks.heldtext import HeldText
from nbcallbacks.runtable import RunTable, copy_run, merge_pieces
from nbcallbacks.subscription import Subscription
from nbcallbacks.tokenqueue import SETTLE_AT, SETTLE_ENTRIES, TokenQueue

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable

    from nbcallbacks.events import EventRow, RunRecord, Status

__all__ = ["Recorder", "Subscription", "Usage"]

_MAX_HANDLER_ERRORS_KEPT = 200
_USAGE_FIELDS = tuple(f.name for f in dataclasses.fields(Usage))
_get_ident = threading.get_ident
_METRIC_CODE = EVENT_CODE["metric"]
_ABANDONED_CODE = EVENT_CODE["run_abandoned"]


class Recorder(HeldText):
    """All runs and events of one handler. Safe to write from any thread; readers never block writers long.

    Args:
        limits: bounds on what is kept (``Limits()`` by default).
        clock: seconds since the epoch, called once per event (``time.time`` by default).
    """

    def __init__(self, limits: Limits | None = None, *, clock: Callable[[], float] | None = None) -> None:
        """Create an empty recorder."""
        self.limits = limits if limits is not None else Limits()
        self._clock: Callable[[], float] = clock if clock is not None else time.time
        self._lock = threading.Lock()
        self._runs = RunTable()
        self._log = EventLog(self.limits.max_events)
        self._tokens = TokenQueue(
            self._runs,
            self._log,
            self.limits.max_tokens_per_run,
            self._token_placeholder,
            clock=self._clock,
            after=self._after_token,
        )
        self._pending = self._tokens.pending
        self.token = self._tokens.put
        """``token(run_id, parent_run_id, text, kind)``: record one streamed chunk of a model run (``kind`` indexes
        ``TOKEN_KINDS``). Lock-free: the queue's own ``put``, bound once."""
        self._handler_errors: list[HandlerError] = []
        self.handler_error_count = 0
        self._subscriptions: list[Subscription] = []

    @property
    def clock(self) -> Callable[[], float]:
        """The recorder's clock (``Recorder(clock=...)``), fixed when it is made.

        The token queue, its per-token callback and the widget's mirror hold it: a clock swapped in later would
        time their events apart from the others'.
        """
        return self._clock

    # --- the token hot path

    def token_callback(self, fallback: Callable[..., None], failed: Callable[[Exception], None]) -> Callable[..., None]:
        """A streaming source's per-token callback that queues text tokens itself (``TokenQueue.callback``)."""
        return self._tokens.callback(fallback, failed)

    def _set_armed(self, *, armed: bool) -> None:
        """Whether a consumer waits to be woken by the next change: the next token then calls ``_after_token``."""
        self._tokens.wake_at = 0 if armed else SETTLE_ENTRIES

    def _after_token(self) -> None:
        """Wake the consumers; past ``SETTLE_AT`` unread tokens, apply them here (bounds the queue's memory)."""
        if self._tokens.queued > SETTLE_AT:
            self.settle()
        self._wake()

    def _drain(self) -> None:
        """Apply the queued tokens (lock held)."""
        if self._pending:
            self._tokens.drain()

    # --- writing (called by the handler)

    def _append(self, now: float, code: int, run_index: int, data: Any) -> int:
        """Append one non-token event to the log (lock held); returns its sequence number."""
        return self._log.append(now, run_index, self._log.thread_index(_get_ident()), code, data=data)

    def _placeholder(self, key: Hashable, parent_key: Hashable | None, run_type: str, now: float) -> RunRecord:
        """A run met first through an end or error: kept, marked as never started."""
        thread = threading.current_thread().name
        return self._runs.new(
            key, parent_key, name="(unknown)", run_type=run_type, now=now, started=False, thread=thread
        )

    def _ending(
        self, run_id: Hashable, parent_run_id: Hashable | None, run_type: str, status: Status, now: float
    ) -> tuple[RunRecord, bool]:
        """The run an end or error event is about (a placeholder if never seen), and whether it ended it (lock held).

        ``False`` for a run that already ended: the first end stands, as in LangChain's own tracer (a task
        cancelled while returning reports an error after its run's end); the caller still logs the late event.
        """
        run = self._runs.by_key.get(run_id)
        if run is None:
            run = self._placeholder(run_id, parent_run_id, run_type, now)
        elif run.status != "running":
            return run, False
        self._runs.finish(run, status, now)
        return run, True

    def _token_placeholder(self, key: Hashable, parent_key: Hashable | None, now: float) -> RunRecord:
        """A run met first through a token (queued on another thread: no thread name to give it)."""
        return self._runs.new(key, parent_key, name="(unknown)", run_type="llm", now=now, started=False, thread="")

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
        provider: str | None = None,
        langgraph_node: str | None = None,
        langgraph_step: int | None = None,
        hidden: bool = False,
    ) -> None:
        """Record a run's start. A second start for a known id updates it instead of duplicating it."""
        now = self._clock()
        with self._lock:
            self._drain()
            run = self._runs.by_key.get(run_id)
            if run is None:
                thread = threading.current_thread().name
                run = self._runs.new(
                    run_id, parent_run_id, name=name, run_type=run_type, now=now, started=True, thread=thread
                )
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
            run.provider = provider
            run.langgraph_node = langgraph_node
            run.langgraph_step = langgraph_step
            run.hidden = hidden
            self._append(now, EVENT_CODE[event], run.order, data)
        self._wake()

    def end_run(  # noqa: PLR0913 - an end event carries all of these
        self,
        run_id: Hashable,
        parent_run_id: Hashable | None,
        *,
        event: str,
        run_type: str,
        outputs: Any = None,
        data: Any = None,
        usage: Usage | tuple[int | None, ...] | None = None,
        model: str | None = None,
        inputs: Any = None,
    ) -> None:
        """Record a run's successful end, with the token usage of model runs (a ``Usage``, or its fields in order).

        ``inputs``, when given, replaces the inputs recorded at the start (a streamed chain gets its real
        inputs only at its end).
        """
        now = self._clock()
        with self._lock:
            self._drain()
            run, ended = self._ending(run_id, parent_run_id, run_type, "ok", now)
            if ended:
                run.outputs = outputs
                if inputs is not None:
                    run.inputs = inputs
                if usage is not None:
                    reported = usage if isinstance(usage, Usage) else Usage(*usage)
                    for name in _USAGE_FIELDS:  # Usage's fields are the run's fields of the same names
                        setattr(run, name, getattr(reported, name))
                if model and not run.model:
                    run.model = model
            self._append(now, EVENT_CODE[event], run.order, data)
        self._wake()

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
        now = self._clock()
        with self._lock:
            self._drain()
            status: Status = "interrupted" if interrupted else "error"
            run, ended = self._ending(run_id, parent_run_id, run_type, status, now)
            if ended:
                run.error = error
                run.error_type = error_type
                run.traceback = traceback
                if outputs is not None:
                    run.outputs = outputs
                if inputs is not None:
                    run.inputs = inputs
            self._append(now, EVENT_CODE[event], run.order, data)
        self._wake()

    def event(self, run_id: Hashable | None, parent_run_id: Hashable | None, *, event: str, data: Any) -> None:
        """Record an event that does not change a run's state (custom event, text, retry, agent step).

        The event is kept even when its run was never seen; it then names the run id it came with.
        """
        self._unchanging(run_id, parent_run_id, EVENT_CODE[event], data, None)

    def metric(self, run_id: Hashable | None, name: str, value: float, data: Any) -> None:
        """Record a custom metric on a run (the last value of a name is shown on the run)."""
        self._unchanging(run_id, None, _METRIC_CODE, data, (name, value))

    def _unchanging(
        self, run_id: Hashable | None, parent_run_id: Hashable | None, code: int, data: Any, metric: Any
    ) -> None:
        now = self._clock()
        with self._lock:
            self._drain()
            run = self._runs.by_key.get(run_id) if run_id is not None else None
            if run is not None and metric is not None:
                run.metrics[metric[0]] = metric[1]
            seq = self._append(now, code, NO_RUN if run is None else run.order, data)
            if run is None:
                self._log.unknown_runs[seq] = (
                    "" if run_id is None else str(run_id),
                    None if parent_run_id is None else str(parent_run_id),
                )
        self._wake()

    def mark_abandoned(self) -> int:
        """Flag every still-running run as abandoned; returns how many were flagged.

        Called when the code that started them is over (a notebook cell finished) while they never ended: an
        abandoned generator, an interrupted kernel, a handler that missed the end. A later event of the run
        clears the flag (background work that is still alive).
        """
        now = self._clock()
        count = 0
        with self._lock:
            self._drain()
            if not self._runs.running:
                return 0
            for run in self._runs.ordered:
                if run.status == "running" and not run.abandoned:
                    run.abandoned = True
                    count += 1
                    self._append(now, _ABANDONED_CODE, run.order, None)
        if count:
            self._wake()
        return count

    def record_handler_error(self, where: str, exc: BaseException, *, notify: bool = True) -> None:
        """Keep a failure of nbcallbacks' own code for display; never raises.

        With ``notify=False`` subscribers are not woken for it (they see it with their next read).
        """
        try:
            now = self._clock()
        except Exception:  # noqa: BLE001 - a clock that fails must not lose the error
            now = time.time()
        entry = HandlerError.of(where, exc, now)
        with self._lock:
            self.handler_error_count += 1
            if len(self._handler_errors) < _MAX_HANDLER_ERRORS_KEPT:
                self._handler_errors.append(entry)
        if notify:
            self._wake()

    # --- subscriptions

    def subscribe(self, callback: Callable[[], None] | None = None, *, from_start: bool = True) -> Subscription:
        """Register a consumer. With ``from_start`` its first read returns everything kept so far."""
        with self._lock:
            self._drain()
            sub = Subscription(self, callback, 0 if from_start else self._log.end_seq)
            if not from_start:
                sub.error_cursor = len(self._handler_errors)
                for run in self._runs.ordered:
                    sub.token_sent[run.order] = len(run.token_texts)
            self._subscriptions = [*self._subscriptions, sub]
            self._set_armed(armed=True)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Forget a consumer."""
        with self._lock:
            self._subscriptions = [s for s in self._subscriptions if s is not sub]
            self._set_armed(armed=any(s.armed and s.callback is not None for s in self._subscriptions))

    def _wake(self) -> None:
        """Wake armed subscribers, if any (after a change, outside the lock)."""
        if not self._tokens.wake_at:  # armed (read directly: this runs after every event)
            self._notify()

    def _notify(self) -> None:
        """Wake armed subscribers once (outside the lock). Their failures are counted, never raised."""
        to_call = []
        with self._lock:
            for sub in self._subscriptions:
                if sub.armed and sub.callback is not None:
                    sub.armed = False
                    to_call.append(sub.callback)
            self._set_armed(armed=False)
        for callback in to_call:
            try:
                callback()
            except Exception as exc:  # noqa: BLE001, PERF203 - a consumer's failure must not reach the chain
                # Without waking anyone: a consumer that reads and raises would be woken by its own error,
                # again and again, recursing until the stack runs out.
                self.record_handler_error("subscriber", exc, notify=False)

    def read_delta(self, sub: Subscription, *, rows: bool = True, head: dict[str, Any] | None = None) -> Delta:
        """What changed since ``sub``'s cursor; advances it and re-arms its callback. O(new events).

        With ``rows=False`` the delta's ``events`` list stays empty: a consumer that needs only the touched runs
        and the new text (the widget) skips building one object per token. With ``head`` (e.g. ``{"kind":
        "event", "session": ...}``), the events come as records in ``records`` instead (``schema.event_dict``,
        ``elapsed_s`` from ``first_time``), built straight from the log, and ``tokens`` stays empty: what the
        sinks' writer and live updates send.
        """
        with self._lock:
            self._drain()
            log = self._log
            end_seq = log.end_seq
            dropped = max(0, log.base_seq - sub.cursor)
            start = max(sub.cursor, log.base_seq) - log.base_seq
            stop = end_seq - log.base_seq
            ordered = self._runs.ordered
            events = log.rows(start, stop, ordered) if rows and head is None else []
            records = [] if head is None else log.records(start, stop, ordered, log.first_time or 0.0, head)
            by_tokens, by_others = log.touched(start, stop)
            token_only = set() if dropped else {ordered[i].run_id for i in by_tokens - by_others}
            # When events were dropped unseen, every run counts as touched.
            touched = range(len(ordered)) if dropped else sorted((by_tokens | by_others) - {NO_RUN})
            runs = [copy_run(ordered[i]) for i in touched]
            tokens: dict[str, list[list[str]]] = {}
            for i in touched if head is None else ():
                run = ordered[i]
                sent = sub.token_sent.get(i, 0)
                kept = len(run.token_texts)
                if kept > sent:
                    tokens[run.run_id] = merge_pieces(run.token_texts, run.token_kinds, sent, kept)
                    sub.token_sent[i] = kept
            errors = self._handler_errors[sub.error_cursor :]
            sub.error_cursor = len(self._handler_errors)
            sub.cursor = end_seq
            sub.armed = True
            self._set_armed(armed=True)
        return Delta(
            cursor=end_seq,
            events=events,
            runs=runs,
            tokens=tokens,
            dropped_events=dropped,
            handler_errors=errors,
            token_only_runs=token_only,
            records=records,
        )

    # --- reading

    def events(self) -> list[EventRow]:
        """Every kept event, in arrival order."""
        with self._lock:
            self._drain()
            return self._log.rows(0, len(self._log), self._runs.ordered)

    def records(self, head: dict[str, Any], stop: int) -> list[dict[str, Any]]:
        """Every kept event before sequence number ``stop`` as a record (``read_delta(head=...)``'s form)."""
        with self._lock:
            self._drain()
            log = self._log
            end = max(0, min(len(log), stop - log.base_seq))
            return log.records(0, end, self._runs.ordered, log.first_time or 0.0, head)

    def runs(self) -> list[RunRecord]:
        """Copies of every run, in start order (safe to read while recording goes on)."""
        with self._lock:
            self._drain()
            return [copy_run(run) for run in self._runs.ordered]

    def run(self, run_id: str) -> RunRecord | None:
        """A copy of one run by its id string, or ``None``."""
        with self._lock:
            self._drain()
            run = self._runs.find(run_id)
            return None if run is None else copy_run(run)

    def run_text(self, run_id: str, kind: str | None = "text") -> str:
        """The kept streamed text of a run (``kind=None`` for all kinds together)."""
        with self._lock:
            self._drain()
            run = self._runs.find(run_id)
            return "" if run is None else self._runs.text(run, kind)

    def run_pieces(self, run_id: str) -> list[list[str]]:
        """The kept streamed text of a run as ``[kind, text]`` pieces, adjacent same-kind merged."""
        with self._lock:
            self._drain()
            run = self._runs.find(run_id)
            return [] if run is None else merge_pieces(run.token_texts, run.token_kinds, 0, len(run.token_texts))

    def handler_errors(self) -> list[HandlerError]:
        """The first failures of nbcallbacks' own code (see ``handler_error_count`` for all)."""
        with self._lock:
            return list(self._handler_errors)

    def settle(self) -> None:
        """Apply the tokens queued so far now (reads do this themselves)."""
        with self._lock:
            self._drain()

    @property
    def first_time(self) -> float | None:
        """Time of the first event, or ``None`` before any."""
        if self._log.first_time is None and self._pending:
            self.settle()
        return self._log.first_time

    @property
    def dropped_events(self) -> int:
        """Events dropped from the log because of ``Limits.max_events``."""
        return self._log.base_seq

    @property
    def event_count(self) -> int:
        """Events recorded so far, kept or dropped (queued tokens included)."""
        return self._log.end_seq + self._tokens.queued

    @property
    def run_count(self) -> int:
        """Runs recorded so far."""
        if self._pending:
            self.settle()  # a queued token may be the first sign of a run
        return len(self._runs)

    @property
    def running_count(self) -> int:
        """Runs started and not yet ended."""
        return self._runs.running

    # --- importing (replay of a saved trace)

    def restore(self, runs: list[RunRecord], events: list[EventRow], first_time: float | None) -> int:
        """Fill an empty recorder with saved runs and events, so every reader sees them as if recorded here.

        ``runs`` are complete run records (their kept text is rebuilt from the token events); ``events`` are in
        ``seq`` order, each linked to its run by ``run_id`` unless its ``run_type`` is empty (an event of a run
        that was never seen). Runs are renumbered in start order; event numbering starts at the first event's
        ``seq`` and closes any gap. Events whose name this version does not know are skipped (``restore``
        returns how many).

        Raises:
            ValueError: the recorder already holds something.
        """
        with self._lock:
            self._drain()
            log = self._log
            if len(self._runs) or len(log):
                msg = "restore() needs an empty recorder"
                raise ValueError(msg)
            skipped = log.restore(events, self._runs.restore(runs))
            log.first_time = first_time if first_time is not None else (events[0].time if events else None)
        self._wake()
        return skipped
