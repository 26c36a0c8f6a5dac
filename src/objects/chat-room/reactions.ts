/**
 * Reactions on room messages: who reacted with what (`reactions` table, one row per message, user and
 * emoji, so a user has at most one of each emoji on a message) and the counts, kept on the message row
 * (`messages.reactions`, `{ emoji: count }`) so that serving a message reads no extra rows. At most
 * REACTIONS_DISTINCT_MAX distinct emoji per message: a new emoji beyond it is refused.
 */
import { REACTIONS_DISTINCT_MAX, type RoomMessage } from "../../protocol";
import type { MessageLog } from "./message-log";

/** The result of one toggle. */
export type ToggleResult =
  | { ok: true; changed: false; count: number }
  | { ok: true; changed: true; count: number; rev: number }
  | { ok: false; code: "too_large"; message: string };

/** The reactions of one room. */
export class RoomReactions {
  constructor(
    private readonly sql: SqlStorage,
    private readonly log: MessageLog,
  ) {}

  /**
   * Sets (`on`) or clears `userId`'s `emoji` on message `m` (a live message). Idempotent: a toggle to
   * the state already held changes nothing and takes no rev.
   */
  toggle(m: RoomMessage, userId: string, emoji: string, on: boolean): ToggleResult {
    const counts = { ...(m.reactions ?? {}) };
    const has = this.sql.exec("SELECT 1 FROM reactions WHERE seq = ? AND user_id = ? AND emoji = ?", m.seq, userId, emoji).toArray().length > 0;
    if (has === on) return { ok: true, changed: false, count: counts[emoji] ?? 0 };
    if (on) {
      if (counts[emoji] === undefined && Object.keys(counts).length >= REACTIONS_DISTINCT_MAX) {
        return { ok: false, code: "too_large", message: `reactions: a message has at most ${REACTIONS_DISTINCT_MAX} distinct emoji` };
      }
      this.sql.exec("INSERT INTO reactions (seq, user_id, emoji) VALUES (?, ?, ?)", m.seq, userId, emoji);
      counts[emoji] = (counts[emoji] ?? 0) + 1;
    } else {
      this.sql.exec("DELETE FROM reactions WHERE seq = ? AND user_id = ? AND emoji = ?", m.seq, userId, emoji);
      counts[emoji] = (counts[emoji] ?? 1) - 1;
      if (counts[emoji] <= 0) delete counts[emoji];
    }
    const rev = this.log.setReactions(m.seq, counts);
    return { ok: true, changed: true, count: counts[emoji] ?? 0, rev };
  }

  /** Forgets every reaction on a message (it became a tombstone). */
  clear(seq: number): void {
    this.sql.exec("DELETE FROM reactions WHERE seq = ?", seq);
  }

  /**
   * Copies of `messages` made for one reader: each carries `myReactions`, the emoji the reader put on
   * it (one query for the whole page, by the reader's index).
   */
  forReader<T extends RoomMessage>(messages: T[], userId: string): T[] {
    const withCounts = messages.filter((m) => m.reactions !== undefined);
    if (withCounts.length === 0) return messages;
    let lo = Infinity;
    let hi = -Infinity;
    for (const m of withCounts) {
      if (m.seq < lo) lo = m.seq;
      if (m.seq > hi) hi = m.seq;
    }
    const mine = new Map<number, string[]>();
    for (const r of this.sql.exec<{ seq: number; emoji: string }>("SELECT seq, emoji FROM reactions WHERE user_id = ? AND seq >= ? AND seq <= ?", userId, lo, hi)) {
      const list = mine.get(r.seq);
      if (list) list.push(r.emoji);
      else mine.set(r.seq, [r.emoji]);
    }
    if (mine.size === 0) return messages;
    return messages.map((m) => {
      const list = mine.get(m.seq);
      return list ? { ...m, myReactions: list } : m;
    });
  }
}
