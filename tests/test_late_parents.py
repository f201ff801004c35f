"""Children before parents: a run tree whose callbacks arrive out of order reads back as the same tree everywhere.

A handler attached mid-run, a replay or an out-of-order delivery shows a child run before its parent: the child
starts (and may end) before the parent starts, a grandchild before both, and some parents never come at all. Once
every start is in, the runs DataFrame (``depth``, ``orphan``), the timeline chart (row order and indent) and the
widget's snapshot must all show the tree as it stands: a late parent resolves, and only a parent that never came
leaves an orphan root. Hypothesis draws the forests and the delivery orders.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pandas as pd
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from widget_capture import CapturingWidget

from nbcallbacks import NotebookHandler, plot

NEVER_STARTED = uuid.UUID(int=999)
"""A parent id that no run of a forest has."""
NBSP = "\u00a0"


@dataclass
class Forest:
    """Runs with their parents, and the order in which their starts and ends reach the handler."""

    parents: dict[uuid.UUID, uuid.UUID | None]
    """Each run's parent: None (a root), another run of the forest, or ``NEVER_STARTED`` (a parent that never
    comes). Every run starts; parents are drawn so that there is no cycle."""
    calls: list[tuple[str, uuid.UUID]]
    """``("start" | "end", run id)`` in delivery order; a run's end (if any) comes after its start."""

    def order(self) -> list[uuid.UUID]:
        """The runs in the order the handler first meets them (their starts)."""
        return [run_id for kind, run_id in self.calls if kind == "start"]

    def depth(self, run_id: uuid.UUID) -> int:
        """Ancestors among the forest's runs (a parent that never starts does not count)."""
        depth = 0
        parent = self.parents[run_id]
        while parent in self.parents:
            depth += 1
            parent = self.parents[parent]
        return depth

    def orphan(self, run_id: uuid.UUID) -> bool:
        """Whether the run names a parent that never starts."""
        return self.parents[run_id] is not None and self.parents[run_id] not in self.parents

    def tree_order(self) -> list[uuid.UUID]:
        """Depth first: roots (orphans included) in start order, each followed by its children in start order."""
        order = self.order()
        children: dict[uuid.UUID | None, list[uuid.UUID]] = {}
        for run_id in order:
            parent = self.parents[run_id]
            children.setdefault(parent if parent in self.parents else None, []).append(run_id)
        out: list[uuid.UUID] = []
        stack = list(reversed(children.get(None, [])))
        while stack:
            run_id = stack.pop()
            out.append(run_id)
            stack.extend(reversed(children.get(run_id, [])))
        return out

    def expected(self) -> dict[str, tuple[str | None, int, bool]]:
        """Per run id: (parent run id, depth, orphan)."""
        return {
            str(run_id): (None if parent is None else str(parent), self.depth(run_id), self.orphan(run_id))
            for run_id, parent in self.parents.items()
        }

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # hypothesis prints a failing example with this
        printer.text(repr(self))

    def __repr__(self) -> str:  # short ids make a failing example readable
        def short(run_id: uuid.UUID | None) -> str:
            return "never" if run_id == NEVER_STARTED else "-" if run_id is None else f"r{run_id.int}"

        links = ", ".join(f"r{child.int}<-{short(parent)}" for child, parent in self.parents.items())
        calls = " ".join(f"{kind}:{short(run_id)}" for kind, run_id in self.calls)
        return f"Forest(parents: {links}; calls: {calls})"


@st.composite
def forests(draw: st.DrawFn) -> Forest:
    """A forest of up to seven runs whose starts arrive in any order, so children often start (and end) before their
    parents, grandchildren before both; some runs name a parent that never starts."""
    count = draw(st.integers(1, 7))
    run_ids = [uuid.UUID(int=i + 1) for i in range(count)]
    parents: dict[uuid.UUID, uuid.UUID | None] = {}
    for i, run_id in enumerate(run_ids):  # a parent drawn among earlier runs of this list: no cycles
        pick = draw(st.integers(-2, i - 1))
        parents[run_id] = None if pick == -1 else NEVER_STARTED if pick == -2 else run_ids[pick]
    calls: list[tuple[str, uuid.UUID]] = [("start", run_id) for run_id in draw(st.permutations(run_ids))]
    for run_id in run_ids:
        if draw(st.booleans()):
            after = calls.index(("start", run_id)) + 1
            calls.insert(draw(st.integers(after, len(calls))), ("end", run_id))
    return Forest(parents, calls)


def run_forest(forest: Forest) -> NotebookHandler:
    h = NotebookHandler()
    for kind, run_id in forest.calls:
        parent = forest.parents[run_id]
        if kind == "start":
            h.on_chain_start({}, {"n": run_id.int}, run_id=run_id, parent_run_id=parent, name=f"run {run_id.int}")
        else:
            h.on_chain_end({"n": run_id.int}, run_id=run_id, parent_run_id=parent)
    return h


def timeline_rows(fig: Any) -> list[tuple[str, int]]:
    """The timeline's rows top to bottom as (label name, depth its indent shows).

    A label is ``[└ ]name`` padded with non-breaking spaces, less the deeper the run: depth is read back from the
    padding relative to the widest one, in steps of the smallest difference.
    """
    labels = list(fig.layout.yaxis.ticktext)
    pads = [len(label) - len(label.rstrip(NBSP)) for label in labels]
    widest = max(pads)
    step = min((widest - pad for pad in pads if pad != widest), default=1)
    rows = []
    for label, pad in zip(labels, pads, strict=True):
        assert (widest - pad) % step == 0, labels
        depth = (widest - pad) // step
        assert label.startswith("└ ") == (depth > 0), label
        rows.append((label.rstrip(NBSP).removeprefix("└ "), depth))
    return rows


A1, A2, A3 = (uuid.UUID(int=i) for i in (1, 2, 3))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(forests())
@example(Forest({A1: None, A2: A1}, [("start", A2), ("end", A2), ("start", A1), ("end", A1)]))  # child done first
@example(Forest({A1: None, A2: A1, A3: A2}, [("start", A3), ("start", A2), ("start", A1)]))  # bottom up, none ends
@example(Forest({A1: NEVER_STARTED, A2: A1}, [("start", A2), ("start", A1), ("end", A1)]))  # under a missing parent
def test_children_before_parents_dataframe_timeline_and_widget_agree_on_the_tree(forest: Forest) -> None:
    """Once every start has arrived, a late parent is resolved everywhere the same way: depth counts ancestors,
    ``orphan`` marks only a parent that never came, and the timeline nests and indents each run under its parent."""
    h = run_forest(forest)
    widget = CapturingWidget(h.recorder)
    try:
        expected = forest.expected()
        assert h.recorder.handler_error_count == 0, h.recorder.handler_errors()

        frame = h.runs_dataframe()
        assert list(frame["run_id"]) == [str(run_id) for run_id in forest.order()]
        parent_ids = [None if pd.isna(parent) else parent for parent in frame["parent_run_id"]]
        by_frame = dict(zip(frame["run_id"], zip(parent_ids, frame["depth"], strict=True), strict=True))
        assert by_frame == {run_id: (parent, depth) for run_id, (parent, depth, _) in expected.items()}, "depth"
        assert dict(zip(frame["run_id"], frame["orphan"], strict=True)) == {
            run_id: orphan for run_id, (_, _, orphan) in expected.items()
        }, "orphan"

        widget.flush()
        widget._handle_custom_msg({"type": "resync"}, [])
        snapshot = widget.sent[-1]
        assert snapshot["type"] == "snapshot"
        by_wire = {run["run_id"]: (run["parent_run_id"], run["depth"], run["orphan"]) for run in snapshot["runs"]}
        assert by_wire == expected, "the widget's snapshot"

        names = {f"run {run_id.int}": str(run_id) for run_id in forest.parents}
        rows = [(names[name], depth) for name, depth in timeline_rows(plot.timeline(h))]
        assert rows == [(str(run_id), forest.depth(run_id)) for run_id in forest.tree_order()], "the timeline"
    finally:
        widget.close()
