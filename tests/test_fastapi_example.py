"""The FastAPI example, served by a real uvicorn on loopback, read by real SSE (httpx) and WebSocket clients.

Each request runs the demo agent; its client gets that run's tokens once, in order, and its run tree, and nothing
of the other requests. A client that stops reading slows neither the agent nor the other clients and is told what
it missed; a client that leaves mid-run leaves nothing running.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import socket
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import uvicorn
from helpers import wait_until
from langchain_core.runnables import Runnable, RunnableLambda
from trace_checks import check_final_runs, subtree
from websockets.sync.client import connect

from nbcallbacks.demo import DemoChatModel, agent
from nbcallbacks.updates import hub_for

if TYPE_CHECKING:
    from collections.abc import Iterator

    from fastapi import FastAPI

    from nbcallbacks import NotebookHandler

ROOT = Path(__file__).resolve().parents[1]
QUESTION = "What's the weather in Paris, and what is 17 * 3?"


def load_example() -> Any:
    spec = importlib.util.spec_from_file_location("fastapi_app", ROOT / "examples" / "fastapi_app.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("fastapi_app", module)
    spec.loader.exec_module(module)
    return module


example = load_example()


@contextlib.contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Run ``app`` with uvicorn on a free loopback port, in a thread; yields ``host:port``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16_384)  # small kernel buffers: a stalled client shows
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, "uvicorn to start", timeout=60)
        yield "{}:{}".format(*sock.getsockname())
    finally:
        server.should_exit = True
        thread.join(60)
        sock.close()
    assert not thread.is_alive()


def sse_records(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """The records of an SSE response, up to its ``end`` event (``AssertionError`` if it never comes)."""
    event = None
    for line in response.iter_lines():
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: "):
            if event == "end":
                return
            yield json.loads(line.removeprefix("data: "))
        elif not line:
            event = None
    raise AssertionError("the stream ended without its end event")


def ask_sse(address: str, question: str = QUESTION) -> list[dict[str, Any]]:
    with (
        httpx.Client(timeout=60) as client,
        client.stream("GET", f"http://{address}/sse", params={"q": question}) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return list(sse_records(response))


def ask_ws(address: str, question: str = QUESTION) -> list[dict[str, Any]]:
    with connect(f"ws://{address}/ws", open_timeout=60) as ws:
        ws.send(question)
        return [json.loads(message) for message in ws]  # ends when the server closes after the run


def root_of(records: list[dict[str, Any]]) -> str:
    roots = {record["run_id"] for record in records if record["kind"] == "run" and record["parent_run_id"] is None}
    assert len(roots) == 1
    return roots.pop()


def check_run(h: NotebookHandler, records: list[dict[str, Any]]) -> str:
    """One run's tokens once, in order, its whole tree in its final state, nothing else; returns its root id."""
    root = root_of(records)
    runs = subtree(h, root)
    assert {record["run_id"] for record in records} <= runs
    tokens = [record for record in records if record["kind"] == "event"]
    assert {record["event"] for record in tokens} == {"llm_new_token"}
    expected = [row for row in h.recorder.events() if row.run_id in runs and row.event == "llm_new_token"]
    assert [record["seq"] for record in tokens] == [row.seq for row in expected]
    assert [record["token"] for record in tokens] == [row.token for row in expected]
    final = check_final_runs(h, records, runs)
    assert final[root]["status"] == "ok"
    assert not any({"inputs", "outputs", "data"} & record.keys() for record in records)  # payloads stay server-side
    text = "".join(record["token"] for record in tokens if record["token_kind"] == "text")
    models = [run for run in h.recorder.runs() if run.run_id in runs and run.run_type == "chat_model"]
    assert text == "".join(h.recorder.run_text(run.run_id) for run in models)
    assert "Paris" in text
    assert "51" in text
    return root


def idle(app: FastAPI) -> bool:
    hub = hub_for(app.state.handler)
    return not app.state.tasks and hub.consumers == 0 and not hub.active


@pytest.fixture(scope="module")
def demo_server() -> Iterator[tuple[FastAPI, str]]:
    app = example.create_app(agent(token_delay=0.005))
    with serve(app) as address:
        yield app, address


def test_page_is_served(demo_server):
    _, address = demo_server
    page = httpx.get(f"http://{address}/", timeout=60)
    assert page.status_code == 200
    assert "EventSource" in page.text
    assert "WebSocket" in page.text


def test_sse_streams_the_tokens_and_the_run_tree(demo_server):
    app, address = demo_server
    check_run(app.state.handler, ask_sse(address))
    wait_until(lambda: idle(app), "the request to leave nothing behind", timeout=60)


def test_websocket_streams_the_tokens_and_the_run_tree(demo_server):
    app, address = demo_server
    check_run(app.state.handler, ask_ws(address))
    wait_until(lambda: idle(app), "the request to leave nothing behind", timeout=60)


def test_concurrent_requests_each_get_only_their_own_run():
    clients = 4
    arrived: list[int] = []
    everyone = asyncio.Event()

    async def gate(inputs: Any) -> Any:
        """Each run waits here until every request has started its own: the runs surely overlap."""
        arrived.append(1)
        if len(arrived) == clients:
            everyone.set()
        await everyone.wait()
        return inputs

    app = example.create_app(RunnableLambda(gate) | agent(token_delay=0.002))
    h = app.state.handler
    results: dict[str, list[dict[str, Any]]] = {}

    def client(name: str) -> None:
        results[name] = (ask_sse if name.startswith("sse") else ask_ws)(address)

    with serve(app) as address:
        threads = [threading.Thread(target=client, args=(name,)) for name in ("sse-1", "sse-2", "ws-1", "ws-2")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        wait_until(lambda: idle(app), "the requests to leave nothing behind", timeout=60)
    assert len(results) == clients
    roots = [check_run(h, records) for records in results.values()]
    assert len(set(roots)) == clients
    assert len([run for run in h.recorder.runs() if run.parent_run_id is None]) == clients


def test_a_stalled_client_slows_nobody_and_is_told_what_it_missed():
    # 6,000 words at a model's pace (0.2 ms a token, ~5,000 tokens/s): the stalled client's 3,000-record backlog
    # overflows. A client that reads gets its run to the end meanwhile; whether it keeps up with every token
    # depends on the machine (a busy one may lag and rightly be told it dropped some: its own slowness, not the
    # stalled client's), so both clients are held to the same exact accounting.
    long_answer = DemoChatModel(responses=["word " * 6_000], token_delay=0.0002, first_token_delay=0)
    app = example.create_app(agent(long_answer), max_backlog=3_000)
    h = app.state.handler
    with (
        serve(app) as address,
        httpx.Client(timeout=120) as slow_client,
        slow_client.stream("GET", f"http://{address}/sse", params={"q": "hi"}) as stalled,
    ):
        records = sse_records(stalled)
        head = []
        for record in records:  # until it knows its run; then it stops reading
            head.append(record)
            if record["kind"] == "run" and record["parent_run_id"] is None:
                break
        stalled_root = head[-1]["run_id"]
        # the other client gets its own run to the end, every token received or counted, while the stalled one
        # still is not reading
        other = ask_ws(address, "hello")
        other_root = root_of(other)
        assert other_root != stalled_root
        assert check_accounted(h, other, other_root)[other_root]["status"] == "ok"
        wait_until(lambda: h.recorder.run(stalled_root).status == "ok", "the stalled client's run to end", timeout=60)
        # now it reads again: what did not fit is counted, and its run tree is exact at the end
        rest = [*head, *records]
    dropped = [record for record in rest if record["kind"] == "dropped"]
    assert dropped
    assert dropped[-1]["total_events"] > 0
    assert check_accounted(h, rest, stalled_root)[stalled_root]["status"] == "ok"
    wait_until(lambda: idle(app), "the requests to leave nothing behind", timeout=60)


def check_accounted(h: NotebookHandler, records: list[dict[str, Any]], root: str) -> dict[str, dict[str, Any]]:
    """Every token of the run under ``root`` (one model) either received, once, in order, as recorded, or counted
    in a ``"dropped"`` record; the run tree exact at the end. Returns the last run records by run id."""
    dropped = [record for record in records if record["kind"] == "dropped"]
    assert not [record for record in dropped if record["lost_events"]]  # the recorder's log kept every event
    missed = sum(record["events"] for record in dropped)
    assert missed == (dropped[-1]["total_events"] if dropped else 0)
    model = _model(h, root)
    received = [record for record in records if record["kind"] == "event"]
    assert len(received) + missed == h.recorder.run(model).streamed_chunks
    recorded = {row.seq: row.token for row in h.recorder.events() if row.run_id == model}
    seqs = [record["seq"] for record in received]
    assert seqs == sorted(set(seqs))  # in order, none twice
    assert [record["token"] for record in received] == [recorded[seq] for seq in seqs]
    return check_final_runs(h, records, subtree(h, root))


def _model(h: NotebookHandler, root: str) -> str:
    models = [
        run.run_id for run in h.recorder.runs() if run.run_id in subtree(h, root) and run.run_type == "chat_model"
    ]
    assert len(models) == 1
    return models[0]


@pytest.mark.parametrize("transport", ["sse", "ws"])
def test_closing_mid_run_leaves_nothing_running(demo_server, transport):
    app, address = demo_server
    h = app.state.handler
    got: list[dict[str, Any]] = []
    if transport == "sse":
        with (
            httpx.Client(timeout=60) as client,
            client.stream("GET", f"http://{address}/sse", params={"q": QUESTION}) as response,
        ):
            for record in sse_records(response):
                got.append(record)
                if record["kind"] == "event":
                    break  # and the connection closes
    else:
        with connect(f"ws://{address}/ws", open_timeout=60) as ws:
            ws.send(QUESTION)
            for message in ws:
                got.append(json.loads(message))
                if got[-1]["kind"] == "event":
                    break  # and the connection closes
    root = root_of(got)
    wait_until(lambda: idle(app), "the agent task, the consumer and the reader to be gone", timeout=60)
    cancelled = h.recorder.run(root)
    assert (cancelled.status, cancelled.error_type) == ("error", "CancelledError")
    # nothing of that run goes on: a whole other request later records nothing more for it
    runs = subtree(h, root)
    after = h.recorder.event_count
    check_run(h, ask_ws(address))
    assert not [row for row in h.recorder.events() if row.seq >= after and row.run_id in runs]
    wait_until(lambda: idle(app), "the request to leave nothing behind", timeout=60)


class BrokenBeforeStart(Runnable[Any, Any]):
    """Fails before LangChain records anything (no run ever starts)."""

    def invoke(self, input: Any, config: Any = None, **kwargs: Any) -> Any:  # noqa: A002
        raise RuntimeError("broken before it starts")

    async def ainvoke(self, input: Any, config: Any = None, **kwargs: Any) -> Any:  # noqa: A002
        raise RuntimeError("broken before it starts")


def test_a_run_that_never_starts_ends_the_stream():
    app = example.create_app(BrokenBeforeStart())
    with serve(app) as address:
        assert ask_sse(address) == []
        assert ask_ws(address) == []
        wait_until(lambda: idle(app), "the requests to leave nothing behind", timeout=60)
    assert app.state.handler.recorder.event_count == 0
