// Shared test data for the front-end unit tests: a complete RunWire with neutral defaults.
import type { RunWire } from "../src/protocol";

/** A finished chain run; pass `over` for what a test cares about. */
export function runWire(over: Partial<RunWire> = {}): RunWire {
  return {
    run_id: "r",
    parent_run_id: null,
    order: 0,
    name: "n",
    run_type: "chain",
    status: "ok",
    depth: 0,
    orphan: false,
    hidden: false,
    started: true,
    abandoned: false,
    start: 100,
    end: 101,
    first_token: null,
    token_count: 0,
    tokens_dropped: 0,
    input_tokens: null,
    output_tokens: null,
    total_tokens: null,
    model: null,
    langgraph_node: null,
    langgraph_step: null,
    tags: [],
    metadata: null,
    inputs: null,
    outputs: null,
    error: null,
    error_type: null,
    traceback: null,
    metrics: {},
    thread: "",
    ...over,
  };
}
