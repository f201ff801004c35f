"""A consumer's place in a recorder (``Recorder.subscribe``): its cursor, and how it is woken.

Standard library only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from nbcallbacks.events import Delta
    from nbcallbacks.recorder import Recorder

__all__ = ["Subscription"]


class Subscription:
    """A consumer's place in a recorder: its cursor and its wake-up callback.

    The callback runs at most once between two reads (it is re-armed by ``read``), on whatever thread recorded
    the change, outside the recorder's lock. Keep it tiny (set a ``threading.Event``); a callback that raises is
    counted as a handler error and never reaches the user's chain.
    """

    __slots__ = ("_recorder", "armed", "callback", "cursor", "error_cursor", "token_sent")

    def __init__(
        self,
        recorder: Recorder,
        callback: Callable[[], None] | None,
        cursor: int,
    ) -> None:
        """Create a subscription; use ``Recorder.subscribe``."""
        self._recorder = recorder
        self.callback = callback
        self.cursor = cursor
        self.error_cursor = 0
        self.token_sent: dict[int, int] = {}
        """Per run order index, how many kept chunks this consumer has read."""
        self.armed = True

    def read(self, *, rows: bool = True, head: dict[str, Any] | None = None) -> Delta:
        """Everything that changed since the last read, and re-arm the callback (see ``read_delta``)."""
        return self._recorder.read_delta(self, rows=rows, head=head)

    def close(self) -> None:
        """Stop being notified."""
        self._recorder.unsubscribe(self)
