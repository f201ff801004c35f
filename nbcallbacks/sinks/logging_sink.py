"""``LoggingSink``: every event as one ``logging`` record."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final

from nbcallbacks.sinks.records import EVENT_FIELDS

if TYPE_CHECKING:
    from collections.abc import Collection


class _Blank(dict[str, Any]):
    """Format fields: missing ones and ``None`` read as empty text."""

    def __missing__(self, key: str) -> str:
        return ""


_DEFAULT_FORMAT: Final = "{elapsed_s:9.3f}s {event:<16} {run_type:<10} {name} {detail}"


class LoggingSink:
    """Every event as one ``logging`` record, formatted with ``str.format``.

    Format fields: the event record's (``seq``, ``time``, ``elapsed_s``, ``event``, ``run_id``, ``parent_run_id``,
    ``name``, ``run_type``, ``token``, ``token_kind``, ``data``, ``thread``, ``session``), plus ``run`` (the
    first 8 characters of the run id) and ``detail`` (the token, the error, the metric ``name=value``, or the
    custom event's name). ``None`` fields format as empty text. The whole record is also attached to the log
    record as ``record.nbcallbacks`` for structured handlers.

    Args:
        logger: a ``logging.Logger``, a logger name, or ``None`` for ``"nbcallbacks.events"``.
        level: the level of every log record.
        fmt: the ``str.format`` template of a message.
        events: only these event names (e.g. ``{"chain_start", "chain_end", "tool_end"}``); ``None`` for all.

    Raises:
        ValueError: ``fmt`` names an unknown field or is malformed.
    """

    shares_records = True
    """Only reads the records it is given (see ``nbcallbacks.sinks.Sink``): no copies are made for it."""

    def __init__(
        self,
        logger: logging.Logger | str | None = None,
        level: int = logging.INFO,
        fmt: str = _DEFAULT_FORMAT,
        *,
        events: Collection[str] | None = None,
    ) -> None:
        """Check ``fmt`` against a sample event now, so a typo fails here and not in the background."""
        if isinstance(logger, logging.Logger):
            self.logger = logger
        else:
            self.logger = logging.getLogger(logger or "nbcallbacks.events")
        self.level = level
        self.fmt = fmt
        self.events = None if events is None else frozenset(events)
        sample = {"kind": "event", "session": "0" * 32, **dict.fromkeys(EVENT_FIELDS)}
        sample.update(seq=0, time=0.0, elapsed_s=0.0, event="chain_start", run_id="0" * 36, name="x")
        try:
            fmt.format_map(self._fields(sample))
        except (KeyError, IndexError, ValueError, AttributeError, TypeError) as exc:
            msg = f"LoggingSink format {fmt!r} is not valid for event records: {type(exc).__name__}: {exc}"
            raise ValueError(msg) from exc
        for name in _field_names(fmt):
            if name not in {*EVENT_FIELDS, "session", "kind", "run", "detail"}:
                msg = f"LoggingSink format {fmt!r} names unknown field {name!r}"
                raise ValueError(msg)

    def describe(self) -> str:
        """Name shown in ``sink_status()`` and handler errors."""
        return f"LoggingSink({self.logger.name})"

    @staticmethod
    def _fields(record: dict[str, Any]) -> _Blank:
        fields = _Blank({k: ("" if v is None else v) for k, v in record.items()})
        run_id = record.get("run_id") or ""
        fields["run"] = run_id[:8]
        fields["detail"] = _detail(record)
        return fields

    def write(self, batch: list[dict[str, Any]]) -> None:
        """Log every event record of the batch."""
        if not self.logger.isEnabledFor(self.level):
            return
        for record in batch:
            if record.get("kind") != "event" or (self.events is not None and record["event"] not in self.events):
                continue
            message = self.fmt.format_map(self._fields(record))
            self.logger.log(self.level, "%s", message, extra={"nbcallbacks": record})


def _field_names(fmt: str) -> set[str]:
    import string  # noqa: PLC0415 - only to check a format once

    names = set()
    for _, field, _, _ in string.Formatter().parse(fmt):
        if field:
            names.add(field.split(".", 1)[0].split("[", 1)[0])
    return names


def _detail(record: dict[str, Any]) -> str:
    event = record.get("event") or ""
    data = record.get("data")
    if record.get("token") is not None:
        return repr(record["token"])
    if event == "metric" and isinstance(data, dict):
        return f"{data.get('name')}={data.get('value')}"
    if event.endswith("_error") and isinstance(data, dict):
        return f"{data.get('error_type')}: {data.get('error')}"
    if event == "custom_event" and isinstance(data, dict):
        return str(data.get("name"))
    return ""
