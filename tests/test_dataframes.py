"""The two DataFrames: columns, dtypes, order, values; empty, mid-run and finished."""

from __future__ import annotations

import uuid
from typing import Any

import pandas as pd
from langchain_core.outputs import LLMResult
from langchain_core.runnables import RunnableLambda

from nbcallbacks import NotebookHandler
from nbcallbacks.demo import DemoChatModel, agent
from nbcallbacks.export import EVENT_COLUMNS, RUN_COLUMNS

REQUIRED_RUN_COLUMNS = [
    "run_id",
    "parent_run_id",
    "name",
    "run_type",
    "status",
    "depth",
    "start",
    "end",
    "duration_s",
    "ttft_s",
    "tokens_per_s",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "model",
    "error",
    "tags",
    "metadata",
    "langgraph_node",
    "langgraph_step",
]
REQUIRED_EVENT_COLUMNS = [
    "seq",
    "time",
    "elapsed_s",
    "event",
    "run_id",
    "parent_run_id",
    "name",
    "run_type",
    "token",
    "data",
    "thread",
]


def check_dtypes(frame: pd.DataFrame, columns: dict[str, str]) -> None:
    assert list(frame.columns) == list(columns)
    for name, dtype in columns.items():
        assert str(frame[name].dtype) == str(pd.Series([], dtype=dtype).dtype), name


def test_empty_handler_gives_empty_frames_with_the_full_schema() -> None:
    h = NotebookHandler()
    runs = h.runs_dataframe()
    events = h.to_dataframe()
    assert runs.empty
    assert events.empty
    assert set(REQUIRED_RUN_COLUMNS) <= set(runs.columns)
    assert set(REQUIRED_EVENT_COLUMNS) <= set(events.columns)
    check_dtypes(runs, RUN_COLUMNS)
    check_dtypes(events, EVENT_COLUMNS)


def test_frames_after_an_agent_run() -> None:
    h = NotebookHandler()
    result = agent(token_delay=0).invoke(
        {"messages": [("user", "What's the weather in Paris?")]}, config={"callbacks": [h]}
    )
    runs = h.runs_dataframe()
    events = h.to_dataframe()
    check_dtypes(runs, RUN_COLUMNS)
    check_dtypes(events, EVENT_COLUMNS)
    assert str(runs["start"].dtype) == "datetime64[ns, UTC]"
    assert runs["start"].is_monotonic_increasing
    assert runs.loc[0, "depth"] == 0
    assert pd.isna(runs.loc[0, "parent_run_id"])
    assert (runs["status"] == "ok").all()
    assert runs["end"].notna().all()
    assert (runs["duration_s"] >= 0).all()
    model_rows = runs[runs["run_type"] == "chat_model"]
    assert len(model_rows) == 2
    assert model_rows["output_tokens"].notna().all()
    assert (model_rows["ttft_s"] <= model_rows["duration_s"]).all()
    assert (model_rows["model"] == "nbcallbacks-demo-1").all()
    assert set(runs["langgraph_node"].dropna()) >= {"agent", "tools"}
    assert str(runs["langgraph_step"].dtype) == "Int64"
    # events: arrival order, every event of every run, tokens in the token column
    assert events["seq"].tolist() == list(range(len(events)))
    assert events["elapsed_s"].iloc[0] == 0.0
    assert events["elapsed_s"].is_monotonic_increasing
    assert set(events["run_id"]) == set(runs["run_id"])
    tokens = events[events["event"] == "llm_new_token"]
    answer_run = model_rows.iloc[-1]["run_id"]
    answer = tokens[(tokens["run_id"] == answer_run) & (tokens["token_kind"] == "text")]["token"]
    assert "".join(answer) == result["messages"][-1].content
    starts = events[events["event"].str.endswith("_start")]
    assert len(starts) == len(runs)


def test_frames_while_a_run_is_still_going() -> None:
    h = NotebookHandler()
    seen: dict[str, Any] = {}

    def peek(x: str) -> str:
        seen["runs"] = h.runs_dataframe()
        seen["events"] = h.to_dataframe()
        return x

    chain = RunnableLambda(peek) | DemoChatModel(token_delay=0, responses=["done"])
    chain.invoke("hi", config={"callbacks": [h]})
    running = seen["runs"]
    assert list(running["status"]) == ["running", "running"]
    assert running["end"].isna().all()
    assert running["duration_s"].isna().all()
    assert len(seen["events"]) == 2
    check_dtypes(running, RUN_COLUMNS)


def test_errors_appear_in_the_frames() -> None:
    h = NotebookHandler()

    def fail(x: int) -> int:
        msg = f"bad input {x}"
        raise ValueError(msg)

    chain = RunnableLambda(fail)
    outputs = chain.batch([1, 2], config={"callbacks": [h]}, return_exceptions=True)
    assert all(isinstance(o, ValueError) for o in outputs)
    runs = h.runs_dataframe()
    assert list(runs["status"]) == ["error", "error"]
    assert sorted(runs["error"]) == ["ValueError: bad input 1", "ValueError: bad input 2"]
    events = h.to_dataframe()
    assert sorted(events["event"]) == ["chain_error", "chain_error", "chain_start", "chain_start"]


def test_every_time_column_is_exact_on_a_set_clock(handler, clock) -> None:
    """With the handler on a settable clock, starts, offsets, durations, time to first token, rate and elapsed
    times are exact: no sleeping, no tolerance."""
    root, model = uuid.UUID(int=1), uuid.UUID(int=2)
    t0 = clock()
    handler.on_chain_start({}, {"q": 1}, run_id=root, name="root")
    clock.advance(0.5)
    handler.on_chat_model_start({}, [[]], run_id=model, parent_run_id=root, name="model")
    clock.advance(0.25)
    handler.on_llm_new_token("a", run_id=model, parent_run_id=root)
    clock.advance(0.25)
    handler.on_llm_new_token("b", run_id=model, parent_run_id=root)
    clock.advance(1.0)
    handler.on_llm_end(LLMResult(generations=[]), run_id=model, parent_run_id=root)
    clock.advance(0.5)
    handler.on_chain_end({"answer": "ab"}, run_id=root)

    runs = handler.runs_dataframe()
    assert runs["start_offset_s"].tolist() == [0.0, 0.5]
    assert runs["duration_s"].tolist() == [2.5, 1.5]
    assert runs.loc[1, "ttft_s"] == 0.25
    assert runs.loc[1, "tokens_per_s"] == 2 / 1.5
    assert pd.isna(runs.loc[0, "ttft_s"])
    events = handler.to_dataframe()
    assert events["elapsed_s"].tolist() == [0.0, 0.5, 0.75, 1.0, 2.0, 2.5]

    # Timestamps: seconds since the epoch become nanoseconds through a float, exact to well under a microsecond.
    def at(seconds: float) -> pd.Timestamp:
        return pd.Timestamp(t0 + seconds, unit="s", tz="UTC")

    def near(stamps: list[pd.Timestamp], expected: list[pd.Timestamp]) -> bool:
        return all(abs(s - e) < pd.Timedelta(microseconds=1) for s, e in zip(stamps, expected, strict=True))

    assert near(runs["start"].tolist(), [at(0), at(0.5)])
    assert near(runs["end"].tolist(), [at(2.5), at(2.0)])
    assert near([runs.loc[1, "first_token"]], [at(0.75)])
    assert near(events["time"].tolist(), [at(s) for s in (0.0, 0.5, 0.75, 1.0, 2.0, 2.5)])
