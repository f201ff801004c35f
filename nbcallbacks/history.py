"""Read back what ``JSONLSink`` and ``SQLiteSink`` wrote: list the sessions and runs, or rebuild a trace.

``history(path)`` is a DataFrame of every session's root runs; ``NotebookHandler.load(path)`` (built on
``load_trace``) rebuilds a handler whose runs, events, text, timings, DataFrames, charts and widget are those of
the saved session, in any process. The file kind is recognised from its first bytes.
"""

from __future__ import annotations

import warnings
from contextlib import closing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbcallbacks import schema
from nbcallbacks.events import EVENT_CODE, MODEL_RUN_TYPES, EventRow, Limits, RunRecord
from nbcallbacks.sinks import jsonl, sqlite
from nbcallbacks.tree import Tree

if TYPE_CHECKING:
    import os

    import pandas as pd

__all__ = ["HISTORY_COLUMNS", "SavedTrace", "history", "load_trace", "sessions"]

_SQLITE_MAGIC = b"SQLite format 3\x00"

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


# --- reading either kind of file (each format's reader lives beside its writer in nbcallbacks.sinks)


def _is_sqlite(path: Path) -> bool:
    with path.open("rb") as file:
        return file.read(len(_SQLITE_MAGIC)) == _SQLITE_MAGIC


def _checked(path: str | os.PathLike[str]) -> Path:
    resolved = Path(path)
    if not resolved.is_file():
        msg = f"no run history at {str(resolved)!r}"
        raise FileNotFoundError(msg)
    return resolved


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
        with closing(sqlite.connect_readonly(path)) as conn:
            return _merge_sessions(sqlite.read_sessions(conn))
    return _merge_sessions(jsonl.read_sessions(path))


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
        with closing(sqlite.connect_readonly(path)) as conn:
            return sqlite.read_runs(conn, session), sqlite.read_events(conn, session)
    return jsonl.read_session(path, session)


def _readable(
    runs: list[dict[str, Any]], events: list[dict[str, Any]], session: dict[str, Any], path: Path
) -> tuple[list[RunRecord], list[EventRow]]:
    """Runs and events this version can read; what a newer version wrote and this one cannot is skipped, said."""
    unknown: set[str] = set()
    for record in runs:
        unknown |= schema.unknown_fields(record, schema.RUN_FIELDS)
    unknown_events = {e["event"] for e in events if e.get("event") not in EVENT_CODE}
    if unknown or unknown_events:
        parts = []
        if unknown:
            parts.append(f"run fields {sorted(unknown)}")
        if unknown_events:
            skipped = sum(1 for e in events if e.get("event") in unknown_events)
            parts.append(f"{skipped} events of kinds {sorted(unknown_events)}")
        written = session.get("schema")
        warnings.warn(
            f"{str(path)!r} was written by schema {written} (this version reads schema {schema.SCHEMA_VERSION}): "
            f"skipped {' and '.join(parts)}",
            UserWarning,
            stacklevel=3,
        )
    return (
        [schema.run_from_record(r) for r in runs],
        [schema.event_from_record(e) for e in events if e.get("event") in EVENT_CODE],
    )


def _subtree(runs: list[RunRecord], run: str) -> set[str]:
    ids = {r.run_id for r in runs}
    matches = [run] if run in ids else [i for i in ids if i.startswith(run)]
    if len(matches) != 1:
        msg = f"run {run!r} {'is ambiguous' if matches else 'not found'} in this session"
        raise ValueError(msg)
    return set(Tree.of(runs).subtree(matches[0]))


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
    runs, events = _readable(*_records(resolved, chosen["session"]), chosen, resolved)
    if run is not None:
        keep = _subtree(runs, run)
        runs = [r for r in runs if r.run_id in keep]
        events = [e for e in events if e.run_id in keep]
    first_time = chosen.get("first_time")
    if first_time is None and events:
        first_time = events[0].time
    return SavedTrace(
        session=chosen,
        runs=runs,
        events=events,
        first_time=first_time,
        limits=_limits(chosen.get("limits")),
        title=chosen.get("title"),
    )


_SUMMARY_FIELDS = (
    "run_id",
    "parent_run_id",
    "order",
    "name",
    "run_type",
    "status",
    "start",
    "end",
    "total_tokens",
    "error",
)


def _summaries(path: Path) -> list[dict[str, Any]]:
    """The latest state of every run of every session."""
    if _is_sqlite(path):
        with closing(sqlite.connect_readonly(path)) as conn:
            return sqlite.read_runs(conn, None, _SUMMARY_FIELDS)
    return jsonl.read_latest_runs(path)


def _tree_tokens(tree: Tree, root: str) -> int | None:
    """The total tokens reported by the model runs in the tree of ``root`` (``None`` when none did)."""
    counts = [
        run.total_tokens
        for run in map(tree.run, tree.subtree(root))
        if run.run_type in MODEL_RUN_TYPES and run.total_tokens is not None
    ]
    return sum(counts) if counts else None


def history(path: str | os.PathLike[str]) -> pd.DataFrame:
    """One row per root run of every session in a JSONL or SQLite history, oldest first.

    Columns (``HISTORY_COLUMNS``): ``session``, ``started``, ``notebook``, ``hostname``, ``pid``, and per root
    run ``run_id``, ``name``, ``status``, ``start``, ``duration_s``, ``tokens`` (total tokens of the model runs
    in its tree) and ``error``. A session without runs has one row with empty run columns.
    """
    from nbcallbacks.export import frame  # noqa: PLC0415 - pandas only when asked for

    resolved = _checked(path)
    found = sessions(resolved)
    runs = _summaries(resolved)
    by_session: dict[str, list[RunRecord]] = {}
    for r in runs:
        by_session.setdefault(r["session"], []).append(schema.run_from_record(r))
    rows: list[dict[str, Any]] = []
    for s in found:
        tree = Tree.of(by_session.get(s["session"], []))
        roots = sorted((tree.run(i) for i in tree.roots()), key=lambda r: (r.start, r.order))
        base = {k: s.get(k) for k in ("session", "started", "notebook", "hostname", "pid")}
        if not roots:
            rows.append(base)
        rows.extend(
            {
                **base,
                "run_id": r.run_id,
                "name": r.name,
                "status": r.status,
                "start": r.start,
                "duration_s": r.duration,
                "tokens": _tree_tokens(tree, r.run_id),
                "error": r.error,
            }
            for r in roots
        )
    return frame(HISTORY_COLUMNS, {name: [row.get(name) for row in rows] for name in HISTORY_COLUMNS})
