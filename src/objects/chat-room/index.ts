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
import { eq } from "drizzle-orm";
import { db } from "../../db/queries";
import { rooms as roomsTable } from "../../db/schema";
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
import { Fanout, noticeWindowMs } from "../fanout";
import { hasOtherJoined, onlineCount, presentUsers, type RoomSession } from "./presence";
import { objectName } from "../name";
import { getSession, isClosing, setSession } from "../session";
import { closeQuietly, hostConfig, type HostedSocket, SocketHost, upgradeIdentity } from "../socket-host";
import { isUpgrade, UPGRADE_HEADERS } from "../upgrade";
import { migrate } from "../schema";
import { MessageLog } from "./message-log";
import { deploymentWords } from "./filter";
import { type Actor, type ModAction, type ModResult, Moderation, type Refusal, type Role, type Visibility } from "./moderation";
import { ROOM_MIGRATIONS } from "./schema";
import { RoomStats, STATS_RETRY_MS } from "./stats";
import { LIFECYCLE_RETRY_MS, RoomLifecycle } from "./lifecycle";
import { RoomMediaRefs } from "./media-refs";
import { RoomReactions } from "./reactions";
import { type ReadSummary, RoomReadState } from "./read-state";
import { ftsQuery, searchLog, type SearchPosition } from "./search";

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
/**
 * Most changed messages one `join_room { since, sinceRev }` replays as `message_updated` /
 * `message_deleted` (bounded like the message replay); past it `room_state` says `changesTruncated`.
 */
export const CHANGES_MAX = REPLAY_MAX;
/** Open sockets one user may hold in one room (tabs, devices). */
export const SOCKETS_PER_USER_MAX = 32;
export { STATS_DEBOUNCE_MS } from "./stats";

/** A page of history, newest first. */
export interface HistoryPage {
  messages: RoomMessage[];
  /** Pass as `before` for the next (older) page; null when this page reaches the first message. */
  nextBefore: number | null;
}

/** A page of a thread: the parent and its replies, oldest first. */
export interface RepliesPage {
  parent: RoomMessage;
  replies: RoomMessage[];
  /** The last reply's seq, when more replies follow. */
  nextAfter: number | null;
}

/** A page of search results, best first. */
export interface SearchPage {
  messages: RoomMessage[];
  /** Where the next page starts, when there is one. */
  next: SearchPosition | null;
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
  /** Reactions (who reacted with what), the read state and mention index, the media references. */
  private readonly reactions: RoomReactions;
  private readonly readState: RoomReadState;
  private readonly media: RoomMediaRefs;
  /** edit_message, delete_message, react, mark_read, and mentions (lifecycle.ts). */
  private readonly lifecycle: RoomLifecycle;
  /** Roles, bans, mutes, slow mode, freeze, pins, filter, reports, audit (moderation.ts). */
  private readonly mod: Moderation;
  private schemaReady = false;
  /** Set by `destroy`: events of the sockets it closed must not create the storage again. */
  private destroyed = false;
  /**
   * The room is in D1's directory (`rooms`): read once per object lifetime, when a socket first
   * comes (`listed`), or known from `initRoom`. Only a yes is kept: a room is deleted through this
   * object (`destroy`), but may be created with a plain D1 insert (seeds, tests).
   */
  private inDirectory: true | Promise<boolean> | null = null;
  /** Cache of the scheduled alarm (loaded in the constructor). */
  private alarmAt: number | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.roomId = objectName(ctx);
    this.messages = new MessageLog(ctx.storage.sql, this.roomId);
    this.reactions = new RoomReactions(ctx.storage.sql, this.messages);
    this.readState = new RoomReadState(ctx.storage);
    this.media = new RoomMediaRefs(ctx.storage.sql, env, this.roomId);
    this.mod = new Moderation(ctx.storage.sql, deploymentWords(env.FILTER_WORDS), () => this.roomId);
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
      lazyWindowMs: () => noticeWindowMs(this.conns.size),
      onSendError: (ws, err) => this.host.log("send failed", err, getSession<RoomSession>(ws)?.connId),
    });
    this.lifecycle = new RoomLifecycle({
      env,
      ctx,
      roomId: this.roomId,
      log: this.messages,
      reactions: this.reactions,
      readState: this.readState,
      media: this.media,
      fanout: this.fanout,
      sendError: (ws, id, code, message) => this.host.sendError(ws, id, code, message),
      joinedUsers: () => new Set(presentUsers(this.sessions()).map((u) => u.userId)),
      mayDeleteOthers: (userId, admin) => this.mod.isModerator(userId, admin),
      auditDelete: (by, m, at) => this.mod.auditDelete(by, m, at),
      mayBeMentioned: (userId) => this.mod.canRead(userId) && this.mod.banOf(userId) === null,
      scheduleAlarm: (at) => this.scheduleAlarm(at),
      logError: (what, err) => this.host.log(what, err),
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
  async history(before: number | null, limit: number, readerId?: string): Promise<HistoryPage> {
    this.ensureSchema();
    const n = Math.max(1, Math.min(PAGE_MAX, Math.floor(limit)));
    const page = this.messages.before(before === null ? Number.MAX_SAFE_INTEGER : before, n);
    const messages = readerId === undefined ? page : this.reactions.forReader(page, readerId);
    // seq is gap-free from 1, so an older page exists exactly when this one stops above seq 1.
    const oldest = messages.at(-1)?.seq;
    return { messages, nextBefore: oldest !== undefined && oldest > 1 && messages.length === n ? oldest : null };
  }

  /**
   * A thread: the parent `messageId` and up to `limit` of its replies after seq `after`, oldest first,
   * with `readerId`'s own reactions; null when the room has no such message.
   */
  async replies(messageId: string, after: number | null, limit: number, readerId: string): Promise<RepliesPage | null> {
    this.ensureSchema();
    const parent = this.messages.get(messageId);
    if (!parent) return null;
    const n = Math.max(1, Math.min(PAGE_MAX, Math.floor(limit)));
    const rows = this.messages.replies(messageId, after ?? 0, n + 1);
    const replies = this.reactions.forReader(rows.slice(0, n), readerId);
    return {
      parent: this.reactions.forReader([parent], readerId)[0],
      replies,
      nextAfter: rows.length > n ? replies[replies.length - 1].seq : null,
    };
  }

  /** Full-text search of the room's live messages, best first (search.ts); `after` continues a page. */
  async search(q: string, limit: number, after: SearchPosition | null, readerId: string): Promise<SearchPage> {
    this.ensureSchema();
    const match = ftsQuery(q);
    if (match === null) return { messages: [], next: null };
    const n = Math.max(1, Math.min(PAGE_MAX, Math.floor(limit)));
    const hits = searchLog(this.ctx.storage.sql, this.messages, match, n + 1, after);
    const page = hits.slice(0, n);
    const last = page[page.length - 1];
    return {
      messages: this.reactions.forReader(page.map((h) => h.message), readerId),
      next: hits.length > n && last ? { rank: last.rank, seq: last.message.seq } : null,
    };
  }

  /** `userId`'s read position, unread and mention counts here; null when the user never joined. */
  async readSummary(userId: string): Promise<ReadSummary | null> {
    this.ensureSchema();
    // The directory's copy of a private room's members may lag the object: the object decides.
    if (!this.mod.canRead(userId)) return null;
    return this.readState.summary(userId, this.messages.lastSeq);
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
      if (!isUpgrade(request)) {
        return Response.json(
          { error: { code: "bad_request", message: "Expected a WebSocket upgrade.", requestId: "" } },
          { status: 426, headers: { Upgrade: "websocket" } },
        );
      }
      if (this.destroyed) return errorResponse(new ApiError({ code: "not_found", message: `No room ${this.roomId}.` }));
      const who = upgradeIdentity(request);
      if (!who) {
        return errorResponse(new ApiError({ code: "bad_request", message: "Room socket requests come through the Worker route." }));
      }
      // The Worker forwards room socket upgrades without reading D1: the room answers for itself. A
      // deletion that ran while D1 was read wins (the read may predate it).
      const listed = await this.listed();
      if (!listed || this.destroyed) return errorResponse(new ApiError({ code: "not_found", message: `No room ${this.roomId}.` }));
      this.ensureSchema();
      const admin = request.headers.get(UPGRADE_HEADERS.role) === "admin";
      // Banned users and non-members of a private room are refused before the upgrade (the latter as a room that does not exist).
      const refusal = this.mod.joinRefusal(who.userId, admin);
      if (refusal) return errorResponse(new ApiError({ code: refusal.code === "banned" ? "banned" : "not_found", message: refusal.message, details: refusal.code === "banned" ? { until: refusal.until } : undefined }));
      let mine = 0;
      for (const c of this.conns.values()) if (c.session.userId === who.userId) mine++;
      const { response, hosted } = this.host.accept(who.userId, who.name, mine, who.protocol, (base) => ({ ...base, joined: false, ...(admin ? { admin: true as const } : {}) }));
      if (hosted) {
        this.lifecycle.noteUser(who.userId, who.name);
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
      if (this.destroyed) return closeQuietly(ws, code, "closed");
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
      if (this.destroyed) return;
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
      if (this.destroyed) return;
      this.ensureSchema();
      const now = Date.now();
      const { expired, nextAt } = this.host.expired([...this.conns.values()], now);
      for (const conn of expired) await this.host.closeFromServer(conn.ws, conn.session, CLOSE.GOING_AWAY, "heartbeat timeout");
      // Sockets the server closed earlier whose close never completed (a frozen client).
      const closing = this.host.resweepClosing(now);
      if (this.stats.dueAt !== null) await this.stats.write();
      if (this.lifecycle.hasPendingWork()) {
        try {
          await this.lifecycle.retry();
        } catch (err) {
          this.host.log("lifecycle retry failed", err);
          this.scheduleAlarm(now + LIFECYCLE_RETRY_MS);
        }
      }
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
      case "join_room": {
        // Checked on every join, so a ban or a removal made since the upgrade holds on every tab.
        const refusal = this.mod.joinRefusal(s.userId, s.admin === true);
        if (refusal) return this.refuse(ws, msg.id, refusal);
        this.join(conn, msg.since, msg.sinceRev);
        if (msg.id !== undefined) this.host.send(ws, { type: "ack", id: msg.id });
        return;
      }
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
        if (msg.conversationId !== undefined) {
          return this.host.sendError(ws, msg.id, "bad_request", "conversationId: DM frames belong on the inbox socket (/api/chat/ws), not a room socket.");
        }
        return this.lifecycleFrame(ws, s, msg);

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

  private lifecycleFrame(ws: WebSocket, s: RoomSession, msg: Extract<ClientMessage, { type: "mark_read" | "edit_message" | "delete_message" | "react" }>): void {
    if (msg.type !== "mark_read") {
      // A change is a write: a ban, a freeze or a mute refuses it as it refuses a send, and an edit's
      // new text passes the word filter (slow mode paces new messages only).
      const refusal = this.mod.checkChange(s.userId, s.admin === true, msg.type === "edit_message" ? msg.text : undefined, Date.now());
      if (refusal) return this.refuse(ws, msg.id, refusal);
    }
    switch (msg.type) {
      case "mark_read":
        return this.lifecycle.markRead(ws, s, msg);
      case "edit_message":
        return this.lifecycle.edit(ws, s, msg);
      case "delete_message":
        return this.lifecycle.delete(ws, s, msg);
      case "react":
        return this.lifecycle.react(ws, s, msg);
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
  private join(conn: Conn, since: number | undefined, sinceRev: number | undefined): void {
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
      s.liveFromRev = this.messages.lastRev;
      setSession(ws, s);
      this.lifecycle.noteJoin(s.userId);
    }
    // Everything after `liveFrom` reached this socket live: replaying it would duplicate it.
    const head = Math.min(this.messages.lastSeq, s.liveFrom ?? this.messages.lastSeq);
    const upTo = since === undefined ? head : Math.min(head, since + REPLAY_MAX);
    const truncated = since !== undefined && upTo < head;
    const recent = since === undefined ? this.reactions.forReader(this.messages.recent(ROOM_STATE_RECENT), s.userId) : [];
    // Changes (edits, deletes, reactions) to messages the client holds (seq <= since) made after
    // `sinceRev`, up to where this socket's live stream began: their current state, once each.
    const revHead = Math.min(this.messages.lastRev, s.liveFromRev ?? this.messages.lastRev);
    let changes: RoomMessage[] = [];
    let changesTruncated = false;
    // A socket already live (continuing a truncated replay) was sent every change up to its live
    // start by its first join: in that join's change replay, or inside the messages it replayed in
    // their current state; later changes reached it live. Replaying changes again would repeat them.
    if (!wasJoined && since !== undefined && sinceRev !== undefined && sinceRev < revHead) {
      changes = this.messages.changedSince(Math.min(since, head), sinceRev, revHead, CHANGES_MAX + 1);
      if (changes.length > CHANGES_MAX) {
        changesTruncated = true;
        changes = changes.slice(0, CHANGES_MAX);
      }
    }
    this.host.send(ws, {
      type: "room_state",
      roomId: this.roomId,
      present: presentUsers(this.sessions()),
      messages: recent,
      lastSeq: this.messages.lastSeq,
      lastRev: this.messages.lastRev,
      ...(truncated ? { replayTruncated: true as const, nextSince: upTo } : {}),
      ...(changesTruncated ? { changesTruncated: true as const } : {}),
      ...this.mod.stateFor(s.userId, s.admin === true, (id) => this.messageById(id)),
    });
    let pages = 0;
    if (since !== undefined && since < upTo) pages += this.replay(ws, s.userId, since, upTo);
    if (changes.length > 0) pages += this.replayChanges(ws, s.userId, changes);
    // A long replay is work the client asked for: each page past the first costs a token, the
    // bucket going as low as -burst, so rejoining in a loop to pull the whole log is throttled
    // while one resume (of up to REPLAY_MAX messages and CHANGES_MAX changes) always goes through.
    if (pages > 1) {
      s.bucket = this.host.buckets.charge(s.userId, Date.now(), pages - 1);
      setSession(ws, s);
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
  private replay(ws: WebSocket, readerId: string, since: number, upTo: number): number {
    let after = since;
    let pages = 0;
    for (;;) {
      const messages = this.reactions.forReader(this.messages.range(after, upTo, REPLAY_CHUNK), readerId);
      if (messages.length === 0) return pages;
      const frames = messages.map((message) => ({ type: "message" as const, message }));
      if (frames.length === 1) this.host.send(ws, frames[0]);
      else this.host.send(ws, { type: "batch", frames });
      pages++;
      after = messages[messages.length - 1].seq;
      if (messages.length < REPLAY_CHUNK) return pages;
    }
  }

  /**
   * Sends the current state of changed messages, in rev order, as `message_updated` (with the
   * reader's own reactions) or `message_deleted` frames, REPLAY_CHUNK per `batch`. Returns the frames sent.
   */
  private replayChanges(ws: WebSocket, readerId: string, changed: RoomMessage[]): number {
    let pages = 0;
    for (let i = 0; i < changed.length; i += REPLAY_CHUNK) {
      const chunk = this.reactions.forReader(changed.slice(i, i + REPLAY_CHUNK), readerId);
      const frames = chunk.map((m) =>
        m.deleted === true
          ? { type: "message_deleted" as const, messageId: m.id, seq: m.seq, deletedBy: m.deletedBy ?? m.userId, roomId: this.roomId, rev: m.rev }
          : { type: "message_updated" as const, message: m },
      );
      if (frames.length === 1) this.host.send(ws, frames[0]);
      else this.host.send(ws, { type: "batch", frames });
      pages++;
    }
    return pages;
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
    delete s.liveFromRev;
    setSession(ws, s);
    this.announceLeaveIfLast(s);
  }

  private async sendMessage(conn: Conn, msg: Extract<ClientMessage, { type: "send_room_message" }>): Promise<void> {
    const { ws, session: s } = conn;
    if (!s.joined) return this.host.sendError(ws, msg.id, "forbidden", "Join the room (join_room) before sending.");
    // Ban, freeze, mute, slow mode and the word filter, from memory: a refused send is stored nowhere.
    const refusal = this.mod.checkSend(s.userId, s.admin === true, msg.text, Date.now());
    if (refusal) return this.refuse(ws, msg.id, refusal);
    const withMedia = msg.mediaIds !== undefined && msg.mediaIds.length > 0;
    // Media sends run one at a time with the room's media releases (media-refs.ts), so a release
    // never unbinds media that a message being stored carries.
    if (withMedia) return this.media.serialize(() => this.storeMessage(conn, msg, true));
    return this.storeMessage(conn, msg, false);
  }

  private async storeMessage(conn: Conn, msg: Extract<ClientMessage, { type: "send_room_message" }>, withMedia: boolean): Promise<void> {
    const { ws, session: s } = conn;
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
      mentions: msg.mentions !== undefined && msg.mentions.length > 0 ? [...new Set(msg.mentions)] : undefined,
      rev: this.messages.lastRev + 1,
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
    if (media) this.media.add(message.seq, media);
    if (message.mentions) this.readState.setMentions(message);
    this.fanout.publish({ type: "message", message }, { replaceFor: { socket: ws, frame: { type: "ack", id: msg.id, message } } });
    this.mod.noteSent(s.userId, message.createdAt);
    this.stats.markDirty();
    // Off the hot path (ctx.waitUntil): the ack is already queued.
    if (message.mentions) this.lifecycle.mention(message, message.mentions);
  }

  /** The first ack again, through the fan-out queue: it carries a seq, so it must not overtake frames still queued for this socket. */
  private ackDuplicate(ws: WebSocket, id: string | number | undefined, first: RoomMessage): void {
    this.fanout.unicast(ws, { type: "ack", id, message: first, duplicate: true });
  }

  // ------------------------------------------------------------------ moderation (moderation.ts)

  /** The role of a user in this room; `admin` when the caller's token carries the admin claim. */
  async roleOf(userId: string, admin = false): Promise<Role> {
    this.ensureSchema();
    return this.mod.roleOf(userId, admin);
  }

  /** The one read gate (history, info, search, replies): false answers as a room that does not exist. */
  async canRead(userId: string, admin = false): Promise<boolean> {
    this.ensureSchema();
    return this.mod.canRead(userId, admin);
  }

  /** Sets the owner and visibility of a room just created (POST /api/chat/rooms). */
  async initRoom(owner: string, visibility: Visibility): Promise<void> {
    // A room created again under the id of a deleted one starts afresh.
    this.destroyed = false;
    this.inDirectory = true;
    this.ensureSchema();
    this.mod.init(owner, visibility);
  }

  /** One moderation action from the REST routes (routes/moderation.ts). `createdBy` adopts an owner for rooms older than owners. */
  async moderate(actor: Actor, action: ModAction, createdBy: string | null = null): Promise<ModResult> {
    this.ensureSchema();
    this.mod.adoptOwner(createdBy);
    return this.mod.apply(actor, action, {
      roomId: this.roomId,
      publish: (frame) => this.fanout.publish(frame),
      closeUser: (userId, error, reason) => this.closeUser(userId, error, reason),
      message: (id) => this.messageById(id),
      nameOf: (userId) => presentUsers(this.sessions()).find((u) => u.userId === userId)?.name ?? userId,
    });
  }

  /**
   * Deletes the room's storage after the Worker removed its directory row: `room_deleted` to every
   * joined socket, every socket closed, the log and every moderation table gone, the alarm cleared.
   */
  async destroy(by: string): Promise<void> {
    this.ensureSchema();
    this.lifecycle.stop();
    this.inDirectory = null;
    this.fanout.publish({ type: "system", roomId: this.roomId, event: "room_deleted", userId: by, name: by, at: Date.now(), by });
    this.fanout.flush();
    for (const conn of [...this.conns.values()]) await this.host.closeFromServer(conn.ws, conn.session, CLOSE.GOING_AWAY, "room deleted");
    // The room's media goes back to its uploaders (and to the sweep). Best effort: the room's
    // directory row is already gone, so nobody but an uploader can read it even if this fails.
    try {
      await this.media.releaseAll();
    } catch (err) {
      this.host.log("media release on room deletion failed", err);
    }
    await this.ctx.storage.deleteAlarm();
    await this.ctx.storage.deleteAll();
    this.alarmAt = null;
    this.schemaReady = false;
    this.destroyed = true;
  }

  /** The error frame of a refused frame, with `until` / `retryAfterMs` when the refusal has them. */
  private refuse(ws: WebSocket, id: string | number | undefined, r: Refusal): void {
    this.host.send(ws, { type: "error", id, code: r.code, message: r.message, ...(r.until !== undefined ? { until: r.until } : {}), ...(r.retryAfterMs !== undefined ? { retryAfterMs: r.retryAfterMs } : {}) });
  }

  /** Sends `error` to each socket of a user, then closes it from the server (a departure, at once). */
  private async closeUser(userId: string, error: Refusal, reason: string): Promise<number> {
    let n = 0;
    for (const conn of [...this.conns.values()]) {
      if (conn.session.userId !== userId) continue;
      this.refuse(conn.ws, undefined, error);
      await this.host.closeFromServer(conn.ws, conn.session, CLOSE.POLICY, reason);
      n++;
    }
    return n;
  }

  /** A message of the log by its id. */
  private messageById(id: string): RoomMessage | null {
    const row = this.ctx.storage.sql.exec<{ seq: number }>("SELECT seq FROM messages WHERE id = ?", id).toArray()[0];
    return row ? (this.messages.range(row.seq - 1, row.seq, 1)[0] ?? null) : null;
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
    this.mod.load();
    this.schemaReady = true;
  }

  /** Whether the room is in D1's directory (see `inDirectory`); concurrent upgrades share one read. */
  private async listed(): Promise<boolean> {
    if (this.inDirectory === true) return true;
    const read = (this.inDirectory ??= db(this.env)
      .select({ id: roomsTable.id })
      .from(roomsTable)
      .where(eq(roomsTable.id, this.roomId))
      .get()
      .then((row) => row !== undefined));
    try {
      const yes = await read;
      if (this.inDirectory === read) this.inDirectory = yes ? true : null;
      return yes;
    } catch (err) {
      if (this.inDirectory === read) this.inDirectory = null;
      throw err;
    }
  }

  /** Moves the alarm earlier to `at` if needed; never later. */
  private scheduleAlarm(at: number): void {
    if (this.alarmAt !== null && this.alarmAt <= at) return;
    this.alarmAt = at;
    void this.ctx.storage.setAlarm(at).catch((err) => this.host.log("setAlarm failed", err));
  }
}
