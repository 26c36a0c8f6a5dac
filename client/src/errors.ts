import type { ServerFrame, WsErrorCode } from "./wire.js";

/**
 * Error codes the server's refusal of a request makes final: retrying the same frame cannot succeed
 * (or, for `muted` and `slow_mode`, not before `until` / `retryAfterMs`, which the application shows),
 * so a send is rejected at once and dropped from the queue. Anything else (`rate_limited`, `internal`)
 * is retried.
 */
export const PERMANENT_CODES: ReadonlySet<string> = new Set<WsErrorCode>([
  "blocked",
  "forbidden",
  "bad_request",
  "not_found",
  "too_large",
  "banned",
  "muted",
  "slow_mode",
  "frozen",
  "filtered",
]);

/** The server's codes (`error` frames and REST), and the SDK's own: `closed` and `network`. */
export type ChatErrorCode = WsErrorCode | "closed" | "network" | (string & {});

/**
 * An error from the server (an `error` frame, or a REST error body) or from the SDK itself.
 * `code` is the server's code (`blocked`, `muted`, `rate_limited`, …) or, for REST, its error code;
 * the SDK's own are `closed` (the client was closed) and `network` (a REST request that got no answer).
 */
export class ChatError extends Error {
  override name = "ChatError";
  constructor(
    readonly code: ChatErrorCode,
    message: string,
    /** With `rate_limited` and `slow_mode`: how long to wait before the next try. */
    readonly retryAfterMs?: number,
    /** The HTTP status, for REST errors. */
    readonly status?: number,
    /** The server's request id, for REST errors. */
    readonly requestId?: string,
    /** With `muted` and `banned`: when it ends (ms since epoch); null when it does not. */
    readonly until?: number | null,
  ) {
    super(message);
  }
}

/** @internal An `error` frame as a ChatError. */
export function toError(f: Extract<ServerFrame, { type: "error" }>): ChatError {
  return new ChatError(f.code, f.message, f.retryAfterMs, undefined, undefined, f.until);
}
