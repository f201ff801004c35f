"""The key-run rule on real runs: the demo LangGraph agent, a custom graph, and an LCEL chain."""

from __future__ import annotations

from typing import Any

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda, RunnableParallel, RunnablePassthrough
from langgraph.graph import END, START, MessagesState, StateGraph

from nbcallbacks import NotebookHandler
from nbcallbacks.demo import DemoChatModel, agent
from nbcallbacks.keyruns import is_key_run


def _key_names(handler: NotebookHandler) -> list[tuple[str, bool]]:
    rows = handler.runs_dataframe().to_dict("records")
    return [
        (row["name"], is_key_run(row["name"], row["run_type"], row["tags"], row["metadata"], hidden=row["hidden"]))
        for row in rows
    ]


def test_the_demo_agent_reads_agent_model_tool_model() -> None:
    handler = NotebookHandler()
    agent(token_delay=0).invoke({"messages": [("user", "What's the weather in Paris?")]}, {"callbacks": [handler]})
    names = _key_names(handler)
    assert [name for name, key in names if key] == [
        "LangGraph",
        "agent",
        "DemoChatModel",
        "tools",
        "get_weather",
        "agent",
        "DemoChatModel",
    ]
    assert {name for name, key in names if not key} == {"tools_condition"}
    assert list(handler.runs_dataframe()["key"]) == [key for _, key in names]  # the DataFrame uses the rule


def test_a_router_with_its_own_name_is_found_by_its_place_in_the_node() -> None:
    model = DemoChatModel(token_delay=0, responses=["done"])

    def call(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    def decide_next(state: MessagesState) -> str:  # a conditional edge with no conventional name
        return END if state["messages"] else "call"

    graph = StateGraph(MessagesState)
    graph.add_node("call", call)
    graph.add_edge(START, "call")
    graph.add_conditional_edges("call", decide_next)
    handler = NotebookHandler()
    compiled: Any = graph.compile()  # the input is the plain dict a user passes, not the typed state
    compiled.invoke({"messages": [("user", "hi")]}, config={"callbacks": [handler]})
    names = dict(_key_names(handler))
    assert names["call"] is True
    assert names["DemoChatModel"] is True
    assert names["decide_next"] is False


def test_lcel_wrappers_prompts_and_parsers_are_not_key_but_named_steps_are() -> None:
    def shape(x: dict[str, Any]) -> dict[str, Any]:
        return x

    chain = (
        RunnablePassthrough.assign(z=lambda _: 1)
        | RunnableParallel(a=RunnableLambda(lambda x: x), b=RunnableLambda(shape))
        | RunnableLambda(lambda _: {"q": "hi"})
        | ChatPromptTemplate.from_messages([("user", "{q}")])
        | DemoChatModel(token_delay=0)
        | StrOutputParser()
    )
    handler = NotebookHandler()
    chain.invoke({"x": 1}, {"callbacks": [handler]})
    assert [name for name, key in _key_names(handler) if key] == ["shape", "DemoChatModel"]


def test_the_rule_on_plain_values() -> None:
    assert is_key_run("retrieve", "retriever", [], None, hidden=False)
    assert not is_key_run("retrieve", "retriever", [], None, hidden=True)
    assert not is_key_run("__start__", "chain", ["graph:step:0"], {"langgraph_node": "__start__"}, hidden=False)
    assert not is_key_run("ChannelWrite<agent,messages>", "chain", [], None, hidden=False)
    assert not is_key_run("should_continue", "chain", ["seq:step:3"], {"langgraph_node": "agent"}, hidden=False)
    assert is_key_run("agent", "chain", ["graph:step:1"], {"langgraph_node": "agent"}, hidden=False)
    assert is_key_run("should_continue", "chain", [], None, hidden=False)  # outside a graph: a user's chain
    assert is_key_run("RunnableSequenceOfMine", "chain", None, "not a dict", hidden=False)
