"""An offline chat model, tools and a LangGraph agent that stream like real ones, for demos/tests.

Everything here runs without network, keys or model weights, and is deterministic:

- `DemoChatModel`: a LangChain chat model that streams word-ish tokens (and tool-call argument
  fragments) through callbacks at a chosen pace, ends each stream with `usage_metadata`,
  `finish_reason` and `model_name`, supports `bind_tools`, sync and async calls, and can fail
  mid-stream on request (`error_after`).
- `get_weather`, `calculator`, `search_docs`: real `@tool`s (the last one calls a retriever).
- `agent()`: a small LangGraph ReAct agent (model node, `ToolNode`, `tools_condition`).
- `chain()`: `prompt | model | StrOutputParser()`.

Swap in a provider model anywhere a `model=` argument is accepted, for example
`agent(ChatOpenAI(model="gpt-4o-mini"))`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from langchain_core.messages import AIMessage, BaseMessage, SystemMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable, RunnableConfig

from nbcallbacks.demo.model import DEMO_MODEL_NAME, DemoChatModel, DemoStreamError, tokenize
from nbcallbacks.demo.tools import (
    DEMO_TOOLS,
    DemoRetriever,
    calculator,
    evaluate_arithmetic,
    get_weather,
    search_docs,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from langchain_core.language_models import BaseChatModel, LanguageModelInput
    from langchain_core.tools import BaseTool
    from langgraph.checkpoint.base import BaseCheckpointSaver
    from langgraph.graph.state import CompiledStateGraph

__all__ = [
    "DEMO_MODEL_NAME",
    "DEMO_TOOLS",
    "DemoChatModel",
    "DemoRetriever",
    "DemoStreamError",
    "agent",
    "calculator",
    "chain",
    "evaluate_arithmetic",
    "get_weather",
    "search_docs",
    "tokenize",
]

# --------------------------------------------------------------------------------------------
# Runnables to show.

_DEMO_SYSTEM: Final = "You are a concise assistant. Use the tools when they help."


def _default_model(model: BaseChatModel | None, token_delay: float) -> BaseChatModel:
    return model if model is not None else DemoChatModel(token_delay=token_delay)


def chain(model: BaseChatModel | None = None, *, token_delay: float = 0.01) -> Runnable[dict[str, Any], str]:
    """`ChatPromptTemplate | model | StrOutputParser()`; invoke with `{"question": "..."}`."""
    prompt = ChatPromptTemplate.from_messages([("system", "You are a concise assistant."), ("human", "{question}")])
    return prompt | _default_model(model, token_delay) | StrOutputParser()


class _ModelNode(Runnable[Any, dict[str, list[BaseMessage]]]):
    """The `agent` node: the system prompt plus the conversation, to the model with tools.

    A plain Runnable that opens no run of its own, so the model run sits directly under the
    node's run, sync and async alike (a sync-only function node would run a model in a worker
    thread under `ainvoke`).
    """

    def __init__(self, model: Runnable[LanguageModelInput, AIMessage]) -> None:
        self.model = model

    def _messages(self, state: Any) -> list[BaseMessage]:
        return [SystemMessage(_DEMO_SYSTEM), *state["messages"]]

    def invoke(
        self,
        input: Any,  # noqa: A002 - Runnable's parameter name
        config: RunnableConfig | None = None,
        **kwargs: Any,
    ) -> dict[str, list[BaseMessage]]:
        """Call the model on the conversation so far."""
        return {"messages": [self.model.invoke(self._messages(input), config, **kwargs)]}

    async def ainvoke(
        self,
        input: Any,  # noqa: A002 - Runnable's parameter name
        config: RunnableConfig | None = None,
        **kwargs: Any,
    ) -> dict[str, list[BaseMessage]]:
        """Call the model on the conversation so far, natively async."""
        message = await self.model.ainvoke(self._messages(input), config, **kwargs)
        return {"messages": [message]}


def agent(
    model: BaseChatModel | None = None,
    *,
    token_delay: float = 0.01,
    checkpointer: BaseCheckpointSaver[Any] | None = None,
    tools: Sequence[BaseTool] | None = None,
    name: str = "LangGraph",
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """A LangGraph ReAct agent: an `agent` node (the model with tools) and a `tools` node.

    `agent().invoke({"messages": [("user", "What's the weather in Paris?")]})` calls
    `get_weather`, then streams an answer that uses its result.

    Args:
        model: any chat model with `bind_tools`; defaults to `DemoChatModel(token_delay=...)`.
        token_delay: pacing of the default model, seconds per streamed chunk.
        checkpointer: a LangGraph checkpointer (e.g. `MemorySaver()`) to keep threads.
        tools: tools to offer; defaults to `get_weather`, `calculator`, `search_docs`.
        name: name of the compiled graph (its root run).

    Raises:
        ImportError: when langgraph is not installed.
    """
    try:
        from langgraph.graph import START, MessagesState, StateGraph  # noqa: PLC0415 - optional
        from langgraph.prebuilt import ToolNode, tools_condition  # noqa: PLC0415 - optional
    except ImportError as exc:
        msg = "nbcallbacks.demo.agent() needs langgraph: pip install 'nbcallbacks[demo]'"
        raise ImportError(msg) from exc

    chosen_tools = list(tools) if tools is not None else list(DEMO_TOOLS)
    bound = _default_model(model, token_delay).bind_tools(chosen_tools)

    graph = StateGraph(MessagesState)
    graph.add_node("agent", _ModelNode(bound))
    graph.add_node("tools", ToolNode(chosen_tools, handle_tool_errors=True))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    return graph.compile(checkpointer=checkpointer, name=name)
