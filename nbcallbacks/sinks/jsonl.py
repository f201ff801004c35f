"""``JSONLSink``: records appended to a file, one JSON object per line."""

from __future__ import annotations

import errno
import json
import math
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from nbcallbacks.sinks.paths import check_parent
from nbcallbacks.sinks.records import EVENT_FIELDS, dumps, json_default

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

_EVENT_RECORD_KEYS: Final = frozenset({"kind", "session", *EVENT_FIELDS})


_encode_text: Callable[[str], str] = json.encoder.encode_basestring
"""A JSON string literal, non-ASCII kept (the C encoder ``json.dumps`` uses)."""


def _text_or_null(value: str | None) -> str:
    return "null" if value is None else _encode_text(value)


def _compact(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=json_default)


def _line(record: dict[str, Any]) -> str:
    """``dumps(record)``, faster for event records (the bulk of a stream); may hold lone surrogates."""
    if record.get("kind") != "event" or record.keys() != _EVENT_RECORD_KEYS:
        return _compact(record)
    data = record["data"]
    time_value, elapsed = record["time"], record["elapsed_s"]
    if not (type(time_value) is float and type(elapsed) is float and math.isfinite(time_value + elapsed)):
        return _compact(record)
    return (
        f'{{"kind":"event","session":{_encode_text(record["session"])},"seq":{int(record["seq"])},'
        f'"time":{time_value!r},"elapsed_s":{elapsed!r},"event":{_encode_text(record["event"])},'
        f'"run_id":{_text_or_null(record["run_id"])},"parent_run_id":{_text_or_null(record["parent_run_id"])},'
        f'"name":{_text_or_null(record["name"])},"run_type":{_text_or_null(record["run_type"])},'
        f'"token":{_text_or_null(record["token"])},"token_kind":{_text_or_null(record["token_kind"])},'
        f'"data":{"null" if data is None else _compact(data)},'
        f'"thread":{_encode_text(record["thread"])}}}'
    )


class JSONLSink:
    """Appends one JSON object per line: session, event and run records (see ``nbcallbacks.sinks``).

    Several handlers and processes may append to one file: each batch goes out in one ``write`` call on a file
    opened in append mode, under an advisory lock where the platform has one. A run appears once per change;
    its last line is its final state. ``nbcallbacks.NotebookHandler.load(path)`` replays the file.

    Args:
        path: the file; created if missing, appended to otherwise. Its directory must exist.
        fsync: also ``fsync`` the file on every ``flush()`` (durable against power loss, slower).

    Raises:
        ValueError: the file cannot be opened for appending (with the path and the reason).
    """

    shares_records = True
    """Only reads the records it is given (see ``nbcallbacks.sinks.Sink``): no copies are made for it."""

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = False) -> None:
        """Open ``path`` for appending now, so a bad path fails here and not in the background."""
        self.path = Path(path)
        self.fsync = fsync
        check_parent(self.path, "JSONLSink")
        try:
            self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            msg = f"JSONLSink cannot open {str(self.path)!r} for appending: {exc.strerror or exc}"
            raise ValueError(msg) from exc
        self._lock = threading.Lock()
        self._torn = False

    def describe(self) -> str:
        """Name shown in ``sink_status()`` and handler errors."""
        return f"JSONLSink({self.path.name})"

    def __repr__(self) -> str:
        """``JSONLSink('path')``."""
        return f"JSONLSink({str(self.path)!r})"

    def write(self, batch: list[dict[str, Any]]) -> None:
        """Append the batch as lines, in one system call."""
        try:  # the quick encoder; any string it cannot put in UTF-8 (a lone surrogate) takes the safe path
            data = ("\n".join(_line(record) for record in batch) + "\n").encode("utf-8")
        except UnicodeEncodeError:
            data = ("\n".join(dumps(record) for record in batch) + "\n").encode("utf-8")
        with self._lock:
            if self._torn:  # an earlier write stopped midway (disk full): start on a fresh line
                data = b"\n" + data
            try:
                self._write_bytes(data)
            except OSError:
                self._torn = True
                raise
            self._torn = False

    def _write_bytes(self, data: bytes) -> None:
        fd = self._fd
        if fd is None:
            msg = f"JSONLSink({str(self.path)!r}) is closed"
            raise ValueError(msg)
        try:
            import fcntl  # noqa: PLC0415 - POSIX only

            lock: Callable[[int, int], None] | None = fcntl.flock
            unlock = fcntl.LOCK_UN
            exclusive = fcntl.LOCK_EX
        except ImportError:  # Windows: appends of one write call are still atomic enough for one process
            lock = None
            unlock = exclusive = 0
        if lock is not None:
            lock(fd, exclusive)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                if written <= 0:
                    raise OSError(errno.EIO, "short write", str(self.path))
                view = view[written:]
        finally:
            if lock is not None:
                lock(fd, unlock)

    def flush(self) -> None:
        """Lines are handed to the operating system on every write; ``fsync`` them when asked to."""
        with self._lock:
            if self.fsync and self._fd is not None:
                os.fsync(self._fd)

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


# --- reading


def read_records(path: Path, keep: Callable[[bytes], bool]) -> Iterator[dict[str, Any]]:
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


def read_sessions(path: Path) -> list[dict[str, Any]]:
    """Every session record in the file (a session may have several: later ones fill in what was empty)."""
    found = read_records(path, lambda line: b'"kind":"session"' in line)
    return [record for record in found if record.get("kind") == "session"]


def read_session(path: Path, session: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The run records (latest state of each) and event records (by ``seq``) of one session."""
    marker = f'"session":"{session}"'.encode()
    runs: dict[str, dict[str, Any]] = {}
    events: dict[int, dict[str, Any]] = {}
    for record in read_records(path, lambda line: marker in line):
        if record.get("session") != session:
            continue
        kind = record.get("kind")
        if kind == "run":
            runs[record["run_id"]] = record
        elif kind == "event":
            events[record["seq"]] = record
    return list(runs.values()), [events[seq] for seq in sorted(events)]


def read_latest_runs(path: Path) -> list[dict[str, Any]]:
    """The latest record of every run of every session."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for record in read_records(path, lambda line: b'"kind":"run"' in line):
        if record.get("kind") == "run":
            latest[record["session"], record["run_id"]] = record
    return list(latest.values())
