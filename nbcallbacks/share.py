"""Share a trace outside a live notebook: one self-contained HTML file, and a static summary for static renderers.

``to_html(handler, path)`` (also ``NotebookHandler.to_html``) writes one HTML file holding the interactive widget
(its front-end bundle and CSS, inlined) and the trace (the snapshot the widget itself builds, inlined as JSON). It
opens in any browser with no kernel, server, CDN or network request: a Content-Security-Policy forbids every
fetch, and the page needs none.

``summary_html(snapshot)`` is a script-free, style-free HTML summary (header totals, then the run tree as nested
``<details>``), bounded in size, for renderers that run no scripts and have no widget manager (GitHub's and
nbviewer's notebook previews, an untrusted notebook in JupyterLab). ``TraceWidget`` puts it in its mimebundle as
``text/html``: front ends with a widget manager prefer the widget view, the others show the summary.

The notebook helpers (``trace_widget_states``, ``embed_widget_state``) serve the nbconvert exporter
(``nbcallbacks.nbconvert_exporter``), which renders the real widget offline from a notebook's saved widget state.

Nothing here depends on the run fields beyond what the summary shows: the page inlines the snapshot as the widget
builds it, and the widget's own front end reads it.
"""

from __future__ import annotations

import html
import json
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from nbcallbacks.mirror import Mirror
from nbcallbacks.text import one_line

if TYPE_CHECKING:
    import os
    from collections.abc import Iterable, Mapping, Sequence

    from nbcallbacks.recorder import Recorder

__all__ = [
    "compact_snapshot",
    "embed_json",
    "embed_widget_state",
    "page_assets",
    "state_summary_html",
    "summary_html",
    "to_html",
    "trace_page",
    "trace_snapshot",
    "trace_widget_states",
]

STATIC: Final = Path(__file__).parent / "static"
STANDALONE_JS: Final = STATIC / "standalone.js"
WIDGET_CSS: Final = STATIC / "widget.css"

WIDGET_STATE_MIMETYPE: Final = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW_MIMETYPE: Final = "application/vnd.jupyter.widget-view+json"
TRACE_WIDGET_ID: Final = "nbcallbacks.widget.TraceWidget"

SUMMARY_MAX_RUNS: Final = 200
"""Runs listed in a static summary; the rest are counted in an "N more runs" line (bounded size)."""
SUMMARY_MAX_TEXT: Final = 160
"""Characters kept of a run name, model name or error message in a static summary."""
SUMMARY_OPEN_DEPTH: Final = 1
"""Tree levels shown unfolded in a static summary (deeper ones are folded ``<details>``)."""

COMPACT_KEY: Final = "_nbc_compact"
"""Set in an embedded state whose runs had their ``None`` fields left out (``compact_snapshot``)."""
EMBED_DROPPED_KEYS: Final = frozenset(
    {"_esm", "_css", "_anywidget_id", "_dom_classes", "layout", "tabbable", "tooltip"}
)
"""Widget traits a static page does without: the ESM and CSS are inlined once per page instead, and the rest is
ipywidgets' plumbing (``_model_*`` and ``_view_*`` go too). Every other trait is kept, so traits added to the
widget later reach the static page without a change here."""

# Nothing leaves the page: scripts and styles are inline, images only as data: URLs.
_CSP: Final = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:"

_DOC_STYLE: Final = (
    # Light, like the widget's own fallbacks for JupyterLab's theme variables (it has no dark scheme of its own).
    "body{margin:0;padding:16px;font-family:system-ui,-apple-system,'Segoe UI',sans-serif;"
    "background:#fff;color:#1f2328}"
)


# --------------------------------------------------------------------------------------------- the trace


def trace_snapshot(source: Any) -> dict[str, Any]:
    """The whole trace as the widget's ``snapshot`` trait holds it.

    Args:
        source: a ``NotebookHandler``, a ``TraceWidget`` or a ``Recorder`` (their recorder is read from the
            start, exactly as a new widget would), or a snapshot dictionary (returned as is).
    """
    if isinstance(source, dict):
        return source
    recorder: Recorder = getattr(source, "recorder", source)
    pricer = getattr(source, "pricer", None)  # a handler prices its model runs, as its widget does
    sub = recorder.subscribe(None)
    try:
        delta = sub.read(rows=False)
    finally:
        sub.close()
    mirror = Mirror(getattr(pricer, "run_cost", None), clock=recorder.clock)  # as TraceWidget builds its own
    mirror.apply(delta, handler_error_count=recorder.handler_error_count, dropped_events=recorder.dropped_events)
    return mirror.snapshot()


# --------------------------------------------------------------------------------------------- safe embedding


def embed_json(value: Any) -> str:
    """``value`` as JSON text that is safe inside any HTML element, a ``<script>`` one included.

    ``<``, ``>`` and ``&`` become JSON unicode escapes (so no ``</script>``, ``<!--`` or character reference can
    appear), and so do U+2028 / U+2029; ``JSON.parse`` reads the same value
    back. NaN and infinities (not JSON) become ``null``.
    """
    text = json.dumps(_finite(value), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(key): _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def compact_snapshot(snapshot: Mapping[str, Any]) -> dict[str, Any]:
    """``snapshot`` with every ``None`` field of its runs left out (about half of a large trace's size).

    The standalone bundle puts them back as ``null`` (for every field the front end's run type names) before the
    widget reads the runs, so the widget sees exactly the snapshot; ``COMPACT_KEY`` in the state says it was done.
    """
    runs = snapshot.get("runs")
    if not isinstance(runs, list):
        return dict(snapshot)
    slim = [
        {key: value for key, value in run.items() if value is not None} if isinstance(run, dict) else run
        for run in runs
    ]
    return {**snapshot, "runs": slim}


def _inline_script(code: str) -> str:
    # A literal "</script" would end the element early; "<\/script" means the same inside JS strings and regexes.
    return code.replace("</script", "<\\/script").replace("</SCRIPT", "<\\/SCRIPT")


def page_assets() -> str:
    """The widget's CSS and standalone bundle as inline ``<style>`` and ``<script>`` elements (once per page)."""
    try:
        css = WIDGET_CSS.read_text(encoding="utf-8")
        js = STANDALONE_JS.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        msg = f"the widget's front end is not built ({exc.filename}): cd js && npm install && npm run build"
        raise RuntimeError(msg) from exc
    css = css.replace("</style", "<\\/style")  # never in CSS; if it were, the element would end early
    return f'<style data-nbc-assets="css">{css}</style>\n<script data-nbc-assets="js">{_inline_script(js)}</script>'


def _embedded_key(key: str) -> bool:
    return key not in EMBED_DROPPED_KEYS and not key.startswith(("_model_", "_view_"))


def embed_widget_state(state: Mapping[str, Any], *, fallback: str | None = None) -> str:
    """An element the standalone bundle mounts the widget in, holding the widget's model ``state``.

    Args:
        state: the widget's traits (``snapshot``, ``title``, ``selected_run_id``, ``_uid``, ...; see
            ``EMBED_DROPPED_KEYS`` for those left out).
        fallback: HTML shown until the widget is mounted (and where scripts do not run); by default the static
            summary of the snapshot.
    """
    kept = {key: value for key, value in state.items() if _embedded_key(key)}
    snapshot = kept.get("snapshot")
    if fallback is None:
        fallback = state_summary_html(kept)
    if isinstance(snapshot, dict):
        kept["snapshot"] = compact_snapshot(snapshot)
        kept[COMPACT_KEY] = True
    return (
        '<div class="nbc-embed" data-nbc-embed>'
        f'<script type="application/json" data-nbc-state>{embed_json(kept)}</script>'
        f"<div data-nbc-fallback>{fallback}</div>"
        "</div>"
    )


def trace_page(snapshot: Mapping[str, Any], *, title: str = "") -> str:
    """A complete, self-contained HTML document showing the trace ``snapshot`` in the interactive widget."""
    heading = title or "nbcallbacks trace"
    state = {"snapshot": dict(snapshot), "title": title, "selected_run_id": "", "_uid": "static"}
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="generator" content="nbcallbacks">\n'
        f"<title>{html.escape(heading)}</title>\n"
        f"<style>{_DOC_STYLE}</style>\n"
        "</head>\n<body>\n"
        f"{embed_widget_state(state)}\n"
        f"{page_assets()}\n"
        "</body>\n</html>\n"
    )


def to_html(source: Any, path: str | os.PathLike[str], *, title: str | None = None) -> Path:
    """Write the trace as one self-contained HTML file: the interactive widget and the trace, inlined.

    The file opens in any browser, offline: no kernel, server, CDN or network request. What it holds is what the
    recorder kept (bounded previews, kept tokens), as the live widget shows it.

    Args:
        source: a ``NotebookHandler``, ``TraceWidget``, ``Recorder`` or a widget snapshot dictionary.
        path: the file to write (parent directories are created).
        title: the page and widget heading; default: the handler's title.

    Returns:
        The path written.
    """
    if title is None:
        title = getattr(source, "title", None) or ""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(trace_page(trace_snapshot(source), title=title), encoding="utf-8")
    return target


# --------------------------------------------------------------------------------------------- static summary


def _esc(value: Any, limit: int = SUMMARY_MAX_TEXT) -> str:
    return html.escape(one_line(str(value), limit), quote=True)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:  # noqa: PLR2004 - a minute
        return f"{seconds:.2f} s"
    minutes, rest = divmod(seconds, 60)
    return f"{minutes:.0f} min {rest:.0f} s"


def _money(usd: float) -> str:
    return f"${usd:,.4f}" if usd < 0.01 else f"${usd:,.2f}"  # noqa: PLR2004 - a cent


def _status(run: Mapping[str, Any]) -> str:
    status = run.get("display_status")
    if isinstance(status, str) and status:
        return status
    if run.get("abandoned") and run.get("status") == "running":
        return "abandoned"
    return str(run.get("status") or "")


_STATUS_MARK: Final = {"ok": "✓", "error": "✗", "running": "…", "interrupted": "⏸", "abandoned": "?"}


def _run_line(run: Mapping[str, Any]) -> str:
    status = _status(run)
    parts = [f"<code>{_esc(run.get('name') or 'Unnamed')}</code>", f"<i>{_esc(run.get('run_type') or '')}</i>"]
    parts.append(f"{_STATUS_MARK.get(status, '')} {_esc(status)}".strip())
    start, end = _number(run.get("start")), _number(run.get("end"))
    if start is not None and end is not None:
        parts.append(_duration(max(0.0, end - start)))
    tokens = _number(run.get("total_tokens"))
    if tokens:
        parts.append(f"{tokens:,.0f} tokens")
    cost = _number(run.get("cost_usd_total"))
    if cost is None:
        cost = _number(run.get("cost_usd"))
    if cost is not None:  # unknown prices are left out, never shown as $0
        parts.append(_money(cost))
    model = run.get("model")
    if model:
        parts.append(_esc(model))
    line = " · ".join(parts)
    error = run.get("error")
    if error:
        line += f" — <b>{_esc(run.get('error_type') or 'error')}</b>: {_esc(error)}"
    return line


def _tree(runs: Sequence[Mapping[str, Any]]) -> tuple[list[str], dict[str, list[str]]]:
    """Roots and children of the shown runs: hidden runs left out, their children moved up (as the widget does)."""
    by_id = {str(run.get("run_id")): run for run in runs}
    shown = {run_id for run_id, run in by_id.items() if not run.get("hidden")}
    roots: list[str] = []
    children: dict[str, list[str]] = {}
    for run in runs:
        run_id = str(run.get("run_id"))
        if run_id not in shown:
            continue
        parent = run.get("parent_run_id")
        steps = 0
        while parent is not None and str(parent) in by_id and str(parent) not in shown and steps < len(by_id):
            parent = by_id[str(parent)].get("parent_run_id")
            steps += 1
        parent_id = None if parent is None else str(parent)
        if parent_id is None or parent_id not in shown or parent_id == run_id:
            roots.append(run_id)
        else:
            children.setdefault(parent_id, []).append(run_id)
    return roots, children


def _tree_html(runs: Sequence[Mapping[str, Any]], max_runs: int) -> tuple[str, int]:
    """The run tree as nested lists of ``<details>``; returns the HTML and the number of runs left out."""
    by_id = {str(run.get("run_id")): run for run in runs}
    roots, children = _tree(runs)
    budget = max_runs
    out: list[str] = ["<ul>"]
    seen: set[str] = set()
    # Iterative depth-first walk (deep traces must not hit the recursion limit); a cycle is walked once.
    # A stack entry is a run to write (run id, depth) or closing markup to write (None, markup).
    stack: list[tuple[str | None, Any]] = [(None, "</ul>")]
    stack.extend((run_id, 0) for run_id in reversed(roots))
    while stack:
        run_id, depth = stack.pop()
        if run_id is None:
            out.append(depth)
            continue
        if run_id in seen or budget <= 0:
            continue
        seen.add(run_id)
        budget -= 1
        line = _run_line(by_id[run_id])
        kids = [kid for kid in children.get(run_id, []) if kid not in seen]
        if not kids:
            out.append(f"<li>{line}</li>")
            continue
        opened = " open" if depth < SUMMARY_OPEN_DEPTH else ""
        out.append(f"<li><details{opened}><summary>{line}</summary><ul>")
        stack.append((None, "</ul></details></li>"))
        stack.extend((kid, depth + 1) for kid in reversed(kids))
    shown = sum(1 for run in runs if not run.get("hidden"))
    return "".join(out), max(0, shown - len(seen))


def summary_html(
    snapshot: Mapping[str, Any], *, title: str = "", max_runs: int = SUMMARY_MAX_RUNS, note: str = ""
) -> str:
    """A static HTML summary of a widget snapshot: header totals and the run tree as nested ``<details>``.

    No script, no style, no class-dependent layout: GitHub's and nbviewer's sanitizers keep it as is. Every string
    from the trace is escaped and clipped; at most ``max_runs`` runs are listed, followed by "N more runs".

    Args:
        snapshot: the widget's ``snapshot`` trait (see ``trace_snapshot``).
        title: a heading (the handler's title).
        max_runs: runs listed at most.
        note: an extra line of plain text at the end.
    """
    runs = [run for run in snapshot.get("runs") or [] if isinstance(run, dict) and run.get("run_id") is not None]
    totals = snapshot.get("totals") or {}
    errors = sum(1 for run in runs if _status(run) == "error")
    tokens = _number(totals.get("usage_tokens"))
    if tokens is None:
        tokens = sum(_number(run.get("total_tokens")) or 0.0 for run in runs)
    starts = [value for run in runs if (value := _number(run.get("start"))) is not None]
    ends = [value for run in runs for key in ("end", "start") if (value := _number(run.get(key))) is not None]
    wall = max(ends) - min(starts) if starts and ends else None
    stats = [f"{len(runs):,} runs", f"{errors:,} error{'s' if errors != 1 else ''}", f"{tokens or 0:,.0f} tokens"]
    if wall is not None:
        stats.append(_duration(max(0.0, wall)))
    cost = _number(totals.get("cost_usd"))
    if cost is not None:
        stats.append(_money(cost))
    heading = f"<b>{_esc(title) if title else 'nbcallbacks trace'}</b>"
    parts = ['<div class="nbc-static-summary" data-nbc-static-summary>', f"<p>{heading}: {' · '.join(stats)}</p>"]
    if runs:
        tree, left_out = _tree_html(runs, max(1, max_runs))
        parts.append(tree)
        if left_out:
            parts.append(f"<p><i>… {left_out:,} more run{'s' if left_out != 1 else ''} not listed here.</i></p>")
    else:
        parts.append("<p><i>No runs recorded.</i></p>")
    if note:
        parts.append(f"<p><small>{html.escape(note)}</small></p>")
    parts.append("</div>")
    return "".join(parts)


def state_summary_html(state: Mapping[str, Any], *, note: str = "") -> str:
    """``summary_html`` of a widget's saved model ``state`` (its ``snapshot`` and ``title``; junk reads as empty)."""
    snapshot = state.get("snapshot")
    return summary_html(snapshot if isinstance(snapshot, dict) else {}, title=str(state.get("title") or ""), note=note)


def mimebundle_summary(snapshot: Mapping[str, Any], *, title: str = "") -> str:
    """The ``text/html`` a widget's mimebundle carries: the summary, saying when it was taken."""
    when = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime())
    note = (
        f"Static summary taken when this output was displayed ({when}); the live widget shows the trace as it "
        "grows. Where no widget runs, display the handler again after its runs, save the interactive trace with "
        "h.to_html(path), or rebuild these summaries from saved widget state with "
        "jupyter nbconvert --to nbcallbacks_notebook."
    )
    return summary_html(snapshot, title=title, note=note)


def add_static_summary(bundle: Any, snapshot: Mapping[str, Any], *, title: str = "") -> Any:
    """``bundle`` (a widget's ``_repr_mimebundle_`` result: data, or (data, metadata)) plus ``text/html``."""
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    if isinstance(data, dict):
        data["text/html"] = mimebundle_summary(snapshot, title=title)
    return bundle


# --------------------------------------------------------------------------------------------- notebooks


def is_trace_widget_state(state: Mapping[str, Any]) -> bool:
    """True for the saved state of a ``TraceWidget`` model (``state`` is the model's ``state`` mapping)."""
    if state.get("_anywidget_id") == TRACE_WIDGET_ID:
        return True
    snapshot = state.get("snapshot")
    return isinstance(snapshot, dict) and "runs" in snapshot and "_uid" in state


def trace_widget_states(metadata: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The saved ``TraceWidget`` model states of a notebook, by model id (``metadata`` is the notebook's)."""
    widgets = metadata.get("widgets") or {}
    models = (widgets.get(WIDGET_STATE_MIMETYPE) or {}).get("state") or {}
    return {
        str(model_id): dict(model.get("state") or {})
        for model_id, model in models.items()
        if isinstance(model, dict) and isinstance(model.get("state"), dict) and is_trace_widget_state(model["state"])
    }


def output_model_id(output: Mapping[str, Any]) -> str | None:
    """The widget model id a notebook output displays, or None."""
    data = output.get("data") or {}
    view = data.get(WIDGET_VIEW_MIMETYPE)
    if isinstance(view, str):
        try:
            view = json.loads(view)
        except ValueError:
            return None
    if isinstance(view, dict) and view.get("model_id"):
        return str(view["model_id"])
    return None


def widget_outputs(cells: Iterable[Any]) -> Iterable[tuple[Any, str]]:
    """Every (output, model id) of the code cells that display a widget."""
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        for output in cell.get("outputs") or []:
            model_id = output_model_id(output)
            if model_id is not None:
                yield output, model_id
