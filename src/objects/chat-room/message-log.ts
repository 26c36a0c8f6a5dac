/**
 * The room's message log: its own SQLite table, the one place that reads or writes it. `seq` is the
 * rowid (range scans by seq are index scans) and gap-free from 1; `(user_id, client_msg_id)` makes a
 * resend idempotent. The head (last seq, last message time) is kept in memory, read once per object
 * lifetime, so the hot path (one insert per message) reads nothing.
 */
import type { MediaDescriptor, RoomMessage } from "../../protocol";

type MessageRow = {
  seq: number;
  id: string;
  user_id: string;
  user_name: string;
  client_msg_id: string;
  text: string | null;
  media: string | null;
  reply_to: string | null;
  created_at: number;
};

/** The log of one room. */
export class MessageLog {
  /** The last message's seq (0: none yet). */
  lastSeq = 0;
  /** The last message's time (null: none yet). */
  lastMessageAt: number | null = null;

  constructor(
    private readonly sql: SqlStorage,
    private readonly roomId: string,
  ) {}

  /** Reads the head; after the schema is ready. */
  load(): void {
    const last = this.sql.exec<{ seq: number; created_at: number }>("SELECT seq, created_at FROM messages ORDER BY seq DESC LIMIT 1").toArray()[0];
    this.lastSeq = last?.seq ?? 0;
    this.lastMessageAt = last?.created_at ?? null;
  }

  /** Up to `n` messages with seq below `before`, newest first. */
  before(before: number, n: number): RoomMessage[] {
    return this.sql
      .exec<MessageRow>("SELECT * FROM messages WHERE seq < ? ORDER BY seq DESC LIMIT ?", before, n)
      .toArray()
      .map((r) => this.toMessage(r));
  }

  /** The last `n` messages, oldest first. */
  recent(n: number): RoomMessage[] {
    return this.before(Number.MAX_SAFE_INTEGER, n).reverse();
  }

  /** Up to `n` messages with `after` < seq <= `upTo`, oldest first. */
  range(after: number, upTo: number, n: number): RoomMessage[] {
    return this.sql
      .exec<MessageRow>("SELECT * FROM messages WHERE seq > ? AND seq <= ? ORDER BY seq ASC LIMIT ?", after, upTo, n)
      .toArray()
      .map((r) => this.toMessage(r));
  }

  /** True when a message with this id is in the log. */
  has(id: string): boolean {
    return this.sql.exec("SELECT 1 FROM messages WHERE id = ?", id).toArray().length > 0;
  }

  /** The message a user sent with `clientMsgId`, if any (a resend is answered with it). */
  findSent(userId: string, clientMsgId: string): RoomMessage | null {
    const row = this.sql.exec<MessageRow>("SELECT * FROM messages WHERE user_id = ? AND client_msg_id = ?", userId, clientMsgId).toArray()[0];
    return row ? this.toMessage(row) : null;
  }

  /**
   * Appends a message (its seq is `lastSeq + 1`) and moves the head. Returns false, storing nothing,
   * when the user already sent this `clientMsgId`: one statement on the hot path, not a lookup first.
   */
  append(m: RoomMessage): boolean {
    const { rowsWritten } = this.sql.exec(
      `INSERT INTO messages (seq, id, user_id, user_name, client_msg_id, text, media, reply_to, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (user_id, client_msg_id) DO NOTHING`,
      m.seq,
      m.id,
      m.userId,
      m.userName,
      m.clientMsgId,
      m.text ?? null,
      m.media ? JSON.stringify(m.media) : null,
      m.replyTo ?? null,
      m.createdAt,
    );
    if (rowsWritten === 0) return false;
    this.lastSeq = m.seq;
    this.lastMessageAt = m.createdAt;
    return true;
  }

  private toMessage(r: MessageRow): RoomMessage {
    const m: RoomMessage = {
      id: r.id,
      roomId: this.roomId,
      seq: r.seq,
      userId: r.user_id,
      userName: r.user_name,
      clientMsgId: r.client_msg_id,
      createdAt: r.created_at,
    };
    if (r.text !== null) m.text = r.text;
    if (r.media !== null) m.media = JSON.parse(r.media) as MediaDescriptor[];
    if (r.reply_to !== null) m.replyTo = r.reply_to;
    return m;
  }
}
