"""What live consumers cost the chain, and how late their records arrive.

1. Hot path: per-event cost of a 2,000-token sync stream with a no-op handler, NotebookHandler alone, and
   NotebookHandler with 1 and 10 consumers attached (``iter_updates()`` drained by threads; "10 / 100 per-request"
   are consumers each following its own run, as a server has, one of them this stream's). Interleaved rounds,
   medians; ratios side by side. "drained" is how long after the stream's end the last consumer had every event;
   "CPU" is the process's CPU time (all threads) per event until then, less sensitive to other processes' load.
2. Delivery latency token -> consumer (from the recorder's timestamp to the consumer holding the record) for a
   stream paced at ~1,000 tokens/s, p50 / p95 / max, with the chain in a worker thread and blocking consumers,
   with the chain in a worker thread and an async consumer on the loop, and with the chain on the consumer's
   loop (``ainvoke`` of a streaming model).

    python benchmarks/updates.py [--rounds 9] [--tokens 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any, NamedTuple

from common import NoOpHandler, check, fake_stream_model, interleaved, paired_ratio, stream_events

from nbcallbacks import NotebookHandler
from nbcallbacks.demo import DemoChatModel

if TYPE_CHECKING:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

PACE = 0.0008
"""Seconds between tokens (plus the sleep's own overhead: about 1,000 tokens/s)."""


def drain(stream: Any, events: int, done: list[float]) -> None:
    """Read until ``events`` event records arrived (never told of a drop), note when."""
    seen = 0
    for record in stream:
        check(record["kind"] != "dropped", record)
        if record["kind"] == "event":
            seen += 1
            if seen == events:
                done.append(time.perf_counter())
                break
    stream.close()


class GCTimer:
    """Seconds spent in garbage collections while ``on`` (a ``gc.callbacks`` entry)."""

    def __init__(self) -> None:
        self.on = False
        self.seconds = 0.0
        self._start = 0.0

    def __call__(self, phase: str, _info: dict[str, Any]) -> None:
        if not self.on:
            return
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._start


GC_TIMER = GCTimer()
gc.callbacks.append(GC_TIMER)


class Round(NamedTuple):
    """What one round measured, in seconds."""

    wall: float
    """The stream's own time."""
    drained: float | None
    """From the stream's end until the last consumer had everything (None without consumers)."""
    cpu: float
    """The process's CPU from the stream's start until then (every thread: chain, reader, consumers)."""
    gc: float
    """The stream's time in garbage collections (every generation)."""
    chain_cpu: float
    """The CPU of the chain's own thread during the stream."""


def one_round(model: FakeListChatModel, config: str, events: int) -> Round:
    """One stream of ``model`` with ``config``'s handler and consumers."""
    if config == "no-op handler":
        handler: Any = NoOpHandler()
        consumers = 0
    else:
        handler = NotebookHandler()
        consumers = {
            "NotebookHandler": 0,
            "+ 1 consumer": 1,
            "+ 10 consumers": 10,
            "+ 10 per-request": 10,
            "+ 100 per-request": 100,
        }[config]
    per_request = config.endswith("per-request")
    run_id = uuid.uuid4()
    done: list[float] = []
    readers = []
    waiting = []  # requests whose runs have not started yet: attached, filtering, receiving nothing
    for index in range(consumers):
        if per_request and index:
            waiting.append(handler.iter_updates(run=uuid.uuid4()))
            continue
        stream = handler.iter_updates(run=run_id) if per_request else handler.iter_updates()
        readers.append(threading.Thread(target=drain, args=(stream, events, done)))
    for reader in readers:
        reader.start()
    time.sleep(0.2)  # let the threads settle
    gc.collect()
    GC_TIMER.seconds, GC_TIMER.on = 0.0, True
    cpu = time.process_time()
    own = time.thread_time()
    start = time.perf_counter()
    for _ in model.stream("go", config={"callbacks": [handler], "run_id": run_id}):
        pass
    end = time.perf_counter()
    own = time.thread_time() - own
    GC_TIMER.on = False
    for reader in readers:
        reader.join(120)
        check(not reader.is_alive(), "a consumer never got everything")
    cpu = time.process_time() - cpu
    for stream in waiting:
        check(stream.queued == 0, "a consumer got another request's records")
        stream.close()
    return Round(end - start, max(done) - end if done else None, cpu, GC_TIMER.seconds, own)


def hot_path(rounds: int, tokens: int) -> None:
    model = fake_stream_model(tokens)
    events = stream_events(tokens)
    configs = [
        "no-op handler",
        "NotebookHandler",
        "+ 1 consumer",
        "+ 10 consumers",
        "+ 10 per-request",
        "+ 100 per-request",
    ]
    rounds_of = interleaved(configs, lambda name: one_round(model, name, events), rounds)
    per_event = {name: [r.wall / events * 1e6 for r in values] for name, values in rounds_of.items()}
    cpu = {name: [r.cpu / events * 1e6 for r in values] for name, values in rounds_of.items()}
    drained = {name: [r.drained * 1e3 for r in values if r.drained is not None] for name, values in rounds_of.items()}
    collecting = {name: [r.gc * 1e3 for r in values] for name, values in rounds_of.items()}
    chain = {name: [r.chain_cpu / events * 1e6 for r in values] for name, values in rounds_of.items()}

    def paired(values: dict[str, list[float]], name: str, reference: str) -> float:
        return paired_ratio(values[name], values[reference])

    print(f"Hot path: {tokens:,}-token sync stream, {rounds} interleaved rounds (medians; ratios paired per round)")
    print("  wall: the stream's time per event; CPU: every thread's, until the last consumer had everything")
    print(
        f"{'configuration':<22}{'wall/event':>12}{'vs alone':>10}{'vs no-op':>10}{'drained':>12}"
        f"{'CPU/event':>12}{'vs alone':>10}{'GC (all)':>11}{'chain CPU':>12}{'vs no-op':>10}"
    )
    for name in configs:
        median = statistics.median(per_event[name])
        after = f"{statistics.median(drained[name]):7.1f} ms" if drained[name] else ""
        alone, noop = paired(per_event, name, "NotebookHandler"), paired(per_event, name, "no-op handler")
        used, used_ratio = statistics.median(cpu[name]), paired(cpu, name, "NotebookHandler")
        in_gc = statistics.median(collecting[name])
        own, own_ratio = statistics.median(chain[name]), paired(chain, name, "no-op handler")
        print(
            f"{name:<22}{median:9.2f} µs{alone:9.2f}×{noop:9.2f}×{after:>12}{used:9.2f} µs{used_ratio:9.2f}×"
            f"{in_gc:8.1f} ms{own:9.2f} µs{own_ratio:9.2f}×"
        )
    print("Targets (the core target: NotebookHandler / no-op handler ≤ 1.15):")
    for name in ("+ 1 consumer", "+ 10 consumers"):
        print(
            f"  hot path {name[2:]}: the chain's own CPU ×{paired(chain, name, 'no-op handler'):.2f} of the no-op"
            f" handler's; the stream's wall time ×{paired(per_event, name, 'no-op handler'):.2f}"
        )
    print(
        "  chain CPU: the chain's own thread only (time.thread_time), what the handler makes it do; the wall time also"
        "\n  holds the other threads' turns at the one interpreter lock (the reader's and the consumers' own loops)"
    )
    print()


def percentiles(lags: list[float]) -> str:
    lags = sorted(lags)
    p50 = lags[len(lags) // 2] * 1e3
    p95 = lags[int(len(lags) * 0.95)] * 1e3
    return f"{p50:7.2f} ms {p95:7.2f} ms {lags[-1] * 1e3:7.2f} ms"


def token_lags(records: list[tuple[float, dict[str, Any]]]) -> list[float]:
    return [received - record["time"] for received, record in records if record.get("event") == "llm_new_token"]


def latency_threads(tokens: int, consumers: int) -> tuple[list[float], float]:
    handler = NotebookHandler()
    model = DemoChatModel(responses=["w " * tokens], token_delay=PACE, first_token_delay=0.0, jitter=0.0)
    run_id = uuid.uuid4()
    got: list[list[tuple[float, dict[str, Any]]]] = [[] for _ in range(consumers)]

    def consume(stream: Any, out: list[tuple[float, dict[str, Any]]]) -> None:
        out.extend((time.time(), record) for record in stream)

    readers = [
        threading.Thread(target=consume, args=(handler.iter_updates(run=run_id), out), daemon=True) for out in got
    ]
    for reader in readers:
        reader.start()
    start = time.perf_counter()
    model.invoke("go", config={"callbacks": [handler], "run_id": run_id})
    rate = tokens / (time.perf_counter() - start)
    for reader in readers:
        reader.join(60)
    lags = [lag for out in got for lag in token_lags(out)]
    check(len(lags) >= tokens * consumers, f"{len(lags)} token records")
    return lags, rate


async def latency_async(tokens: int, *, same_loop: bool) -> tuple[list[float], float]:
    handler = NotebookHandler()
    model = DemoChatModel(responses=["w " * tokens], token_delay=PACE, first_token_delay=0.0, jitter=0.0)
    run_id = uuid.uuid4()
    config: Any = {"callbacks": [handler], "run_id": run_id}
    got: list[tuple[float, dict[str, Any]]] = []
    start = time.perf_counter()
    async with handler.updates(run=run_id) as stream:
        job = asyncio.create_task(
            model.ainvoke("go", config) if same_loop else asyncio.to_thread(model.invoke, "go", config)
        )
        got.extend([(time.time(), record) async for record in stream])
        await job
    rate = tokens / (time.perf_counter() - start)
    lags = token_lags(got)
    check(len(lags) >= tokens, f"{len(lags)} token records")
    return lags, rate


def latency(tokens: int) -> None:
    print(f"Delivery latency token -> consumer, {tokens:,}-token stream paced at ~1,000 tokens/s")
    print(f"{'setup':<52}{'rate':>11}{'p50':>11}{'p95':>11}{'max':>11}")
    for consumers in (1, 10):
        lags, rate = latency_threads(tokens, consumers)
        label = f"chain in a thread, {consumers} blocking consumer{'s' if consumers > 1 else ''}"
        print(f"{label:<52}{rate:7,.0f} t/s {percentiles(lags)}")
    lags, rate = asyncio.run(latency_async(tokens, same_loop=False))
    print(f"{'chain in a worker thread, 1 async consumer':<52}{rate:7,.0f} t/s {percentiles(lags)}")
    lags, rate = asyncio.run(latency_async(tokens, same_loop=True))
    print(f"{'chain on the consumer loop (ainvoke), 1 async consumer':<52}{rate:7,.0f} t/s {percentiles(lags)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--tokens", type=int, default=2_000)
    args = parser.parse_args()
    hot_path(args.rounds, args.tokens)
    latency(args.tokens)


if __name__ == "__main__":
    main()
