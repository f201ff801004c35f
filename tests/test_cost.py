"""Cost: genai-prices lookups, user prices, unknown models, the extra missing, real provider usage."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import subprocess
import sys
import textwrap
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest
from genai_prices import Usage, calc_price
from langchain_core.callbacks import BaseCallbackHandler
from openai_server import openai_server, usage_payload

from nbcallbacks import NotebookHandler, demo
from nbcallbacks.cost import (
    COST_HINT,
    Pricer,
    UsageDetails,
    add_cost_columns,
    cost_available,
    cost_totals,
    price,
    unpriced_counts,
)

WHEN = dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc)


def expected(model: str, provider: str | None, when: dt.datetime = WHEN, **usage: int) -> float:
    """The price computed with genai-prices' own public API, independently of nbcallbacks."""
    calculation = calc_price(Usage(**usage), model, provider_id=provider, genai_request_timestamp=when)
    return float(calculation.total_price)


def test_known_provider_model_matches_genai_prices():
    got = price("gpt-4o-mini", "openai", {"input_tokens": 1200, "output_tokens": 300}, WHEN)
    assert got == expected("gpt-4o-mini", "openai", input_tokens=1200, output_tokens=300)
    assert got == pytest.approx((1200 * 0.15 + 300 * 0.6) / 1e6)


def test_cache_read_cache_write_and_reasoning_are_priced_separately():
    usage = UsageDetails(
        input_tokens=5000, output_tokens=800, cache_read_tokens=3000, cache_creation_tokens=1000, reasoning_tokens=300
    )
    got = price("claude-sonnet-4-5", "anthropic", usage, WHEN)
    want = expected(
        "claude-sonnet-4-5",
        "anthropic",
        input_tokens=5000,
        output_tokens=800,
        cache_read_tokens=3000,
        cache_write_tokens=1000,
        output_reasoning_tokens=300,
    )
    assert got == want
    plain = price("claude-sonnet-4-5", "anthropic", {"input_tokens": 5000, "output_tokens": 800}, WHEN)
    assert plain is not None
    assert got is not None
    assert got < plain  # cache reads cost a tenth of input; writes 1.25x: 3000 * 0.9 saved > 1000 * 0.25 added


def test_tiered_prices_come_from_genai_prices():
    small = price("gemini-2.5-pro", "google_genai", {"input_tokens": 100_000, "output_tokens": 1000}, WHEN)
    large = price("gemini-2.5-pro", "google_genai", {"input_tokens": 300_000, "output_tokens": 1000}, WHEN)
    assert small == expected("gemini-2.5-pro", "google", input_tokens=100_000, output_tokens=1000)
    assert large == expected("gemini-2.5-pro", "google", input_tokens=300_000, output_tokens=1000)
    assert large is not None
    assert small is not None
    assert large / 3 > small  # above 200k input tokens every token costs more


def test_prices_are_those_in_force_when_the_run_started():
    # genai-prices' table: claude-sonnet-4-6 had long-context tiers until 2026-03-13, flat prices since.
    usage = {"input_tokens": 300_000, "output_tokens": 1000}
    before = dt.datetime(2026, 2, 1, tzinfo=dt.timezone.utc)
    after = dt.datetime(2026, 4, 1, tzinfo=dt.timezone.utc)
    then = price("claude-sonnet-4-6", "anthropic", usage, before.timestamp())
    now = price("claude-sonnet-4-6", "anthropic", usage, after.timestamp())
    assert then == expected("claude-sonnet-4-6", "anthropic", before, **usage)
    assert now == expected("claude-sonnet-4-6", "anthropic", after, **usage)
    assert then != now


def test_provider_is_inferred_from_the_model_name_without_ls_provider():
    got = price("claude-3-5-haiku-latest", None, {"input_tokens": 10, "output_tokens": 10}, WHEN)
    assert got == expected("claude-3-5-haiku-latest", None, input_tokens=10, output_tokens=10)


def test_when_accepts_epoch_seconds_datetimes_and_timestamps():
    usage = {"input_tokens": 1000, "output_tokens": 1000}
    seconds = WHEN.timestamp()
    assert price("gpt-4o", "openai", usage, seconds) == price("gpt-4o", "openai", usage, WHEN)
    assert price("gpt-4o", "openai", usage, pd.Timestamp(WHEN)) == price("gpt-4o", "openai", usage, WHEN)


@pytest.mark.parametrize(
    ("model", "provider"),
    [
        ("nbcallbacks-demo-1", "nbcallbacks"),  # the demo model: provider unknown to genai-prices
        ("my-finetune-xyz", None),  # no provider, and no provider's model pattern matches
        ("no-such-model", "openai"),  # known provider, unknown model
        ("llama3.2", "ollama"),  # local models are unknown, not free
    ],
)
def test_unknown_models_cost_none_never_zero(model, provider):
    assert price(model, provider, {"input_tokens": 10, "output_tokens": 10}, WHEN) is None


def test_missing_usage_or_model_costs_none():
    assert price("gpt-4o", "openai", {"input_tokens": None, "output_tokens": None}) is None
    assert price(None, "openai", {"input_tokens": 1, "output_tokens": 1}) is None
    assert price("", "openai", {"input_tokens": 1, "output_tokens": 1}) is None


def test_inconsistent_usage_costs_none():
    # More cached tokens than input tokens: genai-prices rejects it; the cost is unknown.
    usage = {"input_tokens": 10, "output_tokens": 10, "cache_read_tokens": 50}
    assert price("gpt-4o", "openai", usage, WHEN) is None


def test_user_prices_add_and_override():
    prices = {"my-model": (2.0, 8.0), "gpt-4o-mini": (1.0, 1.0)}
    pricer = Pricer(prices)
    assert pricer.price("my-model", None, {"input_tokens": 1000, "output_tokens": 500}) == pytest.approx(0.006)
    assert pricer.price("MY-MODEL", "x", {"input_tokens": 1000, "output_tokens": 0}) == pytest.approx(0.002)
    assert pricer.price("gpt-4o-mini", "openai", {"input_tokens": 10**6, "output_tokens": 10**6}) == 2.0
    assert price("my-model", None, {"input_tokens": 1, "output_tokens": 0}, prices={"my-model": (0, 0)}) == 0.0


@pytest.mark.parametrize(
    ("prices", "error", "words"),
    [
        ([("m", (1, 2))], TypeError, "dict of model name"),
        ({"m": 3.0}, TypeError, "(usd_per_million_input, usd_per_million_output)"),
        ({"m": (1, 2, 3)}, TypeError, "(usd_per_million_input, usd_per_million_output)"),
        ({"m": (1, "2")}, ValueError, "finite numbers"),
        ({"m": (1, float("nan"))}, ValueError, "finite numbers"),
        ({"m": (-1, 2)}, ValueError, "not be negative"),
        ({"": (1, 2)}, TypeError, "non-empty strings"),
    ],
)
def test_invalid_user_prices_say_what_is_wrong(prices, error, words):
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        Pricer(prices)


def test_pricer_caches_answers_and_model_lookups():
    pricer = Pricer()
    usage = {"input_tokens": 100, "output_tokens": 10}
    first = pricer.price("gpt-4o", "openai", usage, WHEN)
    assert pricer._cache
    assert ("openai", "gpt-4o") in pricer._models
    assert pricer.price("gpt-4o", "openai", usage, WHEN) == first
    pricer.price("nope", "openai", usage, WHEN)
    assert pricer._models[("openai", "nope")] is None


def test_cost_totals_sum_up_the_tree_and_keep_unknown_as_none():
    runs = [
        ("root", None, None),
        ("agent", "root", None),
        ("m1", "agent", 0.25),
        ("m2", "agent", None),  # price unknown
        ("tools", "root", None),
        ("m3", "root", 0.5),
        ("orphan", "gone", 1.0),  # parent never seen: a root
    ]
    totals = cost_totals(runs)
    assert totals == {
        "root": 0.75,
        "agent": 0.25,
        "m1": 0.25,
        "m2": None,
        "tools": None,
        "m3": 0.5,
        "orphan": 1.0,
    }
    typed = [(r, p, "chat_model" if r.startswith("m") else "chain", c is not None) for r, p, c in runs]
    assert unpriced_counts(typed) == {"root": 1, "agent": 1, "m1": 0, "m2": 1, "tools": 0, "m3": 0, "orphan": 0}


def test_cost_totals_and_unpriced_counts_survive_cycles_as_the_tree_does():
    """A parent loop (hostile data): the link that would close it is not followed, as in ``Tree`` (so the
    DataFrame's totals and the widget's agree): ``a`` is the root holding both costs once, ``b`` its child. The
    count of model calls without a price follows the same tree."""
    assert cost_totals([("a", "b", 1.0), ("b", "a", 2.0)]) == {"a": 3.0, "b": 2.0}
    assert unpriced_counts([("a", "b", "llm", False), ("b", "a", "chat_model", False)]) == {"a": 2, "b": 1}


def test_the_handlers_decoder_reads_every_priced_count():
    from langchain_core.messages import AIMessage
    from langchain_core.outputs import ChatGeneration, LLMResult

    from nbcallbacks.events import Usage
    from nbcallbacks.langchain.decode import usage

    message = AIMessage(
        "hi",
        usage_metadata={
            "input_tokens": 120,
            "output_tokens": 30,
            "total_tokens": 150,
            "input_token_details": {"cache_read": 100, "ephemeral_5m_input_tokens": 5, "ephemeral_1h_input_tokens": 2},
            "output_token_details": {"reasoning": 10},
        },
        response_metadata={"model_provider": "anthropic"},
    )
    response = LLMResult(generations=[[ChatGeneration(message=message)]])
    # Anthropic reports cache writes as ephemeral_5m / ephemeral_1h: their sum is the cache creation.
    assert usage(response) == (Usage(120, 30, 150, 100, 7, 10), None)
    assert usage(object()) == (None, None)
    assert usage(LLMResult(generations=[[ChatGeneration(message=AIMessage("x"))]])) == (None, None)


def test_the_provider_is_ls_provider():
    from nbcallbacks.langchain.decode import provider_name

    assert provider_name({"ls_provider": "openai"}) == "openai"
    assert provider_name({"ls_provider": ""}) is None
    assert provider_name(None) is None


class _Responses(BaseCallbackHandler):
    """Keeps the LLMResult objects LangChain hands to callbacks (a real handler, for the LLMResult itself)."""

    def __init__(self) -> None:
        self.responses: list[Any] = []

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        self.responses.append(response)


@pytest.mark.parametrize("streaming", [False, True])
def test_real_openai_client_usage_flows_through_the_handler(streaming):
    from langchain_openai import ChatOpenAI

    usage = usage_payload(prompt=1200, completion=300, cached=1000, reasoning=100)
    handler, responses = NotebookHandler(), _Responses()
    with openai_server(usage) as base_url:
        model = ChatOpenAI(
            model="gpt-4o-mini",
            base_url=base_url,
            api_key="x",
            max_retries=0,
            streaming=streaming,
            stream_usage=True,
        )
        model.invoke("hello", config={"callbacks": [handler, responses]})

    # The provider's own usage, decoded from the LLMResult the callbacks receive, as the handler recorded it.
    from nbcallbacks.events import Usage
    from nbcallbacks.langchain.decode import usage as decoded

    assert decoded(responses.responses[0])[0] == Usage(1200, 300, 1500, 1000, None, 100)
    run = handler.recorder.runs()[0]
    assert (run.input_tokens, run.cache_read_tokens, run.reasoning_tokens, run.provider) == (1200, 1000, 100, "openai")
    start = handler.recorder.runs()[0].start
    when = dt.datetime.fromtimestamp(start, tz=dt.timezone.utc)
    full = expected(
        "gpt-4o-mini",
        "openai",
        when,
        input_tokens=1200,
        output_tokens=300,
        cache_read_tokens=1000,
        output_reasoning_tokens=100,
    )
    details = UsageDetails(run.input_tokens, run.output_tokens, run.cache_read_tokens, None, run.reasoning_tokens)
    assert price("gpt-4o-mini", "openai", details, start) == full
    assert Decimal(str(full)) == (Decimal(200) * Decimal("0.15") + 1000 * Decimal("0.075") + 300 * Decimal("0.6")) / (
        10**6
    )

    # The handler records the details and the provider; runs_dataframe() prices the run when it is read.
    (row,) = handler.runs_dataframe().to_dict("records")
    assert (row["model"], row["provider"]) == ("gpt-4o-mini", "openai")
    assert (row["input_tokens"], row["output_tokens"], row["cache_read_tokens"], row["reasoning_tokens"]) == (
        1200,
        300,
        1000,
        100,
    )
    assert pd.isna(row["cache_creation_tokens"])
    if streaming:
        assert row["streamed_chunks"] > 0
    assert row["cost_usd"] == full
    assert row["cost_usd_total"] == full
    assert add_cost_columns(handler.runs_dataframe())["cost_usd"].tolist() == [full]


def test_demo_agent_costs_unknown_without_prices_and_known_with_user_prices():
    question = {"messages": [("user", "What's the weather in Paris?")]}
    handler = NotebookHandler()
    demo.agent(token_delay=0).invoke(question, config={"callbacks": [handler]})
    unknown = handler.runs_dataframe()
    assert unknown["cost_usd"].isna().all()  # "price unknown", never $0
    assert unknown["cost_usd_total"].isna().all()

    priced_handler = NotebookHandler(prices={demo.DEMO_MODEL_NAME: (1.0, 2.0)})
    demo.agent(token_delay=0).invoke(question, config={"callbacks": [priced_handler]})
    priced = priced_handler.runs_dataframe()
    models = priced[priced["run_type"] == "chat_model"]
    assert len(models) == 2
    for row in models.to_dict("records"):
        assert row["cost_usd"] == pytest.approx((row["input_tokens"] * 1.0 + row["output_tokens"] * 2.0) / 1e6)
    root = priced[priced["parent_run_id"].isna()].iloc[0]
    assert root["cost_usd_total"] == pytest.approx(models["cost_usd"].sum())
    others = priced[priced["run_type"] != "chat_model"]
    assert others["cost_usd"].isna().all()
    assert priced["cost_usd"].dtype == "float64"
    # add_cost_columns computes the same on any runs DataFrame (a loaded one, say).
    again = add_cost_columns(unknown, Pricer({demo.DEMO_MODEL_NAME: (1.0, 2.0)}))
    assert again["cost_usd"].notna().sum() == 2


def test_widget_and_sinks_get_the_costs(tmp_path):
    import json

    from nbcallbacks import JSONLSink

    path = tmp_path / "trace.jsonl"
    handler = NotebookHandler(prices={demo.DEMO_MODEL_NAME: (1.0, 2.0)}, sinks=[JSONLSink(path)])
    widget = handler.widget
    demo.chain(token_delay=0).invoke({"question": "hi"}, config={"callbacks": [handler]})
    assert handler.flush()
    frame = handler.runs_dataframe().set_index("run_id")
    runs = {run["run_id"]: run for run in widget.snapshot["runs"]}
    records = [json.loads(line) for line in path.read_text().splitlines()]
    saved = {r["run_id"]: r for r in records if r["kind"] == "run"}
    for run_id, row in frame.iterrows():
        for column in ("cost_usd", "cost_usd_total"):
            want = None if pd.isna(row[column]) else row[column]
            assert runs[run_id][column] == pytest.approx(want), (run_id, column)
            assert saved[run_id][column] == pytest.approx(want), (run_id, column)
    root = frame[frame["parent_run_id"].isna()].iloc[0]
    model = frame[frame["run_type"] == "chat_model"].iloc[0]
    assert root["cost_usd_total"] == model["cost_usd"] > 0
    widget.close()


def test_live_update_records_get_the_costs():
    handler = NotebookHandler(prices={demo.DEMO_MODEL_NAME: (1.0, 2.0)})
    stream = handler.iter_updates(kinds="run")
    demo.chain(token_delay=0).invoke({"question": "hi"}, config={"callbacks": [handler]})
    latest = {}
    for record in stream:
        latest[record["run_id"]] = record
        if len(latest) == len(handler.recorder.runs()) and all(r["status"] != "running" for r in latest.values()):
            break
    stream.close()
    frame = handler.runs_dataframe().set_index("run_id")
    for run_id, record in latest.items():
        want = frame.loc[run_id, "cost_usd_total"]
        assert record["cost_usd_total"] == pytest.approx(None if pd.isna(want) else want)
    assert any(record["cost_usd"] for record in latest.values())


def test_the_tokens_chart_shows_cost_or_price_unknown():
    from nbcallbacks import plot

    priced = NotebookHandler(prices={demo.DEMO_MODEL_NAME: (1.0, 2.0)})
    unknown = NotebookHandler()
    for handler in (priced, unknown):
        demo.chain(token_delay=0).invoke({"question": "hi"}, config={"callbacks": [handler]})
    (cost,) = priced.runs_dataframe().query("run_type == 'chat_model'")["cost_usd"]
    hover = [text for trace in plot.tokens(priced).data for text in (trace.hovertext or ())]
    assert f"cost: ${cost:.6f}" in hover[0]
    hover = [text for trace in plot.tokens(unknown).data for text in (trace.hovertext or ())]
    assert "cost: price unknown" in hover[0]


def test_invalid_prices_fail_when_the_handler_is_made():
    with pytest.raises(ValueError, match="not be negative"):
        NotebookHandler(prices={"m": (-1, 1)})


def test_run_cost_reads_run_records_and_wire_dicts():
    handler = NotebookHandler()
    demo.chain(token_delay=0).invoke({"question": "hi"}, config={"callbacks": [handler]})
    pricer = Pricer({demo.DEMO_MODEL_NAME: (1.0, 2.0)})
    (record,) = [r for r in handler.recorder.runs() if r.run_type == "chat_model"]
    want = (record.input_tokens * 1.0 + record.output_tokens * 2.0) / 1e6
    assert pricer.run_cost(record) == pytest.approx(want)
    assert pricer.run_cost(dataclasses.asdict(record)) == pytest.approx(want)
    assert Pricer().run_cost(record) is None  # the demo model has no known price
    assert pricer.run_cost(handler.recorder.runs()[0]) is None  # a chain has no cost of its own


def test_add_cost_columns_on_an_empty_frame():
    frame = add_cost_columns(NotebookHandler().runs_dataframe())
    assert list(frame.columns[-2:]) == ["cost_usd", "cost_usd_total"]
    assert frame.empty


_BLOCKER = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "genai_prices" or name.startswith("genai_prices."):
            raise ImportError("No module named 'genai_prices' (blocked by the test)")
        return None
sys.meta_path.insert(0, Block())
"""


def test_without_the_extra_costs_are_missing_and_say_how_to_enable():
    script = _BLOCKER + textwrap.dedent(
        """
        import json
        from nbcallbacks import NotebookHandler, demo
        from nbcallbacks.cost import COST_HINT, Pricer, add_cost_columns, cost_available, price
        h = NotebookHandler()
        demo.chain(token_delay=0).invoke({"question": "hi"}, config={"callbacks": [h]})
        frame = add_cost_columns(h.runs_dataframe())
        print(json.dumps({
            "available": cost_available(),
            "hint": COST_HINT,
            "known": price("gpt-4o", "openai", {"input_tokens": 1, "output_tokens": 1}),
            "user": Pricer({"gpt-4o": (1e6, 0)}).price("gpt-4o", "openai", {"input_tokens": 1, "output_tokens": 1}),
            "columns": [c for c in frame.columns if c.startswith("cost")],
            "all_missing": bool(frame[["cost_usd", "cost_usd_total"]].isna().all().all()),
            "imported": "genai_prices" in sys.modules,
        }))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {
        "available": False,
        "hint": COST_HINT,
        "known": None,
        "user": 1.0,
        "columns": ["cost_usd", "cost_usd_total"],
        "all_missing": True,
        "imported": False,
    }
    assert 'pip install "nbcallbacks[cost]"' in COST_HINT
    assert cost_available()  # in this process the extra is installed
