"""SQLite histories: ``SQLiteSink`` writes one file, the readers below read it back.

The tables are ``sessions``, ``runs`` and ``events``. The columns come from the field table
(``nbcallbacks.schema``); the file's ``user_version`` is the schema version that (last) wrote it. A file an older
version wrote gains the new columns (empty) when a newer version writes to it; a file a newer version wrote is read
for what this version knows.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from nbcallbacks import schema
from nbcallbacks.sinks.paths import check_parent
from nbcallbacks.sinks.records import EVENT_FIELDS, RUN_FIELDS, SESSION_FIELDS, dumps

if TYPE_CHECKING:
    import os
    from collections.abc import Callable, Iterable

_JSON_RUN_COLUMNS: Final = frozenset(f.name for f in schema.RUN_FIELDS if f.is_json)
_BOOL_RUN_COLUMNS: Final = frozenset(f.name for f in schema.RUN_FIELDS if f.dtype == schema.BOOL)
_SQL_RETRIES: Final = 8


def _quote(name: str) -> str:
    return f'"{name}"'


def _sql_text(value: str | None) -> str | bytes | None:
    """Text for SQLite; a string with lone surrogates (invalid UTF-8) is kept exactly, as a BLOB."""
    if value is None or value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogatepass")
    return value


def _sql_json(value: Any) -> str | None:
    return None if value is None else dumps(value)


_CREATE_SQL: Final = f"""
CREATE TABLE IF NOT EXISTS sessions (
    session TEXT PRIMARY KEY, started REAL, first_time REAL, hostname TEXT, pid INTEGER, notebook TEXT,
    program TEXT, python TEXT, nbcallbacks TEXT, title TEXT, limits TEXT, schema INTEGER
);
CREATE TABLE IF NOT EXISTS runs (
    session TEXT NOT NULL, {schema.sql_columns(schema.RUN_FIELDS)},
    PRIMARY KEY (session, run_id)
);
CREATE TABLE IF NOT EXISTS events (
    session TEXT NOT NULL, {schema.sql_columns(schema.EVENT_FIELDS)},
    PRIMARY KEY (session, seq)
);
CREATE INDEX IF NOT EXISTS runs_by_start ON runs (session, start);
"""

# The column names below are this module's constants; values always go through ? parameters.
_INSERT_SESSION: Final = (
    f"INSERT OR REPLACE INTO sessions ({', '.join(SESSION_FIELDS)}) "  # noqa: S608 - constant column names
    f"VALUES ({', '.join('?' * len(SESSION_FIELDS))})"
)
_INSERT_RUN: Final = (
    f"INSERT OR REPLACE INTO runs (session, {', '.join(_quote(f) for f in RUN_FIELDS)}) "  # noqa: S608 - as above
    f"VALUES (?, {', '.join('?' * len(RUN_FIELDS))})"
)
_INSERT_EVENT: Final = (
    f"INSERT OR IGNORE INTO events (session, {', '.join(EVENT_FIELDS)}) "  # noqa: S608 - as above
    f"VALUES (?, {', '.join('?' * len(EVENT_FIELDS))})"
)


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


class SQLiteSink:
    """A run history in one SQLite file: tables ``sessions``, ``runs`` and ``events``.

    ``runs`` and ``events`` have the columns of ``runs_dataframe()`` and ``to_dataframe()`` plus ``session``
    (times as seconds since the epoch, lists and dictionaries as JSON text); runs are upserted by
    ``(session, run_id)`` as they change. Every handler is one session, so notebooks, kernel restarts and
    processes append to one file. The file is in WAL mode; each batch is one transaction, retried while another
    writer holds the lock, so concurrent writers lose nothing and a killed process leaves every committed batch.
    ``nbcallbacks.history(path)`` lists what it holds, ``NotebookHandler.load(path)`` replays it.

    Args:
        path: the database file; created if missing. Its directory must exist.
        timeout: seconds to wait for another writer's lock before retrying.

    Raises:
        ValueError: the file cannot be created, opened for writing, or is not a SQLite database.
    """

    shares_records = True
    """Only reads the records it is given (see ``nbcallbacks.sinks.Sink``): no copies are made for it."""

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 30.0) -> None:
        """Open (or create) the database now, so a bad path fails here and not in the background."""
        self.path = Path(path)
        check_parent(self.path, "SQLiteSink")
        self._lock = threading.Lock()
        try:
            conn = _connect(self.path, timeout)
            self._conn: sqlite3.Connection | None = conn
            _retry(lambda: _transaction(conn, ()))  # proves the file is writable
        except sqlite3.Error as exc:
            msg = f"SQLiteSink cannot write to {str(self.path)!r}: {exc}"
            raise ValueError(msg) from exc

    def describe(self) -> str:
        """Name shown in ``sink_status()`` and handler errors."""
        return f"SQLiteSink({self.path.name})"

    def __repr__(self) -> str:
        """``SQLiteSink('path')``."""
        return f"SQLiteSink({str(self.path)!r})"

    def write(self, batch: list[dict[str, Any]]) -> None:
        """Insert the batch's events, upsert its sessions and runs: one transaction."""
        sessions: list[tuple[Any, ...]] = []
        runs: list[tuple[Any, ...]] = []
        events: list[tuple[Any, ...]] = []
        for record in batch:
            kind = record.get("kind")
            if kind == "event":
                events.append(_event_row(record))
            elif kind == "run":
                runs.append(_run_row(record))
            elif kind == "session":
                sessions.append(_session_row(record))
        with self._lock:
            conn = self._conn
            if conn is None:
                msg = f"SQLiteSink({str(self.path)!r}) is closed"
                raise ValueError(msg)
            steps = ((_INSERT_SESSION, sessions), (_INSERT_EVENT, events), (_INSERT_RUN, runs))
            _retry(lambda: _transaction(conn, steps))

    def close(self) -> None:
        """Close the connection (committed batches are already in the file)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _connect(path: Path, timeout: float) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        _retry(lambda: _prepare(conn))
    except BaseException:
        conn.close()
        raise
    return conn


def _prepare(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.executescript(_CREATE_SQL)
    for table, fields in (("runs", schema.RUN_FIELDS), ("events", schema.EVENT_FIELDS)):
        have = set(_columns(conn, table))
        for f in fields:  # a file an older version wrote: add the columns it lacks (empty for its rows)
            if f.name not in have:
                conn.execute(f'ALTER TABLE {table} ADD COLUMN "{f.name}" {f.sql}')
    if file_schema(conn) < schema.SCHEMA_VERSION:
        conn.execute(f"PRAGMA user_version = {schema.SCHEMA_VERSION}")


def _retry(action: Callable[[], None]) -> None:
    """Run ``action``; again, after a pause, while another writer still holds the lock past ``busy_timeout``."""
    for attempt in range(_SQL_RETRIES):
        try:
            action()
        except sqlite3.OperationalError as exc:  # noqa: PERF203 - retried only on lock contention
            if not _is_busy(exc) or attempt == _SQL_RETRIES - 1:
                raise
            time.sleep(0.05 * 2**attempt)
        else:
            return


def _transaction(conn: sqlite3.Connection, steps: Iterable[tuple[str, list[tuple[Any, ...]]]]) -> None:
    """One write transaction of ``executemany`` steps, rolled back on any failure."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        for sql, rows in steps:
            if rows:
                conn.executemany(sql, rows)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _session_row(record: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(
        _sql_json(record.get(f)) if f == "limits" else _sql_text(v) if isinstance(v := record.get(f), str) else v
        for f in SESSION_FIELDS
    )


def _run_row(record: dict[str, Any]) -> tuple[Any, ...]:
    values: list[Any] = [record["session"]]
    for f in RUN_FIELDS:
        value = record.get(f)
        if f in _JSON_RUN_COLUMNS:
            values.append(_sql_json(value))
        elif f in _BOOL_RUN_COLUMNS:
            values.append(int(bool(value)))
        elif isinstance(value, str):
            values.append(_sql_text(value))
        else:
            values.append(value)
    return tuple(values)


def _event_row(record: dict[str, Any]) -> tuple[Any, ...]:
    data = record["data"]
    return (
        record["session"],
        record["seq"],
        record["time"],
        record["elapsed_s"],
        record["event"],
        record["run_id"],
        record["parent_run_id"],
        _sql_text(record["name"]),
        record["run_type"],
        _sql_text(record["token"]),
        record["token_kind"],
        None if data is None else dumps(data),
        _sql_text(record["thread"]),
    )


# --- reading


def connect_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection to a history file, rows as ``sqlite3.Row``."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30.0)
    conn.row_factory = sqlite3.Row
    return conn


def _text(value: Any) -> Any:
    """A text column: BLOB when the writer met lone surrogates (see ``_sql_text``)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogatepass")
    return value


def _json(value: Any) -> Any:
    return None if value is None else json.loads(_text(value))


def file_schema(conn: sqlite3.Connection) -> int:
    """The schema version that (last) wrote the file (``PRAGMA user_version``)."""
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    return int(version)


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def read_sessions(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every session record in the file."""
    rows = conn.execute(f"SELECT {', '.join(SESSION_FIELDS)} FROM sessions")  # noqa: S608 - constant names
    out = []
    for row in rows:
        record = {f: _text(row[f]) for f in SESSION_FIELDS}
        record["limits"] = _json(row["limits"])
        out.append(record)
    return out


def _run_value(name: str, value: Any) -> Any:
    if name in _JSON_RUN_COLUMNS:
        return _json(value)
    if name in _BOOL_RUN_COLUMNS:
        return bool(value)
    return _text(value)


def read_runs(
    conn: sqlite3.Connection, session: str | None, fields: Iterable[str] | None = None
) -> list[dict[str, Any]]:
    """Run records (their latest state) of one session, or of all sessions; every column the file has.

    Columns this version does not know (a newer writer's) are kept in the records: the caller decides what to
    do with them (``nbcallbacks.schema.unknown_fields``).
    """
    present = _columns(conn, "runs")
    wanted = [c for c in present if fields is None or c in set(fields) | {"session"}]
    columns = ", ".join(f'"{c}"' for c in wanted)
    where, args = ("WHERE session = ?", (session,)) if session is not None else ("", ())
    rows = conn.execute(f"SELECT {columns} FROM runs {where}", args)  # noqa: S608 - the file's own names
    return [{c: _run_value(c, row[c]) for c in wanted} for row in rows]


def read_events(conn: sqlite3.Connection, session: str) -> list[dict[str, Any]]:
    """Event records of one session, in ``seq`` order."""
    present = set(_columns(conn, "events"))
    wanted = [f for f in EVENT_FIELDS if f in present]
    sql = f"SELECT {', '.join(wanted)} FROM events WHERE session = ? ORDER BY seq"  # noqa: S608 - constant names
    out = []
    for row in conn.execute(sql, (session,)):
        record = {f: _text(row[f]) for f in wanted}
        if "data" in record:
            record["data"] = _json(row["data"])
        out.append(record)
    return out
