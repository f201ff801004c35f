"""Plotly charts of recorded runs: a timeline (waterfall), latency by name, and model token figures.

Every function takes a `NotebookHandler` (anything with `runs_dataframe()`) or a runs DataFrame
(`nbcallbacks.export.RUN_COLUMNS`) and returns a `plotly.graph_objects.Figure`. Plotly is an
optional dependency (`pip install 'nbcallbacks[plot]'`), imported only when a chart is drawn.
No template or background is set, so the figures follow the notebook's Plotly theme.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from datetime import datetime

    import pandas as pd
    import plotly.graph_objects as go

    # For type checkers; at run time `__getattr__` below reads them (plot.OTHER_COLOR is public but not in __all__).
    from nbcallbacks.colors import ERROR_COLOR, OTHER_COLOR, RUN_TYPE_COLORS  # noqa: F401

__all__ = ["ERROR_COLOR", "RUN_TYPE_COLORS", "latency", "timeline", "tokens"]

MODEL_RUN_TYPES: Final = ("chat_model", "llm")

_STATUS_PATTERN: Final[dict[str, str]] = {"running": "/", "interrupted": ".", "abandoned": "x"}
_INDENT: Final = "\u00a0\u00a0\u00a0"  # non-breaking: SVG text would collapse plain spaces
_ROW_PX: Final = 22
_MIN_HEIGHT: Final = 260
_MAX_HEIGHT: Final = 4000
_MIN_BAR_FRACTION: Final = 0.002
_BAR_WIDTH: Final = 0.7
_PLOT_EXTRA = "pip install 'nbcallbacks[plot]'"

_TIMELINE_COLUMNS: Final = ("run_id", "parent_run_id", "name", "run_type", "status")
_TIME_COLUMNS: Final = ("start", "end")
_COLOR_NAMES: Final = frozenset({"ERROR_COLOR", "OTHER_COLOR", "RUN_TYPE_COLORS"})


def __getattr__(name: str) -> Any:
    """`RUN_TYPE_COLORS`, `OTHER_COLOR` and `ERROR_COLOR`, defined once in `nbcallbacks.colors`.

    Read from there when first asked for: this module imports nothing of the package up front.
    """
    if name in _COLOR_NAMES:
        from nbcallbacks import colors  # noqa: PLC0415 - nothing of the package up front

        return getattr(colors, name)
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)


def _plotly() -> Any:
    """`plotly.graph_objects`, or an ImportError that says how to install it."""
    try:
        import plotly.graph_objects as go  # noqa: PLC0415 - optional dependency
    except ImportError as exc:
        msg = f"nbcallbacks.plot needs plotly: {_PLOT_EXTRA}"
        raise ImportError(msg) from exc
    return go


def _runs(x: Any) -> pd.DataFrame:
    """The runs DataFrame of a handler (duck-typed) or the DataFrame itself."""
    import pandas as pd  # noqa: PLC0415 - pandas only when a chart is drawn

    frame = x.runs_dataframe() if hasattr(x, "runs_dataframe") else x
    if not isinstance(frame, pd.DataFrame):
        msg = (
            "expected a NotebookHandler (or anything with runs_dataframe()) or a runs DataFrame, "
            f"got {type(x).__name__}"
        )
        raise TypeError(msg)
    return frame


def _drawn_runs(
    x: Any, columns: Iterable[str], keep: Callable[[pd.DataFrame], pd.Series] | None = None
) -> pd.DataFrame:
    """The runs a chart draws: those of ``keep`` (all when ``None``), once ``columns`` are known to be there.

    An empty frame is returned as it is (no column needed): every chart then draws its "nothing to plot" figure.
    """
    frame = _runs(x)
    if frame.empty:
        return frame
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        msg = f"the runs DataFrame lacks column(s) {', '.join(missing)}"
        raise ValueError(msg)
    return frame if keep is None else frame[keep(frame)]


def _empty(go: Any, title: str, message: str) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(
        title=f"{title}: nothing to plot",
        xaxis={"visible": False},
        yaxis={"visible": False},
        annotations=[
            {
                "text": message,
                "xref": "paper",
                "yref": "paper",
                "x": 0.5,
                "y": 0.5,
                "showarrow": False,
            }
        ],
        height=_MIN_HEIGHT,
    )
    return fig


def _missing(value: Any) -> bool:
    """``nbcallbacks.missing.is_missing``, restated here on purpose.

    It is called per cell, where a lazy import each time would cost, and importing it up front would load the
    package (this module imports nothing of it: see test_plot_module_imports_neither_langchain_nor_plotly_up_front).
    """
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN, NaT and pd.NA  # noqa: PLR0124 - NaN test
    except (TypeError, ValueError):  # pd.NA compares to NA, and bool(NA) raises
        return True


def _text(value: Any) -> str:
    """Escaped text for Plotly's HTML-like labels; empty for a missing value."""
    return "" if _missing(value) else html.escape(str(value))


def _number(value: Any) -> float | None:
    return None if _missing(value) else float(value)


def _count(value: Any) -> int | None:
    return None if _missing(value) else int(value)


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 1:
        return f"{value * 1000:.1f} ms"
    return f"{value:.2f} s"


def _color(run_type: str) -> str:
    from nbcallbacks.colors import OTHER_COLOR, RUN_TYPE_COLORS  # noqa: PLC0415 - nothing of the package up front

    return RUN_TYPE_COLORS.get(run_type, OTHER_COLOR)


def _status(row: dict[Any, Any]) -> str:
    """What the run's bar says: the tree's display status (``abandoned`` included) when the frame has it."""
    for column in ("display_status", "status"):
        value = row.get(column)
        if not _missing(value):
            return str(value)
    return ""


def _hover(row: Any, offset: float, duration: float | None, status: str) -> str:
    lines = [
        f"<b>{_text(row['name'])}</b>",
        f"type: {_text(row['run_type'])}",
        f"status: {_text(status)}",
        f"start: +{_seconds(offset)}",
        f"duration: {_seconds(duration)}" + (" (so far)" if status == "running" else ""),
    ]
    inputs = _count(row.get("input_tokens"))
    outputs = _count(row.get("output_tokens"))
    total = _count(row.get("total_tokens"))
    if inputs is not None or outputs is not None:
        in_text = "-" if inputs is None else str(inputs)
        out_text = "-" if outputs is None else str(outputs)
        total_text = "" if total is None else f" ({total} total)"
        lines.append(f"tokens: {in_text} in / {out_text} out{total_text}")
    ttft = _number(row.get("ttft_s"))
    if ttft is not None:
        lines.append(f"time to first token: {_seconds(ttft)}")
    rate = _number(row.get("tokens_per_s"))
    if rate is not None:
        lines.append(f"tokens/s: {rate:.1f}")
    if model := _text(row.get("model")):
        lines.append(f"model: {model}")
    if node := _text(row.get("langgraph_node")):
        step = _count(row.get("langgraph_step"))
        lines.append(f"node: {node}" + ("" if step is None else f" (step {step})"))
    if error := _text(row.get("error")):
        lines.append(f"<b>error</b>: {error[:300]}")
    return "<br>".join(lines)


def _now(x: Any, starts: pd.Series, ends: pd.Series, now: datetime | None) -> pd.Timestamp:
    import pandas as pd  # noqa: PLC0415 - pandas only when a chart is drawn

    stamp: pd.Timestamp
    if now is not None:
        stamp = pd.Timestamp(now)
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    elif hasattr(x, "runs_dataframe"):  # a live handler: running runs grow until now, on the handler's clock
        recorder = getattr(x, "recorder", None)
        clock = getattr(recorder, "clock", None)
        stamp = pd.Timestamp(clock(), unit="s", tz="UTC") if callable(clock) else pd.Timestamp.now(tz="UTC")
    else:
        stamp = pd.Timestamp(max(t for t in (starts.max(), ends.max()) if not _missing(t)))
    return stamp


@dataclass
class _Lane:
    """The bars of one run type on the timeline."""

    x: list[float] = field(default_factory=list)
    base: list[float] = field(default_factory=list)
    y: list[int] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    line: list[str] = field(default_factory=list)
    width: list[int] = field(default_factory=list)
    pattern: list[str] = field(default_factory=list)


@dataclass
class _Waterfall:
    """Everything the timeline draws, in tree order."""

    labels: list[str] = field(default_factory=list)
    lanes: dict[str, _Lane] = field(default_factory=dict)
    error_x: list[float] = field(default_factory=list)
    error_y: list[int] = field(default_factory=list)
    error_text: list[str] = field(default_factory=list)
    span: float = 0.0


def _waterfall(frame: pd.DataFrame, last: pd.Timestamp) -> _Waterfall:
    from nbcallbacks.colors import ERROR_COLOR  # noqa: PLC0415 - nothing of the package up front

    starts, ends = frame["start"], frame["end"]
    t0 = starts.min()
    offsets = [(s - t0).total_seconds() for s in starts]
    finish = [last if _missing(e) else e for e in ends]
    durations = [max(0.0, (f - s).total_seconds()) for s, f in zip(starts, finish, strict=True)]
    out = _Waterfall()
    out.span = max((o + d for o, d in zip(offsets, durations, strict=True)), default=0.0) or 1.0
    min_width = out.span * _MIN_BAR_FRACTION
    from nbcallbacks.tree import preorder  # noqa: PLC0415 - this module imports nothing of the package up front

    parents = [None if _missing(p) else str(p) for p in frame["parent_run_id"]]
    order = preorder([str(i) for i in frame["run_id"]], parents)
    max_depth = max((depth for _, depth in order), default=0)
    records = frame.to_dict("records")  # one conversion; row access by position is slow
    for row_pos, (pos, depth) in enumerate(order):
        row = records[pos]
        # Tick labels are right-aligned, so depth shows as padding after the name: the deeper
        # the run, the closer its label ends to the axis.
        branch = "└ " if depth else ""
        name = _text(row["name"]) or "(unnamed)"
        out.labels.append(f"{branch}{name}{_INDENT * (max_depth - depth)}")
        status = _status(row)
        run_type = "" if _missing(row["run_type"]) else str(row["run_type"])
        known_end = not _missing(row["end"]) or status == "running"
        hover = _hover(row, offsets[pos], durations[pos] if known_end else None, status)
        width = max(durations[pos], min_width)
        failed = status == "error"
        lane = out.lanes.setdefault(run_type, _Lane())
        lane.x.append(width)
        lane.base.append(offsets[pos])
        lane.y.append(row_pos)
        lane.text.append(hover)
        lane.line.append(ERROR_COLOR if failed else _color(run_type))
        lane.width.append(2 if failed else 0)
        lane.pattern.append(_STATUS_PATTERN.get(status, ""))
        if failed:
            out.error_x.append(offsets[pos] + width)
            out.error_y.append(row_pos)
            out.error_text.append(hover)
    return out


def timeline(x: Any, *, now: datetime | None = None, title: str = "Run timeline") -> go.Figure:
    """A waterfall of runs over time: one bar per run, children under their parents.

    Bars are coloured by run type (one legend entry each) and placed in seconds from the first
    start. Failed runs have a red outline and a ✕ at their end; running runs are hatched and
    drawn up to `now`; interrupted runs are dotted. Labels are indented by depth, and the hover
    text gives name, type, status, timing, tokens, model, LangGraph node and error.

    Args:
        x: a `NotebookHandler` or a runs DataFrame.
        now: where running runs end; defaults to the current time for a handler and to the
            latest time in the frame for a DataFrame.
        title: figure title.
    """
    from nbcallbacks.colors import ERROR_COLOR, RUN_TYPE_COLORS  # noqa: PLC0415 - nothing of the package up front

    go = _plotly()
    frame = _drawn_runs(x, (*_TIMELINE_COLUMNS, *_TIME_COLUMNS))
    if frame.empty:
        return _empty(go, title, "No runs recorded yet.")
    drawn = _waterfall(frame, _now(x, frame["start"], frame["end"], now))
    fig = go.Figure()
    known = [t for t in RUN_TYPE_COLORS if t in drawn.lanes]
    for run_type in known + sorted(t for t in drawn.lanes if t not in RUN_TYPE_COLORS):
        lane = drawn.lanes[run_type]
        fig.add_trace(
            go.Bar(
                name=run_type or "(no type)",
                orientation="h",
                x=lane.x,
                base=lane.base,
                y=lane.y,
                width=_BAR_WIDTH,
                hovertext=lane.text,
                hovertemplate="%{hovertext}<extra></extra>",
                marker={
                    "color": _color(run_type),
                    "line": {"color": lane.line, "width": lane.width},
                    "pattern": {"shape": lane.pattern},
                },
                legendgroup=run_type,
            )
        )
    if drawn.error_x:
        fig.add_trace(
            go.Scatter(
                name="error",
                mode="markers",
                x=drawn.error_x,
                y=drawn.error_y,
                hovertext=drawn.error_text,
                hovertemplate="%{hovertext}<extra></extra>",
                marker={"symbol": "x", "color": ERROR_COLOR, "size": 10},
            )
        )
    rows = len(drawn.labels)
    fig.update_layout(
        title=f"{title} ({rows} runs, {drawn.span:.2f} s)",
        barmode="overlay",
        height=min(_MAX_HEIGHT, max(_MIN_HEIGHT, _ROW_PX * rows + 120)),
        legend={"title": {"text": "run type"}},
        hovermode="closest",
    )
    fig.update_xaxes(title_text="seconds since the first run started", rangemode="tozero")
    fig.update_yaxes(
        tickmode="array",
        tickvals=list(range(rows)),
        ticktext=drawn.labels,
        range=[rows - 0.5, -0.5],
        showgrid=False,
    )
    return fig


def latency(x: Any, *, title: str = "Latency by name") -> go.Figure:
    """Duration of finished runs by name, coloured by run type, slowest at the top.

    A name that ran more than once (a node revisited, a batch, several tool calls) is drawn as
    a box with every run as a point; a name that ran once is a bar.

    Args:
        x: a `NotebookHandler` or a runs DataFrame.
        title: figure title.
    """
    go = _plotly()
    frame = _drawn_runs(x, ("name", "run_type", "duration_s"), lambda f: f["duration_s"].notna())
    if frame.empty:
        return _empty(go, title, "No finished runs yet.")

    groups: dict[tuple[str, str], list[float]] = {}
    for name, run_type, duration in zip(frame["name"], frame["run_type"], frame["duration_s"], strict=True):
        key = (_text(name) or "(unnamed)", "" if _missing(run_type) else str(run_type))
        groups.setdefault(key, []).append(float(duration))
    names_per_label: dict[str, int] = {}
    for name, _ in groups:
        names_per_label[name] = names_per_label.get(name, 0) + 1

    def label(key: tuple[str, str]) -> str:
        name, run_type = key
        return f"{name} ({run_type})" if names_per_label[name] > 1 else name

    ranked = sorted(groups, key=lambda k: (-max(groups[k]), label(k)))
    fig = go.Figure()
    in_legend: set[str] = set()
    for key in ranked:
        durations = groups[key]
        run_type = key[1]
        common: dict[str, Any] = {
            "name": run_type or "(no type)",
            "legendgroup": run_type,
            "showlegend": run_type not in in_legend,
            "marker": {"color": _color(run_type)},
            "orientation": "h",
        }
        in_legend.add(run_type)
        if len(durations) > 1:
            from nbcallbacks.tree import percentile  # noqa: PLC0415 - as above

            summary = (  # percentiles as the widget's timing table computes them (nbcallbacks.tree.percentile)
                f"<b>{label(key)}</b><br>type: {run_type}<br>runs: {len(durations)}<br>"
                f"median: {_seconds(percentile(durations, 50))}<br>p90: {_seconds(percentile(durations, 90))}<br>"
                f"max: {_seconds(max(durations))}"
            )
            fig.add_trace(
                go.Box(
                    x=durations,
                    y=[label(key)] * len(durations),
                    boxpoints="all",
                    jitter=0.3,
                    pointpos=0,
                    hovertext=[summary] * len(durations),
                    hovertemplate="%{hovertext}<br>this run: %{x:.4f} s<extra></extra>",
                    **common,
                )
            )
        else:
            fig.add_trace(
                go.Bar(
                    x=durations,
                    y=[label(key)],
                    hovertext=[f"<b>{label(key)}</b><br>type: {run_type}"],
                    hovertemplate="%{hovertext}<br>duration: %{x:.4f} s<extra></extra>",
                    **common,
                )
            )
    fig.update_layout(
        title=f"{title} ({len(frame)} runs, {len(groups)} names)",
        height=min(_MAX_HEIGHT, max(_MIN_HEIGHT, 28 * len(groups) + 120)),
        legend={"title": {"text": "run type"}},
        hovermode="closest",
    )
    fig.update_xaxes(title_text="duration (s)", rangemode="tozero")
    fig.update_yaxes(categoryorder="array", categoryarray=[label(k) for k in ranked], autorange="reversed")
    return fig


def tokens(x: Any, *, title: str = "Model calls") -> go.Figure:
    """Per model run (run type `chat_model` or `llm`): tokens, tokens per second, time to first token.

    Three stacked panels share one x axis with a label per call in start order. Token counts
    come from the model's reported usage; calls without usage or without streaming leave gaps.

    Args:
        x: a `NotebookHandler` or a runs DataFrame.
        title: figure title.
    """
    from nbcallbacks.colors import ERROR_COLOR, RUN_TYPE_COLORS  # noqa: PLC0415 - nothing of the package up front

    go = _plotly()
    frame = _drawn_runs(x, ("name", "run_type"), lambda f: f["run_type"].isin(MODEL_RUN_TYPES))
    if frame.empty:
        return _empty(go, title, "No model runs recorded yet.")

    def column(name: str, convert: Any) -> list[Any]:
        if name not in frame.columns:
            return [None] * len(frame)
        return [convert(v) for v in frame[name]]

    labels = [f"{i}. {_text(n) or 'model'}" for i, n in enumerate(frame["name"], start=1)]
    models = column("model", _text)
    statuses = column("status", _text)
    out_tokens = column("output_tokens", _count)
    in_tokens = column("input_tokens", _count)
    rates = column("tokens_per_s", _number)
    ttfts = column("ttft_s", _number)
    durations = column("duration_s", _number)
    costs = column("cost_usd", _number)
    priced = "cost_usd" in frame.columns  # a runs DataFrame of this version: say "price unknown", never $0
    hover = [
        "<br>".join(
            part
            for part in (
                f"<b>{label}</b>",
                f"model: {model}" if model else "",
                f"status: {status}" if status else "",
                f"duration: {_seconds(duration)}",
                (f"cost: ${cost:.6f}" if cost is not None else "cost: price unknown") if priced else "",
            )
            if part
        )
        for label, model, status, duration, cost in zip(labels, models, statuses, durations, costs, strict=True)
    ]
    outline = [{"color": ERROR_COLOR, "width": 2} if s == "error" else {"width": 0} for s in statuses]
    line = {
        "color": [o.get("color", "rgba(0,0,0,0)") for o in outline],
        "width": [o["width"] for o in outline],
    }

    from plotly.subplots import make_subplots  # noqa: PLC0415 - optional dependency, there since _plotly() was

    fig = make_subplots(
        rows=3,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        subplot_titles=("Tokens", "Tokens per second", "Time to first token (s)"),
    )
    template = "%{hovertext}<br>%{fullData.name}: %{y}<extra></extra>"
    bars: list[tuple[str, list[Any], str, dict[str, Any], int]] = [
        ("input tokens", in_tokens, template, {"color": RUN_TYPE_COLORS["chain"], "opacity": 0.55}, 1),
        ("output tokens", out_tokens, template, {"color": RUN_TYPE_COLORS["chat_model"], "line": line}, 1),
        (
            "tokens/s",
            rates,
            "%{hovertext}<br>tokens/s: %{y:.1f}<extra></extra>",
            {"color": RUN_TYPE_COLORS["tool"], "line": line},
            2,
        ),
        (
            "time to first token",
            ttfts,
            "%{hovertext}<br>time to first token: %{y:.3f} s<extra></extra>",
            {"color": RUN_TYPE_COLORS["llm"], "line": line},
            3,
        ),
    ]
    for name, values, hovertemplate, marker, row in bars:
        fig.add_trace(
            go.Bar(name=name, x=labels, y=values, hovertext=hover, hovertemplate=hovertemplate, marker=marker),
            row=row,
            col=1,
        )
    fig.update_layout(
        title=f"{title} ({len(frame)} model runs)",
        barmode="group",
        height=max(_MIN_HEIGHT * 2, 560),
        hovermode="closest",
    )
    fig.update_yaxes(title_text="tokens", row=1, col=1)
    fig.update_yaxes(title_text="tokens/s", row=2, col=1)
    fig.update_yaxes(title_text="seconds", row=3, col=1)
    return fig
