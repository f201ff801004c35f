"""Properties of preview() over arbitrary nested Python values, cyclic ones included."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nbcallbacks.events import Limits
from nbcallbacks.payload import describe_error, preview

characters = st.one_of(
    st.characters(exclude_categories=()),
    st.characters(categories=["Cs"]),  # lone surrogates
    st.sampled_from('\x00\x1b\x7f"\\\n\u2028…'),
)
texts = st.text(characters, max_size=80)
huge_ints = st.integers(min_value=-(2**200), max_value=2**200)
hashables = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), huge_ints, st.floats(), texts, st.binary()),
    lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=4),
    max_leaves=6,
)
scalars = st.one_of(
    hashables,
    st.floats(allow_nan=True, allow_infinity=True),
    st.datetimes(),
    st.uuids(),
    st.decimals(),
    st.complex_numbers(),
    st.builds(bytearray, st.binary()),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=8),
        st.tuples(children, children),
        st.dictionaries(hashables, children, max_size=8),
        st.sets(hashables, max_size=8),
    ),
    max_leaves=60,
)
limits = st.builds(
    Limits,
    max_string=st.integers(1, 60),
    max_items=st.integers(1, 8),
    max_depth=st.integers(1, 8),
    max_payload_chars=st.integers(1, 600),
)


def containers(value: Any, found: list[Any], seen: set[int]) -> list[Any]:
    """Every list and dict inside value (each once), outermost first."""
    if id(value) in seen:
        return found
    if isinstance(value, (list, dict)):
        seen.add(id(value))
        found.append(value)
    items = value.values() if isinstance(value, dict) else value
    if isinstance(value, (list, tuple, dict)):
        for item in items:
            containers(item, found, seen)
    return found


@st.composite
def cyclic_values(draw: st.DrawFn) -> list[Any]:
    """A nested value in which some lists and dicts also hold references to others, ancestors included."""
    root: list[Any] = [draw(values)]
    found = containers(root, [], set())
    for _ in range(draw(st.integers(1, 4))):
        holder = draw(st.sampled_from(found))
        target = draw(st.sampled_from(found))
        if isinstance(holder, list):
            holder.append(target)
        else:
            holder[f"ref-{len(holder)}"] = target
    return root


def slack(limit: Limits) -> int:
    """What a preview may exceed max_payload_chars by: one cut item plus a marker per level."""
    return 200 + 64 * (min(limit.max_depth, 50) + 1)


def check_shape(result: Any, limit: Limits, depth: int = 0) -> None:
    """Only JSON types, within the per-string, per-container and depth limits."""
    if isinstance(result, str):
        marker = len("…[+1,000,000,000 chars]")
        assert len(result) <= max(limit.max_string, 40) + marker or result.startswith("<")
        return
    if result is None or isinstance(result, (bool, int, float)):
        if isinstance(result, int) and not isinstance(result, bool):
            assert abs(result) < 2**53
        return
    assert depth < limit.max_depth
    if isinstance(result, list):
        assert len(result) <= limit.max_items + 1
        for item in result:
            check_shape(item, limit, depth + 1)
        return
    assert type(result) is dict
    assert len(result) <= limit.max_items + 1
    for key, item in result.items():
        assert type(key) is str
        check_shape(item, limit, depth + 1)


def check_preview(value: Any, limit: Limits) -> Any:
    before = repr(value)
    result = preview(value, limit)
    assert repr(value) == before
    text = json.dumps(result, allow_nan=False, ensure_ascii=False)
    text.encode("utf-8")
    assert len(text) <= limit.max_payload_chars + slack(limit)
    check_shape(result, limit)
    return result


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values, limits)
def test_any_nested_value_previews_within_limits_and_is_left_unchanged(value, limit):
    check_preview(value, limit)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cyclic_values(), limits)
def test_cyclic_values_preview_within_limits_and_are_left_unchanged(value, limit):
    check_preview(value, limit)


@settings(max_examples=100, deadline=None)
@given(values)
def test_default_limits_hold_for_any_value(value):
    check_preview(value, Limits())


json_native = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(st.characters(exclude_categories=["Cs"]), max_size=30),
    ),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text(max_size=10).filter(lambda k: k != "…"), children, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None)
@given(json_native)
def test_small_json_values_come_back_unchanged(value):
    assert preview(value, Limits(max_depth=50)) == value


@settings(max_examples=100, deadline=None)
@given(texts, limits)
def test_describe_error_is_bounded_and_encodable_for_any_message(message, limit):
    try:
        raise ValueError(message)
    except ValueError as exc:
        text, error_type, tb = describe_error(exc, limit)
    assert error_type == "ValueError"
    assert text.startswith("ValueError"[: limit.max_string])
    assert len(text) <= limit.max_string + len("ValueError: …[+1,000,000 chars]")
    text.encode("utf-8")
    assert tb is not None
    tb.encode("utf-8")
