/**
 * What the view is narrowed to (pure, no DOM): a query, errors only, key runs only. Shared by the tree, the
 * timing table and the stream of one view.
 *
 * The searchable text of each run is computed once and recomputed only for the runs a delta touched, and the
 * set of matching runs is kept up to date the same way, so a live trace costs O(touched runs) per delta; a new
 * query costs one pass of substring tests over the runs (about a millisecond per 10,000).
 */
import type { RunWire } from "./protocol";
import { type Haystack, haystackOf, matches, parseQuery, type Query } from "./query";

const ERROR_STATUSES: ReadonlySet<string> = new Set(["error", "interrupted"]);

export function isErrorRun(run: Pick<RunWire, "display_status">): boolean {
  return ERROR_STATUSES.has(run.display_status);
}

/** Python's `key` (`nbcallbacks/keyruns.py`); a payload saved before the field existed counts every run as key. */
function isKeyRun(run: Pick<RunWire, "key">): boolean {
  return run.key !== false;
}

export class NavFilter {
  query: Query = parseQuery("");
  errorsOnly = false;
  keyOnly = false;
  private readonly hay = new Map<string, Haystack>();
  /** Runs passing every active predicate (valid only while `active`). */
  private matched = new Set<string>();

  get active(): boolean {
    return this.query.terms.length > 0 || this.errorsOnly || this.keyOnly;
  }

  /** The text predicates only (the query and errors only): what the tree shows with ancestors. */
  get narrowing(): boolean {
    return this.query.terms.length > 0 || this.errorsOnly;
  }

  passes(run: RunWire): boolean {
    if (this.errorsOnly && !isErrorRun(run)) return false;
    if (this.keyOnly && !isKeyRun(run)) return false;
    if (this.query.terms.length === 0) return true;
    let hay = this.hay.get(run.run_id);
    if (!hay) {
      hay = haystackOf(run);
      this.hay.set(run.run_id, hay);
    }
    return matches(this.query, hay);
  }

  /** Is this run shown (always true while the filter is inactive)? */
  has(runId: string): boolean {
    return !this.active || this.matched.has(runId);
  }

  /** The matching run ids (empty while inactive: check `active`). */
  get matchedIds(): ReadonlySet<string> {
    return this.matched;
  }

  get count(): number {
    return this.matched.size;
  }

  /** Recompute everything (a new query or toggle, or a snapshot replaced the runs). */
  rebuild(runs: Iterable<RunWire>, resetText = false): void {
    if (resetText) this.hay.clear();
    const next = new Set<string>();
    if (this.active) for (const run of runs) if (this.passes(run)) next.add(run.run_id);
    this.matched = next;
  }

  /** Runs changed or arrived: refresh their text and membership. Returns true when the matched set changed. */
  update(runs: Iterable<RunWire>): boolean {
    let changed = false;
    for (const run of runs) {
      this.hay.delete(run.run_id);
      if (!this.active) continue;
      const now = this.passes(run);
      if (now !== this.matched.has(run.run_id)) {
        if (now) this.matched.add(run.run_id);
        else this.matched.delete(run.run_id);
        changed = true;
      }
    }
    return changed;
  }

  setQuery(text: string): boolean {
    if (text === this.query.text) return false;
    const next = parseQuery(text);
    const same = JSON.stringify(next.terms) === JSON.stringify(this.query.terms);
    this.query = next;
    return !same;
  }
}
