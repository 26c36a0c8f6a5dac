/** Shared OpenAPI pieces: the router factory with the one validation hook, and common schemas. */
import { OpenAPIHono, z } from "@hono/zod-openapi";
import type { Hook } from "@hono/zod-openapi";
import type { AppEnv } from "./env";
import { ApiError } from "./errors";

/** Error body every route documents. */
export const ErrorSchema = z
  .object({
    error: z.object({
      code: z.string().openapi({
        example: "bad_request",
        description:
          "One of: bad_request, unauthorized, forbidden, blocked, banned, not_found, conflict, too_large, quota_exceeded, unsupported_media_type, range_not_satisfiable, rate_limited, internal, misconfigured, unavailable. A room upgrade refused to a banned user is 403 `banned` with `until`. WebSocket `error` frames add the moderation refusals muted (with until), slow_mode (with retryAfterMs), frozen and filtered (docs/protocol.md).",
      }),
      message: z.string(),
      requestId: z.string(),
    }),
  })
  .openapi("Error");

/** Standard error responses to spread into a route's `responses`. */
export function errorResponses(...statuses: (400 | 401 | 403 | 404 | 409 | 413 | 415 | 416 | 429 | 503)[]) {
  const out: Record<number, { description: string; content: { "application/json": { schema: typeof ErrorSchema } } }> = {};
  for (const s of statuses) {
    out[s] = { description: `Error ${s}`, content: { "application/json": { schema: ErrorSchema } } };
  }
  return out;
}

// Validation failures become the one error shape, naming the first offending field.
const validationHook: Hook<unknown, AppEnv, string, unknown> = (result) => {
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue?.path?.length ? `${issue.path.join(".")}: ` : "";
    throw new ApiError({ code: "bad_request", message: `${where}${issue?.message ?? "invalid input"}` });
  }
};

/** A router for one resource, with validation errors rendered by the app's `onError`. */
export function createRouter() {
  return new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
}

/** Security requirement for routes that need a bearer token. */
export const bearerSecurity = [{ bearerAuth: [] }];
