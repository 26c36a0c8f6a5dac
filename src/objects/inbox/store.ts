/**
 * The Inbox's storage: its schema and every statement used in more than one place. The parts run
 * their one-off queries themselves; anything repeated lives here, once.
 */
import type { DmMessage, MediaDescriptor } from "../../protocol";
import type { ConversationSummary } from "./context";

export type ConversationRow = {
  id: string;
  peer_id: string;
  peer_name: string;
  created_at: number;
  last_seq: number;
  read_seq: number;
  peer_read_seq: number;
  unread: number;
  last_at: number;
};

export type MessageRow = {
  conversation_id: string;
  seq: number;
  id: string;
  from_id: string;
  to_id: string;
  client_msg_id: string;
  text: string | null;
  media: string | null;
  created_at: number;
  /** Set once edited (the author's time of the latest edit). */
  edited_at: number | null;
  /** Set on a tombstone: who deleted it (text, media and reactions are gone). */
  deleted_by: string | null;
  /** Reaction counts, JSON `{ emoji: count }` in the order first reacted; null when none. */
  reactions: string | null;
  /** The owner's own reactions, JSON `[emoji]`; null when none. With two participants, counts and these determine the peer's. */
  my_reactions: string | null;
  /** The inbox's change counter when this message last changed (created, edited, deleted, reacted to). */
  rev: number;
};

/** A stored message row as a `DmMessage`. */
export function rowToMessage(r: MessageRow): DmMessage {
  const m: DmMessage = {
    id: r.id,
    conversationId: r.conversation_id,
    seq: r.seq,
    from: r.from_id,
    to: r.to_id,
    clientMsgId: r.client_msg_id,
    createdAt: r.created_at,
  };
  if (r.text !== null) m.text = r.text;
  if (r.media !== null) m.media = JSON.parse(r.media) as MediaDescriptor[];
  if (r.edited_at !== null) m.editedAt = r.edited_at;
  if (r.deleted_by !== null) {
    m.deleted = true;
    m.deletedBy = r.deleted_by;
  }
  if (r.reactions !== null) m.reactions = JSON.parse(r.reactions) as Record<string, number>;
  if (r.my_reactions !== null) m.myReactions = JSON.parse(r.my_reactions) as string[];
  if (r.rev > 0) m.rev = r.rev;
  return m;
}

/** The Inbox's SQLite storage. */
export class InboxStore {
  constructor(readonly sql: SqlStorage) {}

  meta(key: string): string | null {
    return this.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = ?", key).toArray()[0]?.value ?? null;
  }

  setMeta(key: string, value: string): void {
    this.sql.exec("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", key, value);
  }

  conversation(id: string): ConversationRow | null {
    return this.sql.exec<ConversationRow>("SELECT * FROM conversations WHERE id = ?", id).toArray()[0] ?? null;
  }

  upsertConversation(id: string, peerId: string, peerName: string, now: number): void {
    this.sql.exec(
      "INSERT OR IGNORE INTO conversations (id, peer_id, peer_name, created_at, last_at) VALUES (?, ?, ?, ?, ?)",
      id,
      peerId,
      peerName,
      now,
      now,
    );
  }

  messageByClientId(conversationId: string, fromId: string, clientMsgId: string): DmMessage | null {
    const row = this.sql
      .exec<MessageRow>(
        "SELECT * FROM messages WHERE conversation_id = ? AND from_id = ? AND client_msg_id = ?",
        conversationId,
        fromId,
        clientMsgId,
      )
      .toArray()[0];
    return row ? rowToMessage(row) : null;
  }

  summary(r: ConversationRow): ConversationSummary {
    const last = this.sql
      .exec<MessageRow>("SELECT * FROM messages WHERE conversation_id = ? AND seq = ?", r.id, r.last_seq)
      .toArray()[0];
    return {
      id: r.id,
      peer: { id: r.peer_id, name: r.peer_name },
      lastMessage: last ? rowToMessage(last) : null,
      unread: r.unread,
      lastSeq: r.last_seq,
      readSeq: r.read_seq,
      peerReadSeq: r.peer_read_seq,
      createdAt: r.created_at,
      updatedAt: r.last_at,
    };
  }

  /** A message of a conversation by its id (the id both copies share); null when this copy has none. */
  messageById(conversationId: string, id: string): MessageRow | null {
    return this.sql.exec<MessageRow>("SELECT * FROM messages WHERE conversation_id = ? AND id = ?", conversationId, id).toArray()[0] ?? null;
  }

  /** The inbox's latest change position (0 before the first change). */
  currentRev(): number {
    return Number(this.meta("rev") ?? 0);
  }

  /** Takes the next change position. Call inside the transaction that stores the change. */
  nextRev(): number {
    const rev = this.currentRev() + 1;
    this.setMeta("rev", String(rev));
    return rev;
  }

  /** Stores one copy of a DM (the sender's or the recipient's: the same row shape), at change position `rev`. */
  insertMessage(m: DmMessage, rev: number): void {
    this.sql.exec(
      `INSERT INTO messages (conversation_id, seq, id, from_id, to_id, client_msg_id, text, media, created_at, rev)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      m.conversationId,
      m.seq,
      m.id,
      m.from,
      m.to,
      m.clientMsgId,
      m.text ?? null,
      m.media ? JSON.stringify(m.media) : null,
      m.createdAt,
      rev,
    );
  }

  /** The highest message rowid: messages are never deleted (a deletion leaves a tombstone), so rowids only grow (the hold of a `?sync=1` socket). */
  lastRowid(): number {
    return this.sql.exec<{ r: number }>("SELECT COALESCE(MAX(rowid), 0) AS r FROM messages").one().r;
  }

  /** Records a watcher of this user's status (idempotent). */
  addSubscriberRow(userId: string, now: number): void {
    this.sql.exec("INSERT OR IGNORE INTO subscribers (user_id, created_at) VALUES (?, ?)", userId, now);
  }

  /** Forgets a watcher of this user's status. */
  removeSubscriberRow(userId: string): void {
    this.sql.exec("DELETE FROM subscribers WHERE user_id = ?", userId);
  }

  /** Forgets a status this user watches. */
  removeSubscription(userId: string): void {
    this.sql.exec("DELETE FROM subscriptions WHERE user_id = ?", userId);
  }
}
