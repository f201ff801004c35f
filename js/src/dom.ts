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
