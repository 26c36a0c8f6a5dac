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
 */

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
