"""NotebookHandler records the same run tree as LangChain's own tracer, attached beside it.

Every scenario runs real langchain-core / langgraph objects driven by fake models, with
``RunCollectorCallbackHandler`` as the oracle: same ids, parents, names, run types, error status and times.
"""

from __future__ import annotations

import asyncio
import operator
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.callbacks.manager import dispatch_custom_event
from langchain_core.language_models.fake_chat_models import FakeListChatModel, FakeListChatModelError
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda, RunnableParallel
from langchain_core.tracers.run_collector import RunCollectorCallbackHandler
from langgraph.checkpoint.memory import MemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt
from trace_checks import flatten, with_tree

from nbcallbacks import NotebookHandler
from nbcallbacks.demo import DemoChatModel, agent

TIME_SLACK_S = 0.5  # both handlers stamp the same callback; only scheduling noise separates them


def assert_same_tree(h: NotebookHandler, collector: RunCollectorCallbackHandler) -> None:
    theirs = {str(r.id): r for r in flatten(collector.traced_runs)}
    ours = {r.run_id: r for r in with_tree(h.recorder.runs())}
    assert set(ours) == set(theirs), "every run recorded exactly once"
    assert len(h.recorder.runs()) == len(ours), "no duplicate run rows"
    for run_id, mine in ours.items():
        other = theirs[run_id]
        expected_parent = None if other.parent_run_id is None else str(other.parent_run_id)
        if mine.orphan:  # LangChain's tracer re-roots such a run; we keep the parent id it named
            assert mine.parent_run_id is not None
            assert mine.parent_run_id not in theirs, "orphan only when the parent was never seen"
            assert expected_parent is None
            assert mine.depth == 0
        else:
            assert mine.parent_run_id == expected_parent
        assert mine.name == other.name
        other_type = other.run_type
        assert (mine.run_type if mine.run_type != "chat_model" else "llm") == other_type
        if other.error is None:
            assert mine.status == "ok", (mine.name, mine.status, mine.error)
        else:
            assert mine.status in {"error", "interrupted"}, (mine.name, mine.status)
            assert mine.error is not None
        assert mine.end is not None
        assert other.end_time is not None
        assert abs(mine.start - other.start_time.timestamp()) < TIME_SLACK_S
        assert abs(mine.end - other.end_time.timestamp()) < TIME_SLACK_S
        assert mine.end >= mine.start
    assert h.recorder.handler_error_count == 0, h.recorder.handler_errors()


def assert_streams_spell_outputs(h: NotebookHandler) -> None:
    """Each streamed model run's text tokens spell its final message content."""
    checked = 0
    for run in h.recorder.runs():
        if run.run_type not in {"llm", "chat_model"} or not run.streamed_chunks or run.status != "ok":
            continue
        outputs = run.outputs
        content = outputs.get("content") if isinstance(outputs, dict) else outputs
        assert h.recorder.run_text(run.run_id) == content
        checked += 1
    assert checked, "at least one model run streamed"


def both() -> tuple[NotebookHandler, RunCollectorCallbackHandler, dict[str, Any]]:
    h = NotebookHandler()
    collector = RunCollectorCallbackHandler()
    return h, collector, {"callbacks": [h, collector]}


def simple_chain(answer: str = "The answer is forty two.") -> Any:
    prompt = ChatPromptTemplate.from_messages([("system", "Be brief."), ("human", "{q}")])
    model = DemoChatModel(token_delay=0, responses=[answer])
    return prompt | model | StrOutputParser()


def test_sync_invoke_sequence_names_types_and_stream() -> None:
    h, collector, config = both()
    chain = simple_chain()
    assert chain.invoke({"q": "hi"}, config=config) == "The answer is forty two."
    assert_same_tree(h, collector)
    types = [r.run_type for r in h.recorder.runs()]
    assert types == ["chain", "prompt", "chat_model", "parser"]
    names = [r.name for r in h.recorder.runs()]
    assert names == ["RunnableSequence", "ChatPromptTemplate", "DemoChatModel", "StrOutputParser"]
    assert [r.depth for r in with_tree(h.recorder.runs())] == [0, 1, 1, 1]


def test_stream_records_tokens_that_spell_the_answer() -> None:
    h, collector, config = both()
    chunks = list(simple_chain().stream({"q": "hi"}, config=config))
    assert "".join(chunks) == "The answer is forty two."
    assert_same_tree(h, collector)
    assert_streams_spell_outputs(h)
    model_run = next(r for r in h.recorder.runs() if r.run_type == "chat_model")
    assert model_run.streamed_chunks >= 5
    assert model_run.ttft is not None
    assert model_run.duration is not None
    assert 0 <= model_run.ttft <= model_run.duration


def test_threaded_batch_keeps_each_input_under_its_own_root() -> None:
    h, collector, config = both()
    chain = simple_chain()
    outputs = chain.batch([{"q": str(i)} for i in range(24)], config={**config, "max_concurrency": 6})
    assert len(outputs) == 24
    assert_same_tree(h, collector)
    roots = [r for r in h.recorder.runs() if r.parent_run_id is None]
    assert len(roots) == 24
    threads = {r.thread for r in h.recorder.runs()}
    assert len(threads) > 1, "batch callbacks arrive from worker threads"
    assert_streams_spell_outputs(h)


async def test_async_gather_and_astream_stay_separate() -> None:
    h, collector, config = both()
    chain = simple_chain()

    async def one(i: int) -> str:
        return await chain.ainvoke({"q": str(i)}, config=config)

    results = await asyncio.gather(*(one(i) for i in range(12)))
    assert len(results) == 12
    pieces = [c async for c in chain.astream({"q": "x"}, config=config)]
    assert "".join(pieces) == "The answer is forty two."
    await chain.abatch([{"q": "a"}, {"q": "b"}], config=config)
    assert_same_tree(h, collector)
    assert len([r for r in h.recorder.runs() if r.parent_run_id is None]) == 15
    assert_streams_spell_outputs(h)


async def test_astream_events_matches_its_own_parent_ids() -> None:
    h, collector, config = both()
    ancestry: dict[str, list[str]] = {}
    async for event in simple_chain().astream_events({"q": "x"}, config=config, version="v2"):
        ancestry[event["run_id"]] = event["parent_ids"]
    assert_same_tree(h, collector)
    for run in h.recorder.runs():
        parents = ancestry[run.run_id]
        assert (parents[-1] if parents else None) == run.parent_run_id


def test_langgraph_agent_with_tool_calls() -> None:
    h, collector, config = both()
    graph = agent(token_delay=0)
    result = graph.invoke({"messages": [("user", "What's the weather in Paris?")]}, config=config)
    assert result["messages"][-1].content
    assert_same_tree(h, collector)
    runs = h.recorder.runs()
    assert runs[0].name == "LangGraph"
    assert runs[0].parent_run_id is None
    tools = [r for r in runs if r.run_type == "tool"]
    assert [t.name for t in tools] == ["get_weather"]
    nodes = {r.langgraph_node for r in runs if r.langgraph_node}
    assert {"agent", "tools"} <= nodes
    model_runs = [r for r in runs if r.run_type == "chat_model"]
    assert len(model_runs) == 2
    assert all(r.langgraph_step is not None for r in model_runs)
    assert all(r.output_tokens and r.input_tokens for r in model_runs)
    assert any(piece[0] == "tool_call" for r in model_runs for piece in h.recorder.run_pieces(r.run_id)), (
        "tool-call arguments are kept apart from answer text"
    )
    answer_run = model_runs[-1]
    assert h.recorder.run_text(answer_run.run_id) == result["messages"][-1].content


async def test_langgraph_agent_async() -> None:
    h, collector, config = both()
    graph = agent(token_delay=0)
    await asyncio.gather(
        graph.ainvoke({"messages": [("user", "What's the weather in Oslo?")]}, config=config),
        graph.ainvoke({"messages": [("user", "What is 12 * 7?")]}, config=config),
    )
    assert_same_tree(h, collector)
    assert len([r for r in h.recorder.runs() if r.parent_run_id is None]) == 2


class _State(TypedDict):
    items: Annotated[list[str], operator.add]


def test_langgraph_subgraph_nests_under_its_node() -> None:
    sub = StateGraph(_State)
    sub.add_node("inner", lambda s: {"items": ["inner"]})
    sub.add_edge(START, "inner")
    sub.add_edge("inner", END)
    parent = StateGraph(_State)
    parent.add_node("first", lambda s: {"items": ["first"]})
    parent.add_node("nested", sub.compile())
    parent.add_edge(START, "first")
    parent.add_edge("first", "nested")
    parent.add_edge("nested", END)
    h, collector, config = both()
    assert "inner" in parent.compile().invoke({"items": []}, config=config)["items"]
    assert_same_tree(h, collector)
    runs = {r.run_id: r for r in with_tree(h.recorder.runs())}
    inner = next(r for r in runs.values() if r.name == "inner")
    ancestors = []
    current = inner
    while current.parent_run_id:
        current = runs[current.parent_run_id]
        ancestors.append(current.name)
    assert ancestors[:2] == ["LangGraph", "nested"]
    assert inner.depth == len(ancestors)


def test_retry_and_fallbacks() -> None:
    attempts = {"n": 0}

    def flaky(x: int) -> int:
        attempts["n"] += 1
        if attempts["n"] < 3:
            msg = "transient"
            raise ValueError(msg)
        return x + 1

    failing = DemoChatModel(token_delay=0, responses=["never shown"], error_after=1)
    fallback = DemoChatModel(token_delay=0, responses=["backup answer"])
    chain = RunnableLambda(flaky).with_retry(stop_after_attempt=3, wait_exponential_jitter=False) | (
        RunnableLambda(lambda x: f"q{x}") | failing.with_fallbacks([fallback])
    )
    h, collector, config = both()
    assert chain.invoke(1, config=config).content == "backup answer"
    assert_same_tree(h, collector)
    runs = h.recorder.runs()
    wrapper, *attempt_runs = [r for r in runs if r.name == "flaky"]
    assert wrapper.status == "ok"
    assert all(r.parent_run_id == wrapper.run_id for r in attempt_runs), "each attempt is a child run"
    assert [r.status for r in attempt_runs] == ["error", "error", "ok"]
    assert [t for r in attempt_runs for t in r.tags if t.startswith("retry:attempt")] == [
        "retry:attempt:2",
        "retry:attempt:3",
    ]
    model_statuses = [r.status for r in runs if r.run_type == "chat_model"]
    assert model_statuses == ["error", "ok"]


def test_error_mid_stream_keeps_partial_tokens_and_traceback() -> None:
    model = FakeListChatModel(responses=["abcdefghij"], error_on_chunk_number=5)
    h, collector, config = both()
    with pytest.raises(FakeListChatModelError):
        list(model.stream("hi", config=config))
    assert_same_tree(h, collector)
    run = h.recorder.runs()[0]
    assert run.status == "error"
    assert h.recorder.run_text(run.run_id) == "abcde"
    assert run.error_type is not None
    assert run.traceback is not None
    assert "Traceback" in run.traceback


def test_interrupt_is_not_an_error_and_resume_completes() -> None:
    def ask(state: _State) -> dict[str, list[str]]:
        answer = interrupt("approve?")
        return {"items": [str(answer)]}

    builder = StateGraph(_State)
    builder.add_node("ask", ask)
    builder.add_edge(START, "ask")
    builder.add_edge("ask", END)
    graph = builder.compile(checkpointer=MemorySaver())
    h, collector, config = both()
    thread = {**config, "configurable": {"thread_id": "t1"}}
    first = graph.invoke({"items": []}, config=thread)
    assert "__interrupt__" in first
    ask_runs = [r for r in h.recorder.runs() if r.name == "ask"]
    assert [r.status for r in ask_runs] == ["interrupted"]
    assert h.recorder.runs()[0].status == "ok"
    resumed = graph.invoke(Command(resume="yes"), config=thread)
    assert resumed["items"] == ["yes"]
    assert_same_tree(h, collector)
    assert [r.status for r in h.recorder.runs() if r.name == "ask"] == ["interrupted", "ok"]


def test_custom_events_are_kept_on_their_run() -> None:
    def step(x: int) -> int:
        dispatch_custom_event("progress", {"done": x})
        return x

    h, collector, config = both()
    RunnableLambda(step).invoke(7, config=config)
    assert_same_tree(h, collector)
    events = [e for e in h.recorder.events() if e.event == "custom_event"]
    assert len(events) == 1
    assert events[0].data == {"name": "progress", "data": {"done": 7}}
    assert events[0].run_id == h.recorder.runs()[0].run_id
    assert events[0].name == "step"


def test_handler_attached_only_to_inner_runnable_keeps_orphans_as_roots() -> None:
    h = NotebookHandler()
    collector = RunCollectorCallbackHandler()
    inner = simple_chain().with_config(callbacks=[h, collector])
    outer = RunnableLambda(lambda x: {"q": x}) | inner
    assert outer.invoke("hello") == "The answer is forty two."
    assert_same_tree(h, collector)
    roots = [r for r in with_tree(h.recorder.runs()) if r.depth == 0]
    assert len(roots) == 1
    assert roots[0].orphan
    assert roots[0].parent_run_id is not None


class _Exploding(BaseCallbackHandler):
    """A neighbouring handler that fails on every event."""

    def __getattribute__(self, name: str) -> Any:
        if name.startswith("on_"):

            def boom(*args: Any, **kwargs: Any) -> None:
                msg = f"neighbour failed in {name}"
                raise RuntimeError(msg)

            return boom
        return super().__getattribute__(name)


def test_a_neighbouring_handler_that_raises_changes_nothing(caplog: pytest.LogCaptureFixture) -> None:
    h, collector, _ = both()
    config = {"callbacks": [_Exploding(), h, collector]}
    assert simple_chain().invoke({"q": "x"}, config=config) == "The answer is forty two."
    assert_same_tree(h, collector)
    assert_streams_spell_outputs(h)
    assert "neighbour failed" in caplog.text


def test_parallel_branches_and_model_usage() -> None:
    model = DemoChatModel(token_delay=0, responses=["alpha beta gamma", "delta epsilon"])
    fanout = RunnableParallel(a=model, b=model)
    h, collector, config = both()
    fanout.invoke("hi", config=config)
    assert_same_tree(h, collector)
    model_runs = [r for r in h.recorder.runs() if r.run_type == "chat_model"]
    assert len(model_runs) == 2
    for run in model_runs:
        assert run.model == "nbcallbacks-demo-1"
        assert run.output_tokens == run.streamed_chunks - 1
        assert run.total_tokens == (run.input_tokens or 0) + (run.output_tokens or 0)
        assert run.tokens_per_s is not None
        assert run.tokens_per_s > 0
