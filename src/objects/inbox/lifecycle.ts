/**
 * The lifecycle of a DM after it is sent: edit and delete (the author only), reactions (either
 * participant), on both copies of the message.
 *
 * Who changes what, in order (docs/dms.md "Edits, deletions and reactions"):
 * 1. The originator's inbox (the author's for edit/delete, the reactor's for a reaction) checks the
 *    change (the message exists in this conversation, who may make it, the reaction bound, blocks
 *    either way), then in ONE transaction changes its own copy, takes the next `rev`, and appends
 *    the change to its outbox. Its sockets hear of it; the frame's sender gets the `ack`.
 * 2. The outbox is drained to the peer's inbox in order (`peerChange`), one peer at a time; an entry
 *    is removed only once the peer answered. A failed call stays queued and the inbox's alarm retries
 *    it with backoff, so a half-done change (this copy changed, the peer's not) always completes.
 * 3. The peer applies it to its copy IDEMPOTENTLY, keyed by the message id both copies share: an edit
 *    sets the text and the author's `editedAt` (the same edit again changes nothing), a deletion
 *    leaves a tombstone (a second one finds it), a reaction is a set of (user, emoji) (adding what is
 *    there, or removing what is not, changes nothing). A no-op takes no `rev` and sends no frame, so
 *    a retry after a lost answer never double-applies. Ordered delivery makes "last write wins" agree
 *    on both copies.
 *
 * Reactions are kept on the message row: counts `{ emoji: count }` and the owner's own emoji. A DM has
 * two participants, so the peer's own emoji are exactly those whose count exceeds the owner's share:
 * no per-user reaction table is needed.
 */
import { releaseMedia } from "../../media/claim";
import type { ClientMessage, DmMessage } from "../../protocol";
import { REACTIONS_DISTINCT_MAX } from "../../protocol";
import { FrameError } from "../socket-host";
import { inboxStub } from "../stubs";
import type { InboxContext } from "./context";
import { type ConversationRow, type MessageRow, rowToMessage } from "./store";

/** A change mirrored to the peer's copy of a message (the body of an outbox entry). */
export type PeerChange =
  | { kind: "edit"; conversationId: string; messageId: string; text: string; editedAt: number }
  | { kind: "delete"; conversationId: string; messageId: string }
  | { kind: "react"; conversationId: string; messageId: string; emoji: string; on: boolean };

/** Work the outbox runs in order: a change for the peer's copy, or media to release after a deletion. */
export type OutboxTask = PeerChange | { kind: "release_media"; conversationId: string; mediaIds: string[] };

/** The peer's answer: applied (or already applied), or refused for good (the entry is dropped). */
export type PeerChangeResult = { ok: true } | { ok: false; code: "blocked" | "not_found" | "forbidden" };

/** Attempts of one outbox entry before it is dropped (logged): with the backoff below, about 2 hours. */
export const OUTBOX_ATTEMPTS_MAX = 30;
/** First retry delay of a failed outbox entry; doubled per attempt up to OUTBOX_BACKOFF_MAX_MS. */
export const OUTBOX_BACKOFF_MS = 1000;
export const OUTBOX_BACKOFF_MAX_MS = 5 * 60_000;

type OutboxRow = { id: number; peer_id: string; conversation_id: string; body: string; attempts: number; next_at: number };

type EditFrame = Extract<ClientMessage, { type: "edit_message" }>;
type DeleteFrame = Extract<ClientMessage, { type: "delete_message" }>;
type ReactFrame = Extract<ClientMessage, { type: "react" }>;

/** Reaction state of one copy: counts by emoji and the owner's own emoji. */
interface Reactions {
  counts: Record<string, number>;
  mine: string[];
}

function reactionsOf(r: MessageRow): Reactions {
  return {
    counts: r.reactions === null ? {} : (JSON.parse(r.reactions) as Record<string, number>),
    mine: r.my_reactions === null ? [] : (JSON.parse(r.my_reactions) as string[]),
  };
}

/** Adds or removes one (user, emoji): `own` for the owner's reaction, else the peer's. False when nothing changes. */
function toggle(state: Reactions, emoji: string, on: boolean, own: boolean): boolean {
  const mineHas = state.mine.includes(emoji);
  const count = state.counts[emoji] ?? 0;
  const has = own ? mineHas : count - (mineHas ? 1 : 0) > 0;
  if (has === on) return false;
  if (on) state.counts[emoji] = count + 1;
  else if (count <= 1) delete state.counts[emoji];
  else state.counts[emoji] = count - 1;
  if (own) state.mine = on ? [...state.mine, emoji] : state.mine.filter((e) => e !== emoji);
  return true;
}

/** The conversation id an inbox lifecycle frame must name. */
function conversationOf(msg: { conversationId?: string }): string {
  if (msg.conversationId === undefined) throw new FrameError("bad_request", "conversationId: required on the inbox socket");
  return msg.conversationId;
}

/** Edits, deletions and reactions on DMs, and the outbox that mirrors them to the peer. */
export class InboxLifecycle {
  constructor(private readonly c: InboxContext) {}

  // ------------------------------------------------------------------ frames from the owner's sockets

  async onEdit(ws: WebSocket, msg: EditFrame): Promise<void> {
    const conversationId = conversationOf(msg);
    if (msg.mentions !== undefined && msg.mentions.length > 0) throw new FrameError("bad_request", "mentions: a DM has no mentions");
    const { conv, message, changed } = await this.c.serialize(conversationId, async () => {
      const { conv, row } = this.target(conversationId, msg.messageId);
      if (row.from_id !== this.c.owner) throw new FrameError("forbidden", "only the author can edit a message");
      if (row.deleted_by !== null) throw new FrameError("not_found", "message was deleted");
      // The same text again (a retry): answered as done, nothing changes, the outbox is drained below.
      if (row.text === msg.text) return { conv, message: rowToMessage(row), changed: false };
      await this.refuseIfBlocked(conv);
      const editedAt = Date.now();
      const updated = this.change(conv, msg.messageId, (r) => {
        if (r.deleted_by !== null) throw new FrameError("not_found", "message was deleted");
        this.c.sql.exec("UPDATE messages SET text = ?, edited_at = ? WHERE conversation_id = ? AND id = ?", msg.text, editedAt, conv.id, r.id);
        return [{ kind: "edit", conversationId: conv.id, messageId: r.id, text: msg.text, editedAt }];
      });
      return { conv, message: updated, changed: true };
    });
    if (changed) this.c.broadcast({ type: "message_updated", message }, ws);
    this.c.host.send(ws, { type: "ack", id: msg.id, message });
    await this.drain(conv.peer_id);
  }

  async onDelete(ws: WebSocket, msg: DeleteFrame): Promise<void> {
    const conversationId = conversationOf(msg);
    const { conv, message, changed } = await this.c.serialize(conversationId, async () => {
      const { conv, row } = this.target(conversationId, msg.messageId);
      if (row.from_id !== this.c.owner) throw new FrameError("forbidden", "only the author can delete a message");
      // Deleted already (a retry): answered with the tombstone.
      if (row.deleted_by !== null) return { conv, message: rowToMessage(row), changed: false };
      await this.refuseIfBlocked(conv);
      const updated = this.change(conv, msg.messageId, (r) => {
        if (r.deleted_by !== null) return [];
        const mediaIds = r.media === null ? [] : (JSON.parse(r.media) as { id: string }[]).map((m) => m.id);
        this.tombstone(conv.id, r.id);
        const tasks: OutboxTask[] = [{ kind: "delete", conversationId: conv.id, messageId: r.id }];
        // The media's owner is the author, whose inbox this is: it releases what no message uses any more.
        if (mediaIds.length > 0) tasks.push({ kind: "release_media", conversationId: conv.id, mediaIds });
        return tasks;
      });
      return { conv, message: updated, changed: true };
    });
    if (changed) this.c.broadcast(deletedFrame(message), ws);
    this.c.host.send(ws, { type: "ack", id: msg.id, message });
    await this.drain(conv.peer_id);
  }

  async onReact(ws: WebSocket, msg: ReactFrame): Promise<void> {
    const conversationId = conversationOf(msg);
    const { conv, message, changed } = await this.c.serialize(conversationId, async () => {
      const { conv, row } = this.target(conversationId, msg.messageId);
      if (row.deleted_by !== null) throw new FrameError("not_found", "message was deleted");
      const state = reactionsOf(row);
      const newEmoji = !(msg.emoji in state.counts);
      // Already so (a retry, or a second tab): answered as done.
      if (!toggle(state, msg.emoji, msg.on, true)) return { conv, message: rowToMessage(row), changed: false };
      if (newEmoji && Object.keys(state.counts).length > REACTIONS_DISTINCT_MAX) {
        throw new FrameError("too_large", `a message has at most ${REACTIONS_DISTINCT_MAX} distinct reactions`);
      }
      await this.refuseIfBlocked(conv);
      const updated = this.change(conv, msg.messageId, (r) => {
        if (r.deleted_by !== null) throw new FrameError("not_found", "message was deleted");
        const now = reactionsOf(r);
        const added = !(msg.emoji in now.counts);
        if (!toggle(now, msg.emoji, msg.on, true)) return [];
        if (added && Object.keys(now.counts).length > REACTIONS_DISTINCT_MAX) {
          throw new FrameError("too_large", `a message has at most ${REACTIONS_DISTINCT_MAX} distinct reactions`);
        }
        this.saveReactions(conv.id, r.id, now);
        return [{ kind: "react", conversationId: conv.id, messageId: r.id, emoji: msg.emoji, on: msg.on }];
      });
      return { conv, message: updated, changed: true };
    });
    if (changed) this.c.broadcast(reactionFrame(message, msg.emoji, this.c.owner, msg.on), ws);
    this.c.host.send(ws, { type: "ack", id: msg.id, message });
    await this.drain(conv.peer_id);
  }

  // ------------------------------------------------------------------ RPC from the peer's inbox

  /**
   * Applies a change the peer made (`fromId`: the peer, author of edits and deletions, reactor of
   * reactions) to this inbox's copy. Idempotent; see the module comment.
   */
  peerChange(fromId: string, change: PeerChange): PeerChangeResult {
    // A user who blocks the peer receives nothing new from them (as `receiveDm`).
    if (this.c.blocks.isBlocking(fromId)) return { ok: false, code: "blocked" };
    const conv = this.c.store.conversation(change.conversationId);
    if (!conv || conv.peer_id !== fromId) return { ok: false, code: "not_found" };
    const row = this.c.store.messageById(conv.id, change.messageId);
    if (!row) return { ok: false, code: "not_found" };
    if (change.kind !== "react" && row.from_id !== fromId) return { ok: false, code: "forbidden" };
    // Nothing changes a tombstone.
    if (row.deleted_by !== null) return { ok: true };
    const done = this.c.ctx.storage.transactionSync((): { message: DmMessage; frame: "updated" | "deleted" | "reaction" } | null => {
      const r = this.c.store.messageById(conv.id, change.messageId)!;
      let frame: "updated" | "deleted" | "reaction";
      switch (change.kind) {
        case "edit":
          if (r.text === change.text && r.edited_at === change.editedAt) return null;
          this.c.sql.exec("UPDATE messages SET text = ?, edited_at = ? WHERE conversation_id = ? AND id = ?", change.text, change.editedAt, conv.id, r.id);
          frame = "updated";
          break;
        case "delete":
          this.tombstone(conv.id, r.id);
          // A deleted message is no longer unread.
          if (r.seq > conv.read_seq && conv.unread > 0) this.c.sql.exec("UPDATE conversations SET unread = unread - 1 WHERE id = ?", conv.id);
          frame = "deleted";
          break;
        case "react": {
          const state = reactionsOf(r);
          if (!toggle(state, change.emoji, change.on, false)) return null;
          this.saveReactions(conv.id, r.id, state);
          frame = "reaction";
          break;
        }
      }
      this.c.sql.exec("UPDATE messages SET rev = ? WHERE conversation_id = ? AND id = ?", this.c.store.nextRev(), conv.id, r.id);
      return { message: rowToMessage(this.c.store.messageById(conv.id, r.id)!), frame };
    });
    if (done?.frame === "updated") this.c.broadcast({ type: "message_updated", message: done.message });
    if (done?.frame === "deleted") this.c.broadcast(deletedFrame(done.message));
    if (done?.frame === "reaction" && change.kind === "react") this.c.broadcast(reactionFrame(done.message, change.emoji, fromId, change.on));
    return { ok: true };
  }

  // ------------------------------------------------------------------ the outbox

  /**
   * Runs the outbox entries for `peerId` in order until it is empty or one fails (that one is retried
   * by the alarm, with backoff, and the later ones wait behind it: order is what keeps both copies in
   * agreement). Never throws. Must not be called from inside a conversation's queue (a media release
   * takes that queue).
   */
  async drain(peerId: string): Promise<void> {
    try {
      await this.c.serialize(`outbox:${peerId}`, () => this.drainNow(peerId));
    } catch (err) {
      // Storage failed under the outbox: the entries are still there for the next drain or alarm.
      this.c.host.log("outbox: drain", err);
    }
  }

  private async drainNow(peerId: string): Promise<void> {
    for (;;) {
      const entry = this.c.sql.exec<OutboxRow>("SELECT * FROM outbox WHERE peer_id = ? ORDER BY id LIMIT 1", peerId).toArray()[0];
      if (!entry) return;
      // Backing off after a failure: the alarm retries it when due (new changes queue behind it),
      // so a burst of changes while the peer is down does not use up its attempts.
      if (entry.next_at > Date.now()) return this.armAlarm(entry.next_at);
      const task = JSON.parse(entry.body) as OutboxTask;
      let result: PeerChangeResult;
      try {
        result = await this.run(peerId, task);
      } catch (err) {
        const attempts = entry.attempts + 1;
        if (attempts >= OUTBOX_ATTEMPTS_MAX) {
          this.c.host.log(`outbox: ${task.kind} dropped after ${attempts} attempts`, err);
          this.c.sql.exec("DELETE FROM outbox WHERE id = ?", entry.id);
          continue;
        }
        const nextAt = Date.now() + Math.min(OUTBOX_BACKOFF_MS * 2 ** (attempts - 1), OUTBOX_BACKOFF_MAX_MS);
        this.c.sql.exec("UPDATE outbox SET attempts = ?, next_at = ? WHERE id = ?", attempts, nextAt, entry.id);
        this.c.host.log(`outbox: ${task.kind} failed (attempt ${attempts}); retried by the alarm`, err);
        try {
          await this.armAlarm(nextAt);
        } catch (again) {
          this.c.host.log("outbox: arming the alarm", again);
        }
        return;
      }
      this.c.sql.exec("DELETE FROM outbox WHERE id = ?", entry.id);
      if (!result.ok) this.c.host.log(`outbox: ${task.kind} refused by the peer (${result.code}); dropped`, undefined);
    }
  }

  /**
   * The alarm's part: drains every peer whose first entry is due; returns when the next first entry
   * is due (null: the outbox is empty). Only first entries count: the others wait behind them.
   */
  async drainDue(now: number): Promise<number | null> {
    for (const head of this.heads()) if (head.next_at <= now) await this.drain(head.peer_id);
    const left = this.heads().map((h) => h.next_at);
    return left.length > 0 ? Math.min(...left) : null;
  }

  /** The first outbox entry of each peer. */
  private heads(): { peer_id: string; next_at: number }[] {
    return this.c.sql
      .exec<{ peer_id: string; next_at: number }>(
        "SELECT o.peer_id, o.next_at FROM outbox AS o WHERE o.id = (SELECT MIN(id) FROM outbox WHERE peer_id = o.peer_id)",
      )
      .toArray();
  }

  /** Entries waiting in the outbox (for tests and the report). */
  pending(): number {
    return this.c.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM outbox").one().n;
  }

  private async run(peerId: string, task: OutboxTask): Promise<PeerChangeResult> {
    if (task.kind === "release_media") {
      // In the conversation's queue: a send re-posting the same media is either stored before this
      // looks for references, or claims the media again after it was released.
      await this.c.serialize(task.conversationId, async () => {
        const used = task.mediaIds.filter((id) => this.mediaInUse(task.conversationId, id));
        const free = task.mediaIds.filter((id) => !used.includes(id));
        await releaseMedia(this.c.env, free, { kind: "dm", conversationId: task.conversationId, peerId });
      });
      return { ok: true };
    }
    return inboxStub(this.c.env, peerId).peerChange(this.c.owner, task);
  }

  /** True while a message of the conversation in this copy still carries the media. */
  private mediaInUse(conversationId: string, mediaId: string): boolean {
    return (
      this.c.sql
        .exec(
          `SELECT 1 FROM messages, json_each(messages.media) AS j
           WHERE messages.conversation_id = ? AND messages.media IS NOT NULL AND json_extract(j.value, '$.id') = ? LIMIT 1`,
          conversationId,
          mediaId,
        )
        .toArray().length > 0
    );
  }

  private async armAlarm(at: number): Promise<void> {
    const current = await this.c.ctx.storage.getAlarm();
    if (current === null || current > at) await this.c.ctx.storage.setAlarm(at);
  }

  // ------------------------------------------------------------------ shared steps

  /** The conversation and the message a frame names, or `not_found`. */
  private target(conversationId: string, messageId: string): { conv: ConversationRow; row: MessageRow } {
    const conv = this.c.store.conversation(conversationId);
    if (!conv) throw new FrameError("not_found", "conversation not found");
    const row = this.c.store.messageById(conversationId, messageId);
    if (!row) throw new FrameError("not_found", "message not found");
    return { conv, row };
  }

  /**
   * Blocks stop changes as they stop messages (`send_dm`): refused with `blocked` when this user blocks
   * the peer or the peer blocks this user (asked of the peer's inbox, which owns its list), before
   * anything changes. The peer's own check on arrival is the authoritative one.
   */
  private async refuseIfBlocked(conv: ConversationRow): Promise<void> {
    if (this.c.blocks.isBlocking(conv.peer_id)) throw new FrameError("blocked", "you have blocked this user");
    let blocked = false;
    try {
      blocked = await inboxStub(this.c.env, conv.peer_id).blocks(this.c.owner);
    } catch (err) {
      // The peer's inbox cannot answer now: the change goes ahead here and waits in the outbox; the
      // peer still refuses it on arrival if it blocks this user (`peerChange`).
      this.c.host.log("lifecycle: block check", err);
    }
    if (blocked) throw new FrameError("blocked", "this user is not accepting your messages");
  }

  /**
   * One change of this copy, in one transaction: `apply` gets the current row, writes it and returns
   * what the outbox must carry (nothing: no change, no rev); the row takes the next rev. Returns the
   * message as it now is.
   */
  private change(conv: ConversationRow, messageId: string, apply: (r: MessageRow) => OutboxTask[]): DmMessage {
    return this.c.ctx.storage.transactionSync(() => {
      const r = this.c.store.messageById(conv.id, messageId);
      if (!r) throw new FrameError("not_found", "message not found");
      const tasks = apply(r);
      if (tasks.length > 0) {
        this.c.sql.exec("UPDATE messages SET rev = ? WHERE conversation_id = ? AND id = ?", this.c.store.nextRev(), conv.id, r.id);
        const now = Date.now();
        for (const t of tasks) {
          this.c.sql.exec(
            "INSERT INTO outbox (peer_id, conversation_id, body, next_at, created_at) VALUES (?, ?, ?, ?, ?)",
            conv.peer_id,
            conv.id,
            JSON.stringify(t),
            now,
            now,
          );
        }
      }
      return rowToMessage(this.c.store.messageById(conv.id, r.id)!);
    });
  }

  /** Turns a message into its tombstone: it keeps its place (seq, id, author, time); text, media and reactions go. */
  private tombstone(conversationId: string, id: string): void {
    this.c.sql.exec(
      `UPDATE messages SET text = NULL, media = NULL, edited_at = NULL, reactions = NULL, my_reactions = NULL, deleted_by = from_id
       WHERE conversation_id = ? AND id = ?`,
      conversationId,
      id,
    );
  }

  private saveReactions(conversationId: string, id: string, state: Reactions): void {
    this.c.sql.exec(
      "UPDATE messages SET reactions = ?, my_reactions = ? WHERE conversation_id = ? AND id = ?",
      Object.keys(state.counts).length > 0 ? JSON.stringify(state.counts) : null,
      state.mine.length > 0 ? JSON.stringify(state.mine) : null,
      conversationId,
      id,
    );
  }
}

/** The `message_deleted` frame of a tombstone. */
export function deletedFrame(m: DmMessage) {
  return {
    type: "message_deleted" as const,
    messageId: m.id,
    seq: m.seq,
    deletedBy: m.deletedBy ?? m.from,
    conversationId: m.conversationId,
    rev: m.rev,
  };
}

/** The `reaction` frame of one change: the emoji's count after it. */
function reactionFrame(m: DmMessage, emoji: string, userId: string, on: boolean) {
  return {
    type: "reaction" as const,
    messageId: m.id,
    emoji,
    userId,
    on,
    count: m.reactions?.[emoji] ?? 0,
    conversationId: m.conversationId,
    rev: m.rev,
  };
}

