"""The trace widget in marimo: a real ``marimo run`` server, a real Chromium, the demo agent.

The notebook displays ``mo.ui.anywidget(h.widget)`` and plain ``h`` first, then runs the demo agent in a cell that
depends on the displayed widget (so marimo runs it after both displays exist): the views must fill in from the
widget's updates, not from a state that was already complete when they were created. marimo renders widgets in a
shadow root; Playwright's CSS locators pierce it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

import marimo  # noqa: F401 - a missing marimo fails the run (it is in the test extra): this test never skips
import pytest
from harness import REPO, free_port
from playwright.sync_api import expect

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("widget_bundle")]

RUNS = 9
"""Runs the demo agent records for one question (a graph, two agent steps, a tool step)."""

NOTEBOOK = """
import marimo

app = marimo.App()


@app.cell
def _():
    import marimo as mo

    from nbcallbacks import NotebookHandler
    from nbcallbacks.demo import agent

    h = NotebookHandler()
    return agent, h, mo


@app.cell
def _(h, mo):
    wrapped = mo.ui.anywidget(h.widget)
    wrapped
    return (wrapped,)


@app.cell
def _(h, wrapped):
    h
    return


@app.cell
def _(agent, h, mo, wrapped):
    result = agent(token_delay=0.01).invoke(
        {"messages": [("user", "What's the weather in Paris?")]}, config={"callbacks": [h]}
    )
    h.widget.flush()
    mo.md(f"runs recorded: {h.recorder.run_count}")
    return


if __name__ == "__main__":
    app.run()
"""

SERVER_START_TIMEOUT_S = 60.0


@contextlib.contextmanager
def marimo_server(notebook: Path) -> Iterator[str]:
    """``marimo run`` on 127.0.0.1 with a free port and no token; yields its URL, stops it afterwards."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    log = notebook.with_suffix(".log")
    command = [
        sys.executable,
        "-m",
        "marimo",
        "run",
        str(notebook),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--headless",
        "--no-token",
        "--no-sandbox",
        "--no-skew-protection",
    ]
    with log.open("wb") as log_file:
        process = subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT, cwd=notebook.parent)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"marimo exited with {process.returncode}:\n{log.read_text(errors='replace')}")
            with contextlib.suppress(urllib.error.URLError, OSError), urllib.request.urlopen(url, timeout=5) as answer:
                if answer.status == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(
                    f"marimo did not answer within {SERVER_START_TIMEOUT_S}s:\n{log.read_text(errors='replace')}"
                )
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def test_marimo_shows_the_demo_agent_in_the_anywidget_and_in_plain_h(browser, tmp_path):
    notebook = tmp_path / "trace_app.py"
    notebook.write_text(NOTEBOOK, encoding="utf-8")
    with marimo_server(notebook) as url:
        context = browser.new_context(viewport={"width": 1400, "height": 1600})
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        try:
            page.goto(url)
            expect(page.get_by_text(f"runs recorded: {RUNS}")).to_be_visible(timeout=90_000)
            views = page.locator(".nbc-root")
            expect(views).to_have_count(2, timeout=30_000)  # mo.ui.anywidget(h.widget), and plain h
            for index in range(2):
                view: Any = views.nth(index)
                expect(view.locator('.nbc-stat[data-stat="runs"]')).to_contain_text(str(RUNS), timeout=30_000)
                view.locator(".nbc-tab[data-tab=tree]").click()
                view.locator('button[data-action="expand-all"]').click()
                expect(view.locator(".nbc-row")).to_have_count(RUNS, timeout=30_000)
                expect(view.locator('.nbc-row[data-depth="0"] .nbc-name')).to_have_text("LangGraph")
                expect(view.locator("section.nbc-block")).to_have_count(2)  # the two model calls, in the stream
            assert errors == []
        finally:
            context.close()
