"""The static side-by-side view of a comparison (``Comparison._repr_html_``).

The two trees row by row, differences marked, paired waterfall bars on one time scale, and per pair a
``<details>`` with both inputs and outputs and a word diff of the outputs. Plain HTML and CSS (no script), with
every text escaped.
"""

from __future__ import annotations

import difflib
import html
import json
import re
from typing import TYPE_CHECKING, Any, Final

from nbcallbacks.colors import ERROR_COLOR, OTHER_COLOR, RUN_TYPE_COLORS
from nbcallbacks.comparison.values import as_float, as_int, epoch, output_text
from nbcallbacks.events import MODEL_RUN_TYPES
from nbcallbacks.missing import is_missing

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    import pandas as pd

__all__ = ["render"]

_DIFF_CHARS: Final = 4000
"""Characters of each output compared by the word diff (it is quadratic in the worst case)."""
_DETAIL_CHARS: Final = 20_000
_MAX_HTML_ROWS: Final = 1000
_WORD: Final = re.compile(r"\s+|\w+|[^\w\s]")

_CSS: Final = """
.nbc-cmp{--c-fg:var(--jp-ui-font-color1,#1f2328);--c-muted:var(--jp-ui-font-color2,#59636e);
--c-faint:var(--jp-ui-font-color3,#818b98);--c-bg:var(--jp-layout-color0,#fff);--c-alt:var(--jp-layout-color1,#f6f8fa);
--c-hover:var(--jp-layout-color2,#eaeef2);--c-border:var(--jp-border-color2,#d1d9e0);
--c-accent:var(--jp-brand-color1,#1976d2);--c-ok:var(--jp-success-color1,#2e7d32);
--c-err:var(--jp-error-color1,#d32f2f);--c-warn:var(--jp-warn-color1,#e65100);
font-family:var(--jp-ui-font-family,system-ui,-apple-system,"Segoe UI",sans-serif);font-size:13px;line-height:1.4;
color:var(--c-fg);background:var(--c-bg);border:1px solid var(--c-border);border-radius:4px;overflow:hidden}
.nbc-cmp *{box-sizing:border-box}
.nbc-cmp-head{display:flex;flex-wrap:wrap;gap:4px 16px;padding:6px 10px;background:var(--c-alt);
border-bottom:1px solid var(--c-border)}
.nbc-cmp-head b{font-weight:600}.nbc-cmp-muted{color:var(--c-muted)}
.nbc-cmp-grid{display:grid;grid-template-columns:minmax(0,1fr) 110px minmax(0,1fr) 110px 150px;gap:0 8px;
align-items:center;padding:2px 10px}
.nbc-cmp-cols{font-weight:600;color:var(--c-muted);border-bottom:1px solid var(--c-border);background:var(--c-alt)}
.nbc-cmp details{border-bottom:1px solid var(--c-border)}
.nbc-cmp summary{cursor:pointer;list-style:none}
.nbc-cmp summary::-webkit-details-marker{display:none}
.nbc-cmp summary:hover{background:var(--c-hover)}
.nbc-cmp-cell{white-space:nowrap;overflow:hidden;text-overflow:ellipsis;min-width:0}
.nbc-cmp-dot{display:inline-block;width:8px;height:8px;border-radius:2px;margin-right:5px;vertical-align:middle}
.nbc-cmp-st-error{color:var(--c-err)}.nbc-cmp-st-ok{color:var(--c-ok)}
.nbc-cmp-st-running,.nbc-cmp-st-interrupted{color:var(--c-warn)}
.nbc-cmp-none{color:var(--c-faint)}
.nbc-cmp-only-a summary{background:color-mix(in srgb,var(--c-err) 9%,transparent)}
.nbc-cmp-only-b summary{background:color-mix(in srgb,var(--c-ok) 10%,transparent)}
.nbc-cmp-mark{display:inline-block;padding:0 4px;margin-left:4px;border-radius:3px;font-size:11px;
color:var(--c-warn);border:1px solid currentColor}
.nbc-cmp-track{position:relative;height:10px;background:var(--c-alt);border-radius:2px}
.nbc-cmp-bar{position:absolute;top:0;height:10px;min-width:2px;border-radius:2px}
.nbc-cmp-delta{font-variant-numeric:tabular-nums;font-size:12px}
.nbc-cmp-worse{color:var(--c-err)}.nbc-cmp-better{color:var(--c-ok)}
.nbc-cmp-body{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:6px 12px;padding:6px 10px 10px;
background:var(--c-alt)}
.nbc-cmp-body h4{margin:4px 0 2px;font-size:12px;color:var(--c-muted);font-weight:600}
.nbc-cmp-body pre,.nbc-cmp-diff{margin:0;padding:6px;max-height:240px;overflow:auto;white-space:pre-wrap;
word-break:break-word;font-family:var(--jp-code-font-family,ui-monospace,Menlo,Consolas,monospace);font-size:12px;
background:var(--c-bg);border:1px solid var(--c-border);border-radius:3px}
.nbc-cmp-wide{grid-column:1 / -1}
.nbc-cmp-diff del{background:color-mix(in srgb,var(--c-err) 18%,transparent);text-decoration:line-through}
.nbc-cmp-diff ins{background:color-mix(in srgb,var(--c-ok) 20%,transparent);text-decoration:none}
.nbc-cmp-foot{padding:6px 10px;color:var(--c-muted)}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 0.01:  # noqa: PLR2004 - sub-10 ms steps need a decimal
        return f"{value * 1000:.1f} ms"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.2f} s"


def _usd(value: float | None) -> str:
    if value is None:
        return "price unknown"
    return f"${value:.6f}" if abs(value) < 0.01 else f"${value:.4f}"  # noqa: PLR2004 - small amounts need digits


def _signed(value: float | None, unit: str) -> str:
    if value is None:
        return ""
    if unit == "s":
        text = _seconds(abs(value))
    elif unit == "$":
        text = _usd(abs(value))
    else:
        text = f"{abs(value):,.0f} tok"
    return ("+" if value > 0 else "\u2212" if value < 0 else "±") + text


def _times(rows: Iterable[dict[str, Any] | None]) -> tuple[float, float]:
    """(earliest start, span in seconds) of one side's runs, for its waterfall."""
    starts, ends = [], []
    for row in rows:
        if row is None:
            continue
        start = epoch(row.get("start"))
        if start is None:
            continue
        starts.append(start)
        duration = as_float(row.get("duration_s"))
        ends.append(start + (duration or 0.0))
    if not starts:
        return 0.0, 0.0
    return min(starts), max(ends) - min(starts)


def _bar(row: dict[str, Any] | None, origin: float, scale: float) -> str:
    if row is None:
        return '<div class="nbc-cmp-cell"></div>'
    start = epoch(row.get("start"))
    duration = as_float(row.get("duration_s"))
    if start is None or scale <= 0:
        return '<div class="nbc-cmp-track"></div>'
    left = max(0.0, min(100.0, (start - origin) / scale * 100))
    width = max(0.0, min(100.0 - left, (duration or 0.0) / scale * 100))
    color = RUN_TYPE_COLORS.get(str(row.get("run_type")), OTHER_COLOR)
    if row.get("status") == "error":
        color = ERROR_COLOR
    title = _e(f"{row.get('name')}: {_seconds(duration)}")
    return (
        f'<div class="nbc-cmp-track" title="{title}"><div class="nbc-cmp-bar" '
        f'style="left:{left:.2f}%;width:{width:.2f}%;background:{color}"></div></div>'
    )


def _tree_cell(row: dict[str, Any] | None, depth: int, marks: str) -> str:
    if row is None:
        return '<div class="nbc-cmp-cell nbc-cmp-none">—</div>'
    status = str(row.get("status"))
    icon = {"ok": "✓", "error": "✗", "running": "…", "interrupted": "⏸"}.get(status, "?")
    color = RUN_TYPE_COLORS.get(str(row.get("run_type")), OTHER_COLOR)
    bits = [_seconds(as_float(row.get("duration_s")))]
    tokens = as_int(row.get("total_tokens"))
    if tokens is not None:
        bits.append(f"{tokens:,} tok")
    if row.get("run_type") in MODEL_RUN_TYPES:
        bits.append(_usd(as_float(row.get("cost_usd"))))
    return (
        f'<div class="nbc-cmp-cell" style="padding-left:{depth * 14}px" title="{_e(row.get("name"))}">'
        f'<span class="nbc-cmp-dot" style="background:{color}"></span>{_e(row.get("name"))} '
        f'<span class="nbc-cmp-st-{_e(status)}">{icon}</span>{marks} '
        f'<span class="nbc-cmp-muted">{_e(" · ".join(bits))}</span></div>'
    )


def _word_diff(a: str, b: str) -> str:
    """``a`` -> ``b`` word by word: removed words in ``<del>``, added in ``<ins>``; all text escaped."""
    note = ""
    if len(a) > _DIFF_CHARS or len(b) > _DIFF_CHARS:
        a, b = a[:_DIFF_CHARS], b[:_DIFF_CHARS]
        note = f'<span class="nbc-cmp-muted"> (first {_DIFF_CHARS:,} characters compared)</span>'
    words_a, words_b = _WORD.findall(a), _WORD.findall(b)
    out = []
    for tag, a0, a1, b0, b1 in difflib.SequenceMatcher(None, words_a, words_b, autojunk=False).get_opcodes():
        if tag == "equal":
            out.append(_e("".join(words_a[a0:a1])))
            continue
        if a1 > a0:
            out.append(f"<del>{_e(''.join(words_a[a0:a1]))}</del>")
        if b1 > b0:
            out.append(f"<ins>{_e(''.join(words_b[b0:b1]))}</ins>")
    return f'<div class="nbc-cmp-diff">{"".join(out)}</div>{note}'


def _pretty(value: Any) -> str:
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, indent=1, default=str)
        except (TypeError, ValueError):
            text = str(value)
    if len(text) > _DETAIL_CHARS:
        text = text[:_DETAIL_CHARS] + f"…[+{len(text) - _DETAIL_CHARS:,} chars]"
    return _e(text)


def _body(row_a: dict[str, Any] | None, row_b: dict[str, Any] | None, labels: tuple[str, str]) -> str:
    parts = []
    for part in ("inputs", "outputs", "error"):
        cells = []
        for label, row in zip(labels, (row_a, row_b), strict=True):
            if row is None:
                cells.append(f'<div><h4>{_e(label)}</h4><div class="nbc-cmp-none">not in this run</div></div>')
                continue
            value = row.get(part)
            if part == "error" and is_missing(value):
                cells.append("<div></div>")
                continue
            shown = "" if not isinstance(value, (dict, list)) and is_missing(value) else _pretty(value)
            cells.append(f"<div><h4>{_e(label)} · {part}</h4><pre>{shown}</pre></div>")
        if part == "error" and all(c == "<div></div>" for c in cells):
            continue
        parts.extend(cells)
    if row_a is not None and row_b is not None:
        text_a, text_b = output_text(row_a.get("outputs")), output_text(row_b.get("outputs"))
        title = "output diff" if text_a != text_b else "outputs are identical"
        parts.append(
            f'<div class="nbc-cmp-wide"><h4>{_e(title)} ({_e(labels[0])} → {_e(labels[1])})</h4>'
            f"{_word_diff(text_a, text_b) if text_a != text_b else ''}</div>"
        )
    return f'<div class="nbc-cmp-body">{"".join(parts)}</div>'


def _delta_cell(row: pd.Series) -> str:
    bits = []
    for column, unit in (("duration_delta_s", "s"), ("tokens_delta", "tok"), ("cost_delta_usd", "$")):
        value = as_float(row[column])
        if value is None or value == 0 or (unit == "s" and abs(value) < 0.00005):  # noqa: PLR2004 - shows as 0.0 ms
            continue
        worse = value > 0
        css = "nbc-cmp-worse" if worse else "nbc-cmp-better"
        bits.append(f'<span class="{css}">{_e(_signed(value, unit))}</span>')
    return f'<div class="nbc-cmp-cell nbc-cmp-delta">{" ".join(bits)}</div>'


def _summary(
    pairs: Sequence[tuple[dict[str, Any] | None, dict[str, Any] | None]], labels: tuple[str, str], frame: pd.DataFrame
) -> str:
    out = []
    for index, label in enumerate(labels):
        rows = [row for pair in pairs if (row := pair[index]) is not None]
        _, span = _times(rows)
        tokens = sum(as_int(r.get("total_tokens")) or 0 for r in rows)
        costs = [as_float(r.get("cost_usd")) for r in rows if r.get("run_type") in MODEL_RUN_TYPES]
        known = [c for c in costs if c is not None]
        cost = _usd(sum(known)) if known else "price unknown"
        if known and len(known) < len(costs):
            cost = f"≥ {cost} ({len(costs) - len(known)} unpriced)"
        errors = sum(1 for r in rows if r.get("status") == "error")
        text = f"{len(rows)} runs · {_seconds(span)} · {tokens:,} tokens · {cost}"
        if errors:
            text += f" · {errors} errors"
        out.append(f'<span><b>{_e(label)}</b> <span class="nbc-cmp-muted">{_e(text)}</span></span>')
    only_a = int((frame["only_in"] == "a").sum())
    only_b = int((frame["only_in"] == "b").sum())
    out.append(
        f'<span class="nbc-cmp-muted">{_e(f"{only_a} only in {labels[0]} · {only_b} only in {labels[1]}")}</span>'
    )
    return f'<div class="nbc-cmp-head">{"".join(out)}</div>'


def render(
    frame: pd.DataFrame,
    pairs: Sequence[tuple[dict[str, Any] | None, dict[str, Any] | None]],
    labels: tuple[str, str],
) -> str:
    """The view's HTML: one row per aligned pair (``pairs[i]`` is row ``i`` of ``frame``), at most 1000 shown."""
    origin_a, span_a = _times(a for a, _ in pairs)
    origin_b, span_b = _times(b for _, b in pairs)
    scale = max(span_a, span_b)
    rows_html = []
    shown = min(len(frame), len(pairs), _MAX_HTML_ROWS)
    for index in range(shown):
        row = frame.iloc[index]
        row_a, row_b = pairs[index]
        only = row["only_in"]
        css = "" if is_missing(only) else f" nbc-cmp-only-{_e(only)}"
        marks = ""
        if row_a is not None and row_b is not None:
            if row_a.get("status") != row_b.get("status"):
                marks += '<span class="nbc-cmp-mark">status</span>'
            if output_text(row_a.get("outputs")) != output_text(row_b.get("outputs")):
                marks += '<span class="nbc-cmp-mark">≠ output</span>'
        depth = int(row["depth"])
        rows_html.append(
            f'<details class="nbc-cmp-pair{css}"><summary class="nbc-cmp-grid">'
            f"{_tree_cell(row_a, depth, marks if row_a is not None else '')}{_bar(row_a, origin_a, scale)}"
            f"{_tree_cell(row_b, depth, marks if row_a is None else '')}{_bar(row_b, origin_b, scale)}"
            f"{_delta_cell(row)}</summary>{_body(row_a, row_b, labels)}</details>"
        )
    foot = ""
    if len(frame) > shown:
        foot = (
            f'<div class="nbc-cmp-foot">{len(frame) - shown:,} more rows not shown here; '
            "the DataFrame has them all.</div>"
        )
    columns = (
        f'<div class="nbc-cmp-grid nbc-cmp-cols"><div>{_e(labels[0])}</div><div>timeline</div>'
        f"<div>{_e(labels[1])}</div><div>timeline</div><div>Δ ({_e(labels[1])} \u2212 {_e(labels[0])})</div></div>"
    )
    empty = '<div class="nbc-cmp-foot">No runs to compare.</div>' if not pairs else ""
    return (
        f'<div class="nbc-cmp"><style>{_CSS}</style>{_summary(pairs, labels, frame)}{columns}'
        f"{''.join(rows_html)}{empty}{foot}</div>"
    )
