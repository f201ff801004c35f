"""Read back what ``JSONLSink`` and ``SQLiteSink`` wrote: list the sessions and runs, or rebuild a trace.

``history(path)`` is a DataFrame of every session's root runs; ``NotebookHandler.load(path)`` (built on
``load_trace``) rebuilds a handler whose runs, events, text, timings, DataFrames, charts and widget are those of
the saved session, in any process. The file kind is recognised from its first bytes.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbcallbacks.events import EventRow, Limits, RunRecord
from nbcallbacks.sinks import EVENT_FIELDS, RUN_FIELDS, SESSION_FIELDS

if TYPE_CHECKING:
    import os
    from collections.abc import Callable, Iterator

    import pandas as pd

__all__ = ["HISTORY_COLUMNS", "SavedTrace", "history", "load_trace", "sessions"]

_SQLITE_MAGIC = b"SQLite format 3\x00"
_MODEL_RUN_TYPES = frozenset({"llm", "chat_model"})

HISTORY_COLUMNS: dict[str, str] = {
    "session": "string",
    "started": "datetime64[ns, UTC]",
    "notebook": "string",
    "hostname": "string",
    "pid": "Int64",
    "run_id": "string",
    "name": "string",
    "status": "string",
    "start": "datetime64[ns, UTC]",
    "duration_s": "float64",
    "tokens": "Int64",
    "error": "string",
}
"""Column name -> dtype of ``history``."""


@dataclass
class SavedTrace:
    """One saved session, ready for ``Recorder.restore``."""

    session: dict[str, Any]
    runs: list[RunRecord]
    events: list[EventRow]
    first_time: float | None
    limits: Limits
    title: str | None


# --- reading either kind of file


def _is_sqlite(path: Path) -> bool:
    with path.open("rb") as file:
        return file.read(len(_SQLITE_MAGIC)) == _SQLITE_MAGIC


def _checked(path: str | os.PathLike[str]) -> Path:
    resolved = Path(path)
    if not resolved.is_file():
        msg = f"no run history at {str(resolved)!r}"
        raise FileNotFoundError(msg)
    return resolved


def _jsonl(path: Path, keep: Callable[[bytes], bool]) -> Iterator[dict[str, Any]]:
    """Records of the lines ``keep`` accepts; torn or foreign lines (a crash mid-write) are skipped."""
    with path.open("rb") as file:
        for line in file:
            if not keep(line):
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                yield record


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30.0)
    conn.row_factory = sqlite3.Row
    return conn


def _text(value: Any) -> Any:
    """A text column: BLOB when the writer met lone surrogates (see ``SQLiteSink``)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogatepass")
    return value


def _json(value: Any) -> Any:
    return None if value is None else json.loads(_text(value))


def _sql_sessions(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    rows = conn.execute(f"SELECT {', '.join(SESSION_FIELDS)} FROM sessions")  # noqa: S608 - constant names
    out = []
    for row in rows:
        record = {f: _text(row[f]) for f in SESSION_FIELDS}
        record["limits"] = _json(row["limits"])
        out.append(record)
    return out


_JSON_RUN = frozenset({"tags", "metadata", "inputs", "outputs", "metrics"})
_BOOL_RUN = frozenset({"orphan", "hidden", "started", "abandoned"})


def _sql_runs(conn: sqlite3.Connection, session: str | None) -> list[dict[str, Any]]:
    columns = ", ".join(["session", *(f'"{f}"' for f in RUN_FIELDS)])
    where, args = ("WHERE session = ?", (session,)) if session is not None else ("", ())
    out = []
    for row in conn.execute(f"SELECT {columns} FROM runs {where}", args):  # noqa: S608 - constant names
        record: dict[str, Any] = {"session": row["session"]}
        for f in RUN_FIELDS:
            value = row[f]
            if f in _JSON_RUN:
                value = _json(value)
            elif f in _BOOL_RUN:
                value = bool(value)
            else:
                value = _text(value)
            record[f] = value
        out.append(record)
    return out


def _sql_events(conn: sqlite3.Connection, session: str) -> list[dict[str, Any]]:
    sql = f"SELECT {', '.join(EVENT_FIELDS)} FROM events WHERE session = ? ORDER BY seq"  # noqa: S608 - constant
    out = []
    for row in conn.execute(sql, (session,)):
        record = {f: _text(row[f]) for f in EVENT_FIELDS}
        record["data"] = _json(row["data"])
        out.append(record)
    return out


def _merge_sessions(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Session records by id; a later record of a session fills in what an earlier one left empty."""
    merged: dict[str, dict[str, Any]] = {}
    for record in records:
        sid = record.get("session")
        if not isinstance(sid, str):
            continue
        known = merged.setdefault(sid, {})
        for key, value in record.items():
            if value is not None or key not in known:
                known[key] = value
    return merged


def _all_sessions(path: Path) -> dict[str, dict[str, Any]]:
    if _is_sqlite(path):
        conn = _connect(path)
        try:
            return _merge_sessions(_sql_sessions(conn))
        finally:
            conn.close()
    found = _jsonl(path, lambda line: b'"kind":"session"' in line)
    return _merge_sessions([record for record in found if record.get("kind") == "session"])


def sessions(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The session records of a history file, oldest first."""
    found = _all_sessions(_checked(path))
    return sorted(found.values(), key=lambda s: (s.get("started") or 0.0, s["session"]))


def _pick_session(found: list[dict[str, Any]], session: str | int | None, path: Path) -> dict[str, Any]:
    if not found:
        msg = f"{str(path)!r} holds no session"
        raise ValueError(msg)
    if session is None:
        return found[-1]
    if isinstance(session, int):
        try:
            return found[session]
        except IndexError:
            msg = f"{str(path)!r} holds {len(found)} sessions; there is no session {session}"
            raise ValueError(msg) from None
    matches = [s for s in found if s["session"] == session] or [s for s in found if s["session"].startswith(session)]
    if len(matches) != 1:
        known = ", ".join(s["session"][:12] for s in found[-10:])
        msg = f"session {session!r} {'is ambiguous' if matches else 'not found'} in {str(path)!r} (latest: {known})"
        raise ValueError(msg)
    return matches[0]


def _records(path: Path, session: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The run records (latest state of each) and event records (by ``seq``) of one session."""
    if _is_sqlite(path):
        conn = _connect(path)
        try:
            return _sql_runs(conn, session), _sql_events(conn, session)
        finally:
            conn.close()
    marker = f'"session":"{session}"'.encode()
    runs: dict[str, dict[str, Any]] = {}
    events: dict[int, dict[str, Any]] = {}
    for record in _jsonl(path, lambda line: marker in line):
        if record.get("session") != session:
            continue
        kind = record.get("kind")
        if kind == "run":
            runs[record["run_id"]] = record
        elif kind == "event":
            events[record["seq"]] = record
    return list(runs.values()), [events[seq] for seq in sorted(events)]


def _run_from_record(record: dict[str, Any]) -> RunRecord:
    return RunRecord(
        run_id=record["run_id"],
        parent_run_id=record["parent_run_id"],
        order=record["order"],
        name=record["name"],
        run_type=record["run_type"],
        start=record["start"],
        status=record["status"],
        depth=record["depth"],
        orphan=record["orphan"],
        hidden=record["hidden"],
        started=record["started"],
        end=record["end"],
        first_token=record["first_token"],
        token_count=record["streamed_chunks"],
        tokens_dropped=record["chunks_not_kept"],
        input_tokens=record["input_tokens"],
        output_tokens=record["output_tokens"],
        total_tokens=record["total_tokens"],
        model=record["model"],
        langgraph_node=record["langgraph_node"],
        langgraph_step=record["langgraph_step"],
        tags=list(record["tags"] or []),
        metadata=record["metadata"],
        inputs=record["inputs"],
        outputs=record["outputs"],
        error=record["error"],
        error_type=record["error_type"],
        traceback=record["traceback"],
        metrics=dict(record["metrics"] or {}),
        abandoned=record["abandoned"],
        thread=record["thread"],
    )


def _event_from_record(record: dict[str, Any]) -> EventRow:
    return EventRow(
        seq=record["seq"],
        time=record["time"],
        event=record["event"],
        run_id=record["run_id"] or "",
        parent_run_id=record["parent_run_id"],
        name=record["name"] or "",
        run_type=record["run_type"] or "",
        token=record["token"],
        token_kind=record["token_kind"],
        data=record["data"],
        thread=record["thread"],
    )


def _subtree(runs: list[dict[str, Any]], run: str) -> set[str]:
    ids = {r["run_id"] for r in runs}
    matches = [run] if run in ids else [i for i in ids if i.startswith(run)]
    if len(matches) != 1:
        msg = f"run {run!r} {'is ambiguous' if matches else 'not found'} in this session"
        raise ValueError(msg)
    children: dict[str, list[str]] = {}
    for r in runs:
        if r["parent_run_id"] is not None:
            children.setdefault(r["parent_run_id"], []).append(r["run_id"])
    keep: set[str] = set()
    stack = matches
    while stack:
        current = stack.pop()
        if current not in keep:
            keep.add(current)
            stack.extend(children.get(current, ()))
    return keep


def _limits(saved: Any) -> Limits:
    if not isinstance(saved, dict):
        return Limits()
    known = {f.name for f in fields(Limits)}
    try:
        return Limits(**{k: v for k, v in saved.items() if k in known})
    except (TypeError, ValueError):
        return Limits()


def load_trace(path: str | os.PathLike[str], session: str | int | None = None, run: str | None = None) -> SavedTrace:
    """Read one session of a JSONL or SQLite history.

    Args:
        path: the file a ``JSONLSink`` or ``SQLiteSink`` wrote.
        session: a session id (or a unique prefix of one), an index in start order (``0`` the first, ``-1``
            the latest), or ``None`` for the latest.
        run: keep only this run (id or unique prefix) and its descendants, with their events.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the session or run is not in the file.
    """
    resolved = _checked(path)
    chosen = _pick_session(sessions(resolved), session, resolved)
    run_records, event_records = _records(resolved, chosen["session"])
    if run is not None:
        keep = _subtree(run_records, run)
        run_records = [r for r in run_records if r["run_id"] in keep]
        event_records = [e for e in event_records if e["run_id"] in keep]
    first_time = chosen.get("first_time")
    if first_time is None and event_records:
        first_time = event_records[0]["time"]
    return SavedTrace(
        session=chosen,
        runs=[_run_from_record(r) for r in run_records],
        events=[_event_from_record(e) for e in event_records],
        first_time=first_time,
        limits=_limits(chosen.get("limits")),
        title=chosen.get("title"),
    )


_SUMMARY_FIELDS = (
    "session",
    "run_id",
    "parent_run_id",
    "order",
    "name",
    "run_type",
    "status",
    "start",
    "duration_s",
    "total_tokens",
    "error",
)


def _summaries(path: Path) -> list[dict[str, Any]]:
    """The latest state of every run of every session, with the fields ``history`` shows."""
    if _is_sqlite(path):
        conn = _connect(path)
        try:
            columns = ", ".join(f'"{f}"' for f in _SUMMARY_FIELDS)
            rows = conn.execute(f"SELECT {columns} FROM runs")  # noqa: S608 - constant names
            return [{f: _text(row[f]) for f in _SUMMARY_FIELDS} for row in rows]
        finally:
            conn.close()
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for record in _jsonl(path, lambda line: b'"kind":"run"' in line):
        if record.get("kind") == "run":
            latest[record["session"], record["run_id"]] = record
    return list(latest.values())


def _tree_tokens(runs: list[dict[str, Any]]) -> dict[str, int | None]:
    """Per run id, the total tokens reported by the model runs in its subtree (``None`` when none did)."""
    by_id = {r["run_id"]: r for r in runs}
    totals: dict[str, int | None] = {}
    for r in runs:
        if r["run_type"] not in _MODEL_RUN_TYPES or r["total_tokens"] is None:
            continue
        current: dict[str, Any] | None = r
        seen: set[str] = set()
        while current is not None and current["run_id"] not in seen:
            seen.add(current["run_id"])
            totals[current["run_id"]] = (totals.get(current["run_id"]) or 0) + int(r["total_tokens"])
            parent = current["parent_run_id"]
            current = by_id.get(parent) if parent is not None else None
    return totals


def history(path: str | os.PathLike[str]) -> pd.DataFrame:
    """One row per root run of every session in a JSONL or SQLite history, oldest first.

    Columns (``HISTORY_COLUMNS``): ``session``, ``started``, ``notebook``, ``hostname``, ``pid``, and per root
    run ``run_id``, ``name``, ``status``, ``start``, ``duration_s``, ``tokens`` (total tokens of the model runs
    in its tree) and ``error``. A session without runs has one row with empty run columns.
    """
    import pandas as pd  # noqa: PLC0415 - pandas only when asked for

    resolved = _checked(path)
    found = sessions(resolved)
    runs = _summaries(resolved)
    by_session: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        by_session.setdefault(r["session"], []).append(r)
    rows: list[dict[str, Any]] = []
    for s in found:
        session_runs = by_session.get(s["session"], [])
        ids = {r["run_id"] for r in session_runs}
        tokens = _tree_tokens(session_runs)
        roots = sorted(
            (r for r in session_runs if r["parent_run_id"] is None or r["parent_run_id"] not in ids),
            key=lambda r: (r["start"], r["order"]),
        )
        base = {k: s.get(k) for k in ("session", "started", "notebook", "hostname", "pid")}
        if not roots:
            rows.append(base)
        rows.extend(
            {
                **base,
                "run_id": r["run_id"],
                "name": r["name"],
                "status": r["status"],
                "start": r["start"],
                "duration_s": r["duration_s"],
                "tokens": tokens.get(r["run_id"]),
                "error": r["error"],
            }
            for r in roots
        )
    data: dict[str, pd.Series[Any]] = {}
    for name, dtype in HISTORY_COLUMNS.items():
        values = [row.get(name) for row in rows]
        if dtype.startswith("datetime"):
            seconds = pd.Series([float("nan") if v is None else v for v in values], dtype="float64")
            data[name] = pd.to_datetime(seconds, unit="s", utc=True).astype(dtype)
        elif dtype == "float64":
            data[name] = pd.Series([float("nan") if v is None else v for v in values], dtype=dtype)
        else:
            data[name] = pd.Series(values, dtype=dtype)
    frame: pd.DataFrame = pd.DataFrame(data, columns=list(HISTORY_COLUMNS))
    return frame
