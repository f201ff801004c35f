"""The two sides of a comparison: what ``compare`` accepts, resolved to the runs (rows of a runs DataFrame) of each.

- a ``NotebookHandler``: its last root run (the most recently started run without a known parent) and its
  descendants;
- ``(handler, run_id)`` or ``(runs_dataframe, run_id)``: that run and its descendants (a unique prefix of the id
  is enough);
- a runs DataFrame: every run in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import pandas as pd

from nbcallbacks.missing import is_missing

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["Side", "resolve"]


@dataclass(frozen=True, slots=True)
class Side:
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


def resolve(source: Any, default_label: str, read: dict[int, list[dict[str, Any]]] | None = None) -> Side:
    """One side's runs, in start order, and its label (a handler's title, else ``default_label``).

    ``read``: rows already read per source object (``id``), shared by the two sides of one comparison, so a
    trace compared with itself (two runs of one handler or DataFrame) is priced and converted once.
    """
    run_id = None
    if isinstance(source, tuple):
        if len(source) != 2:  # noqa: PLR2004 - (handler or frame, run id)
            msg = f"compare(): a tuple side must be (handler or runs DataFrame, run_id), got {len(source)} items"
            raise TypeError(msg)
        source, run_id = source
    is_frame = isinstance(source, pd.DataFrame)
    rows = None if read is None else read.get(id(source))
    if rows is None:
        frame = _with_costs(_frame_of(source))
        rows = [
            {**row, "run_id": str(row["run_id"])}
            for row in cast("list[dict[str, Any]]", frame.sort_values("order", kind="stable").to_dict("records"))
        ]
        if read is not None:
            read[id(source)] = rows
    label = default_label
    title = getattr(source, "title", None)
    if isinstance(title, str) and title:
        label = title
    if run_id is not None:
        root = _find_run(rows, run_id)
        return Side(_subtree(rows, root), label, single_root=True)
    if is_frame:
        return Side(rows, label, single_root=len(_roots(rows)) == 1)
    roots = _roots(rows)
    if not roots:
        return Side([], label, single_root=True)
    return Side(_subtree(rows, roots[-1]["run_id"]), label, single_root=True)
