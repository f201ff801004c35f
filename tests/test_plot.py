"""Plotly charts from real recorded runs (the demo agent through NotebookHandler) and edge frames."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import pytest
from langchain_core.messages import AIMessage
from langchain_core.tools import tool

from nbcallbacks import NotebookHandler, demo, plot
from nbcallbacks.tree import preorder

PLOT_FILE = Path(plot.__file__)
WEATHER_QUESTION = {"messages": [("user", "What's the weather in Oslo?")]}


@pytest.fixture(scope="module")
def traced_handler():
    """One agent run with a failing tool, then a small batch of chains."""
    h = NotebookHandler()
    question = "What's the weather in Paris and Berlin, and what is 1 / 0?"
    demo.agent(token_delay=0).invoke({"messages": [("user", question)]}, {"callbacks": [h]})
    demo.chain(token_delay=0).batch(
        [{"question": f"question {i}"} for i in range(3)], {"callbacks": [h], "max_concurrency": 2}
    )
    return h


@pytest.fixture(scope="module")
def runs(traced_handler):
    return traced_handler.runs_dataframe()


def frame(rows):
    """A runs DataFrame with the export's column types from a few hand-written rows."""
    t0 = pd.Timestamp("2026-01-01T00:00:00Z")
    base = {
        "parent_run_id": None,
        "status": "ok",
        "depth": 0,
        "end": None,
        "duration_s": None,
        "ttft_s": None,
        "tokens_per_s": None,
        "input_tokens": None,
        "output_tokens": None,
        "total_tokens": None,
        "model": None,
        "error": None,
        "langgraph_node": None,
        "langgraph_step": None,
    }
    full = []
    for row in rows:
        r = {**base, **row}
        r["start"] = t0 + pd.Timedelta(seconds=r.pop("at"))
        if (took := r.pop("took", None)) is not None:
            r["end"] = r["start"] + pd.Timedelta(seconds=took)
            r["duration_s"] = took
        full.append(r)
    df = pd.DataFrame(full)
    df["start"] = pd.to_datetime(df["start"], utc=True)
    df["end"] = pd.to_datetime(df["end"], utc=True)
    for col in ("input_tokens", "output_tokens", "total_tokens", "langgraph_step"):
        df[col] = df[col].astype("Int64")
    for col in ("duration_s", "ttft_s", "tokens_per_s"):
        df[col] = df[col].astype("float64")
    return df


def bars(fig):
    return [t for t in fig.data if isinstance(t, go.Bar)]


def all_hover(fig):
    return [text for t in fig.data for text in (t.hovertext or ())]


# ---- timeline ---------------------------------------------------------------------------------


def test_timeline_draws_one_bar_per_run_in_one_trace_per_run_type(traced_handler, runs):
    fig = plot.timeline(traced_handler)
    assert isinstance(fig, go.Figure)
    assert sum(len(t.x) for t in bars(fig)) == len(runs)
    assert {t.name for t in bars(fig)} == set(runs["run_type"])
    counts = runs["run_type"].value_counts()
    for trace in bars(fig):
        assert len(trace.x) == counts[trace.name]
        assert trace.marker.color == plot.RUN_TYPE_COLORS[trace.name]
        assert trace.orientation == "h"
    assert sorted(y for t in bars(fig) for y in t.y) == list(range(len(runs)))


def test_timeline_orders_runs_depth_first_with_indented_labels(traced_handler, runs):
    fig = plot.timeline(runs)
    by_row = {y: text for trace in bars(fig) for y, text in zip(trace.y, trace.hovertext, strict=True)}
    labels = list(fig.layout.yaxis.ticktext)
    assert len(labels) == len(runs)
    # Rebuild the row order from the frame and check each subtree is contiguous.
    ids = list(runs["run_id"])
    parents = dict(zip(ids, runs["parent_run_id"], strict=True))
    names = dict(zip(ids, runs["name"], strict=True))
    depth = dict(zip(ids, runs["depth"], strict=True))
    order = [ids[p] for p, _ in preorder(ids, [None if pd.isna(p) else p for p in runs["parent_run_id"]])]
    assert order[0] == ids[0]
    for pos, run_id in enumerate(order):
        parent = parents[run_id]
        if pd.notna(parent):
            assert order.index(parent) < pos
            # everything between the parent and this run descends from the parent
            for between in order[order.index(parent) + 1 : pos]:
                ancestor = parents[between]
                while pd.notna(ancestor) and ancestor != parent:
                    ancestor = parents[ancestor]
                assert ancestor == parent
        assert names[run_id] in labels[pos]
        assert labels[pos].startswith("└ ") == (depth[run_id] > 0)
        assert f"<b>{names[run_id]}</b>" in by_row[pos]
    # Deeper rows carry less trailing padding, so their labels end closer to the axis.
    pad = {d: len(lab) - len(lab.rstrip("\u00a0")) for lab, d in zip(labels, (depth[r] for r in order), strict=True)}
    assert pad[0] > pad[1] > pad[2]


def test_timeline_marks_failed_runs(traced_handler, runs):
    fig = plot.timeline(traced_handler)
    (tool,) = [t for t in bars(fig) if t.name == "tool"]
    failed = [i for i, text in enumerate(tool.hovertext) if "<b>calculator</b>" in text]
    assert len(failed) == 1
    i = failed[0]
    assert tool.marker.line.color[i] == plot.ERROR_COLOR
    assert tool.marker.line.width[i] == 2
    assert "ZeroDivisionError" in tool.hovertext[i]
    assert all(w == 0 for j, w in enumerate(tool.marker.line.width) if j != i)
    (marks,) = [t for t in fig.data if t.name == "error"]
    assert list(marks.y) == [tool.y[i]]
    assert marks.marker.symbol == "x"
    assert marks.x[0] == pytest.approx(tool.base[i] + tool.x[i])
    assert (runs["status"] == "error").sum() == 1


def test_timeline_hover_text_has_timing_and_tokens(traced_handler, runs):
    fig = plot.timeline(traced_handler)
    (models,) = [t for t in bars(fig) if t.name == "chat_model"]
    first_model = runs[runs["run_type"] == "chat_model"].iloc[0]
    text = models.hovertext[0]
    assert "type: chat_model" in text
    assert f"tokens: {first_model['input_tokens']} in / {first_model['output_tokens']} out" in text
    assert "time to first token:" in text
    assert f"model: {demo.DEMO_MODEL_NAME}" in text
    assert "node: agent (step 1)" in text
    assert "duration:" in text
    # Bars start at their offset from the first start, in seconds.
    t0 = runs["start"].min()
    assert models.base[0] == pytest.approx((first_model["start"] - t0).total_seconds())
    assert models.x[0] == pytest.approx(first_model["duration_s"], rel=1e-3, abs=1e-6)


def test_timeline_draws_running_runs_to_now_and_patterns_statuses():
    df = frame(
        [
            {"run_id": "a", "name": "root", "run_type": "chain", "status": "running", "at": 0},
            {
                "run_id": "b",
                "parent_run_id": "a",
                "depth": 1,
                "name": "ask",
                "at": 1,
                "run_type": "chat_model",
                "status": "interrupted",
                "took": 1.0,
            },
            {
                "run_id": "c",
                "parent_run_id": "a",
                "depth": 1,
                "name": "step",
                "at": 2.5,
                "run_type": "chain",
                "took": 0.5,
            },
        ]
    )
    fig = plot.timeline(df)  # a DataFrame: running runs end at the latest time in it
    (chains,) = [t for t in bars(fig) if t.name == "chain"]
    assert list(chains.x) == [3.0, 0.5]
    assert list(chains.marker.pattern.shape) == ["/", ""]
    assert "(so far)" in chains.hovertext[0]
    (models,) = [t for t in bars(fig) if t.name == "chat_model"]
    assert list(models.marker.pattern.shape) == ["."]
    later = plot.timeline(df, now=pd.Timestamp("2026-01-01T00:00:10Z"))
    (chains,) = [t for t in bars(later) if t.name == "chain"]
    assert chains.x[0] == 10.0


def test_timeline_of_a_live_handler_draws_running_runs_to_now():
    h = NotebookHandler()
    seen = {}

    @tool
    def snapshot(city: str) -> str:
        """Draw the timeline while this tool, its node and the graph are still running."""
        seen["figure"] = plot.timeline(h)
        seen["frame"] = h.runs_dataframe()
        return f"{city}: 20°C"

    model = demo.DemoChatModel(
        token_delay=0,
        responses=[
            AIMessage("", tool_calls=[{"name": "snapshot", "args": {"city": "Oslo"}, "id": "c1"}]),
            "Done.",
        ],
    )
    demo.agent(model, tools=[snapshot]).invoke(WEATHER_QUESTION, {"callbacks": [h]})
    fig, live = seen["figure"], seen["frame"]
    running = set(live.loc[live["status"] == "running", "name"])
    assert running == {"LangGraph", "tools", "snapshot"}
    patterns = {
        text.split("</b>")[0].removeprefix("<b>"): shape
        for t in bars(fig)
        for text, shape in zip(t.hovertext, t.marker.pattern.shape, strict=True)
    }
    assert {name for name, shape in patterns.items() if shape == "/"} == running
    # Running bars reach at least as far as every finished one.
    (chains,) = [t for t in bars(fig) if t.name == "chain"]
    ends = [b + w for b, w in zip(chains.base, chains.x, strict=True)]
    assert ends[0] == pytest.approx(max(ends), abs=1e-9)  # base + width: float rounding only
    # Afterwards the same handler draws everything finished.
    assert all(s == "" for t in bars(plot.timeline(h)) for s in t.marker.pattern.shape)


def test_timeline_keeps_orphans_and_unknown_types_and_escapes_text():
    df = frame(
        [
            {
                "run_id": "a",
                "parent_run_id": "gone",
                "depth": 3,
                "name": "<b>orphan</b>",
                "run_type": "chain",
                "at": 0,
                "took": 1,
            },
            {
                "run_id": "b",
                "name": "odd",
                "run_type": "custom",
                "at": 0.5,
                "took": 0.1,
                "status": "error",
                "error": "ValueError: <script>alert(1)</script>",
            },
        ]
    )
    fig = plot.timeline(df)
    assert {t.name for t in bars(fig)} == {"chain", "custom"}
    (custom,) = [t for t in bars(fig) if t.name == "custom"]
    assert custom.marker.color == plot.OTHER_COLOR
    text = " ".join(all_hover(fig))
    assert "&lt;script&gt;" in text
    assert "<script>" not in text
    assert "&lt;b&gt;orphan&lt;/b&gt;" in fig.layout.yaxis.ticktext[0]


def test_tiny_runs_stay_visible():
    df = frame(
        [
            {"run_id": "a", "name": "long", "run_type": "chain", "at": 0, "took": 10},
            {"run_id": "b", "name": "instant", "run_type": "tool", "at": 5, "took": 0},
        ]
    )
    (tool,) = [t for t in bars(plot.timeline(df)) if t.name == "tool"]
    assert tool.x[0] > 0
    assert "duration: 0.0 ms" in tool.hovertext[0]


# ---- latency ----------------------------------------------------------------------------------


def test_latency_boxes_repeated_names_and_bars_single_ones(traced_handler, runs):
    fig = plot.latency(traced_handler)
    finished = runs[runs["duration_s"].notna()]
    boxes = [t for t in fig.data if isinstance(t, go.Box)]
    single = bars(fig)
    counts = finished.groupby(["name", "run_type"]).size()
    assert len(boxes) == int((counts > 1).sum())
    assert len(single) == int((counts == 1).sum())
    assert sum(len(t.x) for t in fig.data) == len(finished)
    (model_box,) = [b for b in boxes if b.y[0] == "DemoChatModel"]
    expected = sorted(finished.loc[finished["name"] == "DemoChatModel", "duration_s"])
    assert sorted(model_box.x) == pytest.approx(expected)
    assert model_box.marker.color == plot.RUN_TYPE_COLORS["chat_model"]
    assert f"runs: {len(expected)}" in model_box.hovertext[0]
    # One legend entry per run type, slowest name first.
    assert sorted(t.name for t in fig.data if t.showlegend) == sorted(set(finished["run_type"]))
    order = list(fig.layout.yaxis.categoryarray)
    assert order[0] == finished.loc[finished["duration_s"].idxmax(), "name"]


def test_latency_skips_running_runs_and_labels_shared_names():
    df = frame(
        [
            {"run_id": "a", "name": "search", "run_type": "tool", "at": 0, "took": 1},
            {"run_id": "b", "name": "search", "run_type": "retriever", "at": 0, "took": 0.5},
            {"run_id": "c", "name": "busy", "run_type": "chain", "at": 0, "status": "running"},
        ]
    )
    fig = plot.latency(df)
    assert [t.y[0] for t in fig.data] == ["search (tool)", "search (retriever)"]
    only_running = plot.latency(df[df["run_id"] == "c"])
    assert "nothing to plot" in only_running.layout.title.text
    assert len(only_running.data) == 0


# ---- tokens -----------------------------------------------------------------------------------


def test_tokens_plots_each_model_run(traced_handler, runs):
    fig = plot.tokens(traced_handler)
    models = runs[runs["run_type"].isin(["chat_model", "llm"])]
    traces = {t.name: t for t in fig.data}
    assert set(traces) == {"input tokens", "output tokens", "tokens/s", "time to first token"}
    for trace in traces.values():
        assert len(trace.x) == len(models)
    assert list(traces["output tokens"].y) == list(models["output_tokens"])
    assert list(traces["input tokens"].y) == list(models["input_tokens"])
    assert list(traces["tokens/s"].y) == pytest.approx(list(models["tokens_per_s"]))
    assert list(traces["time to first token"].y) == pytest.approx(list(models["ttft_s"]))
    assert traces["time to first token"].yaxis == "y3"
    assert traces["tokens/s"].yaxis == "y2"
    assert traces["output tokens"].x[0] == "1. DemoChatModel"
    assert f"model: {demo.DEMO_MODEL_NAME}" in traces["output tokens"].hovertext[0]


def test_tokens_outlines_failed_model_calls():
    h = NotebookHandler()
    with pytest.raises(demo.DemoStreamError):
        demo.DemoChatModel(token_delay=0, error_after=2).invoke("fail", {"callbacks": [h]})
    demo.DemoChatModel(token_delay=0).invoke("fine", {"callbacks": [h]})
    fig = plot.tokens(h)
    (out,) = [t for t in fig.data if t.name == "output tokens"]
    assert list(out.marker.line.color) == [plot.ERROR_COLOR, "rgba(0,0,0,0)"]
    assert "status: error" in out.hovertext[0]


def test_tokens_without_model_runs_is_an_empty_figure():
    df = frame([{"run_id": "a", "name": "t", "run_type": "tool", "at": 0, "took": 1}])
    fig = plot.tokens(df)
    assert len(fig.data) == 0
    assert "nothing to plot" in fig.layout.title.text


# ---- inputs and dependencies ------------------------------------------------------------------


@pytest.mark.parametrize("chart", [plot.timeline, plot.latency, plot.tokens])
def test_empty_inputs_give_an_empty_figure(chart):
    for empty in (NotebookHandler(), pd.DataFrame(), NotebookHandler().runs_dataframe()):
        fig = chart(empty)
        assert isinstance(fig, go.Figure)
        assert len(fig.data) == 0
        assert "nothing to plot" in fig.layout.title.text
        assert fig.layout.annotations[0].text.startswith("No ")


@pytest.mark.parametrize("chart", [plot.timeline, plot.latency, plot.tokens])
def test_bad_inputs_say_what_is_wrong(chart):
    with pytest.raises(TypeError, match="runs DataFrame"):
        chart([1, 2, 3])
    with pytest.raises(ValueError, match="lacks column"):
        chart(pd.DataFrame({"something": [1]}))


@pytest.mark.parametrize("chart", [plot.timeline, plot.latency, plot.tokens])
def test_missing_plotly_says_how_to_install_it(chart, monkeypatch, runs):
    for name in [m for m in sys.modules if m == "plotly" or m.startswith("plotly.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "plotly", None)
    with pytest.raises(ImportError, match=r"pip install 'nbcallbacks\[plot\]'"):
        chart(runs)


def test_plot_module_imports_neither_langchain_nor_plotly_up_front():
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('nbplot', {str(PLOT_FILE)!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "sys.modules['nbplot'] = module\n"
        "spec.loader.exec_module(module)\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('langchain_core', 'langgraph', 'plotly', 'pandas'))\n"
        "print(loaded)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
