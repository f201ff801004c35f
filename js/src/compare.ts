/**
 * The Compare panel's row model (pure, no DOM): the kernel's `comparison` message (`nbcallbacks/compare_wire.py`,
 * rows of `nbcallbacks.comparison.compare`) turned into what each aligned row shows: per side the run's status,
 * duration, tokens and cost and its waterfall bar on one time scale shared by both sides (each side's times count
 * from its own first start), the deltas (B - A) with whether they are worse or better, and what differs.
 */
import { formatCount, formatDuration, formatUsd } from "./format";
import { MODEL_RUN_TYPES } from "./protocol";

/** One aligned pair as the kernel sends it (`COMPARE_COLUMNS` plus each side's start offset). */
export interface CompareRowWire {
  path: string;
  name: string;
  run_type: string;
  depth: number;
  only_in: "a" | "b" | null;
  run_id_a: string | null;
  run_id_b: string | null;
  status_a: string | null;
  status_b: string | null;
  duration_s_a: number | null;
  duration_s_b: number | null;
  duration_delta_s: number | null;
  total_tokens_a: number | null;
  total_tokens_b: number | null;
  tokens_delta: number | null;
  cost_usd_a: number | null;
  cost_usd_b: number | null;
  cost_delta_usd: number | null;
  output_a: string | null;
  output_b: string | null;
  /** Seconds after this side's first start (null on the missing side). */
  start_s_a: number | null;
  start_s_b: number | null;
}

/** The kernel's answer to `{"type": "compare", "a", "b", "request"}`. */
export interface ComparisonMsg {
  type: "comparison";
  request: string;
  a: string;
  b: string;
  labels?: [string, string];
  /** Each compared run's input preview (what tells two invocations of one chain apart). */
  inputs?: [string, string];
  total_rows?: number;
  truncated?: boolean;
  note?: string;
  rows: CompareRowWire[];
  error?: string;
}

export type Side = "a" | "b";

export interface SideCell {
  runId: string;
  status: string;
  /** "1.23 s · 345 tok · $0.000120" (cost for model runs only; "price unknown" when the kernel has none). */
  meta: string;
  duration: number | null;
  tokens: number | null;
  cost: number | null;
  output: string;
  /** The waterfall bar as fractions of the shared scale, or null without a start. */
  bar: { left: number; width: number } | null;
}

export interface Delta {
  kind: "duration" | "tokens" | "cost";
  text: string;
  /** More time, tokens or money on B's side is worse. */
  tone: "worse" | "better";
}

export interface CompareRow {
  index: number;
  path: string;
  name: string;
  runType: string;
  depth: number;
  only: Side | null;
  a: SideCell | null;
  b: SideCell | null;
  deltas: Delta[];
  /** What differs between two paired runs: "status", "output". */
  marks: string[];
}

export interface SideSummary {
  label: string;
  /** The compared run's input preview ("" when unknown). */
  input: string;
  runs: number;
  /** First start to last end of this side, seconds. */
  span: number;
  tokens: number;
  /** Sum of the known model-run costs; null when none is known. */
  cost: number | null;
  unpriced: number;
  errors: number;
}

export interface CompareModel {
  rows: CompareRow[];
  a: SideSummary;
  b: SideSummary;
  onlyA: number;
  onlyB: number;
  /** Seconds the bars' width stands for: the longer side's span. */
  scale: number;
}

/** The two runs a Compare button compares: exactly two selected, in selection order; else null. */
export function comparePair(ids: readonly string[]): [string, string] | null {
  if (ids.length !== 2) return null;
  const [a, b] = ids as [string, string];
  return a && b && a !== b ? [a, b] : null;
}

const num = (x: unknown): number | null => (typeof x === "number" && Number.isFinite(x) ? x : null);

function pick(row: CompareRowWire, side: Side) {
  return {
    runId: side === "a" ? row.run_id_a : row.run_id_b,
    status: side === "a" ? row.status_a : row.status_b,
    duration: num(side === "a" ? row.duration_s_a : row.duration_s_b),
    tokens: num(side === "a" ? row.total_tokens_a : row.total_tokens_b),
    cost: num(side === "a" ? row.cost_usd_a : row.cost_usd_b),
    output: (side === "a" ? row.output_a : row.output_b) ?? "",
    start: num(side === "a" ? row.start_s_a : row.start_s_b),
  };
}

/** Seconds from a side's first start to its last end. */
export function sideSpan(rows: readonly CompareRowWire[], side: Side): number {
  let span = 0;
  for (const row of rows) {
    const { runId, start, duration } = pick(row, side);
    if (runId === null || start === null) continue;
    span = Math.max(span, start + (duration ?? 0));
  }
  return span;
}

const clamp = (x: number): number => (x < 0 ? 0 : x > 1 ? 1 : x);

/** Where a run's bar sits on the shared scale (fractions 0..1). */
export function barOn(start: number | null, duration: number | null, scale: number): { left: number; width: number } | null {
  if (start === null) return null;
  if (!(scale > 0)) return { left: 0, width: 1 };
  const left = clamp(start / scale);
  return { left, width: Math.max(0, clamp((start + (duration ?? 0)) / scale) - left) };
}

const MINUS = "\u2212";

/** A signed difference: "+0.12 s", "−35 tok", "+$0.000012"; null when it is missing or (practically) zero. */
export function formatDelta(value: number | null, kind: Delta["kind"]): Delta | null {
  if (value === null || !Number.isFinite(value)) return null;
  if (kind === "duration" ? Math.abs(value) < 0.00005 : value === 0) return null;
  const sign = value > 0 ? "+" : MINUS;
  const size = Math.abs(value);
  const text = kind === "duration" ? formatDuration(size) : kind === "tokens" ? `${formatCount(size)} tok` : formatUsd(size);
  return { kind, text: sign + text, tone: value > 0 ? "worse" : "better" };
}

function cell(row: CompareRowWire, side: Side, scale: number): SideCell | null {
  const s = pick(row, side);
  if (s.runId === null) return null;
  const bits = [formatDuration(s.duration)];
  if (s.tokens !== null) bits.push(`${formatCount(s.tokens)} tok`);
  if (MODEL_RUN_TYPES.has(row.run_type)) bits.push(s.cost === null ? "price unknown" : formatUsd(s.cost));
  return {
    runId: s.runId,
    status: s.status ?? "",
    meta: bits.join(" · "),
    duration: s.duration,
    tokens: s.tokens,
    cost: s.cost,
    output: s.output,
    bar: barOn(s.start, s.duration, scale),
  };
}

function summary(rows: readonly CompareRowWire[], side: Side, label: string, input: string): SideSummary {
  const out: SideSummary = { label, input, runs: 0, span: sideSpan(rows, side), tokens: 0, cost: null, unpriced: 0, errors: 0 };
  for (const row of rows) {
    const s = pick(row, side);
    if (s.runId === null) continue;
    out.runs += 1;
    out.tokens += s.tokens ?? 0;
    if (s.status === "error") out.errors += 1;
    if (MODEL_RUN_TYPES.has(row.run_type)) {
      if (s.cost === null) out.unpriced += 1;
      else out.cost = (out.cost ?? 0) + s.cost;
    }
  }
  return out;
}

/** The panel's model of a comparison message. */
export function compareModel(msg: Pick<ComparisonMsg, "rows" | "labels" | "inputs">): CompareModel {
  const rows = Array.isArray(msg.rows) ? msg.rows : [];
  const [labelA, labelB] = msg.labels ?? ["A", "B"];
  const [inputA, inputB] = msg.inputs ?? ["", ""];
  const a = summary(rows, "a", String(labelA), typeof inputA === "string" ? inputA : "");
  const b = summary(rows, "b", String(labelB), typeof inputB === "string" ? inputB : "");
  const scale = Math.max(a.span, b.span);
  let onlyA = 0;
  let onlyB = 0;
  const out = rows.map((row, index): CompareRow => {
    const only = row.only_in === "a" || row.only_in === "b" ? row.only_in : null;
    if (only === "a") onlyA += 1;
    if (only === "b") onlyB += 1;
    const ca = cell(row, "a", scale);
    const cb = cell(row, "b", scale);
    const marks: string[] = [];
    if (ca && cb) {
      if (ca.status !== cb.status) marks.push("status");
      if (ca.output !== cb.output) marks.push("output");
    }
    const deltas = [
      formatDelta(num(row.duration_delta_s), "duration"),
      formatDelta(num(row.tokens_delta), "tokens"),
      formatDelta(num(row.cost_delta_usd), "cost"),
    ].filter((d): d is Delta => d !== null);
    return {
      index,
      path: String(row.path ?? ""),
      name: String(row.name ?? ""),
      runType: String(row.run_type ?? ""),
      depth: Math.max(0, Math.floor(num(row.depth) ?? 0)),
      only,
      a: ca,
      b: cb,
      deltas,
      marks,
    };
  });
  return { rows: out, a, b, onlyA, onlyB, scale };
}

/** "9 runs · 1.23 s · 345 tokens · $0.0012" (cost: "≥ …" when some model runs have no price). */
export function summaryText(s: SideSummary): string {
  let cost = s.cost === null ? "price unknown" : formatUsd(s.cost);
  if (s.cost !== null && s.unpriced) cost = `≥ ${cost} (${s.unpriced} unpriced)`;
  const parts = [`${formatCount(s.runs)} ${s.runs === 1 ? "run" : "runs"}`, formatDuration(s.span), `${formatCount(s.tokens)} tokens`];
  if (s.cost !== null || s.unpriced) parts.push(cost);
  if (s.errors) parts.push(`${formatCount(s.errors)} ${s.errors === 1 ? "error" : "errors"}`);
  return parts.join(" · ");
}

/** A piece of one side's text: `changed` when it is not in the other side's (removed from A, added in B). */
export interface DiffSeg {
  text: string;
  changed: boolean;
}

const WORD = /\s+|[\p{L}\p{N}_]+|[^\s\p{L}\p{N}_]/gu;
/** Largest word table (words of A × words of B) diffed; longer texts are shown without marks. */
const MAX_DIFF_CELLS = 250_000;

function pushSeg(out: DiffSeg[], text: string, changed: boolean): void {
  const last = out[out.length - 1];
  if (last && last.changed === changed) last.text += text;
  else out.push({ text, changed });
}

/**
 * Word diff of two texts (a longest common subsequence of words): A's words not kept in B are `changed` on A's
 * side, B's words not in A on B's side. Null when the texts are too long to diff here.
 */
export function wordDiff(a: string, b: string): { a: DiffSeg[]; b: DiffSeg[] } | null {
  const wa = a.match(WORD) ?? [];
  const wb = b.match(WORD) ?? [];
  const n = wa.length;
  const m = wb.length;
  if ((n + 1) * (m + 1) > MAX_DIFF_CELLS) return null;
  const width = m + 1;
  const table = new Uint32Array((n + 1) * width); // table[i][j]: LCS length of wa[i:], wb[j:]
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      table[i * width + j] =
        wa[i] === wb[j]
          ? (table[(i + 1) * width + j + 1] as number) + 1
          : Math.max(table[(i + 1) * width + j] as number, table[i * width + j + 1] as number);
    }
  }
  const outA: DiffSeg[] = [];
  const outB: DiffSeg[] = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    const x = wa[i] as string;
    const y = wb[j] as string;
    if (x === y) {
      pushSeg(outA, x, false);
      pushSeg(outB, y, false);
      i++;
      j++;
    } else if ((table[(i + 1) * width + j] as number) >= (table[i * width + j + 1] as number)) {
      pushSeg(outA, x, true);
      i++;
    } else {
      pushSeg(outB, y, true);
      j++;
    }
  }
  for (; i < n; i++) pushSeg(outA, wa[i] as string, true);
  for (; j < m; j++) pushSeg(outB, wb[j] as string, true);
  return { a: outA, b: outB };
}
