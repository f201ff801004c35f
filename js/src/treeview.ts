/**
 * The run tree: virtualised rows (fixed height), expand/collapse per node and all at once, hidden runs behind a
 * toggle, the path to running runs auto-expanded, keyboard navigation (WAI-ARIA tree pattern with
 * aria-activedescendant, because rows come and go while scrolling). With a filter, matches show with their
 * ancestors (greyed) and matched name text highlighted; in the key-runs view, wrappers are left out and their
 * children lifted. Every row ends with a waterfall bar (start and duration in the trace, or in a zoomed run).
 */
import type { ViewContext } from "./context";
import { h, runTypeGlyph, setAttr, setHighlighted, setText, untrusted } from "./dom";
import { isErrorRun } from "./filter";
import { formatCount, formatDuration, formatSeconds, formatUsd } from "./format";
import { elapsed, tokenTotal } from "./metrics";
import { isPriceUnknown, type RunWire } from "./protocol";
import { highlightRanges } from "./query";
import { modsOf } from "./selection";
import type { Change } from "./store";
import { ancestorsOf, buildForest, closure, flatten, type Forest, type Row } from "./tree";
import { VirtualList } from "./virtual";
import { type Bar, barOf, runScope, type Scope, TraceSpan } from "./waterfall";

export const TREE_ROW_HEIGHT = 26;
const MAX_INDENT_LEVELS = 24;

type Mode = "auto" | "all" | "none";

const STATUS_GLYPH: Record<string, string> = {
  running: "",
  ok: "✓",
  error: "✕",
  interrupted: "⏸",
  abandoned: "⊘",
};

export class TreeView {
  readonly el: HTMLElement;
  private readonly viewport: HTMLElement;
  private readonly list: VirtualList;
  private readonly hiddenToggle: HTMLInputElement;
  private readonly hiddenLabel: HTMLElement;
  private forest: Forest = buildForest([]);
  private rows: Row[] = [];
  private rowIndex = new Map<string, number>();
  private readonly explicit = new Map<string, boolean>();
  private mode: Mode = "auto";
  /** Runs Python shows as running, and `runningPath`: them and their ancestors (auto-expanded). */
  private running = new Set<string>();
  private runningPath = new Set<string>();
  private showHidden = false;
  private active = "";
  private structureDirty = true;
  /** Rows to rebuild from the cached forest (the filter changed), without rebuilding the forest. */
  private rowsDirty = false;
  private include: Set<string> | undefined;
  private keyOnly = false;
  private scope: Scope = { start: 0, end: 1 };
  /** The whole trace's extent, rebuilt in repaint() and added to as runs change, so "now" moving costs no pass. */
  private readonly span = new TraceSpan();
  private zoomed = "";
  private readonly zoomButton: HTMLButtonElement;
  private order: string[] = [];
  /** The tree's toolbar (the app adds its Compare button there). */
  readonly toolbar: HTMLElement;

  constructor(private readonly ctx: ViewContext) {
    this.el = h("div", "nbc-tree-wrap");
    const bar = h("div", "nbc-toolbar");
    this.toolbar = bar;
    const expandAll = h("button", "nbc-btn", "Expand all");
    expandAll.type = "button";
    expandAll.dataset.action = "expand-all";
    expandAll.addEventListener("click", () => this.setMode("all"));
    const collapseAll = h("button", "nbc-btn", "Collapse all");
    collapseAll.type = "button";
    collapseAll.dataset.action = "collapse-all";
    collapseAll.addEventListener("click", () => this.setMode("none"));
    const label = h("label", "nbc-check");
    this.hiddenToggle = h("input");
    this.hiddenToggle.type = "checkbox";
    this.hiddenToggle.dataset.action = "show-hidden";
    this.hiddenToggle.addEventListener("change", () => {
      this.showHidden = this.hiddenToggle.checked;
      this.structureDirty = true;
      this.repaint();
    });
    this.hiddenToggle.setAttribute("aria-label", "show hidden runs");
    this.hiddenLabel = h("span", "", "hidden runs");
    label.append(this.hiddenToggle, this.hiddenLabel);
    this.zoomButton = h("button", "nbc-btn", "Zoom to run");
    this.zoomButton.type = "button";
    this.zoomButton.dataset.action = "zoom";
    this.zoomButton.title = "Scale the waterfall to the selected run (click again for the whole trace)";
    this.zoomButton.setAttribute("aria-pressed", "false");
    this.zoomButton.addEventListener("click", () => this.toggleZoom());
    bar.append(expandAll, collapseAll, this.zoomButton, label);

    this.viewport = h("div", "nbc-tree nbc-scroll nbc-vlist");
    this.viewport.setAttribute("role", "tree");
    this.viewport.setAttribute("aria-label", "runs");
    this.viewport.tabIndex = 0;
    this.list = new VirtualList(this.viewport, {
      rowHeight: TREE_ROW_HEIGHT,
      create: () => this.createRow(),
      paint: (el, index, key) => this.paintRow(el, index, key),
    });
    this.viewport.addEventListener("keydown", (e) => this.onKey(e));
    this.viewport.addEventListener("focus", () => {
      if (!this.active && this.rows.length) this.setActive((this.rows[0] as Row).id);
    });
    const empty = h("div", "nbc-empty nbc-tree-empty", "No runs yet.");
    this.el.append(bar, this.viewport, empty);
  }

  /** The element that takes keyboard focus in the tree. */
  get focusTarget(): HTMLElement {
    return this.viewport;
  }

  private setMode(mode: Mode): void {
    this.mode = mode;
    this.explicit.clear();
    this.rowsDirty = true;
    this.repaint();
  }

  private isExpanded = (id: string, depth: number): boolean => {
    const choice = this.explicit.get(id);
    if (choice !== undefined) return choice;
    if (this.mode === "all" || this.include) return true;
    if (this.runningPath.has(id)) return true;
    return this.mode === "auto" && depth < 2;
  };

  paint(change: Change): void {
    const { store } = this.ctx;
    if (change.reset || change.newRuns || this.keyOnly !== this.ctx.nav.keyOnly) this.structureDirty = true;
    if (change.filter) this.rowsDirty = true;
    if (!this.structureDirty) {
      // A run started or ended: the running path (and so what auto-expands) moves, the forest does not.
      for (const id of change.runs) {
        const run = store.runs.get(id);
        if (run && (run.display_status === "running") !== this.running.has(id)) {
          this.rowsDirty = true;
          break;
        }
      }
    }
    if (this.structureDirty || this.rowsDirty) {
      this.repaint();
      return;
    }
    for (const id of change.runs) {
      this.list.markDirty(id);
      const run = store.runs.get(id);
      if (run) this.span.add(id, run);
    }
    if (change.selection) this.list.markAllDirty();
    this.tickRunning(); // elapsed times and waterfall bars of running rows move together
  }

  private repaint(): void {
    const { store, nav } = this.ctx;
    if (this.structureDirty) {
      const runs = store.orderedRuns();
      this.keyOnly = nav.keyOnly;
      this.forest = buildForest(runs, this.showHidden, this.keyOnly);
      const hidden = runs.filter((r) => r.hidden).length;
      setText(this.hiddenLabel, `hidden runs (${formatCount(hidden)})`);
      this.el.dataset.empty = runs.length === 0 ? "true" : "false";
    }
    this.running = new Set();
    this.span.clear();
    for (const run of store.runs.values()) {
      if (run.display_status === "running") this.running.add(run.run_id);
      this.span.add(run.run_id, run);
    }
    this.runningPath = ancestorsOf(this.forest, this.running);
    for (const id of this.running) this.runningPath.add(id);
    this.include = nav.narrowing ? closure(this.forest, nav.matchedIds) : undefined;
    this.rows = flatten(this.forest, this.isExpanded, this.include);
    this.order = this.rows.map((r) => r.id);
    this.rowIndex = new Map(this.order.map((id, i) => [id, i]));
    this.updateScope();
    this.list.setKeys(this.order);
    this.list.render();
    this.structureDirty = false;
    this.rowsDirty = false;
    setAttr(this.el, "data-filtered", this.include ? "true" : null);
    setAttr(this.el, "data-key-runs", this.keyOnly ? "true" : null);
    if (this.active && !this.rowIndex.has(this.active)) this.active = "";
    this.updateActiveDescendant();
  }

  /** The waterfall's time scope: the zoomed run, else the whole trace (growing while anything runs). */
  private updateScope(): void {
    const { store } = this.ctx;
    const now = store.kernelNow();
    const zoomed = this.zoomed ? store.runs.get(this.zoomed) : undefined;
    this.scope = zoomed ? runScope(zoomed, now) : (this.span.at(now) ?? { start: 0, end: 1 });
  }

  private toggleZoom(): void {
    const target = this.zoomed ? "" : this.ctx.store.selected;
    this.zoomed = target;
    this.zoomButton.setAttribute("aria-pressed", String(Boolean(target)));
    setText(this.zoomButton, target ? "Whole trace" : "Zoom to run");
    setAttr(this.el, "data-zoomed", target || null);
    this.updateScope();
    this.list.markAllDirty();
    this.list.render();
  }

  /** Failed and interrupted runs in tree order, collapsed branches included (next/previous error). */
  errorOrder(): string[] {
    const rows = flatten(this.forest, () => true, this.include);
    const out: string[] = [];
    for (const row of rows) {
      const run = this.ctx.store.runs.get(row.id);
      if (run && isErrorRun(run)) out.push(row.id);
    }
    return out;
  }

  private createRow(): HTMLElement {
    const row = h("div", "nbc-row");
    row.setAttribute("role", "treeitem");
    const caret = h("span", "nbc-caret");
    caret.setAttribute("aria-hidden", "true");
    caret.addEventListener("click", (e) => {
      e.stopPropagation();
      const id = row.dataset.runId;
      if (id) this.toggle(id);
    });
    const icon = h("span", "nbc-icon");
    icon.setAttribute("aria-hidden", "true");
    const name = untrusted("span", "nbc-name", "");
    const badges = h("span", "nbc-badges");
    const status = h("span", "nbc-status");
    const dur = h("span", "nbc-dur");
    const tok = h("span", "nbc-tok");
    const wf = h("span", "nbc-wf");
    wf.setAttribute("aria-hidden", "true");
    const barEl = h("span", "nbc-wf-bar");
    const tick = h("span", "nbc-wf-tick");
    barEl.appendChild(tick);
    wf.appendChild(barEl);
    row.append(caret, icon, name, badges, status, dur, tok, wf);
    row.addEventListener("mousedown", (e) => {
      if (e.shiftKey) e.preventDefault(); // no text selection on shift-click
    });
    row.addEventListener("click", (e) => {
      const id = row.dataset.runId;
      if (!id) return;
      this.setActive(id);
      this.ctx.clickSelect(id, modsOf(e), this.order);
    });
    row.addEventListener("dblclick", () => {
      const id = row.dataset.runId;
      if (id) this.toggle(id);
    });
    return row;
  }

  private paintRow(el: HTMLElement, index: number, id: string): void {
    const row = this.rows[index];
    const run = this.ctx.store.runs.get(id);
    if (!row || !run) return;
    const [caret, icon, name, badges, status, dur, tok, wf] = Array.from(el.children) as HTMLElement[];
    if (!caret || !icon || !name || !badges || !status || !dur || !tok || !wf) return;
    el.id = `${this.ctx.prefix}-tree-${index}`;
    el.dataset.runId = id;
    const st = run.display_status;
    setAttr(el, "data-status", st);
    setAttr(el, "data-run-type", run.run_type);
    setAttr(el, "data-depth", String(row.depth));
    setAttr(el, "aria-level", String(row.depth + 1));
    setAttr(el, "aria-expanded", row.hasChildren ? String(row.expanded) : null);
    setAttr(el, "aria-selected", this.ctx.store.isSelected(id) ? "true" : "false");
    setAttr(el, "data-match", this.include ? (this.ctx.nav.matchedIds.has(id) ? "true" : "context") : null);
    setAttr(el, "data-active", this.active === id ? "true" : null);
    setAttr(el, "data-orphan", run.orphan ? "true" : null); // as Python resolved it (late parents included)
    setAttr(el, "data-hidden-run", run.hidden ? "true" : null);
    el.style.paddingLeft = `${4 + Math.min(row.depth, MAX_INDENT_LEVELS) * 16}px`; // aria-level keeps the truth
    setText(caret, row.hasChildren ? (row.expanded ? "▾" : "▸") : "");
    setText(icon, runTypeGlyph(run.run_type));
    icon.title = run.run_type;
    setHighlighted(name, run.name, this.include ? highlightRanges(run.name, this.ctx.nav.query) : []);
    name.title = run.name;
    const badgeTexts: Array<[string, string]> = [];
    if (run.langgraph_node && run.langgraph_node !== run.name) badgeTexts.push(["node", run.langgraph_node]);
    if (run.langgraph_step !== null) badgeTexts.push(["step", `step ${run.langgraph_step}`]);
    if (run.orphan) badgeTexts.push(["orphan", "orphan"]);
    if (this.forest.cycles.has(id)) badgeTexts.push(["cycle", "cycle"]);
    if (run.hidden) badgeTexts.push(["hidden", "hidden"]);
    if (!run.started) badgeTexts.push(["unstarted", "no start"]);
    const key = badgeTexts.map((b) => `${b[0]}=${b[1]}`).join("\u0000");
    if (badges.dataset.key !== key) {
      badges.dataset.key = key;
      badges.replaceChildren(
        ...badgeTexts.map(([kind, text]) => {
          const b = untrusted("span", "nbc-badge", text);
          b.dataset.badge = kind;
          return b;
        }),
      );
    }
    setAttr(status, "data-status", st);
    setText(status, STATUS_GLYPH[st] ?? "");
    status.title = st === "error" && run.error ? `error: ${run.error}` : st;
    const live = st === "running";
    setAttr(dur, "data-live", live ? "true" : null);
    setText(dur, formatDuration(elapsed(run, this.ctx.store.kernelNow())));
    const total = tokenTotal(run);
    const known = run.cost_usd_total === null ? "" : formatUsd(run.cost_usd_total);
    setText(tok, [total === null ? "" : `${formatCount(total)} tok`, known].filter(Boolean).join(" · "));
    const cost = costText(run);
    setAttr(tok, "title", cost || null);
    this.paintBar(wf, run, st, total);
  }

  private paintBar(wf: HTMLElement, run: RunWire, st: string, total: number | null): void {
    const barEl = wf.firstElementChild as HTMLElement;
    const now = this.ctx.store.kernelNow();
    const bar = this.placeBar(wf, run, now);
    setAttr(barEl, "data-waterfall", run.run_type);
    setAttr(barEl, "data-status", st);
    const lines = [
      `start +${formatSeconds(run.start - this.scope.start)}`,
      `duration ${formatDuration(elapsed(run, now))}${bar.live ? " (running)" : ""}`,
    ];
    if (run.ttft_s !== null) lines.push(`TTFT ${formatDuration(run.ttft_s)}`);
    if (total !== null) lines.push(`${formatCount(total)} tokens`);
    const cost = costText(run);
    if (cost) lines.push(cost);
    if (isErrorRun(run)) lines.push(st);
    const title = lines.join(" · ");
    if (wf.title !== title) wf.title = title;
  }

  /** A row's bar geometry in the current scope (all that changes in a row that is not running when only now moves). */
  private placeBar(wf: HTMLElement, run: RunWire, now: number): Bar {
    const barEl = wf.firstElementChild as HTMLElement;
    const tick = barEl.firstElementChild as HTMLElement;
    const bar = barOf(run, this.scope, now);
    setStyle(barEl, "left", `${(bar.left * 100).toFixed(3)}%`);
    setStyle(barEl, "width", `${(bar.width * 100).toFixed(3)}%`);
    setAttr(barEl, "data-live", bar.live ? "true" : null);
    if (tick.hidden !== (bar.tick === null)) tick.hidden = bar.tick === null;
    if (bar.tick !== null && bar.width > 0) {
      setStyle(tick, "left", `${(((bar.tick - bar.left) / bar.width) * 100).toFixed(3)}%`);
    }
    return bar;
  }

  private toggle(id: string): void {
    const index = this.rowIndex.get(id);
    const row = index === undefined ? undefined : this.rows[index];
    if (!row || !row.hasChildren) return;
    this.explicit.set(id, !row.expanded);
    this.rowsDirty = true;
    this.repaint();
  }

  private setActive(id: string): void {
    const old = this.active;
    this.active = id;
    if (old) this.list.markDirty(old);
    this.list.markDirty(id);
    const index = this.rowIndex.get(id);
    if (index !== undefined) this.list.scrollToIndex(index);
    else this.list.render();
    this.updateActiveDescendant();
  }

  private updateActiveDescendant(): void {
    const index = this.active ? this.rowIndex.get(this.active) : undefined;
    setAttr(this.viewport, "aria-activedescendant", index === undefined ? null : `${this.ctx.prefix}-tree-${index}`);
  }

  private onKey(e: KeyboardEvent): void {
    if (!this.rows.length) return;
    let index = this.rowIndex.get(this.active) ?? -1;
    const row = this.rows[index];
    switch (e.key) {
      case "ArrowDown":
        index = Math.min(this.rows.length - 1, index + 1);
        break;
      case "ArrowUp":
        index = Math.max(0, index - 1);
        break;
      case "Home":
        index = 0;
        break;
      case "End":
        index = this.rows.length - 1;
        break;
      case "ArrowRight":
        if (row?.hasChildren && !row.expanded) {
          this.toggle(row.id);
          e.preventDefault();
          return;
        }
        if (row?.hasChildren) index += 1;
        break;
      case "ArrowLeft":
        if (row?.hasChildren && row.expanded) {
          this.toggle(row.id);
          e.preventDefault();
          return;
        }
        if (row) {
          const p = this.forest.parent.get(row.id);
          const pi = p === undefined ? undefined : this.rowIndex.get(p);
          if (pi !== undefined) index = pi;
        }
        break;
      case "Enter":
      case " ":
        if (row) this.ctx.clickSelect(row.id, modsOf(e), this.order);
        e.preventDefault();
        return;
      default:
        return;
    }
    e.preventDefault();
    const target = this.rows[Math.max(0, index)];
    if (target) this.setActive(target.id);
  }

  /** Reveal a run: expand its ancestors, scroll to it, make it active. */
  reveal(runId: string): void {
    const run = this.ctx.store.runs.get(runId);
    if (!run) return;
    if (run.hidden && !this.showHidden) {
      this.showHidden = true;
      this.hiddenToggle.checked = true;
      this.structureDirty = true;
    }
    this.repaint();
    for (const id of ancestorsOf(this.forest, [runId])) this.explicit.set(id, true);
    this.rowsDirty = true;
    this.repaint();
    this.setActive(runId);
  }

  /**
   * Repaint running rows (elapsed time, bar) and rescale the other rows' bars when the scope grew with now: every
   * frame that brings changes, and once a second, while anything runs. Rows that are not running keep their
   * text and badges; a moved scope start (tooltips read it) repaints them all.
   */
  tickRunning(): void {
    const before = this.scope;
    this.updateScope();
    if (this.scope.start !== before.start) this.list.markAllDirty();
    for (const id of this.running) this.list.markDirty(id);
    const painted = this.list.render();
    if (this.scope.end === before.end) return;
    const now = this.ctx.store.kernelNow();
    for (const [id, el] of this.list.shown()) {
      const run = painted.has(id) ? undefined : this.ctx.store.runs.get(id);
      const wf = el.lastElementChild as HTMLElement | null;
      if (run && wf) this.placeBar(wf, run, now);
    }
  }

  /** Scroll to a run's row if it is shown (no expanding). */
  scrollTo(runId: string): void {
    const index = this.rowIndex.get(runId);
    if (index !== undefined) this.list.scrollToIndex(index);
  }

  /** Re-measure after becoming visible (a hidden panel has no height). */
  refresh(): void {
    this.list.markAllDirty();
    this.list.render();
  }
}

/** Set an inline style property only when it changed. */
function setStyle(el: HTMLElement, name: "left" | "width", value: string): void {
  if (el.style[name] !== value) el.style[name] = value;
}

/** "cost $0.000115" (the run and its descendants), "price unknown" for a finished model call without one, or "". */
function costText(run: RunWire): string {
  if (run.cost_usd_total !== null) return `cost ${formatUsd(run.cost_usd_total)}`;
  return isPriceUnknown(run) ? "price unknown" : "";
}
