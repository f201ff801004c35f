/**
 * One view of the widget: header, tab bar (Stream | Tree | Timing) and the shared inspector. Store changes are
 * merged and painted once per animation frame; hidden panels catch up when shown.
 */
import type { ViewContext } from "./context";
import { h, setAttr, uniquePrefix } from "./dom";
import { Header } from "./header";
import { Inspector } from "./inspector";
import type { TraceStore } from "./store";
import { type Change, emptyChange, mergeChange } from "./store";
import { StreamView } from "./stream";
import { TimingTable } from "./table";
import { TreeView } from "./treeview";

export type TabName = "stream" | "tree" | "timing";

export interface AppOptions {
  store: TraceStore;
  title: string;
  /** Push a selection to the model (`selected_run_id`). */
  onSelect: (runId: string) => void;
}

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
  private pending: Change = emptyChange();
  private pendingTree: Change = emptyChange();
  private pendingTable: Change = emptyChange();
  private frame = 0;
  private timer = 0;
  private readonly unsubscribe: () => void;

  constructor(options: AppOptions) {
    const prefix = uniquePrefix();
    this.ctx = {
      store: options.store,
      prefix,
      select: (id) => {
        options.store.select(id);
        options.onSelect(id);
      },
      showStream: (id) => {
        this.setTab("stream");
        this.stream.highlight(id, true);
      },
      showInTree: (id) => {
        this.ctx.select(id);
        this.setTab("tree");
        this.tree.reveal(id);
      },
    };
    this.el = h("div", "nbc-root");
    this.header = new Header(this.ctx, options.title);
    this.stream = new StreamView(this.ctx);
    this.tree = new TreeView(this.ctx);
    this.table = new TimingTable(this.ctx);
    this.inspector = new Inspector(this.ctx);

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
      tabbar.appendChild(tab);
      panels.appendChild(panel);
      this.tabs.set(name, { tab, panel });
    }
    main.append(panels, this.inspector.el);
    this.el.append(this.header.el, tabbar, main);
    this.setTab("stream");

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

  private onChange(change: Change): void {
    mergeChange(this.pending, change);
    if (!this.frame) this.frame = requestAnimationFrame(() => this.flush());
  }

  private flush(): void {
    this.frame = 0;
    const change = this.pending;
    this.pending = emptyChange();
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

  setTab(name: TabName): void {
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
    if (this.frame) cancelAnimationFrame(this.frame);
    window.clearInterval(this.timer);
    this.table.destroy();
    this.el.remove();
  }
}
