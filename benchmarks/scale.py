"""Memory and read cost at scale: long streams, big batches, default limits against tight ones.

Three tables:

1. Memory kept by a handler (tracemalloc, the handler alive) after one long stream and after a big batch, with the
   default limits and with ``Limits(max_tokens_per_run=1000, max_events=50_000)``, next to the counts the
   recorder reports. Past the limits only bulk text and old events drop: memory stops growing while the counts
   (chunks, events, runs) stay exact.
2. The same stream at that length and at twice it, to show which configuration grows and which stays flat.
3. A consumer reading deltas at 30 Hz during a long stream, as the widget's flusher does: time spent in reads
   against the stream's own time, and the cost per read and per event read in each quarter of the stream. Reads
   cost O(new events): the last quarter's reads cost what the first quarter's do.

Tokens are word pieces of about five characters streamed by ``DemoChatModel`` through real LangChain callbacks.
The machine is shared and noisy: read the ratios, not the absolute times. Nothing here asserts on timing.

    python benchmarks/scale.py [--tokens 100000] [--runs 10000]
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from typing import Any

from common import consume, interleaved, kept_bytes, timed
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import RunnableLambda

from nbcallbacks import Limits, NotebookHandler
from nbcallbacks.demo import DemoChatModel, tokenize

TIGHT = Limits(max_tokens_per_run=1_000, max_events=50_000)
CONFIGS: dict[str, Limits] = {"default limits": Limits(), "tight limits": TIGHT}
READ_HZ = 30.0


def answer_of(tokens: int) -> str:
    """A text that DemoChatModel streams as exactly ``tokens`` chunks (plus its closing usage chunk)."""
    words = " ".join(f"token{i % 9_973}" for i in range(tokens))
    pieces = tokenize(words)[:tokens]
    return "".join(pieces)


def stream_model(tokens: int) -> DemoChatModel:
    model = DemoChatModel(token_delay=0, responses=[answer_of(tokens)])
    # LangChain caches a model's serialized form (here a repr holding the whole scripted answer) on first use:
    # build it now, so that it is not counted as memory the handler keeps.
    _ = model._serialized  # noqa: SLF001
    return model


def batch_chain() -> Any:
    """Four runs per item: the sequence, a lambda, the model (a short streamed answer), the parser."""
    prep = RunnableLambda(lambda i: f"Question number {i}?").with_config(run_name="prep")
    return prep | DemoChatModel(token_delay=0, responses=["A short answer of a few tokens."]) | StrOutputParser()


def handler_kept_bytes(limits: Limits, work: Any) -> tuple[NotebookHandler, int]:
    """Bytes still allocated after ``work(handler)`` while the handler is alive (tracemalloc)."""
    handler = NotebookHandler(limits)
    return handler, kept_bytes(lambda: work(handler))


def run_stream(model: DemoChatModel, handler: NotebookHandler) -> None:
    consume(model, [handler])


def run_batch(items: int, handler: NotebookHandler) -> None:
    batch_chain().batch(list(range(items)), config={"callbacks": [handler], "max_concurrency": 8})


def stream_counts(handler: NotebookHandler) -> str:
    recorder = handler.recorder
    model = next(run for run in recorder.runs() if run.run_type == "chat_model")
    kept = model.streamed_chunks - model.chunks_not_kept
    return (
        f"chunks {model.streamed_chunks:,} (text kept {kept:,}); events {recorder.event_count:,} "
        f"(kept {recorder.event_count - recorder.dropped_events:,})"
    )


def batch_counts(handler: NotebookHandler) -> str:
    recorder = handler.recorder
    chunks = sum(run.streamed_chunks for run in recorder.runs())
    return (
        f"runs {recorder.run_count:,}; chunks {chunks:,}; events {recorder.event_count:,} "
        f"(kept {recorder.event_count - recorder.dropped_events:,})"
    )


def memory_table(tokens: int, runs: int) -> None:
    items = runs // 4
    batch_chain().batch([0, 1])  # warm LangChain's caches outside the measurement
    model = stream_model(tokens)
    print(f"1. Memory kept by the handler (tracemalloc) and the counts it reports, {tokens:,}-token stream and")
    print(
        f"   {items:,}-item batch ({runs:,} runs); tight = Limits(max_tokens_per_run={TIGHT.max_tokens_per_run:,}, "
        f"max_events={TIGHT.max_events:,})"
    )
    print(f"   {'workload':<24}{'limits':<16}{'kept':>10}{'per unit':>16}   counts (exact past every limit)")
    for name, limits in CONFIGS.items():
        handler, size = handler_kept_bytes(limits, lambda h: run_stream(model, h))
        per = size / tokens
        print(f"   {f'{tokens:,}-token stream':<24}{name:<16}{size / 1e6:8.2f} MB{per:9.1f} B/token   ", end="")
        print(stream_counts(handler))
    for name, limits in CONFIGS.items():
        handler, size = handler_kept_bytes(limits, lambda h: run_batch(items, h))
        per = size / max(handler.recorder.run_count, 1)
        print(f"   {f'{runs:,}-run batch':<24}{name:<16}{size / 1e6:8.2f} MB{per:11.0f} B/run   ", end="")
        print(batch_counts(handler))
    print("   (limits bound kept text and the event log; every run is kept)")
    print()


def growth_table(tokens: int) -> None:
    lengths = (tokens, 2 * tokens)
    print("2. Memory against stream length, both past the tight limits: the default limits keep every chunk's")
    print("   text, the tight ones stop growing (the event log holds at most max_events, then drops the oldest)")
    print(f"   {'limits':<16}" + "".join(f"{f'{n:,} tokens':>16}" for n in lengths) + f"{'growth':>10}")
    for name, limits in CONFIGS.items():
        sizes = []
        for length in lengths:
            model = stream_model(length)
            _, size = handler_kept_bytes(limits, lambda h, m=model: run_stream(m, h))
            sizes.append(size)
        cells = "".join(f"{size / 1e6:13.2f} MB" for size in sizes)
        print(f"   {name:<16}{cells}{sizes[1] / sizes[0]:9.2f}×")
    print()


class Reader:
    """Reads a subscription at a fixed rate in its own thread, timing each read."""

    def __init__(self, handler: NotebookHandler) -> None:
        self._sub = handler.recorder.subscribe()
        self._stop = threading.Event()
        self.reads: list[tuple[int, int, float, float]] = []
        """Per read: cursor after it, events it returned, wall seconds and CPU seconds of this thread it took."""
        self._thread = threading.Thread(target=self._loop, name="reader")
        self._thread.start()

    def _loop(self) -> None:
        period = 1.0 / READ_HZ
        while not self._stop.wait(period):
            self._read()

    def _read(self) -> None:
        began, began_cpu = time.perf_counter(), time.thread_time()
        delta = self._sub.read()
        took, took_cpu = time.perf_counter() - began, time.thread_time() - began_cpu
        self.reads.append((delta.cursor, len(delta.events), took, took_cpu))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._read()  # the tail
        self._sub.close()


def read_table(tokens: int) -> None:
    model = stream_model(tokens)
    run_stream(model, NotebookHandler())  # warm up
    last: dict[str, tuple[NotebookHandler, Reader | None]] = {}

    def one_round(name: str) -> float:
        handler = NotebookHandler()
        reader = Reader(handler) if name == "with the reader" else None
        elapsed = timed(lambda: run_stream(model, handler))
        if reader is not None:
            reader.stop()
        last[name] = (handler, reader)
        return elapsed

    rounds = interleaved(["alone", "with the reader"], one_round, 3, warm_up=False)  # the median of each is printed
    alone, with_reader = rounds["alone"], rounds["with the reader"]
    handler, reader = last["with the reader"]
    if reader is None:
        return
    events = handler.recorder.event_count
    read_events = sum(read[1] for read in reader.reads)
    if read_events != events:
        msg = f"the reader saw {read_events:,} events of {events:,}"
        raise RuntimeError(msg)
    spent = sum(read[2] for read in reader.reads)
    spent_cpu = sum(read[3] for read in reader.reads)
    stream_s = statistics.median(with_reader)
    print(f"3. Reading deltas at {READ_HZ:.0f} Hz during a {tokens:,}-token stream ({events:,} events)")
    print(f"   stream alone {statistics.median(alone):6.2f} s, with the reader {stream_s:6.2f} s (medians of 3)")
    print(
        f"   last round: {len(reader.reads)} reads, every event read exactly once; inside read(): "
        f"{spent_cpu * 1e3:.1f} ms of CPU ({spent_cpu / with_reader[-1] * 100:.1f} % of the stream's time), "
        f"{spent * 1e3:.1f} ms of wall time (waits for the GIL the stream holds included)"
    )
    print("   per quarter of the stream, medians over its reads (a garbage collection can land in any one read):")
    print(f"   {'quarter of the stream':<24}{'reads':>7}{'events/read':>13}{'CPU ms/read':>13}{'CPU µs/event':>14}")
    quarter = events / 4
    for q in range(4):
        rows = [r for r in reader.reads if r[1] and q * quarter < r[0] <= (q + 1) * quarter + (q == 3)]
        if not rows:
            continue
        count = sum(r[1] for r in rows)
        per_read = statistics.median(r[3] for r in rows)
        per_event = statistics.median(r[3] / r[1] for r in rows)
        print(
            f"   {f'{q * 25}-{(q + 1) * 25} %':<24}{len(rows):>7}{count / len(rows):>13.0f}"
            f"{per_read * 1e3:>13.2f}{per_event * 1e6:>14.2f}"
        )
    print("   (flat µs/event from the first quarter to the last: a read costs what is new, not the trace so far)")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=100_000, help="length of the long stream")
    parser.add_argument("--runs", type=int, default=10_000, help="runs in the big batch (four per item)")
    args = parser.parse_args()
    memory_table(args.tokens, args.runs)
    growth_table(args.tokens)
    read_table(args.tokens)


if __name__ == "__main__":
    main()
