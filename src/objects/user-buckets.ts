/**
 * The per-user rate-limit bucket of one object (a room or an inbox), shared by all of the user's
 * sockets there and kept across reconnects, hibernation and eviction: closing a socket (or being
 * closed with 1008) and reconnecting at once gives no fresh burst.
 *
 * Where the state lives, and why no storage write per frame:
 * - in memory (`Map`), the one read on every frame;
 * - in the attachment of the socket that sent the frame (`BaseSession.bucket`, written per frame by
 *   the objects anyway), so an eviction with the user's sockets still open loses nothing: `seed`
 *   rebuilds the map from the attachments on wake-up;
 * - in the object's SQLite storage (`rate_buckets`), written only when the bucket runs dry (an
 *   accepted frame that leaves less than one token: the flooding path, at most one write per
 *   accepted frame past the burst, none per refused one) and when a socket of the user goes while
 *   its bucket is not full. That covers the one case the attachments cannot: every socket
 *   of the user closed, the object evicted, the user back. A user within the limit costs no write;
 *   the row is read once per user per object lifetime (first frame after a wake-up), never per frame.
 * A row whose bucket has refilled is useless and is deleted (`prune`, from the objects' alarm).
 */
import { type BucketConfig, type BucketState, fullBucket, take } from "./rate-limit";

/** The storage table, created by each object's schema. */
export const RATE_BUCKETS_TABLE = `CREATE TABLE IF NOT EXISTS rate_buckets (
  user_id TEXT PRIMARY KEY,
  tokens REAL NOT NULL,
  at INTEGER NOT NULL
)`;

/** Tokens in `state` at `now` (refilled, capped at the burst). */
export function tokensAt(state: BucketState, cfg: BucketConfig, now: number): number {
  return Math.min(cfg.burst, state.tokens + (Math.max(0, now - state.at) * cfg.refillPerSec) / 1000);
}

/** The per-user buckets of one object. */
export class UserBuckets {
  private readonly mem = new Map<string, BucketState>();

  /** `sql` is read lazily: an object that never rate-limits anyone (the health ping) creates no table. */
  constructor(
    private readonly sql: () => SqlStorage,
    readonly cfg: BucketConfig,
  ) {}

  /** Adds a bucket found in an attachment on wake-up; the emptier of two copies wins. */
  seed(userId: string, state: BucketState | undefined, now: number): void {
    if (!state || typeof state.tokens !== "number" || typeof state.at !== "number") return;
    const known = this.mem.get(userId);
    if (!known || tokensAt(state, this.cfg, now) < tokensAt(known, this.cfg, now)) this.mem.set(userId, state);
  }

  /** The user's bucket now: memory, else the stored row, else full. */
  current(userId: string, now: number): BucketState {
    const known = this.mem.get(userId);
    if (known) return known;
    const row = this.sql()
      .exec<{ tokens: number; at: number }>("SELECT tokens, at FROM rate_buckets WHERE user_id = ?", userId)
      .toArray()[0];
    const state = row ? { tokens: row.tokens, at: row.at } : fullBucket(this.cfg, now);
    this.mem.set(userId, state);
    return state;
  }

  /**
   * Takes `cost` tokens from the user's bucket. The state is stored when a take leaves less than one
   * token. A refusal is not stored: it takes nothing, so the stored state (written when the bucket
   * ran dry) already refills along the same line, and a flood of refused frames writes nothing.
   */
  take(userId: string, now: number, cost = 1): ReturnType<typeof take> {
    const t = take(this.current(userId, now), this.cfg, now, cost);
    this.mem.set(userId, t.state);
    if (t.ok && t.state.tokens < 1) this.persist(userId, t.state);
    return t;
  }

  /** Charges work already done (a long replay), the bucket going as low as `-burst`; stored. */
  charge(userId: string, now: number, cost: number): BucketState {
    const cur = this.current(userId, now);
    const state = { tokens: Math.max(-this.cfg.burst, tokensAt(cur, this.cfg, now) - cost), at: now };
    this.mem.set(userId, state);
    this.persist(userId, state);
    return state;
  }

  /** A socket of the user went: keep the bucket in storage unless it is full (then it is the default). */
  release(userId: string, now: number): void {
    const cur = this.mem.get(userId);
    if (cur && tokensAt(cur, this.cfg, now) < this.cfg.burst) this.persist(userId, cur);
  }

  /** Deletes the stored buckets that have refilled by `now`, and forgets the full ones in memory. */
  prune(now: number): void {
    const refillMs = this.cfg.refillPerSec > 0 ? Math.ceil(((this.cfg.burst + this.cfg.burst) * 1000) / this.cfg.refillPerSec) : Number.MAX_SAFE_INTEGER;
    this.sql().exec("DELETE FROM rate_buckets WHERE at < ?", now - refillMs);
    for (const [userId, state] of this.mem) if (tokensAt(state, this.cfg, now) >= this.cfg.burst) this.mem.delete(userId);
  }

  private persist(userId: string, state: BucketState): void {
    this.sql().exec(
      "INSERT INTO rate_buckets (user_id, tokens, at) VALUES (?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET tokens = excluded.tokens, at = excluded.at",
      userId,
      state.tokens,
      state.at,
    );
  }
}
