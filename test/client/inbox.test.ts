/** The inbox in the SDK: starting positions, sync after reconnect (with `more`), dedupe, DM sends. */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { DmMessage } from "../../client/src/index.js";
import { type FakeSocket, dmMsg, makeClient, settle } from "./fake";

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

async function openInbox(conversations: Array<{ id: string; lastSeq: number }>) {
  const c = makeClient();
  c.rest.conversations.push(...conversations);
  const inbox = c.chat.inbox();
  const got: string[] = [];
  inbox.on("dm", (m) => got.push(`${m.conversationId}:${m.seq}`));
  await settle();
  return { ...c, inbox, got };
}

/** Answers every sync frame not answered yet with `frames` and an ack. */
function answerSync(s: FakeSocket, frames: DmMessage[] | ReturnType<typeof dmMsg>[], more = false) {
  const sync = s.last("sync")!;
  if (frames.length) s.receive({ type: "batch", frames: frames.map((message) => ({ type: "dm", message })) });
  s.receive({ type: "ack", id: sync.id, ...(more ? { more: true } : {}) });
  return sync;
}

async function reconnect(sockets: FakeSocket[]) {
  sockets.at(-1)!.serverClose(1006);
  await vi.advanceTimersByTimeAsync(1000);
  const s = sockets.at(-1)!;
  s.open();
  await settle(); // the conversation list is read after the socket opens
  return s;
}

describe("Inbox resume", () => {
  it("starts each conversation at the list's lastSeq, syncs from there, and emits nothing twice", async () => {
    const { chat, sockets, got, rest } = await openInbox([
      { id: "dm_a", lastSeq: 4 },
      { id: "dm_b", lastSeq: 0 },
    ]);
    expect(rest.calls[0]).toContain("/api/chat/dms");
    expect(sockets).toHaveLength(1);
    expect(sockets[0].url).toBe("ws://chat.test/api/chat/ws");
    sockets[0].open();
    await settle();
    // The list is read again after open; only conversations with something new are synced: none.
    expect(sockets[0].last("sync")).toBeUndefined();
    sockets[0].receive({ type: "dm", message: dmMsg("dm_a", 5) });
    sockets[0].receive({ type: "dm", message: dmMsg("dm_a", 5) });
    expect(got).toEqual(["dm_a:5"]);

    // Away: dm_a got 6 and 7, a new conversation dm_c began (2 messages).
    rest.conversations.length = 0;
    rest.conversations.push({ id: "dm_c", lastSeq: 2 }, { id: "dm_a", lastSeq: 7 }, { id: "dm_b", lastSeq: 0 });
    const s = await reconnect(sockets);
    const sync = s.last("sync")!;
    expect(sync.since).toEqual({ dm_c: 0, dm_a: 5 });
    // A live DM arrives before the replay (the server's socket was live before the sync): held.
    s.receive({ type: "dm", message: dmMsg("dm_a", 8) });
    expect(got).toEqual(["dm_a:5"]);
    // The replay repeats 8, which already came live: emitted once.
    answerSync(s, [dmMsg("dm_c", 1), dmMsg("dm_c", 2), dmMsg("dm_a", 6), dmMsg("dm_a", 7), dmMsg("dm_a", 8)]);
    await settle();
    // In order within each conversation (the order across conversations is not a promise).
    expect(got.filter((g) => g.startsWith("dm_a"))).toEqual(["dm_a:5", "dm_a:6", "dm_a:7", "dm_a:8"]);
    expect(got.filter((g) => g.startsWith("dm_c"))).toEqual(["dm_c:1", "dm_c:2"]);
    expect(got).toHaveLength(6);
    s.receive({ type: "dm", message: dmMsg("dm_a", 9) });
    expect(got.at(-1)).toBe("dm_a:9");
    await chat.close();
  });

  it("follows `more: true` from the positions reached, until an ack without it", async () => {
    const { chat, sockets, got, rest } = await openInbox([
      { id: "dm_a", lastSeq: 1 },
      { id: "dm_b", lastSeq: 1 },
    ]);
    sockets[0].open();
    await settle();
    rest.conversations.length = 0;
    rest.conversations.push({ id: "dm_a", lastSeq: 4 }, { id: "dm_b", lastSeq: 3 });
    const s = await reconnect(sockets);
    expect(s.last("sync")!.since).toEqual({ dm_a: 1, dm_b: 1 });
    answerSync(s, [dmMsg("dm_a", 2), dmMsg("dm_a", 3)], true);
    await settle();
    expect(s.last("sync")!.since).toEqual({ dm_a: 3, dm_b: 1 });
    answerSync(s, [dmMsg("dm_a", 4), dmMsg("dm_b", 2)], true);
    await settle();
    expect(s.last("sync")!.since).toEqual({ dm_a: 4, dm_b: 2 });
    answerSync(s, [dmMsg("dm_b", 3)]);
    await settle();
    expect(s.frames().filter((f) => f.type === "sync")).toHaveLength(3);
    expect(got).toEqual(["dm_a:2", "dm_a:3", "dm_a:4", "dm_b:2", "dm_b:3"]);
    await chat.close();
  });

  it("a sync refused with rate_limited is sent again from the same positions after retryAfterMs", async () => {
    const { chat, sockets, got, rest } = await openInbox([{ id: "dm_a", lastSeq: 1 }]);
    sockets[0].open();
    await settle();
    rest.conversations.length = 0;
    rest.conversations.push({ id: "dm_a", lastSeq: 3 });
    const s = await reconnect(sockets);
    const first = s.last("sync")!;
    s.receive({ type: "error", id: first.id, code: "rate_limited", message: "slow down", retryAfterMs: 500 });
    await vi.advanceTimersByTimeAsync(499);
    expect(s.last("sync")!.id).toBe(first.id);
    await vi.advanceTimersByTimeAsync(1);
    const again = s.last("sync")!;
    expect(again.id).not.toBe(first.id);
    expect(again.since).toEqual({ dm_a: 1 });
    answerSync(s, [dmMsg("dm_a", 2), dmMsg("dm_a", 3)]);
    await settle();
    expect(got).toEqual(["dm_a:2", "dm_a:3"]);
    await chat.close();
  });

  it("when the list cannot be read before the first connect, the list read after it is the starting point; DMs that came live are kept", async () => {
    const c = makeClient();
    c.rest.conversations.push({ id: "dm_a", lastSeq: 40 }, { id: "dm_b", lastSeq: 7 });
    c.rest.state.failures = 1;
    const inbox = c.chat.inbox();
    const got: string[] = [];
    inbox.on("dm", (m) => got.push(`${m.conversationId}:${m.seq}`));
    await settle();
    const s = c.sockets[0];
    expect(s).toBeDefined();
    s.open();
    // A DM arrives live before the list is read (it is counted in the list's lastSeq 8).
    c.rest.conversations[1].lastSeq = 8;
    s.receive({ type: "dm", message: dmMsg("dm_b", 8) });
    await settle();
    // No history replayed as new: nothing to sync; the live DM is emitted; the next ones follow.
    expect(s.last("sync")).toBeUndefined();
    expect(got).toEqual(["dm_b:8"]);
    s.receive({ type: "dm", message: dmMsg("dm_a", 41) });
    expect(got).toEqual(["dm_b:8", "dm_a:41"]);
    expect(inbox.position("dm_a")).toBe(41);
    await c.chat.close();
  });

  it("a live gap in one conversation triggers a sync of it and holds the later DMs until filled", async () => {
    const { chat, sockets, got } = await openInbox([{ id: "dm_a", lastSeq: 2 }]);
    const s = sockets[0];
    s.open();
    await settle();
    expect(s.last("sync")).toBeUndefined();
    s.receive({ type: "dm", message: dmMsg("dm_a", 4) });
    expect(got).toEqual([]);
    await settle();
    expect(s.last("sync")!.since).toEqual({ dm_a: 2 });
    answerSync(s, [dmMsg("dm_a", 3), dmMsg("dm_a", 4)]);
    await settle();
    expect(got).toEqual(["dm_a:3", "dm_a:4"]);
    await chat.close();
  });
});

describe("Inbox sends and requests", () => {
  it("sends DMs in order after the sync, resolving with the stored copy and emitting it once", async () => {
    const { chat, sockets, inbox, got } = await openInbox([]);
    const p = inbox.send("bob", { text: "hi" });
    const s = sockets[0];
    s.open();
    await settle();
    // Nothing to sync (no conversations yet): the queued DM goes out at once.
    expect(s.frames().map((f) => f.type)).toEqual(["send_dm"]);
    const f = s.last("send_dm")!;
    expect(f).toMatchObject({ to: "bob", text: "hi" });
    const stored = dmMsg("dm_new", 1, { from: "alice", to: "bob", clientMsgId: f.clientMsgId });
    s.receive({ type: "ack", id: f.id, message: stored });
    await expect(p).resolves.toEqual(stored);
    expect(got).toEqual(["dm_new:1"]);
    // The same DM arriving again (another device's echo, a sync repeat) is not emitted again.
    s.receive({ type: "dm", message: stored });
    expect(got).toEqual(["dm_new:1"]);
    await chat.close();
  });

  it("blocked rejects at once; mark_read is retried on the next connection until acked", async () => {
    const { chat, sockets, inbox } = await openInbox([]);
    const s = sockets[0];
    s.open();
    await settle();
    const p = inbox.send("carol", { text: "hello?" });
    const f = s.last("send_dm")!;
    s.receive({ type: "error", id: f.id, code: "blocked", message: "blocked" });
    await expect(p).rejects.toMatchObject({ code: "blocked" });

    const read = inbox.markRead("dm_x", 3);
    expect(s.last("mark_read")).toMatchObject({ conversationId: "dm_x", seq: 3 });
    const s2 = await reconnect(sockets);
    const again = s2.last("mark_read")!;
    expect(again).toMatchObject({ conversationId: "dm_x", seq: 3 });
    s2.receive({ type: "ack", id: again.id });
    await expect(read).resolves.toBeUndefined();
    await chat.close();
  });

  it("passes notifications, presence, read receipts, typing and suggestions through as typed events", async () => {
    const { chat, sockets, inbox } = await openInbox([]);
    const seen: string[] = [];
    inbox.on("notification", (n) => seen.push(`notification:${n.unread}`));
    inbox.on("presence", (p) => seen.push(`presence:${p.status}`));
    inbox.on("read", (r) => seen.push(`read:${r.seq}`));
    inbox.on("typing", (t) => seen.push(`typing:${t.on}`));
    inbox.on("suggestion", (x) => seen.push(`suggestion:${x.nearbyUsers}`));
    const s = sockets[0];
    s.open();
    await settle();
    s.receive({
      type: "batch",
      frames: [
        { type: "notification", kind: "dm", conversationId: "dm_a", from: "bob", fromName: "Bob", preview: "hey", unread: 2 },
        { type: "presence", userId: "bob", status: "away", lastSeen: null },
        { type: "read", conversationId: "dm_a", userId: "bob", seq: 7 },
        { type: "typing", userId: "bob", on: true, conversationId: "dm_a" },
        { type: "suggestion", nearbyUsers: 25, rooms: [], proposed: null },
      ],
    });
    expect(seen).toEqual(["notification:2", "presence:away", "read:7", "typing:true", "suggestion:25"]);
    await chat.close();
  });
});
