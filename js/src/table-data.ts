/** Pure data for the timing table: row values, stable sorting, grouping with percentiles. */
import { isPriceUnknown, type RunWire } from "./protocol";

export interface TimingRow {
  id: string;
  name: string;
  type: string;
  start: number;
  duration: number | null;
  ttft: number | null;
  tokensIn: number | null;
  tokensOut: number | null;
  rate: number | null;
  /** USD of the run and its descendants (`cost_usd_total`); null when none is known. */
  cost: number | null;
  /** A finished model call whose price is unknown (shown as such, never as $0). */
  costUnknown: boolean;
  order: number;
}

export type SortDir = "asc" | "desc";

/** A run's row, from the kernel's derived fields (a running run has no duration or rate yet). */
export function timingRow(run: RunWire): TimingRow {
  return {
    id: run.run_id,
    name: run.name,
    type: run.run_type,
    start: run.start_offset_s,
    duration: run.duration_s,
    ttft: run.ttft_s,
    tokensIn: run.input_tokens,
    tokensOut: run.output_tokens ?? (run.streamed_chunks > 0 ? run.streamed_chunks : null),
    rate: run.tokens_per_s,
    cost: run.cost_usd_total,
    costUnknown: isPriceUnknown(run),
    order: run.order,
  };
}

type Value = string | number | null;

/** Compare two values: strings case-insensitively, numbers numerically; missing values always sort last. */
export function compareValues(a: Value, b: Value, dir: SortDir): number {
  if (a === null && b === null) return 0;
  if (a === null) return 1;
  if (b === null) return -1;
  let c: number;
  if (typeof a === "number" && typeof b === "number") c = a - b;
  else c = String(a).localeCompare(String(b), undefined, { sensitivity: "base", numeric: true });
  return dir === "asc" ? c : -c;
}

/** Stable sort by one key (ties keep start order). Returns a new array. */
export function sortRows<T extends { order: number }>(rows: readonly T[], key: keyof T, dir: SortDir): T[] {
  return rows
    .map((row, index) => ({ row, index }))
    .sort((x, y) => {
      const c = compareValues(x.row[key] as Value, y.row[key] as Value, dir);
      return c !== 0 ? c : x.index - y.index;
    })
    .map((entry) => entry.row);
}

/** Percentile with linear interpolation between closest ranks (NumPy's default); `null` for no values. */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (Math.min(100, Math.max(0, p)) / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  const a = sorted[lo] as number;
  const b = sorted[hi] as number;
  return a + (b - a) * (rank - lo);
}

export interface GroupRow {
  id: string;
  key: string;
  count: number;
  finished: number;
  total: number | null;
  mean: number | null;
  p50: number | null;
  p95: number | null;
  order: number;
}

export type GroupBy = "name" | "type";

/** One row per name (or run type): count, and total/mean/p50/p95 of finished runs' durations. */
export function groupRows(rows: readonly TimingRow[], by: GroupBy): GroupRow[] {
  const groups = new Map<string, { first: number; count: number; durations: number[] }>();
  for (const row of rows) {
    const key = by === "name" ? row.name : row.type;
    let g = groups.get(key);
    if (!g) {
      g = { first: row.order, count: 0, durations: [] };
      groups.set(key, g);
    }
    g.count++;
    if (row.duration !== null) g.durations.push(row.duration);
  }
  const out: GroupRow[] = [];
  for (const [key, g] of groups) {
    const total = g.durations.length ? g.durations.reduce((s, d) => s + d, 0) : null;
    out.push({
      id: `${by}:${key}`,
      key,
      count: g.count,
      finished: g.durations.length,
      total,
      mean: total === null ? null : total / g.durations.length,
      p50: percentile(g.durations, 50),
      p95: percentile(g.durations, 95),
      order: g.first,
    });
  }
  return out.sort((a, b) => a.order - b.order);
}
