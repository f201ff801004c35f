"""Live records for your own front end: one stream per consumer of what a handler records, while it records.

``h.updates()`` (an async iterator) and ``h.iter_updates()`` (a blocking iterator) yield the dictionaries sinks
receive (``"event"`` and ``"run"`` records, see ``nbcallbacks.sinks``), in order, as the chain runs. Serving a
request from FastAPI::

    run_id = uuid.uuid4()
    async with h.updates(run=run_id, kinds={"llm_new_token", "run"}) as updates:
        task = asyncio.create_task(agent.ainvoke(question, config={"callbacks": [h], "run_id": run_id}))
        async for record in updates:  # ends when that run ends
            await websocket.send_text(dumps(record))

How it works, and what it costs:

- One reader thread per handler (only while consumers are attached) wakes when the recorder changes, reads what
  changed once, builds the records once (with the run tree's derived fields, as the sinks' writer does) and hands
  them to every consumer's own bounded queue. The chain pays for setting one ``threading.Event`` per read, nothing
  per consumer; between consumers the reader is gone and the chain pays nothing (one call at most).
- Each consumer holds at most ``max_backlog`` records. A consumer that cannot keep up (a slow or stalled client)
  never slows the chain or the other consumers: later records are dropped for it, counted, and it is told with a
  ``"dropped"`` record once it catches up, followed by the current state of the runs those records touched (their
  ``"run"`` records), so the run tree it holds stays exact. Nothing is dropped silently.
- The async iterator awaits an ``asyncio`` future that the reader resolves with ``loop.call_soon_threadsafe``: the
  chain may run on the same loop (``astream``/``ainvoke``) or in a worker thread (``invoke`` in an executor), and
  nothing ever blocks the loop. The blocking iterator waits on a ``threading.Condition``.

Filtering happens before the queue, so a consumer following one request is never disturbed by the others:

- ``kinds``: record kinds (``"event"``, ``"run"``, ``"session"``) and/or event names (``"llm_new_token"``,
  ``"chain_start"``, ...). A ``"session"`` record comes first only when asked for. ``"dropped"`` records always
  come.
- ``run``: a run id (``str`` or ``uuid.UUID``): only that run and its descendants. The run may start later (pass
  the id you give LangChain with ``config={"run_id": run_id}``), or may already be running (its subtree's
  current ``"run"`` records come first; its earlier events are not replayed). Iteration ends once the run has
  ended and its records were delivered. ``run="next"`` follows the first root run that starts after the call;
  with concurrent requests on one handler, choose the run id yourself instead (two consumers waiting for "the
  next" run would follow the same one).

Each consumer gets its own record dictionaries (add or remove keys freely); the values inside them (payload
previews, tags, metrics) are shared: read them, do not modify them.

A ``"dropped"`` record has ``kind``, ``session``, ``time``, ``events`` (event records of this consumer's selection
that did not fit in its backlog since the last ``"dropped"`` record), ``lost_events`` (events that left the
recorder's log, ``Limits.max_events``, before they could be read; not filtered), ``runs`` (how many ``"run"``
records with the current state of the touched runs follow) and ``total_events`` (everything this consumer missed
so far).

The parts: ``channel`` (one consumer's selection, bounded backlog and drop accounting), ``hub`` (the reader
thread that builds the records and offers them to the channels), ``streams`` (the two iterators over a channel);
this module gives each handler its hub.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any, Protocol

from nbcallbacks.updates.channel import NEXT_ROOT
from nbcallbacks.updates.hub import DEFAULT_MAX_BACKLOG, RECORD_KINDS, UpdateHub
from nbcallbacks.updates.streams import Updates, UpdatesIterator

if TYPE_CHECKING:
    import uuid
    from collections.abc import Iterable

    from nbcallbacks.recorder import Recorder

__all__ = [
    "DEFAULT_MAX_BACKLOG",
    "NEXT_ROOT",
    "RECORD_KINDS",
    "UpdateHub",
    "Updates",
    "UpdatesIterator",
    "hub_for",
    "iter_updates",
    "updates",
]


class _Owner(Protocol):
    """What ``updates()`` needs from a handler."""

    recorder: Recorder
    title: str | None


_HUBS: weakref.WeakKeyDictionary[Any, UpdateHub] = weakref.WeakKeyDictionary()
_HUBS_LOCK = threading.Lock()


def hub_for(handler: _Owner) -> UpdateHub:
    """The handler's hub, created on first use (its records carry the session id of its sinks, if any)."""
    with _HUBS_LOCK:
        hub = _HUBS.get(handler)
        if hub is None:
            writer = getattr(handler, "_sink_writer", None)
            session = getattr(writer, "session", None)
            pricer = getattr(handler, "pricer", None)  # the handler's costs (nbcallbacks.cost), as its sinks get
            hub = UpdateHub(
                handler.recorder,
                session=session if isinstance(session, dict) else None,
                title=handler.title,
                pricing=getattr(pricer, "run_cost", None),
            )
            _HUBS[handler] = hub
        return hub


def updates(
    handler: _Owner,
    *,
    kinds: str | Iterable[str] | None = None,
    run: str | uuid.UUID | None = None,
    max_backlog: int = DEFAULT_MAX_BACKLOG,
) -> Updates:
    """Live records of ``handler`` for one async consumer, from now on (``async for record in ...``).

    Args:
        handler: a ``NotebookHandler``.
        kinds: record kinds and/or event names to receive (``None``: every event and run record).
        run: follow only this run and its descendants, and end when it ends (``"next"``: the next root run).
        max_backlog: records that may wait for this consumer before later ones are dropped (and counted).

    Raises:
        ValueError: an unknown kind, or a ``max_backlog`` that is not a positive int.
        TypeError: ``run`` is neither a string nor a UUID.
    """
    return Updates(hub_for(handler).open(kinds=kinds, run=run, max_backlog=max_backlog))


def iter_updates(
    handler: _Owner,
    *,
    kinds: str | Iterable[str] | None = None,
    run: str | uuid.UUID | None = None,
    max_backlog: int = DEFAULT_MAX_BACKLOG,
) -> UpdatesIterator:
    """Live records of ``handler`` for one blocking consumer, from now on (``for record in ...``); see ``updates``.

    Raises:
        ValueError: an unknown kind, or a ``max_backlog`` that is not a positive int.
        TypeError: ``run`` is neither a string nor a UUID.
    """
    return UpdatesIterator(hub_for(handler).open(kinds=kinds, run=run, max_backlog=max_backlog))
