"""Runs that never end (a stream left half-read, an interrupted cell) are flagged, not shown running forever."""

from __future__ import annotations

import json
import uuid

import nbformat
import pytest
from nbclient import NotebookClient

from nbcallbacks.recorder import Recorder

pytestmark = pytest.mark.notebook


def test_a_half_read_stream_is_flagged_abandoned_when_its_cell_ends() -> None:
    cells = [
        (
            "from nbcallbacks import NotebookHandler\n"
            "from nbcallbacks.demo import DemoChatModel\n"
            "h = NotebookHandler()\n"
            "model = DemoChatModel(token_delay=0, responses=['one two three four five'])\n"
            "stream = model.stream('hi', config={'callbacks': [h]})\n"
            "first = next(stream)\n"
            "print(h.recorder.runs()[0].status, h.recorder.runs()[0].abandoned)"
        ),
        (
            "import json\n"
            "run = h.recorder.runs()[0]\n"
            "print(json.dumps({'status': run.status, 'abandoned': run.abandoned,"
            " 'events': [e.event for e in h.recorder.events()]}))"
        ),
        (
            "rest = ''.join(c.content for c in stream)\n"
            "run = h.recorder.runs()[0]\n"
            "print(json.dumps({'status': run.status, 'abandoned': run.abandoned}))"
        ),
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    outputs = ["".join(o.get("text", "") for o in cell.outputs) for cell in nb.cells]
    assert outputs[0].strip() == "running False", "not flagged while its own cell runs"
    after = json.loads(outputs[1])
    assert after["status"] == "running"
    assert after["abandoned"] is True
    assert after["events"][-1] == "run_abandoned"
    finished = json.loads(outputs[2])
    assert finished == {"status": "ok", "abandoned": False}, "a run that goes on is no longer abandoned"


def test_mark_abandoned_is_cleared_by_a_later_token() -> None:
    rec = Recorder()
    run = uuid.uuid4()
    rec.start_run(run, None, event="chat_model_start", name="m", run_type="chat_model")
    assert rec.mark_abandoned() == 1
    assert rec.runs()[0].abandoned
    rec.token(run, None, "still here", 0)
    assert not rec.runs()[0].abandoned
