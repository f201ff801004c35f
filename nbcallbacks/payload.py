"""Bounded, cycle-safe, JSON-ready snapshots of callback payloads.

LangChain hands callbacks its inputs and outputs by reference, and they can be anything: messages,
documents, pydantic models, numpy arrays, 20 MB strings, cyclic graphs, objects whose ``repr`` raises.
:func:`preview` copies what is worth showing at event time into plain ``dict``/``list``/``str``/``int``/
``float``/``bool``/``None`` values, within :class:`~nbcallbacks.events.Limits`, and never raises.
:func:`describe_error` does the same for an exception.

Standard library only: messages, documents, pydantic models and arrays are recognised by their shape
(duck typing), not by importing their libraries.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import math
import pathlib
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence, ValuesView
from collections.abc import Set as AbstractSet
from itertools import islice
from json.encoder import encode_basestring
from typing import TYPE_CHECKING, Any, Final

from nbcallbacks.text import clean

if TYPE_CHECKING:
    from nbcallbacks.events import Limits

__all__ = ["describe_error", "preview"]

MORE_KEY: Final = "…"
"""Key of the entry that counts what a dictionary preview left out."""

_DEPTH_CAP: Final = 50
"""Nesting levels walked whatever ``Limits.max_depth`` says, far below Python's recursion limit."""
_MIN_KEEP: Final = 16
"""Characters kept of a string met when the total budget is (nearly) spent."""
_MIN_KEY_KEEP: Final = 40
"""Characters kept of a dictionary key whatever the limits say, so field names stay readable."""
_ESCAPE_SLACK: Final = 32
"""Characters a truncated string may exceed its allowance by (the truncation marker)."""
_TYPE_NAME_CHARS: Final = 100
_BYTES_SHOWN: Final = 32
_ARRAY_ITEM_CHARS: Final = 40
_SAFE_INT_BITS: Final = 53
"""Integers wider than this lose precision in JavaScript; they are sent as text."""
_INT_TEXT_BITS: Final = 10_000
"""Wider integers are summarised: ``str()`` of them is slow and may hit the int digit limit."""
_TRACEBACK_CHARS: Final = 20_000


def preview(obj: Any, limits: Limits) -> Any:
    """A bounded JSON-ready copy of ``obj``, taken now: later changes to ``obj`` do not show in it.

    The result holds only ``dict[str, ...]``, ``list``, ``str``, ``int`` (at most 53 bits), finite
    ``float``, ``bool`` and ``None``, so ``json.dumps(result, allow_nan=False)`` always works and every
    string encodes to UTF-8. Strings keep ``limits.max_string`` characters, containers
    ``limits.max_items`` items and ``limits.max_depth`` levels (at most 50); whatever is cut is
    replaced by a visible marker (``"…[+N chars]"``, ``{"…": "+N more items"}``, ``"<dict with N
    items>"``, ``"<cycle: dict>"``). Its ``json.dumps(..., ensure_ascii=False)`` length stays near
    ``limits.max_payload_chars`` (plus a few short markers per nesting level), and the work done is
    proportional to the preview, not to ``obj``. ``obj`` is never modified.

    Never raises (except ``KeyboardInterrupt`` and other non-``Exception`` signals): a part that
    cannot be previewed becomes a ``"<...>"`` marker string.
    """
    try:
        return _Walker(limits).walk(obj, 0)
    except Exception:  # noqa: BLE001 - the last guard: a preview must never break the user's run
        return "<unpreviewable>"


def describe_error(error: BaseException, limits: Limits) -> tuple[str, str, str | None]:
    """``(message, type name, traceback)`` of ``error``; never raises.

    The message reads like ``"ValueError: boom"`` and keeps ``limits.max_string`` characters. The
    traceback is the formatted ``error.__traceback__`` (with chained causes), keeping its last 20,000
    characters, or ``None`` when the error carries no traceback.
    """
    name = _type_name(error)
    message = _truncate(_error_text(error), limits.max_string)
    try:
        tb = error.__traceback__
        if tb is None:
            return message, name, None
        text = "".join(traceback.format_exception(type(error), error, tb))
    except Exception as exc:  # noqa: BLE001 - user exceptions and frames may raise anything
        return message, name, f"<traceback unavailable: {_type_name(exc)}>"
    if len(text) > _TRACEBACK_CHARS:
        text = f"…[{len(text) - _TRACEBACK_CHARS:,} chars omitted]\n" + text[-_TRACEBACK_CHARS:]
    return message, name, clean(text)


class _Walker:
    """One preview: the limits, the characters still to spend, and the containers being walked."""

    __slots__ = ("budget", "limits", "max_depth", "path")

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.budget = limits.max_payload_chars
        self.max_depth = min(limits.max_depth, _DEPTH_CAP)
        self.path: set[int] = set()

    def walk(self, obj: Any, depth: int) -> Any:
        """Preview ``obj`` found ``depth`` levels down; a failure becomes a marker for this part."""
        try:
            return self._walk(obj, depth)
        except Exception as exc:  # noqa: BLE001 - user objects may raise anything
            return self.note(f"<unpreviewable {_type_name(obj)}: {_type_name(exc)}>")

    def _walk(self, obj: Any, depth: int) -> Any:  # noqa: PLR0911 - fast paths, one per type
        cls = type(obj)
        if obj is None or cls is bool:
            self.budget -= 5
            return obj
        if cls is str:
            return self.text(obj)
        if cls is int:
            return self.integer(obj)
        if cls is float:
            return self.real(obj)
        if cls is dict:
            return self.nested(obj, depth, len(obj), lambda: self.mapping({}, obj.items(), len(obj), depth + 1))
        if cls is list or cls is tuple:
            return self.nested(obj, depth, len(obj), lambda: self.sequence(obj, len(obj), depth + 1))
        return self._walk_other(obj, cls, depth)

    def _walk_other(self, obj: Any, cls: type, depth: int) -> Any:  # noqa: C901, PLR0911 - one dispatch
        scalar = _scalar_text(obj)
        if scalar is not None:
            return self.text(scalar)
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, int):  # subclasses; bool and enums were handled above
            return self.integer(int.__int__(obj))
        if isinstance(obj, float):  # subclasses, numpy.float64 among them
            return self.real(float.__float__(obj))
        if _has(cls, "shape") and (_has(cls, "dtype") or _has(cls, "dtypes")):
            return self.array(obj, cls, depth)
        fields = getattr(cls, "model_fields", None)
        if isinstance(fields, dict) and not isinstance(obj, type):
            return self.nested(obj, depth, None, lambda: self.model(obj, cls, fields, depth + 1))
        if isinstance(obj, Mapping):
            size = _safe_len(obj)
            return self.nested(obj, depth, size, lambda: self.mapping({}, obj.items(), size, depth + 1))
        if isinstance(obj, (AbstractSet, ValuesView, deque)) or (
            isinstance(obj, Sequence) and not isinstance(obj, range)
        ):
            size = _safe_len(obj)
            ordered = isinstance(obj, AbstractSet)
            return self.nested(obj, depth, size, lambda: self.sequence(obj, size, depth + 1, ordered))
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            pairs = [(f.name, getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.repr]
            return self.nested(obj, depth, None, lambda: self.typed(cls, pairs, len(pairs), depth + 1))
        if callable(getattr(cls, "model_dump", None)) and not isinstance(obj, type):
            return self.nested(obj, depth, None, lambda: self.dumped(obj, cls, depth + 1))
        return self.text(_safe_repr(obj))

    # Leaves.

    def text(self, text: str, min_keep: int = 0) -> str:
        """``text`` cut to ``max_string`` and to what is left of the budget, spent from the budget.

        At least ``min_keep`` characters are kept whatever the limits say.
        """
        allowance = max(self.budget, _MIN_KEEP, min_keep)
        limit = min(max(self.limits.max_string, min_keep), allowance)
        out = _truncate(text, limit)
        cost = len(encode_basestring(out))
        while cost > allowance + _ESCAPE_SLACK and limit > 1:  # escapes made it longer than allowed
            limit = max(1, min(limit - 1, limit * allowance // cost))
            out = _truncate(text, limit)
            cost = len(encode_basestring(out))
        self.budget -= cost
        return out

    def note(self, marker: str) -> str:
        """A marker of our own making (already short), spent from the budget."""
        self.budget -= len(marker) + 2
        return marker

    def integer(self, value: int) -> int | str:
        bits = value.bit_length()
        if bits <= _SAFE_INT_BITS:
            self.budget -= bits // 3 + 2
            return value
        if bits <= _INT_TEXT_BITS:
            return self.text(str(value))
        return self.note(f"<int with {bits:,} bits>")

    def real(self, value: float) -> float | str:
        if math.isnan(value):
            return self.note("NaN")
        if math.isinf(value):
            return self.note("Infinity" if value > 0 else "-Infinity")
        self.budget -= 24
        return value

    # Containers.

    def nested(self, obj: Any, depth: int, size: int | None, render: Callable[[], Any]) -> Any:
        """Render a container unless it is already being walked (a cycle) or lies too deep."""
        key = id(obj)
        if key in self.path:
            return self.note(f"<cycle: {_type_name(obj)}>")
        if depth >= self.max_depth:
            if size is None:
                return self.note(f"<{_type_name(obj)}>")
            return self.note(f"<{_type_name(obj)} with {_count(size, 'item')}>")
        self.path.add(key)
        try:
            return render()
        finally:
            self.path.discard(key)

    def mapping(
        self, out: dict[str, Any], pairs: Iterable[tuple[Any, Any]], size: int | None, depth: int
    ) -> dict[str, Any]:
        """Fill ``out`` with the first pairs, then a ``"…"`` entry counting what was left out."""
        self.budget -= 2
        taken, more = _take(pairs, self.limits.max_items)
        shown = 0
        for key, value in taken:
            if self.budget <= 0:
                break
            name = self.key(key, out)
            self.budget -= 4
            out[name] = self.walk(value, depth)
            shown += 1
        hidden = _hidden(size, shown, len(taken), more)
        if hidden:
            out[MORE_KEY] = self.note(hidden)
        return out

    def sequence(self, items: Iterable[Any], size: int | None, depth: int, sort_plain: bool = False) -> list[Any]:
        """The first items as a list, then a ``"…+N more items"`` entry counting what was left out."""
        self.budget -= 2
        taken, more = _take(items, self.limits.max_items)
        if sort_plain and not more:
            taken = _sorted_if_plain(taken)
        out: list[Any] = []
        for item in taken:
            if self.budget <= 0:
                break
            self.budget -= 2
            out.append(self.walk(item, depth))
        hidden = _hidden(size, len(out), len(taken), more)
        if hidden:
            out.append(self.note("…" + hidden))
        return out

    def key(self, key: Any, taken: dict[str, Any]) -> str:
        """A dictionary key as a bounded string that does not collide with one already used."""
        name = self.text(key if isinstance(key, str) else _safe_repr(key), _MIN_KEY_KEEP)
        unique, number = name, 2
        while unique in taken:
            unique = f"{name} #{number}"
            number += 1
        return unique

    def typed(self, cls: type, pairs: Iterable[tuple[Any, Any]], size: int | None, depth: int) -> dict[str, Any]:
        """An object's fields, after a ``"__type__"`` entry naming its class."""
        out = {"__type__": self.note(_class_name(cls))}
        return self.mapping(out, pairs, size, depth)

    # Recognised by shape.

    def model(self, obj: Any, cls: type, fields: dict[str, Any], depth: int) -> dict[str, Any]:
        """A pydantic model, read field by field (no ``model_dump``: it copies everything)."""
        if "content" in fields and "type" in fields:  # a LangChain message
            names = ["type", "content", *(n for n in fields if n not in {"type", "content"})]
            pairs = []
            for name in names:
                value = getattr(obj, name, None)
                if name in {"type", "content"} or not _is_unset(value, fields.get(name)):
                    pairs.append((name, value))
            return self.mapping({}, pairs, len(pairs), depth)
        if "page_content" in fields and "metadata" in fields:  # a LangChain document
            pairs = [("page_content", obj.page_content), ("metadata", obj.metadata)]
            doc_id = getattr(obj, "id", None)
            if doc_id is not None:
                pairs.append(("id", doc_id))
            return self.mapping({}, pairs, len(pairs), depth)
        pairs = [
            (name, getattr(obj, name, None))
            for name, info in fields.items()
            if getattr(info, "repr", True) is not False  # fields hidden from repr may hold secrets
        ]
        extra = getattr(obj, "__pydantic_extra__", None)
        if isinstance(extra, dict):
            pairs.extend(extra.items())
        return self.typed(cls, pairs, len(pairs), depth)

    def dumped(self, obj: Any, cls: type, depth: int) -> Any:
        """An object that only offers ``model_dump()``; its ``repr`` when that fails."""
        try:
            data = obj.model_dump()
        except Exception:  # noqa: BLE001 - a failing dump falls back to repr
            return self.text(_safe_repr(obj))
        if isinstance(data, Mapping):
            return self.typed(cls, data.items(), _safe_len(data), depth)
        return self.walk(data, depth)

    def array(self, obj: Any, cls: type, depth: int) -> Any:
        """``"<ndarray shape=(3, 4) dtype=float64: [0.0, 1.0, …]>"``, reading only the first items."""
        shape = tuple(obj.shape)
        if shape == () and callable(getattr(obj, "item", None)):  # numpy scalars, 0-d arrays
            return self.walk(obj.item(), depth + 1)
        head = f"<{_class_name(cls)} shape={shape!r}"
        dtype = getattr(obj, "dtype", None)
        if dtype is not None:
            head += f" dtype={dtype}"
        sample = _array_sample(obj, cls, shape, self.limits.max_items)
        return self.text(f"{head}{sample}>")


# Helpers, all total: none raises on hostile input.


def _scalar_text(obj: Any) -> str | None:
    """Text of values JSON lacks a type for (dates, ids, enums, bytes, errors); None for others."""
    if isinstance(obj, enum.Enum):
        return f"{_class_name(type(obj))}.{obj.name}"
    if isinstance(obj, (dt.date, dt.time)):
        return obj.isoformat()
    if isinstance(obj, (uuid.UUID, decimal.Decimal, pathlib.PurePath, dt.timedelta, complex)):
        return str(obj)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return _bytes_text(obj)
    if isinstance(obj, BaseException):
        return _error_text(obj)
    return None


def _bytes_text(obj: bytes | bytearray | memoryview) -> str:
    if isinstance(obj, memoryview):
        size = obj.nbytes
        try:
            head = obj.cast("B")[:_BYTES_SHOWN].tobytes()
        except Exception:  # noqa: BLE001 - released or non-contiguous views
            return f"<memoryview len={size:,}>"
    else:
        size = len(obj)
        head = bytes(obj[:_BYTES_SHOWN])
    more = "…" if size > len(head) else ""
    return f"<{_class_name(type(obj))} len={size:,}: {head!r}{more}>"


def _array_sample(obj: Any, cls: type, shape: tuple[Any, ...], count: int) -> str:
    """``": [first items…]"`` of an array-like, reading at most ``count`` items; ``""`` if unknown."""
    try:
        if _has(cls, "flat") and _has(cls, "size"):  # numpy
            items, total, label = obj.flat[:count].tolist(), int(obj.size), ""
        elif _has(cls, "iloc") and len(shape) == 1:  # pandas Series
            items, total, label = obj.iloc[:count].tolist(), int(shape[0]), ""
        elif _has(cls, "columns"):  # pandas DataFrame
            columns = obj.columns
            items, total, label = list(islice(columns, count)), len(columns), " columns="
        else:
            return ""
    except Exception:  # noqa: BLE001 - exotic array types
        return ""
    parts = [_truncate(_safe_repr(item), _ARRAY_ITEM_CHARS) for item in items]
    if total > len(parts):
        parts.append("…")
    return f":{label or ' '}[{', '.join(parts)}]"


def _error_text(error: BaseException) -> str:
    name = _type_name(error)
    try:
        text = str(error)
    except Exception as exc:  # noqa: BLE001 - an exception's __str__ may itself raise
        return f"{name}: <str() failed: {_type_name(exc)}>"
    return f"{name}: {text}" if text else name


def _safe_repr(obj: Any) -> str:
    try:
        return repr(obj)
    except Exception as exc:  # noqa: BLE001 - __repr__ may raise or return a non-string
        return f"<unreprable {_type_name(obj)}: {_type_name(exc)}>"


def _truncate(text: str, limit: int) -> str:
    """At most ``limit`` characters of ``text`` plus a ``"…[+N chars]"`` marker, UTF-8 encodable.

    Slices before anything else, so a 20 MB string costs what its first ``limit`` characters cost.
    """
    size = str.__len__(text)
    if size <= limit:
        return clean(text if type(text) is str else str.__getitem__(text, slice(None)))
    return clean(str.__getitem__(text, slice(0, limit))) + f"…[+{size - limit:,} chars]"


def _type_name(obj: Any) -> str:
    return _class_name(type(obj))


def _class_name(cls: type) -> str:
    try:
        name: object = cls.__name__
    except Exception:  # noqa: BLE001 - metaclasses may do anything
        return "object"
    if not isinstance(name, str):
        return "object"
    return clean(name[:_TYPE_NAME_CHARS])


def _has(cls: type, name: str) -> bool:
    """Whether the class (not the instance, whose ``__getattr__`` may do anything) has ``name``."""
    try:
        return hasattr(cls, name)
    except Exception:  # noqa: BLE001 - metaclass __getattr__ may raise anything
        return False


def _safe_len(obj: Any) -> int | None:
    try:
        size = len(obj)
    except Exception:  # noqa: BLE001 - user containers may raise anything
        return None
    return size


def _take(items: Iterable[Any], count: int) -> tuple[list[Any], bool]:
    """The first ``count`` items and whether there were more, consuming at most ``count + 1``."""
    taken = list(islice(items, count + 1))
    if len(taken) > count:
        return taken[:count], True
    return taken, False


def _hidden(size: int | None, shown: int, taken: int, more: bool) -> str:
    """``"+N more items"`` for what a container preview left out, ``""`` when nothing was."""
    if size is not None and size > shown:
        return f"+{_count(size - shown, 'more item')}"
    if size is None and (more or taken > shown):
        return "+more items"
    return ""


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}" if number == 1 else f"{number:,} {noun}s"


def _sorted_if_plain(items: list[Any]) -> list[Any]:
    """Set members in sorted order when they are all plain strings or all plain numbers."""
    kinds = {type(item) for item in items}
    if kinds == {str} or (kinds and kinds <= {int, float}):
        return sorted(items)
    return items


def _is_unset(value: Any, info: Any) -> bool:
    """Whether a message field holds nothing worth showing: ``None``, empty, or its plain default."""
    if value is None:
        return True
    if type(value) in {str, list, dict, tuple} and not value:
        return True
    default = getattr(info, "default", None)
    return type(default) in {str, int, bool} and type(value) is type(default) and value == default
