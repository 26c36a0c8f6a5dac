/**
 * The socket layer of both Durable Objects (ChatRoom, Inbox), composed into each: one copy of what a
 * hibernatable socket needs, so the two cannot drift (in the spirit of partyserver's `Server` and the
 * agents SDK's connection lifecycle). Each object keeps only its own frame handlers.
 *
 * - **Accept**: the per-user socket cap (refused before the upgrade with 429), the attachment
 *   (`session.ts`), the 101 answer (`upgrade.ts`).
 * - **The frame pipeline**, in this order: open check (frames still in flight after the server closed
 *   a socket are dropped) → session (a socket the server closed is dropped, whatever `readyState` the
 *   runtime reports after a wake-up) → parse (before the token, so a refusal names the frame's `id`)
 *   → the user's rate-limit token (`user-buckets.ts`; `RATE_ABUSE_LIMIT` refusals in a row: the error,
 *   then a 1008 close) → dispatch to the object's handler → the one error frame (a `FrameError` from
 *   a handler becomes its code; anything else is logged and answered `internal`).
 * - **The heartbeat sweep** (one rule, `heartbeat.ts` `sweep`: silent for longer than
 *   PRESENCE_TIMEOUT_MS, frames and auto-answered pings both count) and the re-sweep of sockets the
 *   server closed whose close never completed.
 * - **A quiet close** that never throws and never sends a reserved code (1005, 1006, 1015), and a
 *   server close that marks the attachment first (`closingAt`).
 * - **Send and log** (`log.ts`, with the stack).
 *
 * The reply rule (docs/protocol.md): every frame with an `id` gets exactly one `ack` or `error`
 * carrying it (`pong` for `ping`). The pipeline answers refusals and failures; handlers answer the rest.
 */
import { numVar } from "../env";
import { ApiError, errorResponse } from "../errors";
import { logError } from "../log";
import { type ClientMessage, CLOSE, parseClientMessage, type ServerMessage, type WsErrorCode } from "../protocol";
import { sweep } from "./heartbeat";
import type { BucketConfig } from "./rate-limit";
import { type BaseSession, getSession, isClosing, setSession } from "./session";
import { decodeHeaderValue, UPGRADE_HEADERS, upgradeHeaders } from "./upgrade";
import { UserBuckets } from "./user-buckets";

/** A refusal thrown by a frame handler: answered as an `error` frame with this code and the frame's `id`. */
export class FrameError extends Error {
  constructor(
    readonly code: WsErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** The socket settings of an object, read from the environment once (in its constructor). */
export interface HostConfig {
  bucket: BucketConfig;
  /** Refusals in a row on one socket before it is closed with 1008. */
  abuseLimit: number;
  /** Silence after which the sweep closes a socket. */
  presenceTimeoutMs: number;
  /** Open sockets one user may hold in this object. */
  socketsPerUser: number;
  /** `WS_COMPRESSION`. */
  compression: string | undefined;
}

/** Reads the socket settings. */
export function hostConfig(env: Env, socketsPerUser: number): HostConfig {
  return {
    bucket: { burst: numVar(env.RATE_BURST, 20), refillPerSec: numVar(env.RATE_REFILL_PER_SEC, 10) },
    abuseLimit: numVar(env.RATE_ABUSE_LIMIT, 50),
    presenceTimeoutMs: Math.max(1000, numVar(env.PRESENCE_TIMEOUT_MS, 45_000)),
    socketsPerUser,
    compression: env.WS_COMPRESSION,
  };
}

/** What an object gives the host: how to find a socket's session, and its own frame handlers. */
export interface SocketHandlers<S extends BaseSession> {
  /** The live session of a socket; null for a socket the server closed or one without an attachment. */
  sessionOf(ws: WebSocket): S | null;
  /** Anything the pipeline needs ready before it reads storage (a lazily created schema). */
  ready?(): void;
  /** Handles one parsed frame. Throws `FrameError` to refuse it. */
  dispatch(ws: WebSocket, session: S, msg: ClientMessage): Promise<void> | void;
  /**
   * The server is about to close a live socket (heartbeat, abuse): the object applies the departure
   * now, since the close event may never come. Runs before the attachment is marked.
   */
  onServerClose(ws: WebSocket, session: S): Promise<void> | void;
}

/**
 * Who is connecting, from the trusted headers the Worker's one forwarder (`upgrade.ts`) set; null
 * when the request did not come through it. The name falls back to the id.
 */
export function upgradeIdentity(request: Request): { userId: string; name: string; protocol: string | null } | null {
  const userId = decodeHeaderValue(request.headers.get(UPGRADE_HEADERS.userId));
  if (!userId) return null;
  return {
    userId,
    name: decodeHeaderValue(request.headers.get(UPGRADE_HEADERS.userName)) ?? userId,
    protocol: decodeHeaderValue(request.headers.get(UPGRADE_HEADERS.protocol)),
  };
}

/** A socket and its session. */
export interface HostedSocket<S extends BaseSession> {
  ws: WebSocket;
  session: S;
}

/** The socket layer of one object. */
export class SocketHost<S extends BaseSession> {
  /** The per-user rate limit, shared by a user's sockets in this object. */
  readonly buckets: UserBuckets;

  constructor(
    private readonly ctx: DurableObjectState,
    readonly cfg: HostConfig,
    /** `ChatRoom:<room>` / `Inbox:<user>`, for log lines; must not throw. */
    private readonly label: () => string,
    sql: () => SqlStorage,
    private readonly handlers: SocketHandlers<S>,
  ) {
    this.buckets = new UserBuckets(sql, cfg.bucket);
  }

  /**
   * Reads every socket's attachment on wake-up: seeds the rate-limit buckets and returns the live
   * sockets, and whether sockets the server closed are still listed (the sweep must close them again).
   */
  wake(now: number): { live: HostedSocket<S>[]; closing: boolean } {
    const live: HostedSocket<S>[] = [];
    let closing = false;
    for (const ws of this.ctx.getWebSockets()) {
      const session = getSession<S>(ws);
      if (!session) continue;
      this.buckets.seed(session.userId, session.bucket, now);
      if (isClosing(session)) closing = true;
      else live.push({ ws, session });
    }
    return { live, closing };
  }

  /**
   * Accepts a socket for `userId` unless the user already holds `socketsPerUser` live ones here
   * (`live`). `extend` adds the object's own fields to the attachment.
   */
  accept(
    userId: string,
    name: string,
    live: number,
    protocol: string | null,
    extend: (base: BaseSession & { lastSeenAt: number }) => S,
  ): { response: Response; hosted: HostedSocket<S> | null } {
    if (live >= this.cfg.socketsPerUser) {
      const err = new ApiError({ code: "rate_limited", message: `At most ${this.cfg.socketsPerUser} open sockets per user here.` });
      return { response: errorResponse(err), hosted: null };
    }
    const now = Date.now();
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.ctx.acceptWebSocket(server);
    const session = extend({
      connId: crypto.randomUUID(),
      userId,
      name,
      connectedAt: now,
      lastSeenAt: now,
      bucket: this.buckets.current(userId, now),
      strikes: 0,
    });
    setSession(server, session);
    const headers = upgradeHeaders(protocol, this.cfg.compression);
    return { response: new Response(null, { status: 101, webSocket: client, headers }), hosted: { ws: server, session } };
  }

  /** The frame pipeline (see the module comment). Never throws. */
  async message(ws: WebSocket, raw: string | ArrayBuffer): Promise<void> {
    let session: S | null = null;
    let requestId: string | number | undefined;
    try {
      if (ws.readyState !== WebSocket.OPEN) return;
      session = this.handlers.sessionOf(ws);
      if (!session) {
        // A socket the server closed: its frames are dropped. One without an attachment cannot be
        // attributed to a user: refused cleanly.
        if (!isClosing(getSession<S>(ws))) closeQuietly(ws, CLOSE.POLICY, "unknown connection");
        return;
      }
      this.handlers.ready?.();
      const now = Date.now();
      const parsed = parseClientMessage(raw);
      requestId = parsed.ok ? parsed.msg.id : parsed.id;
      // Every frame costs a token of the user's bucket, bad ones too, so garbage cannot be flooded
      // for free, nor the bucket refilled by reconnecting.
      const t = this.buckets.take(session.userId, now);
      session.bucket = t.state;
      session.lastSeenAt = now;
      if (!t.ok) {
        session.strikes++;
        if (session.strikes >= this.cfg.abuseLimit) {
          this.send(ws, { type: "error", id: requestId, code: "rate_limited", message: "Too many frames; closing.", retryAfterMs: t.retryAfterMs });
          await this.closeFromServer(ws, session, CLOSE.POLICY, "rate limit exceeded");
          return;
        }
        setSession(ws, session);
        this.send(ws, {
          type: "error",
          id: requestId,
          code: "rate_limited",
          message: `Rate limit: ${this.cfg.bucket.burst} frames burst, ${this.cfg.bucket.refillPerSec}/s sustained.`,
          retryAfterMs: t.retryAfterMs,
        });
        return;
      }
      session.strikes = 0;
      setSession(ws, session);
      if (!parsed.ok) return this.sendError(ws, parsed.id, parsed.code, parsed.message);
      await this.handlers.dispatch(ws, session, parsed.msg);
    } catch (err) {
      if (err instanceof FrameError) return this.sendError(ws, requestId, err.code, err.message);
      this.log("frame failed", err, session?.connId);
      // Every write is idempotent on the client's ids, so a retry of the same frame is always safe.
      this.sendError(ws, requestId, "internal", "Internal error; retrying the same frame is safe.");
    }
  }

  /**
   * Closes a live socket from the server side: the object applies the departure, the attachment is
   * marked `closingAt` (so the socket never counts again even if its close never completes), then
   * the close is sent.
   */
  async closeFromServer(ws: WebSocket, session: S, code: number, reason: string): Promise<void> {
    const departed = this.handlers.onServerClose(ws, session);
    session.closingAt = Date.now();
    try {
      setSession(ws, session);
    } catch {
      // The socket is already gone: nothing left to mark.
    }
    closeQuietly(ws, code, reason);
    await departed;
  }

  /** The client closed (or the socket failed): completes the handshake and keeps the user's bucket. */
  closed(ws: WebSocket, code: number, reason: string): void {
    closeQuietly(ws, code, reason);
    const s = getSession<S>(ws);
    if (s) this.buckets.release(s.userId, Date.now());
  }

  /**
   * The heartbeat rule: which of `sockets` have been silent (no frame, no auto-answered ping) for
   * longer than PRESENCE_TIMEOUT_MS, and when the next one could be (null: none left to watch).
   */
  expired(sockets: Iterable<HostedSocket<S>>, now: number): { expired: HostedSocket<S>[]; nextAt: number | null } {
    const items: { session: S; hosted: HostedSocket<S>; autoResponseAt: number | null }[] = [];
    for (const h of sockets) items.push({ session: h.session, hosted: h, autoResponseAt: this.autoResponseAt(h.ws) });
    const { expired, nextAt } = sweep(items, now, this.cfg.presenceTimeoutMs);
    const gone = new Set(expired);
    return { expired: items.filter((i) => gone.has(i.session)).map((i) => i.hosted), nextAt };
  }

  /**
   * Closes again the sockets the server closed before `now` that the runtime still lists (a frozen
   * client never completes the close). Returns how many server-closed sockets are still listed,
   * those closed just now included: while any remain, the object keeps its sweep armed, so a frozen
   * client is closed again without waiting for some other wake-up. (A close that completes takes the
   * socket off the list, so a normal close costs at most one more sweep.)
   */
  resweepClosing(now: number): number {
    let n = 0;
    for (const ws of this.ctx.getWebSockets()) {
      const closingAt = getSession<S>(ws)?.closingAt;
      if (closingAt === undefined) continue;
      n++;
      if (closingAt < now) closeQuietly(ws, CLOSE.GOING_AWAY, "closed by the server");
    }
    this.buckets.prune(now);
    return n;
  }

  /** Sends one frame; a socket closed under us is logged, never thrown. */
  send(ws: WebSocket, frame: ServerMessage): void {
    try {
      ws.send(JSON.stringify(frame));
    } catch (err) {
      this.log("send failed", err);
    }
  }

  /** The one error frame. */
  sendError(ws: WebSocket, id: string | number | undefined, code: WsErrorCode, message: string): void {
    this.send(ws, { type: "error", id, code, message });
  }

  /** One error line for this object (`log.ts`: JSON, with the stack). */
  log(what: string, err: unknown, connId?: string): void {
    let object: string;
    try {
      object = this.label();
    } catch {
      object = this.ctx.id.toString();
    }
    logError(what, err, { object, where: what, connId });
  }

  /** When the runtime last answered this socket's ping (null if never, or if the socket is gone). */
  private autoResponseAt(ws: WebSocket): number | null {
    try {
      return this.ctx.getWebSocketAutoResponseTimestamp(ws)?.getTime() ?? null;
    } catch {
      return null;
    }
  }
}

/** Closes a socket, never throwing (it may be closed already) and never sending a reserved code (1005, 1006, 1015). */
export function closeQuietly(ws: WebSocket, code: number, reason: string): void {
  const safe = code === 1005 || code === 1006 || code === 1015 ? CLOSE.NORMAL : code;
  try {
    ws.close(safe, reason.slice(0, 120));
  } catch {
    // Already closed.
  }
}
