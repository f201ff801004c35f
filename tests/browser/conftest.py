"""Fixtures for the browser tests: one JupyterLab and one Chromium per session, one page per test.

The machinery lives in ``benchmarks/harness.py`` (shared with the browser benchmarks; pytest's ``pythonpath``
setting in ``pyproject.toml`` puts that folder on ``sys.path``, so it is imported by name). In CI (the ``CI``
environment variable is set) a missing Chromium or a missing built front-end bundle fails the
session; locally it skips with the reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from harness import (
    ARTIFACTS,
    BUNDLE,
    CHROMIUM,
    LabError,
    LabPage,
    LabServer,
    browser_context,
    chromium,
    start_lab,
)
from harness import lab_page as open_lab_page
from helpers import unavailable

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture(scope="session")
def lab() -> Iterator[LabServer]:
    """A JupyterLab server for the whole session."""
    try:
        server = start_lab()
    except LabError as exc:
        pytest.fail(str(exc))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """A headless Chromium for the whole session."""
    if not CHROMIUM.exists():
        unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set NBC_CHROMIUM)")
    with chromium() as instance:
        yield instance


@pytest.fixture(scope="session")
def widget_bundle() -> Path:
    """The built front end; the widget cannot render without it."""
    if not BUNDLE.exists():
        unavailable(f"the widget bundle {BUNDLE} is not built (cd js && npm ci && npm run build)")
    return BUNDLE


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots go (gitignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def context(browser: Any) -> Iterator[Any]:
    """One browser context for the session (pages share its HTTP cache, nothing else matters)."""
    with browser_context(browser) as shared:
        yield shared


@pytest.fixture
def lab_page(context: Any, lab: LabServer) -> Iterator[LabPage]:
    """A fresh page on the session's Lab; kernels are shut down afterwards.

    A test whose page raised an uncaught error after its notebook opened fails in teardown.
    """
    with open_lab_page(lab, context) as page:
        yield page
        errors = page.errors_since_open()
        if errors:
            pytest.fail("uncaught errors in the page:\n" + "\n".join(errors))
