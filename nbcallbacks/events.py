"""The records nbcallbacks keeps: runs, events, limits, handler errors, and what changed (``Delta``).

Standard library only. The recorder fills these; the widget, the DataFrames and the sinks read them. The fields
and their names everywhere else are defined by the field table in ``nbcallbacks.schema``.
"""

from __future__ import annotations

import traceback as traceback_module
import warnings
from dataclasses import dataclass, field
from typing import Any, Final, Literal, NamedTuple

Status = Literal["running", "ok", "error", "interrupted"]

TokenKind = Literal["text", "tool_call", "reasoning"]
TOKEN_KINDS: Final[tuple[TokenKind, ...]] = ("text", "tool_call", "reasoning")
"""Index in this tuple is the compact code the recorder stores per token."""

EVENT_NAMES: Final[tuple[str, ...]] = (
    "chain_start",
    "chain_end",
    "chain_error",
    "llm_start",
    "chat_model_start",
    "llm_new_token",
    "llm_end",
    "llm_error",
    "tool_start",
    "tool_end",
    "tool_error",
    "retriever_start",
    "retriever_end",
    "retriever_error",
    "custom_event",
    "text",
    "retry",
    "agent_action",
    "agent_finish",
    "metric",
    "run_abandoned",
)
"""Every event name the recorder stores; the index is its compact code."""

EVENT_CODE: Final[dict[str, int]] = {name: code for code, name in enumerate(EVENT_NAMES)}
TOKEN_EVENT_CODE: Final = EVENT_CODE["llm_new_token"]

METRIC_EVENT: Final = "nbcallbacks.metric"
"""Name of the LangChain custom event that ``nbcallbacks.metric`` dispatches."""

MODEL_RUN_TYPES: Final = frozenset({"llm", "chat_model"})
"""Run types of model calls (the runs that stream tokens, report usage and have a price)."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what is kept. Counts and timings stay exact past every limit; only bulk text drops.

    Attributes:
        max_string: characters kept of any one string inside a payload preview.
        max_items: items kept of any one list, dict or set inside a payload preview.
        max_depth: nesting levels kept inside a payload preview.
        max_payload_chars: approximate total characters of one payload preview.
        max_tokens_per_run: streamed tokens whose text is kept per model run; later ones are counted only.
        max_events: callback events kept in the event log; older ones are dropped first, counted.
    """

    max_string: int = 2_000
    max_items: int = 50
    max_depth: int = 8
    max_payload_chars: int = 20_000
    max_tokens_per_run: int = 200_000
    max_events: int = 2_000_000

    def __post_init__(self) -> None:
        """Reject limits that cannot work, with a message that says which."""
        for name in (
            "max_string",
            "max_items",
            "max_depth",
            "max_payload_chars",
            "max_tokens_per_run",
            "max_events",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                msg = f"Limits.{name} must be a positive integer, got {value!r}"
                raise ValueError(msg)


@dataclass(slots=True)
class RunRecord:
    """One run (a chain, model call, tool, retriever, ...), keyed by its run id.

    Times are seconds since the epoch (``time.time()``); ``None`` when not (yet) known.
    """

    run_id: str
    parent_run_id: str | None
    order: int
    """Start order: 0 for the first run the recorder saw."""
    name: str
    run_type: str
    start: float
    status: Status = "running"
    hidden: bool = False
    """Tagged ``langsmith:hidden`` (internal plumbing)."""
    started: bool = True
    """False when the recorder met the run first through an end, error or token event."""
    end: float | None = None
    first_token: float | None = None
    streamed_chunks: int = 0
    """Streamed chunks received (not model tokens)."""
    chunks_not_kept: int = 0
    """Streamed chunks whose text was not kept because of ``Limits.max_tokens_per_run``."""
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_creation_tokens: int | None = None
    reasoning_tokens: int | None = None
    model: str | None = None
    provider: str | None = None
    langgraph_node: str | None = None
    langgraph_step: int | None = None
    tags: list[str] = field(default_factory=list)
    metadata: Any = None
    inputs: Any = None
    outputs: Any = None
    error: str | None = None
    error_type: str | None = None
    traceback: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    token_texts: list[str] = field(default_factory=list, repr=False)
    """Kept streamed text, one entry per chunk (bounded by ``Limits.max_tokens_per_run``)."""
    token_kinds: bytearray = field(default_factory=bytearray, repr=False)
    """Per kept chunk, its index in ``TOKEN_KINDS``."""
    abandoned: bool = False
    """Still running when the recorder was told its work was abandoned (interrupt, closed generator)."""
    thread: str = ""

    @property
    def duration(self) -> float | None:
        """Seconds from start to end, or ``None`` while running."""
        if self.end is None:
            return None
        return self.end - self.start

    @property
    def ttft(self) -> float | None:
        """Seconds from start to the first streamed token, or ``None`` when nothing streamed."""
        if self.first_token is None:
            return None
        return self.first_token - self.start

    @property
    def token_count(self) -> int:
        """Deprecated name of ``streamed_chunks`` (one name per field since schema 2)."""
        warnings.warn("RunRecord.token_count is deprecated: use streamed_chunks", DeprecationWarning, stacklevel=2)
        return self.streamed_chunks

    @property
    def tokens_dropped(self) -> int:
        """Deprecated name of ``chunks_not_kept`` (one name per field since schema 2)."""
        warnings.warn("RunRecord.tokens_dropped is deprecated: use chunks_not_kept", DeprecationWarning, stacklevel=2)
        return self.chunks_not_kept

    @property
    def tokens_per_s(self) -> float | None:
        """Output tokens (from usage, else streamed chunks) per second of latency."""
        duration = self.duration
        count = self.output_tokens
        if count is None and self.streamed_chunks:
            count = self.streamed_chunks
        if duration is None or duration <= 0 or count is None:
            return None
        return count / duration


@dataclass(frozen=True, slots=True)
class Usage:
    """Token usage a model reported (``usage_metadata``); ``None`` where it did not say."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_creation_tokens: int | None = None
    reasoning_tokens: int | None = None


class EventRow(NamedTuple):
    """One callback event as read back from the recorder's log.

    A named tuple, not a dataclass: readers build one per event they read (every token of a stream, for every
    sink and live consumer), and a tuple is built in less than half the time of a frozen dataclass.
    """

    seq: int
    time: float
    event: str
    run_id: str
    parent_run_id: str | None
    name: str
    run_type: str
    token: str | None
    token_kind: str | None
    data: Any
    thread: str


@dataclass(frozen=True, slots=True)
class HandlerError:
    """A failure inside nbcallbacks' own code, caught so that the user's chain never sees it."""

    time: float
    where: str
    error: str
    traceback: str

    @classmethod
    def of(cls, where: str, exc: BaseException, time: float) -> HandlerError:
        """The record of ``exc``, bounded and encodable (shown in the widget); never raises."""
        try:
            error = f"{type(exc).__name__}: {exc}"[:2000]
            trace = "".join(traceback_module.format_exception(type(exc), exc, exc.__traceback__))[-8000:]
            # Lone surrogates would make the widget's messages unencodable.
            return cls(
                time=time,
                where=where,
                error=error.encode("utf-8", "backslashreplace").decode("utf-8"),
                traceback=trace.encode("utf-8", "backslashreplace").decode("utf-8"),
            )
        except Exception:  # noqa: BLE001 - an exception whose str() raises must not escape either
            return cls(time=time, where=where, error=type(exc).__name__, traceback="")


@dataclass(slots=True)
class Delta:
    """What changed in a recorder since a consumer's cursor.

    Attributes:
        cursor: pass this back to read the next delta.
        events: events appended since the cursor, in order (token events included).
        runs: copies of the runs touched since the cursor, in start order.
        tokens: per run id, the newly streamed text as ``[kind, text]`` pieces, adjacent same-kind merged.
        dropped_events: events that left the bounded log before this consumer read them.
        handler_errors: handler errors recorded since the cursor.
        token_only_runs: run ids touched only by streamed tokens since the cursor.
    """

    cursor: int
    events: list[EventRow]
    runs: list[RunRecord]
    tokens: dict[str, list[list[str]]]
    dropped_events: int
    handler_errors: list[HandlerError]
    token_only_runs: set[str] = field(default_factory=set)
    """Run ids whose only events since the cursor were streamed tokens (empty when events were dropped)."""
    records: list[dict[str, Any]] = field(default_factory=list)
    """With ``read(head=...)``: the events as records (``schema.event_dict``) instead of ``events``."""


# The DataFrame columns, for code that imported them from here (defined by the field table).
from nbcallbacks.schema import EVENT_COLUMNS, METRIC_COLUMNS, RUN_COLUMNS, SCHEMA_VERSION  # noqa: E402

__all__ = [
    "EVENT_CODE",
    "EVENT_COLUMNS",
    "EVENT_NAMES",
    "METRIC_COLUMNS",
    "METRIC_EVENT",
    "MODEL_RUN_TYPES",
    "RUN_COLUMNS",
    "SCHEMA_VERSION",
    "TOKEN_EVENT_CODE",
    "TOKEN_KINDS",
    "Delta",
    "EventRow",
    "HandlerError",
    "Limits",
    "RunRecord",
    "Status",
    "TokenKind",
    "Usage",
]
