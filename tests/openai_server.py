"""A tiny OpenAI-compatible chat-completions server on 127.0.0.1, for tests through the real ``langchain-openai``.

Standard library only. It answers ``POST /v1/chat/completions`` (plain and ``stream=true`` with
``stream_options.include_usage``) with a fixed reply and the usage it was given, including
``prompt_tokens_details.cached_tokens`` and ``completion_tokens_details.reasoning_tokens``, the way OpenAI does.
"""

from __future__ import annotations

import contextlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

REPLY_PIECES = ["Hel", "lo ", "from ", "the ", "local ", "server."]


def usage_payload(prompt: int, completion: int, cached: int = 0, reasoning: int = 0) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    }


def _handler(usage: dict[str, Any], pieces: list[str]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            model = body["model"]
            if body.get("stream"):
                self._stream(model, include_usage=bool(body.get("stream_options", {}).get("include_usage")))
                return
            message = {"role": "assistant", "content": "".join(pieces)}
            reply = {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 1,
                "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                "usage": usage,
            }
            data = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _stream(self, model: str, *, include_usage: bool) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": model}
            chunks: list[dict[str, Any]] = []
            for i, piece in enumerate(pieces):
                delta = {"role": "assistant", "content": piece} if i == 0 else {"content": piece}
                chunks.append({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
            chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            if include_usage:
                chunks.append({**base, "choices": [], "usage": usage})
            for chunk in chunks:
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@contextlib.contextmanager
def openai_server(usage: dict[str, Any], pieces: list[str] | None = None) -> Iterator[str]:
    """Serve on a free port of 127.0.0.1; yields the ``base_url`` for ``ChatOpenAI``."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(usage, pieces or REPLY_PIECES))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
