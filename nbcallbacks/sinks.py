"""Sinks: send every recorded event and run somewhere else (a JSONL file, a SQLite history, ``logging``, anything).

Standard library only. A sink never runs on the hot path: a handler's ``SinkWriter`` subscribes to its recorder,
wakes a background reader thread, turns what changed into plain dictionaries (records) and hands them in batches
to one worker thread per sink, each with its own bounded backlog. A sink that is slow, raises or blocks forever
never touches the user's chain nor the other sinks: what it cannot take is dropped and counted
(``NotebookHandler.sink_status()``), and its first failure shows in the widget as a handler error.

Records are dictionaries with a ``"kind"``:

- ``"session"``: one per handler (``session`` id, ``started``, ``first_time``, ``hostname``, ``pid``,
  ``notebook``, ``program``, ``python``, ``nbcallbacks``, ``title``, ``limits``, ``schema``), written first.
- ``"event"``: the columns of ``NotebookHandler.to_dataframe()`` (``seq``, ``time``, ``elapsed_s``, ``event``,
  ``run_id``, ``parent_run_id``, ``name``, ``run_type``, ``token``, ``token_kind``, ``data``, ``thread``) plus
  ``session``; times are seconds since the epoch. Every event arrives once, in ``seq`` order (the ones a full
  backlog drops or a failed ``write`` loses are counted in ``sink_status()``).
- ``"run"``: the columns of ``NotebookHandler.runs_dataframe()`` plus ``first_token`` and ``session``; written
  again each time the run changes (the last record of a run id is its current state).

A sink is any object with ``write(batch)``; ``open(session)``, ``flush()`` and ``close()`` are optional::

    class PrintSink:
        def write(self, batch: list[dict]) -> None:
            for record in batch:
                if record["kind"] == "event" and record["event"].endswith("_end"):
                    print(record["name"], "ended after", record["elapsed_s"], "s")

    h = NotebookHandler(sinks=[PrintSink(), SQLiteSink("runs.db")])
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import json
import logging
import math
import os
import socket
import sqlite3
import sys
import threading
import time
import uuid
import weakref
from collections import deque
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable

from nbcallbacks.events import SCHEMA_VERSION, EventRow, RunRecord

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterable

    from nbcallbacks.recorder import Recorder, Subscription

__all__ = [
    "EVENT_FIELDS",
    "RUN_FIELDS",
    "JSONLSink",
    "LoggingSink",
    "SQLiteSink",
    "Sink",
    "SinkWriter",
    "dumps",
    "event_record",
    "run_record",
]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

EVENT_FIELDS: Final[tuple[str, ...]] = (
    "seq",
    "time",
    "elapsed_s",
    "event",
    "run_id",
    "parent_run_id",
    "name",
    "run_type",
    "token",
    "token_kind",
    "data",
    "thread",
)
"""Fields of an event record besides ``kind`` and ``session``: the columns of ``to_dataframe()``."""
_EVENT_RECORD_KEYS: Final = frozenset({"kind", "session", *EVENT_FIELDS})

RUN_FIELDS: Final[tuple[str, ...]] = (
    "run_id",
    "parent_run_id",
    "order",
    "name",
    "run_type",
    "status",
    "depth",
    "start",
    "end",
    "start_offset_s",
    "duration_s",
    "ttft_s",
    "tokens_per_s",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "streamed_chunks",
    "chunks_not_kept",
    "model",
    "error",
    "error_type",
    "traceback",
    "tags",
    "metadata",
    "inputs",
    "outputs",
    "metrics",
    "langgraph_node",
    "langgraph_step",
    "orphan",
    "hidden",
    "started",
    "abandoned",
    "thread",
    "first_token",
)
"""Fields of a run record besides ``kind`` and ``session``: the columns of ``runs_dataframe()`` (times as
seconds since the epoch) and ``first_token``, which makes the record a complete copy of the run."""

SESSION_FIELDS: Final[tuple[str, ...]] = (
    "session",
    "started",
    "first_time",
    "hostname",
    "pid",
    "notebook",
    "program",
    "python",
    "nbcallbacks",
    "title",
    "limits",
    "schema",
)
"""Fields of a session record besides ``kind``."""


@runtime_checkable
class Sink(Protocol):
    """Where records go. Only ``write`` is required.

    Optional methods, called on the sink's own worker thread when present:

    - ``open(session: dict) -> None``: once, before the first ``write``, with the session record.
    - ``flush() -> None``: after the records written so far, when ``NotebookHandler.flush()`` is called.
    - ``close() -> None``: once, when the handler's writer shuts down (at interpreter exit at the latest).

    - ``describe() -> str``: the name shown in ``sink_status()`` and in handler errors (default: the class name).

    An optional ``max_backlog`` attribute (events) overrides how much may wait for this sink before later
    batches are dropped for it (``SinkWriter.max_backlog``, 200,000 by default).

    ``write`` receives records in order (see the module documentation); it may block or raise: that only
    affects this sink, and is counted in ``NotebookHandler.sink_status()``. Each sink gets its own record
    dictionaries, but the values inside them (payload previews) are shared: read them, do not modify them.
    """

    def write(self, batch: list[dict[str, Any]]) -> None:
        """Take a batch of records (``"session"``, ``"event"`` and ``"run"`` dictionaries) in order."""


# --- records


def event_record(row: EventRow, origin: float, session: str) -> dict[str, Any]:
    """The record of one event; ``elapsed_s`` counts from ``origin`` (the recorder's ``first_time``)."""
    return {
        "kind": "event",
        "session": session,
        "seq": row.seq,
        "time": row.time,
        "elapsed_s": row.time - origin,
        "event": row.event,
        "run_id": row.run_id or None,
        "parent_run_id": row.parent_run_id,
        "name": row.name or None,
        "run_type": row.run_type or None,
        "token": row.token,
        "token_kind": row.token_kind,
        "data": row.data,
        "thread": row.thread,
    }


def run_record(run: RunRecord, first_start: float, session: str) -> dict[str, Any]:
    """The record of one run; ``start_offset_s`` counts from ``first_start`` (the first run's start)."""
    return {
        "kind": "run",
        "session": session,
        "run_id": run.run_id,
        "parent_run_id": run.parent_run_id,
        "order": run.order,
        "name": run.name,
        "run_type": run.run_type,
        "status": run.status,
        "depth": run.depth,
        "start": run.start,
        "end": run.end,
        "start_offset_s": run.start - first_start,
        "duration_s": run.duration,
        "ttft_s": run.ttft,
        "tokens_per_s": run.tokens_per_s,
        "input_tokens": run.input_tokens,
        "output_tokens": run.output_tokens,
        "total_tokens": run.total_tokens,
        "streamed_chunks": run.token_count,
        "chunks_not_kept": run.tokens_dropped,
        "model": run.model,
        "error": run.error,
        "error_type": run.error_type,
        "traceback": run.traceback,
        "tags": list(run.tags),
        "metadata": run.metadata,
        "inputs": run.inputs,
        "outputs": run.outputs,
        "metrics": dict(run.metrics),
        "langgraph_node": run.langgraph_node,
        "langgraph_step": run.langgraph_step,
        "orphan": run.orphan,
        "hidden": run.hidden,
        "started": run.started,
        "abandoned": run.abandoned,
        "thread": run.thread,
        "first_token": run.first_token,
    }


def _wire_run(wire: dict[str, Any]) -> RunRecord:
    return RunRecord(**wire)


def _json_fallback(obj: Any) -> Any:
    """Anything ``json`` cannot encode (previews never hold such values, custom data might) as text."""
    try:
        return f"<{type(obj).__name__}: {str(obj)[:200]}>"
    except Exception:  # noqa: BLE001 - an object whose str() raises is still written
        return f"<{type(obj).__name__}>"


def dumps(obj: Any) -> str:
    """Compact JSON, non-ASCII kept as is; a string with lone surrogates is escaped (as JSON escapes) instead.

    ``json.loads`` gives back exactly the same values (floats included; NaN and infinities are written as
    ``NaN``/``Infinity``, as Python's ``json`` reads them).
    """
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=_json_fallback)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: \u-escape them (ensure_ascii), lossless and valid UTF-8
        return json.dumps(obj, ensure_ascii=True, separators=(",", ":"), default=_json_fallback)
    return text


_encode_text: Callable[[str], str] = json.encoder.encode_basestring
"""A JSON string literal, non-ASCII kept (the C encoder ``json.dumps`` uses)."""


def _text_or_null(value: str | None) -> str:
    return "null" if value is None else _encode_text(value)


def _compact(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=_json_fallback)


def _line(record: dict[str, Any]) -> str:
    """``dumps(record)``, faster for event records (the bulk of a stream); may hold lone surrogates."""
    if record.get("kind") != "event" or record.keys() != _EVENT_RECORD_KEYS:
        return _compact(record)
    data = record["data"]
    time_value, elapsed = record["time"], record["elapsed_s"]
    if not (type(time_value) is float and type(elapsed) is float and math.isfinite(time_value + elapsed)):
        return _compact(record)
    return (
        f'{{"kind":"event","session":{_encode_text(record["session"])},"seq":{int(record["seq"])},'
        f'"time":{time_value!r},"elapsed_s":{elapsed!r},"event":{_encode_text(record["event"])},'
        f'"run_id":{_text_or_null(record["run_id"])},"parent_run_id":{_text_or_null(record["parent_run_id"])},'
        f'"name":{_text_or_null(record["name"])},"run_type":{_text_or_null(record["run_type"])},'
        f'"token":{_text_or_null(record["token"])},"token_kind":{_text_or_null(record["token_kind"])},'
        f'"data":{"null" if data is None else _compact(data)},'
        f'"thread":{_encode_text(record["thread"])}}}'
    )


def _session_info(title: str | None, limits: dict[str, Any]) -> dict[str, Any]:
    from nbcallbacks import __version__  # noqa: PLC0415 - the package imports this module

    notebook = os.environ.get("JPY_SESSION_NAME")
    if not notebook:
        ipython = sys.modules.get("IPython")
        shell = ipython.get_ipython() if ipython is not None else None
        user_ns = getattr(shell, "user_ns", None)
        if isinstance(user_ns, dict):
            vscode = user_ns.get("__vsc_ipynb_file__")
            notebook = vscode if isinstance(vscode, str) else None
    try:
        hostname = socket.gethostname()
    except OSError:
        hostname = None
    now = time.time()
    return {
        "kind": "session",
        "session": uuid.uuid4().hex,
        "started": now,
        "first_time": None,
        "hostname": hostname,
        "pid": os.getpid(),
        "notebook": notebook or None,
        "program": sys.argv[0] if sys.argv and sys.argv[0] else None,
        "python": sys.version.split()[0],
        "nbcallbacks": __version__,
        "title": title,
        "limits": limits,
        "schema": SCHEMA_VERSION,
    }


# --- the writer: recorder -> batches -> one worker per sink

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
        return {
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
        interval: float = 0.1,
        max_delay: float = 1.0,
        max_backlog: int = 200_000,
        batch_size: int = 5_000,
        stall_after: float = 10.0,
    ) -> None:
        """Create the writer; threads start with the first sink."""
        global _atexit_registered  # noqa: PLW0603 - one interpreter-wide exit hook
        self.recorder = recorder
        self.session = _session_info(title, asdict(recorder.limits))
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
        self._first_start: float | None = None
        self.lost_events = 0
        _LIVE_WRITERS.add(self)
        with _atexit_lock:
            if not _atexit_registered:
                atexit.register(_close_all_at_exit)
                _atexit_registered = True

    # --- public

    @property
    def sinks(self) -> list[Any]:
        """The attached sinks, in the order they were added."""
        return [worker.sink for worker in self._workers]

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
                self._offer(workers, delta.events, [_wire_run(wire) for wire in delta.runs])
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
        first_start = self._first_start if self._first_start is not None else 0.0
        for worker in workers:
            if worker.stale_runs:
                self._offer_one(worker, [], 0, [], first_start, force=True)

    def _offer(self, workers: list[_Worker], events: list[EventRow], runs: list[RunRecord]) -> None:
        session = self.session_id
        if runs:
            earliest = min(run.start for run in runs)
            if self._first_start is None or earliest < self._first_start:
                self._first_start = earliest
        first_start = self._first_start if self._first_start is not None else 0.0
        origin = self.recorder.first_time
        if origin is None:
            origin = events[0].time if events else 0.0
        size = self.batch_size
        for start in range(0, max(len(events), 1), size):  # bounded batches; the runs' state goes last
            chunk = events[start : start + size]
            records = [event_record(row, origin, session) for row in chunk]
            last = start + size >= len(events)
            if last:
                records.extend(run_record(run, first_start, session) for run in runs)
            run_ids = [run.run_id for run in runs] if last else []
            for worker in workers:
                self._offer_one(worker, records, len(chunk), run_ids, first_start)

    def _offer_one(  # noqa: PLR0913 - one batch and where it goes
        self,
        worker: _Worker,
        records: list[dict[str, Any]],
        events: int,
        run_ids: list[str],
        first_start: float,
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
        for run_id in stale:
            run = self.recorder.run(run_id)
            if run is not None:
                prefix.append(run_record(run, first_start, self.session_id))
        batch = [*prefix, *records] if prefix else records
        if batch and worker.offer(batch, events, run_ids, force=force):
            with worker.cond:
                worker.session_sent = True
                worker.stale_runs.difference_update(stale)
                worker.stale_runs.difference_update(run_ids)

    def _bootstrap(self, worker: _Worker, cursor: int) -> None:
        """Queue for a sink added late what the reader already handed to the others (lock held)."""
        events = [row for row in self.recorder.events() if row.seq < cursor]
        runs = self.recorder.runs()
        if runs:
            earliest = min(run.start for run in runs)
            if self._first_start is None or earliest < self._first_start:
                self._first_start = earliest
        first_start = self._first_start if self._first_start is not None else 0.0
        origin = self.recorder.first_time or 0.0
        session = dict(self.session)
        session["first_time"] = self.recorder.first_time
        size = self.batch_size
        for start in range(0, max(len(events), 1), size):
            chunk = events[start : start + size]
            records = [session] if start == 0 else []
            records.extend(event_record(row, origin, self.session_id) for row in chunk)
            if start + size >= len(events):
                records.extend(run_record(run, first_start, self.session_id) for run in runs)
            worker.queue.append((_BATCH, records, len(chunk)))
            worker.queued_events += len(chunk)
        worker.session_sent = True

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


# --- built-in sinks


def _check_parent(path: Path, kind: str) -> None:
    parent = path.parent
    if not parent.is_dir():
        msg = f"{kind} cannot write to {str(path)!r}: directory {str(parent)!r} does not exist"
        raise ValueError(msg)


class JSONLSink:
    """Appends one JSON object per line: session, event and run records (see the module documentation).

    Several handlers and processes may append to one file: each batch goes out in one ``write`` call on a file
    opened in append mode, under an advisory lock where the platform has one. A run appears once per change;
    its last line is its final state. ``nbcallbacks.NotebookHandler.load(path)`` replays the file.

    Args:
        path: the file; created if missing, appended to otherwise. Its directory must exist.
        fsync: also ``fsync`` the file on every ``flush()`` (durable against power loss, slower).

    Raises:
        ValueError: the file cannot be opened for appending (with the path and the reason).
    """

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = False) -> None:
        """Open ``path`` for appending now, so a bad path fails here and not in the background."""
        self.path = Path(path)
        self.fsync = fsync
        _check_parent(self.path, "JSONLSink")
        try:
            self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            msg = f"JSONLSink cannot open {str(self.path)!r} for appending: {exc.strerror or exc}"
            raise ValueError(msg) from exc
        self._lock = threading.Lock()
        self._torn = False

    def describe(self) -> str:
        """Name shown in ``sink_status()`` and handler errors."""
        return f"JSONLSink({self.path.name})"

    def __repr__(self) -> str:
        """``JSONLSink('path')``."""
        return f"JSONLSink({str(self.path)!r})"

    def write(self, batch: list[dict[str, Any]]) -> None:
        """Append the batch as lines, in one system call."""
        try:  # the quick encoder; any string it cannot put in UTF-8 (a lone surrogate) takes the safe path
            data = ("\n".join(_line(record) for record in batch) + "\n").encode("utf-8")
        except UnicodeEncodeError:
            data = ("\n".join(dumps(record) for record in batch) + "\n").encode("utf-8")
        with self._lock:
            if self._torn:  # an earlier write stopped midway (disk full): start on a fresh line
                data = b"\n" + data
            try:
                self._write_bytes(data)
            except OSError:
                self._torn = True
                raise
            self._torn = False

    def _write_bytes(self, data: bytes) -> None:
        fd = self._fd
        if fd is None:
            msg = f"JSONLSink({str(self.path)!r}) is closed"
            raise ValueError(msg)
        try:
            import fcntl  # noqa: PLC0415 - POSIX only

            lock: Callable[[int, int], None] | None = fcntl.flock
            unlock = fcntl.LOCK_UN
            exclusive = fcntl.LOCK_EX
        except ImportError:  # Windows: appends of one write call are still atomic enough for one process
            lock = None
            unlock = exclusive = 0
        if lock is not None:
            lock(fd, exclusive)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                if written <= 0:
                    raise OSError(errno.EIO, "short write", str(self.path))
                view = view[written:]
        finally:
            if lock is not None:
                lock(fd, unlock)

    def flush(self) -> None:
        """Lines are handed to the operating system on every write; ``fsync`` them when asked to."""
        with self._lock:
            if self.fsync and self._fd is not None:
                os.fsync(self._fd)

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


_SQL_SCHEMA_VERSION: Final = 1
_JSON_RUN_COLUMNS: Final = frozenset({"tags", "metadata", "inputs", "outputs", "metrics"})
_BOOL_RUN_COLUMNS: Final = frozenset({"orphan", "hidden", "started", "abandoned"})
_SQL_RETRIES: Final = 8


def _quote(name: str) -> str:
    return f'"{name}"'


def _sql_text(value: str | None) -> str | bytes | None:
    """Text for SQLite; a string with lone surrogates (invalid UTF-8) is kept exactly, as a BLOB."""
    if value is None or value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogatepass")
    return value


def _sql_json(value: Any) -> str | None:
    return None if value is None else dumps(value)


_CREATE_SQL: Final = f"""
CREATE TABLE IF NOT EXISTS sessions (
    session TEXT PRIMARY KEY, started REAL, first_time REAL, hostname TEXT, pid INTEGER, notebook TEXT,
    program TEXT, python TEXT, nbcallbacks TEXT, title TEXT, limits TEXT, schema INTEGER
);
CREATE TABLE IF NOT EXISTS runs (
    session TEXT NOT NULL, run_id TEXT NOT NULL, parent_run_id TEXT, "order" INTEGER, name TEXT, run_type TEXT,
    status TEXT, depth INTEGER, start REAL, "end" REAL, start_offset_s REAL, duration_s REAL, ttft_s REAL,
    tokens_per_s REAL, input_tokens INTEGER, output_tokens INTEGER, total_tokens INTEGER, streamed_chunks INTEGER,
    chunks_not_kept INTEGER, model TEXT, error TEXT, error_type TEXT, traceback TEXT, tags TEXT, metadata TEXT,
    inputs TEXT, outputs TEXT, metrics TEXT, langgraph_node TEXT, langgraph_step INTEGER, orphan INTEGER,
    hidden INTEGER, started INTEGER, abandoned INTEGER, thread TEXT, first_token REAL,
    PRIMARY KEY (session, run_id)
);
CREATE TABLE IF NOT EXISTS events (
    session TEXT NOT NULL, seq INTEGER NOT NULL, time REAL, elapsed_s REAL, event TEXT, run_id TEXT,
    parent_run_id TEXT, name TEXT, run_type TEXT, token TEXT, token_kind TEXT, data TEXT, thread TEXT,
    PRIMARY KEY (session, seq)
);
CREATE INDEX IF NOT EXISTS runs_by_start ON runs (session, start);
PRAGMA user_version = {_SQL_SCHEMA_VERSION};
"""

# The column names below are this module's constants; values always go through ? parameters.
_INSERT_SESSION: Final = (
    f"INSERT OR REPLACE INTO sessions ({', '.join(SESSION_FIELDS)}) "  # noqa: S608 - constant column names
    f"VALUES ({', '.join('?' * len(SESSION_FIELDS))})"
)
_INSERT_RUN: Final = (
    f"INSERT OR REPLACE INTO runs (session, {', '.join(_quote(f) for f in RUN_FIELDS)}) "  # noqa: S608 - as above
    f"VALUES (?, {', '.join('?' * len(RUN_FIELDS))})"
)
_INSERT_EVENT: Final = (
    f"INSERT OR IGNORE INTO events (session, {', '.join(EVENT_FIELDS)}) "  # noqa: S608 - as above
    f"VALUES (?, {', '.join('?' * len(EVENT_FIELDS))})"
)


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


class SQLiteSink:
    """A run history in one SQLite file: tables ``sessions``, ``runs`` and ``events``.

    ``runs`` and ``events`` have the columns of ``runs_dataframe()`` and ``to_dataframe()`` plus ``session``
    (times as seconds since the epoch, lists and dictionaries as JSON text); runs are upserted by
    ``(session, run_id)`` as they change. Every handler is one session, so notebooks, kernel restarts and
    processes append to one file. The file is in WAL mode; each batch is one transaction, retried while another
    writer holds the lock, so concurrent writers lose nothing and a killed process leaves every committed batch.
    ``nbcallbacks.history(path)`` lists what it holds, ``NotebookHandler.load(path)`` replays it.

    Args:
        path: the database file; created if missing. Its directory must exist.
        timeout: seconds to wait for another writer's lock before retrying.

    Raises:
        ValueError: the file cannot be created, opened for writing, or is not a SQLite database.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 30.0) -> None:
        """Open (or create) the database now, so a bad path fails here and not in the background."""
        self.path = Path(path)
        _check_parent(self.path, "SQLiteSink")
        self._lock = threading.Lock()
        try:
            conn = _connect(self.path, timeout)
            self._conn: sqlite3.Connection | None = conn
            _retry(lambda: _transaction(conn, ()))  # proves the file is writable
        except sqlite3.Error as exc:
            msg = f"SQLiteSink cannot write to {str(self.path)!r}: {exc}"
            raise ValueError(msg) from exc

    def describe(self) -> str:
        """Name shown in ``sink_status()`` and handler errors."""
        return f"SQLiteSink({self.path.name})"

    def __repr__(self) -> str:
        """``SQLiteSink('path')``."""
        return f"SQLiteSink({str(self.path)!r})"

    def write(self, batch: list[dict[str, Any]]) -> None:
        """Insert the batch's events, upsert its sessions and runs: one transaction."""
        sessions: list[tuple[Any, ...]] = []
        runs: list[tuple[Any, ...]] = []
        events: list[tuple[Any, ...]] = []
        for record in batch:
            kind = record.get("kind")
            if kind == "event":
                events.append(_event_row(record))
            elif kind == "run":
                runs.append(_run_row(record))
            elif kind == "session":
                sessions.append(_session_row(record))
        with self._lock:
            conn = self._conn
            if conn is None:
                msg = f"SQLiteSink({str(self.path)!r}) is closed"
                raise ValueError(msg)
            steps = ((_INSERT_SESSION, sessions), (_INSERT_EVENT, events), (_INSERT_RUN, runs))
            _retry(lambda: _transaction(conn, steps))

    def close(self) -> None:
        """Close the connection (committed batches are already in the file)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _connect(path: Path, timeout: float) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        _retry(lambda: _prepare(conn))
    except BaseException:
        conn.close()
        raise
    return conn


def _prepare(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.executescript(_CREATE_SQL)


def _retry(action: Callable[[], None]) -> None:
    """Run ``action``; again, after a pause, while another writer still holds the lock past ``busy_timeout``."""
    for attempt in range(_SQL_RETRIES):
        try:
            action()
        except sqlite3.OperationalError as exc:  # noqa: PERF203 - retried only on lock contention
            if not _is_busy(exc) or attempt == _SQL_RETRIES - 1:
                raise
            time.sleep(0.05 * 2**attempt)
        else:
            return


def _transaction(conn: sqlite3.Connection, steps: Iterable[tuple[str, list[tuple[Any, ...]]]]) -> None:
    """One write transaction of ``executemany`` steps, rolled back on any failure."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        for sql, rows in steps:
            if rows:
                conn.executemany(sql, rows)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _session_row(record: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(
        _sql_json(record.get(f)) if f == "limits" else _sql_text(v) if isinstance(v := record.get(f), str) else v
        for f in SESSION_FIELDS
    )


def _run_row(record: dict[str, Any]) -> tuple[Any, ...]:
    values: list[Any] = [record["session"]]
    for f in RUN_FIELDS:
        value = record.get(f)
        if f in _JSON_RUN_COLUMNS:
            values.append(_sql_json(value))
        elif f in _BOOL_RUN_COLUMNS:
            values.append(int(bool(value)))
        elif isinstance(value, str):
            values.append(_sql_text(value))
        else:
            values.append(value)
    return tuple(values)


def _event_row(record: dict[str, Any]) -> tuple[Any, ...]:
    data = record["data"]
    return (
        record["session"],
        record["seq"],
        record["time"],
        record["elapsed_s"],
        record["event"],
        record["run_id"],
        record["parent_run_id"],
        _sql_text(record["name"]),
        record["run_type"],
        _sql_text(record["token"]),
        record["token_kind"],
        None if data is None else dumps(data),
        _sql_text(record["thread"]),
    )


class _Blank(dict[str, Any]):
    """Format fields: missing ones and ``None`` read as empty text."""

    def __missing__(self, key: str) -> str:
        return ""


_DEFAULT_FORMAT: Final = "{elapsed_s:9.3f}s {event:<16} {run_type:<10} {name} {detail}"


class LoggingSink:
    """Every event as one ``logging`` record, formatted with ``str.format``.

    Format fields: the event record's (``seq``, ``time``, ``elapsed_s``, ``event``, ``run_id``, ``parent_run_id``,
    ``name``, ``run_type``, ``token``, ``token_kind``, ``data``, ``thread``, ``session``), plus ``run`` (the
    first 8 characters of the run id) and ``detail`` (the token, the error, the metric ``name=value``, or the
    custom event's name). ``None`` fields format as empty text. The whole record is also attached to the log
    record as ``record.nbcallbacks`` for structured handlers.

    Args:
        logger: a ``logging.Logger``, a logger name, or ``None`` for ``"nbcallbacks.events"``.
        level: the level of every log record.
        fmt: the ``str.format`` template of a message.
        events: only these event names (e.g. ``{"chain_start", "chain_end", "tool_end"}``); ``None`` for all.

    Raises:
        ValueError: ``fmt`` names an unknown field or is malformed.
    """

    def __init__(
        self,
        logger: logging.Logger | str | None = None,
        level: int = logging.INFO,
        fmt: str = _DEFAULT_FORMAT,
        *,
        events: Collection[str] | None = None,
    ) -> None:
        """Check ``fmt`` against a sample event now, so a typo fails here and not in the background."""
        if isinstance(logger, logging.Logger):
            self.logger = logger
        else:
            self.logger = logging.getLogger(logger or "nbcallbacks.events")
        self.level = level
        self.fmt = fmt
        self.events = None if events is None else frozenset(events)
        sample = {"kind": "event", "session": "0" * 32, **dict.fromkeys(EVENT_FIELDS)}
        sample.update(seq=0, time=0.0, elapsed_s=0.0, event="chain_start", run_id="0" * 36, name="x")
        try:
            fmt.format_map(self._fields(sample))
        except (KeyError, IndexError, ValueError, AttributeError, TypeError) as exc:
            msg = f"LoggingSink format {fmt!r} is not valid for event records: {type(exc).__name__}: {exc}"
            raise ValueError(msg) from exc
        for name in _field_names(fmt):
            if name not in {*EVENT_FIELDS, "session", "kind", "run", "detail"}:
                msg = f"LoggingSink format {fmt!r} names unknown field {name!r}"
                raise ValueError(msg)

    def describe(self) -> str:
        """Name shown in ``sink_status()`` and handler errors."""
        return f"LoggingSink({self.logger.name})"

    @staticmethod
    def _fields(record: dict[str, Any]) -> _Blank:
        fields = _Blank({k: ("" if v is None else v) for k, v in record.items()})
        run_id = record.get("run_id") or ""
        fields["run"] = run_id[:8]
        fields["detail"] = _detail(record)
        return fields

    def write(self, batch: list[dict[str, Any]]) -> None:
        """Log every event record of the batch."""
        if not self.logger.isEnabledFor(self.level):
            return
        for record in batch:
            if record.get("kind") != "event" or (self.events is not None and record["event"] not in self.events):
                continue
            message = self.fmt.format_map(self._fields(record))
            self.logger.log(self.level, "%s", message, extra={"nbcallbacks": record})


def _field_names(fmt: str) -> set[str]:
    import string  # noqa: PLC0415 - only to check a format once

    names = set()
    for _, field, _, _ in string.Formatter().parse(fmt):
        if field:
            names.add(field.split(".", 1)[0].split("[", 1)[0])
    return names


def _detail(record: dict[str, Any]) -> str:
    event = record.get("event") or ""
    data = record.get("data")
    if record.get("token") is not None:
        return repr(record["token"])
    if event == "metric" and isinstance(data, dict):
        return f"{data.get('name')}={data.get('value')}"
    if event.endswith("_error") and isinstance(data, dict):
        return f"{data.get('error_type')}: {data.get('error')}"
    if event == "custom_event" and isinstance(data, dict):
        return str(data.get("name"))
    return ""
