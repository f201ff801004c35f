"""`DemoChatModel`: an offline chat model that streams like a real one (tokens, tool-call fragments, usage).

See ``nbcallbacks.demo``.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    ToolMessage,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator, Sequence

    from langchain_core.callbacks import (
        AsyncCallbackManagerForLLMRun,
        CallbackManagerForLLMRun,
    )
    from langchain_core.language_models.base import LangSmithParams
    from langchain_core.messages.tool import ToolCallChunk
    from langchain_core.runnables import Runnable
    from langchain_core.tools import BaseTool

DEMO_MODEL_NAME: Final = "nbcallbacks-demo-1"
"""`model_name` reported by `DemoChatModel` unless another is given."""

_TOKEN_RE: Final = re.compile(r"\s*(?:\w{1,6}|[^\w\s])|\s+")
_ARGS_RE: Final = re.compile(r"\w+|\W+")
_HAS_CHUNK_POSITION: Final = "chunk_position" in AIMessageChunk.model_fields
_MESSAGE_OVERHEAD_TOKENS: Final = 4
_MAX_ECHO: Final = 80


class DemoStreamError(RuntimeError):
    """Raised by `DemoChatModel` mid-stream when `error_after` tokens have been streamed."""


def tokenize(text: str) -> list[str]:
    """Split text into word-ish tokens that keep their leading whitespace.

    Long words are cut into pieces of at most six characters and punctuation stands alone, which
    is roughly how subword tokenizers see English. `"".join(tokenize(t)) == t` always holds.
    """
    return _TOKEN_RE.findall(text)


# --------------------------------------------------------------------------------------------
# Scripted turns: what the model says next.


@dataclass(frozen=True, slots=True)
class _PlannedCall:
    name: str
    args: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Turn:
    text: str
    calls: tuple[_PlannedCall, ...] = ()


_CITY_RE: Final = re.compile(r"\b(?:in|at|for)\s+((?:[A-Z][\w'-]*)(?:\s+[A-Z][\w'-]*)*)")
_CITY_LIST_RE: Final = re.compile(r"^\s*(?:,|and|&)\s*((?:[A-Z][\w'-]*)(?:\s+[A-Z][\w'-]*)*)")
_EXPR_RE: Final = re.compile(r"[-+(]*\s*\d[\d\s.+\-*/%()^]*")
_WEATHER_WORDS: Final = frozenset({"weather", "temperature", "forecast", "rain", "sunny", "warm"})
_SEARCH_WORDS: Final = frozenset({"docs", "documentation", "search", "how", "what", "why", "explain"})

_OPENERS: Final = (
    "Sure.",
    "Good question.",
    "Here is a short answer.",
    "Happy to help.",
)
_FILLERS: Final = (
    "Every step of this answer was streamed token by token through LangChain callbacks.",
    "A callback handler sees each token as it arrives, with its own timestamp.",
    "Nothing here needed a network connection: the demo model writes its replies locally.",
    "Runs nest by their parent id, so the tree stays correct under threads and async code.",
    "Time to first token and tokens per second come from the same callback events.",
    "Swap in a provider model and the same handler shows real latency and usage.",
)


def _message_text(message: BaseMessage) -> str:
    return str(message.text)


def _extract_cities(question: str) -> list[str]:
    cities: list[str] = []
    for match in _CITY_RE.finditer(question):
        cities.append(match.group(1))
        rest = question[match.end() :]
        while (more := _CITY_LIST_RE.match(rest)) is not None:
            cities.append(more.group(1))
            rest = rest[more.end() :]
    return list(dict.fromkeys(cities))


def _extract_expressions(question: str) -> list[str]:
    found: list[str] = []
    for match in _EXPR_RE.finditer(question):
        expr = match.group(0).strip().rstrip("?.").strip().replace("^", "**")
        if any(op in expr for op in "+-*/%") and any(ch.isdigit() for ch in expr):
            found.append(expr)
    return found


def _plan(question: str, tool_names: Sequence[str]) -> list[list[_PlannedCall]]:
    """Tool calls the model makes for a question, one list per model turn."""
    words = {w.lower() for w in re.findall(r"\w+", question)}
    steps: list[list[_PlannedCall]] = []
    if "get_weather" in tool_names and words & _WEATHER_WORDS:
        cities = _extract_cities(question) or ["Paris"]
        steps.append([_PlannedCall("get_weather", {"city": city}) for city in cities])
    if "calculator" in tool_names:
        exprs = _extract_expressions(question)
        if exprs:
            steps.append([_PlannedCall("calculator", {"expression": e}) for e in exprs])
    if not steps and "search_docs" in tool_names and words & _SEARCH_WORDS:
        steps.append([_PlannedCall("search_docs", {"query": question.strip()})])
    return steps


def _turn_for(messages: Sequence[BaseMessage], tool_names: Sequence[str], rng: random.Random) -> _Turn:
    """Decide the next turn of a conversation from its messages alone (no hidden state)."""
    last_human = max((i for i, m in enumerate(messages) if isinstance(m, HumanMessage)), default=-1)
    question = _message_text(messages[last_human]) if last_human >= 0 else ""
    since = messages[last_human + 1 :]
    calls_made = sum(1 for m in since if isinstance(m, AIMessage) and m.tool_calls)
    steps = _plan(question, tool_names) if tool_names else []
    if calls_made < len(steps):
        return _Turn(text="", calls=tuple(steps[calls_made]))
    results = [m for m in since if isinstance(m, ToolMessage)]
    if results:
        return _Turn(text=_answer_from_tools(results, rng))
    return _Turn(text=_free_answer(question, rng))


def _answer_from_tools(results: Sequence[ToolMessage], rng: random.Random) -> str:
    lines: list[str] = []
    for result in results:
        content = _message_text(result).strip()
        name = result.name or "the tool"
        if result.status == "error":
            lines.append(f"I could not use {name}: {content.splitlines()[0]}")
        elif name == "get_weather":
            lines.append(f"The weather in {content}")
        elif name == "calculator":
            lines.append(f"The result is {content}.")
        elif name == "search_docs":
            first = content.split("\n\n", 1)[0]
            lines.append(f"From the docs: {first}")
        else:
            lines.append(f"{name} returned: {content}")
    closing = rng.choice(_FILLERS)
    return " ".join([*lines, closing])


def _free_answer(question: str, rng: random.Random) -> str:
    asked = " ".join(question.split())
    if len(asked) > _MAX_ECHO:
        asked = asked[: _MAX_ECHO - 3] + "..."
    echo = f'You asked: "{asked}".' if asked else "You asked nothing in particular."
    fillers = rng.sample(_FILLERS, 2)
    return f"{rng.choice(_OPENERS)} {echo} {fillers[0]} {fillers[1]}"


def _turn_from_script(entry: str | AIMessage) -> _Turn:
    if isinstance(entry, str):
        return _Turn(text=entry)
    calls = tuple(_PlannedCall(c["name"], dict(c["args"])) for c in entry.tool_calls)
    return _Turn(text=_message_text(entry), calls=calls)


# --------------------------------------------------------------------------------------------
# The model.


class DemoChatModel(BaseChatModel):
    """A chat model that streams realistic, deterministic output offline.

    Constructed with `streaming=True` unless told otherwise, so plain `.invoke()` streams every
    token through callbacks (`on_llm_new_token`) exactly as `stream()`/`astream()` do.

    Each call produces one turn:

    - with tools bound (`bind_tools`) and a human question that needs them (weather, arithmetic,
      documentation questions), one or more tool calls, streamed as `tool_call_chunks`: the first
      fragment of each call carries its name and id, the following ones only argument text;
    - after tool results (`ToolMessage`s), an answer that uses them;
    - otherwise a short text answer, streamed as word-ish tokens that keep their whitespace.

    The stream ends with a chunk carrying `usage_metadata` (input tokens estimated from the
    prompt, output tokens = streamed chunks), `response_metadata` (`finish_reason`,
    `model_name`) and `chunk_position="last"`.

    Attributes:
        model_name: reported in `response_metadata` and as `ls_model_name`.
        token_delay: seconds to wait before each streamed chunk (0 for tests).
        first_token_delay: extra seconds before the first chunk; `None` means five times
            `token_delay` (a plausible time to first token).
        jitter: relative random variation of each delay (0.3 = ±30 %), deterministic per `seed`.
        error_after: raise `DemoStreamError` after this many streamed chunks; `None` never fails.
        seed: picks the wording of free answers and the delay jitter; same seed, same output.
        responses: scripted turns (text, or `AIMessage` with `tool_calls`). Turn N of a
            conversation (N = AI messages already in the input) gets entry N; the last repeats.
            `None` derives each turn from the conversation.
    """

    model_name: str = DEMO_MODEL_NAME
    streaming: bool = True
    token_delay: float = 0.01
    first_token_delay: float | None = None
    jitter: float = 0.3
    error_after: int | None = None
    seed: int | None = None
    responses: list[str | AIMessage] | None = None

    def __init__(self, **kwargs: Any) -> None:
        """Create the model; `streaming` defaults to True and counts as explicitly set."""
        kwargs.setdefault("streaming", True)
        super().__init__(**kwargs)

    @property
    def _llm_type(self) -> str:
        return "nbcallbacks-demo"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "seed": self.seed}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "nbcallbacks"
        params["ls_model_name"] = self.model_name
        return params

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools as a provider model does: their schemas travel as the `tools` call option.

        The returned runnable shows the schemas in the model run's `invocation_params`, and the
        model calls them by name when a question needs them.
        """
        formatted = [convert_to_openai_tool(t) for t in tools]
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        return self.bind(tools=formatted, **kwargs)

    # ---- planning -------------------------------------------------------------------------

    def _rng(self, messages: Sequence[BaseMessage]) -> random.Random:
        prompt = "\n".join(_message_text(m) for m in messages)
        return random.Random(zlib.crc32(prompt.encode()) ^ (self.seed or 0))  # noqa: S311 - demo text, not security

    def _next_turn(self, messages: Sequence[BaseMessage], tools: Sequence[Any]) -> _Turn:
        rng = self._rng(messages)
        if self.responses:
            turn_index = sum(1 for m in messages if isinstance(m, AIMessage))
            return _turn_from_script(self.responses[min(turn_index, len(self.responses) - 1)])
        names = [t["function"]["name"] for t in tools if isinstance(t, dict) and "function" in t]
        return _turn_for(messages, names, rng)

    def _input_tokens(self, messages: Sequence[BaseMessage], tools: Sequence[Any]) -> int:
        count = sum(len(tokenize(_message_text(m))) + _MESSAGE_OVERHEAD_TOKENS for m in messages)
        for t in tools:
            count += len(tokenize(json.dumps(t)))
        return count

    def _chunks(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> Iterator[ChatGenerationChunk]:
        """Every chunk of one turn, without pacing; stops at the first stop sequence."""
        tools: Sequence[Any] = kwargs.get("tools") or ()
        turn = self._next_turn(messages, tools)
        text = turn.text
        if stop:
            cut = min((i for s in stop if (i := text.find(s)) >= 0), default=-1)
            if cut >= 0:
                text = text[:cut]
        produced = 0
        for token in tokenize(text):
            produced += 1
            yield ChatGenerationChunk(message=AIMessageChunk(content=token))
        rng = self._rng(messages)
        for index, call in enumerate(turn.calls):
            call_id = f"call_{rng.getrandbits(96):024x}"
            args_json = json.dumps(call.args)
            first: ToolCallChunk = {
                "name": call.name,
                "args": "",
                "id": call_id,
                "index": index,
                "type": "tool_call_chunk",
            }
            produced += 1
            yield ChatGenerationChunk(message=AIMessageChunk(content="", tool_call_chunks=[first]))
            for piece in _ARGS_RE.findall(args_json):
                fragment: ToolCallChunk = {
                    "name": None,
                    "args": piece,
                    "id": None,
                    "index": index,
                    "type": "tool_call_chunk",
                }
                produced += 1
                yield ChatGenerationChunk(message=AIMessageChunk(content="", tool_call_chunks=[fragment]))
        input_tokens = self._input_tokens(messages, tools)
        last_fields: dict[str, Any] = {
            "content": "",
            "usage_metadata": {
                "input_tokens": input_tokens,
                "output_tokens": produced,
                "total_tokens": input_tokens + produced,
            },
            "response_metadata": {
                "finish_reason": "tool_calls" if turn.calls else "stop",
                "model_name": self.model_name,
                "model_provider": "nbcallbacks",
            },
        }
        if _HAS_CHUNK_POSITION:
            last_fields["chunk_position"] = "last"
        yield ChatGenerationChunk(message=AIMessageChunk(**last_fields))

    def _delays(self, messages: Sequence[BaseMessage]) -> Iterator[float]:
        rng = self._rng(messages)
        first = self.first_token_delay
        if first is None:
            first = 5 * self.token_delay
        base = first + self.token_delay
        while True:
            spread = 1.0 + self.jitter * (2.0 * rng.random() - 1.0) if self.jitter else 1.0
            yield max(0.0, base * spread)
            base = self.token_delay

    def _check_error(self, streamed: int) -> None:
        if self.error_after is not None and streamed >= self.error_after:
            msg = f"demo model failed after {streamed} streamed chunks (error_after={self.error_after})"
            raise DemoStreamError(msg)

    # ---- LangChain entry points -----------------------------------------------------------

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,  # noqa: ARG002 - the base reports tokens
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        # BaseChatModel reports every yielded chunk to on_llm_new_token; reporting here too
        # would count each token twice.
        delays = self._delays(messages)
        for streamed, chunk in enumerate(self._chunks(messages, stop, kwargs)):
            self._check_error(streamed)
            delay = next(delays)
            if delay > 0:
                time.sleep(delay)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,  # noqa: ARG002 - the base reports tokens
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        delays = self._delays(messages)
        for streamed, chunk in enumerate(self._chunks(messages, stop, kwargs)):
            self._check_error(streamed)
            await asyncio.sleep(next(delays))
            yield chunk

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,  # noqa: ARG002 - no tokens without streaming
        **kwargs: Any,
    ) -> ChatResult:
        chunks = list(self._chunks(messages, stop, kwargs))
        if self.error_after is not None and self.error_after < len(chunks):
            self._check_error(self.error_after)
        total = sum(d for d, _ in zip(self._delays(messages), chunks, strict=False))
        if total > 0:
            time.sleep(total)
        return _result_from_chunks(chunks)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,  # noqa: ARG002 - no tokens without streaming
        **kwargs: Any,
    ) -> ChatResult:
        chunks = list(self._chunks(messages, stop, kwargs))
        if self.error_after is not None and self.error_after < len(chunks):
            self._check_error(self.error_after)
        total = sum(d for d, _ in zip(self._delays(messages), chunks, strict=False))
        await asyncio.sleep(total)
        return _result_from_chunks(chunks)


def _result_from_chunks(chunks: Sequence[ChatGenerationChunk]) -> ChatResult:
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged = merged + chunk
    message = merged.message
    if not isinstance(message, AIMessageChunk):  # pragma: no cover - chunks are built above
        msg = "expected AIMessageChunk"
        raise TypeError(msg)
    full = AIMessage(
        content=message.content,
        tool_calls=message.tool_calls,
        usage_metadata=message.usage_metadata,
        response_metadata=message.response_metadata,
    )
    return ChatResult(generations=[ChatGeneration(message=full)])
