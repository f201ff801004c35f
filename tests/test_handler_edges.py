"""The handler's contract at its edges: trace(), limits, hostile payloads, its own failures, token shapes."""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from typing import Any

import numpy as np
import pytest
from helpers import ManualClock
from langchain_core.agents import AgentAction, AgentFinish
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk, LLMResult
from langchain_core.runnables import RunnableLambda
from pydantic import BaseModel
from trace_checks import with_tree

import nbcallbacks
from nbcallbacks import Limits, NotebookHandler
from nbcallbacks.demo import DemoChatModel


def test_all_base_class_callbacks_are_implemented_with_matching_parameter_names() -> None:
    import inspect

    for name, base in inspect.getmembers(BaseCallbackHandler, inspect.isfunction):
        if not name.startswith("on_"):
            continue
        ours = getattr(NotebookHandler, name)
        assert ours is not base, f"{name} not implemented"
        base_params = [p for p in inspect.signature(base).parameters if p not in {"self", "kwargs"}]
        our_params = inspect.signature(ours).parameters
        assert "kwargs" in our_params, name
        for param in base_params:
            assert param in our_params or param in {"tags", "metadata", "chunk"}, (name, param)


def test_trace_attaches_to_every_run_in_the_block_only() -> None:
    chain = RunnableLambda(lambda x: x + 1)
    chain.invoke(0)
    with nbcallbacks.trace(display=False) as h:
        assert chain.invoke(1) == 2
        chain.batch([1, 2, 3])
    chain.invoke(5)
    assert h.recorder.run_count == 4
    assert [r.parent_run_id for r in h.recorder.runs()] == [None] * 4


async def test_trace_works_with_async_and_nested_blocks() -> None:
    chain = RunnableLambda(lambda x: x * 2)
    with nbcallbacks.trace(display=False) as outer:
        await asyncio.gather(chain.ainvoke(1), chain.ainvoke(2))
        with nbcallbacks.trace(display=False) as inner:
            await chain.ainvoke(3)
    assert outer.recorder.run_count == 2
    assert inner.recorder.run_count == 1


def test_trace_records_into_a_given_handler_and_with_explicit_callbacks_once() -> None:
    h = NotebookHandler()
    with nbcallbacks.trace(h, display=False) as same:
        assert same is h
        RunnableLambda(lambda x: x).invoke(1, config={"callbacks": [h]})
    assert h.recorder.run_count == 1, "the handler is not attached twice"


def test_limits_are_settable_and_validated() -> None:
    h = NotebookHandler(max_string=10, max_tokens_per_run=3)
    assert h.limits.max_string == 10
    assert h.limits.max_tokens_per_run == 3
    assert NotebookHandler(Limits(max_items=5)).limits.max_items == 5
    with pytest.raises(TypeError, match="unknown NotebookHandler limits"):
        NotebookHandler(max_strnig=10)
    with pytest.raises(ValueError, match="max_string must be a positive integer"):
        NotebookHandler(max_string=0)


def test_token_limit_through_a_real_stream() -> None:
    h = NotebookHandler(max_tokens_per_run=5)
    model = DemoChatModel(token_delay=0, responses=["one two three four five six seven eight nine ten"])
    text = model.invoke("go", config={"callbacks": [h]}).content
    (run,) = h.recorder.runs()
    assert run.streamed_chunks > 5
    assert run.chunks_not_kept == run.streamed_chunks - 5
    assert text.startswith(h.recorder.run_text(run.run_id))
    assert run.output_tokens is not None


class _Model(BaseModel):
    name: str
    values: list[int]


class _BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    __str__ = __repr__


def test_hostile_payloads_never_slow_break_or_mutate_the_chain() -> None:
    cyclic: dict[str, Any] = {"name": "loop"}
    cyclic["self"] = cyclic
    huge = "x" * 20_000_000
    payload = {
        "huge": huge,
        "cyclic": cyclic,
        "array": np.arange(1_000_000, dtype=np.float64),
        "bytes": b"\x00\xff" * 1000,
        "model": _Model(name="m", values=list(range(1000))),
        "bad": _BadRepr(),
        "surrogate": "a\udcffb",
    }
    h = NotebookHandler(max_string=100, max_payload_chars=2000)
    result = RunnableLambda(lambda p: p).invoke(payload, config={"callbacks": [h]})
    assert result is payload
    assert result["cyclic"]["self"] is cyclic
    (run,) = h.recorder.runs()
    for preview in (run.inputs, run.outputs):
        encoded = json.dumps(preview, ensure_ascii=False, allow_nan=False).encode("utf-8")
        assert len(encoded) < 10_000
    assert "…" in json.dumps(run.inputs["huge"], ensure_ascii=False)
    assert h.recorder.handler_error_count == 0


def test_payload_is_snapshotted_at_event_time() -> None:
    h = NotebookHandler()
    data = {"items": [1]}

    def mutate(d: dict[str, list[int]]) -> dict[str, list[int]]:
        d["items"].append(2)
        return d

    RunnableLambda(mutate).invoke(data, config={"callbacks": [h]})
    (run,) = h.recorder.runs()
    assert run.inputs == {"items": [1]}
    assert run.outputs == {"items": [1, 2]}


def test_a_failure_inside_the_handler_is_counted_and_never_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    h = NotebookHandler()

    def explode(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("recorder is broken")

    monkeypatch.setattr(h, "put_token", explode)  # where every decoded chunk goes (not plain text: see below)
    model = DemoChatModel(token_delay=0, responses=["still works"])
    assert model.invoke("x", config={"callbacks": [h]}).content == "still works"
    assert h.recorder.handler_error_count == 1, "the stream's closing chunk (empty text, usage) is decoded"
    assert h.recorder.handler_errors()[0].where == "on_llm_new_token"
    assert "recorder is broken" in h.recorder.handler_errors()[0].error
    assert [r.status for r in h.recorder.runs()] == ["ok"], "the rest is still recorded"
    assert h.recorder.run_text(h.recorder.runs()[0].run_id) == "still works", "plain text is queued without put_token"


class BreakingClock(ManualClock):
    """A clock that raises while ``broken``: the one thing every recorded event calls."""

    broken = False

    def __call__(self) -> float:
        if self.broken:
            raise RuntimeError("clock is broken")
        return super().__call__()


@pytest.mark.parametrize(
    "token",
    ["plain text", "non-ASCII text: é", [{"type": "text", "text": "a content block"}]],
    ids=["plain", "non-ascii", "block"],
)
def test_a_failure_in_either_token_path_is_counted_and_never_raised(token: Any) -> None:
    """Plain text is queued by the recorder's own callback, other tokens are decoded by the intake first: a failure
    in either is counted as ``on_llm_new_token``'s, and the run goes on."""
    clock = BreakingClock()
    h = NotebookHandler(clock=clock)
    run = uuid.uuid4()
    h.on_chat_model_start({"name": "m"}, [[]], run_id=run)
    clock.broken = True
    h.on_llm_new_token(token, run_id=run)
    h.on_llm_new_token(token, run_id=run)
    clock.broken = False
    h.on_llm_new_token("after", run_id=run)
    h.on_llm_end(LLMResult(generations=[]), run_id=run)
    assert [(e.where, e.error) for e in h.recorder.handler_errors()] == [
        ("on_llm_new_token", "RuntimeError: clock is broken")
    ] * 2
    assert h.recorder.run_text(str(run)) == "after"
    assert [r.status for r in h.recorder.runs()] == ["ok"]


def test_copies_of_a_config_keep_the_same_handler() -> None:
    h = NotebookHandler()
    assert copy.copy(h) is h
    assert copy.deepcopy({"callbacks": [h]})["callbacks"][0] is h


def test_content_block_tokens_keep_reasoning_and_tool_calls_apart() -> None:
    h = NotebookHandler()
    run = uuid.uuid4()
    h.on_chat_model_start({"name": "blocks"}, [[]], run_id=run)
    h.on_llm_new_token([{"type": "thinking", "thinking": "hmm, "}], run_id=run)
    h.on_llm_new_token([{"type": "reasoning", "reasoning": "let me see"}], run_id=run)
    h.on_llm_new_token([{"type": "text", "text": "Hello"}, {"type": "text", "text": " world"}], run_id=run)
    h.on_llm_new_token(
        [{"type": "tool_call_chunk", "name": "search", "args": '{"q":', "id": "1", "index": 0}], run_id=run
    )
    h.on_llm_new_token([{"type": "tool_call_chunk", "args": ' "x"}', "index": 0}], run_id=run)
    assert h.recorder.run_pieces(str(run)) == [
        ["reasoning", "hmm, let me see"],
        ["text", "Hello world"],
        ["tool_call", 'search {"q": "x"}'],
    ]
    assert h.recorder.run_text(str(run)) == "Hello world"


def test_empty_token_with_tool_call_chunks_and_reasoning_content() -> None:
    h = NotebookHandler()
    run = uuid.uuid4()
    h.on_chat_model_start({"name": "m"}, [[]], run_id=run)
    tool_chunk = ChatGenerationChunk(
        message=AIMessageChunk(
            content="", tool_call_chunks=[{"name": "calc", "args": '{"e": "1+1"}', "id": "c1", "index": 0}]
        )
    )
    h.on_llm_new_token("", chunk=tool_chunk, run_id=run)
    thinking = ChatGenerationChunk(message=AIMessageChunk(content="", additional_kwargs={"reasoning_content": "ok"}))
    h.on_llm_new_token("", chunk=thinking, run_id=run)
    h.on_llm_new_token("", chunk=ChatGenerationChunk(message=AIMessageChunk(content="")), run_id=run)
    assert h.recorder.run_pieces(str(run)) == [["tool_call", 'calc {"e": "1+1"}'], ["reasoning", "ok"], ["text", ""]]
    (record,) = h.recorder.runs()
    assert record.streamed_chunks == 3
    assert record.first_token is not None


def test_v2_stream_event_deltas_are_recorded_as_tokens() -> None:
    h = NotebookHandler()
    run = uuid.uuid4()
    h.on_chat_model_start({"name": "m"}, [[]], run_id=run)
    h.on_stream_event({"event": "message-start"}, run_id=run)
    h.on_stream_event(
        {"event": "content-block-delta", "index": 0, "delta": {"type": "text-delta", "text": "Hi"}}, run_id=run
    )
    h.on_stream_event(
        {"event": "content-block-delta", "index": 1, "delta": {"type": "reasoning-delta", "reasoning": "r"}},
        run_id=run,
    )
    assert h.recorder.run_pieces(str(run)) == [["text", "Hi"], ["reasoning", "r"]]


def test_hidden_runs_and_run_type_keyword() -> None:
    h = NotebookHandler()
    a, b = uuid.uuid4(), uuid.uuid4()
    h.on_chain_start({"id": ["x", "Plumbing"]}, {}, run_id=a, tags=["langsmith:hidden"])
    h.on_chain_start(None, {}, run_id=b, parent_run_id=a, run_type="parser", name="my parser")  # type: ignore[arg-type]
    first, second = with_tree(h.recorder.runs())
    assert first.hidden
    assert first.name == "Plumbing"
    assert second.run_type == "parser"
    assert second.name == "my parser"
    assert second.depth == 1


def test_interrupt_like_error_is_interrupted_not_error() -> None:
    class GraphInterrupt(Exception):  # noqa: N818 - the name LangGraph uses is what is matched
        pass

    h = NotebookHandler()
    run = uuid.uuid4()
    h.on_chain_start({"name": "node"}, {}, run_id=run)
    h.on_chain_error(GraphInterrupt("pause"), run_id=run)
    assert h.recorder.runs()[0].status == "interrupted"


def test_legacy_events_are_recorded() -> None:
    h = NotebookHandler()
    run = uuid.uuid4()
    h.on_chain_start({"name": "legacy"}, {}, run_id=run)
    h.on_text("some text", run_id=run)

    h.on_agent_action(AgentAction(tool="search", tool_input={"q": 1}, log="thinking"), run_id=run)
    h.on_agent_finish(AgentFinish(return_values={"output": "done"}, log="end"), run_id=run)
    events = [(e.event, e.data) for e in h.recorder.events()][1:]
    assert events == [
        ("text", {"text": "some text"}),
        ("agent_action", {"tool": "search", "tool_input": {"q": 1}, "log": "thinking"}),
        ("agent_finish", {"return_values": {"output": "done"}, "log": "end"}),
    ]
    assert h.recorder.handler_error_count == 0


def test_handler_repr_is_a_short_summary() -> None:
    h = NotebookHandler()
    RunnableLambda(lambda x: x).invoke(1, config={"callbacks": [h]})
    assert repr(h) == "NotebookHandler(runs=1, running=0, events=2, handler_errors=0)"


@pytest.mark.parametrize("redact", [None, "api_keys"])
def test_a_subclass_overriding_on_llm_new_token_sees_every_token(redact: str | None) -> None:
    """Without redaction, plain text is queued by the recorder's own callback set on the instance; a subclass's own
    ``on_llm_new_token`` must still be what LangChain calls, for every token, with or without redaction."""

    class Counting(NotebookHandler):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.seen: list[Any] = []

        def on_llm_new_token(self, token: Any, **kwargs: Any) -> None:
            self.seen.append(token)
            super().on_llm_new_token(token, **kwargs)

    h = Counting(redact=redact)
    model = FakeListChatModel(responses=["hello world"])
    assert "".join(chunk.content for chunk in model.stream("go", config={"callbacks": [h]})) == "hello world"
    assert "".join(token for token in h.seen if isinstance(token, str)) == "hello world"
    assert len(h.seen) >= len("hello world")
    assert h.recorder.run_text(h.recorder.runs()[0].run_id) == "hello world", "and they are still recorded"
