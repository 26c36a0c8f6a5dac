/**
 * One user's inbox (one Durable Object per user id): every socket of the user (devices and tabs),
 * the user's DM conversations and their copy of each message, unread counts, the user's block list
 * (authoritative) and the user's status with who is subscribed to it.
 *
 * Cross-user work is RPC between inboxes: a DM is stored by the recipient's inbox first (it owns the
 * recipient's blocks and numbering), then by the sender's; presence changes go from the user's inbox
 * to each subscriber's inbox. Nothing on the message hot path touches D1 except a first message to a
 * new peer (does the user exist?) and messages with media (claiming them).
 */
import { DurableObject } from "cloudflare:workers";
import { findUser, findUsers } from "../db/queries";
import { CONVERSATION_CURSOR_RE } from "../ids";
import { numVar } from "../env";
import { ApiError, errorResponse } from "../errors";
import { claimMedia } from "../media/claim";
import type { ClientMessage, DmMessage, MediaDescriptor, ServerFrameMessage, ServerMessage, WsErrorCode } from "../protocol";
import { assertNever, CLOSE, PAGE_MAX, PING_FRAME, PONG_FRAME } from "../protocol";
import { mapBounded } from "./bounded";
import { conversationIdFor, nextReadSeq, previewOf } from "./conversation";
import { objectName } from "./name";
import { getSession, isClosing, setSession } from "./session";
import { FrameError, hostConfig, type HostedSocket, SocketHost } from "./socket-host";
import type { BaseSession } from "./session";
import { chosenOnConnect, HIDDEN, publicView, sameView } from "./status";
import type { ChosenStatus, OwnStatus, StatusView } from "./status";
import { inboxStub } from "./stubs";
import { RATE_BUCKETS_TABLE } from "./user-buckets";

/** Trusted headers the Worker sets on the upgrade it forwards here (client values are overwritten). */
export const INBOX_HEADERS = {
  userId: "X-Inbox-User-Id",
  /** URI-encoded: display names may hold characters a header cannot. */
  userName: "X-Inbox-User-Name",
  protocol: "X-Inbox-Protocol",
} as const;

/** A socket's attachment: the common session, and the hold of a resuming socket. */
export interface InboxSession extends BaseSession {
  /**
   * Set on a socket opened with `?sync=1` until its `sync` is answered in full: live `dm` frames are
   * not sent to it (its `sync` reads them from storage), so a resume gets every missed message and then
   * the live ones, in seq order, each once. The value is the highest message rowid when the socket
   * opened: messages of conversations the `sync` does not name that arrived after it are in its answer.
   */
  holdFrom?: number;
}

/** The query parameter of the inbox socket that holds live `dm` frames until the socket's `sync` (see `InboxSession.holdFrom`). */
export const SYNC_PARAM = "sync";

/** A conversation as listed for its owner. */
export interface ConversationSummary {
  id: string;
  peer: { id: string; name: string };
  lastMessage: DmMessage | null;
  unread: number;
  lastSeq: number;
  /** The owner's read position, in the owner's numbering. */
  readSeq: number;
  /** The peer's read position, translated into the owner's numbering. */
  peerReadSeq: number;
  createdAt: number;
  updatedAt: number;
}

/** The recipient inbox's answer to a delivery. */
export type ReceiveResult =
  | {
      ok: true;
      message: DmMessage;
      duplicate: boolean;
      peerView: StatusView | null;
      subscribedBack: boolean;
      /** False when the recipient refused `senderSubscribes` (at SUBSCRIBERS_MAX); absent means accepted. */
      senderSubscribed?: boolean;
    }
  | { ok: false; code: "blocked" };

/** What a DM delivery carries from the sender's inbox. */
export interface IncomingDm {
  id: string;
  conversationId: string;
  from: string;
  fromName: string;
  to: string;
  clientMsgId: string;
  text?: string;
  media?: MediaDescriptor[];
  createdAt: number;
  /** The sender subscribes to the recipient's status (first contact): the recipient records it. */
  senderSubscribes: boolean;
  /** The sender's status as the recipient may see it, sent on first contact. */
  senderView: StatusView | null;
  /**
   * False when the sender's inbox cannot take the recipient as a subscriber (at SUBSCRIBERS_MAX), so
   * the recipient does not subscribe back. Absent means it can.
   */
  senderAcceptsSubscriber?: boolean;
}

export type OpenResult =
  | { ok: true; created: boolean; conversation: ConversationSummary }
  | { ok: false; code: "blocked" | "not_found" | "bad_request"; message: string };

/**
 * Most messages replayed by one `sync` frame, over all its conversations: when the budget cuts the
 * replay short the ack says `more: true` and the client syncs again from its new positions.
 */
export const SYNC_ROWS_MAX = 1000;
/**
 * Most inboxes that may watch one user's status. Every change is one RPC per subscriber, and anyone
 * can subscribe to anyone, so the fan-out of a single change is capped here (well inside the paid
 * plan's 10,000 subrequests per invocation); past it, new subscribers get a snapshot but no changes.
 */
export const SUBSCRIBERS_MAX = 5000;
/** Most RPCs one inbox keeps in flight for one fan-out or lookup (status pushes, subscribe, presence). */
export const RPC_CONCURRENCY = 50;
/** Most open inbox sockets of one user (devices and tabs), as for a user in a room. */
export const INBOX_SOCKETS_MAX = 32;
/** Presence and replay frames per `batch` frame. */
const BATCH_MAX = 100;
/** Lower bound between two sweeps, so a flood of short deadlines cannot spin the alarm. */
const SWEEP_MIN_INTERVAL_MS = 1000;

type ConversationRow = {
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

type MessageRow = {
  conversation_id: string;
  seq: number;
  id: string;
  from_id: string;
  to_id: string;
  client_msg_id: string;
  text: string | null;
  media: string | null;
  created_at: number;
};

/** Reads a conversation-list cursor (`<lastAt>.<id>`); null when absent or malformed. */
export function parseListCursor(cursor: string | undefined): { lastAt: number; id: string } | null {
  const m = cursor === undefined ? null : CONVERSATION_CURSOR_RE.exec(cursor);
  return m ? { lastAt: Number(m[1]), id: m[2] } : null;
}

function rowToMessage(r: MessageRow): DmMessage {
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
  return m;
}

/** One user's inbox: their sockets, DM conversations, unread counts, blocks and status. */
export class Inbox extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  /** Whose inbox this is: the object's name (a user id). */
  private readonly owner: string;
  /**
   * Per-key queues: one send at a time per conversation (this user's sends reach the peer in the order
   * they are numbered here), and "presence" for status pushes, so they reach subscribers in order.
   */
  private readonly chains = new Map<string, Promise<unknown>>();
  /** The socket layer shared with the ChatRoom: accept, the frame pipeline, the sweep, close, send, log. */
  private readonly host: SocketHost<InboxSession>;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.owner = objectName(ctx);
    this.sql.exec(`
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS conversations (
        id TEXT PRIMARY KEY,
        peer_id TEXT NOT NULL UNIQUE,
        peer_name TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        last_seq INTEGER NOT NULL DEFAULT 0,
        read_seq INTEGER NOT NULL DEFAULT 0,
        peer_read_seq INTEGER NOT NULL DEFAULT 0,
        unread INTEGER NOT NULL DEFAULT 0,
        last_at INTEGER NOT NULL
      );
      CREATE INDEX IF NOT EXISTS conversations_last_at ON conversations (last_at DESC);
      CREATE TABLE IF NOT EXISTS messages (
        conversation_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        id TEXT NOT NULL,
        from_id TEXT NOT NULL,
        to_id TEXT NOT NULL,
        client_msg_id TEXT NOT NULL,
        text TEXT,
        media TEXT,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (conversation_id, seq)
      );
      CREATE UNIQUE INDEX IF NOT EXISTS messages_client ON messages (conversation_id, from_id, client_msg_id);
      CREATE INDEX IF NOT EXISTS messages_id ON messages (id);
      CREATE TABLE IF NOT EXISTS blocks (user_id TEXT PRIMARY KEY, created_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS subscriptions (
        user_id TEXT PRIMARY KEY,
        auto INTEGER NOT NULL DEFAULT 0,
        status TEXT,
        last_seen INTEGER,
        created_at INTEGER NOT NULL
      );
      CREATE TABLE IF NOT EXISTS subscribers (user_id TEXT PRIMARY KEY, created_at INTEGER NOT NULL);
    `);
    this.sql.exec(RATE_BUCKETS_TABLE);
    this.host = new SocketHost<InboxSession>(ctx, hostConfig(env, INBOX_SOCKETS_MAX), () => `Inbox:${this.owner}`, () => this.sql, {
      sessionOf: (ws) => {
        const s = getSession<InboxSession>(ws);
        return s && !isClosing(s) ? s : null;
      },
      dispatch: (ws, session, msg) => this.dispatch(ws, session, msg),
      onServerClose: (ws) => this.socketGone(ws),
    });
    const now = Date.now();
    const { closing } = this.host.wake(now);
    if (closing) {
      // Woken with sockets the server closed still listed: the sweep closes them again.
      void ctx.blockConcurrencyWhile(() => this.ensureAlarm(now));
    }
    // The runtime answers the exact ping frame itself, without waking the object, and records when.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING_FRAME, PONG_FRAME));
  }

  // ------------------------------------------------------------------ RPC: health and delivery

  /** Round trip used by /health/ready. */
  async ping(): Promise<number> {
    return Date.now();
  }

  /** Sends one frame to every open socket of the user; returns how many got it. */
  async deliver(frame: ServerFrameMessage): Promise<number> {
    return this.broadcast(frame);
  }

  // ------------------------------------------------------------------ WebSocket lifecycle

  /** Accepts the user's inbox socket. Only the Worker calls this, with the trusted headers set. */
  override async fetch(request: Request): Promise<Response> {
    try {
      if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
        return new Response("Expected a WebSocket upgrade.", { status: 426 });
      }
      const userId = request.headers.get(INBOX_HEADERS.userId);
      if (!userId) return new Response("Missing user.", { status: 400 });
      let name = userId;
      try {
        name = decodeURIComponent(request.headers.get(INBOX_HEADERS.userName) ?? userId);
      } catch {
        // A malformed encoding falls back to the id rather than refusing the connection.
      }
      const open = this.openSockets().length;
      const resume = new URL(request.url).searchParams.get(SYNC_PARAM) === "1";
      const { response, hosted } = this.host.accept(userId, name, open, request.headers.get(INBOX_HEADERS.protocol), (base) =>
        // Messages are never deleted, so rowids only grow: everything above this arrived after the open.
        resume ? { ...base, holdFrom: this.sql.exec<{ r: number }>("SELECT COALESCE(MAX(rowid), 0) AS r FROM messages").one().r } : base,
      );
      if (!hosted) return response;
      const server = hosted.ws;
      const now = hosted.session.connectedAt;
      const wasOnline = open > 0;
      if (!wasOnline) {
        const own = this.ownStatus();
        this.saveOwnStatus({ ...own, chosen: chosenOnConnect(own.chosen) });
      }
      this.setConnected(true);
      try {
        await this.ensureAlarm(now);
        this.sendWatchedSnapshot(server);
      } catch (err) {
        // The socket is accepted either way; a missing sweep is re-armed by the next connection.
        this.host.log("connect", err, getSession<InboxSession>(server)?.connId);
      }
      // Subscribers hear about it after the upgrade is answered: the handshake never waits on fan-out.
      void this.publishStatus().catch((err) => this.host.log("publish on connect", err));
      return response;
    } catch (err) {
      this.host.log("upgrade", err);
      return errorResponse(new ApiError({ code: "internal", message: "Internal error." }));
    }
  }

  override async webSocketMessage(ws: WebSocket, raw: string | ArrayBuffer): Promise<void> {
    await this.host.message(ws, raw);
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    this.host.closed(ws, code, reason);
    await this.socketGone(ws);
  }

  override async webSocketError(ws: WebSocket, error: unknown): Promise<void> {
    this.host.log("socket error", error, getSession<InboxSession>(ws)?.connId);
    this.host.closed(ws, CLOSE.INTERNAL, "socket error");
    await this.socketGone(ws);
  }

  /**
   * The dead-connection sweep: closes sockets with no frame and no auto-answered ping for
   * PRESENCE_TIMEOUT_MS, updates the status, and schedules itself only while sockets remain,
   * so an idle inbox with no sockets has no alarm at all.
   */
  override async alarm(): Promise<void> {
    try {
      const now = Date.now();
      const timeout = this.host.cfg.presenceTimeoutMs;
      const plan = this.host.expired(this.liveSockets(), now);
      for (const h of plan.expired) await this.host.closeFromServer(h.ws, h.session, CLOSE.GOING_AWAY, "heartbeat timeout");
      // Sockets the server closed earlier whose close never completed (a frozen client).
      const closing = this.host.resweepClosing(now);
      // Also covers sockets that vanished without a close event (e.g. dropped with the object):
      // wentOffline acts only on the first call after the user was online.
      if (this.openSockets().length === 0) await this.wentOffline(now);
      const nextAt = closing > 0 ? Math.min(plan.nextAt ?? Infinity, now + timeout) : plan.nextAt;
      if (nextAt !== null) await this.ctx.storage.setAlarm(Math.max(nextAt, now + SWEEP_MIN_INTERVAL_MS));
    } catch (err) {
      this.host.log("alarm", err);
    }
  }

  // ------------------------------------------------------------------ frames

  private async dispatch(ws: WebSocket, session: InboxSession, msg: ClientMessage): Promise<void> {
    switch (msg.type) {
      case "send_dm":
        return this.onSendDm(ws, session, msg);
      case "mark_read":
        return this.onMarkRead(ws, session, msg);
      case "typing":
        return this.onTyping(ws, session, msg);
      case "presence":
        return this.onPresence(ws, msg);
      case "subscribe_presence":
        return this.onSubscribe(ws, session, msg);
      case "unsubscribe_presence":
        return this.onUnsubscribe(ws, session, msg);
      case "sync":
        return this.onSync(ws, session, msg);
      case "ping":
        // A ping with extra fields (e.g. an id) is not the auto-answered frame: answer it here.
        this.host.send(ws, { type: "pong", id: msg.id });
        return;
      case "join_room":
      case "leave_room":
      case "send_room_message":
        throw new FrameError("bad_request", `${msg.type} belongs on a room socket (/api/chat/rooms/:roomId/ws)`);
      default:
        assertNever(msg);
    }
  }

  private async onSendDm(ws: WebSocket, s: InboxSession, msg: Extract<ClientMessage, { type: "send_dm" }>): Promise<void> {
    if (msg.to === s.userId) throw new FrameError("bad_request", "to: you cannot send a message to yourself");
    const conversationId = await conversationIdFor(s.userId, msg.to);
    // One send at a time per conversation: this user's messages are stored by both inboxes in the order
    // sent. The peer's concurrent sends are numbered by each inbox in its own arrival order (docs/dms.md).
    const result = await this.serialize(conversationId, () => this.sendDm(s, conversationId, msg));
    if (!result.ok) throw new FrameError(result.code, result.message);
    // The sender's other devices see it; the sending socket gets the ack that carries it.
    if (result.fresh) this.broadcast({ type: "dm", message: result.message }, ws);
    this.host.send(ws, { type: "ack", id: msg.id, message: result.message, duplicate: result.duplicate || undefined });
  }

  private async sendDm(
    s: InboxSession,
    conversationId: string,
    msg: Extract<ClientMessage, { type: "send_dm" }>,
  ): Promise<
    | { ok: true; message: DmMessage; duplicate: boolean; fresh: boolean }
    | { ok: false; code: WsErrorCode; message: string }
  > {
    const mine = this.messageByClientId(conversationId, s.userId, msg.clientMsgId);
    // Both copies exist already (the recipient's is stored first): answer the first ack again.
    if (mine) return { ok: true, message: mine, duplicate: true, fresh: false };
    if (this.isBlocking(msg.to)) return { ok: false, code: "blocked", message: "you have blocked this user" };
    const existing = this.conversation(conversationId);
    let peerName = existing?.peer_name;
    if (!existing) {
      // Only a first message to a new peer pays for a directory lookup.
      const user = await findUser(this.env, msg.to);
      if (!user) return { ok: false, code: "not_found", message: `user ${msg.to} not found` };
      peerName = user.name;
    }
    let media: MediaDescriptor[] | undefined;
    if (msg.mediaIds && msg.mediaIds.length > 0) {
      // Claiming binds the media to this conversation, readable by the peer: never for a send the
      // recipient's inbox would refuse. Only sends with media pay for this extra round trip.
      if (await inboxStub(this.env, msg.to).blocks(s.userId)) {
        return { ok: false, code: "blocked", message: "this user is not accepting your messages" };
      }
      const claimed = await claimMedia(this.env, s.userId, msg.mediaIds, { kind: "dm", conversationId, peerId: msg.to });
      if (!claimed.ok) return { ok: false, code: claimed.code, message: claimed.message };
      media = claimed.media;
    }
    const text = msg.text !== undefined && msg.text.trim().length > 0 ? msg.text : undefined;
    const firstContact = !existing;
    const subscribe = firstContact;
    const res = await inboxStub(this.env, msg.to).receiveDm({
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
      senderView: firstContact ? this.viewFor(msg.to) : null,
      // Not tied to this side's first contact: the conversation may exist here only (POST /api/chat/dms).
      senderAcceptsSubscriber: this.canAddSubscriber(msg.to),
    });
    if (!res.ok) return { ok: false, code: "blocked", message: "this user is not accepting your messages" };
    // The recipient's copy fixes the message id and time: a retry after a half-failed attempt reuses them.
    const theirs = res.message;
    // The recipient may have refused the subscription (it has SUBSCRIBERS_MAX watchers already).
    const subscribed = subscribe && res.senderSubscribed !== false;
    const stored = this.ctx.storage.transactionSync(() => {
      const again = this.messageByClientId(conversationId, s.userId, msg.clientMsgId);
      if (again) return { message: again, fresh: false };
      const now = Date.now();
      this.upsertConversation(conversationId, msg.to, peerName ?? msg.to, now);
      const conv = this.conversation(conversationId)!;
      const seq = conv.last_seq + 1;
      this.sql.exec(
        `INSERT INTO messages (conversation_id, seq, id, from_id, to_id, client_msg_id, text, media, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        conversationId,
        seq,
        theirs.id,
        s.userId,
        msg.to,
        msg.clientMsgId,
        theirs.text ?? null,
        theirs.media ? JSON.stringify(theirs.media) : null,
        theirs.createdAt,
      );
      // Writing in a conversation means having read it.
      this.sql.exec(
        "UPDATE conversations SET last_seq = ?, read_seq = ?, unread = 0, last_at = ? WHERE id = ?",
        seq,
        seq,
        theirs.createdAt,
        conversationId,
      );
      if (subscribed) this.addSubscription(msg.to, true, now);
      if (res.subscribedBack) this.sql.exec("INSERT OR IGNORE INTO subscribers (user_id, created_at) VALUES (?, ?)", msg.to, now);
      return { message: { ...theirs, seq }, fresh: true };
    });
    if (subscribed && res.peerView) this.notePeerStatus(msg.to, res.peerView);
    return { ok: true, message: stored.message, duplicate: res.duplicate, fresh: stored.fresh };
  }

  private async onMarkRead(ws: WebSocket, s: InboxSession, msg: Extract<ClientMessage, { type: "mark_read" }>): Promise<void> {
    const conv = this.conversation(msg.conversationId);
    if (!conv) throw new FrameError("not_found", "conversation not found");
    const next = nextReadSeq(conv.read_seq, msg.seq, conv.last_seq);
    if (next !== null) {
      this.sql.exec(
        `UPDATE conversations SET read_seq = ?,
           unread = (SELECT COUNT(*) FROM messages WHERE conversation_id = ? AND from_id = ? AND seq > ?)
         WHERE id = ?`,
        next,
        conv.id,
        conv.peer_id,
        next,
        conv.id,
      );
      // The user's other devices update their unread badges.
      this.broadcast({ type: "read", conversationId: conv.id, userId: s.userId, seq: next }, ws);
      const at = this.sql
        .exec<{ id: string }>("SELECT id FROM messages WHERE conversation_id = ? AND seq = ?", conv.id, next)
        .toArray()[0];
      if (at && !this.isBlocking(conv.peer_id)) {
        try {
          await inboxStub(this.env, conv.peer_id).peerRead(conv.id, s.userId, at.id);
        } catch (err) {
          // The receipt is best effort; the read position itself is stored.
          this.host.log("read receipt", err, s.connId);
        }
      }
    }
    this.host.send(ws, { type: "ack", id: msg.id });
  }

  private async onTyping(ws: WebSocket, s: InboxSession, msg: Extract<ClientMessage, { type: "typing" }>): Promise<void> {
    if (!msg.conversationId) throw new FrameError("bad_request", "conversationId: required on the inbox socket");
    const conv = this.conversation(msg.conversationId);
    if (!conv) throw new FrameError("not_found", "conversation not found");
    if (!this.isBlocking(conv.peer_id)) {
      await inboxStub(this.env, conv.peer_id).peerTyping(conv.id, s.userId, msg.on);
    }
    if (msg.id !== undefined) this.host.send(ws, { type: "ack", id: msg.id });
  }

  private async onPresence(ws: WebSocket, msg: Extract<ClientMessage, { type: "presence" }>): Promise<void> {
    // Every frame already refreshed the socket's `lastSeenAt`: a bare `presence` is a heartbeat.
    if (msg.status !== undefined) {
      const own = this.ownStatus();
      if (own.chosen !== msg.status) {
        const now = Date.now();
        // Going invisible looks like going offline now; the time must not later reveal activity.
        const lastSeen = msg.status === "invisible" ? now : own.lastSeen;
        this.saveOwnStatus({ chosen: msg.status, lastSeen });
        await this.publishStatus();
      }
    }
    if (msg.id !== undefined) this.host.send(ws, { type: "ack", id: msg.id });
  }

  private async onSubscribe(
    ws: WebSocket,
    s: InboxSession,
    msg: Extract<ClientMessage, { type: "subscribe_presence" }>,
  ): Promise<void> {
    const asked = [...new Set(msg.userIds)].filter((id) => id !== s.userId);
    // Only real users are subscribed (and their inboxes touched); unknown ids read as offline, as in
    // GET /api/presence, so ids leak nothing. Subscribing is not the message hot path: D1 is fine here.
    const existing = await findUsers(this.env, asked);
    const ids = asked.filter((id) => existing.has(id));
    // Only subscriptions the user asked for count here: automatic ones (DM peers, strangers' first
    // messages among them) are bounded on their own and can never take this quota away.
    const known = new Set(
      this.sql.exec<{ user_id: string }>("SELECT user_id FROM subscriptions WHERE auto = 0").toArray().map((r) => r.user_id),
    );
    // An automatic subscription asked for explicitly becomes explicit, and counts from then on.
    const added = ids.filter((id) => !known.has(id));
    const limit = this.subscribeLimit();
    if (known.size + added.length > limit) {
      throw new FrameError(
        "bad_request",
        `userIds: subscribing to ${added.length} more would exceed the limit of ${limit} (now ${known.size})`,
      );
    }
    const now = Date.now();
    this.ctx.storage.transactionSync(() => {
      for (const id of added) this.addSubscription(id, false, now);
    });
    const frames = await mapBounded(asked, RPC_CONCURRENCY, async (id): Promise<ServerFrameMessage> => {
      let view: StatusView = HIDDEN;
      if (existing.has(id) && !this.isBlocking(id)) {
        try {
          const res = await inboxStub(this.env, id).addSubscriber(s.userId);
          view = res.view;
          // Refused (that user has SUBSCRIBERS_MAX watchers): a snapshot only, and no stored row
          // that would count against the limit while never being updated.
          if (res.subscribed) this.cacheStatus(id, view);
          else this.sql.exec("DELETE FROM subscriptions WHERE user_id = ?", id);
        } catch (err) {
          this.host.log("subscribe", err, s.connId);
        }
      }
      return { type: "presence", userId: id, status: view.status, lastSeen: view.lastSeen };
    });
    for (let i = 0; i < frames.length; i += BATCH_MAX) {
      this.host.send(ws, { type: "batch", frames: frames.slice(i, i + BATCH_MAX) });
    }
    this.host.send(ws, { type: "ack", id: msg.id });
  }

  private async onUnsubscribe(
    ws: WebSocket,
    s: InboxSession,
    msg: Extract<ClientMessage, { type: "unsubscribe_presence" }>,
  ): Promise<void> {
    // Only inboxes this one actually watches are told: an RPC to a made-up id would create an object.
    const ids = [...new Set(msg.userIds)].filter((id) => this.isSubscribedTo(id));
    for (const id of ids) this.sql.exec("DELETE FROM subscriptions WHERE user_id = ?", id);
    await mapBounded(ids, RPC_CONCURRENCY, async (id) => {
      try {
        await inboxStub(this.env, id).removeSubscriber(s.userId);
      } catch (err) {
        // Its next push is answered "no longer subscribed" and drops the row there.
        this.host.log("unsubscribe", err, s.connId);
      }
    });
    this.host.send(ws, { type: "ack", id: msg.id });
  }

  private onSync(ws: WebSocket, session: InboxSession, msg: Extract<ClientMessage, { type: "sync" }>): void {
    // Synchronous from the first read to the last send, and to the end of the hold: no live message
    // can slip in between. At most SYNC_ROWS_MAX messages over all conversations; one row more is
    // read to know if more remain.
    const frames: ServerFrameMessage[] = [];
    let budget = SYNC_ROWS_MAX;
    let more = false;
    for (const [conversationId, since] of Object.entries(msg.since)) {
      const rows = this.sql
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
    for (let i = 0; i < frames.length; i += BATCH_MAX) {
      this.host.send(ws, { type: "batch", frames: frames.slice(i, i + BATCH_MAX) });
    }
    // Answered in full: the socket is live from here. Cut short, it stays held until the client's next
    // sync (from its new positions) is answered in full, so live frames never overtake the replay.
    if (!more && session.holdFrom !== undefined) {
      delete session.holdFrom;
      setSession(ws, session);
    }
    this.host.send(ws, { type: "ack", id: msg.id, more: more || undefined });
  }

  /** Up to `limit` messages stored after rowid `after` outside the conversations in `named`, oldest first. */
  private heldSince(after: number, named: ReadonlySet<string>, limit: number): MessageRow[] {
    const out: MessageRow[] = [];
    let cursor = after;
    for (;;) {
      const rows = this.sql
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

  // ------------------------------------------------------------------ RPC from other inboxes

  /**
   * Stores the recipient's copy of a DM (this inbox is the recipient's) and delivers it. Idempotent
   * on (conversation, sender, clientMsgId): a repeat returns the first copy and delivers nothing.
   */
  async receiveDm(dm: IncomingDm): Promise<ReceiveResult> {
    if (this.isBlocking(dm.from)) return { ok: false, code: "blocked" };
    const found = this.messageByClientId(dm.conversationId, dm.from, dm.clientMsgId);
    if (found) {
      return {
        ok: true,
        message: found,
        duplicate: true,
        peerView: null,
        subscribedBack: false,
        senderSubscribed: this.hasSubscriber(dm.from),
      };
    }
    const now = Date.now();
    const firstContact = !this.conversation(dm.conversationId);
    const subscribeBack = firstContact && dm.senderAcceptsSubscriber !== false;
    // Anyone can write to anyone: a first message adds a watcher only within SUBSCRIBERS_MAX.
    const senderSubscribed = dm.senderSubscribes && this.canAddSubscriber(dm.from);
    const { message, unread } = this.ctx.storage.transactionSync(() => {
      this.upsertConversation(dm.conversationId, dm.from, dm.fromName, now);
      const conv = this.conversation(dm.conversationId)!;
      const seq = conv.last_seq + 1;
      this.sql.exec(
        `INSERT INTO messages (conversation_id, seq, id, from_id, to_id, client_msg_id, text, media, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        dm.conversationId,
        seq,
        dm.id,
        dm.from,
        dm.to,
        dm.clientMsgId,
        dm.text ?? null,
        dm.media ? JSON.stringify(dm.media) : null,
        dm.createdAt,
      );
      this.sql.exec(
        "UPDATE conversations SET last_seq = ?, unread = unread + 1, last_at = ?, peer_name = ? WHERE id = ?",
        seq,
        dm.createdAt,
        dm.fromName,
        dm.conversationId,
      );
      if (senderSubscribed) this.sql.exec("INSERT OR IGNORE INTO subscribers (user_id, created_at) VALUES (?, ?)", dm.from, now);
      if (subscribeBack) this.addSubscription(dm.from, true, now);
      const m: DmMessage = {
        id: dm.id,
        conversationId: dm.conversationId,
        seq,
        from: dm.from,
        to: dm.to,
        clientMsgId: dm.clientMsgId,
        createdAt: dm.createdAt,
      };
      if (dm.text !== undefined) m.text = dm.text;
      if (dm.media !== undefined) m.media = dm.media;
      return { message: m, unread: conv.unread + 1 };
    });
    if (subscribeBack && dm.senderView) this.notePeerStatus(dm.from, dm.senderView);
    const preview = previewOf(dm.text, dm.media?.length ?? 0);
    const delivered = this.broadcast({ type: "dm", message });
    this.broadcast({
      type: "notification",
      kind: "dm",
      conversationId: dm.conversationId,
      from: dm.from,
      fromName: dm.fromName,
      preview,
      unread,
    });
    if (delivered === 0) await this.enqueuePush(message, dm.fromName, preview, unread);
    return {
      ok: true,
      message,
      duplicate: false,
      peerView: senderSubscribed ? this.viewFor(dm.from) : null,
      subscribedBack: subscribeBack,
      senderSubscribed,
    };
  }

  /** The peer read up to message `messageId`: translate to this inbox's numbering and tell the user. */
  async peerRead(conversationId: string, readerId: string, messageId: string): Promise<void> {
    if (this.isBlocking(readerId)) return;
    const conv = this.conversation(conversationId);
    if (!conv || conv.peer_id !== readerId) return;
    const row = this.sql
      .exec<{ seq: number }>("SELECT seq FROM messages WHERE conversation_id = ? AND id = ?", conversationId, messageId)
      .toArray()[0];
    if (!row || row.seq <= conv.peer_read_seq) return;
    this.sql.exec("UPDATE conversations SET peer_read_seq = ? WHERE id = ?", row.seq, conversationId);
    this.broadcast({ type: "read", conversationId, userId: readerId, seq: row.seq });
  }

  /** The peer started or stopped typing in a conversation. */
  async peerTyping(conversationId: string, fromId: string, on: boolean): Promise<void> {
    if (this.isBlocking(fromId)) return;
    const conv = this.conversation(conversationId);
    if (!conv || conv.peer_id !== fromId) return;
    this.broadcast({ type: "typing", userId: fromId, on, conversationId });
  }

  /**
   * Records `subscriberId` as watching this user's status, unless this user already has SUBSCRIBERS_MAX
   * watchers; returns the status that subscriber may see either way, and whether it was recorded.
   */
  async addSubscriber(subscriberId: string): Promise<{ view: StatusView; subscribed: boolean }> {
    const subscribed = this.canAddSubscriber(subscriberId);
    if (subscribed) this.sql.exec("INSERT OR IGNORE INTO subscribers (user_id, created_at) VALUES (?, ?)", subscriberId, Date.now());
    return { view: this.viewFor(subscriberId), subscribed };
  }

  /** Forgets a subscriber. */
  async removeSubscriber(subscriberId: string): Promise<void> {
    this.sql.exec("DELETE FROM subscribers WHERE user_id = ?", subscriberId);
  }

  /** This user's status as `viewerId` may see it. */
  async statusFor(viewerId: string): Promise<StatusView> {
    return this.viewFor(viewerId);
  }

  /**
   * A watched user's status changed. Returns false when this inbox no longer subscribes,
   * so the sender drops it from its subscribers.
   */
  async presenceChanged(userId: string, view: StatusView): Promise<boolean> {
    if (!this.isSubscribedTo(userId)) return false;
    // A user this one blocks stays hidden (it was shown offline when blocked), whatever it reports.
    if (!this.isBlocking(userId)) this.notePeerStatus(userId, view);
    return true;
  }

  // ------------------------------------------------------------------ RPC from the Worker (REST)

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
      ? this.sql
          .exec<ConversationRow>(
            "SELECT * FROM conversations WHERE last_at < ? OR (last_at = ? AND id > ?) ORDER BY last_at DESC, id ASC LIMIT ?",
            after.lastAt,
            after.lastAt,
            after.id,
            limit + 1,
          )
          .toArray()
      : this.sql.exec<ConversationRow>("SELECT * FROM conversations ORDER BY last_at DESC, id ASC LIMIT ?", limit + 1).toArray();
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return {
      conversations: page.map((r) => this.summary(r)),
      nextCursor: rows.length > limit && last ? `${last.last_at}.${last.id}` : null,
    };
  }

  /** Creates (or returns) the conversation with `peerId`. Refused when either side blocks the other. */
  async openConversation(peerId: string): Promise<OpenResult> {
    if (peerId === this.owner) return { ok: false, code: "bad_request", message: "userId: you cannot message yourself" };
    if (this.isBlocking(peerId)) return { ok: false, code: "blocked", message: "you have blocked this user" };
    const conversationId = await conversationIdFor(this.owner, peerId);
    let conv = this.conversation(conversationId);
    let peerName = conv?.peer_name;
    if (!conv) {
      const user = await findUser(this.env, peerId);
      if (!user) return { ok: false, code: "not_found", message: `user ${peerId} not found` };
      peerName = user.name;
    }
    // The peer's inbox owns its block list; asking it also subscribes to its status (a DM peer).
    const peer = inboxStub(this.env, peerId);
    const blocked = await peer.blocks(this.owner);
    if (blocked) return { ok: false, code: "blocked", message: "this user is not accepting your messages" };
    const created = !conv;
    if (!conv) {
      const now = Date.now();
      this.ctx.storage.transactionSync(() => {
        this.upsertConversation(conversationId, peerId, peerName ?? peerId, now);
        this.addSubscription(peerId, true, now);
      });
      const { view, subscribed } = await peer.addSubscriber(this.owner);
      // Refused (the peer has SUBSCRIBERS_MAX watchers): no changes would come, so keep no automatic row.
      if (!subscribed) this.sql.exec("DELETE FROM subscriptions WHERE user_id = ? AND auto = 1", peerId);
      this.notePeerStatus(peerId, view);
      conv = this.conversation(conversationId)!;
    }
    return { ok: true, created, conversation: this.summary(conv) };
  }

  /** True when this user blocks `userId`. */
  async blocks(userId: string): Promise<boolean> {
    return this.isBlocking(userId);
  }

  /** A page of history, newest first; null when the user has no such conversation. */
  async history(
    conversationId: string,
    before: number | undefined,
    limit: number,
  ): Promise<{ messages: DmMessage[]; nextBefore: number | null } | null> {
    if (!this.conversation(conversationId)) return null;
    const n = Math.max(1, Math.min(limit, PAGE_MAX));
    const rows = this.sql
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

  /** The user's block list, newest first. */
  async listBlocks(): Promise<{ userId: string; createdAt: number }[]> {
    return this.sql
      .exec<{ user_id: string; created_at: number }>("SELECT * FROM blocks ORDER BY created_at DESC, user_id ASC")
      .toArray()
      .map((r) => ({ userId: r.user_id, createdAt: r.created_at }));
  }

  /** Blocks `userId`: hides each one's status from the other at once. `created` is false if already blocked. */
  async block(userId: string): Promise<{ created: boolean; userId: string; createdAt: number }> {
    const existing = this.sql
      .exec<{ created_at: number }>("SELECT created_at FROM blocks WHERE user_id = ?", userId)
      .toArray()[0];
    if (existing) return { created: false, userId, createdAt: existing.created_at };
    const now = Date.now();
    this.sql.exec("INSERT INTO blocks (user_id, created_at) VALUES (?, ?)", userId, now);
    if (this.isSubscribedTo(userId)) this.notePeerStatus(userId, HIDDEN);
    // In the presence queue: a publish already under way may be telling this user the old status,
    // and "hidden" must reach them after it, never before.
    if (this.hasSubscriber(userId)) await this.serialize("presence", () => this.tell(userId, HIDDEN));
    return { created: true, userId, createdAt: now };
  }

  /** Unblocks `userId` and shows each one's current status to the other again. Returns false if not blocked. */
  async unblock(userId: string): Promise<boolean> {
    if (!this.isBlocking(userId)) return false;
    this.sql.exec("DELETE FROM blocks WHERE user_id = ?", userId);
    const work: Promise<unknown>[] = [];
    // In the presence queue, like every push; the status is read when its turn comes.
    if (this.hasSubscriber(userId)) work.push(this.serialize("presence", () => this.tell(userId, this.viewFor(userId))));
    if (this.isSubscribedTo(userId)) {
      work.push(
        inboxStub(this.env, userId)
          .statusFor(this.owner)
          .then((view) => this.notePeerStatus(userId, view)),
      );
    }
    await Promise.allSettled(work);
    return true;
  }

  /** Statuses of `userIds` as this user may see them, in the order asked. */
  async presenceOf(userIds: string[]): Promise<{ userId: string; status: StatusView["status"]; lastSeen: number | null }[]> {
    // Unknown ids read as offline without waking (or creating) an inbox for them.
    const existing = await findUsers(this.env, userIds);
    return mapBounded(userIds, RPC_CONCURRENCY, async (userId) => {
      let view: StatusView = HIDDEN;
      if (userId === this.owner) view = publicView(this.ownStatus(), this.openSockets().length > 0);
      else if (existing.has(userId) && !this.isBlocking(userId)) {
        try {
          view = await inboxStub(this.env, userId).statusFor(this.owner);
        } catch (err) {
          this.host.log("presence lookup", err);
        }
      }
      return { userId, status: view.status, lastSeen: view.lastSeen };
    });
  }

  // ------------------------------------------------------------------ status

  private ownStatus(): OwnStatus {
    const raw = this.meta("status");
    return raw ? (JSON.parse(raw) as OwnStatus) : { chosen: "online", lastSeen: null };
  }

  private saveOwnStatus(own: { chosen: ChosenStatus; lastSeen: number | null }): void {
    this.setMeta("status", JSON.stringify(own));
  }

  private setConnected(on: boolean): void {
    this.setMeta("connected", on ? "1" : "0");
  }

  /** The status `viewerId` may see: hidden entirely from a user this one blocks. */
  private viewFor(viewerId: string): StatusView {
    if (this.isBlocking(viewerId)) return HIDDEN;
    return publicView(this.ownStatus(), this.openSockets().length > 0);
  }

  /** The last socket went (closed or swept): offline with the time, told to subscribers. */
  private async wentOffline(now: number): Promise<void> {
    if (this.meta("connected") !== "1") return;
    this.setConnected(false);
    const own = this.ownStatus();
    // While invisible the user already looks offline; a fresh time would reveal the session.
    if (own.chosen !== "invisible") this.saveOwnStatus({ ...own, lastSeen: now });
    await this.publishStatus();
  }

  /**
   * Pushes the public status to every subscriber (by RPC) when it changed since the last push.
   * Publishes run one after another: two overlapping fan-outs could reach a subscriber out of
   * order (online after offline) and leave it showing the wrong status.
   */
  private publishStatus(): Promise<void> {
    return this.serialize("presence", () => this.publishNow());
  }

  private async publishNow(): Promise<void> {
    const view = publicView(this.ownStatus(), this.openSockets().length > 0);
    const lastRaw = this.meta("published");
    if (sameView(lastRaw ? (JSON.parse(lastRaw) as StatusView) : null, view)) return;
    this.setMeta("published", JSON.stringify(view));
    const subscribers = this.sql
      .exec<{ user_id: string }>("SELECT user_id FROM subscribers WHERE user_id NOT IN (SELECT user_id FROM blocks)")
      .toArray();
    // At most SUBSCRIBERS_MAX RPCs, RPC_CONCURRENCY in flight at a time (`tell` never rejects).
    await mapBounded(subscribers, RPC_CONCURRENCY, (r) => this.tell(r.user_id, view));
  }

  /** Sends one status to one subscriber's inbox; forgets the subscriber when it no longer listens. */
  private async tell(subscriberId: string, view: StatusView): Promise<void> {
    try {
      const still = await inboxStub(this.env, subscriberId).presenceChanged(this.owner, view);
      if (!still) this.sql.exec("DELETE FROM subscribers WHERE user_id = ?", subscriberId);
    } catch (err) {
      this.host.log("presence fan-out", err);
    }
  }

  /** Records a watched user's status and shows it on the user's sockets. */
  private notePeerStatus(userId: string, view: StatusView): void {
    // Frames first: sends issued after a write wait (output gate) until the write is durable, and a
    // status is not worth that wait; the stored copy only seeds later snapshots.
    this.broadcast({ type: "presence", userId, status: view.status, lastSeen: view.lastSeen });
    this.cacheStatus(userId, view);
  }

  /**
   * Gives a new socket the last known status of everyone the user watches (DM peers included), from
   * this inbox's own storage: kept current by the watched inboxes' pushes, so no RPC is needed.
   * `subscribe_presence` asks the watched inboxes afresh.
   */
  private sendWatchedSnapshot(ws: WebSocket): void {
    const rows = this.sql
      .exec<{ user_id: string; status: string; last_seen: number | null }>(
        "SELECT user_id, status, last_seen FROM subscriptions WHERE status IS NOT NULL ORDER BY user_id",
      )
      .toArray();
    const frames: ServerFrameMessage[] = rows.map((r) => {
      const hidden = this.isBlocking(r.user_id);
      return {
        type: "presence",
        userId: r.user_id,
        status: hidden ? "offline" : (r.status as StatusView["status"]),
        lastSeen: hidden ? null : r.last_seen,
      };
    });
    for (let i = 0; i < frames.length; i += BATCH_MAX) this.host.send(ws, { type: "batch", frames: frames.slice(i, i + BATCH_MAX) });
  }

  private cacheStatus(userId: string, view: StatusView): void {
    this.sql.exec("UPDATE subscriptions SET status = ?, last_seen = ? WHERE user_id = ?", view.status, view.lastSeen, userId);
  }

  private async socketGone(ws: WebSocket): Promise<void> {
    try {
      if (this.openSockets(ws).length === 0) await this.wentOffline(Date.now());
    } catch (err) {
      this.host.log("close", err, getSession<InboxSession>(ws)?.connId);
    }
  }

  private async ensureAlarm(now: number): Promise<void> {
    if ((await this.ctx.storage.getAlarm()) === null) {
      await this.ctx.storage.setAlarm(now + this.host.cfg.presenceTimeoutMs);
    }
  }

  // ------------------------------------------------------------------ storage helpers

  private meta(key: string): string | null {
    return this.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = ?", key).toArray()[0]?.value ?? null;
  }

  private setMeta(key: string, value: string): void {
    this.sql.exec("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", key, value);
  }

  private conversation(id: string): ConversationRow | null {
    return this.sql.exec<ConversationRow>("SELECT * FROM conversations WHERE id = ?", id).toArray()[0] ?? null;
  }

  private upsertConversation(id: string, peerId: string, peerName: string, now: number): void {
    this.sql.exec(
      "INSERT OR IGNORE INTO conversations (id, peer_id, peer_name, created_at, last_at) VALUES (?, ?, ?, ?, ?)",
      id,
      peerId,
      peerName,
      now,
      now,
    );
  }

  private messageByClientId(conversationId: string, fromId: string, clientMsgId: string): DmMessage | null {
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

  private summary(r: ConversationRow): ConversationSummary {
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

  private isBlocking(userId: string): boolean {
    return this.sql.exec("SELECT 1 FROM blocks WHERE user_id = ?", userId).toArray().length > 0;
  }

  private isSubscribedTo(userId: string): boolean {
    return this.sql.exec("SELECT 1 FROM subscriptions WHERE user_id = ?", userId).toArray().length > 0;
  }

  private hasSubscriber(userId: string): boolean {
    return this.sql.exec("SELECT 1 FROM subscribers WHERE user_id = ?", userId).toArray().length > 0;
  }

  /** A watcher already recorded, or room for one more: bounds the fan-out of every status change. */
  private canAddSubscriber(userId: string): boolean {
    if (this.hasSubscriber(userId)) return true;
    return this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM subscribers").one().n < SUBSCRIBERS_MAX;
  }

  /**
   * Records a subscription. An explicit one (`subscribe_presence`) replaces an automatic one for the
   * same user. An automatic one (a DM peer, on first contact: anyone can cause one by writing) never
   * replaces an explicit one and never counts against PRESENCE_SUBSCRIBE_LIMIT: automatic ones have a
   * bound of their own (the same number), and past it the one whose conversation has been quiet the
   * longest is dropped. Its inbox is not told: its next push is answered "no longer subscribed".
   */
  private addSubscription(userId: string, auto: boolean, now: number): void {
    if (!auto) {
      this.sql.exec(
        "INSERT INTO subscriptions (user_id, auto, created_at) VALUES (?, 0, ?) ON CONFLICT (user_id) DO UPDATE SET auto = 0",
        userId,
        now,
      );
      return;
    }
    const { rowsWritten } = this.sql.exec("INSERT OR IGNORE INTO subscriptions (user_id, auto, created_at) VALUES (?, 1, ?)", userId, now);
    if (rowsWritten === 0) return;
    const n = this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM subscriptions WHERE auto = 1").one().n;
    const excess = n - this.subscribeLimit();
    if (excess <= 0) return;
    this.sql.exec(
      `DELETE FROM subscriptions WHERE user_id IN (
         SELECT s.user_id FROM subscriptions s LEFT JOIN conversations c ON c.peer_id = s.user_id
         WHERE s.auto = 1 AND s.user_id <> ?
         ORDER BY COALESCE(c.last_at, s.created_at) ASC, s.created_at ASC LIMIT ?)`,
      userId,
      excess,
    );
  }

  private async enqueuePush(message: DmMessage, fromName: string, preview: string, unread: number): Promise<void> {
    try {
      await this.env.PUSH_QUEUE.send({
        kind: "dm",
        userId: message.to,
        conversationId: message.conversationId,
        messageId: message.id,
        seq: message.seq,
        from: message.from,
        fromName,
        preview,
        unread,
        createdAt: message.createdAt,
      });
    } catch (err) {
      // The message is stored and will be seen on the next connect; only the push is lost.
      this.host.log("push enqueue", err);
    }
  }

  // ------------------------------------------------------------------ sockets

  /**
   * Open sockets of the user, optionally leaving one out (the one closing). A socket the server closed
   * never counts, whatever `readyState` the runtime reports for it after a wake-up.
   */
  private openSockets(except?: WebSocket): WebSocket[] {
    return this.liveSockets(except).map((c) => c.ws);
  }

  /** As `openSockets`, with each socket's attachment. */
  private liveSockets(except?: WebSocket): HostedSocket<InboxSession>[] {
    const out: HostedSocket<InboxSession>[] = [];
    for (const ws of this.ctx.getWebSockets()) {
      if (ws === except || ws.readyState !== WebSocket.OPEN) continue;
      const session = getSession<InboxSession>(ws);
      if (session && !isClosing(session)) out.push({ ws, session });
    }
    return out;
  }

  /**
   * Sends a frame to every open socket but `except`; returns how many got it. A socket held for its
   * `sync` gets no `dm` frame (its sync reads the message from storage) but counts as reached.
   */
  private broadcast(frame: ServerMessage, except?: WebSocket): number {
    const data = JSON.stringify(frame);
    const holdable = frame.type === "dm";
    let n = 0;
    for (const { ws, session } of this.liveSockets(except)) {
      if (holdable && session.holdFrom !== undefined) {
        n += 1;
        continue;
      }
      try {
        ws.send(data);
        n += 1;
      } catch {
        // A socket that died between the check and the send is swept or closed by the runtime.
      }
    }
    return n;
  }

  private serialize<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.chains.get(key) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.chains.set(key, tail);
    void tail.then(() => {
      if (this.chains.get(key) === tail) this.chains.delete(key);
    });
    return next;
  }

  private subscribeLimit(): number {
    return numVar(this.env.PRESENCE_SUBSCRIBE_LIMIT, 500);
  }

}
