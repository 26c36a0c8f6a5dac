/**
 * Sockets the server closed (sweep, abuse) whose close never completes: a frozen client (a phone in a
 * tunnel, a stopped process) never answers the close frame, so the runtime keeps listing the socket,
 * and after an eviction it even reports it `OPEN`. Such a client is simulated by making the close of
 * the object's side a no-op until the object is evicted (a new instance gets fresh socket objects,
 * whose close works again): exactly what the object sees of a frozen client.
 */
import { env, evictDurableObject, runDurableObjectAlarm, runInDurableObject, SELF } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { type ChatRoom, SOCKETS_PER_USER_MAX } from "../../src/objects/chat-room";
import type { Inbox, InboxSession } from "../../src/objects/inbox";
import type { RoomSession } from "../../src/objects/chat-room/presence";
import { getSession, setSession } from "../../src/objects/session";
import { inboxStub } from "../../src/objects/stubs";
import type { ServerMessage } from "../../src/protocol";
import { api, BASE, connectWs, type TestSocket, tokenFor } from "../helpers";
import { inbox, provision, roundTrip, uid } from "../helpers/inbox";
import { createRoom, joined, sendText, stubOf, systemOf } from "../helpers/rooms";

/** Freezes every socket of an object whose attachment matches: its server-side close goes nowhere, and it looks silent for a minute. */
function freeze(state: DurableObjectState, match: (s: InboxSession | RoomSession) => boolean): number {
  let n = 0;
  for (const ws of state.getWebSockets()) {
    const s = getSession<InboxSession & RoomSession>(ws);
    if (!s || !match(s)) continue;
    (ws as unknown as { close: () => void }).close = () => undefined;
    setSession(ws, { ...s, lastSeenAt: 1, connectedAt: 1 });
    n++;
  }
  return n;
}

function closeCode(s: TestSocket): { code: number | null } {
  const out = { code: null as number | null };
  s.ws.addEventListener("close", (ev) => (out.code = ev.code), { once: true });
  return out;
}

describe("sockets the server closed", () => {
  it("inbox: never online again after an eviction, get no frames, and the sweep keeps closing them", async () => {
    const watcher = uid("watcher");
    const bob = uid("bob");
    await provision(watcher, bob);
    const w = await inbox(watcher);
    w.send({ type: "subscribe_presence", id: "s", userIds: [bob] });
    await w.waitFor((m) => m.type === "ack" && m.id === "s");
    const frozen = await inbox(bob);
    await w.waitFor((m) => m.type === "presence" && m.userId === bob && m.status === "online");
    const closedWith = closeCode(frozen);
    const stub = inboxStub(env, bob);
    expect(await runInDurableObject(stub, (_i: Inbox, state) => freeze(state, () => true))).toBe(1);

    expect(await runDurableObjectAlarm(stub)).toBe(true);
    await w.waitFor((m) => m.type === "presence" && m.userId === bob && m.status === "offline");
    await evictDurableObject(stub);
    // What the woken object is given: the socket, listed and open.
    expect(await runInDurableObject(stub, (_i: Inbox, state) => state.getWebSockets().map((ws) => ws.readyState))).toEqual([WebSocket.OPEN]);

    const res = await api(watcher, `/api/presence?userIds=${bob}`);
    expect(((await res.json()) as { presence: { status: string }[] }).presence[0].status).toBe("offline");
    // No fan-out to it: deliver() counts the sockets that got the frame.
    expect(await stub.deliver({ type: "typing", userId: watcher, on: true, conversationId: "dm_x" })).toBe(0);
    // A frame it sends after the wake-up is ignored.
    frozen.send({ type: "ping", id: "late" });
    // The sweep is still armed, and closes it again; this time the close goes through.
    expect(await runInDurableObject(stub, (_i: Inbox, state) => state.storage.getAlarm())).not.toBeNull();
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    await vi.waitFor(() => expect(closedWith.code).toBe(1001), { timeout: 5000 });
    expect(frozen.frames.some((m) => m.type === "pong" && m.id === "late")).toBe(false);
    // Gone for good: the next sweep finds nothing, and the inbox sleeps without an alarm.
    await vi.waitFor(async () => expect(await runInDurableObject(stub, (_i: Inbox, state) => state.getWebSockets().length)).toBe(0));
    await runDurableObjectAlarm(stub);
    expect(await runInDurableObject(stub, (_i: Inbox, state) => state.storage.getAlarm())).toBeNull();
    // And the user comes back normally.
    const back = await inbox(bob);
    await w.waitFor((m) => m.type === "presence" && m.userId === bob && m.status === "online" && w.frames.lastIndexOf(m) > 3);
    back.close();
    w.close();
  });

  it(`room: never count toward the ${SOCKETS_PER_USER_MAX}-socket cap, presence or fan-out after an eviction`, async () => {
    const room = await createRoom("frozen-room");
    const tabby = uid("tabby");
    const bob = await joined("bob", room);
    // Two tabs joined, the rest only connected (the user's one bucket would refuse 32 joins at once).
    const tabs = [
      ...(await Promise.all([joined(tabby, room), joined(tabby, room)])),
      ...(await Promise.all(Array.from({ length: SOCKETS_PER_USER_MAX - 2 }, () => connectWs(tabby, `/api/chat/rooms/${room}/ws`)))),
    ];
    const codes = tabs.map(closeCode);
    const stub = stubOf(room);
    // The room caches sessions in memory: an eviction makes it read the backdated attachments.
    await runInDurableObject(stub, (_i: ChatRoom, state) => freeze(state, (s) => s.userId === tabby));
    await evictDurableObject(stub);
    expect(await runInDurableObject(stub, (_i: ChatRoom, state) => freeze(state, (s) => s.userId === tabby))).toBe(SOCKETS_PER_USER_MAX);

    expect(await runDurableObjectAlarm(stub)).toBe(true);
    await bob.waitFor((m) => m.type === "system" && m.event === "leave" && m.userId === tabby);
    await evictDurableObject(stub);
    expect(await runInDurableObject(stub, (_i: ChatRoom, state) => state.getWebSockets().length)).toBe(SOCKETS_PER_USER_MAX + 1);

    // The cap counts live sockets only: the user gets in again at once.
    const token = await tokenFor(tabby);
    const res = await SELF.fetch(`${BASE}/api/chat/rooms/${room}/ws`, { headers: { Upgrade: "websocket", Authorization: `Bearer ${token}` } });
    expect(res.status).toBe(101);
    res.webSocket?.accept();
    res.webSocket?.close(1000, "done");
    const snap = await stub.snapshot();
    expect(snap.present).toEqual([{ userId: "bob", name: "bob" }]);
    // A frozen tab that wakes up and joins is ignored; a message reaches none of them.
    const marks = tabs.map((t) => t.frames.length);
    tabs[0].send({ type: "join_room" });
    await sendText(bob, "after the wake-up");
    await roundTrip(bob);
    tabs.forEach((t, i) => expect(t.frames.slice(marks[i]).filter((m: ServerMessage) => m.type !== "pong")).toEqual([]));
    expect(systemOf(bob)).toEqual([`join:${tabby}`, `leave:${tabby}`]);

    // The sweep is still armed and closes them again; this time the closes go through.
    expect(await runInDurableObject(stub, (_i: ChatRoom, state) => state.storage.getAlarm())).not.toBeNull();
    await runDurableObjectAlarm(stub);
    await vi.waitFor(() => expect(codes.map((c) => c.code)).toEqual(tabs.map(() => 1001)), { timeout: 5000 });
    const again = await connectWs(tabby, `/api/chat/rooms/${room}/ws`);
    again.close();
    bob.close();
  });
  it("the sweep that closes a frozen socket stays armed, with no wake-up needed (inbox and room)", async () => {
    const bob = uid("bob");
    await provision(bob);
    await inbox(bob);
    const stub = inboxStub(env, bob);
    expect(await runInDurableObject(stub, (_i: Inbox, state) => freeze(state, () => true))).toBe(1);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    // The close went nowhere: the socket is still listed, so the next sweep must come.
    expect(await runInDurableObject(stub, (_i: Inbox, state) => state.getWebSockets().length)).toBe(1);
    expect(await runInDurableObject(stub, (_i: Inbox, state) => state.storage.getAlarm())).not.toBeNull();

    const room = await createRoom("frozen-room-armed");
    // Connected, not joined: its departure schedules no stats write, whose alarm would hide a missing sweep.
    await connectWs(uid("tab"), `/api/chat/rooms/${room}/ws`);
    const roomStub = stubOf(room);
    // The room caches sessions in memory: an eviction makes it read the backdated attachment.
    await runInDurableObject(roomStub, (_i: ChatRoom, state) => freeze(state, () => true));
    await evictDurableObject(roomStub);
    expect(await runInDurableObject(roomStub, (_i: ChatRoom, state) => freeze(state, () => true))).toBe(1);
    expect(await runDurableObjectAlarm(roomStub)).toBe(true);
    expect((await roomStub.snapshot()).sockets).toBe(0);
    expect(await runInDurableObject(roomStub, (_i: ChatRoom, state) => state.getWebSockets().length)).toBe(1);
    expect(await runInDurableObject(roomStub, (_i: ChatRoom, state) => state.storage.getAlarm())).not.toBeNull();
  });
  it("inbox: a sweep that fails part-way is tried again (the room's alarm does the same)", async () => {
    const bob = uid("bob");
    await provision(bob);
    await inbox(bob);
    const stub = inboxStub(env, bob);
    await runInDurableObject(stub, (i: Inbox, state) => {
      freeze(state, () => true);
      // A failure after the socket was closed: the status update of the sweep throws.
      const parts = i as unknown as { c: { status: { wentOffline: () => Promise<void> } } };
      parts.c.status.wentOffline = () => Promise.reject(new Error("status write failed"));
    });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await runInDurableObject(stub, (_i: Inbox, state) => state.storage.getAlarm())).not.toBeNull();
  });
});
