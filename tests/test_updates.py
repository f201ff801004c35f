"""Live updates: every consumer gets its selection of the sinks' records once, in order, or is told what it missed.

Real langchain-core / langgraph objects and the demo agent throughout; the chain runs in a worker thread or on the
consumer's own event loop.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from helpers import wait_until, wait_until_async
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.runnables import RunnableLambda
from trace_checks import check_final_runs, last_run_records, subtree

from nbcallbacks import NotebookHandler
from nbcallbacks.demo import DemoChatModel, agent
from nbcallbacks.events import Limits
from nbcallbacks.updates import NEXT_ROOT, UpdateHub, Updates, UpdatesIterator, hub_for
from nbcallbacks.updates.channel import BatchIds, Channel

QUESTION = {"messages": [("user", "What's the weather in Paris, and what is 17 * 3?")]}


def events_of(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [record for record in records if record["kind"] == "event"]


def check_complete(h: NotebookHandler, records: list[dict[str, Any]], run_ids: set[str] | None = None) -> None:
    """The records hold every event of these runs once, in order, and each run's final state."""
    expected = [row for row in h.recorder.events() if run_ids is None or row.run_id in run_ids]
    got = events_of(records)
    assert [record["seq"] for record in got] == [row.seq for row in expected]
    assert [record["event"] for record in got] == [row.event for row in expected]
    assert [record["token"] for record in got] == [row.token for row in expected]
    check_final_runs(h, records, {run.run_id for run in h.recorder.runs() if run_ids is None or run.run_id in run_ids})
    assert not [record for record in records if record["kind"] == "dropped"]


MARKER = str(uuid.uuid4())


def read_to_marker(h: NotebookHandler, stream: UpdatesIterator) -> list[dict[str, Any]]:
    """What an unfiltered consumer got before a last, tiny marker run (records come in order)."""
    RunnableLambda(lambda x: x).invoke(1, config={"callbacks": [h], "run_id": MARKER})
    records = []
    for record in stream:
        if record["run_id"] == MARKER:
            if record["kind"] == "run" and record["status"] == "ok":
                return records
            continue
        records.append(record)
    raise AssertionError("the stream ended before the marker run")


def check_idle(h: NotebookHandler) -> None:
    """Without consumers the reader stops, and recording goes on without waking anything of it."""
    hub = hub_for(h)
    wait_until(lambda: not hub.active, "the reader to stop with its last consumer", timeout=60)
    FakeListChatModel(responses=["more"]).invoke("go", config={"callbacks": [h]})
    assert not hub.active
    assert [sub.armed for sub in h.recorder._subscriptions] == [False]  # called once at most, then never again


# --- the blocking iterator


def test_blocking_iterator_follows_a_run_in_a_worker_thread_to_its_end():
    h = NotebookHandler()
    run_id = uuid.uuid4()
    stream = h.iter_updates(run=run_id)
    assert isinstance(stream, UpdatesIterator)
    worker = threading.Thread(
        target=agent(token_delay=0.001).invoke,
        args=(QUESTION,),
        kwargs={"config": {"callbacks": [h], "run_id": run_id}},
    )
    worker.start()
    records = list(stream)  # ends by itself when the followed run ends
    worker.join()
    check_complete(h, records)
    root = h.recorder.runs()[0]
    assert root.run_id == str(run_id)
    assert stream.closed
    assert stream.run_id == str(run_id)
    text = "".join(record["token"] or "" for record in events_of(records) if record["run_type"] == "chat_model")
    assert text == "".join(h.recorder.run_text(run.run_id, None) for run in h.recorder.runs())
    check_idle(h)


def test_records_are_the_ones_sinks_receive():
    class ListSink:
        def __init__(self) -> None:
            self.records: list[dict[str, Any]] = []

        def write(self, batch: list[dict[str, Any]]) -> None:
            self.records.extend(batch)

    sink = ListSink()
    h = NotebookHandler(sinks=[sink])
    stream = h.iter_updates(kinds={"event", "run", "session"}, run=NEXT_ROOT)
    agent(token_delay=0).invoke(QUESTION, config={"callbacks": [h]})
    got = list(stream)
    assert h.flush()
    assert got[0] == {**sink.records[0], "first_time": None}  # the session record, before the first event
    assert events_of(got) == events_of(sink.records)
    assert last_run_records(got) == last_run_records(sink.records)
    assert {record["session"] for record in got} == {h._sink_writer.session_id}


def test_each_consumer_gets_its_own_dictionaries():
    h = NotebookHandler()
    first, second = h.iter_updates(run=NEXT_ROOT), h.iter_updates(run=NEXT_ROOT)
    agent(token_delay=0).invoke(QUESTION, config={"callbacks": [h]})
    a, b = list(first), list(second)
    assert a == b
    for record in a:
        record.clear()
    assert all(b)
    check_complete(h, b)


def test_kinds_select_record_kinds_and_event_names():
    h = NotebookHandler()
    run_id = str(uuid.uuid4())
    tokens = h.iter_updates(run=run_id, kinds="llm_new_token")
    tree = h.iter_updates(run=run_id, kinds={"run", "chain_start", "tool_end"})
    agent(token_delay=0).invoke(QUESTION, config={"callbacks": [h], "run_id": run_id})
    token_records = list(tokens)  # ends with the run although it gets no run records
    assert {record["event"] for record in token_records} == {"llm_new_token"}
    assert len(token_records) == sum(run.streamed_chunks for run in h.recorder.runs())
    tree_records = list(tree)
    assert Counter(record.get("event", record["kind"]) for record in tree_records).keys() == {
        "run",
        "chain_start",
        "tool_end",
    }
    assert set(last_run_records(tree_records)) == {run.run_id for run in h.recorder.runs()}
    with pytest.raises(ValueError, match="unknown kinds"):
        h.iter_updates(kinds={"token"})
    with pytest.raises(ValueError, match="max_backlog"):
        h.iter_updates(max_backlog=0)
    with pytest.raises(TypeError, match="run must be"):
        h.iter_updates(run=42)  # type: ignore[arg-type]


def test_concurrent_runs_each_consumer_gets_only_its_own_subtree():
    h = NotebookHandler()
    graph = agent(token_delay=0.001)
    ids = [uuid.uuid4() for _ in range(3)]
    streams = [h.iter_updates(run=run_id) for run_id in ids]
    unfiltered = h.iter_updates()
    workers = [
        threading.Thread(target=graph.invoke, args=(QUESTION,), kwargs={"config": {"callbacks": [h], "run_id": rid}})
        for rid in ids
    ]
    for worker in workers:
        worker.start()
    results = [list(stream) for stream in streams]
    for worker in workers:
        worker.join()
    for run_id, records in zip(ids, results, strict=True):
        check_complete(h, records, subtree(h, str(run_id)))
    total = sum(len(events_of(records)) for records in results)
    assert total == h.recorder.event_count
    everything = read_to_marker(h, unfiltered)
    check_complete(h, everything, {run.run_id for run in h.recorder.runs()} - {MARKER})


def test_next_root_follows_the_first_root_run_started_after_the_call():
    h = NotebookHandler()
    chain = agent(token_delay=0)
    chain.invoke(QUESTION, config={"callbacks": [h]})  # before: not followed
    stream = h.iter_updates(run=NEXT_ROOT)
    assert stream.run_id is None
    chain.invoke(QUESTION, config={"callbacks": [h]})
    chain.invoke(QUESTION, config={"callbacks": [h]})  # after the followed one ended: not followed either
    records = list(stream)
    second_root = [run for run in h.recorder.runs() if run.parent_run_id is None][1]
    assert stream.run_id == second_root.run_id
    check_complete(h, records, subtree(h, second_root.run_id))


def test_following_a_run_that_already_started_or_ended():
    h = NotebookHandler()
    half_way, go_on = threading.Event(), threading.Event()

    def pause(message: Any) -> str:
        half_way.set()
        assert go_on.wait(60)
        return str(message.content)

    chain = FakeListChatModel(responses=["first answer"]) | RunnableLambda(pause) | RunnableLambda(str.upper)
    worker = threading.Thread(target=chain.invoke, args=("hi",), kwargs={"config": {"callbacks": [h]}})
    worker.start()
    assert half_way.wait(60)
    root = h.recorder.runs()[0]
    stream = h.iter_updates(run=root.run_id)
    first = next(stream)  # the subtree's current state comes first
    go_on.set()
    records = [first, *stream]
    worker.join()
    seeded = [record for record in records if record["kind"] == "run"][:3]
    assert [record["status"] for record in seeded] == ["running", "ok", "running"]
    assert [record["run_id"] for record in seeded] == [run.run_id for run in h.recorder.runs()[:3]]
    assert last_run_records(records)[root.run_id]["status"] == "ok"
    assert [record["event"] for record in events_of(records)] == ["chain_end", "chain_start", "chain_end", "chain_end"]
    assert set(last_run_records(records)) == {run.run_id for run in h.recorder.runs()}
    # an ended run: its current state, then the end of the iteration
    again = list(h.iter_updates(run=root.run_id, kinds="run"))
    assert last_run_records(again) == last_run_records(records)


def test_close_ends_a_waiting_iteration_and_frees_the_consumer():
    h = NotebookHandler()
    stream = h.iter_updates(run=uuid.uuid4())  # a run that never starts
    hub = hub_for(h)
    assert hub.consumers == 1
    assert hub.active
    got: list[Any] = []
    reader = threading.Thread(target=lambda: got.extend(stream))
    reader.start()
    wait_until(lambda: stream._channel.cond._waiters, "the reader to wait", timeout=60)  # type: ignore[attr-defined]
    stream.close()
    reader.join(60)
    assert not reader.is_alive()
    assert got == []
    assert hub.consumers == 0
    check_idle(h)


def test_break_frees_the_consumer():
    h = NotebookHandler()
    go = threading.Event()
    chain = RunnableLambda(lambda question: go.wait(60) and question) | agent(token_delay=0.002)
    worker = threading.Thread(target=chain.invoke, args=(QUESTION,), kwargs={"config": {"callbacks": [h]}})
    worker.start()

    def opened(stream: UpdatesIterator) -> UpdatesIterator:
        go.set()  # the chain goes on once the consumer exists
        return stream

    for record in opened(h.iter_updates()):
        if record["kind"] == "event" and record["event"] == "llm_new_token":
            break
    else:
        pytest.fail("the stream ended without a token: nothing was broken out of")
    hub = hub_for(h)
    wait_until(lambda: hub.consumers == 0 and not hub.active, "the dropped stream to be forgotten", timeout=60)
    worker.join()


def test_a_stalled_consumer_is_told_what_it_missed_and_slows_nobody():
    h = NotebookHandler()
    go_on = threading.Event()

    def between(message: Any) -> str:
        assert go_on.wait(60)
        return "next"

    chain = (
        DemoChatModel(responses=["a " * 100], token_delay=0)
        | RunnableLambda(between)
        | DemoChatModel(responses=["b " * 1000], token_delay=0)
    )
    stalled = h.iter_updates(max_backlog=1)
    fast = h.iter_updates(run=NEXT_ROOT)
    worker = threading.Thread(target=chain.invoke, args=("go",), kwargs={"config": {"callbacks": [h]}})
    worker.start()
    fast_records: list[dict[str, Any]] = []
    for record in fast:
        fast_records.append(record)
        if record["kind"] == "event" and record["event"] == "llm_end":
            go_on.set()  # the first stream was delivered: from here on the stalled consumer's queue is full
    worker.join()
    # the chain and the fast consumer went to the end while the stalled one read nothing
    check_complete(h, fast_records)
    assert stalled.queued >= 1
    assert stalled.dropped > 0
    records = []
    for record in stalled:
        records.append(record)
        if record["kind"] == "dropped":
            break
    markers = [record for record in records if record["kind"] == "dropped"]
    assert len(markers) == 1
    marker = markers[0]
    assert marker["events"] == stalled.dropped == marker["total_events"]
    assert marker["lost_events"] == 0
    assert len(events_of(records)) + marker["events"] == h.recorder.event_count
    # after the marker: the current state of the runs the dropped records touched; every run ends exact
    states = [next(stalled) for _ in range(marker["runs"])]
    assert {record["kind"] for record in states} <= {"run"}
    final = last_run_records([*records, *states])
    assert {run_id: record["status"] for run_id, record in final.items()} == {
        run.run_id: run.status for run in h.recorder.runs()
    }
    assert {run_id: record["streamed_chunks"] for run_id, record in final.items()} == {
        run.run_id: run.streamed_chunks for run in h.recorder.runs()
    }
    # and it goes on receiving live records once it caught up
    DemoChatModel(responses=["c"], token_delay=0).invoke("again", config={"callbacks": [h]})
    after = next(stalled)
    assert (after["kind"], after["event"]) == ("event", "chat_model_start")
    stalled.close()


def test_events_that_left_the_log_unread_are_reported():
    h = NotebookHandler(Limits(max_events=100))
    stream = h.iter_updates()
    hub = hub_for(h)
    with hub._lock:  # the reader is held back (as a descheduled thread would be) while the log rolls over
        DemoChatModel(responses=["z " * 300], token_delay=0).invoke("go", config={"callbacks": [h]})
    marker = next(stream)
    assert marker["kind"] == "dropped"
    assert marker["lost_events"] == h.recorder.dropped_events > 0
    assert (marker["events"], marker["runs"]) == (0, 0)
    records = read_to_marker(h, stream)
    assert len(events_of(records)) + marker["lost_events"] == h.recorder.event_count - 2
    assert last_run_records(records)[h.recorder.runs()[0].run_id]["status"] == "ok"
    stream.close()


def test_no_consumer_no_subscription():
    h = NotebookHandler()
    FakeListChatModel(responses=["abc"]).invoke("go", config={"callbacks": [h]})
    assert h.recorder._subscriptions == []
    hub = UpdateHub(h.recorder)
    assert not hub.active
    assert hub.consumers == 0


# --- the async iterator


async def test_async_consumer_with_the_chain_on_the_same_loop():
    h = NotebookHandler()
    run_id = uuid.uuid4()

    async def drive() -> list[Any]:
        return [
            chunk async for chunk in agent(token_delay=0.001).astream(QUESTION, {"callbacks": [h], "run_id": run_id})
        ]

    records = []
    async with h.updates(run=run_id) as stream:
        assert isinstance(stream, Updates)
        chunks = asyncio.create_task(drive())
        # the chain runs on this very loop: the stream ends only if its waits left the loop free to run it
        records.extend([record async for record in stream])
        assert await chunks
    check_complete(h, records)
    models = {run.thread for run in h.recorder.runs() if run.run_type == "chat_model"}
    assert models == {threading.current_thread().name}  # the tokens were recorded on this loop's thread


async def test_async_consumer_with_the_chain_in_a_worker_thread():
    h = NotebookHandler()
    run_id = uuid.uuid4()
    stream = h.updates(run=run_id, kinds={"llm_new_token", "run"})
    job = asyncio.create_task(
        asyncio.to_thread(agent(token_delay=0.001).invoke, QUESTION, {"callbacks": [h], "run_id": run_id})
    )
    records = [record async for record in stream]
    await job
    assert stream.closed
    tokens = [record for record in records if record["kind"] == "event"]
    assert [record["seq"] for record in tokens] == [row.seq for row in h.recorder.events() if row.token is not None]
    assert {record["status"] for record in last_run_records(records).values()} == {"ok"}
    assert threading.current_thread().name not in {run.thread for run in h.recorder.runs()}


async def test_aclose_from_another_task_ends_a_waiting_iteration():
    h = NotebookHandler()
    stream = h.updates(run=uuid.uuid4())

    async def consume() -> list[Any]:
        return [record async for record in stream]

    task = asyncio.create_task(consume())
    await wait_until_async(lambda: stream._channel.waiter is not None, "the iteration to wait", timeout=60)
    await stream.aclose()
    assert await task == []
    hub = hub_for(h)
    await wait_until_async(lambda: not hub.active, "the reader to stop", timeout=60)
    assert hub.consumers == 0


async def test_cancelled_consumer_is_freed_by_its_async_with():
    h = NotebookHandler()

    async def consume() -> None:
        async with h.updates() as stream:
            async for _ in stream:
                pass

    task = asyncio.create_task(consume())
    hub = hub_for(h)
    await wait_until_async(lambda: hub.consumers == 1, "the consumer to register", timeout=60)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert hub.consumers == 0
    await wait_until_async(lambda: not hub.active, "the reader to stop", timeout=60)


# --- the drop bookkeeping of one consumer, under any interleaving of offers and reads


@settings(max_examples=300, deadline=None)
@given(
    max_backlog=st.integers(1, 12),
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("offer"), st.integers(0, 8), st.sets(st.sampled_from("abcd"), max_size=3)),
            st.tuples(st.just("lost"), st.integers(1, 5), st.just(frozenset())),
            st.tuples(st.just("take"), st.just(0), st.just(frozenset())),
        ),
        max_size=40,
    ),
)
def test_a_consumer_gets_every_event_once_or_is_told_and_ends_with_every_runs_state(max_backlog, steps):
    channel = Channel(UpdateHub(NotebookHandler().recorder), None, None, max_backlog)  # fed here, not by a reader
    seq = 0
    version: dict[str, int] = {}
    offered_events = lost = 0
    received: list[dict[str, Any]] = []
    largest = 0
    for op, count, runs in steps:
        if op == "offer":
            batch: list[dict[str, Any]] = []
            for _ in range(count):
                batch.append({"kind": "event", "seq": seq, "run_id": "a", "parent_run_id": None, "event": "text"})
                seq += 1
            for run_id in sorted(runs):
                version[run_id] = version.get(run_id, 0) + 1
                batch.append({"kind": "run", "run_id": run_id, "parent_run_id": None, "v": version[run_id]})
            offered_events += count
            largest = max(largest, len(batch))
            channel.offer(batch)
        elif op == "lost":
            seq += count  # left the log unread
            lost += count
            channel.offer([], lost=count)
        else:
            with channel.cond:
                records, done = channel.take()
            assert not done
            received.extend(records)
        assert channel.queued <= max(max_backlog, largest) + 1  # + a marker for events lost unread
    while True:
        with channel.cond:
            records, _ = channel.take()
        if not records:
            break
        received.extend(records)
    markers = [record for record in received if record["kind"] == "dropped"]
    events = [record["seq"] for record in received if record["kind"] == "event"]
    assert events == sorted(set(events))
    assert len(events) + sum(marker["events"] for marker in markers) == offered_events
    assert sum(marker["lost_events"] for marker in markers) == lost
    assert (markers[-1]["total_events"] if markers else 0) == offered_events - len(events) + lost
    last = {record["run_id"]: record["v"] for record in received if record["kind"] == "run"}
    assert last == version  # every run's latest state arrived, after anything older
    channel.close()


def test_a_consumer_whose_event_loop_closed_harms_nobody():
    h = NotebookHandler()
    orphan = h.updates()
    loop = asyncio.new_event_loop()
    waiting = loop.create_task(orphan.__anext__())
    loop.run_until_complete(asyncio.sleep(0))  # it now awaits its future on that loop...
    assert orphan._channel.waiter is not None
    loop.close()  # ...which closes without finishing it (a notebook's loop gone, say)
    other = h.iter_updates(run=NEXT_ROOT)
    agent(token_delay=0).invoke(QUESTION, config={"callbacks": [h]})
    check_complete(h, list(other))  # waking the orphan failed quietly; nobody else noticed
    assert h.recorder.handler_error_count == 0
    assert not waiting.done()
    orphan.close()
    waiting._log_destroy_pending = False  # it can never finish: its loop is gone (that is the point)


def test_the_module_imports_only_the_standard_library():
    code = (
        "import importlib.util, sys, pathlib, types\n"
        "pkg = types.ModuleType('nbcallbacks'); pkg.__path__ = [str(pathlib.Path('nbcallbacks'))]\n"
        "sys.modules['nbcallbacks'] = pkg  # without the package __init__, which pulls in the handler\n"
        "import nbcallbacks.updates\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "{'langchain_core','langgraph','pandas','numpy','IPython','ipykernel','anywidget','traitlets','pydantic'}]\n"
        "print(','.join(bad))\n"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert out.stdout.strip() == ""


def test_next_and_a_for_loop_may_be_mixed_and_each_record_comes_once_and_is_the_consumers_own() -> None:
    """``for`` over an iterator runs a generator over the batches taken; ``next`` reads the same place. Two
    consumers get equal records, each its own dictionaries."""
    h = NotebookHandler()
    run_id = uuid.uuid4()
    model = FakeListChatModel(responses=["abcdefgh"])
    with h.iter_updates(run=run_id) as stream, h.iter_updates(run=run_id) as other:
        worker = threading.Thread(target=lambda: list(model.stream("go", config={"callbacks": [h], "run_id": run_id})))
        worker.start()
        first = next(stream)
        records = [first]
        for record in stream:
            records.append(record)
            if len(records) == 3:
                records.append(next(stream))  # a next() inside the loop: the loop goes on after it
        worker.join()
        theirs = list(other)
    check_complete(h, records)
    assert len(events_of(records)) == 2 + len("abcdefgh"), "a start, a token per character, an end"
    assert theirs == records
    assert all(mine is not its for mine, its in zip(records, theirs, strict=True))
    first["seq"] = -1
    assert theirs[0]["seq"] == 0, "changing one consumer's record changes no other's"
    assert stream.closed


RUN_IDS = ["r0", "r1", "r2", "r3", "r4"]
EVENT_KINDS = ["chain_start", "llm_new_token", "chain_end", "tool_start"]


@settings(max_examples=300, deadline=None)
@given(
    target=st.sampled_from([*RUN_IDS, NEXT_ROOT]),
    batches=st.lists(
        st.lists(
            st.tuples(
                st.sampled_from(["event", "run"]),
                st.sampled_from(RUN_IDS),
                st.one_of(st.none(), st.sampled_from(RUN_IDS)),
                st.sampled_from(EVENT_KINDS),
            ),
            max_size=12,
        ),
        max_size=6,
    ),
)
def test_skipping_batches_that_cannot_touch_a_followed_run_selects_exactly_what_looking_at_each_record_does(
    target: str, batches: list[list[tuple[str, str, str | None, str]]]
) -> None:
    """``BatchIds`` lets a consumer that follows a run skip a batch whole; two twin channels, one given the
    batch's ids and one looking at every record, select the same records batch after batch."""
    hub = UpdateHub(NotebookHandler().recorder)
    skipping, looking = (Channel(hub, None, target, 100) for _ in range(2))
    for batch in batches:
        records = [
            {"kind": kind, "run_id": run_id, "parent_run_id": parent, "event": event, "status": "ok"}
            if kind == "event"
            else {"kind": kind, "run_id": run_id, "parent_run_id": parent, "status": "ok"}
            for kind, run_id, parent, event in batch
        ]
        assert skipping.select(records, BatchIds(records)) == looking.select(records)
        assert (skipping.target, skipping.members) == (looking.target, looking.members)


def test_close_inside_a_for_loop_ends_it_with_the_rest_of_the_batch_dropped() -> None:
    """A ``for`` loop that closes its stream mid-batch gets nothing more, though the batch taken had more."""
    h = NotebookHandler()
    model = FakeListChatModel(responses=["abcdefgh"])
    with h.iter_updates(kinds="event") as stream:
        list(model.stream("go", config={"callbacks": [h]}))
        wait_until(lambda: stream.queued == 2 + len("abcdefgh"), "the stream's events to be queued")
        got = []
        for record in stream:
            got.append(record)
            if len(got) == 2:
                stream.close()
    assert [record["event"] for record in got] == ["chat_model_start", "llm_new_token"]
    assert stream.closed
    assert list(stream) == []
    check_idle(h)
