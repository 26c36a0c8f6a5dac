/**
 * GET /api/chat/dms/search: full text over the caller's DMs in the caller's inbox (SQLite FTS5),
 * ranked by bm25, paginated by pagination.ts cursors. Real inboxes in workerd.
 */
import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { Inbox } from "../../src/objects/inbox";
import { ftsQuery } from "../../src/objects/inbox/search";
import { inboxStub } from "../../src/objects/stubs";
import type { DmMessage } from "../../src/protocol";
import { api } from "../helpers";
import { ackedMessage, inbox, provision, request, sendDm, uid } from "../helpers/inbox";

interface Page {
  messages: DmMessage[];
  nextCursor: string | null;
}

async function search(user: string, query: string): Promise<{ status: number; body: Page & { error?: { code: string } } }> {
  const res = await api(user, `/api/chat/dms/search?${query}`);
  return { status: res.status, body: (await res.json()) as Page & { error?: { code: string } } };
}

const texts = (p: Page) => p.messages.map((m) => m.text);

describe("DM search", () => {
  it("runs on FTS5 in the inbox's own SQLite, in workerd", async () => {
    const alice = uid("alice");
    const found = await runInDurableObject(inboxStub(env, alice), (_i: Inbox, state) => {
      const sql = state.storage.sql;
      const table = sql.exec<{ sql: string }>("SELECT sql FROM sqlite_master WHERE name = 'messages_fts'").one().sql;
      // The module itself answers, with its ranking function.
      const probe = sql.exec<{ r: number }>("SELECT bm25(messages_fts) AS r FROM messages_fts WHERE messages_fts MATCH 'nothing'").toArray();
      return { table, probe };
    });
    expect(found.table).toMatch(/USING fts5\(/i);
    expect(found.probe).toEqual([]);
  });

  it("finds the caller's messages, best match first, a page at a time with no repeat and no gap", async () => {
    const alice = uid("alice");
    const bob = uid("bob");
    const carol = uid("carol");
    await provision(alice, bob, carol);
    const a = await inbox(alice);
    const c = await inbox(carol);
    await sendDm(a, bob, "the quarterly report is late");
    await sendDm(a, bob, "report report report: the report");
    await sendDm(a, bob, "nothing to see here");
    await sendDm(c, alice, "Carol's report, for alice");
    await sendDm(a, bob, "Résumé attached");
    // Bob and carol talk about reports too: never alice's to see.
    const b = await inbox(bob);
    await sendDm(b, carol, "a report between bob and carol");

    const all = await search(alice, "q=report");
    expect(all.status).toBe(200);
    // bm25: the message that is mostly "report" ranks first.
    expect(texts(all.body)[0]).toBe("report report report: the report");
    expect(new Set(texts(all.body))).toEqual(new Set(["report report report: the report", "the quarterly report is late", "Carol's report, for alice"]));
    expect(all.body.nextCursor).toBeNull();
    // Pages of one: the same order, each once.
    const paged: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await search(alice, `q=report&limit=1${cursor ? `&cursor=${cursor}` : ""}`);
      expect(page.status).toBe(200);
      paged.push(...texts(page.body).map(String));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(paged).toEqual(texts(all.body));
    // Every word must match; the last is also a prefix; diacritics and case are folded.
    expect(texts((await search(alice, "q=quarterly%20rep")).body)).toEqual(["the quarterly report is late"]);
    expect(texts((await search(alice, "q=RESUME")).body)).toEqual(["Résumé attached"]);
    expect(texts((await search(alice, `q=${encodeURIComponent('"report" OR nothing')}`)).body)).toEqual([]);
    // Only in one conversation; one that is not the caller's does not exist (404, from the refused side).
    const withCarol = ackedMessage(await sendDm(a, carol, "reply to carol")).conversationId;
    expect(texts((await search(alice, `q=report&conversationId=${withCarol}`)).body)).toEqual(["Carol's report, for alice"]);
    const bobCarol = ackedMessage(await sendDm(b, carol, "another")).conversationId;
    const refused = await search(alice, `q=report&conversationId=${bobCarol}`);
    expect(refused.status).toBe(404);
    expect(refused.body.error?.code).toBe("not_found");
    for (const s of [a, b, c]) s.close();
  });

  it("finds an edited message by its new text only, and a deleted one never", async () => {
    const alice = uid("alice");
    const bob = uid("bob");
    await provision(alice, bob);
    const a = await inbox(alice);
    const m = ackedMessage(await sendDm(a, bob, "meet at the lighthouse"));
    const gone = ackedMessage(await sendDm(a, bob, "the password is swordfish"));
    expect(await request(a, { type: "edit_message", conversationId: m.conversationId, messageId: m.id, text: "meet at the harbour" })).toMatchObject({ type: "ack" });
    expect(await request(a, { type: "delete_message", conversationId: gone.conversationId, messageId: gone.id })).toMatchObject({ type: "ack" });
    // On both copies: the author's inbox at once, the peer's once the change reached it.
    for (const user of [alice, bob]) {
      await expect.poll(async () => texts((await search(user, "q=harbour")).body), { timeout: 5000 }).toEqual(["meet at the harbour"]);
      expect(texts((await search(user, "q=lighthouse")).body)).toEqual([]);
      await expect.poll(async () => texts((await search(user, "q=swordfish")).body), { timeout: 5000 }).toEqual([]);
    }
    a.close();
  });

  it("refuses bad queries and cursors with 400, and anonymous callers with 401", async () => {
    const alice = uid("alice");
    await provision(alice);
    for (const q of ["", "q=", "q=%F0%9F%91%8D%20--", `q=${"x".repeat(257)}`, "q=a&limit=0", "q=a&limit=51", "q=a&cursor=", "q=a&cursor=bm90LWEta2V5"]) {
      const res = await search(alice, q);
      expect(res.status, q).toBe(400);
      expect(res.body.error?.code, q).toBe("bad_request");
    }
    expect((await api(null, "/api/chat/dms/search?q=a")).status).toBe(401);
  });

  it("quotes every term: no input is FTS syntax", () => {
    expect(ftsQuery('he said "hi" OR NEAR(x)')).toBe('"he" "said" """hi""" "OR" "NEAR(x)"*');
    expect(ftsQuery("  ")).toBeNull();
    expect(ftsQuery("👍 --")).toBeNull();
  });
});
