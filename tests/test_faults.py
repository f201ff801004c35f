"""Faults around a running chain: the widget closed or its comm gone mid-stream, the front end reloaded mid-stream,
a consumer that raises, and nbcallbacks' own code failing. In every case the user's chain completes with its normal
result, nothing is raised into it, and what could be recorded is recorded exactly.

The widget runs headless; everything it puts on the wire is captured at its comm (custom messages and trait
updates alike) and encoded as jupyter_client encodes it. A stream is paused at a chosen chunk (the consumer waits
on an event) so that "mid-stream" is a certainty, not a race.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from typing import Any

import pytest
from helpers import DEADLINE_S, wait_until, wait_until_async, wire_bytes
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import RunnableGenerator, RunnableLambda
from langchain_core.tracers.run_collector import RunCollectorCallbackHandler
from trace_checks import apply_delta, empty_state, flatten, state_from_snapshot

import nbcallbacks.handler
from nbcallbacks import NotebookHandler
from nbcallbacks.demo import DemoChatModel, tokenize
from nbcallbacks.events import TOKEN_KINDS

ANSWER = " ".join(f"word{i}" for i in range(1_500))
CHUNKS = len(tokenize(ANSWER)) + 1  # and the closing chunk that carries the usage
PAUSE_AT = 300
MANAGER_LOGGER = "langchain_core.callbacks.manager"


def long_chain(prep_metadata: dict[str, Any] | None = None) -> Any:
    prep = RunnableLambda(lambda q: f"Please answer: {q}").with_config(run_name="prep", metadata=prep_metadata or {})
    return prep | DemoChatModel(token_delay=0, responses=[ANSWER]) | StrOutputParser()


class Wire:
    """Everything a widget's comm publishes, as the bytes jupyter_client would put on the wire."""

    def __init__(self, widget: Any) -> None:
        self.raw: list[bytes] = []
        self.failing = False
        self.failures = 0
        self._lock = threading.Lock()
        widget.comm.publish_msg = self.publish

    def publish(self, msg_type: str, data: Any = None, metadata: Any = None, buffers: Any = None, **_: Any) -> None:
        if self.failing:
            self.failures += 1
            raise ConnectionError("the comm is gone")
        encoded = wire_bytes(data)
        with self._lock:
            self.raw.append(encoded)

    def messages(self) -> list[dict[str, Any]]:
        """The custom messages (deltas and snapshots), in order."""
        with self._lock:
            decoded = [json.loads(raw) for raw in self.raw]
        return [m["content"] for m in decoded if m.get("method") == "custom"]

    def deltas(self) -> list[dict[str, Any]]:
        return [m for m in self.messages() if m["type"] == "delta"]


class PausedStream:
    """``chain.stream`` consumed in a thread that stops after ``pause_at`` chunks until ``resume()``."""

    def __init__(self, chain: Any, config: Any, pause_at: int = PAUSE_AT) -> None:
        self.chunks: list[str] = []
        self.error: BaseException | None = None
        self.reached = threading.Event()
        self._resume = threading.Event()
        self._pause_at = pause_at
        self._thread = threading.Thread(target=self._consume, args=(chain, config), name="user-stream")
        self._thread.start()
        if not self.reached.wait(DEADLINE_S):
            pytest.fail("the stream never reached its pause point")

    def _consume(self, chain: Any, config: Any) -> None:
        try:
            for chunk in chain.stream("what?", config=config):
                self.chunks.append(chunk)
                if len(self.chunks) == self._pause_at:
                    self.reached.set()
                    self._resume.wait(DEADLINE_S)
        except BaseException as exc:  # reported by finish()
            self.error = exc
        finally:
            self.reached.set()

    def resume(self) -> None:
        self._resume.set()

    def finish(self) -> str:
        self.resume()
        self._thread.join(DEADLINE_S)
        assert not self._thread.is_alive()
        assert self.error is None, self.error
        return "".join(self.chunks)


def replay(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """Apply messages as the front end's store does: a snapshot replaces the state, a delta applies on its base."""
    state = empty_state()
    for message in messages:
        if message["type"] == "snapshot":
            state = state_from_snapshot(message)
            continue
        if message["seq"] <= state["seq"]:
            continue  # already in the snapshot
        apply_delta(state, message)
    return state


def text_of(pieces: list[list[str]], kind: str | None = None) -> str:
    return "".join(text for k, text in pieces if kind is None or k == kind)


def assert_state_is_the_recorder(state: dict[str, Any], h: NotebookHandler) -> None:
    recorder = h.recorder
    assert state["cursor"] == recorder.event_count
    runs = recorder.runs()
    assert {rid: (w["status"], w["streamed_chunks"]) for rid, w in state["runs"].items()} == {
        run.run_id: (run.status, run.streamed_chunks) for run in runs
    }
    for run in runs:
        for kind in TOKEN_KINDS:
            assert text_of(state["text"].get(run.run_id, []), kind) == recorder.run_text(run.run_id, kind)


def assert_everything_recorded(h: NotebookHandler, collector: RunCollectorCallbackHandler, answer: str) -> None:
    """Every run LangChain traced is in the recorder and in both DataFrames, with every streamed chunk."""
    theirs = {str(run.id): run for run in flatten(collector.traced_runs)}
    runs = h.recorder.runs()
    assert {run.run_id for run in runs} == set(theirs)
    for run in runs:
        other = theirs[run.run_id]
        assert run.parent_run_id == (None if other.parent_run_id is None else str(other.parent_run_id))
        assert run.status == "ok"
        assert run.streamed_chunks == sum(1 for e in other.events if e["name"] == "new_token")
    model = next(run for run in runs if run.run_type == "chat_model")
    assert model.streamed_chunks == CHUNKS
    assert h.recorder.run_text(model.run_id) == answer

    frame = h.runs_dataframe()
    assert list(frame["run_id"]) == [run.run_id for run in runs]
    assert list(frame["streamed_chunks"]) == [run.streamed_chunks for run in runs]
    assert set(frame["status"]) == {"ok"}
    events = h.to_dataframe()
    assert len(events) == h.recorder.event_count
    tokens = events[(events["event"] == "llm_new_token") & (events["run_id"] == model.run_id)]
    assert len(tokens) == CHUNKS
    assert "".join(tokens["token"]) == answer


def stream_paused_mid_way(h: NotebookHandler) -> tuple[Any, Wire, RunCollectorCallbackHandler, PausedStream]:
    """The handler's widget with its wire captured, and the long chain streaming through ``h`` and a RunCollector,
    paused after ``PAUSE_AT`` chunks, once the widget has sent its first tokens."""
    widget = h.widget
    wire = Wire(widget)
    collector = RunCollectorCallbackHandler()
    stream = PausedStream(long_chain(), {"callbacks": [h, collector]})
    wait_until(wire.deltas, "the widget to send the first tokens")
    return widget, wire, collector, stream


def test_closing_the_widget_mid_stream_leaves_the_chain_and_the_record_whole(handler, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger=MANAGER_LOGGER)
    h = handler
    widget, wire, collector, stream = stream_paused_mid_way(h)
    stream.resume()
    widget.close()  # while the stream goes on in its thread
    sent_at_close = len(wire.raw)
    answer = stream.finish()

    assert answer == ANSWER
    assert h.recorder.handler_error_count == 0, h.recorder.handler_errors()
    assert h.recorder._subscriptions == [], "a closed widget no longer listens"
    widget.flush()
    widget._handle_custom_msg({"type": "resync"}, [])
    assert len(wire.raw) == sent_at_close, "nothing is sent after close"
    assert_everything_recorded(h, collector, answer)
    assert [r for r in caplog.records if r.name == MANAGER_LOGGER and r.levelno >= logging.WARNING] == []

    reopened = h.widget  # displaying the handler again gives a live widget with the whole trace
    assert reopened is not widget
    assert reopened.comm is not None
    assert reopened._repr_mimebundle_() is not None
    reopened.flush()
    assert reopened.snapshot["cursor"] == h.recorder.event_count
    model = next(run for run in reopened.snapshot["runs"] if run["run_type"] == "chat_model")
    assert text_of(reopened.snapshot["streams"][model["run_id"]]) == ANSWER


def test_a_comm_that_fails_mid_stream_costs_messages_not_the_chain(handler, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger=MANAGER_LOGGER)
    h = handler
    widget, wire, collector, stream = stream_paused_mid_way(h)
    wire.failing = True
    stream.resume()
    answer = stream.finish()
    widget.flush()

    assert answer == ANSWER
    assert wire.failures > 0
    errors = h.recorder.handler_errors()
    assert h.recorder.handler_error_count >= 1
    assert {error.where for error in errors} == {"widget"}
    assert all("the comm is gone" in error.error for error in errors)
    assert_everything_recorded(h, collector, answer)
    assert [r for r in caplog.records if r.name == MANAGER_LOGGER and r.levelno >= logging.WARNING] == []

    # The comm comes back; the front end saw a gap in the deltas and asks for the whole trace.
    wire.failing = False
    widget._handle_custom_msg({"type": "resync"}, [])
    widget.flush()
    messages = wire.messages()
    snapshot_at = max(i for i, m in enumerate(messages) if m["type"] == "snapshot")
    assert_state_is_the_recorder(replay(messages[snapshot_at:]), h)
    assert widget.snapshot["totals"]["handler_errors"] == h.recorder.handler_error_count


def test_a_front_end_reloaded_mid_stream_gets_a_snapshot_that_later_deltas_complete(handler) -> None:
    h = handler
    widget, wire, collector, stream = stream_paused_mid_way(h)
    stream.resume()
    # The reloaded page says hello from the kernel's shell thread while tokens keep arriving.
    widget._handle_custom_msg({"type": "hello"}, [])
    answer = stream.finish()
    widget.flush()

    assert answer == ANSWER
    messages = wire.messages()
    snapshots = [i for i, m in enumerate(messages) if m["type"] == "snapshot"]
    assert len(snapshots) == 1
    assert messages[snapshots[0]]["cursor"] < h.recorder.event_count, "the snapshot was taken mid-stream"
    assert any(m["type"] == "delta" for m in messages[snapshots[0] :]), "deltas followed it"
    assert_state_is_the_recorder(replay(messages[snapshots[0] :]), h)
    assert_state_is_the_recorder(replay(messages), h)  # a view that never reloaded agrees
    assert h.recorder.handler_error_count == 0
    assert_everything_recorded(h, collector, answer)


def test_a_consumer_that_raises_is_counted_and_the_others_still_get_everything(handler, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger=MANAGER_LOGGER)
    h = handler
    widget = h.widget
    wire = Wire(widget)
    calls = nesting = deepest = 0

    def broken_consumer() -> None:
        nonlocal calls, nesting, deepest
        calls += 1
        nesting += 1
        deepest = max(deepest, nesting)
        try:
            subscription.read()  # re-arms, so it is called again on the next change
            raise RuntimeError("consumer bug")
        finally:
            nesting -= 1

    subscription = h.recorder.subscribe(broken_consumer)
    collector = RunCollectorCallbackHandler()
    answer = "".join(long_chain().stream("what?", config={"callbacks": [h, collector]}))
    subscription.close()
    widget.flush()

    assert answer == ANSWER
    assert calls > 1
    assert deepest == 1, "never woken again from inside its own failure"
    assert h.recorder.handler_error_count == calls
    assert {error.where for error in h.recorder.handler_errors()} == {"subscriber"}
    assert_everything_recorded(h, collector, answer)
    assert_state_is_the_recorder(replay(wire.messages()), h)
    assert [r for r in caplog.records if r.name == MANAGER_LOGGER and r.levelno >= logging.WARNING] == []


def test_a_failure_inside_the_handler_loses_that_event_only(handler, caplog, monkeypatch) -> None:
    caplog.set_level(logging.DEBUG, logger=MANAGER_LOGGER)
    h = handler
    widget = h.widget
    wire = Wire(widget)
    real_preview = nbcallbacks.langchain.base.preview
    poisoned: list[Any] = []

    def preview(obj: Any, limits: Any) -> Any:
        if isinstance(obj, dict) and obj.get("poison"):  # the metadata of the "prep" step's start only
            poisoned.append(obj)
            raise ValueError("preview broke on \ud800 input")  # a lone surrogate in the message, too
        return real_preview(obj, limits)

    monkeypatch.setattr(nbcallbacks.langchain.base, "preview", preview)
    collector = RunCollectorCallbackHandler()
    answer = long_chain({"poison": True}).invoke("start", config={"callbacks": [h, collector]})
    widget.flush()

    assert answer == ANSWER
    assert len(poisoned) == 1
    assert h.recorder.handler_error_count == 1
    assert [error.where for error in h.recorder.handler_errors()] == ["on_chain_start"]
    assert [r for r in caplog.records if r.name == MANAGER_LOGGER and r.levelno >= logging.WARNING] == []
    theirs = {str(run.id): run for run in flatten(collector.traced_runs)}
    runs = {run.run_id: run for run in h.recorder.runs()}
    assert set(runs) == set(theirs), "a run whose start failed is still known from its end"
    for run_id, run in runs.items():
        assert run.status == "ok"
        expected_parent = theirs[run_id].parent_run_id
        if run.started:
            assert run.parent_run_id == (None if expected_parent is None else str(expected_parent))
    prep = next(run_id for run_id, run in theirs.items() if run.name == "prep")
    assert not runs[prep].started, "its start was lost, and only that"
    assert sum(not run.started for run in runs.values()) == 1
    model = next(run for run in runs.values() if run.run_type == "chat_model")
    assert model.streamed_chunks == CHUNKS
    assert h.recorder.run_text(model.run_id) == ANSWER
    state = replay(wire.messages())  # handler errors with unencodable text still reach the front end
    assert_state_is_the_recorder(state, h)
    assert widget.snapshot["handler_errors"][0]["error"].startswith("ValueError: preview broke on")


def test_a_handler_whose_previews_all_fail_still_counts_every_token(handler, monkeypatch) -> None:
    h = handler

    def preview(obj: Any, limits: Any) -> Any:
        raise MemoryError("no memory for previews")

    monkeypatch.setattr(nbcallbacks.langchain.base, "preview", preview)
    answer = "".join(long_chain().stream("what?", config={"callbacks": [h]}))
    assert answer == ANSWER
    model = next(run for run in h.recorder.runs() if run.streamed_chunks)
    assert model.streamed_chunks == CHUNKS
    assert h.recorder.run_text(model.run_id) == ANSWER
    assert h.recorder.handler_error_count > 0
    assert len(h.runs_dataframe()) == len(h.recorder.runs())


def assert_runs_end_as_langchain_sees_them(h: NotebookHandler, collector: RunCollectorCallbackHandler) -> None:
    """Same runs, each ended with the same outcome and chunk count as in LangChain's own tracer; none left running."""
    theirs = {str(run.id): run for run in flatten(collector.traced_runs)}
    runs = {run.run_id: run for run in h.recorder.runs()}
    assert set(runs) == set(theirs)
    for run_id, run in runs.items():
        other = theirs[run_id]
        assert other.end_time is not None
        assert run.status == ("ok" if other.error is None else "error"), run.name
        assert run.end is not None
        assert run.streamed_chunks == sum(1 for e in other.events if e["name"] == "new_token")
    assert h.recorder.running_count == 0
    assert h.recorder.handler_error_count == 0, h.recorder.handler_errors()


def test_a_keyboard_interrupt_mid_stream_ends_every_run(handler) -> None:
    """What a kernel interrupt does to a streaming chain: the runs it cut short end as errors, none stay running."""
    h = handler
    widget = h.widget
    wire = Wire(widget)

    def interrupted_after_100(chunks: Any) -> Any:
        for i, chunk in enumerate(chunks):
            if i == 100:
                raise KeyboardInterrupt
            yield chunk

    collector = RunCollectorCallbackHandler()
    chain = long_chain() | RunnableGenerator(interrupted_after_100)
    received: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        received.extend(chain.stream("what?", config={"callbacks": [h, collector]}))  # keeps what came before
    widget.flush()

    assert len(received) == 100
    assert_runs_end_as_langchain_sees_them(h, collector)
    failed = [run for run in h.recorder.runs() if run.status == "error"]
    assert {run.error_type for run in failed} == {"KeyboardInterrupt"}
    assert {run.name for run in failed} == {"RunnableSequence", "interrupted_after_100"}
    assert_state_is_the_recorder(replay(wire.messages()), h)
    assert set(h.runs_dataframe()["status"]) == {"ok", "error"}


async def test_a_cancelled_async_stream_ends_every_run(handler) -> None:
    """An asyncio task cancelled mid-stream (a timeout, a stopped cell): its runs end, none stay running."""
    h = handler
    widget = h.widget
    wire = Wire(widget)
    collector = RunCollectorCallbackHandler()
    model = DemoChatModel(token_delay=0.002, first_token_delay=0, jitter=0, responses=[ANSWER])
    chain = long_chain().first | model | StrOutputParser()
    received: list[str] = []
    under_way = asyncio.Event()

    async def consume() -> None:
        async for chunk in chain.astream("what?", config={"callbacks": [h, collector]}):
            received.append(chunk)
            if len(received) == 50:
                under_way.set()

    task = asyncio.ensure_future(consume())
    await under_way.wait()
    task.cancel()  # lands where the stream waits for its next chunk
    with pytest.raises(asyncio.CancelledError):
        await task
    # The loop closes the inner generators soon after; the recorder offers no awaitable to wait on.
    await wait_until_async(lambda: not h.recorder.running_count, "the cancelled runs to end", poll=0.01)
    widget.flush()

    assert 50 <= len(received) < CHUNKS - 1
    assert_runs_end_as_langchain_sees_them(h, collector)
    model_run = next(run for run in h.recorder.runs() if run.run_type == "chat_model")
    assert model_run.status == "error"
    assert model_run.error_type in {"CancelledError", "GeneratorExit"}
    assert h.recorder.run_text(model_run.run_id) == "".join(received)[: len(h.recorder.run_text(model_run.run_id))]
    assert_state_is_the_recorder(replay(wire.messages()), h)
