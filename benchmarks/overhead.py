"""Per-event cost of NotebookHandler beside no handler, a no-op handler and LangChain's RunCollector.

Also with redaction on (``redact=["api_keys", "bearer", "emails"]``: every preview, tag and error is redacted,
and streamed text goes through a per-run stream redactor that holds back the last 256-320 characters).

Measured side by side in one process with interleaved rounds (the machine is shared and noisy: trust the ratios
of medians, not absolute times). Also reports the recorder's memory per token event, per 100,000 tokens and per
10,000 runs.

    python benchmarks/overhead.py [--rounds 9]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from typing import TYPE_CHECKING, Any

from common import (
    TOKENS,
    NoOpHandler,
    consume,
    fake_stream_model,
    interleaved,
    kept_bytes,
    paired_ratio,
    ratio,
    stream_events,
    timed,
)
from langchain_core.outputs import LLMResult
from langchain_core.runnables import Runnable, RunnableLambda
from langchain_core.tracers.run_collector import RunCollectorCallbackHandler

from nbcallbacks import NotebookHandler
from nbcallbacks.demo import DemoChatModel, tokenize

if TYPE_CHECKING:
    from collections.abc import Callable

STEPS = 60
REDACT = ["api_keys", "bearer", "emails"]
USER_REDACT = [r"\b\d{3}-\d{2}-\d{4}\b", str.strip]


BEFORE: dict[str, Any] = {}
"""With ``--before DIR``: the ``NotebookHandler`` class of another checkout, measured in the same rounds."""


def load_before(package_dir: str) -> type:
    """Import another checkout's ``nbcallbacks`` package under the name ``nbcallbacks_before`` (a renamed copy)."""
    import importlib  # noqa: PLC0415 - only with --before
    import re  # noqa: PLC0415
    import shutil  # noqa: PLC0415
    import sys  # noqa: PLC0415
    import tempfile  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    target = Path(tempfile.mkdtemp()) / "nbcallbacks_before"
    shutil.copytree(package_dir, target, ignore=shutil.ignore_patterns("__pycache__", "static"))
    for path in target.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        path.write_text(re.sub(r"\bnbcallbacks(?=[.\s])", "nbcallbacks_before", text), encoding="utf-8")
    sys.path.insert(0, str(target.parent))
    handler: type = importlib.import_module("nbcallbacks_before").NotebookHandler
    return handler


class AppendTokens(NoOpHandler):
    """A floor for recording a stream: keeps each chunk's text, nothing else (no time, no run)."""

    def __init__(self) -> None:
        super().__init__()
        self.kept: list[Any] = []

    def on_llm_new_token(self, token: Any, *, run_id: Any, tags: Any = None, **kwargs: Any) -> None:
        self.kept.append(token)


class AppendTimedTokens(AppendTokens):
    """A floor for recording a stream with per-token times: keeps ``(text, time.time())`` per chunk."""

    def on_llm_new_token(self, token: Any, *, run_id: Any, tags: Any = None, **kwargs: Any) -> None:
        self.kept.append((token, time.time()))


def make_handlers() -> dict[str, Callable[[], list[Any]]]:
    handlers: dict[str, Callable[[], list[Any]]] = {
        "no handler": list,
        "no-op handler": lambda: [NoOpHandler()],
        "floor: keep text": lambda: [AppendTokens()],
        "floor: keep text and time": lambda: [AppendTimedTokens()],
        "NotebookHandler": lambda: [NotebookHandler()],
        "NotebookHandler, redact on": lambda: [NotebookHandler(redact=REDACT)],
        "RunCollectorCallbackHandler": lambda: [RunCollectorCallbackHandler()],
    }
    if "handler" in BEFORE:
        before = BEFORE["handler"]
        handlers["NotebookHandler (before)"] = lambda: [before()]
    return handlers


def stream_workload() -> tuple[Callable[[list[Any]], None], int]:
    model = fake_stream_model(TOKENS)
    return lambda callbacks: consume(model, callbacks), stream_events(TOKENS)


def astream_workload() -> tuple[Callable[[list[Any]], None], int]:
    model = fake_stream_model(TOKENS)

    async def consume_async(callbacks: list[Any]) -> None:
        async for _ in model.astream("go", config={"callbacks": callbacks}):
            pass

    def run(callbacks: list[Any]) -> None:
        asyncio.run(consume_async(callbacks))

    return run, stream_events(TOKENS)


def chain_workload() -> tuple[Callable[[list[Any]], None], int]:
    chain: Runnable[Any, Any] = RunnableLambda(lambda x: x + 1)
    for _ in range(STEPS - 1):
        chain = chain | RunnableLambda(lambda x: x + 1)

    def run(callbacks: list[Any]) -> None:
        chain.invoke(0, config={"callbacks": callbacks})

    return run, 2 * (STEPS + 1)


def measure(rounds: int) -> None:
    workloads = {
        f"{TOKENS:,}-token stream": stream_workload(),
        f"{TOKENS:,}-token astream": astream_workload(),
        f"{STEPS}-step chain": chain_workload(),
    }
    handlers = make_handlers()
    per_event: dict[tuple[str, str], list[float]] = {}
    for workload, (run, events) in workloads.items():

        def one_round(name: str, run: Callable[[list[Any]], None] = run, events: int = events) -> float:
            callbacks = handlers[name]()
            return timed(lambda: run(callbacks)) / events * 1e6

        for name, values in interleaved(handlers, one_round, rounds).items():
            per_event[workload, name] = values

    header = f"{'configuration':<30}" + "".join(f"{w:>26}" for w in workloads)
    print(f"Per-event cost, median of {rounds} interleaved rounds (µs, and ratio to no handler)")
    print(header)
    for name in handlers:
        cells = []
        for workload in workloads:
            median = statistics.median(per_event[workload, name])
            base = statistics.median(per_event[workload, "no handler"])
            cells.append(f"{median:9.2f} µs (×{median / base:4.2f})")
        print(f"{name:<30}" + "".join(f"{c:>26}" for c in cells))
    print()

    print_targets(per_event, list(workloads))
    if "handler" in BEFORE:
        before_after(per_event, list(workloads))
    redaction_ratios(per_event, list(workloads))


def print_targets(per_event: dict[tuple[str, str], list[float]], workloads: list[str]) -> None:
    """The issue's targets: NotebookHandler beside the no-op handler, the floor, no handler and RunCollector."""

    def versus(workload: str, a: str, b: str) -> float:
        return ratio(per_event[workload, a], per_event[workload, b])

    stream, astream, _ = workloads
    print("Targets (each round's ratio, median over rounds; the ratio of the medians in brackets):")
    for label, workload in (("sync stream", stream), ("async stream", astream)):
        noop = per_event[workload, "no-op handler"]
        over = statistics.median(per_event[workload, "NotebookHandler"]) - statistics.median(noop)
        handler = paired_ratio(per_event[workload, "NotebookHandler"], noop)
        floor = paired_ratio(per_event[workload, "floor: keep text and time"], noop)
        print(
            f"  {label} / no-op handler: NotebookHandler ×{handler:.3f}"
            f" (×{versus(workload, 'NotebookHandler', 'no-op handler'):.3f}, {over:+.2f} µs per event; target ≤ 1.05),"
            f" the floor (text and time.time() kept per chunk) ×{floor:.3f}"
        )
    print(
        f"  async stream, NotebookHandler / no handler:       ×{versus(astream, 'NotebookHandler', 'no handler'):.2f}"
    )
    print("    (target ≤ 1.5)")
    for workload in workloads:
        r = versus(workload, "NotebookHandler", "RunCollectorCallbackHandler")
        print(f"  {workload}, NotebookHandler / RunCollector: ×{r:.2f} (target < 1)")


def before_after(per_event: dict[tuple[str, str], list[float]], workloads: list[str]) -> None:
    print("Before / after (--before), both beside the no-op handler in the same rounds:")
    for workload in workloads:
        before = ratio(per_event[workload, "NotebookHandler (before)"], per_event[workload, "no-op handler"])
        after = ratio(per_event[workload, "NotebookHandler"], per_event[workload, "no-op handler"])
        print(f"  {workload}: before ×{before:.3f}, now ×{after:.3f} of the no-op handler")


def redaction_ratios(per_event: dict[tuple[str, str], list[float]], workloads: list[str]) -> None:
    print("Redaction (built-in api_keys, bearer, emails), redact on / off:")
    for workload in workloads:
        on = statistics.median(per_event[workload, "NotebookHandler, redact on"])
        off = statistics.median(per_event[workload, "NotebookHandler"])
        print(f"  {workload}: ×{on / off:.2f} ({on - off:+.2f} µs per event)")
    print()


REDACT_CONFIGS: dict[str, Callable[[], NotebookHandler]] = {
    "redact off": NotebookHandler,
    "redact on (api_keys, bearer, emails)": lambda: NotebookHandler(redact=REDACT),
    "redact on (a user regex and a callable)": lambda: NotebookHandler(redact=USER_REDACT),
}


def redaction_paths(rounds: int) -> None:
    """The handler's own paths, no LangChain around them: what redaction adds per chunk and per start/end event."""
    tokens = tokenize("Every step of this answer was streamed token by token through LangChain callbacks. " * 300)

    def stream(name: str) -> float:
        handler, run_id = REDACT_CONFIGS[name](), uuid.uuid4()
        handler.on_chat_model_start({"name": "model"}, [[]], run_id=run_id)

        def feed() -> None:
            for token in tokens:
                handler.on_llm_new_token(token, run_id=run_id)

        seconds = timed(feed)
        handler.on_llm_end(LLMResult(generations=[]), run_id=run_id)
        return seconds / len(tokens) * 1e6

    inputs = {"messages": [{"type": "human", "content": "What's the weather in Paris and London? Please be brief."}]}
    metadata = {"langgraph_node": "agent", "langgraph_step": 2}
    tags = ["seq:step:1", "graph:step:2"]
    outputs = {"output": "Paris: 18°C, partly cloudy, wind 12 km/h."}
    pairs = 2_000

    def starts_and_ends(name: str) -> float:
        handler = REDACT_CONFIGS[name]()

        def run() -> None:
            for _ in range(pairs):
                run_id = uuid.uuid4()
                handler.on_chain_start({"name": "step"}, inputs, run_id=run_id, tags=tags, metadata=metadata)
                handler.on_chain_end(outputs, run_id=run_id)

        return timed(run) / (2 * pairs) * 1e6

    print(f"Handler token path alone ({len(tokens):,} word-sized chunks, median of {rounds} interleaved rounds):")
    for name, values in interleaved(REDACT_CONFIGS, stream, rounds).items():
        print(f"  {name:<42} {statistics.median(values):6.2f} µs per on_llm_new_token")
    print(f"Handler start/end path alone ({pairs:,} start/end pairs with small payloads, tags and metadata):")
    for name, values in interleaved(REDACT_CONFIGS, starts_and_ends, rounds).items():
        print(f"  {name:<42} {statistics.median(values):6.2f} µs per event")
    print()


def memory() -> None:
    words = " ".join(f"word{i % 997}" for i in range(100_000))  # realistic multi-character tokens
    model = DemoChatModel(token_delay=0, responses=[words])
    h = NotebookHandler()
    size = kept_bytes(lambda: consume(model, [h]))
    tokens = h.recorder.runs()[0].streamed_chunks
    print("Memory (tracemalloc, the handler kept alive; includes the kept token strings themselves):")
    print(f"  {tokens:,}-token stream: {size / 1e6:6.2f} MB, {size / tokens:5.1f} bytes per token event")

    h = NotebookHandler()
    chain: Runnable[Any, Any] = RunnableLambda(lambda x: {"value": x, "label": f"item {x}"})
    size = kept_bytes(lambda: chain.batch(list(range(10_000)), config={"callbacks": [h], "max_concurrency": 8}))
    runs = h.recorder.run_count
    print(f"  {runs:,} runs (small inputs/outputs): {size / 1e6:6.2f} MB, {size / runs:6.0f} bytes per run")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument(
        "--before",
        metavar="DIR",
        help="the nbcallbacks package folder of another checkout (e.g. a git worktree of an older commit): its "
        "NotebookHandler is measured in the same interleaved rounds, as 'NotebookHandler (before)'",
    )
    args = parser.parse_args()
    if args.before:
        BEFORE["handler"] = load_before(args.before)
    measure(args.rounds)
    redaction_paths(args.rounds)
    memory()


if __name__ == "__main__":
    main()
