/**
 * One view of the widget: header, tab bar (Stream | Tree | Timing), the navigation bar (filter box, errors only,
 * key runs) and the shared inspector. Store changes are merged and painted once per animation frame; hidden
 * panels catch up when shown. Typing in the filter box is debounced and applied in the next frame, so it never
 * holds up a live run's repaint.
 */
import { type ComparisonMsg, comparePair } from "./compare";
import { CompareView } from "./compareview";
import type { ViewContext } from "./context";
import { h, setAttr, setText, uniquePrefix } from "./dom";
import { NavFilter } from "./filter";
import { formatCount } from "./format";
import { Header } from "./header";
import { Inspector } from "./inspector";
import { isModelRun } from "./protocol";
import { clickSelect, type Selection } from "./selection";
import type { TraceStore } from "./store";
import { type Change, emptyChange, mergeChange } from "./store";
import { StreamView } from "./stream";
import { TimingTable } from "./table";
import { TreeView } from "./treeview";

export type TabName = "stream" | "tree" | "timing";

export interface AppOptions {
  store: TraceStore;
  title: string;
  /** Push a selection to the model (`selected_run_id`, `selected_run_ids`). */
  onSelect: (selection: Selection) => void;
  /**
   * Ask the kernel to compare runs `a` and `b` (answered by `receiveComparison` with the same `request`).
   * Without it (no kernel: a static page) there is no Compare button.
   */
  onCompare?: (a: string, b: string, request: string) => void;
}

const FILTER_DEBOUNCE_MS = 60;
/** A comparison not answered by then is reported (the kernel may be busy or gone). */
const COMPARE_TIMEOUT_MS = 30_000;

export class App {
  readonly el: HTMLElement;
  private readonly ctx: ViewContext;
  private readonly header: Header;
  private readonly stream: StreamView;
  private readonly tree: TreeView;
  private readonly table: TimingTable;
  private readonly inspector: Inspector;
  private readonly tabs = new Map<TabName, { tab: HTMLButtonElement; panel: HTMLElement }>();
  private tab: TabName = "stream";
  /** The tab follows the content (tree for a trace without model runs) until the user picks one. */
  private autoTab = true;
  /** The trace has a model run (for the automatic tab; kept up to date only while `autoTab`). */
  private sawModelRun = false;
  private readonly nav = new NavFilter();
  private readonly search: HTMLInputElement;
  private readonly countEl: HTMLElement;
  private readonly errorsToggle: HTMLButtonElement;
  private readonly keyToggle: HTMLButtonElement;
  private readonly compareButton: HTMLButtonElement;
  private readonly compare: CompareView;
  private readonly onCompare: ((a: string, b: string, request: string) => void) | undefined;
  private compareRequest = "";
  private compareCount = 0;
  private compareTimer = 0;
  private searchTimer = 0;
  private pending: Change = emptyChange();
  private pendingTree: Change = emptyChange();
  private pendingTable: Change = emptyChange();
  private frame = 0;
  private timer = 0;
  private readonly unsubscribe: () => void;

  constructor(options: AppOptions) {
    const prefix = uniquePrefix();
    const setSelection = (selection: Selection): void => {
      options.store.setSelection(selection);
      options.onSelect(selection);
    };
    this.ctx = {
      store: options.store,
      nav: this.nav,
      prefix,
      select: (id) => setSelection(id ? { ids: [id], primary: id, anchor: id } : { ids: [], primary: "", anchor: "" }),
      clickSelect: (id, mods, order) => setSelection(clickSelect(options.store.selection, id, mods, order)),
      setSelection,
      showStream: (id) => {
        this.setTab("stream");
        this.stream.highlight(id, true);
      },
      showInTree: (id) => {
        this.closeCompare(false); // the tree is where the run is shown
        this.ctx.select(id);
        this.setTab("tree");
        this.tree.reveal(id);
      },
      showErrors: () => {
        this.closeCompare(false);
        this.setErrorsOnly(true);
        this.setTab("tree");
      },
    };
    this.el = h("div", "nbc-root");
    this.el.dataset.comparing = "false";
    this.header = new Header(this.ctx, options.title);
    this.stream = new StreamView(this.ctx);
    this.tree = new TreeView(this.ctx);
    this.table = new TimingTable(this.ctx);
    this.inspector = new Inspector(this.ctx);
    this.onCompare = options.onCompare;
    this.compare = new CompareView({
      prefix,
      onClose: () => this.closeCompare(true),
      showInTree: (id) => this.ctx.showInTree(id),
    });
    this.compareButton = h("button", "nbc-btn nbc-compare-btn", "Compare");
    this.compareButton.type = "button";
    this.compareButton.dataset.action = "compare";
    this.compareButton.title = "Compare the two selected runs side by side (A: the first selected, B: the second)";
    this.compareButton.setAttribute("aria-label", "compare the two selected runs");
    this.compareButton.hidden = true;
    this.compareButton.addEventListener("click", () => this.startCompare());
    this.tree.toolbar.append(this.compareButton);

    const tabbar = h("div", "nbc-tabs");
    tabbar.setAttribute("role", "tablist");
    const main = h("div", "nbc-main");
    const panels = h("div", "nbc-panels");
    const defs: Array<[TabName, string, HTMLElement]> = [
      ["stream", "Stream", this.stream.el],
      ["tree", "Tree", this.tree.el],
      ["timing", "Timing", this.table.el],
    ];
    for (const [name, label, content] of defs) {
      const tab = h("button", "nbc-tab", label);
      tab.type = "button";
      tab.id = `${prefix}-tab-${name}`;
      tab.dataset.tab = name;
      tab.setAttribute("role", "tab");
      tab.addEventListener("click", () => this.setTab(name));
      tab.addEventListener("keydown", (e) => this.onTabKey(e, name));
      const panel = h("div", "nbc-panel");
      panel.id = `${prefix}-panel-${name}`;
      panel.dataset.panel = name;
      panel.setAttribute("role", "tabpanel");
      panel.setAttribute("aria-labelledby", tab.id);
      tab.setAttribute("aria-controls", panel.id);
      panel.appendChild(content);
      if (name === "tree") panel.appendChild(this.compare.el);
      tabbar.appendChild(tab);
      panels.appendChild(panel);
      this.tabs.set(name, { tab, panel });
    }
    main.append(panels, this.inspector.el);

    // Navigation bar: one filter for the tree, the table and the stream of this view.
    const navbar = h("div", "nbc-toolbar nbc-navbar");
    navbar.setAttribute("role", "search");
    const label = h("label", "nbc-search-label", "Filter");
    this.search = h("input", "nbc-search");
    this.search.type = "search";
    this.search.id = `${prefix}-search`;
    label.htmlFor = this.search.id;
    this.search.placeholder = "name, type:tool, status:error, node:agent, model:gpt   ( / )";
    this.search.spellcheck = false;
    this.search.autocomplete = "off";
    this.search.dataset.action = "filter";
    this.search.setAttribute("aria-keyshortcuts", "/");
    this.search.addEventListener("input", () => this.onSearchInput());
    this.search.addEventListener("keydown", (e) => {
      e.stopPropagation(); // typing here is text, never a notebook shortcut
      if (e.key === "Escape") {
        e.preventDefault();
        if (this.search.value) {
          this.search.value = "";
          this.applySearch();
        } else this.search.blur();
      } else if (e.key === "Enter") {
        window.clearTimeout(this.searchTimer);
        this.applySearch();
      }
    });
    this.countEl = h("span", "nbc-match-count");
    this.countEl.setAttribute("role", "status");
    this.countEl.setAttribute("aria-live", "polite");
    this.errorsToggle = this.toggleButton("errors-only", "Errors only", "Show only failed and interrupted runs, with their ancestors", () =>
      this.setErrorsOnly(!this.nav.errorsOnly),
    );
    const prev = this.errorStepButton(-1);
    const next = this.errorStepButton(1);
    this.keyToggle = this.toggleButton("key-runs", "Key runs", "Hide pass-through wrappers (RunnableSequence, routers, prompts, parsers) and lift their children", () => {
      this.nav.keyOnly = !this.nav.keyOnly;
      this.onNavChanged(true);
    });
    const errorNav = h("span", "nbc-segmented");
    errorNav.append(this.errorsToggle, prev, next);
    navbar.append(label, this.search, this.countEl, errorNav, this.keyToggle);
    this.el.addEventListener("keydown", (e) => this.onRootKey(e));

    this.el.append(this.header.el, tabbar, navbar, main);
    this.setTab("stream", true);

    const initial = emptyChange();
    initial.reset = true;
    initial.newRuns = true;
    this.onChange(initial);
    this.unsubscribe = options.store.subscribe((change) => this.onChange(change));
    // Wall time ticks while anything runs.
    this.timer = window.setInterval(() => {
      if (options.store.totals.running > 0) {
        this.header.paint(options.store.kernelNow());
        if (this.tab === "tree") this.tree.tickRunning();
        this.stream.tickRunning();
      }
    }, 1000);
  }

  /** Compare the two selected runs: open the panel (pending) and ask the kernel. */
  private startCompare(): void {
    const pair = comparePair(this.ctx.store.selection.ids);
    if (!pair || !this.onCompare) return;
    this.compareCount += 1;
    this.compareRequest = `${this.ctx.prefix}-${this.compareCount}`;
    this.setTab("tree");
    this.compare.showPending();
    this.setComparing(true);
    window.clearTimeout(this.compareTimer);
    const request = this.compareRequest;
    this.compareTimer = window.setTimeout(() => {
      if (this.compareRequest === request) this.compare.showError("No answer from the kernel (is it busy or stopped?).");
    }, COMPARE_TIMEOUT_MS);
    this.onCompare(pair[0], pair[1], request);
    this.compare.closeButton.focus();
  }

  /** The kernel's answer to a compare request; answers to other views' (or older) requests are ignored. */
  receiveComparison(msg: ComparisonMsg): void {
    if (!msg || msg.request !== this.compareRequest || !this.compareRequest) return;
    window.clearTimeout(this.compareTimer);
    this.compare.show(msg);
  }

  private closeCompare(focusButton: boolean): void {
    if (this.el.dataset.comparing !== "true") return;
    this.compareRequest = "";
    window.clearTimeout(this.compareTimer);
    this.setComparing(false);
    if (focusButton) (this.compareButton.hidden ? this.tree.focusTarget : this.compareButton).focus();
  }

  private setComparing(on: boolean): void {
    this.compare.el.hidden = !on;
    this.tree.el.hidden = on;
    this.el.dataset.comparing = on ? "true" : "false";
    if (!on && this.tab === "tree") {
      this.paintTree();
      this.tree.refresh();
    }
  }

  /** The ↑ / ↓ buttons beside "Errors only": the previous (Shift+E) or next (E) error. */
  private errorStepButton(dir: 1 | -1): HTMLButtonElement {
    const [glyph, action, title, keys] =
      dir > 0 ? ["↓", "next-error", "Next error", "E"] : ["↑", "prev-error", "Previous error", "Shift+E"];
    const b = h("button", "nbc-btn nbc-icon-btn", glyph);
    b.type = "button";
    b.dataset.action = action;
    b.title = `${title} (${keys})`;
    b.setAttribute("aria-label", title.toLowerCase());
    b.setAttribute("aria-keyshortcuts", keys);
    b.addEventListener("click", () => this.gotoError(dir));
    return b;
  }

  private toggleButton(action: string, text: string, title: string, onClick: () => void): HTMLButtonElement {
    const b = h("button", "nbc-btn nbc-toggle", text);
    b.type = "button";
    b.dataset.action = action;
    b.title = title;
    b.setAttribute("aria-pressed", "false");
    b.addEventListener("click", onClick);
    return b;
  }

  private onSearchInput(): void {
    window.clearTimeout(this.searchTimer);
    this.searchTimer = window.setTimeout(() => this.applySearch(), FILTER_DEBOUNCE_MS);
  }

  private applySearch(): void {
    this.searchTimer = 0;
    if (this.nav.setQuery(this.search.value)) this.onNavChanged(true);
    else this.nav.query = { ...this.nav.query, text: this.search.value };
  }

  private setErrorsOnly(on: boolean): void {
    if (this.nav.errorsOnly === on) return;
    this.nav.errorsOnly = on;
    this.onNavChanged(true);
  }

  /** The filter changed: recompute the matches now (one pass), repaint in the next frame. */
  private onNavChanged(rebuild: boolean): void {
    if (rebuild) this.nav.rebuild(this.ctx.store.runs.values());
    const change = emptyChange();
    change.filter = true;
    this.onChange(change);
  }

  private onRootKey(e: KeyboardEvent): void {
    const target = e.target as HTMLElement | null;
    const typing = !!target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.isContentEditable);
    if (typing || e.altKey || e.ctrlKey || e.metaKey) return;
    if (e.key === "/") {
      e.preventDefault();
      e.stopPropagation();
      this.search.focus();
      this.search.select();
    } else if (e.key === "e" || e.key === "E") {
      e.preventDefault();
      e.stopPropagation();
      this.gotoError(e.shiftKey ? -1 : 1);
    } else if (e.key === "Escape" && this.nav.active) {
      e.stopPropagation();
      this.search.value = "";
      this.nav.setQuery("");
      this.nav.errorsOnly = false;
      this.onNavChanged(true);
    } else if (["ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight", "Home", "End", "Enter", " "].includes(e.key)) {
      e.stopPropagation(); // the widget's own navigation, not the notebook's
    }
  }

  /** Select the next (1) or previous (-1) failed or interrupted run in tree order, and show it in the tree. */
  private gotoError(dir: 1 | -1): void {
    this.closeCompare(false);
    if (this.tab !== "tree") this.setTab("tree");
    const errors = this.tree.errorOrder();
    if (!errors.length) return;
    const at = errors.indexOf(this.ctx.store.selected);
    const index = at < 0 ? (dir > 0 ? 0 : errors.length - 1) : (at + dir + errors.length) % errors.length;
    const id = errors[index] as string;
    this.ctx.select(id);
    this.tree.reveal(id);
  }

  private onChange(change: Change): void {
    // Keep the matches current incrementally: O(touched runs) per delta (their search text is refreshed too).
    if (change.reset) {
      this.nav.rebuild(this.ctx.store.runs.values(), true);
      change.filter = true;
    } else if (change.runs.size) {
      const touched = [];
      for (const id of change.runs) {
        const run = this.ctx.store.runs.get(id);
        if (run) touched.push(run);
      }
      if (this.nav.update(touched)) change.filter = true;
    }
    mergeChange(this.pending, change);
    if (!this.frame) this.frame = requestAnimationFrame(() => this.flush());
  }

  private paintNav(): void {
    const { nav } = this;
    const total = this.ctx.store.runs.size;
    setText(this.countEl, nav.active ? `${formatCount(nav.count)} of ${formatCount(total)} runs` : "");
    setAttr(this.countEl, "data-count", nav.active ? String(nav.count) : null);
    setAttr(this.errorsToggle, "aria-pressed", String(nav.errorsOnly));
    setAttr(this.keyToggle, "aria-pressed", String(nav.keyOnly));
    setAttr(this.el, "data-filtered", nav.active ? "true" : "false");
  }

  private flush(): void {
    this.frame = 0;
    const change = this.pending;
    this.pending = emptyChange();
    if (this.autoTab && (change.reset || change.newRuns)) this.followContent(change);
    this.paintNav();
    mergeChange(this.pendingTree, change);
    mergeChange(this.pendingTable, change);
    this.header.paint(this.ctx.store.kernelNow());
    this.stream.paint(change);
    const selected = this.ctx.store.selected;
    if (change.selection) this.stream.highlight(selected, false);
    if (this.tab === "tree") {
      this.paintTree();
      if (change.selection && selected) this.tree.scrollTo(selected);
    }
    if (this.tab === "timing") {
      this.paintTable();
      if (change.selection && selected) this.table.scrollTo(selected);
    }
    this.inspector.paint(change.reset);
    setAttr(this.el, "data-seq", String(this.ctx.store.seq));
    setAttr(this.el, "data-cursor", String(this.ctx.store.cursor));
    setAttr(this.el, "data-running", this.ctx.store.totals.running > 0 ? "true" : "false");
    setAttr(this.el, "data-has-selection", this.ctx.store.selected ? "true" : "false");
    this.compareButton.hidden = !this.onCompare || comparePair(this.ctx.store.selection.ids) === null;
  }

  /** The automatic tab: the stream once there is a model run, else the tree. Looks only at runs new since last time. */
  private followContent(change: Change): void {
    const { store } = this.ctx;
    if (change.reset) this.sawModelRun = false;
    if (!this.sawModelRun) {
      for (const id of change.reset ? store.runIds : change.runs) {
        const run = store.runs.get(id);
        if (run && isModelRun(run)) {
          this.sawModelRun = true;
          break;
        }
      }
    }
    if (store.runs.size === 0) return;
    const want: TabName = this.sawModelRun ? "stream" : "tree";
    if (want !== this.tab) this.setTab(want, true);
  }

  private paintTree(): void {
    const change = this.pendingTree;
    this.pendingTree = emptyChange();
    this.tree.paint(change);
  }

  private paintTable(): void {
    const change = this.pendingTable;
    this.pendingTable = emptyChange();
    this.table.paint(change);
  }

  setTitle(title: string): void {
    this.header.setTitle(title);
  }

  /** Show a tab; any call but the automatic choice stops the tab from following the content. */
  setTab(name: TabName, auto = false): void {
    if (!auto) this.autoTab = false;
    this.tab = name;
    for (const [n, { tab, panel }] of this.tabs) {
      const on = n === name;
      tab.setAttribute("aria-selected", String(on));
      tab.tabIndex = on ? 0 : -1;
      panel.hidden = !on;
    }
    this.el.dataset.tab = name;
    if (name === "tree") {
      this.paintTree();
      this.tree.refresh();
      if (this.ctx.store.selected) this.tree.scrollTo(this.ctx.store.selected);
    } else if (name === "timing") {
      this.paintTable();
      this.table.refresh();
    }
  }

  private onTabKey(e: KeyboardEvent, name: TabName): void {
    const order: TabName[] = ["stream", "tree", "timing"];
    const i = order.indexOf(name);
    let next: TabName | undefined;
    if (e.key === "ArrowRight") next = order[(i + 1) % order.length];
    else if (e.key === "ArrowLeft") next = order[(i + order.length - 1) % order.length];
    if (!next) return;
    e.preventDefault();
    this.setTab(next);
    this.tabs.get(next)?.tab.focus();
  }

  destroy(): void {
    this.unsubscribe();
    window.clearTimeout(this.searchTimer);
    if (this.frame) cancelAnimationFrame(this.frame);
    window.clearInterval(this.timer);
    window.clearTimeout(this.compareTimer);
    this.table.destroy();
    this.el.remove();
  }
}
