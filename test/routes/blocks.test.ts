import { describe, expect, it } from "vitest";
import { api } from "../helpers";
import { ackedMessage, inbox, provision, roundTrip, sendDm, uid } from "../helpers/inbox";

async function block(user: string, target: string): Promise<Response> {
  return api(user, "/api/chat/blocks", { method: "POST", json: { userId: target } });
}

describe("blocks", () => {
  it("lists, adds idempotently and removes blocks", async () => {
    const alice = uid("alice");
    const bob = uid("bob");
    await provision(alice, bob);
    expect(await (await api(alice, "/api/chat/blocks")).json()).toEqual({ blocks: [], nextCursor: null });
    const first = await block(alice, bob);
    expect(first.status).toBe(201);
    expect(await first.json()).toMatchObject({ userId: bob });
    expect((await block(alice, bob)).status).toBe(200);
    const list = (await (await api(alice, "/api/chat/blocks")).json()) as { blocks: { userId: string }[] };
    expect(list.blocks.map((b) => b.userId)).toEqual([bob]);
    expect((await block(alice, alice)).status).toBe(400);
    expect((await block(alice, uid("ghost"))).status).toBe(404);
    expect((await api(alice, `/api/chat/blocks/${bob}`, { method: "DELETE" })).status).toBe(204);
    expect((await api(alice, `/api/chat/blocks/${bob}`, { method: "DELETE" })).status).toBe(204);
    expect(await (await api(alice, "/api/chat/blocks")).json()).toEqual({ blocks: [], nextCursor: null });
  });

  it("refuses DMs in both directions while either blocks the other, and allows them after unblocking", async () => {
    const alice = uid("alice");
    const bob = uid("bob");
    await provision(alice, bob);
    const a = await inbox(alice);
    const b = await inbox(bob);
    ackedMessage(await sendDm(a, bob, "before"));
    await b.waitFor((m) => m.type === "dm");

    // Bob blocks Alice: Bob's inbox (authoritative for Bob's blocks) refuses her messages.
    expect((await block(bob, alice)).status).toBe(201);
    expect(await sendDm(a, bob, "let me in")).toMatchObject({ type: "error", code: "blocked" });
    // And Bob cannot write to someone he blocks.
    expect(await sendDm(b, alice, "one-way")).toMatchObject({ type: "error", code: "blocked" });
    expect((await api(alice, "/api/chat/dms", { method: "POST", json: { userId: bob } })).status).toBe(403);
    expect((await api(bob, "/api/chat/dms", { method: "POST", json: { userId: alice } })).status).toBe(403);

    // Unblocked: messages flow again, numbering continues with no gap.
    expect((await api(bob, `/api/chat/blocks/${alice}`, { method: "DELETE" })).status).toBe(204);
    expect(ackedMessage(await sendDm(a, bob, "after")).seq).toBe(2);
    expect(await b.waitFor((m) => m.type === "dm" && m.message.text === "after")).toMatchObject({ message: { seq: 2 } });

    // Now Alice blocks Bob: the same both ways.
    expect((await block(alice, bob)).status).toBe(201);
    expect(await sendDm(b, alice, "hello?")).toMatchObject({ type: "error", code: "blocked" });
    expect(await sendDm(a, bob, "bye")).toMatchObject({ type: "error", code: "blocked" });
    await roundTrip(a);
    await roundTrip(b);
    // Nothing refused reached anyone, nor was stored.
    const texts = (frames: typeof a.frames) => frames.flatMap((m) => (m.type === "dm" ? [m.message.text] : []));
    expect(texts(b.frames)).toEqual(["before", "after"]);
    expect(texts(a.frames)).toEqual([]);
    const convs = (await (await api(bob, "/api/chat/dms")).json()) as { conversations: { lastSeq: number; unread: number }[] };
    expect(convs.conversations[0]).toMatchObject({ lastSeq: 2, unread: 2 });
    a.close();
    b.close();
  });

  it("pages the block list newest first with limit and cursor, each block once, like the other lists", async () => {
    const alice = uid("alice");
    const targets = Array.from({ length: 7 }, (_, i) => uid(`t${i}`));
    await provision(alice, ...targets);
    for (const t of targets) expect((await block(alice, t)).status).toBe(201);
    type Page = { blocks: { userId: string; createdAt: number }[]; nextCursor: string | null };
    const all = (await (await api(alice, "/api/chat/blocks")).json()) as Page;
    expect(all.blocks).toHaveLength(7);
    expect(all.nextCursor).toBeNull();
    // Newest first, ties (same millisecond) by user id.
    const sorted = [...all.blocks].sort((a, b) => b.createdAt - a.createdAt || (a.userId < b.userId ? -1 : 1));
    expect(all.blocks).toEqual(sorted);

    const seen: string[] = [];
    const sizes: number[] = [];
    let cursor: string | null = null;
    do {
      const res = await api(alice, `/api/chat/blocks?limit=3${cursor ? `&cursor=${cursor}` : ""}`);
      expect(res.status).toBe(200);
      const page = (await res.json()) as Page;
      sizes.push(page.blocks.length);
      seen.push(...page.blocks.map((b) => b.userId));
      cursor = page.nextCursor;
    } while (cursor);
    expect(sizes).toEqual([3, 3, 1]);
    expect(seen).toEqual(all.blocks.map((b) => b.userId));

    // A cursor stays valid when the block it points at is removed meanwhile.
    const first = (await (await api(alice, "/api/chat/blocks?limit=2")).json()) as Page;
    expect(first.nextCursor).not.toBeNull();
    expect((await api(alice, `/api/chat/blocks/${first.blocks[1].userId}`, { method: "DELETE" })).status).toBe(204);
    const rest = (await (await api(alice, `/api/chat/blocks?limit=10&cursor=${first.nextCursor}`)).json()) as Page;
    expect(rest.blocks.map((b) => b.userId)).toEqual(all.blocks.slice(2).map((b) => b.userId));
    expect(rest.nextCursor).toBeNull();
  });

  it("refuses a bad limit or cursor with a 400 naming it", async () => {
    const alice = uid("alice");
    await provision(alice);
    for (const [query, field] of [
      ["?limit=0", "limit"],
      ["?limit=101", "limit"],
      ["?limit=x", "limit"],
      ["?cursor=%%%", "cursor"],
      ["?cursor=", "cursor"],
      ["?cursor=bm90IGEga2V5", "cursor"], // base64url of "not a key"
      [`?cursor=${"A".repeat(401)}`, "cursor"],
    ] as const) {
      const res = await api(alice, `/api/chat/blocks${query}`);
      expect(res.status, query).toBe(400);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe("bad_request");
      expect(body.error.message).toContain(field);
    }
  });
});
