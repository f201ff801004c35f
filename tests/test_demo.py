"""The offline demo model, tools and agent, driven through real LangChain callbacks."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langchain_core.tracers.run_collector import RunCollectorCallbackHandler

from nbcallbacks import demo
from nbcallbacks.demo import DemoChatModel, DemoStreamError


class Collector(BaseCallbackHandler):
    """Keeps every event it sees, per run, from any thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.starts: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, list[tuple[Any, Any]]] = {}
        self.ends: dict[str, Any] = {}
        self.errors: dict[str, BaseException] = {}

    def _start(self, run_id, parent_run_id, kind, name):
        with self.lock:
            self.starts[str(run_id)] = {
                "parent": str(parent_run_id) if parent_run_id else None,
                "kind": kind,
                "name": name,
            }

    def on_chain_start(self, serialized, inputs, *, run_id, parent_run_id=None, **kw):
        self._start(run_id, parent_run_id, "chain", kw.get("name"))

    def on_chat_model_start(self, serialized, messages, *, run_id, parent_run_id=None, **kw):
        self._start(run_id, parent_run_id, "chat_model", kw.get("metadata", {}).get("ls_model_name"))

    def on_tool_start(self, serialized, input_str, *, run_id, parent_run_id=None, **kw):
        self._start(run_id, parent_run_id, "tool", serialized.get("name"))

    def on_retriever_start(self, serialized, query, *, run_id, parent_run_id=None, **kw):
        self._start(run_id, parent_run_id, "retriever", kw.get("name"))

    def on_llm_new_token(self, token, *, chunk=None, run_id, **kw):
        with self.lock:
            self.tokens.setdefault(str(run_id), []).append((token, chunk))

    def on_llm_end(self, response, *, run_id, **kw):
        with self.lock:
            self.ends[str(run_id)] = response.generations[0][0].message

    def on_llm_error(self, error, *, run_id, **kw):
        with self.lock:
            self.errors[str(run_id)] = error

    def on_tool_error(self, error, *, run_id, **kw):
        with self.lock:
            self.errors[str(run_id)] = error

    def runs(self, kind):
        return [rid for rid, s in self.starts.items() if s["kind"] == kind]

    def names(self, kind):
        return [s["name"] for s in self.starts.values() if s["kind"] == kind]


def model(**kw) -> DemoChatModel:
    kw.setdefault("token_delay", 0)
    return DemoChatModel(**kw)


WEATHER = {"messages": [("user", "What's the weather in Paris?")]}


@given(st.text())
def test_tokenize_round_trips_any_text(text):
    assert "".join(demo.tokenize(text)) == text


def test_tokenize_keeps_leading_whitespace_and_splits_long_words():
    assert demo.tokenize("Hello  wonderful world!\n") == [
        "Hello",
        "  wonder",
        "ful",
        " world",
        "!",
        "\n",
    ]


def test_streaming_is_on_by_default_so_invoke_reports_tokens():
    h = Collector()
    result = model().invoke("Tell me about callbacks", {"callbacks": [h]})
    (run_id,) = h.runs("chat_model")
    tokens = h.tokens[run_id]
    assert len(tokens) > 10
    assert "".join(t for t, _ in tokens) == result.content
    assert "Tell me about callbacks" in result.content
    # Every chunk is an AIMessageChunk; only the last one is marked and carries usage.
    chunks = [c.message for _, c in tokens]
    assert all(isinstance(c, AIMessageChunk) for c in chunks)
    assert [c.chunk_position for c in chunks].count("last") == 1
    assert chunks[-1].chunk_position == "last"
    assert chunks[-1].usage_metadata is not None
    assert all(c.usage_metadata is None for c in chunks[:-1])


def test_final_message_has_usage_and_response_metadata():
    h = Collector()
    result = model().invoke([HumanMessage("Explain streaming in one line")], {"callbacks": [h]})
    (run_id,) = h.runs("chat_model")
    streamed = len(h.tokens[run_id]) - 1  # the last chunk is bookkeeping only
    usage = result.usage_metadata
    assert usage is not None
    assert usage["output_tokens"] == streamed
    assert usage["input_tokens"] > len(demo.tokenize("Explain streaming in one line"))
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert result.response_metadata["finish_reason"] == "stop"
    assert result.response_metadata["model_name"] == demo.DEMO_MODEL_NAME
    assert h.ends[run_id].usage_metadata == usage
    assert h.starts[run_id]["name"] == demo.DEMO_MODEL_NAME  # ls_model_name


def test_streaming_false_returns_the_same_message_without_tokens():
    h = Collector()
    streamed = model().invoke("Say something", {"callbacks": [h]})
    quiet = model(streaming=False).invoke("Say something", {"callbacks": [h]})
    assert quiet.content == streamed.content
    assert quiet.usage_metadata == streamed.usage_metadata
    quiet_run = h.runs("chat_model")[1]
    assert quiet_run not in h.tokens


def test_bound_tools_stream_as_tool_call_chunks():
    h = Collector()
    bound = model().bind_tools([demo.get_weather, demo.calculator])
    result = bound.invoke("What's the weather in Paris?", {"callbacks": [h]})
    assert isinstance(result, AIMessage)
    assert result.tool_calls == [
        {"name": "get_weather", "args": {"city": "Paris"}, "id": result.tool_calls[0]["id"], "type": "tool_call"}
    ]
    assert result.response_metadata["finish_reason"] == "tool_calls"
    (run_id,) = h.runs("chat_model")
    fragments = [tc for t, c in h.tokens[run_id] for tc in c.message.tool_call_chunks]
    assert all(t == "" for t, _ in h.tokens[run_id])
    assert len(fragments) >= 4
    first, rest = fragments[0], fragments[1:]
    assert first["name"] == "get_weather"
    assert first["id"] == result.tool_calls[0]["id"]
    assert all(f["name"] is None and f["id"] is None for f in rest)
    assert {f["index"] for f in fragments} == {0}
    assert json.loads("".join(f["args"] for f in fragments)) == {"city": "Paris"}


def test_bound_tools_travel_as_invocation_params():
    seen: list[dict[str, Any]] = []

    class Params(BaseCallbackHandler):
        def on_chat_model_start(self, serialized, messages, **kw):
            seen.append(kw["invocation_params"])

    model().bind_tools([demo.calculator]).invoke("2 + 2", {"callbacks": [Params()]})
    assert [t["function"]["name"] for t in seen[0]["tools"]] == ["calculator"]


def test_several_cities_become_parallel_tool_calls_with_their_own_index():
    bound = model().bind_tools([demo.get_weather])
    result = bound.invoke("Weather in Paris, Tokyo and New York?")
    assert [c["args"]["city"] for c in result.tool_calls] == ["Paris", "Tokyo", "New York"]
    assert len({c["id"] for c in result.tool_calls}) == 3


def test_answers_from_tool_results_after_a_tool_message():
    call = {"name": "get_weather", "args": {"city": "Paris"}, "id": "call_1", "type": "tool_call"}
    history = [
        HumanMessage("What's the weather in Paris?"),
        AIMessage("", tool_calls=[call]),
        ToolMessage("Paris: 18°C, sunny.", tool_call_id="call_1", name="get_weather"),
    ]
    result = model().bind_tools([demo.get_weather]).invoke(history)
    assert result.tool_calls == []
    assert "Paris: 18°C, sunny." in result.content


def test_scripted_responses_follow_the_conversation_turn():
    scripted = model(
        responses=[
            AIMessage("", tool_calls=[{"name": "calculator", "args": {"expression": "6*7"}, "id": "c1"}]),
            "It is 42.",
        ]
    )
    first = scripted.invoke("anything")
    assert first.tool_calls[0]["args"] == {"expression": "6*7"}
    second = scripted.invoke([HumanMessage("anything"), first, ToolMessage("42", tool_call_id="c1")])
    assert second.content == "It is 42."


def test_stop_sequences_cut_the_text():
    full = model(responses=["alpha beta gamma"]).invoke("x")
    cut = model(responses=["alpha beta gamma"]).invoke("x", stop=[" gamma"])
    assert full.content == "alpha beta gamma"
    assert cut.content == "alpha beta"


def test_output_is_deterministic_and_the_seed_changes_wording():
    texts = {model().invoke("Describe the run tree").content for _ in range(3)}
    assert len(texts) == 1
    seeded = {model(seed=s).invoke("Describe the run tree").content for s in range(8)}
    assert len(seeded) > 1


def test_error_after_fails_mid_stream_and_reports_the_partial_run():
    h = Collector()
    with pytest.raises(DemoStreamError, match="after 3 streamed chunks"):
        model(error_after=3).invoke("A long enough answer please", {"callbacks": [h]})
    (run_id,) = h.runs("chat_model")
    assert len(h.tokens[run_id]) == 3
    assert isinstance(h.errors[run_id], DemoStreamError)
    assert run_id not in h.ends


async def test_error_after_fails_mid_stream_async():
    h = Collector()
    seen: list[str] = []

    async def consume():
        async for chunk in model(error_after=5).astream("Stream something", {"callbacks": [h]}):
            seen.append(str(chunk.content))  # noqa: PERF401 - the partial list is the point

    with pytest.raises(DemoStreamError):
        await consume()
    assert len(seen) == 5
    (run_id,) = h.runs("chat_model")
    assert isinstance(h.errors[run_id], DemoStreamError)


async def test_async_stream_matches_sync_invoke():
    sync = model().invoke("Compare the two paths")
    chunks = [c async for c in model().astream("Compare the two paths")]
    assert "".join(str(c.content) for c in chunks) == sync.content
    assert chunks[-1].usage_metadata == sync.usage_metadata


def test_calculator_evaluates_arithmetic_safely():
    assert demo.calculator.invoke({"expression": "(3 + 4) * 12 / 7"}) == "(3 + 4) * 12 / 7 = 12"
    assert demo.calculator.invoke({"expression": "2^10"}) == "2^10 = 1024"
    assert demo.calculator.invoke({"expression": "-7 // 2 + 10 % 4"}) == "-7 // 2 + 10 % 4 = -2"
    for bad in ("__import__('os').system('true')", "x + 1", "[1, 2]", "True + 1", "2 ** 1000"):
        with pytest.raises(ValueError, match=r"unsupported|too large|not an arithmetic"):
            demo.evaluate_arithmetic(bad)
    with pytest.raises(ZeroDivisionError):
        demo.evaluate_arithmetic("1 / 0")


def test_weather_is_deterministic_and_rejects_empty_cities():
    assert demo.get_weather.invoke({"city": "Paris"}).startswith("Paris: 18°C")
    assert demo.get_weather.invoke({"city": "Reykjavik"}) == demo.get_weather.invoke({"city": "Reykjavik"})
    with pytest.raises(ValueError, match="empty"):
        demo.get_weather.invoke({"city": "  "})


def test_search_docs_nests_a_retriever_run_under_the_tool():
    h = Collector()
    text = demo.search_docs.invoke({"query": "how do interrupts work"}, {"callbacks": [h]})
    assert text.startswith("[Interrupts] Calling interrupt() pauses a graph")
    (tool_run,) = h.runs("tool")
    (retriever_run,) = h.runs("retriever")
    assert h.starts[retriever_run]["parent"] == tool_run


def test_agent_calls_a_tool_then_streams_an_answer():
    h = Collector()
    collector = RunCollectorCallbackHandler()
    out = demo.agent(token_delay=0).invoke(WEATHER, {"callbacks": [h, collector]})
    kinds = [type(m).__name__ for m in out["messages"]]
    assert kinds == ["HumanMessage", "AIMessage", "ToolMessage", "AIMessage"]
    answer = out["messages"][-1]
    assert "Paris: 18°C" in answer.content
    # Two model runs: the first streams only tool-call fragments, the second spells the answer.
    first, second = h.runs("chat_model")
    assert all(t == "" for t, _ in h.tokens[first])
    assert "".join(t for t, _ in h.tokens[second]) == answer.content
    assert h.names("tool") == ["get_weather"]
    # The tree: LangGraph -> agent -> model, LangGraph -> tools -> get_weather.
    (root,) = [r for r, s in h.starts.items() if s["parent"] is None]
    assert h.starts[root]["name"] == "LangGraph"
    for run_id in (first, second):
        node = h.starts[run_id]["parent"]
        assert h.starts[node]["name"] == "agent"
        assert h.starts[node]["parent"] == root
    (tool_run,) = h.runs("tool")
    assert h.starts[h.starts[tool_run]["parent"]]["name"] == "tools"
    # LangChain's own tracer records the same runs under the same parents.
    (traced,) = collector.traced_runs

    def walk(run):
        yield run
        for child in run.child_runs:
            yield from walk(child)

    oracle = {str(r.id): (str(r.parent_run_id) if r.parent_run_id else None) for r in walk(traced)}
    assert {k: v["parent"] for k, v in h.starts.items()} == oracle


def test_agent_turns_a_failing_tool_into_an_answer():
    h = Collector()
    out = demo.agent(token_delay=0).invoke({"messages": [("user", "What is 1 / 0?")]}, {"callbacks": [h]})
    (tool_run,) = h.runs("tool")
    assert isinstance(h.errors[tool_run], ZeroDivisionError)
    assert out["messages"][-1].content.startswith("I could not use calculator")


def test_agent_runs_several_tool_steps_in_one_loop():
    h = Collector()
    question = {"messages": [("user", "Weather in Paris and Berlin, and what is 6 * 7?")]}
    out = demo.agent(token_delay=0).invoke(question, {"callbacks": [h]})
    assert sorted(h.names("tool")) == ["calculator", "get_weather", "get_weather"]
    assert len(h.runs("chat_model")) == 3
    assert "6 * 7 = 42" in out["messages"][-1].content


async def test_agent_runs_async_with_ainvoke_and_astream():
    h = Collector()
    graph = demo.agent(token_delay=0)
    out = await graph.ainvoke(WEATHER, {"callbacks": [h]})
    assert "Paris: 18°C" in out["messages"][-1].content
    assert len(h.runs("chat_model")) == 2
    updates = [u async for u in graph.astream(WEATHER, stream_mode="updates")]
    assert [next(iter(u)) for u in updates] == ["agent", "tools", "agent"]
    tokens = [
        chunk.content
        async for chunk, meta in graph.astream(WEATHER, stream_mode="messages")
        if isinstance(chunk, AIMessageChunk) and meta["langgraph_node"] == "agent"
    ]
    assert "".join(tokens) == out["messages"][-1].content


async def test_agent_handles_concurrent_async_callers():
    graph = demo.agent(token_delay=0)
    questions = ["What's the weather in Tokyo?", "What is 2 + 3?", "How do callbacks work?"]
    outs = await asyncio.gather(*(graph.ainvoke({"messages": [("user", q)]}) for q in questions))
    assert "Tokyo" in outs[0]["messages"][-1].content
    assert "2 + 3 = 5" in outs[1]["messages"][-1].content
    assert outs[2]["messages"][2].name == "search_docs"


def test_agent_batch_keeps_inputs_apart():
    h = Collector()
    inputs = [
        {"messages": [("user", f"What's the weather in {city}?")]} for city in ("Paris", "London", "Tokyo", "Berlin")
    ]
    outs = demo.agent(token_delay=0).batch(inputs, {"callbacks": [h], "max_concurrency": 2})
    for city, out in zip(("Paris", "London", "Tokyo", "Berlin"), outs, strict=True):
        assert f"The weather in {city}:" in out["messages"][-1].content
    roots = [r for r, s in h.starts.items() if s["parent"] is None]
    assert len(roots) == 4
    assert len(h.runs("tool")) == 4


def test_chain_is_prompt_model_parser():
    h = Collector()
    text = demo.chain(token_delay=0).invoke({"question": "What is a run?"}, {"callbacks": [h]})
    assert isinstance(text, str)
    assert 'You asked: "What is a run?"' in text
    (run_id,) = h.runs("chat_model")
    assert "".join(t for t, _ in h.tokens[run_id]) == text
    names = h.names("chain")
    assert names[0] == "RunnableSequence"
    assert {"ChatPromptTemplate", "StrOutputParser"} <= set(names)


def test_agent_accepts_another_model_and_tools():
    scripted = model(responses=["No tools needed."])
    out = demo.agent(scripted, tools=[demo.calculator]).invoke(WEATHER)
    assert out["messages"][-1].content == "No tools needed."


def test_agent_without_langgraph_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "langgraph.graph", None)
    with pytest.raises(ImportError, match=r"pip install 'nbcallbacks\[demo\]'"):
        demo.agent()
    # The model, tools and chain need only langchain-core.
    assert demo.chain(token_delay=0).invoke({"question": "still fine?"})
