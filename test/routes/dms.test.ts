import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { SIGNATURE_HEADER, verifySignature } from "../../src/push";
import { conversationIdFor } from "../../src/objects/conversation";
import type { ConversationSummary } from "../../src/objects/inbox";
import { inboxStub } from "../../src/objects/stubs";
import type { DmMessage } from "../../src/protocol";
import { api, BASE, connectWs } from "../helpers";
import { runInDurableObject, SELF } from "cloudflare:test";
import type { Inbox } from "../../src/objects/inbox";
import { SYNC_ROWS_MAX } from "../../src/objects/inbox";
import { ackedMessage, inbox, isDm, provision, roundTrip, sendDm, uid } from "../helpers/inbox";

async function conversations(user: string): Promise<ConversationSummary[]> {
  const res = await api(user, "/api/chat/dms");
  expect(res.status).toBe(200);
  return ((await res.json()) as { conversations: ConversationSummary[] }).conversations;
}

/** Resolves once Date.now() is past `ms` (in workerd the clock moves across I/O, such as a timer). */
async function pastMs(ms: number): Promise<void> {
  while (Date.now() <= ms) await new Promise((r) => setTimeout(r, 1));
}

async function history(user: string, conversationId: string, query = ""): Promise<{ status: number; body: { messages: DmMessage[]; nextBefore: number | null } }> {
  const res = await api(user, `/api/chat/dms/${conversationId}/messages${query}`);
  return { status: res.status, body: (await res.json()) as { messages: DmMessage[]; nextBefore: number | null } };
}

describe("direct messages", () => {
  it("delivers to both devices of the recipient and echoes to the sender's other device", async () => {
    const alice = uid("alice");
    const bob = uid("bob");
    await provision(alice, bob);
    const a1 = await inbox(alice);
    const a2 = await inbox(alice);
    const b1 = await inbox(bob);
    const b2 = await inbox(bob);

    const ack = await sendDm(a1, bob, "hello bob");
    const sent = ackedMessage(ack);
    expect(sent).toMatchObject({ from: alice, to: bob, text: "hello bob", seq: 1 });
    expect(sent.conversationId).toMatch(/^dm_[0-9a-f]{32}$/);

    for (const b of [b1, b2]) {
      const dm = await b.waitFor(isDm(alice));
      expect(dm).toMatchObject({ message: { id: sent.id, seq: 1, text: "hello bob", conversationId: sent.conversationId } });
      const note = await b.waitFor((m) => m.type === "notification");
      expect(note).toMatchObject({ kind: "dm", from: alice, preview: "hello bob", unread: 1, conversationId: sent.conversationId });
    }
    const echo = await a2.waitFor(isDm(alice));
    expect(echo).toMatchObject({ message: { id: sent.id, seq: 1 } });
    // The sending socket gets the ack, not a second copy.
    await roundTrip(a1);
    expect(a1.frames.filter((m) => m.type === "dm")).toHaveLength(0);

    // A reply numbers on in both inboxes.
    const reply = ackedMessage(await sendDm(b2, alice, "hi alice"));
    expect(reply.seq).toBe(2);
    expect(reply.conversationId).toBe(sent.conversationId);
    expect(await a1.waitFor(isDm(bob))).toMatchObject({ message: { id: reply.id, seq: 2 } });
    for (const s of [a1, a2, b1, b2]) s.close();
  });

  it("refuses a message to oneself, to an unknown user, and bad frames, keeping the socket usable", async () => {
    const alice = uid("alice");
    await provision(alice);
    const a = await inbox(alice);
    expect(await sendDm(a, alice, "me")).toMatchObject({ type: "error", code: "bad_request" });
    expect(await sendDm(a, uid("ghost"), "anyone?")).toMatchObject({ type: "error", code: "not_found" });
    a.send({ type: "send_dm", id: "x1", to: "bob", clientMsgId: "c" });
    expect(await a.waitFor((m) => m.type === "error" && m.id === "x1")).toMatchObject({ code: "bad_request" });
    a.send("{not json");
    expect(await a.waitFor((m) => m.type === "error" && /JSON/.test(m.message))).toMatchObject({ code: "bad_request" });
    a.send({ type: "join_room", id: "x2" });
    expect(await a.waitFor((m) => m.type === "error" && m.id === "x2")).toMatchObject({ code: "bad_request" });
    a.send({ type: "send_dm", id: "x3", to: "bob", clientMsgId: "c", text: "x".repeat(4001) });
    expect(await a.waitFor((m) => m.type === "error" && m.id === "x3")).toMatchObject({ code: "too_large" });
    await roundTrip(a);
    const list = await api(alice, "/api/chat/dms");
    expect(((await list.json()) as { conversations: unknown[] }).conversations).toEqual([]);
    a.close();
  });

  it("a retry with the same clientMsgId never delivers twice, also after a half-failed first attempt", async () => {
    const alice = uid("alice");
    const bob = uid("bob");
    await provision(alice, bob);
    const a1 = await inbox(alice);
    const a2 = await inbox(alice);
    const b = await inbox(bob);

    // A lost ack: both copies are stored; the retry answers the first message again.
    const first = ackedMessage(await sendDm(a1, bob, "once", { clientMsgId: "c-1" }));
    const again = await sendDm(a1, bob, "once", { clientMsgId: "c-1" });
    expect(again).toMatchObject({ type: "ack", duplicate: true, message: { id: first.id, seq: first.seq } });

    // Half way: the recipient's inbox stored the message but the sender's never did (its object died
    // between the two writes). Reproduced by delivering to the recipient's inbox directly.
    const conversationId = await conversationIdFor(alice, bob);
    const direct = await inboxStub(env, bob).receiveDm({
      id: "half-way-id",
      conversationId,
      from: alice,
      fromName: alice,
      to: bob,
      clientMsgId: "c-2",
      text: "half way",
      createdAt: Date.now(),
      senderSubscribes: false,
      senderView: null,
    });
    expect(direct).toMatchObject({ ok: true, duplicate: false, message: { seq: 2 } });
    const retried = await sendDm(a1, bob, "half way", { clientMsgId: "c-2" });
    // Same id as the recipient's copy, stored once on the sender's side, now shown on the other device.
    expect(retried).toMatchObject({ type: "ack", duplicate: true, message: { id: "half-way-id", seq: 2 } });
    expect(await a2.waitFor((m) => m.type === "dm" && m.message.id === "half-way-id")).toMatchObject({ message: { seq: 2 } });

    await roundTrip(b);
    await roundTrip(a2);
    expect(b.frames.filter((m) => m.type === "dm").map((m) => m.type === "dm" && m.message.clientMsgId)).toEqual(["c-1", "c-2"]);
    expect(a2.frames.filter((m) => m.type === "dm").map((m) => m.type === "dm" && m.message.clientMsgId)).toEqual(["c-1", "c-2"]);
    for (const u of [alice, bob]) {
      const page = await history(u, conversationId);
      expect(page.body.messages.map((m) => [m.seq, m.clientMsgId])).toEqual([[2, "c-2"], [1, "c-1"]]);
    }
    for (const s of [a1, a2, b]) s.close();
  });

  it("counts unread messages, marks them read, and sends read receipts to the peer and the reader's other devices", async () => {
    const alice = uid("alice");
    const bob = uid("bob");
    await provision(alice, bob);
    const a = await inbox(alice);
    const b1 = await inbox(bob);
    const b2 = await inbox(bob);
    // Bob's own message counts toward neither side's unread badge for him.
    ackedMessage(await sendDm(b1, alice, "hey"));
    const m2 = ackedMessage(await sendDm(a, bob, "one"));
    const m3 = ackedMessage(await sendDm(a, bob, "two"));
    expect([m2.seq, m3.seq]).toEqual([2, 3]);
    await b1.waitFor((m) => m.type === "notification" && m.unread === 2);

    let [conv] = await conversations(bob);
    expect(conv).toMatchObject({ peer: { id: alice, name: alice }, unread: 2, lastSeq: 3, readSeq: 1, lastMessage: { text: "two" } });

    b1.send({ type: "mark_read", id: "r1", conversationId: conv.id, seq: 2 });
    await b1.waitFor((m) => m.type === "ack" && m.id === "r1");
    expect(await a.waitFor((m) => m.type === "read")).toMatchObject({ conversationId: conv.id, userId: bob, seq: 2 });
    expect(await b2.waitFor((m) => m.type === "read")).toMatchObject({ userId: bob, seq: 2 });
    [conv] = await conversations(bob);
    expect(conv).toMatchObject({ unread: 1, readSeq: 2 });
    const [aliceConv] = await conversations(alice);
    expect(aliceConv).toMatchObject({ unread: 0, peerReadSeq: 2 });

    // Past the end is clamped; backwards changes nothing.
    b1.send({ type: "mark_read", id: "r2", conversationId: conv.id, seq: 99 });
    await b1.waitFor((m) => m.type === "ack" && m.id === "r2");
    b1.send({ type: "mark_read", id: "r3", conversationId: conv.id, seq: 1 });
    await b1.waitFor((m) => m.type === "ack" && m.id === "r3");
    [conv] = await conversations(bob);
    expect(conv).toMatchObject({ unread: 0, readSeq: 3 });
    b1.send({ type: "mark_read", id: "r4", conversationId: "dm_00000000000000000000000000000000", seq: 1 });
    expect(await b1.waitFor((m) => m.type === "error" && m.id === "r4")).toMatchObject({ code: "not_found" });

    // Typing reaches the peer only.
    b1.send({ type: "typing", id: "t1", on: true, conversationId: conv.id });
    await b1.waitFor((m) => m.type === "ack" && m.id === "t1");
    expect(await a.waitFor((m) => m.type === "typing")).toMatchObject({ userId: bob, on: true, conversationId: conv.id });
    for (const s of [a, b1, b2]) s.close();
  });

  it("lists conversations newest first and creates them idempotently over REST", async () => {
    const alice = uid("alice");
    const bob = uid("bob");
    const carol = uid("carol");
    await provision(alice, bob, carol);
    const created = await api(alice, "/api/chat/dms", { method: "POST", json: { userId: bob } });
    expect(created.status).toBe(201);
    const conv = (await created.json()) as ConversationSummary;
    expect(conv).toMatchObject({ id: await conversationIdFor(alice, bob), peer: { id: bob }, lastMessage: null, unread: 0 });
    const again = await api(alice, "/api/chat/dms", { method: "POST", json: { userId: bob } });
    expect(again.status).toBe(200);
    expect(((await again.json()) as ConversationSummary).id).toBe(conv.id);
    expect((await api(alice, "/api/chat/dms", { method: "POST", json: { userId: uid("ghost") } })).status).toBe(404);
    expect((await api(alice, "/api/chat/dms", { method: "POST", json: { userId: alice } })).status).toBe(400);
    expect((await api(alice, "/api/chat/dms", { method: "POST", json: { userId: "bad id!" } })).status).toBe(400);

    // The list is ordered by the last message's ms, then by id: each send waits for the clock to pass
    // the previous message's createdAt, so two sends never share a millisecond.
    const a = await inbox(alice);
    await pastMs(ackedMessage(await sendDm(a, carol, "to carol")).createdAt);
    await pastMs(ackedMessage(await sendDm(a, bob, "to bob")).createdAt);
    expect((await conversations(alice)).map((c) => c.peer.id)).toEqual([bob, carol]);
    await pastMs(ackedMessage(await sendDm(a, carol, "carol again")).createdAt);
    expect((await conversations(alice)).map((c) => c.peer.id)).toEqual([carol, bob]);

    // Paged with a cursor.
    const dave = uid("dave");
    await provision(dave);
    await sendDm(a, dave, "to dave");
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res = await api(alice, `/api/chat/dms?limit=2${cursor ? `&cursor=${cursor}` : ""}`);
      const body = (await res.json()) as { conversations: ConversationSummary[]; nextCursor: string | null };
      seen.push(...body.conversations.map((c) => c.peer.id));
      cursor = body.nextCursor;
    } while (cursor);
    expect(seen).toEqual([dave, carol, bob]);
    expect((await api(alice, "/api/chat/dms?cursor=nope")).status).toBe(400);
    a.close();
  });

  it("pages history and shows a conversation only to its participants (404 otherwise)", async () => {
    const alice = uid("alice");
    const bob = uid("bob");
    const eve = uid("eve");
    await provision(alice, bob, eve);
    const a = await inbox(alice);
    for (let i = 1; i <= 5; i++) await sendDm(a, bob, `m${i}`);
    const conversationId = await conversationIdFor(alice, bob);
    const page1 = await history(bob, conversationId, "?limit=2");
    expect(page1.status).toBe(200);
    expect(page1.body.messages.map((m) => m.text)).toEqual(["m5", "m4"]);
    const page2 = await history(bob, conversationId, `?limit=2&before=${page1.body.nextBefore}`);
    expect(page2.body.messages.map((m) => m.text)).toEqual(["m3", "m2"]);
    const page3 = await history(bob, conversationId, `?limit=2&before=${page2.body.nextBefore}`);
    expect(page3.body).toMatchObject({ nextBefore: null });
    expect(page3.body.messages.map((m) => m.text)).toEqual(["m1"]);

    const snoop = await history(eve, conversationId);
    expect(snoop.status).toBe(404);
    expect(snoop.body).toMatchObject({ error: { code: "not_found" } });
    expect((await history(eve, "dm_not-a-real-one")).status).toBe(404);
    expect((await history(alice, conversationId, "?limit=0")).status).toBe(400);
    a.close();
  });

  it("replays what a reconnecting device missed, gap-free, with sync", async () => {
    const alice = uid("alice");
    const bob = uid("bob");
    await provision(alice, bob);
    const a = await inbox(alice);
    const first = ackedMessage(await sendDm(a, bob, "seen"));
    for (let i = 0; i < 3; i++) await sendDm(a, bob, `missed ${i}`);
    const b = await inbox(bob);
    b.send({ type: "sync", id: "s1", since: { [first.conversationId]: first.seq } });
    await b.waitFor((m) => m.type === "ack" && m.id === "s1");
    const replayed = b.frames.filter((m) => m.type === "dm").map((m) => (m.type === "dm" ? m.message.seq : 0));
    expect(replayed).toEqual([2, 3, 4]);
    // Then live ones continue the sequence.
    await sendDm(a, bob, "live");
    expect(await b.waitFor((m) => m.type === "dm" && m.message.text === "live")).toMatchObject({ message: { seq: 5 } });
    a.close();
    b.close();
  });

  /** Sends a DM, waiting out rate-limit refusals (the user's bucket allows 20 at once, then 10/s). */
  async function sendPaced(sock: Awaited<ReturnType<typeof inbox>>, to: string, text: string) {
    const clientMsgId = crypto.randomUUID();
    for (;;) {
      const r = await sendDm(sock, to, text, { clientMsgId });
      if (r.type !== "error" || r.code !== "rate_limited") return ackedMessage(r);
      await new Promise((res) => setTimeout(res, r.retryAfterMs ?? 100));
    }
  }

  it("a socket opened with ?sync=1 gets every missed message, then the live ones, in seq order, each once, while the peer keeps sending", async () => {
    const alice = uid("alice");
    const bob = uid("bob");
    const carol = uid("carol");
    await provision(alice, bob, carol);
    const a = await inbox(alice);
    const first = ackedMessage(await sendDm(a, bob, "seen"));
    for (let i = 0; i < 10; i++) await sendPaced(a, bob, `missed ${i}`);
    // Alice keeps sending while Bob's device reconnects and resumes.
    const TOTAL_LIVE = 30;
    let acked = 0;
    const sending = (async () => {
      for (let i = 0; i < TOTAL_LIVE; i++) {
        await sendPaced(a, bob, `live ${i}`);
        acked++;
      }
    })();
    await vi.waitFor(() => expect(acked).toBeGreaterThanOrEqual(3));
    const b = await connectWs(bob, "/api/chat/ws?sync=1");
    // Sent after the open: a first message in a conversation the sync will not name.
    const c = await inbox(carol);
    const fromCarol = ackedMessage(await sendDm(c, bob, "new conversation"));
    // Messages stored after the open: an unheld socket would have had them live already.
    const atOpen = acked;
    await vi.waitFor(() => expect(acked).toBeGreaterThanOrEqual(atOpen + 5));
    b.send({ type: "sync", id: "s1", since: { [first.conversationId]: first.seq } });
    await b.waitFor((m) => m.type === "ack" && m.id === "s1");
    await sending;
    await roundTrip(b);
    const seqs = b.frames.flatMap((m) => (m.type === "dm" && m.message.conversationId === first.conversationId ? [m.message.seq] : []));
    expect(seqs).toEqual(Array.from({ length: 10 + TOTAL_LIVE }, (_, i) => first.seq + 1 + i));
    expect(b.frames.filter((m) => m.type === "dm" && m.message.conversationId === fromCarol.conversationId).map((m) => m.type === "dm" && m.message.id)).toEqual([
      fromCarol.id,
    ]);
    // Nothing is held any more: the next message arrives live.
    const next = ackedMessage(await sendDm(c, bob, "after the sync"));
    await b.waitFor((m) => m.type === "dm" && m.message.id === next.id);
    for (const s of [a, b, c]) s.close();
  });

  it("a ?sync=1 socket holding no conversation goes live with sync { since: {} }, getting what arrived meanwhile first", async () => {
    const alice = uid("alice");
    const bob = uid("bob");
    await provision(alice, bob);
    const b = await connectWs(bob, "/api/chat/ws?sync=1");
    const a = await inbox(alice);
    const held = ackedMessage(await sendDm(a, bob, "while held"));
    await roundTrip(b);
    expect(b.frames.some((m) => m.type === "dm")).toBe(false);
    b.send({ type: "sync", id: "s", since: {} });
    await b.waitFor((m) => m.type === "ack" && m.id === "s");
    const live = ackedMessage(await sendDm(a, bob, "live"));
    await b.waitFor((m) => m.type === "dm" && m.message.id === live.id);
    expect(b.frames.flatMap((m) => (m.type === "dm" ? [m.message.id] : []))).toEqual([held.id, live.id]);
    a.close();
    b.close();
  });

  it("a ?sync=1 socket whose sync is cut short stays held until a sync is answered in full", async () => {
    const bob = uid("bob");
    const alice = uid("alice");
    await provision(alice, bob);
    const conversationId = await conversationIdFor(alice, bob);
    // Seed more than one sync's budget directly in Bob's inbox.
    await runInDurableObject(inboxStub(env, bob), (_i: Inbox, state) => {
      state.storage.sql.exec(
        "INSERT INTO conversations (id, peer_id, peer_name, created_at, last_seq, last_at) VALUES (?, ?, ?, 1, ?, 1)",
        conversationId,
        alice,
        alice,
        SYNC_ROWS_MAX + 5,
      );
      for (let seq = 1; seq <= SYNC_ROWS_MAX + 5; seq++) {
        state.storage.sql.exec(
          "INSERT INTO messages (conversation_id, seq, id, from_id, to_id, client_msg_id, text, created_at) VALUES (?, ?, ?, ?, ?, ?, 'x', 1)",
          conversationId,
          seq,
          `seed-${bob}-${seq}`,
          alice,
          bob,
          `c${seq}`,
        );
      }
    });
    const b = await connectWs(bob, "/api/chat/ws?sync=1");
    b.send({ type: "sync", id: "s1", since: { [conversationId]: 0 } });
    expect(await b.waitFor((m) => m.type === "ack" && m.id === "s1")).toMatchObject({ more: true });
    // A live message now is not sent ahead of the rest of the replay.
    const a = await inbox(alice);
    const live = ackedMessage(await sendDm(a, bob, "live"));
    await roundTrip(b);
    expect(b.frames.some((m) => m.type === "dm" && m.message.id === live.id)).toBe(false);
    b.send({ type: "sync", id: "s2", since: { [conversationId]: SYNC_ROWS_MAX } });
    expect(await b.waitFor((m) => m.type === "ack" && m.id === "s2")).not.toHaveProperty("more");
    const seqs = b.frames.flatMap((m) => (m.type === "dm" ? [m.message.seq] : []));
    expect(seqs).toEqual(Array.from({ length: SYNC_ROWS_MAX + 6 }, (_, i) => i + 1));
    a.close();
    b.close();
  });

  it(`replays at most ${SYNC_ROWS_MAX} messages per sync in all, and says when more remain`, async () => {
    const bob = uid("bob");
    const [p1, p2] = [uid("p1"), uid("p2")];
    const c1 = await conversationIdFor(bob, p1);
    const c2 = await conversationIdFor(bob, p2);
    // 600 stored messages in each of two conversations, written straight into Bob's inbox.
    await runInDurableObject(inboxStub(env, bob), (_i: Inbox, state) => {
      const sql = state.storage.sql;
      for (const [conv, peer] of [[c1, p1], [c2, p2]]) {
        sql.exec("INSERT INTO conversations (id, peer_id, peer_name, created_at, last_seq, last_at) VALUES (?, ?, ?, 1, 600, 1)", conv, peer, peer);
        for (let seq = 1; seq <= 600; seq++) {
          sql.exec(
            "INSERT INTO messages (conversation_id, seq, id, from_id, to_id, client_msg_id, text, created_at) VALUES (?, ?, ?, ?, ?, ?, 'x', 1)",
            conv,
            seq,
            `${conv}-${seq}`,
            peer,
            bob,
            `c${seq}`,
          );
        }
      }
    });
    const b = await inbox(bob);
    const replay = async (id: string, since: Record<string, number>) => {
      const mark = b.frames.length;
      b.send({ type: "sync", id, since });
      const ack = await b.waitFor((m) => m.type === "ack" && m.id === id);
      const dms = b.frames.slice(mark).flatMap((m) => (m.type === "dm" ? [m.message] : []));
      return { ack, dms };
    };
    const first = await replay("s1", { [c1]: 0, [c2]: 0 });
    expect(first.dms).toHaveLength(SYNC_ROWS_MAX);
    expect(first.ack).toMatchObject({ more: true });
    // The client keeps, per conversation, the last seq it got, and syncs again from there.
    const cursor = (conv: string, fallback: number) => first.dms.filter((m) => m.conversationId === conv).at(-1)?.seq ?? fallback;
    expect([cursor(c1, 0), cursor(c2, 0)]).toEqual([600, 400]);
    const second = await replay("s2", { [c1]: cursor(c1, 0), [c2]: cursor(c2, 0) });
    expect(second.dms.map((m) => [m.conversationId, m.seq])).toEqual(Array.from({ length: 200 }, (_, i) => [c2, 401 + i]));
    expect(second.ack).not.toHaveProperty("more");
    // The budget used up exactly, with nothing left after it: no `more`.
    const exact = await replay("s3", { [c1]: 0, [c2]: 200 });
    expect(exact.dms).toHaveLength(SYNC_ROWS_MAX);
    expect(exact.ack).not.toHaveProperty("more");
    b.close();
  });

  it("does not attach media to a DM the recipient refuses (blocked)", async () => {
    const alice = uid("alice");
    const bob = uid("bob");
    await provision(alice, bob);
    const media = `m-${crypto.randomUUID()}`;
    await env.DB.prepare(
      "INSERT INTO media (id, owner_id, content_type, size, sha256, r2_key, created_at) VALUES (?, ?, 'image/png', 68, 'x', ?, ?)",
    )
      .bind(media, alice, `media/${media}`, Date.now())
      .run();
    expect((await api(bob, "/api/chat/blocks", { method: "POST", json: { userId: alice } })).status).toBe(201);
    const a = await inbox(alice);
    a.send({ type: "send_dm", id: "m1", to: bob, clientMsgId: "blocked-media", text: "look", mediaIds: [media] });
    expect(await a.waitFor((m) => (m.type === "ack" || m.type === "error") && m.id === "m1")).toMatchObject({ type: "error", code: "blocked" });
    // Still unattached: Bob cannot read it, and Alice can use it elsewhere.
    const row = await env.DB.prepare("SELECT bound_kind, bound_id, bound_peer FROM media WHERE id = ?").bind(media).first();
    expect(row).toEqual({ bound_kind: null, bound_id: null, bound_peer: null });
    a.close();
  });

  it("GET /api/chat/ws needs an upgrade and a token", async () => {
    const alice = uid("alice");
    const res = await api(alice, "/api/chat/ws");
    expect(res.status).toBe(426);
    const anon = await SELF.fetch(`${BASE}/api/chat/ws`, { headers: { Upgrade: "websocket" } });
    expect(anon.status).toBe(401);
  });

  it("pushes a DM for an offline recipient through the real queue to the signed webhook", async () => {
    const config = env as unknown as Record<string, string | undefined>;
    config.PUSH_WEBHOOK_URL = "https://push.example/hook";
    config.PUSH_WEBHOOK_SECRET = "webhook-key";
    const posted: { url: string; body: string; signature: string | null }[] = [];
    // Only the third party's webhook is intercepted; the Durable Objects, D1 and the queue are real.
    const spy = vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
      const req = new Request(input, init);
      posted.push({ url: req.url, body: await req.text(), signature: req.headers.get(SIGNATURE_HEADER) });
      return new Response(null, { status: 204 });
    });
    try {
      const alice = uid("alice");
      const bob = uid("bob");
      const carol = uid("carol");
      await provision(alice, bob, carol);
      const c = await inbox(carol);
      const a = await inbox(alice);
      // Online recipient: delivered on the socket, no push.
      await sendDm(a, carol, "you are online");
      await c.waitFor(isDm(alice));
      // Offline recipient: the message is stored and a push goes out.
      const sent = ackedMessage(await sendDm(a, bob, "wake up, bob"));
      // Earlier tests' pushes may still be in the queue: look at Bob's only.
      const forBob = () => posted.filter((p) => (JSON.parse(p.body) as { userId: string }).userId === bob);
      await vi.waitFor(() => expect(forBob()).toHaveLength(1), { timeout: 10_000, interval: 50 });
      const [push] = forBob();
      expect(posted.some((p) => (JSON.parse(p.body) as { userId: string }).userId === carol)).toBe(false);
      expect(push.url).toBe("https://push.example/hook");
      expect(JSON.parse(push.body)).toMatchObject({
        kind: "dm",
        userId: bob,
        from: alice,
        conversationId: sent.conversationId,
        messageId: sent.id,
        preview: "wake up, bob",
        unread: 1,
      });
      expect(push.signature).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
      expect((await verifySignature("webhook-key", push.signature, push.body)).ok).toBe(true);
      // Bob finds it when he comes back.
      const page = await history(bob, sent.conversationId);
      expect(page.body.messages.map((m) => m.id)).toEqual([sent.id]);
      a.close();
      c.close();
    } finally {
      spy.mockRestore();
      config.PUSH_WEBHOOK_URL = "";
      config.PUSH_WEBHOOK_SECRET = undefined;
    }
  });

  it("attaches the sender's uploaded media to a DM, once, and refuses someone else's", async () => {
    const alice = uid("alice");
    const bob = uid("bob");
    await provision(alice, bob);
    const insert = (id: string, owner: string) =>
      env.DB.prepare(
        "INSERT INTO media (id, owner_id, content_type, size, sha256, r2_key, created_at) VALUES (?, ?, 'image/png', 68, 'x', ?, ?)",
      )
        .bind(id, owner, `media/${id}`, Date.now())
        .run();
    const mine = `m-${crypto.randomUUID()}`;
    const theirs = `m-${crypto.randomUUID()}`;
    await insert(mine, alice);
    await insert(theirs, bob);
    const a = await inbox(alice);
    const b = await inbox(bob);
    a.send({ type: "send_dm", id: "m1", to: bob, clientMsgId: "with-media", mediaIds: [mine] });
    const ack = await a.waitFor((m) => (m.type === "ack" || m.type === "error") && m.id === "m1");
    const sent = ackedMessage(ack);
    expect(sent.media).toEqual([{ id: mine, url: `/api/chat/media/${mine}`, contentType: "image/png", size: 68 }]);
    expect(sent.text).toBeUndefined();
    expect(await b.waitFor((m) => m.type === "dm")).toMatchObject({ message: { media: sent.media } });
    expect(await b.waitFor((m) => m.type === "notification")).toMatchObject({ preview: "[1 attachment]" });
    const row = await env.DB.prepare("SELECT bound_kind, bound_id, bound_peer FROM media WHERE id = ?").bind(mine).first();
    expect(row).toEqual({ bound_kind: "dm", bound_id: sent.conversationId, bound_peer: bob });

    // A retry of the same send is fine; reusing the media in another message is not.
    a.send({ type: "send_dm", id: "m2", to: bob, clientMsgId: "with-media", mediaIds: [mine] });
    expect(await a.waitFor((m) => m.type === "ack" && m.id === "m2")).toMatchObject({ duplicate: true });
    const carol = uid("carol");
    await provision(carol);
    a.send({ type: "send_dm", id: "m3", to: carol, clientMsgId: "reuse", mediaIds: [mine] });
    expect(await a.waitFor((m) => m.type === "error" && m.id === "m3")).toMatchObject({ code: "forbidden" });
    a.send({ type: "send_dm", id: "m4", to: bob, clientMsgId: "steal", mediaIds: [theirs] });
    expect(await a.waitFor((m) => m.type === "error" && m.id === "m4")).toMatchObject({ code: "not_found" });
    await roundTrip(b);
    expect(b.frames.filter((m) => m.type === "dm")).toHaveLength(1);
    a.close();
    b.close();
  });

  it("records the connecting user's coarse location without holding the upgrade", async () => {
    const alice = uid("alice");
    const s = await connectWs(alice, "/api/chat/ws?lat=48.8566&lon=2.3522");
    await vi.waitFor(
      async () => {
        const row = await env.DB.prepare("SELECT lat, lon FROM user_locations WHERE user_id = ?").bind(alice).first<{ lat: number; lon: number }>();
        expect(row).not.toBeNull();
        expect(Math.abs(row!.lat - 48.8566)).toBeLessThan(0.02);
      },
      { timeout: 5000, interval: 50 },
    );
    s.close();
  });

  it("translates read receipts into the reader's peer's own numbering", async () => {
    const alice = uid("alice");
    const bob = uid("bob");
    await provision(alice, bob);
    // Bob's inbox holds a message Alice's does not (a half-failed send never retried), so the two
    // copies of the conversation are numbered differently from then on.
    const conversationId = await conversationIdFor(alice, bob);
    await inboxStub(env, bob).receiveDm({
      id: "orphan",
      conversationId,
      from: alice,
      fromName: alice,
      to: bob,
      clientMsgId: "never-retried",
      text: "orphan",
      createdAt: Date.now(),
      senderSubscribes: false,
      senderView: null,
    });
    const a = await inbox(alice);
    const b = await inbox(bob);
    const mine = ackedMessage(await sendDm(a, bob, "numbered differently"));
    expect(mine.seq).toBe(1);
    const theirs = await b.waitFor((m) => m.type === "dm" && m.message.id === mine.id);
    expect(theirs).toMatchObject({ message: { seq: 2 } });
    b.send({ type: "mark_read", id: "r", conversationId, seq: 2 });
    expect(await a.waitFor((m) => m.type === "read")).toMatchObject({ userId: bob, seq: 1 });
    a.close();
    b.close();
  });
});
