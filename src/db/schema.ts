/**
 * D1 schema: the directory data that is queried across users.
 * Messages, DM conversations, block lists and statuses live in Durable Object storage, not here.
 * Edit this file, then `npm run db:generate` writes the migration into migrations/.
 */
import { sql } from "drizzle-orm";
import { index, integer, primaryKey, real, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

/** Users, provisioned from token claims (`sub`, `name`) on first use. */
export const users = sqliteTable("users", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  createdAt: integer("created_at").notNull(),
  updatedAt: integer("updated_at").notNull(),
});

/** Public rooms. `id` is the unique slug; messages live in the room's ChatRoom Durable Object. */
export const rooms = sqliteTable(
  "rooms",
  {
    id: text("id").primaryKey(),
    name: text("name").notNull(),
    category: text("category").notNull(),
    description: text("description").notNull().default(""),
    lat: real("lat"),
    lon: real("lon"),
    /** Spatial cell of (lat, lon) for nearby lookups; null for rooms without a location. */
    cell: text("cell"),
    createdBy: text("created_by").notNull(),
    createdAt: integer("created_at").notNull(),
    /** Distinct users connected, written by the room's Durable Object (debounced). */
    onlineCount: integer("online_count").notNull().default(0),
    messageCount: integer("message_count").notNull().default(0),
    lastMessageAt: integer("last_message_at"),
    /** `private`: listed and readable only by its members (`room_members`); fixed at creation. */
    visibility: text("visibility", { enum: ["public", "private"] }).notNull().default("public"),
  },
  (t) => [
    index("rooms_category_idx").on(t.category, t.id),
    index("rooms_created_by_idx").on(t.createdBy, t.createdAt),
    index("rooms_cell_idx").on(t.cell),
  ],
);

/**
 * Members of private rooms: a mirror, for the directory queries (list, categories), of the
 * membership the room's Durable Object keeps authoritatively. Written after the object accepted a
 * change; the object, not this table, decides who may read or join.
 */
export const roomMembers = sqliteTable(
  "room_members",
  {
    roomId: text("room_id").notNull(),
    userId: text("user_id").notNull(),
    addedAt: integer("added_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.roomId, t.userId] }), index("room_members_user_idx").on(t.userId, t.roomId)],
);

/** Media metadata; the bytes are in R2 under `r2Key`. */
export const media = sqliteTable(
  "media",
  {
    id: text("id").primaryKey(),
    ownerId: text("owner_id").notNull(),
    contentType: text("content_type").notNull(),
    size: integer("size").notNull(),
    sha256: text("sha256").notNull(),
    r2Key: text("r2_key").notNull(),
    createdAt: integer("created_at").notNull(),
    /** Where the media was posted: null while unattached, then "room" or "dm". */
    boundKind: text("bound_kind", { enum: ["room", "dm"] }),
    /** Room id or conversation id it was posted in. */
    boundId: text("bound_id"),
    /** For DMs: the recipient, who may read it besides the owner. */
    boundPeer: text("bound_peer"),
  },
  (t) => [
    index("media_owner_idx").on(t.ownerId, t.createdAt),
    // The scheduled sweep finds unattached uploads by age without scanning attached media.
    index("media_unattached_idx").on(t.boundKind, t.createdAt),
    // The orphan sweep asks which listed R2 keys have a row.
    uniqueIndex("media_r2_key_idx").on(t.r2Key),
  ],
);

/** A user's last known coarse location (rounded to about 1 km), for room suggestions. */
export const userLocations = sqliteTable(
  "user_locations",
  {
    userId: text("user_id").primaryKey(),
    lat: real("lat").notNull(),
    lon: real("lon").notNull(),
    /** Spatial cell of (lat, lon) (`cellOf` in src/suggestions/geo.ts); queries touch only the cells around the caller. */
    cell: text("cell").notNull(),
    updatedAt: integer("updated_at").notNull(),
    /** Unit vector of (lat, lon): SQL tests great-circle distance as a dot product, without trigonometry. */
    x: real("x").notNull().default(0),
    y: real("y").notNull().default(0),
    z: real("z").notNull().default(0),
    /** Where the location came from: the client's own coordinates, or the edge's IP geolocation (`cf`). */
    source: text("source", { enum: ["client", "cf"] }).notNull().default("client"),
  },
  // Covering index for the nearby count: one range per cell on (cell, updated_at), and the
  // distance test and caller exclusion read the index entry only, never the table row.
  (t) => [index("user_locations_near_idx").on(t.cell, t.updatedAt, t.x, t.y, t.z, t.userId)],
);

/** Suggestion notifications sent: at most one per user, area (`areaOf`) and UTC day. */
export const suggestionNotices = sqliteTable(
  "suggestion_notices",
  {
    userId: text("user_id").notNull(),
    area: text("area").notNull(),
    /** UTC day number (ms since the epoch / 86 400 000). */
    day: integer("day").notNull(),
    sentAt: integer("sent_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.area, t.day] })],
);

/** Results of the scheduled self-check, for GET /health/uptime. */
export const uptimeChecks = sqliteTable(
  "uptime_checks",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    checkedAt: integer("checked_at").notNull(),
    ok: integer("ok", { mode: "boolean" }).notNull(),
    /** JSON: each check's name, ok and latency. */
    details: text("details").notNull().default(sql`'{}'`),
  },
  (t) => [index("uptime_checks_at_idx").on(t.checkedAt)],
);

/**
 * Rooms a user joined (`join_room` at least once), for `GET /api/chat/rooms?joined=true`. Written by
 * the room's Durable Object once per user per room, off the hot path (after the first join's frames);
 * the unread and mention counts come from the room itself.
 */
export const roomJoins = sqliteTable(
  "room_joins",
  {
    userId: text("user_id").notNull(),
    roomId: text("room_id").notNull(),
    joinedAt: integer("joined_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.roomId] })],
);
