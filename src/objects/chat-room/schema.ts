/** The ChatRoom's storage schema, in order (`../schema.ts` applies it). */
import type { Migration } from "../schema";
import { RATE_BUCKETS_TABLE } from "../user-buckets";
import { MODERATION_TABLES } from "./moderation";

/** Every schema step of a room, oldest first. Never edit a released step; add one. */
export const ROOM_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "messages and meta (the schema before versions)",
    up(sql) {
      sql.exec(`CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`);
      // seq is the rowid: range scans by seq are index scans. (user_id, client_msg_id) makes resends idempotent.
      sql.exec(`CREATE TABLE IF NOT EXISTS messages (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        user_id TEXT NOT NULL,
        user_name TEXT NOT NULL,
        client_msg_id TEXT NOT NULL,
        text TEXT,
        media TEXT,
        reply_to TEXT,
        created_at INTEGER NOT NULL,
        UNIQUE (user_id, client_msg_id)
      )`);
    },
  },
  {
    version: 2,
    name: "per-user rate-limit buckets",
    up(sql) {
      sql.exec(RATE_BUCKETS_TABLE);
    },
  },
  {
    version: 3,
    name: "the room id is the object's name: drop the stored copy",
    up(sql) {
      sql.exec("DELETE FROM meta WHERE key = 'room_id'");
    },
  },
  {
    version: 4,
    name: "moderation: roles, members, bans, mutes, pins, filter words, reports, audit log",
    up(sql) {
      for (const statement of MODERATION_TABLES) sql.exec(statement);
    },
  },
];
