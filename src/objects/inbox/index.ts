/**
 * One user's inbox (one Durable Object per user id): every socket of the user (devices and tabs),
 * the user's DM conversations and their copy of each message, unread counts, the user's block list
 * (authoritative) and the user's status with who is subscribed to it.
 *
 * Cross-user work is RPC between inboxes: a DM is stored by the recipient's inbox first (it owns the
 * recipient's blocks and numbering), then by the sender's; presence changes go from the user's inbox
 * to each subscriber's inbox. Nothing on the message hot path touches D1 except a first message to a
 * new peer (does the user exist?) and messages with media (claiming them).
 *
 * This class is the dispatcher: the socket lifecycle (through the shared `SocketHost`), the frame
 * switch and the RPC surface. Each concern is a part in its own file (see `context.ts`).
 */
import { DurableObject } from "cloudflare:workers";
import { ApiError, errorResponse } from "../../errors";
import type { ClientMessage, DmMessage, ServerFrameMessage, ServerMessage } from "../../protocol";
import { assertNever, CLOSE, PING_FRAME, PONG_FRAME } from "../../protocol";
import { objectName } from "../name";
import { migrate } from "../schema";
import { getSession, isClosing } from "../session";
import { FrameError, hostConfig, type HostedSocket, SocketHost, upgradeIdentity } from "../socket-host";
import { isUpgrade } from "../upgrade";
import { chosenOnConnect, type StatusView } from "../status";
import { type BlockPosition, InboxBlocks } from "./blocks";
import {
  type ConversationSummary,
  type IncomingDm,
  INBOX_SOCKETS_MAX,
  type InboxContext,
  type InboxSession,
  type OpenResult,
  type ReceiveResult,
  SWEEP_MIN_INTERVAL_MS,
  SWEEP_RETRY_MS,
  SYNC_PARAM,
} from "./context";
import { InboxDms } from "./dms";
import { InboxLifecycle, type PeerChange, type PeerChangeResult } from "./lifecycle";
import { InboxMentions, type MentionFrame, type MentionResult } from "./mentions";
import { InboxPush } from "./push";
import { InboxSearch, type SearchPosition } from "./search";
import { InboxStatus } from "./status";
import { INBOX_MIGRATIONS } from "./schema";
import { InboxStore } from "./store";

export {
  type ConversationSummary,
  type IncomingDm,
  INBOX_SOCKETS_MAX,
  type InboxSession,
  type OpenResult,
  type ReceiveResult,
  RPC_CONCURRENCY,
  SUBSCRIBERS_MAX,
  SYNC_PARAM,
  SYNC_ROWS_MAX,
} from "./context";
export { parseListCursor } from "./dms";

/** Frames a socket held for its `sync` does not get live: the `sync` answer reads them from storage. */
const HELD_TYPES: ReadonlySet<ServerMessage["type"]> = new Set(["dm", "message_updated", "message_deleted", "reaction"]);

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
  /** The parts, and what they share. */
  private readonly c: InboxContext;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.owner = objectName(ctx);
    migrate(ctx.storage, INBOX_MIGRATIONS);
    const store = new InboxStore(this.sql);
    this.host = new SocketHost<InboxSession>(ctx, hostConfig(env, INBOX_SOCKETS_MAX), () => `Inbox:${this.owner}`, () => this.sql, {
      sessionOf: (ws) => {
        const s = getSession<InboxSession>(ws);
        return s && !isClosing(s) ? s : null;
      },
      dispatch: (ws, session, msg) => this.dispatch(ws, session, msg),
      onServerClose: (ws) => this.socketGone(ws),
    });
    const c = {
      ctx,
      env,
      owner: this.owner,
      sql: this.sql,
      host: this.host,
      store,
      broadcast: (frame: ServerMessage, except?: WebSocket) => this.broadcast(frame, except),
      openSockets: (except?: WebSocket) => this.openSockets(except),
      serialize: <T>(key: string, fn: () => Promise<T>) => this.serialize(key, fn),
    } as InboxContext;
    c.dms = new InboxDms(c);
    c.status = new InboxStatus(c);
    c.blocks = new InboxBlocks(c);
    c.push = new InboxPush(c);
    c.lifecycle = new InboxLifecycle(c);
    c.search = new InboxSearch(c);
    this.c = c;
    const now = Date.now();
    const { closing } = this.host.wake(now);
    if (closing) {
      // Woken with sockets the server closed still listed: the sweep closes them again.
      void ctx.blockConcurrencyWhile(() => this.ensureAlarm(now));
    }
    // The runtime answers the exact ping frame itself, without waking the object, and records when.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING_FRAME, PONG_FRAME));
  }

  // ------------------------------------------------------------------ RPC from other inboxes (dms.ts, status.ts, blocks.ts)

  /** Stores the recipient's copy of a DM and delivers it (see `InboxDms.receiveDm`). */
  async receiveDm(dm: IncomingDm): Promise<ReceiveResult> {
    return this.c.dms.receiveDm(dm);
  }

  /** The peer read up to `messageId`. */
  async peerRead(conversationId: string, readerId: string, messageId: string): Promise<void> {
    return this.c.dms.peerRead(conversationId, readerId, messageId);
  }

  /** The peer edited or deleted its message, or reacted: applied to this copy, idempotently (see `InboxLifecycle.peerChange`). */
  async peerChange(fromId: string, change: PeerChange): Promise<PeerChangeResult> {
    return this.c.lifecycle.peerChange(fromId, change);
  }

  /** The peer started or stopped typing. */
  async peerTyping(conversationId: string, fromId: string, on: boolean): Promise<void> {
    return this.c.dms.peerTyping(conversationId, fromId, on);
  }

  /** Records a watcher of this user's status (within SUBSCRIBERS_MAX). */
  async addSubscriber(subscriberId: string): Promise<{ view: StatusView; subscribed: boolean }> {
    return this.c.status.addSubscriber(subscriberId);
  }

  /** Forgets a watcher. */
  async removeSubscriber(subscriberId: string): Promise<void> {
    return this.c.status.removeSubscriber(subscriberId);
  }

  /** This user's status as `viewerId` may see it. */
  async statusFor(viewerId: string): Promise<StatusView> {
    return this.c.status.statusFor(viewerId);
  }

  /** A watched user's status changed; false when this inbox no longer watches it. */
  async presenceChanged(userId: string, view: StatusView): Promise<boolean> {
    return this.c.status.presenceChanged(userId, view);
  }

  /** True when this user blocks `userId`. */
  async blocks(userId: string): Promise<boolean> {
    return this.c.blocks.blocks(userId);
  }

  /** A room message mentions this user, who is not in that room (see `mentions.ts`). */
  async receiveMention(frame: MentionFrame): Promise<MentionResult> {
    return new InboxMentions(this.c).receiveMention(frame);
  }

  // ------------------------------------------------------------------ RPC from the Worker (REST)

  /** The user's conversations, most recent first, a page at a time. */
  async listConversations(limit: number, cursor?: string): Promise<{ conversations: ConversationSummary[]; nextCursor: string | null }> {
    return this.c.dms.listConversations(limit, cursor);
  }

  /** Creates (or returns) the conversation with `peerId`. */
  async openConversation(peerId: string): Promise<OpenResult> {
    return this.c.dms.openConversation(peerId);
  }

  /** A page of a conversation's history, newest first; null when there is no such conversation. */
  async history(conversationId: string, before: number | undefined, limit: number): Promise<{ messages: DmMessage[]; nextBefore: number | null } | null> {
    return this.c.dms.history(conversationId, before, limit);
  }

  /** Full-text search over the user's DMs (see `InboxSearch.search`); null when `conversationId` is not theirs. */
  async searchMessages(
    match: string,
    limit: number,
    after: SearchPosition | null,
    conversationId?: string,
  ): Promise<{ message: DmMessage; key: string }[] | null> {
    return this.c.search.search(match, limit, after, conversationId);
  }

  /** Up to `limit` entries of the user's block list after `after`, newest first. */
  async listBlocks(limit: number, after?: BlockPosition): Promise<{ userId: string; createdAt: number }[]> {
    return this.c.blocks.listBlocks(limit, after);
  }

  /** Blocks `userId`. */
  async block(userId: string): Promise<{ created: boolean; userId: string; createdAt: number }> {
    return this.c.blocks.block(userId);
  }

  /** Unblocks `userId`; false if not blocked. */
  async unblock(userId: string): Promise<boolean> {
    return this.c.blocks.unblock(userId);
  }

  /** Statuses of `userIds` as this user may see them, in the order asked. */
  async presenceOf(userIds: string[]): Promise<{ userId: string; status: StatusView["status"]; lastSeen: number | null }[]> {
    return this.c.status.presenceOf(userIds);
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

  /** Accepts the user's inbox socket. Only the Worker calls this, with the trusted headers set. */
  override async fetch(request: Request): Promise<Response> {
    try {
      if (!isUpgrade(request)) {
        return new Response("Expected a WebSocket upgrade.", { status: 426 });
      }
      const who = upgradeIdentity(request);
      if (!who) return new Response("Missing user.", { status: 400 });
      const open = this.openSockets().length;
      const resume = new URL(request.url).searchParams.get(SYNC_PARAM) === "1";
      const { response, hosted } = this.host.accept(who.userId, who.name, open, who.protocol, (base) =>
        // Everything stored above this rowid arrived after the open.
        resume ? { ...base, holdFrom: this.c.store.lastRowid(), holdRev: this.c.store.currentRev() } : base,
      );
      if (!hosted) return response;
      const server = hosted.ws;
      const now = hosted.session.connectedAt;
      const wasOnline = open > 0;
      if (!wasOnline) {
        const own = this.c.status.ownStatus();
        this.c.status.saveOwnStatus({ ...own, chosen: chosenOnConnect(own.chosen) });
      }
      this.c.status.setConnected(true);
      try {
        await this.ensureAlarm(now);
      } catch (err) {
        // The socket is accepted either way; a missing sweep is re-armed by the next connection.
        this.host.log("connect", err, getSession<InboxSession>(server)?.connId);
      }
      // After the upgrade is answered: after a wake-up the snapshot reads the watched inboxes first.
      void this.c.status.sendWatchedSnapshot(server).catch((err) => this.host.log("presence snapshot", err, getSession<InboxSession>(server)?.connId));
      // Subscribers hear about it after the upgrade is answered: the handshake never waits on fan-out.
      void this.c.status.publishStatus().catch((err) => this.host.log("publish on connect", err));
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
      if (this.openSockets().length === 0) await this.c.status.wentOffline(now);
      // Changes not yet mirrored to a peer's copy (lifecycle.ts): retried here, with backoff.
      const outboxAt = await this.c.lifecycle.drainDue(now);
      let nextAt = closing > 0 ? Math.min(plan.nextAt ?? Infinity, now + timeout) : plan.nextAt;
      if (outboxAt !== null) nextAt = Math.min(nextAt ?? Infinity, outboxAt);
      if (nextAt !== null) await this.ctx.storage.setAlarm(Math.max(nextAt, now + SWEEP_MIN_INTERVAL_MS));
    } catch (err) {
      this.host.log("alarm", err);
      // Try again later rather than lose the sweep (as the room does): nothing else re-arms it while
      // the user's sockets stay open, and a socket closed before the failure would never be closed again.
      try {
        await this.ctx.storage.setAlarm(Date.now() + SWEEP_RETRY_MS);
      } catch (again) {
        this.host.log("alarm re-arm", again);
      }
    }
  }

  private async dispatch(ws: WebSocket, session: InboxSession, msg: ClientMessage): Promise<void> {
    switch (msg.type) {
      case "send_dm":
        return this.c.dms.onSendDm(ws, session, msg);
      case "mark_read":
        return this.c.dms.onMarkRead(ws, session, msg);
      case "typing":
        return this.c.dms.onTyping(ws, session, msg);
      case "presence":
        return this.c.status.onPresence(ws, msg);
      case "subscribe_presence":
        return this.c.status.onSubscribe(ws, session, msg);
      case "unsubscribe_presence":
        return this.c.status.onUnsubscribe(ws, session, msg);
      case "sync":
        return this.c.dms.onSync(ws, session, msg);
      case "ping":
        // A ping with extra fields (e.g. an id) is not the auto-answered frame: answer it here.
        this.host.send(ws, { type: "pong", id: msg.id });
        return;
      case "edit_message":
        return this.c.lifecycle.onEdit(ws, msg);
      case "delete_message":
        return this.c.lifecycle.onDelete(ws, msg);
      case "react":
        return this.c.lifecycle.onReact(ws, msg);
      case "join_room":
      case "leave_room":
      case "send_room_message":
        throw new FrameError("bad_request", `${msg.type} belongs on a room socket (/api/chat/rooms/:roomId/ws)`);
      default:
        assertNever(msg);
    }
  }

  private async socketGone(ws: WebSocket): Promise<void> {
    try {
      if (this.openSockets(ws).length === 0) await this.c.status.wentOffline(Date.now());
    } catch (err) {
      this.host.log("close", err, getSession<InboxSession>(ws)?.connId);
    }
  }

  private async ensureAlarm(now: number): Promise<void> {
    const at = await this.ctx.storage.getAlarm();
    // Also when the alarm is set later (an outbox retry in backoff): the sweep must not wait for it.
    if (at === null || at > now + this.host.cfg.presenceTimeoutMs) {
      await this.ctx.storage.setAlarm(now + this.host.cfg.presenceTimeoutMs);
    }
  }

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
   * `sync` gets no `dm` or lifecycle frame (its sync reads the messages and their changes from
   * storage) but counts as reached.
   */
  private broadcast(frame: ServerMessage, except?: WebSocket): number {
    const data = JSON.stringify(frame);
    const holdable = HELD_TYPES.has(frame.type);
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
}
