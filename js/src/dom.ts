/** Tiny DOM helpers. Untrusted text only ever goes through `textContent` / text nodes. */

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className?: string,
  text?: string,
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

/**
 * An element holding untrusted text: isolated for bidi (`dir="auto"` + `unicode-bidi: isolate` in CSS), so
 * control characters in names or tokens cannot reorder the surrounding UI.
 */
export function untrusted<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className: string,
  text: string,
): HTMLElementTagNameMap[K] {
  const el = h(tag, `nbc-u ${className}`, text);
  el.setAttribute("dir", "auto");
  return el;
}

/** Set text only when it changed (cheap repaints). */
export function setText(el: Element, text: string): void {
  if (el.textContent !== text) el.textContent = text;
}

export function setAttr(el: Element, name: string, value: string | null): void {
  if (value === null) {
    if (el.hasAttribute(name)) el.removeAttribute(name);
  } else if (el.getAttribute(name) !== value) el.setAttribute(name, value);
}

let counter = 0;
/** A document-unique id prefix for one view (element ids must not depend on untrusted run ids). */
export function uniquePrefix(): string {
  counter += 1;
  return `nbc-v${counter}-${Math.random().toString(36).slice(2, 7)}`;
}

/** Text glyph per run type (no icon font, no images). */
export const RUN_TYPE_GLYPH: Record<string, string> = {
  chain: "❖",
  llm: "✦",
  chat_model: "✦",
  tool: "⚙",
  retriever: "◎",
  prompt: "✎",
  parser: "⇥",
};

export function runTypeGlyph(runType: string): string {
  return RUN_TYPE_GLYPH[runType] ?? "•";
}

/**
 * Fill `el` with `text`, the given ranges wrapped in `<mark class="nbc-hl">` (text nodes and textContent only:
 * matched text stays text). Skips the work when text and ranges are unchanged.
 */
export function setHighlighted(el: HTMLElement, text: string, ranges: ReadonlyArray<readonly [number, number]>): void {
  const key = ranges.length ? `${ranges.map((r) => `${r[0]}-${r[1]}`).join(",")}\u0000${text}` : "";
  if (el.dataset.hl === key && (key !== "" || el.textContent === text)) return;
  if (!ranges.length) {
    delete el.dataset.hl;
    el.textContent = text;
    return;
  }
  el.dataset.hl = key;
  const parts: Node[] = [];
  let at = 0;
  for (const [start, end] of ranges) {
    const a = Math.max(at, Math.min(start, text.length));
    const b = Math.min(end, text.length);
    if (b <= a) continue;
    if (a > at) parts.push(document.createTextNode(text.slice(at, a)));
    parts.push(h("mark", "nbc-hl", text.slice(a, b)));
    at = b;
  }
  if (at < text.length) parts.push(document.createTextNode(text.slice(at)));
  el.replaceChildren(...parts);
}
