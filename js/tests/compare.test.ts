// @vitest-environment happy-dom
import { afterEach, describe, expect, it } from "vitest";
import {
  barOn,
  comparePair,
  compareModel,
  type CompareRowWire,
  type ComparisonMsg,
  formatDelta,
  sideSpan,
  summaryText,
  wordDiff,
} from "../src/compare";
import type { RunWire } from "../src/protocol";
import { cleanup, FakeModel, frame, mount, q, qa, snapshot, wire } from "./widget-dom";

afterEach(cleanup);

function row(over: Partial<CompareRowWire>): CompareRowWire {
  return {
    path: "LangGraph",
    name: "LangGraph",
    run_type: "chain",
    depth: 0,
    only_in: null,
    run_id_a: "a0",
    run_id_b: "b0",
    status_a: "ok",
    status_b: "ok",
    duration_s_a: 1,
    duration_s_b: 1,
    duration_delta_s: 0,
    total_tokens_a: null,
    total_tokens_b: null,
    tokens_delta: null,
    cost_usd_a: null,
    cost_usd_b: null,
    cost_delta_usd: null,
    output_a: "",
    output_b: "",
    start_s_a: 0,
    start_s_b: 0,
    ...over,
  };
}

/** The demo agent, Paris (A) against Paris and London (B): one extra tool call on B's side. */
function agentComparison(request = "req"): ComparisonMsg {
  const rows: CompareRowWire[] = [
    row({ duration_s_a: 1, duration_s_b: 2, duration_delta_s: 1 }),
    row({ path: "LangGraph/tools", name: "tools", depth: 1, run_id_a: "a1", run_id_b: "b1", start_s_a: 0.2, start_s_b: 0.2, duration_s_a: 0.3, duration_s_b: 0.9, duration_delta_s: 0.6 }),
    row({ path: "LangGraph/tools/get_weather", name: "get_weather", run_type: "tool", depth: 2, run_id_a: "a2", run_id_b: "b2", start_s_a: 0.2, start_s_b: 0.2, duration_s_a: 0.3, duration_s_b: 0.3, duration_delta_s: 0, output_a: "Sunny, 21 °C", output_b: "Sunny, 21 °C" }),
    row({ path: "LangGraph/tools/get_weather#2", name: "get_weather", run_type: "tool", depth: 2, only_in: "b", run_id_a: null, status_a: null, duration_s_a: null, duration_delta_s: null, start_s_a: null, run_id_b: "b3", start_s_b: 0.6, duration_s_b: 0.5, output_a: null, output_b: 'Rain <img src=x onerror="window.__pwned=1">' }),
    row({ path: "LangGraph/agent#2/DemoChatModel", name: "DemoChatModel", run_type: "chat_model", depth: 2, run_id_a: "a4", run_id_b: "b4", start_s_a: 0.6, start_s_b: 1.2, duration_s_a: 0.4, duration_s_b: 0.8, duration_delta_s: 0.4, total_tokens_a: 40, total_tokens_b: 55, tokens_delta: 15, cost_usd_a: 0.00004, cost_usd_b: null, output_a: "Paris: sunny", output_b: "Paris: sunny; London: rain" }),
  ];
  return { type: "comparison", request, a: "a0", b: "b0", labels: ["LangGraph", "LangGraph"], inputs: ["{'messages': [['user', 'Paris?']]}", "{'messages': [['user', 'Paris and London?']]}"], total_rows: rows.length, truncated: false, note: "", rows };
}

describe("the compare row model", () => {
  it("compares exactly two distinct selected runs, in selection order", () => {
    expect(comparePair(["x", "y"])).toEqual(["x", "y"]);
    expect(comparePair(["y", "x"])).toEqual(["y", "x"]);
    expect(comparePair(["x"])).toBeNull();
    expect(comparePair(["x", "y", "z"])).toBeNull();
    expect(comparePair(["x", "x"])).toBeNull();
  });

  it("puts both sides' bars on the longer side's time scale", () => {
    const msg = agentComparison();
    expect(sideSpan(msg.rows, "a")).toBe(1);
    expect(sideSpan(msg.rows, "b")).toBe(2);
    const model = compareModel(msg);
    expect(model.scale).toBe(2);
    expect(model.rows[0]!.a!.bar).toEqual({ left: 0, width: 0.5 });
    expect(model.rows[0]!.b!.bar).toEqual({ left: 0, width: 1 });
    const extra = model.rows[3]!.b!.bar!;
    expect(extra.left).toBeCloseTo(0.3);
    expect(extra.width).toBeCloseTo(0.25);
    expect(barOn(null, 1, 2)).toBeNull();
    expect(barOn(0, 0, 0)).toEqual({ left: 0, width: 1 }); // no span: a full bar
    expect(barOn(1.5, 5, 2)).toEqual({ left: 0.75, width: 0.25 }); // clipped to the scale
  });

  it("marks one-sided rows and what differs, and gives signed deltas with their tone", () => {
    const model = compareModel(agentComparison());
    expect(model.onlyA).toBe(0);
    expect(model.onlyB).toBe(1);
    const extra = model.rows[3]!;
    expect(extra.only).toBe("b");
    expect(extra.a).toBeNull();
    expect(extra.b!.runId).toBe("b3");
    expect(extra.deltas).toEqual([]);
    expect(model.rows[2]!.marks).toEqual([]);
    const answer = model.rows[4]!;
    expect(answer.marks).toEqual(["output"]);
    expect(answer.a!.meta).toBe("400 ms · 40 tok · $0.000040");
    expect(answer.b!.meta).toBe("800 ms · 55 tok · price unknown");
    expect(answer.deltas.map((d) => [d.kind, d.text, d.tone])).toEqual([
      ["duration", "+400 ms", "worse"],
      ["tokens", "+15 tok", "worse"],
    ]);
    expect(model.rows[0]!.a!.meta).toBe("1.00 s"); // a chain: no tokens, no price
  });

  it("formats deltas, leaving out zero and missing ones", () => {
    expect(formatDelta(-0.25, "duration")).toEqual({ kind: "duration", text: "\u2212250 ms", tone: "better" });
    expect(formatDelta(0.00001, "duration")).toBeNull();
    expect(formatDelta(0, "tokens")).toBeNull();
    expect(formatDelta(null, "cost")).toBeNull();
    expect(formatDelta(0.000012, "cost")?.text).toBe("+$0.000012");
    expect(formatDelta(-1234, "tokens")?.text).toBe("\u22121,234 tok");
  });

  it("diffs two outputs word by word, marking A's removed and B's added words", () => {
    const diff = wordDiff("Paris: sunny, 18°C.", "Paris: sunny; London: rain, 18°C.")!;
    expect(diff.a.map((s) => s.text).join("")).toBe("Paris: sunny, 18°C.");
    expect(diff.b.map((s) => s.text).join("")).toBe("Paris: sunny; London: rain, 18°C.");
    expect(diff.a.filter((s) => s.changed)).toEqual([]);
    expect(diff.b.filter((s) => s.changed).map((s) => s.text)).toEqual(["; London: rain"]);
    const swapped = wordDiff("a b c", "a x c")!;
    expect(swapped.a).toEqual([{ text: "a ", changed: false }, { text: "b", changed: true }, { text: " c", changed: false }]);
    expect(swapped.b).toEqual([{ text: "a ", changed: false }, { text: "x", changed: true }, { text: " c", changed: false }]);
    expect(wordDiff("", "new")).toEqual({ a: [], b: [{ text: "new", changed: true }] });
    expect(wordDiff("w ".repeat(600), "v ".repeat(600))).toBeNull(); // too long to diff here
  });

  it("sums each side for the summary line", () => {
    const model = compareModel(agentComparison());
    expect(model.a.runs).toBe(4);
    expect(model.b.runs).toBe(5);
    expect(summaryText(model.a)).toBe("4 runs · 1.00 s · 40 tokens · $0.000040");
    expect(summaryText(model.b)).toBe("5 runs · 2.00 s · 55 tokens · price unknown");
    expect(compareModel({ rows: [], labels: ["x", "y"] }).rows).toEqual([]);
  });
});

/** Two one-run roots, so that the tree shows both at depth 0. */
function twoRoots(): RunWire[] {
  return [wire("a0", 0, { name: "LangGraph" }), wire("b0", 1, { name: "LangGraph" })];
}

describe("the Compare button and panel", () => {
  it("shows the button for exactly two selected runs, sends the request, and shows the aligned rows", async () => {
    const model = new FakeModel(snapshot(1, twoRoots()));
    const [el] = await mount(model, 2);
    q(el!, '.nbc-tab[data-tab="tree"]').click();
    await frame();
    const button = q<HTMLButtonElement>(el!, 'button[data-action="compare"]');
    expect(button.hidden).toBe(true);
    expect(button.getAttribute("aria-label")).toBe("compare the two selected runs");
    q(el!, '.nbc-row[data-run-id="a0"] .nbc-name').click();
    q(el!, '.nbc-row[data-run-id="b0"] .nbc-name').dispatchEvent(new MouseEvent("click", { bubbles: true, ctrlKey: true }));
    await frame();
    expect(button.hidden).toBe(false);

    button.click();
    const request = model.sent.at(-1) as { type: string; a: string; b: string; request: string };
    expect(request).toMatchObject({ type: "compare", a: "a0", b: "b0" });
    expect(el!.querySelector(".nbc-root")!.getAttribute("data-comparing")).toBe("true");
    const panel = q(el!, ".nbc-compare");
    expect(panel.dataset.state).toBe("pending");
    expect(q(el!, ".nbc-tree-wrap").hidden).toBe(true);

    model.fire("msg:custom", agentComparison("someone else's"), []);
    expect(panel.dataset.state).toBe("pending"); // not this view's request
    model.fire("msg:custom", agentComparison(request.request), []);
    expect(panel.dataset.state).toBe("ready");
    const rows = qa(el!, ".nbc-cmp-row");
    expect(rows.map((r) => r.dataset.depth)).toEqual(["0", "1", "2", "2", "2"]);
    expect(rows.map((r) => r.dataset.only ?? "")).toEqual(["", "", "", "b", ""]);
    const extra = rows[3]!;
    expect(q(extra, '.nbc-cmp-cell[data-side="a"]').dataset.missing).toBe("true");
    expect(q(extra, '.nbc-cmp-cell[data-side="a"]').textContent).toBe("— not in A");
    expect(q(extra, ".nbc-cmp-only").textContent).toBe("only in B");
    expect(q(el!, ".nbc-cmp-counts").textContent).toBe("5 rows · 0 only in A · 1 only in B");
    expect(qa(el!, ".nbc-cmp-sum .nbc-cmp-input").map((s) => s.textContent)).toEqual([
      "{'messages': [['user', 'Paris?']]}",
      "{'messages': [['user', 'Paris and London?']]}",
    ]);
    expect(q(rows[4]!, ".nbc-cmp-delta").textContent).toBe("+400 ms+15 tok");
    expect(q(rows[0]!, '.nbc-cmp-wf .nbc-wf-bar').style.width).toBe("50.000%");
    // The other view asked nothing: its panel stays closed.
    expect(q(document.body.children[1] as HTMLElement, ".nbc-compare").hidden).toBe(true);

    extra.click();
    const outs = qa(el!, ".nbc-cmp-detail .nbc-cmp-pre").map((p) => p.textContent);
    expect(outs).toEqual(["not in A", 'Rain <img src=x onerror="window.__pwned=1">']);
    expect(el!.querySelectorAll("img").length).toBe(0);
    const list = q(el!, ".nbc-cmp-rows");
    list.dispatchEvent(new KeyboardEvent("keydown", { key: "ArrowDown", bubbles: true }));
    expect(rows[4]!.getAttribute("aria-selected")).toBe("true");
    expect(list.getAttribute("aria-activedescendant")).toBe(rows[4]!.id);
    expect(qa(el!, ".nbc-cmp-detail .nbc-cmp-pre").map((p) => p.textContent)).toEqual(["Paris: sunny", "Paris: sunny; London: rain"]);
    expect(qa(el!, ".nbc-cmp-detail mark.nbc-cmp-ins").map((m) => m.textContent)).toEqual(["; London: rain"]);
    expect(qa(el!, ".nbc-cmp-detail mark.nbc-cmp-del")).toHaveLength(0);

    q(el!, 'button[data-action="close-compare"]').click();
    expect(panel.hidden).toBe(true);
    expect(q(el!, ".nbc-tree-wrap").hidden).toBe(false);
    expect(el!.querySelector(".nbc-root")!.getAttribute("data-comparing")).toBe("false");
  });

  it("shows the kernel's error", async () => {
    const model = new FakeModel(snapshot(1, twoRoots()));
    const [el] = await mount(model);
    q(el!, '.nbc-tab[data-tab="tree"]').click();
    q(el!, '.nbc-row[data-run-id="a0"] .nbc-name').click();
    q(el!, '.nbc-row[data-run-id="b0"] .nbc-name').dispatchEvent(new MouseEvent("click", { bubbles: true, metaKey: true }));
    await frame();
    q(el!, 'button[data-action="compare"]').click();
    const { request } = model.sent.at(-1) as { request: string };
    model.fire("msg:custom", { type: "comparison", request, a: "a0", b: "b0", rows: [], error: "no run with id 'b0'" }, []);
    expect(q(el!, ".nbc-compare").dataset.state).toBe("error");
    expect(q(el!, ".nbc-cmp-note").textContent).toBe("Could not compare: no run with id 'b0'");
    q(el!, ".nbc-compare").dispatchEvent(new KeyboardEvent("keydown", { key: "Escape", bubbles: true }));
    expect(q(el!, ".nbc-compare").hidden).toBe(true);
  });
});
