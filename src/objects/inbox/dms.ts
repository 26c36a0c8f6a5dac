/**
 * Conversations and direct messages: sending (the recipient's inbox stores first), receiving, read
 * positions and receipts, typing, the resume (`sync`, with the hold of a `?sync=1` socket), and the
 * REST views (list, open, history).
 */
import { findUser } from "../../db/queries";
import { claimMedia } from "../../media/claim";
import type { ClientMessage, DmMessage, MediaDescriptor, ServerFrameMessage, WsErrorCode } from "../../protocol";
import { PAGE_MAX } from "../../protocol";
import { conversationIdFor, nextReadSeq, previewOf } from "../conversation";
import { setSession } from "../session";
import { FrameError } from "../socket-host";
import { inboxStub } from "../stubs";
import { CONVERSATION_CURSOR_RE } from "../../ids";
import type { ConversationSummary, IncomingDm, InboxContext, InboxSession, OpenResult, ReceiveResult } from "./context";
import { BATCH_MAX, SYNC_ROWS_MAX } from "./context";
import { deletedFrame } from "./lifecycle";
import { type ConversationRow, type MessageRow, rowToMessage } from "./store";

/** Reads a conversation-list cursor (`<lastAt>.<id>`); null when absent or malformed. */
export function parseListCursor(cursor: string | undefined): { lastAt: number; id: string } | null {
  const m = cursor === undefined ? null : CONVERSATION_CURSOR_RE.exec(cursor);
  return m ? { lastAt: Number(m[1]), id: m[2] } : null;
}

/** A replayed change: the message as it now is, or its deletion. */
function changeFrame(r: MessageRow): ServerFrameMessage {
  return r.deleted_by !== null ? deletedFrame(rowToMessage(r)) : { type: "message_updated", message: rowToMessage(r) };
}

/** The user's conversations and their messages. */
export class InboxDms {
  constructor(private readonly c: InboxContext) {}

  async onSendDm(ws: WebSocket, s: InboxSession, msg: Extract<ClientMessage, { type: "send_dm" }>): Promise<void> {
    if (msg.to === s.userId) throw new FrameError("bad_request", "to: you cannot send a message to yourself");
    const conversationId = await conversationIdFor(s.userId, msg.to);
    // One send at a time per conversation: this user's messages are stored by both inboxes in the order
    // sent. The peer's concurrent sends are numbered by each inbox in its own arrival order (docs/dms.md).
    const result = await this.c.serialize(conversationId, () => this.sendDm(s, conversationId, msg));
    if (!result.ok) throw new FrameError(result.code, result.message);
    // The sender's other devices see it; the sending socket gets the ack that carries it.
    if (result.fresh) this.c.broadcast({ type: "dm", message: result.message }, ws);
    this.c.host.send(ws, { type: "ack", id: msg.id, message: result.message, duplicate: result.duplicate || undefined });
  }

  async sendDm(
    s: InboxSession,
    conversationId: string,
    msg: Extract<ClientMessage, { type: "send_dm" }>,
  ): Promise<
    | { ok: true; message: DmMessage; duplicate: boolean; fresh: boolean }
    | { ok: false; code: WsErrorCode; message: string }
  > {
    const mine = this.c.store.messageByClientId(conversationId, s.userId, msg.clientMsgId);
    // Both copies exist already (the recipient's is stored first): answer the first ack again.
    if (mine) return { ok: true, message: mine, duplicate: true, fresh: false };
    if (this.c.blocks.isBlocking(msg.to)) return { ok: false, code: "blocked", message: "you have blocked this user" };
    const existing = this.c.store.conversation(conversationId);
    let peerName = existing?.peer_name;
    if (!existing) {
      // Only a first message to a new peer pays for a directory lookup.
      const user = await findUser(this.c.env, msg.to);
      if (!user) return { ok: false, code: "not_found", message: `user ${msg.to} not found` };
      peerName = user.name;
    }
    let media: MediaDescriptor[] | undefined;
    if (msg.mediaIds && msg.mediaIds.length > 0) {
      // Claiming binds the media to this conversation, readable by the peer: never for a send the
      // recipient's inbox would refuse. Only sends with media pay for this extra round trip.
      if (await inboxStub(this.c.env, msg.to).blocks(s.userId)) {
        return { ok: false, code: "blocked", message: "this user is not accepting your messages" };
      }
      const claimed = await claimMedia(this.c.env, s.userId, msg.mediaIds, { kind: "dm", conversationId, peerId: msg.to });
      if (!claimed.ok) return { ok: false, code: claimed.code, message: claimed.message };
      media = claimed.media;
    }
    const text = msg.text !== undefined && msg.text.trim().length > 0 ? msg.text : undefined;
    const firstContact = !existing;
    const subscribe = firstContact;
    const res = await inboxStub(this.c.env, msg.to).receiveDm({
      id: crypto.randomUUID(),
      conversationId,
      from: s.userId,
      fromName: s.name,
      to: msg.to,
      clientMsgId: msg.clientMsgId,
      text,
      media,
      createdAt: Date.now(),
      senderSubscribes: subscribe,
      senderView: firstContact ? this.c.status.viewFor(msg.to) : null,
      // Not tied to this side's first contact: the conversation may exist here only (POST /api/chat/dms).
      senderAcceptsSubscriber: this.c.status.canAddSubscriber(msg.to),
    });
    if (!res.ok) return { ok: false, code: "blocked", message: "this user is not accepting your messages" };
    // The recipient's copy fixes the message id and time: a retry after a half-failed attempt reuses them.
    const theirs = res.message;
    // The recipient may have refused the subscription (it has SUBSCRIBERS_MAX watchers already).
    const subscribed = subscribe && res.senderSubscribed !== false;
    const stored = this.c.ctx.storage.transactionSync(() => {
      const again = this.c.store.messageByClientId(conversationId, s.userId, msg.clientMsgId);
      if (again) return { message: again, fresh: false };
      const now = Date.now();
      this.c.store.upsertConversation(conversationId, msg.to, peerName ?? msg.to, now);
      const conv = this.c.store.conversation(conversationId)!;
      const seq = conv.last_seq + 1;
      this.c.store.insertMessage({ ...theirs, conversationId, seq, from: s.userId, to: msg.to, clientMsgId: msg.clientMsgId }, this.c.store.nextRev());
      // Writing in a conversation means having read it.
      this.c.sql.exec(
        "UPDATE conversations SET last_seq = ?, read_seq = ?, unread = 0, last_at = ? WHERE id = ?",
        seq,
        seq,
        theirs.createdAt,
        conversationId,
      );
      if (subscribed) this.c.status.addSubscription(msg.to, true, now);
      if (res.subscribedBack) this.c.store.addSubscriberRow(msg.to, now);
      // This copy as stored: this inbox's seq and rev (the recipient's copy carries its own).
      return { message: rowToMessage(this.c.store.messageById(conversationId, theirs.id)!), fresh: true };
    });
    if (subscribed && res.peerView) this.c.status.notePeerStatus(msg.to, res.peerView);
    return { ok: true, message: stored.message, duplicate: res.duplicate, fresh: stored.fresh };
  }

  async onMarkRead(ws: WebSocket, s: InboxSession, msg: Extract<ClientMessage, { type: "mark_read" }>): Promise<void> {
    if (msg.conversationId === undefined) throw new FrameError("bad_request", "conversationId: required on the inbox socket");
    const conv = this.c.store.conversation(msg.conversationId);
    if (!conv) throw new FrameError("not_found", "conversation not found");
    const next = nextReadSeq(conv.read_seq, msg.seq, conv.last_seq);
    if (next !== null) {
      this.c.sql.exec(
        `UPDATE conversations SET read_seq = ?,
           unread = (SELECT COUNT(*) FROM messages WHERE conversation_id = ? AND from_id = ? AND seq > ? AND deleted_by IS NULL)
         WHERE id = ?`,
        next,
        conv.id,
        conv.peer_id,
        next,
        conv.id,
      );
      // The user's other devices update their unread badges.
      this.c.broadcast({ type: "read", conversationId: conv.id, userId: s.userId, seq: next }, ws);
      const at = this.c.sql
        .exec<{ id: string }>("SELECT id FROM messages WHERE conversation_id = ? AND seq = ?", conv.id, next)
        .toArray()[0];
      if (at && !this.c.blocks.isBlocking(conv.peer_id)) {
        try {
          await inboxStub(this.c.env, conv.peer_id).peerRead(conv.id, s.userId, at.id);
        } catch (err) {
          // The receipt is best effort; the read position itself is stored.
          this.c.host.log("read receipt", err, s.connId);
        }
      }
    }
    this.c.host.send(ws, { type: "ack", id: msg.id });
  }

  async onTyping(ws: WebSocket, s: InboxSession, msg: Extract<ClientMessage, { type: "typing" }>): Promise<void> {
    if (!msg.conversationId) throw new FrameError("bad_request", "conversationId: required on the inbox socket");
    const conv = this.c.store.conversation(msg.conversationId);
    if (!conv) throw new FrameError("not_found", "conversation not found");
    if (!this.c.blocks.isBlocking(conv.peer_id)) {
      await inboxStub(this.c.env, conv.peer_id).peerTyping(conv.id, s.userId, msg.on);
    }
    if (msg.id !== undefined) this.c.host.send(ws, { type: "ack", id: msg.id });
  }

  onSync(ws: WebSocket, session: InboxSession, msg: Extract<ClientMessage, { type: "sync" }>): void {
    // Synchronous from the first read to the last send, and to the end of the hold: no live message
    // or change can slip in between. At most SYNC_ROWS_MAX rows over all conversations; one row more
    // is read to know if more remain.
    let budget = SYNC_ROWS_MAX;
    let more = false;
    // The answer covers every change up to here, unless the changes are cut short below.
    let lastRev = this.c.store.currentRev();
    // Changes to messages the client holds (at or before its `since`) after `sinceRev`; on a held
    // socket without `sinceRev`, those made since it opened (never sent live to it).
    const fromRev = msg.sinceRev ?? session.holdRev;
    const changeFrames: ServerFrameMessage[] = [];
    if (fromRev !== undefined && Object.keys(msg.since).length > 0) {
      const changed = this.c.sql
        .exec<MessageRow>(
          // CROSS JOIN keeps messages the outer loop, read by the rev index: the cost follows the
          // changes since `fromRev`, never the size of the conversations named.
          `SELECT m.* FROM messages AS m CROSS JOIN json_each(?) AS j
           WHERE m.rev > ? AND j.key = m.conversation_id AND m.seq <= j.value ORDER BY m.rev ASC LIMIT ?`,
          JSON.stringify(msg.since),
          fromRev,
          budget + 1,
        )
        .toArray();
      if (changed.length > budget) {
        // In rev order, so the next sync continues exactly after the last one sent. The new messages
        // wait for a sync whose changes all fit: a message sent as new is in its current state, and
        // no later sync replays it as a change it already has.
        more = true;
        changed.length = budget;
        lastRev = changed[changed.length - 1].rev;
      }
      for (const r of changed) changeFrames.push(changeFrame(r));
      budget -= changed.length;
    }
    const frames: ServerFrameMessage[] = [];
    if (!more) {
      for (const [conversationId, since] of Object.entries(msg.since)) {
        const rows = this.c.sql
          .exec<MessageRow>(
            "SELECT * FROM messages WHERE conversation_id = ? AND seq > ? ORDER BY seq ASC LIMIT ?",
            conversationId,
            since,
            budget + 1,
          )
          .toArray();
        if (rows.length > budget) {
          more = true;
          rows.length = budget;
        }
        for (const r of rows) frames.push({ type: "dm", message: rowToMessage(r) });
        budget -= rows.length;
        if (more) break;
      }
    }
    if (!more && session.holdFrom !== undefined) {
      // Held since the open: messages of conversations the sync does not name (a new peer's first
      // message, say) that arrived during the hold were sent to no one; they follow, in arrival order.
      const held = this.heldSince(session.holdFrom, new Set(Object.keys(msg.since)), budget + 1);
      if (held.length > budget) {
        more = true;
        held.length = budget;
      }
      for (const r of held) frames.push({ type: "dm", message: rowToMessage(r) });
    }
    // New messages first, then the changes to older ones.
    frames.push(...changeFrames);
    for (let i = 0; i < frames.length; i += BATCH_MAX) {
      this.c.host.send(ws, { type: "batch", frames: frames.slice(i, i + BATCH_MAX) });
    }
    // Answered in full: the socket is live from here. Cut short, it stays held until the client's next
    // sync (from its new positions) is answered in full, so live frames never overtake the replay.
    if (session.holdFrom !== undefined) {
      if (!more) {
        delete session.holdFrom;
        delete session.holdRev;
      } else if (msg.sinceRev === undefined) {
        // A client that does not send `sinceRev` still continues after what this answer covered.
        session.holdRev = lastRev;
      }
      setSession(ws, session);
    }
    this.c.host.send(ws, { type: "ack", id: msg.id, more: more || undefined, lastRev });
  }

  /** Up to `limit` messages stored after rowid `after` outside the conversations in `named`, oldest first. */
  heldSince(after: number, named: ReadonlySet<string>, limit: number): MessageRow[] {
    const out: MessageRow[] = [];
    let cursor = after;
    for (;;) {
      const rows = this.c.sql
        .exec<MessageRow & { rid: number }>("SELECT rowid AS rid, * FROM messages WHERE rowid > ? ORDER BY rowid ASC LIMIT ?", cursor, PAGE_MAX)
        .toArray();
      for (const r of rows) {
        if (named.has(r.conversation_id)) continue;
        out.push(r);
        if (out.length >= limit) return out;
      }
      if (rows.length < PAGE_MAX) return out;
      cursor = rows[rows.length - 1].rid;
    }
  }

  /**
   * Stores the recipient's copy of a DM (this inbox is the recipient's) and delivers it. Idempotent
   * on (conversation, sender, clientMsgId): a repeat returns the first copy and delivers nothing.
   */
  async receiveDm(dm: IncomingDm): Promise<ReceiveResult> {
    if (this.c.blocks.isBlocking(dm.from)) return { ok: false, code: "blocked" };
    const found = this.c.store.messageByClientId(dm.conversationId, dm.from, dm.clientMsgId);
    if (found) {
      return {
        ok: true,
        message: found,
        duplicate: true,
        peerView: null,
        subscribedBack: false,
        senderSubscribed: this.c.status.hasSubscriber(dm.from),
      };
    }
    const now = Date.now();
    const firstContact = !this.c.store.conversation(dm.conversationId);
    const subscribeBack = firstContact && dm.senderAcceptsSubscriber !== false;
    // Anyone can write to anyone: a first message adds a watcher only within SUBSCRIBERS_MAX.
    const senderSubscribed = dm.senderSubscribes && this.c.status.canAddSubscriber(dm.from);
    const { message, unread } = this.c.ctx.storage.transactionSync(() => {
      this.c.store.upsertConversation(dm.conversationId, dm.from, dm.fromName, now);
      const conv = this.c.store.conversation(dm.conversationId)!;
      const seq = conv.last_seq + 1;
      const rev = this.c.store.nextRev();
      this.c.store.insertMessage({ ...dm, seq }, rev);
      this.c.sql.exec(
        "UPDATE conversations SET last_seq = ?, unread = unread + 1, last_at = ?, peer_name = ? WHERE id = ?",
        seq,
        dm.createdAt,
        dm.fromName,
        dm.conversationId,
      );
      if (senderSubscribed) this.c.store.addSubscriberRow(dm.from, now);
      if (subscribeBack) this.c.status.addSubscription(dm.from, true, now);
      const m: DmMessage = {
        id: dm.id,
        conversationId: dm.conversationId,
        seq,
        from: dm.from,
        to: dm.to,
        clientMsgId: dm.clientMsgId,
        rev,
        createdAt: dm.createdAt,
      };
      if (dm.text !== undefined) m.text = dm.text;
      if (dm.media !== undefined) m.media = dm.media;
      return { message: m, unread: conv.unread + 1 };
    });
    if (subscribeBack && dm.senderView) this.c.status.notePeerStatus(dm.from, dm.senderView);
    const preview = previewOf(dm.text, dm.media?.length ?? 0);
    const delivered = this.c.broadcast({ type: "dm", message });
    this.c.broadcast({
      type: "notification",
      kind: "dm",
      conversationId: dm.conversationId,
      from: dm.from,
      fromName: dm.fromName,
      preview,
      unread,
    });
    if (delivered === 0) await this.c.push.enqueuePush(message, dm.fromName, preview, unread);
    return {
      ok: true,
      message,
      duplicate: false,
      peerView: senderSubscribed ? this.c.status.viewFor(dm.from) : null,
      subscribedBack: subscribeBack,
      senderSubscribed,
    };
  }

  /** The peer read up to message `messageId`: translate to this inbox's numbering and tell the user. */
  async peerRead(conversationId: string, readerId: string, messageId: string): Promise<void> {
    if (this.c.blocks.isBlocking(readerId)) return;
    const conv = this.c.store.conversation(conversationId);
    if (!conv || conv.peer_id !== readerId) return;
    const row = this.c.sql
      .exec<{ seq: number }>("SELECT seq FROM messages WHERE conversation_id = ? AND id = ?", conversationId, messageId)
      .toArray()[0];
    if (!row || row.seq <= conv.peer_read_seq) return;
    this.c.sql.exec("UPDATE conversations SET peer_read_seq = ? WHERE id = ?", row.seq, conversationId);
    this.c.broadcast({ type: "read", conversationId, userId: readerId, seq: row.seq });
  }

  /** The peer started or stopped typing in a conversation. */
  async peerTyping(conversationId: string, fromId: string, on: boolean): Promise<void> {
    if (this.c.blocks.isBlocking(fromId)) return;
    const conv = this.c.store.conversation(conversationId);
    if (!conv || conv.peer_id !== fromId) return;
    this.c.broadcast({ type: "typing", userId: fromId, on, conversationId });
  }

  /**
   * The user's conversations, most recent first, a page at a time. `cursor` is the `nextCursor` of the
   * previous page (`<lastAt>.<id>`): the position is by time, then id, so equal times never skip a row.
   */
  async listConversations(
    limit: number,
    cursor?: string,
  ): Promise<{ conversations: ConversationSummary[]; nextCursor: string | null }> {
    const after = parseListCursor(cursor);
    const rows = after
      ? this.c.sql
          .exec<ConversationRow>(
            "SELECT * FROM conversations WHERE last_at < ? OR (last_at = ? AND id > ?) ORDER BY last_at DESC, id ASC LIMIT ?",
            after.lastAt,
            after.lastAt,
            after.id,
            limit + 1,
          )
          .toArray()
      : this.c.sql.exec<ConversationRow>("SELECT * FROM conversations ORDER BY last_at DESC, id ASC LIMIT ?", limit + 1).toArray();
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return {
      conversations: page.map((r) => this.c.store.summary(r)),
      nextCursor: rows.length > limit && last ? `${last.last_at}.${last.id}` : null,
    };
  }

  /** Creates (or returns) the conversation with `peerId`. Refused when either side blocks the other. */
  async openConversation(peerId: string): Promise<OpenResult> {
    if (peerId === this.c.owner) return { ok: false, code: "bad_request", message: "userId: you cannot message yourself" };
    if (this.c.blocks.isBlocking(peerId)) return { ok: false, code: "blocked", message: "you have blocked this user" };
    const conversationId = await conversationIdFor(this.c.owner, peerId);
    let conv = this.c.store.conversation(conversationId);
    let peerName = conv?.peer_name;
    if (!conv) {
      const user = await findUser(this.c.env, peerId);
      if (!user) return { ok: false, code: "not_found", message: `user ${peerId} not found` };
      peerName = user.name;
    }
    // The peer's inbox owns its block list; asking it also subscribes to its status (a DM peer).
    const peer = inboxStub(this.c.env, peerId);
    const blocked = await peer.blocks(this.c.owner);
    if (blocked) return { ok: false, code: "blocked", message: "this user is not accepting your messages" };
    const created = !conv;
    if (!conv) {
      const now = Date.now();
      this.c.ctx.storage.transactionSync(() => {
        this.c.store.upsertConversation(conversationId, peerId, peerName ?? peerId, now);
        this.c.status.addSubscription(peerId, true, now);
      });
      const { view, subscribed } = await peer.addSubscriber(this.c.owner);
      // Refused (the peer has SUBSCRIBERS_MAX watchers): no changes would come, so keep no automatic row.
      if (!subscribed) this.c.sql.exec("DELETE FROM subscriptions WHERE user_id = ? AND auto = 1", peerId);
      this.c.status.notePeerStatus(peerId, view);
      conv = this.c.store.conversation(conversationId)!;
    }
    return { ok: true, created, conversation: this.c.store.summary(conv) };
  }

  /** A page of history, newest first; null when the user has no such conversation. */
  async history(
    conversationId: string,
    before: number | undefined,
    limit: number,
  ): Promise<{ messages: DmMessage[]; nextBefore: number | null } | null> {
    if (!this.c.store.conversation(conversationId)) return null;
    const n = Math.max(1, Math.min(limit, PAGE_MAX));
    const rows = this.c.sql
      .exec<MessageRow>(
        "SELECT * FROM messages WHERE conversation_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?",
        conversationId,
        before ?? Number.MAX_SAFE_INTEGER,
        n,
      )
      .toArray();
    const last = rows.at(-1);
    return { messages: rows.map(rowToMessage), nextBefore: rows.length === n && last && last.seq > 1 ? last.seq : null };
  }
}
