"""Everything nbcallbacks knows about IPython, in one place.

Are we in a kernel, the notebook's name, and one ``post_run_cell`` hook that tells whoever asked that a cell ended.

IPython is never imported here: it is read from ``sys.modules`` when the process already runs it.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["in_notebook", "notebook_name", "on_cell_end"]

_log = logging.getLogger(__name__)
_log.addHandler(logging.NullHandler())


def _shell() -> Any:
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    try:
        return ipython.get_ipython()
    except Exception:  # noqa: BLE001 - a half-imported IPython is no shell
        return None


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where displaying a widget makes sense)."""
    shell = _shell()
    return shell is not None and getattr(shell, "kernel", None) is not None


def notebook_name() -> str | None:
    """The running notebook's path or name when the front end says it (JupyterLab, VS Code), else ``None``."""
    name = os.environ.get("JPY_SESSION_NAME")
    if name:
        return name
    user_ns = getattr(_shell(), "user_ns", None)
    if isinstance(user_ns, dict):
        vscode = user_ns.get("__vsc_ipynb_file__")
        if isinstance(vscode, str) and vscode:
            return vscode
    return None


class _CellEnd:
    """The one ``post_run_cell`` hook: calls each registered callback while its owner (held weakly) lives."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[tuple[weakref.ReferenceType[Any], Callable[[Any], None]]] = []
        self._shell: Any = None

    def register(self, owner: object, callback: Callable[[Any], None]) -> bool:
        """Call ``callback(owner)`` after each cell while ``owner`` lives; False outside IPython."""
        shell = _shell()
        if shell is None:
            return False
        with self._lock:
            if self._shell is not shell:
                try:
                    shell.events.register("post_run_cell", self)
                except Exception:  # noqa: BLE001 - no hook, no harm
                    _log.debug("cannot register post_run_cell", exc_info=True)
                    return False
                self._shell = shell
            self._entries.append((weakref.ref(owner), callback))
        return True

    def __call__(self, *_args: Any) -> None:
        """After a cell: call the callbacks of owners still alive, forget the others; never raise."""
        with self._lock:
            self._entries = [(ref, callback) for ref, callback in self._entries if ref() is not None]
            entries = list(self._entries)
        for ref, callback in entries:
            owner = ref()
            if owner is None:
                continue
            try:
                callback(owner)
            except Exception:  # noqa: BLE001 - never raise into the kernel
                _log.debug("cell-end callback failed", exc_info=True)
            del owner


_CELL_END = _CellEnd()


def on_cell_end(owner: object, callback: Callable[[Any], None]) -> bool:
    """After each notebook cell, call ``callback(owner)`` while ``owner`` is alive (held weakly).

    Returns False outside IPython (nothing registered).
    """
    return _CELL_END.register(owner, callback)
