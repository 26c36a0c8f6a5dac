/**
 * Bare broadcast Durable Object: the floor the benchmark compares the chat service against.
 * `GET /rooms/:id/ws` upgrades into the room's object (one per id, like ChatRoom); `{"type":"join_room"}`
 * is answered `{"type":"room_state"}` to the joiner alone, and every other text frame received is sent
 * as is to every socket of the room, the sender included. Hibernatable sockets and
 * uncompressed frames, like the service, so the per-send cost of the runtime is the same; nothing
 * else is done.
 *
 * Bare inbox Durable Object: the floor of presence fan-out. `GET /inbox/:user/ws` upgrades into the
 * user's object (one per user, like the service's Inbox). `{"type":"subscribe","to":"<user>"}` makes
 * this object call the target's object by RPC (`addSubscriber`), then answers `{"type":"ack"}`;
 * `{"type":"presence","status":"<s>"}` makes it call `presenceChanged` on every subscriber's object by
 * RPC, all at once, and each sends `{"type":"presence","userId":"<publisher>","status":"<s>"}` to its
 * sockets. The shape of a status change in the service (one RPC per subscriber inbox, one frame per
 * subscriber socket) without auth, validation, storage, ordering or limits.
 */
import { DurableObject } from "cloudflare:workers";
import { upgradeHeaders } from "../../src/objects/upgrade";

/** The join frame the harness sends to every target, and the bare answer to it. */
const JOIN_FRAME = '{"type":"join_room"}';
const JOINED_FRAME = '{"type":"room_state"}';

/** Sends `data` to every socket of the object; a socket closing meanwhile simply misses it. */
function sendToAll(ctx: DurableObjectState, data: string | ArrayBuffer): void {
  for (const ws of ctx.getWebSockets()) {
    try {
      ws.send(data);
    } catch {}
  }
}

/** Completes a close the client started (never with a reserved code). */
function closeBack(ws: WebSocket, code: number): void {
  try {
    ws.close(code === 1005 || code === 1006 ? 1000 : code, "bye");
  } catch {}
}

interface BareEnv {
  BARE_ROOM: DurableObjectNamespace<BareRoom>;
  BARE_INBOX: DurableObjectNamespace<BareInbox>;
}

export class BareRoom extends DurableObject<BareEnv> {
  override async fetch(request: Request): Promise<Response> {
    const pair = new WebSocketPair();
    this.ctx.acceptWebSocket(pair[1]);
    // The same transport as the service: no permessage-deflate (see src/objects/upgrade.ts), so the
    // floor measures the runtime's per-send cost, not compression.
    return new Response(null, { status: 101, webSocket: pair[0], headers: upgradeHeaders(null, "off") });
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    // A join is one frame in and one out, to the joiner only: the least a join can cost, so the
    // floor's "connect and join" does what ours does at its simplest (its room_state carries nothing).
    if (message === JOIN_FRAME) {
      ws.send(JOINED_FRAME);
      return;
    }
    sendToAll(this.ctx, message);
  }

  override async webSocketClose(ws: WebSocket, code: number): Promise<void> {
    closeBack(ws, code);
  }
}

export class BareInbox extends DurableObject<BareEnv> {
  /**
   * Who listens to this user's status: kept in memory only. The floor keeps nothing durable (no
   * storage at all), so an evicted object forgets its subscribers; the benchmark's run is short and
   * its sockets keep the object awake.
   */
  private readonly subscribers = new Set<string>();

  /** This user's name: the name the Worker addressed the object by (`idFromName`). */
  private get me(): string {
    return this.ctx.id.name ?? "";
  }

  override async fetch(_request: Request): Promise<Response> {
    const pair = new WebSocketPair();
    this.ctx.acceptWebSocket(pair[1]);
    return new Response(null, { status: 101, webSocket: pair[0], headers: upgradeHeaders(null, "off") });
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    if (typeof message !== "string") return;
    let frame: { type?: string; to?: string; status?: string };
    try {
      frame = JSON.parse(message);
    } catch {
      return;
    }
    if (frame.type === "subscribe" && typeof frame.to === "string") {
      await this.env.BARE_INBOX.get(this.env.BARE_INBOX.idFromName(frame.to)).addSubscriber(this.me);
      ws.send('{"type":"ack"}');
    } else if (frame.type === "presence" && typeof frame.status === "string") {
      const status = frame.status;
      await Promise.all([...this.subscribers].map((s) => this.env.BARE_INBOX.get(this.env.BARE_INBOX.idFromName(s)).presenceChanged(this.me, status)));
    }
  }

  /** RPC: `user` wants this user's status changes. */
  async addSubscriber(user: string): Promise<void> {
    this.subscribers.add(user);
  }

  /** RPC: `user`'s status is now `status`; shown on this user's sockets. */
  async presenceChanged(user: string, status: string): Promise<void> {
    sendToAll(this.ctx, JSON.stringify({ type: "presence", userId: user, status }));
  }

  override async webSocketClose(ws: WebSocket, code: number): Promise<void> {
    closeBack(ws, code);
  }
}

export default {
  async fetch(request: Request, env: BareEnv): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/health") return new Response("ok");
    if (request.headers.get("Upgrade") !== "websocket") return new Response("not found", { status: 404 });
    const m = /^\/rooms\/([^/]+)\/ws$/.exec(url.pathname);
    if (m) return env.BARE_ROOM.get(env.BARE_ROOM.idFromName(m[1])).fetch(request);
    const u = /^\/inbox\/([^/]+)\/ws$/.exec(url.pathname);
    if (u) return env.BARE_INBOX.get(env.BARE_INBOX.idFromName(decodeURIComponent(u[1]))).fetch(request);
    return new Response("not found", { status: 404 });
  },
} satisfies ExportedHandler<BareEnv>;
