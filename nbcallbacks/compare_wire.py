"""The widget's Compare panel: two runs picked in the widget, compared by ``nbcallbacks.comparison`` for its front end.

The front end sends ``{"type": "compare", "a": run_id, "b": run_id, "request": str}`` (the two selected runs, in
selection order; each side is that run and its descendants). ``comparison_message`` answers it with::

    {"type": "comparison", "request": str, "a": run_id, "b": run_id,
     "labels": [name of run a, name of run b], "inputs": [input preview of run a, of run b],
     "total_rows": int, "truncated": bool, "note": str,
     "rows": [{...every column of nbcallbacks.comparison.COMPARE_COLUMNS...,
               "start_s_a": float | None, "start_s_b": float | None}, ...],
     "error": str}                                                   (only when the comparison failed)

Rows are ``compare((runs, a), (runs, b))`` row by row, depth-first, at most ``MAX_ROWS`` of them (``truncated``
and ``note`` say so). ``start_s_*`` is the run's start in seconds after its side's first start, for the paired
waterfall bars. Values are JSON-safe: missing (NaN, NA) is ``None``, numbers are plain ``int`` or ``float``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Callable

    from nbcallbacks.recorder import Recorder
    from nbcallbacks.tree import Pricing

__all__ = ["INPUT_CHARS", "MAX_ROWS", "comparison_message"]

MAX_ROWS: Final = 1000
"""Most rows sent to the front end; ``h.compare_selected()`` (a DataFrame) has them all."""
INPUT_CHARS: Final = 200
"""Characters of each compared run's input preview (what tells two invocations of one chain apart)."""


def _json_safe(value: Any) -> Any:
    """A cell of the comparison frame as JSON: str, int, finite float or bool; anything missing (NaN, NA) is None."""
    item = getattr(value, "item", None)
    if callable(item) and not isinstance(value, str):  # numpy scalars
        value = item()
    if isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    return None


def _input_text(value: Any, fallback: Callable[[Any], str]) -> str:
    """What a run was asked: the last message's text of a chat input, else the preview as text (``fallback``)."""
    inner = value
    if isinstance(inner, dict) and len(inner) == 1:  # {"messages": [...]}, {"input": ...}
        (inner,) = inner.values()
    if isinstance(inner, list) and inner:
        inner = inner[-1]  # the latest message
    if isinstance(inner, str):
        return inner
    if isinstance(inner, (list, tuple)) and len(inner) == 2 and isinstance(inner[1], str):  # noqa: PLR2004 - (role, text)
        return inner[1]
    if isinstance(inner, dict) and isinstance(inner.get("content"), str):
        return str(inner["content"])
    return fallback(value)


def comparison_message(
    recorder: Recorder,
    a: str,
    b: str,
    *,
    pricing: Pricing | None = None,
    max_rows: int = MAX_ROWS,
) -> dict[str, Any]:
    """The ``comparison`` message comparing runs ``a`` and ``b`` of ``recorder`` (see the module docstring).

    ``request`` is left empty for the caller to fill in (the widget echoes the front end's).

    Bad input (a missing or unknown run id: the ids come from the front end) is the message's ``error``.
    """
    message: dict[str, Any] = {
        "type": "comparison",
        "request": "",
        "a": a,
        "b": b,
        "labels": [a, b],
        "inputs": ["", ""],
        "total_rows": 0,
        "truncated": False,
        "note": "",
        "rows": [],
    }
    if not isinstance(a, str) or not isinstance(b, str) or not a or not b:
        message["error"] = "compare needs two run ids"
        return message
    from nbcallbacks.comparison import compare  # noqa: PLC0415 - pandas only when asked for
    from nbcallbacks.comparison.values import epoch, output_text, shorten  # noqa: PLC0415
    from nbcallbacks.export import runs_dataframe  # noqa: PLC0415

    frame = runs_dataframe(recorder, pricing)
    ids: list[str] = frame["run_id"].astype(str).tolist()
    position = {run_id: index for index, run_id in enumerate(ids)}
    unknown = [run_id for run_id in (a, b) if run_id not in position]  # exact ids only: no prefix from the wire
    if unknown:
        message["error"] = f"no run with id {unknown[0]!r} in this trace"
        return message
    result = compare((frame, a), (frame, b))
    starts = {run_id: epoch(start) for run_id, start in zip(ids, frame["start"], strict=True)}
    message["labels"] = [str(frame["name"].iat[position[run_id]]) for run_id in (a, b)]
    message["inputs"] = [
        shorten(_input_text(frame["inputs"].iat[position[run_id]], output_text), INPUT_CHARS) for run_id in (a, b)
    ]
    records = result.to_dict("records")
    origins = []
    for side in ("a", "b"):
        side_starts = [s for r in records if (s := starts.get(str(r[f"run_id_{side}"]))) is not None]
        origins.append(min(side_starts) if side_starts else None)
    rows = []
    for record in records[:max_rows]:
        row = {name: _json_safe(value) for name, value in record.items()}
        for side, origin in zip(("a", "b"), origins, strict=True):
            start = starts.get(str(row[f"run_id_{side}"])) if row[f"run_id_{side}"] is not None else None
            row[f"start_s_{side}"] = None if start is None or origin is None else start - origin
        rows.append(row)
    message["rows"] = rows
    message["total_rows"] = len(records)
    if len(records) > max_rows:
        message["truncated"] = True
        message["note"] = (
            f"Showing the first {max_rows:,} of {len(records):,} aligned rows; "
            "h.compare_selected() returns them all as a DataFrame."
        )
    return message
