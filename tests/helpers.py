"""Helpers several test modules share: waiting for a condition, a settable clock, the Jupyter wire's encoding.

Imported by name (``from helpers import ...``): pytest's default import mode puts this folder on ``sys.path``. The
fixtures built on them (``clock``, ``recorder``, ``handler``, ``make_widget``) are in ``conftest.py``. Nothing here
imports the widget (which needs the built front end); ``widget_capture.py`` does.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable

DEADLINE_S = 30.0
"""How long ``wait_until`` waits by default before failing the test (a deadline, not a timing assertion)."""

EPOCH_2026 = 1_767_225_600.0
"""2026-01-01T00:00:00Z in seconds since the epoch: where a ``ManualClock`` starts unless told otherwise."""


def unavailable(reason: str) -> None:
    """Fail in CI, skip elsewhere: for a test whose backend (browser, server) is missing. CI must never pass by
    skipping; ``CI`` set to anything non-empty counts, as for the hypothesis profile in ``conftest.py``."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (the CI environment variable is set, so this is a failure)")
    pytest.skip(reason)


def wait_until(
    predicate: Callable[[], object], what: str = "the condition", *, timeout: float = DEADLINE_S, poll: float = 0.005
) -> None:
    """Poll ``predicate`` until it is true; fail the test, naming ``what``, if ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(poll)


async def wait_until_async(
    predicate: Callable[[], object], what: str = "the condition", *, timeout: float = DEADLINE_S, poll: float = 0.001
) -> None:
    """``wait_until`` for a coroutine: yield to the event loop (other tasks run) between polls."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        await asyncio.sleep(poll)


class ManualClock:
    """A clock the test sets: calling it returns the current fake time (seconds since the epoch, like ``time.time``).

    It never moves by itself, so timestamps and durations recorded with it are exact; ``set`` may also move it
    backwards, as a wall clock adjusted by NTP does.
    """

    def __init__(self, start: float = EPOCH_2026) -> None:
        """Start at ``start`` seconds since the epoch."""
        self._lock = threading.Lock()
        self._now = float(start)

    def __call__(self) -> float:
        """The current fake time."""
        return self._now

    def advance(self, seconds: float) -> float:
        """Move the time on by ``seconds``; return the new time."""
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, t: float) -> None:
        """Jump to ``t`` seconds since the epoch (earlier or later)."""
        with self._lock:
            self._now = float(t)

    def __repr__(self) -> str:
        """Show the current fake time (in a failed assertion's report)."""
        return f"ManualClock({self._now!r})"


def wire_bytes(message: Any) -> bytes:
    """Encode as jupyter_client's session does, without its lossy (and deprecated) fallback for NaN and infinities."""
    return json.dumps(message, ensure_ascii=False, allow_nan=False).encode("utf-8")
