"""Live records for your own front end: one stream per consumer of what a handler records, while it records.

``h.updates()`` (an async iterator) and ``h.iter_updates()`` (a blocking iterator) yield the dictionaries sinks
receive (``"event"`` and ``"run"`` records, see ``nbcallbacks.sinks``), in order, as the chain runs. Serving a
request from FastAPI::

    run_id = uuid.uuid4()
    async with h.updates(run=run_id, kinds={"llm_new_token", "run"}) as updates:
        task = asyncio.create_task(agent.ainvoke(question, config={"callbacks": [h], "run_id": run_id}))
        async for record in updates:  # ends when that run ends
            await websocket.send_text(dumps(record))

How it works, and what it costs:

- One reader thread per handler (only while consumers are attached) wakes when the recorder changes, reads what
  changed once, builds the records once (with the run tree's derived fields, as the sinks' writer does) and hands
  them to every consumer's own bounded queue. The chain pays for setting one ``threading.Event`` per read, nothing
  per consumer; between consumers the reader is gone and the chain pays nothing (one call at most).
- Each consumer holds at most ``max_backlog`` records. A consumer that cannot keep up (a slow or stalled client)
  never slows the chain or the other consumers: later records are dropped for it, counted, and it is told with a
  ``"dropped"`` record once it catches up, followed by the current state of the runs those records touched (their
  ``"run"`` records), so the run tree it holds stays exact. Nothing is dropped silently.
- The async iterator awaits an ``asyncio`` future that the reader resolves with ``loop.call_soon_threadsafe``: the
  chain may run on the same loop (``astream``/``ainvoke``) or in a worker thread (``invoke`` in an executor), and
  nothing ever blocks the loop. The blocking iterator waits on a ``threading.Condition``.

Filtering happens before the queue, so a consumer following one request is never disturbed by the others:

- ``kinds``: record kinds (``"event"``, ``"run"``, ``"session"``) and/or event names (``"llm_new_token"``,
  ``"chain_start"``, ...). A ``"session"`` record comes first only when asked for. ``"dropped"`` records always
  come.
- ``run``: a run id (``str`` or ``uuid.UUID``): only that run and its descendants. The run may start later (pass
  the id you give LangChain with ``config={"run_id": run_id}``), or may already be running (its subtree's
  current ``"run"`` records come first; its earlier events are not replayed). Iteration ends once the run has
  ended and its records were delivered. ``run="next"`` follows the first root run that starts after the call;
  with concurrent requests on one handler, choose the run id yourself instead (two consumers waiting for "the
  next" run would follow the same one).

Each consumer gets its own record dictionaries (add or remove keys freely); the values inside them (payload
previews, tags, metrics) are shared: read them, do not modify them.

A ``"dropped"`` record has ``kind``, ``session``, ``time``, ``events`` (event records of this consumer's selection
that did not fit in its backlog since the last ``"dropped"`` record), ``lost_events`` (events that left the
recorder's log, ``Limits.max_events``, before they could be read; not filtered), ``runs`` (how many ``"run"``
records with the current state of the touched runs follow) and ``total_events`` (everything this consumer missed
so far).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
import weakref
from collections import deque
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Final, Protocol, final

from nbcallbacks.events import EVENT_NAMES
from nbcallbacks.sinks.records import event_record, run_record, session_record
from nbcallbacks.tree import Tree

if TYPE_CHECKING:
    from collections.abc import Iterable
    from types import TracebackType

    from nbcallbacks.recorder import Recorder, Subscription
    from nbcallbacks.tree import Pricing

__all__ = [
    "DEFAULT_MAX_BACKLOG",
    "NEXT_ROOT",
    "RECORD_KINDS",
    "UpdateHub",
    "Updates",
    "UpdatesIterator",
    "hub_for",
    "iter_updates",
    "updates",
]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

NEXT_ROOT: Final = "next"
"""``run=NEXT_ROOT`` follows the first root run that starts after the consumer was created."""

DEFAULT_MAX_BACKLOG: Final = 10_000
"""Records one consumer may have waiting before later ones are dropped for it."""

RECORD_KINDS: Final = frozenset({"event", "run", "session"})
"""Record kinds a consumer may select (besides event names); ``"dropped"`` records are always delivered."""

_START_EVENTS: Final = frozenset(name for name in EVENT_NAMES if name.endswith("_start"))

Record = dict[str, Any]


class _Owner(Protocol):
    """What ``updates()`` needs from a handler."""

    recorder: Recorder
    title: str | None


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _wake(waiter: tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]) -> None:
    """Resolve an awaiting consumer's future on its own loop, from any thread; a closed loop is ignored."""
    loop, future = waiter
    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody awaits any more
        loop.call_soon_threadsafe(_resolve, future)


class _Channel:
    """One consumer's selection and bounded queue. Filled by the hub's reader, emptied by the consumer."""

    def __init__(self, hub: UpdateHub, kinds: frozenset[str] | None, target: str | None, max_backlog: int) -> None:
        self.hub = hub
        self.kinds = kinds
        self.target: str | None = None if target == NEXT_ROOT else target
        """The followed run id (``None``: everything, or waiting for the next root run)."""
        self.members: set[str] | None = None if target is None else ({target} if self.target else set())
        """Ids of the followed run and its descendants seen so far (the reader's; ``None``: no run filter)."""
        self.max_backlog = max_backlog
        self.cond = threading.Condition(threading.RLock())
        """Re-entrant: a stream collected by the garbage collector (in a reference cycle) closes its channel from
        whatever thread the collection runs on, possibly the reader's while it holds this very lock."""
        self.batches: deque[list[Record]] = deque()
        self.queued = 0
        self.finished = False
        """The followed run ended: the consumer stops once it has read what is queued."""
        self.closed = False
        self.dropped_events = 0
        self.lost_events = 0
        self.stale: dict[str, Record] = {}
        """Latest run record, per run id, of what was dropped since the last ``"dropped"`` record."""
        self.total_missed = 0
        self.waiter: tuple[asyncio.AbstractEventLoop, asyncio.Future[None]] | None = None

    # --- the reader's side (hub lock held)

    def select(self, records: list[Record]) -> tuple[list[Record], bool]:
        """The records this consumer wants, and whether its followed run ended with them."""
        members = self.members
        kinds = self.kinds
        if members is None and kinds is None:
            return records, False
        selected: list[Record] = []
        ended = False
        for record in records:
            if members is not None:
                if not self._in_subtree(record, members):
                    continue
                if record["kind"] == "run" and record["run_id"] == self.target and record["status"] != "running":
                    ended = True  # after the whole batch: the subtree's last run records come after the root's
            if kinds is not None and record["kind"] not in kinds and record.get("event") not in kinds:
                continue
            selected.append(record)
        return selected, ended

    def _in_subtree(self, record: Record, members: set[str]) -> bool:
        run_id = record["run_id"]
        if run_id in members:
            return True
        if run_id is None:
            return False
        if self.target is None:  # following the next root run: this one, if it is a root starting
            if record["kind"] == "event" and record["parent_run_id"] is None and record["event"] in _START_EVENTS:
                self.target = run_id
                members.add(run_id)
                return True
            return False
        if record["parent_run_id"] in members:  # a child starts after its parent: the set grows in order
            members.add(run_id)
            return True
        return False

    def offer(self, records: list[Record], *, lost: int = 0, ended: bool = False) -> None:
        """Queue records, or count them as dropped when the backlog is full; wake the consumer."""
        with self.cond:
            if self.closed:
                return
            if lost:
                self.lost_events += lost
                self.total_missed += lost
                tail = self.batches[-1] if self.batches else None
                if tail is not None and len(tail) == 1 and tail[0]["kind"] == "dropped":  # not read yet: add to it
                    tail[0]["lost_events"] += self.lost_events
                    tail[0]["total_events"] = self.total_missed
                    self.lost_events = 0
                elif not (self.dropped_events or self.stale):  # not already dropping: tell it at this point
                    marker = self._marker()
                    self.batches.append(marker)
                    self.queued += len(marker)
            if records:
                if self._missing() or (self.batches and self.queued + len(records) > self.max_backlog):
                    self._drop(records)
                else:
                    self.batches.append(records)
                    self.queued += len(records)
            if ended:
                self.finished = True
            if not (records or lost or ended):
                return
            self.cond.notify_all()
            waiter, self.waiter = self.waiter, None
        if waiter is not None:
            _wake(waiter)

    def _drop(self, records: list[Record]) -> None:
        """Count dropped records; runs are kept as their latest state, to be sent with the next marker."""
        stale = self.stale
        for record in records:
            kind = record["kind"]
            if kind == "event":
                self.dropped_events += 1
                self.total_missed += 1
            elif kind == "run":
                stale[record["run_id"]] = record

    def _missing(self) -> bool:
        return bool(self.dropped_events or self.lost_events or self.stale)

    def _marker(self) -> list[Record]:
        """The ``"dropped"`` record and the current state of the runs it concerns; resets the counts."""
        runs = list(self.stale.values())
        marker: Record = {
            "kind": "dropped",
            "session": self.hub.session_id,
            "time": time.time(),
            "events": self.dropped_events,
            "lost_events": self.lost_events,
            "runs": len(runs),
            "total_events": self.total_missed,
        }
        self.dropped_events = self.lost_events = 0
        self.stale = {}
        return [marker, *runs]

    # --- the consumer's side

    def take(self) -> tuple[list[Record], bool]:
        """Everything queued (and a pending ``"dropped"`` record after it), and whether the stream is over.

        ``([], False)``: nothing yet, wait. Lock held by the caller.
        """
        if self.closed:
            return [], True
        if self.batches:
            batches = self.batches
            records = batches[0] if len(batches) == 1 else [record for batch in batches for record in batch]
            batches.clear()
            self.queued = 0
            if self._missing():
                records = [*records, *self._marker()]
            return records, False
        if self._missing():
            return self._marker(), False
        return [], self.finished

    def close(self) -> None:
        """Stop: drop what waits, wake a waiting consumer, let the reader forget this channel."""
        with self.cond:
            if self.closed:
                return
            self.closed = True
            self.batches.clear()
            self.queued = 0
            self.stale = {}
            self.cond.notify_all()
            waiter, self.waiter = self.waiter, None
        if waiter is not None:
            _wake(waiter)
        self.hub.poke()


class UpdateHub:
    """Reads a recorder for its live consumers: one reader thread, running while consumers are attached.

    The reader starts with the first consumer and ends when the last one is closed or finished. Each wake-up, it
    reads what changed since its last read, builds the records once (``event_record``/``run_record``, as the sinks'
    writer does, with the derived fields of a ``Tree`` it keeps) and offers each consumer its selection. Between
    consumers its subscription stays, disarmed (the recorder calls it at most once, then never until it reads
    again): the next first consumer catches up on what changed meanwhile, no more.

    Args:
        recorder: what to read.
        session: the session record whose id the records carry (a new one when ``None``).
        title: the handler's title, for a new session record.
        interval: seconds to wait after a wake-up before reading, gathering events into fewer, larger batches
            (0: read as soon as the reader runs; under one interpreter lock, a busy stream batches by itself).
        pricing: prices model runs for the run records' ``cost_usd`` (see ``nbcallbacks.tree.Tree``).
    """

    def __init__(
        self,
        recorder: Recorder,
        *,
        session: Record | None = None,
        title: str | None = None,
        interval: float = 0.0,
        pricing: Pricing | None = None,
    ) -> None:
        """Create the hub; nothing runs, and the recorder does not know it, until a consumer is opened."""
        self.recorder = recorder
        self.session: Record = dict(session) if session else session_record(title, asdict(recorder.limits))
        self.session_id: str = self.session["session"]
        self.interval = interval
        self._lock = threading.Lock()
        """Held while a delta is read and distributed, and while consumers are added or the reader stops."""
        self._channels: list[_Channel] = []
        self._wake = threading.Event()
        self._sub: Subscription | None = None
        self._tree = Tree(pricing)
        """Every run read so far (its latest copy) and what the tree derives for it (read under ``_lock``)."""
        self._thread: threading.Thread | None = None
        self._reported = False

    @property
    def consumers(self) -> int:
        """Consumers attached and not closed."""
        return sum(1 for channel in self._channels if not channel.closed)

    @property
    def active(self) -> bool:
        """Whether the reader thread is running."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def open(
        self,
        *,
        kinds: str | Iterable[str] | None = None,
        run: str | uuid.UUID | None = None,
        max_backlog: int = DEFAULT_MAX_BACKLOG,
    ) -> _Channel:
        """A new consumer's channel: it receives everything recorded from now on that its filters select."""
        selection = _kinds(kinds)
        target = _run_id(run)
        if isinstance(max_backlog, bool) or not isinstance(max_backlog, int) or max_backlog < 1:
            msg = f"max_backlog must be a positive int, not {max_backlog!r}"
            raise ValueError(msg)
        channel = _Channel(self, selection, target, max_backlog)
        with self._lock:
            if self._thread is None:
                self._catch_up()
            if selection is not None and "session" in selection:
                session = dict(self.session)
                session["first_time"] = self.recorder.first_time
                channel.batches.append([session])
                channel.queued += 1
            if channel.target is not None:
                self._seed(channel)
            if not channel.finished:
                self._channels = [*self._channels, channel]
                if self._thread is None:
                    self._thread = threading.Thread(target=self._read_loop, name="nbcallbacks-updates", daemon=True)
                    self._thread.start()
        return channel

    def poke(self) -> None:
        """Wake the reader (a consumer closed: it forgets it, and stops when none is left)."""
        self._wake.set()

    # --- internals (hub lock held unless said otherwise)

    def _catch_up(self) -> None:
        """Before the reader starts: subscribe (first time), or take in what changed since it stopped."""
        if self._sub is None:
            self._sub = self.recorder.subscribe(self._wake.set, from_start=False)
            weakref.finalize(self, self._sub.close)
            self._tree.update(self.recorder.runs())
        else:
            self._tree.update(self._sub.read(rows=False).runs)
        self._wake.clear()

    def _seed(self, channel: _Channel) -> None:
        """A consumer of a run that already started gets its subtree's current state first."""
        target = channel.target
        if target is None or target not in self._tree:
            return
        subtree = self._tree.subtree(target)
        if channel.members is not None:
            channel.members.update(subtree)
        records = [
            run_record(self._tree.run(run_id), self._tree.derived(run_id), self.session_id) for run_id in subtree
        ]
        selected, _ = channel.select(records)
        if selected:
            channel.batches.append(selected)
            channel.queued += len(selected)
        if self._tree.run(target).status != "running":
            channel.finished = True

    def _read_loop(self) -> None:
        wake = self._wake
        while True:
            wake.wait()
            if self.interval > 0:
                time.sleep(self.interval)
            wake.clear()
            with self._lock:
                try:
                    self._distribute()
                except Exception as exc:  # the reader must survive anything
                    if not self._reported:
                        self._reported = True
                        logger.warning("nbcallbacks live updates reader failed", exc_info=exc)
                        self.recorder.record_handler_error("live updates", exc)
                live = [channel for channel in self._channels if not (channel.closed or channel.finished)]
                if len(live) != len(self._channels):
                    self._channels = live
                if not live:
                    self._thread = None
                    return

    def _distribute(self) -> None:
        if self._sub is None:
            return
        delta = self._sub.read()
        tree = self._tree
        changed = tree.update(delta.runs) if delta.runs else []
        if not (delta.events or changed or delta.dropped_events):
            return
        session = self.session_id
        origin = self.recorder.first_time
        if origin is None:
            origin = delta.events[0].time if delta.events else 0.0
        records = [event_record(row, origin, session) for row in delta.events]
        records.extend(run_record(tree.run(run_id), tree.derived(run_id), session) for run_id in changed)
        for channel in self._channels:
            if channel.closed or channel.finished:
                continue
            selected, ended = channel.select(records)
            channel.offer(selected, lost=delta.dropped_events, ended=ended)


def _kinds(kinds: str | Iterable[str] | None) -> frozenset[str] | None:
    if kinds is None:
        return None
    selection = frozenset([kinds] if isinstance(kinds, str) else kinds)
    unknown = selection - RECORD_KINDS - set(EVENT_NAMES)
    if unknown or not selection:
        msg = (
            f"unknown kinds {sorted(unknown)}; use record kinds {sorted(RECORD_KINDS)} or event names "
            f"{list(EVENT_NAMES)}"
        )
        raise ValueError(msg)
    return selection


def _run_id(run: object) -> str | None:
    if run is None or isinstance(run, str):
        return run
    if isinstance(run, uuid.UUID):
        return str(run)
    msg = f"run must be a run id (str or uuid.UUID), {NEXT_ROOT!r} or None, not {type(run).__name__}"
    raise TypeError(msg)


class _Stream:
    """What both iterators share: the channel, the records taken and not yet yielded, closing."""

    def __init__(self, channel: _Channel) -> None:
        self._channel = channel
        self._pending: list[Record] = []
        self._index = 0
        self._finalizer = weakref.finalize(self, channel.close)  # a stream dropped unclosed frees its channel

    @property
    def run_id(self) -> str | None:
        """The followed run id (with ``run="next"``: once that run started), else ``None``."""
        return self._channel.target

    @property
    def dropped(self) -> int:
        """Events this consumer missed so far (backlog full, or left the recorder's log unread)."""
        return self._channel.total_missed

    @property
    def queued(self) -> int:
        """Records waiting for this consumer."""
        return self._channel.queued

    @property
    def closed(self) -> bool:
        """Whether the stream was closed (by ``close``/``aclose``, the end of a ``with`` block, or its end)."""
        return self._channel.closed

    def close(self) -> None:
        """Stop receiving: what waits is dropped, and a waiting ``next``/``anext`` ends the iteration."""
        self._pending = []
        self._finalizer()

    def _next_pending(self) -> Record | None:
        if self._index < len(self._pending):
            record = self._pending[self._index]
            self._index += 1
            return dict(record)  # shared with the other consumers: each gets its own
        return None

    def _took(self, records: list[Record]) -> Record:
        self._pending = records
        self._index = 1
        return dict(records[0])


@final
class UpdatesIterator(_Stream):
    """Blocking iterator of live records (``h.iter_updates()``); see ``nbcallbacks.updates``."""

    def __iter__(self) -> UpdatesIterator:
        """Itself."""
        return self

    def __next__(self) -> Record:
        """The next record; blocks until there is one, or the stream ends (``StopIteration``)."""
        record = self._next_pending()
        if record is not None:
            return record
        channel = self._channel
        with channel.cond:
            while True:
                records, done = channel.take()
                if records or done:
                    break
                channel.cond.wait()
        if not records:
            self.close()
            raise StopIteration
        return self._took(records)

    def __enter__(self) -> UpdatesIterator:
        """Itself; leaving the block closes it."""
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        """Close."""
        self.close()


@final
class Updates(_Stream):
    """Async iterator of live records (``h.updates()``); see ``nbcallbacks.updates``."""

    def __aiter__(self) -> Updates:
        """Itself."""
        return self

    async def __anext__(self) -> Record:
        """The next record; waits (without blocking the loop) until there is one, or the stream ends."""
        record = self._next_pending()
        if record is not None:
            return record
        channel = self._channel
        while True:
            with channel.cond:
                records, done = channel.take()
                if records or done:
                    break
                loop = asyncio.get_running_loop()
                future: asyncio.Future[None] = loop.create_future()
                channel.waiter = (loop, future)
            try:
                await future
            finally:
                with channel.cond:
                    if channel.waiter is not None and channel.waiter[1] is future:
                        channel.waiter = None
        if not records:
            self.close()
            raise StopAsyncIteration
        return self._took(records)

    async def aclose(self) -> None:
        """Close (as ``close``), for ``contextlib.aclosing`` and async generator habits."""
        self.close()

    async def __aenter__(self) -> Updates:
        """Itself; leaving the block closes it."""
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        """Close."""
        self.close()


_HUBS: weakref.WeakKeyDictionary[Any, UpdateHub] = weakref.WeakKeyDictionary()
_HUBS_LOCK = threading.Lock()


def hub_for(handler: _Owner) -> UpdateHub:
    """The handler's hub, created on first use (its records carry the session id of its sinks, if any)."""
    with _HUBS_LOCK:
        hub = _HUBS.get(handler)
        if hub is None:
            writer = getattr(handler, "_sink_writer", None)
            session = getattr(writer, "session", None)
            pricer = getattr(handler, "pricer", None)  # the handler's costs (nbcallbacks.cost), as its sinks get
            hub = UpdateHub(
                handler.recorder,
                session=session if isinstance(session, dict) else None,
                title=handler.title,
                pricing=getattr(pricer, "run_cost", None),
            )
            _HUBS[handler] = hub
        return hub


def updates(
    handler: _Owner,
    *,
    kinds: str | Iterable[str] | None = None,
    run: str | uuid.UUID | None = None,
    max_backlog: int = DEFAULT_MAX_BACKLOG,
) -> Updates:
    """Live records of ``handler`` for one async consumer, from now on (``async for record in ...``).

    Args:
        handler: a ``NotebookHandler``.
        kinds: record kinds and/or event names to receive (``None``: every event and run record).
        run: follow only this run and its descendants, and end when it ends (``"next"``: the next root run).
        max_backlog: records that may wait for this consumer before later ones are dropped (and counted).

    Raises:
        ValueError: an unknown kind, or a ``max_backlog`` that is not a positive int.
        TypeError: ``run`` is neither a string nor a UUID.
    """
    return Updates(hub_for(handler).open(kinds=kinds, run=run, max_backlog=max_backlog))


def iter_updates(
    handler: _Owner,
    *,
    kinds: str | Iterable[str] | None = None,
    run: str | uuid.UUID | None = None,
    max_backlog: int = DEFAULT_MAX_BACKLOG,
) -> UpdatesIterator:
    """Live records of ``handler`` for one blocking consumer, from now on (``for record in ...``); see ``updates``.

    Raises:
        ValueError: an unknown kind, or a ``max_backlog`` that is not a positive int.
        TypeError: ``run`` is neither a string nor a UUID.
    """
    return UpdatesIterator(hub_for(handler).open(kinds=kinds, run=run, max_backlog=max_backlog))
