/**
 * Per-user state of a room, in the room's own storage: the read position (`mark_read`), whom each
 * message mentions (the `mentions` table, for the mention counts), and whether the user's join is
 * recorded in D1 (`room_joins`, which lists the rooms a user joined: `GET /api/chat/rooms?joined=true`).
 *
 * A user's first join makes their row, with the read position at the room's head then (history from
 * before one joined is not "unread"). First joins are written together: the row waits in memory
 * (`pendingRows`, counted by every read here) until the lifecycle's join flush, which writes the
 * waiting rows in one transaction and their D1 records in one batch (lifecycle.ts `flushJoins`). One
 * durable write per join storm instead of two per join plus a D1 write: under `wrangler dev` those
 * writes were most of a join's cost (docs/benchmarks.md). `listed` says the D1 record landed; a
 * join or the alarm retries it until it does. A join whose row was still waiting when the object
 * went away is recorded by the user's next join.
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
  /** First joins whose row is not written yet: user → read position and join time. */
  private readonly pendingRows = new Map<string, { readSeq: number; joinedAt: number }>();

  private readonly sql: SqlStorage;

  constructor(private readonly storage: DurableObjectStorage) {
    this.sql = storage.sql;
  }

  /**
   * Records a join: the first one queues the user's row (read position = `lastSeq`) for the next
   * flush. Returns true when a flush has work: a first join, or a D1 record still to be written.
   */
  noteJoin(userId: string, lastSeq: number, now: number): boolean {
    if (this.pendingRows.has(userId)) return false;
    const row = this.sql.exec<{ listed: number }>("SELECT listed FROM read_state WHERE user_id = ?", userId).toArray()[0];
    if (row) return row.listed === 0;
    this.pendingRows.set(userId, { readSeq: lastSeq, joinedAt: now });
    return true;
  }

  /** Writes the waiting first-join rows, all in one transaction. */
  writePending(): void {
    if (this.pendingRows.size === 0) return;
    this.storage.transactionSync(() => {
      for (const [userId, p] of this.pendingRows) {
        this.sql.exec("INSERT OR IGNORE INTO read_state (user_id, read_seq, joined_at, listed) VALUES (?, ?, ?, 0)", userId, p.readSeq, p.joinedAt);
      }
    });
    this.pendingRows.clear();
  }

  /** Forgets the waiting rows (the room is being deleted). */
  dropPending(): void {
    this.pendingRows.clear();
  }

  /** The D1 records of these users' joins landed. */
  markListed(userIds: readonly string[]): void {
    this.storage.transactionSync(() => {
      for (const userId of userIds) this.sql.exec("UPDATE read_state SET listed = 1 WHERE user_id = ?", userId);
    });
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
    let to = Math.min(seq, lastSeq);
    // A first join still waiting: its row is written now, never below the position it joined at.
    const waiting = this.pendingRows.get(userId);
    if (waiting) {
      this.pendingRows.delete(userId);
      to = Math.max(to, waiting.readSeq);
      now = waiting.joinedAt;
    }
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
    const readSeq = row?.read_seq ?? this.pendingRows.get(userId)?.readSeq;
    if (readSeq === undefined) return null;
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
