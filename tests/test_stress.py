"""One handler under load: threaded batches, hundreds of concurrent async streams and the live widget at once.

LangChain's own ``RunCollectorCallbackHandler`` rides along as the oracle: it keeps every run with its parent and
every streamed token (``run.events``), so each run, edge and chunk the handler recorded is checked against it. The
widget is created headless; its ``send`` is captured so the messages it would put on the wire can be replayed.
No assertion here depends on how long anything takes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import uuid
from typing import Any

from langchain_core.messages import AIMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.outputs import ChatGeneration, LLMResult
from langchain_core.runnables import RunnableLambda
from langchain_core.tracers.run_collector import RunCollectorCallbackHandler
from trace_checks import apply_delta, empty_state, flatten, with_tree

from nbcallbacks import NotebookHandler
from nbcallbacks.demo import DemoChatModel, agent

MANAGER_LOGGER = "langchain_core.callbacks.manager"
BATCH_ITEMS = 1_500
WORKERS = 16
ASYNC_STREAMS = 300


def question_chain() -> Any:
    """``prep | DemoChatModel | StrOutputParser``: four runs and one streamed answer per input."""
    prep = RunnableLambda(lambda i: f"Question number {i}?").with_config(run_name="prep")
    return prep | DemoChatModel(token_delay=0) | StrOutputParser()


def capture_sends(h: NotebookHandler) -> list[dict[str, Any]]:
    """Create the handler's widget and keep what it would send, as the wire carries it (JSON round trip)."""
    sent: list[dict[str, Any]] = []

    def send(content: dict[str, Any], buffers: Any = None) -> None:
        sent.append(json.loads(json.dumps(content, allow_nan=False)))

    widget = h.widget
    widget.send = send  # nothing is sent before the recorder has news, so no message is missed
    return sent


def replay(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """Apply delta messages as the front end's store does: each only on top of exactly its base."""
    state = empty_state()
    for message in messages:
        assert message["type"] == "delta"
        apply_delta(state, message)
    return state


def merged(pieces: list[list[str]]) -> list[list[str]]:
    out: list[list[str]] = []
    for kind, text in pieces:
        if out and out[-1][0] == kind:
            out[-1][1] += text
        else:
            out.append([kind, text])
    return out


def assert_same_runs_as_langchain(h: NotebookHandler, collector: RunCollectorCallbackHandler) -> dict[str, Any]:
    """Every run once, under the parent LangChain names; every streamed chunk counted and its text kept."""
    theirs = {str(run.id): run for run in flatten(collector.traced_runs)}
    runs = with_tree(h.recorder.runs())
    ours = {run.run_id: run for run in runs}
    assert len(ours) == len(runs), "no run recorded twice"
    assert set(ours) == set(theirs), "every run recorded, none invented"
    for run_id, mine in ours.items():
        other = theirs[run_id]
        assert mine.parent_run_id == (None if other.parent_run_id is None else str(other.parent_run_id))
        assert not mine.orphan
        assert mine.started
        assert mine.status == "ok", (mine.name, mine.error)
        if mine.parent_run_id is not None:
            assert mine.depth == ours[mine.parent_run_id].depth + 1
        else:
            assert mine.depth == 0
        streamed = [e["kwargs"] for e in other.events if e["name"] == "new_token"]
        assert mine.streamed_chunks == len(streamed), mine.name
        assert mine.chunks_not_kept == 0
        assert h.recorder.run_text(run_id) == "".join(e["token"] for e in streamed)
        assert h.recorder.run_text(run_id, kind="tool_call") == "".join(
            f"{call['name']} {call['args']}" if call.get("name") else call["args"]
            for e in streamed
            for call in e["chunk"].message.tool_call_chunks
        )
    assert h.recorder.running_count == 0
    assert h.recorder.handler_error_count == 0, h.recorder.handler_errors()
    return theirs


def assert_widget_matches_recorder(h: NotebookHandler, sent: list[dict[str, Any]]) -> None:
    """After a flush, both the replayed messages and the snapshot trait are exactly the recorder's trace."""
    h.widget.flush()
    recorder = h.recorder
    runs = recorder.runs()
    expected = {run.run_id: (run.status, run.streamed_chunks, run.parent_run_id) for run in runs}
    expected_text = {run.run_id: recorder.run_pieces(run.run_id) for run in runs if recorder.run_pieces(run.run_id)}

    state = replay(sent)
    assert state["cursor"] == recorder.event_count
    got = {rid: (w["status"], w["streamed_chunks"], w["parent_run_id"]) for rid, w in state["runs"].items()}
    assert got == expected
    assert {rid: merged(pieces) for rid, pieces in state["text"].items()} == expected_text

    snapshot = h.widget.snapshot
    assert snapshot["cursor"] == recorder.event_count
    assert snapshot["seq"] == state["seq"]
    assert [w["run_id"] for w in snapshot["runs"]] == [run.run_id for run in runs], "start order"
    got = {w["run_id"]: (w["status"], w["streamed_chunks"], w["parent_run_id"]) for w in snapshot["runs"]}
    assert got == expected
    assert snapshot["streams"] == expected_text
    assert snapshot["totals"]["tokens"] == sum(run.streamed_chunks for run in runs)
    assert snapshot["totals"]["running"] == 0
    assert snapshot["totals"]["handler_errors"] == 0
    json.dumps(snapshot, allow_nan=False)


async def test_threaded_batch_and_async_streams_at_once_through_one_handler(handler, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger=MANAGER_LOGGER)
    h = handler
    collector = RunCollectorCallbackHandler()
    sent = capture_sends(h)
    config: Any = {"callbacks": [h, collector]}
    chain = question_chain()
    batch_inputs = list(range(BATCH_ITEMS))
    stream_inputs = list(range(BATCH_ITEMS, BATCH_ITEMS + ASYNC_STREAMS))
    batch_threads: set[str] = set()

    def run_batch() -> list[str]:
        def mark(x: Any) -> Any:
            batch_threads.add(threading.current_thread().name)
            return x

        traced = RunnableLambda(mark).with_config(run_name="mark") | chain
        return traced.batch(batch_inputs, config={**config, "max_concurrency": WORKERS})

    async def consume(i: int) -> str:
        return "".join([chunk async for chunk in chain.astream(i, config=config)])

    batch_task = asyncio.to_thread(run_batch)
    batch_answers, *stream_answers = await asyncio.gather(batch_task, *(consume(i) for i in stream_inputs))

    assert len(batch_threads) > 1, "the batch ran on several worker threads"
    theirs = assert_same_runs_as_langchain(h, collector)
    runs = h.recorder.runs()
    roots = [run for run in runs if run.parent_run_id is None]
    assert len(roots) == BATCH_ITEMS + ASYNC_STREAMS
    assert len(runs) == BATCH_ITEMS * 5 + ASYNC_STREAMS * 4  # the batch adds one "mark" lambda per item
    children: dict[str, list[Any]] = {}
    for run in runs:
        if run.parent_run_id is not None:
            children.setdefault(run.parent_run_id, []).append(run)

    answers = dict(zip(batch_inputs, batch_answers, strict=True)) | dict(
        zip(stream_inputs, stream_answers, strict=True)
    )
    seen_inputs = set()
    for root in roots:
        kids = children[root.run_id]
        names = sorted(kid.name for kid in kids)
        expected = ["DemoChatModel", "StrOutputParser", "prep"]
        assert names == (sorted(["mark", *expected]) if root.inputs < BATCH_ITEMS else expected)
        model = next(kid for kid in kids if kid.run_type == "chat_model")
        assert model.streamed_chunks > 5
        answer = answers[root.inputs]
        assert f"Question number {root.inputs}?" in answer
        assert h.recorder.run_text(model.run_id) == answer, "the streamed text spells the answer"
        assert root.outputs == answer
        prep = next(kid for kid in kids if kid.name == "prep")
        assert prep.inputs == root.inputs, "a streamed chain's real input replaces LangChain's start placeholder"
        assert model.output_tokens == len(
            [e for e in theirs[model.run_id].events if e["name"] == "new_token" and e["kwargs"]["token"]]
        )
        seen_inputs.add(root.inputs)
    assert seen_inputs == set(answers)

    manager_records = [r for r in caplog.records if r.name == MANAGER_LOGGER and r.levelno >= logging.WARNING]
    assert manager_records == [], [r.getMessage() for r in manager_records]
    assert_widget_matches_recorder(h, sent)
    assert len(sent) < h.recorder.event_count / 20, "the widget coalesces events into few messages"


def test_one_handler_shared_by_two_cells_running_at_once(handler, caplog) -> None:
    """Two threads, each an agent invoke then a batch, like two notebook cells' worth of work at the same time."""
    caplog.set_level(logging.DEBUG, logger=MANAGER_LOGGER)
    h = handler
    sent = capture_sends(h)
    collectors = [RunCollectorCallbackHandler(), RunCollectorCallbackHandler()]
    questions = ["What's the weather in Paris and what is 12*7?", "What is the weather in Oslo, and 3+4?"]
    results: list[Any] = [None, None]
    failures: list[BaseException] = []
    barrier = threading.Barrier(2)

    def cell(index: int) -> None:
        try:
            config: Any = {"callbacks": [h, collectors[index]]}
            barrier.wait()
            graph = agent(DemoChatModel(token_delay=0, seed=index))
            final = graph.invoke({"messages": [("user", questions[index])]}, config)
            answers = question_chain().batch(list(range(index * 100, index * 100 + 60)), config=config)
            results[index] = (final, answers)
        except BaseException as exc:  # the assertion below reports it
            failures.append(exc)

    threads = [threading.Thread(target=cell, args=(i,), name=f"cell-{i}") for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []

    merged_collector = RunCollectorCallbackHandler()
    merged_collector.traced_runs = collectors[0].traced_runs + collectors[1].traced_runs
    assert_same_runs_as_langchain(h, merged_collector)
    runs = {run.run_id: run for run in h.recorder.runs()}
    for index, collector in enumerate(collectors):
        own = {str(run.id) for run in flatten(collector.traced_runs)}
        other = {str(run.id) for run in flatten(collectors[1 - index].traced_runs)}
        assert not own & other
        graph_roots = [run for run in collector.traced_runs if run.name == "LangGraph"]
        assert len(graph_roots) == 1, "each cell's agent is its own root"
        subtree = {str(run.id) for run in flatten(graph_roots)}
        for run_id in subtree - {str(graph_roots[0].id)}:
            ancestor = runs[run_id]
            while ancestor.parent_run_id is not None:
                ancestor = runs[ancestor.parent_run_id]
            assert ancestor.run_id == str(graph_roots[0].id), "nested under its own cell's agent"
        final, answers = results[index]
        last_model = [runs[rid] for rid in subtree if runs[rid].run_type == "chat_model"]
        assert len(last_model) >= 2
        texts = {h.recorder.run_text(run.run_id) for run in last_model}
        assert final["messages"][-1].content in texts
        assert len(answers) == 60
        batch_roots = [run for run in collector.traced_runs if run.name != "LangGraph"]
        assert len(batch_roots) == 60
        assert sorted(runs[str(run.id)].outputs for run in batch_roots) == sorted(answers)

    manager_records = [r for r in caplog.records if r.name == MANAGER_LOGGER and r.levelno >= logging.WARNING]
    assert manager_records == []
    assert_widget_matches_recorder(h, sent)


class ConcurrentWork:
    """Writers streaming through a handler's callbacks while consumers read deltas and build exports."""

    writers, runs_each, tokens_each = 8, 40, 60

    def __init__(self, h: NotebookHandler) -> None:
        self.h = h
        self.root = uuid.uuid4()
        self.shared = [uuid.uuid4() for _ in range(3)]
        """Model runs every writer streams into."""
        self.own: dict[int, list[uuid.UUID]] = {}
        self.read_seqs: list[list[int]] = [[], []]
        self.read_dropped = [0, 0]
        """Per consumer, events that left the bounded log before it read them."""
        self.failures: list[BaseException] = []
        self._stop = threading.Event()

    def calls(self) -> int:
        per_run = 3 + 2 * self.tokens_each  # start, tokens into it and into a shared run, custom event, end
        return 2 + 2 * len(self.shared) + self.writers * self.runs_each * per_run

    def run(self) -> None:
        h, root = self.h, self.root
        h.on_chain_start({}, {"q": "shared"}, run_id=root, name="root")
        for run_id in self.shared:
            h.on_chat_model_start({}, [[]], run_id=run_id, parent_run_id=root, name="shared model")
        helpers = [threading.Thread(target=self._guard, args=(self._read, slot)) for slot in range(2)]
        helpers.append(threading.Thread(target=self._guard, args=(self._export,)))
        writers = [threading.Thread(target=self._guard, args=(self._write, i)) for i in range(self.writers)]
        for thread in helpers + writers:
            thread.start()
        for thread in writers:
            thread.join()
        for run_id in reversed(self.shared):
            h.on_llm_end(LLMResult(generations=[]), run_id=run_id, parent_run_id=root)
        h.on_chain_end({"done": True}, run_id=root)
        self._stop.set()
        for thread in helpers:
            thread.join()

    def _guard(self, work: Any, *args: Any) -> None:
        try:
            work(*args)
        except BaseException as exc:  # reported by the test
            self.failures.append(exc)

    def _write(self, index: int) -> None:
        h, root = self.h, self.root
        ids = self.own[index] = []
        for n in range(self.runs_each):
            run_id = uuid.uuid4()
            ids.append(run_id)
            h.on_chat_model_start({}, [[]], run_id=run_id, parent_run_id=root, name=f"w{index}")
            for t in range(self.tokens_each):
                h.on_llm_new_token(f"<{index}.{n}.{t}>", run_id=run_id, parent_run_id=root)
                h.on_llm_new_token(f"[{index}.{t}]", run_id=self.shared[t % len(self.shared)], parent_run_id=root)
            h.on_custom_event("progress", {"n": n}, run_id=run_id)
            h.on_llm_end(LLMResult(generations=[[ChatGeneration(message=AIMessage("ok"))]]), run_id=run_id)

    def _read(self, slot: int) -> None:
        sub = self.h.recorder.subscribe()
        while not self._stop.is_set():
            self._take(slot, sub.read())
        self._take(slot, sub.read())
        sub.close()

    def _take(self, slot: int, delta: Any) -> None:
        self.read_seqs[slot].extend(row.seq for row in delta.events)
        self.read_dropped[slot] += delta.dropped_events

    def _export(self) -> None:
        while not self._stop.is_set():
            frame = self.h.runs_dataframe()
            assert list(frame["order"]) == list(range(len(frame)))
            self.h.to_dataframe()
            self.h.widget.flush()


def run_concurrently(h: NotebookHandler) -> tuple[ConcurrentWork, list[dict[str, Any]]]:
    """Run the concurrent work through ``h`` with its widget's messages captured: no thread failed, every call was
    counted as one event."""
    sent = capture_sends(h)
    work = ConcurrentWork(h)
    work.run()
    assert work.failures == []
    assert h.recorder.event_count == work.calls()
    return work, sent


def test_writers_readers_and_exports_at_once_keep_every_count_exact(handler) -> None:
    """Eight threads write through the handler's callbacks (own runs, plus shared runs they all stream into) while
    two consumers read deltas, DataFrames are built and the widget flushes, all at once."""
    h = handler
    work, sent = run_concurrently(h)
    recorder = h.recorder
    calls = work.calls()
    assert recorder.handler_error_count == 0, recorder.handler_errors()
    for seqs in work.read_seqs:
        assert seqs == list(range(calls)), "every event read once, in order, by each consumer"
    runs = {run.run_id: run for run in with_tree(recorder.runs())}
    assert len(runs) == 1 + len(work.shared) + work.writers * work.runs_each
    for index, ids in work.own.items():
        for n, run_id in enumerate(ids):
            run = runs[str(run_id)]
            assert (run.status, run.streamed_chunks, run.depth) == ("ok", work.tokens_each, 1)
            assert recorder.run_text(str(run_id)) == "".join(f"<{index}.{n}.{t}>" for t in range(work.tokens_each))
    for k, run_id in enumerate(work.shared):
        expected = sorted(
            f"[{i}.{t}]"
            for i in range(work.writers)
            for _ in range(work.runs_each)
            for t in range(work.tokens_each)
            if t % len(work.shared) == k
        )
        assert runs[str(run_id)].streamed_chunks == len(expected)
        assert sorted(recorder.run_text(str(run_id)).replace("][", "]\n[").split("\n")) == expected
    assert_widget_matches_recorder(h, sent)


def test_past_the_limits_concurrent_readers_get_every_event_or_its_drop_counted() -> None:
    """The same load with a small event log and few kept chunks per run: counts stay exact while text and events drop,
    and each consumer gets every event once or learns it was dropped."""
    kept_chunks = 25
    h = NotebookHandler(max_events=2_000, max_tokens_per_run=kept_chunks)
    try:
        work, sent = run_concurrently(h)
        recorder = h.recorder
        calls = work.calls()
        assert recorder.dropped_events > calls / 2
        assert recorder.handler_error_count == 0, recorder.handler_errors()
        for seqs, dropped in zip(work.read_seqs, work.read_dropped, strict=True):
            assert seqs == sorted(set(seqs)), "in order, none twice"
            assert len(seqs) + dropped == calls, "every event read or counted as dropped"
        runs = {run.run_id: run for run in recorder.runs()}
        for index, ids in work.own.items():
            for n, run_id in enumerate(ids):
                run = runs[str(run_id)]
                assert (run.status, run.streamed_chunks) == ("ok", work.tokens_each)
                assert run.chunks_not_kept == work.tokens_each - kept_chunks
                assert recorder.run_text(str(run_id)) == "".join(f"<{index}.{n}.{t}>" for t in range(kept_chunks))
        for run_id in work.shared:
            run = runs[str(run_id)]
            assert run.streamed_chunks == work.writers * work.runs_each * work.tokens_each // len(work.shared)
            assert run.chunks_not_kept == run.streamed_chunks - kept_chunks
            assert recorder.run_text(str(run_id)).count("][") == kept_chunks - 1
        assert_widget_matches_recorder(h, sent)
        assert h.widget.snapshot["totals"]["dropped_events"] == recorder.dropped_events
    finally:
        h.widget.close()
