/**
 * ChatRoom: one Durable Object per public room (`roomStub(env, roomId)`).
 *
 * It owns the room's hibernatable WebSockets, who is present, the message log in its own SQLite
 * storage (authoritative; REST history is the `history` RPC), the per-room sequence numbers, the
 * per-connection token buckets and the join/leave system frames. The hot path (frame in → validate
 * → store here → fan out, the sender's ack in its message's place) touches neither D1 nor any other
 * network hop, except the media claim when a message carries `mediaIds`.
 *
 * Survives hibernation and eviction: socket state is in each socket's attachment, the log and the
 * room id are in storage; the in-memory maps are caches rebuilt from `ctx.getWebSockets()`.
 */
import { DurableObject } from "cloudflare:workers";
import { numVar } from "../../env";
import { ApiError, errorResponse } from "../../errors";
import { claimMedia } from "../../media/claim";
import {
  assertNever,
  CLOSE,
  type ClientMessage,
  type MediaDescriptor,
  PAGE_MAX,
  PING_FRAME,
  PONG_FRAME,
  type RoomMessage,
} from "../../protocol";
import { Fanout } from "../fanout";
import { hasOtherJoined, onlineCount, presentUsers, type RoomSession } from "./presence";
import { objectName } from "../name";
import { getSession, isClosing, setSession } from "../session";
import { hostConfig, type HostedSocket, SocketHost, upgradeIdentity } from "../socket-host";
import { migrate } from "../schema";
import { MessageLog } from "./message-log";
import { ROOM_MIGRATIONS } from "./schema";
import { RoomStats, STATS_RETRY_MS } from "./stats";

/** Messages in `room_state` on a join without `since`. */
export const ROOM_STATE_RECENT = 50;
/** Messages per `batch` frame while replaying after `since`. */
export const REPLAY_CHUNK = PAGE_MAX;
/**
 * Most messages one `join_room { since }` replays (10 pages). A join is one synchronous step of the
 * object, so an unbounded replay would hold the object and its memory for as long as the log is;
 * past the bound `room_state` says `replayTruncated` and the client continues from `nextSince`.
 */
export const REPLAY_MAX = 10 * REPLAY_CHUNK;
/** Open sockets one user may hold in one room (tabs, devices). */
export const SOCKETS_PER_USER_MAX = 32;
export { STATS_DEBOUNCE_MS } from "./stats";

/** A page of history, newest first. */
export interface HistoryPage {
  messages: RoomMessage[];
  /** Pass as `before` for the next (older) page; null when this page reaches the first message. */
  nextBefore: number | null;
}


type Conn = HostedSocket<RoomSession>;

/** One public room: its sockets, presence, message log and sequence numbers. */
export class ChatRoom extends DurableObject<Env> {
  /** Open sockets by connection id; rebuilt from attachments on wake-up. */
  private readonly conns = new Map<string, Conn>();
  /** The same connections by socket object, for the per-frame lookup; misses fall back to the attachment. */
  private readonly connByWs = new WeakMap<WebSocket, Conn>();
  private readonly fanout: Fanout<WebSocket>;
  /** The socket layer shared with the Inbox: accept, the frame pipeline, the sweep, close, send, log. */
  private readonly host: SocketHost<RoomSession>;

  /** The room's id: the object's name. */
  private readonly roomId: string;
  /** The message log (its own SQLite table) and the room's head (last seq, last message time). */
  private readonly messages: MessageLog;
  /** The room's counters in D1, written debounced from the alarm. */
  private readonly stats: RoomStats;
  private schemaReady = false;
  /** Cache of the scheduled alarm (loaded in the constructor). */
  private alarmAt: number | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.roomId = objectName(ctx);
    this.messages = new MessageLog(ctx.storage.sql, this.roomId);
    this.stats = new RoomStats(ctx.storage.sql, env, this.roomId, {
      scheduleAlarm: (at) => this.scheduleAlarm(at),
      read: () => ({ onlineCount: onlineCount(this.sessions()), messageCount: this.messages.lastSeq, lastMessageAt: this.messages.lastMessageAt }),
      log: (what, err) => this.host.log(what, err),
    });
    // Answered by the runtime without waking the object: keeps idle rooms hibernated.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING_FRAME, PONG_FRAME));
    this.host = new SocketHost<RoomSession>(
      ctx,
      hostConfig(env, SOCKETS_PER_USER_MAX),
      () => `ChatRoom:${this.roomId}`,
      () => ctx.storage.sql,
      {
        sessionOf: (ws) => this.connOf(ws)?.session ?? null,
        ready: () => this.ensureSchema(),
        dispatch: (ws, session, msg) => this.dispatch(this.conns.get(session.connId) ?? { ws, session }, msg),
        onServerClose: (_ws, session) => {
          const conn = this.conns.get(session.connId);
          if (conn) this.depart(conn);
          // Also in the attachment: the close event that follows (maybe after a rebuild) announces nothing again.
          session.joined = false;
        },
      },
    );
    // Sockets a client is closing are rebuilt too: its close may be what woke the object, and its
    // departure still has to be announced. Sockets the server closed (`closingAt`) never count again,
    // whatever the runtime reports about them; the alarm closes them again.
    const now = Date.now();
    const { live, closing } = this.host.wake(now);
    for (const conn of live) this.conns.set(conn.session.connId, conn);
    this.fanout = new Fanout<WebSocket>({
      targets: () => this.joinedSockets(),
      windowMs: Math.max(0, numVar(env.FANOUT_WINDOW_MS, 5)),
      onSendError: (ws, err) => this.host.log("send failed", err, getSession<RoomSession>(ws)?.connId),
    });
    // Reading the alarm creates no state, so the `__health__` ping stays stateless.
    void ctx.blockConcurrencyWhile(async () => {
      this.alarmAt = await ctx.storage.getAlarm();
      // Woken with sockets the server closed still listed: the sweep closes them again.
      if (closing) this.scheduleAlarm(now + this.host.cfg.presenceTimeoutMs);
    });
  }

  /** Round trip used by /health/ready. Touches no storage, so any id (e.g. `__health__`) stays empty. */
  async ping(): Promise<number> {
    return Date.now();
  }

  /** Room history, newest first, `before` exclusive (a seq). Called by the Worker after it checked the room exists. */
  async history(before: number | null, limit: number): Promise<HistoryPage> {
    this.ensureSchema();
    const n = Math.max(1, Math.min(PAGE_MAX, Math.floor(limit)));
    const messages = this.messages.before(before === null ? Number.MAX_SAFE_INTEGER : before, n);
    // seq is gap-free from 1, so an older page exists exactly when this one stops above seq 1.
    const oldest = messages.at(-1)?.seq;
    return { messages, nextBefore: oldest !== undefined && oldest > 1 && messages.length === n ? oldest : null };
  }

  /** Presence and stats of the room, for tests and diagnostics. */
  async snapshot(): Promise<{ roomId: string; lastSeq: number; sockets: number; present: { userId: string; name: string }[] }> {
    this.ensureSchema();
    return {
      roomId: this.roomId,
      lastSeq: this.messages.lastSeq,
      sockets: this.conns.size,
      present: presentUsers(this.sessions()),
    };
  }

  /** The WebSocket upgrade, forwarded by the Worker with the trusted `UPGRADE_HEADERS` (upgrade.ts). */
  override async fetch(request: Request): Promise<Response> {
    try {
      if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
        return Response.json(
          { error: { code: "bad_request", message: "Expected a WebSocket upgrade.", requestId: "" } },
          { status: 426, headers: { Upgrade: "websocket" } },
        );
      }
      const who = upgradeIdentity(request);
      if (!who) {
        return errorResponse(new ApiError({ code: "bad_request", message: "Room socket requests come through the Worker route." }));
      }
      this.ensureSchema();
      let mine = 0;
      for (const c of this.conns.values()) if (c.session.userId === who.userId) mine++;
      const { response, hosted } = this.host.accept(who.userId, who.name, mine, who.protocol, (base) => ({ ...base, joined: false }));
      if (hosted) {
        this.conns.set(hosted.session.connId, hosted);
        this.scheduleAlarm(hosted.session.connectedAt + this.host.cfg.presenceTimeoutMs + 1);
      }
      return response;
    } catch (err) {
      this.host.log("upgrade failed", err);
      return errorResponse(new ApiError({ code: "internal", message: "Internal error." }));
    }
  }

  override async webSocketMessage(ws: WebSocket, raw: string | ArrayBuffer): Promise<void> {
    await this.host.message(ws, raw);
  }

  override async webSocketClose(ws: WebSocket, code: number, _reason: string, _wasClean: boolean): Promise<void> {
    try {
      // The close may be what woke the object: load the room id before announcing the leave.
      this.ensureSchema();
      const conn = this.connOf(ws);
      if (conn) this.depart(conn);
      this.host.closed(ws, code, "closed");
    } catch (err) {
      this.host.log("close failed", err);
    }
  }

  override async webSocketError(ws: WebSocket, error: unknown): Promise<void> {
    try {
      this.ensureSchema();
      const conn = this.connOf(ws);
      this.host.log("socket error", error, conn?.session.connId);
      if (conn) this.depart(conn);
      this.host.closed(ws, CLOSE.INTERNAL, "socket error");
    } catch (err) {
      this.host.log("error handler failed", err);
    }
  }

  /**
   * The heartbeat sweep and the debounced stats write share the one alarm. Sockets silent for longer
   * than PRESENCE_TIMEOUT_MS (no frame, no auto-answered ping) are closed and leave; the next alarm
   * is set for the earliest moment another socket could expire, so an idle room with no sockets has none.
   */
  override async alarm(): Promise<void> {
    this.alarmAt = null;
    try {
      this.ensureSchema();
      const now = Date.now();
      const { expired, nextAt } = this.host.expired([...this.conns.values()], now);
      for (const conn of expired) await this.host.closeFromServer(conn.ws, conn.session, CLOSE.GOING_AWAY, "heartbeat timeout");
      // Sockets the server closed earlier whose close never completed (a frozen client).
      const closing = this.host.resweepClosing(now);
      if (this.stats.dueAt !== null) await this.stats.write();
      if (nextAt !== null) this.scheduleAlarm(nextAt);
      if (closing > 0) this.scheduleAlarm(now + this.host.cfg.presenceTimeoutMs);
    } catch (err) {
      this.host.log("alarm failed", err);
      // Try again later rather than lose the sweep or the stats.
      this.scheduleAlarm(Date.now() + STATS_RETRY_MS);
    }
  }

  // ------------------------------------------------------------------ frames

  private async dispatch(conn: Conn, msg: ClientMessage): Promise<void> {
    const { ws, session: s } = conn;
    switch (msg.type) {
      case "join_room":
        this.join(conn, msg.since);
        if (msg.id !== undefined) this.host.send(ws, { type: "ack", id: msg.id });
        return;
      case "leave_room":
        this.leave(conn);
        if (msg.id !== undefined) this.host.send(ws, { type: "ack", id: msg.id });
        return;
      case "send_room_message":
        await this.sendMessage(conn, msg);
        return;
      case "typing":
        if (!s.joined) return this.host.sendError(ws, msg.id, "forbidden", "Join the room (join_room) before typing.");
        this.fanout.publish({ type: "typing", userId: s.userId, on: msg.on, roomId: this.roomId }, { except: ws });
        if (msg.id !== undefined) this.host.send(ws, { type: "ack", id: msg.id });
        return;
      case "ping":
        // A ping with an `id` is not the exact auto-response frame, so it reaches the object.
        this.host.send(ws, { type: "pong", id: msg.id });
        return;
      case "mark_read":
      case "edit_message":
      case "delete_message":
      case "react":
        // PLACEHOLDER (base for issue 14): replaced by the lifecycle handlers.
        return this.host.sendError(ws, msg.id, "bad_request", `\`${msg.type}\` is not supported yet.`);
      case "send_dm":
      case "presence":
      case "subscribe_presence":
      case "unsubscribe_presence":
      case "sync":
        return this.host.sendError(ws, msg.id, "bad_request", `\`${msg.type}\` belongs on the inbox socket (/api/chat/ws), not a room socket.`);
      default:
        assertNever(msg);
    }
  }

  /**
   * Marks the socket joined and sends `room_state`, then, with `since`, the messages after it in seq
   * order, at most REPLAY_MAX of them. Reading the log and becoming a fan-out target happen in one
   * synchronous step, so no live message can fall between the replay and the live stream, nor arrive
   * twice: the fan-out sends a new target only the frames published after it became one (frames
   * still queued in the window from before are covered by `room_state` and the replay), so a join
   * flushes nothing and a join storm keeps coalescing. A truncated replay says so in `room_state`;
   * the socket is live from then on, and a later `join_room { since }` on it replays only what
   * precedes its live stream (`liveFrom`).
   */
  private join(conn: Conn, since: number | undefined): void {
    const { ws, session: s } = conn;
    const wasJoined = s.joined;
    const announce = !wasJoined && !hasOtherJoined(this.sessions(), s.userId, s.connId);
    if (wasJoined) {
      // Already live: what is queued for it goes out before the fresh room_state (rare: continuing a
      // truncated replay).
      this.fanout.flush();
    } else {
      this.fanout.addTarget(ws);
      s.joined = true;
      s.liveFrom = this.messages.lastSeq;
      setSession(ws, s);
    }
    // Everything after `liveFrom` reached this socket live: replaying it would duplicate it.
    const head = Math.min(this.messages.lastSeq, s.liveFrom ?? this.messages.lastSeq);
    const upTo = since === undefined ? head : Math.min(head, since + REPLAY_MAX);
    const truncated = since !== undefined && upTo < head;
    const recent = since === undefined ? this.messages.recent(ROOM_STATE_RECENT) : [];
    this.host.send(ws, {
      type: "room_state",
      roomId: this.roomId,
      present: presentUsers(this.sessions()),
      messages: recent,
      lastSeq: this.messages.lastSeq,
      ...(truncated ? { replayTruncated: true as const, nextSince: upTo } : {}),
    });
    if (since !== undefined && since < upTo) {
      const pages = this.replay(ws, since, upTo);
      // A long replay is work the client asked for: each page past the first costs a token, the
      // bucket going as low as -burst, so rejoining in a loop to pull the whole log is throttled
      // while one resume (of up to REPLAY_MAX messages) always goes through.
      if (pages > 1) {
        s.bucket = this.host.buckets.charge(s.userId, Date.now(), pages - 1);
        setSession(ws, s);
      }
    }
    if (announce) {
      // The joining socket learns it is present from room_state; the others get the system frame.
      this.fanout.publish(
        { type: "system", roomId: this.roomId, event: "join", userId: s.userId, name: s.name, at: Date.now() },
        // Lazy: in a join storm the notices share sends (fanout.ts); anything else published takes them along.
        { except: ws, lazy: true },
      );
      this.stats.markDirty();
    }
  }

  /**
   * Sends the messages with `since` < seq <= `upTo` as `batch` frames of up to REPLAY_CHUNK messages,
   * reading the log a page at a time. Returns the number of frames sent.
   */
  private replay(ws: WebSocket, since: number, upTo: number): number {
    let after = since;
    let pages = 0;
    for (;;) {
      const messages = this.messages.range(after, upTo, REPLAY_CHUNK);
      if (messages.length === 0) return pages;
      const frames = messages.map((message) => ({ type: "message" as const, message }));
      if (frames.length === 1) this.host.send(ws, frames[0]);
      else this.host.send(ws, { type: "batch", frames });
      pages++;
      after = messages[messages.length - 1].seq;
      if (messages.length < REPLAY_CHUNK) return pages;
    }
  }

  private leave(conn: Conn): void {
    const { ws, session: s } = conn;
    if (!s.joined) return;
    // What was queued while the socket was a target (its own acks among it) goes out before it stops
    // being one, and before the leave's own ack. Only an explicit leave_room flushes: a socket that
    // closes (a disconnect storm) just stops being a target.
    this.fanout.flush();
    s.joined = false;
    delete s.liveFrom;
    setSession(ws, s);
    this.announceLeaveIfLast(s);
  }

  private async sendMessage(conn: Conn, msg: Extract<ClientMessage, { type: "send_room_message" }>): Promise<void> {
    const { ws, session: s } = conn;
    if (!s.joined) return this.host.sendError(ws, msg.id, "forbidden", "Join the room (join_room) before sending.");
    const withMedia = msg.mediaIds !== undefined && msg.mediaIds.length > 0;
    // A resend gets the first ack. A send with media looks before claiming it, so a resend claims
    // nothing; a plain send finds out from its insert (below): one statement on the hot path, not two.
    if (withMedia) {
      const first = this.messages.findSent(s.userId, msg.clientMsgId);
      if (first) return this.ackDuplicate(ws, msg.id, first);
    }
    if (msg.replyTo !== undefined) {
      if (!this.messages.has(msg.replyTo)) return this.host.sendError(ws, msg.id, "not_found", `replyTo: no message ${msg.replyTo} in this room`);
    }
    let media: MediaDescriptor[] | undefined;
    if (withMedia) {
      const claimed = await claimMedia(this.env, s.userId, msg.mediaIds ?? [], { kind: "room", roomId: this.roomId });
      if (!claimed.ok) return this.host.sendError(ws, msg.id, claimed.code, claimed.message);
      media = claimed.media;
    }
    // From here to the publish nothing awaits, so seq order is storage order is delivery order.
    const message: RoomMessage = {
      id: crypto.randomUUID(),
      roomId: this.roomId,
      seq: this.messages.lastSeq + 1,
      userId: s.userId,
      userName: s.name,
      clientMsgId: msg.clientMsgId,
      text: msg.text,
      media,
      replyTo: msg.replyTo,
      createdAt: Date.now(),
    };
    if (!this.messages.append(message)) {
      // Stored before: a resend, or (with media) a send that raced this one while its claim awaited D1.
      const first = this.messages.findSent(s.userId, msg.clientMsgId);
      if (first) return this.ackDuplicate(ws, msg.id, first);
      throw new Error("insert wrote nothing and no earlier send was found");
    }
    // The output gate holds these sends until the insert is durable: no ack for a lost message.
    // The sender's ack (which carries the message) takes the message's place in the sender's stream:
    // sent directly, it could overtake earlier messages still queued in the fan-out window, and a
    // client resuming from the highest seq it saw would skip them.
    this.fanout.publish({ type: "message", message }, { replaceFor: { socket: ws, frame: { type: "ack", id: msg.id, message } } });
    this.stats.markDirty();
  }

  /** The first ack again, through the fan-out queue: it carries a seq, so it must not overtake frames still queued for this socket. */
  private ackDuplicate(ws: WebSocket, id: string | number | undefined, first: RoomMessage): void {
    this.fanout.unicast(ws, { type: "ack", id, message: first, duplicate: true });
  }

  // ------------------------------------------------------------------ presence

  /** Removes a socket; idempotent. Announces `leave` when it was the user's last joined socket. */
  private depart(conn: Conn): void {
    if (!this.conns.delete(conn.session.connId)) return;
    if (conn.session.joined) this.announceLeaveIfLast(conn.session);
  }

  private announceLeaveIfLast(s: RoomSession): void {
    if (hasOtherJoined(this.sessions(), s.userId, s.connId)) return;
    this.fanout.publish({ type: "system", roomId: this.roomId, event: "leave", userId: s.userId, name: s.name, at: Date.now() }, { lazy: true });
    this.stats.markDirty();
  }

  private *sessions(): Iterable<RoomSession> {
    for (const c of this.conns.values()) yield c.session;
  }

  private *joinedSockets(): Iterable<WebSocket> {
    for (const c of this.conns.values()) if (c.session.joined) yield c.ws;
  }

  /**
   * The cached connection of a socket, re-read from its attachment when the cache missed it. A socket
   * the server closed has already departed and has `joined: false` in its attachment, so its close
   * event cannot announce a second leave.
   */
  private connOf(ws: WebSocket): Conn | null {
    // Most frames come from a socket already cached under its object: no attachment to deserialize.
    const known = this.connByWs.get(ws);
    if (known !== undefined && this.conns.get(known.session.connId) === known) return known;
    const session = getSession<RoomSession>(ws);
    if (!session || isClosing(session)) return null;
    const cached = this.conns.get(session.connId);
    if (cached) {
      cached.ws = ws;
      this.connByWs.set(ws, cached);
      return cached;
    }
    const conn = { ws, session };
    this.conns.set(session.connId, conn);
    this.connByWs.set(ws, conn);
    return conn;
  }

  // ------------------------------------------------------------------ storage

  /** Brings the storage to the current schema and loads the head; once per object lifetime, lazily (the health ping creates nothing). */
  private ensureSchema(): void {
    if (this.schemaReady) return;
    migrate(this.ctx.storage, ROOM_MIGRATIONS);
    this.messages.load();
    this.stats.load();
    this.schemaReady = true;
  }

  /** Moves the alarm earlier to `at` if needed; never later. */
  private scheduleAlarm(at: number): void {
    if (this.alarmAt !== null && this.alarmAt <= at) return;
    this.alarmAt = at;
    void this.ctx.storage.setAlarm(at).catch((err) => this.host.log("setAlarm failed", err));
  }
}
