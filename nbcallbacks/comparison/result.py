"""The result of ``compare``: a DataFrame (:class:`Comparison`) with one row per aligned pair of runs."""

from __future__ import annotations

from typing import Any, Final, cast

import pandas as pd

from nbcallbacks.comparison.alignment import align, path_text, walk
from nbcallbacks.comparison.sides import resolve
from nbcallbacks.comparison.values import as_float, as_int, delta, output_text, shorten
from nbcallbacks.comparison.view import render
from nbcallbacks.export import frame

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
        return render(self, pairs, labels)


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
    read: dict[int, list[dict[str, Any]]] = {}  # both sides of one trace read it once
    side_a, side_b = resolve(a, labels[0], read), resolve(b, labels[1], read)
    top_a, top_b = walk(side_a), walk(side_b)
    pairs = align(top_a, top_b)
    root_a = top_a[0].name if top_a else None
    root_b = top_b[0].name if top_b else None
    values: dict[str, list[Any]] = {name: [] for name in COMPARE_COLUMNS}
    for node_a, node_b in pairs:
        node = node_a if node_a is not None else node_b
        assert node is not None  # noqa: S101 - every pair has a side
        row_a = node_a.row if node_a is not None else None
        row_b = node_b.row if node_b is not None else None
        root_name = str(root_a if node_a is not None else root_b)
        values["path"].append(path_text(node, root_name))
        values["name"].append(str(node.row.get("name")))
        values["run_type"].append(node.row.get("run_type"))
        values["depth"].append(node.depth)
        values["only_in"].append(None if row_a is not None and row_b is not None else ("a" if row_b is None else "b"))
        per_side: dict[str, tuple[Any, Any, Any]] = {}
        for suffix, row in (("a", row_a), ("b", row_b)):
            duration = None if row is None else as_float(row.get("duration_s"))
            tokens = None if row is None else as_int(row.get("total_tokens"))
            cost = None if row is None else as_float(row.get("cost_usd"))
            values[f"run_id_{suffix}"].append(None if row is None else row["run_id"])
            values[f"status_{suffix}"].append(None if row is None else row.get("status"))
            values[f"duration_s_{suffix}"].append(duration)
            values[f"total_tokens_{suffix}"].append(tokens)
            values[f"cost_usd_{suffix}"].append(cost)
            values[f"output_{suffix}"].append(None if row is None else shorten(output_text(row.get("outputs"))))
            per_side[suffix] = (duration, tokens, cost)
        (da, ta, ca), (db, tb, cb) = per_side["a"], per_side["b"]
        values["duration_delta_s"].append(delta(da, db))
        token_delta = delta(ta, tb)
        values["tokens_delta"].append(None if token_delta is None else int(token_delta))
        values["cost_delta_usd"].append(delta(ca, cb))
    result = Comparison(frame(COMPARE_COLUMNS, values))
    result._pairs = [  # noqa: SLF001 - the view's own state
        (None if x is None else x.row, None if y is None else y.row) for x, y in pairs
    ]
    result._labels = (side_a.label, side_b.label)  # noqa: SLF001
    return cast("Comparison", result)
