"""nbconvert routes that keep traces readable where no widget manager runs.

``jupyter nbconvert --to nbcallbacks_html notebook.ipynb`` (``TraceHTMLExporter``): the lab HTML page, in which
every trace widget with saved state is the real, interactive widget, rendered offline: its bundle, CSS and
trace are inlined (as ``h.to_html`` does), instead of the widget-manager view that nbconvert's default page loads
from CDNs (a blank output offline). Other widgets keep nbconvert's usual treatment. Works with ``--execute``
(nbconvert stores widget state when it executes) and on notebooks saved with widget state (JupyterLab: Settings >
Widgets > Save Widget State Automatically). Without saved state, outputs keep the static summary that the
widget's mimebundle carries as ``text/html``, which plain ``--to html`` shows too.

``jupyter nbconvert --to nbcallbacks_notebook notebook.ipynb`` (``TraceNotebookExporter``): the notebook with each
trace output's ``text/html`` summary rebuilt from the saved widget state, so that a notebook displaying ``h``
before its runs still shows the whole trace on GitHub or nbviewer (which render ``text/html`` and run no
scripts). ``TraceSummaryPreprocessor`` and ``TraceEmbedPreprocessor`` are usable on their own
(``--Exporter.preprocessors``).

Both exporters are registered under the ``nbconvert.exporters`` entry point, and also reachable without it as
``--to nbcallbacks.nbconvert_exporter.TraceHTMLExporter``.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

from nbconvert.exporters import Exporter, HTMLExporter, NotebookExporter
from nbconvert.preprocessors import Preprocessor

from nbcallbacks.share import (
    WIDGET_STATE_MIMETYPE,
    WIDGET_VIEW_MIMETYPE,
    embed_widget_state,
    page_assets,
    state_summary_html,
    trace_widget_states,
    widget_outputs,
)

__all__ = ["TraceEmbedPreprocessor", "TraceHTMLExporter", "TraceNotebookExporter", "TraceSummaryPreprocessor"]

_MODEL_REF: Final = re.compile(r"IPY_MODEL_([0-9A-Za-z_-]+)")


_SAVED_NOTE: Final = "Static summary of the trace as saved with the notebook."


class TraceSummaryPreprocessor(Preprocessor):
    """Rebuild the ``text/html`` summary of every trace widget output from the notebook's saved widget state."""

    def preprocess(self, nb: Any, resources: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        """Rewrite the summaries in place; outputs of widgets without saved state are left as they are."""
        states = trace_widget_states(nb.metadata)
        for output, model_id in widget_outputs(nb.cells):
            state = states.get(model_id)
            if state is not None:
                output["data"]["text/html"] = state_summary_html(state, note=_SAVED_NOTE)
        return nb, resources


class TraceEmbedPreprocessor(Preprocessor):
    """Replace each trace widget output that has saved state by the offline widget (``text/html``).

    The widget view is removed from those outputs and their models from the notebook's widget state (with the
    models only they referenced), so that a page holding only trace widgets loads no widget manager at all. The
    standalone bundle and CSS are inlined once, in the first such output.
    """

    def preprocess(self, nb: Any, resources: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        """Embed the trace widgets; leave every other output untouched."""
        states = trace_widget_states(nb.metadata)
        embedded: set[str] = set()
        assets_written = False
        for output, model_id in list(widget_outputs(nb.cells)):
            state = states.get(model_id)
            if state is None:
                continue
            fragment = embed_widget_state(state)
            if not assets_written:
                fragment = page_assets() + fragment
                assets_written = True
            data = output["data"]
            data.pop(WIDGET_VIEW_MIMETYPE, None)
            data["text/html"] = fragment
            embedded.add(model_id)
        if embedded:
            _drop_models(nb, embedded)
        return nb, resources


def _drop_models(nb: Any, dropped: set[str]) -> None:
    """Keep in the widget state only what the remaining widget outputs need (as ipywidgets' ``dependency_state``).

    The ``dropped`` (embedded) models go, and so does every model no remaining output displays or refers to
    (through ``IPY_MODEL_`` references: layouts, styles, children); with nothing left, the widget state itself goes.
    """
    widgets = nb.metadata.get("widgets") or {}
    models: dict[str, Any] = (widgets.get(WIDGET_STATE_MIMETYPE) or {}).get("state") or {}
    displayed = {model_id for _output, model_id in widget_outputs(nb.cells)}
    keep = {model_id for model_id in displayed if model_id in models and model_id not in dropped}
    pending = list(keep)
    while pending:
        for ref in _MODEL_REF.findall(json.dumps(models.get(pending.pop()))):
            if ref in models and ref not in keep:
                keep.add(ref)
                pending.append(ref)
    for model_id in list(models):
        if model_id not in keep:
            del models[model_id]
    if not models:
        nb.metadata.pop("widgets", None)


def _register_last(exporter: Exporter, preprocessor: type[Preprocessor]) -> None:
    """Add ``preprocessor`` after the exporter's default ones.

    After them because with --execute the widget state exists only once ExecutePreprocessor ran.
    """
    exporter.register_preprocessor(preprocessor(parent=exporter), enabled=True)  # type: ignore[no-untyped-call]


class TraceHTMLExporter(HTMLExporter):
    """The lab HTML page, with nbcallbacks trace widgets rendered offline (``--to nbcallbacks_html``)."""

    export_from_notebook = "HTML with nbcallbacks traces (offline)"

    def _init_preprocessors(self) -> None:
        super()._init_preprocessors()  # type: ignore[no-untyped-call]  # nbconvert leaves it unannotated
        _register_last(self, TraceEmbedPreprocessor)


class TraceNotebookExporter(NotebookExporter):
    """The notebook, with trace summaries rebuilt from the saved widget state (``--to nbcallbacks_notebook``)."""

    export_from_notebook = "Notebook with nbcallbacks trace summaries"

    def _init_preprocessors(self) -> None:
        super()._init_preprocessors()  # type: ignore[no-untyped-call]  # nbconvert leaves it unannotated
        _register_last(self, TraceSummaryPreprocessor)
