"""Compare two runs side by side: ``nbcallbacks.compare(a, b)`` (defined here, exported lazily by the package).

Each side is one of:

- a ``NotebookHandler``: its last root run (the most recently started run without a known parent);
- ``(handler, run_id)`` or ``(runs_dataframe, run_id)``: that run and its descendants (a unique prefix of the id
  is enough);
- a runs DataFrame (``h.runs_dataframe()`` or a slice of it): every run in it.

Runs are aligned by their *path* in the tree, level by level: the children (in start order) of two paired runs
are aligned by name with a longest-common-subsequence alignment (common prefix and suffix first, then an exact
LCS, or ``difflib.SequenceMatcher`` for very long sibling lists), then the children of each pair, and so on. An
extra tool call or a retried step is a row present on one side only (``only_in``), and everything after it still
pairs up, even among repeated names; inside a block of different names, runs of the same type pair (a model
swapped for another). When each side is a single run, the two roots pair whatever their names. Rows come in
depth-first order; ``path`` names a run from the root down, with its rank among same-named siblings
(``LangGraph/agent#2/DemoChatModel`` is the model call of the second ``agent`` step).

The result is a ``pandas.DataFrame`` (a :class:`Comparison`) with one row per aligned pair; displayed in a
notebook it renders as a static side-by-side view: the two trees row by row, differences marked, paired waterfall
bars on one time scale, and per pair a ``<details>`` with both inputs and outputs and a word diff of the outputs.
The view is plain HTML and CSS (no script), with every text escaped.
"""

from __future__ import annotations

import difflib
import html
import json
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, cast

import numpy as np
import pandas as pd

from nbcallbacks.colors import ERROR_COLOR, OTHER_COLOR, RUN_TYPE_COLORS
from nbcallbacks.missing import is_missing

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = ["COMPARE_COLUMNS", "Comparison", "compare"]

COMPARE_COLUMNS: Final[dict[str, str]] = {
    "path": "string",
    "name": "string",
    "run_type": "string",
    "depth": "int64",
    "only_in": "string",
    "run_id_a": "string",
    "run_id_b": "string",
    "status_a": "string",
    "status_b": "string",
    "duration_s_a": "float64",
    "duration_s_b": "float64",
    "duration_delta_s": "float64",
    "total_tokens_a": "Int64",
    "total_tokens_b": "Int64",
    "tokens_delta": "Int64",
    "cost_usd_a": "float64",
    "cost_usd_b": "float64",
    "cost_delta_usd": "float64",
    "output_a": "string",
    "output_b": "string",
}
"""Column name -> dtype of the frame ``compare`` returns. Deltas are ``b - a``, missing unless both sides have
a value; ``total_tokens_*`` and ``cost_usd_*`` are the run's own (as in ``runs_dataframe``: model runs)."""

_OUTPUT_CHARS: Final = 200
"""Characters of an output kept in the ``output_a``/``output_b`` columns."""
_DIFF_CHARS: Final = 4000
"""Characters of each output compared by the word diff (it is quadratic in the worst case)."""
_DETAIL_CHARS: Final = 20_000
_MAX_HTML_ROWS: Final = 1000
_LCS_CELLS: Final = 250_000
"""Largest sibling-list middle (len_a * len_b) aligned by an exact LCS; larger ones use SequenceMatcher."""
_WORD: Final = re.compile(r"\s+|\w+|[^\w\s]")


# --- resolving a side


@dataclass(frozen=True, slots=True)
class _Side:
    """One side of a comparison: its runs (rows of a runs DataFrame) and a label."""

    rows: list[dict[str, Any]]
    label: str
    single_root: bool


def _frame_of(source: Any) -> pd.DataFrame:
    if isinstance(source, pd.DataFrame):
        return source
    runs_dataframe = getattr(source, "runs_dataframe", None)
    if callable(runs_dataframe):
        return cast("pd.DataFrame", runs_dataframe())
    msg = (
        "compare() takes a NotebookHandler (its last root run), a runs DataFrame, or (handler or DataFrame, run_id);"
        f" got {type(source).__name__}"
    )
    raise TypeError(msg)


def _with_costs(frame: pd.DataFrame) -> pd.DataFrame:
    required = {"run_id", "parent_run_id", "name", "run_type", "order"}
    missing = required - set(frame.columns)
    if missing:
        msg = f"compare() needs a runs DataFrame (h.runs_dataframe()); missing columns: {sorted(missing)}"
        raise ValueError(msg)
    if "cost_usd" not in frame.columns:
        from nbcallbacks.cost import add_cost_columns  # noqa: PLC0415 - only when the frame has no costs yet

        frame = add_cost_columns(frame)
    return frame


def _roots(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    ids = {row["run_id"] for row in rows}
    return [row for row in rows if is_missing(row.get("parent_run_id")) or row["parent_run_id"] not in ids]


def _subtree(rows: Sequence[dict[str, Any]], root_id: str) -> list[dict[str, Any]]:
    children: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if not is_missing(row.get("parent_run_id")):
            children.setdefault(str(row["parent_run_id"]), []).append(row)
    keep: list[dict[str, Any]] = []
    stack = [row for row in rows if row["run_id"] == root_id]
    seen: set[str] = set()
    while stack:
        row = stack.pop()
        if row["run_id"] in seen:
            continue
        seen.add(row["run_id"])
        keep.append(row)
        stack.extend(children.get(row["run_id"], ()))
    return sorted(keep, key=lambda r: r["order"])


def _find_run(rows: Sequence[dict[str, Any]], run_id: Any) -> str:
    wanted = str(run_id)
    ids = [row["run_id"] for row in rows]
    if wanted in ids:
        return wanted
    matches = [i for i in ids if i.startswith(wanted)]
    if len(matches) == 1:
        return str(matches[0])
    if not matches:
        msg = f"compare(): no run with id {wanted!r} (or an id starting with it)"
        raise KeyError(msg)
    msg = f"compare(): run id prefix {wanted!r} is ambiguous ({len(matches)} runs)"
    raise KeyError(msg)


def _side(source: Any, default_label: str) -> _Side:
    run_id = None
    if isinstance(source, tuple):
        if len(source) != 2:  # noqa: PLR2004 - (handler or frame, run id)
            msg = f"compare(): a tuple side must be (handler or runs DataFrame, run_id), got {len(source)} items"
            raise TypeError(msg)
        source, run_id = source
    is_frame = isinstance(source, pd.DataFrame)
    frame = _with_costs(_frame_of(source))
    rows = [
        {**row, "run_id": str(row["run_id"])}
        for row in cast("list[dict[str, Any]]", frame.sort_values("order", kind="stable").to_dict("records"))
    ]
    label = default_label
    title = getattr(source, "title", None)
    if isinstance(title, str) and title:
        label = title
    if run_id is not None:
        root = _find_run(rows, run_id)
        return _Side(_subtree(rows, root), label, single_root=True)
    if is_frame:
        return _Side(rows, label, single_root=len(_roots(rows)) == 1)
    roots = _roots(rows)
    if not roots:
        return _Side([], label, single_root=True)
    return _Side(_subtree(rows, roots[-1]["run_id"]), label, single_root=True)


# --- paths and alignment


@dataclass(slots=True)
class _Node:
    key: tuple[tuple[str, int], ...]
    """Path from the root: (name, rank among same-named siblings) per level (relative to a single compared run)."""
    row: dict[str, Any]
    depth: int
    children: list[_Node] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.row.get("name"))


def _walk(side: _Side) -> list[_Node]:
    """The side's top-level nodes, children in start order (iterative: any depth)."""
    rows = side.rows
    ids = {row["run_id"] for row in rows}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for row in rows:
        parent = row.get("parent_run_id")
        parent_key = None if is_missing(parent) or str(parent) not in ids else str(parent)
        children.setdefault(parent_key, []).append(row)

    def ranked(parent: _Node | None, kids: list[dict[str, Any]]) -> list[_Node]:
        counts: dict[str, int] = {}
        out = []
        prefix = () if parent is None else parent.key
        depth = 0 if parent is None else parent.depth + 1
        for kid in kids:
            name = str(kid.get("name"))
            rank = counts.get(name, 0)
            counts[name] = rank + 1
            out.append(_Node((*prefix, (name, rank)), kid, depth))
        return out

    top = ranked(None, children.get(None, []))
    if side.single_root and len(top) == 1:
        top = [_Node((), top[0].row, 0)]  # the compared runs pair whatever their names
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


_Pair = tuple["_Node | None", "_Node | None"]


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


def _match(xs: list[_Node], ys: list[_Node]) -> list[_Pair]:
    """Pair two sibling lists by name (a longest common subsequence); the rest, one-sided, in order (``a``'s first).

    Inside a block of different names, runs of the same type pair up (a model swapped for another still pairs).
    """
    pairs: list[_Pair] = []
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


def _align(top_a: list[_Node], top_b: list[_Node]) -> list[_Pair]:
    """Every aligned pair, depth-first: each pair's children are matched to each other, level by level."""
    if len(top_a) == len(top_b) == 1 and top_a[0].key == top_b[0].key == ():
        first: list[_Pair] = [(top_a[0], top_b[0])]  # two single runs: compared whatever their names
    else:
        first = _match(top_a, top_b)
    pairs: list[_Pair] = []
    stack = list(reversed(first))
    while stack:
        x, y = stack.pop()
        pairs.append((x, y))
        kids = _match(x.children if x is not None else [], y.children if y is not None else [])
        stack.extend(reversed(kids))
    return pairs


def _path_text(node: _Node, root_name: str) -> str:
    """``LangGraph/agent#2/DemoChatModel``: the names from the root, ``#n`` for the n-th same-named sibling."""
    parts = [name if rank == 0 else f"{name}#{rank + 1}" for name, rank in node.key]
    if len(node.key) == node.depth:  # a single compared run: keys are relative to it
        parts.insert(0, root_name)
    return "/".join(parts)


# --- values


def _number(value: Any) -> float | None:
    if is_missing(value) or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _int(value: Any) -> int | None:
    number = _number(value)
    return None if number is None else int(number)


_VOLATILE_KEYS: Final = frozenset({"id", "tool_call_id", "run_id"})
"""Keys whose values differ between any two runs (message and call ids): left out of compared output text."""


def _stable(value: Any, depth: int = 0) -> Any:
    """``value`` without the ids that differ between any two runs, so equal outputs compare equal."""
    if depth > 50:  # noqa: PLR2004 - previews are at most 50 levels deep
        return value
    if isinstance(value, dict):
        return {k: _stable(v, depth + 1) for k, v in value.items() if k not in _VOLATILE_KEYS}
    if isinstance(value, list):
        return [_stable(v, depth + 1) for v in value]
    return value


def output_text(value: Any) -> str:
    """A run's output preview as text to compare: a message's content (and tool calls), a string, or compact JSON.

    Message and tool-call ids (different in every run) are left out.
    """
    if not isinstance(value, (dict, list)) and is_missing(value):
        return ""
    value = _stable(value)
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        content = value.get("content")
        if isinstance(content, str) and ("type" in value or "tool_calls" in value):
            calls = value.get("tool_calls")
            if calls:
                return (content + "\n" if content else "") + "tool calls: " + _json(calls)
            return content
        if len(value) == 1:
            (only,) = value.values()
            if isinstance(only, str):
                return only
    return _json(value)


def _json(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


def _short(text: str, limit: int = _OUTPUT_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _delta(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else b - a


# --- the result


class Comparison(pd.DataFrame):
    """The frame ``compare`` returns: a plain DataFrame that displays as a side-by-side view in a notebook.

    Derived frames (filters, copies) are plain DataFrames. ``to_view_html()`` gives the view's HTML.
    """

    _metadata = ["_pairs", "_labels"]  # noqa: RUF012 - pandas reads this exact list attribute

    @property
    def _constructor(self) -> type[pd.DataFrame]:
        return pd.DataFrame

    def _repr_html_(self) -> str:
        """The side-by-side view (static HTML and CSS, every text escaped)."""
        return self.to_view_html()

    def to_view_html(self) -> str:
        """The side-by-side view as an HTML fragment (no script, no external resource)."""
        pairs: list[tuple[dict[str, Any] | None, dict[str, Any] | None]] = getattr(self, "_pairs", [])
        labels: tuple[str, str] = getattr(self, "_labels", ("a", "b"))
        return _render(self, pairs, labels)


def compare(a: Any, b: Any, *, labels: tuple[str, str] = ("a", "b")) -> Comparison:
    """Align two runs (or traces) and return one row per aligned pair of runs (see the module docstring).

    Args:
        a: a ``NotebookHandler`` (its last root run), ``(handler or runs DataFrame, run_id)``, or a runs DataFrame.
        b: the same for the other side.
        labels: what the view calls the two sides (a handler's title wins when it has one).

    Raises:
        TypeError: for anything else as a side.
        KeyError: for a run id not found (or an ambiguous prefix).
        ValueError: for a DataFrame that is not a runs DataFrame.
    """
    side_a, side_b = _side(a, labels[0]), _side(b, labels[1])
    top_a, top_b = _walk(side_a), _walk(side_b)
    pairs = _align(top_a, top_b)
    root_a = top_a[0].name if top_a else None
    root_b = top_b[0].name if top_b else None
    values: dict[str, list[Any]] = {name: [] for name in COMPARE_COLUMNS}
    for node_a, node_b in pairs:
        node = node_a if node_a is not None else node_b
        assert node is not None  # noqa: S101 - every pair has a side
        row_a = node_a.row if node_a is not None else None
        row_b = node_b.row if node_b is not None else None
        root_name = str(root_a if node_a is not None else root_b)
        values["path"].append(_path_text(node, root_name))
        values["name"].append(str(node.row.get("name")))
        values["run_type"].append(node.row.get("run_type"))
        values["depth"].append(node.depth)
        values["only_in"].append(None if row_a is not None and row_b is not None else ("a" if row_b is None else "b"))
        per_side: dict[str, tuple[Any, Any, Any]] = {}
        for suffix, row in (("a", row_a), ("b", row_b)):
            duration = None if row is None else _number(row.get("duration_s"))
            tokens = None if row is None else _int(row.get("total_tokens"))
            cost = None if row is None else _number(row.get("cost_usd"))
            values[f"run_id_{suffix}"].append(None if row is None else row["run_id"])
            values[f"status_{suffix}"].append(None if row is None else row.get("status"))
            values[f"duration_s_{suffix}"].append(duration)
            values[f"total_tokens_{suffix}"].append(tokens)
            values[f"cost_usd_{suffix}"].append(cost)
            values[f"output_{suffix}"].append(None if row is None else _short(output_text(row.get("outputs"))))
            per_side[suffix] = (duration, tokens, cost)
        (da, ta, ca), (db, tb, cb) = per_side["a"], per_side["b"]
        values["duration_delta_s"].append(_delta(da, db))
        token_delta = _delta(ta, tb)
        values["tokens_delta"].append(None if token_delta is None else int(token_delta))
        values["cost_delta_usd"].append(_delta(ca, cb))
    data: dict[str, pd.Series] = {}
    for name, dtype in COMPARE_COLUMNS.items():
        column = values[name]
        if dtype == "float64":
            data[name] = pd.Series([np.nan if v is None else v for v in column], dtype="float64")
        else:
            data[name] = pd.Series(column, dtype=dtype)
    result = Comparison(data, columns=list(COMPARE_COLUMNS))
    result._pairs = [  # noqa: SLF001 - the view's own state
        (None if x is None else x.row, None if y is None else y.row) for x, y in pairs
    ]
    result._labels = (side_a.label, side_b.label)  # noqa: SLF001
    return cast("Comparison", result)


# --- the view

_CSS: Final = """
.nbc-cmp{--c-fg:var(--jp-ui-font-color1,#1f2328);--c-muted:var(--jp-ui-font-color2,#59636e);
--c-faint:var(--jp-ui-font-color3,#818b98);--c-bg:var(--jp-layout-color0,#fff);--c-alt:var(--jp-layout-color1,#f6f8fa);
--c-hover:var(--jp-layout-color2,#eaeef2);--c-border:var(--jp-border-color2,#d1d9e0);
--c-accent:var(--jp-brand-color1,#1976d2);--c-ok:var(--jp-success-color1,#2e7d32);
--c-err:var(--jp-error-color1,#d32f2f);--c-warn:var(--jp-warn-color1,#e65100);
font-family:var(--jp-ui-font-family,system-ui,-apple-system,"Segoe UI",sans-serif);font-size:13px;line-height:1.4;
color:var(--c-fg);background:var(--c-bg);border:1px solid var(--c-border);border-radius:4px;overflow:hidden}
.nbc-cmp *{box-sizing:border-box}
.nbc-cmp-head{display:flex;flex-wrap:wrap;gap:4px 16px;padding:6px 10px;background:var(--c-alt);
border-bottom:1px solid var(--c-border)}
.nbc-cmp-head b{font-weight:600}.nbc-cmp-muted{color:var(--c-muted)}
.nbc-cmp-grid{display:grid;grid-template-columns:minmax(0,1fr) 110px minmax(0,1fr) 110px 150px;gap:0 8px;
align-items:center;padding:2px 10px}
.nbc-cmp-cols{font-weight:600;color:var(--c-muted);border-bottom:1px solid var(--c-border);background:var(--c-alt)}
.nbc-cmp details{border-bottom:1px solid var(--c-border)}
.nbc-cmp summary{cursor:pointer;list-style:none}
.nbc-cmp summary::-webkit-details-marker{display:none}
.nbc-cmp summary:hover{background:var(--c-hover)}
.nbc-cmp-cell{white-space:nowrap;overflow:hidden;text-overflow:ellipsis;min-width:0}
.nbc-cmp-dot{display:inline-block;width:8px;height:8px;border-radius:2px;margin-right:5px;vertical-align:middle}
.nbc-cmp-st-error{color:var(--c-err)}.nbc-cmp-st-ok{color:var(--c-ok)}
.nbc-cmp-st-running,.nbc-cmp-st-interrupted{color:var(--c-warn)}
.nbc-cmp-none{color:var(--c-faint)}
.nbc-cmp-only-a summary{background:color-mix(in srgb,var(--c-err) 9%,transparent)}
.nbc-cmp-only-b summary{background:color-mix(in srgb,var(--c-ok) 10%,transparent)}
.nbc-cmp-mark{display:inline-block;padding:0 4px;margin-left:4px;border-radius:3px;font-size:11px;
color:var(--c-warn);border:1px solid currentColor}
.nbc-cmp-track{position:relative;height:10px;background:var(--c-alt);border-radius:2px}
.nbc-cmp-bar{position:absolute;top:0;height:10px;min-width:2px;border-radius:2px}
.nbc-cmp-delta{font-variant-numeric:tabular-nums;font-size:12px}
.nbc-cmp-worse{color:var(--c-err)}.nbc-cmp-better{color:var(--c-ok)}
.nbc-cmp-body{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:6px 12px;padding:6px 10px 10px;
background:var(--c-alt)}
.nbc-cmp-body h4{margin:4px 0 2px;font-size:12px;color:var(--c-muted);font-weight:600}
.nbc-cmp-body pre,.nbc-cmp-diff{margin:0;padding:6px;max-height:240px;overflow:auto;white-space:pre-wrap;
word-break:break-word;font-family:var(--jp-code-font-family,ui-monospace,Menlo,Consolas,monospace);font-size:12px;
background:var(--c-bg);border:1px solid var(--c-border);border-radius:3px}
.nbc-cmp-wide{grid-column:1 / -1}
.nbc-cmp-diff del{background:color-mix(in srgb,var(--c-err) 18%,transparent);text-decoration:line-through}
.nbc-cmp-diff ins{background:color-mix(in srgb,var(--c-ok) 20%,transparent);text-decoration:none}
.nbc-cmp-foot{padding:6px 10px;color:var(--c-muted)}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 0.01:  # noqa: PLR2004 - sub-10 ms steps need a decimal
        return f"{value * 1000:.1f} ms"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.2f} s"


def _usd(value: float | None) -> str:
    if value is None:
        return "price unknown"
    return f"${value:.6f}" if abs(value) < 0.01 else f"${value:.4f}"  # noqa: PLR2004 - small amounts need digits


def _signed(value: float | None, unit: str) -> str:
    if value is None:
        return ""
    if unit == "s":
        text = _seconds(abs(value))
    elif unit == "$":
        text = _usd(abs(value))
    else:
        text = f"{abs(value):,.0f} tok"
    return ("+" if value > 0 else "\u2212" if value < 0 else "±") + text


def _times(rows: Iterable[dict[str, Any] | None]) -> tuple[float, float]:
    """(earliest start, span in seconds) of one side's runs, for its waterfall."""
    starts, ends = [], []
    for row in rows:
        if row is None:
            continue
        start = _epoch(row.get("start"))
        if start is None:
            continue
        starts.append(start)
        duration = _number(row.get("duration_s"))
        ends.append(start + (duration or 0.0))
    if not starts:
        return 0.0, 0.0
    return min(starts), max(ends) - min(starts)


def _epoch(value: Any) -> float | None:
    if is_missing(value):
        return None
    if isinstance(value, pd.Timestamp):
        return float(value.timestamp())
    return _number(value)


def _bar(row: dict[str, Any] | None, origin: float, scale: float) -> str:
    if row is None:
        return '<div class="nbc-cmp-cell"></div>'
    start = _epoch(row.get("start"))
    duration = _number(row.get("duration_s"))
    if start is None or scale <= 0:
        return '<div class="nbc-cmp-track"></div>'
    left = max(0.0, min(100.0, (start - origin) / scale * 100))
    width = max(0.0, min(100.0 - left, (duration or 0.0) / scale * 100))
    color = RUN_TYPE_COLORS.get(str(row.get("run_type")), OTHER_COLOR)
    if row.get("status") == "error":
        color = ERROR_COLOR
    title = _e(f"{row.get('name')}: {_seconds(duration)}")
    return (
        f'<div class="nbc-cmp-track" title="{title}"><div class="nbc-cmp-bar" '
        f'style="left:{left:.2f}%;width:{width:.2f}%;background:{color}"></div></div>'
    )


def _tree_cell(row: dict[str, Any] | None, depth: int, marks: str) -> str:
    if row is None:
        return '<div class="nbc-cmp-cell nbc-cmp-none">—</div>'
    status = str(row.get("status"))
    icon = {"ok": "✓", "error": "✗", "running": "…", "interrupted": "⏸"}.get(status, "?")
    color = RUN_TYPE_COLORS.get(str(row.get("run_type")), OTHER_COLOR)
    bits = [_seconds(_number(row.get("duration_s")))]
    tokens = _int(row.get("total_tokens"))
    if tokens is not None:
        bits.append(f"{tokens:,} tok")
    if row.get("run_type") in {"llm", "chat_model"}:
        bits.append(_usd(_number(row.get("cost_usd"))))
    return (
        f'<div class="nbc-cmp-cell" style="padding-left:{depth * 14}px" title="{_e(row.get("name"))}">'
        f'<span class="nbc-cmp-dot" style="background:{color}"></span>{_e(row.get("name"))} '
        f'<span class="nbc-cmp-st-{_e(status)}">{icon}</span>{marks} '
        f'<span class="nbc-cmp-muted">{_e(" · ".join(bits))}</span></div>'
    )


def _word_diff(a: str, b: str) -> str:
    """``a`` -> ``b`` word by word: removed words in ``<del>``, added in ``<ins>``; all text escaped."""
    note = ""
    if len(a) > _DIFF_CHARS or len(b) > _DIFF_CHARS:
        a, b = a[:_DIFF_CHARS], b[:_DIFF_CHARS]
        note = f'<span class="nbc-cmp-muted"> (first {_DIFF_CHARS:,} characters compared)</span>'
    words_a, words_b = _WORD.findall(a), _WORD.findall(b)
    out = []
    for tag, a0, a1, b0, b1 in difflib.SequenceMatcher(None, words_a, words_b, autojunk=False).get_opcodes():
        if tag == "equal":
            out.append(_e("".join(words_a[a0:a1])))
            continue
        if a1 > a0:
            out.append(f"<del>{_e(''.join(words_a[a0:a1]))}</del>")
        if b1 > b0:
            out.append(f"<ins>{_e(''.join(words_b[b0:b1]))}</ins>")
    return f'<div class="nbc-cmp-diff">{"".join(out)}</div>{note}'


def _pretty(value: Any) -> str:
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, indent=1, default=str)
        except (TypeError, ValueError):
            text = str(value)
    if len(text) > _DETAIL_CHARS:
        text = text[:_DETAIL_CHARS] + f"…[+{len(text) - _DETAIL_CHARS:,} chars]"
    return _e(text)


def _body(row_a: dict[str, Any] | None, row_b: dict[str, Any] | None, labels: tuple[str, str]) -> str:
    parts = []
    for part in ("inputs", "outputs", "error"):
        cells = []
        for label, row in zip(labels, (row_a, row_b), strict=True):
            if row is None:
                cells.append(f'<div><h4>{_e(label)}</h4><div class="nbc-cmp-none">not in this run</div></div>')
                continue
            value = row.get(part)
            if part == "error" and is_missing(value):
                cells.append("<div></div>")
                continue
            shown = "" if not isinstance(value, (dict, list)) and is_missing(value) else _pretty(value)
            cells.append(f"<div><h4>{_e(label)} · {part}</h4><pre>{shown}</pre></div>")
        if part == "error" and all(c == "<div></div>" for c in cells):
            continue
        parts.extend(cells)
    if row_a is not None and row_b is not None:
        text_a, text_b = output_text(row_a.get("outputs")), output_text(row_b.get("outputs"))
        title = "output diff" if text_a != text_b else "outputs are identical"
        parts.append(
            f'<div class="nbc-cmp-wide"><h4>{_e(title)} ({_e(labels[0])} → {_e(labels[1])})</h4>'
            f"{_word_diff(text_a, text_b) if text_a != text_b else ''}</div>"
        )
    return f'<div class="nbc-cmp-body">{"".join(parts)}</div>'


def _delta_cell(row: pd.Series) -> str:
    bits = []
    for column, unit in (("duration_delta_s", "s"), ("tokens_delta", "tok"), ("cost_delta_usd", "$")):
        value = _number(row[column])
        if value is None or value == 0 or (unit == "s" and abs(value) < 0.00005):  # noqa: PLR2004 - shows as 0.0 ms
            continue
        worse = value > 0
        css = "nbc-cmp-worse" if worse else "nbc-cmp-better"
        bits.append(f'<span class="{css}">{_e(_signed(value, unit))}</span>')
    return f'<div class="nbc-cmp-cell nbc-cmp-delta">{" ".join(bits)}</div>'


def _summary(
    pairs: Sequence[tuple[dict[str, Any] | None, dict[str, Any] | None]], labels: tuple[str, str], frame: pd.DataFrame
) -> str:
    out = []
    for index, label in enumerate(labels):
        rows = [row for pair in pairs if (row := pair[index]) is not None]
        _, span = _times(rows)
        tokens = sum(_int(r.get("total_tokens")) or 0 for r in rows)
        costs = [_number(r.get("cost_usd")) for r in rows if r.get("run_type") in {"llm", "chat_model"}]
        known = [c for c in costs if c is not None]
        cost = _usd(sum(known)) if known else "price unknown"
        if known and len(known) < len(costs):
            cost = f"≥ {cost} ({len(costs) - len(known)} unpriced)"
        errors = sum(1 for r in rows if r.get("status") == "error")
        text = f"{len(rows)} runs · {_seconds(span)} · {tokens:,} tokens · {cost}"
        if errors:
            text += f" · {errors} errors"
        out.append(f'<span><b>{_e(label)}</b> <span class="nbc-cmp-muted">{_e(text)}</span></span>')
    only_a = int((frame["only_in"] == "a").sum())
    only_b = int((frame["only_in"] == "b").sum())
    out.append(
        f'<span class="nbc-cmp-muted">{_e(f"{only_a} only in {labels[0]} · {only_b} only in {labels[1]}")}</span>'
    )
    return f'<div class="nbc-cmp-head">{"".join(out)}</div>'


def _render(
    frame: pd.DataFrame,
    pairs: Sequence[tuple[dict[str, Any] | None, dict[str, Any] | None]],
    labels: tuple[str, str],
) -> str:
    origin_a, span_a = _times(a for a, _ in pairs)
    origin_b, span_b = _times(b for _, b in pairs)
    scale = max(span_a, span_b)
    rows_html = []
    shown = min(len(frame), len(pairs), _MAX_HTML_ROWS)
    for index in range(shown):
        row = frame.iloc[index]
        row_a, row_b = pairs[index]
        only = row["only_in"]
        css = "" if is_missing(only) else f" nbc-cmp-only-{_e(only)}"
        marks = ""
        if row_a is not None and row_b is not None:
            if row_a.get("status") != row_b.get("status"):
                marks += '<span class="nbc-cmp-mark">status</span>'
            if output_text(row_a.get("outputs")) != output_text(row_b.get("outputs")):
                marks += '<span class="nbc-cmp-mark">≠ output</span>'
        depth = int(row["depth"])
        rows_html.append(
            f'<details class="nbc-cmp-pair{css}"><summary class="nbc-cmp-grid">'
            f"{_tree_cell(row_a, depth, marks if row_a is not None else '')}{_bar(row_a, origin_a, scale)}"
            f"{_tree_cell(row_b, depth, marks if row_a is None else '')}{_bar(row_b, origin_b, scale)}"
            f"{_delta_cell(row)}</summary>{_body(row_a, row_b, labels)}</details>"
        )
    foot = ""
    if len(frame) > shown:
        foot = (
            f'<div class="nbc-cmp-foot">{len(frame) - shown:,} more rows not shown here; '
            "the DataFrame has them all.</div>"
        )
    columns = (
        f'<div class="nbc-cmp-grid nbc-cmp-cols"><div>{_e(labels[0])}</div><div>timeline</div>'
        f"<div>{_e(labels[1])}</div><div>timeline</div><div>Δ ({_e(labels[1])} \u2212 {_e(labels[0])})</div></div>"
    )
    empty = '<div class="nbc-cmp-foot">No runs to compare.</div>' if not pairs else ""
    return (
        f'<div class="nbc-cmp"><style>{_CSS}</style>{_summary(pairs, labels, frame)}{columns}'
        f"{''.join(rows_html)}{empty}{foot}</div>"
    )
