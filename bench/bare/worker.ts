/**
 * Bare broadcast Durable Object: the floor the benchmark compares the chat service against.
 * `GET /rooms/:id/ws` upgrades into the room's object (one per id, like ChatRoom); every text frame
 * received is sent as is to every socket of the room, the sender included. Hibernatable sockets and
 * uncompressed frames, like the service, so the per-send cost of the runtime is the same; nothing
 * else is done.
 */
import { DurableObject } from "cloudflare:workers";
import { upgradeHeaders } from "../../src/objects/upgrade";

interface BareEnv {
  BARE_ROOM: DurableObjectNamespace<BareRoom>;
}

export class BareRoom extends DurableObject<BareEnv> {
  override async fetch(request: Request): Promise<Response> {
    const pair = new WebSocketPair();
    this.ctx.acceptWebSocket(pair[1]);
    // The same transport as the service: no permessage-deflate (see src/objects/upgrade.ts), so the
    // floor measures the runtime's per-send cost, not compression.
    return new Response(null, { status: 101, webSocket: pair[0], headers: upgradeHeaders(null, "off") });
  }

  override async webSocketMessage(_ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    for (const peer of this.ctx.getWebSockets()) {
      try {
        peer.send(message);
      } catch {
        // A socket closing while we fan out: it simply misses the frame, as in any broadcast.
      }
    }
  }

  override async webSocketClose(ws: WebSocket, code: number): Promise<void> {
    try {
      ws.close(code === 1005 || code === 1006 ? 1000 : code, "bye");
    } catch {}
  }
}

export default {
  async fetch(request: Request, env: BareEnv): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/health") return new Response("ok");
    const m = /^\/rooms\/([^/]+)\/ws$/.exec(url.pathname);
    if (!m || request.headers.get("Upgrade") !== "websocket") return new Response("not found", { status: 404 });
    return env.BARE_ROOM.get(env.BARE_ROOM.idFromName(m[1])).fetch(request);
  },
} satisfies ExportedHandler<BareEnv>;
