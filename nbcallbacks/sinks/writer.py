"""``SinkWriter``: carries what a recorder records to its sinks, one worker thread per sink, flushed at exit."""

from __future__ import annotations

import atexit
import contextlib
import logging
import threading
import time
import weakref
from collections import deque
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Final

from nbcallbacks.sinks.jsonl import JSONLSink
from nbcallbacks.sinks.logging_sink import LoggingSink
from nbcallbacks.sinks.records import event_record, run_record, session_record
from nbcallbacks.sinks.sqlite import SQLiteSink
from nbcallbacks.tree import Tree

if TYPE_CHECKING:
    from collections.abc import Iterable

    from nbcallbacks.events import EventRow, RunRecord
    from nbcallbacks.recorder import Recorder, Subscription
    from nbcallbacks.tree import Pricing

logger = logging.getLogger("nbcallbacks.sinks")  # the name it has always had: logging setups refer to it
logger.addHandler(logging.NullHandler())

_STOP: Final = "stop"
_FLUSH: Final = "flush"
_BATCH: Final = "batch"


class SinkBackpressureError(RuntimeError):
    """A sink could not keep up: records were dropped (counted in ``sink_status()``)."""


class SinkStalledError(RuntimeError):
    """A sink's write has not returned for a long time."""


def _backlog(sink: Any, default: int) -> int:
    """A sink's own ``max_backlog`` attribute (a positive int), else the writer's."""
    value = getattr(sink, "max_backlog", None)
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return default


def _sink_name(sink: Any) -> str:
    describe = getattr(sink, "describe", None)
    if callable(describe):
        with contextlib.suppress(Exception):
            return str(describe())
    return type(sink).__name__


class _Worker:
    """One sink, its bounded backlog and the thread that writes to it."""

    def __init__(self, writer: SinkWriter, sink: Any, index: int) -> None:
        self.writer = writer
        self.sink = sink
        self.name = _sink_name(sink)
        self.private_copies = not isinstance(sink, (JSONLSink, SQLiteSink, LoggingSink))
        """Records are shared by all sinks: one that is not known to leave them alone gets its own copies."""
        self.cond = threading.Condition(threading.Lock())
        self.queue: deque[tuple[str, Any, int]] = deque()
        self.max_backlog = _backlog(sink, writer.max_backlog)
        self.queued_events = 0
        self.session_sent = False
        self.stale_runs: set[str] = set()
        self.written_events = 0
        self.written_runs = 0
        self.dropped_events = 0
        self.dropped_runs = 0
        self.failed_events = 0
        self.lost_events = 0
        self.errors = 0
        self.last_error: str | None = None
        self.busy_since: float | None = None
        self.reported: set[str] = set()
        self.opened = False
        self.disabled = False
        self.closed = threading.Event()
        self.thread = threading.Thread(target=self.run, name=f"nbcallbacks-sink-{index}-{self.name}"[:60], daemon=True)

    # called by the reader thread

    def offer(self, records: list[dict[str, Any]], events: int, run_ids: Iterable[str], *, force: bool = False) -> bool:
        """Queue a batch unless the backlog is full (then count it as dropped); returns whether queued."""
        with self.cond:
            if not force and self.queue and self.queued_events + events > self.max_backlog:
                self.dropped_events += events
                before = len(self.stale_runs)
                self.stale_runs.update(run_ids)
                self.dropped_runs += len(self.stale_runs) - before
                full = True
            else:
                self.queue.append((_BATCH, records, events))
                self.queued_events += events
                self.cond.notify()
                full = False
        if full:
            self.report(
                "backpressure",
                SinkBackpressureError(
                    f"sink {self.name} cannot keep up: more than {self.max_backlog:,} events waiting, "
                    "later ones are dropped and counted (see sink_status())"
                ),
            )
        return not full

    def post(self, kind: str, payload: Any) -> None:
        """Queue a flush or stop marker (never dropped)."""
        with self.cond:
            self.queue.append((kind, payload, 0))
            self.cond.notify()

    def report(self, category: str, exc: BaseException) -> None:
        """Show a sink problem once per category as a handler error (the widget lists those)."""
        if category in self.reported:
            return
        self.reported.add(category)
        logger.warning("nbcallbacks sink %s: %s", self.name, exc)
        self.writer.recorder.record_handler_error(f"sink {self.name}", exc)

    # the worker thread

    def _take(self) -> tuple[str, Any, int]:
        """The next marker, or the next batches merged up to ``batch_size`` records."""
        with self.cond:
            while not self.queue:
                self.cond.wait()
            kind, payload, events = self.queue.popleft()
            if kind != _BATCH:
                return kind, payload, events
            batches: list[list[dict[str, Any]]] = [payload]
            size = len(payload)
            while self.queue and self.queue[0][0] == _BATCH and size < self.writer.batch_size:
                _, more, more_events = self.queue.popleft()
                batches.append(more)
                size += len(more)
                events += more_events
            records = batches[0] if len(batches) == 1 else [record for batch in batches for record in batch]
            return _BATCH, records, events

    def run(self) -> None:
        while True:
            kind, payload, events = self._take()
            if kind == _BATCH:
                self._write(payload, events)
                with self.cond:
                    self.queued_events -= events
            elif kind == _FLUSH:
                self._call("flush")
                payload.set()
            else:
                self._call("close")
                self.closed.set()
                payload.set()
                return

    def _call(self, method: str, *args: Any) -> bool:
        function = getattr(self.sink, method, None)
        if function is None:
            return True
        self.busy_since = time.monotonic()
        try:
            function(*args)
        except Exception as exc:  # noqa: BLE001 - a sink's failure stays with the sink
            self._failed(exc, method)
            return False
        finally:
            self.busy_since = None
        return True

    def _failed(self, exc: BaseException, where: str) -> None:
        self.errors += 1
        try:
            self.last_error = f"{where}: {type(exc).__name__}: {exc}"[:2000]
        except Exception:  # noqa: BLE001 - an exception whose str() raises
            self.last_error = f"{where}: {type(exc).__name__}"
        self.report(f"error:{where}", exc)

    def _write(self, records: list[dict[str, Any]], events: int) -> None:
        if not self.opened and not self.disabled:
            self.opened = True
            session = records[0] if records and records[0].get("kind") == "session" else None
            if session is not None and not self._call("open", dict(session)):
                self.disabled = True
        if self.disabled:
            self.failed_events += events
            return
        runs = sum(1 for record in records if record.get("kind") == "run")
        self.busy_since = time.monotonic()
        try:
            self.sink.write([dict(record) for record in records] if self.private_copies else records)
        except Exception as exc:  # noqa: BLE001 - a sink's failure stays with the sink
            self.failed_events += events
            self._failed(exc, "write")
            self._resend(records)
        else:
            self.written_events += events
            self.written_runs += runs
        finally:
            self.busy_since = None

    def _resend(self, records: list[dict[str, Any]]) -> None:
        """After a failed write, send its session record and the current state of its runs again next time."""
        with self.cond:
            for record in records:
                kind = record.get("kind")
                if kind == "run":
                    self.stale_runs.add(record["run_id"])
                elif kind == "session":
                    self.session_sent = False

    def status(self) -> dict[str, Any]:
        busy = self.busy_since
        status = {
            "sink": self.name,
            "written_events": self.written_events,
            "written_runs": self.written_runs,
            "queued_events": self.queued_events,
            "dropped_events": self.dropped_events,
            "lost_events": self.lost_events,
            "failed_events": self.failed_events,
            "errors": self.errors,
            "last_error": self.last_error,
            "blocked_s": 0.0 if busy is None else time.monotonic() - busy,
            "closed": self.closed.is_set(),
        }
        # issue 10: a sink's own counters (e.g. OpenTelemetrySink's spans exported / dropped) join its status
        own = getattr(self.sink, "status", None)
        if callable(own):
            with contextlib.suppress(Exception):
                extra = own()
                if isinstance(extra, dict):
                    status.update({key: value for key, value in extra.items() if key not in status})
        return status


_LIVE_WRITERS: weakref.WeakSet[SinkWriter] = weakref.WeakSet()
_ATEXIT_BUDGET_S = 5.0
_atexit_registered = False
_atexit_lock = threading.Lock()


def _close_all_at_exit() -> None:
    deadline = time.monotonic() + _ATEXIT_BUDGET_S
    for writer in list(_LIVE_WRITERS):
        writer.close(timeout=max(0.0, deadline - time.monotonic()))


class SinkWriter:
    """Carries what a recorder records to its sinks, off the recording thread.

    One reader thread wakes when the recorder changes, waits until recording pauses for ``interval`` seconds
    (or ``max_delay`` seconds have passed), reads only what changed, builds the records once and offers them to
    each sink's worker. Waiting for a pause keeps the writing out of a busy stream's way: with one interpreter
    lock, work on any thread slows the recording thread. Each worker holds at most
    ``max_backlog`` events; past that, batches are dropped and counted, and the runs they touched are
    re-sent in full with the next batch that fits, so the runs a sink holds stay exact.

    Args:
        recorder: what to read.
        title: the handler's title, kept in the session record.
        pricing: prices model runs for the run records' ``cost_usd`` (see ``nbcallbacks.tree.Tree``).
        interval: seconds without a new event after which the reader reads (events gather into batches).
        max_delay: seconds after a change at which the reader reads even if recording goes on.
        max_backlog: events one sink may have waiting before new batches are dropped for it.
        batch_size: records handed to one ``write`` call at most (several small batches are merged).
        stall_after: seconds a ``write`` may run before it is reported as stalled (once).
    """

    def __init__(  # noqa: PLR0913 - tuning knobs, all keyword-only
        self,
        recorder: Recorder,
        *,
        title: str | None = None,
        pricing: Pricing | None = None,
        interval: float = 0.1,
        max_delay: float = 1.0,
        max_backlog: int = 200_000,
        batch_size: int = 5_000,
        stall_after: float = 10.0,
    ) -> None:
        """Create the writer; threads start with the first sink."""
        global _atexit_registered  # noqa: PLW0603 - one interpreter-wide exit hook
        self.recorder = recorder
        self.session = session_record(title, asdict(recorder.limits))
        self.session_id: str = self.session["session"]
        self.interval = interval
        self.max_delay = max_delay
        self.max_backlog = max_backlog
        self.batch_size = batch_size
        self.stall_after = stall_after
        self._lock = threading.Lock()
        """Held while a delta is read and distributed, and while a sink is added."""
        self._workers: list[_Worker] = []
        self._wake = threading.Event()
        self._urgent = threading.Event()
        self._flushes: list[list[threading.Event]] = []
        self._stopping = False
        self._sub: Subscription | None = None
        self._reader: threading.Thread | None = None
        self._tree = Tree(pricing)
        """Every run read so far (its latest copy) and what the tree derives for it; read under ``_lock``."""
        self.lost_events = 0
        _LIVE_WRITERS.add(self)
        with _atexit_lock:
            if not _atexit_registered:
                atexit.register(_close_all_at_exit)
                _atexit_registered = True

    # --- public

    def add(self, sink: Any) -> None:
        """Attach a sink; it receives everything recorded so far, then every later change."""
        write = getattr(sink, "write", None)
        if not callable(write):
            msg = f"a sink needs a write(batch) method; {type(sink).__name__} has none"
            raise TypeError(msg)
        with self._lock:
            if self._stopping:
                msg = "this handler's sinks are closed"
                raise RuntimeError(msg)
            worker = _Worker(self, sink, len(self._workers))
            if self._sub is None:
                self._sub = self.recorder.subscribe(self._wake.set, from_start=True)
                self._reader = threading.Thread(target=self._read_loop, name="nbcallbacks-sink-reader", daemon=True)
                self._reader.start()
            elif self._sub.cursor:  # the reader already handed out events: send them to the new sink first
                self._bootstrap(worker, self._sub.cursor)
            worker.thread.start()
            self._workers = [*self._workers, worker]
        if self.recorder.event_count:  # something to write already
            self._wake.set()

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Block until every sink has written (and flushed) everything recorded so far.

        Returns:
            False when ``timeout`` seconds passed first (a slow or blocked sink), True otherwise.
        """
        if not self._workers or self._reader is None:
            return True
        with self._lock:
            if self._stopping:
                return all(worker.closed.is_set() for worker in self._workers)
            done = [threading.Event() for _ in self._workers]
            self._flushes.append(done)
        self._urgent.set()
        self._wake.set()
        deadline = None if timeout is None else time.monotonic() + timeout
        for event in done:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not event.wait(remaining):
                return False
        return True

    def close(self, timeout: float | None = 10.0) -> bool:
        """Write what is left, close every sink and stop the threads; returns False on timeout."""
        with self._lock:
            already = self._stopping
            self._stopping = True
        if self._reader is None:
            return True
        if not already:
            self._urgent.set()
            self._wake.set()
        deadline = None if timeout is None else time.monotonic() + timeout
        for worker in self._workers:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not worker.closed.wait(remaining):
                return False
        return True

    def status(self) -> list[dict[str, Any]]:
        """Per sink: what it wrote, what waits, what was dropped or failed, and its errors.

        Keys: ``written_events``, ``written_runs``, ``queued_events``, ``dropped_events`` (backlog full),
        ``lost_events`` (left the recorder's log before being read), ``failed_events`` (``write`` raised),
        ``errors``, ``last_error``, ``blocked_s`` (how long the current ``write`` has been running), ``closed``.
        """
        return [worker.status() for worker in self._workers]

    # --- the reader thread

    def _read_loop(self) -> None:
        tick = min(1.0, self.stall_after / 2)
        while True:
            woke = self._wake.wait(tick)
            if woke:
                self._gather()
            self._urgent.clear()
            self._wake.clear()
            try:
                stopping = self._distribute()
            except Exception as exc:  # the reader must survive anything
                logger.warning("nbcallbacks sink reader failed", exc_info=exc)
                self.recorder.record_handler_error("sink reader", exc)
                with self._lock:  # nobody waits forever on a flush the reader could not serve
                    flushes, self._flushes = self._flushes, []
                for done in flushes:
                    for event in done:
                        event.set()
                stopping = self._stopping
            self._check_stalls()
            if stopping:
                return

    def _gather(self) -> None:
        """Wait for a pause in recording, at most ``max_delay`` seconds; a flush or close cuts it short."""
        deadline = time.monotonic() + self.max_delay
        seen = self.recorder.event_count
        while not self._urgent.wait(self.interval):
            count = self.recorder.event_count
            if count == seen or time.monotonic() >= deadline:
                return
            seen = count

    def _distribute(self) -> bool:
        """Read the recorder's changes, offer them to every worker, then post pending flushes/stops."""
        with self._lock:
            sub = self._sub
            if sub is None:
                return self._stopping
            delta = sub.read()
            workers = self._workers
            if delta.dropped_events:
                self._count_lost(workers, delta.dropped_events)
            if delta.events or delta.runs:
                self._offer(workers, delta.events, delta.runs)
            flushes, self._flushes = self._flushes, []
            if flushes or self._stopping:
                self._resync(workers)
            for done in flushes:
                for worker, event in zip(workers, done, strict=False):
                    worker.post(_FLUSH, event)
                for event in done[len(workers) :]:
                    event.set()
            stopping = self._stopping
            if stopping:
                sub.close()
                self._sub = None
                for worker in workers:
                    worker.post(_STOP, threading.Event())
        return stopping

    def _count_lost(self, workers: list[_Worker], count: int) -> None:
        self.lost_events += count
        for worker in workers:
            worker.lost_events += count
            worker.report(
                "lost",
                SinkBackpressureError(
                    f"{count:,} events left the recorder's log (Limits.max_events) before sink {worker.name} "
                    "could read them"
                ),
            )

    def _resync(self, workers: list[_Worker]) -> None:
        """Send the current state of runs whose records were dropped, whatever waits before it."""
        for worker in workers:
            if worker.stale_runs:
                self._offer_one(worker, [], 0, [], force=True)

    def _offer(self, workers: list[_Worker], events: list[EventRow], runs: list[RunRecord]) -> None:
        session = self.session_id
        changed = self._tree.update(runs)  # the runs read, plus those whose derived fields they changed
        origin = self.recorder.first_time
        if origin is None:
            origin = events[0].time if events else 0.0
        size = self.batch_size
        for start in range(0, max(len(events), 1), size):  # bounded batches; the runs' state goes last
            chunk = events[start : start + size]
            records = [event_record(row, origin, session) for row in chunk]
            last = start + size >= len(events)
            if last:
                records.extend(self._run_record(run_id) for run_id in changed)
            run_ids = changed if last else []
            for worker in workers:
                self._offer_one(worker, records, len(chunk), run_ids)

    def _offer_one(
        self,
        worker: _Worker,
        records: list[dict[str, Any]],
        events: int,
        run_ids: list[str],
        *,
        force: bool = False,
    ) -> None:
        prefix: list[dict[str, Any]] = []
        with worker.cond:
            if not worker.session_sent:
                session = dict(self.session)
                session["first_time"] = self.recorder.first_time
                prefix.append(session)
            resync = worker.stale_runs and (force or not worker.queue)
            stale = worker.stale_runs.difference(run_ids) if resync else set()
        prefix.extend(self._run_record(run_id) for run_id in stale if run_id in self._tree)
        batch = [*prefix, *records] if prefix else records
        if batch and worker.offer(batch, events, run_ids, force=force):
            with worker.cond:
                worker.session_sent = True
                worker.stale_runs.difference_update(stale)
                worker.stale_runs.difference_update(run_ids)

    def _bootstrap(self, worker: _Worker, cursor: int) -> None:
        """Queue for a sink added late what the reader already handed to the others (lock held)."""
        events = [row for row in self.recorder.events() if row.seq < cursor]
        origin = self.recorder.first_time or 0.0
        session = dict(self.session)
        session["first_time"] = self.recorder.first_time
        size = self.batch_size
        for start in range(0, max(len(events), 1), size):
            chunk = events[start : start + size]
            records = [session] if start == 0 else []
            records.extend(event_record(row, origin, self.session_id) for row in chunk)
            if start + size >= len(events):
                records.extend(self._run_record(run_id) for run_id in self._tree.in_start_order())
            worker.queue.append((_BATCH, records, len(chunk)))
            worker.queued_events += len(chunk)
        worker.session_sent = True

    def _run_record(self, run_id: str) -> dict[str, Any]:
        """The record of a run as the tree holds it now (lock held)."""
        return run_record(self._tree.run(run_id), self._tree.derived(run_id), self.session_id)

    def _check_stalls(self) -> None:
        now = time.monotonic()
        for worker in self._workers:
            busy = worker.busy_since
            if busy is not None and now - busy > self.stall_after:
                worker.report(
                    "stalled",
                    SinkStalledError(
                        f"sink {worker.name} has been writing for more than {self.stall_after:g} s; up to "
                        f"{worker.max_backlog:,} events wait for it, later ones are dropped and counted"
                    ),
                )
