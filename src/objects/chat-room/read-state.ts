/**
 * Per-user state of a room, in the room's own storage: the read position (`mark_read`), whom each
 * message mentions (the `mentions` table, for the mention counts), and whether the user's join is
 * recorded in D1 (`room_joins`, which lists the rooms a user joined: `GET /api/chat/rooms?joined=true`).
 *
 * A user's first join makes their row, with the read position at the room's head then (history from
 * before one joined is not "unread"). The D1 record is written once per user per room, off the hot
 * path (after the join's frames, `ctx.waitUntil`); `listed` says it landed, and a join or the alarm
 * retries it until it does.
 */
import type { RoomMessage } from "../../protocol";

/** What the room list shows for one user. */
export interface ReadSummary {
  /** The user's read position (a seq). */
  readSeq: number;
  lastSeq: number;
  /** Messages after the read position, not by the user, not deleted. */
  unread: number;
  /** Of those, the ones that mention the user. */
  mentions: number;
}

/** The read state and mention index of one room. */
export class RoomReadState {
  constructor(private readonly sql: SqlStorage) {}

  /**
   * Records a join: the first one makes the user's row (read position = `lastSeq`). Returns true when
   * the D1 record is still to be written (a first join, or an earlier write that failed).
   */
  noteJoin(userId: string, lastSeq: number, now: number): boolean {
    const row = this.sql.exec<{ listed: number }>("SELECT listed FROM read_state WHERE user_id = ?", userId).toArray()[0];
    if (row) return row.listed === 0;
    this.sql.exec("INSERT INTO read_state (user_id, read_seq, joined_at, listed) VALUES (?, ?, ?, 0)", userId, lastSeq, now);
    return true;
  }

  /** The D1 record of the user's join landed. */
  markListed(userId: string): void {
    this.sql.exec("UPDATE read_state SET listed = 1 WHERE user_id = ?", userId);
  }

  /** Users whose D1 record is still to be written (at most `n`). */
  unlisted(n: number): { userId: string; joinedAt: number }[] {
    return this.sql
      .exec<{ user_id: string; joined_at: number }>("SELECT user_id, joined_at FROM read_state WHERE listed = 0 LIMIT ?", n)
      .toArray()
      .map((r) => ({ userId: r.user_id, joinedAt: r.joined_at }));
  }

  /** Moves the user's read position to `seq`, clamped to the head, never backwards. Returns the position now. */
  markRead(userId: string, seq: number, lastSeq: number, now: number): number {
    const to = Math.min(seq, lastSeq);
    this.sql.exec(
      `INSERT INTO read_state (user_id, read_seq, joined_at, listed) VALUES (?, ?, ?, 0)
       ON CONFLICT (user_id) DO UPDATE SET read_seq = max(read_seq, excluded.read_seq)`,
      userId,
      to,
      now,
    );
    return this.sql.exec<{ read_seq: number }>("SELECT read_seq FROM read_state WHERE user_id = ?", userId).one().read_seq;
  }

  /** The user's unread and mention counts; null when the user never joined the room. */
  summary(userId: string, lastSeq: number): ReadSummary | null {
    const row = this.sql.exec<{ read_seq: number }>("SELECT read_seq FROM read_state WHERE user_id = ?", userId).toArray()[0];
    if (!row) return null;
    const readSeq = row.read_seq;
    const unread = this.sql
      .exec<{ n: number }>("SELECT count(*) AS n FROM messages WHERE seq > ? AND user_id != ? AND deleted = 0", readSeq, userId)
      .one().n;
    const mentions = this.sql
      .exec<{ n: number }>(
        `SELECT count(*) AS n FROM mentions x JOIN messages m ON m.seq = x.seq
         WHERE x.user_id = ? AND x.seq > ? AND m.user_id != ? AND m.deleted = 0`,
        userId,
        readSeq,
        userId,
      )
      .one().n;
    return { readSeq, lastSeq, unread, mentions };
  }

  /** Indexes whom a message mentions (replacing what it mentioned before). */
  setMentions(m: Pick<RoomMessage, "seq" | "mentions">): void {
    this.sql.exec("DELETE FROM mentions WHERE seq = ?", m.seq);
    for (const userId of new Set(m.mentions ?? [])) this.sql.exec("INSERT OR IGNORE INTO mentions (user_id, seq) VALUES (?, ?)", userId, m.seq);
  }

  /** Forgets whom a message mentioned (it became a tombstone). */
  clearMentions(seq: number): void {
    this.sql.exec("DELETE FROM mentions WHERE seq = ?", seq);
  }
}
