"""What the widget's front end has been sent: a pure mirror that turns recorder deltas into messages.

Standard library only (no anywidget): ``nbcallbacks.widget`` owns the traits, the comm and the flusher thread;
this module decides what each message holds. Built only from deltas, so a snapshot taken from it is exactly the
state at ``seq``: deltas after it apply cleanly and no streamed text is ever sent twice. Run dictionaries are
``nbcallbacks.schema.run_record`` of the run and what ``nbcallbacks.tree.Tree`` derives for it (depth, orphan,
display status, key, costs): the front end renders them as given.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Final

from nbcallbacks.schema import SCHEMA_VERSION, run_record
from nbcallbacks.tree import Tree

if TYPE_CHECKING:
    from nbcallbacks.events import Delta, HandlerError
    from nbcallbacks.tree import Pricing

__all__ = ["LIGHT_FIELDS", "Mirror"]

LIGHT_FIELDS: Final = (
    "run_id",
    "status",
    "display_status",
    "streamed_chunks",
    "first_token",
    "ttft_s",
    "chunks_not_kept",
)
"""Fields of a run touched only by streamed tokens since the previous message (its "light" update)."""


def _error_wire(error: HandlerError) -> dict[str, Any]:
    return {"time": error.time, "where": error.where, "error": error.error, "traceback": error.traceback}


class Mirror:
    """The front end's state as sent, and the messages that bring it up to date.

    Args:
        pricing: prices model runs for ``cost_usd`` (see ``nbcallbacks.tree.Tree``).
        clock: the kernel's clock stamped on each message (seconds since the epoch).
    """

    def __init__(self, pricing: Pricing | None = None, clock: Any = time.time) -> None:
        """An empty mirror."""
        self.seq = 0
        """Delta messages produced so far."""
        self.cursor = 0
        """The recorder cursor the state reflects."""
        self.tree = Tree(pricing)
        self.runs: dict[str, dict[str, Any]] = {}
        self.streams: dict[str, list[list[Any]]] = {}
        """Per run id, ``[kind, [text, ...]]`` pieces (parts joined lazily)."""
        self.handler_errors: list[dict[str, Any]] = []
        self.handler_error_count = 0
        self.dropped_events = 0
        self.tokens = 0
        """Streamed chunks received."""
        self.usage_tokens = 0
        """Input + output tokens the models reported (``usage_metadata``)."""
        self.tokens_dropped = 0
        self.errors = 0
        self.running = 0
        self.cost = 0.0
        """Sum of the known model-run costs (USD)."""
        self.priced = 0
        """Runs with a known cost."""
        self._clock = clock

    def apply(self, delta: Delta, *, handler_error_count: int, dropped_events: int) -> dict[str, Any]:
        """Merge ``delta``; return the delta message carrying only what changed.

        ``handler_error_count`` and ``dropped_events`` are the recorder's totals (errors past the kept ones
        and events that left the bounded log count too).
        """
        base = self.seq
        token_only = delta.token_only_runs  # runs the delta read, touched by nothing but tokens
        sent_runs: list[dict[str, Any]] = []
        for run_id in self.tree.update(delta.runs):
            wire = run_record(self.tree.run(run_id), self.tree.derived(run_id))
            old = self.runs.get(run_id)
            self._count(old, -1)
            self._count(wire, 1)
            self.runs[run_id] = wire
            light = old is not None and run_id in token_only and _same_but_tokens(old, wire)
            if light:
                update = {key: wire[key] for key in LIGHT_FIELDS}
                update["light"] = True
                sent_runs.append(update)
            else:
                sent_runs.append(wire)
        for run_id, pieces in delta.tokens.items():
            stream = self.streams.setdefault(run_id, [])
            for kind, text in pieces:
                if stream and stream[-1][0] == kind:
                    stream[-1][1].append(text)
                else:
                    stream.append([kind, [text]])
        errors = [_error_wire(error) for error in delta.handler_errors]
        self.handler_errors.extend(errors)
        self.handler_error_count = max(handler_error_count, len(self.handler_errors))
        self.dropped_events = dropped_events
        self.seq = base + 1
        self.cursor = delta.cursor
        return {
            "type": "delta",
            "base": base,
            "seq": self.seq,
            "cursor": self.cursor,
            "time": self._clock(),
            "runs": sent_runs,
            "tokens": delta.tokens,
            "totals": self.totals(),
            "handler_errors": errors,
            "dropped_events": delta.dropped_events,
        }

    def _count(self, wire: dict[str, Any] | None, sign: int) -> None:
        if wire is None:
            return
        self.tokens += sign * int(wire["streamed_chunks"] or 0)
        self.usage_tokens += sign * int(wire["total_tokens"] or 0)
        self.tokens_dropped += sign * int(wire["chunks_not_kept"] or 0)
        if wire["cost_usd"] is not None:
            self.cost += sign * wire["cost_usd"]
            self.priced += sign
        if wire["status"] == "error":
            self.errors += sign
        if wire["display_status"] == "running":  # not abandoned ones: nothing will end those
            self.running += sign

    def totals(self) -> dict[str, Any]:
        """Counts over the whole trace (cheap: kept up to date incrementally)."""
        return {
            "runs": len(self.runs),
            "running": self.running,
            "errors": self.errors,
            "tokens": self.tokens,
            "usage_tokens": self.usage_tokens,
            "tokens_dropped": self.tokens_dropped,
            "cost_usd": self.cost if self.priced else None,
            "handler_errors": self.handler_error_count,
            "dropped_events": self.dropped_events,
        }

    def snapshot(self) -> dict[str, Any]:
        """The whole trace at ``seq`` (O(trace)); joins each stream's parts once."""
        streams: dict[str, list[list[str]]] = {}
        for run_id, pieces in self.streams.items():
            joined = []
            for piece in pieces:
                parts: list[str] = piece[1]
                if len(parts) > 1:
                    parts[:] = ["".join(parts)]
                joined.append([piece[0], parts[0]])
            streams[run_id] = joined
        return {
            "schema": SCHEMA_VERSION,
            "seq": self.seq,
            "cursor": self.cursor,
            "runs": sorted(self.runs.values(), key=lambda wire: wire["order"]),
            "streams": streams,
            "totals": self.totals(),
            "handler_errors": list(self.handler_errors),
        }


def _same_but_tokens(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether a run changed only in what streamed tokens change (so a light update is enough)."""
    return bool(old["status"] == new["status"] and old["display_status"] == new["display_status"])
