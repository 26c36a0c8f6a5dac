import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { findUsers } from "../../src/db/queries";
import type { Inbox } from "../../src/objects/inbox";
import { SUBSCRIBERS_MAX } from "../../src/objects/inbox";
import { inboxStub } from "../../src/objects/stubs";
import type { ServerMessage } from "../../src/protocol";
import { api } from "../helpers";
import type { TestSocket } from "../helpers";
import { inbox, provision, roundTrip, sendDm, uid } from "../helpers/inbox";

type PresenceFrame = Extract<ServerMessage, { type: "presence" }>;

const presenceOf = (userId: string, status?: string) => (m: ServerMessage) =>
  m.type === "presence" && m.userId === userId && (status === undefined || m.status === status);

async function lookup(viewer: string, ids: string[]) {
  const res = await api(viewer, `/api/presence?userIds=${ids.join(",")}`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { presence: { userId: string; status: string; lastSeen: number | null }[] }).presence;
}

async function subscribe(sock: TestSocket, userIds: string[], id = crypto.randomUUID()) {
  sock.send({ type: "subscribe_presence", id, userIds });
  return sock.waitFor((m) => (m.type === "ack" || m.type === "error") && m.id === id);
}

/** The first frame at index `mark` or later that matches: what an action produced. */
function waitAfter<T extends ServerMessage>(sock: TestSocket, mark: number, pred: (m: ServerMessage) => boolean): Promise<T> {
  return sock.waitFor<T>((m) => pred(m) && sock.frames.lastIndexOf(m) >= mark);
}

/** Frames seen after index `from` (to check what a change produced). */
const after = (sock: TestSocket, from: number) => sock.frames.slice(from);

const config = env as unknown as Record<string, string | undefined>;

/** Reads one inbox's own SQLite storage (tables are created by its constructor). */
function inboxSql<T>(userId: string, fn: (sql: SqlStorage) => T): Promise<T> {
  return runInDurableObject(inboxStub(env, userId), (_i: Inbox, state) => fn(state.storage.sql));
}

const ids = (sql: SqlStorage, table: "subscribers" | "subscriptions") =>
  sql.exec<{ user_id: string }>(`SELECT user_id FROM ${table}`).toArray().map((r) => r.user_id);
afterEach(() => {
  config.PRESENCE_SUBSCRIBE_LIMIT = "500";
});

describe("presence", () => {
  it("is online while any tab is open and offline with lastSeen when the last one closes", async () => {
    const watcher = uid("watcher");
    const bob = uid("bob");
    await provision(watcher, bob);
    const w = await inbox(watcher);
    expect(await subscribe(w, [bob])).toMatchObject({ type: "ack" });
    expect(await w.waitFor<PresenceFrame>(presenceOf(bob))).toMatchObject({ status: "offline", lastSeen: null });

    const tab1 = await inbox(bob);
    await w.waitFor(presenceOf(bob, "online"));
    const mark = w.frames.length;
    const tab2 = await inbox(bob);
    await roundTrip(tab2);
    tab1.close();
    await roundTrip(tab2);
    // A second tab and the first one closing change nothing others can see.
    expect(await lookup(watcher, [bob])).toEqual([{ userId: bob, status: "online", lastSeen: null }]);
    const before = Date.now();
    tab2.close();
    const off = await w.waitFor<PresenceFrame>((m) => m.type === "presence" && m.userId === bob && m.status === "offline" && m.lastSeen !== null);
    expect(off.lastSeen).toBeGreaterThanOrEqual(before - 1000);
    expect(after(w, mark).filter((m) => m.type === "presence")).toHaveLength(1);
    const [looked] = await lookup(watcher, [bob]);
    expect(looked).toMatchObject({ status: "offline", lastSeen: off.lastSeen });
    w.close();
  });

  it("sets away, dnd and invisible (shown as offline); away resets on the next session, dnd persists", async () => {
    const watcher = uid("watcher");
    const bob = uid("bob");
    await provision(watcher, bob);
    const w = await inbox(watcher);
    await subscribe(w, [bob]);
    let b = await inbox(bob);
    await w.waitFor(presenceOf(bob, "online"));
    const change = async (status: string, expected: string) => {
      const mark = w.frames.length;
      const id = crypto.randomUUID();
      b.send({ type: "presence", id, status });
      await b.waitFor((m) => m.type === "ack" && m.id === id);
      return waitAfter<PresenceFrame>(w, mark, presenceOf(bob, expected));
    };
    await change("away", "away");
    const hidden = await change("invisible", "offline");
    expect(hidden.lastSeen).not.toBeNull();
    expect(await lookup(watcher, [bob])).toEqual([{ userId: bob, status: "offline", lastSeen: hidden.lastSeen }]);

    // While invisible, ending and starting a session reveals nothing.
    let mark = w.frames.length;
    b.close();
    b = await inbox(bob);
    await roundTrip(b);
    await roundTrip(w);
    expect(after(w, mark).filter(presenceOf(bob))).toEqual([]);

    // dnd is deliberate: it survives the next session.
    await change("dnd", "dnd");
    mark = w.frames.length;
    b.close();
    await waitAfter(w, mark, presenceOf(bob, "offline"));
    mark = w.frames.length;
    b = await inbox(bob);
    await waitAfter(w, mark, presenceOf(bob, "dnd"));
    expect(await lookup(watcher, [bob])).toMatchObject([{ status: "dnd" }]);

    // away is about idleness: the next session starts online.
    await change("away", "away");
    mark = w.frames.length;
    b.close();
    await waitAfter(w, mark, presenceOf(bob, "offline"));
    mark = w.frames.length;
    b = await inbox(bob);
    await waitAfter(w, mark, presenceOf(bob, "online"));

    // A bare presence frame is a heartbeat: acknowledged, nothing changes.
    mark = w.frames.length;
    b.send({ type: "presence", id: "hb" });
    await b.waitFor((m) => m.type === "ack" && m.id === "hb");
    await roundTrip(w);
    expect(after(w, mark).filter(presenceOf(bob))).toEqual([]);
    b.send({ type: "presence", id: "bad", status: "offline" });
    expect(await b.waitFor((m) => m.type === "error" && m.id === "bad")).toMatchObject({ code: "bad_request" });
    b.close();
    w.close();
  });

  it("answers a snapshot, then changes; enforces the subscription limit; unsubscribes", async () => {
    config.PRESENCE_SUBSCRIBE_LIMIT = "3";
    const watcher = uid("watcher");
    const [u1, u2, u3, u4] = [uid("u1"), uid("u2"), uid("u3"), uid("u4")];
    const ghost = uid("ghost");
    await provision(u1, u2, u3, u4);
    const s1 = await inbox(u1);
    const w = await inbox(watcher);
    // Oneself is skipped; an unknown id reads as offline and is not stored (it does not count).
    expect(await subscribe(w, [u1, u2, watcher, ghost])).toMatchObject({ type: "ack" });
    expect(w.frames.filter((m) => m.type === "presence").map((m) => m.type === "presence" && [m.userId, m.status])).toEqual([
      [u1, "online"],
      [u2, "offline"],
      [ghost, "offline"],
    ]);
    // Over the limit: refused whole, nothing added.
    expect(await subscribe(w, [u3, u4])).toMatchObject({ type: "error", code: "bad_request", message: expect.stringMatching(/limit of 3/) });
    expect(await subscribe(w, [u3, u1])).toMatchObject({ type: "ack" });
    const s3 = await inbox(u3);
    await w.waitFor(presenceOf(u3, "online"));
    w.send({ type: "unsubscribe_presence", id: "un", userIds: [u3] });
    await w.waitFor((m) => m.type === "ack" && m.id === "un");
    const mark = w.frames.length;
    s3.close();
    s1.close();
    await w.waitFor((m) => presenceOf(u1, "offline")(m) && w.frames.indexOf(m) >= mark);
    await roundTrip(w);
    expect(after(w, mark).filter(presenceOf(u3))).toEqual([]);
    expect(await subscribe(w, [u4])).toMatchObject({ type: "ack" });
    w.close();
  });

  it("subscribes DM peers automatically", async () => {
    const alice = uid("alice");
    const bob = uid("bob");
    await provision(alice, bob);
    const a = await inbox(alice);
    const b = await inbox(bob);
    await sendDm(a, bob, "hi");
    // Each learns the other's status on first contact, then follows changes.
    await a.waitFor(presenceOf(bob, "online"));
    await b.waitFor(presenceOf(alice, "online"));
    b.send({ type: "presence", id: "p", status: "dnd" });
    await a.waitFor(presenceOf(bob, "dnd"));
    a.close();
    await b.waitFor(presenceOf(alice, "offline"));
    b.close();
  });

  it("strangers' first DMs never use up the subscriptions a user asks for; automatic ones are bounded, quietest dropped first", async () => {
    config.PRESENCE_SUBSCRIBE_LIMIT = "2";
    const user = uid("user");
    const [s1, s2, s3] = [uid("stranger1"), uid("stranger2"), uid("stranger3")];
    const [f1, f2, f3] = [uid("friend1"), uid("friend2"), uid("friend3")];
    await provision(user, s1, s2, s3, f1, f2, f3);
    const u = await inbox(user);
    const strangers = await Promise.all([s1, s2, s3].map((s) => inbox(s)));
    // Each stranger's first DM subscribes the user to the stranger, automatically.
    for (const [i, sock] of strangers.entries()) {
      expect(await sendDm(sock, user, `hello ${i}`)).toMatchObject({ type: "ack" });
    }
    const rows = () =>
      inboxSql(user, (sql) =>
        sql
          .exec<{ user_id: string; auto: number }>("SELECT user_id, auto FROM subscriptions ORDER BY user_id")
          .toArray()
          .map((r) => [r.user_id, r.auto]),
      );
    // Bounded at the limit on their own: the quietest conversation's (the first stranger's) went.
    expect(await rows()).toEqual([
      [s2, 1],
      [s3, 1],
    ]);
    // The user still has the whole quota for subscriptions they ask for.
    expect(await subscribe(u, [f1, f2])).toMatchObject({ type: "ack" });
    expect(await subscribe(u, [f3])).toMatchObject({ type: "error", code: "bad_request", message: expect.stringMatching(/limit of 2 \(now 2\)/) });
    // A stranger's later first DM does not take an explicit subscription away either.
    const s4 = uid("stranger4");
    await provision(s4);
    const s4Sock = await inbox(s4);
    expect(await sendDm(s4Sock, user, "hello 4")).toMatchObject({ type: "ack" });
    expect(await rows()).toEqual(
      [
        [f1, 0],
        [f2, 0],
        [s3, 1],
        [s4, 1],
      ].sort((x, y) => String(x[0]).localeCompare(String(y[0]))),
    );
    // Automatic subscriptions still work: a stranger's status change reaches the user.
    const mark = u.frames.length;
    strangers[2].send({ type: "presence", id: "dnd", status: "dnd" });
    await waitAfter(u, mark, presenceOf(s3, "dnd"));
    [u, s4Sock, ...strangers].forEach((s) => s.close());
  });

  it("never shows a user's status to someone they block, either way, until unblocked", async () => {
    const alice = uid("alice");
    const bob = uid("bob");
    await provision(alice, bob);
    const a = await inbox(alice);
    const b = await inbox(bob);
    await subscribe(b, [alice]);
    await subscribe(a, [bob]);
    await b.waitFor(presenceOf(alice, "online"));
    expect((await api(alice, "/api/chat/blocks", { method: "POST", json: { userId: bob } })).status).toBe(201);
    // Bob sees Alice go offline at once, with no last-seen time; Alice sees the same of Bob.
    expect(await b.waitFor(presenceOf(alice, "offline"))).toMatchObject({ lastSeen: null });
    expect(await a.waitFor(presenceOf(bob, "offline"))).toMatchObject({ lastSeen: null });
    expect(await lookup(bob, [alice])).toEqual([{ userId: alice, status: "offline", lastSeen: null }]);
    expect(await lookup(alice, [bob])).toEqual([{ userId: bob, status: "offline", lastSeen: null }]);
    const mark = b.frames.length;
    a.send({ type: "presence", id: "p1", status: "away" });
    await a.waitFor((m) => m.type === "ack" && m.id === "p1");
    expect(await subscribe(b, [alice])).toMatchObject({ type: "ack" });
    await roundTrip(b);
    expect(after(b, mark).filter(presenceOf(alice)).map((m) => m.type === "presence" && m.status)).toEqual(["offline"]);
    expect((await api(alice, `/api/chat/blocks/${bob}`, { method: "DELETE" })).status).toBe(204);
    await b.waitFor(presenceOf(alice, "away"));
    await a.waitFor((m) => presenceOf(bob, "online")(m));
    expect(await lookup(bob, [alice])).toMatchObject([{ status: "away" }]);
    a.close();
    b.close();
  });

  it("GET /api/presence validates its input", async () => {
    const alice = uid("alice");
    expect((await api(alice, "/api/presence")).status).toBe(400);
    expect((await api(alice, "/api/presence?userIds=a,b%20c")).status).toBe(400);
    const many = Array.from({ length: 101 }, (_, i) => `u${i}`).join(",");
    expect((await api(alice, `/api/presence?userIds=${many}`)).status).toBe(400);
    const unknown = uid("nobody");
    expect(await lookup(alice, [unknown, alice])).toEqual([
      { userId: unknown, status: "offline", lastSeen: null },
      { userId: alice, status: "offline", lastSeen: null },
    ]);
  });

  it("findUsers looks up any number of ids, past D1's 100 bound parameters per query", async () => {
    const real = [uid("r1"), uid("r2"), uid("r3")];
    await provision(...real);
    const asked = [...Array.from({ length: 120 }, (_, i) => uid(`ghost${i}`)), ...real, ...Array.from({ length: 130 }, (_, i) => uid(`g${i}`))];
    const found = await findUsers(env, asked);
    expect([...found.keys()].sort()).toEqual([...real].sort());
  });

  it("unsubscribing tells only the inboxes actually watched: made-up ids create no inbox", async () => {
    const watcher = uid("watcher");
    const bob = uid("bob");
    const ghost = uid("ghost");
    await provision(watcher, bob);
    const w = await inbox(watcher);
    await subscribe(w, [bob]);
    w.send({ type: "unsubscribe_presence", id: "un", userIds: [ghost, bob] });
    expect(await w.waitFor((m) => (m.type === "ack" || m.type === "error") && m.id === "un")).toMatchObject({ type: "ack" });
    expect(await inboxSql(bob, (sql) => ids(sql, "subscribers"))).toEqual([]);
    expect(await inboxSql(watcher, (sql) => ids(sql, "subscriptions"))).toEqual([]);
    // The ghost's inbox was never called: nothing was ever written there (every RPC records its owner).
    expect(await inboxSql(ghost, (sql) => sql.exec("SELECT * FROM meta").toArray())).toEqual([]);
    w.close();
  });

  it(`caps the watchers of one user at ${SUBSCRIBERS_MAX}: past it, a snapshot but no subscription`, async () => {
    const bob = uid("bob");
    const [w1, w2, carol] = [uid("w1"), uid("w2"), uid("carol")];
    await provision(bob, w1, w2, carol);
    // Bob never connects here: a status change would fan out to every (fake) watcher.
    await inboxSql(bob, (sql) => {
      for (let i = 0; i < SUBSCRIBERS_MAX - 1; i++) sql.exec("INSERT INTO subscribers (user_id, created_at) VALUES (?, 0)", `fake-${i}`);
    });
    const s1 = await inbox(w1);
    expect(await subscribe(s1, [bob])).toMatchObject({ type: "ack" });
    const s2 = await inbox(w2);
    expect(await subscribe(s2, [bob])).toMatchObject({ type: "ack" });
    expect(await s2.waitFor<PresenceFrame>(presenceOf(bob))).toMatchObject({ status: "offline" });
    // A first DM is a subscription too, and capped the same way; Bob still subscribes back to Carol.
    const c = await inbox(carol);
    expect(await sendDm(c, bob, "hi")).toMatchObject({ type: "ack" });

    const bobs = await inboxSql(bob, (sql) => ({ watchers: ids(sql, "subscribers"), watching: ids(sql, "subscriptions") }));
    expect(bobs.watchers).toHaveLength(SUBSCRIBERS_MAX);
    expect(bobs.watchers).toContain(w1);
    expect(bobs.watchers).not.toContain(w2);
    expect(bobs.watchers).not.toContain(carol);
    expect(bobs.watching).toEqual([carol]);
    expect(await inboxSql(w1, (sql) => ids(sql, "subscriptions"))).toEqual([bob]);
    // No stored subscription that would never be updated (and would count against the caller's limit).
    expect(await inboxSql(w2, (sql) => ids(sql, "subscriptions"))).toEqual([]);
    expect(await inboxSql(carol, (sql) => ({ watchers: ids(sql, "subscribers"), watching: ids(sql, "subscriptions") }))).toEqual({
      watchers: [bob],
      watching: [],
    });
    await inboxSql(bob, (sql) => sql.exec("DELETE FROM subscribers WHERE user_id LIKE 'fake-%'"));
    for (const s of [s1, s2, c]) s.close();
  });

  it("a block's hidden status reaches the peer after a status push already under way", async () => {
    const alice = uid("alice");
    const bob = uid("bob");
    await provision(alice, bob);
    const b = await inbox(bob);
    await subscribe(b, [alice]);
    await b.waitFor(presenceOf(alice, "offline"));
    // Many watchers before Bob (the fan-out reads them in id order): Alice's "online" push reaches him
    // late, after several rounds of RPCs.
    const fakes = 400;
    await inboxSql(alice, (sql) => {
      for (let i = 0; i < fakes; i++) sql.exec("INSERT INTO subscribers (user_id, created_at) VALUES (?, 0)", `0fake-${alice}-${i}`);
    });
    // Alice connects: an "online" push starts in the background. While it is under way (some fake
    // watchers have answered, Bob's turn has not come), Alice blocks Bob.
    const a = await inbox(alice);
    await vi.waitFor(async () => expect((await inboxSql(alice, (sql) => ids(sql, "subscribers"))).length).toBeLessThan(fakes), {
      timeout: 10_000,
      interval: 5,
    });
    expect((await api(alice, "/api/chat/blocks", { method: "POST", json: { userId: bob } })).status).toBe(201);
    // The push is over when every fake watcher has answered "not subscribed" and been dropped.
    await vi.waitFor(async () => expect(await inboxSql(alice, (sql) => ids(sql, "subscribers"))).toEqual([bob]), { timeout: 15_000, interval: 100 });
    await roundTrip(b);
    const last = b.frames.filter(presenceOf(alice)).at(-1);
    expect(last).toMatchObject({ status: "offline", lastSeen: null });
    a.close();
    b.close();
  });
});
