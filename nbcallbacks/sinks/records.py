"""What sinks receive: the ``Sink`` protocol, the session, event and run records, and their JSON encoding."""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import uuid
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable

from nbcallbacks import schema
from nbcallbacks.notebook import notebook_name
from nbcallbacks.version import __version__

if TYPE_CHECKING:
    from nbcallbacks.events import EventRow, RunRecord
    from nbcallbacks.tree import Derived, Tree

EVENT_FIELDS: Final[tuple[str, ...]] = tuple(schema.EVENT_COLUMNS)
"""Fields of an event record besides ``kind`` and ``session``: the columns of ``to_dataframe()``."""

RUN_FIELDS: Final[tuple[str, ...]] = tuple(schema.RUN_COLUMNS)
"""Fields of a run record besides ``kind`` and ``session``: the columns of ``runs_dataframe()`` (times as
seconds since the epoch), a complete copy of the run."""

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
    batches are dropped for it (``SinkWriter.max_backlog``, 200,000 by default). A sink whose ``shares_records``
    attribute is true promises never to change the record dictionaries it is given (it only reads them), and
    gets the ones every such sink shares instead of its own copies (the built-in sinks do).

    ``write`` receives records in order (see ``nbcallbacks.sinks``); it may block or raise: that only
    affects this sink, and is counted in ``NotebookHandler.sink_status()``. Each sink gets its own record
    dictionaries, but the values inside them (payload previews) are shared: read them, do not modify them.
    """

    def write(self, batch: list[dict[str, Any]]) -> None:
        """Take a batch of records (``"session"``, ``"event"`` and ``"run"`` dictionaries) in order."""


# --- records


def event_record(row: EventRow, origin: float, session: str) -> dict[str, Any]:
    """The record of one event; ``elapsed_s`` counts from ``origin`` (the recorder's ``first_time``)."""
    return schema.event_record(row, origin, kind="event", session=session)


def run_record(run: RunRecord, derived: Derived, session: str) -> dict[str, Any]:
    """The record of one run, with what the tree derives for it (``nbcallbacks.tree.Tree.derived``)."""
    return {"kind": "run", "session": session, **schema.run_record(run, derived)}


def tree_run_record(tree: Tree, run_id: str, session: str) -> dict[str, Any]:
    """The record of a run as ``tree`` holds it now: its latest copy and what the tree derives for it."""
    return run_record(tree.run(run_id), tree.derived(run_id), session)


def session_now(session: dict[str, Any], first_time: float | None) -> dict[str, Any]:
    """A copy of a session record with the recorder's ``first_time`` as it is now (sent ahead of the records)."""
    current = dict(session)
    current["first_time"] = first_time
    return current


def json_default(obj: Any) -> Any:
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
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=json_default)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: \u-escape them (ensure_ascii), lossless and valid UTF-8
        return json.dumps(obj, ensure_ascii=True, separators=(",", ":"), default=json_default)
    return text


def session_record(title: str | None, limits: dict[str, Any]) -> dict[str, Any]:
    """A new session record: who writes (host, process, notebook, versions), with which limits and schema."""
    try:
        hostname = socket.gethostname()
    except OSError:
        hostname = None
    return {
        "kind": "session",
        "session": uuid.uuid4().hex,
        "started": time.time(),
        "first_time": None,
        "hostname": hostname,
        "pid": os.getpid(),
        "notebook": notebook_name(),
        "program": sys.argv[0] if sys.argv and sys.argv[0] else None,
        "python": sys.version.split()[0],
        "nbcallbacks": __version__,
        "title": title,
        "limits": limits,
        "schema": schema.SCHEMA_VERSION,
    }
