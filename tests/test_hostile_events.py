"""Arbitrary sequences of callback calls, with arbitrary payloads, never break the handler or its consumers.

Hypothesis drives a ``NotebookHandler`` with every kind of callback, in any order, with run ids from a small pool
(so duplicates, ends without starts, tokens before starts, unknown parents and parent cycles all happen) and
payloads built from hostile Python values: lone surrogates, NUL and bidi controls, binary, NaN and infinities,
huge integers, objects whose ``repr``/``str``/attributes raise, and cycles. Whatever comes, the handler must not
raise, must not touch the caller's data, must keep exact counts and bounded previews, and everything it hands on
(DataFrames, every widget message) must build and encode as the Jupyter wire encodes it.
"""

from __future__ import annotations

import json
import pickle
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from helpers import wire_bytes
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, Generation, LLMResult
from langgraph.errors import GraphInterrupt
from trace_checks import with_tree
from widget_capture import CapturingWidget

from nbcallbacks import NotebookHandler
from nbcallbacks.events import METRIC_EVENT, TOKEN_KINDS, Limits

POOL = [uuid.UUID(int=i + 1) for i in range(5)]
"""Run ids: few enough that sequences reuse them in every role."""
NEVER_STARTED = uuid.UUID(int=999)
"""A parent id that no call ever names as its own run."""
LIMITS = Limits(max_string=40, max_items=4, max_depth=4, max_payload_chars=400)
PREVIEW_BOUND = LIMITS.max_payload_chars + 200 + 64 * (LIMITS.max_depth + 1)
"""What one preview's JSON may reach: the budget plus one cut item and a marker per level."""

# --- hostile values


class ReprRaises:
    def __repr__(self) -> str:
        raise RuntimeError("repr refuses")

    __str__ = __repr__


class AttributesRaise:
    """Every attribute lookup the class does not answer raises (a proxy gone wrong)."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"no {name}")


class StrSubclassRaises(str):
    __slots__ = ()

    def __str__(self) -> str:
        raise RuntimeError("str refuses")


class LyingContainer(list):  # type: ignore[type-arg]
    """Claims a length it does not have and fails half-way through iteration."""

    def __len__(self) -> int:
        return 10**9

    def __iter__(self) -> Any:
        yield 1
        raise RuntimeError("iteration broke")


class BadStrError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no message for you")


characters = st.one_of(
    st.characters(exclude_categories=()),
    st.characters(categories=["Cs"]),  # lone surrogates
    st.sampled_from('\x00\x1b\x7f\u202e\u2066\u200f\ufeff\u2028"\\…'),
)
texts = st.text(characters, max_size=30)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**300), max_value=2**300),
    st.integers(0, 3).map(lambda k: 1 << (40_000 + k)),  # too wide for str() (its repr raises too)
    st.floats(),
    texts,
    st.binary(max_size=20),
    st.builds(ReprRaises),
    st.builds(AttributesRaise),
    st.builds(StrSubclassRaises, texts),
    st.builds(LyingContainer),
)
hashables = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), texts, st.binary(max_size=8))
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.tuples(children, children),
        st.dictionaries(hashables, children, max_size=5),
        st.frozensets(hashables, max_size=4),
    ),
    max_leaves=20,
)


@st.composite
def payloads(draw: st.DrawFn) -> Any:
    """A hostile value, sometimes made cyclic (a list or dict that contains itself somewhere below)."""
    value = draw(values)
    if draw(st.booleans()):
        holder: Any = draw(st.sampled_from([[], {}]))
        if isinstance(holder, list):
            holder.extend([value, holder])
        else:
            holder.update({"value": value, "self": holder})
        return holder
    return value


run_ids = st.sampled_from(POOL)
parents = st.one_of(st.none(), st.sampled_from(POOL), st.just(NEVER_STARTED))
names = st.one_of(st.none(), texts)
tags = st.one_of(st.none(), st.lists(texts, max_size=3))
metadata = st.one_of(
    st.none(),
    st.dictionaries(texts, values, max_size=4),
    st.fixed_dictionaries({"langgraph_node": values, "langgraph_step": values}),
)
serialized = st.one_of(
    st.none(),
    st.fixed_dictionaries({}, optional={"name": values, "id": st.one_of(values, st.lists(texts, max_size=3))}),
)

# --- the calls


@dataclass
class Call:
    method: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    creates_run: bool = True
    """Whether this call must leave a run for its run id in the recorder."""
    events: int = 1
    """Events the recorder must count for it."""
    tokens: list[tuple[str, str]] = field(default_factory=list)
    """The (kind, text) chunks it streams into its run, in order."""

    def __repr__(self) -> str:  # hypothesis prints examples; payloads may refuse repr
        try:
            return f"{self.method}{self.args!r} {self.kwargs!r}"
        except Exception:
            return f"{self.method}(<unrepresentable arguments>)"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


def ids(draw: st.DrawFn) -> dict[str, Any]:
    return {"run_id": draw(run_ids), "parent_run_id": draw(parents)}


@st.composite
def starts(draw: st.DrawFn) -> Call:
    method = draw(
        st.sampled_from(
            ["on_chain_start", "on_llm_start", "on_chat_model_start", "on_tool_start", "on_retriever_start"]
        )
    )
    kwargs: dict[str, Any] = {**ids(draw), "tags": draw(tags), "metadata": draw(metadata), "name": draw(names)}
    if method == "on_chain_start":
        kwargs["run_type"] = draw(st.sampled_from([None, "chain", "prompt", "parser"]))
        payload = draw(payloads())
    elif method == "on_llm_start":
        payload = draw(st.one_of(st.lists(texts, max_size=3), payloads()))
        kwargs["invocation_params"] = draw(st.one_of(st.none(), st.fixed_dictionaries({"model": values})))
    elif method == "on_chat_model_start":
        message = st.one_of(st.builds(HumanMessage, content=texts), st.builds(AIMessage, content=texts), values)
        payload = draw(st.lists(st.lists(message, max_size=3), min_size=1, max_size=2))
    elif method == "on_tool_start":
        payload = draw(texts)
        kwargs["inputs"] = draw(st.one_of(st.none(), payloads()))
    else:
        payload = draw(texts)
    return Call(method, (draw(serialized), payload), kwargs, creates_run=True, events=1)


@st.composite
def ends(draw: st.DrawFn) -> Call:
    method = draw(st.sampled_from(["on_chain_end", "on_llm_end", "on_tool_end", "on_retriever_end"]))
    kwargs = ids(draw)
    if method == "on_llm_end":
        message = st.builds(
            AIMessage,
            content=texts,
            usage_metadata=st.one_of(
                st.none(),
                st.fixed_dictionaries(
                    {
                        "input_tokens": st.integers(0, 10**6),
                        "output_tokens": st.integers(0, 10**6),
                        "total_tokens": st.integers(0, 10**6),
                    }
                ),
            ),
        )
        generation = st.one_of(st.builds(ChatGeneration, message=message), st.builds(Generation, text=texts))
        usage_key = st.sampled_from(["prompt_tokens", "completion_tokens", "total_tokens"])
        llm_output = st.one_of(  # the legacy place for usage: a provider may put anything there
            st.none(),
            st.fixed_dictionaries(
                {"token_usage": st.one_of(values, st.dictionaries(usage_key, st.one_of(st.floats(), texts, values)))},
                optional={"model_name": values},
            ),
        )
        result = st.builds(LLMResult, generations=st.lists(st.lists(generation, max_size=2)), llm_output=llm_output)
        payload = draw(st.one_of(result, values))
    elif method == "on_chain_end":
        payload = draw(payloads())
        if draw(st.booleans()):
            kwargs["inputs"] = draw(payloads())
    else:
        payload = draw(payloads())
    return Call(method, (payload,), kwargs, creates_run=True, events=1)


@st.composite
def errors(draw: st.DrawFn) -> Call:
    method = draw(st.sampled_from(["on_chain_error", "on_llm_error", "on_tool_error", "on_retriever_error"]))
    error = draw(
        st.one_of(
            st.builds(ValueError, texts),
            st.builds(BadStrError),
            st.builds(RuntimeError, values),
            st.builds(GraphInterrupt),
            st.builds(KeyError, payloads()),
        )
    )
    kwargs = ids(draw)
    if method == "on_llm_error" and draw(st.booleans()):
        kwargs["response"] = draw(st.one_of(st.builds(LLMResult, generations=st.just([])), values))
    if method == "on_chain_error" and draw(st.booleans()):
        kwargs["inputs"] = draw(payloads())
    return Call(method, (error,), kwargs, creates_run=True, events=1)


KIND_OF_BLOCK = {"text": "text", "reasoning": "reasoning", "thinking": "reasoning", "tool_call_chunk": "tool_call"}
TEXT_KEY_OF_BLOCK = {"text": "text", "reasoning": "reasoning", "thinking": "thinking", "tool_call_chunk": "args"}


@st.composite
def block(draw: st.DrawFn) -> tuple[Any, str | None, str]:
    """A content block, the kind it must be recorded as (None: ignored) and its text."""
    shape = draw(st.sampled_from(["str", "text", "reasoning", "thinking", "tool_call_chunk", "other", "junk"]))
    text = draw(texts)
    if shape == "str":
        return text, "text", text
    if shape == "junk":
        return draw(st.one_of(st.none(), st.integers(), st.builds(ReprRaises), st.lists(texts))), None, ""
    if shape == "other":  # an unknown block type counts as text; with no text field, as empty text
        return {"type": draw(texts), "payload": draw(values)}, "text", ""
    item: dict[str, Any] = {"type": shape, TEXT_KEY_OF_BLOCK[shape]: text}
    if shape == "tool_call_chunk":
        tool = draw(st.one_of(st.none(), texts))
        item["name"] = tool
        if tool:
            text = f"{tool} {text}"
    return item, KIND_OF_BLOCK[shape], text


def block_tokens(blocks: list[tuple[Any, str | None, str]]) -> list[tuple[str, str]]:
    """One chunk per kind present, in order of first appearance; an empty text chunk when none is."""
    by_kind: dict[str, str] = {}
    for _, kind, text in blocks:
        if kind is not None:
            by_kind[kind] = by_kind.get(kind, "") + text
    return list(by_kind.items()) or [("text", "")]


@st.composite
def tokens(draw: st.DrawFn) -> Call:
    kwargs = ids(draw)
    shape = draw(st.sampled_from(["text", "tool_call_chunk", "empty_chunk", "blocks", "stream_event"]))
    if shape == "text":
        text = draw(texts)
        return Call("on_llm_new_token", (text,), kwargs, creates_run=True, events=1, tokens=[("text", text)])
    if shape in {"tool_call_chunk", "empty_chunk"}:
        calls = []
        if shape == "tool_call_chunk":
            calls = draw(
                st.lists(
                    st.fixed_dictionaries(
                        {"name": st.one_of(st.none(), texts), "args": texts, "id": st.none(), "index": st.just(0)}
                    ),
                    min_size=1,
                    max_size=2,
                )
            )
        chunk = ChatGenerationChunk(message=AIMessageChunk(content="", tool_call_chunks=calls))
        kwargs["chunk"] = chunk
        if calls:
            text = "".join(f"{c['name']} {c['args']}" if c["name"] else c["args"] for c in calls)
            streamed = [("tool_call", text)]
        else:
            streamed = [("text", "")]
        return Call("on_llm_new_token", ("",), kwargs, creates_run=True, events=1, tokens=streamed)
    blocks = draw(st.lists(block(), max_size=4))
    if shape == "blocks":
        streamed = block_tokens(blocks)
        token = [item for item, _, _ in blocks]
        return Call("on_llm_new_token", (token,), kwargs, creates_run=True, events=len(streamed), tokens=streamed)
    delta = blocks[0] if blocks else (draw(values), None, "")
    recorded = isinstance(delta[0], dict)
    event_name = "content-block-delta" if recorded or draw(st.booleans()) else draw(texts)
    recorded = recorded and event_name == "content-block-delta"
    event = {"event": event_name, "delta": delta[0]}
    streamed = block_tokens([delta]) if recorded else []
    return Call("on_stream_event", (event,), kwargs, creates_run=recorded, events=len(streamed), tokens=streamed)


@st.composite
def others(draw: st.DrawFn) -> Call:
    method = draw(
        st.sampled_from(
            ["on_custom_event", "on_custom_metric", "on_text", "on_retry", "on_agent_action", "on_agent_finish"]
        )
    )
    run_id = draw(st.one_of(run_ids, st.just(NEVER_STARTED)))
    if method == "on_custom_event":
        return Call(method, (draw(texts), draw(payloads())), {"run_id": run_id}, creates_run=False, events=1)
    if method == "on_custom_metric":
        data = draw(
            st.fixed_dictionaries(
                {"name": texts, "value": st.one_of(st.floats(), st.integers(), st.just(1 << 2000), values)},
                optional={"labels": st.dictionaries(texts, values, max_size=3)},
            )
        )
        return Call("on_custom_event", (METRIC_EVENT, data), {"run_id": run_id}, creates_run=False, events=1)
    kwargs = {"run_id": run_id, "parent_run_id": draw(parents)}
    return Call(method, (draw(payloads()),), kwargs, creates_run=False, events=1)


calls = st.lists(st.one_of(starts(), ends(), errors(), tokens(), others()), min_size=1, max_size=25)

# --- checks


def fingerprint(value: Any) -> bytes | None:
    """A byte string that changes when anything inside ``value`` changes (None: cannot be pickled)."""
    try:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        return None


def event_name(call: Call) -> str:
    """The event name a call is recorded under."""
    if call.method == "on_stream_event":
        return "llm_new_token"
    if call.method == "on_custom_event":
        return "metric" if call.args[0] == METRIC_EVENT and isinstance(call.args[1], dict) else "custom_event"
    return call.method.removeprefix("on_")


def wire_text(text: str) -> str:
    """What the handler keeps of streamed text: lone surrogates (never valid UTF-8) become U+FFFD."""
    return re.sub("[\ud800-\udfff]", "\ufffd", text)


def run_sequence(sequence: list[Call]) -> tuple[NotebookHandler, CapturingWidget]:
    h = NotebookHandler(LIMITS)
    widget = CapturingWidget(h.recorder)
    for i, call in enumerate(sequence):
        before = fingerprint((call.args, call.kwargs))
        getattr(h, call.method)(*call.args, **call.kwargs)  # must not raise, whatever it is given
        if before is not None:
            assert fingerprint((call.args, call.kwargs)) == before, f"{call.method} changed the caller's data"
        if i % 7 == 3:
            widget.flush()
    widget.flush()
    widget._handle_custom_msg({"type": "resync"}, [])
    return h, widget


A, B = POOL[0], POOL[1]
STRING_USAGE = LLMResult(generations=[], llm_output={"token_usage": {"prompt_tokens": "12", "total_tokens": 1e300}})
KNOWN_BREAKAGES = [
    # Each of these once lost a run, broke the DataFrames or froze the widget; kept as fixed examples.
    Call("on_chat_model_start", ({"name": "m"}, [[]]), {"run_id": A, "metadata": {"langgraph_node": ReprRaises()}}),
    Call("on_chain_start", (None, {}), {"run_id": A, "name": StrSubclassRaises("x"), "tags": ["\ud800"]}),
    Call("on_chain_start", (None, {}), {"run_id": A, "metadata": {"langgraph_step": 1 << 40_000}}),
    Call("on_llm_new_token", ("lone \udc80 surrogate",), {"run_id": A}, tokens=[("text", "lone \udc80 surrogate")]),
    Call("on_custom_event", (METRIC_EVENT, {"name": "nan", "value": float("nan")}), {"run_id": A}, creates_run=False),
    Call("on_custom_event", (METRIC_EVENT, {"name": "inf", "value": float("inf")}), {"run_id": A}, creates_run=False),
    Call("on_llm_end", (STRING_USAGE,), {"run_id": B}),
    Call("on_llm_end", (LLMResult(generations=[], llm_output={"model_name": ReprRaises()}),), {"run_id": B}),
    Call("on_agent_action", (AttributesRaise(),), {"run_id": B}, creates_run=False),
    Call("on_retry", (AttributesRaise(),), {"run_id": B}, creates_run=False),
]


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calls)
@example(KNOWN_BREAKAGES)
def test_any_sequence_of_callbacks_is_recorded_exactly_and_safely(sequence: list[Call]) -> None:
    h, widget = run_sequence(sequence)
    try:
        recorder = h.recorder
        assert recorder.handler_error_count == 0, recorder.handler_errors()

        runs = recorder.runs()
        expected_ids = {str(call.kwargs["run_id"]) for call in sequence if call.creates_run}
        assert [run.run_id for run in runs].count(str(NEVER_STARTED)) == 0
        assert len({run.run_id for run in runs}) == len(runs), "no run recorded twice"
        assert {run.run_id for run in runs} == expected_ids
        assert recorder.event_count == sum(call.events for call in sequence)
        rows = iter(recorder.events())
        for call in sequence:  # each call's events, in call order, named after it and carrying its run id
            for _ in range(call.events):
                row = next(rows)
                assert row.event == event_name(call)
                assert row.run_id == str(call.kwargs["run_id"])
        assert next(rows, None) is None

        by_id = {run.run_id: run for run in runs}
        for run_id in expected_ids:
            streamed = [tok for call in sequence if str(call.kwargs["run_id"]) == run_id for tok in call.tokens]
            assert by_id[run_id].streamed_chunks == len(streamed)
            for kind in TOKEN_KINDS:
                expected_text = wire_text("".join(text for k, text in streamed if k == kind))
                assert recorder.run_text(run_id, kind=kind) == expected_text
        derived = {run.run_id: run for run in with_tree(runs)}
        for run in derived.values():  # a parent met after its child still adopts it (the tree resolves late parents)
            parent = derived.get(run.parent_run_id) if run.parent_run_id is not None else None
            assert run.orphan == (run.parent_run_id is not None and parent is None)
            if parent is None or parent.run_id == run.run_id:
                assert run.depth == 0
            elif not _on_cycle(derived, run.run_id):
                assert run.depth == parent.depth + 1
            for preview in (run.inputs, run.outputs, run.metadata):
                assert len(json.dumps(preview, allow_nan=False, ensure_ascii=False)) <= PREVIEW_BOUND
        for row in recorder.events():  # a metric event keeps its float value as given, NaN included
            assert len(json.dumps(row.data, ensure_ascii=False)) <= 3 * PREVIEW_BOUND

        assert len(h.runs_dataframe()) == len(runs)
        assert len(h.to_dataframe()) == recorder.event_count
        h.metrics_dataframe()

        messages = [json.loads(raw) for raw in widget.raw]
        assert messages, "the widget sent the trace"
        snapshot = messages[-1]
        assert snapshot["type"] == "snapshot"
        assert snapshot["cursor"] == recorder.event_count
        assert [wire["run_id"] for wire in snapshot["runs"]] == [run.run_id for run in runs]
        assert {wire["run_id"]: wire["streamed_chunks"] for wire in snapshot["runs"]} == {
            run.run_id: run.streamed_chunks for run in runs
        }
        pieces = {run.run_id: recorder.run_pieces(run.run_id) for run in runs}
        assert snapshot["streams"] == {run_id: kept for run_id, kept in pieces.items() if kept}
        wire_bytes(widget.snapshot)
    finally:
        widget.close()


def _on_cycle(runs: dict, run_id: str) -> bool:
    """Whether a run's parent links lead back to it (the tree then breaks the cycle at one of its runs)."""
    seen = set()
    current = runs.get(run_id)
    while current is not None and current.parent_run_id is not None and current.run_id not in seen:
        seen.add(current.run_id)
        current = runs.get(current.parent_run_id)
        if current is not None and current.run_id == run_id:
            return True
    return False
