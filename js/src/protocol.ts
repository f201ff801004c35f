/**
 * Types of the synced traits and custom messages; mirrors `nbcallbacks/widget.py` and `nbcallbacks/mirror.py`.
 * The run dictionary (`RunWire`) is generated from the field table (`nbcallbacks/schema.py`).
 */

import type { ComparisonMsg } from "./compare";
import type { DisplayStatus, RunWire, Status } from "./generated/schema";

export type { DisplayStatus, RunWire, Status };
export type TokenKind = "text" | "tool_call" | "reasoning";
export type Piece = [TokenKind, string];

/** A run touched only by streamed tokens since the previous delta (`nbcallbacks.mirror.LIGHT_FIELDS`). */
export interface RunLight {
  run_id: string;
  status: Status;
  display_status: DisplayStatus;
  streamed_chunks: number;
  first_token: number | null;
  ttft_s: number | null;
  chunks_not_kept: number;
  light: true;
}

export interface Totals {
  runs: number;
  running: number;
  errors: number;
  /** Streamed chunks received. */
  tokens: number;
  /** Input + output tokens reported by the models (absent in snapshots saved by older versions). */
  usage_tokens?: number;
  tokens_dropped: number;
  /** Sum of the known model-run costs (USD); null when no run has a known price. */
  cost_usd?: number | null;
  handler_errors: number;
  dropped_events: number;
}

export interface HandlerErrorWire {
  time: number;
  where: string;
  error: string;
  traceback: string;
}

/** The `snapshot` trait: the whole trace at `seq`. An empty object before the first flush. */
export interface Snapshot {
  schema: number;
  /** Delta messages sent before this state (a delta with `base === seq` follows it). */
  seq: number;
  /** Recorder events reflected (`Recorder.event_count` once everything is sent). */
  cursor: number;
  runs: RunWire[];
  streams: Record<string, Piece[]>;
  totals: Totals;
  handler_errors: HandlerErrorWire[];
}

export interface DeltaMsg {
  type: "delta";
  base: number;
  /** Always `base + 1`. */
  seq: number;
  cursor: number;
  /** The kernel's clock at sending (seconds since the epoch). */
  time?: number;
  runs: Array<RunWire | RunLight>;
  tokens: Record<string, Piece[]>;
  totals: Totals;
  handler_errors: HandlerErrorWire[];
  dropped_events: number;
}

export interface SnapshotMsg extends Snapshot {
  type: "snapshot";
  time?: number;
}

export type InboundMsg = DeltaMsg | SnapshotMsg | ComparisonMsg;
/**
 * `hello` says which delta sequence the loaded state is at; Python sends a snapshot only if that is behind.
 * `compare` asks for a `comparison` message (`ComparisonMsg`, echoing `request`) aligning runs `a` and `b`.
 */
export type OutboundMsg =
  | { type: "hello"; seq: number }
  | { type: "resync" }
  | { type: "compare"; a: string; b: string; request: string };

/** Synced traits of `TraceWidget`. */
export interface WidgetModel {
  snapshot: Partial<Snapshot>;
  selected_run_id: string;
  /** Every selected run (ctrl/shift-click); contains `selected_run_id` when that is set. */
  selected_run_ids: string[];
  title: string;
  /** Random id of the Python widget; the views of one model share a store through it. */
  _uid: string;
}

export const MODEL_RUN_TYPES: ReadonlySet<string> = new Set(["llm", "chat_model"]);

export function isModelRun(run: Pick<RunWire, "run_type">): boolean {
  return MODEL_RUN_TYPES.has(run.run_type);
}

/** A model call that is over (not running) without a known price: shown as "price unknown", never as $0. */
export function isPriceUnknown(run: Pick<RunWire, "run_type" | "cost_usd" | "status">): boolean {
  return isModelRun(run) && run.cost_usd === null && run.status !== "running";
}
