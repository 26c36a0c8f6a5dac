/**
 * Bare broadcast Durable Object: the floor the benchmark compares the chat service against.
 * `GET /rooms/:id/ws` upgrades into the room's object (one per id, like ChatRoom); `{"type":"join_room"}`
 * is answered `{"type":"room_state"}` to the joiner alone, and every other text frame received is sent
 * as is to every socket of the room, the sender included. Hibernatable sockets and
 * uncompressed frames, like the service, so the per-send cost of the runtime is the same; nothing
 * else is done.
 */
import { DurableObject } from "cloudflare:workers";
import { upgradeHeaders } from "../../src/objects/upgrade";

/** The join frame the harness sends to every target, and the bare answer to it. */
const JOIN_FRAME = '{"type":"join_room"}';
const JOINED_FRAME = '{"type":"room_state"}';

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

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    // A join is one frame in and one out, to the joiner only: the least a join can cost, so the
    // floor's "connect and join" does what ours does at its simplest (its room_state carries nothing).
    if (message === JOIN_FRAME) {
      ws.send(JOINED_FRAME);
      return;
    }
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
