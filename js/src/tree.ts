/**
 * Pure tree building from the flat run list (run id + parent_run_id), and flattening for display.
 *
 * - Children keep start order (`order`).
 * - A run whose parent is unknown is a root (the view marks it orphan from Python's `orphan` field).
 * - Hidden runs (`langsmith:hidden`) are left out unless asked for; their children move up to the nearest shown
 *   ancestor.
 * - Parent pointers that form a cycle never hang: the cycle is broken at its earliest run, which becomes a root.
 * - In the key-runs view, runs Python marked `key: false` (pass-through wrappers) are left out the same way.
 * - A filter shows its matches with their ancestors (`closure`); `flatten` walks only those.
 */
export interface TreeRun {
  run_id: string;
  parent_run_id: string | null;
  order: number;
  hidden: boolean;
  key?: boolean;
}

export interface Forest {
  roots: string[];
  children: Map<string, string[]>;
  /** Shown runs made roots to break a cycle in parent pointers. */
  cycles: Set<string>;
  /** Effective parent of each shown run (after skipping hidden runs); absent for roots. */
  parent: Map<string, string>;
  /** Every run in the forest. */
  shown: Set<string>;
}

export function buildForest(runs: readonly TreeRun[], showHidden = false, keyOnly = false): Forest {
  const byId = new Map<string, TreeRun>();
  for (const run of runs) byId.set(run.run_id, run);
  const sorted = [...byId.values()].sort((a, b) => a.order - b.order);
  const shown = (run: TreeRun): boolean => (showHidden || !run.hidden) && (!keyOnly || run.key !== false);
  const limit = sorted.length + 1;

  const children = new Map<string, string[]>();
  const parent = new Map<string, string>();
  const cycles = new Set<string>();
  const roots: string[] = [];
  const shownIds = new Set<string>();

  for (const run of sorted) {
    if (!shown(run)) continue;
    shownIds.add(run.run_id);
    // Walk up past hidden ancestors (bounded: a cycle of hidden runs cannot loop forever).
    let p = run.parent_run_id;
    let steps = 0;
    let unknown = false;
    while (p !== null && steps < limit) {
      const up = byId.get(p);
      if (!up) {
        unknown = true;
        break;
      }
      if (shown(up)) break;
      p = up.parent_run_id;
      steps++;
    }
    if (p === null || unknown || steps >= limit || p === run.run_id) {
      roots.push(run.run_id);
      if (steps >= limit || p === run.run_id) cycles.add(run.run_id);
      continue;
    }
    parent.set(run.run_id, p);
    let list = children.get(p);
    if (!list) {
      list = [];
      children.set(p, list);
    }
    list.push(run.run_id);
  }

  // Anything not reachable from a root sits on a cycle (or below one): break each at its earliest run.
  const reached = new Set<string>();
  const visit = (start: string): void => {
    const stack = [start];
    while (stack.length) {
      const id = stack.pop() as string;
      if (reached.has(id)) continue;
      reached.add(id);
      for (const child of children.get(id) ?? []) if (!reached.has(child)) stack.push(child);
    }
  };
  for (const id of roots) visit(id);
  for (const run of sorted) {
    const id = run.run_id;
    if (!shown(run) || reached.has(id)) continue;
    const p = parent.get(id);
    if (p !== undefined) {
      const siblings = children.get(p);
      if (siblings) children.set(p, siblings.filter((c) => c !== id));
      parent.delete(id);
    }
    roots.push(id);
    cycles.add(id);
    visit(id);
  }
  roots.sort((a, b) => (byId.get(a)?.order ?? 0) - (byId.get(b)?.order ?? 0));
  return { roots, children, cycles, parent, shown: shownIds };
}

export interface Row {
  id: string;
  depth: number;
  hasChildren: boolean;
  expanded: boolean;
}

/**
 * Depth-first rows of the forest; children of collapsed nodes are skipped. Cycle-safe. With `include` (an
 * ancestor-closed set, see `closure`), only those runs are walked, and `hasChildren` counts only included ones.
 */
export function flatten(
  forest: Forest,
  isExpanded: (id: string, depth: number) => boolean,
  include?: ReadonlySet<string>,
): Row[] {
  const rows: Row[] = [];
  const seen = new Set<string>();
  const stack: Array<[string, number]> = [];
  for (let i = forest.roots.length - 1; i >= 0; i--) {
    const id = forest.roots[i] as string;
    if (!include || include.has(id)) stack.push([id, 0]);
  }
  while (stack.length) {
    const [id, depth] = stack.pop() as [string, number];
    if (seen.has(id)) continue;
    seen.add(id);
    const all = forest.children.get(id) ?? [];
    const kids = include ? all.filter((k) => include.has(k)) : all;
    const expanded = kids.length > 0 && isExpanded(id, depth);
    rows.push({ id, depth, hasChildren: kids.length > 0, expanded });
    if (expanded) for (let i = kids.length - 1; i >= 0; i--) stack.push([kids[i] as string, depth + 1]);
  }
  return rows;
}

/** Ids of every shown ancestor of the given runs (to auto-expand the path to running runs). */
export function ancestorsOf(forest: Forest, ids: Iterable<string>): Set<string> {
  const out = new Set<string>();
  for (const id of ids) {
    let p = forest.parent.get(id);
    while (p !== undefined && !out.has(p)) {
      out.add(p);
      p = forest.parent.get(p);
    }
  }
  return out;
}

/** The matched runs that are in the forest, plus all their ancestors (the rows a filtered tree shows). */
export function closure(forest: Forest, matched: Iterable<string>): Set<string> {
  const out = new Set<string>();
  for (const id of matched) {
    if (!forest.shown.has(id) || out.has(id)) continue;
    out.add(id);
    let p = forest.parent.get(id);
    while (p !== undefined && !out.has(p)) {
      out.add(p);
      p = forest.parent.get(p);
    }
  }
  return out;
}
