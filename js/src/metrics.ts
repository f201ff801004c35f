/**
 * Per-run numbers the kernel does not send. Durations, TTFT, tokens per second and start offsets come with each
 * run (`duration_s`, `ttft_s`, `tokens_per_s`, `start_offset_s`); only a running run's elapsed time moves here.
 */
import type { RunWire } from "./protocol";

/** Seconds a run took (`duration_s`), or, while it runs, has been running by the kernel's clock `now`. */
export function elapsed(run: Pick<RunWire, "start" | "duration_s" | "display_status">, now: number): number | null {
  return run.display_status === "running" ? Math.max(0, now - run.start) : run.duration_s;
}

/** Tokens shown for a run: usage total if known, else streamed chunks. */
export function tokenTotal(run: Pick<RunWire, "total_tokens" | "streamed_chunks">): number | null {
  if (run.total_tokens !== null) return run.total_tokens;
  return run.streamed_chunks > 0 ? run.streamed_chunks : null;
}
