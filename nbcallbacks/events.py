"""The records nbcallbacks keeps: runs, events, limits, and the wire schema version.

Standard library only. The recorder fills these; the widget, the DataFrames and the sinks read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal

SCHEMA_VERSION: Final = 1
"""Version of the run/event dictionaries sent to the front end and written by sinks."""

RunType = Literal["chain", "llm", "chat_model", "tool", "retriever", "prompt", "parser"]
RUN_TYPES: Final[tuple[str, ...]] = (
    "chain",
    "llm",
    "chat_model",
    "tool",
    "retriever",
    "prompt",
    "parser",
)

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


# The columns of the three DataFrames, name -> pandas dtype. Defined here (stdlib) so that the export and the
# sinks' records share one list.
_TEXT: Final = "string"
_TIME: Final = "datetime64[ns, UTC]"
_FLOAT: Final = "float64"
_COUNT: Final = "Int64"

RUN_COLUMNS: dict[str, str] = {
    "run_id": _TEXT,
    "parent_run_id": _TEXT,
    "order": "int64",
    "name": _TEXT,
    "run_type": _TEXT,
    "status": _TEXT,
    "depth": "int64",
    "start": _TIME,
    "end": _TIME,
    "start_offset_s": _FLOAT,
    "duration_s": _FLOAT,
    "ttft_s": _FLOAT,
    "tokens_per_s": _FLOAT,
    "input_tokens": _COUNT,
    "output_tokens": _COUNT,
    "total_tokens": _COUNT,
    "streamed_chunks": "int64",
    "chunks_not_kept": "int64",
    "model": _TEXT,
    "error": _TEXT,
    "error_type": _TEXT,
    "traceback": _TEXT,
    "tags": "object",
    "metadata": "object",
    "inputs": "object",
    "outputs": "object",
    "metrics": "object",
    "langgraph_node": _TEXT,
    "langgraph_step": _COUNT,
    "orphan": "bool",
    "hidden": "bool",
    "started": "bool",
    "abandoned": "bool",
    "thread": _TEXT,
}
"""Column name -> dtype of ``runs_dataframe``."""

EVENT_COLUMNS: dict[str, str] = {
    "seq": "int64",
    "time": _TIME,
    "elapsed_s": _FLOAT,
    "event": _TEXT,
    "run_id": _TEXT,
    "parent_run_id": _TEXT,
    "name": _TEXT,
    "run_type": _TEXT,
    "token": _TEXT,
    "token_kind": _TEXT,
    "data": "object",
    "thread": _TEXT,
}
"""Column name -> dtype of ``to_dataframe`` (the event log)."""

METRIC_COLUMNS: dict[str, str] = {
    "run_id": _TEXT,
    "name": _TEXT,
    "value": _FLOAT,
    "labels": "object",
    "time": _TIME,
}
"""Column name -> dtype of ``metrics_dataframe``."""


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
    depth: int = 0
    orphan: bool = False
    """The run names a parent the recorder never saw; it is shown as a root."""
    hidden: bool = False
    """Tagged ``langsmith:hidden`` (internal plumbing)."""
    started: bool = True
    """False when the recorder met the run first through an end, error or token event."""
    end: float | None = None
    first_token: float | None = None
    token_count: int = 0
    """Streamed chunks received (not model tokens)."""
    tokens_dropped: int = 0
    """Streamed chunks whose text was not kept because of ``Limits.max_tokens_per_run``."""
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    model: str | None = None
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
    def tokens_per_s(self) -> float | None:
        """Output tokens (from usage, else streamed chunks) per second of latency."""
        duration = self.duration
        count = self.output_tokens if self.output_tokens is not None else None
        if count is None and self.token_count:
            count = self.token_count
        if duration is None or duration <= 0 or count is None:
            return None
        return count / duration

    def to_row(self, first_start: float) -> dict[str, Any]:
        """The run as a row of the runs DataFrame (``RUN_COLUMNS``, in order); offsets from ``first_start``."""
        return {
            "run_id": self.run_id,
            "parent_run_id": self.parent_run_id,
            "order": self.order,
            "name": self.name,
            "run_type": self.run_type,
            "status": self.status,
            "depth": self.depth,
            "start": self.start,
            "end": self.end,
            "start_offset_s": self.start - first_start,
            "duration_s": self.duration,
            "ttft_s": self.ttft,
            "tokens_per_s": self.tokens_per_s,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
            "streamed_chunks": self.token_count,
            "chunks_not_kept": self.tokens_dropped,
            "model": self.model,
            "error": self.error,
            "error_type": self.error_type,
            "traceback": self.traceback,
            "tags": list(self.tags),
            "metadata": self.metadata,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "metrics": dict(self.metrics),
            "langgraph_node": self.langgraph_node,
            "langgraph_step": self.langgraph_step,
            "orphan": self.orphan,
            "hidden": self.hidden,
            "started": self.started,
            "abandoned": self.abandoned,
            "thread": self.thread,
        }

    def to_wire(self) -> dict[str, Any]:
        """The JSON-able dictionary sent to the front end and to sinks (schema ``SCHEMA_VERSION``)."""
        return {
            "run_id": self.run_id,
            "parent_run_id": self.parent_run_id,
            "order": self.order,
            "name": self.name,
            "run_type": self.run_type,
            "status": self.status,
            "depth": self.depth,
            "orphan": self.orphan,
            "hidden": self.hidden,
            "started": self.started,
            "abandoned": self.abandoned,
            "start": self.start,
            "end": self.end,
            "first_token": self.first_token,
            "token_count": self.token_count,
            "tokens_dropped": self.tokens_dropped,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
            "model": self.model,
            "langgraph_node": self.langgraph_node,
            "langgraph_step": self.langgraph_step,
            "tags": list(self.tags),
            "metadata": self.metadata,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "error": self.error,
            "error_type": self.error_type,
            "traceback": self.traceback,
            "metrics": dict(self.metrics),
            "thread": self.thread,
        }


@dataclass(frozen=True, slots=True)
class EventRow:
    """One callback event as read back from the recorder's log."""

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


@dataclass(slots=True)
class Delta:
    """What changed in a recorder since a consumer's cursor.

    Attributes:
        cursor: pass this back to read the next delta.
        events: events appended since the cursor, in order (token events included).
        runs: the runs touched since the cursor, as wire dictionaries (``RunRecord.to_wire``), in start
            order.
        tokens: per run id, the newly streamed text as ``[kind, text]`` pieces, adjacent same-kind merged.
        dropped_events: events that left the bounded log before this consumer read them.
        handler_errors: handler errors recorded since the cursor.
        token_only_runs: run ids touched only by streamed tokens since the cursor.
    """

    cursor: int
    events: list[EventRow]
    runs: list[dict[str, Any]]
    tokens: dict[str, list[list[str]]]
    dropped_events: int
    handler_errors: list[HandlerError]
    token_only_runs: set[str] = field(default_factory=set)
    """Run ids whose only events since the cursor were streamed tokens (empty when events were dropped)."""
