"""A trace saved by a sink and loaded back, here or in another process, is the same trace.

``NotebookHandler.load`` must give DataFrames equal to the original's (values and dtypes), the same streamed text
per run, the same widget snapshot and the same charts.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool

from nbcallbacks import JSONLSink, NotebookHandler, SQLiteSink, history, metric
from nbcallbacks.demo import DemoChatModel, DemoStreamError, agent

ROOT = Path(__file__).resolve().parents[1]
SINKS = {"jsonl": JSONLSink, "sqlite": SQLiteSink}
QUESTION = {"messages": [("user", "What's the weather in Paris, and what is 17 * 3?")]}
UNICODE_ANSWER = "héllo 世界 🎉 — naïve café, a lone \udc80 surrogate and a tab\tend"


def record_everything(h: NotebookHandler) -> None:
    """An agent, a failing chain, a failing stream, unicode tokens, metrics, a tool with metrics."""
    agent(token_delay=0).invoke(QUESTION, config={"callbacks": [h]})

    def fails(x: Any) -> Any:
        raise ValueError(f"bad input ✗ {x!r}")

    with pytest.raises(ValueError, match="bad input"):
        RunnableLambda(fails, name="failing step").invoke({"ü": 1}, config={"callbacks": [h]})
    with pytest.raises(DemoStreamError):
        DemoChatModel(token_delay=0, error_after=3, responses=["one two three four five"]).invoke(
            "go", config={"callbacks": [h]}
        )
    DemoChatModel(token_delay=0, responses=[UNICODE_ANSWER]).invoke("go", config={"callbacks": [h]})

    @tool
    def scored(query: str) -> str:
        """Look something up and score it."""
        metric("relevance", 0.75, source="index")
        metric("verdict", "good")
        return query.upper()

    def step(x: str) -> str:
        metric("length", len(x), unit="chars")
        metric("passed", True, name="a label called name")  # noqa: FBT003 - a boolean metric on purpose
        return scored.invoke({"query": x})

    RunnableLambda(step, name="scoring").invoke("données", config={"callbacks": [h]})


def assert_same_trace(original: NotebookHandler, loaded: NotebookHandler) -> None:
    pd.testing.assert_frame_equal(original.runs_dataframe(), loaded.runs_dataframe())
    pd.testing.assert_frame_equal(original.to_dataframe(), loaded.to_dataframe())
    pd.testing.assert_frame_equal(original.metrics_dataframe(), loaded.metrics_dataframe())
    assert loaded.recorder.event_count == original.recorder.event_count
    assert loaded.recorder.first_time == original.recorder.first_time
    for run in original.recorder.runs():
        assert loaded.recorder.run_pieces(run.run_id) == original.recorder.run_pieces(run.run_id)
        assert loaded.recorder.run_text(run.run_id, None) == original.recorder.run_text(run.run_id, None)


@pytest.fixture(params=sorted(SINKS))
def kind(request) -> str:
    return request.param


def saved(tmp_path: Path, kind: str) -> tuple[NotebookHandler, Path]:
    path = tmp_path / f"trace.{'jsonl' if kind == 'jsonl' else 'db'}"
    h = NotebookHandler(title="round trip", sinks=[SINKS[kind](path)])
    record_everything(h)
    assert h.flush()
    assert h.recorder.handler_error_count == 0, h.recorder.handler_errors()
    return h, path


def test_round_trip_is_exact(tmp_path, kind):
    original, path = saved(tmp_path, kind)
    loaded = NotebookHandler.load(path)
    assert_same_trace(original, loaded)
    assert loaded.title == "round trip"
    runs = loaded.runs_dataframe()
    assert set(runs["status"]) == {"ok", "error"}
    shown = UNICODE_ANSWER.replace("\udc80", "\ufffd")  # the handler replaces lone surrogates when recording
    assert shown in {loaded.recorder.run_text(r.run_id) for r in loaded.recorder.runs()}
    assert runs["metrics"].map(len).sum() == 4
    assert loaded.limits == original.limits


def test_lone_surrogates_survive_exactly(tmp_path, kind):
    # The handler replaces lone surrogates; text written to the recorder by other code may still hold them.
    path = tmp_path / f"surrogates.{kind}"
    h = NotebookHandler(sinks=[SINKS[kind](path)])
    name = "step \udc80 named with a lone surrogate"
    recorder = h.recorder
    recorder.start_run("run-1", None, event="chain_start", name=name, run_type="chain", inputs={"q": "\ud800"})
    recorder.token("run-1", None, "tok\udfff", 0)
    recorder.end_run("run-1", None, event="chain_end", run_type="chain", outputs="done \udc80", data="\udc81")
    assert h.flush()
    loaded = NotebookHandler.load(path)
    assert loaded.recorder.runs()[0].name == name
    assert loaded.recorder.run_text("run-1") == "tok\udfff"
    assert_same_trace(h, loaded)
    if kind == "jsonl":
        path.read_bytes().decode("utf-8")  # still valid UTF-8: the surrogates are escaped


def test_loaded_widget_shows_the_same_trace(tmp_path):
    original, path = saved(tmp_path, "sqlite")
    loaded = NotebookHandler.load(path)
    before, after = original.widget.snapshot, loaded.widget.snapshot
    assert after["runs"] == before["runs"]
    assert after["streams"] == before["streams"]
    assert after["totals"] == before["totals"]
    assert after["seq"] == before["seq"]
    assert len(after["runs"]) == original.recorder.run_count
    bundle = loaded._repr_mimebundle_()
    assert bundle


def test_loaded_charts_match(tmp_path):
    from nbcallbacks import plot

    original, path = saved(tmp_path, "jsonl")
    loaded = NotebookHandler.load(path)
    for chart in (plot.timeline, plot.latency, plot.tokens):
        assert chart(loaded).to_dict() == chart(original).to_dict()


def test_jsonl_and_sqlite_hold_the_same_history(tmp_path):
    db, jsonl = tmp_path / "h.db", tmp_path / "h.jsonl"
    h = NotebookHandler(sinks=[SQLiteSink(db), JSONLSink(jsonl)])
    record_everything(h)
    assert h.flush()
    pd.testing.assert_frame_equal(history(db), history(jsonl))
    assert_same_trace(NotebookHandler.load(db), NotebookHandler.load(jsonl))
    assert len(history(db)) == 5  # agent, failing chain, failing stream, unicode stream, scoring


def test_saved_in_another_process(tmp_path, kind):
    path = tmp_path / f"remote.{kind}"
    frames = tmp_path / "frames.pickle"
    code = f"""
        import pickle, sys
        sys.path.insert(0, {str(ROOT / "tests")!r})
        from test_replay import record_everything
        from nbcallbacks import JSONLSink, NotebookHandler, SQLiteSink
        sink = {"JSONLSink" if kind == "jsonl" else "SQLiteSink"}(sys.argv[1])
        h = NotebookHandler(sinks=[sink])
        record_everything(h)
        assert h.flush()
        texts = {{r.run_id: h.recorder.run_pieces(r.run_id) for r in h.recorder.runs()}}
        with open(sys.argv[2], "wb") as f:
            pickle.dump((h.runs_dataframe(), h.to_dataframe(), h.metrics_dataframe(), texts), f)
        """
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), str(path), str(frames)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    with frames.open("rb") as f:
        runs, events, metrics, texts = pickle.load(f)  # noqa: S301 - written by the test itself
    loaded = NotebookHandler.load(path)
    pd.testing.assert_frame_equal(runs, loaded.runs_dataframe())
    pd.testing.assert_frame_equal(events, loaded.to_dataframe())
    pd.testing.assert_frame_equal(metrics, loaded.metrics_dataframe())
    assert {r.run_id: loaded.recorder.run_pieces(r.run_id) for r in loaded.recorder.runs()} == texts
    assert loaded.recorder.runs()[0].thread == "MainThread"
    (session,) = history(path)["session"].unique()
    assert session != ""


def test_sessions_are_chosen_by_id_prefix_or_index(tmp_path, kind):
    path = tmp_path / f"many.{kind}"
    handlers = []
    for name in ("first", "second", "third"):
        h = NotebookHandler(sinks=[SINKS[kind](path)])
        RunnableLambda(lambda x: x, name=name).invoke(1, config={"callbacks": [h]})
        assert h.flush()
        handlers.append(h)

    def names(h: NotebookHandler) -> list[str]:
        return [r.name for r in h.recorder.runs()]

    assert names(NotebookHandler.load(path)) == ["third"]
    assert names(NotebookHandler.load(path, session=0)) == ["first"]
    assert names(NotebookHandler.load(path, session=-2)) == ["second"]
    second_id = handlers[1]._sink_writer.session_id  # type: ignore[union-attr]
    assert names(NotebookHandler.load(path, session=second_id)) == ["second"]
    assert names(NotebookHandler.load(path, session=second_id[:10])) == ["second"]
    assert_same_trace(handlers[0], NotebookHandler.load(path, session=0))
    with pytest.raises(ValueError, match="not found"):
        NotebookHandler.load(path, session="zzzz")
    with pytest.raises(ValueError, match="no session 7"):
        NotebookHandler.load(path, session=7)


def test_run_restricts_to_one_tree(tmp_path, kind):
    path = tmp_path / f"tree.{kind}"
    h = NotebookHandler(sinks=[SINKS[kind](path)])
    agent(token_delay=0).invoke(QUESTION, config={"callbacks": [h]})
    RunnableLambda(lambda x: x, name="other").invoke(1, config={"callbacks": [h]})
    assert h.flush()
    runs = h.runs_dataframe()
    root = runs.loc[runs["name"] == "LangGraph", "run_id"].iloc[0]
    loaded = NotebookHandler.load(path, run=root[:30])  # a unique prefix (ids of one millisecond share 13)
    mine = loaded.runs_dataframe()
    tree = runs[runs["name"] != "other"].reset_index(drop=True)
    pd.testing.assert_frame_equal(mine.drop(columns=["order"]), tree.drop(columns=["order"]))
    events = h.to_dataframe()
    in_tree = events[events["run_id"].isin(set(tree["run_id"]))]
    assert list(loaded.to_dataframe()["event"]) == list(in_tree["event"])
    assert list(loaded.to_dataframe()["time"]) == list(in_tree["time"])
    tool_run = tree.loc[tree["run_type"] == "tool", "run_id"].iloc[0]
    only_tool = NotebookHandler.load(path, run=tool_run)
    assert [r.run_id for r in only_tool.recorder.runs()] == [tool_run]
    with pytest.raises(ValueError, match="not found"):
        NotebookHandler.load(path, run="nope")


def test_a_loaded_handler_keeps_recording(tmp_path):
    _, path = saved(tmp_path, "sqlite")
    loaded = NotebookHandler.load(path)
    before = loaded.recorder.run_count
    RunnableLambda(lambda x: x, name="later").invoke(1, config={"callbacks": [loaded]})
    assert loaded.recorder.run_count == before + 1
    assert loaded.runs_dataframe()["name"].iloc[-1] == "later"
    assert loaded.to_dataframe()["seq"].is_monotonic_increasing


def test_restore_needs_an_empty_recorder(tmp_path):
    original, path = saved(tmp_path, "jsonl")
    from nbcallbacks.history import load_trace

    trace = load_trace(path)
    with pytest.raises(ValueError, match="empty"):
        original.recorder.restore(trace.runs, trace.events, trace.first_time)


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no run history"):
        NotebookHandler.load(tmp_path / "missing.db")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(ValueError, match="no session"):
        NotebookHandler.load(empty)
    db = tmp_path / "empty.db"
    SQLiteSink(db).close()
    with pytest.raises(ValueError, match="no session"):
        NotebookHandler.load(db)
    assert history(db).empty


def test_running_runs_load_as_running(tmp_path):
    path = tmp_path / "live.jsonl"
    h = NotebookHandler(sinks=[JSONLSink(path)])
    model = DemoChatModel(token_delay=0, responses=["a b c d e f g h"])
    stream = model.stream("go", config={"callbacks": [h]})
    next(stream)
    next(stream)
    assert h.flush()
    loaded = NotebookHandler.load(path)
    assert loaded.recorder.running_count == 1
    assert_same_trace(h, loaded)
    stream.close()
