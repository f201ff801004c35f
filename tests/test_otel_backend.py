"""OpenTelemetrySink against a real OTLP/HTTP backend: an MLflow tracking server on loopback (SQLite store).

MLflow is heavy, so it lives in its own virtualenv, ``.venv-otel-backend`` (``scripts/test.sh`` creates it; or set
``NBCALLBACKS_OTEL_BACKEND_PYTHON`` to a Python that has ``mlflow``). The fixture starts ``mlflow server`` on a
free port and stops it; the spans are read back through MLflow's own client (``mlflow.search_traces``), run in
that virtualenv. Run alone with ``pytest -m otel_backend``. Under ``CI=true`` a missing backend is a failure.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from helpers import unavailable

from nbcallbacks import NotebookHandler, OpenTelemetrySink
from nbcallbacks.demo import agent
from nbcallbacks.otel import conventions as sc
from nbcallbacks.otel.export import span_id_of, trace_id_of

pytestmark = pytest.mark.otel_backend

ROOT = Path(__file__).resolve().parent.parent
STARTUP_S = 180.0

READ_BACK = r"""
import base64, json, sys
import mlflow
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

mlflow.set_tracking_uri(sys.argv[1])
traces = mlflow.search_traces(locations=[sys.argv[2]], return_type="list")
spans = []
request = ExportTraceServiceRequest()
scope = request.resource_spans.add().scope_spans.add()
for trace in traces:
    for span in trace.data.spans:
        spans.append({
            "name": span.name,
            "trace_id": span.trace_id,
            "span_id": span.span_id,
            "parent_id": span.parent_id,
            "attributes": {k: v for k, v in span.attributes.items() if isinstance(v, (str, int, float, bool))},
        })
        scope.spans.append(span.to_otel_proto())
print(json.dumps({"spans": spans, "otlp": base64.b64encode(request.SerializeToString()).decode()}))
"""


def backend_python() -> Path | None:
    configured = os.environ.get("NBCALLBACKS_OTEL_BACKEND_PYTHON")
    candidates = [Path(configured)] if configured else []
    candidates.append(ROOT / ".venv-otel-backend" / "bin" / "python")
    for candidate in candidates:
        if candidate.is_file():
            found = subprocess.run([str(candidate), "-c", "import mlflow"], capture_output=True, check=False)
            if found.returncode == 0:
                return candidate
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def request(url: str, payload: dict | None = None) -> dict:
    data = None if payload is None else json.dumps(payload).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})  # noqa: S310
    with urllib.request.urlopen(req, timeout=10) as response:  # noqa: S310 - loopback only
        return json.loads(response.read() or b"{}")


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    python = backend_python()
    if python is None:
        unavailable("the OTLP backend (mlflow in .venv-otel-backend) is missing: run scripts/test.sh")
    folder = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (folder / "server.log").open("wb")
    command = [
        str(python),
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        f"sqlite:///{folder / 'mlflow.db'}",
        "--default-artifact-root",
        str(folder / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=folder, start_new_session=True)
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            if server.poll() is not None:
                pytest.fail(f"mlflow server exited: {(folder / 'server.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:  # noqa: S310 - loopback
                    if response.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"mlflow server not up after {STARTUP_S:.0f} s: {(folder / 'server.log').read_text()[-3000:]}"
                )
            time.sleep(0.5)
        experiment = request(f"{url}/api/2.0/mlflow/experiments/create", {"name": "nbcallbacks-otel"})
        yield url, experiment["experiment_id"], python
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=20)
        log.close()


def read_back(python: Path, url: str, experiment: str, expected: int) -> dict:
    """The spans MLflow holds, through its own client (bounded polling: ingestion may lag the HTTP answer)."""
    result: dict = {"spans": []}
    for _ in range(30):
        done = subprocess.run(
            [str(python), "-c", READ_BACK, url, experiment], capture_output=True, text=True, check=True, timeout=120
        )
        result = json.loads(done.stdout.strip().splitlines()[-1])
        if len(result["spans"]) >= expected:
            break
        time.sleep(1)
    return result


def test_demo_agent_run_reaches_mlflow_with_parents_and_tokens(mlflow_server):
    url, experiment, python = mlflow_server
    # a fresh server's first OTLP request can take long on a busy 2-core machine: a generous export timeout
    sink = OpenTelemetrySink(
        endpoint=f"{url}/v1/traces", headers={"x-mlflow-experiment-id": experiment}, export_timeout=120.0
    )
    h = NotebookHandler(sinks=[sink])
    agent(token_delay=0).invoke({"messages": [("user", "What's the weather in Paris?")]}, config={"callbacks": [h]})
    assert h.flush(timeout=300)
    status = h.sink_status()[0]
    assert (status["spans_ended"], status["spans_exported"], status["spans_dropped"], status["spans_failed"]) == (
        9,
        9,
        0,
        0,
    )
    runs = h.recorder.runs()
    stored = read_back(python, url, experiment, len(runs))
    spans = {span["attributes"][sc.NB_RUN_ID]: span for span in stored["spans"]}
    assert len(stored["spans"]) == len(spans) == len(runs) == 9
    root = runs[0]
    assert {span["trace_id"] for span in spans.values()} == {f"tr-{trace_id_of(root.run_id):032x}"}
    for run in runs:
        span = spans[run.run_id]
        assert span["name"] == run.name
        assert span["span_id"] == f"{span_id_of(run.run_id):016x}"
        assert span["parent_id"] == (None if run.parent_run_id is None else f"{span_id_of(run.parent_run_id):016x}")
        if run.run_type == "chat_model":
            assert span["attributes"][sc.GEN_AI_USAGE_INPUT_TOKENS] == run.input_tokens
            assert span["attributes"][sc.OI_TOKENS_TOTAL] == run.total_tokens
            assert span["attributes"][sc.OI_SPAN_KIND] == "LLM"
    # and the trace, pulled back from the backend, rebuilds the same tree in a handler
    back = NotebookHandler.from_otel(base64.b64decode(stored["otlp"]))
    columns = ["run_id", "name", "parent_run_id", "depth", "run_type", "status", "total_tokens"]
    original = h.runs_dataframe()[columns].sort_values("run_id").reset_index(drop=True)
    rebuilt = back.runs_dataframe()[columns].sort_values("run_id").reset_index(drop=True)
    assert rebuilt.equals(original)
    h._sink_writer.close()


def test_standard_environment_variables_configure_the_default_exporter(mlflow_server, monkeypatch):
    url, experiment, python = mlflow_server
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"{url}/v1/traces")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", f"x-mlflow-experiment-id={experiment}")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "notebook-under-test")
    h = NotebookHandler(sinks=[OpenTelemetrySink(export_timeout=120.0)])
    before = len(read_back(python, url, experiment, 0)["spans"])
    agent(token_delay=0).invoke({"messages": [("user", "What is 12 * 7?")]}, config={"callbacks": [h]})
    assert h.flush(timeout=300)
    assert h.sink_status()[0]["spans_exported"] == len(h.recorder.runs())
    stored = read_back(python, url, experiment, before + len(h.recorder.runs()))
    ours = {span["attributes"].get(sc.NB_RUN_ID) for span in stored["spans"]}
    assert {run.run_id for run in h.recorder.runs()} <= ours
    h._sink_writer.close()
