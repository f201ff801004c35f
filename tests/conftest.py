"""Suite-wide pytest configuration."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from hypothesis import settings

if TYPE_CHECKING:
    import pytest


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
