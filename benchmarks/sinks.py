"""What sinks cost: the hot path of a streaming chain with sinks attached, and how fast each sink writes.

1. Per-event cost of a 2,000-token stream with NotebookHandler alone, and with a SQLite sink, a JSONL sink and
   both attached (interleaved rounds, medians; the writing happens on the sinks' threads, so the stream should
   pay only for waking them). The time ``flush()`` then takes to write the stream is printed beside it.
2. Events written per second by each sink: a long stream recorded with one sink attached, timed from the sink's
   first ``write`` to the end of ``flush()``.

    python benchmarks/sinks.py [--rounds 9] [--events 100000]
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        hot_path(args.rounds, TOKENS, Path(folder))
        hot_path(max(3, args.rounds // 3), 10 * TOKENS, Path(folder))
        print("  (core target: NotebookHandler / no-op handler ≤ 1.15; sinks write on their own threads)")
        print()
        throughput(args.events, Path(folder))


if __name__ == "__main__":
    main()
