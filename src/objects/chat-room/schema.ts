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
    name: "message lifecycle: edits, tombstones, reactions, threads, mentions, read state, search, change revs",
    up(sql) {
      // The current state of each message; `rev` is the room's change counter at its last change
      // (docs/protocol.md "Resume covers changes"). Rows written before get rev = seq.
      sql.exec("ALTER TABLE messages ADD COLUMN edited_at INTEGER");
      sql.exec("ALTER TABLE messages ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0");
      sql.exec("ALTER TABLE messages ADD COLUMN deleted_by TEXT");
      sql.exec("ALTER TABLE messages ADD COLUMN reactions TEXT");
      sql.exec("ALTER TABLE messages ADD COLUMN reply_count INTEGER NOT NULL DEFAULT 0");
      sql.exec("ALTER TABLE messages ADD COLUMN mentions TEXT");
      sql.exec("ALTER TABLE messages ADD COLUMN rev INTEGER NOT NULL DEFAULT 0");
      sql.exec("UPDATE messages SET rev = seq");
      sql.exec("CREATE INDEX messages_rev ON messages (rev)");
      sql.exec("CREATE INDEX messages_reply_to ON messages (reply_to, seq) WHERE reply_to IS NOT NULL");
      sql.exec(
        "UPDATE messages SET reply_count = (SELECT count(*) FROM messages r WHERE r.reply_to = messages.id) WHERE id IN (SELECT reply_to FROM messages WHERE reply_to IS NOT NULL)",
      );
      // Who reacted with what: one row per (message, user, emoji). Counts are kept on the message row.
      sql.exec(`CREATE TABLE reactions (
        seq INTEGER NOT NULL,
        user_id TEXT NOT NULL,
        emoji TEXT NOT NULL,
        PRIMARY KEY (seq, user_id, emoji)
      ) WITHOUT ROWID`);
      sql.exec("CREATE INDEX reactions_user ON reactions (user_id, seq)");
      // Who a message mentions, for the per-user mention counts.
      sql.exec("CREATE TABLE mentions (user_id TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (user_id, seq)) WITHOUT ROWID");
      sql.exec("CREATE INDEX mentions_seq ON mentions (seq)");
      // Per-user read position in the room, and whether the user's join is recorded in D1 (room_joins).
      sql.exec(`CREATE TABLE read_state (
        user_id TEXT PRIMARY KEY,
        read_seq INTEGER NOT NULL,
        joined_at INTEGER NOT NULL,
        listed INTEGER NOT NULL DEFAULT 0
      )`);
      // The alarm looks for unrecorded joins without scanning every reader.
      sql.exec("CREATE INDEX read_state_unlisted ON read_state (user_id) WHERE listed = 0");
      // Which messages reference which media, so a delete knows what no message references any more.
      sql.exec("CREATE TABLE message_media (media_id TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (media_id, seq)) WITHOUT ROWID");
      sql.exec(
        "INSERT OR IGNORE INTO message_media (media_id, seq) SELECT json_extract(j.value, '$.id'), m.seq FROM messages m, json_each(m.media) j WHERE m.media IS NOT NULL",
      );
      // Media to unbind in D1 (released to the media sweep), kept until D1 confirms.
      sql.exec("CREATE TABLE media_release (media_id TEXT PRIMARY KEY, owner_id TEXT NOT NULL, at INTEGER NOT NULL)");
      // Full-text index over the live text; external content (the text is stored once, in `messages`).
      sql.exec(
        "CREATE VIRTUAL TABLE messages_fts USING fts5(text, content='messages', content_rowid='seq', tokenize='unicode61 remove_diacritics 2')",
      );
      sql.exec("INSERT INTO messages_fts (messages_fts) VALUES ('rebuild')");
    },
  },
  {
    version: 5,
    name: "moderation: roles, members, bans, mutes, pins, filter words, reports, audit log",
    up(sql) {
      for (const statement of MODERATION_TABLES) sql.exec(statement);
    },
  },
];
