"""The consumer's side of a channel: ``UpdatesIterator`` (blocking) and ``Updates`` (async) iterators."""

from __future__ import annotations

import asyncio
import weakref
from typing import TYPE_CHECKING, final

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import TracebackType

    from nbcallbacks.updates.channel import Channel, Record

__all__ = ["Updates", "UpdatesIterator"]


class _Stream:
    """What both iterators share: the channel, the records taken and not yet yielded, closing."""

    def __init__(self, channel: Channel) -> None:
        self._channel = channel
        self._batch: list[Record] = []
        """The records taken and not all read yet (this stream's own list: ``close`` empties it)."""
        self._rest: Iterator[Record] = iter(())
        """What ``_batch`` has left, each record copied as it is read: the hub shares a batch's records among
        its consumers, and each gets its own. Shared by ``next`` and ``for``, which may be mixed."""
        self._finalizer = weakref.finalize(self, channel.close)  # a stream dropped unclosed frees its channel

    @property
    def run_id(self) -> str | None:
        """The followed run id (with ``run="next"``: once that run started), else ``None``."""
        return self._channel.target

    @property
    def dropped(self) -> int:
        """Events this consumer missed so far (backlog full, or left the recorder's log unread)."""
        return self._channel.total_missed

    @property
    def queued(self) -> int:
        """Records waiting for this consumer."""
        return self._channel.queued

    @property
    def closed(self) -> bool:
        """Whether the stream was closed (by ``close``/``aclose``, the end of a ``with`` block, or its end)."""
        return self._channel.closed

    def close(self) -> None:
        """Stop receiving: what waits is dropped, and a waiting ``next``/``anext`` ends the iteration."""
        self._batch.clear()  # ends ``_rest``, also inside a ``for`` loop's ``yield from``
        self._finalizer()

    def _took(self, records: list[Record]) -> Record:
        self._batch = batch = list(records)  # the channel's list may be the one the other consumers read
        self._rest = rest = map(dict.copy, batch)
        return next(rest)


@final
class UpdatesIterator(_Stream):
    """Blocking iterator of live records (``h.iter_updates()``); see ``nbcallbacks.updates``."""

    def __iter__(self) -> Iterator[Record]:
        """The records, as ``next`` gives them (the two may be mixed).

        A generator delegating to the batch taken (``yield from``), so a ``for`` loop costs no Python-level step
        per record beyond its own.
        """
        return self._records()

    def _records(self) -> Iterator[Record]:
        while True:
            yield from self._rest
            try:
                record = self.__next__()  # waits for the next batch
            except StopIteration:
                return
            yield record

    def __next__(self) -> Record:
        """The next record; blocks until there is one, or the stream ends (``StopIteration``)."""
        record = next(self._rest, None)
        if record is not None:
            return record
        channel = self._channel
        with channel.cond:
            while True:
                records, done = channel.take()
                if records or done:
                    break
                channel.cond.wait()
        if not records:
            self.close()
            raise StopIteration
        return self._took(records)

    def __enter__(self) -> UpdatesIterator:
        """Itself; leaving the block closes it."""
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        """Close."""
        self.close()


@final
class Updates(_Stream):
    """Async iterator of live records (``h.updates()``); see ``nbcallbacks.updates``."""

    def __aiter__(self) -> Updates:
        """Itself."""
        return self

    async def __anext__(self) -> Record:
        """The next record; waits (without blocking the loop) until there is one, or the stream ends."""
        record = next(self._rest, None)
        if record is not None:
            return record
        channel = self._channel
        while True:
            with channel.cond:
                records, done = channel.take()
                if records or done:
                    break
                loop = asyncio.get_running_loop()
                future: asyncio.Future[None] = loop.create_future()
                channel.waiter = (loop, future)
            try:
                await future
            finally:
                with channel.cond:
                    if channel.waiter is not None and channel.waiter[1] is future:
                        channel.waiter = None
        if not records:
            self.close()
            raise StopAsyncIteration
        return self._took(records)

    async def aclose(self) -> None:
        """Close (as ``close``), for ``contextlib.aclosing`` and async generator habits."""
        self.close()

    async def __aenter__(self) -> Updates:
        """Itself; leaving the block closes it."""
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        """Close."""
        self.close()
