/**
 * The headers of a socket's `101 Switching Protocols` answer, shared by the ChatRoom and the Inbox.
 *
 * Compression. The runtime negotiates `Sec-WebSocket-Extensions` from what the Worker's 101 answer
 * carries: with no such header it accepts the client's `permessage-deflate` offer (browsers and
 * Node always offer it), and then deflates every frame for every socket with a per-connection
 * context. For a fan-out server that is the wrong default: each room message is compressed once per
 * receiver, and each connection holds a deflate and an inflate context. Measured under `wrangler
 * dev` (1000 sockets, 10 msg/s, docs/benchmarks.md): the room's process went from 65% to 29% of a
 * core and p99 from 115 ms to 58 ms with compression off, and the clients' CPU fell by two thirds.
 * socket.io (perMessageDeflate off since v3) and Centrifugo make the same choice.
 *
 * So by default the answer names an extension no client offers, and the runtime, which keeps only
 * what both sides support, negotiates none: plain frames. `WS_COMPRESSION = "on"` leaves the header
 * out and lets the runtime negotiate permessage-deflate, for clients on slow links with large frames.
 *
 * Also the one forwarder of upgrades from the Worker's routes to the objects (`forwardUpgrade`).
 */
import { toWellFormed } from "../unicode";

/** Extension list that matches no client offer: the runtime negotiates no extension. */
export const NO_EXTENSIONS = "x-edge-chat-uncompressed";

/** Whether sockets may negotiate permessage-deflate (`WS_COMPRESSION`, default "off"). */
export function compressionOn(value: string | undefined): boolean {
  return (value ?? "").trim().toLowerCase() === "on";
}

/** Headers for a 101 answer: the chosen subprotocol echoed, and the compression choice. */
export function upgradeHeaders(protocol: string | null | undefined, compression: string | undefined): Headers {
  const headers = new Headers();
  if (protocol) headers.set("Sec-WebSocket-Protocol", protocol);
  if (!compressionOn(compression)) headers.set("Sec-WebSocket-Extensions", NO_EXTENSIONS);
  return headers;
}

// ---------------------------------------------------------------- forwarding an upgrade to an object

/**
 * The headers the Worker sets on an upgrade it forwards to a ChatRoom or an Inbox, after removing
 * any the client sent under a trusted prefix. Values are URI-encoded ({@link encodeHeaderValue}):
 * names may be any Unicode, header values may not. Both objects read these names.
 */
export const UPGRADE_HEADERS = {
  userId: "X-Chat-User-Id",
  userName: "X-Chat-User-Name",
  /** Set on room upgrades only. */
  roomId: "X-Chat-Room-Id",
  /** The subprotocol the object echoes in its 101 (never a `bearer.` entry). */
  protocol: "X-Chat-Ws-Protocol",
  /** "admin" when the token carries the deployment admin claim (room sockets). */
  role: "X-Chat-User-Role",
} as const;

/**
 * Header-name prefixes only the Worker may set on a forwarded upgrade (lower case, as Headers keys
 * are). `x-inbox-` was the Inbox's own prefix before it read `UPGRADE_HEADERS`: still stripped.
 */
const TRUSTED_PREFIXES = ["x-chat-", "x-inbox-"] as const;
/** Where a client may put its token: none of it goes on to the object. */
const BEARER_PROTOCOL_PREFIX = "bearer.";

/** Who is connecting, as the Worker authenticated them. */
export interface UpgradeIdentity {
  userId: string;
  userName: string;
  /** The room, for a room socket. */
  roomId?: string;
  /** The subprotocol to echo, if any. */
  protocol?: string;
  /** The token carries the deployment admin claim. */
  admin?: boolean;
}

/**
 * `encodeURIComponent` that cannot throw: it throws on a lone surrogate, so the value is made
 * well-formed first (lone surrogates become U+FFFD). Names are made well-formed where they enter
 * (`auth.ts`); this keeps a forwarded upgrade from ever answering 500 if one slips through.
 */
export function encodeHeaderValue(value: string): string {
  return encodeURIComponent(toWellFormed(value));
}

/** The inverse of {@link encodeHeaderValue}; null for an absent, empty or malformed value. */
export function decodeHeaderValue(value: string | null): string | null {
  if (value === null || value === "") return null;
  try {
    return decodeURIComponent(value);
  } catch {
    return null;
  }
}

/**
 * The request a Durable Object receives for a socket upgrade: the client's headers minus every
 * copy of a trusted header and every trace of the token (`Authorization`, `bearer.` protocol
 * entries, `?token=`), plus the trusted identity headers. The one rule for both routes.
 */
export function upgradeRequest(request: Request, identity: UpgradeIdentity): Request {
  const headers = new Headers(request.headers);
  for (const key of [...headers.keys()]) {
    if (TRUSTED_PREFIXES.some((prefix) => key.startsWith(prefix))) headers.delete(key);
  }
  headers.delete("Authorization");
  const offered = (headers.get("Sec-WebSocket-Protocol") ?? "")
    .split(",")
    .map((p) => p.trim())
    .filter((p) => p.length > 0 && !p.startsWith(BEARER_PROTOCOL_PREFIX));
  if (offered.length > 0) headers.set("Sec-WebSocket-Protocol", offered.join(", "));
  else headers.delete("Sec-WebSocket-Protocol");

  headers.set(UPGRADE_HEADERS.userId, encodeHeaderValue(identity.userId));
  headers.set(UPGRADE_HEADERS.userName, encodeHeaderValue(identity.userName));
  if (identity.roomId !== undefined) headers.set(UPGRADE_HEADERS.roomId, encodeHeaderValue(identity.roomId));
  if (identity.protocol) headers.set(UPGRADE_HEADERS.protocol, encodeHeaderValue(identity.protocol));
  if (identity.admin) headers.set(UPGRADE_HEADERS.role, "admin");

  const url = new URL(request.url);
  url.searchParams.delete("token");
  return new Request(url.toString(), { method: "GET", headers });
}

/** A WebSocket upgrade request (`Upgrade: websocket`, any case). */
export function isUpgrade(request: Request): boolean {
  return request.headers.get("Upgrade")?.toLowerCase() === "websocket";
}

/** Anything that answers a forwarded request: a Durable Object stub. */
export interface UpgradeTarget {
  fetch(request: Request): Promise<Response>;
}

/** Forwards a socket upgrade to its object with {@link upgradeRequest}; used by the room and inbox routes. */
export function forwardUpgrade(target: UpgradeTarget, request: Request, identity: UpgradeIdentity): Promise<Response> {
  return target.fetch(upgradeRequest(request, identity));
}
