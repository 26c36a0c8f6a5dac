/** Pure uptime arithmetic over self-check results. */

export interface CheckSample {
  checkedAt: number;
  ok: boolean;
}

export interface UptimeWindow {
  window: string;
  checks: number;
  failed: number;
  /** Share of checks that passed, 0..1; null when there were no checks in the window. */
  uptime: number | null;
  /** Checks recorded divided by checks expected at the schedule's interval, 0..1. */
  coverage: number;
}

/** Uptime over the last `windowMs` ending at `now`, for checks expected every `intervalMs`. */
export function uptimeOver(
  samples: readonly CheckSample[],
  now: number,
  windowMs: number,
  intervalMs: number,
  label: string,
): UptimeWindow {
  const from = now - windowMs;
  let checks = 0;
  let failed = 0;
  for (const s of samples) {
    if (s.checkedAt <= from || s.checkedAt > now) continue;
    checks++;
    if (!s.ok) failed++;
  }
  const expected = Math.max(1, Math.floor(windowMs / intervalMs));
  return {
    window: label,
    checks,
    failed,
    uptime: checks === 0 ? null : (checks - failed) / checks,
    coverage: Math.min(1, checks / expected),
  };
}
