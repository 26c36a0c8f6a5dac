/**
 * DM lifecycle (issue 14): edits and deletions by the author, reactions by either participant, on
 * both copies (the peer's by RPC through the ordered outbox, idempotently), the `rev` of every change
 * and its replay on `sync { sinceRev }`, blocks, rate limits, and eviction. Real inboxes, real D1.
 */
import { env, evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import type { Inbox } from "../../src/objects/inbox";
import { SYNC_ROWS_MAX } from "../../src/objects/inbox";
import { inboxStub } from "../../src/objects/stubs";
import { REACTIONS_DISTINCT_MAX } from "../../src/protocol";
import type { DmMessage, ServerMessage } from "../../src/protocol";
import { api, connectWs } from "../helpers";
import type { TestSocket } from "../helpers";
import { ackedMessage, inbox, isDm, provision, request, requestPaced, roundTrip, sendDm, uid } from "../helpers/inbox";

type Frame<T extends ServerMessage["type"]> = Extract<ServerMessage, { type: T }>;

async function historyOf(user: string, conversationId: string): Promise<DmMessage[]> {
  const res = await api(user, `/api/chat/dms/${conversationId}/messages`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { messages: DmMessage[] }).messages;
}

async function copyOf(user: string, conversationId: string, id: string): Promise<DmMessage> {
  const found = (await historyOf(user, conversationId)).find((m) => m.id === id);
  if (!found) throw new Error(`${user} has no copy of ${id}`);
  return found;
}

/** The inbox's latest change position, as a `sync` ack reports it. */
async function lastRevOf(user: string): Promise<number> {
  return runInDurableObject(inboxStub(env, user), (_i: Inbox, state) =>
    Number(state.storage.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = 'rev'").toArray()[0]?.value ?? 0),
  );
}

async function outboxOf(user: string): Promise<{ body: string; attempts: number; next_at: number }[]> {
  return runInDurableObject(inboxStub(env, user), (_i: Inbox, state) =>
    state.storage.sql.exec<{ body: string; attempts: number; next_at: number }>("SELECT body, attempts, next_at FROM outbox ORDER BY id").toArray(),
  );
}

/** The id of the message a lifecycle frame is about. */
function aboutId(m: ServerMessage): string | undefined {
  if (m.type === "message_deleted" || m.type === "reaction") return m.messageId;
  if (m.type === "message_updated" || m.type === "dm") return m.message.id;
  return undefined;
}

const framesOf = <T extends ServerMessage["type"]>(s: TestSocket, type: T, messageId?: string): Frame<T>[] =>
  s.frames.filter((m): m is Frame<T> => m.type === type && (messageId === undefined || aboutId(m) === messageId));

/** Two users with one message from alice to bob, delivered. */
async function pair(text = "hello there") {
  const alice = uid("alice");
  const bob = uid("bob");
  await provision(alice, bob);
  const a = await inbox(alice);
  const b = await inbox(bob);
  const sent = ackedMessage(await sendDm(a, bob, text));
  const got = await b.waitFor<Frame<"dm">>((m) => m.type === "dm" && m.message.id === sent.id);
  return { alice, bob, a, b, sent, theirs: got.message, conv: sent.conversationId };
}

describe("DM edits", () => {
  it("an edit by the author changes both copies and reaches every socket of both users, once", async () => {
    const { alice, bob, a, b, sent, theirs, conv } = await pair("helo wrld");
    const a2 = await inbox(alice);
    const b2 = await inbox(bob);
    const edit = { type: "edit_message", conversationId: conv, messageId: sent.id, text: "hello world" };
    const ack = (await request(a, edit)) as Frame<"ack">;
    expect(ack).toMatchObject({ type: "ack", message: { id: sent.id, seq: sent.seq, text: "hello world", editedAt: expect.any(Number) } });
    const edited = ack.message as DmMessage;
    expect(edited.rev).toBeGreaterThan(sent.rev!);
    // The author's other socket, and both of the peer's, in the peer's own numbering and rev.
    expect(await a2.waitFor((m) => m.type === "message_updated")).toEqual({ type: "message_updated", message: edited });
    for (const s of [b, b2]) {
      const u = await s.waitFor<Frame<"message_updated">>((m) => m.type === "message_updated");
      expect(u.message).toMatchObject({ id: sent.id, seq: theirs.seq, text: "hello world", editedAt: edited.editedAt });
      expect(u.message.rev).toBeGreaterThan(theirs.rev!);
    }
    for (const u of [alice, bob]) expect(await copyOf(u, conv, sent.id)).toMatchObject({ text: "hello world", editedAt: edited.editedAt });

    // The same frame again (a retry after a lost ack): answered as done, nothing changes anywhere.
    const bobRev = await lastRevOf(bob);
    const again = (await request(a, edit)) as Frame<"ack">;
    expect(again.message).toEqual(edited);
    await roundTrip(b);
    await roundTrip(a2);
    expect(framesOf(a, "message_updated")).toEqual([]);
    expect(framesOf(a2, "message_updated")).toHaveLength(1);
    expect(framesOf(b, "message_updated")).toHaveLength(1);
    expect(await lastRevOf(bob)).toBe(bobRev);
    for (const s of [a, a2, b, b2]) s.close();
  });

  it("refuses an edit or a deletion by the peer (forbidden) and bad frames, from the refused side: nothing changes, the socket stays usable", async () => {
    const { alice, bob, a, b, sent, conv } = await pair("mine, not yours");
    const before = { alice: await lastRevOf(alice), bob: await lastRevOf(bob) };
    const target = { conversationId: conv, messageId: sent.id };
    expect(await request(b, { type: "edit_message", ...target, text: "yours now" })).toMatchObject({ type: "error", code: "forbidden" });
    expect(await request(b, { type: "delete_message", ...target })).toMatchObject({ type: "error", code: "forbidden" });
    // Bad frames and unknown targets: specific codes.
    const carol = uid("carol");
    await provision(carol);
    const c = await inbox(carol);
    const other = ackedMessage(await sendDm(c, alice, "between alice and carol"));
    const cases: [Record<string, unknown>, string][] = [
      [{ type: "edit_message", conversationId: conv, messageId: "no-such-id", text: "x" }, "not_found"],
      [{ type: "edit_message", messageId: sent.id, text: "x" }, "bad_request"],
      [{ type: "edit_message", conversationId: other.conversationId, messageId: other.id, text: "x" }, "not_found"],
      [{ type: "delete_message", conversationId: other.conversationId, messageId: other.id }, "not_found"],
      [{ type: "react", conversationId: other.conversationId, messageId: other.id, emoji: "👍", on: true }, "not_found"],
      [{ type: "edit_message", ...target, text: "   " }, "bad_request"],
      [{ type: "edit_message", ...target, text: "x".repeat(4001) }, "too_large"],
      [{ type: "react", ...target, emoji: "ab", on: true }, "bad_request"],
      [{ type: "react", ...target, emoji: "👍👍", on: true }, "bad_request"],
      [{ type: "react", ...target, emoji: "👍" }, "bad_request"],
    ];
    for (const [frame, code] of cases) expect(await request(b, frame), JSON.stringify(frame)).toMatchObject({ type: "error", code });
    // The author's own frame with mentions (a DM has none) is refused too.
    expect(await request(a, { type: "edit_message", ...target, text: "x", mentions: [bob] })).toMatchObject({ type: "error", code: "bad_request" });
    await roundTrip(b);
    await roundTrip(a);
    for (const u of [alice, bob]) {
      const copy = await copyOf(u, conv, sent.id);
      expect(copy.text).toBe("mine, not yours");
      expect(copy).not.toHaveProperty("editedAt");
      expect(copy).not.toHaveProperty("deleted");
    }
    expect(await lastRevOf(bob)).toBe(before.bob);
    expect(await lastRevOf(alice)).toBe(before.alice + 1); // carol's message only
    expect(framesOf(a, "message_updated")).toEqual([]);
    expect(framesOf(a, "message_deleted")).toEqual([]);
    // Still usable: the author's edit goes through.
    expect(await request(a, { type: "edit_message", ...target, text: "edited by me" })).toMatchObject({ type: "ack" });
    await b.waitFor((m) => m.type === "message_updated");
    for (const s of [a, b, c]) s.close();
  });
});

describe("DM deletions", () => {
  it("leave a tombstone in its seq on both copies, drop text, media and reactions, release media no message uses, and are idempotent", async () => {
    const alice = uid("alice");
    const bob = uid("bob");
    await provision(alice, bob);
    const insert = (id: string) =>
      env.DB.prepare("INSERT INTO media (id, owner_id, content_type, size, sha256, r2_key, created_at) VALUES (?, ?, 'image/png', 68, 'x', ?, ?)")
        .bind(id, alice, `o/${id}`, Date.now())
        .run();
    const only = `m-${crypto.randomUUID()}`;
    const shared = `m-${crypto.randomUUID()}`;
    await insert(only);
    await insert(shared);
    const a = await inbox(alice);
    const a2 = await inbox(alice);
    const b = await inbox(bob);
    const d1 = ackedMessage(await request(a, { type: "send_dm", to: bob, clientMsgId: "d1", text: "with pictures", mediaIds: [only, shared] }));
    const d2 = ackedMessage(await request(a, { type: "send_dm", to: bob, clientMsgId: "d2", text: "same picture", mediaIds: [shared] }));
    const conv = d1.conversationId;
    const theirs = (await b.waitFor<Frame<"dm">>((m) => m.type === "dm" && m.message.id === d1.id)).message;
    expect(await request(b, { type: "react", conversationId: conv, messageId: d1.id, emoji: "👍", on: true })).toMatchObject({ type: "ack" });
    await a.waitFor((m) => m.type === "reaction");
    const unread = async () => ((await (await api(bob, "/api/chat/dms")).json()) as { conversations: { unread: number }[] }).conversations[0].unread;
    expect(await unread()).toBe(2);

    const ack = (await request(a, { type: "delete_message", conversationId: conv, messageId: d1.id })) as Frame<"ack">;
    const tomb = ack.message as DmMessage;
    expect(tomb).toEqual({
      id: d1.id,
      conversationId: conv,
      seq: d1.seq,
      from: alice,
      to: bob,
      clientMsgId: "d1",
      createdAt: d1.createdAt,
      deleted: true,
      deletedBy: alice,
      rev: expect.any(Number),
    });
    expect(await a2.waitFor((m) => m.type === "message_deleted")).toEqual({
      type: "message_deleted",
      messageId: d1.id,
      seq: d1.seq,
      deletedBy: alice,
      conversationId: conv,
      rev: tomb.rev,
    });
    expect(await b.waitFor((m) => m.type === "message_deleted")).toMatchObject({ messageId: d1.id, seq: theirs.seq, deletedBy: alice, conversationId: conv });
    // Both copies: the tombstone keeps its place; the log stays gap-free.
    for (const u of [alice, bob]) {
      const h = await historyOf(u, conv);
      expect(h.map((m) => m.seq)).toEqual([2, 1]);
      const t = h.find((m) => m.id === d1.id)!;
      expect(t).toMatchObject({ deleted: true, deletedBy: alice });
      for (const gone of ["text", "media", "reactions", "myReactions", "editedAt"]) expect(t).not.toHaveProperty(gone);
    }
    // No longer unread for bob.
    expect(await unread()).toBe(1);
    // The media only d1 carried is released to the sweep; the one d2 still carries stays bound.
    const bound = async (id: string) => (await env.DB.prepare("SELECT bound_kind FROM media WHERE id = ?").bind(id).first<{ bound_kind: string | null }>())?.bound_kind;
    await vi.waitFor(async () => expect(await bound(only)).toBeNull(), { timeout: 5000 });
    expect(await bound(shared)).toBe("dm");
    // Bob can no longer read it; alice (the owner) still can.
    expect((await api(bob, `/api/chat/media/${only}`)).status).toBe(404);
    await request(a, { type: "delete_message", conversationId: conv, messageId: d2.id });
    await vi.waitFor(async () => expect(await bound(shared)).toBeNull(), { timeout: 5000 });

    // Again: the tombstone is answered, nothing is sent or changed.
    const rev = await lastRevOf(bob);
    expect(await request(a, { type: "delete_message", conversationId: conv, messageId: d1.id })).toMatchObject({ type: "ack", message: tomb });
    // A tombstone takes no edit and no reaction.
    expect(await request(a, { type: "edit_message", conversationId: conv, messageId: d1.id, text: "back" })).toMatchObject({ type: "error", code: "not_found" });
    expect(await request(b, { type: "react", conversationId: conv, messageId: d1.id, emoji: "👍", on: false })).toMatchObject({ type: "error", code: "not_found" });
    await roundTrip(b);
    expect(framesOf(b, "message_deleted", d1.id)).toHaveLength(1);
    expect(await lastRevOf(bob)).toBe(rev);
    for (const s of [a, a2, b]) s.close();
  });
});

describe("DM reactions", () => {
  it("toggle one emoji per user, counted on both copies, each reader's own in myReactions, reaching both users", async () => {
    const { alice, bob, a, b, sent, conv } = await pair("react to me");
    const react = (s: TestSocket, emoji: string, on: boolean) => request(s, { type: "react", conversationId: conv, messageId: sent.id, emoji, on });
    const reacted = async (s: TestSocket, emoji: string, on: boolean) => ((await react(s, emoji, on)) as Frame<"ack">).message as DmMessage;

    expect(await reacted(a, "👍", true)).toMatchObject({ reactions: { "👍": 1 }, myReactions: ["👍"] });
    expect(await b.waitFor((m) => m.type === "reaction")).toMatchObject({
      type: "reaction",
      messageId: sent.id,
      emoji: "👍",
      userId: alice,
      on: true,
      count: 1,
      conversationId: conv,
      rev: expect.any(Number),
    });
    expect(await reacted(b, "👍", true)).toMatchObject({ reactions: { "👍": 2 }, myReactions: ["👍"] });
    expect(await a.waitFor((m) => m.type === "reaction" && m.userId === bob)).toMatchObject({ emoji: "👍", on: true, count: 2 });
    // At most one of each emoji per user: again is a no-op, answered with the state.
    expect(await reacted(a, "👍", true)).toMatchObject({ reactions: { "👍": 2 }, myReactions: ["👍"] });
    expect(await reacted(a, "❤️", true)).toMatchObject({ reactions: { "👍": 2, "❤️": 1 }, myReactions: ["👍", "❤️"] });
    expect(await reacted(a, "👍🏽", true)).toMatchObject({ reactions: { "👍": 2, "❤️": 1, "👍🏽": 1 } });
    expect(await reacted(a, "👍🏽", false)).toMatchObject({ reactions: { "👍": 2, "❤️": 1 } });
    const off = await reacted(b, "👍", false);
    expect(off).toMatchObject({ reactions: { "👍": 1, "❤️": 1 } });
    expect(off).not.toHaveProperty("myReactions");
    expect(await reacted(b, "👍", false)).toMatchObject({ reactions: { "👍": 1, "❤️": 1 } });
    await roundTrip(a);
    await roundTrip(b);
    // One frame per change on the other side: alice's 4 changes (👍, ❤️, 👍🏽 on and off) to bob, bob's 2 to alice.
    expect(framesOf(b, "reaction").map((f) => [f.emoji, f.on, f.count])).toEqual([
      ["👍", true, 1],
      ["❤️", true, 1],
      ["👍🏽", true, 1],
      ["👍🏽", false, 0],
    ]);
    expect(framesOf(a, "reaction").map((f) => [f.userId, f.emoji, f.on, f.count])).toEqual([
      [bob, "👍", true, 2],
      [bob, "👍", false, 1],
    ]);
    expect(await copyOf(alice, conv, sent.id)).toMatchObject({ reactions: { "👍": 1, "❤️": 1 }, myReactions: ["👍", "❤️"] });
    const bobs = await copyOf(bob, conv, sent.id);
    expect(bobs.reactions).toEqual({ "👍": 1, "❤️": 1 });
    expect(bobs).not.toHaveProperty("myReactions");
    a.close();
    b.close();
  });

  it(`allow at most ${REACTIONS_DISTINCT_MAX} distinct emoji on a message: one more is refused with too_large and nothing changes`, async () => {
    const { alice, bob, a, b, sent, conv } = await pair("popular");
    const emoji = ["😀", "😂", "😍", "😎", "😭", "😡", "👍", "👎", "👏", "🙏", "🔥", "🎉", "💯", "❤️", "💔", "👀", "🤔", "🙈", "🚀", "✅", "🍕"];
    for (const e of emoji.slice(0, REACTIONS_DISTINCT_MAX)) {
      expect(await requestPaced(a, { type: "react", conversationId: conv, messageId: sent.id, emoji: e, on: true })).toMatchObject({ type: "ack" });
    }
    const rev = await lastRevOf(bob);
    const refused = await requestPaced(b, { type: "react", conversationId: conv, messageId: sent.id, emoji: emoji[REACTIONS_DISTINCT_MAX], on: true });
    expect(refused).toMatchObject({ type: "error", code: "too_large" });
    expect(await lastRevOf(bob)).toBe(rev);
    // An emoji already there still counts, for both.
    for (const e of emoji.slice(0, REACTIONS_DISTINCT_MAX)) {
      expect(await requestPaced(b, { type: "react", conversationId: conv, messageId: sent.id, emoji: e, on: true })).toMatchObject({ type: "ack" });
    }
    for (const u of [alice, bob]) {
      const copy = await copyOf(u, conv, sent.id);
      expect(Object.keys(copy.reactions!)).toEqual(emoji.slice(0, REACTIONS_DISTINCT_MAX));
      expect(Object.values(copy.reactions!).every((n) => n === 2)).toBe(true);
    }
    // What the reactions cost on each copy: the two JSON columns of the row (issue 14: "say what a
    // message with 20 distinct reactions costs"). Recorded in docs/dms.md.
    const cost = async (u: string) =>
      runInDurableObject(inboxStub(env, u), (_i: Inbox, state) =>
        state.storage.sql
          .exec<{ n: number }>("SELECT COALESCE(length(CAST(reactions AS BLOB)), 0) + COALESCE(length(CAST(my_reactions AS BLOB)), 0) AS n FROM messages WHERE id = ?", sent.id)
          .one().n,
      );
    const bytes = { alice: await cost(alice), bob: await cost(bob) };
    console.log(`reaction storage, ${REACTIONS_DISTINCT_MAX} distinct emoji reacted by both users: ${JSON.stringify(bytes)} bytes per copy`);
    expect(bytes.alice).toBeLessThan(1024);
    expect(bytes.bob).toBeLessThan(1024);
    a.close();
    b.close();
  });
});

describe("DM changes and blocks", () => {
  it("a user who blocked the peer receives no change from them; changes are refused with blocked both ways, nothing changes", async () => {
    const { alice, bob, a, b, sent: m1, conv } = await pair("from alice");
    const m2 = ackedMessage(await sendDm(b, alice, "from bob"));
    await a.waitFor(isDm(bob));
    expect((await api(bob, "/api/chat/blocks", { method: "POST", json: { userId: alice } })).status).toBe(201);
    const revs = { alice: await lastRevOf(alice), bob: await lastRevOf(bob) };
    const on = (id: string) => ({ conversationId: conv, messageId: id });
    // The blocked side (alice), refused by bob's block:
    expect(await request(a, { type: "edit_message", ...on(m1.id), text: "changed" })).toMatchObject({ type: "error", code: "blocked" });
    expect(await request(a, { type: "delete_message", ...on(m1.id) })).toMatchObject({ type: "error", code: "blocked" });
    expect(await request(a, { type: "react", ...on(m2.id), emoji: "👍", on: true })).toMatchObject({ type: "error", code: "blocked" });
    // The blocking side (bob), refused by its own block:
    expect(await request(b, { type: "react", ...on(m1.id), emoji: "👍", on: true })).toMatchObject({ type: "error", code: "blocked" });
    expect(await request(b, { type: "edit_message", ...on(m2.id), text: "changed" })).toMatchObject({ type: "error", code: "blocked" });
    await roundTrip(a);
    await roundTrip(b);
    expect(await lastRevOf(alice)).toBe(revs.alice);
    expect(await lastRevOf(bob)).toBe(revs.bob);
    for (const u of [alice, bob]) {
      const h = await historyOf(u, conv);
      expect(h.map((m) => [m.text, m.deleted, m.reactions, m.editedAt])).toEqual([
        ["from bob", undefined, undefined, undefined],
        ["from alice", undefined, undefined, undefined],
      ]);
    }
    for (const s of [a, b]) expect(s.frames.filter((m) => ["message_updated", "message_deleted", "reaction"].includes(m.type))).toEqual([]);
    // A change that was already on its way when the block came is refused on arrival by the peer.
    expect(await inboxStub(env, bob).peerChange(alice, { kind: "edit", ...on(m1.id), text: "sneaky", editedAt: Date.now() })).toEqual({ ok: false, code: "blocked" });
    expect((await copyOf(bob, conv, m1.id)).text).toBe("from alice");
    // Unblocked: changes flow again.
    expect((await api(bob, `/api/chat/blocks/${alice}`, { method: "DELETE" })).status).toBe(204);
    expect(await request(a, { type: "edit_message", ...on(m1.id), text: "changed" })).toMatchObject({ type: "ack" });
    expect(await b.waitFor((m) => m.type === "message_updated")).toMatchObject({ message: { text: "changed" } });
    a.close();
    b.close();
  });
});

describe("DM changes: the outbox to the peer's copy", () => {
  it("a change whose call to the peer failed waits in the outbox across eviction, is retried by the alarm, and applies once", async () => {
    const { alice, bob, a, b, sent, conv } = await pair("before");
    const spy = vi.spyOn(console, "error").mockImplementation(() => undefined);
    try {
      // The peer's inbox fails every read of its messages: its storage, really broken for a while.
      await runInDurableObject(inboxStub(env, bob), (_i: Inbox, state) => state.storage.sql.exec("ALTER TABLE messages RENAME TO messages_away"));
      const ack = (await request(a, { type: "edit_message", conversationId: conv, messageId: sent.id, text: "after" })) as Frame<"ack">;
      expect(ack.message).toMatchObject({ text: "after" });
      // Half done: alice's copy changed, bob's not; the change waits with its first failure counted.
      await vi.waitFor(async () => expect((await outboxOf(alice))[0]?.attempts).toBe(1), { timeout: 5000 });
      const [pending] = await outboxOf(alice);
      expect(JSON.parse(pending.body)).toEqual({ kind: "edit", conversationId: conv, messageId: sent.id, text: "after", editedAt: (ack.message as DmMessage).editedAt });
      expect(await runInDurableObject(inboxStub(env, alice), (_i: Inbox, state) => state.storage.getAlarm())).not.toBeNull();
      // A second change meanwhile queues behind the first, in order, without using up its attempts.
      expect(await request(a, { type: "react", conversationId: conv, messageId: sent.id, emoji: "🙂", on: true })).toMatchObject({ type: "ack" });
      expect((await outboxOf(alice)).map((e) => [JSON.parse(e.body).kind, e.attempts])).toEqual([
        ["edit", 1],
        ["react", 0],
      ]);
      await runInDurableObject(inboxStub(env, bob), (_i: Inbox, state) => state.storage.sql.exec("ALTER TABLE messages_away RENAME TO messages"));
      expect((await copyOf(bob, conv, sent.id)).text).toBe("before");

      // Both inboxes evicted meanwhile: the outbox is storage, the sockets hibernated.
      await evictDurableObject(inboxStub(env, alice));
      await evictDurableObject(inboxStub(env, bob));
      while (Date.now() < pending.next_at) await new Promise((r) => setTimeout(r, 50));
      // The alarm is due now: the runtime may run it by itself before this call does (it did once
      // in CI, under load); either way the alarm is what retries the change.
      await runDurableObjectAlarm(inboxStub(env, alice));
      await vi.waitFor(async () => expect(await outboxOf(alice)).toEqual([]), { timeout: 5000 });
      expect(await copyOf(bob, conv, sent.id)).toMatchObject({ text: "after", editedAt: (ack.message as DmMessage).editedAt, reactions: { "🙂": 1 } });
      expect(await b.waitFor((m) => m.type === "message_updated")).toMatchObject({ message: { id: sent.id, text: "after" } });
      expect(await b.waitFor((m) => m.type === "reaction")).toMatchObject({ emoji: "🙂", count: 1 });
      expect(b.frames.findIndex((m) => m.type === "message_updated")).toBeLessThan(b.frames.findIndex((m) => m.type === "reaction"));

      // The same entry delivered again (the peer applied it but its answer was lost): nothing changes.
      const rev = await lastRevOf(bob);
      await runInDurableObject(inboxStub(env, alice), (_i: Inbox, state) =>
        state.storage.sql.exec("INSERT INTO outbox (peer_id, conversation_id, body, next_at, created_at) VALUES (?, ?, ?, 0, 0)", bob, conv, pending.body),
      );
      expect(await runDurableObjectAlarm(inboxStub(env, alice))).toBe(true);
      expect(await outboxOf(alice)).toEqual([]);
      await roundTrip(b);
      expect(framesOf(b, "message_updated")).toHaveLength(1);
      expect(await lastRevOf(bob)).toBe(rev);
    } finally {
      spy.mockRestore();
    }
    a.close();
    b.close();
  });

  it("the peer applies each change idempotently, keyed by the message id both copies share", async () => {
    const { alice, bob, a, b, sent, conv } = await pair("keyed");
    const peer = inboxStub(env, bob);
    const on = { conversationId: conv, messageId: sent.id };
    const editedAt = Date.now();
    // Each change twice, as a retry after a lost answer would deliver it: applied once.
    for (const change of [
      { kind: "react", ...on, emoji: "🎉", on: true },
      { kind: "react", ...on, emoji: "🎉", on: true },
      { kind: "edit", ...on, text: "keyed, edited", editedAt },
      { kind: "edit", ...on, text: "keyed, edited", editedAt },
      { kind: "delete", ...on },
      { kind: "delete", ...on },
      // Late arrivals after the deletion change nothing.
      { kind: "edit", ...on, text: "too late", editedAt: editedAt + 1 },
      { kind: "react", ...on, emoji: "🎉", on: false },
    ] as const) {
      expect(await peer.peerChange(alice, change)).toEqual({ ok: true });
    }
    await roundTrip(b);
    expect(b.frames.filter((m) => ["message_updated", "message_deleted", "reaction"].includes(m.type)).map((m) => m.type)).toEqual([
      "reaction",
      "message_updated",
      "message_deleted",
    ]);
    expect(await copyOf(bob, conv, sent.id)).toMatchObject({ deleted: true, deletedBy: alice });
    // Only the author edits or deletes; only a participant changes anything; unknown messages are refused for good.
    const mallory = uid("mallory");
    const own = ackedMessage(await sendDm(b, alice, "bob's own"));
    expect(await peer.peerChange(alice, { kind: "edit", conversationId: conv, messageId: own.id, text: "x", editedAt })).toEqual({ ok: false, code: "forbidden" });
    expect(await peer.peerChange(mallory, { kind: "delete", conversationId: conv, messageId: own.id })).toEqual({ ok: false, code: "not_found" });
    expect(await peer.peerChange(alice, { kind: "delete", conversationId: conv, messageId: "nope" })).toEqual({ ok: false, code: "not_found" });
    expect((await copyOf(bob, conv, own.id)).text).toBe("bob's own");
    a.close();
    b.close();
  });
});

describe("DM changes on resume (sync sinceRev)", () => {
  it("replays, after the new messages, the current state of each held message changed while away, each once; the ack gives lastRev", async () => {
    const { alice, bob, a, b, sent: m1, conv } = await pair("one");
    const m2 = ackedMessage(await sendDm(a, bob, "two"));
    const m3 = ackedMessage(await sendDm(a, bob, "three"));
    await b.waitFor((m) => m.type === "dm" && m.message.id === m3.id);
    // Bob's device holds seq 1-3 and asks where the inbox stands.
    const first = (await request(b, { type: "sync", since: { [conv]: 3 }, sinceRev: 0 })) as Frame<"ack">;
    expect(first.lastRev).toBe(await lastRevOf(bob));
    b.close();

    // While bob is away: an edit, a deletion, a reaction, a new message; then both inboxes are evicted.
    await request(a, { type: "edit_message", conversationId: conv, messageId: m1.id, text: "one, edited" });
    await request(a, { type: "delete_message", conversationId: conv, messageId: m2.id });
    await request(a, { type: "react", conversationId: conv, messageId: m3.id, emoji: "🔥", on: true });
    const m4 = ackedMessage(await sendDm(a, bob, "four"));
    await vi.waitFor(async () => expect(await outboxOf(alice)).toEqual([]));
    await evictDurableObject(inboxStub(env, alice));
    await evictDurableObject(inboxStub(env, bob));

    const back = await connectWs(bob, "/api/chat/ws?sync=1");
    const ack = (await request(back, { type: "sync", since: { [conv]: 3 }, sinceRev: first.lastRev })) as Frame<"ack">;
    const replay = back.frames.filter((m) => ["dm", "message_updated", "message_deleted", "reaction"].includes(m.type));
    expect(replay.map((m) => [m.type, aboutId(m)])).toEqual([
      ["dm", m4.id],
      ["message_updated", m1.id],
      ["message_deleted", m2.id],
      ["message_updated", m3.id],
    ]);
    expect(replay[1]).toMatchObject({ message: { seq: 1, text: "one, edited", editedAt: expect.any(Number) } });
    expect(replay[2]).toMatchObject({ seq: 2, deletedBy: alice, conversationId: conv });
    expect(replay[3]).toMatchObject({ message: { seq: 3, reactions: { "🔥": 1 } } });
    // Changes come in rev order; the ack covers everything up to the inbox's latest change.
    const revs = replay.slice(1).map((m) => (m.type === "message_deleted" ? m.rev : (m as Frame<"message_updated">).message.rev));
    expect(revs).toEqual([...revs].sort((x, y) => x! - y!));
    expect(ack).toMatchObject({ lastRev: await lastRevOf(bob) });
    expect(ack).not.toHaveProperty("more");

    // In step: a sync from there replays nothing.
    const mark = back.frames.length;
    const again = (await request(back, { type: "sync", since: { [conv]: 4 }, sinceRev: ack.lastRev })) as Frame<"ack">;
    expect(again.lastRev).toBe(ack.lastRev);
    expect(back.frames.slice(mark).filter((m) => m.type !== "ack")).toEqual([]);

    // A change made while a resuming socket is held is not sent live to it, but replayed by its sync, once.
    const held = await connectWs(bob, "/api/chat/ws?sync=1");
    await request(a, { type: "react", conversationId: conv, messageId: m1.id, emoji: "👀", on: true });
    await back.waitFor((m) => m.type === "reaction" && m.emoji === "👀");
    await roundTrip(held);
    expect(framesOf(held, "reaction")).toEqual([]);
    const heldAck = (await request(held, { type: "sync", since: { [conv]: 4 }, sinceRev: ack.lastRev })) as Frame<"ack">;
    expect(held.frames.filter((m) => m.type === "message_updated").map((m) => (m as Frame<"message_updated">).message)).toEqual([
      expect.objectContaining({ id: m1.id, reactions: { "👀": 1 } }),
    ]);
    expect(heldAck.lastRev).toBeGreaterThan(ack.lastRev!);
    // Live from there.
    await request(a, { type: "edit_message", conversationId: conv, messageId: m4.id, text: "four, edited" });
    expect(await held.waitFor((m) => m.type === "message_updated" && m.message.id === m4.id)).toMatchObject({ message: { text: "four, edited" } });
    back.close();
    held.close();
    a.close();
  });

  it(`cuts a long replay of changes at ${SYNC_ROWS_MAX} rows in rev order, new messages waiting, and continues from lastRev, each once`, async () => {
    const bob = uid("bob");
    const alice = uid("alice");
    const conv = "dm_00000000000000000000000000000abc";
    // Bob's inbox as 1010 messages and then 1005 changes to the first of them (reactions, say) would
    // leave it, then 3 new messages: written directly, in the shape the inbox writes.
    await runInDurableObject(inboxStub(env, bob), (_i: Inbox, state) => {
      const sql = state.storage.sql;
      sql.exec("INSERT INTO conversations (id, peer_id, peer_name, created_at, last_seq, last_at) VALUES (?, ?, 'Alice', 1, 1013, 1)", conv, alice);
      for (let seq = 1; seq <= 1013; seq++) {
        const changed = seq <= 1005;
        const rev = seq <= 1010 ? (changed ? 1010 + seq : seq) : 2015 + (seq - 1010);
        sql.exec(
          "INSERT INTO messages (conversation_id, seq, id, from_id, to_id, client_msg_id, text, created_at, reactions, rev) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
          conv,
          seq,
          `m${seq}`,
          alice,
          bob,
          `c${seq}`,
          `message ${seq}`,
          seq,
          changed ? JSON.stringify({ "👍": 1 }) : null,
          rev,
        );
      }
      sql.exec("INSERT INTO meta (key, value) VALUES ('rev', '2018') ON CONFLICT (key) DO UPDATE SET value = excluded.value");
    });
    const s = await connectWs(bob, "/api/chat/ws?sync=1");
    const first = (await request(s, { type: "sync", since: { [conv]: 1010 }, sinceRev: 1010 })) as Frame<"ack">;
    expect(first).toMatchObject({ more: true, lastRev: 2010 });
    const one = s.frames.filter((m) => m.type !== "ack");
    expect(one).toHaveLength(SYNC_ROWS_MAX);
    expect(one.every((m) => m.type === "message_updated")).toBe(true);
    const second = (await request(s, { type: "sync", since: { [conv]: 1010 }, sinceRev: first.lastRev })) as Frame<"ack">;
    expect(second).toMatchObject({ lastRev: 2018 });
    expect(second).not.toHaveProperty("more");
    const two = s.frames.slice(one.length + 1).filter((m) => m.type !== "ack");
    expect(two.map((m) => [m.type, aboutId(m)])).toEqual([
      ["dm", "m1011"],
      ["dm", "m1012"],
      ["dm", "m1013"],
      ...[1001, 1002, 1003, 1004, 1005].map((n) => ["message_updated", `m${n}`]),
    ]);
    // Every changed message once, new ones once.
    const ids = [...one, ...two].map(aboutId);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toHaveLength(1008);
    s.close();
  });

  it("a held socket whose sync has no sinceRev still gets the changes made during its hold", async () => {
    const { bob, a, sent, conv } = await pair("hold me");
    const held = await connectWs(bob, "/api/chat/ws?sync=1");
    await request(a, { type: "edit_message", conversationId: conv, messageId: sent.id, text: "held edit" });
    await vi.waitFor(async () => expect((await copyOf(bob, conv, sent.id)).text).toBe("held edit"));
    // The hold (and where it started) is in the socket's attachment: it outlives eviction.
    await evictDurableObject(inboxStub(env, bob));
    const ack = (await request(held, { type: "sync", since: { [conv]: 1 } })) as Frame<"ack">;
    expect(framesOf(held, "message_updated").map((m) => m.message.text)).toEqual(["held edit"]);
    expect(ack.lastRev).toBe(await lastRevOf(bob));
    held.close();
    a.close();
  });
});

describe("DM lifecycle frames and the rate limit", () => {
  it("every lifecycle frame costs a token of the user's bucket: past it, rate_limited, the refused frames change nothing, the socket stays usable", async () => {
    const { bob, a, b, sent, conv } = await pair("v");
    // Far beyond the burst (20), below the abuse limit of refusals in a row (50).
    const ids = Array.from({ length: 45 }, (_, i) => `e${i}`);
    for (const [i, id] of ids.entries()) a.send({ type: "edit_message", id, conversationId: conv, messageId: sent.id, text: `v${i}` });
    const answers = await Promise.all(ids.map((id) => a.waitFor((m) => (m.type === "ack" || m.type === "error") && m.id === id, 10_000)));
    const refused = answers.filter((m) => m.type === "error");
    expect(refused.length).toBeGreaterThan(0);
    for (const r of refused) expect(r).toMatchObject({ code: "rate_limited", retryAfterMs: expect.any(Number) });
    const done = answers.filter((m) => m.type === "ack").map((m) => ((m as Frame<"ack">).message as DmMessage).text);
    // Bob's copy went through exactly the accepted edits, in order, and ends at the last one.
    await vi.waitFor(async () => expect((await copyOf(bob, conv, sent.id)).text).toBe(done.at(-1)));
    await roundTrip(b);
    expect(framesOf(b, "message_updated").map((m) => m.message.text)).toEqual(done);
    // Usable once the bucket refills.
    expect(await requestPaced(a, { type: "react", conversationId: conv, messageId: sent.id, emoji: "✅", on: true })).toMatchObject({ type: "ack" });
    a.close();
    b.close();
  });
});
