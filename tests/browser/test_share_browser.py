"""Shared traces in a real Chromium with every network request blocked: ``h.to_html()`` files and nbconvert pages.

Each page is opened from ``file://``; a route aborts (and records) every request that is not the page itself, so a
test fails if the page tries to fetch anything. Page errors, console errors and dialogs are collected and must be
none. Checks go through the widget's documented DOM hooks (``js/src/index.ts``).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import nbformat
import pytest
from harness import REPO
from nbclient import NotebookClient
from test_widget_browser import show_tab, unfold, wait_runs, wait_tree_rows

from nbcallbacks import NotebookHandler
from nbcallbacks.demo import agent

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("widget_bundle")]

QUESTION = "What's the weather in Paris?"
EVIL = '</script><img src=x onerror="window.__pwned=1;alert(1)"><!--'
EVIL_TITLE = "<b>title</b></title><script>window.__pwned=2</script>"
DEMO_SIZE_LIMIT = 200_000
"""A 9-run demo trace is about 90 kB (bundle 54 kB + CSS 16 kB + trace); the issue asks for well under 1 MB."""


@dataclass
class OfflinePage:
    """A Chromium page that may load one file and nothing else."""

    page: Any
    url: str
    blocked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def problems(self) -> dict[str, list[str]]:
        return {"blocked": self.blocked, "errors": self.errors, "dialogs": self.dialogs}


@contextlib.contextmanager
def offline_page(browser: Any, path: Path, *, javascript: bool = True) -> Iterator[OfflinePage]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, java_script_enabled=javascript)
    page = context.new_page()
    page.set_default_timeout(30_000)
    url = path.resolve().as_uri()
    opened = OfflinePage(page, url)

    def route(request_route: Any) -> None:
        request_url = request_route.request.url
        if request_url == url:
            request_route.continue_()
        else:
            opened.blocked.append(request_url)
            request_route.abort()

    context.route("**/*", route)
    page.on("pageerror", lambda error: opened.errors.append(f"pageerror: {error}"))
    page.on("console", lambda msg: opened.errors.append(f"console: {msg.text}") if msg.type == "error" else None)

    def on_dialog(dialog: Any) -> None:
        opened.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    try:
        page.goto(url)
        yield opened
    finally:
        context.close()


def demo_handler(name: str = "LangGraph", title: str | None = None) -> NotebookHandler:
    handler = NotebookHandler(title=title)
    agent(token_delay=0).invoke({"messages": [("user", QUESTION)]}, config={"callbacks": [handler], "run_name": name})
    return handler


def check_tree_stream_inspector(view: Any, handler: NotebookHandler) -> None:
    """The widget over the inlined trace: header, stream, tree and inspector show what the recorder holds."""
    runs = handler.recorder.runs()
    shown = [run for run in runs if not run.hidden]
    wait_runs(view, len(runs))

    model_runs = [run for run in shown if run.run_type in {"chat_model", "llm"}]
    blocks = view.evaluate(
        """(el) => [...el.querySelectorAll('section.nbc-block')].map((b) => ({
             run_id: b.dataset.runId,
             text: [...b.querySelectorAll('.nbc-seg[data-kind="text"]')].map((s) => s.textContent).join(''),
           }))"""
    )
    assert [block["run_id"] for block in blocks] == [run.run_id for run in model_runs]
    for block, run in zip(blocks, model_runs, strict=True):
        assert block["text"] == handler.recorder.run_text(run.run_id, kind="text")

    show_tab(view, "tree")
    view.locator('button[data-action="expand-all"]').click()
    rows = wait_tree_rows(view, len(shown))
    assert {row["run_id"] for row in rows} == {run.run_id for run in shown}
    assert {row["name"] for row in rows} == {run.name for run in shown}

    (root,) = [run for run in shown if run.parent_run_id is None]
    inspector = view.locator("aside.nbc-inspector")
    view.locator(f'.nbc-row[data-run-id="{root.run_id}"] .nbc-name').click()
    view.page.wait_for_function(
        "([el, id]) => el.querySelector('aside.nbc-inspector').dataset.runId === id",
        arg=[view.element_handle(), root.run_id],
    )
    assert view.locator(".nbc-insp-name").text_content() == root.name
    inputs = inspector.locator('details.nbc-section[data-section="inputs"]')
    inputs.wait_for()
    unfold(inputs)
    assert QUESTION in inputs.inner_text()

    show_tab(view, "timing")
    view.page.wait_for_function(
        "([el, n]) => el.querySelectorAll('.nbc-tbody .nbc-trow[data-run-id]').length === n",
        arg=[view.element_handle(), len(shown)],
    )

    # The filter narrows the tree to the matching runs (and their ancestors, shown as context).
    show_tab(view, "tree")
    tools = [run for run in shown if run.run_type == "tool"]
    view.locator('input[data-action="filter"]').fill(tools[0].name)
    view.locator('input[data-action="filter"]').press("Enter")
    view.page.wait_for_function("(el) => el.dataset.filtered === 'true'", arg=view.element_handle())
    matched = view.evaluate(
        "(el) => [...el.querySelectorAll('.nbc-row[data-match=\"true\"]')].map((row) => row.dataset.runId)"
    )
    assert matched == [run.run_id for run in tools]


def assert_injection_stayed_text(opened: OfflinePage) -> None:
    opened.page.wait_for_timeout(300)
    assert opened.page.evaluate("() => typeof window.__pwned") == "undefined"
    injected = opened.page.evaluate(
        """() => ({
            images: document.querySelectorAll('img').length,
            handlers: [...document.querySelectorAll('*')].filter((n) => n.hasAttribute('onerror')).length,
        })"""
    )
    assert injected == {"images": 0, "handlers": 0}


# ------------------------------------------------------------------------------------------------ to_html


def test_to_html_opens_offline_with_tree_stream_and_inspector_and_requests_nothing(browser, tmp_path):
    handler = demo_handler(name=EVIL, title=EVIL_TITLE)
    path = handler.to_html(tmp_path / "trace.html")
    size = path.stat().st_size
    assert size < DEMO_SIZE_LIMIT, size

    with offline_page(browser, path) as opened:
        view = opened.page.locator(".nbc-root")
        view.wait_for()
        assert opened.page.locator("[data-nbc-embed]").get_attribute("data-nbc-mounted") == "true"
        assert not opened.page.locator("[data-nbc-fallback]").is_visible()
        assert view.locator(".nbc-title").text_content() == EVIL_TITLE
        assert opened.page.title() == EVIL_TITLE
        check_tree_stream_inspector(view, handler)
        assert_injection_stayed_text(opened)
        assert opened.problems() == {"blocked": [], "errors": [], "dialogs": []}


def test_to_html_without_javascript_shows_the_static_summary(browser, tmp_path):
    handler = demo_handler(name=EVIL)
    path = handler.to_html(tmp_path / "trace.html")
    with offline_page(browser, path, javascript=False) as opened:
        summary = opened.page.locator("[data-nbc-static-summary]")
        assert summary.is_visible()
        text = summary.inner_text()
        assert f"{handler.recorder.run_count} runs" in text
        assert EVIL in text  # as text
        assert opened.page.locator("img").count() == 0
        assert opened.problems() == {"blocked": [], "errors": [], "dialogs": []}


# ------------------------------------------------------------------------------------------------ nbconvert

NOTEBOOK_CELLS = [
    "from nbcallbacks import NotebookHandler\nfrom nbcallbacks.demo import agent\nh = NotebookHandler()\nh",
    (
        f"result = agent(token_delay=0).invoke({{'messages': [('user', {QUESTION!r})]}}, "
        f"config={{'callbacks': [h], 'run_name': {EVIL!r}}})\n"
        "print(len(h.recorder.runs()))"
    ),
    "h",
]


def write_notebook(path: Path) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in NOTEBOOK_CELLS]
    nbformat.write(notebook, path)


def exporter_entry_points(directory: Path) -> Path:
    """A distribution declaring this checkout's ``nbconvert.exporters`` entry points, for ``PYTHONPATH``.

    The installed package's metadata may predate them (an editable install records entry points when installed),
    so the test declares the ones in ``pyproject.toml`` itself: ``--to nbcallbacks_html`` then resolves through
    nbconvert's entry-point lookup exactly as after ``pip install``.
    """
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    section = pyproject.split('[project.entry-points."nbconvert.exporters"]\n', 1)[1].split("\n\n", 1)[0]
    dist_info = directory / "nbcallbacks_exporters-0.0.dist-info"
    dist_info.mkdir(parents=True, exist_ok=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: nbcallbacks-exporters\nVersion: 0.0\n")
    entry_points = "[nbconvert.exporters]\n" + section.replace('"', "") + "\n"
    (dist_info / "entry_points.txt").write_text(entry_points, encoding="utf-8")
    return directory


def nbconvert(*args: str, cwd: Path) -> None:
    paths = [str(REPO), str(exporter_entry_points(cwd / "entry-points"))]
    subprocess.run(
        [sys.executable, "-m", "jupyter", "nbconvert", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(paths)},
        timeout=240,
    )


def test_nbconvert_exporter_renders_the_real_widget_offline(browser, tmp_path):
    source = tmp_path / "traced.ipynb"
    write_notebook(source)
    nbconvert("--to", "nbcallbacks_html", "--execute", source.name, cwd=tmp_path)
    page = tmp_path / "traced.html"
    text = page.read_text(encoding="utf-8")
    assert text.count('data-nbc-assets="js"') == 1  # the bundle once, however many widgets
    assert "application/vnd.jupyter.widget-view+json" not in text

    with offline_page(browser, page) as opened:
        views = opened.page.locator(".nbc-root")
        views.first.wait_for()
        assert views.count() == 2  # both displays of h: the one before the run shows the whole trace too
        for index in range(2):
            view = views.nth(index)
            wait_runs(view, 9)
            show_tab(view, "tree")
            view.locator('button[data-action="expand-all"]').click()
            assert EVIL in {row["name"] for row in wait_tree_rows(view, 9)}
        assert_injection_stayed_text(opened)
        # nbconvert's own page asks for require.js and MathJax from CDNs (blocked here); the trace needs neither.
        assert all("nbcallbacks" not in url for url in opened.blocked)
        assert opened.errors == [] or all("net::ERR_FAILED" in error for error in opened.errors), opened.errors
        assert opened.dialogs == []


def test_plain_nbconvert_html_shows_the_static_summary_where_no_widget_state_was_saved(browser, tmp_path):
    """Lab saves no widget state by default: nbconvert then drops the widget view and shows the text/html.

    Opened with JavaScript off, as GitHub-style renderers show outputs: the summary is readable and its
    ``<details>`` unfold on a click.
    """
    source = tmp_path / "lab_saved.ipynb"
    write_notebook(source)
    notebook = nbformat.read(source, as_version=4)
    client = NotebookClient(notebook, kernel_name="python3", timeout=120, store_widget_state=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", str(REPO))
        client.execute()
    nbformat.write(notebook, source)
    nbconvert("--to", "html", source.name, cwd=tmp_path)
    with offline_page(browser, tmp_path / "lab_saved.html", javascript=False) as opened:
        summaries = opened.page.locator("[data-nbc-static-summary]")
        assert summaries.count() == 2
        assert "0 runs" in summaries.nth(0).inner_text()  # displayed before the run: that moment's summary
        last = summaries.nth(1)
        assert last.is_visible()
        assert "9 runs" in last.inner_text()
        assert EVIL in last.inner_text()
        tool = last.get_by_text("get_weather")
        assert not tool.is_visible()  # folded: the root is open, its children are not
        last.locator("details > summary", has_text="tools").first.click()
        assert tool.is_visible()
        assert opened.page.locator("img").count() == 0
        assert opened.dialogs == []


# ------------------------------------------------------------------------------------------------ JupyterLab


def test_an_untrusted_saved_notebook_in_lab_shows_the_static_summary_instead_of_nothing(lab_page):
    """Lab renders widgets only in trusted notebooks; an untrusted one gets the sanitized text/html summary.

    (A trusted one renders the widget from the saved state: ``test_a_saved_notebook_shows_the_widget...`` in
    ``test_widget_browser.py``.)
    """
    path = lab_page.write_notebook("untrusted.ipynb", NOTEBOOK_CELLS)
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, kernel_name="python3", timeout=120, store_widget_state=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", str(REPO))
        client.execute()
    nbformat.write(notebook, path)  # not signed: Lab opens it untrusted

    lab_page.open("untrusted.ipynb", wait_kernel=False)
    last = lab_page.cell_locator(2)
    summary = last.locator(".jp-OutputArea-output").filter(has_text="9 runs")
    summary.wait_for(timeout=30_000)
    assert summary.locator("details").count() >= 1
    assert EVIL in summary.inner_text()
    assert lab_page.page.locator(".nbc-root").count() == 0
    assert lab_page.page.locator(".jp-OutputArea-output img").count() == 0
