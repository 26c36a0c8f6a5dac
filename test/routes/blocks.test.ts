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
    expect(await (await api(alice, "/api/chat/blocks")).json()).toEqual({ blocks: [] });
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
    expect(await (await api(alice, "/api/chat/blocks")).json()).toEqual({ blocks: [] });
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
});
