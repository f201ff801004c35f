"""The trace widget's Python side, headless: batching, exactness, snapshots, resync, shutdown, fault isolation.

Widgets created outside a kernel get a no-op comm; these tests capture what would be sent by overriding
``send``. Waiting is done by polling with a generous deadline (no assertion on how long anything takes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest
from helpers import wait_until
from nbclient import NotebookClient
from trace_checks import apply_delta, empty_state, state_from_snapshot
from widget_capture import CapturingWidget

from nbcallbacks import Limits, NotebookHandler
from nbcallbacks.demo import DemoChatModel, agent
from nbcallbacks.events import SCHEMA_VERSION, TOKEN_KINDS
from nbcallbacks.recorder import Recorder
from nbcallbacks.widget import TraceWidget

ROOT = Path(__file__).resolve().parent.parent


def start_model(recorder: Recorder, run_id: str, parent: str | None = "root") -> None:
    recorder.start_run(
        run_id,
        parent,
        event="chat_model_start",
        name=f"model {run_id}",
        run_type="chat_model",
        inputs={"messages": [[{"type": "human", "content": "x" * 500}]]},
    )


def replay(messages: list[dict[str, Any]], base_snapshot: dict[str, Any] | None = None) -> dict[str, Any]:
    """Apply messages as the front end's store does: a delta applies only on top of exactly its base."""
    state = empty_state() if base_snapshot is None else state_from_snapshot(base_snapshot)
    for message in messages:
        if message["type"] != "delta" or message["seq"] <= state["seq"]:
            continue
        apply_delta(state, message)
    return state


def joined(pieces: list[list[str]], kind: str | None = None) -> str:
    return "".join(text for k, text in pieces if kind is None or k == kind)


def test_a_widget_without_a_kernel_has_a_no_op_comm(make_widget, recorder):
    widget = make_widget(recorder, cls=TraceWidget)
    widget.send({"type": "delta"})  # no kernel: nothing to send to, and no error
    assert widget.snapshot["seq"] == 0
    assert widget.snapshot["cursor"] == 0
    assert widget.snapshot["schema"] == SCHEMA_VERSION


def test_a_widget_created_after_the_runs_opens_its_comm_with_the_whole_trace(make_widget, monkeypatch, recorder):
    import comm

    start_model(recorder, "m", parent=None)
    recorder.token("m", None, "early", 0)
    opened = []
    create = comm.create_comm
    monkeypatch.setattr(comm, "create_comm", lambda **kw: opened.append(kw) or create(**kw))
    widget = make_widget(recorder)
    states = [kw["data"]["state"] for kw in opened if "snapshot" in kw["data"]["state"]]
    assert len(states) == 1
    assert states[0]["snapshot"]["streams"] == {"m": [["text", "early"]]}
    assert widget.snapshot_changes == 0  # no second, O(trace) update right after


def test_fifty_thousand_tokens_arrive_exactly_once_in_few_messages(make_widget, recorder):
    widget = make_widget(recorder)
    recorder.start_run("root", None, event="chain_start", name="root", run_type="chain")
    start_model(recorder, "a")
    start_model(recorder, "b")

    def stream(run_id: str, count: int) -> None:
        for i in range(count):
            kind = 1 if i % 997 == 0 else (2 if i % 1009 == 0 else 0)
            recorder.token(run_id, "root", f"{run_id}{i} ", kind)

    threads = [threading.Thread(target=stream, args=(rid, 25_000)) for rid in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    recorder.end_run("a", "root", event="llm_end", run_type="chat_model", outputs={"text": "done"})
    recorder.end_run("b", "root", event="llm_end", run_type="chat_model")
    recorder.end_run("root", None, event="chain_end", run_type="chain")

    # No explicit flush: the flusher thread must deliver the tail by itself.
    wait_until(lambda: widget.deltas() and widget.deltas()[-1]["cursor"] == recorder.event_count, "the last delta")
    deltas = widget.deltas()
    state = replay(deltas)
    for run_id in ("a", "b"):
        assert joined(state["text"][run_id]) == recorder.run_text(run_id, kind=None)
        for kind in TOKEN_KINDS:
            assert joined(state["text"][run_id], kind) == recorder.run_text(run_id, kind=kind)
        assert state["runs"][run_id]["status"] == "ok"
        assert state["runs"][run_id]["streamed_chunks"] == 25_000
    assert len(recorder.run_text("a", kind=None)) > 100_000
    assert len(deltas) < 50_000 / 20, "tokens must be coalesced into few messages"
    assert [m["seq"] for m in deltas] == list(range(1, len(deltas) + 1))
    assert [m["base"] for m in deltas] == list(range(len(deltas)))
    assert [m["cursor"] for m in deltas] == sorted({m["cursor"] for m in deltas})
    assert deltas[-1]["totals"]["tokens"] == 50_000
    assert widget.snapshot_changes < 100, "the snapshot trait is never rewritten per token"


def test_runs_touched_only_by_tokens_get_light_updates(make_widget, recorder, clock):
    widget = make_widget(recorder)
    start_model(recorder, "m", parent=None)
    widget.flush()
    first = widget.deltas()[-1]["runs"]
    assert first[0]["inputs"] is not None, "a new run is sent in full"
    assert isinstance(widget.deltas()[-1]["time"], float)  # the kernel's clock, for live elapsed times
    assert widget.deltas()[-1]["time"] == clock()  # the recorder's clock, which the test sets
    for i in range(10):
        recorder.token("m", None, f"t{i}", 0)
    widget.flush()
    light = widget.deltas()[-1]["runs"]
    assert light == [
        {
            "run_id": "m",
            "status": "running",
            "display_status": "running",
            "streamed_chunks": 10,
            "first_token": light[0]["first_token"],
            "ttft_s": light[0]["first_token"] - recorder.run("m").start,
            "chunks_not_kept": 0,
            "light": True,
        }
    ]
    assert light[0]["first_token"] is not None
    recorder.token("m", None, "last", 0)
    recorder.end_run("m", None, event="llm_end", run_type="chat_model", outputs={"text": "t0..last"})
    widget.flush()
    final = widget.deltas()[-1]["runs"]
    assert final[0]["status"] == "ok"
    assert final[0]["outputs"] == {"text": "t0..last"}, "an ended run is sent in full"
    assert "light" not in final[0]


def test_snapshot_becomes_complete_once_the_recorder_is_quiet(make_widget, recorder):
    widget = make_widget(recorder)
    recorder.start_run("root", None, event="chain_start", name="root", run_type="chain", inputs={"q": 1})
    start_model(recorder, "m")
    for i in range(2_000):
        recorder.token("m", "root", f"w{i} ", i % 2)
    recorder.end_run("m", "root", event="llm_end", run_type="chat_model", usage=(3, 2_000, 2_003))
    recorder.error_run(
        "root", None, event="chain_error", run_type="chain", error="boom", error_type="ValueError", traceback="tb"
    )
    recorder.record_handler_error("handler", RuntimeError("internal"))
    wait_until(lambda: widget.snapshot.get("cursor") == recorder.event_count, "a complete snapshot")
    wait_until(lambda: widget.snapshot["handler_errors"], "handler errors in the snapshot")
    snap = widget.snapshot
    assert [run["run_id"] for run in snap["runs"]] == ["root", "m"]
    assert snap["streams"]["m"] == recorder.run_pieces("m")
    assert snap["totals"] == {
        "runs": 2,
        "running": 0,
        "errors": 1,
        "tokens": 2_000,
        "usage_tokens": 2_003,
        "tokens_dropped": 0,
        "cost_usd": None,
        "handler_errors": 1,
        "dropped_events": 0,
    }
    assert snap["handler_errors"][0]["where"] == "handler"
    assert snap["runs"][0]["error"] == "boom"
    json.dumps(snap)  # the trait must be JSON as it is


def test_a_snapshot_plus_the_deltas_after_it_rebuild_the_trace_exactly(make_widget, recorder):
    """A view that loads mid-stream (hello) gets a snapshot consistent with the deltas that follow it."""
    widget = make_widget(recorder)
    start_model(recorder, "m", parent=None)
    done = threading.Event()

    def stream() -> None:
        for i in range(30_000):
            recorder.token("m", None, f"{i},", 0)
        recorder.end_run("m", None, event="llm_end", run_type="chat_model")
        done.set()

    thread = threading.Thread(target=stream)
    thread.start()
    wait_until(lambda: len(widget.deltas()) >= 2, "streaming to be under way")
    widget._handle_custom_msg({"type": "hello"}, [])
    thread.join()
    widget.flush()
    assert done.is_set()
    snapshots = [m for m in widget.sent if m["type"] == "snapshot"]
    assert len(snapshots) == 1
    snapshot = snapshots[0]
    after = widget.sent[widget.sent.index(snapshot) + 1 :]
    state = replay(after, base_snapshot=snapshot)
    assert joined(state["text"]["m"]) == recorder.run_text("m")
    assert state["cursor"] == recorder.event_count


def test_resync_and_hello_are_answered_with_a_full_snapshot_message(make_widget, recorder):
    widget = make_widget(recorder)
    start_model(recorder, "m", parent=None)
    recorder.token("m", None, "hello ", 0)
    recorder.token("m", None, "world", 0)
    widget._handle_custom_msg({"type": "resync"}, [])
    message = widget.sent[-1]
    assert message["type"] == "snapshot"
    assert message["cursor"] == recorder.event_count
    assert message["seq"] == widget.deltas()[-1]["seq"]
    assert message["streams"] == {"m": [["text", "hello world"]]}
    assert [run["run_id"] for run in message["runs"]] == ["m"]
    # A view that already holds everything gets no snapshot (just the deltas that follow).
    count = len(widget.sent)
    widget._handle_custom_msg({"type": "hello", "seq": message["seq"]}, [])
    assert len(widget.sent) == count
    recorder.token("m", None, "!", 0)
    widget._handle_custom_msg({"type": "hello", "seq": message["seq"]}, [])
    assert [m["type"] for m in widget.sent[count:]] == ["delta"]
    assert widget.sent[-1]["base"] == message["seq"]
    # One that is behind gets the whole trace.
    widget._handle_custom_msg({"type": "hello", "seq": 0}, [])
    assert widget.sent[-1]["type"] == "snapshot"
    assert widget.sent[-1]["streams"] == {"m": [["text", "hello world!"]]}
    count = len(widget.sent)
    widget._handle_custom_msg({"type": "something else"}, [])
    widget._handle_custom_msg(["not", "a", "dict"], [])
    assert len(widget.sent) == count
    assert recorder.handler_error_count == 0


def test_selected_run_id_syncs_from_the_front_end(make_widget, recorder):
    widget = make_widget(recorder)
    widget.set_state({"selected_run_id": "abc"})  # what a front-end update message does
    assert widget.selected_run_id == "abc"
    assert widget.get_state("selected_run_id") == {"selected_run_id": "abc"}


def test_a_closed_widget_stops_and_sending_after_close_is_harmless(make_widget, recorder):
    widget = make_widget(recorder)
    start_model(recorder, "m", parent=None)
    widget.flush()
    widget.close()
    assert not widget._thread.is_alive()
    count = len(widget.sent)
    for i in range(100):
        recorder.token("m", None, str(i), 0)
    widget.flush()
    widget._handle_custom_msg({"type": "resync"}, [])
    widget.close()  # twice is fine
    TraceWidget.send(widget, {"type": "delta"})  # the real send on a closed comm is a no-op
    assert len(widget.sent) == count
    assert recorder.handler_error_count == 0


def test_a_failing_send_never_reaches_the_recording_code(make_widget, recorder):
    class FailingWidget(CapturingWidget):
        fail = True

        def send(self, content: dict[str, Any], buffers: Any = None) -> None:
            if self.fail:
                raise ConnectionError("comm is gone")
            super().send(content, buffers)

    widget = make_widget(recorder, cls=FailingWidget)
    start_model(recorder, "m", parent=None)
    for i in range(1_000):
        recorder.token("m", None, f"{i} ", 0)  # must not raise although every send fails
    wait_until(lambda: recorder.handler_error_count > 0, "the failure to be recorded")
    time.sleep(1.0)
    # A comm that keeps failing is retried with backoff, not in a tight loop of recorded errors.
    assert recorder.handler_error_count < 15
    assert recorder.handler_errors()[0].where == "widget"
    assert "comm is gone" in recorder.handler_errors()[0].error
    widget.fail = False
    widget._handle_custom_msg({"type": "resync"}, [])  # what the front end does after missing a delta
    snapshot = next(m for m in widget.sent if m["type"] == "snapshot")
    assert joined(snapshot["streams"]["m"]) == recorder.run_text("m")


def test_dropped_text_and_events_are_counted_and_the_kept_text_is_exact(make_widget):
    recorder = Recorder(Limits(max_tokens_per_run=1_000, max_events=500))
    widget = make_widget(recorder)
    start_model(recorder, "m", parent=None)
    for i in range(5_000):
        recorder.token("m", None, f"{i} ", 0)
    recorder.end_run("m", None, event="llm_end", run_type="chat_model")
    widget.flush()
    state = replay(widget.deltas())
    assert joined(state["text"]["m"]) == recorder.run_text("m")
    totals = widget.deltas()[-1]["totals"]
    assert totals["tokens"] == 5_000
    assert totals["tokens_dropped"] == 4_000
    assert totals["dropped_events"] > 0
    assert widget.snapshot["totals"] == totals


def test_handler_errors_past_the_kept_ones_are_still_counted(make_widget, recorder):
    widget = make_widget(recorder)
    for i in range(250):
        recorder.record_handler_error("handler", ValueError(f"bad {i}"))
    widget.flush()
    assert widget.deltas()[-1]["totals"]["handler_errors"] == 250
    assert len(widget.snapshot["handler_errors"]) == len(recorder.handler_errors()) < 250
    assert widget.snapshot["totals"]["handler_errors"] == 250


def test_a_real_langgraph_agent_streams_into_the_widget(make_widget):
    handler = NotebookHandler()
    widget = make_widget(handler.recorder)
    graph = agent(DemoChatModel(token_delay=0.0, seed=1))
    graph.invoke({"messages": [("user", "What's the weather in Paris and what is 12*7?")]}, {"callbacks": [handler]})
    widget.flush()
    state = replay(widget.deltas())
    runs = handler.recorder.runs()
    assert len(state["runs"]) == len(runs)
    model_runs = [run for run in runs if run.run_type == "chat_model"]
    assert len(model_runs) >= 2
    for run in model_runs:
        assert joined(state["text"][run.run_id]) == handler.recorder.run_text(run.run_id, kind=None)
    assert any(joined(state["text"][run.run_id], "tool_call") for run in model_runs)
    assert all(state["runs"][run.run_id]["status"] == "ok" for run in runs)
    assert widget.snapshot["cursor"] == handler.recorder.event_count
    assert len(widget.snapshot["runs"]) == len(runs)


def test_the_front_end_package_has_the_python_version():
    import nbcallbacks

    package = json.loads((ROOT / "js" / "package.json").read_text(encoding="utf-8"))
    assert package["version"] == nbcallbacks.__version__


def test_the_widget_loads_the_built_bundle():
    esm, css = str(TraceWidget._esm), str(TraceWidget._css)
    assert "as default" in esm  # an ES module with a default export (initialize, render)
    assert "typeof define" not in esm  # no UMD probing of a global define (breaks VS Code and static HTML)
    assert ".nbc-root" in css


def test_importing_the_package_does_not_import_the_widget_stack():
    code = (
        "import sys, nbcallbacks\n"
        "h = nbcallbacks.NotebookHandler()\n"
        "print(sorted(m for m in ('anywidget', 'ipywidgets', 'traitlets', 'nbcallbacks.widget') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


@pytest.mark.notebook
def test_in_a_real_kernel_the_saved_widget_state_holds_the_whole_trace(tmp_path):
    """Messages and trait updates sent from the flusher thread reach a real kernel's iopub."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "from nbcallbacks import NotebookHandler\n"
            "from nbcallbacks.demo import DemoChatModel, agent\n"
            "h = NotebookHandler(title='kernel test')\n"
            "h"
        ),
        nbformat.v4.new_code_cell(
            "agent(DemoChatModel(token_delay=0.001, seed=3)).invoke(\n"
            "    {'messages': [('user', 'What is the weather in Oslo?')]}, {'callbacks': [h]})\n"
            "models = [r for r in h.recorder.runs() if r.run_type == 'chat_model']\n"
            "print(h.recorder.event_count, len(h.recorder.runs()))\n"
            "print(repr(h.recorder.run_text(models[-1].run_id)))"
        ),
    ]
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    client = NotebookClient(nb, timeout=120, kernel_name="python3", store_widget_state=True)
    client.execute(env={**os.environ, "PYTHONPATH": pythonpath}, cwd=str(tmp_path))
    printed = nb.cells[1].outputs[0]["text"].splitlines()
    event_count, run_count = (int(x) for x in printed[0].split())
    answer = eval(printed[1])  # noqa: S307 - the repr of a str printed by the cell above
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    snapshots = [m["state"]["snapshot"] for m in state.values() if "snapshot" in m["state"]]
    assert len(snapshots) == 1
    snapshot = snapshots[0]
    assert snapshot["cursor"] == event_count
    assert len(snapshot["runs"]) == run_count
    last_model = [run for run in snapshot["runs"] if run["run_type"] == "chat_model"][-1]
    assert joined(snapshot["streams"][last_model["run_id"]], "text") == answer
    assert answer


def test_abandoned_runs_are_not_counted_as_running(make_widget, recorder):
    """The header's live dot and the widget's quiet snapshot go by ``totals.running``: an abandoned run (its
    cell ended, nothing will end it) no longer counts, and counts again if a token shows it alive."""
    widget = make_widget(recorder)
    start_model(recorder, "m", parent=None)
    widget.flush()
    assert widget.deltas()[-1]["totals"]["running"] == 1
    assert recorder.mark_abandoned() == 1
    widget.flush()
    assert widget.deltas()[-1]["totals"]["running"] == 0
    recorder.token("m", None, "late", 0)
    widget.flush()
    assert widget.deltas()[-1]["totals"]["running"] == 1
