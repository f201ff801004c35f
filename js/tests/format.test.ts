import { describe, expect, it } from "vitest";
import { formatCount, formatDuration, formatRate, formatSeconds, formatUsd, plural } from "../src/format";
import { elapsed } from "../src/metrics";
import { wallTime } from "../src/waterfall";

describe("formatCount", () => {
  it("groups thousands independently of locale", () => {
    expect(formatCount(0)).toBe("0");
    expect(formatCount(999)).toBe("999");
    expect(formatCount(1000)).toBe("1,000");
    expect(formatCount(12345)).toBe("12,345");
    expect(formatCount(1234567)).toBe("1,234,567");
    expect(formatCount(-1234)).toBe("-1,234");
    expect(formatCount(null)).toBe("–");
    expect(formatCount(Number.NaN)).toBe("–");
  });
  it("pluralises", () => {
    expect(plural(1, "run")).toBe("1 run");
    expect(plural(12345, "token")).toBe("12,345 tokens");
  });
});

describe("formatDuration", () => {
  it("picks a readable unit", () => {
    expect(formatDuration(0.0032)).toBe("3.2 ms");
    expect(formatDuration(0.85)).toBe("850 ms");
    expect(formatDuration(1.234)).toBe("1.23 s");
    expect(formatDuration(12.46)).toBe("12.5 s");
    expect(formatDuration(125)).toBe("2m 05s");
    expect(formatDuration(3720)).toBe("1h 02m");
    expect(formatDuration(null)).toBe("–");
    expect(formatDuration(-1)).toBe("0.0 ms");
  });
  it("formats offsets and rates", () => {
    expect(formatSeconds(1.5)).toBe("1.500 s");
    expect(formatRate(45.25)).toBe("45.3/s");
    expect(formatRate(1234.5)).toBe("1,235/s");
    expect(formatRate(null)).toBe("–");
  });
});

describe("run metrics", () => {
  it("takes the kernel's duration, and measures only a running run up to now", () => {
    expect(elapsed({ start: 10, duration_s: 2, display_status: "ok" }, 50)).toBe(2);
    expect(elapsed({ start: 10, duration_s: null, display_status: "abandoned" }, 50)).toBeNull();
    expect(elapsed({ start: 10, duration_s: null, display_status: "running" }, 13)).toBe(3);
    expect(elapsed({ start: 10, duration_s: null, display_status: "running" }, 9)).toBe(0);
  });
  it("measures wall time up to now while live, ignoring abandoned runs", () => {
    const runs = [
      { start: 10, end: 12, display_status: "ok" as const },
      { start: 11, end: null, display_status: "running" as const },
    ];
    expect(wallTime(runs, 20)).toBe(10);
    expect(wallTime([{ ...runs[1]!, display_status: "abandoned" as const }, runs[0]!], 20)).toBe(2);
    expect(wallTime([], 5)).toBeNull();
  });
});

describe("formatUsd", () => {
  it("keeps the digits small amounts need", () => {
    expect(formatUsd(0.000115)).toBe("$0.000115");
    expect(formatUsd(0.0421)).toBe("$0.0421");
    expect(formatUsd(3.5)).toBe("$3.50");
    expect(formatUsd(0)).toBe("$0.00");
    expect(formatUsd(null)).toBe("–");
  });
});
