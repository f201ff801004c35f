/** What the components of one view share: the model's store, the view's filter, and its cross-panel actions. */
import type { NavFilter } from "./filter";
import type { ClickMods, Selection } from "./selection";
import type { TraceStore } from "./store";

export interface ViewContext {
  store: TraceStore;
  /** What this view is narrowed to (query, errors only, key runs); shared by its panels. */
  nav: NavFilter;
  /** Element id prefix unique to this view. */
  prefix: string;
  /** Select one run everywhere (store, model `selected_run_id` / `selected_run_ids`); "" clears. */
  select(runId: string): void;
  /** A click on a run in a list whose visible order is `order` (ctrl/cmd toggles, shift selects a range). */
  clickSelect(runId: string, mods: ClickMods, order: readonly string[]): void;
  setSelection(selection: Selection): void;
  /** Show a model run's block in the Stream panel. */
  showStream(runId: string): void;
  /** Show a run in the Tree panel. */
  showInTree(runId: string): void;
  /** Turn errors only on and show the tree. */
  showErrors(): void;
}
