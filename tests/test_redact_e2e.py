"""NotebookHandler(redact=...): a secret in inputs, tool output, an error, metadata, tags and a streamed answer is
kept nowhere: not in the DataFrames, the JSONL and SQLite sinks, the widget's messages and snapshot, the live
update records, nor the OpenTelemetry spans (content captured)."""

from __future__ import annotations

import json
import sqlite3

from langchain_core.messages import AIMessage
from langchain_core.tools import tool

from nbcallbacks import JSONLSink, NotebookHandler, OpenTelemetrySink, SQLiteSink, demo
from nbcallbacks.redact import MARKER
from nbcallbacks.updates import NEXT_ROOT

SECRET = "sk-proj-" + "Qw8Er7Ty6Ui5Op4As3Df2Gh1Jk0LzXcVbNm" * 2
EMAIL = "alice.smith@example.com"
FRAGMENTS = [SECRET[i : i + 10] for i in range(8, len(SECRET) - 10, 5)] + ["alice.smith", "smith@exa"]
"""Any 10 characters of the key (past its ``sk-proj-`` prefix) or a piece of the address is a leak."""


@tool
def read_config(name: str) -> str:
    """Read a configuration value."""
    return f"{name} = {SECRET}"


@tool
def deploy(target: str) -> str:
    """Deploy somewhere."""
    msg = f"deploy to {target} failed: token {SECRET} was rejected"
    raise ValueError(msg)


def _model() -> demo.DemoChatModel:
    calls = AIMessage(
        content="",
        tool_calls=[
            {"name": "read_config", "args": {"name": "OPENAI_API_KEY"}, "id": "call_1", "type": "tool_call"},
            {"name": "deploy", "args": {"target": "prod"}, "id": "call_2", "type": "tool_call"},
        ],
    )
    answer = f"The key is {SECRET} and the owner is {EMAIL}. Rotate it soon, please; " + "more words here " * 30
    return demo.DemoChatModel(token_delay=0, responses=[calls, answer])


def _leaks(text: str) -> list[str]:
    return [f for f in (SECRET, EMAIL, *FRAGMENTS) if f in text]


def test_a_secret_is_kept_nowhere(tmp_path, make_widget, otel):
    jsonl, db = tmp_path / "trace.jsonl", tmp_path / "trace.db"
    provider, spans = otel
    sinks = [JSONLSink(jsonl), SQLiteSink(db), OpenTelemetrySink(provider, capture_content=True)]
    h = NotebookHandler(redact=["api_keys", "emails"], sinks=sinks)
    widget = make_widget(h.recorder)
    # The most eager consumer possible: it reads every change the moment it is recorded (during the stream).
    live: list[str] = []
    subscription = h.recorder.subscribe(
        lambda: live.extend(t for ps in subscription.read().tokens.values() for _, t in ps)
    )
    updates = h.iter_updates(run=NEXT_ROOT)  # a live consumer of records (nbcallbacks.updates)
    try:
        agent = demo.agent(_model(), tools=[read_config, deploy])
        agent.invoke(
            {"messages": [("user", f"Use my key {SECRET} to deploy; mail {EMAIL} when done")]},
            config={"callbacks": [h], "metadata": {"api_key": SECRET, "owner": EMAIL}, "tags": [f"owner:{EMAIL}"]},
        )
        widget.flush()
        assert h.flush()
        live_records = list(updates)
    finally:
        subscription.close()

    runs = h.runs_dataframe()
    events = h.to_dataframe()
    # What was recorded: the secret went through every path named in the issue.
    tools = runs[runs["run_type"] == "tool"].set_index("name")
    assert tools.loc["deploy", "status"] == "error"
    assert MARKER in tools.loc["deploy", "error"]
    assert MARKER in tools.loc["read_config", "outputs"]["content"]
    assert MARKER in str(runs.iloc[0]["inputs"])
    assert runs.iloc[0]["metadata"]["api_key"] == MARKER
    assert runs.iloc[0]["tags"] == [f"owner:{MARKER}"]
    answer_run = runs[runs["run_type"] == "chat_model"].iloc[-1]
    streamed = h.recorder.run_text(answer_run["run_id"])
    assert streamed.startswith(f"The key is {MARKER} and the owner is {MARKER}.")
    assert answer_run["streamed_chunks"] > 50  # the secret arrived split over many chunks
    assert answer_run["ttft_s"] >= 0  # held-back text still counts as the first token

    blobs = {
        "runs DataFrame": runs.to_json(default_handler=str, date_format="iso"),
        "events DataFrame": events.to_json(default_handler=str, date_format="iso"),
        "JSONL sink": jsonl.read_text(encoding="utf-8"),
        "SQLite sink": "\n".join(sqlite3.connect(db).iterdump()),
        "widget messages": json.dumps(widget.sent, ensure_ascii=False),
        "widget snapshot": json.dumps(widget.snapshot, ensure_ascii=False),
        "to_html page": h.to_html(tmp_path / "trace.html").read_text(encoding="utf-8"),
        "OpenTelemetry spans (content captured)": json.dumps(
            [
                [span.name, dict(span.attributes or {}), [e.attributes for e in span.events]]
                for span in spans.get_finished_spans()
            ],
            ensure_ascii=False,
            default=str,
        ),
    }
    # Streamed text is stored as pieces (one per chunk): put them back together, as a reader would.
    records = [json.loads(line) for line in blobs["JSONL sink"].splitlines()]
    blobs["JSONL stream, joined"] = "".join(r.get("token") or "" for r in records if r["kind"] == "event")
    blobs["events stream, joined"] = "".join(t for t in events["token"].dropna())
    pieces = [p for m in widget.sent if m.get("type") == "delta" for ps in m["tokens"].values() for p in ps]
    blobs["widget stream, joined"] = "".join(text for _, text in pieces)
    blobs["live reader stream, joined"] = "".join(live)
    blobs["live update records"] = json.dumps(live_records, ensure_ascii=False)
    blobs["live update stream, joined"] = "".join(r.get("token") or "" for r in live_records if r["kind"] == "event")
    rows = sqlite3.connect(db).execute("SELECT token FROM events WHERE token IS NOT NULL ORDER BY seq").fetchall()
    blobs["SQLite stream, joined"] = "".join(r[0] for r in rows)

    for where, blob in blobs.items():
        assert _leaks(blob) == [], where
        assert MARKER in blob, where


def test_without_redact_the_handler_holds_none_and_records_as_before():
    h = NotebookHandler()
    assert h.redactor is None
    assert h.streams is None
    assert h.put_token is h.recorder.token, "decoded chunks go straight to the recorder, through no redactor"
    demo.chain(token_delay=0).invoke({"question": f"key {SECRET}"}, config={"callbacks": [h]})
    assert SECRET in str(h.runs_dataframe().iloc[0]["inputs"])


def test_redacted_streams_keep_chunk_counts_and_text():
    plain, redacted = NotebookHandler(), NotebookHandler(redact=["emails"])
    for h in (plain, redacted):
        demo.chain(token_delay=0).invoke({"question": "Tell me about streaming, please."}, config={"callbacks": [h]})
    (a,) = [r for r in plain.recorder.runs() if r.run_type == "chat_model"]
    (b,) = [r for r in redacted.recorder.runs() if r.run_type == "chat_model"]
    assert a.streamed_chunks == b.streamed_chunks
    assert plain.recorder.run_text(a.run_id) == redacted.recorder.run_text(b.run_id)
    held = [e for e in redacted.to_dataframe().to_dict("records") if e["data"] == {"held_back": True}]
    assert len(held) == 1  # the tail released at the end: one token event, not counted as a chunk


def test_run_and_custom_event_names_are_redacted_too():
    from langchain_core.callbacks.manager import dispatch_custom_event
    from langchain_core.runnables import RunnableLambda

    def step(x: str) -> str:
        dispatch_custom_event(f"progress for {EMAIL}", {"note": f"key {SECRET}"})
        return x

    h = NotebookHandler(redact=["api_keys", "emails"])
    RunnableLambda(step, name=f"deploy with {SECRET}").invoke("go", config={"callbacks": [h]})
    runs, events = h.runs_dataframe(), h.to_dataframe()
    assert list(runs["name"]) == [f"deploy with {MARKER}"]
    (custom,) = [data for data in events["data"] if isinstance(data, dict) and "note" in str(data)]
    assert custom["name"] == f"progress for {MARKER}"
    for blob in (frame.to_json(default_handler=str, date_format="iso") for frame in (runs, events)):
        assert _leaks(blob) == []
