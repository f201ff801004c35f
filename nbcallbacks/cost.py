"""What model runs cost, in US dollars, from `genai-prices` (the optional extra ``nbcallbacks[cost]``).

Computed on read, never on the recording path: the tree/export layer calls :meth:`Pricer.run_cost` per model run
(or :func:`add_cost_columns` on a runs DataFrame) and :func:`cost_totals` to sum costs up the tree.

- Prices come from `genai-prices`' bundled offline snapshot: provider + model lookup, tiered and cached-token
  prices, date-aware (the run's start time picks the price in force then). No price table is written here.
- Input, output, cache-read, cache-creation (cache-write) and reasoning tokens are priced separately when the usage
  reports them (LangChain's ``usage_metadata`` with ``input_token_details`` / ``output_token_details``, read by
  ``nbcallbacks.langchain.decode.usage``).
- The provider is LangChain's ``ls_provider`` metadata (``"openai"``, ``"anthropic"``, ``"google_genai"``,
  ``"bedrock"``, ...), matched by `genai-prices`; without one, the provider is inferred from the model name.
- A model without a known price costs ``None`` ("price unknown"), never 0.
- Users add or override prices: ``Pricer(prices={"my-model": (usd_per_million_input, usd_per_million_output)})``;
  these work without the extra installed.

Without `genai-prices` installed every other model costs ``None`` and :data:`COST_HINT` says how to enable it
(:func:`cost_available` tells whether it is).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib.util
import math
import numbers
import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, cast

from nbcallbacks.events import MODEL_RUN_TYPES, RunRecord
from nbcallbacks.missing import is_missing
from nbcallbacks.tree import Tree

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "COST_HINT",
    "Pricer",
    "UsageDetails",
    "add_cost_columns",
    "cost_available",
    "cost_totals",
    "price",
    "unpriced_counts",
]

COST_HINT: Final = 'Costs need the optional extra: pip install "nbcallbacks[cost]"'
"""What to show (widget header, docs) when `genai-prices` is not installed."""

_MILLION: Final = 1_000_000
_CACHE_SIZE: Final = 8192
"""Costs remembered per Pricer (a genai-prices calculation costs ~100 µs; re-reading a trace is then free)."""
_UNKNOWN: Final = object()
_USAGE_FIELDS: Final = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_creation_tokens",
    "reasoning_tokens",
)


def cost_available() -> bool:
    """Whether `genai-prices` is installed (user prices work either way). Cheap: it is not imported here.

    Importing it and loading its table costs ~0.2-0.8 s once per process, at the first price looked up.
    """
    if "genai_prices" in sys.modules:
        return sys.modules["genai_prices"] is not None
    try:
        return importlib.util.find_spec("genai_prices") is not None
    except (ImportError, ValueError):
        return False


def _genai_prices() -> Any:
    """The ``genai_prices`` module, or None when the extra is not installed (checked on every call: cheap)."""
    try:
        import genai_prices  # noqa: PLC0415 - optional extra, imported only when costs are read
    except ImportError:
        return None
    return genai_prices


# --- usage


@dataclasses.dataclass(frozen=True, slots=True)
class UsageDetails:
    """The token counts of one model call that prices depend on; ``None`` where the provider did not say.

    ``input_tokens`` includes cache reads and cache writes and ``output_tokens`` includes reasoning, as in
    LangChain's ``usage_metadata`` (and in `genai-prices`' ``Usage``).
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_creation_tokens: int | None = None
    reasoning_tokens: int | None = None


def _count(value: Any) -> int | None:
    """A token count: a non-negative whole number, else None (bools and junk are not counts)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if not math.isfinite(number) or number < 0 or not number.is_integer():
        return None
    return int(number)


# --- prices


def _user_prices(prices: Any) -> dict[str, tuple[float, float]]:
    """Validate ``prices={"model": (usd_per_million_input, usd_per_million_output)}``; clear errors otherwise."""
    if prices is None:
        return {}
    if not isinstance(prices, Mapping):
        msg = f"prices must be a dict of model name -> (usd_per_million_input, usd_per_million_output), got {prices!r}"
        raise TypeError(msg)
    checked: dict[str, tuple[float, float]] = {}
    for model, pair in prices.items():
        if not isinstance(model, str) or not model:
            msg = f"prices: model names must be non-empty strings, got {model!r}"
            raise TypeError(msg)
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:  # noqa: PLR2004 - input and output
            msg = f"prices[{model!r}] must be (usd_per_million_input, usd_per_million_output), got {pair!r}"
            raise TypeError(msg)
        values = []
        for value in pair:
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
                msg = f"prices[{model!r}]: prices must be finite numbers, got {pair!r}"
                raise ValueError(msg)
            if value < 0:
                msg = f"prices[{model!r}]: prices must not be negative, got {pair!r}"
                raise ValueError(msg)
            values.append(float(value))
        checked[model] = (values[0], values[1])
    return checked


def _when(value: Any) -> dt.datetime | None:
    """A request time as an aware datetime: from seconds since the epoch, a datetime, or None (now)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)
    if isinstance(value, numbers.Real) and math.isfinite(float(value)):
        return dt.datetime.fromtimestamp(float(value), tz=dt.timezone.utc)
    to_pydatetime = getattr(value, "to_pydatetime", None)  # pandas.Timestamp
    if callable(to_pydatetime) and not is_missing(value):
        return _when(to_pydatetime())
    return None


def _usage_key(usage: Any) -> tuple[int | None, ...]:
    if isinstance(usage, UsageDetails):
        usage = dataclasses.asdict(usage)
    if not isinstance(usage, Mapping):
        msg = f"usage must be a UsageDetails or a dict of token counts, got {type(usage).__name__}"
        raise TypeError(msg)
    return tuple(_count(usage.get(name)) for name in _USAGE_FIELDS)


class Pricer:
    """Prices model runs, remembering each answer (a lookup and calculation costs ~100-250 µs).

    Args:
        prices: user prices, ``{"model name": (usd_per_million_input, usd_per_million_output)}``. They win over
            `genai-prices` (negotiated prices, fine-tunes, self-hosted models) and need no extra installed.
            Cache-read and reasoning tokens are priced as plain input and output tokens there.
    """

    def __init__(self, prices: Mapping[str, tuple[float, float]] | None = None) -> None:
        """Create a pricer; ``prices`` are validated now (TypeError/ValueError say what is wrong)."""
        self.prices = _user_prices(prices)
        self._lower = {name.lower(): pair for name, pair in self.prices.items()}
        self._cache: dict[tuple[Any, ...], float | None] = {}
        self._models: dict[tuple[str | None, str], Any] = {}

    @property
    def available(self) -> bool:
        """Whether `genai-prices` is installed (user prices work either way)."""
        return cost_available()

    def price(self, model: str | None, provider: str | None, usage: Any, when: Any = None) -> float | None:
        """US dollars for one model call, or None when the price (or the usage) is unknown: never a made-up 0.

        Args:
            model: the model name as reported (``"gpt-4o-mini"``, ``"claude-sonnet-4-5-20250929"``).
            provider: LangChain's ``ls_provider`` (``"openai"``) or None to infer it from the model name.
            usage: a :class:`UsageDetails` or a mapping with ``input_tokens``, ``output_tokens`` and optionally
                ``cache_read_tokens``, ``cache_creation_tokens``, ``reasoning_tokens``.
            when: when the call was made (seconds since the epoch, a datetime or a pandas Timestamp); prices in
                force then apply. None: now.
        """
        if not isinstance(model, str) or not model:
            return None
        counts = _usage_key(usage)
        if counts[0] is None and counts[1] is None:
            return None  # no usage reported: the cost is unknown, not zero
        moment = _when(when)
        key = (model, provider, counts, moment)
        cached = self._cache.get(key, _UNKNOWN)
        if cached is not _UNKNOWN:
            return cached  # type: ignore[return-value]
        result = self._price(model, provider, counts, moment)
        if len(self._cache) >= _CACHE_SIZE:
            self._cache.clear()
        self._cache[key] = result
        return result

    def _price(
        self, model: str, provider: str | None, counts: tuple[int | None, ...], when: dt.datetime | None
    ) -> float | None:
        inputs, outputs, cache_read, cache_creation, reasoning = counts
        user = self.prices.get(model) or self._lower.get(model.lower())
        if user is not None:
            return ((inputs or 0) * user[0] + (outputs or 0) * user[1]) / _MILLION
        genai_prices = _genai_prices()
        if genai_prices is None:
            return None
        found = self._model(genai_prices, model, provider)
        if found is None:
            return None
        provider_info, model_info = found
        usage = genai_prices.Usage(
            input_tokens=inputs or 0,
            output_tokens=outputs or 0,
            cache_read_tokens=cache_read or None,
            cache_write_tokens=cache_creation or None,
            output_reasoning_tokens=reasoning or None,
        )
        try:
            calculation = model_info.calc_price(usage, provider_info, genai_request_timestamp=when)
        except (ValueError, LookupError, ArithmeticError):  # inconsistent usage (details > totals), odd prices
            return None
        return float(calculation.total_price)

    def _model(self, genai_prices: Any, model: str, provider: str | None) -> tuple[Any, Any] | None:
        """(provider, model) of `genai-prices`, looked up once per name; None when unknown."""
        key = (provider, model)
        found = self._models.get(key, _UNKNOWN)
        if found is _UNKNOWN:
            snapshot = genai_prices.data_snapshot.get_snapshot()
            try:
                found = snapshot.find_provider_model(model, None, provider, None)
            except LookupError:
                found = None
            self._models[key] = found
        return cast("tuple[Any, Any] | None", found)

    def run_cost(self, run: Any) -> float | None:
        """The cost of one run: a mapping (a runs-DataFrame row, a wire or sink record) or a ``RunRecord``.

        Model runs (``run_type`` ``llm``/``chat_model``) only; every other run costs None. Reads ``model``,
        ``provider``, ``input_tokens``, ``output_tokens``,
        ``cache_read_tokens``, ``cache_creation_tokens``, ``reasoning_tokens`` (absent ones count as not
        reported) and ``start`` (seconds since the epoch, a datetime or a Timestamp).
        """
        if isinstance(run, Mapping):
            get: Any = run.get
        else:
            get = lambda name: getattr(run, name, None)  # noqa: E731 - a record's attributes, same names
        if get("run_type") not in MODEL_RUN_TYPES:
            return None
        provider = get("provider")  # recorded from LangChain's ls_provider (nbcallbacks.langchain.decode)
        if not isinstance(provider, str) or not provider:
            provider = None
        model = get("model")
        if is_missing(model):
            return None
        usage = {name: get(name) for name in _USAGE_FIELDS}  # NaN / NA read as not reported (_count)
        return self.price(str(model), provider, usage, get("start"))


_DEFAULT: Pricer | None = None


def price(
    model: str | None,
    provider: str | None,
    usage: Any,
    when: Any = None,
    prices: Mapping[str, tuple[float, float]] | None = None,
) -> float | None:
    """US dollars for one model call, or None when unknown (see :meth:`Pricer.price`).

    With ``prices``, a new :class:`Pricer` is made for the call; otherwise a shared one (with its cache) is used.
    """
    global _DEFAULT  # noqa: PLW0603 - one shared cache for the convenience function
    if prices is not None:
        return Pricer(prices).price(model, provider, usage, when)
    if _DEFAULT is None:
        _DEFAULT = Pricer()
    return _DEFAULT.price(model, provider, usage, when)


# --- up the tree


def _subtree_sums(items: list[tuple[str, str | None]], values: list[float | None]) -> dict[str, float | None]:
    """Per run, the sum of ``values`` (one per item, None: nothing) over its subtree; None where all are None.

    Summed by ``nbcallbacks.tree.Tree``, the one place the tree is computed, over stand-in runs: so a DataFrame
    and the runs it was made from agree on every tree (late parents, missing parents, hostile loops). The
    stand-ins say ``run_type="llm"`` only so that the tree asks the pricing for their value.
    """
    stubs = [
        RunRecord(run_id=run_id, parent_run_id=parent, order=order, name="", run_type="llm", start=0.0)
        for order, (run_id, parent) in enumerate(items)
    ]
    tree = Tree.of(stubs, pricing=lambda run: values[run.order])
    return {run_id: tree.derived(run_id).cost_usd_total for run_id, _ in items}


def cost_totals(runs: Iterable[tuple[str, str | None, float | None]]) -> dict[str, float | None]:
    """``cost_usd_total`` per run: its own cost plus every descendant's, from ``(run_id, parent_run_id, cost)``.

    A run whose subtree holds no known cost gets None (unknown, not $0). Unknown costs inside a subtree count as
    nothing: the total is then a lower bound (callers may flag that with :func:`unpriced_counts`). Parents that
    are not among ``runs`` are ignored (the run is a root).
    """
    items = list(runs)
    costs = [None if cost is None or is_missing(cost) else float(cost) for _, _, cost in items]
    return _subtree_sums([(run_id, parent) for run_id, parent, _ in items], costs)


def unpriced_counts(runs: Iterable[tuple[str, str | None, str | None, bool]]) -> dict[str, int]:
    """Model runs without a known price in each run's subtree, from ``(run_id, parent_run_id, run_type, priced)``.

    Lets a viewer say "≥ $0.0123 (2 model calls without a price)" instead of a silently low total. The same tree
    as :func:`cost_totals`.
    """
    items = list(runs)
    ones = [1.0 if run_type in MODEL_RUN_TYPES and not priced else None for _, _, run_type, priced in items]
    sums = _subtree_sums([(run_id, parent) for run_id, parent, _, _ in items], ones)
    return {run_id: int(total or 0) for run_id, total in sums.items()}


def add_cost_columns(frame: pd.DataFrame, pricer: Pricer | None = None) -> pd.DataFrame:
    """A copy of a runs DataFrame with ``cost_usd`` (model runs) and ``cost_usd_total`` (run + descendants).

    Both are ``float64`` with NaN where unknown (never 0 for an unknown price). Columns already present are
    recomputed. Without `genai-prices` and without user prices both columns exist and are NaN everywhere.
    """
    import numpy as np  # noqa: PLC0415 - pandas is there whenever a DataFrame is
    import pandas as pd  # noqa: PLC0415

    pricer = pricer if pricer is not None else Pricer()
    out: pd.DataFrame = frame.copy()
    records = cast("list[dict[str, Any]]", out.to_dict("records"))
    costs = [pricer.run_cost(row) for row in records]
    ids = [str(row.get("run_id")) for row in records]
    parents = [None if is_missing(row.get("parent_run_id")) else str(row.get("parent_run_id")) for row in records]
    totals = cost_totals(zip(ids, parents, costs, strict=True))
    out["cost_usd"] = pd.Series([np.nan if c is None else c for c in costs], index=out.index, dtype="float64")
    out["cost_usd_total"] = pd.Series(
        [np.nan if totals[i] is None else totals[i] for i in ids], index=out.index, dtype="float64"
    )
    return out
