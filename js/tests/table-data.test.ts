import { describe, expect, it } from "vitest";
import { compareValues, groupRows, percentile, sortRows, type TimingRow, timingRow } from "../src/table-data";
import { runWire } from "./fixtures";


const row = (id: string, order: number, name: string, d: number | null): TimingRow => ({
  id,
  name,
  type: "tool",
  start: order,
  duration: d,
  ttft: null,
  tokensIn: null,
  tokensOut: null,
  rate: null,
  cost: null,
  costUnknown: false,
  order,
});

describe("timingRow", () => {
  it("takes offsets, durations and rates from the kernel's fields", () => {
    const r = timingRow(
      runWire({ start: 102, end: 104, start_offset_s: 2, duration_s: 2, ttft_s: 0.5, tokens_per_s: 4, streamed_chunks: 8, input_tokens: 3 }),
    );
    expect(r.start).toBe(2);
    expect(r.duration).toBe(2);
    expect(r.ttft).toBe(0.5);
    expect(r.tokensOut).toBe(8);
    expect(r.tokensIn).toBe(3);
    expect(r.rate).toBe(4);
  });
});

describe("timingRow cost", () => {
  it("is the run's cost with its descendants, and unknown only for a finished model call without a price", () => {
    expect(timingRow(runWire({ run_type: "chain", cost_usd_total: 0.25 })).cost).toBe(0.25);
    const unpriced = timingRow(runWire({ run_type: "chat_model", status: "ok", cost_usd: null }));
    expect([unpriced.cost, unpriced.costUnknown]).toEqual([null, true]);
    expect(timingRow(runWire({ run_type: "chat_model", status: "running", cost_usd: null })).costUnknown).toBe(false);
    expect(timingRow(runWire({ run_type: "tool", cost_usd: null })).costUnknown).toBe(false);
  });
});

describe("sortRows", () => {
  const rows = [row("a", 0, "b", 2), row("b", 1, "a", 1), row("c", 2, "B", 2), row("d", 3, "c", null)];
  it("sorts ascending and descending, keeping ties in start order (stable)", () => {
    expect(sortRows(rows, "duration", "asc").map((r) => r.id)).toEqual(["b", "a", "c", "d"]);
    expect(sortRows(rows, "duration", "desc").map((r) => r.id)).toEqual(["a", "c", "b", "d"]);
  });
  it("sorts names case-insensitively and missing values last both ways", () => {
    expect(sortRows(rows, "name", "asc").map((r) => r.id)).toEqual(["b", "a", "c", "d"]);
    expect(compareValues(null, 1, "asc")).toBe(1);
    expect(compareValues(null, 1, "desc")).toBe(1);
    expect(compareValues("x2", "x10", "asc")).toBeLessThan(0);
  });
  it("does not mutate its input", () => {
    const before = rows.map((r) => r.id);
    sortRows(rows, "name", "desc");
    expect(rows.map((r) => r.id)).toEqual(before);
  });
});

describe("percentile and grouping", () => {
  it("interpolates linearly like numpy", () => {
    expect(percentile([1, 2, 3, 4], 50)).toBe(2.5);
    expect(percentile([5], 95)).toBe(5);
    expect(percentile([], 50)).toBeNull();
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 95)).toBeCloseTo(9.55);
    expect(percentile([3, 1, 2], 0)).toBe(1);
    expect(percentile([3, 1, 2], 100)).toBe(3);
  });
  it("groups by name with count, total, mean and percentiles of finished runs", () => {
    const groups = groupRows([row("a", 0, "x", 1), row("b", 1, "y", 4), row("c", 2, "x", 3), row("d", 3, "x", null)], "name");
    expect(groups.map((g) => g.key)).toEqual(["x", "y"]);
    const x = groups[0]!;
    expect(x.count).toBe(3);
    expect(x.finished).toBe(2);
    expect(x.total).toBe(4);
    expect(x.mean).toBe(2);
    expect(x.p50).toBe(2);
    expect(x.p95).toBeCloseTo(2.9);
    const byType = groupRows([row("a", 0, "x", 1)], "type");
    expect(byType[0]?.key).toBe("tool");
  });
});
