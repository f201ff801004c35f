import { describe, expect, it } from "vitest";
import type { DeltaMsg, Piece, RunWire, Snapshot, Totals } from "../src/protocol";
import { type Change, EMPTY_TOTALS, emptyChange, mergeChange, TraceStore } from "../src/store";
import { runWire } from "./fixtures";

const totals: Totals = EMPTY_TOTALS;

function wire(run_id: string, order: number, over: Partial<RunWire> = {}): RunWire {
  return runWire({ run_id, order, name: run_id, run_type: "chat_model", status: "running", start: 1, end: null, ...over });
}

function delta(base: number, seq: number, over: Partial<DeltaMsg> = {}): DeltaMsg {
  return {
    type: "delta",
    base,
    seq,
    cursor: seq * 10,
    runs: [],
    tokens: {},
    totals,
    handler_errors: [],
    dropped_events: 0,
    ...over,
  };
}

function snapshot(seq: number, runs: RunWire[], streams: Record<string, Piece[]> = {}): Snapshot {
  return { schema: 1, seq, cursor: seq * 10, runs, streams, totals: { ...totals, runs: runs.length }, handler_errors: [] };
}

const tok = (text: string, kind: Piece[0] = "text"): Piece => [kind, text];

describe("TraceStore clock", () => {
  it("estimates the kernel's clock from message times, keeping the smallest offset", () => {
    const s = new TraceStore();
    expect(s.kernelNow(100)).toBe(100); // unknown: assume the same clock
    s.observeKernelTime(40, 100.5); // 0.5 s of delay on top of a 60 s skew
    s.observeKernelTime(50, 110.1);
    s.observeKernelTime(undefined, 500);
    s.observeKernelTime(Number.NaN, 500);
    expect(s.clockOffset).toBeCloseTo(60.1);
    expect(s.kernelNow(200)).toBeCloseTo(139.9);
    s.applyDelta({ ...delta(0, 1), time: Date.now() / 1000 - 30 });
    expect(s.clockOffset).toBeLessThan(60.1);
  });
});

describe("TraceStore deltas", () => {
  it("applies consecutive deltas and appends tokens once", () => {
    const s = new TraceStore();
    expect(s.applyDelta(delta(0, 2, { runs: [wire("m", 0)], tokens: { m: [tok("Hel")] } }))).toBe("applied");
    expect(s.applyDelta(delta(2, 5, { tokens: { m: [tok("lo"), tok("{", "tool_call")] } }))).toBe("applied");
    expect(s.text("m")).toBe("Hello{");
    expect(s.text("m", "tool_call")).toBe("{");
    expect(s.seq).toBe(5);
    expect(s.cursor).toBe(50);
  });

  it("ignores a re-applied delta (idempotent)", () => {
    const s = new TraceStore();
    const d = delta(0, 3, { runs: [wire("m", 0)], tokens: { m: [tok("abc")] } });
    s.applyDelta(d);
    expect(s.applyDelta(d)).toBe("stale");
    expect(s.applyDelta(delta(0, 1))).toBe("stale");
    expect(s.text("m")).toBe("abc");
  });

  it("merges light updates into the known run", () => {
    const s = new TraceStore();
    s.applyDelta(delta(0, 1, { runs: [wire("m", 0, { inputs: { big: "payload" } })] }));
    s.applyDelta(
      delta(1, 2, {
        runs: [
          {
            run_id: "m",
            status: "running",
            display_status: "running",
            streamed_chunks: 7,
            first_token: 2,
            ttft_s: 1,
            chunks_not_kept: 0,
            light: true,
          },
        ],
      }),
    );
    const run = s.runs.get("m");
    expect(run?.streamed_chunks).toBe(7);
    expect(run?.inputs).toEqual({ big: "payload" });
    expect(run && "light" in run).toBe(false);
  });

  it("keeps start order when a run arrives out of order", () => {
    const s = new TraceStore();
    s.applyDelta(delta(0, 1, { runs: [wire("b", 1)] }));
    s.applyDelta(delta(1, 2, { runs: [wire("a", 0)] }));
    expect(s.runIds).toEqual(["a", "b"]);
    expect(s.orderedRuns().map((r) => r.run_id)).toEqual(["a", "b"]);
  });

  it("detects a gap, asks for a resync once, then replays buffered deltas after the snapshot", () => {
    const s = new TraceStore();
    let resyncs = 0;
    s.onResync = () => resyncs++;
    s.applyDelta(delta(0, 2, { runs: [wire("m", 0)], tokens: { m: [tok("a")] } }));
    // Deltas 2..4 were missed (page reloaded mid-stream).
    expect(s.applyDelta(delta(4, 6, { tokens: { m: [tok("d")] } }))).toBe("gap");
    expect(s.applyDelta(delta(6, 7, { tokens: { m: [tok("e")] } }))).toBe("gap");
    expect(resyncs).toBe(1);
    expect(s.text("m")).toBe("a");
    // An older snapshot does not help; a snapshot at 4 does, and the buffered 4->6->7 follow.
    expect(s.applySnapshot(snapshot(1, [wire("m", 0)]))).toBe(false);
    expect(s.applySnapshot(snapshot(4, [wire("m", 0)], { m: [tok("abc")] }))).toBe(true);
    expect(s.gap).toBe(false);
    expect(s.text("m")).toBe("abcde");
    expect(s.seq).toBe(7);
  });

  it("a snapshot newer than the buffered deltas drops the covered ones", () => {
    const s = new TraceStore();
    s.applyDelta(delta(3, 5, { runs: [wire("m", 0)], tokens: { m: [tok("x")] } }));
    expect(s.gap).toBe(true);
    s.applySnapshot(snapshot(5, [wire("m", 0)], { m: [tok("abcx")] }));
    expect(s.text("m")).toBe("abcx");
    expect(s.seq).toBe(5);
  });

  it("treats a delta overlapping the store as a gap rather than duplicating text", () => {
    const s = new TraceStore();
    s.applyDelta(delta(0, 4, { runs: [wire("m", 0)], tokens: { m: [tok("abcd")] } }));
    expect(s.applyDelta(delta(2, 6, { tokens: { m: [tok("cdef")] } }))).toBe("gap");
    expect(s.text("m")).toBe("abcd");
  });

  it("loads a snapshot trait only when newer, and ignores an empty one", () => {
    const s = new TraceStore();
    expect(s.applySnapshot({})).toBe(false);
    expect(s.applySnapshot(snapshot(3, [wire("a", 0)], { a: [tok("hi")] }))).toBe(true);
    expect(s.applySnapshot(snapshot(3, [wire("a", 0)], { a: [tok("hi")] }))).toBe(false);
    s.applyDelta(delta(3, 4, { tokens: { a: [tok("!")] } }));
    expect(s.text("a")).toBe("hi!");
    expect(s.applySnapshot(snapshot(3, [wire("a", 0)]))).toBe(false);
  });

  it("notifies listeners with what changed", () => {
    const s = new TraceStore();
    const seen: Change[] = [];
    const off = s.subscribe((c) => seen.push(c));
    s.applyDelta(delta(0, 1, { runs: [wire("m", 0)], tokens: { m: [tok("x")] } }));
    s.applyDelta(delta(1, 2, { handler_errors: [{ time: 1, where: "handler", error: "E", traceback: "" }] }));
    s.select("m");
    off();
    s.select("");
    expect(seen.length).toBe(3);
    expect(seen[0]?.newRuns).toBe(true);
    expect([...(seen[0]?.tokens ?? [])]).toEqual(["m"]);
    expect(seen[1]?.errors).toBe(true);
    expect(s.handlerErrors.length).toBe(1);
    expect(seen[2]?.selection).toBe(true);
    const merged = mergeChange(emptyChange(), seen[0]!);
    mergeChange(merged, seen[2]!);
    expect(merged.selection && merged.newRuns).toBe(true);
  });
});
