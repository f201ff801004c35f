"""Finding one's way in a trace, in a real JupyterLab and Chromium: the filter box on 10,001 runs, errors only, key
runs on the demo LangGraph agent, the waterfall growing live, and a selection made by clicks read back in pandas.

Driven through the documented DOM hooks (``js/src/index.ts``); the kernel's own view of the runs is printed as
JSON by a cell and compared with what the page shows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from test_widget_browser import (
    AGENT_RUN,
    FACTS,
    QUESTION,
    SETUP,
    last_json,
    root,
    show_tab,
    wait_kernel_selection,
    wait_runs,
    wait_tree_rows,
)

if TYPE_CHECKING:
    from pathlib import Path

    from harness import LabPage

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("widget_bundle")]

EVIL = '<img src=x onerror="window.__pwned=1">'

BIG_TRACE = f"""
from langchain_core.runnables import RunnableLambda
EVIL = {EVIL!r}
step = RunnableLambda(lambda x: x + 1, name="step")
needle = RunnableLambda(lambda x: x, name=f"needle {{EVIL}}")

def stage_fn(i, config):
    for j in range(99):
        (needle if (i, j) == (73, 41) else step).invoke(j, config)
    return i

stage = RunnableLambda(stage_fn, name="stage")
pipeline = RunnableLambda(lambda n, config: [stage.invoke(i, config) for i in range(n)], name="pipeline")
pipeline.invoke(100, config={{"callbacks": [h]}})
runs = h.recorder.runs()
found = next(r for r in runs if r.name.startswith("needle"))
by_id = {{r.run_id: r for r in runs}}
print(json.dumps({{"run_count": len(runs), "needle": found.run_id, "stage": found.parent_run_id,
                  "root": by_id[found.parent_run_id].parent_run_id}}))
"""


def typed_query(page: LabPage, view: Any, text: str) -> None:
    """Focus the widget, press ``/`` and type ``text`` into the filter box, as a user would."""
    view.locator(".nbc-panel:not([hidden]) .nbc-scroll").first.focus()
    page.page.keyboard.press("/")
    box = view.locator('input[type="search"][data-action="filter"]')
    assert view.evaluate("(el) => document.activeElement === el.querySelector('input[type=search]')")
    box.press_sequentially(text, delay=20)


def test_typing_a_query_narrows_10001_runs_to_matches_and_ancestors_and_keeps_untrusted_text(lab_page, artifacts: Path):
    lab_page.new_notebook("filter.ipynb", [SETUP, BIG_TRACE])
    lab_page.run_cell(0)
    view = root(lab_page)
    view.wait_for()
    lab_page.run_cell(1)
    facts = last_json(lab_page, 1)
    assert facts["run_count"] == 10_001
    wait_runs(view, 10_001)
    assert view.get_attribute("data-tab") == "tree"  # no model output: it opens on the tree

    typed_query(lab_page, view, "needle")
    lab_page.page.wait_for_function(
        "(el) => el.querySelector('.nbc-match-count').textContent === '1 of 10,001 runs'",
        arg=view.element_handle(),
    )
    rows = wait_tree_rows(view, 3)
    assert [row["run_id"] for row in rows] == [facts["root"], facts["stage"], facts["needle"]]
    matched = view.locator(f'.nbc-row[data-run-id="{facts["needle"]}"]')
    assert matched.get_attribute("data-match") == "true"
    assert view.locator(f'.nbc-row[data-run-id="{facts["root"]}"]').get_attribute("data-match") == "context"
    name = matched.locator(".nbc-name")
    assert name.text_content() == f"needle {EVIL}"
    assert name.locator("mark.nbc-hl").all_text_contents() == ["needle"]

    box = view.locator('input[type="search"]')
    box.press("End")
    box.press_sequentially(" img", delay=20)  # both terms: one highlight inside the untrusted markup
    lab_page.page.wait_for_function(
        "(el) => el.querySelectorAll('.nbc-row mark.nbc-hl').length === 2", arg=view.element_handle()
    )
    assert name.text_content() == f"needle {EVIL}"
    assert view.evaluate("(el) => el.querySelectorAll('img').length") == 0
    assert lab_page.page.evaluate("() => typeof window.__pwned") == "undefined"
    view.screenshot(path=str(artifacts / "widget-filter.png"))
    lab_page.set_theme("JupyterLab Dark")
    view.screenshot(path=str(artifacts / "widget-filter-dark.png"))
    lab_page.set_theme("JupyterLab Light")

    view.locator('input[type="search"]').press("Escape")
    lab_page.page.wait_for_function(
        "(el) => el.dataset.filtered === 'false' && el.querySelectorAll('.nbc-row').length > 3",
        arg=view.element_handle(),
    )
    show_tab(view, "timing")
    typed_query(lab_page, view, "stage")
    lab_page.page.wait_for_function(
        "(el) => el.querySelector('.nbc-match-count').textContent === '100 of 10,001 runs'",
        arg=view.element_handle(),
    )
    names = view.evaluate(
        "(el) => [...el.querySelectorAll('.nbc-trow[data-run-id] [data-col=name]')].map(c => c.textContent)"
    )
    assert names
    assert set(names) == {"stage"}


FAILING_TOOL = """
from langchain_core.tools import tool

@tool
def flaky(city: str) -> str:
    \"\"\"Fails.\"\"\"
    raise ValueError("bad input")

try:
    flaky.invoke({"city": "Paris"}, config={"callbacks": [h]})
except ValueError:
    pass
frame = h.runs_dataframe()
key = frame[frame["key"] & ~frame["hidden"]]
print(json.dumps({"run_count": len(frame), "failed": list(frame.loc[frame["status"] == "error", "run_id"]),
                  "key": [[row.run_id, row.name] for row in key.itertuples()]}))
"""


def test_errors_only_and_key_runs_on_the_demo_agent(lab_page, artifacts: Path):
    lab_page.new_notebook("nav.ipynb", [SETUP, AGENT_RUN.format(delay=0.0, question=QUESTION), FAILING_TOOL])
    lab_page.run_cell(0)
    view = root(lab_page)
    view.wait_for()
    lab_page.run_cell(1)
    lab_page.run_cell(2)
    facts = last_json(lab_page, 2)
    wait_runs(view, facts["run_count"])
    show_tab(view, "tree")
    view.locator('button[data-action="expand-all"]').click()

    view.locator('button[data-action="key-runs"]').click()
    rows = wait_tree_rows(view, len(facts["key"]))
    assert [row["name"] for row in rows] == [name for _, name in facts["key"]]
    names = [row["name"] for row in rows]
    assert names[:7] == ["LangGraph", "agent", "DemoChatModel", "tools", "get_weather", "agent", "DemoChatModel"]
    assert "tools_condition" not in names
    assert [row["depth"] for row in rows[:7]] == [0, 1, 2, 1, 2, 1, 2]
    view.locator(f'.nbc-row[data-run-id="{rows[2]["run_id"]}"] .nbc-name').click()
    view.screenshot(path=str(artifacts / "widget-key-runs.png"))
    lab_page.set_theme("JupyterLab Dark")
    view.screenshot(path=str(artifacts / "widget-key-runs-dark.png"))
    lab_page.set_theme("JupyterLab Light")

    view.locator('.nbc-stat[data-stat="errors"]').click()  # the header's error count turns errors only on
    lab_page.page.wait_for_function(
        "(el) => el.querySelector('button[data-action=\"errors-only\"]').getAttribute('aria-pressed') === 'true'",
        arg=view.element_handle(),
    )
    rows = wait_tree_rows(view, 1)
    assert [row["run_id"] for row in rows] == facts["failed"]
    view.locator('button[data-action="next-error"]').click()
    lab_page.page.wait_for_function(
        "([el, id]) => el.querySelector('aside.nbc-inspector').dataset.runId === id",
        arg=[view.element_handle(), facts["failed"][0]],
    )
    error_text = view.locator(".nbc-error-text").text_content()
    assert error_text == "ValueError: bad input"  # the type once


def test_waterfall_bars_are_on_every_row_and_grow_while_the_run_runs(lab_page, artifacts: Path):
    lab_page.new_notebook("waterfall.ipynb", [SETUP, AGENT_RUN.format(delay=0.08, question=QUESTION), "h"])
    lab_page.run_cell(0)
    view = root(lab_page)
    view.wait_for()
    show_tab(view, "tree")
    view.locator('button[data-action="expand-all"]').click()
    probe = """(el) => [...el.querySelectorAll('.nbc-row')].map((row) => {
        const bar = row.querySelector('[data-waterfall]');
        return { id: row.dataset.runId, type: bar && bar.dataset.waterfall,
                 live: bar && bar.dataset.live === 'true', width: bar ? parseFloat(bar.style.width) : -1,
                 tick: !!bar && !bar.querySelector('.nbc-wf-tick').hidden };
    })"""
    samples: list[list[dict[str, Any]]] = []
    lab_page.start_cell(1)
    while lab_page.cell_running():
        samples.append(view.evaluate(probe))
        lab_page.page.wait_for_timeout(300)
    lab_page.wait_cell(1)
    wait_runs(view, int(view.evaluate("(el) => el.querySelectorAll('.nbc-row').length")))
    final = view.evaluate(probe)
    view.screenshot(path=str(artifacts / "widget-waterfall.png"))

    assert all(row["type"] for sample in [*samples, final] for row in sample), "a row without a waterfall bar"
    widths: dict[str, list[float]] = {}
    for sample in samples:
        for row in sample:
            if row["live"]:
                widths.setdefault(row["id"], []).append(row["width"])
    grown = [run_id for run_id, seen in widths.items() if len(set(seen)) >= 2 and seen[-1] > seen[0]]
    assert grown, f"no running bar grew: {widths}"
    assert not any(row["live"] for row in final)
    assert any(row["tick"] and row["type"] == "chat_model" for row in final), "no TTFT tick on a model bar"


SELECTION = "print(json.dumps(list(h.selection()['run_id'])))"


def test_click_ctrl_click_and_shift_click_then_the_selection_in_pandas(lab_page):
    lab_page.new_notebook("selection.ipynb", [SETUP, AGENT_RUN.format(delay=0.0, question=QUESTION), FACTS, SELECTION])
    lab_page.run_cell(0)
    view = root(lab_page)
    view.wait_for()
    lab_page.run_cell(1)
    lab_page.run_cell(2)
    facts = last_json(lab_page, 2)
    wait_runs(view, facts["run_count"])
    show_tab(view, "tree")
    view.locator('button[data-action="expand-all"]').click()
    order = [row["run_id"] for row in wait_tree_rows(view, facts["shown"])]
    assert len(order) >= 6

    def row(run_id: str) -> Any:
        return view.locator(f'.nbc-row[data-run-id="{run_id}"] .nbc-name')

    row(order[0]).click()
    row(order[2]).click(modifiers=["ControlOrMeta"])
    row(order[5]).click(modifiers=["Shift"])
    expected = order[2:6]
    lab_page.page.wait_for_function(
        "([el, n]) => el.querySelectorAll('.nbc-row[aria-selected=\"true\"]').length === n",
        arg=[view.element_handle(), len(expected)],
    )
    wait_kernel_selection(lab_page, expected)
    lab_page.run_cell(3)
    selected = last_json(lab_page, 3)  # rows of runs_dataframe(), in start order
    assert sorted(selected) == sorted(expected)
    assert len(selected) == len(expected)
