/**
 * Multi-selection (pure): click selects one run, ctrl/cmd-click toggles one, shift-click selects the range from
 * the anchor (the last plainly or ctrl-clicked run) to the clicked run over the visible order; ctrl+shift adds
 * the range to the selection. The primary run (shown in the inspector, `selected_run_id`) is the clicked one.
 */
export interface Selection {
  /** Selected run ids, in the order they were added. */
  ids: string[];
  primary: string;
  anchor: string;
}

export const EMPTY_SELECTION: Selection = { ids: [], primary: "", anchor: "" };

export interface ClickMods {
  toggle: boolean;
  range: boolean;
}

export function modsOf(e: Pick<MouseEvent, "ctrlKey" | "metaKey" | "shiftKey">): ClickMods {
  return { toggle: e.ctrlKey || e.metaKey, range: e.shiftKey };
}

export function clickSelect(sel: Selection, id: string, mods: ClickMods, order: readonly string[]): Selection {
  if (mods.range && sel.anchor) {
    const a = order.indexOf(sel.anchor);
    const b = order.indexOf(id);
    if (a >= 0 && b >= 0) {
      const range = order.slice(Math.min(a, b), Math.max(a, b) + 1);
      const ids = mods.toggle ? [...sel.ids.filter((x) => !range.includes(x)), ...range] : range;
      return { ids, primary: id, anchor: sel.anchor };
    }
  }
  if (mods.toggle) {
    if (sel.ids.includes(id)) {
      const ids = sel.ids.filter((x) => x !== id);
      const primary = sel.primary === id ? (ids[ids.length - 1] ?? "") : sel.primary;
      return { ids, primary, anchor: id };
    }
    return { ids: [...sel.ids, id], primary: id, anchor: id };
  }
  return { ids: [id], primary: id, anchor: id };
}

/** A selection set from outside (Python): keep the primary if it is still selected, else the last id. */
export function fromIds(ids: readonly string[], primary: string): Selection {
  const unique = [...new Set(ids.filter((x) => typeof x === "string" && x))];
  const p = unique.includes(primary) ? primary : (unique[unique.length - 1] ?? "");
  return { ids: unique, primary: p, anchor: p };
}
