/**
 * The trace widget without a kernel: static HTML files (`NotebookHandler.to_html`) and the `nbcallbacks_html`
 * nbconvert exporter inline this bundle (built as an IIFE: no module loader, no network), the widget's CSS and the
 * trace, then this script mounts the very widget of `index.ts` over a minimal in-page model.
 *
 * Markup it looks for (written by `nbcallbacks/share.py`):
 *
 *   <div data-nbc-embed>
 *     <script type="application/json" data-nbc-state>{"snapshot": ..., "title": ..., "_uid": ...}</script>
 *     <div data-nbc-fallback>static summary, hidden once the widget is mounted</div>
 *   </div>
 *
 * The CSS is not in this bundle (`--loader:.css=empty`): the page inlines `widget.css` once.
 *
 * The state is read with `JSON.parse` from the script element's text (never evaluated); every string in it stays
 * text because the widget sets untrusted text only through `textContent`.
 */
import type { AnyModel, Experimental } from "@anywidget/types";
import { RUN_FIELDS } from "./generated/schema";
import widget from "./index";
import type { WidgetModel } from "./protocol";

/** Set by `share.compact_snapshot`: the runs' null fields were left out to halve the file. */
const COMPACT_KEY = "_nbc_compact";

/** Put back as `null` every run field a compact snapshot left out (the widget tests fields against null). */
export function restoreNulls(snapshot: unknown): void {
  const runs = (snapshot as { runs?: unknown } | null)?.runs;
  if (!Array.isArray(runs)) return;
  for (const run of runs) {
    if (!run || typeof run !== "object") continue;
    const fields = run as Record<string, unknown>;
    for (const name of RUN_FIELDS) if (!(name in fields)) fields[name] = null;
  }
}

type Listener = (...args: never[]) => void;

/** The parts of an anywidget model the widget uses, over a plain object; `send` and `save_changes` do nothing. */
export class StaticModel implements AnyModel<WidgetModel> {
  private readonly state: WidgetModel;
  private readonly listeners = new Map<string, Set<Listener>>();
  readonly widget_manager = {
    get_model: (): Promise<never> => Promise.reject(new Error("no widget manager in a static page")),
  };
  /** No kernel answers requests here: the widget leaves out what needs one (the Compare button). */
  readonly nbcNoKernel = true;

  /** `state`: the widget's traits as saved (traits this file does not name are kept and readable too). */
  constructor(state: Partial<WidgetModel>) {
    this.state = {
      ...state,
      snapshot: state.snapshot ?? {},
      selected_run_id: state.selected_run_id ?? "",
      selected_run_ids: state.selected_run_ids ?? [],
      title: state.title ?? "",
      _uid: state._uid || `static-${Math.random().toString(36).slice(2)}`,
    } as WidgetModel;
  }

  get<K extends keyof WidgetModel>(key: K): WidgetModel[K] {
    return this.state[key];
  }

  set<K extends keyof WidgetModel>(key: K, value: WidgetModel[K]): void {
    if (this.state[key] === value) return;
    this.state[key] = value;
    for (const callback of this.listeners.get(`change:${String(key)}`) ?? []) callback();
  }

  on(eventName: string, callback: Listener): void {
    let set = this.listeners.get(eventName);
    if (!set) {
      set = new Set();
      this.listeners.set(eventName, set);
    }
    set.add(callback);
  }

  off(eventName?: string | null, callback?: Listener | null): void {
    if (!eventName) {
      this.listeners.clear();
      return;
    }
    if (!callback) this.listeners.delete(eventName);
    else this.listeners.get(eventName)?.delete(callback);
  }

  save_changes(): void {
    // Nothing to save to: the page is the whole world.
  }

  send(): void {
    // No kernel: requests (hello, resync) have nobody to answer them, and the inlined snapshot is complete.
  }
}

const experimental: Experimental = {
  invoke: () => Promise.reject(new Error("no kernel in a static page")),
};

/** Mount one embed element; returns false if it holds no readable state. */
async function mount(embed: HTMLElement): Promise<boolean> {
  const stateEl = embed.querySelector<HTMLScriptElement>("script[data-nbc-state]");
  if (!stateEl) return false;
  let state: unknown;
  try {
    state = JSON.parse(stateEl.textContent || "{}");
  } catch {
    return false;
  }
  if (!state || typeof state !== "object" || Array.isArray(state)) return false;
  const traits = state as Record<string, unknown>;
  if (traits[COMPACT_KEY]) restoreNulls(traits.snapshot);
  const model = new StaticModel(state as Partial<WidgetModel>);
  const signal = new AbortController().signal;
  await widget.initialize({ model, signal, experimental });
  const el = document.createElement("div");
  el.className = "nbc-embed-view";
  embed.appendChild(el);
  await widget.render({
    model,
    el,
    signal,
    experimental,
    host: {
      getWidget: () => Promise.reject(new Error("no host in a static page")),
      getModel: () => Promise.reject(new Error("no host in a static page")),
    },
  });
  for (const fallback of embed.querySelectorAll<HTMLElement>("[data-nbc-fallback]")) fallback.hidden = true;
  return true;
}

/** Mount every embed in `root` not mounted yet (idempotent: safe to call again after adding embeds). */
export async function mountAll(root: ParentNode = document): Promise<number> {
  let mounted = 0;
  for (const embed of root.querySelectorAll<HTMLElement>("[data-nbc-embed]:not([data-nbc-mounted])")) {
    embed.dataset.nbcMounted = "pending";
    const ok = await mount(embed);
    embed.dataset.nbcMounted = ok ? "true" : "false";
    if (ok) mounted++;
  }
  return mounted;
}

declare global {
  interface Window {
    nbcallbacksMount?: typeof mountAll;
  }
}

window.nbcallbacksMount = mountAll;
if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", () => void mountAll());
} else {
  void mountAll();
}
