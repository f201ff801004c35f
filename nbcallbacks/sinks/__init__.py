"""Sinks: send every recorded event and run somewhere else (a JSONL file, a SQLite history, ``logging``, anything).

Standard library only. A sink never runs on the hot path: a handler's ``SinkWriter`` subscribes to its recorder,
wakes a background reader thread, turns what changed into plain dictionaries (records) and hands them in batches
to one worker thread per sink, each with its own bounded backlog. A sink that is slow, raises or blocks forever
never touches the user's chain nor the other sinks: what it cannot take is dropped and counted
(``NotebookHandler.sink_status()``), and its first failure shows in the widget as a handler error.

Records are dictionaries with a ``"kind"``:

- ``"session"``: one per handler (``session`` id, ``started``, ``first_time``, ``hostname``, ``pid``,
  ``notebook``, ``program``, ``python``, ``nbcallbacks``, ``title``, ``limits``, ``schema``), written first.
- ``"event"``: the columns of ``NotebookHandler.to_dataframe()`` (``seq``, ``time``, ``elapsed_s``, ``event``,
  ``run_id``, ``parent_run_id``, ``name``, ``run_type``, ``token``, ``token_kind``, ``data``, ``thread``) plus
  ``session``; times are seconds since the epoch. Every event arrives once, in ``seq`` order (the ones a full
  backlog drops or a failed ``write`` loses are counted in ``sink_status()``).
- ``"run"``: the columns of ``NotebookHandler.runs_dataframe()`` plus ``first_token`` and ``session``; written
  again each time the run changes (the last record of a run id is its current state).

A sink is any object with ``write(batch)``; ``open(session)``, ``flush()`` and ``close()`` are optional::

    class PrintSink:
        def write(self, batch: list[dict]) -> None:
            for record in batch:
                if record["kind"] == "event" and record["event"].endswith("_end"):
                    print(record["name"], "ended after", record["elapsed_s"], "s")

    h = NotebookHandler(sinks=[PrintSink(), SQLiteSink("runs.db")])
"""

from nbcallbacks.sinks.jsonl import JSONLSink
from nbcallbacks.sinks.logging_sink import LoggingSink
from nbcallbacks.sinks.records import (
    EVENT_FIELDS,
    RUN_FIELDS,
    SESSION_FIELDS,
    Sink,
    dumps,
    event_record,
    run_record,
)
from nbcallbacks.sinks.sqlite import SQLiteSink
from nbcallbacks.sinks.writer import SinkBackpressureError, SinkStalledError, SinkWriter

__all__ = [
    "EVENT_FIELDS",
    "RUN_FIELDS",
    "SESSION_FIELDS",
    "JSONLSink",
    "LoggingSink",
    "SQLiteSink",
    "Sink",
    "SinkBackpressureError",
    "SinkStalledError",
    "SinkWriter",
    "dumps",
    "event_record",
    "run_record",
]
