"""What a shared trace costs: ``h.to_html()`` file size (raw and gzipped), time to write, time to open offline.

Run: ``python benchmarks/share_size.py`` (needs the built front end, ``cd js && npm run build``, and
/usr/bin/chromium for the open time). Prints a small table, asserts nothing.

Traces: the demo agent (9 runs), and real LangChain run trees of 1,001 and 10,001 runs recorded by a
``NotebookHandler`` with ``common.record_pipeline`` (as in ``big_trace.py``: a ``pipeline`` lambda, one ``stage`` per
100 runs, each stage calling the streaming demo chat model once and a ``step`` lambda 98 times).
"open" is the time from navigation to the widget's header counting every run, in a headless Chromium with every
network request blocked.
"""

from __future__ import annotations

import gzip
import tempfile
import time
from pathlib import Path

from common import record_pipeline  # beside this script
from harness import chromium

from nbcallbacks import NotebookHandler
from nbcallbacks.demo import agent
from nbcallbacks.share import summary_html, trace_snapshot


def record(n_runs: int) -> NotebookHandler:
    handler = NotebookHandler()
    if n_runs == 9:
        agent(token_delay=0).invoke({"messages": [("user", "What's the weather in Paris?")]}, {"callbacks": [handler]})
    else:
        record_pipeline(n_runs, handler)
    return handler


def open_time(browser, path: Path, runs: int) -> tuple[float, list[str]]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    url = path.resolve().as_uri()
    blocked: list[str] = []

    def route(request_route):
        if request_route.request.url == url:
            request_route.continue_()
        else:
            blocked.append(request_route.request.url)
            request_route.abort()

    context.route("**/*", route)
    page = context.new_page()
    start = time.perf_counter()
    page.goto(url)
    page.wait_for_function(
        """(runs) => {
          const stat = document.querySelector('.nbc-stat[data-stat="runs"]');
          return !!stat && parseInt(stat.textContent.replace(/[^0-9]/g, ''), 10) === runs;
        }""",
        arg=runs,
        timeout=120_000,
    )
    seconds = time.perf_counter() - start
    context.close()
    return seconds, blocked


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp, chromium() as browser:
        for n_runs in (9, 1_001, 10_001):
            handler = record(n_runs)
            start = time.perf_counter()
            path = handler.to_html(Path(tmp) / f"trace_{n_runs}.html")
            write_s = time.perf_counter() - start
            raw = path.read_bytes()
            summary = summary_html(trace_snapshot(handler))
            seconds, blocked = open_time(browser, path, handler.recorder.run_count)
            rows.append((handler.recorder.run_count, len(raw), len(gzip.compress(raw)), write_s, seconds, len(summary)))
            if blocked:
                msg = f"the page asked for {blocked}"
                raise SystemExit(msg)
    print(f"{'runs':>7} {'file':>10} {'gzipped':>10} {'write':>8} {'open':>8} {'summary':>9}")
    for runs, size, zipped, write_s, seconds, summary in rows:
        print(
            f"{runs:>7,} {size / 1e6:>8.2f}MB {zipped / 1e6:>8.2f}MB {write_s:>7.2f}s {seconds:>7.2f}s "
            f"{summary / 1e3:>7.1f}kB"
        )


if __name__ == "__main__":
    main()
