/** Rooms in the SDK: join, resume with since, truncated replays, dedupe by seq, and the send queue. */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { LocalStorageOutboxStore, type RoomMessage, type StorageLike } from "../../client/src/index.js";
import { type FakeSocket, makeClient, roomMsg, roomState, settle } from "./fake";

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

/** Opens the socket and answers the join with room_state (and the join's ack). */
function answerJoin(s: FakeSocket, lastSeq: number, over: Record<string, unknown> = {}, replay: ReturnType<typeof roomMsg>[] = []) {
  if (s.readyState !== 1) s.open();
  const join = s.last("join_room")!;
  s.receive(roomState(lastSeq, over));
  if (replay.length) s.receive({ type: "batch", frames: replay.map((message) => ({ type: "message", message })) });
  s.receive({ type: "ack", id: join.id });
  return join;
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

async function joinedRoom(lastSeq = 0, over = {}) {
  const c = makeClient(over);
  const room = c.chat.room("general");
  const got: number[] = [];
  room.on("message", (m) => got.push(m.seq));
  await settle();
  c.sockets[0].open();
  answerJoin(c.sockets[0], lastSeq);
  return { ...c, room, got };
}

async function reconnect(sockets: FakeSocket[]) {
  sockets.at(-1)!.serverClose(1006);
  // random() = 0.5: the first retry after a short-lived connection comes within base (500 ms) / 2.
  await vi.advanceTimersByTimeAsync(1000);
  const s = sockets.at(-1)!;
  s.open();
  return s;
}

describe("Room resume", () => {
  it("joins without since first, emits live messages once, and rejoins with since = the highest seq seen", async () => {
    const { chat, sockets, room, got } = await joinedRoom(5);
    expect(sockets[0].frames()[0]).toEqual({ type: "join_room", id: 1 });
    expect(room.position).toBe(5);
    sockets[0].receive({ type: "message", message: roomMsg(6) });
    sockets[0].receive({ type: "message", message: roomMsg(6) }); // a duplicate
    sockets[0].receive({ type: "batch", frames: [{ type: "message", message: roomMsg(7) }, { type: "message", message: roomMsg(8) }] });
    expect(got).toEqual([6, 7, 8]);

    const s = await reconnect(sockets);
    const join = s.last("join_room")!;
    expect(join.since).toBe(8);
    // The replay overlaps what was seen (7, 8): emitted once each.
    answerJoin(s, 11, {}, [roomMsg(7), roomMsg(8), roomMsg(9), roomMsg(10), roomMsg(11)]);
    s.receive({ type: "message", message: roomMsg(12) });
    expect(got).toEqual([6, 7, 8, 9, 10, 11, 12]);
    await chat.close();
  });

  it("follows replayTruncated/nextSince until caught up, holding live messages until then, in order", async () => {
    const { chat, sockets, got } = await joinedRoom(10);
    const s = await reconnect(sockets);
    expect(s.last("join_room")!.since).toBe(10);
    s.receive(roomState(2500, { replayTruncated: true, nextSince: 1010 }));
    s.receive({ type: "batch", frames: Array.from({ length: 1000 }, (_, i) => ({ type: "message", message: roomMsg(11 + i) })) });
    s.receive({ type: "ack", id: s.last("join_room")!.id });
    // Live messages arrive while the rest is still missing: held, not emitted ahead of the gap.
    s.receive({ type: "message", message: roomMsg(2501) });
    expect(got.length).toBe(0);
    const second = s.last("join_room")!;
    expect(second.since).toBe(1010);
    s.receive(roomState(2501, { replayTruncated: true, nextSince: 2010 }));
    s.receive({ type: "batch", frames: Array.from({ length: 1000 }, (_, i) => ({ type: "message", message: roomMsg(1011 + i) })) });
    s.receive({ type: "ack", id: second.id });
    const third = s.last("join_room")!;
    expect(third.since).toBe(2010);
    s.receive(roomState(2501));
    s.receive({ type: "batch", frames: Array.from({ length: 490 }, (_, i) => ({ type: "message", message: roomMsg(2011 + i) })) });
    s.receive({ type: "ack", id: third.id });
    expect(got).toEqual(Array.from({ length: 2491 }, (_, i) => 11 + i));
    expect(s.frames().filter((f) => f.type === "join_room")).toHaveLength(3);
    await chat.close();
  });

  it("a gap in the live stream holds what follows and asks for the missing part on the same socket", async () => {
    const { chat, sockets, got } = await joinedRoom(3);
    const s = sockets[0];
    s.receive({ type: "message", message: roomMsg(4) });
    s.receive({ type: "message", message: roomMsg(6) }); // 5 is missing
    s.receive({ type: "message", message: roomMsg(7) });
    expect(got).toEqual([4]);
    const rejoin = s.last("join_room")!;
    expect(rejoin.since).toBe(4);
    answerJoin(s, 7, {}, [roomMsg(5)]);
    expect(got).toEqual([4, 5, 6, 7]);
    await chat.close();
  });

  it("a continuation join refused with rate_limited is sent again after retryAfterMs, and nothing is skipped", async () => {
    const { chat, sockets, got } = await joinedRoom(0);
    const s = await reconnect(sockets);
    s.receive(roomState(1500, { replayTruncated: true, nextSince: 1000 }));
    s.receive({ type: "batch", frames: Array.from({ length: 1000 }, (_, i) => ({ type: "message", message: roomMsg(1 + i) })) });
    s.receive({ type: "ack", id: s.last("join_room")!.id });
    const throttled = s.last("join_room")!;
    expect(throttled.since).toBe(1000);
    s.receive({ type: "error", id: throttled.id, code: "rate_limited", message: "slow down", retryAfterMs: 900 });
    await vi.advanceTimersByTimeAsync(899);
    expect(s.last("join_room")!.id).toBe(throttled.id);
    expect(got).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    const again = s.last("join_room")!;
    expect(again.id).not.toBe(throttled.id);
    expect(again.since).toBe(1000);
    answerJoin(s, 1500, {}, Array.from({ length: 500 }, (_, i) => roomMsg(1001 + i)));
    expect(got).toEqual(range(1, 1500));
    await chat.close();
  });

  it("a join refused for good (forbidden) fails the room's queued sends and closes it", async () => {
    const { chat, sockets, room } = await joinedRoom(0);
    const errors: string[] = [];
    room.on("error", (e) => errors.push(e.code));
    const s = await reconnect(sockets);
    const outcome = room.send({ text: "x" }).then(
      () => "stored",
      (e) => e.code,
    );
    s.receive({ type: "error", id: s.last("join_room")!.id, code: "forbidden", message: "banned" });
    expect(await outcome).toBe("forbidden");
    expect(errors).toEqual(["forbidden"]);
    expect(room.state).toBe("closed");
    await chat.close();
  });

  it("the first join's recent messages come in `state`, not as message events", async () => {
    const { chat, sockets } = makeClient();
    const r = chat.room("general");
    expect(r).toBeDefined();
    const states: number[] = [];
    const got: number[] = [];
    r.on("state", (st) => states.push(st.messages.length));
    r.on("message", (m) => got.push(m.seq));
    await settle();
    sockets[0].open();
    answerJoin(sockets[0], 3, { messages: [roomMsg(1), roomMsg(2), roomMsg(3)], present: [{ userId: "bob", name: "Bob" }] });
    expect(states).toEqual([3]);
    expect(got).toEqual([]);
    expect(r.present).toEqual([{ userId: "bob", name: "Bob" }]);
    await chat.close();
  });
});

describe("Room sends", () => {
  it("resolves with the stored message from the ack, emits it once as a message, in stream order", async () => {
    const { chat, sockets, room, got } = await joinedRoom(2);
    const s = sockets[0];
    const p = room.send({ text: "hi" });
    await settle();
    const frame = s.last("send_room_message")!;
    expect(frame).toMatchObject({ text: "hi", type: "send_room_message" });
    const stored = roomMsg(4, { clientMsgId: frame.clientMsgId, userId: "alice" });
    // Server order: message 3 (someone else) then the ack of our 4, in one batch.
    s.receive({ type: "batch", frames: [{ type: "message", message: roomMsg(3) }, { type: "ack", id: frame.id, message: stored }] });
    await expect(p).resolves.toEqual(stored);
    expect(got).toEqual([3, 4]);
    await chat.close();
  });

  it("queues sends while disconnected, in order, and retries one dropped mid-flight with the same clientMsgId", async () => {
    const { chat, sockets, room } = await joinedRoom(0);
    sockets[0].serverClose(1006);
    const p1 = room.send({ text: "one" });
    const p2 = room.send({ text: "two" });
    expect(room.pending().map((e) => e.text)).toEqual(["one", "two"]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(sockets).toHaveLength(2);
    const s1 = sockets[1];
    s1.open();
    // Nothing is sent before the join is answered: a send needs a joined socket.
    expect(s1.frames().map((f) => f.type)).toEqual(["join_room"]);
    answerJoin(s1, 0);
    const first = s1.last("send_room_message")!;
    expect(first.text).toBe("one");
    expect(s1.frames().filter((f) => f.type === "send_room_message")).toHaveLength(1); // one in flight
    // The socket dies before the ack.
    s1.serverClose(1006);
    await vi.advanceTimersByTimeAsync(1000);
    expect(sockets).toHaveLength(3);
    const s2 = sockets[2];
    s2.open();
    answerJoin(s2, 0);
    const retry = s2.last("send_room_message")!;
    expect(retry.clientMsgId).toBe(first.clientMsgId);
    s2.receive({ type: "ack", id: retry.id, message: roomMsg(1, { clientMsgId: first.clientMsgId, text: "one" }), duplicate: true });
    const second = s2.last("send_room_message")!;
    expect(second.text).toBe("two");
    s2.receive({ type: "ack", id: second.id, message: roomMsg(2, { clientMsgId: second.clientMsgId, text: "two" }) });
    expect((await p1).seq).toBe(1);
    expect((await p2).seq).toBe(2);
    expect(room.pending()).toEqual([]);
    await chat.close();
  });

  it("rejects permanent refusals without retrying, and the next send goes on", async () => {
    for (const code of ["blocked", "forbidden", "bad_request", "not_found", "too_large"]) {
      const { chat, sockets, room } = await joinedRoom(0);
      const failed: string[] = [];
      chat.on("failed", (f) => failed.push(f.error.code));
      const p1 = room.send({ text: "bad" });
      const p2 = room.send({ text: "good" });
      await settle();
      const s = sockets[0];
      const f1 = s.last("send_room_message")!;
      s.receive({ type: "error", id: f1.id, code, message: "no" });
      await expect(p1).rejects.toMatchObject({ code });
      const f2 = s.last("send_room_message")!;
      expect(f2.text).toBe("good");
      expect(s.frames().filter((f) => f.clientMsgId === f1.clientMsgId)).toHaveLength(1);
      s.receive({ type: "ack", id: f2.id, message: roomMsg(1, { clientMsgId: f2.clientMsgId }) });
      await expect(p2).resolves.toMatchObject({ seq: 1 });
      expect(failed).toEqual([code]);
      await chat.close();
    }
  });

  it("waits retryAfterMs after rate_limited, then retries the same send before the next", async () => {
    const { chat, sockets, room } = await joinedRoom(0);
    const p1 = room.send({ text: "one" });
    void room.send({ text: "two" }).catch(() => {});
    await settle();
    const s = sockets[0];
    const f1 = s.last("send_room_message")!;
    s.receive({ type: "error", id: f1.id, code: "rate_limited", message: "slow down", retryAfterMs: 700 });
    await vi.advanceTimersByTimeAsync(699);
    expect(s.frames().filter((f) => f.type === "send_room_message")).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    const again = s.last("send_room_message")!;
    expect(again.clientMsgId).toBe(f1.clientMsgId);
    expect(again.text).toBe("one");
    s.receive({ type: "ack", id: again.id, message: roomMsg(1, { clientMsgId: f1.clientMsgId }) });
    await expect(p1).resolves.toMatchObject({ seq: 1 });
    expect(s.last("send_room_message")!.text).toBe("two");
    await chat.close();
  });

  it("a LocalStorageOutboxStore keeps unacked sends across a reload, and the next client sends them with the same clientMsgId", async () => {
    const data = new Map<string, string>();
    const storage: StorageLike = { getItem: (k) => data.get(k) ?? null, setItem: (k, v) => void data.set(k, v) };
    const first = makeClient({ store: new LocalStorageOutboxStore("outbox:alice", storage) });
    const room = first.chat.room("general");
    void room.send({ text: "written offline" }).catch(() => {});
    await settle();
    const saved = JSON.parse(data.get("outbox:alice")!);
    expect(saved).toHaveLength(1);
    expect(saved[0]).toMatchObject({ scope: "room:general", text: "written offline" });
    await first.chat.close(); // The page goes away before any socket opened.

    const second = makeClient({ store: new LocalStorageOutboxStore("outbox:alice", storage) });
    const got: RoomMessage[] = [];
    await second.chat.ready();
    second.chat.room("general").on("message", (m) => got.push(m));
    await settle();
    const s = second.sockets[0];
    expect(s.url).toContain("/api/chat/rooms/general/ws");
    s.open();
    answerJoin(s, 0);
    const f = s.last("send_room_message")!;
    expect(f.clientMsgId).toBe(saved[0].clientMsgId);
    s.receive({ type: "ack", id: f.id, message: roomMsg(1, { clientMsgId: f.clientMsgId, text: "written offline" }) });
    expect(got.map((m) => m.text)).toEqual(["written offline"]);
    expect(JSON.parse(data.get("outbox:alice")!)).toEqual([]);
    await second.chat.close();
  });

  it("gives up on a room that does not exist: after 3 refused attempts REST says 404, queued sends fail and leave the store", async () => {
    const { chat, sockets, rest } = makeClient();
    const room = chat.room("nope");
    const errors: string[] = [];
    const failed: string[] = [];
    room.on("error", (e) => errors.push(e.code));
    chat.on("failed", (f) => failed.push(f.entry.text ?? ""));
    const outcome = room.send({ text: "into the void" }).then(
      () => "stored",
      (e) => e.code,
    );
    await settle();
    for (let i = 0; i < 3; i++) {
      sockets.at(-1)!.refuse();
      await vi.advanceTimersByTimeAsync(2000);
    }
    expect(await outcome).toBe("not_found");
    expect(rest.calls.filter((u) => u.endsWith("/api/chat/rooms/nope"))).toHaveLength(1);
    expect(errors).toEqual(["not_found"]);
    expect(failed).toEqual(["into the void"]);
    expect(room.state).toBe("closed");
    const n = sockets.length;
    await vi.advanceTimersByTimeAsync(60_000);
    expect(sockets.length).toBe(n);
    // A room that exists is never given up, however long it stays unreachable.
    const general = chat.room("general");
    await settle();
    for (let i = 0; i < 6; i++) {
      sockets.at(-1)!.refuse();
      await vi.advanceTimersByTimeAsync(40_000);
    }
    expect(general.state).toBe("connecting");
    await chat.close();
  });

  it("gives up on a room REST refuses with 403 (a ban refuses the upgrade): the error is REST's, with its code", async () => {
    const c = makeClient({
      fetch: (async () =>
        new Response(JSON.stringify({ error: { code: "banned", message: "you are banned", until: null } }), { status: 403 })) as typeof fetch,
    });
    const room = c.chat.room("general");
    const errors: string[] = [];
    room.on("error", (e) => errors.push(e.code));
    const outcome = room.send({ text: "x" }).catch((e) => e.code);
    await settle();
    for (let i = 0; i < 3; i++) {
      c.sockets.at(-1)!.refuse();
      await vi.advanceTimersByTimeAsync(2000);
    }
    expect(await outcome).toBe("banned");
    expect(errors).toEqual(["banned"]);
    expect(room.state).toBe("closed");
    await c.chat.close();
  });

  it("a store that fails (a full localStorage) does not fail the send", async () => {
    const storage: StorageLike = {
      getItem: () => null,
      setItem: () => {
        throw new Error("QuotaExceededError");
      },
    };
    const { chat, sockets, room } = await joinedRoom(0, { store: new LocalStorageOutboxStore("k", storage) });
    const p = room.send({ text: "still goes" });
    await settle();
    const f = sockets[0].last("send_room_message")!;
    expect(f.text).toBe("still goes");
    sockets[0].receive({ type: "ack", id: f.id, message: roomMsg(1, { clientMsgId: f.clientMsgId }) });
    await expect(p).resolves.toMatchObject({ seq: 1 });
    await chat.close();
  });
});
