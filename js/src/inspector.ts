/** The inspector: every detail of the selected run, as readable folded JSON (all text via textContent). */
import type { ViewContext } from "./context";
import { h, runTypeGlyph, untrusted } from "./dom";
import { DASH, formatCount, formatDuration, formatRate, formatSeconds } from "./format";
import { asChatLines, kindOf, openByDefault, scalarText, summarize } from "./jsonfold";
import { isModelRun, type RunWire } from "./protocol";

const MAX_CHILDREN = 500;

/** Folded JSON: containers as <details> (open when small and shallow), chat message lists as "role: content". */
export function renderValue(value: unknown, depth = 0): HTMLElement {
  const chat = asChatLines(value);
  if (chat) {
    const box = h("div", "nbc-chat");
    for (const line of chat) {
      const row = h("div", "nbc-chat-line");
      row.dataset.role = line.role;
      row.append(untrusted("span", "nbc-chat-role", line.role), untrusted("span", "nbc-chat-content", line.content));
      box.appendChild(row);
    }
    return box;
  }
  const kind = kindOf(value);
  if (kind !== "array" && kind !== "object") {
    const text = typeof value === "string" ? value : scalarText(value);
    const el = untrusted(typeof value === "string" && text.includes("\n") ? "pre" : "span", "nbc-json-scalar", text);
    el.dataset.kind = kind;
    return el;
  }
  const details = h("details", "nbc-json");
  details.open = openByDefault(value, depth);
  const summary = h("summary", "nbc-json-summary", summarize(value));
  details.appendChild(summary);
  const body = h("div", "nbc-json-body");
  const entries: Array<[string, unknown]> =
    kind === "array" ? (value as unknown[]).map((v, i) => [String(i), v]) : Object.entries(value as object);
  let fill = (): void => {
    for (const [key, v] of entries.slice(0, MAX_CHILDREN)) {
      const row = h("div", "nbc-json-row");
      row.append(untrusted("span", "nbc-json-key", key), renderValue(v, depth + 1));
      body.appendChild(row);
    }
    if (entries.length > MAX_CHILDREN) {
      body.appendChild(h("div", "nbc-note", `… ${formatCount(entries.length - MAX_CHILDREN)} more`));
    }
    fill = () => {};
  };
  // Build children lazily, on first open: big payloads stay cheap until looked at.
  if (details.open) fill();
  else details.addEventListener("toggle", () => fill());
  details.appendChild(body);
  return details;
}

/** "Type: message", the type once even when the message already starts with it ("ValueError: bad input"). */
function errorText(run: Pick<RunWire, "error" | "error_type">): string {
  const message = run.error ?? "";
  const type = run.error_type;
  if (!type || message === type || message.startsWith(`${type}:`) || message.startsWith(`${type}(`)) return message;
  return message ? `${type}: ${message}` : type;
}

export class Inspector {
  readonly el: HTMLElement;
  private shown = "";
  private shownKey = "";

  constructor(private readonly ctx: ViewContext) {
    this.el = h("aside", "nbc-inspector nbc-scroll");
    this.el.setAttribute("aria-label", "run details");
  }

  paint(force = false): void {
    const { store } = this.ctx;
    const id = store.selected;
    const run = id ? store.runs.get(id) : undefined;
    this.el.dataset.runId = run ? id : "";
    if (!run) {
      if (this.shown !== "" || force || !this.el.firstChild) {
        this.shown = "";
        this.el.replaceChildren(h("div", "nbc-empty", "Select a run to see its inputs, outputs and timings."));
      }
      return;
    }
    // Repaint only when the selected run changed in a visible way (never per token).
    const key = [run.status, run.end, run.display_status, run.ttft_s, run.total_tokens, run.error, JSON.stringify(run.metrics), store.selection.ids.length].join("|");
    if (!force && this.shown === id && this.shownKey === key) return;
    this.shown = id;
    this.shownKey = key;
    this.el.replaceChildren(...this.build(run));
  }

  private build(run: RunWire): HTMLElement[] {
    const out: HTMLElement[] = [];
    const head = h("div", "nbc-insp-head");
    const count = this.ctx.store.selection.ids.length;
    if (count > 1) {
      const note = h("div", "nbc-note nbc-insp-multi", `${formatCount(count)} runs selected (h.selection() in Python); showing the last clicked`);
      out.push(note);
    }
    const icon = h("span", "nbc-icon", runTypeGlyph(run.run_type));
    icon.setAttribute("aria-hidden", "true");
    const st = run.display_status;
    const status = h("span", "nbc-status nbc-insp-status", st);
    status.dataset.status = st;
    const close = h("button", "nbc-insp-close", "×");
    close.type = "button";
    close.title = "Close (clear the selection)";
    close.setAttribute("aria-label", "close the run details");
    close.dataset.action = "close-inspector";
    close.addEventListener("click", () => this.ctx.select(""));
    head.append(icon, untrusted("span", "nbc-insp-name", run.name), status, close);
    out.push(head);

    const actions = h("div", "nbc-insp-actions");
    if (isModelRun(run)) {
      const show = h("button", "nbc-btn", "Show stream");
      show.type = "button";
      show.dataset.action = "show-stream";
      show.addEventListener("click", () => this.ctx.showStream(run.run_id));
      actions.appendChild(show);
    }
    const tree = h("button", "nbc-btn", "Show in tree");
    tree.type = "button";
    tree.dataset.action = "show-in-tree";
    tree.addEventListener("click", () => this.ctx.showInTree(run.run_id));
    actions.appendChild(tree);
    out.push(actions);

    const facts: Array<[string, string]> = [
      ["type", run.run_type],
      ["run id", run.run_id],
      ["parent", run.parent_run_id ?? DASH],
      ["start", `+${formatSeconds(run.start_offset_s)}`],
      ["duration", formatDuration(run.duration_s)],
    ];
    if (isModelRun(run) || run.model) facts.splice(3, 0, ["model", run.model ?? DASH]);
    if (isModelRun(run)) {
      facts.push(
        ["TTFT", formatDuration(run.ttft_s)],
        ["streamed", `${formatCount(run.streamed_chunks)} chunks`],
        ["tokens in/out", `${formatCount(run.input_tokens)} / ${formatCount(run.output_tokens)}`],
        ["tokens/s", formatRate(run.tokens_per_s)],
      );
    }
    if (run.langgraph_node) facts.push(["node", run.langgraph_node]);
    if (run.langgraph_step !== null) facts.push(["step", String(run.langgraph_step)]);
    if (run.thread) facts.push(["thread", run.thread]);
    // A div grid, not <dl>: notebook hosts style dl/dt/dd inside outputs (JupyterLab floats dt at 20%).
    const grid = h("div", "nbc-facts");
    for (const [k, v] of facts) grid.append(h("span", "nbc-fact-key", k), untrusted("span", "nbc-fact", v));
    out.push(grid);

    const section = (title: string, name: string, content: HTMLElement, open = true): void => {
      const d = h("details", "nbc-section");
      d.dataset.section = name;
      d.open = open;
      d.append(h("summary", "nbc-section-title", title), content);
      out.push(d);
    };
    if (run.error !== null || run.traceback) {
      const box = h("div", "nbc-error-box");
      box.appendChild(untrusted("div", "nbc-error-text", errorText(run)));
      if (run.traceback) box.appendChild(untrusted("pre", "nbc-pre nbc-traceback", run.traceback));
      section(st === "interrupted" ? "Interrupt" : "Error", "error", box);
    }
    section("Inputs", "inputs", renderValue(run.inputs));
    section("Outputs", "outputs", run.end === null && run.outputs === null ? h("span", "nbc-note", "running…") : renderValue(run.outputs));
    if (run.tags.length) section("Tags", "tags", renderValue(run.tags), false);
    if (run.metadata !== null && run.metadata !== undefined) section("Metadata", "metadata", renderValue(run.metadata), false);
    if (Object.keys(run.metrics).length) section("Metrics", "metrics", renderValue(run.metrics));
    return out;
  }
}
