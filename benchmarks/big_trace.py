"""Large traces in the live widget, in a real JupyterLab and Chromium: paint, expand, sort, memory, scroll.

Run: ``python benchmarks/big_trace.py`` (needs /usr/bin/chromium and the built front end:
``cd js && npm ci && npm run build``). Takes a minute or two; prints a small table, asserts nothing.

Each trace is a real LangChain run tree recorded by a ``NotebookHandler``: a ``pipeline`` lambda with
one ``stage`` lambda per 100 runs, each stage calling the streaming demo chat model once and a
``step`` lambda 98 times (1 + 100 x stages runs: 5,001 and 10,001). For each size:

- first paint: the finished trace is displayed (``h`` as the last expression of a cell); time from
  the start of that cell until the view shows every run in its header and its stream panel;
- live: the handler is displayed first and the trace recorded afterwards; time from the end of the
  recording cell until the view has caught up;
- tree: time to open the Tree tab, to expand all, to collapse all, to expand the root (one node), each
  from the click to the next painted frame; rows in the DOM (virtualised) and a scroll to the middle
  and to the bottom, checking that rows render there;
- timing table: time to open it and to sort by duration (click to painted frame);
- navigation (on the Tree tab, all expanded): filter-to-paint for a rare query (``pipeline``: 1 run) and a
  common one (``step``: 98% of the runs), from applying the query (Enter in the filter box, which skips the
  60 ms typing debounce) to the second painted frame, and the match count it showed; clearing the query; the
  Errors-only and Key-runs toggles on and off (click to the second painted frame);
- JS heap in use (Chrome DevTools protocol, after a forced garbage collection), also after the navigation.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from harness import BUNDLE, LabPage, lab_session

SETUP = f"""
import json, sys
sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
from common import record_pipeline as record
from nbcallbacks import NotebookHandler
"""

RECORD = """
h{n} = NotebookHandler()
seconds = record({n}, h{n})
print(json.dumps({{"runs": h{n}.recorder.run_count, "seconds": seconds,
                  "models": sum(1 for r in h{n}.recorder.runs() if r.run_type == "chat_model"),
                  "root": h{n}.recorder.runs()[0].run_id}}))
"""

SHOW = "h{n}"

LIVE_SHOW = "live{n} = NotebookHandler()\nlive{n}"

LIVE_RECORD = """
seconds = record({n}, live{n})
print(json.dumps({{"runs": live{n}.recorder.run_count, "seconds": seconds}}))
"""

# In-page helpers: run a cell and wait for a condition frame by frame; time actions to the next paint.
PAGE_JS = r"""
() => {
  const frame = () => new Promise((resolve) => requestAnimationFrame(() => resolve()));
  window.__nbcFrame = frame;
  window.__nbcCaughtUp = (view, runs, blocks) => {
    const stat = view.querySelector('.nbc-stat[data-stat="runs"]');
    const n = stat ? parseInt(stat.textContent.replace(/[^0-9]/g, ''), 10) : -1;
    return n === runs && view.querySelectorAll('section.nbc-block').length === blocks;
  };
  window.__nbcRunAndWait = async (cell, viewIndex, runs, blocks) => {
    const app = window.jupyterapp;
    const notebook = app.shell.currentWidget.content;
    notebook.activeCellIndex = cell;
    notebook.deselectAll();
    const t0 = performance.now();
    const done = app.commands.execute('notebook:run-cell');
    for (;;) {
      await frame();
      const view = document.querySelectorAll('.nbc-root')[viewIndex];
      if (view && window.__nbcCaughtUp(view, runs, blocks)) { break; }
      if (performance.now() - t0 > 300000) { return -1; }
    }
    const painted = performance.now() - t0;
    await done;
    return painted;
  };
  window.__nbcQuery = async (viewIndex, text) => {
    const view = document.querySelectorAll('.nbc-root')[viewIndex];
    const input = view.querySelector('input[type="search"][data-action="filter"]');
    const t0 = performance.now();
    input.value = text;
    input.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true }));
    await frame();
    await frame();
    const ms = performance.now() - t0;
    return { ms, count: view.querySelector('.nbc-match-count').textContent,
             rows: view.querySelectorAll('.nbc-row').length };
  };
  window.__nbcTimed = async (viewIndex, selector) => {
    const view = document.querySelectorAll('.nbc-root')[viewIndex];
    const target = view.querySelector(selector);
    const t0 = performance.now();
    target.click();
    await frame();
    await frame();
    return performance.now() - t0;
  };
}
"""


def heap_mb(page: LabPage) -> float:
    """JS heap in use after a forced garbage collection, in MB."""
    session = page.page.context.new_cdp_session(page.page)
    session.send("HeapProfiler.enable")
    session.send("HeapProfiler.collectGarbage")
    session.send("Performance.enable")
    metrics = {m["name"]: m["value"] for m in session.send("Performance.getMetrics")["metrics"]}
    session.detach()
    return float(metrics["JSHeapUsedSize"]) / 1e6


def timed(page: LabPage, view: int, selector: str) -> float:
    """Milliseconds from clicking ``selector`` in view ``view`` to the second painted frame after."""
    return float(page.page.evaluate("([v, s]) => window.__nbcTimed(v, s)", [view, selector]))


def tree_probe(page: LabPage, view: int, where: str) -> dict[str, Any]:
    """Scroll the tree viewport (``top``, ``middle``, ``bottom``); report the rows in the DOM."""
    return dict(
        page.page.evaluate(
            """async ([v, where]) => {
              const view = document.querySelectorAll('.nbc-root')[v];
              const tree = view.querySelector('.nbc-tree');
              const max = tree.scrollHeight - tree.clientHeight;
              tree.scrollTop = where === 'top' ? 0 : where === 'middle' ? max / 2 : max;
              tree.dispatchEvent(new Event('scroll'));
              await window.__nbcFrame();
              await window.__nbcFrame();
              const box = tree.getBoundingClientRect();
              const rows = [...tree.querySelectorAll('.nbc-row')];
              const visible = rows.filter((r) => {
                const b = r.getBoundingClientRect();
                return b.bottom > box.top && b.top < box.bottom && r.dataset.runId;
              });
              return { dom_rows: rows.length, visible_rows: visible.length,
                       scroll_rows: Math.round(tree.scrollHeight / 26) };
            }""",
            [view, where],
        )
    )


def measure(page: LabPage, n: int, cells: dict[str, int], view: int) -> dict[str, Any]:
    """Every figure for one trace size; ``view`` is the index of its first widget view."""
    page.run_cell(cells["record"])
    recorded = page.cell_json(cells["record"])
    runs, models = recorded["runs"], recorded["models"]
    first_paint = page.page.evaluate(
        "([c, v, r, b]) => window.__nbcRunAndWait(c, v, r, b)", [cells["show"], view, runs, models]
    )
    result: dict[str, Any] = {
        "runs": runs,
        "record_s": recorded["seconds"],
        "first_paint_ms": first_paint,
    }
    result["heap_mb"] = heap_mb(page)
    result["tree_tab_ms"] = timed(page, view, '.nbc-tab[data-tab="tree"]')
    result["collapse_all_ms"] = timed(page, view, 'button[data-action="collapse-all"]')
    root = recorded["root"]
    result["expand_one_ms"] = timed(page, view, f'.nbc-row[data-run-id="{root}"] .nbc-caret')
    result["expand_all_ms"] = timed(page, view, 'button[data-action="expand-all"]')
    result["scroll"] = {where: tree_probe(page, view, where) for where in ("middle", "bottom")}
    result["timing_tab_ms"] = timed(page, view, '.nbc-tab[data-tab="timing"]')
    duration_sort = '.nbc-th[data-col="duration"] button.nbc-sort'
    result["sort_ms"] = timed(page, view, duration_sort)
    result["sort_again_ms"] = timed(page, view, duration_sort)
    result["heap_after_mb"] = heap_mb(page)

    timed(page, view, '.nbc-tab[data-tab="tree"]')
    timed(page, view, 'button[data-action="expand-all"]')
    for name, text in (("rare", "pipeline"), ("common", "step"), ("clear", "")):
        answer = page.page.evaluate("([v, t]) => window.__nbcQuery(v, t)", [view, text])
        result[f"filter_{name}_ms"] = answer["ms"]
        result[f"filter_{name}_count"] = answer["count"] or "(all)"
    for action in ("errors-only", "key-runs"):
        on = timed(page, view, f'button[data-action="{action}"]')
        off = timed(page, view, f'button[data-action="{action}"]')
        result[f"{action}_ms"] = f"{on:.0f} / {off:.0f}"
    result["heap_nav_mb"] = heap_mb(page)
    timed(page, view, '.nbc-tab[data-tab="stream"]')

    page.run_cell(cells["live_show"])
    page.run_cell(cells["live_record"])
    live = page.cell_json(cells["live_record"])
    started = time.perf_counter()
    page.page.wait_for_function(
        "([v, r, b]) => window.__nbcCaughtUp(document.querySelectorAll('.nbc-root')[v], r, b)",
        arg=[view + 1, live["runs"], models],
        timeout=300_000,
    )
    result["live_catch_up_ms"] = (time.perf_counter() - started) * 1000
    result["live_record_s"] = live["seconds"]
    return result


def main() -> None:
    """Start Lab and Chromium, record and show the traces, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5_001, 10_001])
    args = parser.parse_args()
    if not BUNDLE.exists():
        sys.exit(f"the widget bundle {BUNDLE} is not built: cd js && npm ci && npm run build")

    sources = [SETUP]
    layout: list[dict[str, int]] = []
    for n in args.sizes:
        first = len(sources)
        sources += [
            RECORD.format(n=n),
            SHOW.format(n=n),
            LIVE_SHOW.format(n=n),
            LIVE_RECORD.format(n=n),
        ]
        layout.append({"record": first, "show": first + 1, "live_show": first + 2, "live_record": first + 3})
    started = time.monotonic()
    results = []
    with lab_session() as page:
        page.new_notebook("big_trace.ipynb", sources)
        page.page.evaluate(PAGE_JS)
        page.run_cell(0)
        baseline = heap_mb(page)
        for index, (n, cells) in enumerate(zip(args.sizes, layout, strict=True)):
            results.append(measure(page, n, cells, view=2 * index))

    print(f"\nbig_trace: {time.monotonic() - started:.0f} s wall; JS heap before: {baseline:.0f} MB\n")
    rows = [
        ("runs", "runs", "{:,}"),
        ("record in kernel (s)", "record_s", "{:.2f}"),
        ("first paint, finished trace (ms)", "first_paint_ms", "{:.0f}"),
        ("live: catch-up after the cell (ms)", "live_catch_up_ms", "{:.0f}"),
        ("open Tree tab (ms)", "tree_tab_ms", "{:.0f}"),
        ("collapse all (ms)", "collapse_all_ms", "{:.0f}"),
        ("expand one node (ms)", "expand_one_ms", "{:.0f}"),
        ("expand all (ms)", "expand_all_ms", "{:.0f}"),
        ("open Timing tab (ms)", "timing_tab_ms", "{:.0f}"),
        ("sort by duration (ms)", "sort_ms", "{:.0f}"),
        ("sort again, reversed (ms)", "sort_again_ms", "{:.0f}"),
        ("filter, rare query (ms)", "filter_rare_ms", "{:.0f}"),
        ("  its count", "filter_rare_count", "{}"),
        ("filter, common query (ms)", "filter_common_ms", "{:.0f}"),
        ("  its count", "filter_common_count", "{}"),
        ("clear the filter (ms)", "filter_clear_ms", "{:.0f}"),
        ("errors only on / off (ms)", "errors-only_ms", "{}"),
        ("key runs on / off (ms)", "key-runs_ms", "{}"),
        ("JS heap after paint (MB)", "heap_mb", "{:.0f}"),
        ("JS heap after interactions (MB)", "heap_after_mb", "{:.0f}"),
        ("JS heap after navigation (MB)", "heap_nav_mb", "{:.0f}"),
    ]
    width = 36
    print(f"{'':<{width}}" + "".join(f"{r['runs']:>24,}" for r in results))
    for label, key, fmt in rows[1:]:
        print(f"{label:<{width}}" + "".join(f"{fmt.format(r[key]):>24}" for r in results))
    for where in ("middle", "bottom"):
        label = f"scroll to {where}: rows in DOM / shown"
        cells = "".join(
            f"{r['scroll'][where]['dom_rows']:>19} / {r['scroll'][where]['visible_rows']:<2}" for r in results
        )
        print(f"{label:<{width}}{cells}")
    print(
        f"{'tree height in rows (expanded)':<{width}}"
        + "".join(f"{r['scroll']['bottom']['scroll_rows']:>24,}" for r in results)
    )


if __name__ == "__main__":
    main()
