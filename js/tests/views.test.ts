// @vitest-environment happy-dom
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { TreeView } from "../src/treeview";
import { cleanup, FakeModel, frame, mount, q, qa, snapshot, wire } from "./widget-dom";

afterEach(() => {
  cleanup();
  vi.restoreAllMocks();
});

describe("the widget in a DOM", () => {
  it("says hello, appends streamed text without rebuilding it, and keeps tool calls apart", async () => {
    const model = new FakeModel(snapshot(0, []));
    const [el] = await mount(model);
    expect(model.sent).toEqual([{ type: "hello", seq: 0 }]);
    model.delta({ base: 0, seq: 2, runs: [wire("m", 0, { run_type: "chat_model", status: "running", end: null })], tokens: { m: [["text", "Hel"]] } });
    await frame();
    const block = q(el!, 'section.nbc-block[data-run-id="m"]');
    expect(block.dataset.status).toBe("running");
    const firstNode = q(block, '.nbc-seg[data-kind="text"]').firstChild;
    model.delta({ base: 2, seq: 4, tokens: { m: [["text", "lo"], ["tool_call", '{"a":'], ["tool_call", "1}"]] } });
    model.delta({ base: 4, seq: 5, runs: [wire("m", 0, { run_type: "chat_model" })], tokens: {} });
    await frame();
    const text = q(block, '.nbc-seg[data-kind="text"]');
    expect(text.firstChild).toBe(firstNode); // appended to, never re-rendered
    expect(text.textContent).toBe("Hello");
    expect(qa(block, '.nbc-seg[data-kind="tool_call"]').map((s) => s.textContent)).toEqual(['{"a":1}']);
    expect(block.dataset.status).toBe("ok");
    expect(text.getAttribute("dir")).toBe("auto");
  });

  it("shows untrusted names and payloads as text, never as markup", async () => {
    const evil = '<img src=x onerror="globalThis.pwned=1">';
    const model = new FakeModel(
      snapshot(3, [wire("t", 0, { name: evil, run_type: "tool", status: "error", error: evil, inputs: { x: evil } })]),
    );
    const [el] = await mount(model);
    q(el!, '.nbc-tab[data-tab="tree"]').click();
    await frame();
    const row = q(el!, '.nbc-row[data-run-id="t"]');
    expect(q(row, ".nbc-name").textContent).toBe(evil);
    row.click();
    await frame();
    expect(q(el!, "aside.nbc-inspector").dataset.runId).toBe("t");
    expect(q(el!, ".nbc-insp-name").textContent).toBe(evil);
    expect(el!.querySelector("img")).toBeNull();
    expect(model.get("selected_run_id")).toBe("t");
    expect(model.saved).toBe(1);
  });

  it("renders only the visible rows of a 10,000-run tree and navigates by keyboard", async () => {
    const runs = [wire("root", 0)];
    for (let i = 1; i < 10_000; i++) runs.push(wire(`r${i}`, i, { parent_run_id: "root" }));
    const model = new FakeModel(snapshot(1, runs));
    const [el] = await mount(model);
    q(el!, '.nbc-tab[data-tab="tree"]').click();
    await frame();
    const rows = qa(el!, ".nbc-row");
    expect(rows.length).toBeGreaterThan(5);
    expect(rows.length).toBeLessThan(100);
    const tree = q(el!, ".nbc-tree");
    expect(tree.getAttribute("role")).toBe("tree");
    tree.dispatchEvent(new FocusEvent("focus"));
    tree.dispatchEvent(new KeyboardEvent("keydown", { key: "ArrowDown" }));
    tree.dispatchEvent(new KeyboardEvent("keydown", { key: "ArrowDown" }));
    const active = document.getElementById(tree.getAttribute("aria-activedescendant") ?? "");
    expect(active?.dataset.runId).toBe("r2");
    tree.dispatchEvent(new KeyboardEvent("keydown", { key: "ArrowLeft" })); // to the parent
    tree.dispatchEvent(new KeyboardEvent("keydown", { key: "ArrowLeft" })); // collapse it
    await frame();
    expect(qa(el!, ".nbc-row").map((r) => r.dataset.runId)).toEqual(["root"]);
    expect(q(el!, '.nbc-row[data-run-id="root"]').getAttribute("aria-expanded")).toBe("false");
    tree.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter" }));
    expect(model.get("selected_run_id")).toBe("root");
  });

  it("sorts the timing table both ways and marks the column", async () => {
    const runs = [wire("a", 0), wire("b", 1), wire("c", 2)]; // durations 0.5, 1.5, 2.5
    const model = new FakeModel(snapshot(1, runs));
    const [el] = await mount(model);
    q(el!, '.nbc-tab[data-tab="timing"]').click();
    await frame();
    const order = () => qa(el!, ".nbc-tbody .nbc-trow").map((r) => r.dataset.runId);
    expect(order()).toEqual(["a", "b", "c"]);
    q(el!, '.nbc-th[data-col="duration"] button').click();
    expect(order()).toEqual(["c", "b", "a"]);
    expect(q(el!, '.nbc-th[data-col="duration"]').getAttribute("aria-sort")).toBe("descending");
    q(el!, '.nbc-th[data-col="duration"] button').click();
    expect(order()).toEqual(["a", "b", "c"]);
    expect(q(el!, '.nbc-th[data-col="duration"]').getAttribute("aria-sort")).toBe("ascending");
    q(el!, 'button[data-group="name"]').click();
    expect(qa(el!, ".nbc-tbody .nbc-trow").map((r) => r.dataset.group)).toEqual(["a", "b", "c"]);
  });

  it("keeps the timing table's header (and its focus) while runs stream, updating rows in place", async () => {
    let browserMs = 1_700_000_000_000;
    vi.spyOn(Date, "now").mockImplementation(() => browserMs);
    const live = (id: string, order: number, chunks: number) =>
      wire(id, order, { run_type: "chat_model", status: "running", end: null, streamed_chunks: chunks });
    const model = new FakeModel(snapshot(1, [live("a", 0, 1), live("b", 1, 2)]));
    const [el] = await mount(model);
    q(el!, '.nbc-tab[data-tab="timing"]').click();
    await frame();
    const order = () => qa(el!, ".nbc-tbody .nbc-trow").map((r) => r.dataset.runId);
    const tokOut = (id: string) => q(el!, `.nbc-trow[data-run-id="${id}"] [data-col="tokensOut"]`).textContent;
    const sortButton = q<HTMLButtonElement>(el!, '.nbc-th[data-col="tokensOut"] button');
    sortButton.click(); // most tokens first
    sortButton.focus();
    expect(order()).toEqual(["b", "a"]);
    const light = (id: string, chunks: number) => ({
      run_id: id, status: "running", display_status: "running", streamed_chunks: chunks, first_token: 1000.2, ttft_s: 0.2, chunks_not_kept: 0, light: true,
    });
    model.delta({ base: 1, seq: 2, runs: [light("a", 5)] as never });
    await frame();
    expect(tokOut("a")).toBe("5"); // the row repaints at once
    expect(order()).toEqual(["b", "a"]); // the re-sort waits for the next rebuild (at most 4 a second)
    browserMs += 250;
    model.delta({ base: 2, seq: 3, runs: [light("a", 6)] as never });
    await frame();
    expect(order()).toEqual(["a", "b"]);
    expect(q(el!, '.nbc-th[data-col="tokensOut"] button')).toBe(sortButton);
    expect(document.activeElement).toBe(sortButton);
    expect(sortButton.textContent).toBe("Tok out ▼");
    sortButton.click();
    expect(q(el!, '.nbc-th[data-col="tokensOut"]').getAttribute("aria-sort")).toBe("ascending");
    expect(document.activeElement).toBe(sortButton);
  });

  it("shares one store between views of a model and asks for a resync on a gap", async () => {
    const model = new FakeModel(snapshot(5, [wire("m", 0, { run_type: "chat_model" })], { m: [["text", "ab"]] }));
    const [one, two] = await mount(model, 2);
    model.delta({ base: 5, seq: 6, tokens: { m: [["text", "c"]] } });
    await frame();
    for (const el of [one!, two!]) expect(q(el, ".nbc-seg").textContent).toBe("abc");
    model.delta({ base: 9, seq: 10, tokens: { m: [["text", "z"]] } });
    expect(model.sent).toContainEqual({ type: "resync" });
    model.fire("msg:custom", { type: "snapshot", ...snapshot(9, [wire("m", 0, { run_type: "chat_model" })], { m: [["text", "abcdef"]] }) }, []);
    await frame();
    for (const el of [one!, two!]) expect(q(el, ".nbc-seg").textContent).toBe("abcdefz");
  });
});

describe("Python-side changes", () => {
  it("follows selected_run_id and title set from Python", async () => {
    const model = new FakeModel(snapshot(1, [wire("a", 0), wire("b", 1)]));
    const [el] = await mount(model);
    q(el!, '.nbc-tab[data-tab="tree"]').click();
    model.set("selected_run_id", "b");
    model.fire("change:selected_run_id");
    model.set("title", "renamed");
    model.fire("change:title");
    await frame();
    expect(q(el!, '.nbc-row[data-run-id="b"]').getAttribute("aria-selected")).toBe("true");
    expect(q(el!, '.nbc-row[data-run-id="a"]').getAttribute("aria-selected")).toBe("false");
    expect(q(el!, "aside.nbc-inspector").dataset.runId).toBe("b");
    expect(q(el!, ".nbc-title").textContent).toBe("renamed");
  });
});

describe("source rules", () => {
  it("never assigns markup from strings (textContent only)", () => {
    const dir = join(__dirname, "..", "src");
    for (const file of readdirSync(dir).filter((f) => f.endsWith(".ts"))) {
      const code = readFileSync(join(dir, file), "utf8");
      expect(code, file).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|DOMParser/);
    }
  });
});

describe("stream scrolling", () => {
  it("follows the bottom until the user scrolls up, then offers a jump to the latest text", async () => {
    const model = new FakeModel(snapshot(1, [wire("m", 0, { run_type: "chat_model", status: "running", end: null })]));
    const [el] = await mount(model);
    const scroller = q(el!, ".nbc-stream");
    let height = 1000;
    Object.defineProperty(scroller, "scrollHeight", { get: () => height });
    Object.defineProperty(scroller, "clientHeight", { get: () => 400 });
    const jump = q<HTMLButtonElement>(el!, "button.nbc-jump");
    model.delta({ base: 1, seq: 2, tokens: { m: [["text", "a"]] } });
    await frame();
    expect(scroller.scrollTop).toBe(1000); // followed
    expect(jump.hidden).toBe(true);
    scroller.scrollTop = 100; // the user scrolls up to read
    scroller.dispatchEvent(new Event("scroll"));
    height = 1500;
    model.delta({ base: 2, seq: 3, runs: [wire("n", 1, { run_type: "chat_model", status: "running", end: null })], tokens: { n: [["text", "b"]] } });
    await frame();
    expect(scroller.scrollTop).toBe(100); // left where the user is
    expect(jump.hidden).toBe(false);
    jump.click();
    expect(scroller.scrollTop).toBe(1500);
    expect(jump.hidden).toBe(true);
  });
});

describe("timing table keyboard", () => {
  it("moves the selection with the arrow keys", async () => {
    const model = new FakeModel(snapshot(1, [wire("a", 0), wire("b", 1), wire("c", 2)]));
    const [el] = await mount(model);
    q(el!, '.nbc-tab[data-tab="timing"]').click();
    await frame();
    const body = q(el!, ".nbc-tbody");
    body.dispatchEvent(new KeyboardEvent("keydown", { key: "ArrowDown" }));
    expect(model.get("selected_run_id")).toBe("a");
    body.dispatchEvent(new KeyboardEvent("keydown", { key: "ArrowDown" }));
    body.dispatchEvent(new KeyboardEvent("keydown", { key: "ArrowDown" }));
    body.dispatchEvent(new KeyboardEvent("keydown", { key: "ArrowDown" }));
    expect(model.get("selected_run_id")).toBe("c");
    body.dispatchEvent(new KeyboardEvent("keydown", { key: "Home" }));
    expect(model.get("selected_run_id")).toBe("a");
    await frame();
    expect(q(el!, '.nbc-trow[data-run-id="a"]').getAttribute("aria-selected")).toBe("true");
  });
});

describe("header cost", () => {
  const stat = (el: HTMLElement) => q(el, '.nbc-stat[data-stat="cost"]');

  it("is hidden without model calls", async () => {
    const [el] = await mount(new FakeModel(snapshot(1, [wire("c", 0)])));
    await frame();
    expect(stat(el!).hidden).toBe(true);
  });

  it("shows the known cost, and a lower bound when some model calls have no price", async () => {
    const snap = snapshot(1, [wire("m", 0, { run_type: "chat_model", cost_usd: 0.000115, cost_usd_total: 0.000115 })]);
    snap.totals = { ...snap.totals, cost_usd: 0.000115 };
    const model = new FakeModel(snap);
    const [el] = await mount(model);
    await frame();
    expect(stat(el!).hidden).toBe(false);
    expect(stat(el!).textContent).toBe("$0.000115");
    model.delta({ base: 1, seq: 2, runs: [wire("n", 1, { run_type: "llm" })], totals: { ...snap.totals } });
    await frame();
    expect(stat(el!).textContent).toBe("≥ $0.000115");
    expect(stat(el!).title).toContain("1 model call without a price");
  });

  it("says price unknown, never $0, and how to get prices", async () => {
    const [el] = await mount(new FakeModel(snapshot(1, [wire("m", 0, { run_type: "chat_model" })])));
    await frame();
    expect(stat(el!).textContent).toBe("price unknown");
    expect(stat(el!).title).toContain('pip install "nbcallbacks[cost]"');
  });
});

describe("cost in the timing table and the tree", () => {
  it("shows the cost column and the tree row's cost, or that the price is unknown", async () => {
    const snap = snapshot(1, [
      wire("c", 0, { run_type: "chain", cost_usd_total: 0.5 }),
      wire("m", 1, { run_type: "chat_model", parent_run_id: "c", depth: 1, cost_usd: 0.5, cost_usd_total: 0.5 }),
      wire("u", 2, { run_type: "llm", parent_run_id: "c", depth: 1 }),
    ]);
    const [el] = await mount(new FakeModel(snap));
    q(el!, '.nbc-tab[data-tab="timing"]').click();
    await frame();
    const cost = (id: string) => q(el!, `.nbc-trow[data-run-id="${id}"] [data-col="cost"]`).textContent;
    expect(cost("c")).toBe("$0.5000");
    expect(cost("m")).toBe("$0.5000");
    expect(cost("u")).toBe("unknown");
    q(el!, '.nbc-tab[data-tab="tree"]').click();
    await frame();
    const wf = (id: string) => q(el!, `.nbc-row[data-run-id="${id}"]`).querySelector<HTMLElement>("[title*='cost'], [title*='price']");
    expect(wf("m")?.title).toContain("cost $0.5000");
    expect(wf("u")?.title).toContain("price unknown");
    const shown = (id: string) => q(el!, `.nbc-row[data-run-id="${id}"] .nbc-tok`).textContent;
    expect(shown("c")).toContain("$0.5000"); // the known cost is written in the row, not only in its tooltip
    expect(shown("u")).not.toContain("$"); // never $0 for an unknown price
  });
});

describe("the tree while runs run", () => {
  it("repaints only running and changed rows each frame; the other rows' bars just rescale to the growing trace", async () => {
    let browserMs = 1_700_000_000_000;
    vi.spyOn(Date, "now").mockImplementation(() => browserMs);
    const runs = [wire("root", 0, { status: "running", end: null })];
    for (let i = 1; i <= 30; i++) runs.push(wire(`c${i}`, i, { parent_run_id: "root", depth: 1 }));
    runs.push(wire("m", 31, { run_type: "chat_model", parent_run_id: "root", depth: 1, status: "running", end: null }));
    const model = new FakeModel(snapshot(1, runs));
    const [el] = await mount(model);
    q(el!, '.nbc-tab[data-tab="tree"]').click();
    model.delta({ base: 1, seq: 2, time: 1040 }); // the kernel's clock: a few seconds into the trace
    await frame();
    const painted: string[] = [];
    const proto = TreeView.prototype as unknown as { paintRow: (el: HTMLElement, index: number, id: string) => void };
    const paintRow = proto.paintRow;
    vi.spyOn(proto, "paintRow").mockImplementation(function (this: unknown, rowEl, index, id) {
      painted.push(id);
      paintRow.call(this, rowEl, index, id);
    });
    const bar = () => q(el!, '.nbc-row[data-run-id="c1"] .nbc-wf-bar');
    const name = q(el!, '.nbc-row[data-run-id="c1"] .nbc-name');
    const widths = [bar().style.width];
    for (let seq = 3; seq < 7; seq++) {
      browserMs += 500; // now moves on: the trace's scope (ended by the running runs) grows every frame
      const changed = seq === 5 ? [wire("c2", 2, { parent_run_id: "root", depth: 1, cost_usd_total: 0.25 })] : [];
      model.delta({ base: seq - 1, seq, runs: changed, tokens: { m: [["text", "x"]] } });
      await frame();
      widths.push(bar().style.width);
    }
    // The running root every frame and c2 in the frame that changed it; not the other rows on screen (m is below).
    expect(qa(el!, ".nbc-row").length).toBeGreaterThan(20);
    expect(painted.sort()).toEqual(["c2", "root", "root", "root", "root"]);
    expect(q(el!, '.nbc-row[data-run-id="c1"] .nbc-name')).toBe(name);
    expect(name.textContent).toBe("c1");
    for (let i = 1; i < widths.length; i++) {
      expect(parseFloat(widths[i]!)).toBeLessThan(parseFloat(widths[i - 1]!)); // rescaled all the same
    }
    expect(q(el!, '.nbc-row[data-run-id="root"] .nbc-wf-bar').dataset.live).toBe("true");
    expect(q(el!, '.nbc-row[data-run-id="c2"] .nbc-tok').textContent).toContain("$0.2500");
  });
});
