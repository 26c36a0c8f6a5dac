import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import type { ServerMessage } from "../../src/protocol";
import { api } from "../helpers";
import type { TestSocket } from "../helpers";
import { inbox, provision, roundTrip, sendDm, uid } from "./inbox-helpers";

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
});
