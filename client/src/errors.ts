import type { WsErrorCode } from "./wire.js";

/**
 * Error codes the server's refusal of a send makes final: retrying the same frame cannot succeed,
 * so the send is rejected at once and dropped from the queue.
 */
export const PERMANENT_CODES: ReadonlySet<string> = new Set<WsErrorCode>(["blocked", "forbidden", "bad_request", "not_found", "too_large"]);

/**
 * An error from the server (an `error` frame, or a REST error body) or from the SDK itself.
 * `code` is the server's code (`blocked`, `rate_limited`, …) or, for REST, its error code;
 * the SDK's own are `closed` (the client was closed) and `network` (a REST request that got no answer).
 */
export class ChatError extends Error {
  override name = "ChatError";
  constructor(
    readonly code: string,
    message: string,
    /** From `rate_limited`: how long to wait before the next try. */
    readonly retryAfterMs?: number,
    /** The HTTP status, for REST errors. */
    readonly status?: number,
    /** The server's request id, for REST errors. */
    readonly requestId?: string,
  ) {
    super(message);
  }
}
