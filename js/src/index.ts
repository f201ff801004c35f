/**
 * nbcallbacks trace widget: anywidget front end of `nbcallbacks/widget.py` (`TraceWidget`).
 *
 * `initialize` creates one store per model (runs, streamed pieces, totals, handler errors), loads the `snapshot`
 * trait, applies `delta` messages and asks for a `snapshot` message on load (`hello`) and on a gap (`resync`).
 * `render` builds one view over that store; several views of one model share it.
 *
 * DOM hooks (stable; browser tests rely on them). Every class is prefixed `nbc-`.
 *
 *   .nbc-root                  one view. data-tab = "stream" | "tree" | "timing" (active tab), data-seq = last
 *                              applied delta sequence number, data-cursor = recorder events shown (equals
 *                              `Recorder.event_count` once everything arrived), data-running = "true" | "false",
 *                              data-has-selection = "true" | "false"
 *   .nbc-header                header. .nbc-live[data-live="true"|"false"] (pulsing while runs run),
 *                              .nbc-title, .nbc-stat[data-stat="runs"|"errors"|"tokens"|"wall"],
 *                              .nbc-dropped (dropped-data note, hidden when none),
 *                              details.nbc-handler-errors[data-count] (hidden when none) > li.nbc-handler-error
 *   .nbc-tab[data-tab=...]     tab buttons (role=tab, aria-selected); .nbc-panel[data-panel=...] (role=tabpanel).
 *                              The first tab follows the content (Tree for a trace without model runs) until
 *                              the user picks one.
 *   .nbc-navbar                one filter for the tree, the table and the stream of the view:
 *                              input[type=search][data-action="filter"] (labelled "Filter"; `/` focuses it while
 *                              the widget has focus, Escape clears it, typing is debounced 60 ms, Enter applies
 *                              at once; syntax in query.ts), .nbc-match-count ("12 of 10,001 runs", empty when
 *                              unfiltered; data-count), button[data-action="errors-only"|"key-runs"]
 *                              (aria-pressed), button[data-action="prev-error"|"next-error"] (keys Shift+E / E).
 *                              .nbc-root[data-filtered="true"|"false"]. The header's error count
 *                              (button.nbc-stat[data-stat="errors"]) turns errors only on.
 *   Selection                  click selects a run, ctrl/cmd-click toggles one, shift-click selects the range
 *                              over the shown order (tree and table); aria-selected on every selected row;
 *                              synced as `selected_run_ids` (all) and `selected_run_id` (the last clicked).
 *   Stream panel
 *     .nbc-stream              the scrolling transcript; .nbc-empty while there is no model run
 *     section.nbc-block        one model run: data-run-id, data-run-type, data-status
 *                              ("running"|"ok"|"error"|"interrupted"|"abandoned"), data-selected="true"
 *       .nbc-block-name        run name (button: selects the run), .nbc-block-model, .nbc-block-tokens,
 *                              .nbc-block-time (duration; elapsed with data-live="true" while running),
 *                              .nbc-badge[data-badge="node"] (LangGraph node · step),
 *       .nbc-status[data-status], .nbc-block-error (error text)
 *       .nbc-block-body > .nbc-seg[data-kind="text"|"tool_call"|"reasoning"]  streamed text, in order
 *     button.nbc-jump          "jump to latest" (hidden while following the bottom)
 *   Tree panel
 *     button[data-action="expand-all"|"collapse-all"], input[data-action="show-hidden"] (checkbox)
 *     .nbc-tree                role=tree, focusable, aria-activedescendant; rows are virtualised (only rows
 *                              near the visible area exist, in shown order); keys: ArrowUp/Down move,
 *                              ArrowRight expands or enters, ArrowLeft collapses or goes to the parent,
 *                              Home/End, Enter or Space selects
 *     .nbc-row                 role=treeitem: data-run-id, data-status, data-run-type, data-depth (0 = root),
 *                              aria-level, aria-expanded (only with children), aria-selected, data-active,
 *                              data-orphan="true", data-hidden-run="true";
 *                              children .nbc-caret (click toggles), .nbc-icon, .nbc-name,
 *                              .nbc-badge[data-badge="node"|"step"|"orphan"|"cycle"|"hidden"|"unstarted"],
 *                              .nbc-status[data-status], .nbc-dur (elapsed, data-live="true", while running),
 *                              .nbc-tok, .nbc-wf (waterfall track; title: start, duration, TTFT, tokens) >
 *                              [data-waterfall=<run type>] (the bar: style left/width in % of the scope,
 *                              data-status, data-live="true" while it grows) > .nbc-wf-tick (TTFT, hidden
 *                              when none); while filtered, data-match="true" (a match) or "context" (an
 *                              ancestor, greyed), matched name text in mark.nbc-hl
 *     button[data-action="zoom"] (aria-pressed): the waterfall's scope is the selected run, or the trace
 *     button[data-action="compare"] (shown while exactly two runs are selected, if there is a kernel): sends
 *                              {"type": "compare", a, b, request} (selection order) and opens the Compare panel
 *                              over the tree (.nbc-root[data-comparing="true"], the inspector hidden):
 *     .nbc-compare[data-state="pending"|"ready"|"error"]  button[data-action="close-compare"] (or Escape),
 *                              .nbc-cmp-counts (data-only-a, data-only-b), .nbc-cmp-sum[data-side] (label, totals),
 *                              .nbc-cmp-note (truncation note; data-error="true" for an error),
 *                              .nbc-cmp-rows (role=listbox, focusable; ArrowUp/Down/Home/End) >
 *                              .nbc-cmp-row (role=option, aria-selected, data-index, data-depth, data-run-type,
 *                              data-only="a"|"b" for a run on one side only, data-marks="status output") >
 *                              .nbc-cmp-cell[data-side="a"|"b"] (data-missing="true" on the absent side;
 *                              .nbc-name, .nbc-status[data-status], .nbc-cmp-meta), .nbc-cmp-wf > .nbc-wf-bar
 *                              (one time scale for both sides), .nbc-cmp-delta > span[data-kind][data-tone];
 *                              .nbc-cmp-detail (the clicked row): .nbc-cmp-out[data-side] > pre.nbc-cmp-pre
 *   Timing panel
 *     button[data-group="runs"|"name"|"type"] (aria-checked)
 *     .nbc-thead .nbc-th[data-col=...][aria-sort] > button.nbc-sort (click sorts; again reverses)
 *     .nbc-tbody               focusable; ArrowUp/ArrowDown/Home/End move the selection (runs mode)
 *     .nbc-trow (virtualised, DOM order = shown order) data-run-id + data-status (runs mode) or data-group
 *                              (grouped mode), aria-selected;
 *                              cells .nbc-td[data-col="name"|"type"|"start"|"duration"|"ttft"|"tokensIn"|
 *                              "tokensOut"|"rate"] or [data-col="key"|"count"|"total"|"mean"|"p50"|"p95"]
 *   Inspector (beside the panels)
 *     aside.nbc-inspector[data-run-id]  (empty string: nothing selected)
 *       .nbc-insp-name, .nbc-insp-status[data-status], .nbc-facts (.nbc-fact-key / .nbc-fact pairs),
 *       details.nbc-section[data-section="error"|"inputs"|"outputs"|"tags"|"metadata"|"metrics"],
 *       .nbc-traceback, .nbc-chat-line[data-role] (message lists), details.nbc-json (folded JSON),
 *       button[data-action="show-stream"|"show-in-tree"|"close-inspector"]
 *     The inspector is hidden on the Stream and Timing tabs while nothing is selected.
 *
 * Untrusted text is set only through textContent / text nodes, inside `.nbc-u` elements (dir=auto, bidi
 * isolated).
 */
import type { AnyModel, Initialize, Render } from "@anywidget/types";
import { App } from "./app";
import type { InboundMsg, OutboundMsg, WidgetModel } from "./protocol";
import { fromIds } from "./selection";
import { TraceStore } from "./store";
import "./styles.css";

// anywidget gives initialize and each view a different proxy of the model, so the shared store is found by the
// model's `_uid` trait (random per widget), not by object identity.
const stores = new Map<string, TraceStore>();

function storeFor(model: AnyModel<WidgetModel>): TraceStore {
  const uid = model.get("_uid") || "";
  let store = stores.get(uid);
  if (!store) {
    store = new TraceStore();
    stores.set(uid, store);
  }
  return store;
}

/** Send to the kernel if there is one (static HTML exports have none; their send may throw). */
function trySend(model: AnyModel<WidgetModel>, content: OutboundMsg): void {
  try {
    model.send(content);
  } catch {
    // No kernel: the snapshot trait is all there is, and it is complete.
  }
}

/** A static page's model (`standalone.ts`) says it has no kernel to answer requests. */
function hasKernel(model: AnyModel<WidgetModel>): boolean {
  return !(model as unknown as { nbcNoKernel?: boolean }).nbcNoKernel;
}

const initialize: Initialize<WidgetModel> = ({ model }) => {
  const store = storeFor(model);
  store.onResync = () => trySend(model, { type: "resync" });
  store.applySnapshot(model.get("snapshot"));
  const fromModel = (): void => {
    const ids = model.get("selected_run_ids");
    const id = model.get("selected_run_id") || "";
    // A state without `selected_run_ids` (saved by an older version) selects `selected_run_id` alone.
    store.setSelection(fromIds(Array.isArray(ids) && ids.length ? ids : id ? [id] : [], id));
  };
  fromModel();
  const onSnapshot = (): void => {
    store.applySnapshot(model.get("snapshot"));
  };
  // Python keeps the two traits consistent; a change of either (or both in one message) reads them both.
  const onSelected = (): void => fromModel();
  const onMsg = (msg: InboundMsg): void => {
    if (!msg || typeof msg !== "object") return;
    if (msg.type === "delta") store.applyDelta(msg);
    else if (msg.type === "snapshot") {
      store.observeKernelTime(msg.time);
      store.applySnapshot(msg);
    }
  };
  model.on("change:snapshot", onSnapshot);
  model.on("change:selected_run_id", onSelected);
  model.on("change:selected_run_ids", onSelected);
  model.on("msg:custom", onMsg);
  trySend(model, { type: "hello", seq: store.seq }); // answered with a snapshot only if this one is behind
  return () => {
    model.off("change:snapshot", onSnapshot);
    model.off("change:selected_run_id", onSelected);
    model.off("change:selected_run_ids", onSelected);
    model.off("msg:custom", onMsg);
    stores.delete(model.get("_uid") || "");
  };
};

const render: Render<WidgetModel> = ({ model, el }) => {
  const store = storeFor(model);
  const app = new App({
    store,
    title: model.get("title") || "",
    onSelect: (selection) => {
      model.set("selected_run_ids", selection.ids);
      model.set("selected_run_id", selection.primary);
      try {
        model.save_changes();
      } catch {
        // No kernel to tell (static HTML): the selection stays local.
      }
    },
    ...(hasKernel(model)
      ? { onCompare: (a: string, b: string, request: string) => trySend(model, { type: "compare", a, b, request }) }
      : {}),
  });
  el.classList.add("nbc-host");
  el.appendChild(app.el);
  const onTitle = (): void => app.setTitle(model.get("title") || "");
  // Every view hears every answer; each keeps the one to its own request.
  const onMsg = (msg: InboundMsg): void => {
    if (msg && typeof msg === "object" && msg.type === "comparison") app.receiveComparison(msg);
  };
  model.on("change:title", onTitle);
  model.on("msg:custom", onMsg);
  return () => {
    model.off("change:title", onTitle);
    model.off("msg:custom", onMsg);
    app.destroy();
  };
};

export default { initialize, render };
