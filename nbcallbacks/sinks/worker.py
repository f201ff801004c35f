"""One sink's worker: its bounded backlog, the thread that writes to it, its status and stall reports."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Iterable

    from nbcallbacks.sinks.writer import SinkWriter

__all__ = ["BATCH", "FLUSH", "STOP", "SinkBackpressureError", "SinkStalledError", "Worker"]

logger = logging.getLogger("nbcallbacks.sinks")  # the name it has always had: logging setups refer to it
logger.addHandler(logging.NullHandler())

# What a worker's queue holds: a batch of records, or a flush or stop marker (never dropped).
STOP: Final = "stop"
FLUSH: Final = "flush"
BATCH: Final = "batch"


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


class Worker:
    """One sink, its bounded backlog and the thread that writes to it."""

    def __init__(self, writer: SinkWriter, sink: Any, index: int) -> None:
        """The worker of ``sink``, the ``index``-th of ``writer``; its thread starts with ``thread.start()``."""
        self.writer = writer
        self.sink = sink
        self.name = _sink_name(sink)
        self.private_copies = getattr(sink, "shares_records", False) is not True
        """Records are shared by all sinks: one that does not promise to leave them alone gets its own copies."""
        self.cond = threading.Condition(threading.Lock())
        self.queue: deque[tuple[str, Any, int]] = deque()
        self.max_backlog = _backlog(sink, writer.max_backlog)
        self.queued_events = 0
        self.session_sent = False
        self.stale_runs: set[str] = set()
        self.written_events = 0
        self.written_runs = 0
        self.dropped_events = 0
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

    def preload(self, records: list[dict[str, Any]], events: int) -> None:
        """Queue a batch before the thread starts (a sink added late catching up; never dropped, no wake-up)."""
        self.queue.append((BATCH, records, events))
        self.queued_events += events

    def offer(self, records: list[dict[str, Any]], events: int, run_ids: Iterable[str], *, force: bool = False) -> bool:
        """Queue a batch unless the backlog is full (then count it as dropped); returns whether queued."""
        with self.cond:
            if not force and self.queue and self.queued_events + events > self.max_backlog:
                self.dropped_events += events
                self.stale_runs.update(run_ids)
                full = True
            else:
                self.queue.append((BATCH, records, events))
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
            if kind != BATCH:
                return kind, payload, events
            batches: list[list[dict[str, Any]]] = [payload]
            size = len(payload)
            while self.queue and self.queue[0][0] == BATCH and size < self.writer.batch_size:
                _, more, more_events = self.queue.popleft()
                batches.append(more)
                size += len(more)
                events += more_events
            records = batches[0] if len(batches) == 1 else [record for batch in batches for record in batch]
            return BATCH, records, events

    def run(self) -> None:
        """The worker thread: write batches, serve flushes, close the sink on stop."""
        while True:
            kind, payload, events = self._take()
            if kind == BATCH:
                self._write(payload, events)
                with self.cond:
                    self.queued_events -= events
            elif kind == FLUSH:
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

    def check_stall(self, now: float, stall_after: float) -> None:
        """Report (once) a call to the sink that has been running for more than ``stall_after`` seconds."""
        busy = self.busy_since
        if busy is not None and now - busy > stall_after:
            self.report(
                "stalled",
                SinkStalledError(
                    f"sink {self.name} has been writing for more than {stall_after:g} s; up to "
                    f"{self.max_backlog:,} events wait for it, later ones are dropped and counted"
                ),
            )

    def status(self) -> dict[str, Any]:
        """What this sink wrote, what waits, what was dropped or failed, and its errors (``SinkWriter.status``)."""
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
