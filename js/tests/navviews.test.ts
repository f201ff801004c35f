// @vitest-environment happy-dom
import { afterEach, describe, expect, it, vi } from "vitest";
import type { RunWire } from "../src/protocol";
import { cleanup, FakeModel, frame, mount, q, qa, snapshot, wire } from "./widget-dom";

afterEach(() => {
  cleanup();
  vi.useRealTimers();
});

const type = async (el: HTMLElement, text: string) => {
  const input = q<HTMLInputElement>(el, 'input[type="search"][data-action="filter"]');
  input.value = text;
  input.dispatchEvent(new Event("input"));
  await new Promise((resolve) => setTimeout(resolve, 120)); // debounce, then a frame
};
const rowIds = (el: HTMLElement) => qa(el, ".nbc-row").map((r) => r.dataset.runId);

/** An agent-shaped trace: graph > agent > (model, router) ; graph > tools > tool (failed). */
function agentRuns(): RunWire[] {
  return [
    wire("g", 0, { name: "LangGraph" }),
    wire("agent", 1, { name: "agent", parent_run_id: "g", langgraph_node: "agent" }),
    wire("m", 2, { name: "DemoChatModel", run_type: "chat_model", parent_run_id: "agent", model: "demo-1", first_token: 1002.2 }),
    wire("route", 3, { name: "tools_condition", parent_run_id: "agent", key: false }),
    wire("tools", 4, { name: "tools", parent_run_id: "g", langgraph_node: "tools" }),
    wire("t", 5, { name: "get_weather", run_type: "tool", parent_run_id: "tools", status: "error", error: "ValueError: bad input", error_type: "ValueError" }),
  ];
}

describe("the filter box", () => {
  it("narrows the tree to matches plus greyed ancestors, counts them, and the table and stream with it", async () => {
    const model = new FakeModel(snapshot(1, agentRuns()));
    const [el] = await mount(model);
    const search = q<HTMLInputElement>(el!, 'input[type="search"]');
    expect(search.labels?.[0]?.textContent).toBe("Filter");
    q(el!, '.nbc-tab[data-tab="tree"]').click();
    q(el!, 'button[data-action="expand-all"]').click();
    await type(el!, "type:tool weather");
    expect(rowIds(el!)).toEqual(["g", "tools", "t"]);
    expect(q(el!, '.nbc-row[data-run-id="t"]').dataset.match).toBe("true");
    expect(q(el!, '.nbc-row[data-run-id="g"]').dataset.match).toBe("context");
    expect(q(el!, ".nbc-match-count").textContent).toBe("1 of 6 runs");
    expect(qa(el!, '.nbc-row[data-run-id="t"] mark.nbc-hl').map((m) => m.textContent)).toEqual(["weather"]);
    q(el!, '.nbc-tab[data-tab="timing"]').click();
    await frame();
    expect(qa(el!, ".nbc-tbody .nbc-trow").map((r) => r.dataset.runId)).toEqual(["t"]);
    expect(q(el!, 'section.nbc-block[data-run-id="m"]').hidden).toBe(true);

    await type(el!, "model:demo");
    expect(q(el!, 'section.nbc-block[data-run-id="m"]').hidden).toBe(false);
    await type(el!, "");
    expect(q(el!, ".nbc-match-count").textContent).toBe("");
  });

  it("keeps untrusted names as text while highlighting inside them", async () => {
    const evil = '<img src=x onerror="globalThis.pwned=1">';
    const model = new FakeModel(snapshot(1, [wire("e", 0, { name: evil })]));
    const [el] = await mount(model);
    await type(el!, "img");
    const name = q(el!, '.nbc-row[data-run-id="e"] .nbc-name');
    expect(name.textContent).toBe(evil);
    expect(qa(name, "mark").map((m) => m.textContent)).toEqual(["img"]);
    expect(el!.querySelector("img")).toBeNull();
  });

  it("follows live runs that start matching, and / focuses the box, Escape clears it", async () => {
    const model = new FakeModel(snapshot(1, [wire("a", 0, { name: "alpha" })]));
    const [el] = await mount(model);
    await type(el!, "beta");
    expect(rowIds(el!)).toEqual([]);
    model.delta({ base: 1, seq: 2, runs: [wire("b", 1, { name: "beta", parent_run_id: "a" })] });
    await frame();
    expect(rowIds(el!)).toEqual(["a", "b"]);
    const root = q(el!, ".nbc-root");
    const search = q<HTMLInputElement>(el!, 'input[type="search"]');
    q(el!, ".nbc-tree").dispatchEvent(new KeyboardEvent("keydown", { key: "/", bubbles: true }));
    expect(document.activeElement).toBe(search);
    search.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape", bubbles: true }));
    await frame();
    expect(search.value).toBe("");
    expect(root.dataset.filtered).toBe("false");
  });
});

describe("errors only and key runs", () => {
  it("turns errors only on from the header's error count and steps through errors", async () => {
    const runs = agentRuns();
    runs.push(wire("t2", 6, { name: "late", run_type: "tool", parent_run_id: "g", status: "interrupted" }));
    const model = new FakeModel({ ...snapshot(1, runs), totals: { ...snapshot(1, runs).totals, errors: 1 } });
    const [el] = await mount(model);
    expect(q(el!, ".nbc-root").dataset.tab).toBe("stream"); // it has model output
    const count = q<HTMLButtonElement>(el!, 'button.nbc-stat[data-stat="errors"]');
    expect(count.textContent).toBe("1 error");
    count.click();
    await frame();
    expect(q(el!, ".nbc-root").dataset.tab).toBe("tree");
    expect(q(el!, 'button[data-action="errors-only"]').getAttribute("aria-pressed")).toBe("true");
    expect(rowIds(el!)).toEqual(["g", "tools", "t", "t2"]);
    const root = q(el!, ".nbc-root");
    root.dispatchEvent(new KeyboardEvent("keydown", { key: "e", bubbles: true }));
    expect(model.get("selected_run_id")).toBe("t");
    root.dispatchEvent(new KeyboardEvent("keydown", { key: "e", bubbles: true }));
    expect(model.get("selected_run_id")).toBe("t2");
    root.dispatchEvent(new KeyboardEvent("keydown", { key: "E", shiftKey: true, bubbles: true }));
    expect(model.get("selected_run_id")).toBe("t");
    await frame();
    expect(q(el!, ".nbc-error-text").textContent).toBe("ValueError: bad input"); // the type once
  });

  it("hides wrappers and lifts their children in the key-runs view", async () => {
    const runs = agentRuns();
    runs.splice(1, 0, wire("seq", 1, { name: "RunnableSequence", parent_run_id: "g", key: false }));
    runs[2] = { ...runs[2]!, parent_run_id: "seq", order: 1.5 };
    const model = new FakeModel(snapshot(1, runs));
    const [el] = await mount(model);
    q(el!, '.nbc-tab[data-tab="tree"]').click();
    q(el!, 'button[data-action="expand-all"]').click();
    await frame();
    expect(rowIds(el!)).toEqual(["g", "seq", "agent", "m", "route", "tools", "t"]);
    q(el!, 'button[data-action="key-runs"]').click();
    await frame();
    expect(qa(el!, ".nbc-row").map((r) => [r.dataset.runId, r.dataset.depth])).toEqual([
      ["g", "0"],
      ["agent", "1"],
      ["m", "2"],
      ["tools", "1"],
      ["t", "2"],
    ]);
    expect(q(el!, ".nbc-match-count").textContent).toBe("5 of 7 runs");
  });
});

describe("waterfall and selection", () => {
  it("draws a bar per row placed in the trace, with a TTFT tick, marked for errors and growing live", async () => {
    const runs = agentRuns().map((r) => ({ ...r, start: 1000 + r.order, end: 1000 + r.order + 1 }));
    runs[0] = { ...runs[0]!, end: 1010 };
    const model = new FakeModel(snapshot(1, runs));
    const [el] = await mount(model);
    q(el!, '.nbc-tab[data-tab="tree"]').click();
    q(el!, 'button[data-action="expand-all"]').click();
    await frame();
    const bar = (id: string) => q(el!, `.nbc-row[data-run-id="${id}"] [data-waterfall]`);
    expect(qa(el!, ".nbc-row").every((r) => r.querySelector("[data-waterfall]"))).toBe(true);
    expect(bar("g").style.left).toBe("0.000%");
    expect(bar("g").style.width).toBe("100.000%");
    expect(bar("m").dataset.waterfall).toBe("chat_model");
    expect(bar("m").style.left).toBe("20.000%");
    expect(bar("m").style.width).toBe("10.000%");
    expect(q(bar("m"), ".nbc-wf-tick").hidden).toBe(false);
    expect(q(bar("m"), ".nbc-wf-tick").style.left).toBe("20.000%");
    expect(bar("t").dataset.status).toBe("error");
    expect(q(el!, '.nbc-row[data-run-id="m"] .nbc-wf').title).toContain("TTFT 200 ms");
  });

  it("zooms the waterfall to the selected run and back to the whole trace", async () => {
    const runs = [wire("g", 0, { start: 1000, end: 1010 }), wire("c", 1, { parent_run_id: "g", start: 1002, end: 1004 })];
    const model = new FakeModel(snapshot(1, runs));
    const [el] = await mount(model);
    await frame();
    const bar = (id: string) => q(el!, `.nbc-row[data-run-id="${id}"] [data-waterfall]`);
    expect(bar("c").style.width).toBe("20.000%");
    q(el!, '.nbc-row[data-run-id="c"]').click();
    q(el!, 'button[data-action="zoom"]').click();
    expect([bar("c").style.left, bar("c").style.width]).toEqual(["0.000%", "100.000%"]);
    expect(q(el!, 'button[data-action="zoom"]').getAttribute("aria-pressed")).toBe("true");
    q(el!, 'button[data-action="zoom"]').click();
    expect(bar("c").style.width).toBe("20.000%");
  });

  it("grows a running run's bar on the 1 s tick", async () => {
    // Only the clock and the tick's interval are fake: frames and setTimeout stay real.
    vi.useFakeTimers({ toFake: ["Date", "setInterval", "clearInterval"] });
    vi.setSystemTime(new Date("2024-01-01T00:00:00Z"));
    const now = Date.now() / 1000;
    const model = new FakeModel(snapshot(1, [wire("done", 0, { start: now - 2, end: now - 1 })]));
    const [el] = await mount(model);
    model.delta({
      base: 1,
      seq: 2,
      time: now,
      totals: { ...snapshot(1, []).totals, running: 1 },
      runs: [wire("live", 1, { start: now - 1.5, end: null, status: "running" })],
    });
    await frame();
    const bar = (id: string) => q(el!, `.nbc-row[data-run-id="${id}"] [data-waterfall]`);
    const first = parseFloat(bar("done").style.width);
    expect(bar("live").dataset.live).toBe("true");
    vi.advanceTimersByTime(1000); // the 1 s tick
    expect(parseFloat(bar("done").style.width)).toBeLessThan(first); // the trace grew around it
    expect(parseFloat(bar("live").style.left) + parseFloat(bar("live").style.width)).toBeCloseTo(100, 0);
  });

  it("selects with click, ctrl-click and shift-click in the tree and the table, and tells the model once each", async () => {
    const model = new FakeModel(snapshot(1, [wire("a", 0), wire("b", 1), wire("c", 2), wire("d", 3)]));
    const [el] = await mount(model);
    q(el!, '.nbc-tab[data-tab="tree"]').click();
    await frame();
    const row = (id: string) => q(el!, `.nbc-row[data-run-id="${id}"]`);
    row("a").click();
    row("c").dispatchEvent(new MouseEvent("click", { ctrlKey: true, bubbles: true }));
    expect(model.get("selected_run_ids")).toEqual(["a", "c"]);
    expect(model.get("selected_run_id")).toBe("c");
    row("d").dispatchEvent(new MouseEvent("click", { shiftKey: true, bubbles: true }));
    expect(model.get("selected_run_ids")).toEqual(["c", "d"]);
    await frame();
    expect(qa(el!, '.nbc-row[aria-selected="true"]').map((r) => r.dataset.runId)).toEqual(["c", "d"]);
    q(el!, '.nbc-tab[data-tab="timing"]').click();
    await frame();
    const trow = (id: string) => q(el!, `.nbc-trow[data-run-id="${id}"]`);
    trow("a").click();
    trow("c").dispatchEvent(new MouseEvent("click", { shiftKey: true, bubbles: true }));
    expect(model.get("selected_run_ids")).toEqual(["a", "b", "c"]);
    expect(model.saved).toBe(5);

    model.set("selected_run_ids", ["b", "d"]);
    model.set("selected_run_id", "d");
    model.fire("change:selected_run_ids");
    await frame();
    expect(qa(el!, '.nbc-trow[aria-selected="true"]').map((r) => r.dataset.runId)).toEqual(["b", "d"]);
  });

  it("opens on the tree when the trace has no model output", async () => {
    const model = new FakeModel(snapshot(1, [wire("a", 0), wire("b", 1, { parent_run_id: "a" })]));
    const [el] = await mount(model);
    expect(q(el!, ".nbc-root").dataset.tab).toBe("tree");
  });

  it("moves to the stream when a model run arrives, and back to the tree when a snapshot has none", async () => {
    const model = new FakeModel(snapshot(1, [wire("a", 0)]));
    const [el] = await mount(model);
    expect(q(el!, ".nbc-root").dataset.tab).toBe("tree");
    model.delta({ base: 1, seq: 2, runs: [wire("a", 0, { end: 1002 })] }); // an update, no new run
    await frame();
    expect(q(el!, ".nbc-root").dataset.tab).toBe("tree");
    model.delta({ base: 2, seq: 3, runs: [wire("m", 1, { parent_run_id: "a", run_type: "chat_model" })] });
    await frame();
    expect(q(el!, ".nbc-root").dataset.tab).toBe("stream");
    model.fire("msg:custom", { type: "snapshot", ...snapshot(4, [wire("b", 0)]) }, []);
    await frame();
    expect(q(el!, ".nbc-root").dataset.tab).toBe("tree");
  });
});
