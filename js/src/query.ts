/**
 * The filter box's query language (pure): space-separated terms, all of which must match (AND), case-insensitive.
 *
 * - `field:value` matches one field: `type` (run type), `status` (display status), `node` (LangGraph node),
 *   `model`, `name`, `tag`, `error` (error type and text). `type:tool`, `status:error`, `node:agent`, `model:gpt`.
 * - Any other term matches anywhere: name, run type, status, model, node, tags, error text.
 * - Values match as substrings; `"two words"` in double quotes keeps a space inside one term.
 *
 * A run's searchable text is computed once per run (`haystackOf`) and recomputed only for runs a delta touched.
 */
import type { RunWire } from "./protocol";

export const FIELDS = ["type", "status", "node", "model", "name", "tag", "error"] as const;
export type Field = (typeof FIELDS)[number];
const FIELD_SET: ReadonlySet<string> = new Set(FIELDS);

export interface Term {
  /** `null`: free text, matched against every field. */
  field: Field | null;
  /** Lower-cased; never empty. */
  value: string;
}

export interface Query {
  text: string;
  terms: Term[];
}

/** Split on spaces outside double quotes; `field:value` terms with a known field become field terms. */
export function parseQuery(text: string): Query {
  const terms: Term[] = [];
  const re = /(?:([A-Za-z]+):)?(?:"([^"]*)"?|(\S+))/g;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    if (m[0] === "") {
      re.lastIndex++;
      continue;
    }
    const field = m[1]?.toLowerCase();
    const raw = (m[2] ?? m[3] ?? "").toLowerCase();
    if (field !== undefined && FIELD_SET.has(field)) {
      if (raw) terms.push({ field: field as Field, value: raw });
    } else if (field === undefined && raw.endsWith(":") && FIELD_SET.has(raw.slice(0, -1))) {
      // "type:" while the value is still being typed: no term yet.
    } else {
      const value = (field === undefined ? raw : `${field}:${raw}`).toLowerCase();
      if (value) terms.push({ field: null, value });
    }
  }
  return { text, terms };
}

/** Lower-cased text of each field of one run, and all of them joined (for free-text terms). */
export type Haystack = Record<Field | "all", string>;

const SEP = "\u0001"; // never typed, so a term cannot match across two fields

export type SearchRun = Pick<
  RunWire,
  "name" | "run_type" | "display_status" | "model" | "langgraph_node" | "tags" | "error" | "error_type"
>;

export function haystackOf(run: SearchRun): Haystack {
  const hay: Haystack = {
    type: run.run_type.toLowerCase(),
    status: run.display_status.toLowerCase(), // as Python computes it (`nbcallbacks/tree.py`)
    node: (run.langgraph_node ?? "").toLowerCase(),
    model: (run.model ?? "").toLowerCase(),
    name: run.name.toLowerCase(),
    tag: run.tags.join(SEP).toLowerCase(),
    error: [run.error_type ?? "", run.error ?? ""].join(SEP).toLowerCase(),
    all: "",
  };
  hay.all = [hay.name, hay.type, hay.status, hay.model, hay.node, hay.tag, hay.error].join(SEP);
  return hay;
}

export function matches(query: Query, hay: Haystack): boolean {
  for (const term of query.terms) {
    if (!hay[term.field ?? "all"].includes(term.value)) return false;
  }
  return true;
}

export type Range = [start: number, end: number];

/**
 * Where the query's name-matching terms (free text and `name:`) occur in `text`: sorted, merged ranges.
 * Rendered as text nodes and `<mark>` elements, never as markup.
 */
export function highlightRanges(text: string, query: Query): Range[] {
  const lower = text.toLowerCase();
  const found: Range[] = [];
  for (const term of query.terms) {
    if (term.field !== null && term.field !== "name") continue;
    let from = 0;
    for (let at = lower.indexOf(term.value, from); at >= 0; at = lower.indexOf(term.value, from)) {
      found.push([at, at + term.value.length]);
      from = at + term.value.length;
    }
  }
  found.sort((a, b) => a[0] - b[0]);
  const merged: Range[] = [];
  for (const r of found) {
    const last = merged[merged.length - 1];
    if (last && r[0] <= last[1]) last[1] = Math.max(last[1], r[1]);
    else merged.push([r[0], r[1]]);
  }
  return merged;
}
