// The widget mounted in happy-dom with a stand-in for anywidget's model proxy (shared by the view tests).
import widget from "../src/index";
import type { DeltaMsg, Piece, RunWire, Snapshot, Totals } from "../src/protocol";
import { EMPTY_TOTALS } from "../src/store";
import { runWire } from "./fixtures";

const totals: Totals = EMPTY_TOTALS;

export function wire(run_id: string, order: number, over: Partial<RunWire> = {}): RunWire {
  const start = 1000 + order;
  return runWire({ run_id, order, name: run_id, start, end: start + 0.5 + (order % 7), inputs: { q: order }, ...over });
}

export function snapshot(seq: number, runs: RunWire[], streams: Record<string, Piece[]> = {}): Snapshot {
  return { schema: 1, seq, cursor: seq * 10, runs, streams, totals: { ...totals, runs: runs.length }, handler_errors: [] };
}

/** A stand-in for anywidget's model proxy: traits, custom messages, what the view sends. */
export class FakeModel {
  state: Record<string, unknown>;
  sent: unknown[] = [];
  saved = 0;
  private handlers = new Map<string, Array<(...args: unknown[]) => void>>();

  constructor(snap: Snapshot, uid = `uid-${Math.random()}`) {
    this.state = { snapshot: snap, selected_run_id: "", title: "test", _uid: uid };
  }
  get(key: string): unknown {
    return this.state[key];
  }
  set(key: string, value: unknown): void {
    this.state[key] = value;
  }
  save_changes(): void {
    this.saved++;
  }
  send(content: unknown): void {
    this.sent.push(content);
  }
  on(name: string, cb: (...args: unknown[]) => void): void {
    this.handlers.set(name, [...(this.handlers.get(name) ?? []), cb]);
  }
  off(): void {}
  fire(name: string, ...args: unknown[]): void {
    for (const cb of this.handlers.get(name) ?? []) cb(...args);
  }
  delta(d: Partial<DeltaMsg> & { base: number; seq: number }): void {
    const msg = { type: "delta", cursor: d.seq * 10, runs: [], tokens: {}, totals, handler_errors: [], dropped_events: 0, ...d };
    this.fire("msg:custom", msg, []);
  }
  widget_manager = null;
}

const cleanups: Array<() => unknown> = [];
/** Unmount every widget (call from afterEach). */
export function cleanup(): void {
  for (const c of cleanups.splice(0)) c();
  document.body.replaceChildren();
}

export async function mount(model: FakeModel, views = 1): Promise<HTMLElement[]> {
  const def = widget as unknown as {
    initialize: (p: { model: FakeModel }) => (() => void) | undefined;
    render: (p: { model: FakeModel; el: HTMLElement }) => () => void;
  };
  const init = def.initialize({ model });
  if (init) cleanups.push(init);
  const els: HTMLElement[] = [];
  for (let i = 0; i < views; i++) {
    const el = document.createElement("div");
    document.body.appendChild(el);
    cleanups.push(def.render({ model, el }));
    els.push(el);
  }
  await frame();
  return els;
}

export const frame = () => new Promise((resolve) => setTimeout(resolve, 40));
export const q = <T extends Element = HTMLElement>(el: Element, sel: string) => el.querySelector(sel) as T;
export const qa = (el: Element, sel: string) => [...el.querySelectorAll(sel)] as HTMLElement[];

