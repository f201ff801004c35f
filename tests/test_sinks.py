"""Sinks get every event and run, in order, off the recording thread; a failing or blocked sink harms nothing.

Real langchain-core / langgraph objects with fake models throughout. Reliability: a writer killed with SIGKILL
mid-stream leaves a consistent SQLite history holding every committed batch; concurrent writers (threads, asyncio,
two handlers and two processes on one file) lose nothing.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from helpers import wait_until
from langchain_core.language_models.fake_chat_models import FakeListChatModel, GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableLambda

import nbcallbacks
from nbcallbacks import JSONLSink, LoggingSink, NotebookHandler, Sink, SQLiteSink, history
from nbcallbacks.demo import DemoChatModel, agent
from nbcallbacks.history import HISTORY_COLUMNS
from nbcallbacks.sinks import EVENT_FIELDS, RUN_FIELDS, dumps
from nbcallbacks.sinks.jsonl import _line

ROOT = Path(__file__).resolve().parents[1]
QUESTION = {"messages": [("user", "What's the weather in Paris, and what is 17 * 3?")]}


class ListSink:
    """The ten-line custom sink of the documentation, keeping what it gets."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.opened: list[dict[str, Any]] = []
        self.flushes = 0
        self.closed = False
        self.threads: set[str] = set()

    def open(self, session: dict[str, Any]) -> None:
        self.opened.append(session)

    def write(self, batch: list[dict[str, Any]]) -> None:
        self.threads.add(threading.current_thread().name)
        self.records.extend(batch)

    def flush(self) -> None:
        self.flushes += 1

    def close(self) -> None:
        self.closed = True

    def events(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r["kind"] == "event"]

    def runs(self) -> dict[str, dict[str, Any]]:
        return {r["run_id"]: r for r in self.records if r["kind"] == "run"}


def stream_tokens(h: NotebookHandler, count: int) -> None:
    model = GenericFakeChatModel(messages=iter([AIMessage(content=" ".join(f"w{i}" for i in range(count)))]))
    for _ in model.stream("go", config={"callbacks": [h]}):
        pass


def db_rows(path: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


# --- records


def test_custom_sink_gets_every_event_in_order_with_dataframe_values():
    sink = ListSink()
    assert isinstance(sink, Sink)
    h = NotebookHandler(sinks=[sink])
    agent(token_delay=0).invoke(QUESTION, config={"callbacks": [h]})
    assert h.flush()
    events = sink.events()
    assert [e["seq"] for e in events] == list(range(h.recorder.event_count))
    frame = h.to_dataframe()
    assert len(events) == len(frame)
    for record, row in zip(events, frame.to_dict("records"), strict=True):
        assert record["session"] == sink.opened[0]["session"]
        assert record["time"] == pytest.approx(row["time"].timestamp(), abs=1e-6)
        for field in ("seq", "elapsed_s", "event", "token", "token_kind", "data", "thread"):
            value = row[field]
            assert record[field] == (None if value is pd_na() else value), field
    runs = sink.runs()
    assert list(runs) == [r.run_id for r in h.recorder.runs()]
    for run in h.recorder.runs():
        record = runs[run.run_id]
        assert record["status"] == run.status
        assert record["end"] == run.end
        assert record["streamed_chunks"] == run.streamed_chunks
        assert record["first_token"] == run.first_token
        assert record["outputs"] == run.outputs
    assert sink.records[0]["kind"] == "session"
    assert sink.opened == [sink.records[0]]
    assert sink.flushes >= 1
    assert sink.threads
    assert threading.current_thread().name not in sink.threads
    assert h.recorder.handler_error_count == 0


def pd_na() -> Any:
    import pandas as pd

    return pd.NA


def test_session_record_describes_the_process():
    sink = ListSink()
    h = NotebookHandler(title="Experiment 7", max_string=123, sinks=[sink])
    RunnableLambda(lambda x: x).invoke(1, config={"callbacks": [h]})
    assert h.flush()
    session = sink.opened[0]
    assert session["pid"] == os.getpid()
    assert session["title"] == "Experiment 7"
    assert session["limits"]["max_string"] == 123
    assert session["nbcallbacks"] == nbcallbacks.__version__
    assert session["first_time"] == h.recorder.first_time
    assert len(session["session"]) == 32
    assert session["started"] <= h.recorder.first_time + 1


def test_sink_added_late_gets_everything_recorded_before():
    h = NotebookHandler()
    first = ListSink()
    h.add_sink(first)
    RunnableLambda(lambda x: x + 1).invoke(1, config={"callbacks": [h]})
    assert h.flush()
    late = ListSink()
    h.add_sink(late)
    RunnableLambda(lambda x: x + 2).invoke(1, config={"callbacks": [h]})
    assert h.flush()
    expected = list(range(h.recorder.event_count))
    assert [e["seq"] for e in first.events()] == expected
    assert [e["seq"] for e in late.events()] == expected
    assert late.events() == first.events(), "the backlog a late sink gets is the records the others got live"
    assert set(late.runs()) == {r.run_id for r in h.recorder.runs()}
    assert late.records[0]["kind"] == "session"
    assert late.records[0]["session"] == first.records[0]["session"]


def test_flush_without_sinks_and_status():
    h = NotebookHandler()
    assert h.flush() is True
    assert h.sink_status() == []
    sink = ListSink()
    h.add_sink(sink)
    stream_tokens(h, 50)
    assert h.flush()
    (status,) = h.sink_status()
    assert status["sink"] == "ListSink"
    assert status["written_events"] == h.recorder.event_count
    assert status["written_runs"] >= 1
    assert status["dropped_events"] == status["failed_events"] == status["errors"] == 0
    assert status["queued_events"] == 0


def test_object_without_write_is_refused():
    with pytest.raises(TypeError, match="write"):
        NotebookHandler(sinks=[object()])  # type: ignore[list-item]


# --- JSONL


def test_jsonl_lines(tmp_path):
    path = tmp_path / "trace.jsonl"
    h = NotebookHandler(sinks=[JSONLSink(path)])
    agent(token_delay=0).invoke(QUESTION, config={"callbacks": [h]})
    assert h.flush()
    lines = path.read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert records[0]["kind"] == "session"
    events = [r for r in records if r["kind"] == "event"]
    assert [e["seq"] for e in events] == list(range(h.recorder.event_count))
    assert set(events[0]) == {"kind", "session", *EVENT_FIELDS}
    runs = [r for r in records if r["kind"] == "run"]
    assert set(runs[0]) == {"kind", "session", *RUN_FIELDS}
    last = {r["run_id"]: r for r in runs}
    assert {k: v["status"] for k, v in last.items()} == {r.run_id: r.status for r in h.recorder.runs()}


def test_jsonl_appends_sessions(tmp_path):
    path = tmp_path / "trace.jsonl"
    for value in (1, 2):
        h = NotebookHandler(sinks=[JSONLSink(path)])
        RunnableLambda(lambda x: x, name=f"step{value}").invoke(value, config={"callbacks": [h]})
        assert h.flush()
    frame = history(path)
    assert list(frame["name"]) == ["step1", "step2"]
    assert frame["session"].nunique() == 2


def test_dumps_keeps_unicode_and_escapes_lone_surrogates():
    value = {"text": "héllo 世界 🎉", "bad": "a\udc80b", "nan": float("nan")}
    text = dumps({"text": value["text"]})
    assert "世界" in text
    assert "🎉" in text
    escaped = dumps(value)
    escaped.encode("utf-8")  # always valid UTF-8
    back = json.loads(escaped)
    assert back["bad"] == "a\udc80b"
    assert back["text"] == value["text"]
    assert dumps({"x": object()}).startswith('{"x":"<object')


def test_quick_jsonl_lines_are_the_json_encoder_s():
    sink = ListSink()
    h = NotebookHandler(sinks=[sink])
    agent(token_delay=0).invoke(QUESTION, config={"callbacks": [h]})
    for _ in FakeListChatModel(responses=['quote " backslash \\ tab \t newline \n nul \x00 é 世 🎉']).stream(
        "go", config={"callbacks": [h]}
    ):
        pass
    assert h.flush()
    records = sink.records
    assert len(sink.events()) == h.recorder.event_count
    for record in records:
        assert _line(record) == dumps(record)
        assert json.loads(_line(record)) == record
    odd = {**sink.events()[0], "time": float("nan")}
    assert _line(odd) == dumps(odd)
    extra = {**sink.events()[0], "more": 1}
    assert _line(extra) == dumps(extra)


def test_jsonl_disk_full_is_a_visible_sink_error_and_the_file_stays_readable(tmp_path, monkeypatch):
    path = tmp_path / "trace.jsonl"
    sink = JSONLSink(path)
    other = ListSink()
    h = NotebookHandler(sinks=[sink, other])
    real = sink._write_bytes

    def half_then_full(data: bytes) -> None:
        real(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(sink, "_write_bytes", half_then_full)
    result = RunnableLambda(lambda x: x * 2).invoke(21, config={"callbacks": [h]})
    assert result == 42
    assert h.flush()
    status = h.sink_status()[0]
    assert status["failed_events"] == h.recorder.event_count
    assert status["errors"] >= 1
    assert "No space left" in status["last_error"]
    assert any("JSONLSink" in e.where for e in h.recorder.handler_errors())
    assert len(other.events()) == h.recorder.event_count
    monkeypatch.setattr(sink, "_write_bytes", real)
    RunnableLambda(lambda x: x, name="after").invoke(1, config={"callbacks": [h]})
    assert h.flush()
    loaded = NotebookHandler.load(path)  # the torn line is skipped, later lines start fresh
    # the failed batch's session and run records were sent again: both runs are whole, only events were lost
    assert [(r.name, r.status) for r in loaded.recorder.runs()] == [("RunnableLambda", "ok"), ("after", "ok")]
    assert loaded.recorder.runs()[0].outputs == 42


@pytest.mark.parametrize("sink_class", [JSONLSink, SQLiteSink])
def test_bad_paths_fail_at_construction_with_the_path(tmp_path, sink_class):
    missing = tmp_path / "no" / "such" / "dir" / "x.db"
    with pytest.raises(ValueError, match="does not exist") as info:
        sink_class(missing)
    assert str(missing) in str(info.value)
    with pytest.raises(ValueError, match=str(tmp_path)):
        sink_class(tmp_path)  # a directory
    if os.geteuid() == 0:  # root writes anywhere a mode allows nothing: sysfs refuses new files even to root
        read_only = Path("/sys/kernel")
    else:
        read_only = tmp_path / "read-only"
        read_only.mkdir()
        read_only.chmod(0o500)
    target = read_only / "history.out"
    with pytest.raises(ValueError, match=str(target)):
        sink_class(target)
    assert not target.exists()


def test_sqlite_refuses_a_file_that_is_not_a_database(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello, not a database\n" * 100)
    with pytest.raises(ValueError, match=r"notes\.txt"):
        SQLiteSink(path)


# --- SQLite


def test_sqlite_tables_and_upserted_runs(tmp_path):
    path = tmp_path / "runs.db"
    h = NotebookHandler(sinks=[SQLiteSink(path)])
    agent(token_delay=0).invoke(QUESTION, config={"callbacks": [h]})
    assert h.flush()
    assert db_rows(path, "PRAGMA journal_mode") == [("wal",)]
    conn = sqlite3.connect(path)
    run_columns = [row[1] for row in conn.execute("PRAGMA table_info(runs)")]
    event_columns = [row[1] for row in conn.execute("PRAGMA table_info(events)")]
    conn.close()
    assert run_columns == ["session", *RUN_FIELDS]
    assert event_columns == ["session", *EVENT_FIELDS]
    ((session, pid, hostname),) = db_rows(path, "SELECT session, pid, hostname FROM sessions")
    assert pid == os.getpid()
    assert hostname
    assert db_rows(path, "SELECT count(*) FROM events WHERE session = ?", session) == [(h.recorder.event_count,)]
    rows = db_rows(path, 'SELECT run_id, status, "end", streamed_chunks FROM runs ORDER BY "order"')
    assert rows == [(r.run_id, r.status, r.end, r.streamed_chunks) for r in h.recorder.runs()]
    seqs = [s for (s,) in db_rows(path, "SELECT seq FROM events ORDER BY seq")]
    assert seqs == list(range(h.recorder.event_count))


def test_sqlite_full_database_is_a_visible_sink_error(tmp_path):
    path = tmp_path / "runs.db"
    sink = SQLiteSink(path)
    assert sink._conn is not None
    pages = sink._conn.execute("PRAGMA page_count").fetchone()[0]
    sink._conn.execute(f"PRAGMA max_page_count = {pages}")  # the database cannot grow: SQLITE_FULL
    h = NotebookHandler(sinks=[sink])
    model = FakeListChatModel(responses=["x" * 3000])
    assert "".join(c.content for c in model.stream("go", config={"callbacks": [h]})) == "x" * 3000
    assert h.flush()
    status = h.sink_status()[0]
    assert status["failed_events"] > 0
    assert "full" in status["last_error"]
    assert any("SQLiteSink" in e.where for e in h.recorder.handler_errors())


def test_history_lists_sessions_and_root_runs(tmp_path):
    path = tmp_path / "runs.db"
    h1 = NotebookHandler(sinks=[SQLiteSink(path)])
    agent(token_delay=0).invoke(QUESTION, config={"callbacks": [h1]})
    RunnableLambda(lambda x: x, name="second").invoke(1, config={"callbacks": [h1]})
    assert h1.flush()
    h2 = NotebookHandler(sinks=[SQLiteSink(path)])

    def boom(x):
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        RunnableLambda(boom, name="failing").invoke(1, config={"callbacks": [h2]})
    assert h2.flush()
    NotebookHandler(sinks=[SQLiteSink(path)]).flush()  # a session that recorded nothing writes nothing
    frame = history(path)
    assert list(frame.columns) == list(HISTORY_COLUMNS)
    assert {c: str(t) for c, t in frame.dtypes.items()} == HISTORY_COLUMNS
    assert list(frame["name"]) == ["LangGraph", "second", "failing"]
    assert list(frame["status"]) == ["ok", "ok", "error"]
    model_tokens = sum(r.total_tokens or 0 for r in h1.recorder.runs() if r.run_type == "chat_model")
    assert model_tokens > 0
    assert frame["tokens"].iloc[0] == model_tokens
    assert frame["tokens"].isna().tolist()[1:] == [True, True]
    assert "bad input" in frame["error"].iloc[2]
    assert frame["session"].nunique() == 2
    assert str(frame["started"].dtype) == "datetime64[ns, UTC]"
    assert frame["duration_s"].iloc[0] == pytest.approx(h1.runs_dataframe()["duration_s"].iloc[0])


# --- logging


def test_logging_sink_formats_every_event(caplog):
    caplog.set_level(logging.INFO, logger="nbcallbacks.events")
    h = NotebookHandler(sinks=[LoggingSink()])
    RunnableLambda(lambda x: x, name="adder").invoke(1, config={"callbacks": [h]})
    assert h.flush()
    messages = [r.getMessage() for r in caplog.records if r.name == "nbcallbacks.events"]
    assert len(messages) == h.recorder.event_count
    assert "chain_start" in messages[0]
    assert "adder" in messages[0]
    record = next(r for r in caplog.records if r.name == "nbcallbacks.events")
    assert record.nbcallbacks["event"] == "chain_start"  # type: ignore[attr-defined]


def test_logging_sink_custom_format_level_and_filter(caplog):
    logger = logging.getLogger("tests.sinks.custom")
    caplog.set_level(logging.DEBUG, logger=logger.name)
    sink = LoggingSink(logger, level=logging.WARNING, fmt="{event}|{name}|{run}|{detail}", events={"llm_new_token"})
    h = NotebookHandler(sinks=[sink])
    for _ in FakeListChatModel(responses=["abc"]).stream("go", config={"callbacks": [h]}):
        pass
    assert h.flush()
    records = [r for r in caplog.records if r.name == logger.name]
    assert [r.levelno for r in records] == [logging.WARNING] * 3
    run_id = h.recorder.runs()[0].run_id
    assert [r.getMessage() for r in records] == [f"llm_new_token|FakeListChatModel|{run_id[:8]}|{c!r}" for c in "abc"]


def test_logging_sink_rejects_bad_formats():
    with pytest.raises(ValueError, match="unknown field"):
        LoggingSink(fmt="{event} {nope}")
    with pytest.raises(ValueError, match="not valid"):
        LoggingSink(fmt="{elapsed_s:d}")
    with pytest.raises(ValueError, match="not valid"):
        LoggingSink(fmt="{event")


# --- isolation: raising, blocking, slow sinks


class RaisingSink:
    def __init__(self) -> None:
        self.calls = 0

    def write(self, batch: list[dict[str, Any]]) -> None:
        self.calls += 1
        raise RuntimeError("sink exploded")


class BlockingSink:
    max_backlog = 40

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.records: list[dict[str, Any]] = []

    def write(self, batch: list[dict[str, Any]]) -> None:
        self.entered.set()
        self.release.wait()
        self.records.extend(batch)


def test_raising_sink_never_reaches_the_chain():
    bad, good = RaisingSink(), ListSink()
    h = NotebookHandler(sinks=[bad, good])
    result = agent(token_delay=0).invoke(QUESTION, config={"callbacks": [h]})
    assert "51" in result["messages"][-1].content
    assert h.flush()
    assert bad.calls >= 1
    assert [e["seq"] for e in good.events()] == list(range(h.recorder.event_count))
    bad_status, good_status = h.sink_status()
    assert bad_status["failed_events"] == h.recorder.event_count
    assert bad_status["errors"] == bad.calls
    assert "sink exploded" in bad_status["last_error"]
    assert good_status["errors"] == 0
    errors = [e for e in h.recorder.handler_errors() if e.where == "sink RaisingSink"]
    assert len(errors) == 1, "shown once, counted in sink_status()"


def test_blocked_sink_drops_and_counts_while_the_others_get_everything():
    blocked, good = BlockingSink(), ListSink()
    h = NotebookHandler(sinks=[blocked, good])
    h._sink_writer.stall_after = 0.2  # type: ignore[union-attr]
    stream_tokens(h, 100)
    assert blocked.entered.wait(30)
    for _ in range(4):  # each stream read in its own batch: the second waits, later ones overflow
        stream_tokens(h, 100)
        wait_until(lambda: len(good.events()) == h.recorder.event_count, "the good sink to get every event", timeout=60)
    assert [e["seq"] for e in good.events()] == list(range(h.recorder.event_count))
    assert h.flush(timeout=0.3) is False, "the blocked sink has not written"
    wait_until(
        lambda: any(e.where == "sink BlockingSink" and "writing for" in e.error for e in h.recorder.handler_errors()),
        "the blocked sink's stall to be recorded",
        timeout=60,
    )
    status = h.sink_status()[0]
    assert status["blocked_s"] > 0
    assert status["dropped_events"] > 0
    assert any("cannot keep up" in e.error for e in h.recorder.handler_errors())
    blocked.release.set()
    assert h.flush()
    status = h.sink_status()[0]
    written = [r for r in blocked.records if r["kind"] == "event"]
    assert status["written_events"] == len(written)
    assert status["written_events"] + status["dropped_events"] == h.recorder.event_count
    assert status["queued_events"] == 0
    # the runs whose records were dropped were sent again in full: the blocked sink still holds exact runs
    last = {r["run_id"]: r for r in blocked.records if r["kind"] == "run"}
    assert {k: (v["status"], v["streamed_chunks"]) for k, v in last.items()} == {
        r.run_id: (r.status, r.streamed_chunks) for r in h.recorder.runs()
    }


def test_events_the_recorder_dropped_are_counted_as_lost():
    sink = ListSink()
    h = NotebookHandler(max_events=100, sinks=[sink])
    h._sink_writer.interval = 30.0  # type: ignore[union-attr]  # the reader waits: the log overflows first
    stream_tokens(h, 2000)
    assert h.flush()
    status = h.sink_status()[0]
    assert status["lost_events"] > 0
    assert status["written_events"] + status["lost_events"] == h.recorder.event_count
    seqs = [e["seq"] for e in sink.events()]
    assert seqs == sorted(set(seqs))
    assert seqs[-1] == h.recorder.event_count - 1
    assert len(seqs) == h.recorder.event_count - status["lost_events"]
    assert any("left the recorder's log" in e.error for e in h.recorder.handler_errors())


def test_a_sink_that_edits_records_does_not_change_the_others():
    class Editing:
        def write(self, batch):
            for record in batch:
                record.clear()

    good = ListSink()
    h = NotebookHandler(sinks=[Editing(), good])
    stream_tokens(h, 20)
    assert h.flush()
    assert [e["seq"] for e in good.events()] == list(range(h.recorder.event_count))
    assert all(e["session"] for e in good.events())


def test_a_slow_sink_does_not_slow_the_chain_or_the_others():
    class SlowSink(ListSink):
        def write(self, batch):
            time.sleep(0.05)
            super().write(batch)

    slow, fast = SlowSink(), ListSink()
    h = NotebookHandler(sinks=[slow, fast])
    stream_tokens(h, 3000)
    assert h.flush()
    for sink in (slow, fast):
        assert [e["seq"] for e in sink.events()] == list(range(h.recorder.event_count))


def test_close_flushes_and_closes_sinks():
    sink = ListSink()
    h = NotebookHandler(sinks=[sink])
    stream_tokens(h, 30)
    writer = h._sink_writer
    assert writer is not None
    assert writer.close(timeout=30)
    assert sink.closed
    assert len(sink.events()) == h.recorder.event_count
    with pytest.raises(RuntimeError, match="closed"):
        h.add_sink(ListSink())


# --- processes: exit, SIGKILL, concurrency


def run_python(code: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def test_interpreter_exit_flushes(tmp_path):
    path = tmp_path / "exit.jsonl"
    done = run_python(
        """
        import sys
        from langchain_core.language_models.fake_chat_models import FakeListChatModel
        from nbcallbacks import NotebookHandler, JSONLSink
        h = NotebookHandler(sinks=[JSONLSink(sys.argv[1])])
        for _ in FakeListChatModel(responses=["y" * 5000]).stream("go", config={"callbacks": [h]}):
            pass
        print(h.recorder.event_count)
        """,
        str(path),
    )
    assert done.returncode == 0, done.stderr
    expected = int(done.stdout.strip())
    events = [json.loads(line) for line in path.read_text().splitlines() if '"kind":"event"' in line]
    assert [e["seq"] for e in events] == list(range(expected))


def test_a_dropped_handler_and_interpreter_exit_still_write_everything(tmp_path):
    path = tmp_path / "dropped.db"
    done = run_python(
        """
        import gc, sys
        from langchain_core.language_models.fake_chat_models import FakeListChatModel
        from nbcallbacks import NotebookHandler, SQLiteSink

        def work():
            h = NotebookHandler(sinks=[SQLiteSink(sys.argv[1])])
            for _ in FakeListChatModel(responses=["q" * 20000]).stream("go", config={"callbacks": [h]}):
                pass
            return h.recorder.event_count

        count = work()
        gc.collect()
        print(count)
        """,
        str(path),
    )
    assert done.returncode == 0, done.stderr
    assert db_rows(path, "SELECT count(*) FROM events") == [(int(done.stdout),)]


def parses(line: bytes) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def test_sigkill_mid_stream_leaves_a_consistent_history(tmp_path):
    path = tmp_path / "killed.db"
    jsonl = tmp_path / "killed.jsonl"
    code = """
        import sys
        from nbcallbacks import JSONLSink, NotebookHandler, SQLiteSink
        from nbcallbacks.demo import DemoChatModel
        h = NotebookHandler(sinks=[SQLiteSink(sys.argv[1]), JSONLSink(sys.argv[2])])
        model = DemoChatModel(token_delay=0.002, jitter=0, responses=["word " * 100000])
        for _ in model.stream("go", config={"callbacks": [h]}):
            pass
        """
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), str(path), str(jsonl)], env=env)
    try:
        deadline = time.monotonic() + 120
        committed = 0
        while committed < 400:
            assert process.poll() is None, "the writer ended before it was killed"
            assert time.monotonic() < deadline, "no batches committed"
            time.sleep(0.1)
            if path.exists():
                try:
                    committed = db_rows(path, "SELECT count(*) FROM events")[0][0]
                except sqlite3.OperationalError:
                    committed = 0
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    assert process.returncode == -signal.SIGKILL
    assert db_rows(path, "PRAGMA integrity_check") == [("ok",)]
    seqs = [s for (s,) in db_rows(path, "SELECT seq FROM events ORDER BY seq")]
    assert len(seqs) >= 400
    assert seqs == list(range(len(seqs))), "every committed batch, no gap"
    runs = db_rows(path, "SELECT run_id, status, streamed_chunks FROM runs")
    assert len(runs) == 1
    assert runs[0][1] == "running"
    tokens = db_rows(path, "SELECT count(*) FROM events WHERE event = 'llm_new_token'")[0][0]
    assert runs[0][2] == tokens > 0  # the run record committed with the last batch counts its tokens
    loaded = NotebookHandler.load(path)
    assert loaded.recorder.event_count == len(seqs)
    assert loaded.recorder.runs()[0].status == "running"
    # the JSONL file: every line whole but perhaps the last one (cut by the kill), events without a gap
    lines = jsonl.read_bytes().split(b"\n")
    assert [parses(line) for line in lines[:-1]] == [True] * (len(lines) - 1), "only the last line may be torn"
    records = [json.loads(line) for line in lines[:-1]]
    events = [r for r in records if r["kind"] == "event"]
    assert [e["seq"] for e in events] == list(range(len(events)))
    assert len(events) > 0
    from_jsonl = NotebookHandler.load(jsonl)
    assert from_jsonl.recorder.event_count == len(events)
    run = from_jsonl.recorder.runs()[0]
    assert 0 < run.streamed_chunks <= sum(e["event"] == "llm_new_token" for e in events)


def test_concurrent_threads_and_async_lose_nothing(tmp_path):
    path = tmp_path / "concurrent.db"
    jsonl = tmp_path / "concurrent.jsonl"
    h = NotebookHandler(sinks=[SQLiteSink(path), JSONLSink(jsonl)])
    chain = RunnableLambda(lambda x: x + 1) | RunnableLambda(lambda x: x * 2)
    assert chain.batch(list(range(300)), config={"callbacks": [h], "max_concurrency": 8}) == [
        (x + 1) * 2 for x in range(300)
    ]

    async def streams() -> None:
        model = DemoChatModel(token_delay=0, responses=["one two three four five six seven eight"])

        async def one() -> None:
            async for _ in model.astream("go", config={"callbacks": [h]}):
                pass

        await asyncio.gather(*(one() for _ in range(50)))

    asyncio.run(streams())
    assert h.flush()
    session = h._sink_writer.session_id  # type: ignore[union-attr]
    assert db_rows(path, "SELECT count(*) FROM events WHERE session = ?", session) == [(h.recorder.event_count,)]
    assert db_rows(path, "SELECT count(*) FROM runs WHERE session = ?", session) == [(h.recorder.run_count,)]
    lines = [line for line in jsonl.read_text().splitlines() if '"kind":"event"' in line]
    assert len(lines) == h.recorder.event_count


def events_per_session(path: Path, kind: str) -> dict[str, int]:
    if kind == "sqlite":
        assert len(db_rows(path, "SELECT session FROM sessions")) == 4
        assert db_rows(path, "PRAGMA integrity_check") == [("ok",)]
        return dict(db_rows(path, "SELECT session, count(*) FROM events GROUP BY session"))
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]  # no torn line
    assert sum(r["kind"] == "session" for r in records) == 4
    return dict(Counter(r["session"] for r in records if r["kind"] == "event"))


@pytest.mark.parametrize("kind", ["sqlite", "jsonl"])
def test_two_handlers_and_two_processes_on_one_file(tmp_path, kind):
    path = tmp_path / f"shared.{kind}"
    sink_class = SQLiteSink if kind == "sqlite" else JSONLSink
    code = f"""
        import sys
        from langchain_core.runnables import RunnableLambda
        from langchain_core.language_models.fake_chat_models import FakeListChatModel
        from nbcallbacks import NotebookHandler, {sink_class.__name__}
        h = NotebookHandler(sinks=[{sink_class.__name__}(sys.argv[1])])
        chain = RunnableLambda(lambda x: x + 1) | RunnableLambda(lambda x: x * 2)
        for _ in range(20):
            chain.batch(list(range(20)), config={{"callbacks": [h], "max_concurrency": 4}})
            for _ in FakeListChatModel(responses=["z" * 200]).stream("go", config={{"callbacks": [h]}}):
                pass
            h.flush()
        assert h.flush()
        print(h._sink_writer.session_id, h.recorder.event_count)
        """
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code), str(path)], stdout=subprocess.PIPE, text=True, env=env
        )
        for _ in range(2)
    ]
    handlers = [NotebookHandler(sinks=[sink_class(path)]) for _ in range(2)]

    def work(h: NotebookHandler) -> None:
        for _ in range(10):
            stream_tokens(h, 300)
            h.flush()

    threads = [threading.Thread(target=work, args=(h,)) for h in handlers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    expected = {}
    for process in processes:
        out, _ = process.communicate(timeout=300)
        assert process.returncode == 0
        session, count = out.split()
        expected[session] = int(count)
    for h in handlers:
        assert h.flush()
        expected[h._sink_writer.session_id] = h.recorder.event_count  # type: ignore[union-attr]
    assert events_per_session(path, kind) == expected
    for session, count in expected.items():
        assert NotebookHandler.load(path, session=session).recorder.event_count == count


class SharingSink(ListSink):
    """A custom sink that promises to only read its records."""

    shares_records = True


def test_a_sink_gets_its_own_record_dictionaries_unless_it_promises_to_only_read_them(tmp_path):
    h = NotebookHandler()
    own, sharing, other_sharing = ListSink(), SharingSink(), SharingSink()
    written = JSONLSink(tmp_path / "trace.jsonl")  # the built-in sinks share too: it must still write them all
    for sink in (own, sharing, other_sharing, written):
        h.add_sink(sink)
    RunnableLambda(lambda x: x + 1).invoke(1, config={"callbacks": [h]})
    assert h.flush()
    assert own.records == sharing.records == other_sharing.records
    shared = [r for r in sharing.records if r["kind"] != "session"]  # each sink's session record is its own
    also_shared = [r for r in other_sharing.records if r["kind"] != "session"]
    assert len(shared) >= h.recorder.event_count + h.recorder.run_count
    assert all(a is b for a, b in zip(shared, also_shared, strict=True))
    assert not any(a is b for a, b in zip(own.records, sharing.records, strict=True))
    h.close()
    lines = (tmp_path / "trace.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["kind"] for line in lines] == [r["kind"] for r in own.records]
    assert [json.loads(line).get("seq") for line in lines] == [r.get("seq") for r in own.records]
