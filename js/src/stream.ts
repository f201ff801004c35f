/**
 * The token stream: one block per model run (llm / chat_model), in start order. Text is appended as text nodes
 * (never re-rendering a transcript); tool-call arguments and reasoning go to their own, visually distinct
 * segments. Follows the bottom unless the user scrolled up; then a "jump to latest" button appears.
 */
import type { ViewContext } from "./context";
import { h, runTypeGlyph, setAttr, setText, untrusted } from "./dom";
import { formatCount, formatDuration } from "./format";
import { elapsed } from "./metrics";
import { isModelRun, type RunWire } from "./protocol";
import type { Change } from "./store";

const KIND_LABEL: Record<string, string> = { tool_call: "tool call", reasoning: "reasoning" };

interface Block {
  el: HTMLElement;
  head: {
    name: HTMLElement;
    model: HTMLElement;
    node: HTMLElement;
    status: HTMLElement;
    tokens: HTMLElement;
    time: HTMLElement;
  };
  body: HTMLElement;
  /** Pieces of the store's stream already in the DOM. */
  shown: number;
  seg: HTMLElement | null;
  segKind: string;
  order: number;
}

export class StreamView {
  readonly el: HTMLElement;
  private readonly scroller: HTMLElement;
  private readonly list: HTMLElement;
  private readonly empty: HTMLElement;
  private readonly jump: HTMLButtonElement;
  private readonly blocks = new Map<string, Block>();
  /** Blocks of running runs (their elapsed time ticks). */
  private readonly running = new Set<string>();
  /** Follow the newest text; false once the user scrolled away from the bottom. */
  private follow = true;
  private shownBlocks = 0;

  constructor(private readonly ctx: ViewContext) {
    this.el = h("div", "nbc-stream-wrap");
    this.scroller = h("div", "nbc-stream nbc-scroll");
    this.scroller.tabIndex = 0;
    this.scroller.setAttribute("aria-label", "model output stream");
    this.list = h("div", "nbc-stream-list");
    this.empty = h("div", "nbc-empty", "No model output yet.");
    this.scroller.append(this.empty, this.list);
    this.jump = h("button", "nbc-jump", "↓ Jump to latest");
    this.jump.type = "button";
    this.jump.hidden = true;
    this.jump.addEventListener("click", () => {
      this.follow = true;
      this.jump.hidden = true;
      this.toBottom();
    });
    this.scroller.addEventListener(
      "scroll",
      () => {
        this.follow = this.atBottom();
        if (this.follow) this.jump.hidden = true;
      },
      { passive: true },
    );
    this.el.append(this.scroller, this.jump);
  }

  private atBottom(): boolean {
    const s = this.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < 12;
  }

  private toBottom(): void {
    this.scroller.scrollTop = this.scroller.scrollHeight;
  }

  paint(change: Change): void {
    const { store } = this.ctx;
    if (change.reset) {
      this.blocks.clear();
      this.running.clear();
      this.list.replaceChildren();
      this.shownBlocks = 0;
    }
    let grew = false;
    const painted = new Set<string>();
    // Every new run is in `change.runs` (createBlock keeps start order), so only a reset walks all runs.
    const ids: Iterable<string> = change.reset ? store.runIds : change.runs;
    for (const id of ids) {
      const run = store.runs.get(id);
      if (!run || !isModelRun(run)) continue;
      let block = this.blocks.get(id);
      if (!block) {
        block = this.createBlock(run);
        grew = true;
      }
      this.paintHead(block, run);
      painted.add(id);
    }
    const tokenIds = change.reset ? store.streams.keys() : change.tokens.values();
    for (const id of tokenIds) {
      const block = this.blocks.get(id);
      if (block && this.appendPieces(id, block)) grew = true;
    }
    if (change.filter) this.applyFilter(); // new blocks were shown or hidden as they were made
    this.empty.hidden = this.blocks.size > 0 && (!this.ctx.nav.active || this.shownBlocks > 0);
    setText(this.empty, this.blocks.size > 0 ? "No model output matches the filter." : "No model output yet.");
    this.tickRunning(painted); // elapsed times of all running blocks move together
    if (grew) {
      if (this.follow) this.toBottom();
      else this.jump.hidden = false;
    }
  }

  private createBlock(run: RunWire): Block {
    const el = h("section", "nbc-block");
    el.dataset.runId = run.run_id;
    el.dataset.runType = run.run_type;
    const head = h("div", "nbc-block-head");
    const icon = h("span", "nbc-icon", runTypeGlyph(run.run_type));
    icon.setAttribute("aria-hidden", "true");
    const name = untrusted("button", "nbc-block-name", "");
    (name as HTMLButtonElement).type = "button";
    name.title = "Select this run";
    name.addEventListener("click", () => this.ctx.select(run.run_id));
    const model = untrusted("span", "nbc-block-model", "");
    const node = untrusted("span", "nbc-badge", "");
    node.dataset.badge = "node";
    node.hidden = true;
    const status = h("span", "nbc-status");
    const tokens = h("span", "nbc-block-tokens");
    const time = h("span", "nbc-block-time");
    const tree = h("button", "nbc-link", "tree");
    tree.type = "button";
    tree.title = "Show in the run tree";
    tree.addEventListener("click", () => this.ctx.showInTree(run.run_id));
    head.append(icon, name, node, model, status, tokens, time, tree);
    const body = h("div", "nbc-block-body");
    el.append(head, body);
    const block: Block = {
      el,
      head: { name, model, node, status, tokens, time },
      body,
      shown: 0,
      seg: null,
      segKind: "",
      order: run.order,
    };
    // Keep start order (runs nearly always arrive in order: append; else insert before the first later block).
    let before: Element | null = null;
    for (let node = this.list.lastElementChild; node; node = node.previousElementSibling) {
      const other = this.blocks.get((node as HTMLElement).dataset.runId ?? "");
      if (other && other.order > run.order) before = node;
      else break;
    }
    this.list.insertBefore(el, before);
    this.blocks.set(run.run_id, block);
    if (this.ctx.nav.has(run.run_id)) this.shownBlocks++;
    else el.hidden = true;
    return block;
  }

  private paintHead(block: Block, run: RunWire): void {
    setText(block.head.name, run.name);
    setText(block.head.model, run.model ?? "");
    block.head.model.hidden = !run.model;
    const node = run.langgraph_node ? `${run.langgraph_node}${run.langgraph_step === null ? "" : ` · ${run.langgraph_step}`}` : "";
    setText(block.head.node, node);
    block.head.node.hidden = !node;
    block.head.node.title = node ? "LangGraph node · step" : "";
    const status = run.display_status;
    setAttr(block.el, "data-status", status);
    setAttr(block.head.status, "data-status", status);
    setText(block.head.status, status);
    const dropped = run.chunks_not_kept > 0 ? ` (${formatCount(run.chunks_not_kept)} not shown)` : "";
    setText(block.head.tokens, `${formatCount(run.streamed_chunks)} tok${dropped}`);
    const live = status === "running";
    if (live) this.running.add(run.run_id);
    else this.running.delete(run.run_id);
    setAttr(block.head.time, "data-live", live ? "true" : null);
    this.paintTime(block, run);
    setAttr(block.el, "data-selected", this.ctx.store.isSelected(run.run_id) ? "true" : null);
    if (run.status === "error" && run.error && !block.el.querySelector(".nbc-block-error")) {
      block.el.appendChild(untrusted("div", "nbc-block-error", run.error));
    }
  }

  private appendPieces(id: string, block: Block): boolean {
    const pieces = this.ctx.store.streams.get(id);
    if (!pieces || pieces.length <= block.shown) return false;
    for (let i = block.shown; i < pieces.length; i++) {
      const [kind, text] = pieces[i] as [string, string];
      if (!block.seg || block.segKind !== kind) {
        const seg = h("div", "nbc-seg nbc-u");
        seg.setAttribute("dir", "auto");
        seg.dataset.kind = kind;
        if (kind !== "text") {
          const label = h("span", "nbc-seg-label", KIND_LABEL[kind] ?? kind);
          label.setAttribute("aria-hidden", "true");
          block.body.appendChild(label);
        }
        block.body.appendChild(seg);
        block.seg = seg;
        block.segKind = kind;
      }
      block.seg.appendChild(document.createTextNode(text));
    }
    block.shown = pieces.length;
    return true;
  }

  /** Show only the blocks of runs the view's filter matches. */
  private applyFilter(): void {
    const { nav } = this.ctx;
    let shown = 0;
    for (const [id, block] of this.blocks) {
      const on = nav.has(id);
      if (block.el.hidden === on) block.el.hidden = !on;
      if (on) shown++;
    }
    this.shownBlocks = shown;
  }

  /** Mark the selected run's block; scroll to it when asked. */
  highlight(runId: string, scroll: boolean): void {
    for (const [id, block] of this.blocks) setAttr(block.el, "data-selected", this.ctx.store.isSelected(id) || id === runId ? "true" : null);
    const block = this.blocks.get(runId);
    if (block && scroll) {
      this.follow = false;
      this.scroller.scrollTop = Math.max(0, block.el.offsetTop - 8);
      this.follow = this.atBottom();
      this.jump.hidden = this.follow;
    }
  }

  private paintTime(block: Block, run: RunWire): void {
    setText(block.head.time, formatDuration(elapsed(run, this.ctx.store.kernelNow())));
  }

  /**
   * Move the elapsed time of running blocks (once a second while anything runs, and with each paint), except
   * those in `skip` (just painted). Only the time: a run's other fields change with a delta, which paints its head.
   */
  tickRunning(skip?: ReadonlySet<string>): void {
    for (const id of this.running) {
      if (skip?.has(id)) continue;
      const block = this.blocks.get(id);
      const run = this.ctx.store.runs.get(id);
      if (block && run) this.paintTime(block, run);
    }
  }
}
