/**
 * Per-user limits on REST writes and look-ups, counted by Workers Rate Limiting bindings
 * (`[[ratelimits]]` in wrangler.toml; they also run under `wrangler dev` and in the tests). The limit
 * and period of each are configured there; the period is repeated here because the binding answers
 * only `{ success }` and a refusal must say when to retry (test/routes/rate-limits.test.ts checks
 * the two agree). Room creation keeps its own daily limit in D1 (routes/rooms.ts).
 */
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "./env";
import { ApiError } from "./errors";
import { logError } from "./log";

/** The limited REST actions: the binding counting each, its period (s), and what is counted. */
export const REST_LIMITS = {
  dmCreate: { binding: "RL_DM_CREATE", period: 60, what: "conversations opened" },
  blocks: { binding: "RL_BLOCKS", period: 60, what: "blocks and unblocks" },
  mediaUpload: { binding: "RL_MEDIA_UPLOAD", period: 60, what: "media uploads" },
  presence: { binding: "RL_PRESENCE", period: 60, what: "presence look-ups" },
  search: { binding: "RL_SEARCH", period: 60, what: "searches" },
  moderation: { binding: "RL_MODERATION", period: 60, what: "moderation actions" },
} as const satisfies Record<string, { binding: keyof Env; period: 10 | 60; what: string }>;

/** One of {@link REST_LIMITS}. */
export type RestAction = keyof typeof REST_LIMITS;

/**
 * Middleware that takes one unit of the caller's budget for `action`, keyed by user id (so one
 * user's burst never refuses another, whatever their addresses), before the handler reads the body.
 * Refused: 429 `rate_limited` with `Retry-After` = the period, the longest a window can still run.
 * If the binding itself fails the request goes through (logged): the limit guards against abuse,
 * it must not become a way for the API to fail.
 */
export function rateLimit(action: RestAction) {
  const { binding, period, what } = REST_LIMITS[action];
  return createMiddleware<AppEnv>(async (c, next) => {
    const user = c.get("user");
    let success = true;
    try {
      ({ success } = await c.env[binding].limit({ key: user.id }));
    } catch (err) {
      logError("rate limit binding failed; request allowed", err, { binding, requestId: c.get("requestId") });
    }
    if (!success) {
      throw new ApiError({
        code: "rate_limited",
        message: `Too many ${what}; try again in ${period} s.`,
        details: { retryAfterMs: period * 1000 },
        headers: { "Retry-After": String(period) },
      });
    }
    await next();
  });
}
