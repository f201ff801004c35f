/** The timing table: one row per run (or per name / run type), sortable, virtualised. */
import type { ViewContext } from "./context";
import { h, setAttr, setText, untrusted } from "./dom";
import { formatCount, formatDuration, formatRate, formatSeconds, formatUsd } from "./format";
import type { Change } from "./store";
import {
  type GroupBy,
  type GroupRow,
  groupRows,
  type SortDir,
  sortRows,
  type TimingRow,
  timingRow,
} from "./table-data";
import { modsOf } from "./selection";
import { VirtualList } from "./virtual";

export const TABLE_ROW_HEIGHT = 24;
const REBUILD_EVERY_MS = 250;

interface Column<T> {
  key: keyof T & string;
  label: string;
  title?: string;
  numeric: boolean;
  format: (row: T) => string;
}

const RUN_COLUMNS: Array<Column<TimingRow>> = [
  { key: "name", label: "Name", numeric: false, format: (r) => r.name },
  { key: "type", label: "Type", numeric: false, format: (r) => r.type },
  { key: "start", label: "Start", title: "seconds since the first run started", numeric: true, format: (r) => formatSeconds(r.start) },
  { key: "duration", label: "Duration", numeric: true, format: (r) => formatDuration(r.duration) },
  { key: "ttft", label: "TTFT", title: "time to first streamed token", numeric: true, format: (r) => formatDuration(r.ttft) },
  { key: "tokensIn", label: "Tok in", numeric: true, format: (r) => formatCount(r.tokensIn) },
  { key: "tokensOut", label: "Tok out", numeric: true, format: (r) => formatCount(r.tokensOut) },
  { key: "rate", label: "Tok/s", title: "output tokens (or streamed chunks) per second", numeric: true, format: (r) => formatRate(r.rate) },
  {
    key: "cost",
    label: "Cost",
    title: "USD of the run and its descendants (model calls priced by genai-prices or NotebookHandler(prices=...))",
    numeric: true,
    format: (r) => (r.costUnknown ? "unknown" : formatUsd(r.cost)),
  },
];

const GROUP_COLUMNS: Array<Column<GroupRow>> = [
  { key: "key", label: "Group", numeric: false, format: (r) => r.key },
  { key: "count", label: "Count", numeric: true, format: (r) => formatCount(r.count) },
  { key: "total", label: "Total", numeric: true, format: (r) => formatDuration(r.total) },
  { key: "mean", label: "Mean", numeric: true, format: (r) => formatDuration(r.mean) },
  { key: "p50", label: "p50", numeric: true, format: (r) => formatDuration(r.p50) },
  { key: "p95", label: "p95", numeric: true, format: (r) => formatDuration(r.p95) },
];

type Mode = "runs" | GroupBy;

export class TimingTable {
  readonly el: HTMLElement;
  private readonly headerRow: HTMLElement;
  private readonly viewport: HTMLElement;
  private readonly list: VirtualList;
  private mode: Mode = "runs";
  private sortKey = "start";
  private sortDir: SortDir = "asc";
  private rows: TimingRow[] = [];
  private groups: GroupRow[] = [];
  /** What the list shows, by its keys: runs (runs mode) or groups. */
  private byId = new Map<string, TimingRow | GroupRow>();
  /** Every run's row as last built or updated (in either mode). */
  private rowById = new Map<string, TimingRow>();
  /** The mode the header cells were made for ("" before the first). */
  private headerMode: Mode | "" = "";
  private dirty = true;
  private builtAt = 0;
  private timer = 0;

  constructor(private readonly ctx: ViewContext) {
    this.el = h("div", "nbc-table-wrap");
    const bar = h("div", "nbc-toolbar");
    const group = h("div", "nbc-segmented");
    group.setAttribute("role", "radiogroup");
    group.setAttribute("aria-label", "group rows");
    const modes: Array<[Mode, string]> = [
      ["runs", "Runs"],
      ["name", "By name"],
      ["type", "By type"],
    ];
    const buttons: HTMLButtonElement[] = [];
    for (const [mode, label] of modes) {
      const b = h("button", "nbc-btn", label);
      b.type = "button";
      b.dataset.group = mode;
      b.setAttribute("role", "radio");
      b.setAttribute("aria-checked", String(mode === this.mode));
      b.addEventListener("click", () => {
        this.mode = mode;
        this.sortKey = mode === "runs" ? "start" : "key";
        this.sortDir = "asc";
        for (const other of buttons) other.setAttribute("aria-checked", String(other === b));
        this.dirty = true;
        this.render();
      });
      buttons.push(b);
      group.appendChild(b);
    }
    bar.appendChild(group);

    const table = h("div", "nbc-table");
    table.setAttribute("role", "table");
    table.setAttribute("aria-label", "timings");
    this.headerRow = h("div", "nbc-trow nbc-thead");
    this.headerRow.setAttribute("role", "row");
    this.viewport = h("div", "nbc-tbody nbc-scroll nbc-vlist");
    this.viewport.setAttribute("role", "rowgroup");
    this.viewport.tabIndex = 0;
    this.viewport.setAttribute("aria-label", "runs (arrow keys move the selection)");
    this.viewport.addEventListener("keydown", (e) => this.onKey(e));
    this.list = new VirtualList(this.viewport, {
      rowHeight: TABLE_ROW_HEIGHT,
      create: () => this.createRow(),
      paint: (el, _index, key) => this.paintRow(el, key),
    });
    table.append(this.headerRow, this.viewport);
    this.el.append(bar, table);
  }

  private columns(): Array<Column<TimingRow>> | Array<Column<GroupRow>> {
    return this.mode === "runs" ? RUN_COLUMNS : GROUP_COLUMNS;
  }

  paint(change: Change): void {
    if (change.selection) this.list.markAllDirty();
    if (change.reset || change.newRuns || change.filter) this.dirty = true;
    else if (change.runs.size && this.updateRows(change.runs)) this.rebuildSoon();
    this.render();
  }

  /**
   * Runs only updated (tokens, ends): refresh their rows in place and repaint them. Returns true when the shown
   * order (the sort column's value) or a group's numbers (duration, name, type) may have changed.
   */
  private updateRows(ids: Iterable<string>): boolean {
    const key = this.sortKey as keyof TimingRow;
    let reorder = false;
    for (const id of ids) {
      const run = this.ctx.store.runs.get(id);
      const old = this.rowById.get(id);
      if (!run || !old) continue;
      const row = timingRow(run);
      this.rowById.set(id, row);
      if (this.mode === "runs") {
        if (!this.byId.has(id)) continue; // filtered out: a change of membership comes as change.filter
        this.byId.set(id, row);
        this.list.markDirty(id);
        if (row[key] !== old[key]) reorder = true;
      } else if (row.duration !== old.duration || row.name !== old.name || row.type !== old.type) reorder = true;
    }
    return reorder;
  }

  /** Re-sort / regroup at most a few times a second, not per frame. */
  private rebuildSoon(): void {
    const wait = REBUILD_EVERY_MS - (Date.now() - this.builtAt);
    if (wait <= 0) {
      this.dirty = true;
      return;
    }
    if (!this.timer) {
      this.timer = window.setTimeout(() => {
        this.timer = 0;
        this.dirty = true;
        this.render();
      }, wait);
    }
  }

  render(): void {
    if (this.dirty) {
      this.dirty = false;
      this.builtAt = Date.now();
      const all = this.ctx.store.orderedRuns();
      const { nav } = this.ctx;
      const runs = nav.active ? all.filter((r) => nav.has(r.run_id)) : all;
      this.rows = runs.map(timingRow);
      this.rowById = new Map(this.rows.map((r) => [r.id, r]));
      let keys: string[];
      if (this.mode === "runs") {
        const sorted = sortRows(this.rows, this.sortKey as keyof TimingRow, this.sortDir);
        keys = sorted.map((r) => r.id);
        this.byId = new Map(sorted.map((r) => [r.id, r]));
      } else {
        this.groups = sortRows(groupRows(this.rows, this.mode), this.sortKey as keyof GroupRow, this.sortDir);
        keys = this.groups.map((g) => g.id);
        this.byId = new Map(this.groups.map((g) => [g.id, g]));
      }
      this.el.dataset.mode = this.mode;
      this.paintHeader();
      this.list.setKeys(keys);
    }
    this.list.render();
  }

  /**
   * The column headers: made when the mode changes (its columns differ), else only their sort marks are updated,
   * so a sort button keeps keyboard focus through clicks and live rebuilds.
   */
  private paintHeader(): void {
    const columns = this.columns();
    if (this.headerMode !== this.mode) {
      this.headerMode = this.mode;
      const cells = columns.map((col) => {
        const cell = h("div", `nbc-th${col.numeric ? " nbc-num" : ""}`);
        cell.setAttribute("role", "columnheader");
        cell.dataset.col = col.key;
        if (col.title) cell.title = col.title;
        const b = h("button", "nbc-sort", col.label);
        b.type = "button";
        b.addEventListener("click", () => {
          if (this.sortKey === col.key) this.sortDir = this.sortDir === "asc" ? "desc" : "asc";
          else {
            this.sortKey = col.key;
            this.sortDir = col.numeric && col.key !== "start" ? "desc" : "asc";
          }
          this.dirty = true;
          this.render();
        });
        cell.appendChild(b);
        return cell;
      });
      this.headerRow.replaceChildren(...cells);
    }
    columns.forEach((col, i) => {
      const cell = this.headerRow.children[i] as HTMLElement;
      const sorted = this.sortKey === col.key;
      setAttr(cell, "aria-sort", sorted ? (this.sortDir === "asc" ? "ascending" : "descending") : "none");
      setText(cell.firstElementChild as HTMLElement, col.label + (sorted ? (this.sortDir === "asc" ? " ▲" : " ▼") : ""));
    });
  }

  private createRow(): HTMLElement {
    const row = h("div", "nbc-trow");
    row.setAttribute("role", "row");
    row.tabIndex = -1;
    row.addEventListener("mousedown", (e) => {
      if (e.shiftKey) e.preventDefault(); // no text selection on shift-click
    });
    row.addEventListener("click", (e) => {
      const id = row.dataset.runId;
      if (id) this.ctx.clickSelect(id, modsOf(e), this.visibleOrder());
    });
    return row;
  }

  private paintRow(el: HTMLElement, key: string): void {
    const item = this.byId.get(key);
    if (!item) return;
    const columns = this.columns() as Array<Column<TimingRow | GroupRow>>;
    if (el.children.length !== columns.length) {
      el.replaceChildren(
        ...columns.map((col) => {
          const cell = untrusted("div", `nbc-td${col.numeric ? " nbc-num" : ""}`, "");
          cell.setAttribute("role", "cell");
          return cell;
        }),
      );
    }
    columns.forEach((col, i) => {
      const cell = el.children[i] as HTMLElement;
      setText(cell, col.format(item));
      setAttr(cell, "data-col", col.key);
      if (!col.numeric) cell.title = col.format(item);
    });
    if (this.mode === "runs") {
      const run = this.ctx.store.runs.get(key);
      setAttr(el, "data-run-id", key);
      setAttr(el, "data-group", null);
      setAttr(el, "data-status", run ? run.display_status : null);
      setAttr(el, "aria-selected", this.ctx.store.isSelected(key) ? "true" : "false");
    } else {
      setAttr(el, "data-run-id", null);
      setAttr(el, "data-status", null);
      setAttr(el, "data-group", (item as GroupRow).key);
      setAttr(el, "aria-selected", null);
    }
  }

  private onKey(e: KeyboardEvent): void {
    if (this.mode !== "runs" || !this.list.count) return;
    let index = -1;
    for (let i = 0; i < this.list.count; i++) if (this.list.keyAt(i) === this.ctx.store.selected) index = i;
    if (e.key === "ArrowDown") index = Math.min(this.list.count - 1, index + 1);
    else if (e.key === "ArrowUp") index = Math.max(0, index - 1);
    else if (e.key === "Home") index = 0;
    else if (e.key === "End") index = this.list.count - 1;
    else return;
    e.preventDefault();
    const key = this.list.keyAt(index);
    if (key === undefined) return;
    this.ctx.select(key);
    this.list.scrollToIndex(index);
  }

  destroy(): void {
    window.clearTimeout(this.timer);
  }

  /** Run ids in the order shown (runs mode). */
  visibleOrder(): string[] {
    if (this.mode !== "runs") return [];
    const out: string[] = [];
    for (let i = 0; i < this.list.count; i++) out.push(this.list.keyAt(i) as string);
    return out;
  }

  /** Scroll to a run's row (runs mode). */
  scrollTo(runId: string): void {
    this.render();
    for (let i = 0; i < this.list.count; i++) {
      if (this.list.keyAt(i) === runId) {
        this.list.scrollToIndex(i);
        return;
      }
    }
  }

  refresh(): void {
    this.list.markAllDirty();
    this.list.render();
  }
}
