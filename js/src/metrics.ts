/** Derived per-run timings (pure). Mirrors the properties of `RunRecord` in `nbcallbacks/events.py`. */
import type { RunWire } from "./protocol";

type Timed = Pick<RunWire, "start" | "end" | "first_token" | "output_tokens" | "streamed_chunks">;

export function duration(run: Pick<RunWire, "start" | "end">): number | null {
  return run.end === null ? null : run.end - run.start;
}

export function ttft(run: Pick<RunWire, "start" | "first_token">): number | null {
  return run.first_token === null ? null : run.first_token - run.start;
}

/** Output tokens (usage, else streamed chunks) per second of latency. */
export function tokensPerSecond(run: Timed): number | null {
  const d = duration(run);
  const count = run.output_tokens ?? (run.streamed_chunks > 0 ? run.streamed_chunks : null);
  if (d === null || d <= 0 || count === null) return null;
  return count / d;
}

/** Tokens shown for a run: usage total if known, else streamed chunks. */
export function tokenTotal(run: Pick<RunWire, "total_tokens" | "streamed_chunks">): number | null {
  if (run.total_tokens !== null) return run.total_tokens;
  return run.streamed_chunks > 0 ? run.streamed_chunks : null;
}

/** Wall time of a set of runs: first start to last end (or `now` while any runs). */
export function wallTime(
  runs: Iterable<Pick<RunWire, "start" | "end" | "display_status">>,
  now: number,
): number | null {
  let first = Infinity;
  let last = -Infinity;
  for (const run of runs) {
    first = Math.min(first, run.start);
    const live = run.display_status === "running";
    const end = live ? now : (run.end ?? run.start);
    last = Math.max(last, end);
  }
  return Number.isFinite(first) && Number.isFinite(last) ? Math.max(0, last - first) : null;
}

/** Earliest start of the given runs (the origin of start offsets), or 0 for none. */
export function originOf(runs: Iterable<Pick<RunWire, "start">>): number {
  let first = Infinity;
  for (const run of runs) if (run.start < first) first = run.start;
  return Number.isFinite(first) ? first : 0;
}
