"""One live consumer's channel: its selection (kinds, followed run), bounded backlog and drop accounting.

The hub's reader fills a channel (``select``, ``offer``); the consumer's iterator empties it (``take``). What does
not fit in the backlog is counted, and the consumer is told with a ``"dropped"`` record followed by the current
state of the runs the dropped records touched (see ``nbcallbacks.updates``).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Final

from nbcallbacks.events import EVENT_NAMES

if TYPE_CHECKING:
    import asyncio

    from nbcallbacks.updates.hub import UpdateHub

__all__ = ["NEXT_ROOT", "BatchIds", "Channel", "Record"]

NEXT_ROOT: Final = "next"
"""``run=NEXT_ROOT`` follows the first root run that starts after the consumer was created."""

_START_EVENTS: Final = frozenset(name for name in EVENT_NAMES if name.endswith("_start"))

Record = dict[str, Any]


class BatchIds:
    """The run ids a batch of records names (as ``run_id`` or ``parent_run_id``), and whether a root run starts.

    Gathered once per batch, so that every consumer following a run that the batch does not touch skips it
    without looking at each record (a server has one such consumer per request).
    """

    __slots__ = ("ids", "root_start")

    def __init__(self, records: list[Record]) -> None:
        """Gather them from ``records``."""
        ids: set[str | None] = set()
        root_start = False
        for record in records:
            ids.add(record["run_id"])
            parent = record.get("parent_run_id")
            if parent is not None:
                ids.add(parent)
            elif record["kind"] == "event" and record.get("event") in _START_EVENTS:
                root_start = True
        self.ids = ids
        self.root_start = root_start


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _wake(waiter: tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]) -> None:
    """Resolve an awaiting consumer's future on its own loop, from any thread; a closed loop is ignored."""
    loop, future = waiter
    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody awaits any more
        loop.call_soon_threadsafe(_resolve, future)


class Channel:
    """One consumer's selection and bounded queue. Filled by the hub's reader, emptied by the consumer."""

    def __init__(self, hub: UpdateHub, kinds: frozenset[str] | None, target: str | None, max_backlog: int) -> None:
        """An open channel of ``hub`` selecting ``kinds`` (all: ``None``) of run ``target`` (all: ``None``)."""
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

    def select(self, records: list[Record], batch: BatchIds | None = None) -> tuple[list[Record], bool]:
        """The records this consumer wants, and whether its followed run ended with them.

        ``batch``: the batch's ``BatchIds``, when the caller gathered them (a record joins a followed subtree only
        if it names a member as its run or its parent, or starts a root run while the next one is awaited).
        """
        members = self.members
        kinds = self.kinds
        if members is None and kinds is None:
            return records, False
        if members is not None and batch is not None and not self._may_join(members, batch):
            return [], False
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

    def _may_join(self, members: set[str], batch: BatchIds) -> bool:
        """Whether any record of ``batch`` can be in the followed subtree (else none is looked at)."""
        if self.target is None:  # waiting for the next root run
            return batch.root_start
        return not members.isdisjoint(batch.ids)

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

    def queue(self, records: list[Record]) -> None:
        """Append records to the backlog (lock held: the channel's, or the hub's before the reader sees it)."""
        self.batches.append(records)
        self.queued += len(records)

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
                    self.queue(self._marker())
            if records:
                if self._missing() or (self.batches and self.queued + len(records) > self.max_backlog):
                    self._drop(records)
                else:
                    self.queue(records)
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
