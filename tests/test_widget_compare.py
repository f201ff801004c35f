"""Compare from the widget: two runs picked in the front end, answered by the kernel with aligned rows.

The front end sends ``{"type": "compare", "a", "b", "request"}``; the widget answers with a ``comparison`` message
(``nbcallbacks.compare_wire``) built by ``nbcallbacks.comparison.compare``. ``h.compare_selected()`` is the same
comparison as a DataFrame.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pytest
from langchain_core.runnables import RunnableLambda

from nbcallbacks import NotebookHandler
from nbcallbacks.compare_wire import comparison_message
from nbcallbacks.comparison import COMPARE_COLUMNS, compare
from nbcallbacks.demo import DEMO_MODEL_NAME, agent

if TYPE_CHECKING:
    from collections.abc import Callable

    from widget_capture import CapturingWidget

PARIS = "What's the weather in Paris?"
PARIS_LONDON = "What's the weather in Paris and London?"


def two_runs(handler: NotebookHandler) -> tuple[str, str]:
    """Run the demo agent twice on one handler (one tool call, then two); the two root run ids."""
    for question in (PARIS, PARIS_LONDON):
        agent(token_delay=0).invoke({"messages": [("user", question)]}, config={"callbacks": [handler]})
    frame = handler.runs_dataframe()
    roots = list(frame.loc[frame["parent_run_id"].isna(), "run_id"])
    assert len(roots) == 2
    return roots[0], roots[1]


def comparisons(widget: CapturingWidget) -> list[dict[str, Any]]:
    return [m for m in widget.sent if m["type"] == "comparison"]


def test_the_widget_answers_a_compare_message_with_the_aligned_rows(make_widget: Callable[..., Any]) -> None:
    h = NotebookHandler(prices={DEMO_MODEL_NAME: (1.0, 2.0)})
    a, b = two_runs(h)
    widget: CapturingWidget = make_widget(h.recorder, pricing=h.pricer.run_cost)  # as h.widget is made
    widget._on_custom_msg({"type": "compare", "a": a, "b": b, "request": "v1-1"}, [])  # as the comm delivers it

    (message,) = comparisons(widget)  # sent through wire_bytes: JSON with no NaN (missing values are null)
    assert message["request"] == "v1-1"
    assert (message["a"], message["b"]) == (a, b)
    assert message["labels"] == ["LangGraph", "LangGraph"]
    assert message["inputs"] == [PARIS, PARIS_LONDON]  # the questions: what tells the two apart
    assert "error" not in message
    assert not message["truncated"]
    assert message["note"] == ""

    expected = compare((h.runs_dataframe(), a), (h.runs_dataframe(), b), labels=("a", "b"))
    rows = message["rows"]
    assert message["total_rows"] == len(rows) == len(expected)
    assert [r["path"] for r in rows] == list(expected["path"])
    assert set(rows[0]) == {*COMPARE_COLUMNS, "start_s_a", "start_s_b"}

    one_sided = [r for r in rows if r["only_in"] is not None]
    assert [(r["path"], r["run_type"], r["only_in"]) for r in one_sided] == [
        ("LangGraph/tools/get_weather#2", "tool", "b")
    ]
    extra = one_sided[0]
    assert extra["run_id_a"] is None
    assert extra["status_a"] is None
    assert extra["duration_s_a"] is None
    assert extra["start_s_a"] is None
    assert extra["duration_delta_s"] is None
    assert extra["status_b"] == "ok"
    assert extra["start_s_b"] > 0

    root = rows[0]
    assert (root["run_id_a"], root["run_id_b"], root["depth"], root["only_in"]) == (a, b, 0, None)
    assert root["start_s_a"] == root["start_s_b"] == 0  # each side's times count from its own root
    for row in rows:
        for side in ("a", "b"):
            if row[f"run_id_{side}"] is not None:
                assert row[f"start_s_{side}"] >= 0
                assert row[f"duration_s_{side}"] >= 0
        if row["only_in"] is None:
            assert math.isclose(row["duration_delta_s"], row["duration_s_b"] - row["duration_s_a"], abs_tol=1e-9)

    models = [r for r in rows if r["run_type"] == "chat_model"]
    assert models
    answer = models[-1]  # the final answer: one city against two
    assert "London" in answer["output_b"]
    assert "London" not in answer["output_a"]
    assert answer["tokens_delta"] == answer["total_tokens_b"] - answer["total_tokens_a"] != 0
    assert answer["cost_delta_usd"] == pytest.approx(answer["cost_usd_b"] - answer["cost_usd_a"])
    assert all(isinstance(r["cost_usd_a"], float) for r in models)  # priced: numbers, not "unknown"


def test_bad_requests_are_answered_with_an_error_and_the_kernel_goes_on(make_widget: Callable[..., Any]) -> None:
    h = NotebookHandler()
    a, _ = two_runs(h)
    widget: CapturingWidget = make_widget(h.recorder)
    widget._on_custom_msg({"type": "compare", "a": a, "b": "no-such-run", "request": "r"}, [])
    widget._on_custom_msg({"type": "compare", "a": a, "b": 7}, [])  # not a string: no run id
    first, second = comparisons(widget)
    assert first["request"] == "r"
    assert first["rows"] == []
    assert "no-such-run" in first["error"]
    assert second["request"] == ""
    assert second["error"] == "compare needs two run ids"
    assert h.recorder.handler_error_count == 0


def test_the_rows_sent_are_bounded_with_a_note() -> None:
    h = NotebookHandler()
    a, b = two_runs(h)
    message = comparison_message(h.recorder, a, b, max_rows=4)
    assert len(message["rows"]) == 4
    assert message["total_rows"] == len(compare((h.runs_dataframe(), a), (h.runs_dataframe(), b)))
    assert message["truncated"]
    assert "first 4 of" in message["note"]
    same = comparison_message(h.recorder, a, a)
    assert all(r["only_in"] is None for r in same["rows"])
    assert all(r["duration_delta_s"] == 0 for r in same["rows"])


def test_compare_selected_compares_the_two_runs_selected_in_the_widget(handler: NotebookHandler) -> None:
    a, b = two_runs(handler)
    with pytest.raises(ValueError, match="select exactly two runs"):
        handler.compare_selected()
    handler.select([b, a])  # selection order is the comparison's order
    result = handler.compare_selected()
    assert (result.iloc[0]["run_id_a"], result.iloc[0]["run_id_b"]) == (b, a)
    one_sided = result[result["only_in"].notna()]
    assert list(one_sided["only_in"]) == ["a"]
    assert list(one_sided["path"]) == ["LangGraph/tools/get_weather#2"]


def test_each_side_says_what_it_was_asked() -> None:
    h = NotebookHandler()
    step = RunnableLambda(lambda x: x, name="step")
    step.invoke({"x": 1, "y": "two"}, config={"callbacks": [h]})
    step.invoke("just   text\n", config={"callbacks": [h]})
    a, b = (run.run_id for run in h.recorder.runs())
    message = comparison_message(h.recorder, a, b)
    assert message["inputs"] == ['{"x": 1, "y": "two"}', "just text"]  # JSON, or the one text on one line
    assert [(r["path"], r["only_in"]) for r in message["rows"]] == [("step", None)]
