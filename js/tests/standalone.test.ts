// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import type { Snapshot } from "../src/protocol";
import { StaticModel, mountAll, restoreNulls } from "../src/standalone";
import { EMPTY_TOTALS } from "../src/store";
import { runWire } from "./fixtures";

const EVIL = '</script><img src=x onerror="window.__pwned=1">';

function snapshot(): Snapshot {
  const runs = [
    runWire({ run_id: "root", name: EVIL, order: 0 }),
    runWire({ run_id: "child", parent_run_id: "root", name: "child", order: 1, depth: 1 }),
  ];
  return { schema: 1, seq: 3, cursor: 30, runs, streams: {}, totals: { ...EMPTY_TOTALS, runs: 2 }, handler_errors: [] };
}

function embed(state: unknown): HTMLElement {
  const host = document.createElement("div");
  host.setAttribute("data-nbc-embed", "");
  const script = document.createElement("script");
  script.type = "application/json";
  script.setAttribute("data-nbc-state", "");
  script.textContent = JSON.stringify(state);
  const fallback = document.createElement("div");
  fallback.setAttribute("data-nbc-fallback", "");
  fallback.textContent = "summary";
  host.append(script, fallback);
  document.body.appendChild(host);
  return host;
}

describe("StaticModel", () => {
  it("keeps traits, tells change listeners, and swallows kernel calls", () => {
    const model = new StaticModel({ title: "t", _uid: "u" });
    const seen: string[] = [];
    const onTitle = (): void => {
      seen.push(model.get("title"));
    };
    model.on("change:title", onTitle);
    model.set("title", "new");
    model.set("title", "new"); // unchanged: no event
    model.off("change:title", onTitle);
    model.set("title", "later");
    expect(seen).toEqual(["new"]);
    expect(model.get("_uid")).toBe("u");
    expect(model.get("snapshot")).toEqual({});
    expect(() => model.send()).not.toThrow();
    expect(() => model.save_changes()).not.toThrow();
  });
});

describe("mountAll", () => {
  it("mounts the widget over the inlined state once, hides the fallback, and keeps names as text", async () => {
    const host = embed({ snapshot: snapshot(), title: "shared", selected_run_id: "", _uid: "static-test" });
    const broken = embed(null);
    broken.querySelector("script")!.textContent = "{not json";
    const notAnObject = embed([1, 2]);
    await mountAll();
    expect(host.dataset.nbcMounted).toBe("true");
    expect(broken.dataset.nbcMounted).toBe("false");
    expect(notAnObject.dataset.nbcMounted).toBe("false");
    expect(host.querySelectorAll(".nbc-root")).toHaveLength(1);
    expect((host.querySelector("[data-nbc-fallback]") as HTMLElement).hidden).toBe(true);
    expect((broken.querySelector("[data-nbc-fallback]") as HTMLElement).hidden).toBe(false);
    expect(host.querySelector(".nbc-title")?.textContent).toBe("shared");
    expect(host.querySelectorAll("img")).toHaveLength(0);
    expect(await mountAll()).toBe(0); // idempotent
    expect(host.querySelectorAll(".nbc-root")).toHaveLength(1);
  });
});

describe("compact snapshots", () => {
  it("get their left-out run fields back as null before the widget reads them", async () => {
    const full = snapshot();
    const compact = {
      ...full,
      runs: full.runs.map((run) => Object.fromEntries(Object.entries(run).filter(([, v]) => v !== null))),
    };
    expect("end" in (compact.runs[0] ?? {})).toBe(true);
    expect("error" in (compact.runs[0] ?? {})).toBe(false);
    const copy = structuredClone(compact);
    restoreNulls(copy);
    expect(copy).toEqual(full);

    const host = embed({ snapshot: compact, title: "compact", _uid: "static-compact", _nbc_compact: true });
    await mountAll();
    await new Promise((resolve) => setTimeout(resolve, 40)); // the view paints on the next animation frame
    expect(host.dataset.nbcMounted).toBe("true");
    expect(host.querySelector('.nbc-stat[data-stat="runs"]')?.textContent).toContain("2");
  });
});

describe("a static page", () => {
  it("has no Compare button (no kernel to compare with), even with two runs selected", async () => {
    const host = embed({ snapshot: snapshot(), title: "static", selected_run_id: "", _uid: "static-compare" });
    await mountAll();
    await new Promise((resolve) => setTimeout(resolve, 40));
    (host.querySelector('.nbc-tab[data-tab="tree"]') as HTMLElement).click();
    await new Promise((resolve) => setTimeout(resolve, 40));
    (host.querySelector('.nbc-row[data-run-id="root"] .nbc-name') as HTMLElement).click();
    const child = host.querySelector('.nbc-row[data-run-id="child"] .nbc-name') as HTMLElement;
    child.dispatchEvent(new MouseEvent("click", { bubbles: true, ctrlKey: true }));
    await new Promise((resolve) => setTimeout(resolve, 40));
    expect(host.querySelectorAll('.nbc-row[aria-selected="true"]')).toHaveLength(2);
    expect((host.querySelector('button[data-action="compare"]') as HTMLElement).hidden).toBe(true);
  });
});
