"""The demo's tools: `get_weather`, `calculator` and `search_docs` (which calls `DemoRetriever`); offline.

See ``nbcallbacks.demo``.
"""

from __future__ import annotations

import ast
import math
import operator
import re
import zlib
from typing import TYPE_CHECKING, Any, Final

from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.tools import BaseTool, tool
from pydantic import Field

if TYPE_CHECKING:
    from collections.abc import Callable

    from langchain_core.callbacks import (
        CallbackManagerForRetrieverRun,
    )

# --------------------------------------------------------------------------------------------
# Tools.

_WEATHER: Final[dict[str, tuple[int, str]]] = {
    "paris": (18, "partly cloudy"),
    "london": (14, "light rain"),
    "berlin": (16, "overcast"),
    "tokyo": (22, "clear"),
    "new york": (20, "sunny"),
    "san francisco": (17, "foggy"),
}
_CONDITIONS: Final = ("sunny", "clear", "partly cloudy", "overcast", "light rain", "windy")


@tool
def get_weather(city: str) -> str:
    """Get the current weather for a city (offline demo data).

    Args:
        city: city name, for example "Paris".
    """
    key = city.strip().lower()
    if not key:
        msg = "city must not be empty"
        raise ValueError(msg)
    if key in _WEATHER:
        temp, condition = _WEATHER[key]
    else:
        code = zlib.crc32(key.encode())
        temp, condition = -5 + code % 35, _CONDITIONS[code % len(_CONDITIONS)]
    wind = 5 + zlib.crc32(key[::-1].encode()) % 25
    return f"{city.strip()}: {temp}°C, {condition}, wind {wind} km/h."


_BIN_OPS: Final[dict[type[ast.operator], Callable[[Any, Any], Any]]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY_OPS: Final[dict[type[ast.unaryop], Callable[[Any], Any]]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}
_MAX_EXPONENT: Final = 100
_MAX_MAGNITUDE: Final = 1e100
_MAX_EXPRESSION: Final = 200


def _evaluate(node: ast.AST) -> float | int:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY_OPS:
        return _UNARY_OPS[type(node.op)](_evaluate(node.operand))  # type: ignore[no-any-return]
    if isinstance(node, ast.BinOp) and type(node.op) in _BIN_OPS:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > _MAX_EXPONENT:
            msg = f"exponent {right} is too large"
            raise ValueError(msg)
        result = _BIN_OPS[type(node.op)](left, right)
        if abs(result) > _MAX_MAGNITUDE:
            msg = "result is too large"
            raise ValueError(msg)
        return result  # type: ignore[no-any-return]
    msg = f"unsupported expression element: {type(node).__name__}"
    raise ValueError(msg)


def evaluate_arithmetic(expression: str) -> float | int:
    """Evaluate `+ - * / // % **` and parentheses over numbers, safely (no `eval`).

    Raises:
        ValueError: for anything else, for over-long input and for huge results.
        ZeroDivisionError: when dividing by zero.
    """
    if len(expression) > _MAX_EXPRESSION:
        msg = f"expression longer than {_MAX_EXPRESSION} characters"
        raise ValueError(msg)
    try:
        tree = ast.parse(expression.replace("^", "**"), mode="eval")
    except SyntaxError as exc:
        msg = f"not an arithmetic expression: {expression!r}"
        raise ValueError(msg) from exc
    return _evaluate(tree)


@tool
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression such as "(3 + 4) * 12 / 7".

    Args:
        expression: numbers combined with + - * / // % ** and parentheses.
    """
    value = evaluate_arithmetic(expression)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    elif isinstance(value, float):
        value = round(value, 6)
    return f"{expression} = {value}"


_DOCS: Final = (
    Document(
        page_content=(
            "A callback handler receives on_chain_start, on_llm_new_token, "
            "on_tool_end and the other events of every run, with a run_id and parent_run_id."
        ),
        metadata={"source": "callbacks.md", "title": "Callbacks"},
    ),
    Document(
        page_content=(
            "Chat models report each token through on_llm_new_token when invoked "
            "with streaming=True; the last chunk carries usage_metadata."
        ),
        metadata={"source": "streaming.md", "title": "Streaming"},
    ),
    Document(
        page_content=(
            "Every node execution is a chain run named after the node, tagged "
            "graph:step:N; a subgraph appears as a nested LangGraph run."
        ),
        metadata={"source": "langgraph.md", "title": "LangGraph"},
    ),
    Document(
        page_content=(
            "A tool run starts with on_tool_start and ends with on_tool_end or "
            "on_tool_error; a ToolNode runs the tool calls of one message in parallel."
        ),
        metadata={"source": "tools.md", "title": "Tools"},
    ),
    Document(
        page_content=(
            "Calling interrupt() pauses a graph; it arrives as a GraphInterrupt error on "
            "the node and resumes with Command(resume=...) on the same thread_id."
        ),
        metadata={"source": "interrupts.md", "title": "Interrupts"},
    ),
    Document(
        page_content=(
            "Calling batch(..., max_concurrency=N) runs inputs on worker threads; each input "
            "is its own root run, and events from different inputs interleave."
        ),
        metadata={"source": "batch.md", "title": "Batches"},
    ),
)


class DemoRetriever(BaseRetriever):
    """Keyword retriever over a few built-in documentation snippets.

    Attributes:
        k: number of documents returned.
        documents: the corpus; defaults to the built-in snippets.
    """

    k: int = 2
    documents: list[Document] = Field(default_factory=lambda: list(_DOCS))

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,  # noqa: ARG002 - nothing to report
    ) -> list[Document]:
        # Crude stemming (drop a plural "s") and titles weighted above body text.
        words = {w.lower().removesuffix("s") for w in re.findall(r"\w{3,}", query)}

        def score(doc: Document) -> int:
            title = str(doc.metadata.get("title", "")).lower()
            body = doc.page_content.lower()
            return sum(3 * title.count(w) + body.count(w) for w in words)

        ranked = sorted(self.documents, key=score, reverse=True)
        return ranked[: self.k]


@tool
def search_docs(query: str) -> str:
    """Search the documentation for a question and return the best passages.

    Args:
        query: what to look for, in plain words.
    """
    # No config is passed on purpose: the tool body runs in its own child context, so the
    # retriever run nests under the tool run (an injected `config` would be the parent's).
    docs = DemoRetriever().invoke(query)
    return "\n\n".join(f"[{d.metadata['title']}] {d.page_content}" for d in docs)


DEMO_TOOLS: Final[tuple[BaseTool, ...]] = (get_weather, calculator, search_docs)
"""The tools `agent()` offers by default."""
