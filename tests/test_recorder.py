"""The recorder alone: stdlib-only, deltas, limits, out-of-order events, threads, subscribers."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import tracemalloc
import uuid
from typing import TYPE_CHECKING

import pytest
from trace_checks import with_tree

from nbcallbacks.events import Limits
from nbcallbacks.recorder import Recorder
from nbcallbacks.schema import event_record

if TYPE_CHECKING:
    from helpers import ManualClock


def test_recorder_imports_only_the_standard_library() -> None:
    code = (
        "import sys, nbcallbacks.recorder, nbcallbacks.events\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "{'langchain_core','langgraph','pandas','numpy','IPython','ipykernel','anywidget','traitlets','pydantic'}]\n"
        "print(','.join(bad))\n"
    )
    # Import the two modules without running the package __init__ (which pulls in the handler).
    loader = (
        "import importlib.util, sys, pathlib\n"
        "root = pathlib.Path('nbcallbacks')\n"
        "import types; pkg = types.ModuleType('nbcallbacks')\n"
        "pkg.__path__ = [str(root)]; sys.modules['nbcallbacks'] = pkg\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", loader + code], capture_output=True, text=True, check=True, cwd=_repo_root()
    )
    assert out.stdout.strip() == ""


def _repo_root() -> str:
    import pathlib

    return str(pathlib.Path(__file__).resolve().parent.parent)


def _ids(n: int) -> list[uuid.UUID]:
    return [uuid.uuid4() for _ in range(n)]


def test_delta_returns_only_what_changed() -> None:
    rec = Recorder()
    sub = rec.subscribe()
    root, model = _ids(2)
    rec.start_run(root, None, event="chain_start", name="root", run_type="chain")
    rec.start_run(model, root, event="chat_model_start", name="m", run_type="chat_model")
    first = sub.read()
    assert [r.name for r in first.runs] == ["root", "m"]
    assert len(first.events) == 2
    for piece in ["a", "b", "c"]:
        rec.token(model, root, piece, 0)
    rec.token(model, root, '{"x":', 1)
    second = sub.read()
    assert [r.name for r in second.runs] == ["m"], "only the touched run"
    assert second.tokens == {str(model): [["text", "abc"], ["tool_call", '{"x":']]}
    assert [e.event for e in second.events] == ["llm_new_token"] * 4
    assert sub.read().events == []
    assert sub.read().tokens == {}


def test_late_subscriber_from_start_sees_everything_and_from_now_sees_nothing_old() -> None:
    rec = Recorder()
    (run,) = _ids(1)
    rec.start_run(run, None, event="chat_model_start", name="m", run_type="chat_model")
    for piece in "hello":
        rec.token(run, None, piece, 0)
    late = rec.subscribe().read()
    assert late.tokens == {str(run): [["text", "hello"]]}
    assert rec.subscribe(from_start=False).read().events == []


def test_subscriber_is_woken_once_per_read_and_its_errors_are_counted() -> None:
    rec = Recorder()
    calls: list[int] = []
    sub = rec.subscribe(lambda: calls.append(1))
    (run,) = _ids(1)
    rec.start_run(run, None, event="chain_start", name="r", run_type="chain")
    rec.token(run, None, "x", 0)
    rec.token(run, None, "y", 0)
    assert calls == [1]
    sub.read()
    rec.token(run, None, "z", 0)
    assert calls == [1, 1]

    def broken() -> None:
        raise RuntimeError("subscriber failed")

    rec.subscribe(broken)
    rec.token(run, None, "w", 0)
    assert rec.handler_error_count == 1
    assert rec.handler_errors()[0].where == "subscriber"


def test_out_of_order_and_duplicated_events_never_break_and_lose_nothing() -> None:
    rec = Recorder()
    a, b, c, parent = _ids(4)
    rec.end_run(a, None, event="chain_end", run_type="chain", outputs={"x": 1})
    rec.token(b, parent, "tok", 0)
    rec.start_run(b, parent, event="chat_model_start", name="late start", run_type="chat_model")
    rec.start_run(c, None, event="chain_start", name="twice", run_type="chain")
    rec.start_run(c, None, event="chain_start", name="twice", run_type="chain")
    rec.end_run(c, None, event="chain_end", run_type="chain")
    rec.end_run(c, None, event="chain_end", run_type="chain")
    runs = {r.run_id: r for r in with_tree(rec.runs())}
    assert len(runs) == 3
    assert runs[str(a)].status == "ok"
    assert not runs[str(a)].started
    assert runs[str(b)].name == "late start"
    assert runs[str(b)].orphan
    assert rec.run_text(str(b)) == "tok"
    assert runs[str(c)].status == "ok"
    assert rec.running_count == 1, "only b is still running"
    assert rec.event_count == 7


def test_event_for_unknown_run_keeps_its_run_id() -> None:
    rec = Recorder()
    (run,) = _ids(1)
    rec.event(run, None, event="custom_event", data={"name": "n", "data": 1})
    (row,) = rec.events()
    assert row.run_id == str(run)
    assert row.event == "custom_event"


def test_token_limit_keeps_counts_exact_and_drops_only_text() -> None:
    rec = Recorder(Limits(max_tokens_per_run=10))
    (run,) = _ids(1)
    rec.start_run(run, None, event="chat_model_start", name="m", run_type="chat_model")
    for i in range(25):
        rec.token(run, None, str(i % 10), 0)
    rec.end_run(run, None, event="llm_end", run_type="chat_model", usage=(3, 25, 28))
    (record,) = rec.runs()
    assert record.streamed_chunks == 25
    assert record.chunks_not_kept == 15
    assert rec.run_text(str(run)) == "0123456789"
    assert record.output_tokens == 25


def test_event_limit_drops_oldest_and_reports_it_to_readers() -> None:
    rec = Recorder(Limits(max_events=100))
    sub = rec.subscribe()
    (run,) = _ids(1)
    rec.start_run(run, None, event="chat_model_start", name="m", run_type="chat_model")
    for _ in range(500):
        rec.token(run, None, "t", 0)
    rec.end_run(run, None, event="llm_end", run_type="chat_model")
    assert len(rec.events()) <= 100
    assert rec.event_count == 502
    assert rec.dropped_events == 502 - len(rec.events())
    delta = sub.read()
    assert delta.dropped_events == rec.dropped_events
    assert delta.tokens == {str(run): [["text", "t" * 500]]}, "streamed text survives the event limit"
    (record,) = rec.runs()
    assert record.status == "ok"
    assert record.streamed_chunks == 500


def test_concurrent_writers_record_every_event() -> None:
    rec = Recorder()
    parent = uuid.uuid4()
    rec.start_run(parent, None, event="chain_start", name="root", run_type="chain")

    def work() -> None:
        run = uuid.uuid4()
        rec.start_run(run, parent, event="chat_model_start", name="m", run_type="chat_model")
        for _ in range(500):
            rec.token(run, parent, "x", 0)
        rec.end_run(run, parent, event="llm_end", run_type="chat_model")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    runs = with_tree(rec.runs())
    assert len(runs) == 9
    assert all(r.streamed_chunks == 500 for r in runs[1:])
    assert rec.event_count == 1 + 8 * 502
    assert all(r.depth == 1 and r.parent_run_id == str(parent) for r in runs[1:])


def test_memory_per_token_event_is_small() -> None:
    rec = Recorder()
    (run,) = _ids(1)
    rec.start_run(run, None, event="chat_model_start", name="m", run_type="chat_model")
    tokens = [f" tok{i % 1000}" for i in range(50_000)]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for token in tokens:
        rec.token(run, None, token, 0)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    per_event = (after - before) / len(tokens)
    # The token strings already exist (the model made them); the recorder's own cost is what counts.
    assert per_event < 100, per_event


def test_handler_error_with_unprintable_exception_is_kept() -> None:
    class WeirdError(Exception):
        def __str__(self) -> str:
            raise ValueError("no str")

    rec = Recorder()
    rec.record_handler_error("test", WeirdError())
    assert rec.handler_error_count == 1
    assert rec.handler_errors()[0].error == "WeirdError"


def test_mark_abandoned_flags_running_runs_only() -> None:
    rec = Recorder()
    done, stuck = _ids(2)
    rec.start_run(done, None, event="chain_start", name="done", run_type="chain")
    rec.end_run(done, None, event="chain_end", run_type="chain")
    rec.start_run(stuck, None, event="chain_start", name="stuck", run_type="chain")
    assert rec.mark_abandoned() == 1
    runs = {r.name: r for r in rec.runs()}
    assert runs["stuck"].abandoned
    assert not runs["done"].abandoned
    assert rec.mark_abandoned() == 0


def test_a_token_before_any_start_is_the_origin_of_elapsed_time() -> None:
    from nbcallbacks.export import events_dataframe

    rec = Recorder()
    run, other = _ids(2)
    rec.token(run, None, "early", 0)
    rec.start_run(other, None, event="chain_start", name="later", run_type="chain")
    assert rec.first_time == rec.events()[0].time
    assert events_dataframe(rec)["elapsed_s"].tolist()[0] == 0.0
    assert (events_dataframe(rec)["elapsed_s"] >= 0).all()


def test_the_first_end_of_a_run_stands_and_a_late_one_is_still_logged() -> None:
    # As in LangChain's own tracer: a task cancelled while it returns reports an error after its run ended.
    rec = Recorder()
    (run,) = _ids(1)
    rec.start_run(run, None, event="chain_start", name="graph", run_type="chain")
    rec.end_run(run, None, event="chain_end", run_type="chain", outputs={"answer": 42})
    ended = rec.run(str(run))
    woken: list[int] = []
    sub = rec.subscribe(lambda: woken.append(1), from_start=False)
    assert sub.read().events == []  # arms it
    rec.error_run(
        run,
        None,
        event="chain_error",
        run_type="chain",
        error="CancelledError()",
        error_type="CancelledError",
        traceback=None,
    )
    after = rec.run(str(run))
    assert after is not None
    assert ended is not None
    assert (after.status, after.end, after.outputs, after.error) == ("ok", ended.end, {"answer": 42}, None)
    assert [row.event for row in rec.events()] == ["chain_start", "chain_end", "chain_error"]
    assert rec.running_count == 0
    assert woken == [1], "the late event wakes the consumers, as any logged event does"
    assert [row.event for row in sub.read().events] == ["chain_error"]


def test_records_read_from_the_log_equal_records_of_the_rows(clock: ManualClock) -> None:
    """``read(head=...)`` (what the sinks' writer and live updates read) gives, field for field, the records
    ``schema.event_record`` makes of the rows every other reader gets: kept and unkept tokens of two interleaved
    runs, events of two runs never seen, payloads and elapsed time, across two reads."""
    rec = Recorder(Limits(max_tokens_per_run=3), clock=clock)
    rows_sub = rec.subscribe(from_start=True)
    records_sub = rec.subscribe(from_start=True)
    head = {"kind": "event", "session": "s1"}
    a, b, never, other = _ids(4)
    clock.advance(1.5)
    rec.start_run(a, None, event="chat_model_start", name="a", run_type="chat_model", inputs={"q": 1}, data={"q": 1})
    rec.start_run(b, a, event="tool_start", name="b", run_type="tool")
    got_rows, got_records = [], []
    for step in range(2):
        for i in range(3):
            clock.advance(0.25)
            rec.token(a, None, f"a{step}{i}", 0)
            rec.token(b, a, f"b{step}{i}", 1)
        rec.event(never, a, event="custom_event", data={"name": "n", "data": step})
        rec.event(other, None, event="custom_event", data={"name": "m", "data": step})  # same packing, other ids
        got_rows += rows_sub.read().events
        delta = records_sub.read(head=head)
        assert delta.events == [], "records replace the rows"
        assert delta.tokens == {}, "the writer and live updates never read merged text"
        got_records += delta.records
    rec.end_run(a, None, event="llm_end", run_type="chat_model", usage=(1, 6, 7))
    got_rows += rows_sub.read().events
    got_records += records_sub.read(head=head).records
    origin = rec.first_time
    assert origin is not None
    expected = [event_record(row, origin, **head) for row in got_rows]
    assert len(expected) == 2 + 2 * 8 + 1
    assert [r["run_id"] for r in got_records if r["event"] == "custom_event"] == [str(never), str(other)] * 2
    assert got_records == expected
    assert [list(r) for r in got_records] == [list(r) for r in expected], "the keys in the same order"
    assert [r["token"] for r in got_records if r["run_id"] == str(a) and r["event"] == "llm_new_token"] == [
        "a00",
        "a01",
        "a02",
        None,
        None,
        None,
    ], "tokens past max_tokens_per_run are counted, not kept"
    assert got_records[0]["elapsed_s"] == 0.0
    assert list(got_records[0])[:2] == ["kind", "session"]


def test_interleaved_streams_of_several_threads_are_applied_in_arrival_order(clock: ManualClock) -> None:
    """A drain holding tokens of several runs and threads (a batch's streams) keeps every token's place, run,
    thread, time and kept text, and each run's counts, past its limit too."""
    rec = Recorder(Limits(max_tokens_per_run=3), clock=clock)
    a, b = _ids(2)
    rec.start_run(a, None, event="chat_model_start", name="a", run_type="chat_model")
    rec.start_run(b, None, event="chat_model_start", name="b", run_type="chat_model")
    sent: list[tuple[uuid.UUID, str, str]] = []

    def stream(run: uuid.UUID, label: str, count: int) -> None:
        for i in range(count):
            clock.advance(0.001)
            rec.token(run, None, f"{label}{i}", 0)
            sent.append((run, f"{label}{i}", threading.current_thread().name))

    stream(a, "a", 2)
    stream(b, "b", 2)
    worker = threading.Thread(target=stream, args=(a, "w", 3), name="worker")
    worker.start()
    worker.join()
    stream(b, "c", 3)
    rows = [row for row in rec.events() if row.event == "llm_new_token"]
    assert [(row.run_id, row.thread) for row in rows] == [(str(run), thread) for run, _, thread in sent]
    assert [row.time for row in rows] == sorted(row.time for row in rows)
    assert [row.token for row in rows] == ["a0", "a1", "b0", "b1", "w0", None, None, "c0", None, None]
    ra, rb = (rec.run(str(run)) for run in (a, b))
    assert ra is not None
    assert rb is not None
    assert (ra.streamed_chunks, ra.chunks_not_kept, rec.run_text(str(a))) == (5, 2, "a0a1w0")
    assert (rb.streamed_chunks, rb.chunks_not_kept, rec.run_text(str(b))) == (5, 2, "b0b1c0")
    assert ra.first_token == rows[0].time
    assert rb.first_token == rows[2].time


def test_the_clock_is_fixed_when_the_recorder_is_made(clock: ManualClock) -> None:
    """The token queue and its callback hold the clock given to the recorder: swapping it later is an error rather
    than events timed by two clocks."""
    rec = Recorder(clock=clock)
    assert rec.clock is clock
    with pytest.raises(AttributeError):
        rec.clock = time.time  # type: ignore[misc]
    run = uuid.uuid4()
    clock.set(1000.0)
    rec.start_run(run, None, event="llm_start", name="m", run_type="llm")
    rec.token(run, None, "a", 0)
    assert {row.time for row in rec.events()} == {1000.0}
