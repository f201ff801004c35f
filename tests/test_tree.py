"""One tree, read the same way everywhere: the DataFrame, the timeline, the widget and the history agree, also when a
parent arrives after its child, when a parent never comes, when parent links form a cycle, and on abandoned runs."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import numpy as np
import pytest

from nbcallbacks import plot
from nbcallbacks.mirror import Mirror
from nbcallbacks.tree import Tree, percentile

if TYPE_CHECKING:
    from nbcallbacks.recorder import Recorder


def widget_runs(recorder: Recorder) -> dict[str, dict]:
    """The run dictionaries the widget's front end holds after reading everything (as one delta)."""
    mirror = Mirror()
    sub = recorder.subscribe()
    mirror.apply(sub.read(rows=False), handler_error_count=0, dropped_events=0)
    return {wire["run_id"]: wire for wire in mirror.snapshot()["runs"]}


def test_a_parent_that_starts_after_its_child_adopts_it_everywhere(handler, clock):
    rec = handler.recorder
    root, child, grandchild = (uuid.uuid4() for _ in range(3))
    rec.start_run(child, root, event="chain_start", name="child", run_type="chain")  # the parent comes later
    clock.advance(0.5)
    rec.start_run(grandchild, child, event="tool_start", name="grandchild", run_type="tool")
    sub = rec.subscribe()
    mirror = Mirror()
    first = mirror.apply(sub.read(rows=False), handler_error_count=0, dropped_events=0)
    assert {w["run_id"]: (w["depth"], w["orphan"]) for w in first["runs"]} == {
        str(child): (0, True),
        str(grandchild): (1, False),
    }
    clock.advance(0.5)
    rec.start_run(root, None, event="chain_start", name="root", run_type="chain")
    second = mirror.apply(sub.read(rows=False), handler_error_count=0, dropped_events=0)
    # The late parent re-sends the subtree it adopted, with the depths the DataFrame has.
    assert {w["run_id"]: (w["depth"], w["orphan"]) for w in second["runs"]} == {
        str(root): (0, False),
        str(child): (1, False),
        str(grandchild): (2, False),
    }
    frame = handler.runs_dataframe().set_index("name")
    assert frame.loc["child", "depth"] == 1
    assert frame.loc["grandchild", "depth"] == 2
    assert not frame["orphan"].any()
    assert frame.loc["child", "start_offset_s"] == 0.0  # offsets count from the earliest start
    assert frame.loc["root", "start_offset_s"] == pytest.approx(1.0)
    fig = plot.timeline(handler)
    labels = [label.rstrip("\u00a0") for label in fig.layout.yaxis.ticktext]
    assert labels == ["root", "└ child", "└ grandchild"]  # depth-first under the late root
    pads = [len(label) - len(label.rstrip("\u00a0")) for label in fig.layout.yaxis.ticktext]
    assert pads[0] > pads[1] > pads[2], "indented by the resolved depth"
    assert {w["run_id"]: w["depth"] for w in widget_runs(rec).values()} == {
        str(root): 0,
        str(child): 1,
        str(grandchild): 2,
    }


def test_a_parent_that_never_comes_leaves_an_orphan_root(recorder):
    missing, child = uuid.uuid4(), uuid.uuid4()
    recorder.start_run(child, missing, event="chain_start", name="child", run_type="chain")
    tree = Tree.of(recorder.runs())
    derived = tree.derived(str(child))
    assert (derived.depth, derived.orphan) == (0, True)
    assert tree.roots() == [str(child)]
    assert widget_runs(recorder)[str(child)]["orphan"] is True


def test_parent_links_that_form_a_cycle_never_loop_and_keep_every_run(recorder):
    a, b, c = (uuid.uuid4() for _ in range(3))
    recorder.start_run(a, b, event="chain_start", name="a", run_type="chain")
    recorder.start_run(b, c, event="chain_start", name="b", run_type="chain")
    recorder.start_run(c, a, event="chain_start", name="c", run_type="chain")
    tree = Tree.of(recorder.runs())
    assert sorted(tree.preorder()) == sorted(map(str, (a, b, c)))
    assert len(tree.roots()) == 1
    from nbcallbacks.export import runs_frame

    frame = runs_frame(recorder.runs())
    assert sorted(frame["depth"]) == [0, 1, 2]
    fig = plot.timeline(frame)  # draws without hanging, one bar per run, the cycle broken once into a chain
    names = [label.rstrip("\u00a0").removeprefix("└ ") for label in fig.layout.yaxis.ticktext]
    assert names == frame.sort_values("depth")["name"].tolist()
    assert sorted(names) == ["a", "b", "c"]


def test_abandoned_runs_show_as_abandoned_in_the_dataframe_chart_and_widget(handler, clock):
    run = uuid.uuid4()
    handler.recorder.start_run(run, None, event="chain_start", name="left running", run_type="chain")
    clock.advance(2.0)
    assert handler.recorder.mark_abandoned() == 1
    frame = handler.runs_dataframe()
    assert list(frame["status"]) == ["running"]
    assert list(frame["display_status"]) == ["abandoned"]
    fig = plot.timeline(frame, now=None)
    hover = next(t for t in fig.data if getattr(t, "hovertext", None))
    assert "status: abandoned" in hover.hovertext[0]
    assert "(so far)" not in hover.hovertext[0]
    assert widget_runs(handler.recorder)[str(run)]["display_status"] == "abandoned"


@pytest.mark.parametrize("p", [0, 10, 50, 90, 95, 100])
def test_one_percentile_definition_matches_numpy_and_the_timing_table(p):
    values = [0.3, 1.0, 0.1, 7.5, 2.2, 0.9, 4.4]
    assert percentile(values, p) == pytest.approx(float(np.percentile(values, p)))
