"""NotebookHandler.from_otel: spans made by OpenInference's instrumentor, by OpenTelemetrySink, by hand; any format."""

from __future__ import annotations

import json

import pytest
from google.protobuf import json_format
from langchain_core.tracers.run_collector import RunCollectorCallbackHandler
from opentelemetry import trace as trace_api
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

from nbcallbacks import NotebookHandler, OpenTelemetrySink
from nbcallbacks.demo import DemoChatModel, DemoStreamError, agent, chain
from nbcallbacks.otel import conventions as sc
from nbcallbacks.otel.importer import records_from_otel

QUESTION = {"messages": [("user", "What's the weather in Paris?")]}
COMPARED = (
    "run_id",
    "parent_run_id",
    "name",
    "run_type",
    "status",
    "depth",
    "orphan",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "model",
    "langgraph_node",
    "langgraph_step",
    "tags",
    "metadata",
    "error",
    "error_type",
    "traceback",
    "metrics",
    "streamed_chunks",
    "thread",
    "hidden",
    "abandoned",
    "provider",
    "display_status",
    "key",
)


def rows(handler):
    frame = handler.runs_dataframe()
    out = [
        {key: None if _missing(record[key]) else record[key] for key in COMPARED} for record in frame.to_dict("records")
    ]
    return sorted(out, key=lambda r: r["run_id"])


def _missing(value):
    try:
        return bool(value is None or value != value)  # noqa: PLR0124 - NaN / NA
    except (TypeError, ValueError):
        return False


def tree(handler):
    """(depth, path of names from the root) per run, in start order; tokens per model run."""
    runs = handler.recorder.runs()
    by_id = {r.run_id: r for r in runs}

    def path(run):
        names = [run.name]
        while run.parent_run_id is not None and run.parent_run_id in by_id:
            run = by_id[run.parent_run_id]
            names.append(run.name)
        return tuple(reversed(names))

    return [(depths(handler)[r.run_id], path(r)) for r in runs]


def depths(handler):
    frame = handler.runs_dataframe()
    return dict(zip(frame["run_id"].tolist(), frame["depth"].tolist(), strict=True))


# --- OpenInference's instrumentor


def _collector_tree(run, depth=0, prefix=()):
    here = (*prefix, run.name)
    out = [(depth, here, run)]
    for child in sorted(run.child_runs, key=lambda c: (c.start_time, c.dotted_order or "")):
        out.extend(_collector_tree(child, depth + 1, here))
    return out


def _collector_tokens(run):
    generation = run.outputs["generations"][0][0]
    message = generation["message"]
    usage = message.usage_metadata if hasattr(message, "usage_metadata") else message["kwargs"]["usage_metadata"]
    return usage["input_tokens"], usage["output_tokens"], usage["total_tokens"]


def test_openinference_spans_rebuild_the_tree_langchain_records(otel):
    from openinference.instrumentation.langchain import LangChainInstrumentor

    provider, exporter = otel
    instrumentor = LangChainInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        collector = RunCollectorCallbackHandler()
        agent(token_delay=0).invoke(QUESTION, config={"callbacks": [collector]})
    finally:
        instrumentor.uninstrument()
    (root,) = collector.traced_runs
    expected = _collector_tree(root)
    h = NotebookHandler.from_otel(exporter.get_finished_spans())
    got = tree(h)
    assert len(got) == len(expected) == 9
    assert sorted(got) == sorted((depth, path) for depth, path, _ in expected)
    assert got == [(depth, path) for depth, path, _ in expected]  # start order too
    runs = h.recorder.runs()
    models = [r for r in runs if r.run_type in {"llm", "chat_model"}]
    expected_models = [run for _, _, run in expected if run.run_type == "llm"]
    assert [(r.input_tokens, r.output_tokens, r.total_tokens) for r in models] == [
        _collector_tokens(run) for run in expected_models
    ]
    assert [r.model for r in models] == ["nbcallbacks-demo-1"] * 2
    assert [r.run_type for r in runs if r.name == "get_weather"] == ["tool"]
    assert {r.langgraph_node for r in runs if depths(h)[r.run_id] == 1} == {"agent", "tools"}
    assert all(r.status == "ok" for r in runs)
    assert isinstance(runs[0].inputs, dict)  # OpenInference captures content: it comes back as inputs


# --- our own export, round trip


def _exported_runs(provider, h):
    agent(token_delay=0).invoke(QUESTION, config={"callbacks": [h], "tags": ["demo"], "metadata": {"who": "test"}})
    with pytest.raises(DemoStreamError):
        chain(DemoChatModel(token_delay=0, error_after=2)).invoke({"question": "A long one"}, config={"callbacks": [h]})


def test_own_export_round_trips(otel):
    provider, exporter = otel
    h = NotebookHandler(sinks=[OpenTelemetrySink(provider, max_attribute_chars=100_000)])
    _exported_runs(provider, h)
    h.flush()
    back = NotebookHandler.from_otel(exporter.get_finished_spans())
    assert rows(back) == rows(h)
    assert tree(back) == tree(h)
    original = {r.run_id: r for r in h.recorder.runs()}
    for run in back.recorder.runs():
        assert run.start == pytest.approx(original[run.run_id].start, abs=1e-6)
        assert run.end == pytest.approx(original[run.run_id].end, abs=1e-6)
        if run.first_token is not None:
            assert run.first_token == pytest.approx(original[run.run_id].first_token, abs=1e-6)
    events = back.to_dataframe()
    assert len(events) == 2 * len(original)  # a start and an end (or error) per run
    assert set(events["event"]) >= {"chain_start", "chat_model_start", "llm_end", "llm_error", "tool_end"}


def test_own_export_round_trips_through_otlp_json_and_protobuf(otel, tmp_path):
    provider, exporter = otel
    h = NotebookHandler(sinks=[OpenTelemetrySink(provider, capture_content=True)])
    _exported_runs(provider, h)
    h.flush()
    spans = exporter.get_finished_spans()
    request = encode_spans(spans)
    expected = rows(NotebookHandler.from_otel(spans))

    protobuf = request.SerializeToString()
    assert rows(NotebookHandler.from_otel(protobuf)) == expected

    as_json = json_format.MessageToDict(request)  # protobuf's JSON mapping: base64 ids
    lines = tmp_path / "base64.jsonl"
    half = len(as_json["resourceSpans"][0]["scopeSpans"][0]["spans"]) // 2
    first = json.loads(json.dumps(as_json))
    second = json.loads(json.dumps(as_json))
    first["resourceSpans"][0]["scopeSpans"][0]["spans"] = first["resourceSpans"][0]["scopeSpans"][0]["spans"][:half]
    second["resourceSpans"][0]["scopeSpans"][0]["spans"] = second["resourceSpans"][0]["scopeSpans"][0]["spans"][half:]
    lines.write_text(json.dumps(first) + "\n" + json.dumps(second) + "\n")  # one request per line
    assert rows(NotebookHandler.from_otel(lines)) == expected

    hex_ids = json.loads(json.dumps(as_json))  # the OTLP/JSON specification (and the collector's file exporter)
    for span in hex_ids["resourceSpans"][0]["scopeSpans"][0]["spans"]:
        for key, size in (("traceId", 16), ("spanId", 8), ("parentSpanId", 8)):
            if span.get(key):
                span[key] = _b64_to_hex(span[key], size)
    hex_file = tmp_path / "hex.json"
    hex_file.write_text(json.dumps(hex_ids))
    back = NotebookHandler.from_otel(str(hex_file))
    assert rows(back) == expected
    model = next(r for r in back.recorder.runs() if r.run_type == "chat_model")
    assert model.inputs["messages"][1]["content"] == "What's the weather in Paris?"


def _b64_to_hex(text, size):
    import base64

    return base64.b64decode(text).hex().rjust(size * 2, "0")


# --- spans made by hand: GenAI only, unknown spans, missing parents


def test_genai_spans_unknown_spans_and_orphans(otel):
    provider, exporter = otel
    tracer = provider.get_tracer("service")
    with tracer.start_as_current_span("handle request", attributes={"http.route": "/ask", "retries": 2}):
        with tracer.start_as_current_span(
            "chat gpt-x",
            kind=trace_api.SpanKind.CLIENT,
            attributes={
                sc.GEN_AI_OPERATION_NAME: "chat",
                sc.GEN_AI_REQUEST_MODEL: "gpt-x",
                sc.GEN_AI_PROVIDER_NAME: "openai",
                sc.GEN_AI_USAGE_INPUT_TOKENS: 12,
                sc.GEN_AI_USAGE_OUTPUT_TOKENS: 5,
            },
        ):
            pass
        with (
            tracer.start_as_current_span("execute_tool lookup", attributes={sc.GEN_AI_OPERATION_NAME: "execute_tool"}),
            tracer.start_as_current_span("db query") as failing,
        ):
            failing.record_exception(KeyError("missing"))
            failing.set_status(trace_api.Status(trace_api.StatusCode.ERROR, "missing key"))
    spans = exporter.get_finished_spans()
    outer = next(s for s in spans if s.name == "handle request")
    partial = [s for s in spans if s is not outer]  # the outer span was not read: its children are orphans
    h = NotebookHandler.from_otel(partial)
    by_name = {r.name: r for r in h.recorder.runs()}
    chat = by_name["chat gpt-x"]
    assert (chat.run_type, chat.model, chat.input_tokens, chat.output_tokens, chat.total_tokens) == (
        "chat_model",
        "gpt-x",
        12,
        5,
        17,
    )
    orphan = dict(zip(*(h.runs_dataframe()[c].tolist() for c in ("run_id", "orphan")), strict=True))
    assert orphan[chat.run_id]
    assert chat.parent_run_id == f"{outer.context.span_id:016x}"
    assert by_name["execute_tool lookup"].run_type == "tool"
    assert orphan[by_name["execute_tool lookup"].run_id]
    query = by_name["db query"]
    assert (query.run_type, query.status, query.error, query.error_type) == (
        "chain",
        "error",
        "missing key",
        "KeyError",
    )
    assert "otel.span_kind" in query.metadata
    assert query.parent_run_id == by_name["execute_tool lookup"].run_id
    assert not orphan[query.run_id]
    assert depths(h)[query.run_id] == 1
    whole = NotebookHandler.from_otel(spans)
    root = next(r for r in whole.recorder.runs() if r.name == "handle request")
    assert root.run_type == "chain"
    assert root.metadata["http.route"] == "/ask"
    assert root.metadata["retries"] == 2
    assert not whole.runs_dataframe()["orphan"].any()
    assert whole.runs_dataframe()["depth"].tolist() == [0, 1, 1, 2]


def test_records_have_the_sink_format(otel):
    from nbcallbacks.sinks import EVENT_FIELDS, RUN_FIELDS

    provider, exporter = otel
    h = NotebookHandler(sinks=[OpenTelemetrySink(provider)])
    agent(token_delay=0).invoke(QUESTION, config={"callbacks": [h]})
    h.flush()
    records = records_from_otel(exporter.get_finished_spans())
    runs = [r for r in records if r["kind"] == "run"]
    events = [r for r in records if r["kind"] == "event"]
    assert len(runs) == 9
    assert all(set(RUN_FIELDS) <= set(r) for r in runs)
    assert all(set(EVENT_FIELDS) <= set(e) for e in events)
    assert [e["seq"] for e in events] == list(range(len(events)))


def test_incomplete_runs_come_back_running_and_abandoned(otel):
    import uuid

    provider, exporter = otel
    h = NotebookHandler(sinks=[OpenTelemetrySink(provider)])
    run_id = uuid.uuid4()
    h.on_chain_start({}, {"x": 1}, run_id=run_id, name="never ended")
    h._sink_writer.close()
    (run,) = NotebookHandler.from_otel(exporter.get_finished_spans()).recorder.runs()
    assert (run.run_id, run.status, run.end, run.abandoned) == (str(run_id), "running", None, True)


def test_bad_sources():
    with pytest.raises(FileNotFoundError):
        NotebookHandler.from_otel("/nonexistent/spans.jsonl")
    with pytest.raises(TypeError):
        NotebookHandler.from_otel(42)
    assert NotebookHandler.from_otel([]).recorder.runs() == []


def test_a_torn_or_foreign_line_in_an_otlp_json_file_is_skipped(otel, tmp_path):
    provider, exporter = otel
    with provider.get_tracer("t").start_as_current_span("kept", attributes={"n": 1}):
        pass
    line = json.dumps(json_format.MessageToDict(encode_spans(exporter.get_finished_spans())))
    path = tmp_path / "traces.jsonl"
    path.write_text(f'{{"not":"otlp"}}\n{line}\n{line[: len(line) // 2]}')  # a crash mid-write leaves half a line
    (run,) = NotebookHandler.from_otel(path).recorder.runs()
    assert (run.name, run.run_type, run.metadata["n"]) == ("kept", "chain", 1)


def test_a_span_kind_reads_the_same_from_every_format(otel):
    provider, exporter = otel
    tracer = provider.get_tracer("service")
    for kind in (trace_api.SpanKind.INTERNAL, trace_api.SpanKind.SERVER, trace_api.SpanKind.CLIENT):
        with tracer.start_as_current_span(kind.name.lower(), kind=kind):
            pass
    spans = exporter.get_finished_spans()
    request = encode_spans(spans)
    sources = {
        "spans": spans,
        "protobuf": request.SerializeToString(),
        "json enum names": json_format.MessageToDict(request),
        "json enum numbers (the OTLP/JSON specification)": json_format.MessageToDict(
            request, use_integers_for_enums=True
        ),
    }
    for label, source in sources.items():
        kinds = {run.name: run.metadata["otel.span_kind"] for run in NotebookHandler.from_otel(source).recorder.runs()}
        assert kinds == {"internal": "INTERNAL", "server": "SERVER", "client": "CLIENT"}, label
