"""The run tree, computed in one place: depth, orphans, cycles, display status, key runs and cost totals.

Standard library only. Every consumer reads the tree through ``Tree``: the DataFrames (``nbcallbacks.export``),
the charts, the history, the sinks' run records and the widget (which renders what it is given). A ``Tree`` is
fed runs in start order, all at once (``Tree.of(runs)``) or as they change (``update``); both give the same
answer, because both apply the same rules in the same order:

- A run's parent is the run named by its ``parent_run_id`` once that run is known. A parent that comes after its
  child (a handler attached mid-run, a replay, an out-of-order delivery) adopts it then: the child and its subtree
  get their depth from it, everywhere.
- A run naming a parent that never came is an *orphan*: a root (depth 0) marked as such.
- Parent links that would close a cycle (a run that is its own ancestor) are not followed: the run whose link
  closes it stays a root. Nothing loops.
- ``display_status`` is ``abandoned`` for a run still running when the code that started it was over, else its
  status.
- ``key`` is ``is_key_run`` of the run (pass-through wrappers are not key runs).
- ``cost_usd`` prices model runs (through the ``pricing`` callable; missing when unknown), ``cost_usd_total`` sums
  the known costs of the run and its descendants (missing when none is known).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nbcallbacks.events import MODEL_RUN_TYPES, RunRecord
from nbcallbacks.keyruns import is_key_run
from nbcallbacks.schema import DERIVED_RUN_FIELDS

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

__all__ = ["Derived", "Pricing", "Tree", "percentile", "preorder"]


if TYPE_CHECKING:
    Pricing = Callable[[RunRecord], float | None]
else:
    Pricing = Any


@dataclass(slots=True)
class Derived:
    """What the tree says of one run (the ``stored=False`` fields of ``nbcallbacks.schema.RUN_FIELDS``)."""

    depth: int = 0
    orphan: bool = False
    display_status: str = "running"
    key: bool = True
    start_offset_s: float = 0.0
    duration_s: float | None = None
    ttft_s: float | None = None
    tokens_per_s: float | None = None
    cost_usd: float | None = None
    cost_usd_total: float | None = None

    def fields(self) -> dict[str, Any]:
        """The derived fields by name (the field table's ``DERIVED_RUN_FIELDS``)."""
        return {name: getattr(self, name) for name in DERIVED_RUN_FIELDS}


@dataclass(slots=True)
class _Node:
    run: RunRecord
    parent: str | None = None
    """The adopted parent (``None`` for a root)."""
    children: list[str] = field(default_factory=list)
    depth: int = 0
    cost: float | None = None
    total: float = 0.0
    """Sum of the known costs in the subtree."""
    priced: int = 0
    """Runs with a known cost in the subtree."""


class Tree:
    """Runs by id with their adopted parents, depths and subtree costs; updated in O(change).

    Args:
        pricing: prices one model run (USD) or returns ``None`` when its price is unknown; ``None``: no prices.
    """

    def __init__(self, pricing: Pricing | None = None) -> None:
        """An empty tree."""
        self._nodes: dict[str, _Node] = {}
        self._waiting: dict[str, list[str]] = {}
        """Parent id never seen -> the runs naming it, in start order."""
        self._roots: list[str] = []
        self._pricing = pricing
        self.origin: float | None = None
        """Start of the earliest run: ``start_offset_s`` counts from here."""

    @classmethod
    def of(cls, runs: Iterable[RunRecord], pricing: Pricing | None = None) -> Tree:
        """The tree of these runs (fed in start order)."""
        tree = cls(pricing)
        tree.update(runs)
        return tree

    def __len__(self) -> int:
        """Runs in the tree."""
        return len(self._nodes)

    def __contains__(self, run_id: object) -> bool:
        """Whether a run id is in the tree."""
        return run_id in self._nodes

    # --- feeding

    def update(self, runs: Iterable[RunRecord]) -> list[str]:
        """Take new or changed runs (each one's latest copy); returns the ids whose derived fields may have changed.

        Those are the given runs, runs adopted by a parent that just arrived (with their subtrees), and ancestors
        whose cost total moved; all of them, in start order, when the trace's origin moved.
        """
        changed: dict[str, None] = {}
        origin_moved = False
        for run in sorted(runs, key=lambda r: r.order):
            if self.origin is None or run.start < self.origin:
                origin_moved = self.origin is not None
                self.origin = run.start
            node = self._nodes.get(run.run_id)
            if node is None:
                self._add(run, changed)
            else:
                node.run = run
                changed[run.run_id] = None
            self._reprice(run.run_id, changed)
        if origin_moved:
            return self.in_start_order()
        return list(changed)

    def _add(self, run: RunRecord, changed: dict[str, None]) -> None:
        run_id = run.run_id
        node = _Node(run)
        self._nodes[run_id] = node
        changed[run_id] = None
        parent_id = run.parent_run_id
        parent = self._nodes.get(parent_id) if parent_id is not None else None
        if parent is not None and not self._closes_cycle(run_id, parent.run.run_id):
            self._attach(node, parent)
        else:
            self._roots.append(run_id)
            if parent_id is not None and parent is None and parent_id != run_id:
                self._waiting.setdefault(parent_id, []).append(run_id)
        for child_id in self._waiting.pop(run_id, ()):  # a late parent adopts the runs that named it
            child = self._nodes[child_id]
            if child.parent is not None or self._closes_cycle(child_id, run_id):
                continue
            self._roots.remove(child_id)
            self._attach(child, node)
            self._add_to_ancestors(child.parent, child.total, child.priced, changed)
            for moved in self.subtree(child_id):  # parents before children: each depth from its parent's
                moved_node = self._nodes[moved]
                moved_node.depth = self._nodes[moved_node.parent].depth + 1 if moved_node.parent else 0
                changed[moved] = None

    def _attach(self, node: _Node, parent: _Node) -> None:
        node.parent = parent.run.run_id
        node.depth = parent.depth + 1
        siblings = parent.children
        if siblings and self._nodes[siblings[-1]].run.order > node.run.order:  # adopted late: keep start order
            siblings.append(node.run.run_id)
            siblings.sort(key=lambda i: self._nodes[i].run.order)
        else:
            siblings.append(node.run.run_id)

    def _closes_cycle(self, run_id: str, parent_id: str) -> bool:
        """Whether adopting ``run_id`` under ``parent_id`` would make the run its own ancestor."""
        current: str | None = parent_id
        while current is not None:
            if current == run_id:
                return True
            current = self._nodes[current].parent
        return False

    def _reprice(self, run_id: str, changed: dict[str, None]) -> None:
        node = self._nodes[run_id]
        cost = self._price(node.run)
        if cost == node.cost or (cost is None and node.cost is None):
            return
        delta = (cost or 0.0) - (node.cost or 0.0)
        count = (cost is not None) - (node.cost is not None)
        node.cost = cost
        node.total += delta
        node.priced += count
        self._add_to_ancestors(node.parent, delta, count, changed)

    def _price(self, run: RunRecord) -> float | None:
        if self._pricing is None or run.run_type not in MODEL_RUN_TYPES:
            return None
        try:
            cost = self._pricing(run)
        except Exception:  # noqa: BLE001 - a price that cannot be computed is unknown, never a failure
            return None
        return cost if cost is not None and math.isfinite(cost) else None

    def _add_to_ancestors(self, parent_id: str | None, delta: float, count: int, changed: dict[str, None]) -> None:
        while parent_id is not None:
            parent = self._nodes[parent_id]
            parent.total += delta
            parent.priced += count
            changed[parent_id] = None
            parent_id = parent.parent

    # --- reading

    def run(self, run_id: str) -> RunRecord:
        """The latest copy of a run."""
        return self._nodes[run_id].run

    def roots(self) -> list[str]:
        """Roots (orphans and cycle breakers included), in start order."""
        return sorted(self._roots, key=lambda i: self._nodes[i].run.order)

    def subtree(self, run_id: str) -> list[str]:
        """A run and its descendants, depth first, children in start order."""
        out: list[str] = []
        stack = [run_id]
        while stack:
            current = stack.pop()
            out.append(current)
            stack.extend(reversed(self._nodes[current].children))
        return out

    def in_start_order(self) -> list[str]:
        """Every run id, in start order."""
        return [node.run.run_id for node in sorted(self._nodes.values(), key=lambda n: n.run.order)]

    def preorder(self) -> list[str]:
        """Every run, depth first from the roots: each run directly followed by its descendants."""
        out: list[str] = []
        for root in self.roots():
            out.extend(self.subtree(root))
        return out

    def derived_depth(self, run_id: str) -> int:
        """The depth of one run (root = 0)."""
        return self._nodes[run_id].depth

    def derived(self, run_id: str) -> Derived:
        """The derived fields of one run."""
        node = self._nodes[run_id]
        run = node.run
        parent_id = run.parent_run_id
        duration = run.duration
        return Derived(
            depth=node.depth,
            orphan=node.parent is None and parent_id is not None and parent_id not in self._nodes,
            display_status="abandoned" if run.abandoned and run.status == "running" else run.status,
            key=is_key_run(run.name, run.run_type, run.tags, run.metadata, hidden=run.hidden),
            start_offset_s=run.start - (self.origin if self.origin is not None else run.start),
            duration_s=duration,
            ttft_s=run.ttft,
            tokens_per_s=run.tokens_per_s,
            cost_usd=node.cost,
            cost_usd_total=node.total if node.priced else None,
        )


def preorder(run_ids: Sequence[str], parent_ids: Sequence[str | None]) -> list[tuple[int, int]]:
    """``(position, depth)`` of runs in depth-first order (children in the given order), by ``Tree``'s rules.

    For a table of runs that may be filtered (a chart of part of a DataFrame): a run whose parent is not in the
    table is a root, and depths count the ancestors in the table.
    """
    position: dict[str, int] = {}
    runs = []
    for pos, (run_id, parent_id) in enumerate(zip(run_ids, parent_ids, strict=True)):
        key = run_id if run_id not in position else f"{run_id}\x00{pos}"  # duplicate ids stay separate rows
        position[key] = pos
        runs.append(RunRecord(run_id=key, parent_run_id=parent_id, order=pos, name="", run_type="", start=0.0))
    tree = Tree.of(runs)
    return [(position[run_id], tree.derived_depth(run_id)) for run_id in tree.preorder()]


def percentile(values: Sequence[float], p: float) -> float | None:
    """Percentile with linear interpolation between closest ranks (NumPy's default, and the timing table's)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = min(100.0, max(0.0, p)) / 100 * (len(ordered) - 1)
    low = math.floor(rank)
    high = math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)
