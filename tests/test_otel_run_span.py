"""run_span: what a run's span says, decided without OpenTelemetry's SDK, and read back by the importer."""

from __future__ import annotations

import time

import pytest

from nbcallbacks import NotebookHandler
from nbcallbacks.demo import DemoChatModel, DemoStreamError, agent, chain
from nbcallbacks.otel import conventions as sc
from nbcallbacks.otel.importer import records_from_otel
from nbcallbacks.otel.run_span import Lineage, span_id_of, span_of_run, trace_id_of
from nbcallbacks.sinks.records import run_record
from nbcallbacks.tree import Tree

QUESTION = {"messages": [("user", "What's the weather in Paris?")]}
SESSION = "s-run-span"


def run_records(handler):
    """The handler's runs as the sinks' run records (what OpenTelemetrySink receives)."""
    runs = handler.recorder.runs()
    tree = Tree.of(runs)
    return [run_record(run, tree.derived(run.run_id), SESSION) for run in runs]


def spans_of(records, *, capture_content=False):
    lineage = Lineage()
    for record in records:
        lineage.learn(record)
    spans = []
    for record in records:
        parent = record["parent_run_id"]
        spans.append(
            span_of_run(
                record,
                trace_id=trace_id_of(lineage.root(record["run_id"])),
                parent_span_id=None if parent is None else span_id_of(parent),
                incomplete=record["end"] is None,
                is_graph=record["run_id"] in lineage.graphs,
                session=None,
                max_attribute_chars=100_000,
                capture_content=capture_content,
            )
        )
    return {span.attributes[sc.NB_RUN_ID]: span for span in spans}


def test_an_agents_runs_become_spans_and_come_back_without_a_provider():
    h = NotebookHandler()
    agent(token_delay=0).invoke(QUESTION, config={"callbacks": [h]})
    records = run_records(h)
    spans = spans_of(records, capture_content=True)
    root = records[0]
    assert spans[root["run_id"]].attributes[sc.OI_SPAN_KIND] == sc.KIND_AGENT
    assert spans[root["run_id"]].parent_span_id is None
    for record in records:
        span = spans[record["run_id"]]
        assert span.name == record["name"]
        assert span.span_id == span_id_of(record["run_id"])
        assert span.trace_id == trace_id_of(root["run_id"])
        assert span.start_ns == round(record["start"] * 1e9)
        assert span.end_ns == round(record["end"] * 1e9)
        assert span.status_code == "OK"
        assert span.attributes[sc.NB_SESSION] == SESSION
    model = next(r for r in records if r["run_type"] == "chat_model")
    span = spans[model["run_id"]]
    assert span.kind == "CLIENT"
    attrs = span.attributes
    assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == attrs[sc.OI_TOKENS_PROMPT] == model["input_tokens"]
    assert attrs[sc.GEN_AI_INPUT_MESSAGES].startswith("[")

    back = {r["run_id"]: r for r in records_from_otel(list(spans.values())) if r["kind"] == "run"}
    assert set(back) == {r["run_id"] for r in records}
    for record in records:
        again = back[record["run_id"]]
        for key in ("name", "run_type", "status", "parent_run_id", "depth", "input_tokens", "output_tokens", "model"):
            assert again[key] == record[key], key
        assert again["start"] == pytest.approx(record["start"], abs=1e-6)
        assert again["end"] == pytest.approx(record["end"], abs=1e-6)


def test_an_error_run_is_an_error_span_with_its_exception_event_at_the_end():
    h = NotebookHandler()
    with pytest.raises(DemoStreamError):
        chain(DemoChatModel(token_delay=0, error_after=3)).invoke(
            {"question": "A long story"}, config={"callbacks": [h]}
        )
    records = run_records(h)
    model = next(r for r in records if r["run_type"] == "chat_model")
    span = spans_of(records)[model["run_id"]]
    assert (span.status_code, span.status_message) == ("ERROR", model["error"])
    ((name, timestamp, attributes),) = span.events
    assert (name, timestamp) == (sc.EXCEPTION_EVENT, span.end_ns)
    assert attributes[sc.EXCEPTION_TYPE] == span.attributes[sc.ERROR_TYPE] == "DemoStreamError"
    assert "Traceback" in attributes[sc.EXCEPTION_STACKTRACE]
    (again,) = (r for r in records_from_otel([span]) if r["kind"] == "run")
    assert (again["status"], again["error"], again["error_type"]) == ("error", model["error"], "DemoStreamError")
    assert again["traceback"] == model["traceback"]


def test_a_run_still_open_ends_now_marked_incomplete():
    h = NotebookHandler()
    agent(token_delay=0).invoke(QUESTION, config={"callbacks": [h]})
    record = {**run_records(h)[0], "end": None, "status": "running"}
    before = time.time_ns()
    span = spans_of([record])[record["run_id"]]
    after = time.time_ns()
    assert span.attributes[sc.NB_INCOMPLETE] is True
    assert span.start_ns <= before <= span.end_ns <= after  # ends now (end >= start held by construction)
    assert span.status_code == "UNSET"
