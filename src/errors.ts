/**
 * One error type and one renderer: every error leaves the API as
 * `{ "error": { "code", "message", "requestId" } }`.
 */
import type { ContentfulStatusCode } from "hono/utils/http-status";

/** Error codes shared by REST responses and WebSocket `error` frames. */
export const ERROR_STATUS = {
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  blocked: 403,
  /** Moderation: banned from the room (refused upgrade; body has `until`). */
  banned: 403,
  not_found: 404,
  conflict: 409,
  too_large: 413,
  quota_exceeded: 413,
  unsupported_media_type: 415,
  range_not_satisfiable: 416,
  rate_limited: 429,
  internal: 500,
  misconfigured: 500,
  unavailable: 503,
} as const satisfies Record<string, ContentfulStatusCode>;

export type ErrorCode = keyof typeof ERROR_STATUS;

/** Thrown anywhere in a request; rendered by the app's one `onError`. */
export class ApiError extends Error {
  readonly code: ErrorCode;
  readonly status: ContentfulStatusCode;
  /** Extra fields merged into the error body (e.g. `quotaBytes`, `retryAfterMs`). */
  readonly details?: Record<string, unknown>;
  /** Extra response headers (e.g. `WWW-Authenticate`, `Retry-After`). */
  readonly headers?: Record<string, string>;

  constructor(opts: {
    code: ErrorCode;
    message: string;
    details?: Record<string, unknown>;
    headers?: Record<string, string>;
  }) {
    super(opts.message);
    this.name = "ApiError";
    this.code = opts.code;
    this.status = ERROR_STATUS[opts.code];
    this.details = opts.details;
    this.headers = opts.headers;
  }
}

/** The JSON body of every error response. */
export function errorBody(
  code: ErrorCode,
  message: string,
  requestId: string,
  details?: Record<string, unknown>,
) {
  return { error: { code, message, requestId, ...details } };
}

/** Builds an error Response outside Hono (e.g. from a Durable Object fetch). */
export function errorResponse(err: ApiError, requestId = crypto.randomUUID()): Response {
  return Response.json(errorBody(err.code, err.message, requestId, err.details), {
    status: err.status,
    headers: err.headers,
  });
}
