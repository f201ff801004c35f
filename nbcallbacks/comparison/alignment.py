"""Runs aligned by their path in the tree, level by level.

The children (in start order) of two paired runs are aligned by name with a longest-common-subsequence
alignment (common prefix and suffix first, then an exact LCS, or ``difflib.SequenceMatcher`` for very long
sibling lists), then the children of each pair, and so on. An extra tool call or a retried step is a run on one
side only, and everything after it still pairs up, even among repeated names; inside a block of different names,
runs of the same type pair (a model swapped for another). When each side is a single run, the two roots pair
whatever their names. Pairs come in depth-first order.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from nbcallbacks.missing import is_missing

if TYPE_CHECKING:
    from collections.abc import Sequence

    from nbcallbacks.comparison.sides import Side

__all__ = ["Node", "Pair", "align", "path_text", "walk"]

_LCS_CELLS: Final = 250_000
"""Largest sibling-list middle (len_a * len_b) aligned by an exact LCS; larger ones use SequenceMatcher."""


@dataclass(slots=True)
class Node:
    """One run of a side in the tree being aligned."""

    key: tuple[tuple[str, int], ...]
    """Path from the root: (name, rank among same-named siblings) per level (relative to a single compared run)."""
    row: dict[str, Any]
    depth: int
    children: list[Node] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The run's name (what siblings are aligned by)."""
        return str(self.row.get("name"))


def walk(side: Side) -> list[Node]:
    """The side's top-level nodes, children in start order (iterative: any depth)."""
    rows = side.rows
    ids = {row["run_id"] for row in rows}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for row in rows:
        parent = row.get("parent_run_id")
        parent_key = None if is_missing(parent) or str(parent) not in ids else str(parent)
        children.setdefault(parent_key, []).append(row)

    def ranked(parent: Node | None, kids: list[dict[str, Any]]) -> list[Node]:
        counts: dict[str, int] = {}
        out = []
        prefix = () if parent is None else parent.key
        depth = 0 if parent is None else parent.depth + 1
        for kid in kids:
            name = str(kid.get("name"))
            rank = counts.get(name, 0)
            counts[name] = rank + 1
            out.append(Node((*prefix, (name, rank)), kid, depth))
        return out

    top = ranked(None, children.get(None, []))
    if side.single_root and len(top) == 1:
        top = [Node((), top[0].row, 0)]  # the compared runs pair whatever their names
    stack = list(top)
    seen: set[str] = set()
    while stack:
        node = stack.pop()
        if node.row["run_id"] in seen:  # hostile data: a run listed twice
            continue
        seen.add(node.row["run_id"])
        node.children = ranked(node, children.get(node.row["run_id"], []))
        stack.extend(node.children)
    return top


Pair = tuple["Node | None", "Node | None"]


def _opcodes(a: Sequence[str], b: Sequence[str]) -> list[tuple[str, int, int, int, int]]:
    """``SequenceMatcher``-style opcodes of a longest common subsequence of ``a`` and ``b``.

    The common prefix and suffix are matched first (so one extra step is placed where it is, even among
    repeated names, where ``SequenceMatcher``'s longest-block heuristic may shift everything by a period); the
    middle is aligned by an exact LCS, or by ``SequenceMatcher`` when it is too large for the quadratic table.
    """
    n, m = len(a), len(b)
    pre = 0
    while pre < n and pre < m and a[pre] == b[pre]:
        pre += 1
    suf = 0
    while suf < n - pre and suf < m - pre and a[n - 1 - suf] == b[m - 1 - suf]:
        suf += 1
    mid_a, mid_b = a[pre : n - suf], b[pre : m - suf]
    matched: list[tuple[int, int]] = [(i, i) for i in range(pre)]
    if mid_a and mid_b:
        if len(mid_a) * len(mid_b) <= _LCS_CELLS:
            middle = _lcs(mid_a, mid_b)
        else:
            blocks = difflib.SequenceMatcher(None, mid_a, mid_b, autojunk=False).get_matching_blocks()
            middle = [(x + k, y + k) for x, y, size in blocks for k in range(size)]
        matched.extend((pre + i, pre + j) for i, j in middle)
    matched.extend((n - suf + k, m - suf + k) for k in range(suf))
    ops: list[tuple[str, int, int, int, int]] = []
    i = j = 0
    for x, y in [*matched, (n, m)]:
        if x > i or y > j:
            tag = "replace" if x > i and y > j else ("delete" if x > i else "insert")
            ops.append((tag, i, x, j, y))
        if (x, y) != (n, m):
            if ops and ops[-1][0] == "equal" and ops[-1][2] == x and ops[-1][4] == y:
                ops[-1] = ("equal", ops[-1][1], x + 1, ops[-1][3], y + 1)
            else:
                ops.append(("equal", x, x + 1, y, y + 1))
        i, j = x + 1, y + 1
    return ops


def _lcs(a: Sequence[str], b: Sequence[str]) -> list[tuple[int, int]]:
    """Index pairs of a longest common subsequence (quadratic table; callers bound the size)."""
    n, m = len(a), len(b)
    table = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        row, below = table[i], table[i + 1]
        for j in range(m - 1, -1, -1):
            row[j] = below[j + 1] + 1 if a[i] == b[j] else max(below[j], row[j + 1])
    pairs = []
    i = j = 0
    while i < n and j < m:
        if a[i] == b[j]:
            pairs.append((i, j))
            i, j = i + 1, j + 1
        elif table[i + 1][j] >= table[i][j + 1]:
            i += 1
        else:
            j += 1
    return pairs


def _match(xs: list[Node], ys: list[Node]) -> list[Pair]:
    """Pair two sibling lists by name (a longest common subsequence); the rest, one-sided, in order (``a``'s first).

    Inside a block of different names, runs of the same type pair up (a model swapped for another still pairs).
    """
    pairs: list[Pair] = []
    for tag, a0, a1, b0, b1 in _opcodes([x.name for x in xs], [y.name for y in ys]):
        if tag == "equal":
            pairs.extend(zip(xs[a0:a1], ys[b0:b1], strict=True))
            continue
        block_a, block_b = xs[a0:a1], ys[b0:b1]
        types_a = [str(x.row.get("run_type")) for x in block_a]
        types_b = [str(y.row.get("run_type")) for y in block_b]
        for sub, c0, c1, d0, d1 in _opcodes(types_a, types_b):
            if sub == "equal":
                pairs.extend(zip(block_a[c0:c1], block_b[d0:d1], strict=True))
            else:
                pairs.extend((x, None) for x in block_a[c0:c1])
                pairs.extend((None, y) for y in block_b[d0:d1])
    return pairs


def align(top_a: list[Node], top_b: list[Node]) -> list[Pair]:
    """Every aligned pair, depth-first: each pair's children are matched to each other, level by level."""
    if len(top_a) == len(top_b) == 1 and top_a[0].key == top_b[0].key == ():
        first: list[Pair] = [(top_a[0], top_b[0])]  # two single runs: compared whatever their names
    else:
        first = _match(top_a, top_b)
    pairs: list[Pair] = []
    stack = list(reversed(first))
    while stack:
        x, y = stack.pop()
        pairs.append((x, y))
        kids = _match(x.children if x is not None else [], y.children if y is not None else [])
        stack.extend(reversed(kids))
    return pairs


def path_text(node: Node, root_name: str) -> str:
    """``LangGraph/agent#2/DemoChatModel``: the names from the root, ``#n`` for the n-th same-named sibling."""
    parts = [name if rank == 0 else f"{name}#{rank + 1}" for name, rank in node.key]
    if len(node.key) == node.depth:  # a single compared run: keys are relative to it
        parts.insert(0, root_name)
    return "/".join(parts)
