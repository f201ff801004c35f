"""compare(a, b): runs aligned by tree path, deltas, and the static side-by-side view."""

from __future__ import annotations

from html.parser import HTMLParser

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nbcallbacks import NotebookHandler, demo
from nbcallbacks.comparison import COMPARE_COLUMNS, Comparison, compare, output_text
from nbcallbacks.cost import Pricer, add_cost_columns

PRICES = Pricer({demo.DEMO_MODEL_NAME: (1.0, 2.0)})


def run_agent(question: str, handler: NotebookHandler | None = None) -> NotebookHandler:
    handler = handler if handler is not None else NotebookHandler()
    demo.agent(token_delay=0).invoke({"messages": [("user", question)]}, config={"callbacks": [handler]})
    return handler


def test_runs_that_differ_by_one_tool_call():
    a = run_agent("What's the weather in Paris?")
    b = run_agent("What's the weather in Paris and London?")
    result = compare(a, b)
    assert isinstance(result, Comparison)
    assert isinstance(result, pd.DataFrame)
    assert list(result.columns) == list(COMPARE_COLUMNS)
    assert {c: str(t) for c, t in result.dtypes.items()} == COMPARE_COLUMNS

    only = result[result["only_in"].notna()]
    assert only[["path", "run_type", "only_in"]].to_dict("records") == [
        {"path": "LangGraph/tools/get_weather#2", "run_type": "tool", "only_in": "b"}
    ]
    assert pd.isna(only.iloc[0]["run_id_a"])
    assert only.iloc[0]["status_b"] == "ok"
    assert pd.isna(only.iloc[0]["duration_delta_s"])

    # Everything else pairs up, in tree order, including the steps after the extra call.
    paired = result[result["only_in"].isna()]
    assert len(paired) == len(a.runs_dataframe())
    assert len(result) == len(b.runs_dataframe())
    assert list(paired["path"]) == [
        "LangGraph",
        "LangGraph/agent",
        "LangGraph/agent/DemoChatModel",
        "LangGraph/agent/tools_condition",
        "LangGraph/tools",
        "LangGraph/tools/get_weather",
        "LangGraph/agent#2",
        "LangGraph/agent#2/DemoChatModel",
        "LangGraph/agent#2/tools_condition",
    ]
    # The model's answers differ (one city vs two), so do its token counts.
    answer = paired[paired["path"] == "LangGraph/agent#2/DemoChatModel"].iloc[0]
    assert "Paris" in answer["output_a"]
    assert "London" in answer["output_b"]
    assert "London" not in answer["output_a"]
    assert answer["tokens_delta"] == answer["total_tokens_b"] - answer["total_tokens_a"] != 0


def test_identical_runs_have_no_one_sided_rows_and_consistent_deltas():
    handler = NotebookHandler()
    run_agent("What's the weather in Paris?", handler)
    run_agent("What's the weather in Paris?", handler)
    frame = add_cost_columns(handler.runs_dataframe(), PRICES)
    roots = frame[frame["parent_run_id"].isna()]["run_id"].tolist()
    assert len(roots) == 2

    result = compare((frame, roots[0]), (frame, roots[1]))
    assert result["only_in"].isna().all()
    assert len(result) == len(frame) // 2
    by_id = frame.set_index("run_id")
    for row in result.to_dict("records"):
        run_a, run_b = by_id.loc[row["run_id_a"]], by_id.loc[row["run_id_b"]]
        assert run_a["name"] == run_b["name"] == row["name"]
        assert row["duration_s_a"] == run_a["duration_s"]
        assert row["duration_delta_s"] == pytest.approx(run_b["duration_s"] - run_a["duration_s"])
        if row["run_type"] == "chat_model":
            assert row["total_tokens_a"] == run_a["total_tokens"]
            assert row["tokens_delta"] == 0
            assert row["cost_usd_a"] == run_a["cost_usd"] > 0
            assert row["cost_delta_usd"] == 0
        else:
            assert pd.isna(row["tokens_delta"])
            assert pd.isna(row["cost_delta_usd"])
        assert row["output_a"] == row["output_b"]  # message ids differ, the text compared does not

    # The handler form takes the last root run; the same run on both sides compares equal.
    last = compare(handler, (handler, roots[1][:-4]))
    assert set(last["run_id_a"]) == set(last["run_id_b"])
    assert (last["duration_delta_s"] == 0).all()


def test_a_failed_step_pairs_with_its_successful_twin_and_is_marked():
    a = run_agent("What is 6 / 3?")
    b = run_agent("What is 6 / 0?")
    result = compare(a, b)
    assert result["only_in"].isna().all()
    tool = result[result["run_type"] == "tool"].iloc[0]
    assert (tool["status_a"], tool["status_b"]) == ("ok", "error")
    view = result.to_view_html()
    assert '<span class="nbc-cmp-mark">status</span>' in view


def test_dataframes_compare_whole_traces():
    a = run_agent("What's the weather in Paris?")
    run_agent("What is 2 + 2?", a)
    b = run_agent("What's the weather in Paris?")
    run_agent("What is 2 + 3?", b)
    result = compare(a.runs_dataframe(), b.runs_dataframe())
    assert result["only_in"].isna().all()
    assert result["path"].str.startswith("LangGraph#2").sum() == len(result) // 2


def test_view_is_static_escaped_html():
    hostile = "<script>alert('x')</script> & <img src=x onerror=alert(1)>"
    a = run_agent(f"What's the weather in Paris? {hostile}")
    b = run_agent(f"What's the weather in Paris and London? {hostile}")
    result = compare(a, b, labels=("<b>first</b>", "second"))
    view = result._repr_html_()
    assert "<script" not in view
    assert "<img" not in view
    assert "&lt;script&gt;" in view
    assert "&lt;b&gt;first&lt;/b&gt;" in view
    assert view.count("<details") == len(result)
    assert view.count("nbc-cmp-pair nbc-cmp-only-b") == 1
    assert "<ins>" in view  # the word diff of the model's answers
    assert "price unknown" in view
    tags = _tags(view)
    assert {tag for tag, _ in tags} <= {"div", "span", "style", "details", "summary", "h4", "pre", "b", "del", "ins"}
    assert not [name for _, attrs in tags for name, _ in attrs if name.startswith("on") or name in {"src", "href"}]


def _tags(markup: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    found: list[tuple[str, list[tuple[str, str | None]]]] = []

    class Parser(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.append((tag, attrs))

    Parser().feed(markup)
    return found


def test_derived_frames_are_plain_dataframes():
    a = run_agent("What's the weather in Paris?")
    result = compare(a, a)
    assert type(result.head(2)) is pd.DataFrame
    assert type(result[result["run_type"] == "tool"]) is pd.DataFrame


def test_empty_sides():
    empty = NotebookHandler()
    result = compare(empty, empty)
    assert result.empty
    assert "No runs to compare" in result.to_view_html()
    one = run_agent("What's the weather in Paris?")
    assert (compare(empty, one)["only_in"] == "b").all()


def test_invalid_sides_say_what_is_wrong():
    h = run_agent("What's the weather in Paris?")
    with pytest.raises(TypeError, match="NotebookHandler"):
        compare("nope", h)
    with pytest.raises(TypeError, match="tuple side"):
        compare((h, "x", "y"), h)
    with pytest.raises(KeyError, match="no run with id"):
        compare((h, "does-not-exist"), h)
    with pytest.raises(KeyError, match="ambiguous"):
        compare((h, ""), h)
    with pytest.raises(ValueError, match="runs DataFrame"):
        compare(h.to_dataframe(), h)


def test_output_text():
    assert output_text("plain") == "plain"
    assert output_text(None) == ""
    assert output_text({"type": "ai", "content": "hi", "id": "run-1"}) == "hi"
    assert output_text({"output": "x"}) == "x"
    assert output_text({"a": 1, "b": [1, {"id": 2, "c": 3}]}) == '{"a": 1, "b": [1, {"c": 3}]}'


def test_package_exports_compare_lazily():
    import subprocess
    import sys

    code = (
        "import sys, nbcallbacks; assert 'pandas' not in sys.modules;"
        " from nbcallbacks.comparison import compare; assert nbcallbacks.compare is compare; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "ok"


def _steps(count: int, skip: int | None = None) -> NotebookHandler:
    from langchain_core.runnables import RunnableLambda

    handler = NotebookHandler()
    steps = [RunnableLambda(lambda x: x + 1, name=f"step{i % 5}") for i in range(count) if i != skip]
    chain = steps[0]
    for step in steps[1:]:
        chain = chain | step
    chain.invoke(0, config={"callbacks": [handler]})
    return handler


def test_a_step_missing_in_the_middle_is_one_row_and_later_same_named_steps_still_pair():
    result = compare(_steps(40), _steps(40, skip=12))
    only = result[result["only_in"].notna()]
    assert only[["path", "only_in"]].to_dict("records") == [{"path": "RunnableSequence/step2#3", "only_in": "a"}]
    assert len(result) == 41


def test_a_model_swapped_for_another_still_pairs():
    from langchain_core.language_models.fake_chat_models import FakeListChatModel
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate

    prompt = ChatPromptTemplate.from_messages([("human", "{question}")])
    a, b = NotebookHandler(), NotebookHandler()
    (prompt | demo.DemoChatModel(token_delay=0) | StrOutputParser()).invoke({"question": "hi"}, {"callbacks": [a]})
    (prompt | FakeListChatModel(responses=["hello"]) | StrOutputParser()).invoke({"question": "hi"}, {"callbacks": [b]})
    result = compare(a, b)
    assert result["only_in"].isna().all()
    model = result[result["run_type"] == "chat_model"].iloc[0]
    assert model["path"] == "RunnableSequence/DemoChatModel"
    assert model["output_b"] == "hello"
    view = result.to_view_html()
    assert "FakeListChatModel" in view


def _lcs_length(a, b):
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a)):
        for j in range(len(b)):
            table[i + 1][j + 1] = table[i][j] + 1 if a[i] == b[j] else max(table[i][j + 1], table[i + 1][j])
    return table[-1][-1]


@given(a=st.lists(st.sampled_from("abc"), max_size=30), b=st.lists(st.sampled_from("abc"), max_size=30))
def test_opcodes_cover_both_sequences_and_match_a_longest_common_subsequence(a, b):
    from nbcallbacks.comparison import alignment as comparison  # _opcodes and _LCS_CELLS live there

    for cells in (comparison._LCS_CELLS, 0):  # exact LCS, then the SequenceMatcher fallback for big middles
        original = comparison._LCS_CELLS
        comparison._LCS_CELLS = cells
        try:
            ops = comparison._opcodes(a, b)
        finally:
            comparison._LCS_CELLS = original
        i = j = 0
        matched = 0
        for tag, a0, a1, b0, b1 in ops:
            assert (a0, b0) == (i, j)
            if tag == "equal":
                assert a[a0:a1] == b[b0:b1]
                matched += a1 - a0
            i, j = a1, b1
        assert (i, j) == (len(a), len(b))
        if cells:
            assert matched == _lcs_length(a, b)
