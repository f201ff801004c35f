"""Selection to pandas: the widget's ``selected_run_ids`` trait, ``h.select`` and ``h.selection``, on a real agent."""

from __future__ import annotations

from typing import Any

import pytest

from nbcallbacks import NotebookHandler
from nbcallbacks.demo import agent


@pytest.fixture
def handler(handler: NotebookHandler) -> NotebookHandler:
    """The shared handler (conftest.py: its widget is closed afterwards) after one agent run."""
    agent(token_delay=0).invoke({"messages": [("user", "What's the weather in Paris?")]}, {"callbacks": [handler]})
    return handler


def test_a_multi_selection_from_the_front_end_is_the_selection_in_pandas(handler: NotebookHandler) -> None:
    runs = handler.runs_dataframe()
    tools = list(runs.loc[runs["run_type"] == "tool", "run_id"])
    models = list(runs.loc[runs["run_type"] == "chat_model", "run_id"])
    seen: list[list[str]] = []
    handler.widget.observe(lambda change: seen.append(change["new"]), "selected_run_ids")
    # What one front-end update message carries after a ctrl-click: both traits, consistent.
    handler.widget.set_state({"selected_run_ids": [models[0], *tools], "selected_run_id": tools[-1]})
    assert seen == [[models[0], *tools]]
    picked = handler.selection()
    assert list(picked["run_id"]) == [models[0], *tools]  # rows in start order, all columns
    assert list(picked.columns) == list(runs.columns)
    assert handler.widget.selected_run_id == tools[-1]


def test_select_from_python_keeps_both_traits_consistent(handler: NotebookHandler) -> None:
    ids = list(handler.runs_dataframe()["run_id"])
    handler.select(ids[1:3])
    assert handler.widget.selected_run_ids == ids[1:3]
    assert handler.widget.selected_run_id == ids[2]
    handler.widget.selected_run_id = ids[0]  # the old single-selection API still works
    assert handler.widget.selected_run_ids == [ids[0]]
    handler.widget.selected_run_ids = [ids[3], ids[4]]
    assert handler.widget.selected_run_id == ids[4]
    handler.select(ids[4])
    assert handler.widget.selected_run_ids == [ids[4]]
    handler.select([])
    assert handler.widget.selected_run_ids == []
    assert handler.widget.selected_run_id == ""
    assert handler.selection().empty


def test_unknown_run_ids_are_refused_and_a_handler_never_shown_has_no_selection() -> None:
    h = NotebookHandler()
    assert h.selection().empty
    with pytest.raises(ValueError, match="unknown run ids: nope"):
        h.select(["nope"])
    h.widget.close()


def test_state_sent_to_the_front_end_holds_both_traits(handler: NotebookHandler) -> None:
    ids = list(handler.runs_dataframe()["run_id"])
    handler.select(ids[:2])
    state: dict[str, Any] = handler.widget.get_state(["selected_run_id", "selected_run_ids"])
    assert state == {"selected_run_id": ids[1], "selected_run_ids": ids[:2]}
