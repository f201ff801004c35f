/** The header: title, live indicator, totals, handler errors and dropped-data notes. */
import type { ViewContext } from "./context";
import { h, setAttr, setText, untrusted } from "./dom";
import { formatCount, formatDuration, formatUsd, plural } from "./format";
import { isModelRun, isPriceUnknown } from "./protocol";
import { wallTime } from "./waterfall";

export class Header {
  readonly el: HTMLElement;
  private readonly live: HTMLElement;
  private readonly titleEl: HTMLElement;
  private readonly stats: Record<"runs" | "errors" | "tokens" | "cost" | "wall", HTMLElement>;
  private readonly errors: HTMLDetailsElement;
  private readonly errorsSummary: HTMLElement;
  private readonly errorsList: HTMLElement;
  private readonly dropped: HTMLElement;
  private shownErrors = 0;

  constructor(
    private readonly ctx: ViewContext,
    title: string,
  ) {
    this.el = h("div", "nbc-header");
    this.live = h("span", "nbc-live");
    this.live.setAttribute("role", "status");
    const titleEl = untrusted("span", "nbc-title", "");
    this.titleEl = titleEl;
    this.setTitle(title);
    const stats = h("div", "nbc-stats");
    const stat = (name: string, el: HTMLElement = h("span", "nbc-stat")): HTMLElement => {
      el.dataset.stat = name;
      stats.appendChild(el);
      return el;
    };
    // The error count is a button: it turns "errors only" on.
    const errors = h("button", "nbc-stat nbc-stat-button");
    errors.type = "button";
    errors.title = "Show only failed and interrupted runs (with their ancestors)";
    errors.addEventListener("click", () => this.ctx.showErrors());
    this.stats = {
      runs: stat("runs"),
      errors: stat("errors", errors),
      tokens: stat("tokens"),
      cost: stat("cost"),
      wall: stat("wall"),
    };
    this.stats.cost.hidden = true;
    this.errors = h("details", "nbc-handler-errors");
    this.errorsSummary = h("summary", "nbc-badge nbc-badge-warn");
    this.errorsList = h("ol", "nbc-handler-error-list");
    this.errors.append(this.errorsSummary, this.errorsList);
    this.errors.hidden = true;
    this.dropped = h("span", "nbc-dropped");
    this.dropped.hidden = true;
    this.el.append(this.live, titleEl, stats, this.dropped, this.errors);
  }

  setTitle(title: string): void {
    setText(this.titleEl, title || "LangChain trace");
  }

  /** Known model-call costs, or "price unknown" (never $0) with how to get prices; hidden without model calls. */
  private paintCost(): void {
    const { store } = this.ctx;
    const cost = store.totals.cost_usd;
    let models = 0;
    let unpriced = 0;
    for (const run of store.runs.values()) {
      if (!isModelRun(run)) continue;
      models++;
      if (isPriceUnknown(run)) unpriced++;
    }
    const el = this.stats.cost;
    el.hidden = models === 0;
    const howTo = 'prices come from genai-prices (pip install "nbcallbacks[cost]") or NotebookHandler(prices={...})';
    if (cost !== null && cost !== undefined) {
      setText(el, unpriced > 0 ? `≥ ${formatUsd(cost)}` : formatUsd(cost));
      setAttr(el, "title", unpriced > 0 ? `known model-call costs; ${plural(unpriced, "model call")} without a price: ${howTo}` : "cost of the model calls (USD)");
    } else {
      setText(el, "price unknown");
      setAttr(el, "title", `no known price for these models: ${howTo}`);
    }
  }

  paint(now: number): void {
    const { store } = this.ctx;
    const t = store.totals;
    const running = t.running > 0; // the kernel counts runs shown as running (abandoned ones are not)
    setAttr(this.live, "data-live", running ? "true" : "false");
    setAttr(this.live, "aria-label", running ? "running" : "idle");
    setAttr(this.live, "title", running ? `${formatCount(t.running)} running` : "idle");
    setText(this.stats.runs, plural(t.runs, "run"));
    setText(this.stats.errors, plural(t.errors, "error"));
    setAttr(this.stats.errors, "data-nonzero", t.errors > 0 ? "true" : "false");
    const usage = t.usage_tokens ?? 0;
    if (usage > 0) {
      setText(this.stats.tokens, plural(usage, "token"));
      setAttr(this.stats.tokens, "title", `input + output tokens reported by the models; ${formatCount(t.tokens)} streamed chunks`);
    } else {
      setText(this.stats.tokens, plural(t.tokens, "streamed chunk"));
      setAttr(this.stats.tokens, "title", "streamed chunks received (no token usage reported yet)");
    }
    this.paintCost();
    setText(this.stats.wall, formatDuration(wallTime(store.runs.values(), now)));
    setAttr(this.stats.wall, "title", "wall time: first start to last end");

    const notes: string[] = [];
    if (t.tokens_dropped > 0) notes.push(`${formatCount(t.tokens_dropped)} tokens not shown`);
    if (t.dropped_events > 0) notes.push(`${formatCount(t.dropped_events)} old events dropped from the log`);
    this.dropped.hidden = notes.length === 0;
    setText(this.dropped, notes.join(" · "));

    const count = Math.max(t.handler_errors, store.handlerErrors.length);
    this.errors.hidden = count === 0;
    setText(this.errorsSummary, `⚠ ${plural(count, "handler error")}`);
    setAttr(this.errors, "data-count", String(count));
    if (store.handlerErrors.length < this.shownErrors) {
      this.errorsList.replaceChildren();
      this.shownErrors = 0;
    }
    for (const err of store.handlerErrors.slice(this.shownErrors)) {
      const li = h("li", "nbc-handler-error");
      li.append(untrusted("span", "nbc-where", err.where), document.createTextNode(": "));
      li.append(untrusted("span", "nbc-error-text", err.error));
      if (err.traceback) {
        const d = h("details", "nbc-tb");
        d.append(h("summary", "", "traceback"), untrusted("pre", "nbc-pre", err.traceback));
        li.appendChild(d);
      }
      this.errorsList.appendChild(li);
    }
    this.shownErrors = store.handlerErrors.length;
  }
}
