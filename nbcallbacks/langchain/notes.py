"""Callback events that do not change a run.

Custom events (``nbcallbacks.metric`` among them), text, retries, legacy agent actions and finishes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nbcallbacks.events import METRIC_EVENT
from nbcallbacks.langchain.base import IntakeBase, never_raises
from nbcallbacks.langchain.decode import attr, metric_number
from nbcallbacks.text import safe_str

if TYPE_CHECKING:
    from uuid import UUID

    from langchain_core.agents import AgentAction, AgentFinish
    from tenacity import RetryCallState

__all__ = ["NoteIntake"]


class NoteIntake(IntakeBase):
    """The callbacks of events that happen inside a run without changing it."""

    @never_raises
    def on_custom_event(
        self,
        name: str,
        data: Any,
        *,
        run_id: UUID,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Record a custom event on its enclosing run; ``nbcallbacks.metric`` events become run metrics."""
        if name == METRIC_EVENT and isinstance(data, dict):
            self._metric(run_id, data)
            return
        data = {"name": self._redacted(safe_str(name)), "data": self._preview(data)}
        self.recorder.event(run_id, None, event="custom_event", data=data)

    def _metric(self, run_id: UUID, data: dict[str, Any]) -> None:
        name = safe_str(data.get("name"))
        value = data.get("value")
        labels = data.get("labels") or {}
        number = metric_number(value)
        shown = number if number is not None else self._preview(value)
        if number is None:
            number = float("nan")
        self.recorder.metric(run_id, name, number, {"name": name, "value": shown, "labels": self._preview(labels)})

    @never_raises
    def on_text(
        self,
        text: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """Record text printed by a legacy chain."""
        self.recorder.event(run_id, parent_run_id, event="text", data={"text": self._preview(text)})

    @never_raises
    def on_retry(
        self,
        retry_state: RetryCallState,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """Record a retry attempt (emitted by legacy retrying code)."""
        outcome = attr(retry_state, "outcome")
        failed = outcome is not None and attr(outcome, "failed") is True
        data = {
            "attempt": self._preview(attr(retry_state, "attempt_number")),
            "error": self._preview(outcome.exception()) if failed and outcome is not None else None,
        }
        self.recorder.event(run_id, parent_run_id, event="retry", data=data)

    @never_raises
    def on_agent_action(
        self,
        action: AgentAction,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """Record a legacy agent's chosen action."""
        data = {
            "tool": self._preview(attr(action, "tool")),
            "tool_input": self._preview(attr(action, "tool_input")),
            "log": self._preview(attr(action, "log")),
        }
        self.recorder.event(run_id, parent_run_id, event="agent_action", data=data)

    @never_raises
    def on_agent_finish(
        self,
        finish: AgentFinish,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """Record a legacy agent's final answer."""
        data = {
            "return_values": self._preview(attr(finish, "return_values")),
            "log": self._preview(attr(finish, "log")),
        }
        self.recorder.event(run_id, parent_run_id, event="agent_finish", data=data)
