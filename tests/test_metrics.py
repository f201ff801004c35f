"""``nbcallbacks.metric`` / ``ametric`` record custom metrics on the enclosing run, wherever that run is.

Real LangChain runnables, tools and LangGraph graphs; the metric lands on the innermost run, in the run's
``metrics`` and in ``metrics_dataframe()``, and survives a sink round trip.
"""

from __future__ import annotations

import asyncio
import decimal
import logging
import math
from typing import Any, TypedDict

import numpy as np
import pandas as pd
import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool
from langgraph.graph import END, START, StateGraph

import nbcallbacks
from nbcallbacks import LoggingSink, NotebookHandler, SQLiteSink, ametric, metric, trace
from nbcallbacks.demo import agent
from nbcallbacks.events import METRIC_EVENT
from nbcallbacks.export import METRIC_COLUMNS


def run_named(h: NotebookHandler, name: str) -> Any:
    (run,) = [r for r in h.recorder.runs() if r.name == name]
    return run


def metric_rows(h: NotebookHandler) -> list[tuple[Any, ...]]:
    frame = h.metrics_dataframe()
    return list(zip(frame["name"], frame["value"], frame["labels"], strict=True))


def test_metric_in_a_runnable_lambda():
    h = NotebookHandler()

    def step(x: int) -> int:
        metric("items", x, stage="parse")
        metric("ratio", 0.5)
        return x

    assert RunnableLambda(step, name="step").invoke(3, config={"callbacks": [h]}) == 3
    assert run_named(h, "step").metrics == {"items": 3.0, "ratio": 0.5}
    assert metric_rows(h) == [("items", 3.0, {"stage": "parse"}), ("ratio", 0.5, {})]
    frame = h.metrics_dataframe()
    assert list(frame.columns) == list(METRIC_COLUMNS)
    assert {c: str(t) for c, t in frame.dtypes.items()} == METRIC_COLUMNS
    assert set(frame["run_id"]) == {run_named(h, "step").run_id}
    assert h.runs_dataframe().set_index("name").loc["step", "metrics"] == {"items": 3.0, "ratio": 0.5}
    assert h.recorder.handler_error_count == 0


def test_metric_lands_on_the_innermost_run():
    h = NotebookHandler()

    @tool
    def lookup(query: str) -> str:
        """Look something up."""
        metric("hits", 7, index="docs")
        return query

    def outer(x: str) -> str:
        metric("outer_calls", 1)
        return lookup.invoke({"query": x})

    RunnableLambda(outer, name="outer").invoke("q", config={"callbacks": [h]})
    assert run_named(h, "outer").metrics == {"outer_calls": 1.0}
    assert run_named(h, "lookup").metrics == {"hits": 7.0}
    by_name = dict(zip(h.metrics_dataframe()["name"], h.metrics_dataframe()["run_id"], strict=True))
    assert by_name == {"outer_calls": run_named(h, "outer").run_id, "hits": run_named(h, "lookup").run_id}


def test_metric_in_a_tool_called_by_the_langgraph_agent():
    @tool
    def get_weather(city: str) -> str:
        """Weather of a city."""
        metric("weather_lookups", 1, city=city)
        return f"Sunny in {city}"

    h = NotebookHandler()
    graph = agent(token_delay=0, tools=[get_weather])
    graph.invoke({"messages": [("user", "What's the weather in Paris?")]}, config={"callbacks": [h]})
    tool_run = run_named(h, "get_weather")
    assert tool_run.run_type == "tool"
    assert tool_run.metrics == {"weather_lookups": 1.0}
    assert metric_rows(h) == [("weather_lookups", 1.0, {"city": "Paris"})]


class State(TypedDict):
    value: int


def test_metric_in_langgraph_nodes_sync_and_async():
    def double(state: State) -> State:
        metric("doubled", state["value"] * 2)
        return {"value": state["value"] * 2}

    async def shift(state: State) -> State:
        await ametric("shifted", state["value"] + 1, kind="async")
        return {"value": state["value"] + 1}

    builder = StateGraph(State)
    builder.add_node("double", double)
    builder.add_node("shift", shift)
    builder.add_edge(START, "double")
    builder.add_edge("double", "shift")
    builder.add_edge("shift", END)
    graph = builder.compile()

    h = NotebookHandler()
    assert asyncio.run(graph.ainvoke({"value": 5}, config={"callbacks": [h]})) == {"value": 11}
    assert run_named(h, "double").metrics == {"doubled": 10.0}
    assert run_named(h, "shift").metrics == {"shifted": 11.0}
    assert run_named(h, "double").langgraph_node == "double"
    assert metric_rows(h) == [("doubled", 10.0, {}), ("shifted", 11.0, {"kind": "async"})]


def test_ametric_in_async_lambdas_running_concurrently():
    h = NotebookHandler()

    async def work(x: int) -> int:
        await asyncio.sleep(0)
        await ametric("item", x)
        return x

    chain = RunnableLambda(work, name="work")

    async def main() -> list[int]:
        return await asyncio.gather(*(chain.ainvoke(i, config={"callbacks": [h]}) for i in range(20)))

    assert asyncio.run(main()) == list(range(20))
    runs = [r for r in h.recorder.runs() if r.name == "work"]
    assert len(runs) == 20
    assert sorted(r.metrics["item"] for r in runs) == [float(i) for i in range(20)]
    for run in runs:  # each metric on its own run, not a neighbour's
        value = run.metrics["item"]
        (row,) = h.metrics_dataframe().query("run_id == @run.run_id")["value"]
        assert row == value


def test_outside_any_run_is_a_no_op():
    h = NotebookHandler()
    metric("orphan", 1)
    asyncio.run(ametric("orphan", 2))
    with trace(h, display=False):
        metric("inside trace, outside runs", 3)
    assert h.recorder.event_count == 0
    assert h.metrics_dataframe().empty


def test_metric_with_trace_and_no_explicit_callbacks():
    chain = RunnableLambda(lambda x: (metric("seen", x), x)[1], name="traced")
    with trace(display=False) as h:
        chain.invoke(4)
    assert run_named(h, "traced").metrics == {"seen": 4.0}


def test_metric_without_a_notebook_handler_is_harmless():
    class Other(BaseCallbackHandler):
        def __init__(self) -> None:
            self.events: list[tuple[str, Any]] = []

        def on_custom_event(self, name: str, data: Any, **kwargs: Any) -> None:
            self.events.append((name, data))

    other = Other()
    RunnableLambda(lambda x: (metric("m", 1.5, a=1), x)[1]).invoke(1, config={"callbacks": [other]})
    assert other.events == [(METRIC_EVENT, {"name": "m", "value": 1.5, "labels": {"a": 1}})]
    assert RunnableLambda(lambda x: (metric("m", 1), x)[1]).invoke(2) == 2


def test_value_types():
    class Hostile:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    h = NotebookHandler()

    def step(x: int) -> int:
        metric("int", 3)
        metric("float", 2.5)
        metric("bool", True)  # noqa: FBT003 - a boolean metric on purpose
        metric("numpy_int", np.int64(4))
        metric("numpy_float", np.float32(0.25))
        metric("decimal", decimal.Decimal("1.25"))
        metric("huge", 10**400)
        metric("text", "excellent")
        metric("none", None)
        metric("hostile", Hostile())
        metric("inf", math.inf)
        return x

    RunnableLambda(step, name="step").invoke(1, config={"callbacks": [h]})
    metrics = run_named(h, "step").metrics
    assert {k: v for k, v in metrics.items() if not math.isnan(v)} == {
        "int": 3.0,
        "float": 2.5,
        "bool": 1.0,
        "numpy_int": 4.0,
        "numpy_float": 0.25,
        "decimal": 1.25,
        "inf": math.inf,
    }
    assert {k for k, v in metrics.items() if math.isnan(v)} == {"huge", "text", "none", "hostile"}
    frame = h.metrics_dataframe().set_index("name")
    for name, value in metrics.items():  # the run and the DataFrame agree on every value
        shown = frame.loc[name, "value"]
        assert (math.isnan(value) and math.isnan(shown)) or shown == value, name
    data = {e.data["name"]: e.data["value"] for e in h.recorder.events() if e.event == "metric"}
    assert data["text"] == "excellent"  # the value as given is kept in the event
    assert data["none"] is None
    assert isinstance(data["huge"], str)
    assert isinstance(data["hostile"], str)
    assert h.recorder.handler_error_count == 0


def test_labels_and_repeated_names():
    h = NotebookHandler()

    def step(x: int) -> int:
        metric("loss", 0.9, epoch=1, name="a label called name", value="and one called value")
        metric("loss", 0.5, epoch=2, tags={"b", "a"}, nested={"deep": [1, (2, 3)]})
        metric(42, 1)  # type: ignore[arg-type]  # a non-text name is shown as text
        return x

    RunnableLambda(step, name="step").invoke(1, config={"callbacks": [h]})
    assert run_named(h, "step").metrics == {"loss": 0.5, "42": 1.0}, "the last value of a name is on the run"
    rows = metric_rows(h)
    assert rows[0] == ("loss", 0.9, {"epoch": 1, "name": "a label called name", "value": "and one called value"})
    assert rows[1] == ("loss", 0.5, {"epoch": 2, "tags": ["a", "b"], "nested": {"deep": [1, [2, 3]]}})
    assert rows[2] == ("42", 1.0, {})


def test_metrics_persist_and_replay(tmp_path):
    path = tmp_path / "metrics.db"
    h = NotebookHandler(sinks=[SQLiteSink(path)])

    def step(x: int) -> int:
        metric("score", 0.8, judge="exact")
        metric("verdict", "pass")
        return x

    RunnableLambda(step, name="step").batch([1, 2, 3], config={"callbacks": [h]})
    assert h.flush()
    loaded = NotebookHandler.load(path)
    pd.testing.assert_frame_equal(h.metrics_dataframe(), loaded.metrics_dataframe())
    pd.testing.assert_frame_equal(h.runs_dataframe(), loaded.runs_dataframe())
    assert len(loaded.metrics_dataframe()) == 6
    for run in loaded.recorder.runs():
        assert run.metrics["score"] == 0.8
        assert math.isnan(run.metrics["verdict"])


def test_metrics_in_the_logging_sink(caplog):
    caplog.set_level(logging.INFO, logger="tests.metrics")
    h = NotebookHandler(sinks=[LoggingSink("tests.metrics", fmt="{event} {detail}", events={"metric"})])
    RunnableLambda(lambda x: (metric("latency_ms", 12.5), x)[1]).invoke(1, config={"callbacks": [h]})
    assert h.flush()
    assert [r.getMessage() for r in caplog.records if r.name == "tests.metrics"] == ["metric latency_ms=12.5"]


def test_exported_from_the_package():
    assert nbcallbacks.metric is metric
    assert nbcallbacks.ametric is ametric
    with pytest.raises(TypeError):
        metric("only a name")  # type: ignore[call-arg]
