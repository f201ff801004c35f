"""What sinks cost: the hot path of a streaming chain with sinks attached, and how fast each sink writes.

1. Per-event cost of a 2,000-token stream with NotebookHandler alone, and with a SQLite sink, a JSONL sink and
   both attached (interleaved rounds, medians; the writing happens on the sinks' threads, so the stream should
   pay only for waking them). The time ``flush()`` then takes to write the stream is printed beside it.
2. Events written per second by each sink: a long stream recorded with one sink attached, timed from the sink's
   first ``write`` to the end of ``flush()``.
3. OpenTelemetry (needs ``nbcallbacks[otel]`` and ``openinference-instrumentation-langchain``): the hot path of
   the sync stream, a 60-step chain and ``astream`` with ``OpenTelemetrySink`` attached, against the no-op handler and
   against OpenInference's ``LangChainInstrumentor`` doing the same export (both into an ``InMemorySpanExporter``
   behind a real ``TracerProvider``); then spans exported per second and the cost per span on the sink's worker.

    python benchmarks/sinks.py [--rounds 9] [--events 100000] [--only sinks|otel]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common import TOKENS, NoOpHandler, check, consume, fake_stream_model, interleaved, ratio, stream_events, timed

from nbcallbacks import JSONLSink, LoggingSink, NotebookHandler, SQLiteSink

if TYPE_CHECKING:
    from collections.abc import Callable

    from langchain_core.language_models.fake_chat_models import FakeListChatModel


class TimedSink:
    """Wraps a sink and notes when its first write started."""

    def __init__(self, sink: Any) -> None:
        self.sink = sink
        self.first_write: float | None = None
        self.lock = threading.Lock()

    def describe(self) -> str:
        return type(self.sink).__name__

    def write(self, batch: list[dict[str, Any]]) -> None:
        with self.lock:
            if self.first_write is None:
                self.first_write = time.perf_counter()
        self.sink.write(batch)

    def close(self) -> None:
        close_sink = getattr(self.sink, "close", None)
        if close_sink is not None:
            close_sink()


def close(h: Any) -> None:
    writer = getattr(h, "_sink_writer", None)
    if writer is not None:
        writer.close(timeout=60)


def configurations(folder: Path) -> dict[str, Callable[[], list[Any]]]:
    counter = iter(range(10**9))

    def sqlite() -> list[Any]:
        return [SQLiteSink(folder / f"bench-{next(counter)}.db")]

    def jsonl() -> list[Any]:
        return [JSONLSink(folder / f"bench-{next(counter)}.jsonl")]

    return {
        "no-op handler": lambda: [NoOpHandler()],
        "NotebookHandler": lambda: [NotebookHandler()],
        "+ SQLiteSink": lambda: [NotebookHandler(sinks=sqlite())],
        "+ JSONLSink": lambda: [NotebookHandler(sinks=jsonl())],
        "+ SQLiteSink + JSONLSink": lambda: [NotebookHandler(sinks=[*sqlite(), *jsonl()])],
    }


def one_round(model: FakeListChatModel, callbacks: list[Any], events: int) -> tuple[float, float | None]:
    """Seconds of the stream, and of the flush() after it (None without sinks)."""
    time.sleep(0.2)  # a handler is made once and used for many runs: let its threads settle
    elapsed = timed(lambda: consume(model, callbacks))
    h = callbacks[0]
    if not isinstance(h, NotebookHandler):
        return elapsed, None
    start = time.perf_counter()
    check(h.flush(timeout=120), "flush timed out")
    flushed = time.perf_counter() - start
    for status in h.sink_status():
        check(status["written_events"] == events, status)
    close(h)
    return elapsed, flushed if h.sink_status() else None


def hot_path(rounds: int, tokens: int, folder: Path) -> None:
    model = fake_stream_model(tokens)
    events = stream_events(tokens)
    configs = configurations(folder)
    timings = interleaved(configs, lambda name: one_round(model, configs[name](), events), rounds)
    per_event = {name: [elapsed / events * 1e6 for elapsed, _ in values] for name, values in timings.items()}
    flush_ms = {name: [f * 1e3 for _, f in values if f is not None] for name, values in timings.items()}

    best = min(per_event["NotebookHandler"])
    print(f"Hot path: {tokens:,}-token sync stream, {rounds} interleaved rounds (median; min, the least disturbed)")
    print(
        f"{'configuration':<28}{'per event':>12}{'vs alone':>10}{'vs no-op':>10}"
        f"{'min':>11}{'vs alone':>10}{'flush after':>14}"
    )
    for name in configs:
        median = statistics.median(per_event[name])
        alone = ratio(per_event[name], per_event["NotebookHandler"])
        noop = ratio(per_event[name], per_event["no-op handler"])
        low = min(per_event[name])
        flush = f"{statistics.median(flush_ms[name]):9.1f} ms" if flush_ms[name] else ""
        print(f"{name:<28}{median:9.2f} µs{alone:9.2f}×{noop:9.2f}×{low:8.2f} µs{low / best:9.2f}×{flush:>14}")
    print()


def throughput(count: int, folder: Path) -> None:
    null_logger = logging.getLogger("nbcallbacks.bench.null")
    null_logger.addHandler(logging.NullHandler())
    null_logger.setLevel(logging.INFO)
    null_logger.propagate = False
    sinks: dict[str, Callable[[], Any]] = {
        "SQLiteSink": lambda: SQLiteSink(folder / f"throughput-{time.monotonic_ns()}.db"),
        "JSONLSink": lambda: JSONLSink(folder / f"throughput-{time.monotonic_ns()}.jsonl"),
        "LoggingSink (NullHandler)": lambda: LoggingSink(null_logger),
    }
    model = fake_stream_model(count, "y")
    print(f"Sink throughput, {stream_events(count):,} events (a {count:,}-token stream), events written per second:")
    print(f"{'sink':<28}{'drain':>16}{'live':>16}")
    for name, factory in sinks.items():
        # drain: recorded first (the reader held back), then flush() reads, converts and writes everything
        timed_sink = TimedSink(factory())
        h = NotebookHandler(sinks=[timed_sink])
        writer = h._sink_writer  # noqa: SLF001 - hold the reader back to time the pipeline alone
        check(writer is not None, "no writer")
        writer.interval = 3600.0  # type: ignore[union-attr]
        consume(model, [h])
        start = time.perf_counter()
        check(h.flush(timeout=600), "flush timed out")
        drain = stream_events(count) / (time.perf_counter() - start)
        check(h.sink_status()[0]["written_events"] == stream_events(count), h.sink_status())
        close(h)
        # live: written while the stream runs, from the first write to the end of flush()
        timed_sink = TimedSink(factory())
        h = NotebookHandler(sinks=[timed_sink])
        consume(model, [h])
        check(h.flush(timeout=600), "flush timed out")
        done = time.perf_counter()
        check(timed_sink.first_write is not None, "never written")
        live = stream_events(count) / (done - (timed_sink.first_write or done))
        check(h.sink_status()[0]["written_events"] == stream_events(count), h.sink_status())
        close(h)
        print(f"{name:<28}{drain:12,.0f} ev/s{live:12,.0f} ev/s")
    db = sum(p.stat().st_size for p in folder.glob("throughput-*.db*")) / 2
    text = sum(p.stat().st_size for p in folder.glob("throughput-*.jsonl")) / 2
    print(f"  on disk per token event: SQLite {db / count:.0f} bytes, JSONL {text / count:.0f} bytes")
    print("  (live: the stream and the writers share one interpreter lock, so this is bounded by the stream)")


# --- OpenTelemetry


STEPS = 60


def steps_chain() -> Any:
    from langchain_core.runnables import RunnableLambda  # noqa: PLC0415 - this section only

    chain: Any = RunnableLambda(lambda x: x + 1)
    for _ in range(STEPS - 1):
        chain = chain | RunnableLambda(lambda x: x + 1)
    return chain


class OtelSetup:
    """A real TracerProvider exporting into memory, and the two ways of feeding it."""

    def __init__(self) -> None:
        from openinference.instrumentation.langchain import LangChainInstrumentor  # noqa: PLC0415
        from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: PLC0415
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: PLC0415

        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.instrumentor = LangChainInstrumentor()

    def sink_handler(self) -> NotebookHandler:
        from nbcallbacks import OpenTelemetrySink  # noqa: PLC0415

        return NotebookHandler(sinks=[OpenTelemetrySink(self.provider)])

    def spans(self) -> int:
        count = len(self.exporter.get_finished_spans())
        self.exporter.clear()
        return count


def otel_round(setup: OtelSetup, name: str, work: Callable[[list[Any]], float | None]) -> tuple[float, int]:
    """Seconds of ``work`` on the chain's thread with configuration ``name``, and spans exported for it."""
    time.sleep(0.2)
    gc.collect()
    setup.spans()
    instrumented = name == "OpenInference instrumentor"
    if instrumented:
        setup.instrumentor.instrument(tracer_provider=setup.provider)
    try:
        callbacks: list[Any] = {
            "no-op handler": lambda: [NoOpHandler()],
            "NotebookHandler": lambda: [NotebookHandler()],
            "+ OpenTelemetrySink": lambda: [setup.sink_handler()],
            "OpenInference instrumentor": lambda: [NoOpHandler()],
        }[name]()
        start = time.perf_counter()
        timed = work(callbacks)  # an async workload times itself (without starting the event loop)
        elapsed = time.perf_counter() - start if timed is None else timed
    finally:
        if instrumented:
            setup.instrumentor.uninstrument()
    h = callbacks[0]
    if isinstance(h, NotebookHandler):
        check(h.flush(timeout=120), "flush timed out")
        close(h)
    return elapsed, setup.spans()


def otel_workloads() -> dict[str, tuple[Callable[[list[Any]], float | None], int]]:
    """Label -> (run it with these callbacks, callback events per run)."""
    model = fake_stream_model()
    chain = steps_chain()

    def stream(callbacks: list[Any]) -> None:
        for _ in model.stream("go", config={"callbacks": callbacks}):
            pass

    def steps(callbacks: list[Any]) -> None:
        chain.invoke(0, config={"callbacks": callbacks})

    def astream(callbacks: list[Any]) -> float:
        async def run() -> float:
            start = time.perf_counter()
            async for _ in model.astream("go", config={"callbacks": callbacks}):
                pass
            return time.perf_counter() - start

        return asyncio.run(run())

    return {
        f"sync stream, {TOKENS:,} tokens": (stream, TOKENS + 2),
        f"{STEPS}-step chain": (steps, 2 * STEPS + 2),
        f"astream, {TOKENS:,} tokens": (astream, TOKENS + 2),
    }


def otel_hot_path(rounds: int) -> None:
    setup = OtelSetup()
    names = ["no-op handler", "NotebookHandler", "+ OpenTelemetrySink", "OpenInference instrumentor"]
    workloads = otel_workloads()
    for label, (work, events) in workloads.items():
        per_event: dict[str, list[float]] = {name: [] for name in names}
        spans: dict[str, int] = {}
        for name in names:  # warm up
            otel_round(setup, name, work)
        for _ in range(rounds):
            for name in names:
                elapsed, exported = otel_round(setup, name, work)
                per_event[name].append(elapsed / events * 1e6)
                spans[name] = exported
        noop = statistics.median(per_event["no-op handler"])
        print(f"OpenTelemetry hot path: {label}, {rounds} interleaved rounds (median per callback event)")
        print(f"{'configuration':<30}{'per event':>12}{'vs no-op':>10}{'spans':>8}")
        for name in names:
            median = statistics.median(per_event[name])
            print(f"{name:<30}{median:9.2f} µs{median / noop:9.2f}×{spans[name]:>8}")
        print()


def otel_throughput(runs: int) -> None:
    """Spans per second: ours on the sink's worker (the reader held back, then drained), OpenInference's inline."""
    setup = OtelSetup()
    chain = steps_chain()
    invocations = max(1, runs // (STEPS + 1))
    # ours: record first, then time the drain (records -> spans -> SimpleSpanProcessor -> in-memory exporter)
    h = setup.sink_handler()
    writer = h._sink_writer  # noqa: SLF001 - hold the reader back to time the span building alone
    check(writer is not None, "no writer")
    writer.interval = 3600.0  # type: ignore[union-attr]
    setup.spans()
    for _ in range(invocations):
        chain.invoke(0, config={"callbacks": [h]})
    start = time.perf_counter()
    check(h.flush(timeout=600), "flush timed out")
    drain = time.perf_counter() - start
    ours = setup.spans()
    check(ours == invocations * (STEPS + 1), ours)
    close(h)

    # OpenInference: spans are made and exported inside the callbacks, on the chain's thread
    def timed(callbacks: list[Any]) -> float:
        start = time.perf_counter()
        for _ in range(invocations):
            chain.invoke(0, config={"callbacks": callbacks})
        return time.perf_counter() - start

    baseline = timed([NoOpHandler()])
    setup.instrumentor.instrument(tracer_provider=setup.provider)
    try:
        instrumented = timed([NoOpHandler()])
    finally:
        setup.instrumentor.uninstrument()
    theirs = setup.spans()
    print(f"OpenTelemetry export: {ours:,} spans ({invocations} runs of the {STEPS}-step chain), in-memory exporter")
    print(f"{'exporter':<30}{'spans/s':>12}{'µs per span':>14}{'  where'}")
    print(
        f"{'OpenTelemetrySink':<30}{ours / drain:12,.0f}{drain / ours * 1e6:14.1f}  sink worker thread (off the chain)"
    )
    extra = max(instrumented - baseline, 1e-9)
    print(
        f"{'OpenInference instrumentor':<30}{theirs / extra:12,.0f}{extra / max(theirs, 1) * 1e6:14.1f}"
        "  chain's thread (added to the no-op run)"
    )
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--spans", type=int, default=20_000)
    parser.add_argument("--only", choices=["sinks", "otel"], default=None)
    args = parser.parse_args()
    if args.only != "otel":
        with tempfile.TemporaryDirectory() as folder:
            hot_path(args.rounds, TOKENS, Path(folder))
            hot_path(max(3, args.rounds // 3), 10 * TOKENS, Path(folder))
            print("  (core target: NotebookHandler / no-op handler ≤ 1.15; sinks write on their own threads)")
            print()
            throughput(args.events, Path(folder))
    if args.only != "sinks":
        print()
        otel_hot_path(args.rounds)
        otel_throughput(args.spans)


if __name__ == "__main__":
    main()
