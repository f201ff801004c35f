"""The trace widget in a real JupyterLab and Chromium, driven by real LangChain/LangGraph runs.

Screenshots go to ``test-artifacts/``; with ``NBC_UPDATE_DOCS_SCREENSHOT=1`` the light one also
replaces ``docs/screenshot.png``.

Every notebook is generated here, run cell by cell through Lab's own commands, and checked through the
widget's documented DOM hooks (``js/src/index.ts``). What the kernel knows (run ids, parents,
durations, the model's answer) is printed as JSON by a cell and compared with what the page shows.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from helpers import wait_until

if TYPE_CHECKING:
    from harness import LabPage

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("widget_bundle")]

DOCS = Path(__file__).resolve().parents[2] / "docs"
QUESTION = "What's the weather in Paris?"

SETUP = """
import json
from nbcallbacks import NotebookHandler
from nbcallbacks.demo import DemoChatModel, agent, tokenize

def facts():
    runs = h.recorder.runs()
    shown = [r for r in runs if not r.hidden]
    ids = {r.run_id for r in shown}
    return {
        "run_count": len(runs),
        "shown": len(shown),
        "roots": [r.run_id for r in shown if r.parent_run_id not in ids],
        "runs": [
            {"run_id": r.run_id, "parent": r.parent_run_id, "name": r.name,
             "run_type": r.run_type, "duration": r.duration}
            for r in shown
        ],
    }

h = NotebookHandler()
h
"""

AGENT_RUN = """
graph = agent(token_delay={delay})
result = graph.invoke({{"messages": [("user", {question!r})]}}, config={{"callbacks": [h]}})
answer = result["messages"][-1].content
print(json.dumps({{"answer": answer}}))
"""

FACTS = "print(json.dumps(facts()))"


# ------------------------------------------------------------------------------------- helpers
def last_json(page: LabPage, cell: int) -> Any:
    """The last JSON document a cell printed."""
    return page.cell_json(cell)


def kernel_eval(page: LabPage, code: str) -> str:
    """Run ``code`` in the notebook's kernel behind the UI's back (no cell); return its stdout."""
    page.wait_kernel_idle()
    return str(
        page.page.evaluate(
            """async (code) => {
              const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
              const future = kernel.requestExecute({ code, store_history: false });
              let out = '';
              future.onIOPub = (msg) => {
                if (msg.header.msg_type === 'stream') { out += msg.content.text; }
              };
              await future.done;
              return out;
            }""",
            code,
        )
    )


def wait_kernel_selection(page: LabPage, run_ids: list[str]) -> None:
    """Wait until the kernel's widget holds exactly ``run_ids`` as its selection (in any order): a click in the page
    reaches the kernel as a comm message, some time after the page shows it."""
    want = sorted(run_ids)
    wait_until(
        lambda: (
            json.loads(kernel_eval(page, "import json; print(json.dumps(sorted(h.widget.selected_run_ids)))")) == want
        ),
        f"the kernel to hold the selection {want}",
        poll=0.1,
    )


def root(page: LabPage, index: int = 0) -> Any:
    """The ``index``-th widget view on the page."""
    return page.page.locator(".nbc-root").nth(index)


def show_tab(view: Any, tab: str) -> None:
    """Switch a view to one of its tabs (stream, tree, timing)."""
    view.locator(f".nbc-tab[data-tab={tab}]").click()
    view.page.wait_for_function("([el, tab]) => el.dataset.tab === tab", arg=[view.element_handle(), tab])


def wait_runs(view: Any, count: int) -> None:
    """Wait until the view's header counts ``count`` runs and nothing is running."""
    view.page.wait_for_function(
        """([el, count]) => {
          const stat = el.querySelector('.nbc-stat[data-stat="runs"]');
          return !!stat && parseInt(stat.textContent.replace(/[^0-9]/g, ''), 10) === count
                 && el.dataset.running === 'false';
        }""",
        arg=[view.element_handle(), count],
        timeout=30_000,
    )


def unfold(section: Any) -> None:
    """Open every folded part of a section, outermost first, as a user clicking through would."""
    for _ in range(20):
        closed = section.locator("details:not([open]) > summary")
        if closed.count() == 0:
            return
        closed.first.click()
    msg = "folded JSON did not open"
    raise AssertionError(msg)


def tree_rows(view: Any) -> list[dict[str, Any]]:
    """The tree rows in the DOM, top to bottom."""
    return list(
        view.evaluate(
            """(el) => [...el.querySelectorAll('.nbc-row')]
                .sort((a, b) => a.getBoundingClientRect().top - b.getBoundingClientRect().top)
                .map((row) => ({
                  run_id: row.dataset.runId, depth: Number(row.dataset.depth),
                  expanded: row.getAttribute('aria-expanded'),
                  name: row.querySelector('.nbc-name').textContent,
                }))"""
        )
    )


def wait_tree_rows(view: Any, count: int) -> list[dict[str, Any]]:
    """Wait until the tree shows exactly ``count`` rows; return them."""
    view.page.wait_for_function(
        "([el, n]) => el.querySelectorAll('.nbc-row').length === n",
        arg=[view.element_handle(), count],
        timeout=10_000,
    )
    return tree_rows(view)


def displayed_then_run(page: LabPage, name: str, cell: str) -> tuple[Any, Any]:
    """A notebook of SETUP (which displays the handler) and ``cell``; run both; the view and what ``cell`` printed."""
    page.new_notebook(name, [SETUP, cell])
    page.run_cell(0)
    view = root(page)
    view.wait_for()
    page.run_cell(1)
    facts = last_json(page, 1)
    wait_runs(view, facts["run_count"])
    return view, facts


def stream_blocks(view: Any) -> list[dict[str, str]]:
    """The stream panel's model-run blocks: run id and streamed text."""
    return list(
        view.evaluate(
            """(el) => [...el.querySelectorAll('section.nbc-block')].map((b) => ({
                 run_id: b.dataset.runId, status: b.dataset.status,
                 text: [...b.querySelectorAll('.nbc-seg[data-kind="text"]')]
                         .map((s) => s.textContent).join(''),
               }))"""
        )
    )


def run_agent(page: LabPage, name: str, delay: float = 0.0) -> tuple[dict[str, Any], str]:
    """Set up a handler, run the demo agent, and return the kernel's facts and the answer."""
    page.new_notebook(name, [SETUP, AGENT_RUN.format(delay=delay, question=QUESTION), FACTS, "h"])
    page.run_cell(0)
    root(page).wait_for()
    page.run_cell(1)
    answer = last_json(page, 1)["answer"]
    page.run_cell(2)
    facts = last_json(page, 2)
    wait_runs(root(page), facts["run_count"])
    return facts, answer


# --------------------------------------------------------------------------------------- tests
def test_widget_shows_a_streaming_agent_live_while_the_cell_runs(lab_page):
    lab_page.new_notebook("live.ipynb", [SETUP, AGENT_RUN.format(delay=0.1, question=QUESTION), FACTS])
    lab_page.run_cell(0)
    view = root(lab_page)
    view.wait_for()
    observe = """(el) => ({
        runs: parseInt(el.querySelector('.nbc-stat[data-stat="runs"]').textContent, 10) || 0,
        blocks: el.querySelectorAll('section.nbc-block').length,
        text: [...el.querySelectorAll('.nbc-seg')].map((s) => s.textContent).join('').length,
        running: el.dataset.running,
    })"""
    observations: list[dict[str, Any]] = []
    lab_page.start_cell(1)
    while lab_page.cell_running():
        busy = lab_page.kernel_status() == "busy"
        observations.append({**view.evaluate(observe), "busy": busy})
        lab_page.page.wait_for_timeout(150)
    lab_page.wait_cell(1)
    answer = last_json(lab_page, 1)["answer"]
    lab_page.run_cell(2)
    facts = last_json(lab_page, 2)
    wait_runs(view, facts["run_count"])
    final = view.evaluate(observe)

    progress = [(o["runs"], o["text"]) for o in observations if o["busy"]]
    partial = [p for p in progress if p != (0, 0) and p < (final["runs"], final["text"])]
    assert partial, f"nothing shown while the agent ran: {observations}"
    assert len(set(partial)) >= 2, f"the view did not grow during the run: {observations}"
    assert any(o["busy"] and o["running"] == "true" for o in observations)
    assert partial[0] < partial[-1] <= (final["runs"], final["text"])
    assert final["runs"] == facts["run_count"]
    assert answer in "".join(block["text"] for block in stream_blocks(view))


def test_tree_expands_and_collapses(lab_page):
    facts, _ = run_agent(lab_page, "tree.ipynb")
    view = root(lab_page)
    show_tab(view, "tree")
    (root_id,) = facts["roots"]
    children = [r for r in facts["runs"] if r["parent"] == root_id]
    assert children

    view.locator('button[data-action="expand-all"]').click()
    rows = wait_tree_rows(view, facts["shown"])
    assert {row["run_id"] for row in rows} == {r["run_id"] for r in facts["runs"]}
    assert all(row["expanded"] in {"true", None} for row in rows)

    view.locator('button[data-action="collapse-all"]').click()
    rows = wait_tree_rows(view, 1)
    assert rows[0]["run_id"] == root_id
    assert rows[0]["expanded"] == "false"

    caret = view.locator(f'.nbc-row[data-run-id="{root_id}"] .nbc-caret')
    caret.click()
    rows = wait_tree_rows(view, 1 + len(children))
    assert [row["run_id"] for row in rows[1:]] == [c["run_id"] for c in children]
    assert rows[0]["expanded"] == "true"
    assert all(row["depth"] == 1 for row in rows[1:])

    caret.click()
    rows = wait_tree_rows(view, 1)
    assert rows[0]["expanded"] == "false"


def test_clicking_a_run_shows_its_inputs_in_the_inspector(lab_page):
    facts, _ = run_agent(lab_page, "inspect.ipynb")
    view = root(lab_page)
    inspector = view.locator("aside.nbc-inspector")
    assert inspector.get_attribute("data-run-id") == ""
    assert QUESTION not in (inspector.text_content() or "")

    show_tab(view, "tree")
    (root_id,) = facts["roots"]
    view.locator(f'.nbc-row[data-run-id="{root_id}"] .nbc-name').click()
    lab_page.page.wait_for_function(
        "([el, id]) => el.querySelector('aside.nbc-inspector').dataset.runId === id",
        arg=[view.element_handle(), root_id],
    )
    assert view.locator(".nbc-insp-name").text_content() == "LangGraph"
    inputs = inspector.locator('details.nbc-section[data-section="inputs"]')
    inputs.wait_for()
    unfold(inputs)
    assert QUESTION in (inputs.inner_text() or "")

    model_run = next(r for r in facts["runs"] if r["run_type"] in {"chat_model", "llm"})
    show_tab(view, "stream")
    view.locator(f'section.nbc-block[data-run-id="{model_run["run_id"]}"] .nbc-block-name').click()
    lab_page.page.wait_for_function(
        "([el, id]) => el.querySelector('aside.nbc-inspector').dataset.runId === id",
        arg=[view.element_handle(), model_run["run_id"]],
    )
    assert QUESTION in (inspector.text_content() or "")


def test_timing_table_sorts_by_duration_both_ways(lab_page):
    facts, _ = run_agent(lab_page, "timing.ipynb")
    durations = {r["run_id"]: r["duration"] for r in facts["runs"]}
    view = root(lab_page)
    show_tab(view, "timing")
    view.locator('button[data-group="runs"]').click()
    header = view.locator('.nbc-thead .nbc-th[data-col="duration"]')

    def order() -> list[str]:
        view.page.wait_for_function(
            "([el, n]) => el.querySelectorAll('.nbc-trow[data-run-id]').length === n",
            arg=[view.element_handle(), facts["shown"]],
        )
        return list(
            view.evaluate(
                """(el) => [...el.querySelectorAll('.nbc-trow[data-run-id]')]
                    .sort((a, b) => a.getBoundingClientRect().top - b.getBoundingClientRect().top)
                    .map((row) => row.dataset.runId)"""
            )
        )

    header.locator("button.nbc-sort").click()
    first_sort = header.get_attribute("aria-sort")
    assert first_sort in {"ascending", "descending"}
    first = order()
    header.locator("button.nbc-sort").click()
    second_sort = header.get_attribute("aria-sort")
    assert {first_sort, second_sort} == {"ascending", "descending"}
    second = order()

    by_direction = {first_sort: first, second_sort: second}
    ascending = [durations[run_id] for run_id in by_direction["ascending"]]
    descending = [durations[run_id] for run_id in by_direction["descending"]]
    assert ascending == sorted(ascending)
    assert descending == sorted(descending, reverse=True)
    assert first != second
    assert sorted(first) == sorted(durations)


def test_a_late_second_view_shows_the_whole_trace(lab_page):
    facts, answer = run_agent(lab_page, "late.ipynb")
    lab_page.run_cell(3)
    first, second = root(lab_page, 0), root(lab_page, 1)
    wait_runs(second, facts["run_count"])

    assert stream_blocks(second) == stream_blocks(first)
    assert answer in "".join(block["text"] for block in stream_blocks(second))
    assert second.locator(".nbc-stat").all_text_contents() == first.locator(".nbc-stat").all_text_contents()
    for view in (first, second):
        show_tab(view, "tree")
        view.locator('button[data-action="expand-all"]').click()
    rows_first = wait_tree_rows(first, facts["shown"])
    rows_second = wait_tree_rows(second, facts["shown"])
    assert rows_second == rows_first


EVIL = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
BIDI = "invoice\u202egnp.exe"
INJECTION = f"""
from langchain_core.runnables import RunnableLambda
EVIL = {EVIL!r}
BIDI = {BIDI!r}
model = DemoChatModel(token_delay=0, responses=[f"Answer: {{EVIL}} done"])
step = RunnableLambda(lambda x: model.invoke(x["q"]), name=f"{{BIDI}} {{EVIL}}")
out = step.invoke({{"q": f"question {{EVIL}}"}}, config={{"callbacks": [h]}})
print(json.dumps(facts()))
"""


def test_untrusted_text_is_shown_as_text_and_bidi_isolated(lab_page):
    view, facts = displayed_then_run(lab_page, "inject.ipynb", INJECTION)
    (root_id,) = facts["roots"]

    blocks = stream_blocks(view)
    assert [block["text"] for block in blocks] == [f"Answer: {EVIL} done"]

    show_tab(view, "tree")
    view.locator('button[data-action="expand-all"]').click()
    wait_tree_rows(view, facts["shown"])
    name = view.locator(f'.nbc-row[data-run-id="{root_id}"] .nbc-name')
    assert name.text_content() == f"{BIDI} {EVIL}"
    name.click()
    inspector = view.locator("aside.nbc-inspector")
    lab_page.page.wait_for_function(
        "([el, id]) => el.querySelector('aside.nbc-inspector').dataset.runId === id",
        arg=[view.element_handle(), root_id],
    )
    assert f"question {EVIL}" in (inspector.text_content() or "")

    lab_page.page.wait_for_timeout(500)
    assert lab_page.page.evaluate("() => typeof window.__pwned") == "undefined"
    injected = view.evaluate(
        """(el) => ({
            images: [...el.querySelectorAll('img')].filter((i) => i.getAttribute('src') === 'x').length,
            scripts: el.querySelectorAll('script').length,
            handlers: [...el.querySelectorAll('*')].filter((n) => n.hasAttribute('onerror')).length,
        })"""
    )
    assert injected == {"images": 0, "scripts": 0, "handlers": 0}

    isolation = name.evaluate(
        """(el) => {
            const holder = el.closest('[dir]');
            const row = el.closest('.nbc-row');
            const dur = row.querySelector('.nbc-dur').getBoundingClientRect();
            const box = el.getBoundingClientRect();
            return {
              dir: holder ? holder.getAttribute('dir') : null,
              bidi: getComputedStyle(el).unicodeBidi,
              nameBeforeDuration: box.left < dur.left,
            };
        }"""
    )
    assert isolation["dir"] == "auto"
    assert isolation["bidi"] in {"isolate", "plaintext", "isolate-override"}
    assert isolation["nameBeforeDuration"]


BUDGET_STREAM = """
import time
answer = "".join(f" w{i % 1000}" for i in range(5000))
assert len(tokenize(answer)) == 5000
model = DemoChatModel(token_delay=0.0005, first_token_delay=0, jitter=0, responses=[answer])
start = time.perf_counter()
model.invoke("go", config={"callbacks": [h]})
elapsed = time.perf_counter() - start
run = next(r for r in h.recorder.runs() if r.run_type in ("chat_model", "llm"))
print(json.dumps({"answer": answer, "elapsed": elapsed, "run_id": run.run_id,
                  "tokens": run.streamed_chunks, "run_count": h.recorder.run_count}))
"""


def test_a_fast_5000_token_stream_stays_within_the_message_budget_and_loses_nothing(lab_page):
    lab_page.new_notebook("budget.ipynb", [SETUP, BUDGET_STREAM])
    lab_page.run_cell(0)
    view = root(lab_page)
    view.wait_for()
    lab_page.page.wait_for_timeout(500)
    mark = lab_page.comm_mark()
    start_ms = lab_page.now_ms()
    lab_page.run_cell(1)
    report = last_json(lab_page, 1)
    wait_runs(view, report["run_count"])
    block = view.locator(f'section.nbc-block[data-run-id="{report["run_id"]}"]')
    lab_page.page.wait_for_function(
        "([el, n]) => el.querySelector('.nbc-seg[data-kind=\"text\"]')?.textContent.length === n",
        arg=[block.element_handle(), len(report["answer"])],
        timeout=30_000,
    )
    lab_page.page.wait_for_timeout(1000)
    end_ms = lab_page.now_ms()

    text = block.evaluate(
        """(el) => [...el.querySelectorAll('.nbc-seg[data-kind="text"]')]
                    .map((s) => s.textContent).join('')"""
    )
    assert text == report["answer"]
    assert report["tokens"] >= 5000

    traffic = lab_page.comm_messages()[mark:]
    assert traffic, "no widget messages reached the browser"
    ids = {message["comm_id"] for message in traffic}
    assert len(ids) == 1
    window_s = (end_ms - start_ms) / 1000.0
    budget = report["elapsed"] * 30 + 10
    assert len(traffic) <= budget, (
        f"{len(traffic)} widget messages for a {report['elapsed']:.2f} s stream "
        f"(observed over {window_s:.1f} s); budget {budget:.0f}"
    )


def test_screenshots_light_and_dark(lab_page, artifacts):
    facts, _ = run_agent(lab_page, "screenshot.ipynb", delay=0.02)
    view = root(lab_page)
    model_runs = [r for r in facts["runs"] if r["run_type"] in {"chat_model", "llm"}]
    view.locator(f'section.nbc-block[data-run-id="{model_runs[-1]["run_id"]}"] .nbc-block-name').click()
    view.locator(".nbc-insp-name").wait_for()
    view.scroll_into_view_if_needed()
    lab_page.page.wait_for_timeout(400)
    light = artifacts / "widget-agent.png"
    view.screenshot(path=str(light))
    show_tab(view, "tree")
    view.locator('button[data-action="expand-all"]').click()
    wait_tree_rows(view, facts["shown"])
    view.screenshot(path=str(artifacts / "widget-tree.png"))
    show_tab(view, "timing")
    view.screenshot(path=str(artifacts / "widget-timing.png"))
    show_tab(view, "stream")

    lab_page.set_theme("JupyterLab Dark")
    dark = artifacts / "widget-agent-dark.png"
    view.screenshot(path=str(dark))
    colors = view.evaluate("(el) => [getComputedStyle(el).color, getComputedStyle(el).backgroundColor]")
    lab_page.set_theme("JupyterLab Light")
    colors_light = view.evaluate("(el) => [getComputedStyle(el).color, getComputedStyle(el).backgroundColor]")
    assert colors != colors_light, "the widget does not follow the Lab theme"
    for path in (light, dark):
        assert path.stat().st_size > 10_000
    if os.environ.get("NBC_UPDATE_DOCS_SCREENSHOT"):
        DOCS.mkdir(exist_ok=True)
        shutil.copyfile(light, DOCS / "screenshot.png")


SAVED_STATE_CELLS = [
    SETUP,
    AGENT_RUN.format(delay=0.0, question=QUESTION),
    FACTS,
]


def test_a_saved_notebook_shows_the_widget_without_running_anything(lab_page, monkeypatch):
    """Executed by nbclient (which stores widget state), signed as `jupyter trust` would, opened in Lab."""
    import nbclient
    import nbformat
    from harness import REPO

    path = lab_page.write_notebook("saved.ipynb", SAVED_STATE_CELLS)
    notebook = nbformat.read(path, as_version=4)
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    client = nbclient.NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=120,
        store_widget_state=True,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    nbformat.write(notebook, path)
    lab_page.server.trust(path)
    state = notebook.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    assert state
    outputs = notebook.cells[1].outputs
    answer = json.loads(outputs[-1]["text"].strip().splitlines()[-1])["answer"]
    facts = json.loads(notebook.cells[2].outputs[-1]["text"].strip().splitlines()[-1])

    lab_page.open("saved.ipynb", wait_kernel=False)
    view = root(lab_page)
    view.wait_for(timeout=30_000)
    wait_runs(view, facts["run_count"])
    assert answer in "".join(block["text"] for block in stream_blocks(view))
    assert kernel_eval(lab_page, "print('h' in globals())") == "False\n"


FAILING_MODEL = """
model = DemoChatModel(token_delay=0, responses=["one two three four five six seven"], error_after=4)
try:
    model.invoke("go", config={"callbacks": [h]})
except Exception as exc:
    failure = str(exc)
print(json.dumps({**facts(), "failure": failure}))
"""


def test_a_model_failing_mid_stream_shows_its_partial_text_and_its_error(lab_page):
    view, facts = displayed_then_run(lab_page, "failure.ipynb", FAILING_MODEL)
    (run,) = facts["runs"]

    (block,) = stream_blocks(view)
    assert block == {"run_id": run["run_id"], "status": "error", "text": "one two three four"}
    error = view.locator(f'section.nbc-block[data-run-id="{run["run_id"]}"] .nbc-block-error')
    assert facts["failure"] in (error.text_content() or "")
    assert view.locator('.nbc-stat[data-stat="errors"]').text_content() == "1 error"
    show_tab(view, "tree")
    row = view.locator(f'.nbc-row[data-run-id="{run["run_id"]}"]')
    assert row.get_attribute("data-status") == "error"


def test_an_interrupted_cell_leaves_no_run_shown_as_running(lab_page):
    lab_page.new_notebook("interrupt.ipynb", [SETUP, AGENT_RUN.format(delay=0.1, question=QUESTION), FACTS])
    lab_page.run_cell(0)
    view = root(lab_page)
    view.wait_for()
    lab_page.start_cell(1)
    lab_page.page.wait_for_function(
        """(el) => el.dataset.running === 'true'
                   && el.querySelector('section.nbc-block[data-status="running"]') !== null""",
        arg=view.element_handle(),
        timeout=30_000,
    )
    assert lab_page.cell_running()
    lab_page.page.evaluate("() => window.jupyterapp.commands.execute('notebook:interrupt-kernel')")
    outputs = lab_page.wait_cell(1, allow_error=True)
    assert [o.get("ename") for o in outputs if o.get("output_type") == "error"] == ["KeyboardInterrupt"]
    lab_page.run_cell(2)
    facts = last_json(lab_page, 2)
    wait_runs(view, facts["run_count"])

    show_tab(view, "tree")
    view.locator('button[data-action="expand-all"]').click()
    wait_tree_rows(view, facts["shown"])
    statuses = view.evaluate(
        """(el) => ({
            rows: [...el.querySelectorAll('.nbc-row')].map((r) => r.dataset.status),
            blocks: [...el.querySelectorAll('section.nbc-block')].map((b) => b.dataset.status),
            live: el.querySelector('.nbc-live').dataset.live,
        })"""
    )
    assert "running" not in statuses["rows"] + statuses["blocks"]
    assert statuses["live"] == "false"
    assert {"error", "abandoned"} & set(statuses["rows"])


def test_selection_is_shared_with_python_both_ways(lab_page):
    facts, _ = run_agent(lab_page, "select.ipynb")
    view = root(lab_page)
    show_tab(view, "tree")
    view.locator('button[data-action="expand-all"]').click()
    wait_tree_rows(view, facts["shown"])
    tool = next(r for r in facts["runs"] if r["run_type"] == "tool")
    view.locator(f'.nbc-row[data-run-id="{tool["run_id"]}"] .nbc-name').click()
    wait_kernel_selection(lab_page, [tool["run_id"]])
    assert kernel_eval(lab_page, "print(h.widget.selected_run_id)") == f"{tool['run_id']}\n"

    (root_id,) = facts["roots"]
    kernel_eval(lab_page, f"h.widget.selected_run_id = {root_id!r}")
    lab_page.page.wait_for_function(
        "([el, id]) => el.querySelector('aside.nbc-inspector').dataset.runId === id",
        arg=[view.element_handle(), root_id],
    )
    row = view.locator(f'.nbc-row[data-run-id="{root_id}"]')
    assert row.get_attribute("aria-selected") == "true"
    assert view.locator(f'.nbc-row[data-run-id="{tool["run_id"]}"]').get_attribute("aria-selected") in {"false", None}


def test_the_widget_works_in_notebook_7(lab_page):
    lab_page.new_notebook(
        "classic.ipynb",
        [SETUP, AGENT_RUN.format(delay=0.0, question=QUESTION), FACTS],
        notebook7=True,
    )
    lab_page.run_cell(0)
    view = root(lab_page)
    view.wait_for()
    lab_page.run_cell(1)
    answer = last_json(lab_page, 1)["answer"]
    lab_page.run_cell(2)
    facts = last_json(lab_page, 2)
    wait_runs(view, facts["run_count"])
    assert answer in "".join(block["text"] for block in stream_blocks(view))
    show_tab(view, "tree")
    view.locator('button[data-action="expand-all"]').click()
    rows = wait_tree_rows(view, facts["shown"])
    assert [row["run_id"] for row in rows] == [r["run_id"] for r in facts["runs"]]


NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))
PLOTLY = "application/vnd.plotly.v1+json"


@pytest.mark.parametrize("source", NOTEBOOKS, ids=lambda path: path.stem)
def test_shipped_notebook_runs_in_lab_with_every_view_painted(lab_page, source):
    shutil.copyfile(source, lab_page.server.root / source.name)
    lab_page.open(source.name)
    lab_page.page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    lab_page.wait_kernel_idle(timeout_ms=300_000)
    cells = lab_page.page.evaluate(
        """() => window.jupyterapp.shell.currentWidget.content.widgets
              .filter((cell) => cell.model.type === 'code')
              .map((cell) => ({count: cell.model.executionCount, outputs: cell.model.outputs.toJSON()}))"""
    )
    assert cells
    assert all(cell["count"] for cell in cells), "some cells did not run"
    errors = [o for cell in cells for o in cell["outputs"] if o.get("output_type") == "error"]
    assert not errors, errors[0]
    widgets = sum(
        1 for cell in cells for o in cell["outputs"] if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
    )
    figures = sum(1 for cell in cells for o in cell["outputs"] if PLOTLY in o.get("data", {}))
    assert widgets, "the notebook shows no widget"

    lab_page.page.wait_for_function(
        "(n) => document.querySelectorAll('.nbc-root').length === n", arg=widgets, timeout=30_000
    )
    lab_page.page.wait_for_function(
        """() => [...document.querySelectorAll('.nbc-root')].every((view) =>
              view.dataset.running === 'false'
              && parseInt(view.querySelector('.nbc-stat[data-stat="runs"]').textContent, 10) > 0)""",
        timeout=30_000,
    )
    lab_page.page.wait_for_function(
        "(n) => document.querySelectorAll('.js-plotly-plot').length >= n", arg=figures, timeout=30_000
    )
    assert not lab_page.errors_since_open()


def test_tree_keyboard_navigation(lab_page):
    facts, _ = run_agent(lab_page, "keys.ipynb")
    view = root(lab_page)
    show_tab(view, "tree")
    (root_id,) = facts["roots"]
    children = [r["run_id"] for r in facts["runs"] if r["parent"] == root_id]
    view.locator('button[data-action="collapse-all"]').click()
    wait_tree_rows(view, 1)
    tree = view.locator(".nbc-tree")
    tree.focus()

    def active() -> str | None:
        return view.evaluate(
            """(el) => {
                const tree = el.querySelector('.nbc-tree');
                const id = tree.getAttribute('aria-activedescendant');
                const row = id ? el.querySelector('#' + CSS.escape(id)) : null;
                return row ? row.dataset.runId : null;
            }"""
        )

    lab_page.page.wait_for_function(
        "(el) => el.querySelector('.nbc-row[data-active=\"true\"]')", arg=view.element_handle()
    )
    assert active() == root_id
    tree.press("ArrowRight")
    rows = wait_tree_rows(view, 1 + len(children))
    assert rows[0]["expanded"] == "true"
    tree.press("ArrowDown")
    assert active() == children[0]
    tree.press("End")
    assert active() == children[-1]
    tree.press("Enter")
    lab_page.page.wait_for_function(
        "([el, id]) => el.querySelector('aside.nbc-inspector').dataset.runId === id",
        arg=[view.element_handle(), children[-1]],
    )
    tree.press("Home")
    assert active() == root_id
    tree.press("ArrowLeft")
    wait_tree_rows(view, 1)


HIDDEN_AND_ORPHAN = """
import uuid
from langchain_core.runnables import RunnableLambda

leaf = RunnableLambda(lambda x: x * 2, name="leaf")
plumbing = RunnableLambda(lambda x, config: leaf.invoke(x, config), name="plumbing").with_config(
    tags=["langsmith:hidden"]
)
outer = RunnableLambda(lambda x, config: plumbing.invoke(x, config), name="outer")
outer.invoke(1, config={"callbacks": [h]})
lost = uuid.uuid4()
h.on_chain_start({"name": "lost"}, {"x": 1}, run_id=lost, parent_run_id=uuid.uuid4(), name="lost")
h.on_chain_end({"y": 2}, run_id=lost)
ids = {r.name: r.run_id for r in h.recorder.runs()}
print(json.dumps({"run_count": h.recorder.run_count, "ids": ids}))
"""


def test_hidden_runs_stay_out_of_the_tree_until_asked_for_and_orphans_show_as_roots(lab_page):
    lab_page.new_notebook("hidden.ipynb", [SETUP, HIDDEN_AND_ORPHAN])
    lab_page.run_cell(0)
    view = root(lab_page)
    view.wait_for()
    lab_page.run_cell(1)
    report = last_json(lab_page, 1)
    ids = report["ids"]
    wait_runs(view, report["run_count"])
    show_tab(view, "tree")
    view.locator('button[data-action="expand-all"]').click()

    # LangChain passes tags on to child runs, so the hidden run's child is hidden too.
    rows = wait_tree_rows(view, 2)
    assert [(row["name"], row["depth"], row["expanded"]) for row in rows] == [("outer", 0, None), ("lost", 0, None)]
    lost = view.locator(f'.nbc-row[data-run-id="{ids["lost"]}"]')
    assert lost.get_attribute("data-orphan") == "true"
    assert lost.locator('.nbc-badge[data-badge="orphan"]').count() == 1

    view.locator('input[data-action="show-hidden"]').check()
    rows = wait_tree_rows(view, 4)
    assert [(row["name"], row["depth"]) for row in rows] == [
        ("outer", 0),
        ("plumbing", 1),
        ("leaf", 2),
        ("lost", 0),
    ]
    for name in ("plumbing", "leaf"):
        row = view.locator(f'.nbc-row[data-run-id="{ids[name]}"]')
        assert row.get_attribute("data-hidden-run") == "true"
        assert row.locator('.nbc-badge[data-badge="hidden"]').count() == 1
    assert view.locator(f'.nbc-row[data-run-id="{ids["outer"]}"]').get_attribute("data-hidden-run") is None


BIG_PAYLOAD = """
from langchain_core.tools import tool

@tool
def dump(size: int) -> str:
    \"\"\"Return a very large text.\"\"\"
    return "x" * size

dump.invoke({"size": 5_000_000}, config={"callbacks": [h]})
tool_run = h.recorder.runs()[0]
print(json.dumps({"run_count": h.recorder.run_count, "run_id": tool_run.run_id}))
"""


def test_a_5_mb_tool_output_reaches_neither_the_wire_nor_the_page_whole(lab_page):
    lab_page.new_notebook("payload.ipynb", [SETUP, BIG_PAYLOAD])
    lab_page.run_cell(0)
    view = root(lab_page)
    view.wait_for()
    mark = lab_page.comm_mark()
    lab_page.run_cell(1)
    report = last_json(lab_page, 1)
    wait_runs(view, report["run_count"])
    show_tab(view, "tree")
    view.locator(f'.nbc-row[data-run-id="{report["run_id"]}"] .nbc-name').click()
    outputs = view.locator('aside.nbc-inspector details.nbc-section[data-section="outputs"]')
    outputs.wait_for()
    unfold(outputs)
    shown = outputs.inner_text()
    assert "xxxxxxxxxx" in shown
    assert "…" in shown
    assert len(view.evaluate("(el) => el.textContent")) < 100_000
    lab_page.page.wait_for_timeout(500)
    sent = sum(message["size"] for message in lab_page.comm_messages()[mark:])
    assert 0 < sent < 500_000
