"""What sinks receive: the ``Sink`` protocol, the session, event and run records, and their JSON encoding."""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import uuid
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable

from nbcallbacks.events import EVENT_COLUMNS, RUN_COLUMNS, SCHEMA_VERSION

if TYPE_CHECKING:
    from nbcallbacks.events import EventRow, RunRecord

EVENT_FIELDS: Final[tuple[str, ...]] = tuple(EVENT_COLUMNS)
"""Fields of an event record besides ``kind`` and ``session``: the columns of ``to_dataframe()``."""

RUN_FIELDS: Final[tuple[str, ...]] = (*RUN_COLUMNS, "first_token")
"""Fields of a run record besides ``kind`` and ``session``: the columns of ``runs_dataframe()`` (times as
seconds since the epoch) and ``first_token``, which makes the record a complete copy of the run."""

SESSION_FIELDS: Final[tuple[str, ...]] = (
    "session",
    "started",
    "first_time",
    "hostname",
    "pid",
    "notebook",
    "program",
    "python",
    "nbcallbacks",
    "title",
    "limits",
    "schema",
)
"""Fields of a session record besides ``kind``."""


@runtime_checkable
class Sink(Protocol):
    """Where records go. Only ``write`` is required.

    Optional methods, called on the sink's own worker thread when present:

    - ``open(session: dict) -> None``: once, before the first ``write``, with the session record.
    - ``flush() -> None``: after the records written so far, when ``NotebookHandler.flush()`` is called.
    - ``close() -> None``: once, when the handler's writer shuts down (at interpreter exit at the latest).

    - ``describe() -> str``: the name shown in ``sink_status()`` and in handler errors (default: the class name).

    An optional ``max_backlog`` attribute (events) overrides how much may wait for this sink before later
    batches are dropped for it (``SinkWriter.max_backlog``, 200,000 by default).

    ``write`` receives records in order (see ``nbcallbacks.sinks``); it may block or raise: that only
    affects this sink, and is counted in ``NotebookHandler.sink_status()``. Each sink gets its own record
    dictionaries, but the values inside them (payload previews) are shared: read them, do not modify them.
    """

    def write(self, batch: list[dict[str, Any]]) -> None:
        """Take a batch of records (``"session"``, ``"event"`` and ``"run"`` dictionaries) in order."""


# --- records


def event_record(row: EventRow, origin: float, session: str) -> dict[str, Any]:
    """The record of one event; ``elapsed_s`` counts from ``origin`` (the recorder's ``first_time``)."""
    return {
        "kind": "event",
        "session": session,
        "seq": row.seq,
        "time": row.time,
        "elapsed_s": row.time - origin,
        "event": row.event,
        "run_id": row.run_id or None,
        "parent_run_id": row.parent_run_id,
        "name": row.name or None,
        "run_type": row.run_type or None,
        "token": row.token,
        "token_kind": row.token_kind,
        "data": row.data,
        "thread": row.thread,
    }


def run_record(run: RunRecord, first_start: float, session: str) -> dict[str, Any]:
    """The record of one run; ``start_offset_s`` counts from ``first_start`` (the first run's start)."""
    return {"kind": "run", "session": session, **run.to_row(first_start), "first_token": run.first_token}


def _json_fallback(obj: Any) -> Any:
    """Anything ``json`` cannot encode (previews never hold such values, custom data might) as text."""
    try:
        return f"<{type(obj).__name__}: {str(obj)[:200]}>"
    except Exception:  # noqa: BLE001 - an object whose str() raises is still written
        return f"<{type(obj).__name__}>"


def dumps(obj: Any) -> str:
    """Compact JSON, non-ASCII kept as is; a string with lone surrogates is escaped (as JSON escapes) instead.

    ``json.loads`` gives back exactly the same values (floats included; NaN and infinities are written as
    ``NaN``/``Infinity``, as Python's ``json`` reads them).
    """
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=_json_fallback)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: \u-escape them (ensure_ascii), lossless and valid UTF-8
        return json.dumps(obj, ensure_ascii=True, separators=(",", ":"), default=_json_fallback)
    return text


def _session_info(title: str | None, limits: dict[str, Any]) -> dict[str, Any]:
    from nbcallbacks import __version__  # noqa: PLC0415 - the package imports this module

    notebook = os.environ.get("JPY_SESSION_NAME")
    if not notebook:
        ipython = sys.modules.get("IPython")
        shell = ipython.get_ipython() if ipython is not None else None
        user_ns = getattr(shell, "user_ns", None)
        if isinstance(user_ns, dict):
            vscode = user_ns.get("__vsc_ipynb_file__")
            notebook = vscode if isinstance(vscode, str) else None
    try:
        hostname = socket.gethostname()
    except OSError:
        hostname = None
    now = time.time()
    return {
        "kind": "session",
        "session": uuid.uuid4().hex,
        "started": now,
        "first_time": None,
        "hostname": hostname,
        "pid": os.getpid(),
        "notebook": notebook or None,
        "program": sys.argv[0] if sys.argv and sys.argv[0] else None,
        "python": sys.version.split()[0],
        "nbcallbacks": __version__,
        "title": title,
        "limits": limits,
        "schema": SCHEMA_VERSION,
    }
