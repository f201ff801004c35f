"""``UpdateHub``: one reader thread per handler that builds the live records once and offers them to every channel."""

from __future__ import annotations

import logging
import threading
import time
import uuid
import weakref
from dataclasses import asdict
from typing import TYPE_CHECKING, Final

from nbcallbacks.events import EVENT_NAMES
from nbcallbacks.sinks.records import session_now, session_record, tree_run_record
from nbcallbacks.tree import Tree
from nbcallbacks.updates.channel import NEXT_ROOT, BatchIds, Channel, Record

if TYPE_CHECKING:
    from collections.abc import Iterable

    from nbcallbacks.recorder import Recorder, Subscription
    from nbcallbacks.tree import Pricing

__all__ = ["DEFAULT_MAX_BACKLOG", "RECORD_KINDS", "UpdateHub"]

logger = logging.getLogger("nbcallbacks.updates")  # the name it has always had: logging setups refer to it
logger.addHandler(logging.NullHandler())

DEFAULT_MAX_BACKLOG: Final = 10_000
"""Records one consumer may have waiting before later ones are dropped for it."""

RECORD_KINDS: Final = frozenset({"event", "run", "session"})
"""Record kinds a consumer may select (besides event names); ``"dropped"`` records are always delivered."""


class UpdateHub:
    """Reads a recorder for its live consumers: one reader thread, running while consumers are attached.

    The reader starts with the first consumer and ends when the last one is closed or finished. Each wake-up, it
    reads what changed since its last read, builds the records once (``read_delta(head=...)``, as the sinks'
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
        self._head = {"kind": "event", "session": self.session_id}
        """What every event record starts with (``Recorder.read_delta(head=...)``)."""
        self.interval = interval
        self._lock = threading.Lock()
        """Held while a delta is read and distributed, and while consumers are added or the reader stops."""
        self._channels: list[Channel] = []
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
    ) -> Channel:
        """A new consumer's channel: it receives everything recorded from now on that its filters select."""
        selection = _kinds(kinds)
        target = _run_id(run)
        if isinstance(max_backlog, bool) or not isinstance(max_backlog, int) or max_backlog < 1:
            msg = f"max_backlog must be a positive int, not {max_backlog!r}"
            raise ValueError(msg)
        channel = Channel(self, selection, target, max_backlog)
        with self._lock:
            if self._thread is None:
                self._catch_up()
            if selection is not None and "session" in selection:
                channel.queue([session_now(self.session, self.recorder.first_time)])
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

    def _seed(self, channel: Channel) -> None:
        """A consumer of a run that already started gets its subtree's current state first."""
        target = channel.target
        if target is None or target not in self._tree:
            return
        subtree = self._tree.subtree(target)
        if channel.members is not None:
            channel.members.update(subtree)
        selected, _ = channel.select([tree_run_record(self._tree, run_id, self.session_id) for run_id in subtree])
        if selected:
            channel.queue(selected)
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
        delta = self._sub.read(head=self._head)
        tree = self._tree
        changed = tree.update(delta.runs) if delta.runs else []
        if not (delta.records or changed or delta.dropped_events):
            return
        records = delta.records
        records.extend(tree_run_record(tree, run_id, self.session_id) for run_id in changed)
        channels = [channel for channel in self._channels if not (channel.closed or channel.finished)]
        batch = BatchIds(records) if any(channel.members is not None for channel in channels) else None
        for channel in channels:
            selected, ended = channel.select(records, batch)
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
