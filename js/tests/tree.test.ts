import { describe, expect, it } from "vitest";
import { ancestorsOf, buildForest, flatten, type TreeRun } from "../src/tree";

const run = (run_id: string, parent_run_id: string | null, order: number, hidden = false): TreeRun => ({
  run_id,
  parent_run_id,
  order,
  hidden,
});

const all = () => true;
const ids = (rows: { id: string }[]) => rows.map((r) => r.id);

describe("buildForest", () => {
  it("nests children under parents in start order", () => {
    const f = buildForest([run("c2", "root", 2), run("root", null, 0), run("c1", "root", 1), run("g", "c1", 3)]);
    expect(f.roots).toEqual(["root"]);
    expect(f.children.get("root")).toEqual(["c1", "c2"]);
    expect(ids(flatten(f, all))).toEqual(["root", "c1", "g", "c2"]);
    expect(flatten(f, all).map((r) => r.depth)).toEqual([0, 1, 2, 1]);
  });

  it("shows runs with an unknown parent as orphan roots", () => {
    const f = buildForest([run("a", null, 0), run("x", "missing", 1), run("y", "x", 2)]);
    expect(f.roots).toEqual(["a", "x"]);
    expect(f.children.get("x")).toEqual(["y"]);
  });

  it("hides langsmith:hidden runs and lifts their children, unless asked to show them", () => {
    const runs = [run("root", null, 0), run("h", "root", 1, true), run("k", "h", 2), run("h2", "h", 3, true)];
    const hidden = buildForest(runs);
    expect(ids(flatten(hidden, all))).toEqual(["root", "k"]);
    expect(hidden.parent.get("k")).toBe("root");
    const shown = buildForest(runs, true);
    expect(ids(flatten(shown, all))).toEqual(["root", "h", "k", "h2"]);
  });

  it("breaks a cycle in parent pointers without hanging, at the earliest run", () => {
    const f = buildForest([run("a", "c", 0), run("b", "a", 1), run("c", "b", 2), run("d", null, 3)]);
    expect(f.roots).toEqual(["a", "d"]);
    expect(f.cycles.has("a")).toBe(true);
    expect(ids(flatten(f, all))).toEqual(["a", "b", "c", "d"]);
  });

  it("handles a self-parent and a cycle through hidden runs", () => {
    const self = buildForest([run("s", "s", 0)]);
    expect(self.roots).toEqual(["s"]);
    expect(self.cycles.has("s")).toBe(true);
    const viaHidden = buildForest([run("h1", "h2", 0, true), run("h2", "h1", 1, true), run("v", "h1", 2)]);
    expect(viaHidden.roots).toEqual(["v"]);
  });

  it("keeps a deep chain iterative (no recursion limit)", () => {
    const runs = [run("n0", null, 0)];
    for (let i = 1; i < 20000; i++) runs.push(run(`n${i}`, `n${i - 1}`, i));
    const rows = flatten(buildForest(runs), all);
    expect(rows.length).toBe(20000);
    expect(rows[19999]?.depth).toBe(19999);
  });
});

describe("flatten", () => {
  it("skips children of collapsed nodes and reports expansion", () => {
    const f = buildForest([run("r", null, 0), run("a", "r", 1), run("b", "a", 2)]);
    const rows = flatten(f, (id) => id !== "a");
    expect(ids(rows)).toEqual(["r", "a"]);
    expect(rows[1]).toEqual({ id: "a", depth: 1, hasChildren: true, expanded: false });
    expect(rows[0]?.expanded).toBe(true);
  });
});

describe("ancestorsOf", () => {
  it("collects the path to running runs", () => {
    const f = buildForest([run("r", null, 0), run("a", "r", 1), run("b", "a", 2), run("z", null, 3)]);
    expect([...ancestorsOf(f, ["b"])].sort()).toEqual(["a", "r"]);
    expect(ancestorsOf(f, ["z"]).size).toBe(0);
  });
});
