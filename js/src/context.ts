/** What the components of one view share: the model's store, and the view's cross-panel actions. */
import type { TraceStore } from "./store";

export interface ViewContext {
  store: TraceStore;
  /** Element id prefix unique to this view. */
  prefix: string;
  /** Select a run everywhere (store, model `selected_run_id`). */
  select(runId: string): void;
  /** Show a model run's block in the Stream panel. */
  showStream(runId: string): void;
  /** Show a run in the Tree panel. */
  showInTree(runId: string): void;
}
