/**
 * Schema versions: an object written by the schema before versions existed (a545d76: no
 * `schema_version`, a stored `room_id` / `owner`) is upgraded in place on its next wake-up, with
 * nothing lost. The old tables and rows are written directly, as that code wrote them.
 */
import { env, evictDurableObject, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { ChatRoom } from "../../src/objects/chat-room";
import { ROOM_MIGRATIONS } from "../../src/objects/chat-room/schema";
import type { Inbox } from "../../src/objects/inbox";
import { INBOX_MIGRATIONS } from "../../src/objects/inbox/schema";
import { schemaVersion } from "../../src/objects/schema";
import { inboxStub } from "../../src/objects/stubs";
import { api } from "../helpers";
import { provision, uid } from "../helpers/inbox";
import { createRoom, joined, sendText, stubOf } from "../helpers/rooms";

const tables = (sql: SqlStorage) =>
  sql
    .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_%' ESCAPE '\\' ORDER BY name")
    .toArray()
    .map((r) => r.name);

describe("schema versions", () => {
  it("room: today's tables and rows are upgraded in place, nothing lost", async () => {
    const room = await createRoom(uid("old-room"));
    const stub = stubOf(room);
    expect(await stub.ping()).toEqual(expect.any(Number));
    await runInDurableObject(stub, (_i: ChatRoom, state) => {
      const sql = state.storage.sql;
      expect(tables(sql)).toEqual([]);
      sql.exec(`CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`);
      sql.exec(`CREATE TABLE IF NOT EXISTS messages (
        seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, user_id TEXT NOT NULL, user_name TEXT NOT NULL,
        client_msg_id TEXT NOT NULL, text TEXT, media TEXT, reply_to TEXT, created_at INTEGER NOT NULL,
        UNIQUE (user_id, client_msg_id))`);
      sql.exec("INSERT INTO meta (key, value) VALUES ('room_id', ?)", room);
      for (let seq = 1; seq <= 3; seq++) {
        sql.exec(
          "INSERT INTO messages (seq, id, user_id, user_name, client_msg_id, text, media, reply_to, created_at) VALUES (?, ?, 'alice', 'Alice', ?, ?, NULL, ?, ?)",
          seq,
          `old-${room}-${seq}`,
          `c${seq}`,
          `old ${seq}`,
          seq === 3 ? `old-${room}-1` : null,
          1000 + seq,
        );
      }
    });
    await evictDurableObject(stub);

    const page = await stub.history(null, 50);
    expect(page.messages.map((m) => [m.seq, m.text, m.userName, m.replyTo ?? null, m.roomId])).toEqual([
      [3, "old 3", "Alice", `old-${room}-1`, room],
      [2, "old 2", "Alice", null, room],
      [1, "old 1", "Alice", null, room],
    ]);
    const upgraded = await runInDurableObject(stub, (_i: ChatRoom, state) => ({
      version: schemaVersion(state.storage.sql),
      tables: tables(state.storage.sql),
      meta: state.storage.sql.exec("SELECT key FROM meta").toArray(),
    }));
    expect(upgraded.version).toBe(ROOM_MIGRATIONS.at(-1)?.version);
    expect(upgraded.tables).toEqual([
      "media_release",
      "mentions",
      "message_media",
      "messages",
      "messages_fts",
      "messages_fts_config",
      "messages_fts_data",
      "messages_fts_docsize",
      "messages_fts_idx",
      "meta",
      "mod_audit",
      "mod_bans",
      "mod_filter_words",
      "mod_members",
      "mod_mutes",
      "mod_pins",
      "mod_reports",
      "mod_roles",
      "rate_buckets",
      "reactions",
      "read_state",
      "schema_version",
    ]);
    expect(upgraded.meta).toEqual([]);
    // Version 4 (message lifecycle) backfills: old rows get rev = seq, parents their reply count, and
    // the search index holds the old text.
    expect(page.messages.map((m) => [m.seq, m.rev, m.replyCount ?? 0])).toEqual([
      [3, 3, 0],
      [2, 2, 0],
      [1, 1, 1],
    ]);
    expect((await stub.search("old 2", 10, null, "bob")).messages.map((m) => m.seq)).toEqual([2]);
    // The log continues where it was; a resend of an old clientMsgId is still recognised.
    const a = await joined("alice", room);
    expect((await sendText(a, "new", "after the upgrade")).message).toMatchObject({ seq: 4 });
    expect(await sendText(a, "c1", "old 1")).toMatchObject({ duplicate: true, message: { seq: 1 } });
    a.close();
  });

  it("inbox: today's tables and rows are upgraded in place, nothing lost", async () => {
    const user = uid("old-user");
    const peer = uid("old-peer");
    const blocked = uid("blocked");
    await provision(user, peer, blocked);
    const conversationId = "dm_0123456789abcdef0123456789abcdef";
    const stub = inboxStub(env, user);
    await runInDurableObject(stub, (_i: Inbox, state) => {
      const sql = state.storage.sql;
      // Back to exactly what a545d76 wrote: its tables, its rows, no version.
      // IF EXISTS: dropping the full-text table (version 4) drops its shadow tables with it.
      for (const t of tables(sql)) sql.exec(`DROP TABLE IF EXISTS ${t}`);
      sql.exec(`
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE conversations (id TEXT PRIMARY KEY, peer_id TEXT NOT NULL UNIQUE, peer_name TEXT NOT NULL,
          created_at INTEGER NOT NULL, last_seq INTEGER NOT NULL DEFAULT 0, read_seq INTEGER NOT NULL DEFAULT 0,
          peer_read_seq INTEGER NOT NULL DEFAULT 0, unread INTEGER NOT NULL DEFAULT 0, last_at INTEGER NOT NULL);
        CREATE INDEX conversations_last_at ON conversations (last_at DESC);
        CREATE TABLE messages (conversation_id TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL, from_id TEXT NOT NULL,
          to_id TEXT NOT NULL, client_msg_id TEXT NOT NULL, text TEXT, media TEXT, created_at INTEGER NOT NULL,
          PRIMARY KEY (conversation_id, seq));
        CREATE UNIQUE INDEX messages_client ON messages (conversation_id, from_id, client_msg_id);
        CREATE INDEX messages_id ON messages (id);
        CREATE TABLE blocks (user_id TEXT PRIMARY KEY, created_at INTEGER NOT NULL);
        CREATE TABLE subscriptions (user_id TEXT PRIMARY KEY, auto INTEGER NOT NULL DEFAULT 0, status TEXT,
          last_seen INTEGER, created_at INTEGER NOT NULL);
        CREATE TABLE subscribers (user_id TEXT PRIMARY KEY, created_at INTEGER NOT NULL);
      `);
      sql.exec("INSERT INTO meta (key, value) VALUES ('owner', ?), ('status', ?)", user, JSON.stringify({ chosen: "dnd", lastSeen: 5 }));
      sql.exec(
        "INSERT INTO conversations (id, peer_id, peer_name, created_at, last_seq, read_seq, unread, last_at) VALUES (?, ?, 'Peer', 1, 2, 1, 1, 20)",
        conversationId,
        peer,
      );
      sql.exec("INSERT INTO messages VALUES (?, 1, 'm1', ?, ?, 'c1', 'hello', NULL, 10)", conversationId, user, peer);
      sql.exec("INSERT INTO messages VALUES (?, 2, 'm2', ?, ?, 'c2', 'hi back', NULL, 20)", conversationId, peer, user);
      sql.exec("INSERT INTO blocks VALUES (?, 30)", blocked);
      sql.exec("INSERT INTO subscriptions (user_id, auto, status, last_seen, created_at) VALUES (?, 1, 'offline', 7, 1)", peer);
      sql.exec("INSERT INTO subscribers VALUES (?, 1)", peer);
    });
    await evictDurableObject(stub);

    const convs = (await (await api(user, "/api/chat/dms")).json()) as { conversations: { id: string; lastSeq: number; unread: number; readSeq: number }[] };
    expect(convs.conversations).toEqual([expect.objectContaining({ id: conversationId, lastSeq: 2, unread: 1, readSeq: 1 })]);
    const history = (await (await api(user, `/api/chat/dms/${conversationId}/messages`)).json()) as { messages: { seq: number; text: string }[] };
    expect(history.messages.map((m) => [m.seq, m.text])).toEqual([
      [2, "hi back"],
      [1, "hello"],
    ]);
    const blocks = (await (await api(user, "/api/chat/blocks")).json()) as { blocks: { userId: string }[] };
    expect(blocks.blocks.map((b) => b.userId)).toEqual([blocked]);
    const upgraded = await runInDurableObject(stub, (_i: Inbox, state) => {
      const sql = state.storage.sql;
      return {
        version: schemaVersion(sql),
        tables: tables(sql),
        meta: sql.exec<{ key: string; value: string }>("SELECT key, value FROM meta ORDER BY key").toArray(),
        subscriptions: sql.exec("SELECT user_id, auto, status, last_seen FROM subscriptions").toArray(),
        subscribers: sql.exec("SELECT user_id FROM subscribers").toArray(),
      };
    });
    expect(upgraded.version).toBe(INBOX_MIGRATIONS.at(-1)?.version);
    expect(upgraded.tables).toEqual([
      "blocks",
      "conversations",
      "messages",
      "messages_fts",
      "messages_fts_config",
      "messages_fts_data",
      "messages_fts_docsize",
      "messages_fts_idx",
      "meta",
      "outbox",
      "rate_buckets",
      "schema_version",
      "subscribers",
      "subscriptions",
    ]);
    // Messages stored before full-text search existed are found (the index was rebuilt), in their new shape.
    const found = (await (await api(user, "/api/chat/dms/search?q=hello")).json()) as { messages: { id: string; text: string }[] };
    expect(found.messages.map((m) => [m.id, m.text])).toEqual([["m1", "hello"]]);
    // The stored owner is gone (the name is the object's); the status is kept.
    expect(upgraded.meta).toEqual([{ key: "status", value: JSON.stringify({ chosen: "dnd", lastSeen: 5 }) }]);
    expect(upgraded.subscriptions).toEqual([{ user_id: peer, auto: 1, status: "offline", last_seen: 7 }]);
    expect(upgraded.subscribers).toEqual([{ user_id: peer }]);
  });
});
