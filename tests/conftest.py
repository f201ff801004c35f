"""Suite-wide pytest configuration."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import pytest
from helpers import ManualClock
from hypothesis import settings

from nbcallbacks import NotebookHandler
from nbcallbacks.recorder import Recorder

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from nbcallbacks.widget import TraceWidget


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the real-browser tests last.

    Playwright's sync API keeps an asyncio loop running in the main thread while its (session-scoped) browser is
    open; any test after them that calls ``asyncio.run`` (LangChain's async paths do) would fail.
    """
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


# CI explores the same examples every run (a red build then means the change, not the dice); local runs keep
# drawing new ones, which is where new hostile inputs are found.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


# --- shared fixtures (the helpers they build on are in helpers.py)


@pytest.fixture
def clock() -> ManualClock:
    """A settable fake clock (``clock()``, ``clock.advance(s)``, ``clock.set(t)``), starting at 2026-01-01 UTC."""
    return ManualClock()


def _clock_of(request: pytest.FixtureRequest) -> ManualClock | None:
    """The test's ``clock`` fixture if the test asks for it too, else None (the real clock)."""
    return request.getfixturevalue("clock") if "clock" in request.fixturenames else None


@pytest.fixture
def recorder(request: pytest.FixtureRequest) -> Recorder:
    """An empty recorder with the default limits, on the test's ``clock`` if the test also takes that fixture."""
    return Recorder(clock=_clock_of(request))


@pytest.fixture
def handler(request: pytest.FixtureRequest) -> Iterator[NotebookHandler]:
    """A NotebookHandler with the default limits, on the test's ``clock`` if the test also takes that fixture.

    Its widget, if the test made one, is closed afterwards.
    """
    h = NotebookHandler(clock=_clock_of(request))
    yield h
    if h._widget is not None:
        h._widget.close()


@pytest.fixture
def make_widget() -> Iterator[Callable[..., Any]]:
    """Make headless widgets on a recorder (a ``CapturingWidget`` unless ``cls`` says otherwise); closed afterwards."""
    from widget_capture import CapturingWidget

    widgets: list[TraceWidget] = []

    def make(recorder: Recorder, cls: type[TraceWidget] = CapturingWidget, **kwargs: Any) -> Any:
        widget = cls(recorder, **kwargs)
        widgets.append(widget)
        return widget

    yield make
    for widget in widgets:
        widget.close()


@pytest.fixture
def otel() -> Iterator[tuple[Any, Any]]:
    """A real OpenTelemetry SDK provider exporting to an ``InMemorySpanExporter``: ``(provider, exporter)``."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()
