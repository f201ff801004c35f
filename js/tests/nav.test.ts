import { describe, expect, it } from "vitest";
import { NavFilter } from "../src/filter";
import type { RunWire } from "../src/protocol";
import { haystackOf, highlightRanges, matches, parseQuery } from "../src/query";
import { clickSelect, EMPTY_SELECTION, fromIds } from "../src/selection";
import { buildForest, closure, flatten } from "../src/tree";
import { barOf, runScope, TraceSpan, traceScope } from "../src/waterfall";
import { runWire } from "./fixtures";

const all = () => true;

describe("parseQuery", () => {
  it("splits terms on spaces, lower-cases them, and knows the fields", () => {
    expect(parseQuery("  Type:Tool  status:ERROR weather ").terms).toEqual([
      { field: "type", value: "tool" },
      { field: "status", value: "error" },
      { field: null, value: "weather" },
    ]);
    expect(parseQuery('name:"get weather" node:agent model:gpt tag:x error:Value').terms).toEqual([
      { field: "name", value: "get weather" },
      { field: "node", value: "agent" },
      { field: "model", value: "gpt" },
      { field: "tag", value: "x" },
      { field: "error", value: "value" },
    ]);
  });

  it("keeps an unknown field and a URL as free text, and drops empty values", () => {
    expect(parseQuery("foo:bar http://x type:").terms).toEqual([
      { field: null, value: "foo:bar" },
      { field: null, value: "http://x" },
    ]);
    expect(parseQuery("").terms).toEqual([]);
  });
});

describe("matching", () => {
  const tool = runWire({
    name: "get_weather",
    run_type: "tool",
    status: "error",
    langgraph_node: "tools",
    tags: ["seq:step:1", "Weather"],
    error: "bad input",
    error_type: "ValueError",
  });
  const hay = haystackOf(tool);
  const m = (q: string) => matches(parseQuery(q), hay);

  it("matches free text anywhere and field terms only in their field, all terms (AND)", () => {
    expect(m("weather")).toBe(true);
    expect(m("WEATHER tool")).toBe(true);
    expect(m("valueerror")).toBe(true);
    expect(m("type:tool status:error node:tools")).toBe(true);
    expect(m("tag:weather error:bad")).toBe(true);
    expect(m("type:chain")).toBe(false);
    expect(m("weather missing")).toBe(false);
    expect(m("model:gpt")).toBe(false);
    expect(m("name:tools")).toBe(false); // the node is not the name
  });

  it("never matches across two fields", () => {
    expect(m("weathertool")).toBe(false);
  });

  it("matches status against the display status Python sends (abandoned, interrupted)", () => {
    expect(matches(parseQuery("status:abandoned"), haystackOf(runWire({ status: "running", display_status: "abandoned" })))).toBe(true);
    expect(matches(parseQuery("status:running"), haystackOf(runWire({ status: "running", display_status: "abandoned" })))).toBe(false);
    expect(matches(parseQuery("status:interrupted"), haystackOf(runWire({ display_status: "interrupted" })))).toBe(true);
  });

  it("highlights name terms as merged ranges", () => {
    expect(highlightRanges("Get_Weather weather", parseQuery("weath ather"))).toEqual([
      [4, 11],
      [12, 19],
    ]);
    expect(highlightRanges("<img src=x>", parseQuery("type:tool img"))).toEqual([[1, 4]]);
    expect(highlightRanges("abc", parseQuery("type:abc"))).toEqual([]);
  });
});

function bigTrace(n: number): RunWire[] {
  const runs = [runWire({ run_id: "root", order: 0, name: "pipeline" })];
  for (let i = 1; i < n; i++) {
    const stage = `s${Math.floor((i - 1) / 100)}`;
    if ((i - 1) % 100 === 0) runs.push(runWire({ run_id: stage, order: i, parent_run_id: "root", name: "stage" }));
    else
      runs.push(
        runWire({
          run_id: `r${i}`,
          order: i,
          parent_run_id: stage,
          name: i === 4242 ? "needle" : "step",
          status: i % 1000 === 7 ? "error" : "ok",
          error: i % 1000 === 7 ? "boom" : null,
        }),
      );
  }
  return runs;
}

describe("NavFilter over a big trace", () => {
  it("filters 10,001 runs and keeps up with deltas incrementally", () => {
    const runs = bigTrace(10_001);
    const nav = new NavFilter();
    nav.setQuery("needle");
    nav.rebuild(runs);
    expect([...nav.matchedIds]).toEqual(["r4242"]);
    nav.setQuery("step");
    nav.rebuild(runs);
    expect(nav.count).toBe(runs.filter((r) => r.name === "step").length);

    nav.setQuery("needle");
    nav.rebuild(runs);
    const renamed = { ...runs[10]!, name: "needle two" };
    expect(nav.update([renamed])).toBe(true);
    expect(nav.has(renamed.run_id)).toBe(true);
    expect(nav.update([{ ...renamed, name: "plain" }])).toBe(true);
    expect(nav.has(renamed.run_id)).toBe(false);
    expect(nav.update([{ ...renamed, name: "still plain" }])).toBe(false);
  });

  it("errors only keeps failed and interrupted runs; key only drops key:false runs; inactive shows all", () => {
    const runs = [
      runWire({ run_id: "a", status: "error" }),
      runWire({ run_id: "b", status: "interrupted" }),
      runWire({ run_id: "c", status: "ok", key: false }),
      runWire({ run_id: "d", status: "running", display_status: "abandoned" }),
    ];
    const nav = new NavFilter();
    nav.rebuild(runs);
    expect(nav.active).toBe(false);
    expect(nav.has("c")).toBe(true);
    nav.errorsOnly = true;
    nav.rebuild(runs);
    expect([...nav.matchedIds]).toEqual(["a", "b"]);
    nav.errorsOnly = false;
    nav.keyOnly = true;
    nav.rebuild(runs);
    expect([...nav.matchedIds]).toEqual(["a", "b", "d"]); // a missing key counts as key
  });
});

describe("ancestor closure and key runs in the tree", () => {
  const runs = [
    runWire({ run_id: "g", order: 0, name: "LangGraph" }),
    runWire({ run_id: "seq", order: 1, parent_run_id: "g", name: "RunnableSequence", key: false }),
    runWire({ run_id: "agent", order: 2, parent_run_id: "seq", name: "agent" }),
    runWire({ run_id: "m", order: 3, parent_run_id: "agent", name: "model" }),
    runWire({ run_id: "route", order: 4, parent_run_id: "agent", name: "tools_condition", key: false }),
    runWire({ run_id: "t", order: 5, parent_run_id: "g", name: "tool" }),
  ];

  it("shows matches with their ancestors, and only those", () => {
    const forest = buildForest(runs);
    const include = closure(forest, ["m"]);
    expect([...include].sort()).toEqual(["agent", "g", "m", "seq"]);
    const rows = flatten(forest, all, include);
    expect(rows.map((r) => r.id)).toEqual(["g", "seq", "agent", "m"]);
    expect(rows.find((r) => r.id === "agent")?.hasChildren).toBe(true);
    expect(rows.find((r) => r.id === "m")?.hasChildren).toBe(false);
  });

  it("lifts the children of non-key runs in the key-runs view", () => {
    const forest = buildForest(runs, false, true);
    const rows = flatten(forest, all);
    expect(rows.map((r) => [r.id, r.depth])).toEqual([
      ["g", 0],
      ["agent", 1],
      ["m", 2],
      ["t", 1],
    ]);
    expect(closure(forest, ["route", "m"]).has("route")).toBe(false);
  });
});

describe("waterfall geometry", () => {
  it("places bars by start offset and duration in the trace scope", () => {
    const a = runWire({ start: 100, end: 110 });
    const b = runWire({ start: 102, end: 104, run_type: "chat_model", first_token: 103 });
    const scope = traceScope([a, b], 0);
    expect(scope).toEqual({ start: 100, end: 110 });
    expect(barOf(a, scope, 0)).toEqual({ left: 0, width: 1, tick: null, live: false, clipped: false });
    const bar = barOf(b, scope, 0);
    expect(bar.left).toBeCloseTo(0.2);
    expect(bar.width).toBeCloseTo(0.2);
    expect(bar.tick).toBeCloseTo(0.3);
  });

  it("grows a running run up to now, and the scope with it", () => {
    const r = runWire({ start: 100, end: null, status: "running" });
    const done = runWire({ start: 100, end: 101 });
    expect(barOf(r, traceScope([r, done], 104), 104)).toMatchObject({ left: 0, width: 1, live: true });
    const later = traceScope([r, done], 110);
    expect(barOf(done, later, 110).width).toBeCloseTo(0.1);
    const abandoned = runWire({ start: 100, end: null, status: "running", display_status: "abandoned" });
    expect(barOf(abandoned, { start: 100, end: 110 }, 200)).toMatchObject({ width: 0, live: false });
  });

  it("keeps a trace's span as runs change, ending at now only while one is live", () => {
    const span = new TraceSpan();
    expect(span.at(5)).toBeNull();
    span.add("a", runWire({ start: 100, end: 103 }));
    span.add("r", runWire({ start: 101, end: null, status: "running" }));
    expect(span.at(110)).toEqual({ start: 100, end: 110 });
    expect(span.at(102)).toEqual({ start: 100, end: 103 });
    span.add("r", runWire({ start: 101, end: 105 })); // it ended: now no longer counts
    expect(span.at(110)).toEqual({ start: 100, end: 105 });
    expect(span.at(110)).toEqual(traceScope([runWire({ start: 100, end: 103 }), runWire({ start: 101, end: 105 })], 110));
  });

  it("clips to a zoomed run and survives a zero-length scope", () => {
    const zoom = runScope(runWire({ start: 105, end: 107 }), 0);
    const outer = runWire({ start: 100, end: 110 });
    expect(barOf(outer, zoom, 0)).toMatchObject({ left: 0, width: 1, clipped: true });
    expect(barOf(outer, { start: 5, end: 5 }, 0)).toMatchObject({ left: 0, width: 1 });
  });
});

describe("selection", () => {
  const order = ["a", "b", "c", "d", "e"];
  const plain = { toggle: false, range: false };
  it("clicks, ctrl-clicks and shift-clicks over the visible order", () => {
    let s = clickSelect(EMPTY_SELECTION, "b", plain, order);
    expect(s).toEqual({ ids: ["b"], primary: "b", anchor: "b" });
    s = clickSelect(s, "d", { toggle: true, range: false }, order);
    expect(s.ids).toEqual(["b", "d"]);
    s = clickSelect(s, "b", { toggle: true, range: false }, order);
    expect(s).toEqual({ ids: ["d"], primary: "d", anchor: "b" });
    s = clickSelect(s, "e", { toggle: false, range: true }, order);
    expect(s).toEqual({ ids: ["b", "c", "d", "e"], primary: "e", anchor: "b" });
    s = clickSelect(clickSelect(s, "a", { toggle: true, range: false }, order), "a", { toggle: true, range: true }, order);
    expect(new Set(s.ids)).toEqual(new Set(["a", "b", "c", "d", "e"]));
    expect(clickSelect(s, "c", plain, order).ids).toEqual(["c"]);
  });

  it("takes a selection from Python, keeping the primary when it is still selected", () => {
    expect(fromIds(["a", "b", "a", ""], "a")).toEqual({ ids: ["a", "b"], primary: "a", anchor: "a" });
    expect(fromIds(["a", "b"], "z").primary).toBe("b");
    expect(fromIds([], "z")).toEqual({ ids: [], primary: "", anchor: "" });
  });
});
