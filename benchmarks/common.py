"""What the benchmarks share: interleaved timing rounds, medians and their ratios, the no-op handler and the fake
streaming model they time against.

Imported by name (``from common import ...``): a script's own folder is first on ``sys.path``. The browser
benchmarks' Lab and Chromium machinery is ``harness.py``, beside this file (the browser tests use it too).

The machine is shared and noisy: each configuration is timed in rounds interleaved with the others', so that a slow
spell lands on all of them alike, and the medians (and their ratios) are what is read.
"""

from __future__ import annotations

import gc
import statistics
import time
import tracemalloc
from typing import TYPE_CHECKING, Any, TypeVar

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.runnables import Runnable, RunnableLambda

from nbcallbacks.demo import DemoChatModel

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

K = TypeVar("K")
T = TypeVar("T")

TOKENS = 2_000
"""The length of the benchmarks' standard stream (one-character chunks)."""

PER_STAGE = 100
"""Runs per ``stage`` of ``record_pipeline``'s tree: the stage, its model call and 98 ``step`` lambdas."""


class NoOpHandler(BaseCallbackHandler):
    """Does nothing, inline: the floor any handler pays for being called."""

    run_inline = True


def check(condition: bool, message: object) -> None:
    """Stop the benchmark with ``message`` unless ``condition`` holds (what it measured would be wrong)."""
    if not condition:
        raise RuntimeError(message)


def fake_stream_model(tokens: int = TOKENS, char: str = "x") -> FakeListChatModel:
    """LangChain's fake chat model, streaming ``tokens`` one-character chunks (see ``stream_events``)."""
    return FakeListChatModel(responses=[char * tokens])


def stream_events(tokens: int) -> int:
    """The callback events a ``fake_stream_model(tokens)`` stream makes: its start, one per chunk, its end."""
    return tokens + 2


def consume(model: Any, callbacks: list[Any]) -> None:
    """Stream ``model`` to its end with ``callbacks`` attached, discarding the chunks."""
    for _ in model.stream("go", config={"callbacks": callbacks}):
        pass


def record_pipeline(n_runs: int, handler: Any) -> float:
    """Record a real LangChain run tree of ``n_runs`` runs (1 + 100 x stages) into ``handler``; return its seconds.

    A ``pipeline`` lambda with one ``stage`` lambda per 100 runs, each stage calling the streaming demo chat model
    once and a ``step`` lambda 98 times. Used by ``big_trace.py`` (inside the Lab kernel) and ``share_size.py``.
    """
    model = DemoChatModel(
        token_delay=0,
        first_token_delay=0,
        jitter=0,
        responses=["A short streamed reply from the model, a dozen tokens long."],
    )
    step: Runnable[Any, Any] = RunnableLambda(lambda x: x + 1, name="step")

    def stage_fn(i: int, config: Any) -> int:
        model.invoke(f"stage {i}", config)
        for j in range(PER_STAGE - 2):
            step.invoke(j, config)
        return i

    stage = RunnableLambda(stage_fn, name="stage")
    pipeline: Runnable[Any, Any] = RunnableLambda(
        lambda n, config: [stage.invoke(i, config) for i in range(n)], name="pipeline"
    )
    start = time.perf_counter()
    pipeline.invoke((n_runs - 1) // PER_STAGE, config={"callbacks": [handler]})
    return time.perf_counter() - start


def timed(run: Callable[[], object]) -> float:
    """Seconds ``run()`` takes, after a garbage collection (so that earlier garbage is not collected inside it)."""
    gc.collect()
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def kept_bytes(work: Callable[[], object]) -> int:
    """Bytes still allocated after ``work()`` (tracemalloc; garbage collected before and after): what it keeps."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        work()
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def interleaved(
    names: Iterable[K], one_round: Callable[[K], T], rounds: int, *, warm_up: bool = True
) -> dict[K, list[T]]:
    """``one_round(name)`` for every name, ``rounds`` times over, interleaved: round 1 of each, then round 2 of each.

    With ``warm_up``, one untimed round of each comes first (imports, caches, files' schemas). Returns each name's
    results in round order.
    """
    order = list(names)
    if warm_up:
        for name in order:
            one_round(name)
    results: dict[K, list[T]] = {name: [] for name in order}
    for _ in range(rounds):
        for name in order:
            results[name].append(one_round(name))
    return results


def ratio(values: Sequence[float], base: Sequence[float]) -> float:
    """The median of ``values`` over the median of ``base``."""
    return statistics.median(values) / statistics.median(base)


def paired_ratio(values: Sequence[float], base: Sequence[float]) -> float:
    """The median over rounds of ``values[i] / base[i]`` (same round): robust to a machine whose load drifts."""
    return statistics.median(a / b for a, b in zip(values, base, strict=True))
