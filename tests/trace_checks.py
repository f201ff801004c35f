"""What several test modules check a trace against: LangChain's run tree flattened, and the front end's state
rebuilt from the widget's messages the way its store applies them.

Imported by name (``from trace_checks import ...``): pytest's default import mode puts this folder on ``sys.path``.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from nbcallbacks.schema import STORED_RUN_FIELDS
from nbcallbacks.tree import Tree


def flatten(runs: list[Any]) -> list[Any]:
    """Every run of LangChain's traced run trees, children included."""
    out = []
    stack = list(runs)
    while stack:
        run = stack.pop()
        out.append(run)
        stack.extend(run.child_runs)
    return out


def subtree(h: Any, root: str) -> set[str]:
    """The ids of run ``root`` and its descendants in handler ``h`` (whose runs come in start order, parents first)."""
    members = {root}
    for run in h.recorder.runs():
        if run.parent_run_id in members:
            members.add(run.run_id)
    return members


def with_tree(runs: list[Any]) -> list[Any]:
    """Runs with what the tree derives for them (``depth``, ``orphan``, ...) as attributes, in the given order."""
    tree = Tree.of(runs)
    return [
        SimpleNamespace(**{name: getattr(run, name) for name in STORED_RUN_FIELDS}, **tree.derived(run.run_id).fields())
        for run in runs
    ]


def empty_state() -> dict[str, Any]:
    """The front end's state before any message."""
    return {"seq": 0, "cursor": 0, "runs": {}, "text": {}}


def state_from_snapshot(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The state a snapshot message replaces the front end's state with."""
    return {
        "seq": snapshot["seq"],
        "cursor": snapshot["cursor"],
        "runs": {run["run_id"]: run for run in snapshot["runs"]},
        "text": {rid: [list(p) for p in pieces] for rid, pieces in snapshot["streams"].items()},
    }


def apply_delta(state: dict[str, Any], message: dict[str, Any]) -> None:
    """Apply one delta message to ``state`` in place, only on top of exactly its base."""
    assert message["base"] == state["seq"], "a gap in the delta chain"
    for run in message["runs"]:
        if run.get("light"):
            state["runs"][run["run_id"]].update({k: v for k, v in run.items() if k != "light"})
        else:
            state["runs"][run["run_id"]] = run
    for run_id, pieces in message["tokens"].items():
        state["text"].setdefault(run_id, []).extend(pieces)
    state["seq"] = message["seq"]
    state["cursor"] = message["cursor"]


def last_run_records(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The last ``run`` record of each run in a stream of update records (``nbcallbacks.updates``), by run id."""
    return {record["run_id"]: record for record in records if record["kind"] == "run"}


def check_final_runs(h: Any, records: list[dict[str, Any]], run_ids: set[str]) -> dict[str, dict[str, Any]]:
    """The update records end with a run record for exactly ``run_ids``, each as handler ``h``'s recorder has the run
    (status, streamed chunks, parent, name); returns those last run records by run id."""
    final = last_run_records(records)
    assert set(final) == run_ids
    for run in h.recorder.runs():
        if run.run_id in run_ids:
            record = final[run.run_id]
            assert (record["status"], record["streamed_chunks"], record["parent_run_id"], record["name"]) == (
                run.status,
                run.streamed_chunks,
                run.parent_run_id,
                run.name,
            )
    return final
