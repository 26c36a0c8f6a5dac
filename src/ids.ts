/**
 * The shapes of the ids that cross the API: user ids and DM conversation ids. Written once here and
 * imported by the protocol, the routes, auth and the Durable Objects, so a change of shape is one
 * edit. No Cloudflare imports: the client SDK and the tests use it too.
 *
 * Built on plain `zod`, so these schemas may be created before `@hono/zod-openapi` patches
 * `.openapi()` onto zod's prototype (zod 4 copies methods onto each schema when it is made): route
 * files attach OpenAPI details with zod's own `.meta({ ... })`, which the generator also reads.
 */
import { z } from "zod";

/** User ids are a token's `sub`: printable, no whitespace (so a newline can separate two), bounded. */
export const USER_ID_RE = /^[A-Za-z0-9_.:@|+-]{1,128}$/;

/** A user id (the token's `sub`); the one schema for user ids in bodies, params and frames. */
export const UserId = z.string().regex(USER_ID_RE, "must be a user id");
/** A user id, once validated. */
export type UserId = z.infer<typeof UserId>;

/**
 * The body of a DM conversation id without anchors: `dm_` and 32 hex characters (the truncated
 * sha-256 of the pair, see `conversationIdFor`). Composed into the list cursor, so it has no `^`/`$`.
 */
export const CONVERSATION_ID_PATTERN = "dm_[0-9a-f]{32}";

/** Shape check for a conversation id (a cheap guard before any storage lookup). */
export const CONVERSATION_ID_RE = new RegExp(`^${CONVERSATION_ID_PATTERN}$`);

/** A DM conversation id. */
export const ConversationId = z.string().regex(CONVERSATION_ID_RE, "must be a conversation id");

/**
 * The cursor of `GET /api/chat/dms`: `<last_at>.<conversation id>` of the last row of a page.
 * Groups: 1 = the time, 2 = the conversation id.
 */
export const CONVERSATION_CURSOR_RE = new RegExp(`^(\\d{1,16})\\.(${CONVERSATION_ID_PATTERN})$`);
