// Shared test data for the front-end unit tests: a complete RunWire with neutral defaults.
import { EMPTY_RUN } from "../src/generated/schema";
import type { RunWire } from "../src/protocol";

/** A finished chain run; pass `over` for what a test cares about. */
export function runWire(over: Partial<RunWire> = {}): RunWire {
  const status = over.status ?? "ok";
  return {
    ...EMPTY_RUN,
    run_id: "r",
    name: "n",
    run_type: "chain",
    status,
    display_status: over.display_status ?? (over.abandoned && status === "running" ? "abandoned" : status),
    start: 100,
    end: 101,
    ...over,
  };
}
