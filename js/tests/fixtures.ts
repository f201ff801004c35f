// Shared test data for the front-end unit tests: a complete RunWire with neutral defaults.
import { EMPTY_RUN } from "../src/generated/schema";
import type { RunWire } from "../src/protocol";

/**
 * A finished chain run; pass `over` for what a test cares about. Like the kernel, it derives `duration_s`,
 * `ttft_s` and `tokens_per_s` from the times and counts (unless `over` gives them); `start_offset_s` stays 0
 * unless given (a lone run does not know the trace's first start).
 */
export function runWire(over: Partial<RunWire> = {}): RunWire {
  const status = over.status ?? "ok";
  const run: RunWire = {
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
  const duration = run.end === null ? null : run.end - run.start;
  const count = run.output_tokens ?? (run.streamed_chunks > 0 ? run.streamed_chunks : null);
  return {
    ...run,
    duration_s: duration,
    ttft_s: run.first_token === null ? null : run.first_token - run.start,
    tokens_per_s: duration !== null && duration > 0 && count !== null ? count / duration : null,
    ...over,
  };
}
