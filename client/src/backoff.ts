/** Reconnect timing: exponential backoff with full jitter, capped. */
export interface BackoffOptions {
  /** The first retry waits up to this long (ms). Default 500. */
  baseMs?: number;
  /** No retry waits longer than this (ms). Default 30 000. */
  maxMs?: number;
}

export const BACKOFF_DEFAULTS = { baseMs: 500, maxMs: 30_000 } as const;

/**
 * The delay before retry number `attempt` (0 for the first retry): uniform in
 * [0, min(maxMs, baseMs * 2^attempt)) ("full jitter"). Full jitter spreads a crowd of clients that
 * lost the same server at the same moment over the whole window instead of sending them back in
 * waves, which is what keeps a restart from turning into a reconnect storm.
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}, random: () => number = Math.random): number {
  const base = options.baseMs ?? BACKOFF_DEFAULTS.baseMs;
  const max = options.maxMs ?? BACKOFF_DEFAULTS.maxMs;
  // 2^attempt overflows to Infinity long after it passed any sane cap; min() handles both.
  const ceiling = Math.min(max, base * 2 ** Math.max(0, attempt));
  return Math.floor(random() * ceiling);
}
