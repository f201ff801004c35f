"""A headless widget that keeps what it would send to the front end, as the Jupyter wire would carry it.

Imported by name (``from widget_capture import CapturingWidget``), like ``helpers``; apart from it because importing
the widget needs the built front end, which most tests do not.
"""

from __future__ import annotations

import json
from typing import Any

from helpers import wire_bytes

from nbcallbacks.widget import TraceWidget


class CapturingWidget(TraceWidget):
    """A headless TraceWidget that keeps every custom message it would send to the front end.

    Each message is encoded as the wire would carry it (a message that cannot be encoded fails its send, as it would
    in a kernel) and kept twice: the bytes in ``raw`` and the decoded message in ``sent``. ``snapshot_changes``
    counts rewrites of the ``snapshot`` trait after construction.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Create the widget; the arguments are ``TraceWidget``'s."""
        self.raw: list[bytes] = []
        self.sent: list[dict[str, Any]] = []
        self.snapshot_changes = 0
        super().__init__(*args, **kwargs)
        self.observe(self._count_snapshot, names="snapshot")

    def _count_snapshot(self, _change: Any) -> None:
        self.snapshot_changes += 1

    def send(self, content: dict[str, Any], buffers: Any = None) -> None:
        """Keep the message instead of sending it."""
        encoded = wire_bytes(content)
        self.raw.append(encoded)
        self.sent.append(json.loads(encoded))

    def deltas(self) -> list[dict[str, Any]]:
        """The delta messages kept so far, in order."""
        return [m for m in self.sent if m["type"] == "delta"]
