import { describe, expect, it } from "vitest";
import { asChatLines, kindOf, openByDefault, summarize, truncate } from "../src/jsonfold";

describe("jsonfold", () => {
  it("classifies and summarises values", () => {
    expect(kindOf(null)).toBe("null");
    expect(kindOf([1])).toBe("array");
    expect(kindOf({})).toBe("object");
    expect(kindOf("s")).toBe("string");
    expect(summarize([1, 2, 3])).toBe("[3 items]");
    expect(summarize({ a: 1 })).toBe("{1 key}");
    expect(summarize("abc")).toBe('"abc"');
    expect(summarize("x".repeat(100), 10)).toBe(`"${"x".repeat(8)}…`);
    expect(truncate("abc", 5)).toBe("abc");
  });

  it("reads message lists as role: content lines", () => {
    expect(asChatLines([{ type: "human", content: "hi" }, { role: "assistant", content: "yo" }])).toEqual([
      { role: "human", content: "hi" },
      { role: "assistant", content: "yo" },
    ]);
    // Chat model inputs come as a list of message lists.
    expect(asChatLines([[{ type: "system", content: "s" }], [{ type: "human", content: [{ type: "text", text: "a" }, "b"] }]])).toEqual([
      { role: "system", content: "s" },
      { role: "human", content: "ab" },
    ]);
    expect(asChatLines([{ type: "ai", content: "", tool_calls: [{}, {}] }])).toEqual([
      { role: "ai", content: " [2 tool calls]" },
    ]);
  });

  it("reads (role, content) tuples, as LangGraph inputs often come", () => {
    expect(asChatLines([["user", "What's the weather?"], ["ai", "Sunny"]])).toEqual([
      { role: "user", content: "What's the weather?" },
      { role: "ai", content: "Sunny" },
    ]);
    expect(asChatLines([[["system", "s"]], [["human", "h"]]])).toEqual([
      { role: "system", content: "s" },
      { role: "human", content: "h" },
    ]);
    expect(asChatLines([["x", "y"]])).toBeNull();
    expect(asChatLines([["user", "a", "b"]])).toBeNull();
  });

  it("rejects anything that is not a message list", () => {
    expect(asChatLines([])).toBeNull();
    expect(asChatLines([{ content: "no role" }])).toBeNull();
    expect(asChatLines([{ type: "human", content: "a" }, 3])).toBeNull();
    expect(asChatLines({ type: "human", content: "a" })).toBeNull();
    expect(asChatLines([{ type: "human", content: { nested: true } }])).toBeNull();
  });

  it("opens small shallow containers only", () => {
    expect(openByDefault({ a: 1 }, 0)).toBe(true);
    expect(openByDefault({ a: 1 }, 2)).toBe(true);
    expect(openByDefault({ a: 1 }, 3)).toBe(false);
    expect(openByDefault(Array.from({ length: 50 }, () => 0), 0)).toBe(false);
    expect(openByDefault("x", 0)).toBe(false);
  });
});
