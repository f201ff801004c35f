"""``SinkWriter``: carries what a recorder records to its sinks, one worker thread per sink, flushed at exit.

The writer's reader thread reads the recorder, builds the records and offers them to each sink's ``Worker``
(``nbcallbacks.sinks.worker``: its backlog, thread, status and stall reports).
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, TypeVar

from nbcallbacks.sinks.records import session_now, session_record, tree_run_record
from nbcallbacks.sinks.worker import FLUSH, STOP, SinkBackpressureError, SinkStalledError, Worker
from nbcallbacks.tree import Tree

T = TypeVar("T")

if TYPE_CHECKING:
    from collections.abc import Iterator

    from nbcallbacks.events import RunRecord
    from nbcallbacks.recorder import Recorder, Subscription
    from nbcallbacks.tree import Pricing

__all__ = ["SinkBackpressureError", "SinkStalledError", "SinkWriter"]  # the errors' import path stays this one

logger = logging.getLogger("nbcallbacks.sinks")  # the workers' logger (nbcallbacks.sinks.worker adds its handler)


def _chunks(events: list[T], size: int) -> Iterator[tuple[int, list[T], bool]]:
    """Bounded slices of ``events`` (one empty slice when there are none): start, slice, whether it is the last."""
    for start in range(0, max(len(events), 1), size):
        yield start, events[start : start + size], start + size >= len(events)


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
        self._head = {"kind": "event", "session": self.session_id}
        """What every event record starts with (``Recorder.read_delta(head=...)``)."""
        self.interval = interval
        self.max_delay = max_delay
        self.max_backlog = max_backlog
        self.batch_size = batch_size
        self.stall_after = stall_after
        self._lock = threading.Lock()
        """Held while a delta is read and distributed, and while a sink is added."""
        self._workers: list[Worker] = []
        self._wake = threading.Event()
        self._urgent = threading.Event()
        self._flushes: list[list[threading.Event]] = []
        self._stopping = False
        self._sub: Subscription | None = None
        self._reader: threading.Thread | None = None
        self._tree = Tree(pricing)
        """Every run read so far (its latest copy) and what the tree derives for it; read under ``_lock``."""
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
            worker = Worker(self, sink, len(self._workers))
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
            delta = sub.read(head=self._head)
            workers = self._workers
            if delta.dropped_events:
                self._count_lost(workers, delta.dropped_events)
            if delta.records or delta.runs:
                self._offer(workers, delta.records, delta.runs)
            flushes, self._flushes = self._flushes, []
            if flushes or self._stopping:
                self._resync(workers)
            for done in flushes:
                for worker, event in zip(workers, done, strict=False):
                    worker.post(FLUSH, event)
                for event in done[len(workers) :]:
                    event.set()
            stopping = self._stopping
            if stopping:
                sub.close()
                self._sub = None
                for worker in workers:
                    worker.post(STOP, threading.Event())
        return stopping

    def _count_lost(self, workers: list[Worker], count: int) -> None:
        for worker in workers:
            worker.lost_events += count
            worker.report(
                "lost",
                SinkBackpressureError(
                    f"{count:,} events left the recorder's log (Limits.max_events) before sink {worker.name} "
                    "could read them"
                ),
            )

    def _resync(self, workers: list[Worker]) -> None:
        """Send the current state of runs whose records were dropped, whatever waits before it."""
        for worker in workers:
            if worker.stale_runs:
                self._offer_one(worker, [], 0, [], force=True)

    def _offer(self, workers: list[Worker], events: list[dict[str, Any]], runs: list[RunRecord]) -> None:
        """Offer event records (``read_delta(head=...)``) and the touched runs' state to every worker."""
        tree = self._tree
        changed = tree.update(runs)  # the runs read, plus those whose derived fields they changed
        for _, chunk, last in _chunks(events, self.batch_size):  # bounded batches; the runs' state goes last
            run_ids = changed if last else []
            records = chunk + [tree_run_record(tree, run_id, self.session_id) for run_id in run_ids]
            for worker in workers:
                self._offer_one(worker, records, len(chunk), run_ids)

    def _offer_one(
        self,
        worker: Worker,
        records: list[dict[str, Any]],
        events: int,
        run_ids: list[str],
        *,
        force: bool = False,
    ) -> None:
        prefix: list[dict[str, Any]] = []
        with worker.cond:
            if not worker.session_sent:
                prefix.append(session_now(self.session, self.recorder.first_time))
            resync = worker.stale_runs and (force or not worker.queue)
            stale = worker.stale_runs.difference(run_ids) if resync else set()
        prefix.extend(tree_run_record(self._tree, run_id, self.session_id) for run_id in stale if run_id in self._tree)
        batch = [*prefix, *records] if prefix else records
        if batch and worker.offer(batch, events, run_ids, force=force):
            with worker.cond:
                worker.session_sent = True
                worker.stale_runs.difference_update(stale)
                worker.stale_runs.difference_update(run_ids)

    def _bootstrap(self, worker: Worker, cursor: int) -> None:
        """Queue for a sink added late what the reader already handed to the others (lock held)."""
        events = self.recorder.records(self._head, cursor)
        session = session_now(self.session, self.recorder.first_time)
        tree = self._tree
        for start, chunk, last in _chunks(events, self.batch_size):
            runs = [tree_run_record(tree, run_id, self.session_id) for run_id in tree.in_start_order()] if last else []
            worker.preload([session, *chunk, *runs] if start == 0 else [*chunk, *runs], len(chunk))
        worker.session_sent = True

    def _check_stalls(self) -> None:
        now = time.monotonic()
        for worker in self._workers:
            worker.check_stall(now, self.stall_after)
