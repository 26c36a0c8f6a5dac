/**
 * Direct messages: the inbox socket (`GET /api/chat/ws`) and the REST view of the caller's
 * conversations. Every read goes to the caller's own Inbox Durable Object, which holds only the
 * caller's conversations: another user's conversation id simply does not exist there (404).
 */
import { createRoute, z } from "@hono/zod-openapi";
import { ApiError, errorBody } from "../errors";
import { locationFromRequest, recordLocation } from "../suggestions/location";
import { inboxStub } from "../objects/stubs";
import { forwardUpgrade, isUpgrade } from "../objects/upgrade";
import { bearerSecurity, createRouter, errorResponses } from "../openapi";
import { CONVERSATION_CURSOR_RE, UserId } from "../ids";
import { logError } from "../log";
import { DmMessage, PAGE_MAX } from "../protocol";
import { rateLimit } from "../rate-limits";
import { cursorKey, pageQuery, pageSchema, takePage } from "../pagination";
import { ftsQuery, parseSearchKey, SEARCH_QUERY_MAX } from "../objects/inbox/search";

const DmMessageSchema = DmMessage.openapi("DmMessage");

const ConversationSchema = z
  .object({
    id: z.string().openapi({ example: "dm_3f0a9c1e5b7d2a4c6e8f0a1b2c3d4e5f" }),
    peer: z.object({ id: z.string(), name: z.string() }),
    lastMessage: DmMessageSchema.nullable(),
    unread: z.number().int(),
    lastSeq: z.number().int(),
    readSeq: z.number().int(),
    peerReadSeq: z.number().int(),
    createdAt: z.number(),
    updatedAt: z.number(),
  })
  .openapi("Conversation");

const ConversationIdParam = z.object({
  conversationId: z.string().min(1).max(128).openapi({ param: { name: "conversationId", in: "path" } }),
});

export const dms = createRouter();

// The inbox socket is not a JSON route, so it is registered without OpenAPI (docs/dms.md describes it).
dms.get("/ws", async (c) => {
  if (!isUpgrade(c.req.raw)) {
    return c.json(
      errorBody("bad_request", "GET /api/chat/ws must be a WebSocket upgrade (Upgrade: websocket).", c.get("requestId")),
      426,
      { Upgrade: "websocket" },
    );
  }
  const user = c.get("user");
  // `?lat=&lon=` from the client, else the edge's estimate (`request.cf`).
  const coords = locationFromRequest(c.req.raw);
  if (coords) {
    // Suggestions only: never hold the upgrade for it, never fail it.
    c.executionCtx.waitUntil(
      recordLocation(c.env, user.id, coords).catch((err: unknown) =>
        logError("suggestions: recordLocation failed", err, { requestId: c.get("requestId"), userId: user.id }),
      ),
    );
  }
  return forwardUpgrade(inboxStub(c.env, user.id), c.req.raw, {
    userId: user.id,
    userName: user.name,
    protocol: c.get("wsProtocol"),
  });
});

dms.openapi(
  createRoute({
    method: "get",
    path: "/dms",
    tags: ["dms"],
    summary: "The caller's conversations, most recent first, with peer, last message and unread count",
    security: bearerSecurity,
    request: {
      query: z.object({
        limit: z.coerce.number().int().min(1).max(200).default(50),
        cursor: z
          .string()
          .regex(CONVERSATION_CURSOR_RE, "must be the nextCursor of a previous page")
          .optional(),
      }),
    },
    responses: {
      200: {
        description: "Conversations; `nextCursor` continues the list, null at the end",
        content: {
          "application/json": {
            schema: z.object({ conversations: z.array(ConversationSchema), nextCursor: z.string().nullable() }),
          },
        },
      },
      ...errorResponses(400, 401),
    },
  }),
  async (c) => {
    const user = c.get("user");
    const { limit, cursor } = c.req.valid("query");
    return c.json(await inboxStub(c.env, user.id).listConversations(limit, cursor), 200);
  },
);

dms.openapi(
  createRoute({
    method: "post",
    path: "/dms",
    tags: ["dms"],
    summary: "Create or return the conversation with a user (idempotent)",
    security: bearerSecurity,
    middleware: [rateLimit("dmCreate")] as const,
    request: {
      body: { content: { "application/json": { schema: z.object({ userId: UserId }) } }, required: true },
    },
    responses: {
      200: { description: "The existing conversation", content: { "application/json": { schema: ConversationSchema } } },
      201: { description: "Created", content: { "application/json": { schema: ConversationSchema } } },
      ...errorResponses(400, 401, 403, 404, 429),
    },
  }),
  async (c) => {
    const user = c.get("user");
    const { userId } = c.req.valid("json");
    const res = await inboxStub(c.env, user.id).openConversation(userId);
    if (!res.ok) throw new ApiError({ code: res.code, message: res.message });
    return res.created ? c.json(res.conversation, 201) : c.json(res.conversation, 200);
  },
);

dms.openapi(
  createRoute({
    method: "get",
    path: "/dms/search",
    tags: ["dms"],
    summary: "Full-text search over the caller's DMs, best match first (deleted messages never match; an edit matches by its new text)",
    security: bearerSecurity,
    middleware: [rateLimit("search")] as const,
    request: {
      query: z.object({
        q: z
          .string()
          .min(1)
          .max(SEARCH_QUERY_MAX)
          .openapi({ description: "Words to find, all of them; the last also as a prefix" }),
        conversationId: z.string().min(1).max(128).optional().openapi({ description: "Only in this conversation (404 unless it is yours)" }),
        ...pageQuery(20, 50),
      }),
    },
    responses: {
      200: {
        description: "Matching messages (the caller's copies), best first; `nextCursor` continues, null on the last page",
        content: { "application/json": { schema: pageSchema("messages", DmMessageSchema) } },
      },
      ...errorResponses(400, 401, 404, 429),
    },
  }),
  async (c) => {
    const user = c.get("user");
    const { q, conversationId, limit, cursor } = c.req.valid("query");
    const match = ftsQuery(q);
    if (match === null) throw new ApiError({ code: "bad_request", message: "q: nothing to search for (no letter or digit)" });
    const key = cursorKey(cursor, (k) => parseSearchKey(k) !== null);
    const hits = await inboxStub(c.env, user.id).searchMessages(match, limit, key === null ? null : parseSearchKey(key), conversationId);
    // Not 403: an id of someone else's conversation must reveal nothing, not even that it exists.
    if (!hits) throw new ApiError({ code: "not_found", message: "conversation not found" });
    const page = takePage(hits, limit, (h) => h.key);
    return c.json({ messages: page.items.map((h) => h.message), nextCursor: page.nextCursor }, 200);
  },
);

dms.openapi(
  createRoute({
    method: "get",
    path: "/dms/{conversationId}/messages",
    tags: ["dms"],
    summary: "History of one of the caller's conversations, newest first, by the caller's sequence numbers",
    security: bearerSecurity,
    request: {
      params: ConversationIdParam,
      query: z.object({
        before: z.coerce.number().int().min(1).optional(),
        limit: z.coerce.number().int().min(1).max(PAGE_MAX).default(50),
      }),
    },
    responses: {
      200: {
        description: "A page of messages; `nextBefore` continues the page, null at the start",
        content: {
          "application/json": {
            schema: z.object({ messages: z.array(DmMessageSchema), nextBefore: z.number().int().nullable() }),
          },
        },
      },
      ...errorResponses(400, 401, 404),
    },
  }),
  async (c) => {
    const user = c.get("user");
    const { conversationId } = c.req.valid("param");
    const { before, limit } = c.req.valid("query");
    const page = await inboxStub(c.env, user.id).history(conversationId, before, limit);
    // Not 403: an id of someone else's conversation must reveal nothing, not even that it exists.
    if (!page) throw new ApiError({ code: "not_found", message: "conversation not found" });
    return c.json(page, 200);
  },
);
