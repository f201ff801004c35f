/**
 * The per-model trace store: runs by id, streamed pieces per run, totals, handler errors.
 *
 * Fed by the `snapshot` trait and by `delta` / `snapshot` custom messages (see `nbcallbacks/widget.py`).
 * Deltas carry a `base` and a `seq`: one applies only on top of exactly `base`. A delta already covered
 * (`seq <= this.seq`) is ignored, so re-applied deltas are harmless and tokens are appended exactly once. A delta
 * whose base is ahead of the store (a gap: the page loaded mid-stream) is buffered and a resync is requested;
 * the next snapshot (message or trait) newer than the store replaces the state and the buffered deltas that
 * follow it are replayed.
 */
import type { DeltaMsg, HandlerErrorWire, Piece, RunLight, RunWire, Snapshot, Totals } from "./protocol";
import { EMPTY_SELECTION, type Selection } from "./selection";

export type ApplyResult = "applied" | "stale" | "gap";

/** What changed since a listener was last told; listeners merge these until they repaint. */
export interface Change {
  reset: boolean;
  runs: Set<string>;
  newRuns: boolean;
  tokens: Set<string>;
  totals: boolean;
  errors: boolean;
  selection: boolean;
  /** The view's filter (query, errors only, key runs) or the set of runs it matches changed. */
  filter: boolean;
}

export function emptyChange(): Change {
  return {
    reset: false,
    runs: new Set(),
    newRuns: false,
    tokens: new Set(),
    totals: false,
    errors: false,
    selection: false,
    filter: false,
  };
}

/** Fold `b` into `a` (a listener's pending change). */
export function mergeChange(a: Change, b: Change): Change {
  a.reset ||= b.reset;
  a.newRuns ||= b.newRuns;
  a.totals ||= b.totals;
  a.errors ||= b.errors;
  a.selection ||= b.selection;
  a.filter ||= b.filter;
  for (const id of b.runs) a.runs.add(id);
  for (const id of b.tokens) a.tokens.add(id);
  return a;
}

export const EMPTY_TOTALS: Totals = {
  runs: 0,
  running: 0,
  errors: 0,
  tokens: 0,
  tokens_dropped: 0,
  handler_errors: 0,
  dropped_events: 0,
};

const MAX_BUFFERED = 2000;

function isLight(run: RunWire | RunLight): run is RunLight {
  return (run as RunLight).light === true;
}

export class TraceStore {
  seq = 0;
  /** Recorder events reflected by the state. */
  cursor = 0;
  readonly runs = new Map<string, RunWire>();
  /** Run ids in start order (`order`). */
  runIds: string[] = [];
  readonly streams = new Map<string, Piece[]>();
  totals: Totals = { ...EMPTY_TOTALS };
  handlerErrors: HandlerErrorWire[] = [];
  /** The primary selected run (inspector, `selected_run_id`); "" for none. */
  selected = "";
  /** Every selected run (`selected_run_ids`). */
  selection: Selection = EMPTY_SELECTION;
  private selectedSet = new Set<string>();
  /** Set while deltas are missing; cleared by the next newer snapshot. */
  gap = false;
  private buffered: DeltaMsg[] = [];
  private listeners = new Set<(change: Change) => void>();
  /**
   * Browser clock minus kernel clock, in seconds (smallest seen: network delay only adds to it); 0 until a
   * message says. Elapsed times of running runs are measured on the kernel's clock.
   */
  clockOffset: number | null = null;
  /** Called when the store needs a full snapshot (wired to `model.send({type: "resync"})`). */
  onResync: () => void = () => {};

  /** Note the kernel's clock from a message (`time` field). */
  observeKernelTime(kernelTime: number | undefined, browserNow = Date.now() / 1000): void {
    if (typeof kernelTime !== "number" || !Number.isFinite(kernelTime)) return;
    const offset = browserNow - kernelTime;
    if (this.clockOffset === null || offset < this.clockOffset) this.clockOffset = offset;
  }

  /** The kernel's clock now, estimated from the browser's. */
  kernelNow(browserNow = Date.now() / 1000): number {
    return browserNow - (this.clockOffset ?? 0);
  }

  subscribe(listener: (change: Change) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(change: Change): void {
    for (const listener of this.listeners) listener(change);
  }

  /** Load a snapshot (trait or message). Ignored unless newer than the store, or the store has a gap. */
  applySnapshot(snapshot: Partial<Snapshot> | null | undefined): boolean {
    if (!snapshot || typeof snapshot.seq !== "number" || !Array.isArray(snapshot.runs)) return false;
    if (snapshot.seq < this.seq || (snapshot.seq === this.seq && !this.gap)) return false;
    this.runs.clear();
    this.streams.clear();
    this.runIds = [];
    for (const run of snapshot.runs) this.runs.set(run.run_id, run);
    this.sortIds();
    for (const [id, pieces] of Object.entries(snapshot.streams ?? {})) {
      this.streams.set(id, pieces.map((p) => [p[0], p[1]] as Piece));
    }
    this.totals = { ...EMPTY_TOTALS, ...(snapshot.totals ?? {}) };
    this.handlerErrors = [...(snapshot.handler_errors ?? [])];
    this.seq = snapshot.seq;
    this.cursor = snapshot.cursor ?? 0;
    this.gap = false;
    const change = emptyChange();
    change.reset = true;
    change.newRuns = true;
    change.totals = true;
    change.errors = true;
    this.emit(change);
    const pending = this.buffered;
    this.buffered = [];
    for (const delta of pending) this.applyDelta(delta);
    return true;
  }

  /** Apply one delta message; see the module comment for the rules. */
  applyDelta(delta: DeltaMsg): ApplyResult {
    this.observeKernelTime(delta.time);
    if (delta.seq <= this.seq) return "stale";
    if (delta.base !== this.seq || this.gap) {
      if (this.buffered.length < MAX_BUFFERED) this.buffered.push(delta);
      if (!this.gap) {
        this.gap = true;
        this.onResync();
      }
      return "gap";
    }
    const change = emptyChange();
    let outOfOrder = false;
    for (const incoming of delta.runs) {
      const id = incoming.run_id;
      const old = this.runs.get(id);
      if (isLight(incoming)) {
        if (!old) continue;
        const { light: _light, ...fields } = incoming;
        this.runs.set(id, { ...old, ...fields });
      } else {
        if (!old) {
          change.newRuns = true;
          const last = this.runIds[this.runIds.length - 1];
          const lastRun = last === undefined ? undefined : this.runs.get(last);
          if (lastRun && lastRun.order > incoming.order) outOfOrder = true;
          this.runIds.push(id);
        } else if (old.parent_run_id !== incoming.parent_run_id || old.hidden !== incoming.hidden) {
          change.newRuns = true;
        }
        this.runs.set(id, incoming);
      }
      change.runs.add(id);
    }
    if (outOfOrder) this.sortIds();
    for (const [id, pieces] of Object.entries(delta.tokens)) {
      let stream = this.streams.get(id);
      if (!stream) {
        stream = [];
        this.streams.set(id, stream);
      }
      for (const piece of pieces) stream.push([piece[0], piece[1]]);
      change.tokens.add(id);
    }
    this.totals = { ...EMPTY_TOTALS, ...delta.totals };
    change.totals = true;
    if (delta.handler_errors.length) {
      this.handlerErrors = [...this.handlerErrors, ...delta.handler_errors];
      change.errors = true;
    }
    this.seq = delta.seq;
    this.cursor = delta.cursor ?? this.cursor;
    this.emit(change);
    return "applied";
  }

  /** Select one run (or none with ""). */
  select(runId: string): void {
    if (runId === this.selected && this.selection.ids.length === (runId ? 1 : 0)) return;
    this.setSelection(runId ? { ids: [runId], primary: runId, anchor: runId } : EMPTY_SELECTION);
  }

  setSelection(selection: Selection): void {
    const same =
      selection.primary === this.selected &&
      selection.ids.length === this.selection.ids.length &&
      selection.ids.every((id, i) => this.selection.ids[i] === id);
    this.selection = selection;
    if (same) return;
    this.selected = selection.primary;
    this.selectedSet = new Set(selection.ids);
    const change = emptyChange();
    change.selection = true;
    this.emit(change);
  }

  isSelected(runId: string): boolean {
    return this.selectedSet.has(runId);
  }

  /** The streamed text of a run, all kinds joined (for tests and copy). */
  text(runId: string, kind?: Piece[0]): string {
    const pieces = this.streams.get(runId) ?? [];
    return pieces
      .filter((p) => kind === undefined || p[0] === kind)
      .map((p) => p[1])
      .join("");
  }

  orderedRuns(): RunWire[] {
    const out: RunWire[] = [];
    for (const id of this.runIds) {
      const run = this.runs.get(id);
      if (run) out.push(run);
    }
    return out;
  }

  private sortIds(): void {
    this.runIds = [...this.runs.values()].sort((a, b) => a.order - b.order).map((r) => r.run_id);
  }
}
