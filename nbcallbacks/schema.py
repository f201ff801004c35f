"""The field table: every field of a run, an event and a metric, defined once.

Standard library only. Everything that names a field derives from these tables: the DataFrame columns and dtypes
(``nbcallbacks.export``), the records sinks receive and the front end's run dictionaries (``run_record``,
``event_record``), the SQLite columns (``sql_columns``), the history readers (``run_from_record``,
``event_from_record``) and the TypeScript types of the front end (``typescript``, written to
``js/src/generated/schema.ts`` by ``python scripts/generate_schema.py``; CI checks the file is current).

Adding a run field: one row in ``RUN_FIELDS``; if it is ``stored``, an attribute of the same name on
``nbcallbacks.events.RunRecord`` (a test checks the two agree); if it is derived, its computation in
``nbcallbacks.tree``. Nothing else names it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Sequence

    from nbcallbacks.events import EventRow, RunRecord
    from nbcallbacks.tree import Derived

SCHEMA_VERSION: Final = 2
"""Version of the records (sinks, history files, the widget's wire). 2: one name per field (``streamed_chunks``,
``chunks_not_kept`` on the wire too), ``first_token`` in the runs DataFrame, derived ``display_status``, ``key``,
``cost_usd``, ``cost_usd_total``; ``provider`` and cache/reasoning token counts."""

TEXT: Final = "string"
TIME: Final = "datetime64[ns, UTC]"
FLOAT: Final = "float64"
COUNT: Final = "Int64"
INT: Final = "int64"
BOOL: Final = "bool"
OBJECT: Final = "object"

_SQL: Final = {TEXT: "TEXT", TIME: "REAL", FLOAT: "REAL", COUNT: "INTEGER", INT: "INTEGER", BOOL: "INTEGER"}
_TS: Final = {TEXT: "string", TIME: "number", FLOAT: "number", COUNT: "number", INT: "number", BOOL: "boolean"}


@dataclass(frozen=True, slots=True)
class Field:
    """One field: its name everywhere (DataFrame column, record key, SQL column, wire key), type and meaning.

    Attributes:
        name: the one name of the field.
        dtype: pandas dtype of the DataFrame column (``TIME`` columns are seconds since the epoch elsewhere).
        doc: what it means.
        stored: kept on the run record as recorded (else computed when read, by ``nbcallbacks.tree``).
        nullable: may be missing (``None``); ``dtype`` decides how pandas shows it.
        ts: TypeScript type, when the dtype alone does not say (JSON values).
    """

    name: str
    dtype: str
    doc: str
    stored: bool = True
    nullable: bool = False
    ts: str = ""

    @property
    def sql(self) -> str:
        """SQLite column type (JSON text for object columns)."""
        return _SQL.get(self.dtype, "TEXT")

    @property
    def is_json(self) -> bool:
        """Stored as JSON text in SQLite."""
        return self.dtype == OBJECT

    @property
    def typescript(self) -> str:
        """TypeScript type of the field in the front end's run dictionary."""
        base = self.ts or _TS.get(self.dtype, "unknown")
        return f"{base} | null" if self.nullable and base != "unknown" else base


def _f(name: str, dtype: str, doc: str, **kw: Any) -> Field:
    return Field(name, dtype, doc, **kw)


RUN_FIELDS: Final[tuple[Field, ...]] = (
    _f("run_id", TEXT, "LangChain's run id (a UUID as text)."),
    _f("parent_run_id", TEXT, "Parent run's id; missing for a root.", nullable=True),
    _f("order", INT, "Start order: 0 for the first run the recorder saw."),
    _f("name", TEXT, "The run's name, as LangChain's tracer names it."),
    _f("run_type", TEXT, "chain, llm, chat_model, tool, retriever, prompt or parser."),
    _f("status", TEXT, "running, ok, error or interrupted (as recorded; see display_status).", ts="Status"),
    _f("depth", INT, "Known ancestors above the run (root = 0); late parents resolve.", stored=False),
    _f("start", TIME, "When the run started."),
    _f("end", TIME, "When the run ended; missing while running.", nullable=True),
    _f("start_offset_s", FLOAT, "Seconds from the first run's start.", stored=False),
    _f("duration_s", FLOAT, "Seconds from start to end.", stored=False, nullable=True),
    _f("ttft_s", FLOAT, "Seconds from start to the first streamed token.", stored=False, nullable=True),
    _f("tokens_per_s", FLOAT, "Output tokens (else streamed chunks) per second.", stored=False, nullable=True),
    _f("input_tokens", COUNT, "Input tokens the model reported (usage_metadata).", nullable=True),
    _f("output_tokens", COUNT, "Output tokens the model reported.", nullable=True),
    _f("total_tokens", COUNT, "Total tokens the model reported.", nullable=True),
    _f("streamed_chunks", INT, "Streamed chunks received (not model tokens)."),
    _f("chunks_not_kept", INT, "Streamed chunks whose text was not kept (Limits.max_tokens_per_run)."),
    _f("model", TEXT, "Model name.", nullable=True),
    _f("error", TEXT, "Error message.", nullable=True),
    _f("error_type", TEXT, "Error class name.", nullable=True),
    _f("traceback", TEXT, "Error traceback (bounded).", nullable=True),
    _f("tags", OBJECT, "Tags (list of text).", ts="string[]"),
    _f("metadata", OBJECT, "Bounded preview of the start metadata."),
    _f("inputs", OBJECT, "Bounded preview of the inputs."),
    _f("outputs", OBJECT, "Bounded preview of the outputs."),
    _f("metrics", OBJECT, "Last value per custom metric name.", ts="Record<string, number | null>"),
    _f("langgraph_node", TEXT, "LangGraph node.", nullable=True),
    _f("langgraph_step", COUNT, "LangGraph step.", nullable=True),
    _f("orphan", BOOL, "Names a parent never seen: shown as a root.", stored=False),
    _f("hidden", BOOL, "Tagged langsmith:hidden (internal plumbing)."),
    _f("started", BOOL, "False when met first through an end, error or token."),
    _f("abandoned", BOOL, "Still running when the code that started it was over."),
    _f("thread", TEXT, "Name of the thread that started it."),
    _f("first_token", TIME, "When the first streamed token arrived.", nullable=True),
    _f("display_status", TEXT, "running, ok, error, interrupted or abandoned.", stored=False, ts="DisplayStatus"),
    _f("key", BOOL, "Not a pass-through wrapper (see nbcallbacks.tree.is_key_run).", stored=False),
    _f("provider", TEXT, "Model provider (LangChain's ls_provider metadata).", nullable=True),
    _f("cache_read_tokens", COUNT, "Input tokens read from the provider's cache.", nullable=True),
    _f("cache_creation_tokens", COUNT, "Input tokens written to the provider's cache.", nullable=True),
    _f("reasoning_tokens", COUNT, "Output tokens spent on reasoning.", nullable=True),
    _f("cost_usd", FLOAT, "Price of this model call in USD; missing when unknown.", stored=False, nullable=True),
    _f("cost_usd_total", FLOAT, "cost_usd of the run and all its descendants.", stored=False, nullable=True),
)
"""Fields of a run: the columns of ``runs_dataframe()``, in order."""

EVENT_FIELDS: Final[tuple[Field, ...]] = (
    _f("seq", INT, "Sequence number of the event (arrival order)."),
    _f("time", TIME, "When it was recorded."),
    _f("elapsed_s", FLOAT, "Seconds since the trace's first event."),
    _f("event", TEXT, "Event name (chain_start, llm_new_token, tool_error, ...)."),
    _f("run_id", TEXT, "Its run's id.", nullable=True),
    _f("parent_run_id", TEXT, "Its run's parent id.", nullable=True),
    _f("name", TEXT, "Its run's name.", nullable=True),
    _f("run_type", TEXT, "Its run's type.", nullable=True),
    _f("token", TEXT, "The text of an llm_new_token event.", nullable=True),
    _f("token_kind", TEXT, "text, tool_call or reasoning.", nullable=True),
    _f("data", OBJECT, "Bounded preview of the event's payload."),
    _f("thread", TEXT, "Name of the thread that recorded it."),
)
"""Fields of an event: the columns of ``to_dataframe()``, in order."""

METRIC_FIELDS: Final[tuple[Field, ...]] = (
    _f("run_id", TEXT, "The run the metric was recorded in.", nullable=True),
    _f("name", TEXT, "Metric name."),
    _f("value", FLOAT, "Its value (missing when not a number)."),
    _f("labels", OBJECT, "Labels given with it."),
    _f("time", TIME, "When it was recorded."),
)
"""Fields of a metric: the columns of ``metrics_dataframe()``."""

RUN_COLUMNS: Final[dict[str, str]] = {f.name: f.dtype for f in RUN_FIELDS}
"""Column name -> dtype of ``runs_dataframe``."""
EVENT_COLUMNS: Final[dict[str, str]] = {f.name: f.dtype for f in EVENT_FIELDS}
"""Column name -> dtype of ``to_dataframe``."""
METRIC_COLUMNS: Final[dict[str, str]] = {f.name: f.dtype for f in METRIC_FIELDS}
"""Column name -> dtype of ``metrics_dataframe``."""

STORED_RUN_FIELDS: Final[tuple[str, ...]] = tuple(f.name for f in RUN_FIELDS if f.stored)
DERIVED_RUN_FIELDS: Final[tuple[str, ...]] = tuple(f.name for f in RUN_FIELDS if not f.stored)


# --- records: the dictionaries sinks receive and the front end renders


def run_record(run: RunRecord, derived: Derived) -> dict[str, Any]:
    """A run as a dictionary of every field of ``RUN_FIELDS``, in order; times in seconds since the epoch.

    ``derived`` holds what ``nbcallbacks.tree`` computed for the run (depth, display status, cost, ...).
    """
    computed = derived.fields()
    record = {name: computed[name] if name in computed else getattr(run, name) for name in RUN_COLUMNS}
    record["tags"] = list(run.tags)
    # JSON has no NaN or Infinity: a non-finite metric is shown as missing.
    record["metrics"] = {k: v if math.isfinite(v) else None for k, v in run.metrics.items()}
    return record


def origin_of(first_time: float | None, events: Sequence[EventRow]) -> float:
    """What ``elapsed_s`` counts from: the recorder's ``first_time``, else the first event read (0 with none)."""
    if first_time is not None:
        return first_time
    return events[0].time if events else 0.0


def event_record(row: EventRow, origin: float, **head: Any) -> dict[str, Any]:
    """An event as a dictionary of every field of ``EVENT_FIELDS``; ``elapsed_s`` counts from ``origin``.

    ``head`` (e.g. a sink record's ``kind`` and ``session``) comes first, in the same dictionary.
    """
    return event_dict(head, origin, *row)


def event_dict(  # noqa: PLR0913, PLR0917 - an event's fields, positional: no tuple is built per token
    head: dict[str, Any],
    origin: float,
    seq: int,
    time: float,
    event: str,
    run_id: str,
    parent_run_id: str | None,
    name: str,
    run_type: str,
    token: str | None,
    token_kind: str | None,
    data: Any,
    thread: str,
) -> dict[str, Any]:
    """``event_record`` from an event's fields (``EventRow``'s, in its order) instead of a row.

    Readers that build one record per streamed token (the sinks' writer, live updates) call this straight from
    the log (``EventLog.records``): no row tuple per token, so less work and fewer objects for the collector.
    """
    return {
        **head,
        "seq": seq,
        "time": time,
        "elapsed_s": time - origin,
        "event": event,
        "run_id": run_id or None,
        "parent_run_id": parent_run_id,
        "name": name or None,
        "run_type": run_type or None,
        "token": token,
        "token_kind": token_kind,
        "data": data,
        "thread": thread,
    }


_LEGACY_NAMES: Final = {"token_count": "streamed_chunks", "tokens_dropped": "chunks_not_kept"}
"""Record keys of schema 1 (the widget's wire) and their one name now."""


def run_from_record(record: dict[str, Any]) -> RunRecord:
    """The run a record describes (the inverse of ``run_record`` for stored fields; derived ones are recomputed).

    Keys missing from an older record take their defaults; unknown keys are ignored (see ``unknown_fields``).
    """
    from nbcallbacks.events import RunRecord  # noqa: PLC0415 - events imports this module

    values: dict[str, Any] = {}
    for old, new in _LEGACY_NAMES.items():
        if old in record and new not in record:
            values[new] = record[old]
    for name in STORED_RUN_FIELDS:
        if name in record:
            values[name] = record[name]
    values["tags"] = list(values.get("tags") or [])
    values["metrics"] = {k: math.nan if v is None else v for k, v in (values.get("metrics") or {}).items()}
    for name in ("streamed_chunks", "chunks_not_kept"):
        values[name] = int(values.get(name) or 0)
    for name in ("hidden", "abandoned"):
        values[name] = bool(values.get(name))
    values["started"] = bool(values.get("started", True))
    return RunRecord(**values)


def event_from_record(record: dict[str, Any]) -> EventRow:
    """The event row a record describes (``run_type`` empty for an event of a run that was never seen)."""
    from nbcallbacks.events import EventRow  # noqa: PLC0415 - events imports this module

    return EventRow(
        seq=record["seq"],
        time=record["time"],
        event=record["event"],
        run_id=record.get("run_id") or "",
        parent_run_id=record.get("parent_run_id"),
        name=record.get("name") or "",
        run_type=record.get("run_type") or "",
        token=record.get("token"),
        token_kind=record.get("token_kind"),
        data=record.get("data"),
        thread=record.get("thread") or "",
    )


def unknown_fields(record: dict[str, Any], fields: tuple[Field, ...]) -> set[str]:
    """Keys of a record that this version does not know (written by a newer version)."""
    known = {f.name for f in fields} | set(_LEGACY_NAMES) | {"kind", "session"}
    return set(record) - known


# --- SQL and TypeScript, generated from the tables


def sql_columns(fields: tuple[Field, ...]) -> str:
    """``"name" TYPE, ...`` for a CREATE TABLE statement."""
    return ", ".join(f'"{f.name}" {f.sql}' for f in fields)


def typescript() -> str:
    """The front end's generated types (``js/src/generated/schema.ts``)."""
    lines = [
        "// Generated by `python scripts/generate_schema.py` from nbcallbacks/schema.py. Do not edit by hand:",
        "// CI fails when this file is not what the field table generates.",
        "",
        f"export const SCHEMA_VERSION = {SCHEMA_VERSION};",
        "",
        'export type Status = "running" | "ok" | "error" | "interrupted";',
        'export type DisplayStatus = Status | "abandoned";',
        "",
        "/** One run, as the widget receives it (`schema.run_record`). Times are seconds since the epoch. */",
        "export interface RunWire {",
    ]
    for f in RUN_FIELDS:
        lines.append(f"  /** {f.doc} */")
        lines.append(f"  {f.name}: {f.typescript};")
    lines += ["}", "", "/** A run with every field at a neutral value (for tests and placeholders). */"]
    lines.append("export const EMPTY_RUN: RunWire = {")
    lines.extend(f"  {f.name}: {_ts_default(f)}," for f in RUN_FIELDS)
    lines += ["};", "", "/** Every field of RunWire, in the order of the field table. */"]
    names = ", ".join(f'"{f.name}"' for f in RUN_FIELDS)
    lines += [f"export const RUN_FIELDS = [{names}] as const;", ""]
    return "\n".join(_wrap(line) for line in lines)


def _ts_default(f: Field) -> str:
    """A neutral TypeScript value of a field's type."""
    special = {"status": '"running"', "display_status": '"running"', "key": "true", "started": "true"}
    if f.name in special:
        return special[f.name]
    if f.nullable or (f.dtype == OBJECT and not f.ts):
        return "null"
    return {"string[]": "[]", "Record<string, number | null>": "{}"}.get(
        f.ts, {TEXT: '""', BOOL: "false"}.get(f.dtype, "0")
    )


def _wrap(line: str, width: int = 118) -> str:
    """Break an over-long ``export const`` list after commas (keeps the generated file readable)."""
    if len(line) <= width or "[" not in line:
        return line
    head, _, rest = line.partition("[")
    items = rest.removesuffix("] as const;").split(", ")
    out, current = [head + "["], "  "
    for item in items:
        if len(current) + len(item) + 2 > width:
            out.append(current.rstrip())
            current = "  "
        current += item + ", "
    out.append(current.rstrip().rstrip(","))
    out.append("] as const;")
    return "\n".join(out)
