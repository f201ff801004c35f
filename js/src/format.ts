/** Pure formatting helpers (no DOM). */

export const DASH = "–";

/** Integer with thin-space-free comma grouping, independent of the browser locale: 12345 -> "12,345". */
export function formatCount(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return DASH;
  const sign = n < 0 ? "-" : "";
  const digits = String(Math.round(Math.abs(n)));
  let out = "";
  for (let i = 0; i < digits.length; i++) {
    if (i > 0 && (digits.length - i) % 3 === 0) out += ",";
    out += digits[i];
  }
  return sign + out;
}

/** A duration in seconds, readable at a glance: "3.2 ms", "850 ms", "1.23 s", "12.5 s", "2m 05s", "1h 02m". */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return DASH;
  const s = Math.max(0, seconds);
  if (s < 0.01) return `${(s * 1000).toFixed(1)} ms`;
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 10) return `${s.toFixed(2)} s`;
  if (s < 60) return `${s.toFixed(1)} s`;
  if (s < 3600) {
    const m = Math.floor(s / 60);
    const rest = Math.floor(s - m * 60);
    return `${m}m ${String(rest).padStart(2, "0")}s`;
  }
  const h = Math.floor(s / 3600);
  const m = Math.floor((s - h * 3600) / 60);
  return `${h}h ${String(m).padStart(2, "0")}m`;
}

/** Seconds with millisecond precision, for offsets: 1.5 -> "1.500 s". */
export function formatSeconds(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return DASH;
  return `${seconds.toFixed(3)} s`;
}

/** A rate such as tokens per second: 45.25 -> "45.3/s"; 1234.5 -> "1,235/s". */
export function formatRate(perSecond: number | null | undefined): string {
  if (perSecond === null || perSecond === undefined || !Number.isFinite(perSecond)) return DASH;
  if (perSecond >= 100) return `${formatCount(perSecond)}/s`;
  return `${perSecond.toFixed(1)}/s`;
}

/** US dollars, with the digits small amounts need: 0.000115 -> "$0.000115", 0.0421 -> "$0.0421", 3.5 -> "$3.50". */
export function formatUsd(usd: number | null | undefined): string {
  if (usd === null || usd === undefined || !Number.isFinite(usd)) return DASH;
  const a = Math.abs(usd);
  const digits = a === 0 || a >= 1 ? 2 : a >= 0.01 ? 4 : 6;
  return `${usd < 0 ? "-" : ""}$${a.toFixed(digits)}`;
}

/** "1 run" / "2 runs". */
export function plural(n: number, word: string, many = `${word}s`): string {
  return `${formatCount(n)} ${n === 1 ? word : many}`;
}
