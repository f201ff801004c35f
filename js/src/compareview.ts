/**
 * The Compare panel, shown over the tree: two runs picked in the widget, aligned row by row as the kernel's
 * `nbcallbacks.compare` aligned them. Each row shows both sides (indented by depth; "not in A/B" for a run present
 * on one side only), their waterfall bars on one time scale, and the deltas (B − A). Clicking a row (or moving
 * with the arrow keys) shows both output previews side by side. Every text is set with textContent.
 */
import {
  type CompareModel,
  type CompareRow,
  compareModel,
  type ComparisonMsg,
  type DiffSeg,
  type SideCell,
  summaryText,
  wordDiff,
} from "./compare";
import { h, runTypeGlyph, setAttr, untrusted } from "./dom";
import { plural } from "./format";

const STATUS_GLYPH: Record<string, string> = { ok: "✓", error: "✕", interrupted: "⏸", running: "…", abandoned: "⊘" };

export interface CompareViewOptions {
  /** Element id prefix of the view. */
  prefix: string;
  onClose: () => void;
  /** Show a run in the tree (closes the panel). */
  showInTree: (runId: string) => void;
}

export class CompareView {
  readonly el: HTMLElement;
  private readonly title: HTMLElement;
  private readonly counts: HTMLElement;
  private readonly summary: HTMLElement;
  private readonly note: HTMLElement;
  private readonly head: HTMLElement;
  private readonly list: HTMLElement;
  private readonly detail: HTMLElement;
  readonly closeButton: HTMLButtonElement;
  private model: CompareModel | null = null;
  private labels: [string, string] = ["A", "B"];
  private active = -1;

  constructor(private readonly options: CompareViewOptions) {
    this.el = h("div", "nbc-compare");
    this.el.hidden = true;
    this.el.setAttribute("role", "region");
    this.el.setAttribute("aria-label", "comparison of two runs");
    this.el.addEventListener("keydown", (e) => {
      if (e.key === "Escape") {
        e.preventDefault();
        e.stopPropagation();
        this.options.onClose();
      }
    });

    const bar = h("div", "nbc-toolbar nbc-cmp-bar");
    this.title = h("span", "nbc-cmp-title", "Compare");
    this.counts = h("span", "nbc-cmp-counts");
    this.counts.setAttribute("role", "status");
    this.counts.setAttribute("aria-live", "polite");
    this.closeButton = h("button", "nbc-btn", "✕ Close");
    this.closeButton.type = "button";
    this.closeButton.dataset.action = "close-compare";
    this.closeButton.title = "Close the comparison (Escape)";
    this.closeButton.setAttribute("aria-label", "close the comparison");
    this.closeButton.addEventListener("click", () => this.options.onClose());
    bar.append(this.title, this.counts, this.closeButton);

    this.summary = h("div", "nbc-cmp-summary");
    this.note = h("div", "nbc-cmp-note");
    this.note.hidden = true;
    this.head = h("div", "nbc-cmp-grid nbc-cmp-head");
    this.head.setAttribute("aria-hidden", "true");
    this.list = h("div", "nbc-cmp-rows nbc-scroll");
    this.list.id = `${options.prefix}-cmp-rows`;
    this.list.setAttribute("role", "listbox");
    this.list.setAttribute("aria-label", "aligned runs");
    this.list.tabIndex = 0;
    this.list.addEventListener("keydown", (e) => this.onKey(e));
    this.list.addEventListener("focus", () => {
      if (this.active < 0 && this.model?.rows.length) this.activate(0);
    });
    this.detail = h("div", "nbc-cmp-detail");
    this.detail.hidden = true;
    this.el.append(bar, this.summary, this.note, this.head, this.list, this.detail);
  }

  /** Open the panel while the kernel compares `a` and `b`. */
  showPending(): void {
    this.reset();
    this.el.dataset.state = "pending";
    this.counts.textContent = "Comparing…";
    this.el.hidden = false;
  }

  showError(text: string): void {
    this.reset();
    this.el.dataset.state = "error";
    this.counts.textContent = "";
    this.setNote(text, true);
    this.el.hidden = false;
  }

  show(msg: ComparisonMsg): void {
    if (msg.error) {
      this.showError(`Could not compare: ${msg.error}`);
      return;
    }
    this.reset();
    this.el.dataset.state = "ready";
    this.el.hidden = false;
    const model = compareModel(msg);
    this.model = model;
    this.labels = [`A: ${model.a.label}`, `B: ${model.b.label}`];
    this.counts.textContent = `${plural(model.rows.length, "row")} · ${model.onlyA} only in A · ${model.onlyB} only in B`;
    this.counts.dataset.onlyA = String(model.onlyA);
    this.counts.dataset.onlyB = String(model.onlyB);
    for (const [side, s] of [["a", model.a], ["b", model.b]] as const) {
      const line = h("div", "nbc-cmp-sum");
      line.dataset.side = side;
      line.append(h("span", "nbc-cmp-side", side.toUpperCase()), untrusted("span", "nbc-cmp-label", s.label));
      if (s.input) {
        const input = untrusted("span", "nbc-cmp-input", s.input);
        input.title = s.input;
        line.append(input);
      }
      line.append(h("span", "nbc-cmp-muted nbc-cmp-totals", summaryText(s)));
      this.summary.append(line);
    }
    if (msg.note) this.setNote(msg.note, false);
    this.head.append(h("div", "", this.labels[0]), h("div", "", "timeline"), h("div", "", this.labels[1]), h("div", "", "timeline"), h("div", "", "Δ (B − A)"));
    const frag = document.createDocumentFragment();
    for (const row of model.rows) frag.append(this.rowEl(row));
    this.list.append(frag);
    if (!model.rows.length) this.setNote("No runs to compare.", false);
  }

  private reset(): void {
    this.model = null;
    this.active = -1;
    delete this.counts.dataset.onlyA;
    delete this.counts.dataset.onlyB;
    this.summary.replaceChildren();
    this.head.replaceChildren();
    this.list.replaceChildren();
    this.list.removeAttribute("aria-activedescendant");
    this.detail.replaceChildren();
    this.detail.hidden = true;
    this.setNote("", false);
  }

  private setNote(text: string, error: boolean): void {
    this.note.textContent = text;
    this.note.hidden = !text;
    setAttr(this.note, "data-error", error ? "true" : null);
  }

  private rowEl(row: CompareRow): HTMLElement {
    const el = h("div", "nbc-cmp-grid nbc-cmp-row");
    el.id = `${this.options.prefix}-cmp-${row.index}`;
    el.setAttribute("role", "option");
    el.setAttribute("aria-selected", "false");
    el.dataset.index = String(row.index);
    el.dataset.depth = String(row.depth);
    el.dataset.runType = row.runType;
    if (row.only) el.dataset.only = row.only;
    if (row.marks.length) el.dataset.marks = row.marks.join(" ");
    el.append(
      this.sideEl(row, "a", row.a),
      this.barEl(row, row.a),
      this.sideEl(row, "b", row.b),
      this.barEl(row, row.b),
      this.deltaEl(row),
    );
    el.addEventListener("click", () => {
      this.activate(row.index);
      this.list.focus({ preventScroll: true });
    });
    return el;
  }

  private sideEl(row: CompareRow, side: "a" | "b", c: SideCell | null): HTMLElement {
    const el = h("div", "nbc-cmp-cell");
    el.dataset.side = side;
    el.style.paddingLeft = `${4 + Math.min(row.depth, 24) * 14}px`;
    if (!c) {
      el.dataset.missing = "true";
      el.append(h("span", "nbc-cmp-none", `— not in ${side.toUpperCase()}`));
      return el;
    }
    const icon = h("span", "nbc-icon", runTypeGlyph(row.runType));
    icon.dataset.runType = row.runType;
    icon.setAttribute("aria-hidden", "true");
    const name = untrusted("span", "nbc-name", row.name);
    const status = h("span", "nbc-status", STATUS_GLYPH[c.status] ?? "?");
    status.dataset.status = c.status;
    status.title = c.status;
    el.append(icon, name, status);
    if (row.only) {
      const badge = h("span", "nbc-badge nbc-cmp-only", `only in ${row.only.toUpperCase()}`);
      el.append(badge);
    } else if (side === "b") {
      for (const mark of row.marks) el.append(h("span", "nbc-badge nbc-cmp-mark", mark === "output" ? "≠ output" : `≠ ${mark}`));
    }
    el.append(h("span", "nbc-cmp-meta", c.meta));
    el.title = `${row.path}\n${c.status} · ${c.meta}`;
    return el;
  }

  private barEl(row: CompareRow, c: SideCell | null): HTMLElement {
    const track = h("div", "nbc-wf nbc-cmp-wf");
    if (!c) {
      track.dataset.missing = "true";
      return track;
    }
    const bar = h("div", "nbc-wf-bar");
    bar.dataset.waterfall = row.runType;
    bar.dataset.status = c.status;
    if (c.bar) {
      bar.style.left = `${(c.bar.left * 100).toFixed(3)}%`;
      bar.style.width = `${(c.bar.width * 100).toFixed(3)}%`;
    } else bar.hidden = true;
    track.append(bar);
    return track;
  }

  private deltaEl(row: CompareRow): HTMLElement {
    const el = h("div", "nbc-cmp-delta");
    for (const d of row.deltas) {
      const span = h("span", "", d.text);
      span.dataset.kind = d.kind;
      span.dataset.tone = d.tone;
      el.append(span);
    }
    return el;
  }

  private activate(index: number): void {
    const model = this.model;
    if (!model) return;
    const row = model.rows[index];
    if (!row) return;
    const prev = this.list.querySelector('[aria-selected="true"]');
    if (prev) prev.setAttribute("aria-selected", "false");
    const el = this.list.querySelector<HTMLElement>(`[data-index="${index}"]`);
    el?.setAttribute("aria-selected", "true");
    el?.scrollIntoView?.({ block: "nearest" });
    this.active = index;
    if (el) this.list.setAttribute("aria-activedescendant", el.id);
    this.paintDetail(row);
  }

  private paintDetail(row: CompareRow): void {
    this.detail.replaceChildren();
    this.detail.hidden = false;
    this.detail.dataset.index = String(row.index);
    const head = h("div", "nbc-cmp-detail-head");
    head.append(untrusted("span", "nbc-cmp-path", row.path));
    if (row.a && row.b) head.append(h("span", "nbc-cmp-muted", row.marks.includes("output") ? "outputs differ" : "outputs are identical"));
    this.detail.append(head);
    // Words removed from A and added in B are marked (outputs that differ only).
    const diff = row.a && row.b && row.marks.includes("output") ? wordDiff(row.a.output, row.b.output) : null;
    for (const [side, c] of [["a", row.a], ["b", row.b]] as const) {
      const col = h("div", "nbc-cmp-out");
      col.dataset.side = side;
      const title = h("div", "nbc-cmp-out-title");
      title.append(h("span", "nbc-cmp-side", side.toUpperCase()));
      if (c) {
        title.append(h("span", "nbc-cmp-muted", `${c.status} · ${c.meta}`));
        const link = h("button", "nbc-link", "show in tree");
        link.type = "button";
        link.dataset.action = "show-in-tree";
        link.addEventListener("click", () => this.options.showInTree(c.runId));
        title.append(link);
      }
      const pre = untrusted("pre", "nbc-cmp-pre", c ? c.output || "(no output)" : `not in ${side.toUpperCase()}`);
      if (!c) pre.dataset.missing = "true";
      else if (diff) fillDiff(pre, diff[side], side === "a" ? "nbc-cmp-del" : "nbc-cmp-ins");
      col.append(title, pre);
      this.detail.append(col);
    }
  }

  private onKey(e: KeyboardEvent): void {
    const n = this.model?.rows.length ?? 0;
    if (!n) return;
    let next = -1;
    if (e.key === "ArrowDown") next = Math.min(n - 1, this.active + 1);
    else if (e.key === "ArrowUp") next = Math.max(0, this.active - 1);
    else if (e.key === "Home") next = 0;
    else if (e.key === "End") next = n - 1;
    else return;
    e.preventDefault();
    e.stopPropagation();
    this.activate(next);
  }
}

/** Fill `pre` with a side of a word diff: changed words in `<mark>` (text only, never markup). */
function fillDiff(pre: HTMLElement, segs: readonly DiffSeg[], markClass: string): void {
  pre.replaceChildren(...segs.map((seg) => (seg.changed ? h("mark", markClass, seg.text) : document.createTextNode(seg.text))));
}
