"""``trace()``, ``metric()`` and ``ametric()``: attach a handler to every run in a block, record metrics in runs."""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks.manager import adispatch_custom_event, dispatch_custom_event
from langchain_core.tracers.context import register_configure_hook

from nbcallbacks.events import METRIC_EVENT
from nbcallbacks.notebook import in_notebook

if TYPE_CHECKING:
    from collections.abc import Iterator

    from nbcallbacks.handler import NotebookHandler

__all__ = ["ametric", "metric", "trace"]

_ACTIVE: ContextVar[Any] = ContextVar("nbcallbacks_active_handler", default=None)
register_configure_hook(_ACTIVE, inheritable=True)


@contextlib.contextmanager
def trace(
    handler: NotebookHandler | None = None, *, display: bool | None = None, **handler_kwargs: Any
) -> Iterator[NotebookHandler]:
    """Attach a handler to every LangChain run inside the block, without passing ``callbacks=``.

    ``with nbcallbacks.trace() as h: agent.invoke(...)``. In a notebook the widget is displayed at the start of
    the block (``display=False`` to opt out).

    Args:
        handler: record into this handler instead of a new one.
        display: show the widget now; default: only inside a Jupyter kernel.
        **handler_kwargs: passed to ``NotebookHandler`` when a new one is made.
    """
    from nbcallbacks.handler import NotebookHandler  # noqa: PLC0415 - the handler module imports this one

    active = handler if handler is not None else NotebookHandler(**handler_kwargs)
    if display if display is not None else in_notebook():
        from IPython.display import display as show  # noqa: PLC0415 - only in a notebook

        show(active)  # type: ignore[no-untyped-call]
    token = _ACTIVE.set(active)
    try:
        yield active
    finally:
        _ACTIVE.reset(token)
        active.flush(timeout=0, sinks=False)  # what the block recorded reaches the widget before the cell ends


def metric(name: str, value: float, /, **labels: Any) -> None:
    """Record a custom metric on the enclosing run (a tool, a node, a lambda).

    Sent as a LangChain custom event, so it works with any handler attached; ``NotebookHandler`` shows it on the
    run's row and in ``metrics_dataframe()``. Outside a run it is a no-op.
    """
    with contextlib.suppress(RuntimeError):  # no enclosing run: nothing to attach to
        dispatch_custom_event(METRIC_EVENT, {"name": name, "value": value, "labels": labels})


async def ametric(name: str, value: float, /, **labels: Any) -> None:
    """``metric`` for async code (Python 3.10 does not propagate the run context to ``metric``)."""
    with contextlib.suppress(RuntimeError):
        await adispatch_custom_event(METRIC_EVENT, {"name": name, "value": value, "labels": labels})
