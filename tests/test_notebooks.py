"""The example notebooks run top to bottom in a real kernel, show the widget and keep its state."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
NAMES = ["quickstart.ipynb", "langgraph.ipynb", "concurrency.ipynb", "analysis.ipynb", "opentelemetry.ipynb"]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
PLOTLY = "application/vnd.plotly.v1+json"


def outputs(nb):
    return [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]


def text_of(nb):
    """Everything printed or shown as plain text, in order."""
    parts = []
    for out in outputs(nb):
        if out.output_type == "stream":
            parts.append(out.text)
        elif out.output_type in {"execute_result", "display_data"}:
            parts.append(out.data.get("text/plain", ""))
    return "\n".join(parts)


@pytest.fixture(scope="module")
def executed():
    """Each notebook executed once (kernel python3, 120 s per cell, widget state stored)."""
    cache: dict[str, nbformat.NotebookNode] = {}
    # The kernel imports this checkout, whether or not the package is installed.
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": pythonpath}

    def run(name):
        if name not in cache:
            nb = nbformat.read(NOTEBOOKS / name, as_version=4)
            client = NotebookClient(
                nb,
                timeout=120,
                kernel_name="python3",
                store_widget_state=True,
                resources={"metadata": {"path": str(NOTEBOOKS)}},
            )
            client.execute(env=env)
            cache[name] = nb
        return cache[name]

    return run


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebooks_are_clean(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert "widgets" not in nb.metadata
    assert any(c.cell_type == "markdown" for c in nb.cells)


@pytest.mark.notebook
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_without_errors_and_shows_the_widget(name, executed):
    nb = executed(name)
    errors = [f"{o.ename}: {o.evalue}" for o in outputs(nb) if o.output_type == "error"]
    assert errors == []
    views = [o.data[WIDGET_VIEW] for o in outputs(nb) if WIDGET_VIEW in o.get("data", {})]
    assert views, "no widget view output: displaying a NotebookHandler should show its widget"
    state = nb.metadata["widgets"][WIDGET_STATE]["state"]
    for view in views:
        assert view["model_id"] in state, "a displayed widget's state was not stored"
        model = state[view["model_id"]]
        assert model["model_module"] == "anywidget"
        assert model["state"]


@pytest.mark.notebook
def test_quickstart_reads_the_agent_tree(executed):
    nb = executed("quickstart.ipynb")
    text = text_of(nb)
    assert "The weather in Paris: 18°C" in text
    tree = next(o.text for o in outputs(nb) if o.output_type == "stream")
    lines = tree.splitlines()
    assert lines[0].startswith("LangGraph [chain]")
    assert any(line.startswith("        DemoChatModel [chat_model]") for line in lines)
    assert any(line.startswith("        get_weather [tool]") for line in lines)
    assert any(PLOTLY in o.get("data", {}) for o in outputs(nb))


@pytest.mark.notebook
def test_langgraph_notebook_shows_nodes_subgraph_and_interrupt(executed):
    text = text_of(executed("langgraph.ipynb"))
    for name in ("tools_condition", "get_weather", "calculator", "pipeline", "summarize"):
        assert name in text
    assert "'Publish this answer? (yes/no)'" in text
    assert "interrupted" in text
    assert "Summary: The result is 12 * 7 = 84." in text


@pytest.mark.notebook
def test_concurrency_notebook_keeps_failures_apart(executed):
    text = text_of(executed("concurrency.ipynb"))
    assert "['dict', 'DemoStreamError', 'dict', 'DemoStreamError', 'dict']" in text
    assert "ThreadPoolExecutor" in text
    assert "DemoStreamError: demo model failed after 12" in text


@pytest.mark.notebook
def test_analysis_notebook_draws_every_chart(executed):
    nb = executed("analysis.ipynb")
    figures = [o.data[PLOTLY] for o in outputs(nb) if PLOTLY in o.get("data", {})]
    titles = [f["layout"]["title"]["text"] for f in figures]
    assert len(titles) == 4
    assert titles[0].startswith("Run timeline")
    assert titles[1].startswith("Latency by name")
    assert titles[2].startswith("Model calls")
    assert titles[3].startswith("Gap between streamed chunks")
    text = text_of(nb)
    assert "DemoChatModel" in text
    assert "search_docs" in text


@pytest.mark.notebook
def test_opentelemetry_notebook_exports_and_pulls_the_trace_back(executed):
    nb = executed("opentelemetry.ipynb")
    text = text_of(nb)
    assert "exporting to memory only" in text
    assert "The weather in Paris: 18°C" in text
    assert "'spans_ended': 9" in text
    assert "invoke_agent" in text
    assert "same tree: True" in text
    views = [o for o in outputs(nb) if WIDGET_VIEW in o.get("data", {})]
    assert len(views) == 2  # the live handler and the one pulled back
