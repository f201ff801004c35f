"""OpenTelemetrySink against the real OpenTelemetry SDK (TracerProvider + InMemorySpanExporter), demo runs."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import uuid

import pytest
from langchain_core.runnables import RunnableLambda
from opentelemetry import trace as trace_api
from opentelemetry.sdk.trace import TracerProvider

from nbcallbacks import NotebookHandler, OpenTelemetrySink
from nbcallbacks.demo import DemoChatModel, DemoStreamError, agent, chain
from nbcallbacks.otel import conventions as sc
from nbcallbacks.otel.export import span_id_of, trace_id_of

QUESTION = {"messages": [("user", "What's the weather in Paris?")]}
CONTENT_KEYS = (sc.OI_INPUT_VALUE, sc.OI_OUTPUT_VALUE, sc.GEN_AI_INPUT_MESSAGES, sc.GEN_AI_OUTPUT_MESSAGES)


def traced(provider, **kwargs):
    sink = OpenTelemetrySink(provider, **kwargs)
    return NotebookHandler(sinks=[sink]), sink


def finished(handler, exporter):
    assert handler.flush()
    return {span.attributes[sc.NB_RUN_ID]: span for span in exporter.get_finished_spans()}


def root_of(runs, run):
    by_id = {r.run_id: r for r in runs}
    while run.parent_run_id is not None:
        run = by_id[run.parent_run_id]
    return run


def check_tree(handler, spans):
    """One span per run, parents from run ids, one trace id per root, the run's own times and status."""
    runs = handler.recorder.runs()
    assert set(spans) == {run.run_id for run in runs}
    for run in runs:
        span = spans[run.run_id]
        assert span.name == run.name
        assert span.context.span_id == span_id_of(run.run_id)
        assert span.context.trace_id == trace_id_of(root_of(runs, run).run_id)
        if run.parent_run_id is None:
            assert span.parent is None
        else:
            assert span.parent.span_id == span_id_of(run.parent_run_id)
            assert span.parent.trace_id == span.context.trace_id
        assert span.start_time == round(run.start * 1e9)
        assert span.end_time == round(run.end * 1e9)
        assert span.attributes[sc.NB_RUN_TYPE] == run.run_type
        assert span.attributes[sc.NB_STATUS] == run.status
        expected = {"ok": trace_api.StatusCode.OK, "error": trace_api.StatusCode.ERROR}.get(run.status)
        assert span.status.status_code == (expected or trace_api.StatusCode.UNSET)


def test_agent_with_tool_calls_one_span_per_run_with_both_conventions(otel):
    provider, exporter = otel
    h, _ = traced(provider)
    agent(token_delay=0).invoke(QUESTION, config={"callbacks": [h]})
    spans = finished(h, exporter)
    check_tree(h, spans)
    runs = h.recorder.runs()
    assert len(spans) == len(runs) == 9
    root = spans[runs[0].run_id]
    assert root.attributes[sc.OI_SPAN_KIND] == "AGENT"
    assert root.attributes[sc.GEN_AI_OPERATION_NAME] == "invoke_agent"
    assert root.attributes[sc.GEN_AI_AGENT_NAME] == "LangGraph"
    models = [r for r in runs if r.run_type == "chat_model"]
    assert len(models) == 2
    for run in models:
        attrs = spans[run.run_id].attributes
        assert spans[run.run_id].kind is trace_api.SpanKind.CLIENT
        assert attrs[sc.OI_SPAN_KIND] == "LLM"
        assert attrs[sc.GEN_AI_OPERATION_NAME] == "chat"
        assert attrs[sc.GEN_AI_PROVIDER_NAME] == "nbcallbacks"
        assert attrs[sc.GEN_AI_REQUEST_MODEL] == attrs[sc.GEN_AI_RESPONSE_MODEL] == attrs[sc.OI_MODEL_NAME] == run.model
        assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == attrs[sc.OI_TOKENS_PROMPT] == run.input_tokens
        assert attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == attrs[sc.OI_TOKENS_COMPLETION] == run.output_tokens
        assert attrs[sc.OI_TOKENS_TOTAL] == run.total_tokens
        assert attrs[sc.GEN_AI_TIME_TO_FIRST_CHUNK] == pytest.approx(run.first_token - run.start)
        assert attrs[sc.NB_LANGGRAPH_NODE] == "agent"
        assert attrs[sc.NB_LANGGRAPH_STEP] == run.langgraph_step
        assert attrs[sc.NB_STREAMED_CHUNKS] == run.streamed_chunks
        assert attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] in {("tool_calls",), ("stop",)}
        assert attrs[sc.GEN_AI_RESPONSE_ID] == run.outputs["id"]
        assert json.loads(attrs[sc.NB_METADATA])["ls_provider"] == "nbcallbacks"
    tool = next(r for r in runs if r.run_type == "tool")
    attrs = spans[tool.run_id].attributes
    assert attrs[sc.OI_SPAN_KIND] == "TOOL"
    assert attrs[sc.GEN_AI_OPERATION_NAME] == "execute_tool"
    assert attrs[sc.GEN_AI_TOOL_NAME] == attrs[sc.OI_TOOL_NAME] == "get_weather"
    node = next(r for r in runs if r.name == "tools")
    assert spans[node.run_id].attributes[sc.OI_SPAN_KIND] == "CHAIN"
    assert sc.GEN_AI_OPERATION_NAME not in spans[node.run_id].attributes
    for span in spans.values():  # content is opt-in
        assert not set(CONTENT_KEYS) & set(span.attributes)
        assert not [key for key in span.attributes if key.startswith(("llm.input_messages", "llm.output_messages"))]
    status = h.sink_status()[0]
    assert status["spans_ended"] == 9
    assert status["spans_incomplete"] == 0
    assert status["errors"] == 0


async def test_async_gather_keeps_each_tree_in_its_own_trace(otel):
    provider, exporter = otel
    h, _ = traced(provider)
    graph = agent(token_delay=0)
    questions = ["What's the weather in Paris?", "What is 12 * 7?", "What's the weather in Oslo?"]
    await asyncio.gather(
        *(graph.ainvoke({"messages": [("user", q)]}, config={"callbacks": [h]}) for q in questions),
    )
    spans = finished(h, exporter)
    check_tree(h, spans)
    assert len({span.context.trace_id for span in spans.values()}) == 3
    roots = [span for span in spans.values() if span.parent is None]
    assert len(roots) == 3


def test_mid_stream_error_is_an_error_span_with_an_exception_event(otel):
    provider, exporter = otel
    h, _ = traced(provider)
    failing = chain(DemoChatModel(token_delay=0, error_after=3))
    with pytest.raises(DemoStreamError):
        failing.invoke({"question": "Tell me a long story please"}, config={"callbacks": [h]})
    spans = finished(h, exporter)
    check_tree(h, spans)
    model = next(r for r in h.recorder.runs() if r.run_type == "chat_model")
    span = spans[model.run_id]
    assert span.status.status_code is trace_api.StatusCode.ERROR
    assert span.status.description == model.error
    assert span.attributes[sc.ERROR_TYPE] == "DemoStreamError"
    (event,) = span.events
    assert event.name == "exception"
    assert event.attributes[sc.EXCEPTION_TYPE] == "DemoStreamError"
    assert "Traceback" in event.attributes[sc.EXCEPTION_STACKTRACE]
    assert event.timestamp == span.end_time
    assert span.attributes[sc.NB_STREAMED_CHUNKS] == 3
    root = spans[h.recorder.runs()[0].run_id]
    assert root.status.status_code is trace_api.StatusCode.ERROR


def test_retry_attempts_are_sibling_spans_under_the_retry(otel):
    provider, exporter = otel
    h, _ = traced(provider)
    attempts = []

    def flaky(x: str) -> str:
        attempts.append(x)
        if len(attempts) < 3:
            raise ValueError("try again")
        return x.upper()

    retried = RunnableLambda(flaky).with_retry(stop_after_attempt=3, wait_exponential_jitter=False)
    assert retried.invoke("ok", config={"callbacks": [h]}) == "OK"
    spans = finished(h, exporter)
    check_tree(h, spans)
    runs = h.recorder.runs()
    root = runs[0]
    children = [r for r in runs if r.parent_run_id == root.run_id]
    assert [r.status for r in children] == ["error", "error", "ok"]
    assert spans[root.run_id].status.status_code is trace_api.StatusCode.OK
    assert [spans[r.run_id].status.status_code for r in children] == [
        trace_api.StatusCode.ERROR,
        trace_api.StatusCode.ERROR,
        trace_api.StatusCode.OK,
    ]
    assert len({spans[r.run_id].parent.span_id for r in children}) == 1


def test_nested_sub_chains_nest_as_spans(otel):
    provider, exporter = otel
    h, _ = traced(provider)
    inner = chain(DemoChatModel(token_delay=0))

    def middle(question: str, config) -> str:
        return inner.invoke({"question": question}, config=config)

    outer = RunnableLambda(lambda q: q) | RunnableLambda(middle)
    outer.invoke("Why is the sky blue?", config={"callbacks": [h]})
    spans = finished(h, exporter)
    check_tree(h, spans)
    depths = dict(zip(*(h.runs_dataframe()[c].tolist() for c in ("run_id", "depth")), strict=True))
    assert max(depths.values()) >= 3
    deepest = max(depths, key=lambda run_id: depths[run_id])
    hops, span = 0, spans[deepest]
    by_span_id = {s.context.span_id: s for s in spans.values()}
    while span.parent is not None:
        span = by_span_id[span.parent.span_id]
        hops += 1
    assert hops == depths[deepest]


def test_content_is_captured_only_on_request_and_bounded(otel):
    provider, exporter = otel
    h, _ = traced(provider, capture_content=True, max_attribute_chars=64)
    agent(token_delay=0).invoke(QUESTION, config={"callbacks": [h]})
    spans = finished(h, exporter)
    model = next(r for r in h.recorder.runs() if r.run_type == "chat_model")
    attrs = spans[model.run_id].attributes
    for key in CONTENT_KEYS:
        assert key in attrs
        assert len(attrs[key]) <= 64
    assert attrs[sc.OI_INPUT_MIME] == "application/json"
    assert "more chars]" in attrs[sc.GEN_AI_INPUT_MESSAGES]
    for span in spans.values():
        for value in span.attributes.values():
            if isinstance(value, str):
                assert len(value) <= 64


def test_content_messages_are_genai_parts(otel):
    provider, exporter = otel
    h, _ = traced(provider, capture_content=True, max_attribute_chars=100_000)
    agent(token_delay=0).invoke(QUESTION, config={"callbacks": [h]})
    spans = finished(h, exporter)
    first = next(r for r in h.recorder.runs() if r.run_type == "chat_model")
    attrs = spans[first.run_id].attributes
    inputs = json.loads(attrs[sc.GEN_AI_INPUT_MESSAGES])
    assert [m["role"] for m in inputs] == ["system", "user"]
    assert inputs[1]["parts"] == [{"type": "text", "content": "What's the weather in Paris?"}]
    (output,) = json.loads(attrs[sc.GEN_AI_OUTPUT_MESSAGES])
    assert output["role"] == "assistant"
    assert output["finish_reason"] == "tool_calls"
    assert output["parts"][0]["type"] == "tool_call"
    assert output["parts"][0]["name"] == "get_weather"
    assert attrs["llm.input_messages.1.message.role"] == "user"
    assert attrs["llm.input_messages.1.message.content"] == "What's the weather in Paris?"
    assert attrs["llm.output_messages.0.message.role"] == "assistant"


def test_root_joins_the_callers_active_span(otel):
    provider, exporter = otel
    h, _ = traced(provider)
    tracer = provider.get_tracer("notebook")
    with tracer.start_as_current_span("cell") as cell:
        agent(token_delay=0).invoke(QUESTION, config={"callbacks": [h]})
    outer = cell.get_span_context()
    h.flush()
    spans = {s.attributes.get(sc.NB_RUN_ID): s for s in exporter.get_finished_spans()}
    assert spans.pop(None).name == "cell"
    assert {span.context.trace_id for span in spans.values()} == {outer.trace_id}
    root = spans[h.recorder.runs()[0].run_id]
    assert root.parent.span_id == outer.span_id
    # a later root outside the span starts its own trace
    agent(token_delay=0).invoke(QUESTION, config={"callbacks": [h]})
    h.flush()
    later = [s for s in exporter.get_finished_spans() if s.context.trace_id != outer.trace_id]
    assert len(later) == 9
    assert {s.context.trace_id for s in later} == {trace_id_of(h.recorder.runs()[9].run_id)}


async def test_async_roots_join_the_span_active_in_their_own_task(otel):
    provider, exporter = otel
    h, _ = traced(provider)
    tracer = provider.get_tracer("notebook")
    graph = agent(token_delay=0)

    async def one(question):
        with tracer.start_as_current_span(f"task {question}") as span:
            await graph.ainvoke({"messages": [("user", question)]}, config={"callbacks": [h]})
        return span.get_span_context()

    outers = await asyncio.gather(one("What's the weather in Paris?"), one("What is 12 * 7?"))
    assert h.flush()
    spans = {s.attributes[sc.NB_RUN_ID]: s for s in exporter.get_finished_spans() if sc.NB_RUN_ID in s.attributes}
    assert len(spans) == len(h.recorder.runs())
    roots = [span for span in spans.values() if span.attributes.get(sc.NB_PARENT_RUN_ID) is None]
    assert sorted(root.parent.span_id for root in roots) == sorted(outer.span_id for outer in outers)
    for outer in outers:
        in_trace = [span for span in spans.values() if span.context.trace_id == outer.trace_id]
        assert len(in_trace) == len(spans) // 2


def test_interrupt_is_not_an_error(otel):
    from langgraph.checkpoint.memory import MemorySaver
    from langgraph.graph import START, MessagesState, StateGraph
    from langgraph.types import interrupt

    def ask(state):
        interrupt("approve?")
        return {"messages": []}

    graph = StateGraph(MessagesState)
    graph.add_node("ask", ask)
    graph.add_edge(START, "ask")
    compiled = graph.compile(checkpointer=MemorySaver())
    provider, exporter = otel
    h, _ = traced(provider)
    compiled.invoke(QUESTION, config={"callbacks": [h], "configurable": {"thread_id": "t1"}})
    spans = finished(h, exporter)
    interrupted = [r for r in h.recorder.runs() if r.status == "interrupted"]
    assert interrupted
    for run in interrupted:
        span = spans[run.run_id]
        assert span.status.status_code is trace_api.StatusCode.UNSET
        assert span.attributes[sc.NB_STATUS] == "interrupted"
        assert sc.ERROR_TYPE not in span.attributes
        assert not span.events
    conversation = {span.attributes.get(sc.GEN_AI_CONVERSATION_ID) for span in spans.values()}
    assert conversation == {"t1"}


def test_runs_that_never_ended_are_exported_marked_at_flush_and_close(otel):
    provider, exporter = otel
    h, _ = traced(provider)
    abandoned, still_open, child = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    h.on_chain_start({}, {"x": 1}, run_id=abandoned, name="abandoned")
    h.recorder.mark_abandoned()  # what the notebook does when a cell ends with the run open
    h.on_chain_start({}, {"x": 2}, run_id=still_open, name="open")
    h.on_tool_start({}, "input", run_id=child, parent_run_id=still_open, name="finished_child")
    h.on_tool_end("output", run_id=child, parent_run_id=still_open)
    h.flush()
    spans = {s.attributes[sc.NB_RUN_ID]: s for s in exporter.get_finished_spans()}
    assert set(spans) == {str(abandoned), str(child)}
    assert spans[str(abandoned)].attributes[sc.NB_INCOMPLETE] is True
    assert spans[str(abandoned)].attributes[sc.NB_ABANDONED] is True
    assert sc.NB_INCOMPLETE not in spans[str(child)].attributes
    assert spans[str(child)].parent.span_id == span_id_of(str(still_open))
    h._sink_writer.close()
    spans = {s.attributes[sc.NB_RUN_ID]: s for s in exporter.get_finished_spans()}
    assert set(spans) == {str(abandoned), str(child), str(still_open)}
    assert spans[str(still_open)].attributes[sc.NB_INCOMPLETE] is True
    assert spans[str(still_open)].context.trace_id == spans[str(child)].context.trace_id
    assert h.sink_status()[0]["spans_incomplete"] == 2


def test_endpoint_backlog_is_bounded_and_drops_are_counted():
    with socket.socket() as probe:  # a port nobody listens on: every export fails fast
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sink = OpenTelemetrySink(endpoint=f"http://127.0.0.1:{port}/v1/traces", max_queue_size=2, export_timeout=0.5)
    h = NotebookHandler(sinks=[sink])
    for i in range(20):
        h.on_tool_start({}, "x", run_id=uuid.uuid4(), name=f"tool{i}")
    for run in h.recorder.runs():
        h.on_tool_end("y", run_id=uuid.UUID(run.run_id))
    h.flush()
    status = h.sink_status()[0]
    assert status["spans_ended"] == 20
    assert status["spans_dropped"] > 0
    assert status["spans_exported"] == 0
    assert status["spans_dropped"] + status["spans_failed"] + status["spans_queued"] == 20
    assert status["errors"] == 1  # shown in the widget as a sink error, once
    (error,) = [e for e in h.recorder.handler_errors() if "SpanExportError" in e.error]
    assert "spans dropped" in error.error
    h._sink_writer.close()


def test_configuration_errors_are_clear():
    with pytest.raises(TypeError, match="SDK TracerProvider"):
        OpenTelemetrySink(trace_api.NoOpTracerProvider())
    with pytest.raises(ValueError, match="endpoint"):
        OpenTelemetrySink(TracerProvider(), endpoint="http://127.0.0.1:1/v1/traces")
    with pytest.raises(ValueError, match="max_attribute_chars"):
        OpenTelemetrySink(TracerProvider(), max_attribute_chars=0)


def test_importing_nbcallbacks_never_imports_its_otel_modules_and_a_missing_sdk_names_the_extra():
    code = (
        "import sys, nbcallbacks  # (langsmith, under LangChain, may import OpenTelemetry itself)\n"
        "assert not [m for m in sys.modules if m.startswith('nbcallbacks.otel')], 'imported nbcallbacks.otel'\n"
        "sys.modules['opentelemetry.sdk.trace'] = None\n"
        "try:\n"
        "    nbcallbacks.OpenTelemetrySink\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert 'pip install "nbcallbacks[otel]"' in result.stdout
