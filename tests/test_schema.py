"""The field table is the one definition of every field: records, DataFrames, SQLite, the front end's types and the
history readers all follow it, and files from older or newer versions load."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from nbcallbacks import JSONLSink, NotebookHandler, SQLiteSink
from nbcallbacks.demo import agent
from nbcallbacks.events import RunRecord
from nbcallbacks.schema import (
    RUN_COLUMNS,
    RUN_FIELDS,
    SCHEMA_VERSION,
    STORED_RUN_FIELDS,
    run_from_record,
    typescript,
)

ROOT = Path(__file__).resolve().parents[1]
QUESTION = {"messages": [("user", "What's the weather in Paris?")]}


def test_every_stored_field_is_an_attribute_of_the_run_record_and_nothing_else_is():
    attributes = {f.name for f in dataclasses.fields(RunRecord)} - {"token_texts", "token_kinds"}
    assert set(STORED_RUN_FIELDS) == attributes
    assert len({f.name for f in RUN_FIELDS}) == len(RUN_FIELDS), "one name per field"


def test_the_generated_front_end_types_are_current():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "generate_schema.py"), "--check"],
        check=False,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    generated = (ROOT / "js" / "src" / "generated" / "schema.ts").read_text(encoding="utf-8")
    assert generated == typescript()
    for field in RUN_FIELDS:
        assert f"  {field.name}: " in generated


def test_records_sqlite_columns_and_dataframe_agree(tmp_path):
    path = tmp_path / "runs.db"
    h = NotebookHandler(sinks=[SQLiteSink(path)])
    agent(token_delay=0).invoke(QUESTION, config={"callbacks": [h]})
    assert h.flush()
    frame = h.runs_dataframe()
    assert list(frame.columns) == list(RUN_COLUMNS)
    conn = sqlite3.connect(path)
    try:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(runs)")]
        (version,) = conn.execute("PRAGMA user_version").fetchone()
    finally:
        conn.close()
    assert columns == ["session", *RUN_COLUMNS]
    assert version == SCHEMA_VERSION


def test_a_record_round_trips_to_the_same_run():
    h = NotebookHandler()
    agent(token_delay=0).invoke(QUESTION, config={"callbacks": [h]})
    from nbcallbacks.schema import run_record
    from nbcallbacks.tree import Tree

    runs = h.recorder.runs()
    tree = Tree.of(runs)
    for run in runs:
        back = run_from_record(json.loads(json.dumps(run_record(run, tree.derived(run.run_id)))))
        assert {name: getattr(back, name) for name in STORED_RUN_FIELDS} == {
            name: getattr(run, name) for name in STORED_RUN_FIELDS
        }


def test_a_history_from_a_newer_version_loads_what_it_can_and_says_what_it_skipped(tmp_path):
    path = tmp_path / "events.jsonl"
    h = NotebookHandler(sinks=[JSONLSink(path)])
    agent(token_delay=0).invoke(QUESTION, config={"callbacks": [h]})
    assert h.flush()
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    session = next(r for r in lines if r["kind"] == "session")
    first_event = next(r for r in lines if r["kind"] == "event")
    for record in lines:
        if record["kind"] == "session":
            record["schema"] = SCHEMA_VERSION + 1
        if record["kind"] == "run":
            record["a_field_from_the_future"] = {"x": 1}
    future_event = {**first_event, "seq": 10_000, "event": "tool_progress", "data": {"pct": 50}}
    lines.append(future_event)
    path.write_text("\n".join(json.dumps(r, separators=(",", ":")) for r in lines) + "\n", encoding="utf-8")

    with pytest.warns(UserWarning, match=r"a_field_from_the_future.*1 events of kinds \['tool_progress'\]"):
        loaded = NotebookHandler.load(path, session=session["session"])
    assert len(loaded.runs_dataframe()) == len(h.runs_dataframe())
    assert loaded.recorder.event_count == h.recorder.event_count


def test_a_sqlite_history_written_by_schema_1_gains_the_new_columns_and_loads(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    old_columns = [c for c in RUN_COLUMNS if c not in {"display_status", "key", "provider", "first_token"}]
    old_columns = [c for c in old_columns if not c.startswith(("cache_", "reasoning_", "cost_"))]
    conn.execute(
        "CREATE TABLE runs (session TEXT NOT NULL, "
        + ", ".join(f'"{c}"' for c in old_columns)
        + ', "first_token", PRIMARY KEY (session, run_id))'
    )
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    h = NotebookHandler(sinks=[SQLiteSink(path)])
    agent(token_delay=0).invoke(QUESTION, config={"callbacks": [h]})
    assert h.flush()
    loaded = NotebookHandler.load(path)
    assert list(loaded.runs_dataframe()["name"]) == list(h.runs_dataframe()["name"])
    conn = sqlite3.connect(path)
    try:
        (version,) = conn.execute("PRAGMA user_version").fetchone()
    finally:
        conn.close()
    assert version == SCHEMA_VERSION


def test_the_deprecated_names_still_read_and_warn():
    run = RunRecord(run_id="r", parent_run_id=None, order=0, name="n", run_type="llm", start=0.0, streamed_chunks=4)
    with pytest.warns(DeprecationWarning, match="streamed_chunks"):
        assert run.token_count == 4
    with pytest.warns(DeprecationWarning, match="chunks_not_kept"):
        assert run.tokens_dropped == 0
