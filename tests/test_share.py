"""Sharing a trace, headless: the static summary, safe embedding, to_html's file, and the nbconvert routes.

What a browser does with the files is checked in ``tests/browser/test_share_browser.py``; here the structure
(parsed with the standard library's HTML parser), the escaping, the bounds and the notebook plumbing.
"""

from __future__ import annotations

import json
import os
import re
from html.parser import HTMLParser
from importlib import import_module
from pathlib import Path
from typing import Any
from uuid import uuid4

import nbformat
import pytest
from nbclient import NotebookClient

from nbcallbacks import NotebookHandler
from nbcallbacks.demo import agent
from nbcallbacks.share import (
    SUMMARY_MAX_RUNS,
    compact_snapshot,
    embed_json,
    summary_html,
    to_html,
    trace_snapshot,
    trace_widget_states,
)

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "What's the weather in Paris?"
EVIL = "</script><img src=x onerror=alert(1)><!-- & \u2028\u2029 </SCRIPT>"


class Tags(HTMLParser):
    """Every start tag and the text, as an HTML parser (and so a browser) sees them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.depth = 0
        self.max_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "details":
            self.depth += 1
            self.max_depth = max(self.max_depth, self.depth)

    def handle_endtag(self, tag: str) -> None:
        if tag == "details":
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(markup: str) -> Tags:
    tags = Tags()
    tags.feed(markup)
    tags.close()
    return tags


def demo_handler(name: str | None = None) -> NotebookHandler:
    handler = NotebookHandler()
    config: dict[str, Any] = {"callbacks": [handler]}
    if name is not None:
        config["run_name"] = name
    agent(token_delay=0).invoke({"messages": [("user", QUESTION)]}, config=config)
    return handler


def chain_handler(count: int, *, depth: int = 1) -> NotebookHandler:
    """``count`` finished chain runs through LangChain's callback interface: a root and its descendants, up to
    ``depth`` levels deep."""
    handler = NotebookHandler()
    ids = [uuid4() for _ in range(count)]
    handler.on_chain_start({}, {}, run_id=ids[0], parent_run_id=None, name="root")
    chain = [ids[0]]
    for index in range(1, count):
        parent = chain[(index - 1) % len(chain)]
        handler.on_chain_start({}, {}, run_id=ids[index], parent_run_id=parent, name=f"step {index}")
        handler.on_chain_end({}, run_id=ids[index], parent_run_id=parent)
        if len(chain) < depth:
            chain.append(ids[index])
    handler.on_chain_end({}, run_id=ids[0], parent_run_id=None)
    return handler


# ----------------------------------------------------------------------------------------- summary


def test_summary_of_the_demo_agent_has_totals_and_the_whole_tree_as_details():
    handler = demo_handler()
    snapshot = trace_snapshot(handler)
    markup = summary_html(snapshot, title="demo")
    tags = parse(markup)
    text = "".join(tags.text)
    runs = handler.recorder.runs()
    assert f"{len(runs)} runs" in text
    assert "0 errors" in text
    usage = sum(run.total_tokens or 0 for run in runs)
    assert f"{usage:,} tokens" in text
    assert all(run.name in text for run in runs)
    assert {tag for tag, _ in tags.tags} <= {"div", "p", "b", "i", "small", "ul", "li", "details", "summary", "code"}
    assert not any(name.startswith("on") or name in {"style", "src", "href"} for _, a in tags.tags for name in a)
    # LangGraph > agent > DemoChatModel: two levels of <details>, the root open, the rest folded.
    assert tags.max_depth == 2
    opened = [attrs for tag, attrs in tags.tags if tag == "details" and "open" in attrs]
    assert len(opened) == 1


def test_summary_escapes_untrusted_text_and_never_carries_markup():
    handler = demo_handler(name=EVIL)
    markup = summary_html(trace_snapshot(handler), title=EVIL)
    tags = parse(markup)
    assert not [tag for tag, _ in tags.tags if tag in {"script", "img", "style", "iframe"}]
    text = "".join(tags.text)
    assert "</script><img src=x onerror=alert(1)><!--" in text  # shown, as text


def test_a_huge_trace_gives_a_bounded_summary_with_a_more_runs_marker():
    markup = summary_html(trace_snapshot(chain_handler(10_000, depth=50)))
    text = "".join(parse(markup).text)
    assert "10,000 runs" in text
    assert f"{10_000 - SUMMARY_MAX_RUNS:,} more runs not listed here" in text
    assert markup.count("<li>") == SUMMARY_MAX_RUNS
    assert len(markup) < 100_000


def test_hidden_runs_are_left_out_and_their_children_move_up():
    handler = NotebookHandler()
    root, wrapper, leaf = uuid4(), uuid4(), uuid4()
    handler.on_chain_start({}, {}, run_id=root, parent_run_id=None, name="root")
    handler.on_chain_start({}, {}, run_id=wrapper, parent_run_id=root, name="wrapper", tags=["langsmith:hidden"])
    handler.on_chain_start({}, {}, run_id=leaf, parent_run_id=wrapper, name="leaf")
    for run_id, parent in ((leaf, wrapper), (wrapper, root), (root, None)):
        handler.on_chain_end({}, run_id=run_id, parent_run_id=parent)
    snapshot = trace_snapshot(handler)
    if not any(run.get("hidden") for run in snapshot["runs"]):
        pytest.fail("the recorder did not mark the wrapper hidden; this test needs a hidden run")
    text = "".join(parse(summary_html(snapshot)).text)
    assert "wrapper" not in text
    assert "leaf" in text


def test_an_empty_trace_says_so():
    text = "".join(parse(summary_html(trace_snapshot(NotebookHandler()))).text)
    assert "0 runs" in text
    assert "No runs recorded." in text


# ----------------------------------------------------------------------------------------- embedding


def test_embedded_json_reads_back_the_same_and_cannot_end_its_script_element():
    value = {"name": EVIL, "nested": [EVIL, {"k": "<!--<script>"}], "number": 1.5, "nan": float("nan")}
    text = embed_json(value)
    assert not re.search(r"</|<!--|<script|\u2028|\u2029|&", text, flags=re.IGNORECASE)
    assert json.loads(text) == {**value, "nan": None}


def test_to_html_writes_one_self_contained_page_under_the_size_budget(tmp_path):
    handler = demo_handler(name=EVIL)
    path = handler.to_html(tmp_path / "sub" / "trace.html")
    page = path.read_text(encoding="utf-8")
    assert path.stat().st_size < 200_000  # 9 runs: about 90 kB, most of it the bundle and the CSS
    tags = parse(page)
    scripts = [attrs for tag, attrs in tags.tags if tag == "script"]
    assert len(scripts) == 2  # the trace (JSON, never run) and the bundle
    assert not any("src" in attrs for attrs in scripts)
    assert not [attrs for tag, attrs in tags.tags if tag in {"link", "img", "iframe"}]
    assert "default-src 'none'" in page  # the CSP: the page may not fetch anything
    state_text = page.split('<script type="application/json" data-nbc-state>', 1)[1].split("</script>", 1)[0]
    state = json.loads(state_text)
    assert state["_nbc_compact"] is True
    full = json.loads(json.dumps(trace_snapshot(handler)))
    assert state["snapshot"] == json.loads(json.dumps(compact_snapshot(full)))
    restored = [
        {**dict.fromkeys(run_full, None), **run}
        for run, run_full in zip(state["snapshot"]["runs"], full["runs"], strict=True)
    ]
    assert restored == full["runs"]
    assert EVIL not in page.split('<script data-nbc-assets="js">', 1)[0].replace("&lt;", "<")  # only escaped


def test_to_html_takes_a_handler_widget_recorder_or_snapshot(tmp_path):
    handler = demo_handler()
    snapshot = trace_snapshot(handler)
    for source in (handler, handler.widget, handler.recorder, snapshot):
        path = to_html(source, tmp_path / "t.html", title="same")
        page = path.read_text(encoding="utf-8")
        state = json.loads(page.split("data-nbc-state>", 1)[1].split("</script>", 1)[0])
        assert state["snapshot"]["runs"] == json.loads(json.dumps(compact_snapshot(snapshot)["runs"]))
    handler.widget.close()


def test_the_widget_mimebundle_carries_a_static_summary_next_to_the_view():
    handler = demo_handler()
    data, _metadata = handler._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in data
    text = "".join(parse(data["text/html"]).text)
    assert f"{handler.recorder.run_count} runs" in text
    assert "taken when this output was displayed" in text
    handler.widget.close()


# ----------------------------------------------------------------------------------------- notebooks

CELLS = [
    "from nbcallbacks import NotebookHandler\nfrom nbcallbacks.demo import agent\nh = NotebookHandler()\nh",
    (
        f"agent(token_delay=0).invoke({{'messages': [('user', {QUESTION!r})]}}, config={{'callbacks': [h]}})\n"
        "print(h.recorder.run_count)"
    ),
    "h",
    "import ipywidgets\nipywidgets.IntSlider(value=3)",
]


@pytest.fixture(scope="module")
def executed() -> Any:
    """A notebook displaying ``h`` before and after the demo agent, plus a slider; run by nbclient."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    client = NotebookClient(notebook, timeout=120, kernel_name="python3", store_widget_state=True)
    client.execute(env={**os.environ, "PYTHONPATH": pythonpath})
    return notebook


def output_summary(cell: Any) -> str:
    (output,) = [o for o in cell.outputs if "text/html" in o.get("data", {})]
    return "".join(parse(output["data"]["text/html"]).text)


@pytest.mark.notebook
def test_an_executed_notebook_keeps_a_static_summary_in_each_trace_output(executed):
    assert "0 runs" in output_summary(executed.cells[0])  # displayed before the run: the summary of that moment
    assert "9 runs" in output_summary(executed.cells[2])
    states = trace_widget_states(executed.metadata)
    assert len(states) == 1
    (state,) = states.values()
    assert len(state["snapshot"]["runs"]) == 9


@pytest.mark.notebook
def test_the_notebook_exporter_rebuilds_stale_summaries_from_the_saved_state(executed):
    from nbcallbacks.nbconvert_exporter import TraceNotebookExporter

    body, _ = TraceNotebookExporter().from_notebook_node(executed)
    notebook = nbformat.reads(body, as_version=4)
    assert "9 runs" in output_summary(notebook.cells[0])
    assert "9 runs" in output_summary(notebook.cells[2])
    assert "application/vnd.jupyter.widget-view+json" in notebook.cells[0].outputs[0]["data"]  # views stay


@pytest.mark.notebook
def test_the_html_exporter_inlines_trace_widgets_and_leaves_other_widgets_alone(executed):
    from nbcallbacks.nbconvert_exporter import TraceHTMLExporter

    page, _ = TraceHTMLExporter().from_notebook_node(executed)
    tags = parse(page)
    embeds = [attrs for tag, attrs in tags.tags if "data-nbc-embed" in attrs]
    assert len(embeds) == 2
    assert page.count('data-nbc-assets="js"') == 1
    views = re.findall(r'<script type="application/vnd.jupyter.widget-view\+json">(.*?)</script>', page, re.DOTALL)
    (slider_view,) = views  # the slider is still rendered by the widget manager; the traces are not
    state = json.loads(
        re.search(r'<script type="application/vnd.jupyter.widget-state\+json">(.*?)</script>', page, re.DOTALL)[1]
    )  # type: ignore[index]
    models = state["state"]
    assert json.loads(slider_view)["model_id"] in models
    assert not any("snapshot" in model["state"] for model in models.values())


@pytest.mark.notebook
def test_the_html_exporter_drops_the_widget_manager_when_only_traces_remain(executed):
    from nbcallbacks.nbconvert_exporter import TraceHTMLExporter

    only_traces = nbformat.from_dict(json.loads(json.dumps(executed)))
    only_traces.cells = only_traces.cells[:3]
    page, _ = TraceHTMLExporter().from_notebook_node(only_traces)
    assert "application/vnd.jupyter.widget-state+json" not in page
    assert "html-manager" not in page


def test_the_exporters_are_registered_for_nbconvert():
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    section = pyproject.split('[project.entry-points."nbconvert.exporters"]\n', 1)[1].split("\n\n", 1)[0]
    exporters = dict(re.findall(r'^(\w+) = "([\w.:]+)"$', section, flags=re.MULTILINE))
    assert set(exporters) == {"nbcallbacks_html", "nbcallbacks_notebook"}
    for target in exporters.values():
        module, _, attribute = target.partition(":")
        assert getattr(import_module(module), attribute).export_from_notebook


def test_known_costs_show_and_unknown_ones_are_left_out():
    def run(run_id: str, parent: str | None, **over: Any) -> dict[str, Any]:
        return {"run_id": run_id, "parent_run_id": parent, "name": run_id, "run_type": "chain", "status": "ok", **over}

    snapshot = {
        "runs": [
            run("root", None, cost_usd=None, cost_usd_total=0.25),
            run("priced", "root", run_type="chat_model", cost_usd=0.25, cost_usd_total=0.25),
            run("unpriced", "root", run_type="chat_model", cost_usd=None, cost_usd_total=None),
        ],
        "totals": {"cost_usd": 0.25},
    }
    text = "".join(parse(summary_html(snapshot)).text)
    assert text.count("$0.25") == 3  # header total, the root's total, the priced model
    assert "$0.00" not in text
    assert "unpriced · chat_model · ✓ ok" in " ".join(text.split())


def test_the_shared_snapshot_is_what_the_widget_shows():
    """``to_html`` inlines the same runs, streams and totals as the live widget's snapshot (costs included, once
    the widget prices runs: both are built the same way)."""
    handler = demo_handler()
    widget = handler.widget
    widget.flush()
    live = json.loads(json.dumps(widget.snapshot))
    shared = json.loads(json.dumps(trace_snapshot(handler)))
    widget.close()
    for key in ("runs", "streams", "totals", "handler_errors", "cursor", "schema"):
        assert shared[key] == live[key], key
