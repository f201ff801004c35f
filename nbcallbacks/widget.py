"""The live trace widget: an anywidget fed by a ``Recorder`` subscription, in batched deltas.

Wire protocol (mirrored by ``js/src/protocol.ts``; the run dictionary's type is generated from the field table
into ``js/src/generated/schema.ts``). What each message holds is decided by ``nbcallbacks.mirror``; this module
owns the traits, the comm, the flusher thread and the cell-end flush.

Synced traits
    ``snapshot`` (Dict, Python -> JS): the whole trace at sequence ``seq``, so a view created later, a re-render,
    a saved notebook and a static HTML export show everything::

        {"schema": SCHEMA_VERSION, "seq": int, "cursor": int, "runs": [run wire dict, ...] (start order),
         "streams": {run_id: [[kind, text], ...]}, "totals": {...}, "handler_errors": [...]}

    ``seq`` counts the delta messages sent so far (0 before the first); ``cursor`` is the recorder's event
    count the state reflects (``Recorder.event_count`` once everything is sent).

    It is rebuilt in O(trace), so rarely: when the recorder has been quiet for ``QUIET_S`` with no run running,
    at most every ``SNAPSHOT_EVERY_S`` while runs go on, on ``flush()``, and after each cell (IPython
    ``post_run_cell``).
    ``selected_run_id`` (Unicode, both ways): the run selected in the widget ("" for none): the one shown in its
    inspector (the last clicked).
    ``selected_run_ids`` (List of Unicode, both ways): every selected run (click, ctrl/cmd-click, shift-click);
    holds ``selected_run_id`` whenever that is set. Setting either from Python updates the other.
    ``title`` (Unicode, Python -> JS): heading shown in the header ("" for the default).
    ``_uid`` (Unicode, Python -> JS): a random id; the views of one model find their shared store by it.

Custom messages, Python -> JS (at most one per ``FLUSH_INTERVAL_S``, everything since the previous one coalesced)
    ``{"type": "delta", "base": int, "seq": int, "cursor": int, "time": float, "runs": [...],
    "tokens": {run_id: [[kind, text], ...]}, "totals": {...}, "handler_errors": [...], "dropped_events": int}``:
    applies on top of sequence ``base`` and leads to ``seq`` (always ``base + 1``). A run appears in ``runs`` as
    its full record (``nbcallbacks.schema.run_record``: every field of the field table, the tree's derived fields
    included) when it is new or changed by anything but streamed tokens (end, error, metric, a late parent, a
    descendant's cost, ...); a run touched only by tokens gets a light update with ``nbcallbacks.mirror.LIGHT_FIELDS``
    and ``"light": True``.
    ``{"type": "snapshot", "time": float, ...snapshot fields...}``: the whole trace, sent in answer to a request.
    ``time`` is the kernel's clock (``time.time()``) at sending: the front end measures running runs' elapsed
    time on the kernel's clock, which may differ from the browser's.
    ``{"type": "comparison", "request": str, "a": run_id, "b": run_id, "rows": [...], ...}``: the answer to a
    ``compare`` request, echoing its ``request`` (every view hears it; the one that asked shows it); see
    ``nbcallbacks.compare_wire``.

Custom messages, JS -> Python
    ``{"type": "hello", "seq": int}`` (a model was initialised, holding state up to ``seq``) is answered with a
    ``snapshot`` message unless the deltas sent from ``seq`` on already bring it up to date;
    ``{"type": "resync"}`` (a view missed a delta) is always answered with a ``snapshot`` message;
    ``{"type": "compare", "a": run_id, "b": run_id, "request": str}`` (two runs picked in the widget) is answered
    with a ``comparison`` message (``nbcallbacks.compare_wire``).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

import anywidget
import traitlets

from nbcallbacks.compare_wire import comparison_message
from nbcallbacks.mirror import Mirror
from nbcallbacks.notebook import on_cell_end
from nbcallbacks.share import add_static_summary

if TYPE_CHECKING:
    from collections.abc import Iterable

    from nbcallbacks.events import Delta
    from nbcallbacks.recorder import Recorder, Subscription
    from nbcallbacks.tree import Pricing

__all__ = ["TraceWidget"]

_log = logging.getLogger(__name__)
_log.addHandler(logging.NullHandler())

STATIC: Final = Path(__file__).parent / "static"

FLUSH_INTERVAL_S: Final = 0.04
"""Minimum time between two delta messages (25 messages per second at most)."""
QUIET_S: Final = 0.3
"""The snapshot trait is rebuilt once the recorder has been this long without news and no run is running."""
SNAPSHOT_EVERY_S: Final = 10.0
"""While runs go on, the snapshot trait is rebuilt at most this often. Live views never need it (they get the
deltas, and a new or reloaded view asks for a snapshot message); it serves saved notebooks, which get a complete
one after every cell anyway, so it is rare: each rebuild resends the whole trace and, on a long stream, holds
the interpreter lock long enough to delay the next delta."""
SNAPSHOT_COST_FACTOR: Final = 10.0
"""...and never more often than this many times what the last rebuild cost (big traces: fewer rebuilds)."""

MAX_BACKOFF_S: Final = 5.0
"""Longest pause of the flusher after repeated failures to send."""


class TraceWidget(anywidget.AnyWidget):
    """Live view of a ``Recorder``: token stream, run tree and timing table.

    Args:
        recorder: the recorder to show; the widget subscribes to it from the start.
        title: an optional heading shown in the widget.
    """

    _esm = STATIC / "widget.js"
    _css = STATIC / "widget.css"

    snapshot = traitlets.Dict().tag(sync=True)
    """The whole trace (see the module docstring); rebuilt rarely, read by late and reloaded views."""
    selected_run_id = traitlets.Unicode("").tag(sync=True)
    """Run id selected in the widget, "" for none; set it from Python to select a run."""
    selected_run_ids = traitlets.List(traitlets.Unicode()).tag(sync=True)
    """Every run selected in the widget (ctrl/cmd-click adds, shift-click adds a range); observe it with
    ``widget.observe(callback, "selected_run_ids")``. Holds ``selected_run_id`` whenever that is set."""
    title = traitlets.Unicode("").tag(sync=True)
    """Heading shown in the widget's header ("" for the default)."""
    _uid = traitlets.Unicode().tag(sync=True)
    """Identity of this model for the front end (anywidget hands each view its own model proxy)."""

    @traitlets.default("_uid")
    def _default_uid(self) -> str:
        return uuid.uuid4().hex

    def __init__(
        self, recorder: Recorder, title: str | None = None, pricing: Pricing | None = None, **kwargs: Any
    ) -> None:
        """Subscribe to ``recorder`` and start the flusher thread (``pricing``: see ``nbcallbacks.tree.Tree``)."""
        self._recorder = recorder
        self._mirror = Mirror(pricing, clock=recorder.clock)
        self._pricing = pricing
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._snapshot_seq = -1
        self._last_flush = 0.0
        self._last_change = time.monotonic()
        self._last_snapshot = 0.0
        self._snapshot_cost = 0.0
        self._closed = True  # until the comm is open
        self._sub: Subscription = recorder.subscribe(self._wake.set)
        with self._lock:
            self._flush_delta(send=False)  # what was recorded before the widget existed
            initial = self._build_snapshot()
        # The comm opens with the whole trace in its first message (no second, O(trace) update).
        super().__init__(title=title or "", snapshot=initial, **kwargs)
        self._closed = False
        self.on_msg(TraceWidget._on_custom_msg)
        on_cell_end(self, _flush_after_cell)
        self._thread = threading.Thread(
            target=_flusher_main,
            args=(weakref.ref(self), self._wake, self._stop),
            name="nbcallbacks-widget-flusher",
            daemon=True,
        )
        self._thread.start()

    # ------------------------------------------------------------------ public API

    @property
    def recorder(self) -> Recorder:
        """The recorder this widget shows."""
        return self._recorder

    def __repr__(self) -> str:
        """The text shown where widgets cannot render (a terminal, an untrusted or static notebook).

        No counts: this text is captured once, when the widget is displayed, and would go stale.
        """
        return "<nbcallbacks live trace widget: shown by Jupyter front ends with widget support>"

    def select(self, run_ids: str | Iterable[str]) -> None:
        """Select runs (one id or several; empty clears); the last one is shown in the inspector.

        Raises:
            ValueError: a run id the recorder does not know.
        """
        ids = [run_ids] if isinstance(run_ids, str) else [str(run_id) for run_id in run_ids]
        ids = list(dict.fromkeys(run_id for run_id in ids if run_id))
        unknown = [run_id for run_id in ids if self._recorder.run(run_id) is None]  # not a copy of every run
        if unknown:
            msg = f"unknown run ids: {', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''}"  # noqa: PLR2004
            raise ValueError(msg)
        with self.hold_sync(), self.hold_trait_notifications():  # one message to the front end
            self.selected_run_ids = ids
            self.selected_run_id = ids[-1] if ids else ""

    @traitlets.observe("selected_run_id")
    def _on_selected_run_id(self, change: dict[str, Any]) -> None:
        """Keep ``selected_run_ids`` holding the primary run (a plain selection from Python: that run alone)."""
        run_id = cast("str", change["new"])
        if not run_id:
            if self.selected_run_ids:
                self.selected_run_ids = []
        elif run_id not in self.selected_run_ids:
            self.selected_run_ids = [run_id]

    @traitlets.observe("selected_run_ids")
    def _on_selected_run_ids(self, change: dict[str, Any]) -> None:
        """Keep ``selected_run_id`` one of the selected runs (the last one when it was not)."""
        ids = cast("list[str]", change["new"])
        if self.selected_run_id not in ids:
            self.selected_run_id = ids[-1] if ids else ""

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The widget view, plus a static HTML summary for renderers with no widget manager (``nbcallbacks.share``)."""
        self.flush()
        return add_static_summary(super()._repr_mimebundle_(**kwargs), self.snapshot, title=self.title)

    def flush(self, *, snapshot: bool = True) -> None:
        """Send everything recorded so far now, and (by default) bring the ``snapshot`` trait up to date."""
        try:
            with self._lock:
                self._flush_delta()
                if snapshot:
                    self._set_snapshot()
        except Exception as exc:  # noqa: BLE001 - the widget must never break the user's code
            self._recorder.record_handler_error("widget", exc)

    def close(self) -> None:
        """Stop the flusher, unsubscribe, and close the comm (sending afterwards is a no-op)."""
        self._shutdown()
        super().close()

    # ------------------------------------------------------------------ internals

    def _shutdown(self) -> None:
        if getattr(self, "_closed", True) or self._stop.is_set():
            return
        self._closed = True
        self._stop.set()
        self._wake.set()
        self._sub.close()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)

    def _apply(self, delta: Delta) -> dict[str, Any]:
        recorder = self._recorder
        return self._mirror.apply(
            delta, handler_error_count=recorder.handler_error_count, dropped_events=recorder.dropped_events
        )

    def _flush_delta(self, *, send: bool = True) -> bool:
        """Read the subscription and send one delta message if anything changed (lock held)."""
        delta = self._sub.read(rows=False)  # the widget needs touched runs and new text, not event rows
        unchanged = delta.cursor == self._mirror.cursor and not delta.handler_errors and not delta.tokens
        if unchanged and self._recorder.handler_error_count == self._mirror.handler_error_count:
            return False
        message = self._apply(delta)
        self._last_flush = time.monotonic()
        self._last_change = self._last_flush
        if send and not self._closed:
            self.send(message)
        return True

    def _build_snapshot(self) -> dict[str, Any]:
        """The mirror as a snapshot (lock held)."""
        value = self._mirror.snapshot()
        self._snapshot_seq = self._mirror.seq
        return value

    def _set_snapshot(self) -> None:
        """Rebuild the ``snapshot`` trait from the mirror if it moved on (lock held); remember what it cost."""
        if self._snapshot_seq == self._mirror.seq or self._closed:
            return
        began = time.monotonic()
        self.snapshot = self._build_snapshot()
        self._last_snapshot = time.monotonic()
        self._snapshot_cost = self._last_snapshot - began  # serialising and sending included

    def _send_snapshot_message(self) -> None:
        """Answer a hello or resync with the whole trace (lock held)."""
        message = self._mirror.snapshot()
        message["type"] = "snapshot"
        message["time"] = self._recorder.clock()
        if not self._closed:
            self.send(message)

    def _send_comparison(self, content: dict[str, Any]) -> None:
        """Answer a ``compare`` request (outside the widget's lock: the flusher keeps sending meanwhile)."""
        a, b, request = (value if isinstance(value := content.get(key), str) else "" for key in ("a", "b", "request"))
        try:
            message = comparison_message(self._recorder, a, b, pricing=self._pricing)
        except Exception as exc:  # noqa: BLE001 - the front end is told; the kernel goes on
            message = {"type": "comparison", "a": a, "b": b, "rows": [], "error": repr(exc)}
        message["request"] = request
        with self._lock:  # one sender at a time (the flusher thread sends deltas)
            if not self._closed:
                self.send(message)

    def _on_custom_msg(self, content: Any, buffers: Any) -> None:  # noqa: ARG002 - ipywidgets' signature
        """Requests from the front end (on the kernel's shell thread): a snapshot or a comparison message."""
        try:
            kind = content.get("type") if isinstance(content, dict) else None
            if kind in {"hello", "resync"}:
                with self._lock:
                    before = self._mirror.seq
                    self._flush_delta()
                    known = content.get("seq")
                    up_to_date = kind == "hello" and isinstance(known, int) and known >= before
                    if not up_to_date:  # the delta just sent (if any) follows what it holds: enough
                        self._send_snapshot_message()
            elif kind == "compare":
                self._send_comparison(content)
        except Exception as exc:  # noqa: BLE001 - a bad message must not break the kernel
            self._recorder.record_handler_error("widget", exc)

    def _tick(self) -> float | None:
        """One step of the flusher; returns how long to wait for news before the next step."""
        now = time.monotonic()
        wait_more = FLUSH_INTERVAL_S - (now - self._last_flush)
        if wait_more > 0 and self._stop.wait(wait_more):
            return None
        self._wake.clear()
        with self._lock:
            self._flush_delta()
            if self._snapshot_seq != self._mirror.seq:
                # Rebuild when quiet (nothing running, no news for QUIET_S), or every SNAPSHOT_EVERY_S
                # meanwhile; never sooner than SNAPSHOT_COST_FACTOR times the last rebuild's cost.
                now = time.monotonic()
                min_gap = SNAPSHOT_COST_FACTOR * self._snapshot_cost
                since = now - self._last_snapshot
                wait = max(SNAPSHOT_EVERY_S, min_gap) - since
                if self._mirror.running == 0:
                    wait = min(wait, max(QUIET_S - (now - self._last_change), min_gap - since))
                if wait <= 0:
                    self._set_snapshot()
                    return None
                return wait
        return None

    @traitlets.observe("comm")
    def _watch_comm(self, change: dict[str, Any]) -> None:
        comm = change["new"]
        if comm is not None and hasattr(comm, "on_close"):
            comm.on_close(lambda _msg: self._shutdown())


def _flush_after_cell(widget: TraceWidget) -> None:
    """After each notebook cell: bring the snapshot trait up to date, so saved notebooks hold the whole trace."""
    if not widget._closed:  # noqa: SLF001 - same module
        widget.flush()


def _flusher_main(widget_ref: weakref.ref[TraceWidget], wake: threading.Event, stop: threading.Event) -> None:
    """The flusher thread: wait for news, send one coalesced delta, keep the snapshot fresh.

    A failure is recorded as a handler error and retried with exponential backoff (recording it wakes this
    thread again, so without the pause a comm that keeps failing would spin).
    """
    timeout: float | None = None
    failures = 0
    while not stop.is_set():
        wake.wait(timeout)
        if stop.is_set():
            return
        widget = widget_ref()
        if widget is None:
            return
        try:
            timeout = widget._tick()  # noqa: SLF001 - the thread belongs to the widget
            failures = 0
        except Exception as exc:  # noqa: BLE001 - never raise out of the flusher
            failures += 1
            timeout = None
            try:
                widget._recorder.record_handler_error("widget", exc)  # noqa: SLF001
            except Exception:  # noqa: BLE001 - last resort
                _log.exception("widget flusher failed")
        del widget
        if failures and stop.wait(min(MAX_BACKOFF_S, FLUSH_INTERVAL_S * 2**failures)):
            return
