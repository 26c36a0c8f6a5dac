/**
 * The message lifecycle in rooms (issue 14): edit, delete, reactions, threads, mentions, read state,
 * search and the resume of changes, over real WebSockets through the Worker, in workerd. Refusals are
 * checked from the refused side: the frame's `error`, nothing changed, the socket still usable.
 */
import { env, evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { CHANGES_MAX, type ChatRoom, REPLAY_MAX } from "../../src/objects/chat-room";
import { REACTIONS_DISTINCT_MAX, type RoomMessage, type ServerMessage } from "../../src/protocol";
import { api, connectWs, type TestSocket } from "../helpers";
import { inbox, provision, roundTrip, uid } from "../helpers/inbox";
import { mediaRow, uploadOk } from "../helpers/media";
import { SAMPLES } from "../helpers/media-fixtures";
import { createRoom, joined, sendText, stubOf } from "../helpers/rooms";

type Ack = Extract<ServerMessage, { type: "ack" }>;
type ErrorFrame = Extract<ServerMessage, { type: "error" }>;
type Reply = Ack | ErrorFrame;
type RoomState = Extract<ServerMessage, { type: "room_state" }>;

const png = SAMPLES.find((s) => s.name === "png")!.bytes;
const EMOJI = ["👍", "❤️", "😂", "🎉", "🔥", "👀", "🙏", "💯", "✅", "🚀", "😮", "😢", "🤔", "👏", "🙌", "💡", "⭐", "🍕", "☕", "🌈", "🐱"];

let n = 0;
/** Sends `frame` with a fresh id; resolves with its ack or error. */
async function req(s: TestSocket, frame: Record<string, unknown>): Promise<Reply> {
  const id = `q${++n}`;
  s.send({ ...frame, id });
  return s.waitFor<Reply>((m) => (m.type === "ack" || m.type === "error") && m.id === id);
}
const msgOf = (r: Reply): RoomMessage => {
  if (r.type !== "ack" || !r.message || !("roomId" in r.message)) throw new Error(`expected an ack with a room message: ${JSON.stringify(r)}`);
  return r.message;
};
const history = async (user: string, room: string): Promise<RoomMessage[]> =>
  ((await (await api(user, `/api/chat/rooms/${room}/messages?limit=100`)).json()) as { messages: RoomMessage[] }).messages;
const byId = (ms: RoomMessage[], id: string) => ms.find((m) => m.id === id);

/** A socket joined with `join_room { since, sinceRev }`, after its room_state. */
async function resumed(user: string, room: string, since: number, sinceRev: number): Promise<TestSocket> {
  const s = await connectWs(user, `/api/chat/rooms/${room}/ws`);
  s.send({ type: "join_room", since, sinceRev });
  await s.waitFor((m) => m.type === "room_state");
  return s;
}

async function setup(label: string, users = ["alice", "bob"]) {
  const room = await createRoom(uid(label));
  const socks = await Promise.all(users.map((u) => joined(u, room)));
  return { room, socks };
}

describe("rooms: edit", () => {
  it("the author edits: editedAt, the new text live, in history, in room_state and on resume; rev moves", async () => {
    const { room, socks: [a, b] } = await setup("edit");
    const sent = msgOf(await sendText(a, "e1", "first text"));
    expect(sent.rev).toBe(1);
    const r = await req(a, { type: "edit_message", messageId: sent.id, text: "second text" });
    const edited = msgOf(r);
    expect(edited).toMatchObject({ id: sent.id, seq: sent.seq, text: "second text", editedAt: expect.any(Number), rev: 2 });
    const live = await b.waitFor<Extract<ServerMessage, { type: "message_updated" }>>((m) => m.type === "message_updated");
    expect(live.message).toMatchObject({ id: sent.id, text: "second text", rev: 2, editedAt: edited.editedAt });
    // The editor's own socket gets the ack in the frame's place, not the frame too.
    expect(a.frames.some((f) => f.type === "message_updated")).toBe(false);
    expect(byId(await history("carol", room), sent.id)).toMatchObject({ text: "second text", editedAt: edited.editedAt });
    const c = await joined("carol", room);
    const state = c.frames.find((f) => f.type === "room_state") as RoomState;
    expect(state.messages[0]).toMatchObject({ text: "second text" });
    expect(state.lastRev).toBe(2);
    // The same text again changes nothing and takes no rev.
    expect(msgOf(await req(a, { type: "edit_message", messageId: sent.id, text: "second text" })).rev).toBe(2);
    [a, b, c].forEach((s) => s.close());
  });

  it("refuses editing someone else's message, a missing one, before joining, empty text: nothing changes, the socket stays usable", async () => {
    const { room, socks: [a, b] } = await setup("edit-refused");
    const sent = msgOf(await sendText(a, "mine", "alice's words"));
    const other = await req(b, { type: "edit_message", messageId: sent.id, text: "bob was here" });
    expect(other).toMatchObject({ type: "error", code: "forbidden" });
    expect(await req(b, { type: "edit_message", messageId: "no-such-id", text: "x" })).toMatchObject({ type: "error", code: "not_found" });
    expect(await req(b, { type: "edit_message", messageId: sent.id, text: "   " })).toMatchObject({ type: "error", code: "bad_request" });
    expect(await req(b, { type: "edit_message", conversationId: "dm_x", messageId: sent.id, text: "x" })).toMatchObject({ type: "error", code: "bad_request" });
    b.send({ type: "leave_room" });
    expect(await req(b, { type: "edit_message", messageId: sent.id, text: "x" })).toMatchObject({ type: "error", code: "forbidden" });
    expect(byId(await history("carol", room), sent.id)).toMatchObject({ text: "alice's words", rev: 1 });
    expect(byId(await history("carol", room), sent.id)?.editedAt).toBeUndefined();
    expect(a.frames.some((f) => f.type === "message_updated")).toBe(false);
    // Still usable: bob rejoins and sends.
    await req(b, { type: "join_room" });
    expect(msgOf(await sendText(b, "after", "still here")).seq).toBe(2);
    a.close();
    b.close();
  });
});

describe("rooms: delete", () => {
  it("the author deletes: a tombstone keeps its seq, text and reactions go, everyone is told; search no longer finds it", async () => {
    const { room, socks: [a, b] } = await setup("delete");
    const m1 = msgOf(await sendText(a, "d1", "to be removed"));
    msgOf(await sendText(a, "d2", "stays"));
    expect(msgOf(await req(b, { type: "react", messageId: m1.id, emoji: "👍", on: true })).reactions).toEqual({ "👍": 1 });
    const tomb = msgOf(await req(a, { type: "delete_message", messageId: m1.id }));
    expect(tomb).toMatchObject({ id: m1.id, seq: 1, deleted: true, deletedBy: "alice" });
    expect(tomb.text).toBeUndefined();
    expect(tomb.reactions).toBeUndefined();
    const live = await b.waitFor<Extract<ServerMessage, { type: "message_deleted" }>>((m) => m.type === "message_deleted");
    expect(live).toMatchObject({ messageId: m1.id, seq: 1, deletedBy: "alice", roomId: room, rev: tomb.rev });
    const hist = await history("carol", room);
    expect(hist.map((m) => m.seq)).toEqual([2, 1]);
    expect(hist[1]).toMatchObject({ deleted: true });
    expect(hist[1].text).toBeUndefined();
    const found = (await (await api("carol", `/api/chat/rooms/${room}/search?q=removed`)).json()) as { messages: RoomMessage[] };
    expect(found.messages).toEqual([]);
    // Deleting again is idempotent; reacting to or editing a tombstone is refused.
    expect(msgOf(await req(a, { type: "delete_message", messageId: m1.id })).rev).toBe(tomb.rev);
    expect(await req(b, { type: "react", messageId: m1.id, emoji: "👍", on: true })).toMatchObject({ type: "error", code: "not_found" });
    expect(await req(a, { type: "edit_message", messageId: m1.id, text: "back" })).toMatchObject({ type: "error", code: "not_found" });
    // The next message still takes the next seq: the log stays gap-free.
    expect(msgOf(await sendText(a, "d3")).seq).toBe(3);
    a.close();
    b.close();
  });

  it("refuses deleting someone else's message (no moderator roles yet): nothing changes", async () => {
    const { room, socks: [a, b] } = await setup("delete-refused");
    const m = msgOf(await sendText(a, "keep", "alice keeps this"));
    expect(await req(b, { type: "delete_message", messageId: m.id })).toMatchObject({ type: "error", code: "forbidden" });
    expect(await req(b, { type: "delete_message", messageId: "missing" })).toMatchObject({ type: "error", code: "not_found" });
    expect(byId(await history("carol", room), m.id)).toMatchObject({ text: "alice keeps this", rev: 1 });
    expect(byId(await history("carol", room), m.id)?.deleted).toBeUndefined();
    await roundTrip(a);
    expect(a.frames.some((f) => f.type === "message_deleted")).toBe(false);
    expect(msgOf(await sendText(b, "bob-ok")).seq).toBe(2);
    a.close();
    b.close();
  });

  it("releases media no message references any more to the sweep, and keeps media another message still carries", async () => {
    const alice = uid("alice");
    const { room, socks: [a] } = await setup("delete-media", [alice]);
    const shared = await uploadOk(alice, png);
    const only = await uploadOk(alice, png);
    const first = msgOf(await req(a, { type: "send_room_message", clientMsgId: "m1", text: "two", mediaIds: [shared.id, only.id] }));
    const second = msgOf(await req(a, { type: "send_room_message", clientMsgId: "m2", text: "again", mediaIds: [shared.id] }));
    expect(second.media?.map((m) => m.id)).toEqual([shared.id]);
    msgOf(await req(a, { type: "delete_message", messageId: first.id }));
    // Released off the hot path; the room's alarm retries until D1 confirms.
    const deadline = Date.now() + 5000;
    while ((await mediaRow(only.id))?.bound_kind !== null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(await mediaRow(only.id)).toMatchObject({ bound_kind: null, bound_id: null });
    expect(await mediaRow(shared.id)).toMatchObject({ bound_kind: "room", bound_id: room });
    // Another user can no longer read the released media; the still-posted one stays readable.
    expect((await api("bob", only.url)).status).toBe(404);
    expect((await api("bob", shared.url)).status).toBe(200);
    // Deleting the last message that carries it releases it too.
    msgOf(await req(a, { type: "delete_message", messageId: second.id }));
    while ((await mediaRow(shared.id))?.bound_kind !== null && Date.now() < deadline + 5000) await new Promise((r) => setTimeout(r, 20));
    expect(await mediaRow(shared.id)).toMatchObject({ bound_kind: null });
    const pending = await runInDurableObject(stubOf(room), (_i: ChatRoom, s) => s.storage.sql.exec("SELECT count(*) AS n FROM media_release").one().n);
    expect(pending).toBe(0);
    a.close();
  });

  it("a queued release of media that a message carries again by then is dropped, not applied", async () => {
    const alice = uid("alice");
    const { room, socks: [a] } = await setup("release-recheck", [alice]);
    const up = await uploadOk(alice, png);
    msgOf(await req(a, { type: "send_room_message", clientMsgId: "x1", text: "one", mediaIds: [up.id] }));
    // As if a delete queued it while a send posting it again was being stored.
    const released = await runInDurableObject(stubOf(room), async (inst: ChatRoom, s) => {
      s.storage.sql.exec("INSERT INTO media_release (media_id, owner_id, at) VALUES (?, ?, ?)", up.id, alice, Date.now());
      return (inst as unknown as { media: { flush(): Promise<number> } }).media.flush();
    });
    expect(released).toBe(0);
    expect(await mediaRow(up.id)).toMatchObject({ bound_kind: "room", bound_id: room });
    const left = await runInDurableObject(stubOf(room), (_i: ChatRoom, s) => s.storage.sql.exec("SELECT count(*) AS n FROM media_release").one().n);
    expect(left).toBe(0);
    a.close();
  });
});

describe("rooms: reactions", () => {
  it("toggles one emoji per frame, one of each per user, counts live and with the message, myReactions per reader", async () => {
    const { room, socks: [a, b] } = await setup("react");
    const m = msgOf(await sendText(a, "r1", "react to me"));
    const r1 = msgOf(await req(b, { type: "react", messageId: m.id, emoji: "👍", on: true }));
    expect(r1).toMatchObject({ reactions: { "👍": 1 }, myReactions: ["👍"] });
    const live = await a.waitFor<Extract<ServerMessage, { type: "reaction" }>>((f) => f.type === "reaction");
    expect(live).toMatchObject({ messageId: m.id, emoji: "👍", userId: "bob", on: true, count: 1, roomId: room, rev: r1.rev });
    // Again: at most one of each emoji per user; no change, no rev, no frame.
    expect(msgOf(await req(b, { type: "react", messageId: m.id, emoji: "👍", on: true })).rev).toBe(r1.rev);
    msgOf(await req(a, { type: "react", messageId: m.id, emoji: "👍", on: true }));
    msgOf(await req(a, { type: "react", messageId: m.id, emoji: "❤️", on: true }));
    const hist = async (u: string) => byId(await history(u, room), m.id)!;
    expect(await hist("alice")).toMatchObject({ reactions: { "👍": 2, "❤️": 1 }, myReactions: ["❤️", "👍"].sort() });
    expect((await hist("bob")).myReactions).toEqual(["👍"]);
    expect((await hist("carol")).myReactions).toBeUndefined();
    const off = msgOf(await req(b, { type: "react", messageId: m.id, emoji: "👍", on: false }));
    expect(off.reactions).toEqual({ "👍": 1, "❤️": 1 });
    expect(off.myReactions).toBeUndefined();
    await a.waitFor((f) => f.type === "reaction" && f.on === false && f.count === 1);
    // room_state carries the reader's own.
    const a2 = await joined("alice", room);
    const state = a2.frames.find((f) => f.type === "room_state") as RoomState;
    expect(state.messages[0]).toMatchObject({ reactions: { "👍": 1, "❤️": 1 } });
    expect([...(state.messages[0].myReactions ?? [])].sort()).toEqual(["❤️", "👍"].sort());
    [a, b, a2].forEach((s) => s.close());
  });

  it(`refuses a new emoji beyond ${REACTIONS_DISTINCT_MAX} distinct, reacting before join, to a missing message, and not-one-emoji`, async () => {
    const users = Array.from({ length: 2 }, (_, i) => `rx${i}`);
    const { room, socks } = await setup("react-refused", users);
    const m = msgOf(await sendText(socks[0], "target"));
    for (let i = 0; i < REACTIONS_DISTINCT_MAX; i++) {
      const s = socks[i % 2];
      expect((await req(s, { type: "react", messageId: m.id, emoji: EMOJI[i], on: true })).type).toBe("ack");
      if (i % 8 === 7) await new Promise((r) => setTimeout(r, 1000));
    }
    const over = await req(socks[1], { type: "react", messageId: m.id, emoji: EMOJI[REACTIONS_DISTINCT_MAX], on: true });
    expect(over).toMatchObject({ type: "error", code: "too_large" });
    expect(Object.keys(byId(await history("carol", room), m.id)!.reactions!)).toHaveLength(REACTIONS_DISTINCT_MAX);
    // An emoji already there is still fine.
    expect(msgOf(await req(socks[0], { type: "react", messageId: m.id, emoji: EMOJI[1], on: true })).reactions?.[EMOJI[1]]).toBe(2);
    expect(await req(socks[0], { type: "react", messageId: "missing", emoji: "👍", on: true })).toMatchObject({ type: "error", code: "not_found" });
    expect(await req(socks[0], { type: "react", messageId: m.id, emoji: "👍👍", on: true })).toMatchObject({ type: "error", code: "bad_request" });
    expect(await req(socks[0], { type: "react", messageId: m.id, emoji: "a", on: true })).toMatchObject({ type: "error", code: "bad_request" });
    const lurker = await connectWs("lurker", `/api/chat/rooms/${room}/ws`);
    expect(await req(lurker, { type: "react", messageId: m.id, emoji: EMOJI[0], on: true })).toMatchObject({ type: "error", code: "forbidden" });
    expect(byId(await history("carol", room), m.id)!.reactions![EMOJI[0]]).toBe(1);
    [...socks, lurker].forEach((s) => s.close());
  });
});

describe("rooms: threads", () => {
  it("replyCount on the parent and the replies route, paginated, with the reader's reactions", async () => {
    const { room, socks: [a, b] } = await setup("thread");
    const parent = msgOf(await sendText(a, "p", "parent"));
    for (let i = 1; i <= 5; i++) msgOf(await req(b, { type: "send_room_message", clientMsgId: `r${i}`, text: `reply ${i}`, replyTo: parent.id }));
    expect(await req(b, { type: "send_room_message", clientMsgId: "bad", text: "x", replyTo: "missing" })).toMatchObject({ type: "error", code: "not_found" });
    expect(byId(await history("carol", room), parent.id)).toMatchObject({ replyCount: 5 });
    const get = async (path: string) => (await api("bob", path)).json() as Promise<{ parent: RoomMessage; replies: RoomMessage[]; nextCursor: string | null }>;
    const p1 = await get(`/api/chat/rooms/${room}/messages/${parent.id}/replies?limit=2`);
    expect(p1.parent).toMatchObject({ id: parent.id, replyCount: 5 });
    expect(p1.replies.map((m) => m.text)).toEqual(["reply 1", "reply 2"]);
    const p2 = await get(`/api/chat/rooms/${room}/messages/${parent.id}/replies?limit=2&cursor=${p1.nextCursor}`);
    const p3 = await get(`/api/chat/rooms/${room}/messages/${parent.id}/replies?limit=2&cursor=${p2.nextCursor}`);
    expect([...p2.replies, ...p3.replies].map((m) => m.text)).toEqual(["reply 3", "reply 4", "reply 5"]);
    expect(p3.nextCursor).toBeNull();
    expect((await api("bob", `/api/chat/rooms/${room}/messages/missing/replies`)).status).toBe(404);
    expect((await api("bob", `/api/chat/rooms/no-such-room-x/messages/${parent.id}/replies`)).status).toBe(404);
    expect((await api(null, `/api/chat/rooms/${room}/messages/${parent.id}/replies`)).status).toBe(401);
    expect((await api("bob", `/api/chat/rooms/${room}/messages/${parent.id}/replies?cursor=zz`)).status).toBe(400);
    a.close();
    b.close();
  });
});

describe("rooms: mentions", () => {
  it("a mentioned user not in the room gets a mention on their inbox; one in the room does not; never from someone they block", async () => {
    const [alice, bob, carol, dave] = ["alice", "bob", "carol", "dave"].map(uid);
    await provision(alice, bob, carol, dave);
    const room = await createRoom(uid("mention"), { name: "Mention Room" });
    const a = await joined(alice, room);
    const c = await joined(carol, room);
    const bobInbox = await inbox(bob);
    const carolInbox = await inbox(carol);
    const daveInbox = await inbox(dave);
    expect((await api(dave, "/api/chat/blocks", { method: "POST", json: { userId: alice } })).status).toBe(201);
    const sent = msgOf(await req(a, { type: "send_room_message", clientMsgId: "hey", text: "hey @bob @carol @dave", mentions: [bob, carol, dave, "nobody-x"] }));
    expect(sent.mentions).toEqual([bob, carol, dave, "nobody-x"]);
    const got = await bobInbox.waitFor<Extract<ServerMessage, { type: "mention" }>>((m) => m.type === "mention");
    expect(got).toMatchObject({ roomId: room, roomName: "Mention Room", messageId: sent.id, seq: sent.seq, from: alice, preview: "hey @bob @carol @dave" });
    // Carol is in the room (she has the message itself); Dave blocks Alice.
    await new Promise((r) => setTimeout(r, 300));
    await roundTrip(carolInbox);
    await roundTrip(daveInbox);
    expect(carolInbox.frames.some((f) => f.type === "mention")).toBe(false);
    expect(daveInbox.frames.some((f) => f.type === "mention")).toBe(false);
    // An edit that adds a mention tells the newly mentioned only.
    const eve = uid("eve");
    await provision(eve);
    const eveInbox = await inbox(eve);
    msgOf(await req(a, { type: "edit_message", messageId: sent.id, text: "hey all", mentions: [bob, eve] }));
    await eveInbox.waitFor((m) => m.type === "mention" && m.messageId === sent.id);
    await new Promise((r) => setTimeout(r, 300));
    await roundTrip(bobInbox);
    expect(bobInbox.frames.filter((f) => f.type === "mention")).toHaveLength(1);
    // Dropping a mention and adding it back does not tell Eve again (edits cannot spam an inbox).
    msgOf(await req(a, { type: "edit_message", messageId: sent.id, text: "hey bob", mentions: [bob] }));
    msgOf(await req(a, { type: "edit_message", messageId: sent.id, text: "hey all again", mentions: [bob, eve] }));
    await new Promise((r) => setTimeout(r, 300));
    await roundTrip(eveInbox);
    expect(eveInbox.frames.filter((f) => f.type === "mention")).toHaveLength(1);
    [a, c, bobInbox, carolInbox, daveInbox, eveInbox].forEach((s) => s.close());
  });
});

type Listed = { id: string; unread: number | null; mentions: number | null; readSeq: number | null };
const joinedRooms = async (user: string, query = "") =>
  ((await (await api(user, `/api/chat/rooms?joined=true${query}`)).json()) as { rooms: Listed[]; nextCursor: string | null });

describe("rooms: read state and the joined list", () => {
  it("mark_read never moves backwards, is clamped to the head, and unread/mentions are per user across devices", async () => {
    const [alice, bob] = [uid("alice"), uid("bob")];
    const room = await createRoom(uid("unread"));
    const other = await createRoom(uid("unread-other"));
    const a = await joined(alice, room);
    const b1 = await joined(bob, room);
    const bOther = await joined(bob, other);
    for (let i = 1; i <= 4; i++) await sendText(a, `u${i}`);
    msgOf(await req(a, { type: "send_room_message", clientMsgId: "men", text: "@bob look", mentions: [bob] }));
    await sendText(b1, "own"); // the reader's own message is never unread
    const del = msgOf(await sendText(a, "gone"));
    msgOf(await req(a, { type: "delete_message", messageId: del.id })); // nor is a tombstone
    // The D1 record of a first join is written off the hot path.
    let list = await joinedRooms(bob);
    for (let t = 0; list.rooms.length < 2 && t < 100; t++) {
      await new Promise((r) => setTimeout(r, 20));
      list = await joinedRooms(bob);
    }
    expect(list.rooms.map((r) => r.id).sort()).toEqual([room, other].sort());
    expect(list.rooms.find((r) => r.id === room)).toMatchObject({ unread: 5, mentions: 1, readSeq: 0 });
    expect(list.rooms.find((r) => r.id === other)).toMatchObject({ unread: 0, mentions: 0 });
    // A second device of bob reads up to seq 3; the first device's listing agrees.
    const b2 = await joined(bob, room);
    expect(await req(b2, { type: "mark_read", seq: 3 })).toMatchObject({ type: "ack" });
    expect((await joinedRooms(bob)).rooms.find((r) => r.id === room)).toMatchObject({ unread: 2, mentions: 1, readSeq: 3 });
    // Never backwards; clamped to the head.
    await req(b1, { type: "mark_read", seq: 1 });
    expect((await joinedRooms(bob)).rooms.find((r) => r.id === room)).toMatchObject({ readSeq: 3 });
    await req(b1, { type: "mark_read", seq: 10_000 });
    expect((await joinedRooms(bob)).rooms.find((r) => r.id === room)).toMatchObject({ unread: 0, mentions: 0, readSeq: 7 });
    // Refused before joining; nothing changes.
    const lurker = await connectWs(bob, `/api/chat/rooms/${room}/ws`);
    expect(await req(lurker, { type: "mark_read", seq: 1 })).toMatchObject({ type: "error", code: "forbidden" });
    // Alice's list is her own: she joined one room, and her own messages are not unread.
    expect((await joinedRooms(alice)).rooms).toEqual([expect.objectContaining({ id: room, unread: 1 })]);
    expect((await api(null, "/api/chat/rooms?joined=true")).status).toBe(401);
    [a, b1, b2, bOther, lurker].forEach((s) => s.close());
  });

  it("the read position survives eviction; a failed D1 join record is retried by the alarm", async () => {
    const bob = uid("bob");
    const room = await createRoom(uid("unread-evict"));
    const b = await joined(bob, room);
    const a = await joined("alice", room);
    for (let i = 1; i <= 3; i++) await sendText(a, `v${i}`);
    await req(b, { type: "mark_read", seq: 2 });
    await evictDurableObject(stubOf(room));
    expect(await stubOf(room).readSummary(bob)).toMatchObject({ readSeq: 2, unread: 1 });
    // Pretend the D1 write never landed: the alarm writes it.
    await env.DB.prepare("DELETE FROM room_joins WHERE user_id = ?").bind(bob).run();
    await runInDurableObject(stubOf(room), (_i: ChatRoom, s) => {
      s.storage.sql.exec("UPDATE read_state SET listed = 0 WHERE user_id = ?", bob);
    });
    await runInDurableObject(stubOf(room), async (_i: ChatRoom, s) => s.storage.setAlarm(Date.now()));
    await runDurableObjectAlarm(stubOf(room));
    expect((await joinedRooms(bob)).rooms.map((r) => r.id)).toEqual([room]);
    a.close();
    b.close();
  });
});

describe("rooms: first joins are written together", () => {
  it("a join storm: every joiner is listed with the right unread count, D1 records in a batch of several statements", async () => {
    const room = await createRoom(uid("join-storm"));
    const a = await joined("alice", room);
    for (let i = 1; i <= 2; i++) await sendText(a, `w${i}`);
    // 40 first joins at once: more than one INSERT's worth of D1 rows (33), all in one flush.
    const users = Array.from({ length: 40 }, (_, i) => uid(`joiner${i}`));
    const socks = await Promise.all(users.map((u) => joined(u, room)));
    await sendText(a, "w3");
    const listed = async (u: string) => (await joinedRooms(u)).rooms.find((r) => r.id === room);
    for (const u of [users[0], users[20], users[39]]) {
      await expect.poll(() => listed(u), { timeout: 5000 }).toMatchObject({ unread: 1, readSeq: 2 });
    }
    const rows = await env.DB.prepare("SELECT count(*) AS n FROM room_joins WHERE room_id = ?").bind(room).first<{ n: number }>();
    expect(rows?.n).toBe(41);
    await runInDurableObject(stubOf(room), (_i: ChatRoom, st) => {
      expect(st.storage.sql.exec("SELECT count(*) AS n FROM read_state WHERE listed = 1").one().n).toBe(41);
    });
    [a, ...socks].forEach((s) => s.close());
  });

  it("mark_read right after a first join never puts the read position below where the user joined", async () => {
    const room = await createRoom(uid("join-then-read"));
    const a = await joined("alice", room);
    for (let i = 1; i <= 3; i++) await sendText(a, `r${i}`);
    const bob = uid("bob");
    const b = await joined(bob, room);
    // Within the join's flush window: the row is still waiting in memory.
    expect(await req(b, { type: "mark_read", seq: 1 })).toMatchObject({ type: "ack" });
    expect(await stubOf(room).readSummary(bob)).toMatchObject({ readSeq: 3, unread: 0 });
    await expect.poll(async () => (await joinedRooms(bob)).rooms.map((r) => r.id), { timeout: 5000 }).toEqual([room]);
    a.close();
    b.close();
  });
});

describe("rooms: the upgrade is the room's to answer", () => {
  it("a room socket provisions its user (and follows a new name) in the room's batch, not per request", async () => {
    const room = await createRoom(uid("provision"));
    const newcomer = uid("newcomer");
    const nameOf = async () => (await env.DB.prepare("SELECT name FROM users WHERE id = ?").bind(newcomer).first<{ name: string }>())?.name ?? null;
    expect(await nameOf()).toBeNull();
    const s1 = await joined(newcomer, room, { name: "First Name" });
    await expect.poll(nameOf, { timeout: 5000 }).toBe("First Name");
    const s2 = await joined(newcomer, room, { name: "Second Name" });
    await expect.poll(nameOf, { timeout: 5000 }).toBe("Second Name");
    s1.close();
    s2.close();
  });

  it("a missing room is 404 at the upgrade, and one created afterwards by a plain D1 insert opens", async () => {
    const id = uid("later");
    const refused = await api("alice", `/api/chat/rooms/${id}/ws`, { headers: { Upgrade: "websocket" } });
    expect(refused.status).toBe(404);
    expect(await refused.json()).toMatchObject({ error: { code: "not_found", message: `No room ${id}.` } });
    await createRoom(id);
    const s = await joined("alice", id);
    s.close();
  });
});

describe("rooms: search", () => {
  it("ranked, paginated, finds an edit by its new text only, never a deleted message", async () => {
    const { room, socks: [a] } = await setup("search", ["alice"]);
    const once = msgOf(await sendText(a, "s1", "the kettle is on"));
    const thrice = msgOf(await sendText(a, "s2", "kettle kettle kettle"));
    await sendText(a, "s3", "nothing to see");
    const edited = msgOf(await sendText(a, "s4", "old phrasing here"));
    const removed = msgOf(await sendText(a, "s5", "kettle to delete"));
    msgOf(await req(a, { type: "edit_message", messageId: edited.id, text: "new wording about the kettle" }));
    msgOf(await req(a, { type: "delete_message", messageId: removed.id }));
    const search = async (q: string, extra = "") => {
      const res = await api("bob", `/api/chat/rooms/${room}/search?q=${encodeURIComponent(q)}${extra}`);
      expect(res.status).toBe(200);
      return (await res.json()) as { messages: RoomMessage[]; nextCursor: string | null };
    };
    const all = await search("kettle");
    expect(all.messages[0].id).toBe(thrice.id);
    expect(all.messages.map((m) => m.id).sort()).toEqual([once.id, thrice.id, edited.id].sort());
    expect((await search("phrasing")).messages).toEqual([]);
    expect((await search("wording")).messages.map((m) => m.text)).toEqual(["new wording about the kettle"]);
    expect((await search("delete")).messages).toEqual([]);
    // Pages: the same order, each result once.
    const p1 = await search("kettle", "&limit=2");
    expect(p1.messages).toHaveLength(2);
    const p2 = await search("kettle", `&limit=2&cursor=${p1.nextCursor}`);
    expect([...p1.messages, ...p2.messages].map((m) => m.id)).toEqual(all.messages.map((m) => m.id));
    expect(p2.nextCursor).toBeNull();
    // User punctuation is never query syntax; a prefix matches.
    expect((await search('"kett*(')).messages.length).toBe(3);
    expect((await search("!!!")).messages).toEqual([]);
    a.close();
  });

  it("refuses searching a room one may not read (unknown), without a token, a bad query or cursor", async () => {
    const room = await createRoom(uid("search-refused"));
    expect((await api("bob", `/api/chat/rooms/no-such-room-zz/search?q=x`)).status).toBe(404);
    expect((await api(null, `/api/chat/rooms/${room}/search?q=x`)).status).toBe(401);
    expect((await api("bob", `/api/chat/rooms/${room}/search`)).status).toBe(400);
    expect((await api("bob", `/api/chat/rooms/${room}/search?q=x&cursor=abc`)).status).toBe(400);
    expect((await api("bob", `/api/chat/rooms/${room}/search?q=${"x".repeat(201)}`)).status).toBe(400);
  });

  it("is rate limited per user (RL_SEARCH): 429 with Retry-After, another user unaffected", async () => {
    const room = await createRoom(uid("search-limit"));
    const greedy = uid("greedy");
    let refused: Response | null = null;
    // The binding's windows are aligned to the clock: 2 × limit + 1 calls always reach a refusal.
    for (let i = 0; i < 121 && !refused; i++) {
      const res = await api(greedy, `/api/chat/rooms/${room}/search?q=hello`);
      if (res.status === 429) refused = res;
      else expect(res.status).toBe(200);
    }
    expect(refused?.headers.get("Retry-After")).toBe("60");
    expect(((await refused!.json()) as { error: { code: string } }).error.code).toBe("rate_limited");
    expect((await api(uid("other"), `/api/chat/rooms/${room}/search?q=hello`)).status).toBe(200);
  });
});

describe("rooms: resume covers changes", () => {
  it("join_room { since, sinceRev } replays the current state of older messages changed meanwhile, once each, across eviction", async () => {
    const { room, socks: [a, b] } = await setup("resume-changes");
    const m1 = msgOf(await sendText(a, "c1", "one"));
    const m2 = msgOf(await sendText(a, "c2", "two"));
    const m3 = msgOf(await sendText(a, "c3", "three"));
    await b.waitFor((f) => f.type === "message" && f.message.seq === 3);
    const seenRev = Math.max(...b.frames.flatMap((f) => (f.type === "message" ? [f.message.rev ?? 0] : [])));
    expect(seenRev).toBe(3);
    b.close();
    // While bob is away: an edit, a delete, reactions (one by bob's other device), a new message.
    msgOf(await req(a, { type: "edit_message", messageId: m1.id, text: "one, edited" }));
    msgOf(await req(a, { type: "delete_message", messageId: m2.id }));
    msgOf(await req(a, { type: "react", messageId: m1.id, emoji: "🎉", on: true }));
    const bOther = await joined("bob", room);
    msgOf(await req(bOther, { type: "react", messageId: m3.id, emoji: "👍", on: true }));
    bOther.close();
    msgOf(await sendText(a, "c4", "four"));
    await evictDurableObject(stubOf(room));
    const back = await resumed("bob", room, 3, seenRev);
    await back.waitFor((f) => f.type === "message" && f.message.seq === 4);
    await roundTrip(back);
    const state = back.frames.find((f) => f.type === "room_state") as RoomState;
    expect(state.lastRev).toBe(8);
    expect(state.changesTruncated).toBeUndefined();
    const after = back.frames.slice(back.frames.indexOf(state) + 1);
    const kinds = after.map((f) =>
      f.type === "message_updated" && "seq" in f.message ? `updated:${f.message.seq}` : f.type === "message_deleted" ? `deleted:${f.seq}` : f.type === "message" ? `message:${f.message.seq}` : f.type,
    );
    // New messages first, then each changed message once, in rev order.
    expect(kinds.filter((k) => k !== "pong")).toEqual(["message:4", "deleted:2", "updated:1", "updated:3"]);
    const up1 = after.find((f) => f.type === "message_updated" && f.message.id === m1.id) as Extract<ServerMessage, { type: "message_updated" }>;
    expect(up1.message).toMatchObject({ text: "one, edited", reactions: { "🎉": 1 }, rev: 6 });
    const up3 = after.find((f) => f.type === "message_updated" && f.message.id === m3.id) as Extract<ServerMessage, { type: "message_updated" }>;
    expect(up3.message).toMatchObject({ reactions: { "👍": 1 }, myReactions: ["👍"] });
    // A resume from the latest rev replays no change.
    const again = await resumed("bob", room, 4, state.lastRev ?? 0);
    await roundTrip(again);
    expect(again.frames.some((f) => f.type === "message_updated" || f.type === "message_deleted" || f.type === "message")).toBe(false);
    // Live frames carry rev.
    msgOf(await req(a, { type: "react", messageId: m3.id, emoji: "👍", on: true }));
    expect(await again.waitFor((f) => f.type === "reaction")).toMatchObject({ rev: 9, count: 2 });
    [a, back, again].forEach((s) => s.close());
  });

  it(`bounds the change replay at ${CHANGES_MAX} and says changesTruncated`, async () => {
    const room = await createRoom(uid("changes-bound"));
    const stub = stubOf(room);
    await stub.ping();
    const total = CHANGES_MAX + 5;
    const a = await joined("alice", room);
    a.close();
    await runInDurableObject(stub, (_i: ChatRoom, state) => {
      for (let seq = 1; seq <= total; seq++) {
        state.storage.sql.exec(
          "INSERT INTO messages (seq, id, user_id, user_name, client_msg_id, text, created_at, rev, edited_at) VALUES (?, ?, 'w', 'w', ?, ?, ?, ?, ?)",
          seq,
          `id-${seq}`,
          `c${seq}`,
          `t${seq}`,
          seq,
          total + seq,
          seq,
        );
      }
    });
    await evictDurableObject(stub);
    const b = await resumed("bob", room, total, total);
    const state = b.frames.find((f) => f.type === "room_state") as RoomState;
    expect(state).toMatchObject({ lastRev: 2 * total, changesTruncated: true });
    await b.waitFor((f) => f.type === "message_updated" && "seq" in f.message && f.message.seq === CHANGES_MAX);
    await roundTrip(b);
    expect(b.frames.filter((f) => f.type === "message_updated")).toHaveLength(CHANGES_MAX);
    b.close();
  });
});

describe("rooms: resume of changes through a truncated replay", () => {
  it("continuing a truncated replay on the same socket repeats no change", async () => {
    const room = await createRoom(uid("trunc-changes"));
    const stub = stubOf(room);
    const total = REPLAY_MAX + 50;
    await stub.snapshot();
    // Messages 1..total with rev = seq; then message 5 (held by the client) and message 500 (in the
    // first replay's range) changed after the client's sinceRev.
    await runInDurableObject(stub, (_i: ChatRoom, state) => {
      for (let seq = 1; seq <= total; seq++) {
        state.storage.sql.exec(
          "INSERT INTO messages (seq, id, user_id, user_name, client_msg_id, text, created_at, rev) VALUES (?, ?, 'w', 'w', ?, ?, ?, ?)",
          seq, `id-${seq}`, `c${seq}`, `t${seq}`, seq, seq,
        );
      }
      state.storage.sql.exec("UPDATE messages SET text = 'five, edited', edited_at = 1, rev = ? WHERE seq = 5", total + 1);
      state.storage.sql.exec("UPDATE messages SET text = 'five hundred, edited', edited_at = 1, rev = ? WHERE seq = 500", total + 2);
    });
    await evictDurableObject(stub);
    const b = await connectWs(uid("bob"), `/api/chat/rooms/${room}/ws`);
    b.send({ type: "join_room", id: "first", since: 10, sinceRev: 10 });
    const state = await b.waitFor<Extract<ServerMessage, { type: "room_state" }>>((m) => m.type === "room_state");
    expect(state).toMatchObject({ replayTruncated: true, nextSince: 10 + REPLAY_MAX });
    await b.waitFor((m) => m.type === "ack" && m.id === "first");
    b.send({ type: "join_room", id: "more", since: state.nextSince, sinceRev: 10 });
    await b.waitFor((m) => m.type === "ack" && m.id === "more");
    const updated = b.frames.filter((f) => f.type === "message_updated").map((f) => (f as { message: RoomMessage }).message.seq);
    // Message 5 once (it was held); message 500 never as a change: it came in the replay, as it is now.
    expect(updated).toEqual([5]);
    const replayed = b.frames.filter((f) => f.type === "message").map((f) => (f as { message: RoomMessage }).message);
    expect(replayed.find((m) => m.seq === 500)?.text).toBe("five hundred, edited");
    expect(replayed.map((m) => m.seq)).toEqual(Array.from({ length: total - 10 }, (_, i) => 11 + i));
    b.close();
  });
});

describe("rooms: lifecycle frames and the rate limit", () => {
  it("edits and reactions take tokens from the user's bucket; a refused one changes nothing and the socket stays usable", async () => {
    const { room, socks: [a] } = await setup("life-rate", ["alice"]);
    const m = msgOf(await sendText(a, "rl"));
    const ids: string[] = [];
    for (let i = 0; i < 30; i++) {
      ids.push(`f${i}`);
      a.send({ type: "react", id: `f${i}`, messageId: m.id, emoji: EMOJI[i % 2], on: i % 4 < 2 });
    }
    const replies = await Promise.all(ids.map((id) => a.waitFor<Reply>((f) => (f.type === "ack" || f.type === "error") && f.id === id)));
    const refused = replies.filter((r) => r.type === "error");
    expect(refused.length).toBeGreaterThan(5);
    expect(refused.every((r) => r.type === "error" && r.code === "rate_limited" && typeof r.retryAfterMs === "number")).toBe(true);
    const accepted = replies.filter((r) => r.type === "ack").length;
    // Every accepted toggle took one rev or none; refused ones none.
    const rev = (await stubOf(room).history(null, 1)).messages[0].rev ?? 0;
    expect(rev).toBeLessThanOrEqual(1 + accepted);
    await new Promise((r) => setTimeout(r, 1200));
    expect((await req(a, { type: "edit_message", messageId: m.id, text: "after the flood" })).type).toBe("ack");
    a.close();
  });
});

describe("rooms: storage per message", () => {
  it("a message with 20 distinct reactions costs about 1 KiB more than a plain one, bounded (measured)", async () => {
    const room = await createRoom(uid("storage"));
    const stub = stubOf(room);
    const a = await joined("alice", room);
    a.close();
    const N = 500;
    const sizes = await runInDurableObject(stub, (inst: ChatRoom, state) => {
      const sql = state.storage.sql;
      const size = () => sql.databaseSize;
      const log = (inst as unknown as { messages: { append(m: RoomMessage): boolean; bySeqs(s: number[]): RoomMessage[] } }).messages;
      // Through the log's own append: the row, its indexes and its search-index entry.
      const insert = (from: number) => {
        for (let seq = from; seq < from + N; seq++) {
          log.append({
            id: crypto.randomUUID(),
            roomId: room,
            seq,
            userId: "alice",
            userName: "Alice",
            clientMsgId: `c${seq}`,
            text: `message number ${seq} with some ordinary words in it`,
            createdAt: Date.now(),
            rev: seq,
          });
        }
      };
      const s0 = size();
      insert(1);
      const s1 = size();
      insert(N + 1);
      // 20 distinct emoji on each of the second batch, each from a different user, through the real toggle.
      const reactions = (inst as unknown as { reactions: { toggle(m: RoomMessage, u: string, e: string, on: boolean): unknown } }).reactions;
      for (let seq = N + 1; seq <= 2 * N; seq++) {
        for (let k = 0; k < 20; k++) {
          const m = log.bySeqs([seq])[0];
          reactions.toggle(m, `user-${k}`, EMOJI[k], true);
        }
      }
      const s2 = size();
      const row = sql.exec<{ reactions: string }>("SELECT reactions FROM messages WHERE seq = ?", 2 * N).one();
      return { plain: (s1 - s0) / N, withReactions: (size() - s1) / N, s2, countsJson: row.reactions.length };
    });
    console.log(
      `storage per message: plain ≈ ${Math.round(sizes.plain)} B; with 20 distinct reactions (one user each) ≈ ${Math.round(sizes.withReactions)} B (the counts JSON on the row: ${sizes.countsJson} chars)`,
    );
    expect(sizes.withReactions).toBeLessThan(sizes.plain + 4096);
  });
});
