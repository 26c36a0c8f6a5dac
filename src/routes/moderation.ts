/**
 * Moderation and private rooms, mounted at /api/chat/rooms beside `rooms.ts` (shared/DESIGN.md
 * "Moderation and private rooms"; docs/moderation.md). Every route authenticates (the app's
 * middleware), validates with zod, and hands the action to the room's Durable Object, which holds
 * roles, bans, mutes, pins, filter, reports and audit and decides every permission
 * (`Moderation.apply`). D1 is touched only for the directory: the room row (exists? name, category)
 * and the mirror of private-room membership. Writes take a unit of RL_MODERATION.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { and, eq } from "drizzle-orm";
import { db } from "../db/queries";
import { roomMembers, rooms as roomsTable } from "../db/schema";
import { USER_ID_RE } from "../ids";
import { MOD_PAGE_MAX, SANCTION_MAX_SEC, SLOW_MODE_MAX_SEC } from "../objects/chat-room/moderation";
import { FILTER_WORD_MAX, FILTER_WORDS_MAX } from "../objects/chat-room/filter";
import { roomStub } from "../objects/stubs";
import { bearerSecurity, createRouter, errorResponses } from "../openapi";
import { WsErrorCode } from "../protocol";
import { rateLimit } from "../rate-limits";
import { isWellFormed } from "../unicode";
import { moderate } from "./room-gate";
import { Category, requireRoom, RoomId } from "./rooms";

const UserId = z.string().regex(USER_ID_RE, "must be a user id");
const UserParam = UserId.openapi({ param: { name: "userId", in: "path" }, example: "bob" });
const MessageParam = z.string().min(1).max(64).openapi({ param: { name: "messageId", in: "path" } });
const Reason = z.string().trim().min(1).max(500).refine(isWellFormed, "reason has a lone surrogate");
const Ok = z.object({ ok: z.literal(true) }).openapi("Ok");
const ok = { 200: { description: "Done (idempotent)", content: { "application/json": { schema: Ok } } } };
const limited = rateLimit("moderation");
const json = <T extends z.ZodType>(schema: T) => ({ body: { required: true, content: { "application/json": { schema } } } });

const Sanction = z.object({ userId: z.string(), until: z.number().nullable(), reason: z.string().nullable(), by: z.string(), at: z.number() }).openapi("Sanction");

/** The /api/chat/rooms moderation routes. */
export const moderation = createRouter();

// The codes of WebSocket `error` frames, moderation refusals included (banned, muted, slow_mode,
// frozen, filtered), as a schema of the OpenAPI document for clients generated from it.
moderation.openAPIRegistry.register("WsErrorCode", z.enum(WsErrorCode.options).openapi({ description: "Codes of WebSocket `error` frames (docs/protocol.md)" }));

// ---------------------------------------------------------------- settings and deletion

const Settings = z
  .object({
    name: z.string().trim().min(1).max(64).refine(isWellFormed, "name has a lone surrogate").optional(),
    description: z.string().trim().max(500).refine(isWellFormed, "description has a lone surrogate").optional(),
    category: Category.optional(),
    slowModeSec: z.number().int().min(0).max(SLOW_MODE_MAX_SEC).optional(),
    frozen: z.boolean().optional(),
  })
  .strict()
  .refine((b) => Object.keys(b).length > 0, "nothing to change")
  .openapi("RoomSettings");

moderation.openapi(
  createRoute({
    method: "patch",
    path: "/{roomId}",
    tags: ["moderation"],
    summary: "Room settings: name, description, category (owner, admin); slowModeSec, frozen (moderators)",
    security: bearerSecurity,
    middleware: limited,
    request: { params: z.object({ roomId: RoomId }), ...json(Settings) },
    responses: {
      200: { description: "The settings now", content: { "application/json": { schema: z.object({ settings: z.object({ visibility: z.string(), slowModeSec: z.number(), frozen: z.boolean() }) }) } } },
      ...errorResponses(400, 401, 403, 404, 429),
    },
  }),
  async (c) => {
    const { roomId } = c.req.valid("param");
    const body = c.req.valid("json");
    const room = await requireRoom(c.env, roomId);
    const data = (await moderate(c.env, room, c.get("user"), { type: "settings", ...body })) as { settings: { visibility: string; slowModeSec: number; frozen: boolean } };
    if (body.name !== undefined || body.description !== undefined || body.category !== undefined) {
      await db(c.env)
        .update(roomsTable)
        .set({ ...(body.name !== undefined ? { name: body.name } : {}), ...(body.description !== undefined ? { description: body.description } : {}), ...(body.category !== undefined ? { category: body.category } : {}) })
        .where(eq(roomsTable.id, roomId));
    }
    return c.json(data, 200);
  },
);

moderation.openapi(
  createRoute({
    method: "delete",
    path: "/{roomId}",
    tags: ["moderation"],
    summary: "Delete a room (owner, admin): every socket closed, its log and its directory row gone",
    security: bearerSecurity,
    middleware: limited,
    request: { params: z.object({ roomId: RoomId }) },
    responses: { 204: { description: "Deleted" }, ...errorResponses(400, 401, 403, 404, 429) },
  }),
  async (c) => {
    const { roomId } = c.req.valid("param");
    const user = c.get("user");
    const room = await requireRoom(c.env, roomId);
    await moderate(c.env, room, user, { type: "delete_room" });
    // The directory first: from here no route finds the room, so no socket can join while the object empties.
    await c.env.DB.batch([
      c.env.DB.prepare("DELETE FROM room_members WHERE room_id = ?1").bind(roomId),
      // Joined lists must not show a later room of the same name to the old room's joiners.
      c.env.DB.prepare("DELETE FROM room_joins WHERE room_id = ?1").bind(roomId),
      c.env.DB.prepare("DELETE FROM rooms WHERE id = ?1").bind(roomId),
    ]);
    await roomStub(c.env, roomId).destroy(user.id);
    return c.body(null, 204);
  },
);

// ---------------------------------------------------------------- roles

for (const on of [true, false]) {
  moderation.openapi(
    createRoute({
      method: on ? "put" : "delete",
      path: "/{roomId}/moderators/{userId}",
      tags: ["moderation"],
      summary: on ? "Name a moderator (owner, admin)" : "Remove a moderator (owner, admin)",
      security: bearerSecurity,
      middleware: limited,
      request: { params: z.object({ roomId: RoomId, userId: UserParam }) },
      responses: { ...ok, ...errorResponses(400, 401, 403, 404, 429) },
    }),
    async (c) => {
      const { roomId, userId } = c.req.valid("param");
      const room = await requireRoom(c.env, roomId);
      await moderate(c.env, room, c.get("user"), { type: "moderator", userId, on });
      // A private room's moderator is a member (the object added them): mirror it.
      if (on && room.visibility === "private") await mirrorMember(c.env, roomId, userId, true);
      return c.json({ ok: true as const }, 200);
    },
  );
}

// ---------------------------------------------------------------- bans, mutes, kicks

moderation.openapi(
  createRoute({
    method: "put",
    path: "/{roomId}/bans/{userId}",
    tags: ["moderation"],
    summary: "Ban a user (moderators): their sockets close at once; upgrades and joins are refused with `banned` until it ends",
    security: bearerSecurity,
    middleware: limited,
    request: {
      params: z.object({ roomId: RoomId, userId: UserParam }),
      ...json(z.object({ reason: Reason.optional(), durationSec: z.number().int().min(1).max(SANCTION_MAX_SEC).optional().openapi({ description: "Absent: until lifted" }) }).strict()),
    },
    responses: { 200: { description: "The ban", content: { "application/json": { schema: z.object({ ban: Sanction }) } } }, ...errorResponses(400, 401, 403, 404, 429) },
  }),
  async (c) => {
    const { roomId, userId } = c.req.valid("param");
    const room = await requireRoom(c.env, roomId);
    const data = (await moderate(c.env, room, c.get("user"), { type: "ban", userId, ...c.req.valid("json") })) as { ban: z.infer<typeof Sanction> };
    return c.json(data, 200);
  },
);

moderation.openapi(
  createRoute({
    method: "delete",
    path: "/{roomId}/bans/{userId}",
    tags: ["moderation"],
    summary: "Lift a ban (moderators)",
    security: bearerSecurity,
    middleware: limited,
    request: { params: z.object({ roomId: RoomId, userId: UserParam }) },
    responses: { ...ok, ...errorResponses(400, 401, 403, 404, 429) },
  }),
  async (c) => {
    const { roomId, userId } = c.req.valid("param");
    await moderate(c.env, await requireRoom(c.env, roomId), c.get("user"), { type: "unban", userId });
    return c.json({ ok: true as const }, 200);
  },
);

moderation.openapi(
  createRoute({
    method: "get",
    path: "/{roomId}/bans",
    tags: ["moderation"],
    summary: "The bans in force (moderators)",
    security: bearerSecurity,
    request: { params: z.object({ roomId: RoomId }) },
    responses: { 200: { description: "Bans", content: { "application/json": { schema: z.object({ bans: z.array(Sanction) }) } } }, ...errorResponses(400, 401, 403, 404) },
  }),
  async (c) => {
    const { roomId } = c.req.valid("param");
    const data = (await moderate(c.env, await requireRoom(c.env, roomId), c.get("user"), { type: "bans" })) as { bans: z.infer<typeof Sanction>[] };
    return c.json(data, 200);
  },
);

moderation.openapi(
  createRoute({
    method: "put",
    path: "/{roomId}/mutes/{userId}",
    tags: ["moderation"],
    summary: "Mute a user for a time (moderators): their sends are refused with `muted` and `until`; it ends by itself",
    security: bearerSecurity,
    middleware: limited,
    request: {
      params: z.object({ roomId: RoomId, userId: UserParam }),
      ...json(z.object({ durationSec: z.number().int().min(1).max(SANCTION_MAX_SEC), reason: Reason.optional() }).strict()),
    },
    responses: { 200: { description: "The mute", content: { "application/json": { schema: z.object({ mute: Sanction }) } } }, ...errorResponses(400, 401, 403, 404, 429) },
  }),
  async (c) => {
    const { roomId, userId } = c.req.valid("param");
    const data = (await moderate(c.env, await requireRoom(c.env, roomId), c.get("user"), { type: "mute", userId, ...c.req.valid("json") })) as { mute: z.infer<typeof Sanction> };
    return c.json(data, 200);
  },
);

moderation.openapi(
  createRoute({
    method: "delete",
    path: "/{roomId}/mutes/{userId}",
    tags: ["moderation"],
    summary: "Lift a mute (moderators)",
    security: bearerSecurity,
    middleware: limited,
    request: { params: z.object({ roomId: RoomId, userId: UserParam }) },
    responses: { ...ok, ...errorResponses(400, 401, 403, 404, 429) },
  }),
  async (c) => {
    const { roomId, userId } = c.req.valid("param");
    await moderate(c.env, await requireRoom(c.env, roomId), c.get("user"), { type: "unmute", userId });
    return c.json({ ok: true as const }, 200);
  },
);

moderation.openapi(
  createRoute({
    method: "post",
    path: "/{roomId}/kicks",
    tags: ["moderation"],
    summary: "Kick a user (moderators): an `error` frame, then their sockets close; they may come back",
    security: bearerSecurity,
    middleware: limited,
    request: { params: z.object({ roomId: RoomId }), ...json(z.object({ userId: UserId, reason: Reason.optional() }).strict()) },
    responses: { 200: { description: "Sockets closed", content: { "application/json": { schema: z.object({ closed: z.number().int() }) } } }, ...errorResponses(400, 401, 403, 404, 429) },
  }),
  async (c) => {
    const { roomId } = c.req.valid("param");
    const data = (await moderate(c.env, await requireRoom(c.env, roomId), c.get("user"), { type: "kick", ...c.req.valid("json") })) as { closed: number };
    return c.json(data, 200);
  },
);

// ---------------------------------------------------------------- pins and the word filter

for (const on of [true, false]) {
  moderation.openapi(
    createRoute({
      method: on ? "put" : "delete",
      path: "/{roomId}/pins/{messageId}",
      tags: ["moderation"],
      summary: on ? "Pin a message (moderators); pins are in `room_state.pinned`" : "Unpin a message (moderators)",
      security: bearerSecurity,
      middleware: limited,
      request: { params: z.object({ roomId: RoomId, messageId: MessageParam }) },
      responses: { ...ok, ...errorResponses(400, 401, 403, 404, 409, 429) },
    }),
    async (c) => {
      const { roomId, messageId } = c.req.valid("param");
      await moderate(c.env, await requireRoom(c.env, roomId), c.get("user"), { type: "pin", messageId, on });
      return c.json({ ok: true as const }, 200);
    },
  );
}

moderation.openapi(
  createRoute({
    method: "put",
    path: "/{roomId}/filters",
    tags: ["moderation"],
    summary: "Replace the room's word list (moderators), applied on top of the deployment's FILTER_WORDS",
    security: bearerSecurity,
    middleware: limited,
    request: { params: z.object({ roomId: RoomId }), ...json(z.object({ words: z.array(z.string().min(1).max(FILTER_WORD_MAX)).max(FILTER_WORDS_MAX) }).strict()) },
    responses: {
      200: { description: "The list as stored (normalised, sorted)", content: { "application/json": { schema: z.object({ words: z.array(z.string()) }) } } },
      ...errorResponses(400, 401, 403, 404, 429),
    },
  }),
  async (c) => {
    const { roomId } = c.req.valid("param");
    const data = (await moderate(c.env, await requireRoom(c.env, roomId), c.get("user"), { type: "filter", words: c.req.valid("json").words })) as { words: string[] };
    return c.json(data, 200);
  },
);

// ---------------------------------------------------------------- reports and audit

moderation.openapi(
  createRoute({
    method: "post",
    path: "/{roomId}/messages/{messageId}/reports",
    tags: ["moderation"],
    summary: "Report a message (any reader of the room; once per message per user)",
    security: bearerSecurity,
    middleware: limited,
    request: { params: z.object({ roomId: RoomId, messageId: MessageParam }), ...json(z.object({ reason: Reason }).strict()) },
    responses: { 201: { description: "Reported", content: { "application/json": { schema: z.object({ id: z.number().int() }) } } }, ...errorResponses(400, 401, 404, 409, 429) },
  }),
  async (c) => {
    const { roomId, messageId } = c.req.valid("param");
    const data = (await moderate(c.env, await requireRoom(c.env, roomId), c.get("user"), { type: "report", messageId, reason: c.req.valid("json").reason })) as { id: number };
    return c.json(data, 201);
  },
);

const Before = z.coerce.number().int().min(1).optional().openapi({ description: "`nextBefore` of the previous page" });

moderation.openapi(
  createRoute({
    method: "get",
    path: "/{roomId}/reports",
    tags: ["moderation"],
    summary: "The report queue, newest first (moderators)",
    security: bearerSecurity,
    request: {
      params: z.object({ roomId: RoomId }),
      query: z.object({ status: z.enum(["open", "resolved", "all"]).default("open"), before: Before, limit: z.coerce.number().int().min(1).max(MOD_PAGE_MAX).default(50) }),
    },
    responses: { 200: { description: "Reports", content: { "application/json": { schema: z.object({ reports: z.array(z.any()), nextBefore: z.number().nullable() }) } } }, ...errorResponses(400, 401, 403, 404) },
  }),
  async (c) => {
    const { roomId } = c.req.valid("param");
    const data = (await moderate(c.env, await requireRoom(c.env, roomId), c.get("user"), { type: "reports", ...c.req.valid("query") })) as { reports: unknown[]; nextBefore: number | null };
    return c.json(data, 200);
  },
);

moderation.openapi(
  createRoute({
    method: "post",
    path: "/{roomId}/reports/{reportId}/resolve",
    tags: ["moderation"],
    summary: "Resolve a report (moderators), with what was done",
    security: bearerSecurity,
    middleware: limited,
    request: {
      params: z.object({ roomId: RoomId, reportId: z.coerce.number().int().min(1).openapi({ param: { name: "reportId", in: "path" } }) }),
      ...json(z.object({ resolution: Reason }).strict()),
    },
    responses: { ...ok, ...errorResponses(400, 401, 403, 404, 429) },
  }),
  async (c) => {
    const { roomId, reportId } = c.req.valid("param");
    await moderate(c.env, await requireRoom(c.env, roomId), c.get("user"), { type: "resolve_report", reportId, resolution: c.req.valid("json").resolution });
    return c.json({ ok: true as const }, 200);
  },
);

const AuditEntry = z
  .object({ id: z.number().int(), at: z.number(), actor: z.string(), action: z.string(), target: z.string().nullable(), reason: z.string().nullable(), detail: z.record(z.string(), z.unknown()).nullable() })
  .openapi("AuditEntry");

moderation.openapi(
  createRoute({
    method: "get",
    path: "/{roomId}/audit",
    tags: ["moderation"],
    summary: "The audit log, newest first (moderators): who did what to whom, when and why",
    security: bearerSecurity,
    request: { params: z.object({ roomId: RoomId }), query: z.object({ before: Before, limit: z.coerce.number().int().min(1).max(MOD_PAGE_MAX).default(50) }) },
    responses: { 200: { description: "Entries", content: { "application/json": { schema: z.object({ entries: z.array(AuditEntry), nextBefore: z.number().nullable() }) } } }, ...errorResponses(400, 401, 403, 404) },
  }),
  async (c) => {
    const { roomId } = c.req.valid("param");
    const data = (await moderate(c.env, await requireRoom(c.env, roomId), c.get("user"), { type: "audit", ...c.req.valid("query") })) as { entries: z.infer<typeof AuditEntry>[]; nextBefore: number | null };
    return c.json(data, 200);
  },
);

// ---------------------------------------------------------------- members of private rooms

for (const on of [true, false]) {
  moderation.openapi(
    createRoute({
      method: on ? "put" : "delete",
      path: "/{roomId}/members/{userId}",
      tags: ["moderation"],
      summary: on ? "Add a member to a private room (owner, moderators)" : "Remove a member (owner, moderators) or leave (the member themself); their sockets close",
      security: bearerSecurity,
      middleware: limited,
      request: { params: z.object({ roomId: RoomId, userId: UserParam }) },
      responses: { ...ok, ...errorResponses(400, 401, 403, 404, 429) },
    }),
    async (c) => {
      const { roomId, userId } = c.req.valid("param");
      const room = await requireRoom(c.env, roomId);
      await moderate(c.env, room, c.get("user"), { type: "member", userId, on });
      await mirrorMember(c.env, roomId, userId, on);
      return c.json({ ok: true as const }, 200);
    },
  );
}

moderation.openapi(
  createRoute({
    method: "get",
    path: "/{roomId}/members",
    tags: ["moderation"],
    summary: "The members of a private room (its members)",
    security: bearerSecurity,
    request: { params: z.object({ roomId: RoomId }) },
    responses: {
      200: { description: "Members", content: { "application/json": { schema: z.object({ members: z.array(z.object({ userId: z.string(), addedAt: z.number(), role: z.string() })) }) } } },
      ...errorResponses(400, 401, 404),
    },
  }),
  async (c) => {
    const { roomId } = c.req.valid("param");
    const data = (await moderate(c.env, await requireRoom(c.env, roomId), c.get("user"), { type: "members" })) as { members: { userId: string; addedAt: number; role: string }[] };
    return c.json(data, 200);
  },
);

/**
 * Mirrors a membership change the room's object accepted into D1 (for the directory's listing).
 * Idempotent: a retry of the same request repairs a mirror write that failed.
 */
async function mirrorMember(env: Env, roomId: string, userId: string, on: boolean): Promise<void> {
  if (on) await db(env).insert(roomMembers).values({ roomId, userId, addedAt: Date.now() }).onConflictDoNothing();
  else await db(env).delete(roomMembers).where(and(eq(roomMembers.roomId, roomId), eq(roomMembers.userId, userId)));
}
