import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import type { Inbox, InboxSession } from "../../src/objects/inbox";
import { INBOX_SOCKETS_MAX } from "../../src/objects/inbox";
import { UPGRADE_HEADERS } from "../../src/objects/upgrade";
import { getSession, setSession } from "../../src/objects/session";
import { inboxStub } from "../../src/objects/stubs";
import { CLOSE, PING_FRAME } from "../../src/protocol";
import type { ServerMessage } from "../../src/protocol";
import { api, BASE, tokenFor } from "../helpers";
import type { TestSocket } from "../helpers";
import { SELF } from "cloudflare:test";
import { ackedMessage, inbox, provision, roundTrip, sendDm, uid } from "../helpers/inbox";

const presenceOf = (userId: string, status: string) => (m: ServerMessage) =>
  m.type === "presence" && m.userId === userId && m.status === status;

function closed(sock: TestSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => sock.ws.addEventListener("close", (ev) => resolve({ code: ev.code, reason: ev.reason }), { once: true }));
}

/** Makes every socket of a user look silent for a minute: the sweep's view of a client that vanished. */
async function backdate(userId: string, ms: number): Promise<void> {
  await runInDurableObject(inboxStub(env, userId), (_instance: Inbox, state) => {
    for (const ws of state.getWebSockets()) {
      const s = getSession<InboxSession>(ws)!;
      setSession<InboxSession>(ws, { ...s, lastSeenAt: s.lastSeenAt - ms, connectedAt: s.connectedAt - ms });
    }
  });
}

async function alarmAt(userId: string): Promise<number | null> {
  return runInDurableObject(inboxStub(env, userId), (_i: Inbox, state) => state.storage.getAlarm());
}

describe("Inbox object", () => {
  it("loses nothing when both inboxes are evicted mid-conversation", async () => {
    const alice = uid("alice");
    const bob = uid("bob");
    await provision(alice, bob);
    const a = await inbox(alice);
    const b = await inbox(bob);
    const m1 = ackedMessage(await sendDm(a, bob, "before eviction"));
    await b.waitFor((m) => m.type === "dm" && m.message.id === m1.id);

    await evictDurableObject(inboxStub(env, alice));
    await evictDurableObject(inboxStub(env, bob));

    // The hibernated sockets are still there, with their sessions.
    const m2 = ackedMessage(await sendDm(a, bob, "after eviction"));
    expect(m2.seq).toBe(2);
    expect(await b.waitFor((m) => m.type === "dm" && m.message.id === m2.id)).toMatchObject({ message: { seq: 2 } });
    const m3 = ackedMessage(await sendDm(b, alice, "reply"));
    expect(m3.seq).toBe(3);
    // Retrying the first message after eviction is still recognised.
    expect(await sendDm(a, bob, "before eviction", { clientMsgId: m1.clientMsgId })).toMatchObject({ duplicate: true, message: { id: m1.id } });

    for (const u of [alice, bob]) {
      const res = await api(u, `/api/chat/dms/${m1.conversationId}/messages`);
      const page = (await res.json()) as { messages: { seq: number; text: string }[] };
      expect(page.messages.map((m) => [m.seq, m.text])).toEqual([
        [3, "reply"],
        [2, "after eviction"],
        [1, "before eviction"],
      ]);
    }
    const convs = (await (await api(bob, "/api/chat/dms")).json()) as { conversations: { unread: number; lastSeq: number }[] };
    expect(convs.conversations[0]).toMatchObject({ lastSeq: 3, unread: 0 });
    a.close();
    b.close();
  });

  it("keeps statuses and subscriptions across eviction", async () => {
    const watcher = uid("watcher");
    const bob = uid("bob");
    await provision(watcher, bob);
    const w = await inbox(watcher);
    const b = await inbox(bob);
    w.send({ type: "subscribe_presence", id: "s", userIds: [bob] });
    await w.waitFor((m) => m.type === "ack" && m.id === "s");
    b.send({ type: "presence", id: "p", status: "dnd" });
    await w.waitFor(presenceOf(bob, "dnd"));

    await evictDurableObject(inboxStub(env, bob));
    await evictDurableObject(inboxStub(env, watcher));

    const res = await api(watcher, `/api/presence?userIds=${bob}`);
    expect(await res.json()).toEqual({ presence: [{ userId: bob, status: "dnd", lastSeen: null }] });
    b.send({ type: "presence", id: "p2", status: "away" });
    await w.waitFor(presenceOf(bob, "away"));
    b.close();
    await w.waitFor(presenceOf(bob, "offline"));
    // A new device of the watcher starts with the stored statuses of everyone watched.
    await evictDurableObject(inboxStub(env, watcher));
    const w2 = await inbox(watcher);
    const snap = await w2.waitFor<Extract<ServerMessage, { type: "presence" }>>((m) => m.type === "presence" && m.userId === bob);
    expect(snap.status).toBe("offline");
    expect(snap.lastSeen).not.toBeNull();
    w2.close();
    w.close();
  });

  it("sweeps a silent socket on the alarm, keeps one kept alive by auto-answered pings", async () => {
    const watcher = uid("watcher");
    const bob = uid("bob");
    await provision(watcher, bob);
    const w = await inbox(watcher);
    w.send({ type: "subscribe_presence", id: "s", userIds: [bob] });
    await w.waitFor((m) => m.type === "ack" && m.id === "s");
    const silent = await inbox(bob);
    const pinging = await inbox(bob);
    const heartbeat = await inbox(bob);
    await w.waitFor(presenceOf(bob, "online"));
    expect(await alarmAt(bob)).not.toBeNull();

    await backdate(bob, 60_000);
    // The exact ping frame is answered by the runtime, which records when; the object is not involved.
    pinging.send(PING_FRAME);
    await pinging.waitFor((m) => m.type === "pong");
    // A presence frame is a heartbeat too.
    heartbeat.send({ type: "presence", id: "hb" });
    await heartbeat.waitFor((m) => m.type === "ack" && m.id === "hb");
    let heartbeatClosed = false;
    heartbeat.ws.addEventListener("close", () => (heartbeatClosed = true));
    const silentClosed = closed(silent);
    expect(await runDurableObjectAlarm(inboxStub(env, bob))).toBe(true);
    expect(await silentClosed).toMatchObject({ code: 1001, reason: "heartbeat timeout" });
    await roundTrip(pinging);
    await roundTrip(heartbeat);
    expect(heartbeatClosed).toBe(false);
    expect((await (await api(watcher, `/api/presence?userIds=${bob}`)).json()) as unknown).toMatchObject({
      presence: [{ status: "online" }],
    });
    // Still a socket to watch: the next sweep is scheduled.
    expect(await alarmAt(bob)).not.toBeNull();

    // A client killed without a close: only the sweep notices, and the status follows.
    const carol = uid("carol");
    await provision(carol);
    w.send({ type: "subscribe_presence", id: "s2", userIds: [carol] });
    await w.waitFor((m) => m.type === "ack" && m.id === "s2");
    const gone = await inbox(carol);
    await w.waitFor(presenceOf(carol, "online"));
    await backdate(carol, 60_000);
    const goneClosed = closed(gone);
    const mark = w.frames.length;
    await runDurableObjectAlarm(inboxStub(env, carol));
    await goneClosed;
    const off = await w.waitFor<Extract<ServerMessage, { type: "presence" }>>(
      (m) => presenceOf(carol, "offline")(m) && w.frames.lastIndexOf(m) >= mark,
    );
    expect(off.lastSeen).not.toBeNull();
    // No sockets, no alarm: an idle inbox stays asleep.
    expect(await alarmAt(carol)).toBeNull();
    pinging.close();
    heartbeat.close();
    w.close();
  });

  it("deliver() sends a frame to every open socket of the user and counts them", async () => {
    const alice = uid("alice");
    const stub = inboxStub(env, alice);
    const frame = { type: "typing", userId: "x", on: true, conversationId: "dm_x" } as const;
    expect(await stub.deliver(frame)).toBe(0);
    const s1 = await inbox(alice);
    const s2 = await inbox(alice);
    expect(await stub.deliver(frame)).toBe(2);
    for (const s of [s1, s2]) expect(await s.waitFor((m) => m.type === "typing")).toMatchObject(frame);
    s1.close();
    s2.close();
  });

  it("rate-limits frames per connection and keeps the socket usable", async () => {
    const alice = uid("alice");
    const a = await inbox(alice);
    // Far beyond the burst (20), below the abuse limit of refusals in a row (50).
    for (let i = 0; i < 60; i++) a.send({ type: "presence" });
    const limited = await a.waitFor((m) => m.type === "error" && m.code === "rate_limited");
    expect(limited).toMatchObject({ retryAfterMs: expect.any(Number) });
    a.close();
  });

  it(`refuses a user's inbox socket past ${INBOX_SOCKETS_MAX} before the upgrade`, async () => {
    const alice = uid("alice");
    const socks = await Promise.all(Array.from({ length: INBOX_SOCKETS_MAX }, () => inbox(alice)));
    const token = await tokenFor(alice);
    const res = await SELF.fetch(`${BASE}/api/chat/ws`, { headers: { Upgrade: "websocket", Authorization: `Bearer ${token}` } });
    expect(res.status).toBe(429);
    expect(res.webSocket).toBeNull();
    expect(await res.json()).toMatchObject({ error: { code: "rate_limited" } });
    // Room for one more once a socket goes.
    socks[0].close();
    await vi.waitFor(async () => expect(await runInDurableObject(inboxStub(env, alice), (_i: Inbox, state) => state.getWebSockets().length)).toBe(INBOX_SOCKETS_MAX - 1), { timeout: 5000 });
    const again = await inbox(alice);
    await roundTrip(again);
    again.close();
    socks.slice(1).forEach((s) => s.close());
  });

  it("answers a failing upgrade with a JSON 500 and logs it, never throws", async () => {
    const alice = uid("alice");
    const spy = vi.spyOn(console, "error").mockImplementation(() => undefined);
    try {
      const res = await runInDurableObject(inboxStub(env, alice), async (instance: Inbox, state) => {
        // Storage that fails under the object: the upgrade cannot record anything.
        state.storage.sql.exec("DROP TABLE meta");
        return instance.fetch(new Request(`${BASE}/api/chat/ws`, { headers: { Upgrade: "websocket", [UPGRADE_HEADERS.userId]: alice } }));
      });
      expect(res.status).toBe(500);
      expect(await res.json()).toMatchObject({ error: { code: "internal" } });
      const logged = spy.mock.calls.map((c) => String(c[0])).find((line) => line.includes('"where":"upgrade"'));
      expect(JSON.parse(logged!)).toMatchObject({ level: "error", object: expect.stringMatching(/^Inbox:/) });
    } finally {
      spy.mockRestore();
    }
  });

  it("ignores frames that arrive after it closed the socket", async () => {
    const alice = uid("alice");
    const bob = uid("bob");
    await provision(alice, bob);
    const b = await inbox(bob);
    const a = await inbox(alice);
    const closedBy = closed(a);
    // The runtime still hands over frames that were queued when the object closed the socket (after a
    // rate-abuse or heartbeat close): here the object closes it, then gets such a frame, with a full bucket.
    const late = JSON.stringify({ type: "send_dm", id: "late", to: bob, clientMsgId: "late", text: "after the close" });
    await runInDurableObject(inboxStub(env, alice), async (instance: Inbox, state) => {
      const [ws] = state.getWebSockets();
      ws.close(CLOSE.POLICY, "rate limit abuse");
      await instance.webSocketMessage(ws, late);
    });
    expect(await closedBy).toMatchObject({ code: CLOSE.POLICY });
    await roundTrip(b);
    expect(b.frames.filter((m) => m.type === "dm")).toEqual([]);
    const convs = (await (await api(alice, "/api/chat/dms")).json()) as { conversations: unknown[] };
    expect(convs.conversations).toEqual([]);
    b.close();
  });
});
