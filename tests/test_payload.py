from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import decimal
import enum
import json
import pathlib
import uuid
from collections import OrderedDict, deque
from typing import Any

import numpy as np
import pandas as pd
import pydantic
from langchain_core.documents import Document
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from nbcallbacks.events import Limits
from nbcallbacks.payload import MORE_KEY, describe_error, preview

LIMITS = Limits()


def dumps(value: Any) -> str:
    """What a consumer does with a preview: strict JSON, then UTF-8."""
    text = json.dumps(value, allow_nan=False, ensure_ascii=False)
    text.encode("utf-8")
    return text


def check(value: Any, limits: Limits = LIMITS) -> Any:
    result = preview(value, limits)
    text = dumps(result)
    assert len(text) <= limits.max_payload_chars + 128 * (limits.max_depth + 1)
    return result


# Strings


def test_short_string_is_kept_as_is():
    assert check("hello") == "hello"


def test_long_string_is_cut_to_max_string_with_a_count_of_what_was_cut():
    result = check("abc" + "x" * 19_999_997, Limits(max_string=3))
    assert result == "abc…[+19,999,997 chars]"


def test_20_mb_string_stays_short_and_marked():
    result = check("y" * 20_000_000)
    assert result.startswith("y" * LIMITS.max_string)
    assert result.endswith("…[+19,998,000 chars]")
    assert len(result) < LIMITS.max_string + 30


def test_lone_surrogates_become_replacement_characters():
    result = check("a\ud800b\udfffc\ud83d\ude00")
    assert result == "a\ufffdb\ufffdc\ufffd\ufffd"
    result.encode("utf-8")


def test_surrogate_cut_by_truncation_is_still_encodable():
    result = check("\ud83d" * 10, Limits(max_string=3))
    assert result.startswith("\ufffd\ufffd\ufffd…")
    result.encode("utf-8")


def test_nul_and_control_characters_survive_and_serialise():
    text = "a\x00b\x1b[31mc\x7f"
    assert check(text) == text
    assert json.loads(dumps(preview(text, LIMITS))) == text


def test_str_subclass_becomes_a_plain_str():
    class Name(str):
        __slots__ = ()

    result = check(Name("bob"))
    assert result == "bob"
    assert type(result) is str


# Numbers and other scalars


def test_non_finite_floats_become_strings():
    assert check([float("nan"), float("inf"), float("-inf"), 1.5]) == [
        "NaN",
        "Infinity",
        "-Infinity",
        1.5,
    ]


def test_integers_beyond_javascript_precision_become_strings():
    assert check(2**53 - 1) == 2**53 - 1
    assert check(2**53) == str(2**53)
    assert check(-(2**60)) == str(-(2**60))


def test_enormous_integers_are_summarised_without_str():
    assert check(1 << 100_000) == "<int with 100,001 bits>"


def test_bool_and_none_kept():
    assert check([True, False, None]) == [True, False, None]


def test_dates_ids_decimals_paths_and_enums_become_text():
    class Color(enum.Enum):
        RED = 1

    when = dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.timezone.utc)
    ident = uuid.UUID(int=7)
    values = [when, when.date(), dt.timedelta(seconds=90), ident, decimal.Decimal("1.10")]
    values += [pathlib.PurePosixPath("/srv/x"), Color.RED, 1 + 2j]
    result = check(values)
    assert result == [
        "2024-05-01T12:30:00+00:00",
        "2024-05-01",
        "0:01:30",
        str(ident),
        "1.10",
        "/srv/x",
        "Color.RED",
        "(1+2j)",
    ]


def test_bytes_show_length_and_first_bytes():
    result = check(b"\x00\x01abc" * 1000)
    assert result.startswith("<bytes len=5,000: b'\\x00\\x01abc")
    assert result.endswith("…>")
    assert len(result) < 200
    assert check(bytearray(b"hi")) == "<bytearray len=2: b'hi'>"
    assert check(memoryview(b"hey")) == "<memoryview len=3: b'hey'>"


def test_exceptions_become_type_and_message():
    assert check(ValueError("boom")) == "ValueError: boom"
    assert check(KeyError("k")) == "KeyError: 'k'"
    assert check(RuntimeError()) == "RuntimeError"


# Containers


def test_nested_containers_become_dicts_and_lists():
    value = {"a": (1, 2), "b": [{"c": None}], 3: "int key", None: 0}
    assert check(value) == {"a": [1, 2], "b": [{"c": None}], "3": "int key", "None": 0}


def test_colliding_keys_are_disambiguated():
    result = check({1: "int", "1": "str"})
    assert result == {"1": "int", "1 #2": "str"}


def test_long_keys_are_cut():
    result = check({"k" * 10_000: 1}, Limits(max_string=100))
    assert list(result) == ["k" * 100 + "…[+9,900 chars]"]


def test_keys_keep_forty_characters_whatever_max_string_says():
    result = check({"k" * 100: "v" * 100}, Limits(max_string=5))
    assert result == {"k" * 40 + "…[+60 chars]": "vvvvv…[+95 chars]"}


def test_dict_beyond_max_items_ends_with_a_count():
    result = check({f"k{i}": i for i in range(10)}, Limits(max_items=3))
    assert result == {"k0": 0, "k1": 1, "k2": 2, MORE_KEY: "+7 more items"}


def test_list_beyond_max_items_ends_with_a_count():
    assert check(list(range(10)), Limits(max_items=4)) == [0, 1, 2, 3, "…+6 more items"]
    assert check(list(range(5)), Limits(max_items=4))[-1] == "…+1 more item"


def test_sets_of_plain_values_are_sorted_lists():
    assert check({3, 1, 2}) == [1, 2, 3]
    assert check(frozenset({"b", "a"})) == ["a", "b"]
    assert sorted(map(str, check({1, "a"}))) == ["1", "a"]


def test_other_collections_become_lists_or_dicts():
    assert check(deque([1, 2])) == [1, 2]
    assert check(OrderedDict(a=1)) == {"a": 1}
    assert check({"a": 1}.keys()) == ["a"]
    assert check({"a": 1}.values()) == [1]
    assert check(range(3)) == "range(0, 3)"


def test_generators_and_iterators_are_not_consumed():
    def numbers():
        yield 1
        yield 2

    gen = numbers()
    it = iter([1, 2, 3])
    assert check(gen).startswith("<generator object")
    assert check(it).startswith("<list_iterator object")
    assert list(gen) == [1, 2]
    assert list(it) == [1, 2, 3]


def test_cyclic_dict_and_list_are_marked():
    d: dict[str, Any] = {"name": "d"}
    d["self"] = d
    lst: list[Any] = [1]
    lst.append(lst)
    assert check(d) == {"name": "d", "self": "<cycle: dict>"}
    assert check(lst) == [1, "<cycle: list>"]


def test_shared_but_acyclic_objects_are_shown_each_time():
    shared = {"x": 1}
    assert check([shared, shared]) == [{"x": 1}, {"x": 1}]


@dataclasses.dataclass
class Node:
    name: str
    children: list[Node] = dataclasses.field(default_factory=list)
    parent: Node | None = None
    secret: str = dataclasses.field(default="hunter2", repr=False)


def test_dataclass_graph_with_back_references():
    root = Node("root")
    child = Node("child", parent=root)
    root.children.append(child)
    result = check(root)
    assert result == {
        "__type__": "Node",
        "name": "root",
        "children": [{"__type__": "Node", "name": "child", "children": [], "parent": "<cycle: Node>"}],
        "parent": None,
    }


def test_depth_beyond_max_depth_is_summarised():
    value = {"a": {"b": {"c": [1, 2, 3]}}}
    assert check(value, Limits(max_depth=2)) == {"a": {"b": "<dict with 1 item>"}}
    assert check(value, Limits(max_depth=3)) == {"a": {"b": {"c": "<list with 3 items>"}}}


def test_ten_thousand_levels_do_not_recurse_too_deep():
    deep: Any = []
    for _ in range(10_000):
        deep = [deep]
    check(deep)
    result = check(deep, Limits(max_depth=100_000))
    levels = 0
    while isinstance(result, list):
        result = result[0]
        levels += 1
    assert levels == 50
    assert result == "<list with 1 item>"


def test_million_key_dict_stays_bounded():
    wide = {f"key-{i}": "v" * 100 for i in range(1_000_000)}
    result = check(wide)
    assert result[MORE_KEY] == f"+{1_000_000 - len(result) + 1:,} more items"
    assert len(result) == LIMITS.max_items + 1


def test_total_budget_cuts_wide_and_long_payloads():
    limits = Limits(max_payload_chars=1_000)
    result = check([["x" * 500] * 50] * 50, limits)
    assert result[-1].startswith("…+")
    assert len(dumps(result)) < 2_000


def test_budget_accounts_for_escaped_characters():
    limits = Limits(max_payload_chars=600, max_string=10_000)
    result = check(["\x00" * 5_000] * 3, limits)
    assert len(dumps(result)) < 1_000


def test_input_is_never_mutated_and_result_shares_nothing_mutable():
    value = {
        "list": [1, [2, 3], {"k": "v"}],
        "tuple": (1, 2),
        "set": {1, 2},
        "long": "z" * 5_000,
        "wide": {str(i): i for i in range(200)},
    }
    before = copy.deepcopy(value)
    result = check(value)
    assert value == before
    result["list"][1].append(99)
    result["wide"]["0"] = "changed"
    assert value == before


def test_preview_is_taken_at_event_time():
    value = {"messages": ["first"]}
    result = check(value)
    value["messages"].append("second")
    assert result == {"messages": ["first"]}


# Hostile objects


class BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


class NonStrRepr:
    def __repr__(self) -> Any:
        return 42


class BadStr:
    def __str__(self) -> str:
        raise RuntimeError("no str")


class BadStrError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no str")


class BadLenMapping(dict[str, int]):
    def __len__(self) -> int:
        raise RuntimeError("no len")


class Exploding:
    """Every attribute lookup fails, like a broken proxy."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(name)

    def __repr__(self) -> str:
        return "Exploding()"


class NamelessMeta(type):
    @property
    def __name__(cls) -> str:  # type: ignore[override]
        raise RuntimeError("no name")


class Nameless(metaclass=NamelessMeta):
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


class AnswersEverything:
    """An instance ``__getattr__`` that claims every attribute must not make it look like an array."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: {"called": name}

    def __repr__(self) -> str:
        return "AnswersEverything()"


def test_unnameable_class_with_broken_repr_gets_a_generic_marker():
    assert check([Nameless()]) == ["<unreprable object: RuntimeError>"]


def test_instance_getattr_is_not_trusted_for_recognition():
    assert check(AnswersEverything()) == "AnswersEverything()"


def test_released_memoryview():
    view = memoryview(b"abc")
    view.release()
    assert check(view) == "<unpreviewable memoryview: ValueError>"


def test_repr_that_raises_becomes_a_marker():
    assert check(BadRepr()) == "<unreprable BadRepr: RuntimeError>"
    assert check(NonStrRepr()) == "<unreprable NonStrRepr: TypeError>"


def test_str_that_raises_does_not_matter_to_preview():
    assert check(BadStr()).startswith("<test_payload.BadStr object at")


def test_exception_whose_str_raises():
    assert check(BadStrError()) == "BadStrError: <str() failed: RuntimeError>"


def test_broken_objects_inside_containers_only_spoil_their_own_slot():
    result = check({"ok": 1, "bad": BadRepr(), "proxy": Exploding()})
    assert result == {
        "ok": 1,
        "bad": "<unreprable BadRepr: RuntimeError>",
        "proxy": "Exploding()",
    }


def test_dict_subclass_whose_len_raises_still_previews():
    assert check(BadLenMapping(a=1)) == {"a": 1}


def test_mapping_whose_items_raise_becomes_a_marker():
    class Broken(dict[str, int]):
        def items(self) -> Any:
            raise RuntimeError("no items")

    assert check([Broken(a=1)]) == ["<unpreviewable Broken: RuntimeError>"]


def test_long_repr_is_cut():
    class Chatty:
        def __repr__(self) -> str:
            return "c" * 100_000

    result = check(Chatty(), Limits(max_string=20))
    assert result == "c" * 20 + "…[+99,980 chars]"


# Recognised by shape: numpy, pandas, pydantic, LangChain


def test_numpy_array_shows_shape_dtype_and_first_items():
    result = check(np.arange(12, dtype=np.float64).reshape(3, 4), Limits(max_items=3))
    assert result == "<ndarray shape=(3, 4) dtype=float64: [0.0, 1.0, 2.0, …]>"


def test_huge_numpy_array_is_not_converted():
    result = check(np.zeros(10_000_000, dtype=np.int8))
    assert result.startswith("<ndarray shape=(10000000,) dtype=int8: [0, 0,")
    assert len(result) < 400


def test_numpy_scalars_become_plain_numbers():
    assert check([np.float32(1.5), np.int64(7), np.bool_(1), np.array(3)]) == [1.5, 7, True, 3]
    assert check(np.float64("nan")) == "NaN"


def test_pandas_objects_are_summarised():
    frame = pd.DataFrame({"a": [1, 2], "b": [3, 4]})
    assert check(frame) == "<DataFrame shape=(2, 2): columns=['a', 'b']>"
    assert check(pd.Series([1.0, 2.0])) == "<Series shape=(2,) dtype=float64: [1.0, 2.0]>"


class Settings(pydantic.BaseModel):
    name: str
    tags: list[str] = []
    api_key: str = pydantic.Field(default="sk-secret", repr=False)


class BadDump(pydantic.BaseModel):
    value: int = 1

    def model_dump(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        raise RuntimeError("no dump")


class DumpOnly:
    def model_dump(self) -> dict[str, Any]:
        return {"x": [1, 2]}

    def __repr__(self) -> str:
        return "DumpOnly()"


class DumpRaises(DumpOnly):
    def model_dump(self) -> dict[str, Any]:
        raise RuntimeError("no dump")


def test_pydantic_model_shows_type_and_fields_but_not_hidden_ones():
    assert check(Settings(name="n", tags=["t"])) == {
        "__type__": "Settings",
        "name": "n",
        "tags": ["t"],
    }


class Loose(pydantic.BaseModel, extra="allow"):
    a: int = 0


def test_pydantic_extra_fields_are_shown():
    assert check(Loose(a=1, b="x")) == {"__type__": "Loose", "a": 1, "b": "x"}


def test_pydantic_model_graph_with_a_cycle():
    class Box(pydantic.BaseModel):
        items: list[Any] = []

    box = Box()
    box.items.append(box)
    assert check(box) == {"__type__": "Box", "items": ["<cycle: Box>"]}


def test_wide_pydantic_model_counts_the_fields_left_out():
    wide = pydantic.create_model("Wide", **{f"f{i}": (int, i) for i in range(10)})
    assert check(wide(), Limits(max_items=2)) == {
        "__type__": "Wide",
        "f0": 0,
        "f1": 1,
        MORE_KEY: "+8 more items",
    }


def test_pydantic_model_whose_model_dump_raises_still_previews():
    assert check(BadDump(value=3)) == {"__type__": "BadDump", "value": 3}


def test_object_offering_only_model_dump():
    assert check(DumpOnly()) == {"__type__": "DumpOnly", "x": [1, 2]}
    assert check(DumpRaises()) == "DumpOnly()"


def test_ai_message_with_tool_calls_is_compact():
    message = AIMessage(
        content="",
        id="run-1",
        tool_calls=[{"name": "search", "args": {"q": "weather"}, "id": "call-1"}],
        usage_metadata={"input_tokens": 3, "output_tokens": 5, "total_tokens": 8},
    )
    assert check(message) == {
        "type": "ai",
        "content": "",
        "id": "run-1",
        "tool_calls": [{"name": "search", "args": {"q": "weather"}, "id": "call-1", "type": "tool_call"}],
        "usage_metadata": {"input_tokens": 3, "output_tokens": 5, "total_tokens": 8},
    }


def test_human_and_tool_messages_keep_only_set_fields():
    assert check([HumanMessage("hi", name="ann")]) == [{"type": "human", "content": "hi", "name": "ann"}]
    assert check(ToolMessage("42", tool_call_id="call-1")) == {
        "type": "tool",
        "content": "42",
        "tool_call_id": "call-1",
    }
    assert check(ToolMessage("bad", tool_call_id="c", status="error"))["status"] == "error"


def test_message_content_blocks_are_previewed():
    message = HumanMessage(content=[{"type": "text", "text": "t" * 100}], id="m")
    result = check(message, Limits(max_string=5))
    assert result["content"] == [{"type": "text", "text": "ttttt…[+95 chars]"}]


def test_documents_show_content_metadata_and_id():
    assert check(Document(page_content="text", metadata={"source": "a.txt"})) == {
        "page_content": "text",
        "metadata": {"source": "a.txt"},
    }
    assert check(Document(page_content="t", id="d1"))["id"] == "d1"


def test_message_preview_does_not_change_the_message():
    message = AIMessage(content="hello", tool_calls=[{"name": "f", "args": {"x": [1]}, "id": "1"}])
    before = message.model_copy(deep=True)
    result = check(message)
    result["tool_calls"][0]["args"]["x"].append(2)
    assert message == before


# describe_error


def raise_value_error() -> None:
    raise ValueError("boom")


def test_describe_error_with_traceback():
    try:
        raise_value_error()
    except ValueError as exc:
        message, error_type, tb = describe_error(exc, LIMITS)
    assert message == "ValueError: boom"
    assert error_type == "ValueError"
    assert tb is not None
    assert "raise_value_error" in tb
    assert tb.endswith("ValueError: boom\n")


def test_describe_error_without_traceback():
    assert describe_error(KeyError("k"), LIMITS) == ("KeyError: 'k'", "KeyError", None)


def test_describe_error_when_str_raises():
    try:
        raise BadStrError
    except BadStrError as exc:
        message, error_type, tb = describe_error(exc, LIMITS)
    assert message == "BadStrError: <str() failed: RuntimeError>"
    assert error_type == "BadStrError"
    assert tb is not None
    assert "BadStrError" in tb


def test_describe_error_bounds_message_and_keeps_the_end_of_a_long_traceback():
    def recurse(n: int) -> None:
        if n == 0:
            raise RuntimeError("bottom \ud800 " + "m" * 30_000)
        recurse(n - 1)

    try:
        recurse(300)
    except RuntimeError as exc:
        message, _, tb = describe_error(exc, Limits(max_string=50))
    assert message.startswith("RuntimeError: bottom \ufffd m")
    assert message.endswith("…[+29,973 chars]")
    assert tb is not None
    assert tb.startswith("…[")
    assert "chars omitted]" in tb.splitlines()[0]
    assert len(tb) < 20_100
    assert tb.endswith("m" * 1_000 + "\n")
    tb.encode("utf-8")


def test_describe_error_traceback_replaces_lone_surrogates():
    try:
        raise ValueError("\udc80")
    except ValueError as exc:
        _, _, tb = describe_error(exc, LIMITS)
    assert tb is not None
    assert tb.endswith("ValueError: \ufffd\n")
