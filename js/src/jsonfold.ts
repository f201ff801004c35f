/** Pure helpers for showing payloads as folded JSON: summaries and chat-message detection. */

export type Kind = "null" | "string" | "number" | "boolean" | "array" | "object" | "other";

export function kindOf(value: unknown): Kind {
  if (value === null || value === undefined) return "null";
  if (Array.isArray(value)) return "array";
  switch (typeof value) {
    case "string":
      return "string";
    case "number":
    case "bigint":
      return "number";
    case "boolean":
      return "boolean";
    case "object":
      return "object";
    default:
      return "other";
  }
}

/** One-line summary of a container: "[3 items]", "{2 keys}"; short scalars as themselves. */
export function summarize(value: unknown, maxChars = 80): string {
  const kind = kindOf(value);
  if (kind === "array") {
    const n = (value as unknown[]).length;
    return `[${n} ${n === 1 ? "item" : "items"}]`;
  }
  if (kind === "object") {
    const n = Object.keys(value as object).length;
    return `{${n} ${n === 1 ? "key" : "keys"}}`;
  }
  return truncate(scalarText(value), maxChars);
}

export function scalarText(value: unknown): string {
  if (value === null || value === undefined) return "null";
  if (typeof value === "string") return JSON.stringify(value);
  return String(value);
}

export function truncate(text: string, maxChars: number): string {
  return text.length <= maxChars ? text : `${text.slice(0, Math.max(0, maxChars - 1))}…`;
}

export interface ChatLine {
  role: string;
  content: string;
}

function contentText(content: unknown): string | null {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    const parts: string[] = [];
    for (const part of content) {
      if (typeof part === "string") parts.push(part);
      else if (part && typeof part === "object" && typeof (part as { text?: unknown }).text === "string") {
        parts.push((part as { text: string }).text);
      } else parts.push(JSON.stringify(part));
    }
    return parts.join("");
  }
  return null;
}

/** Roles LangChain accepts in `(role, content)` message tuples. */
const TUPLE_ROLES: ReadonlySet<string> = new Set([
  "human",
  "user",
  "ai",
  "assistant",
  "system",
  "developer",
  "tool",
  "function",
  "placeholder",
]);

function messageOf(value: unknown): ChatLine | null {
  if (Array.isArray(value)) {
    const [role, content] = value as unknown[];
    if (value.length === 2 && typeof role === "string" && TUPLE_ROLES.has(role)) {
      const text = contentText(content);
      return text === null ? null : { role, content: text };
    }
    return null;
  }
  if (!value || typeof value !== "object") return null;
  const obj = value as Record<string, unknown>;
  const role = typeof obj.role === "string" ? obj.role : typeof obj.type === "string" ? obj.type : null;
  if (role === null || !("content" in obj)) return null;
  const content = contentText(obj.content);
  if (content === null) return null;
  const calls = obj.tool_calls;
  const extra = Array.isArray(calls) && calls.length ? ` [${calls.length} tool call${calls.length === 1 ? "" : "s"}]` : "";
  return { role, content: content + extra };
}

/**
 * A list of chat messages (`{role|type, content}` objects or `[role, content]` tuples, or a list of such lists,
 * as chat model inputs come) as `role: content` lines; `null` when the value is not one.
 */
export function asChatLines(value: unknown): ChatLine[] | null {
  if (!Array.isArray(value) || value.length === 0) return null;
  const direct = linesOf(value);
  if (direct) return direct;
  if (value.every((v) => Array.isArray(v))) return linesOf((value as unknown[][]).flat());
  return null;
}

function linesOf(items: readonly unknown[]): ChatLine[] | null {
  if (items.length === 0) return null;
  const lines: ChatLine[] = [];
  for (const item of items) {
    const line = messageOf(item);
    if (!line) return null;
    lines.push(line);
  }
  return lines;
}

/** Whether a container should start unfolded: shallow and small. */
export function openByDefault(value: unknown, depth: number): boolean {
  const kind = kindOf(value);
  if (kind === "array") return depth < 3 && (value as unknown[]).length <= 20;
  if (kind === "object") return depth < 3 && Object.keys(value as object).length <= 20;
  return false;
}
