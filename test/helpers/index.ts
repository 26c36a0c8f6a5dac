/** Test helpers: tokens, authenticated requests through the worker's own fetch, and WebSockets. */
import { SELF } from "cloudflare:test";
import { SignJWT } from "jose";
import { DEV_JWT_SECRET } from "../../src/dev-secret";
import type { ServerMessage } from "../../src/protocol";

/** Requests go to a loopback host, where the development secret is accepted. */
export const BASE = "http://localhost";

/** Mints an HS256 token with the development secret. */
export async function tokenFor(
  sub: string,
  opts: { name?: string; expiresIn?: number; secret?: string; alg?: string; claims?: Record<string, unknown> } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ name: opts.name ?? sub, ...opts.claims })
    .setProtectedHeader({ alg: opts.alg ?? "HS256", typ: "JWT" })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime(now + (opts.expiresIn ?? 3600))
    .sign(new TextEncoder().encode(opts.secret ?? DEV_JWT_SECRET));
}

/** fetch through the worker as `user`. */
export async function api(user: string | null, path: string, init: RequestInit & { json?: unknown } = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (user) headers.set("Authorization", `Bearer ${await tokenFor(user)}`);
  let body = init.body;
  if (init.json !== undefined) {
    headers.set("Content-Type", "application/json");
    body = JSON.stringify(init.json);
  }
  return SELF.fetch(`${BASE}${path}`, { ...init, headers, body });
}

/** A connected test socket that records every frame (batches unpacked, in order). */
export interface TestSocket {
  ws: WebSocket;
  /** Every frame received so far, batch frames flattened into their parts. */
  frames: ServerMessage[];
  send(frame: unknown): void;
  /** Resolves with the first frame (already received or future) matching `pred`. */
  waitFor<T extends ServerMessage = ServerMessage>(pred: (m: ServerMessage) => boolean, timeoutMs?: number): Promise<T>;
  close(): void;
}

/** Opens a WebSocket through the worker as `user` at `path` (e.g. `/api/chat/rooms/general/ws`). */
export async function connectWs(user: string, path: string, opts: { name?: string } = {}): Promise<TestSocket> {
  const token = await tokenFor(user, { name: opts.name });
  const res = await SELF.fetch(`${BASE}${path}`, {
    headers: { Upgrade: "websocket", Authorization: `Bearer ${token}` },
  });
  const ws = res.webSocket;
  if (!ws) throw new Error(`upgrade refused: ${res.status} ${await res.text()}`);
  ws.accept();
  const frames: ServerMessage[] = [];
  const waiters: { pred: (m: ServerMessage) => boolean; resolve: (m: ServerMessage) => void }[] = [];
  ws.addEventListener("message", (ev) => {
    const data = JSON.parse(ev.data as string) as ServerMessage;
    const parts = data.type === "batch" ? data.frames : [data];
    for (const m of parts) {
      frames.push(m);
      for (let i = waiters.length - 1; i >= 0; i--) {
        if (waiters[i].pred(m)) {
          waiters[i].resolve(m);
          waiters.splice(i, 1);
        }
      }
    }
  });
  return {
    ws,
    frames,
    send: (frame) => ws.send(typeof frame === "string" ? frame : JSON.stringify(frame)),
    waitFor: (pred, timeoutMs = 5000) => waitForMessage({ frames, waiters }, pred, timeoutMs) as never,
    close: () => ws.close(1000, "done"),
  };
}

function waitForMessage(
  s: { frames: ServerMessage[]; waiters: { pred: (m: ServerMessage) => boolean; resolve: (m: ServerMessage) => void }[] },
  pred: (m: ServerMessage) => boolean,
  timeoutMs: number,
): Promise<ServerMessage> {
  const found = s.frames.find(pred);
  if (found) return Promise.resolve(found);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no matching frame within ${timeoutMs} ms; got ${JSON.stringify(s.frames.slice(-5))}`)), timeoutMs);
    s.waiters.push({
      pred,
      resolve: (m) => {
        clearTimeout(timer);
        resolve(m);
      },
    });
  });
}
