/**
 * The objects know their own name from the platform (`ctx.id.name`, src/objects/name.ts): the pinned
 * workerd gives it to `idFromName` objects on every kind of wake-up, eviction included.
 */
import { env, evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { ChatRoom } from "../../src/objects/chat-room";
import type { Inbox, InboxSession } from "../../src/objects/inbox";
import { getSession, setSession } from "../../src/objects/session";
import { inboxStub } from "../../src/objects/stubs";
import type { ServerMessage } from "../../src/protocol";
import { api } from "../helpers";
import { inbox, provision, uid } from "../helpers/inbox";
import { createRoom, delivers, joined, sendText, stubOf } from "../helpers/rooms";

const presenceOf = (userId: string, status: string) => (m: ServerMessage) => m.type === "presence" && m.userId === userId && m.status === status;

describe("the object's own name", () => {
  it("room: from a request, a socket frame and an alarm, each after an eviction", async () => {
    const room = await createRoom(uid("named-room"));
    const stub = stubOf(room);
    expect(await stub.ping()).toEqual(expect.any(Number));
    await evictDurableObject(stub);
    expect(await runInDurableObject(stub, (_i: ChatRoom, state) => state.id.name)).toBe(room);
    const a = await joined("alice", room);
    await evictDurableObject(stub);
    // Woken by a hibernated socket's frame: the message carries the room's id.
    const ack = await sendText(a, "after eviction");
    expect(ack.message).toMatchObject({ roomId: room, seq: 1 });
    await a.waitFor(delivers(1));
    await evictDurableObject(stub);
    // Woken by the alarm: the stats reach the room's row in D1.
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const list = (await (await api("carol", `/api/chat/rooms?q=${room}`)).json()) as { rooms: { id: string; messageCount: number }[] };
    expect(list.rooms.find((r) => r.id === room)).toMatchObject({ messageCount: 1 });
    expect((await stub.snapshot()).roomId).toBe(room);
    a.close();
  });

  it("inbox: from a socket frame and an alarm after an eviction, and it stores no owner any more", async () => {
    const watcher = uid("watcher");
    const bob = uid("bob");
    await provision(watcher, bob);
    const w = await inbox(watcher);
    w.send({ type: "subscribe_presence", id: "s", userIds: [bob] });
    await w.waitFor((m) => m.type === "ack" && m.id === "s");
    const b = await inbox(bob);
    await w.waitFor(presenceOf(bob, "online"));
    const stub = inboxStub(env, bob);
    await evictDurableObject(stub);
    expect(await runInDurableObject(stub, (_i: Inbox, state) => state.id.name)).toBe(bob);
    // A status change pushed from a socket frame names the user to its subscribers.
    b.send({ type: "presence", id: "p", status: "dnd" });
    await w.waitFor(presenceOf(bob, "dnd"));
    // The sweep, woken by the alarm after an eviction, does the same.
    await runInDurableObject(stub, (_i: Inbox, state) => {
      for (const ws of state.getWebSockets()) {
        const s = getSession<InboxSession>(ws)!;
        setSession<InboxSession>(ws, { ...s, lastSeenAt: 1, connectedAt: 1 });
      }
    });
    await evictDurableObject(stub);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    await w.waitFor(presenceOf(bob, "offline"));
    const owner = await runInDurableObject(stub, (_i: Inbox, state) => state.storage.sql.exec("SELECT value FROM meta WHERE key = 'owner'").toArray());
    expect(owner).toEqual([]);
    w.close();
  });
});
