"""Which runs are *key* runs: the one rule behind the ``key`` column and the widget's "Key runs" view.

Standard library only. A key run is one a person reading a trace cares about: the graph, its nodes, model calls,
tools, retrievers, and the user's own named chains. Pass-through wrappers are not: hiding them (and lifting their
children) makes an agent read as agent -> model -> tool -> model.

Not key:

- runs tagged ``langsmith:hidden`` (LangChain's own internal plumbing);
- prompts and output parsers (``run_type`` ``prompt`` / ``parser``);
- LangChain's anonymous composition wrappers: a run named ``RunnableSequence``, ``RunnableLambda``,
  ``RunnableParallel<...>``, ``RunnableAssign<...>``, ``RunnablePassthrough``, ``RunnablePick``, ``RunnableEach``,
  ``RunnableBinding``, ``RunnableWithFallbacks`` or ``RunnableRetry`` (a lambda or chain the user named keeps its
  name and stays key);
- LangGraph's internals: ``__start__`` / ``__end__``, channel reads and writes (``ChannelWrite...``,
  ``ChannelRead...``), branches (``Branch<...>``), and the conditional-edge functions the graph runs after a node
  (``should_continue``, ``tools_condition``, ...): a chain inside a node (``langgraph_node`` metadata) whose name is
  not the node's, that LangGraph runs as a later step of the node's own sequence (a ``seq:step:N`` tag with N >= 2).
"""

from __future__ import annotations

from typing import Any, Final

_WRAPPERS: Final = frozenset(
    {
        "RunnableSequence",
        "RunnableLambda",
        "RunnableParallel",
        "RunnableAssign",
        "RunnablePassthrough",
        "RunnablePick",
        "RunnableEach",
        "RunnableBinding",
        "RunnableWithFallbacks",
        "RunnableRetry",
        "RunnableGenerator",
    }
)
_WRAPPER_PREFIXES: Final = ("RunnableParallel<", "RunnableAssign<", "ChannelWrite", "ChannelRead", "Branch<")
_GRAPH_INTERNALS: Final = frozenset({"__start__", "__end__"})
_NOT_KEY_TYPES: Final = frozenset({"prompt", "parser"})


def _later_sequence_step(tags: Any) -> bool:
    """A ``seq:step:N`` tag with N >= 2 (a step after the node's own function in the node's sequence)."""
    if not isinstance(tags, (list, tuple)):
        return False
    for tag in tags:
        if isinstance(tag, str) and tag.startswith("seq:step:"):
            number = tag[len("seq:step:") :]
            if number.isdigit() and int(number) >= 2:  # noqa: PLR2004 - step 1 is the node itself
                return True
    return False


def is_key_run(name: str, run_type: str, tags: Any, metadata: Any, *, hidden: bool = False) -> bool:
    """Whether a run is a key run (see the module docstring for the rule)."""
    if hidden or run_type in _NOT_KEY_TYPES:
        return False
    if name in _WRAPPERS or name in _GRAPH_INTERNALS or name.startswith(_WRAPPER_PREFIXES):
        return False
    if run_type == "chain" and isinstance(metadata, dict):
        node = metadata.get("langgraph_node")
        if isinstance(node, str) and node != name and _later_sequence_step(tags):
            return False
    return True
