"""``NotebookHandler``: the LangChain intake wired to a recorder and to what consumes it.

The handler itself only wires things together: ``CallbackIntake`` (``nbcallbacks.langchain``) records every
callback into a ``Recorder``; the widget, the DataFrames, the sinks and the notebook's cell hook read from it.
"""

from __future__ import annotations

import logging
import weakref
from typing import TYPE_CHECKING, Any, cast

from nbcallbacks.cost import Pricer
from nbcallbacks.events import Limits
from nbcallbacks.langchain.callbacks import CallbackIntake
from nbcallbacks.langchain.context import ametric, metric, trace
from nbcallbacks.langchain.redaction import RedactedStreams
from nbcallbacks.notebook import in_notebook, on_cell_end
from nbcallbacks.recorder import Recorder
from nbcallbacks.redact import make_redactor

if TYPE_CHECKING:
    import os
    from collections.abc import Callable, Iterable, Sequence
    from pathlib import Path
    from uuid import UUID

    import pandas as pd

    from nbcallbacks.comparison import Comparison
    from nbcallbacks.sinks import Sink, SinkWriter
    from nbcallbacks.updates import Updates, UpdatesIterator
    from nbcallbacks.widget import TraceWidget

__all__ = ["NotebookHandler", "ametric", "metric", "trace"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())


def _limits(limits: Limits | None, overrides: dict[str, int]) -> Limits:
    """``limits`` with some fields overridden by keyword (a clear TypeError for an unknown one)."""
    base = limits if limits is not None else Limits()
    if not overrides:
        return base
    known = set(Limits.__dataclass_fields__)
    unknown = set(overrides) - known
    if unknown:
        msg = f"unknown NotebookHandler limits: {sorted(unknown)}; known: {sorted(known)}"
        raise TypeError(msg)
    return Limits(**{**{f: getattr(base, f) for f in known}, **overrides})


def _after_cell(handler: NotebookHandler) -> None:
    """When a notebook cell ends, flag runs still running as abandoned (``Recorder.mark_abandoned``).

    Registered before the widget's own cell-end flush, so a saved notebook shows them as such.
    """
    try:
        handler.recorder.mark_abandoned()
    except Exception as exc:  # noqa: BLE001 - never raise into the kernel
        handler.failed("post_run_cell", exc)


class NotebookHandler(CallbackIntake):
    """Records every callback event of the runs it is attached to, and shows them live in the notebook.

    ``h = NotebookHandler()``; ``h`` (or ``display(h)``) shows the widget; ``chain.invoke(x, config={"callbacks":
    [h]})`` fills it in while the run goes. ``h.runs_dataframe()`` and ``h.to_dataframe()`` export what was recorded.

    Args:
        limits: bounds on previews, kept tokens and kept events (``Limits``); or pass its fields as keywords,
            e.g. ``NotebookHandler(max_string=500)``.
        title: a title shown in the widget's header.
        sinks: where to send every event and run as well, off the recording thread (``JSONLSink``,
            ``SQLiteSink``, ``LoggingSink`` or any object with ``write(batch)``; see ``nbcallbacks.sinks``).
        clock: seconds since the epoch, for every recorded time (``time.time`` by default; tests set the time).
        prices: your prices, ``{"model name": (usd_per_million_input, usd_per_million_output)}``, added to or
            overriding `genai-prices` (``pip install "nbcallbacks[cost]"``) for ``cost_usd``; see
            ``nbcallbacks.cost``.
        redact: secrets to mask in everything kept: regular expressions, callables ``str -> str`` and built-in
            pattern sets by name (``"api_keys"``, ``"bearer"``, ``"emails"``); see ``nbcallbacks.redact``.
        **limit_overrides: fields of ``Limits`` to override.
    """

    def __init__(  # noqa: PLR0913 - the handler's options, all keyword-only but limits
        self,
        limits: Limits | None = None,
        *,
        title: str | None = None,
        sinks: Sequence[Sink] | None = None,
        clock: Callable[[], float] | None = None,
        prices: dict[str, tuple[float, float]] | None = None,
        redact: Any = None,
        **limit_overrides: int,
    ) -> None:
        """Create a handler with its own recorder."""
        super().__init__()
        recorder = Recorder(_limits(limits, limit_overrides), clock=clock)
        self.limits = recorder.limits
        self.pricer = Pricer(prices)
        """Prices model runs when they are read (``cost_usd``): the DataFrames, the widget and the sinks."""
        self.redactor = make_redactor(redact)
        # with a redactor, streamed chunks go through the run's stream redactor first
        self.record_into(recorder, None if self.redactor is None else RedactedStreams(recorder, self.redactor))
        self.title = title
        self.root_start_hooks = []
        self._widget: TraceWidget | None = None
        self._sink_writer: SinkWriter | None = None
        for sink in sinks or ():
            self.add_sink(sink)
        if in_notebook():
            on_cell_end(self, _after_cell)

    # A config that copies its callbacks must keep this very handler (it holds the recorder).
    def __copy__(self) -> NotebookHandler:
        """Return self: a copied config keeps recording into the same handler."""
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> NotebookHandler:
        """Return self: a deep-copied config keeps recording into the same handler."""
        return self

    def __repr__(self) -> str:
        """A one-line summary (the widget is shown through ``_repr_mimebundle_``)."""
        r = self.recorder
        return (
            f"NotebookHandler(runs={r.run_count}, running={r.running_count}, events={r.event_count}, "
            f"handler_errors={r.handler_error_count})"
        )

    # --- sinks

    def add_sink(self, sink: Sink) -> None:
        """Send every event and run to ``sink`` as well: what was recorded so far, then each change.

        Writing happens on background threads (one per sink, each with a bounded backlog), never in the chain.
        A sink with an ``on_root_start(run_id)`` method is also told, on the chain's thread, when a root run
        starts.
        """
        if self._sink_writer is None:
            from nbcallbacks.sinks import SinkWriter  # noqa: PLC0415 - only when sinks are used

            self._sink_writer = SinkWriter(self.recorder, title=self.title, pricing=self.pricer.run_cost)
            finalizer = weakref.finalize(self, self._sink_writer.close, 0.0)
            finalizer.atexit = False  # at exit the sinks module flushes every writer, waiting for it
        self._sink_writer.add(sink)
        hook = getattr(sink, "on_root_start", None)
        if callable(hook):
            self.root_start_hooks = [*self.root_start_hooks, hook]

    def flush(self, timeout: float | None = 30.0, *, sinks: bool = True) -> bool:
        """Send everything recorded so far to the widget, then wait until every sink has written it.

        Returns:
            False if ``timeout`` seconds passed before the sinks were done (a slow or blocked sink).
        """
        if self._widget is not None:
            self._widget.flush()
        if not sinks or self._sink_writer is None:
            return True
        return self._sink_writer.flush(timeout)

    def close(self, timeout: float | None = 10.0) -> bool:
        """Flush and close every sink (the handler keeps recording, but nothing more is written)."""
        if self._widget is not None:
            self._widget.flush()
        return True if self._sink_writer is None else self._sink_writer.close(timeout)

    def sink_status(self) -> list[dict[str, Any]]:
        """Per sink: events and runs written, waiting, dropped, lost or failed, errors (``SinkWriter.status``)."""
        return [] if self._sink_writer is None else self._sink_writer.status()

    # --- replay

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], session: str | int | None = None, run: str | None = None
    ) -> NotebookHandler:
        """A handler holding a trace saved by ``JSONLSink`` or ``SQLiteSink``, in this or any other process.

        Its runs, events, text, timings, DataFrames and charts are the saved ones; displaying it shows them.

        Args:
            path: the JSONL or SQLite file.
            session: a session id (or unique prefix), an index in start order, or ``None`` for the latest.
            run: keep only this run (id or unique prefix) and its descendants.
        """
        from nbcallbacks.history import load_trace  # noqa: PLC0415 - only when loading

        saved = load_trace(path, session=session, run=run)
        handler = cls(saved.limits, title=saved.title)
        handler.recorder.restore(saved.runs, saved.events, saved.first_time)
        return handler

    @classmethod
    def from_otel(cls, spans_or_path: Any, *, title: str | None = None) -> NotebookHandler:
        """A handler holding the runs of OpenTelemetry spans made by anything (issue 10).

        ``spans_or_path``: ``ReadableSpan`` objects (e.g. from ``InMemorySpanExporter``), an OTLP/JSON file (one
        ``ExportTraceServiceRequest`` per line, as the OpenTelemetry file exporter writes), OTLP protobuf bytes,
        or a list of these. See ``nbcallbacks.otel.importer``.
        """
        from nbcallbacks.otel.importer import handler_from_otel  # noqa: PLC0415 - only when importing spans

        return handler_from_otel(spans_or_path, title=title, handler_class=cls)

    # --- DataFrames

    def runs_dataframe(self) -> pd.DataFrame:
        """One row per run, in start order (see ``nbcallbacks.export.runs_dataframe``)."""
        from nbcallbacks.export import runs_dataframe  # noqa: PLC0415 - pandas only when asked for

        return runs_dataframe(self.recorder, self.pricer.run_cost)

    def to_dataframe(self) -> pd.DataFrame:
        """One row per callback event, in arrival order (see ``nbcallbacks.export.events_dataframe``)."""
        from nbcallbacks.export import events_dataframe  # noqa: PLC0415 - pandas only when asked for

        return events_dataframe(self.recorder)

    def metrics_dataframe(self) -> pd.DataFrame:
        """One row per recorded metric (see ``nbcallbacks.export.metrics_dataframe``)."""
        from nbcallbacks.export import metrics_dataframe  # noqa: PLC0415 - pandas only when asked for

        return metrics_dataframe(self.recorder)

    # --- the widget

    @property
    def widget(self) -> TraceWidget:
        """The live widget, created on first use (a handler never displayed opens no comm), again once closed."""
        if self._widget is None or self._widget.comm is None:  # a closed widget can no longer be displayed
            from nbcallbacks.widget import TraceWidget  # noqa: PLC0415 - anywidget only when displayed

            self._widget = TraceWidget(self.recorder, title=self.title, pricing=self.pricer.run_cost)
        return self._widget

    # navui (issue 11): selection to pandas; the selection itself lives in TraceWidget.selected_run_ids.
    def selection(self) -> pd.DataFrame:
        """The runs selected in the widget: their rows of ``runs_dataframe()`` (none before it is shown)."""
        frame = self.runs_dataframe()
        ids = self._widget.selected_run_ids if self._widget is not None else []
        return cast("pd.DataFrame", frame.loc[frame["run_id"].isin(ids)])

    def select(self, run_ids: str | Iterable[str]) -> None:
        """Select runs in the widget (one id or several; ``[]`` clears); see ``TraceWidget.select``."""
        self.widget.select(run_ids)

    def compare_selected(self) -> Comparison:
        """``nbcallbacks.compare`` of the two runs selected in the widget (ctrl/cmd-click), in selection order.

        Each side is the selected run and its descendants (two root runs: two invocations). The widget's Compare
        button shows the same comparison in the widget.

        Raises:
            ValueError: unless exactly two runs are selected.
        """
        from nbcallbacks.comparison import compare  # noqa: PLC0415 - pandas only when asked for

        ids = list(self._widget.selected_run_ids) if self._widget is not None else []
        if len(ids) != 2:  # noqa: PLR2004 - a comparison has two sides
            msg = f"select exactly two runs in the widget to compare them (ctrl/cmd-click); {len(ids)} selected"
            raise ValueError(msg)
        frame = self.runs_dataframe()
        return compare((frame, ids[0]), (frame, ids[1]))

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """Show the widget when the handler is the last expression of a cell or passed to ``display``."""
        return self.widget._repr_mimebundle_(**kwargs)

    # --- live updates for your own front end (nbcallbacks.updates): thin delegations

    def updates(
        self, *, kinds: str | Iterable[str] | None = None, run: str | UUID | None = None, max_backlog: int = 10_000
    ) -> Updates:
        """Live records for one async consumer: ``async for record in h.updates()`` (see ``nbcallbacks.updates``)."""
        from nbcallbacks.updates import updates  # noqa: PLC0415 - only when used

        return updates(self, kinds=kinds, run=run, max_backlog=max_backlog)

    def iter_updates(
        self, *, kinds: str | Iterable[str] | None = None, run: str | UUID | None = None, max_backlog: int = 10_000
    ) -> UpdatesIterator:
        """Live records for one blocking consumer: ``for record in h.iter_updates()`` (see ``nbcallbacks.updates``)."""
        from nbcallbacks.updates import iter_updates  # noqa: PLC0415 - only when used

        return iter_updates(self, kinds=kinds, run=run, max_backlog=max_backlog)

    # --- sharing a trace as one HTML file: a thin delegation

    def to_html(self, path: str | os.PathLike[str], *, title: str | None = None) -> Path:
        """Write the trace as one self-contained offline HTML file with the interactive widget (``share.to_html``)."""
        from nbcallbacks.share import to_html  # noqa: PLC0415 - only when sharing

        return to_html(self, path, title=title)
