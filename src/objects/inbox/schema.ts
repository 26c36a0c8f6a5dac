/** The Inbox's storage schema, in order (`../schema.ts` applies it). */
import type { Migration } from "../schema";
import { RATE_BUCKETS_TABLE } from "../user-buckets";

/** Every schema step of an inbox, oldest first. Never edit a released step; add one. */
export const INBOX_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "conversations, messages, blocks, subscriptions, subscribers, meta (the schema before versions)",
    up(sql) {
      sql.exec(`
        CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS conversations (
          id TEXT PRIMARY KEY,
          peer_id TEXT NOT NULL UNIQUE,
          peer_name TEXT NOT NULL,
          created_at INTEGER NOT NULL,
          last_seq INTEGER NOT NULL DEFAULT 0,
          read_seq INTEGER NOT NULL DEFAULT 0,
          peer_read_seq INTEGER NOT NULL DEFAULT 0,
          unread INTEGER NOT NULL DEFAULT 0,
          last_at INTEGER NOT NULL
        );
        CREATE INDEX IF NOT EXISTS conversations_last_at ON conversations (last_at DESC);
        CREATE TABLE IF NOT EXISTS messages (
          conversation_id TEXT NOT NULL,
          seq INTEGER NOT NULL,
          id TEXT NOT NULL,
          from_id TEXT NOT NULL,
          to_id TEXT NOT NULL,
          client_msg_id TEXT NOT NULL,
          text TEXT,
          media TEXT,
          created_at INTEGER NOT NULL,
          PRIMARY KEY (conversation_id, seq)
        );
        CREATE UNIQUE INDEX IF NOT EXISTS messages_client ON messages (conversation_id, from_id, client_msg_id);
        CREATE INDEX IF NOT EXISTS messages_id ON messages (id);
        CREATE TABLE IF NOT EXISTS blocks (user_id TEXT PRIMARY KEY, created_at INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS subscriptions (
          user_id TEXT PRIMARY KEY,
          auto INTEGER NOT NULL DEFAULT 0,
          status TEXT,
          last_seen INTEGER,
          created_at INTEGER NOT NULL
        );
        CREATE TABLE IF NOT EXISTS subscribers (user_id TEXT PRIMARY KEY, created_at INTEGER NOT NULL);
      `);
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
    name: "the owner is the object's name: drop the stored copy",
    up(sql) {
      sql.exec("DELETE FROM meta WHERE key = 'owner'");
    },
  },
  {
    version: 4,
    name: "message lifecycle: edits, tombstones, reactions, the change counter (rev), the outbox to the peer, full-text search",
    up(sql) {
      sql.exec(`
        ALTER TABLE messages ADD COLUMN edited_at INTEGER;
        ALTER TABLE messages ADD COLUMN deleted_by TEXT;
        ALTER TABLE messages ADD COLUMN reactions TEXT;
        ALTER TABLE messages ADD COLUMN my_reactions TEXT;
        ALTER TABLE messages ADD COLUMN rev INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX IF NOT EXISTS messages_rev ON messages (rev);
        CREATE TABLE IF NOT EXISTS outbox (
          -- Without AUTOINCREMENT: a new entry always gets an id above every waiting one, which is all the order needs.
          id INTEGER PRIMARY KEY,
          peer_id TEXT NOT NULL,
          conversation_id TEXT NOT NULL,
          body TEXT NOT NULL,
          attempts INTEGER NOT NULL DEFAULT 0,
          next_at INTEGER NOT NULL,
          created_at INTEGER NOT NULL
        );
        CREATE INDEX IF NOT EXISTS outbox_peer ON outbox (peer_id, id);
        CREATE VIRTUAL TABLE IF NOT EXISTS messages_fts USING fts5(
          text,
          content = 'messages',
          content_rowid = 'rowid',
          tokenize = 'unicode61 remove_diacritics 2'
        );
        CREATE TRIGGER IF NOT EXISTS messages_fts_insert AFTER INSERT ON messages WHEN new.text IS NOT NULL BEGIN
          INSERT INTO messages_fts (rowid, text) VALUES (new.rowid, new.text);
        END;
        CREATE TRIGGER IF NOT EXISTS messages_fts_update AFTER UPDATE OF text ON messages BEGIN
          INSERT INTO messages_fts (messages_fts, rowid, text) SELECT 'delete', old.rowid, old.text WHERE old.text IS NOT NULL;
          INSERT INTO messages_fts (rowid, text) SELECT new.rowid, new.text WHERE new.text IS NOT NULL;
        END;
        CREATE TRIGGER IF NOT EXISTS messages_fts_delete AFTER DELETE ON messages WHEN old.text IS NOT NULL BEGIN
          INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
        END;
        INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');
      `);
    },
  },
];
