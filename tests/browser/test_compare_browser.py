"""Compare from the widget, in a real JupyterLab and Chromium: the demo agent run twice (Paris, then Paris and
London), the two roots ctrl-clicked, Compare clicked, and the kernel's aligned rows shown with the extra tool call on
one side only; ``h.compare_selected()`` in the next cell agrees with what the page shows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from test_widget_browser import AGENT_RUN, SETUP, last_json, root, show_tab, wait_runs

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("widget_bundle")]

ROOTS = """
frame = h.runs_dataframe()
print(json.dumps({"run_count": len(frame), "roots": list(frame.loc[frame["parent_run_id"].isna(), "run_id"])}))
"""
COMPARED = """
result = h.compare_selected()
only_in = [x if isinstance(x, str) else None for x in result["only_in"]]
print(json.dumps({"paths": list(result["path"]), "only_in": only_in,
                  "a": result.iloc[0]["run_id_a"], "b": result.iloc[0]["run_id_b"]}))
"""


def test_ctrl_click_two_roots_then_compare_shows_the_extra_tool_call_on_one_side(lab_page, artifacts: Path):
    cells = [
        SETUP,
        AGENT_RUN.format(delay=0.0, question="What's the weather in Paris?"),
        AGENT_RUN.format(delay=0.0, question="What's the weather in Paris and London?"),
        ROOTS,
        COMPARED,
    ]
    lab_page.new_notebook("compare.ipynb", cells)
    lab_page.run_cell(0)
    view = root(lab_page)
    view.wait_for()
    lab_page.run_cells([1, 2, 3])
    facts = last_json(lab_page, 3)
    first, second = facts["roots"]
    wait_runs(view, facts["run_count"])
    show_tab(view, "tree")

    button = view.locator('button[data-action="compare"]')
    assert button.is_hidden()
    view.locator(f'.nbc-row[data-run-id="{first}"] .nbc-name').click()
    view.locator(f'.nbc-row[data-run-id="{second}"] .nbc-name').click(modifiers=["ControlOrMeta"])
    button.wait_for(state="visible")
    assert button.get_attribute("aria-label") == "compare the two selected runs"
    button.focus()
    lab_page.page.keyboard.press("Enter")  # keyboard reachable
    panel = view.locator('.nbc-compare[data-state="ready"]')
    panel.wait_for()
    assert view.get_attribute("data-comparing") == "true"

    rows = view.evaluate(
        """(el) => [...el.querySelectorAll('.nbc-cmp-row')].map((row) => ({
            depth: Number(row.dataset.depth), only: row.dataset.only || null,
            a: row.querySelector('[data-side="a"] .nbc-name')?.textContent ?? null,
            b: row.querySelector('[data-side="b"] .nbc-name')?.textContent ?? null,
            bars: row.querySelectorAll('.nbc-wf-bar').length }))"""
    )
    one_sided = [row for row in rows if row["only"]]
    assert one_sided == [{"depth": 2, "only": "b", "a": None, "b": "get_weather", "bars": 1}]
    assert rows[0] == {"depth": 0, "only": None, "a": "LangGraph", "b": "LangGraph", "bars": 2}
    assert all(row["a"] == row["b"] for row in rows if not row["only"])
    assert view.locator(".nbc-cmp-counts").text_content() == f"{len(rows)} rows · 0 only in A · 1 only in B"

    view.locator('.nbc-cmp-row[data-only="b"]').click()
    outputs = view.locator(".nbc-cmp-detail .nbc-cmp-pre").all_text_contents()
    assert outputs[0] == "not in A"
    assert "London" in outputs[1]
    answer = view.locator('.nbc-cmp-row[data-marks~="output"]').last
    answer.click()
    outputs = view.locator(".nbc-cmp-detail .nbc-cmp-pre").all_text_contents()
    assert "London" not in outputs[0]
    assert "London" in outputs[1]
    view.screenshot(path=str(artifacts / "widget-compare.png"))
    lab_page.set_theme("JupyterLab Dark")
    view.screenshot(path=str(artifacts / "widget-compare-dark.png"))
    lab_page.set_theme("JupyterLab Light")

    lab_page.run_cell(4)  # the same comparison, from Python
    compared = last_json(lab_page, 4)
    assert (compared["a"], compared["b"]) == (first, second)
    assert len(compared["paths"]) == len(rows)
    assert [only for only in compared["only_in"] if only] == ["b"]

    view.locator('button[data-action="close-compare"]').click()
    view.locator(".nbc-compare").wait_for(state="hidden")
    assert view.get_attribute("data-comparing") == "false"
    assert view.locator(f'.nbc-row[data-run-id="{first}"]').is_visible()
