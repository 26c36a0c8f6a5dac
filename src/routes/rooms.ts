/**
 * Public rooms, mounted at /api/chat/rooms: the directory in D1 (list, categories, create), the
 * history answered by each room's Durable Object, and the room WebSocket forwarded to it.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { and, asc, count, eq, gt, sql, type SQL } from "drizzle-orm";
import { db } from "../db/queries";
import { roomJoins, rooms as roomsTable } from "../db/schema";
import { numVar } from "../env";
import { ApiError, errorBody } from "../errors";
import { cellOf } from "../suggestions/geo";
import { isWellFormed } from "../unicode";
import { roomStub } from "../objects/stubs";
import { forwardUpgrade, isUpgrade } from "../objects/upgrade";
import { bearerSecurity, createRouter, errorResponses } from "../openapi";
import { cursorKey, encodeCursor, pageQuery, pageSchema, takePage } from "../pagination";
import { PAGE_MAX, RoomMessage, RoomRoles, RoomSettings } from "../protocol";
import { rateLimit } from "../rate-limits";
import { SEARCH_QUERY_MAX } from "../objects/chat-room/search";
import type { AuthUser } from "../env";
import { roomMembers } from "../db/schema";
import { assertCanRead, moderate, noSuchRoom } from "./room-gate";

/** Room categories a room may be created in; `/categories` lists every one, with its room count. */
export const ROOM_CATEGORIES = ["general", "local", "tech", "science", "gaming", "sports", "music", "arts", "news", "other"] as const;
/** One of {@link ROOM_CATEGORIES}. */
export type RoomCategory = (typeof ROOM_CATEGORIES)[number];

/** Room ids are slugs: lowercase letters, digits and inner hyphens. */
export const ROOM_ID_RE = /^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/;
const SLUG_MAX = 48;
/** Slugs that would read as route words. */
const RESERVED_SLUGS = new Set(["suggestions", "categories", "new", "ws", "messages"]);
const DAY_MS = 24 * 3_600_000;

/** The URL-safe room id derived from a name: "Café Racers!" → "cafe-racers"; "room" when nothing is left. */
export function slugify(name: string): string {
  const s = name
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+/, "")
    .slice(0, SLUG_MAX)
    .replace(/-+$/, "");
  return s || "room";
}

export const Category = z.enum(ROOM_CATEGORIES).openapi({ example: "tech" });
export const RoomId = z.string().regex(ROOM_ID_RE, "must be a room id (a lowercase slug)").openapi({ param: { name: "roomId", in: "path" }, example: "general" });

const Room = z
  .object({
    id: z.string(),
    name: z.string(),
    category: z.string(),
    description: z.string(),
    lat: z.number().nullable(),
    lon: z.number().nullable(),
    createdBy: z.string(),
    createdAt: z.number(),
    onlineCount: z.number().int().openapi({ description: "Distinct users in the room (updated by the room, a few seconds behind)" }),
    messageCount: z.number().int(),
    lastMessageAt: z.number().nullable(),
    visibility: z.enum(["public", "private"]).openapi({ description: "`private`: listed, readable and joinable by its members only" }),
  })
  .openapi("Room");
type Room = z.infer<typeof Room>;

/** A room in the caller's joined list: the room, with the caller's read state there. */
const JoinedRoom = Room.extend({
  unread: z.number().int().nullable().openapi({ description: "Messages after the caller's read position, not by the caller, not deleted (null if the room did not answer)" }),
  mentions: z.number().int().nullable().openapi({ description: "Of the unread messages, those that mention the caller" }),
  readSeq: z.number().int().nullable().openapi({ description: "The caller's read position (set by `mark_read` on the room socket)" }),
}).openapi("JoinedRoom");

/** Most rooms of one `joined=true` page: each is one call to its room's Durable Object. */
const JOINED_PAGE_MAX = 50;
const RoomInfo = Room.extend({ roles: RoomRoles, settings: RoomSettings }).openapi("RoomInfo");
type RoomInfo = z.infer<typeof RoomInfo>;

/**
 * Refuses half of a surrogate pair (a JSON `"\ud800"`, or a client that cut a string inside an emoji):
 * D1 stores it as U+FFFD bytes, so the room would read back other than the 201 answered.
 */
const wellFormed = (field: string) => [isWellFormed, `${field} has a lone surrogate (half of an emoji or other character)`] as const;

const CreateRoom = z
  .object({
    name: z
      .string()
      .trim()
      .min(1, "name is required")
      .max(64, "name is longer than 64 characters")
      .refine(...wellFormed("name")),
    category: Category,
    description: z
      .string()
      .trim()
      .max(500, "description is longer than 500 characters")
      .refine(...wellFormed("description"))
      .default(""),
    lat: z.number().min(-90).max(90).optional(),
    lon: z.number().min(-180).max(180).optional(),
    visibility: z.enum(["public", "private"]).default("public"),
  })
  .refine((b) => (b.lat === undefined) === (b.lon === undefined), { message: "lat and lon go together", path: ["lat"] })
  .openapi("CreateRoom");

const roomColumns = {
  id: roomsTable.id,
  name: roomsTable.name,
  category: roomsTable.category,
  description: roomsTable.description,
  lat: roomsTable.lat,
  lon: roomsTable.lon,
  createdBy: roomsTable.createdBy,
  createdAt: roomsTable.createdAt,
  onlineCount: roomsTable.onlineCount,
  messageCount: roomsTable.messageCount,
  lastMessageAt: roomsTable.lastMessageAt,
  visibility: roomsTable.visibility,
};

/** Rooms `user` may see: public ones, and private ones they are a member of (every room for an admin). */
function visibleTo(user: AuthUser): SQL | undefined {
  if (user.admin) return undefined;
  return sql`(${roomsTable.visibility} = 'public' OR ${roomsTable.id} IN (SELECT ${roomMembers.roomId} FROM ${roomMembers} WHERE ${roomMembers.userId} = ${user.id}))`;
}

/** The room, or a 404. */
export async function requireRoom(env: Env, roomId: string): Promise<Room> {
  const room = await db(env).select(roomColumns).from(roomsTable).where(eq(roomsTable.id, roomId)).get();
  if (!room) throw noSuchRoom(roomId);
  return room;
}

/** The room if `user` may read it; else the same 404 as a room that does not exist (room-gate.ts). */
export async function requireReadableRoom(env: Env, roomId: string, user: AuthUser): Promise<Room> {
  const room = await requireRoom(env, roomId);
  await assertCanRead(env, room, user);
  return room;
}

/** The /api/chat/rooms router: list, categories, create, one room, history, and the room socket. */
export const rooms = createRouter();

rooms.openapi(
  createRoute({
    method: "get",
    path: "/",
    tags: ["rooms"],
    summary: "Rooms, filtered by category and name, in id order, cursor-paginated, with their online count",
    security: bearerSecurity,
    request: {
      query: z.object({
        category: Category.optional(),
        q: z.string().trim().min(1).max(100).optional().openapi({ description: "Case-insensitive substring of the name" }),
        joined: z.enum(["true", "false"]).optional().openapi({
          description: `\`true\`: only rooms the caller joined, each with \`unread\`, \`mentions\` and \`readSeq\` (at most ${JOINED_PAGE_MAX} per page)`,
        }),
        ...pageQuery(20, PAGE_MAX),
      }),
    },
    responses: {
      200: {
        description: "A page of rooms (with `joined=true`, each with the caller's unread and mention counts)",
        content: { "application/json": { schema: pageSchema("rooms", z.union([JoinedRoom, Room])) } },
      },
      ...errorResponses(400, 401),
    },
  }),
  async (c) => {
    const { category, q, cursor, joined, limit: asked } = c.req.valid("query");
    const limit = joined === "true" ? Math.min(asked, JOINED_PAGE_MAX) : asked;
    const where: SQL[] = [];
    const visible = visibleTo(c.get("user"));
    if (visible) where.push(visible);
    if (category) where.push(eq(roomsTable.category, category));
    if (q) {
      const pattern = `%${q.replace(/[\\%_]/g, (ch) => `\\${ch}`)}%`;
      where.push(sql`${roomsTable.name} LIKE ${pattern} ESCAPE '\\'`);
    }
    const after = cursorKey(cursor, (id) => ROOM_ID_RE.test(id));
    if (after !== null) where.push(gt(roomsTable.id, after));
    if (joined === "true") {
      // The rooms the caller joined (D1 `room_joins`, written by each room on a user's first join),
      // then each room's own count of what the caller has not read (its Durable Object's storage).
      const user = c.get("user");
      const rows = await db(c.env)
        .select(roomColumns)
        .from(roomJoins)
        .innerJoin(roomsTable, eq(roomsTable.id, roomJoins.roomId))
        .where(and(eq(roomJoins.userId, user.id), ...where))
        .orderBy(asc(roomsTable.id))
        .limit(limit + 1);
      const { items, nextCursor } = takePage(rows, limit, (room) => room.id);
      const counts = await Promise.allSettled(items.map((room) => roomStub(c.env, room.id).readSummary(user.id)));
      const out = items.map((room, i) => {
        const r = counts[i];
        const sum = r.status === "fulfilled" ? r.value : null;
        return { ...room, unread: sum?.unread ?? null, mentions: sum?.mentions ?? null, readSeq: sum?.readSeq ?? null };
      });
      return c.json({ rooms: out, nextCursor }, 200);
    }
    const rows = await db(c.env)
      .select(roomColumns)
      .from(roomsTable)
      .where(where.length ? and(...where) : undefined)
      .orderBy(asc(roomsTable.id))
      .limit(limit + 1);
    const { items, nextCursor } = takePage(rows, limit, (room) => room.id);
    return c.json({ rooms: items, nextCursor }, 200);
  },
);

rooms.openapi(
  createRoute({
    method: "get",
    path: "/categories",
    tags: ["rooms"],
    summary: "Every room category with its number of rooms",
    security: bearerSecurity,
    responses: {
      200: {
        description: "Categories",
        content: {
          "application/json": {
            schema: z.object({ categories: z.array(z.object({ category: z.string(), count: z.number().int() })) }),
          },
        },
      },
      ...errorResponses(401),
    },
  }),
  async (c) => {
    const rows = await db(c.env)
      .select({ category: roomsTable.category, count: count() })
      .from(roomsTable)
      .where(visibleTo(c.get("user")))
      .groupBy(roomsTable.category);
    const counts = new Map(rows.map((r) => [r.category, r.count]));
    return c.json({ categories: ROOM_CATEGORIES.map((category) => ({ category, count: counts.get(category) ?? 0 })) }, 200);
  },
);

rooms.openapi(
  createRoute({
    method: "post",
    path: "/",
    tags: ["rooms"],
    summary: "Create a room; its id is a unique slug of the name",
    security: bearerSecurity,
    request: { body: { required: true, content: { "application/json": { schema: CreateRoom } } } },
    responses: {
      201: { description: "The new room", content: { "application/json": { schema: Room } } },
      ...errorResponses(400, 401, 429),
    },
  }),
  async (c) => {
    const body = c.req.valid("json");
    const user = c.get("user");
    const limit = numVar(c.env.ROOM_CREATE_LIMIT_PER_DAY, 20);
    const now = Date.now();
    const base = slugify(body.name);
    const lat = body.lat ?? null;
    const lon = body.lon ?? null;
    const cell = lat !== null && lon !== null ? cellOf(lat, lon) : null;

    const taken = new Set(
      (
        await c.env.DB.prepare("SELECT id FROM rooms WHERE id = ?1 OR id LIKE ?2")
          .bind(base, `${base}-%`)
          .all<{ id: string }>()
      ).results.map((r) => r.id),
    );
    let id = base;
    for (let n = 2; taken.has(id) || RESERVED_SLUGS.has(id); n++) id = `${base}-${n}`;
    // A private room's id has a random suffix: were it the plain slug, a public room created later
    // under the same name would be given `name-2`, telling its creator that a hidden room exists.
    if (body.visibility === "private") id = `${base.slice(0, SLUG_MAX - 7)}-${crypto.randomUUID().slice(0, 6)}`;

    for (let attempt = 0; attempt < 4; attempt++) {
      // One statement checks the daily limit and inserts, so concurrent creates cannot overshoot it.
      const res = await c.env.DB.prepare(
        `INSERT INTO rooms (id, name, category, description, lat, lon, cell, created_by, created_at, visibility)
         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?12
         WHERE (SELECT count(*) FROM rooms WHERE created_by = ?8 AND created_at > ?10) < ?11
         ON CONFLICT (id) DO NOTHING`,
      )
        .bind(id, body.name, body.category, body.description, lat, lon, cell, user.id, now, now - DAY_MS, limit, body.visibility)
        .run();
      if (res.meta.changes === 1) {
        // The room's object is told its owner (and visibility) before anyone can learn the id; if
        // that fails the directory row goes too, so no room exists without an owner.
        try {
          await roomStub(c.env, id).initRoom(user.id, body.visibility);
          if (body.visibility === "private") {
            await db(c.env).insert(roomMembers).values({ roomId: id, userId: user.id, addedAt: now }).onConflictDoNothing();
          }
        } catch (err) {
          await c.env.DB.prepare("DELETE FROM rooms WHERE id = ?1").bind(id).run();
          throw err;
        }
        const room: Room = {
          id,
          name: body.name,
          category: body.category,
          description: body.description,
          lat,
          lon,
          createdBy: user.id,
          createdAt: now,
          onlineCount: 0,
          messageCount: 0,
          lastMessageAt: null,
          visibility: body.visibility,
        };
        return c.json(room, 201);
      }
      const recent = await c.env.DB.prepare(
        "SELECT count(*) AS n, min(created_at) AS oldest FROM rooms WHERE created_by = ?1 AND created_at > ?2",
      )
        .bind(user.id, now - DAY_MS)
        .first<{ n: number; oldest: number | null }>();
      if (recent && recent.n >= limit) {
        const retryAfterMs = Math.max(1, (recent.oldest ?? now) + DAY_MS - now);
        throw new ApiError({
          code: "rate_limited",
          message: `At most ${limit} rooms per user per day.`,
          details: { retryAfterMs },
          headers: { "Retry-After": String(Math.ceil(retryAfterMs / 1000)) },
        });
      }
      // Someone took the slug meanwhile: try a random suffix.
      id = `${base.slice(0, SLUG_MAX - 7)}-${crypto.randomUUID().slice(0, 6)}`;
    }
    throw new ApiError({ code: "conflict", message: "Could not find a free room id; try another name." });
  },
);

rooms.openapi(
  createRoute({
    method: "get",
    path: "/{roomId}",
    tags: ["rooms"],
    summary: "One room, with its roles and moderation settings",
    security: bearerSecurity,
    request: { params: z.object({ roomId: RoomId }) },
    responses: {
      200: { description: "The room", content: { "application/json": { schema: RoomInfo } } },
      ...errorResponses(400, 401, 404),
    },
  }),
  async (c) => {
    const user = c.get("user");
    const room = await requireReadableRoom(c.env, c.req.valid("param").roomId, user);
    const { roles, settings } = (await moderate(c.env, room, user, { type: "info" })) as Pick<RoomInfo, "roles" | "settings">;
    return c.json({ ...room, roles, settings }, 200);
  },
);

rooms.openapi(
  createRoute({
    method: "get",
    path: "/{roomId}/messages",
    tags: ["rooms"],
    summary: "Room history, newest first; page older with `before` = the previous page's `nextBefore`",
    security: bearerSecurity,
    request: {
      params: z.object({ roomId: RoomId }),
      query: z.object({
        before: z.coerce.number().int().min(1).optional().openapi({ description: "Only messages with a smaller seq" }),
        limit: z.coerce.number().int().min(1).max(PAGE_MAX).default(50),
      }),
    },
    responses: {
      200: {
        description: "A page of messages",
        content: {
          "application/json": { schema: z.object({ messages: z.array(RoomMessage), nextBefore: z.number().int().nullable() }) },
        },
      },
      ...errorResponses(400, 401, 404),
    },
  }),
  async (c) => {
    const { roomId } = c.req.valid("param");
    const { before, limit } = c.req.valid("query");
    await requireReadableRoom(c.env, roomId, c.get("user"));
    const page = await roomStub(c.env, roomId).history(before ?? null, limit, c.get("user").id);
    return c.json(page, 200);
  },
);

const MessageIdParam = z.string().min(1).max(64).openapi({ param: { name: "messageId", in: "path" } });

rooms.openapi(
  createRoute({
    method: "get",
    path: "/{roomId}/messages/{messageId}/replies",
    tags: ["rooms"],
    summary: "A thread: the parent message and its replies, oldest first, cursor-paginated",
    security: bearerSecurity,
    request: {
      params: z.object({ roomId: RoomId, messageId: MessageIdParam }),
      query: z.object(pageQuery(50, PAGE_MAX)),
    },
    responses: {
      200: {
        description: "The parent and a page of its replies (tombstones included: a deleted reply keeps its place)",
        content: {
          "application/json": { schema: z.object({ parent: RoomMessage, replies: z.array(RoomMessage), nextCursor: z.string().nullable() }) },
        },
      },
      ...errorResponses(400, 401, 404),
    },
  }),
  async (c) => {
    const { roomId, messageId } = c.req.valid("param");
    const { cursor, limit } = c.req.valid("query");
    await requireReadableRoom(c.env, roomId, c.get("user"));
    const key = cursorKey(cursor, (k) => /^[1-9][0-9]{0,15}$/.test(k));
    const page = await roomStub(c.env, roomId).replies(messageId, key === null ? null : Number(key), limit, c.get("user").id);
    if (!page) throw new ApiError({ code: "not_found", message: `No message ${messageId} in room ${roomId}.` });
    return c.json({ parent: page.parent, replies: page.replies, nextCursor: page.nextAfter === null ? null : encodeCursor(String(page.nextAfter)) }, 200);
  },
);

rooms.openapi(
  createRoute({
    method: "get",
    path: "/{roomId}/search",
    tags: ["rooms"],
    summary: "Full-text search of a room's messages (current text only, deleted messages never), best match first",
    security: bearerSecurity,
    middleware: [rateLimit("search")] as const,
    request: {
      params: z.object({ roomId: RoomId }),
      query: z.object({
        q: z.string().trim().min(1, "q is required").max(SEARCH_QUERY_MAX).openapi({ description: "Words to find (all of them; the last may be a prefix)" }),
        ...pageQuery(20, PAGE_MAX),
      }),
    },
    responses: {
      200: { description: "A page of matching messages", content: { "application/json": { schema: pageSchema("messages", RoomMessage) } } },
      ...errorResponses(400, 401, 404, 429),
    },
  }),
  async (c) => {
    const { roomId } = c.req.valid("param");
    const { q, cursor, limit } = c.req.valid("query");
    await requireReadableRoom(c.env, roomId, c.get("user"));
    // The cursor is the last result's position in the ranking: its bm25 rank and seq.
    const key = cursorKey(cursor, (k) => /^-?[0-9.e+-]{1,40}:[1-9][0-9]{0,15}$/.test(k) && Number.isFinite(Number(k.split(":")[0])));
    const after = key === null ? null : { rank: Number(key.split(":")[0]), seq: Number(key.split(":")[1]) };
    const page = await roomStub(c.env, roomId).search(q, limit, after, c.get("user").id);
    return c.json({ messages: page.messages, nextCursor: page.next ? encodeCursor(`${page.next.rank}:${page.next.seq}`) : null }, 200);
  },
);

/** The room socket's path: its user is provisioned by the room, not by the API middleware (app.ts). */
export const ROOM_SOCKET_PATH = /^\/api\/chat\/rooms\/[^/]+\/ws$/;

// The room socket (documented in docs/rooms.md; OpenAPI has no WebSocket operations).
rooms.get("/:roomId/ws", async (c) => {
  const roomId = c.req.param("roomId");
  if (!ROOM_ID_RE.test(roomId)) throw noSuchRoom(roomId);
  if (!isUpgrade(c.req.raw)) {
    // Before the 426: a private room's non-member must get the 404 of a room that does not exist.
    await requireReadableRoom(c.env, roomId, c.get("user"));
    c.header("Upgrade", "websocket");
    return c.json(errorBody("bad_request", "This endpoint needs a WebSocket upgrade (Upgrade: websocket).", c.get("requestId")), 426);
  }
  // An upgrade goes to the room without a D1 read: the room answers the 404 of a missing room (it
  // reads D1's directory once per lifetime), of a private room to a non-member, and the bans. Its
  // user is provisioned by the room too, batched with its first joins (app.ts, chat-room/lifecycle.ts).
  const user = c.get("user");
  return forwardUpgrade(roomStub(c.env, roomId), c.req.raw, {
    userId: user.id,
    userName: user.name,
    roomId,
    protocol: c.get("wsProtocol"),
    // The object refuses banned users and non-members of a private room itself (authoritative).
    admin: user.admin === true,
  });
});
