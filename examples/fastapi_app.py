"""Stream the demo agent's tokens and run tree to a web page, over server-sent events and over a WebSocket.

    pip install "nbcallbacks[examples]"
    uvicorn examples.fastapi_app:app        # from a checkout of the repository; then open http://127.0.0.1:8000

One ``NotebookHandler`` serves every request: each request names its run (``config={"run_id": ...}``) and follows
only that run with ``handler.updates(run=...)``. A client that reads too slowly gets a ``"dropped"`` record instead
of slowing the agent or the other clients; a client that goes away cancels its run.
"""

from __future__ import annotations

import asyncio
import uuid
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse, StreamingResponse

from nbcallbacks import NotebookHandler
from nbcallbacks.demo import agent
from nbcallbacks.sinks import dumps

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from langchain_core.runnables import Runnable

    from nbcallbacks.updates import Updates

PAGE = Path(__file__).with_name("static") / "index.html"
KINDS = {"llm_new_token", "run"}  # the tokens and the run tree
HEAVY = {"inputs", "outputs", "metadata", "data", "traceback"}  # payload previews stay on the server


def create_app(graph: Runnable[Any, Any] | None = None, *, max_backlog: int = 2_000) -> FastAPI:
    """The app; ``graph`` defaults to the offline demo agent (``nbcallbacks.demo.agent``)."""
    app = FastAPI()
    app.state.graph = graph if graph is not None else agent(token_delay=0.03)
    # One handler for the app. Its log keeps the last 100,000 events, but it keeps every run's record: in a
    # long-lived server, recycle it now and then (or make one per request).
    app.state.handler = NotebookHandler(title="fastapi example", max_events=100_000)
    app.state.max_backlog, app.state.tasks = max_backlog, set()
    app.add_api_route("/", page)
    app.add_api_route("/sse", sse)
    app.add_api_websocket_route("/ws", websocket)
    return app


@asynccontextmanager
async def follow(state: Any, question: str) -> AsyncIterator[Updates]:
    """Start the agent on ``question``; the updates of that run only. Leaving early cancels the run."""
    run_id = uuid.uuid4()
    async with state.handler.updates(run=run_id, kinds=KINDS, max_backlog=state.max_backlog) as updates:
        config = {"callbacks": [state.handler], "run_id": run_id}
        task = asyncio.create_task(state.graph.ainvoke({"messages": [("user", question)]}, config))
        state.tasks.add(task)

        def finished(done: asyncio.Task[Any]) -> None:
            state.tasks.discard(done)
            if not done.cancelled():
                done.exception()  # a failure shows in the run tree (status "error"), not in the server's log
            if state.handler.recorder.run(str(run_id)) is None:
                updates.close()  # it failed before its run even started: nothing else would end the stream

        task.add_done_callback(finished)
        try:
            yield updates
        finally:
            run = state.handler.recorder.run(str(run_id))
            if run is None or run.status == "running":  # the client left before the end: stop its run
                task.cancel()  # (a run that ended is left to return: cancelling it there would fail it late)


def wire(record: dict[str, Any]) -> str:
    return dumps({key: value for key, value in record.items() if key not in HEAVY})


async def page() -> HTMLResponse:
    return HTMLResponse(PAGE.read_text(encoding="utf-8"))


async def sse(request: Request, q: str) -> StreamingResponse:
    async def stream() -> AsyncIterator[str]:
        async with follow(request.app.state, q) as updates:
            async for record in updates:
                yield f"data: {wire(record)}\n\n"
        yield "event: end\ndata: {}\n\n"  # or EventSource would reconnect, and ask again

    return StreamingResponse(stream(), media_type="text/event-stream")


async def websocket(ws: WebSocket) -> None:
    await ws.accept()
    try:
        async with follow(ws.app.state, await ws.receive_text()) as updates:
            async for record in updates:
                await ws.send_text(wire(record))
        await ws.close()
    except WebSocketDisconnect:
        pass  # the client left: its run was cancelled on the way out


app = create_app()
