/**
 * The room's counters in D1 (`rooms.online_count`, `message_count`, `last_message_at`, shown by the
 * room list), written from the alarm at most once per STATS_DEBOUNCE_MS, never per message or join.
 * The pending write's due time is kept in `meta` (`stats_due`), so an eviction does not lose it.
 */
import { eq } from "drizzle-orm";
import { db } from "../../db/queries";
import { rooms } from "../../db/schema";

/** Debounce of the room's stats (online count, message count, last message time) written to D1. */
export const STATS_DEBOUNCE_MS = 2_000;
/** Retry delay when the D1 stats write fails. */
export const STATS_RETRY_MS = 10_000;

/** What the stats need from the room. */
export interface StatsHooks {
  /** Moves the object's one alarm earlier to `at` if needed. */
  scheduleAlarm(at: number): void;
  /** The values to write, read when the write starts. */
  read(): { onlineCount: number; messageCount: number; lastMessageAt: number | null };
  log(what: string, err: unknown): void;
}

/** The debounced D1 stats of one room. */
export class RoomStats {
  /** When the pending D1 stats write is due; null when nothing changed since the last one. */
  dueAt: number | null = null;
  /** Bumped by every change the D1 stats reflect, so a write knows whether something changed while it awaited D1. */
  private gen = 0;

  constructor(
    private readonly sql: SqlStorage,
    private readonly env: Env,
    private readonly roomId: string,
    private readonly hooks: StatsHooks,
  ) {}

  /** Reads the pending write's due time; after the schema is ready. */
  load(): void {
    const due = this.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = 'stats_due'").toArray()[0]?.value;
    this.dueAt = due === undefined ? null : Number(due);
  }

  /** Marks the D1 stats stale; the write happens in the alarm, at most once per STATS_DEBOUNCE_MS. */
  markDirty(): void {
    this.gen++;
    if (this.dueAt === null) this.schedule(Date.now() + STATS_DEBOUNCE_MS);
  }

  /** Writes the stats to D1 (from the alarm); a change made meanwhile schedules another write. */
  async write(): Promise<void> {
    // The values are read now; frames handled while the write awaits D1 may change them.
    const gen = this.gen;
    try {
      await db(this.env).update(rooms).set(this.hooks.read()).where(eq(rooms.id, this.roomId));
      if (this.gen === gen) this.clear();
      else this.schedule(Date.now() + STATS_DEBOUNCE_MS);
    } catch (err) {
      this.hooks.log("stats write failed", err);
      this.hooks.scheduleAlarm(Date.now() + STATS_RETRY_MS);
    }
  }

  private schedule(at: number): void {
    this.dueAt = at;
    this.sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES ('stats_due', ?)", String(at));
    this.hooks.scheduleAlarm(at);
  }

  private clear(): void {
    this.dueAt = null;
    this.sql.exec("DELETE FROM meta WHERE key = 'stats_due'");
  }
}
