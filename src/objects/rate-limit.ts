/**
 * A pure token bucket, refilled lazily from timestamps: no timers, so an idle object can hibernate,
 * and the state is two numbers that fit in a WebSocket attachment.
 */

export interface BucketConfig {
  /** Most tokens the bucket holds (the burst). */
  burst: number;
  /** Tokens added per second. */
  refillPerSec: number;
}

export interface BucketState {
  tokens: number;
  /** Epoch ms of the last refill. */
  at: number;
}

/** A full bucket at `now`. */
export function fullBucket(cfg: BucketConfig, now: number): BucketState {
  return { tokens: cfg.burst, at: now };
}

/**
 * Tries to take `cost` tokens at `now`. Returns the new state, and when refused, how long until
 * enough tokens will have refilled.
 */
export function take(
  state: BucketState,
  cfg: BucketConfig,
  now: number,
  cost = 1,
): { ok: true; state: BucketState } | { ok: false; state: BucketState; retryAfterMs: number } {
  const elapsed = Math.max(0, now - state.at);
  const tokens = Math.min(cfg.burst, state.tokens + (elapsed * cfg.refillPerSec) / 1000);
  if (tokens >= cost) return { ok: true, state: { tokens: tokens - cost, at: now } };
  const missing = cost - tokens;
  const retryAfterMs = cfg.refillPerSec > 0 ? Math.ceil((missing * 1000) / cfg.refillPerSec) : Number.MAX_SAFE_INTEGER;
  return { ok: false, state: { tokens, at: now }, retryAfterMs };
}
