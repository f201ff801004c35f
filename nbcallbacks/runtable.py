"""The runs a recorder knows: by LangChain's run id, in start order, with their kept streamed text.

Standard library only, and not thread-safe on its own: the recorder holds its lock around every call.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import replace
from typing import TYPE_CHECKING

from nbcallbacks.events import TOKEN_KINDS, RunRecord

if TYPE_CHECKING:
    from collections.abc import Hashable

    from nbcallbacks.events import Status


class RunTable:
    """Runs by key (the id object LangChain passes), by id text, and in start order (``order`` = index)."""

    def __init__(self) -> None:
        """An empty table."""
        self.by_key: dict[Hashable, RunRecord] = {}
        self.ordered: list[RunRecord] = []
        self._index: dict[str, int] = {}
        self.running = 0
        """Runs started (or met) and not yet ended."""

    def __len__(self) -> int:
        """Runs known."""
        return len(self.ordered)

    def new(  # noqa: PLR0913 - a run has this many facts at birth
        self,
        key: Hashable,
        parent_key: Hashable | None,
        *,
        name: str,
        run_type: str,
        now: float,
        started: bool,
        thread: str,
    ) -> RunRecord:
        """Add a run (``started=False`` for one met first through an end, error or token)."""
        run = RunRecord(
            run_id=str(key),
            parent_run_id=None if parent_key is None else str(parent_key),
            order=len(self.ordered),
            name=name,
            run_type=run_type,
            start=now,
            started=started,
            thread=thread,
        )
        self.by_key[key] = run
        self.ordered.append(run)
        self._index[run.run_id] = run.order
        self.running += 1
        return run

    def finish(self, run: RunRecord, status: Status, now: float) -> None:
        """End a running run with ``status`` (the recorder keeps a run's first end: it never finishes one twice)."""
        self.running -= 1
        run.status = status
        run.end = now
        run.abandoned = False

    def find(self, run_id: str) -> RunRecord | None:
        """A run by its id text."""
        index = self._index.get(run_id)
        return None if index is None else self.ordered[index]

    def text(self, run: RunRecord, kind: str | None) -> str:
        """A run's kept streamed text of one kind (``None``: all kinds)."""
        if kind is None:
            return "".join(run.token_texts)
        code = TOKEN_KINDS.index(kind)
        return "".join(t for t, k in zip(run.token_texts, run.token_kinds, strict=True) if k == code)

    def keep_text(self, run: RunRecord, text: str, kind: int) -> int:
        """Keep one more piece of a run's streamed text; returns its index in ``token_texts``."""
        run.token_texts.append(text)
        run.token_kinds.append(kind)
        return len(run.token_texts) - 1

    def restore(self, runs: list[RunRecord]) -> dict[str, RunRecord]:
        """Add saved runs in start order (renumbered, kept text emptied); returns them by id."""
        by_id: dict[str, RunRecord] = {}
        for order, saved in enumerate(sorted(runs, key=lambda r: r.order)):
            run = replace(saved, order=order, token_texts=[], token_kinds=bytearray(), tags=list(saved.tags))
            key: Hashable = run.run_id
            with contextlib.suppress(ValueError):
                key = uuid.UUID(run.run_id)  # LangChain's run ids: a later live event finds the run
            self.by_key[key] = run
            self.ordered.append(run)
            self._index[run.run_id] = order
            by_id[run.run_id] = run
            if run.status == "running":
                self.running += 1
        return by_id


def copy_run(run: RunRecord) -> RunRecord:
    """A copy of a run for a reader, without its kept text (read that with ``run_text`` / deltas)."""
    return replace(run, token_texts=[], token_kinds=bytearray(), tags=list(run.tags), metrics=dict(run.metrics))


def merge_pieces(texts: list[str], kinds: bytearray, start: int, stop: int) -> list[list[str]]:
    """``[kind, text]`` pieces for chunks ``start:stop``, adjacent chunks of one kind joined."""
    pieces: list[list[str]] = []
    current_kind = -1
    parts: list[str] = []
    for i in range(start, stop):
        kind = kinds[i]
        if kind != current_kind:
            if parts:
                pieces.append([TOKEN_KINDS[current_kind], "".join(parts)])
            parts = []
            current_kind = kind
        parts.append(texts[i])
    if parts:
        pieces.append([TOKEN_KINDS[current_kind], "".join(parts)])
    return pieces
