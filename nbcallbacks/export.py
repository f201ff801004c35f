"""pandas DataFrames of what a recorder holds: one row per run, per event, per metric.

These frames are the contract that charts, sinks and users build on; their columns and dtypes are fixed here and
are the same on an empty recorder, a running one and a finished one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from nbcallbacks.events import EVENT_COLUMNS, METRIC_COLUMNS, RUN_COLUMNS

if TYPE_CHECKING:
    from nbcallbacks.events import EventRow, RunRecord
    from nbcallbacks.recorder import Recorder

__all__ = [
    "EVENT_COLUMNS",
    "METRIC_COLUMNS",
    "RUN_COLUMNS",
    "events_dataframe",
    "events_frame",
    "metrics_dataframe",
    "runs_dataframe",
    "runs_frame",
]

_TEXT = "string"
_TIME = "datetime64[ns, UTC]"
_FLOAT = "float64"


def _times(seconds: list[float | None]) -> pd.Series:
    values = np.array([np.nan if s is None else s for s in seconds], dtype="float64")
    nanos = np.round(values * 1e9)
    stamps = pd.to_datetime(pd.Series(nanos, dtype="float64"), unit="ns", utc=True)
    return stamps.astype("datetime64[ns, UTC]")


def _frame(columns: dict[str, str], values: dict[str, list[Any]]) -> pd.DataFrame:
    """A DataFrame with exactly ``columns`` in order and dtype, from lists of Python values."""
    data: dict[str, pd.Series] = {}
    for name, dtype in columns.items():
        column = values[name]
        if dtype == _TIME:
            data[name] = _times(column)
        elif dtype == "object":
            cells = np.empty(len(column), dtype=object)
            for i, value in enumerate(column):  # one by one: a list or dict value stays one cell
                cells[i] = value
            data[name] = pd.Series(cells, dtype="object")
        elif dtype == _FLOAT:
            data[name] = pd.Series([np.nan if v is None else v for v in column], dtype=dtype)
        else:
            data[name] = pd.Series(column, dtype=dtype)
    frame: pd.DataFrame = pd.DataFrame(data, columns=list(columns))
    return frame


def runs_frame(runs: list[RunRecord]) -> pd.DataFrame:
    """The runs DataFrame of these run records (start order kept)."""
    first = min((run.start for run in runs), default=0.0)
    values: dict[str, list[Any]] = {name: [] for name in RUN_COLUMNS}
    for run in runs:
        row = run.to_row(first)
        for name, value in row.items():
            values[name].append(value)
    return _frame(RUN_COLUMNS, values)


def events_frame(events: list[EventRow], first_time: float | None) -> pd.DataFrame:
    """The events DataFrame of these event rows; ``elapsed_s`` counts from ``first_time``."""
    origin = first_time if first_time is not None else (events[0].time if events else 0.0)
    values: dict[str, list[Any]] = {name: [] for name in EVENT_COLUMNS}
    for event in events:
        values["seq"].append(event.seq)
        values["time"].append(event.time)
        values["elapsed_s"].append(event.time - origin)
        values["event"].append(event.event)
        values["run_id"].append(event.run_id or None)
        values["parent_run_id"].append(event.parent_run_id)
        values["name"].append(event.name or None)
        values["run_type"].append(event.run_type or None)
        values["token"].append(event.token)
        values["token_kind"].append(event.token_kind)
        values["data"].append(event.data)
        values["thread"].append(event.thread)
    return _frame(EVENT_COLUMNS, values)


def runs_dataframe(recorder: Recorder) -> pd.DataFrame:
    """One row per run, in start order; works while runs are still going and on an empty recorder."""
    return runs_frame(recorder.runs())


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
    return _frame(METRIC_COLUMNS, values)
