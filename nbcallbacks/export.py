"""pandas DataFrames of what a recorder holds: one row per run, per event, per metric.

These frames are the contract that charts, sinks and users build on. Their columns and dtypes come from the
field table (``nbcallbacks.schema``) and are the same on an empty recorder, a running one and a finished one;
the runs frame's tree fields (depth, orphan, display status, key runs, cost totals) come from
``nbcallbacks.tree``, like everywhere else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from nbcallbacks.schema import (
    EVENT_COLUMNS,
    FLOAT,
    METRIC_COLUMNS,
    OBJECT,
    RUN_COLUMNS,
    TIME,
    event_record,
    origin_of,
    run_record,
)
from nbcallbacks.tree import Tree

if TYPE_CHECKING:
    from nbcallbacks.events import EventRow, RunRecord
    from nbcallbacks.recorder import Recorder
    from nbcallbacks.tree import Pricing

__all__ = [
    "EVENT_COLUMNS",
    "METRIC_COLUMNS",
    "RUN_COLUMNS",
    "events_dataframe",
    "events_frame",
    "frame",
    "metrics_dataframe",
    "runs_dataframe",
    "runs_frame",
]


def _times(seconds: list[float | None]) -> pd.Series:
    """Seconds since the epoch as tz-aware UTC timestamps.

    pandas converts seconds exactly; multiplying by 1e9 first would round today's times by up to ~128 ns.
    """
    values = pd.Series([np.nan if s is None else s for s in seconds], dtype="float64")
    return pd.to_datetime(values, unit="s", utc=True).astype(TIME)


def frame(columns: dict[str, str], values: dict[str, list[Any]]) -> pd.DataFrame:
    """A DataFrame with exactly ``columns`` (name -> dtype) in order, from lists of Python values.

    Times are seconds since the epoch (``None`` for missing); object columns keep each value as one cell.
    """
    data: dict[str, pd.Series] = {}
    for name, dtype in columns.items():
        column = values[name]
        if dtype == TIME:
            data[name] = _times(column)
        elif dtype == OBJECT:
            cells = np.empty(len(column), dtype=object)
            for i, value in enumerate(column):  # one by one: a list or dict value stays one cell
                cells[i] = value
            data[name] = pd.Series(cells, dtype="object")
        elif dtype == FLOAT:
            data[name] = pd.Series([np.nan if v is None else v for v in column], dtype=dtype)
        else:
            data[name] = pd.Series(column, dtype=dtype)
    result: pd.DataFrame = pd.DataFrame(data, columns=list(columns))
    return result


def _columns(records: list[dict[str, Any]], columns: dict[str, str]) -> dict[str, list[Any]]:
    return {name: [record[name] for record in records] for name in columns}


def runs_frame(runs: list[RunRecord], pricing: Pricing | None = None) -> pd.DataFrame:
    """The runs DataFrame of these run records (start order kept)."""
    tree = Tree.of(runs, pricing)
    records = [run_record(run, tree.derived(run.run_id)) for run in sorted(runs, key=lambda r: r.order)]
    return frame(RUN_COLUMNS, _columns(records, RUN_COLUMNS))


def events_frame(events: list[EventRow], first_time: float | None) -> pd.DataFrame:
    """The events DataFrame of these event rows; ``elapsed_s`` counts from ``first_time``."""
    origin = origin_of(first_time, events)
    return frame(EVENT_COLUMNS, _columns([event_record(event, origin) for event in events], EVENT_COLUMNS))


def runs_dataframe(recorder: Recorder, pricing: Pricing | None = None) -> pd.DataFrame:
    """One row per run, in start order; works while runs are still going and on an empty recorder."""
    return runs_frame(recorder.runs(), pricing)


def events_dataframe(recorder: Recorder) -> pd.DataFrame:
    """One row per kept callback event, in arrival order."""
    return events_frame(recorder.events(), recorder.first_time)


def metrics_dataframe(recorder: Recorder) -> pd.DataFrame:
    """One row per ``nbcallbacks.metric`` call: run id, name, value, labels, time."""
    values: dict[str, list[Any]] = {name: [] for name in METRIC_COLUMNS}
    for event in recorder.events():
        if event.event != "metric" or not isinstance(event.data, dict):
            continue
        value = event.data.get("value")
        values["run_id"].append(event.run_id or None)
        values["name"].append(event.data.get("name"))
        values["value"].append(float(value) if isinstance(value, (int, float)) else None)
        values["labels"].append(event.data.get("labels") or {})
        values["time"].append(event.time)
    return frame(METRIC_COLUMNS, values)
