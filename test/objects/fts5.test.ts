/**
 * Room search relies on SQLite's FTS5 in the Durable Object's storage: checked here in workerd (and
 * under `wrangler dev` by test/e2e/lifecycle-rooms.e2e.mjs) before anything depends on it.
 */
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { ChatRoom } from "../../src/objects/chat-room";
import { stubOf } from "../helpers/rooms";

describe("FTS5 in Durable Object SQLite (workerd)", () => {
  it("creates an fts5 table, matches, ranks with bm25, and deletes from an external-content index", async () => {
    const out = await runInDurableObject(stubOf("fts5-probe"), (_i: ChatRoom, state) => {
      const sql = state.storage.sql;
      sql.exec("CREATE TABLE docs (id INTEGER PRIMARY KEY, body TEXT)");
      sql.exec("CREATE VIRTUAL TABLE docs_fts USING fts5(body, content='docs', content_rowid='id', tokenize='unicode61 remove_diacritics 2')");
      const rows: [number, string][] = [
        [1, "the quick brown fox"],
        [2, "fox fox fox jumps"],
        [3, "café au lait"],
      ];
      for (const [id, body] of rows) {
        sql.exec("INSERT INTO docs (id, body) VALUES (?, ?)", id, body);
        sql.exec("INSERT INTO docs_fts (rowid, body) VALUES (?, ?)", id, body);
      }
      const ranked = sql.exec<{ id: number }>("SELECT rowid AS id FROM docs_fts WHERE docs_fts MATCH ? ORDER BY bm25(docs_fts)", '"fox"').toArray();
      const accent = sql.exec<{ id: number }>("SELECT rowid AS id FROM docs_fts WHERE docs_fts MATCH ?", '"cafe"').toArray();
      sql.exec("INSERT INTO docs_fts (docs_fts, rowid, body) VALUES ('delete', ?, ?)", 2, rows[1][1]);
      const afterDelete = sql.exec<{ id: number }>("SELECT rowid AS id FROM docs_fts WHERE docs_fts MATCH ?", '"fox"').toArray();
      return { ranked: ranked.map((r) => r.id), accent: accent.map((r) => r.id), afterDelete: afterDelete.map((r) => r.id) };
    });
    expect(out.ranked).toEqual([2, 1]);
    expect(out.accent).toEqual([3]);
    expect(out.afterDelete).toEqual([1]);
  });
});
