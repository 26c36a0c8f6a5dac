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
  edited_at: number | null;
  deleted: number;
  deleted_by: string | null;
  reactions: string | null;
  reply_count: number;
  mentions: string | null;
  rev: number;
};

/** The log of one room. */
export class MessageLog {
  /** The last message's seq (0: none yet). */
  lastSeq = 0;
  /** The last message's time (null: none yet). */
  lastMessageAt: number | null = null;
  /** The room's change counter: the highest `rev` of any message (0: none yet). */
  lastRev = 0;

  constructor(
    private readonly sql: SqlStorage,
    private readonly roomId: string,
  ) {}

  /** Reads the head; after the schema is ready. */
  load(): void {
    const last = this.sql.exec<{ seq: number; created_at: number }>("SELECT seq, created_at FROM messages ORDER BY seq DESC LIMIT 1").toArray()[0];
    this.lastSeq = last?.seq ?? 0;
    this.lastMessageAt = last?.created_at ?? null;
    this.lastRev = this.sql.exec<{ rev: number | null }>("SELECT max(rev) AS rev FROM messages").toArray()[0]?.rev ?? 0;
  }

  /** The next change position: every new message, edit, delete and reaction change takes one. */
  nextRev(): number {
    return ++this.lastRev;
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

  /** The message with this id, tombstones included; null when there is none. */
  get(id: string): RoomMessage | null {
    const row = this.sql.exec<MessageRow>("SELECT * FROM messages WHERE id = ?", id).toArray()[0];
    return row ? this.toMessage(row) : null;
  }

  /** Messages at or before `upTo` changed after `sinceRev` (and at or before `revUpTo`), in rev order, at most `n`. */
  changedSince(upTo: number, sinceRev: number, revUpTo: number, n: number): RoomMessage[] {
    return this.sql
      .exec<MessageRow>("SELECT * FROM messages WHERE rev > ? AND rev <= ? AND seq <= ? ORDER BY rev ASC LIMIT ?", sinceRev, revUpTo, upTo, n)
      .toArray()
      .map((r) => this.toMessage(r));
  }

  /** Up to `n` replies to message `parentId` with seq above `after`, oldest first. */
  replies(parentId: string, after: number, n: number): RoomMessage[] {
    return this.sql
      .exec<MessageRow>("SELECT * FROM messages WHERE reply_to = ? AND seq > ? ORDER BY seq ASC LIMIT ?", parentId, after, n)
      .toArray()
      .map((r) => this.toMessage(r));
  }

  /** The messages with these seqs (any order). */
  bySeqs(seqs: readonly number[]): RoomMessage[] {
    if (seqs.length === 0) return [];
    return this.sql
      .exec<MessageRow>(`SELECT * FROM messages WHERE seq IN (${seqs.map(() => "?").join(",")})`, ...seqs)
      .toArray()
      .map((r) => this.toMessage(r));
  }

  /**
   * Replaces the text (and the mentions, when given) of a live message: the search index follows,
   * `editedAt` and the next rev are set. Returns the message as it now is.
   */
  edit(m: RoomMessage, text: string, mentions: string[] | undefined, now: number): RoomMessage {
    const rev = this.nextRev();
    const nextMentions = mentions ?? m.mentions;
    this.unindex(m.seq, m.text);
    this.sql.exec(
      "UPDATE messages SET text = ?, mentions = ?, edited_at = ?, rev = ? WHERE seq = ?",
      text,
      nextMentions && nextMentions.length > 0 ? JSON.stringify(nextMentions) : null,
      now,
      rev,
      m.seq,
    );
    this.index(m.seq, text);
    const out: RoomMessage = { ...m, text, editedAt: now, rev };
    if (nextMentions && nextMentions.length > 0) out.mentions = nextMentions;
    else delete out.mentions;
    return out;
  }

  /** Turns a message into a tombstone: text, media, mentions and reaction counts go; seq and id stay. */
  tombstone(m: RoomMessage, by: string): RoomMessage {
    const rev = this.nextRev();
    this.unindex(m.seq, m.text);
    this.sql.exec(
      "UPDATE messages SET text = NULL, media = NULL, mentions = NULL, reactions = NULL, deleted = 1, deleted_by = ?, rev = ? WHERE seq = ?",
      by,
      rev,
      m.seq,
    );
    const row = this.sql.exec<MessageRow>("SELECT * FROM messages WHERE seq = ?", m.seq).one();
    return this.toMessage(row);
  }

  /** Stores a message's reaction counts (`{}` clears them) and gives it the next rev; returns the rev. */
  setReactions(seq: number, counts: Record<string, number>): number {
    const rev = this.nextRev();
    this.sql.exec("UPDATE messages SET reactions = ?, rev = ? WHERE seq = ?", Object.keys(counts).length > 0 ? JSON.stringify(counts) : null, rev, seq);
    return rev;
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
      `INSERT INTO messages (seq, id, user_id, user_name, client_msg_id, text, media, reply_to, created_at, mentions, rev)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
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
      m.mentions && m.mentions.length > 0 ? JSON.stringify(m.mentions) : null,
      m.rev ?? 0,
    );
    if (rowsWritten === 0) return false;
    this.lastSeq = m.seq;
    this.lastMessageAt = m.createdAt;
    if (m.rev !== undefined && m.rev > this.lastRev) this.lastRev = m.rev;
    this.index(m.seq, m.text);
    if (m.replyTo !== undefined) this.sql.exec("UPDATE messages SET reply_count = reply_count + 1 WHERE id = ?", m.replyTo);
    return true;
  }

  /** Adds live text to the search index (search.ts reads it). */
  private index(seq: number, text: string | undefined): void {
    if (text !== undefined && text.length > 0) this.sql.exec("INSERT INTO messages_fts (rowid, text) VALUES (?, ?)", seq, text);
  }

  /** Removes text from the search index: an external-content index is told the exact text it holds. */
  private unindex(seq: number, text: string | undefined): void {
    if (text !== undefined && text.length > 0) this.sql.exec("INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', ?, ?)", seq, text);
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
    if (r.reply_count > 0) m.replyCount = r.reply_count;
    if (r.edited_at !== null) m.editedAt = r.edited_at;
    if (r.deleted === 1) {
      m.deleted = true;
      if (r.deleted_by !== null) m.deletedBy = r.deleted_by;
    }
    if (r.reactions !== null) m.reactions = JSON.parse(r.reactions) as Record<string, number>;
    if (r.mentions !== null) m.mentions = JSON.parse(r.mentions) as string[];
    m.rev = r.rev;
    return m;
  }
}
