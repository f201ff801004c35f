"""Suite-wide pytest configuration."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the real-browser tests last.

    Playwright's sync API keeps an asyncio loop running in the main thread while its (session-scoped) browser is
    open; any test after them that calls ``asyncio.run`` (LangChain's async paths do) would fail.
    """
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)
