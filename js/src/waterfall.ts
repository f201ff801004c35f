/**
 * Waterfall geometry (pure): where a run's bar sits in its tree row, as fractions of the time scope (the whole
 * trace, or a zoomed run). Running runs end at "now" (the kernel's clock), so their bars grow; abandoned runs
 * without an end stop where they were last seen (their start).
 */
import type { RunWire } from "./protocol";
import { isModelRun } from "./protocol";

export interface Scope {
  start: number;
  end: number;
}

export interface Bar {
  /** Offset of the bar's start in the scope, 0..1. */
  left: number;
  /** Width, 0..1 - left. */
  width: number;
  /** Time to first token as an offset in the scope (model runs that streamed), else null. */
  tick: number | null;
  live: boolean;
  /** The run lies (partly) outside the scope. */
  clipped: boolean;
}

type Lived = Pick<RunWire, "start" | "end" | "display_status">;
type TimedRun = Lived & Pick<RunWire, "first_token" | "run_type">;

/** Running as Python says (`display_status`), with no end yet: its bar ends at now. */
function isLive(run: Pick<RunWire, "display_status" | "end">): boolean {
  return run.display_status === "running" && run.end === null;
}

function runEnd(run: Lived, now: number): number {
  if (run.end !== null) return run.end;
  return isLive(run) ? Math.max(run.start, now) : run.start;
}

/**
 * A trace's first start and last end, kept by folding in runs as they change, so that its scope at a new "now"
 * costs one look at the running runs instead of a pass over all runs (the tree asks every frame while anything
 * runs). It only grows: start it again (`clear`) when runs may have gone or moved back (a new snapshot).
 */
export class TraceSpan {
  private start = Infinity;
  /** Last end of the runs that do not end at now. */
  private end = -Infinity;
  /** Start of each live run (its end is now). */
  private readonly live = new Map<string, number>();

  clear(): void {
    this.start = Infinity;
    this.end = -Infinity;
    this.live.clear();
  }

  /** Fold in run `id` as it is now (again after it changed). */
  add(id: string, run: Lived): void {
    if (run.start < this.start) this.start = run.start;
    if (isLive(run)) {
      this.live.set(id, run.start);
      return;
    }
    this.live.delete(id);
    const e = runEnd(run, run.start); // not live: now does not matter
    if (e > this.end) this.end = e;
  }

  /** First start to last end (now while anything runs); null for no runs. */
  at(now: number): Scope | null {
    if (!Number.isFinite(this.start)) return null;
    let end = this.end;
    for (const start of this.live.values()) {
      const e = Math.max(start, now);
      if (e > end) end = e;
    }
    return { start: this.start, end: Math.max(end, this.start) };
  }
}

function span(runs: Iterable<Lived>, now: number): Scope | null {
  const s = new TraceSpan();
  let i = 0;
  for (const run of runs) s.add(String(i++), run);
  return s.at(now);
}

/** The scope of a whole trace: first start to last end (now while anything runs). */
export function traceScope(runs: Iterable<Lived>, now: number): Scope {
  return span(runs, now) ?? { start: 0, end: 1 };
}

/** Wall time of a trace (the header): the length of its scope, or null for no runs. */
export function wallTime(runs: Iterable<Lived>, now: number): number | null {
  const s = span(runs, now);
  return s === null ? null : s.end - s.start;
}

/** The scope of one run (the zoomed root). */
export function runScope(run: Lived, now: number): Scope {
  return { start: run.start, end: runEnd(run, now) };
}

const clamp = (x: number): number => (x < 0 ? 0 : x > 1 ? 1 : x);

export function barOf(run: TimedRun, scope: Scope, now: number): Bar {
  const span = scope.end - scope.start;
  const end = runEnd(run, now);
  if (!(span > 0)) {
    return { left: 0, width: 1, tick: null, live: isLive(run), clipped: false };
  }
  const a = (run.start - scope.start) / span;
  const b = (end - scope.start) / span;
  const left = clamp(a);
  const right = clamp(b);
  let tick: number | null = null;
  if (isModelRun(run) && run.first_token !== null) {
    const t = (run.first_token - scope.start) / span;
    if (t >= left && t <= right) tick = t;
  }
  return { left, width: Math.max(0, right - left), tick, live: isLive(run), clipped: a < 0 || b > 1 };
}
