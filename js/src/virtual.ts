/**
 * Fixed-row-height windowing: only the rows on screen (plus a small overscan) exist in the DOM. Rows are keyed
 * (by run id), reused while they stay in the window, and repainted only when marked dirty or moved.
 *
 * Written here rather than bundling a virtualiser: rows have one fixed height, so the whole job is a few lines
 * of arithmetic, and a library would add more code than it saves.
 */
export interface VirtualOptions {
  rowHeight: number;
  overscan?: number;
  /** Create an empty row element (called once per pooled row). */
  create: () => HTMLElement;
  /** Fill `el` for item `index` with key `key`. */
  paint: (el: HTMLElement, index: number, key: string) => void;
}

export class VirtualList {
  readonly viewport: HTMLElement;
  private readonly spacer: HTMLElement;
  private keys: readonly string[] = [];
  private readonly live = new Map<string, { el: HTMLElement; index: number }>();
  private readonly spare: HTMLElement[] = [];
  private readonly dirty = new Set<string>();
  private allDirty = true;

  constructor(
    viewport: HTMLElement,
    private readonly options: VirtualOptions,
  ) {
    this.viewport = viewport;
    this.spacer = document.createElement("div");
    this.spacer.className = "nbc-vspacer";
    this.viewport.appendChild(this.spacer);
    this.viewport.addEventListener("scroll", () => this.render(), { passive: true });
  }

  setKeys(keys: readonly string[]): void {
    this.keys = keys;
    this.allDirty = true;
  }

  get count(): number {
    return this.keys.length;
  }

  keyAt(index: number): string | undefined {
    return this.keys[index];
  }

  markDirty(key: string): void {
    this.dirty.add(key);
  }

  markAllDirty(): void {
    this.allDirty = true;
  }

  /** Scroll so that row `index` is visible. */
  scrollToIndex(index: number): void {
    const h = this.options.rowHeight;
    const top = index * h;
    const view = this.viewport;
    if (top < view.scrollTop) view.scrollTop = top;
    else if (top + h > view.scrollTop + view.clientHeight) view.scrollTop = top + h - view.clientHeight;
    this.render();
  }

  /** The rows in the DOM now: key and element (to touch up a part of each without a repaint). */
  *shown(): IterableIterator<[string, HTMLElement]> {
    for (const [key, entry] of this.live) yield [key, entry.el];
  }

  /** Lay out the rows on screen, painting the new, moved and dirty ones; returns the keys it painted. */
  render(): Set<string> {
    const { rowHeight, overscan = 8 } = this.options;
    const total = this.keys.length;
    this.spacer.style.height = `${total * rowHeight}px`;
    const viewHeight = this.viewport.clientHeight || rowHeight * 20;
    const first = Math.max(0, Math.floor(this.viewport.scrollTop / rowHeight) - overscan);
    const last = Math.min(total, Math.ceil((this.viewport.scrollTop + viewHeight) / rowHeight) + overscan);
    const wanted = new Map<string, number>();
    const painted = new Set<string>();
    for (let i = first; i < last; i++) wanted.set(this.keys[i] as string, i);
    for (const [key, entry] of this.live) {
      if (!wanted.has(key)) {
        entry.el.remove();
        this.spare.push(entry.el);
        this.live.delete(key);
      }
    }
    // Rows stay in DOM order = visual order (screen readers and tests read the DOM), moved only when needed.
    let previous: Element = this.spacer;
    for (const [key, index] of wanted) {
      let entry = this.live.get(key);
      if (!entry) {
        const el = this.spare.pop() ?? this.options.create();
        entry = { el, index: -1 };
        this.live.set(key, entry);
      }
      if (previous.nextSibling !== entry.el) this.viewport.insertBefore(entry.el, previous.nextSibling);
      previous = entry.el;
      if (entry.index !== index) {
        entry.el.style.transform = `translateY(${index * rowHeight}px)`;
      }
      if (entry.index !== index || this.allDirty || this.dirty.has(key)) {
        entry.index = index;
        this.options.paint(entry.el, index, key);
        painted.add(key);
      }
    }
    this.dirty.clear();
    this.allDirty = false;
    return painted;
  }
}
