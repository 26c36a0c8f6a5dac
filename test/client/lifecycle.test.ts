/**
 * The message lifecycle in the SDK: edit, delete, react and mark_read as typed requests (acks, typed
 * refusals, queued while offline), change events, resume of changes with `sinceRev` (committed only
 * once a catch-up completes), `changesTruncated`, repeats dropped, and changes folded into held messages.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ChatError, applyChange, type MessageDeleted, type Reaction, type RoomMessage } from "../../client/src/index.js";
import { type FakeSocket, dmMsg, makeClient, roomMsg, roomState, settle } from "./fake";

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

function answerJoin(s: FakeSocket, lastSeq: number, over: Record<string, unknown> = {}, replay: unknown[] = []) {
  if (s.readyState !== 1) s.open();
  const join = s.last("join_room")!;
  s.receive(roomState(lastSeq, over));
  if (replay.length) s.receive({ type: "batch", frames: replay });
  s.receive({ type: "ack", id: join.id });
  return join;
}

async function joinedRoom(lastSeq = 0, lastRev?: number) {
  const c = makeClient();
  const room = c.chat.room("general");
  const log: string[] = [];
  room.on("message", (m) => log.push(`message:${m.seq}:${m.text}`));
  room.on("updated", (m) => log.push(`updated:${m.id}:${m.text}`));
  room.on("deleted", (d) => log.push(`deleted:${d.messageId}`));
  room.on("reaction", (r) => log.push(`reaction:${r.messageId}:${r.emoji}:${r.count}`));
  room.on("reload", (r) => log.push(`reload:${r.reason}`));
  await settle();
  answerJoin(c.sockets[0], lastSeq, lastRev === undefined ? {} : { lastRev });
  return { ...c, room, log };
}

async function reconnect(sockets: FakeSocket[]) {
  sockets.at(-1)!.serverClose(1006);
  await vi.advanceTimersByTimeAsync(1000);
  const s = sockets.at(-1)!;
  s.open();
  await settle();
  return s;
}

const updated = (m: Record<string, unknown>) => ({ type: "message_updated", message: m });
const reaction = (messageId: string, emoji: string, count: number, rev: number, over = {}) => ({
  type: "reaction",
  messageId,
  emoji,
  userId: "bob",
  on: true,
  count,
  roomId: "general",
  rev,
  ...over,
});

describe("Room lifecycle requests", () => {
  it("edit, delete, react and mark_read send their frames and settle with the ack; sends carry mentions", async () => {
    const { chat, sockets, room } = await joinedRoom(3, 3);
    const s = sockets[0];
    const edited = roomMsg(2, { id: "m2", text: "fixed", editedAt: 5, rev: 4 });
    const pEdit = room.editMessage("m2", "fixed", { mentions: ["carol"] });
    expect(s.last("edit_message")).toMatchObject({ messageId: "m2", text: "fixed", mentions: ["carol"] });
    expect(s.last("edit_message")!.conversationId).toBeUndefined();
    s.receive({ type: "ack", id: s.last("edit_message")!.id, message: edited });
    await expect(pEdit).resolves.toEqual(edited);

    const pDel = room.deleteMessage("m1");
    expect(s.last("delete_message")).toMatchObject({ messageId: "m1" });
    s.receive({ type: "ack", id: s.last("delete_message")!.id });
    await expect(pDel).resolves.toBeUndefined();

    const pOff = room.react("m2", "👍", false);
    expect(s.last("react")).toMatchObject({ messageId: "m2", emoji: "👍", on: false });
    s.receive({ type: "ack", id: s.last("react")!.id });
    await pOff;
    void room.react("m3", "🎉").catch(() => {});
    expect(s.last("react")).toMatchObject({ messageId: "m3", on: true });

    const pRead = room.markRead(3);
    expect(s.last("mark_read")).toEqual({ type: "mark_read", seq: 3, id: s.last("mark_read")!.id });
    s.receive({ type: "ack", id: s.last("mark_read")!.id });
    await pRead;

    void room.send({ text: "hi @carol", mentions: ["carol"] }).catch(() => {});
    await settle();
    expect(s.last("send_room_message")).toMatchObject({ text: "hi @carol", mentions: ["carol"] });
    await chat.close();
  });

  it("the changer's socket gets an ack with the message instead of the broadcast: emitted once as updated / deleted, in stream order", async () => {
    const { chat, sockets, room, log } = await joinedRoom(3, 3);
    const s = sockets[0];
    const edit = room.editMessage("m2", "fixed");
    s.receive({ type: "ack", id: s.last("edit_message")!.id, message: roomMsg(2, { id: "m2", text: "fixed", editedAt: 5, rev: 4 }) });
    await edit;
    void room.react("m2", "👍");
    // Someone else's reaction (rev 6) follows the ack of ours (rev 5) in the stream.
    s.receive({
      type: "batch",
      frames: [
        { type: "ack", id: s.last("react")!.id, message: roomMsg(2, { id: "m2", text: "fixed", reactions: { "👍": 1 }, myReactions: ["👍"], rev: 5 }) },
        reaction("m2", "👍", 2, 6),
      ],
    });
    const del = room.deleteMessage("m1");
    s.receive({ type: "ack", id: s.last("delete_message")!.id, message: roomMsg(1, { id: "m1", text: undefined, deleted: true, deletedBy: "alice", rev: 7 }) });
    await del;
    // A broadcast of a change already acked (a server that sends both) is a repeat.
    s.receive(updated(roomMsg(2, { id: "m2", text: "fixed", rev: 4 })));
    expect(log).toEqual(["updated:m2:fixed", "updated:m2:fixed", "reaction:m2:👍:2", "deleted:m1"]);
    expect(room.rev).toBe(7);
    await chat.close();
  });

  it("refusals reject with a typed ChatError (muted+until, slow_mode+retryAfterMs, banned, frozen, filtered, forbidden), not retried; the socket goes on", async () => {
    const { chat, sockets, room } = await joinedRoom(3);
    const s = sockets[0];
    const refusals = [
      { code: "muted", message: "muted", until: 99_000 },
      { code: "slow_mode", message: "wait", retryAfterMs: 4000 },
      { code: "banned", message: "banned", until: null },
      { code: "frozen", message: "frozen" },
      { code: "filtered", message: "filtered" },
      { code: "forbidden", message: "not yours" },
      { code: "not_found", message: "no such message" },
    ];
    for (const r of refusals) {
      const p = room.editMessage("m1", "x").catch((e: unknown) => e);
      const f = s.last("edit_message")!;
      s.receive({ type: "error", id: f.id, ...r });
      const err = (await p) as ChatError;
      expect(err).toBeInstanceOf(ChatError);
      expect(err).toMatchObject(r);
    }
    expect(s.frames().filter((f) => f.type === "edit_message")).toHaveLength(refusals.length);
    // Sends are refused the same way (the queue drops them and goes on).
    const sent = room.send({ text: "while muted" }).catch((e: unknown) => e);
    await settle();
    s.receive({ type: "error", id: s.last("send_room_message")!.id, code: "muted", message: "muted", until: 123 });
    expect(await sent).toMatchObject({ code: "muted", until: 123 });
    const slow = room.send({ text: "too soon" }).catch((e: unknown) => e);
    await settle();
    s.receive({ type: "error", id: s.last("send_room_message")!.id, code: "slow_mode", message: "wait", retryAfterMs: 2500 });
    expect(await slow).toMatchObject({ code: "slow_mode", retryAfterMs: 2500 });
    expect(s.frames().filter((f) => f.type === "send_room_message")).toHaveLength(2);
    // rate_limited is not a refusal: the same request goes again after retryAfterMs.
    const p = room.react("m1", "👍");
    const first = s.last("react")!;
    s.receive({ type: "error", id: first.id, code: "rate_limited", message: "slow down", retryAfterMs: 300 });
    await vi.advanceTimersByTimeAsync(300);
    const again = s.last("react")!;
    expect(again.id).not.toBe(first.id);
    s.receive({ type: "ack", id: again.id });
    await expect(p).resolves.toBeUndefined();
    await chat.close();
  });

  it("waits while disconnected and goes out after the rejoin; one in flight when the socket drops is sent again", async () => {
    const { chat, sockets, room } = await joinedRoom(3);
    sockets[0].serverClose(1006);
    const p = room.react("m1", "👍");
    const inFlight = room.deleteMessage("m2");
    await vi.advanceTimersByTimeAsync(1000);
    const s1 = sockets[1];
    s1.open();
    expect(s1.frames().map((f) => f.type)).toEqual(["join_room"]);
    answerJoin(s1, 3);
    expect(s1.frames().map((f) => f.type)).toEqual(["join_room", "react", "delete_message"]);
    s1.receive({ type: "ack", id: s1.last("react")!.id });
    await expect(p).resolves.toBeUndefined();
    const s2 = await reconnect(sockets);
    answerJoin(s2, 3);
    expect(s2.last("delete_message")).toMatchObject({ messageId: "m2" });
    s2.receive({ type: "ack", id: s2.last("delete_message")!.id });
    await expect(inFlight).resolves.toBeUndefined();
    // Closing rejects what still waits, with `closed`.
    const left = room.markRead(3).catch((e: ChatError) => e.code);
    s2.serverClose(1006);
    room.leave();
    expect(await left).toBe("closed");
    await chat.close();
  });
});

describe("Room change events", () => {
  it("emits updated, deleted and reaction; moderation system frames pass as `system`; unknown frames still reach `frame`", async () => {
    const { chat, sockets, room, log } = await joinedRoom(3, 3);
    const s = sockets[0];
    const system: string[] = [];
    const frames: string[] = [];
    room.on("system", (f) => system.push(`${f.event}:${f.userId}:${f.until ?? ""}`));
    room.on("frame", (f) => frames.push(f.type));
    s.receive({ type: "system", roomId: "general", event: "join", userId: "bob", name: "Bob", at: 1 });
    s.receive(updated(roomMsg(2, { id: "m2", text: "edited", editedAt: 9, rev: 4 })));
    s.receive({ type: "message_deleted", messageId: "m1", seq: 1, deletedBy: "bob", roomId: "general", rev: 5 });
    s.receive(reaction("m2", "👍", 1, 6));
    s.receive({ type: "system", roomId: "general", event: "mute", userId: "bob", name: "Bob", at: 2, by: "mod", until: 5000 });
    s.receive({ type: "system", roomId: "general", event: "kick", userId: "bob", name: "Bob", at: 3, by: "mod" });
    s.receive({ type: "poll_created", poll: {} });
    expect(log).toEqual(["updated:m2:edited", "deleted:m1", "reaction:m2:👍:1"]);
    expect(system).toEqual(["join:bob:", "mute:bob:5000", "kick:bob:"]);
    // Only `leave` removes someone from `present` (a kick is followed by their leave).
    expect(room.present.map((p) => p.userId)).toEqual(["bob"]);
    expect(frames).toEqual(["poll_created"]);
    expect(room.rev).toBe(6);
    await chat.close();
  });

  it("room_deleted closes the room for good: queued sends fail with not_found, no reconnect", async () => {
    const { chat, sockets, room } = await joinedRoom(0);
    const errors: string[] = [];
    room.on("error", (e) => errors.push(e.code));
    sockets[0].serverClose(1006);
    const p = room.send({ text: "x" }).catch((e: ChatError) => e.code);
    await vi.advanceTimersByTimeAsync(1000);
    const s = sockets[1];
    s.open();
    s.receive({ type: "system", roomId: "general", event: "room_deleted", userId: "owner", name: "Owner", at: 1 });
    expect(await p).toBe("not_found");
    expect(errors).toEqual(["not_found"]);
    expect(room.state).toBe("closed");
    await vi.advanceTimersByTimeAsync(60_000);
    expect(sockets).toHaveLength(2);
    await chat.close();
  });

  it("an unasked-for `banned` error (sent before the server closes the socket) ends the room; a kick's `forbidden` does not", async () => {
    const { chat, sockets, room } = await joinedRoom(0);
    const errors: string[] = [];
    room.on("error", (e) => errors.push(`${e.code}:${e.until ?? ""}`));
    sockets[0].receive({ type: "error", code: "forbidden", message: "Removed from the room by a moderator. You may join again." });
    sockets[0].serverClose(1008);
    await vi.advanceTimersByTimeAsync(1000);
    expect(sockets).toHaveLength(2);
    answerJoin(sockets[1], 0);
    const p = room.send({ text: "x" }).catch((e: ChatError) => e.code);
    sockets[1].receive({ type: "error", code: "banned", message: "banned", until: 777 });
    sockets[1].serverClose(1008);
    expect(await p).toBe("banned");
    expect(errors).toEqual(["forbidden:", "banned:777"]);
    expect(room.state).toBe("closed");
    await vi.advanceTimersByTimeAsync(60_000);
    expect(sockets).toHaveLength(2);
    await chat.close();
  });

  it("a change that repeats one applied (same or older rev for that message) is dropped", async () => {
    const { chat, sockets, log } = await joinedRoom(3, 3);
    const s = sockets[0];
    s.receive(reaction("m2", "👍", 1, 4));
    s.receive(reaction("m2", "👍", 1, 4));
    s.receive(updated(roomMsg(2, { id: "m2", text: "v2", rev: 6 })));
    s.receive(reaction("m2", "🎉", 1, 5)); // older than what is known of m2
    s.receive(updated(roomMsg(2, { id: "m2", text: "v2", rev: 6 })));
    s.receive(reaction("m3", "🎉", 1, 5)); // another message: not a repeat
    expect(log).toEqual(["reaction:m2:👍:1", "updated:m2:v2", "reaction:m3:🎉:1"]);
    await chat.close();
  });
});

describe("Room resume of changes", () => {
  it("rejoins with sinceRev = the highest rev seen (room_state.lastRev, then live frames) and emits the replayed changes once", async () => {
    const { chat, sockets, room, log } = await joinedRoom(3, 10);
    expect(sockets[0].frames()[0]).toEqual({ type: "join_room", id: 1 });
    expect(room.rev).toBe(10);
    const s0 = sockets[0];
    s0.receive(reaction("m1", "👍", 1, 11));
    s0.receive({ type: "message", message: roomMsg(4, { id: "m4", rev: 12 }) });
    expect(room.rev).toBe(12);

    const s = await reconnect(sockets);
    expect(s.last("join_room")).toMatchObject({ since: 4, sinceRev: 12 });
    // Away: m1 edited (13), m4 reacted to (14), message 5 sent (15). The replay brings message 5 and the
    // changes to messages up to 4; the reaction on m4 comes again live too (a repeat).
    answerJoin(s, 5, { lastRev: 15 }, [
      { type: "message", message: roomMsg(5, { id: "m5", rev: 15 }) },
      updated(roomMsg(1, { id: "m1", text: "edited", rev: 13 })),
      updated(roomMsg(4, { id: "m4", text: "message 4", reactions: { "🎉": 1 }, rev: 14 })),
    ]);
    s.receive(reaction("m4", "🎉", 1, 14));
    expect(log.slice(1)).toEqual(["message:4:message 4", "updated:m1:edited", "updated:m4:message 4", "message:5:message 5"]);
    expect(room.rev).toBe(15);
    const s2 = await reconnect(sockets);
    expect(s2.last("join_room")).toMatchObject({ since: 5, sinceRev: 15 });
    await chat.close();
  });

  it("a socket that drops mid-catch-up asks again from the rev it had before it (a replay is not in rev order)", async () => {
    const { chat, sockets, room } = await joinedRoom(3, 10);
    const s1 = await reconnect(sockets);
    expect(s1.last("join_room")).toMatchObject({ since: 3, sinceRev: 10 });
    s1.receive(roomState(5, { lastRev: 30 }));
    // Message 4 replayed as it now is (rev 30), the change of m1 at rev 20 not yet: the socket drops.
    s1.receive({ type: "message", message: roomMsg(4, { rev: 30 }) });
    expect(room.rev).toBe(10);
    const s2 = await reconnect(sockets);
    expect(s2.last("join_room")).toMatchObject({ since: 4, sinceRev: 10 });
    answerJoin(s2, 5, { lastRev: 30 }, [updated(roomMsg(1, { id: "m1", rev: 20 }))]);
    expect(room.rev).toBe(30);
    await chat.close();
  });

  it("changesTruncated emits `reload`; resume then goes on from the room's lastRev", async () => {
    const { chat, sockets, log } = await joinedRoom(3, 10);
    const s = await reconnect(sockets);
    answerJoin(s, 3, { lastRev: 5000, changesTruncated: true });
    expect(log).toEqual(["reload:changes_truncated"]);
    const s2 = await reconnect(sockets);
    expect(s2.last("join_room")).toMatchObject({ since: 3, sinceRev: 5000 });
    await chat.close();
  });

  it("a change to a message still held (not yet emitted) is folded into it: emitted once, as it now is", async () => {
    const { chat, sockets, log } = await joinedRoom(3, 3);
    const s = sockets[0];
    s.receive({ type: "message", message: roomMsg(5, { id: "m5", text: "typo", rev: 5 }) }); // 4 is missing: 5 is held
    s.receive(updated(roomMsg(5, { id: "m5", text: "fixed", editedAt: 7, rev: 6 })));
    s.receive(reaction("m5", "👍", 2, 7));
    s.receive({ type: "message_deleted", messageId: "m4", seq: 4, deletedBy: "bob", roomId: "general", rev: 8 });
    expect(log).toEqual(["deleted:m4"]); // m4 is not held: the app learns of it (the replay brings the tombstone)
    answerJoin(s, 5, { lastRev: 8 }, [{ type: "message", message: roomMsg(4, { id: "m4", deleted: true, text: undefined, rev: 8 }) }]);
    expect(log).toEqual(["deleted:m4", "message:4:undefined", "message:5:fixed"]);
    await chat.close();
  });
});

describe("Inbox lifecycle", () => {
  async function openInbox(conversations: Array<{ id: string; lastSeq: number; lastMessage?: { rev?: number } | null }>) {
    const c = makeClient();
    c.rest.conversations.push(...conversations);
    const inbox = c.chat.inbox();
    const log: string[] = [];
    inbox.on("dm", (m) => log.push(`dm:${m.conversationId}:${m.seq}:${m.text}`));
    inbox.on("updated", (m) => log.push(`updated:${m.id}:${m.text}`));
    inbox.on("deleted", (d) => log.push(`deleted:${d.messageId}`));
    inbox.on("reaction", (r) => log.push(`reaction:${r.messageId}:${r.count}`));
    inbox.on("mention", (m) => log.push(`mention:${m.roomId}:${m.seq}`));
    await settle();
    return { ...c, inbox, log };
  }

  it("edit, delete and react name their conversation; refusals are typed; change and mention events", async () => {
    const { chat, sockets, inbox, log } = await openInbox([]);
    const s = sockets[0];
    s.open();
    await settle();
    const edit = inbox.editMessage("dm_a", "d1", "better");
    expect(s.last("edit_message")).toMatchObject({ conversationId: "dm_a", messageId: "d1", text: "better" });
    const copy = dmMsg("dm_a", 1, { id: "d1", text: "better", editedAt: 3, rev: 2 });
    s.receive({ type: "ack", id: s.last("edit_message")!.id, message: copy });
    await expect(edit).resolves.toEqual(copy);
    const del = inbox.deleteMessage("dm_a", "d1");
    expect(s.last("delete_message")).toMatchObject({ conversationId: "dm_a", messageId: "d1" });
    s.receive({ type: "error", id: s.last("delete_message")!.id, code: "forbidden", message: "not yours" });
    await expect(del).rejects.toMatchObject({ code: "forbidden" });
    void inbox.react("dm_a", "d1", "❤️").catch(() => {});
    expect(s.last("react")).toMatchObject({ conversationId: "dm_a", messageId: "d1", emoji: "❤️", on: true });

    s.receive(updated(copy));
    s.receive({ type: "message_deleted", messageId: "d2", seq: 2, deletedBy: "bob", conversationId: "dm_a", rev: 3 });
    s.receive({ type: "reaction", messageId: "d1", emoji: "❤️", userId: "alice", on: true, count: 1, conversationId: "dm_a", rev: 4 });
    s.receive({ type: "reaction", messageId: "d1", emoji: "❤️", userId: "alice", on: true, count: 1, conversationId: "dm_a", rev: 4 });
    s.receive({ type: "mention", roomId: "general", roomName: "General", messageId: "m9", seq: 9, from: "bob", fromName: "Bob", preview: "@alice hi", at: 1 });
    expect(log).toEqual(["updated:d1:better", "deleted:d2", "reaction:d1:1", "mention:general:9"]);
    expect(inbox.rev).toBe(4);
    await chat.close();
  });

  it("syncs every conversation held with sinceRev after a reconnect (starting from the list's revs), continues from the ack's lastRev, commits once the sync completes", async () => {
    const { chat, sockets, inbox, log, rest } = await openInbox([
      { id: "dm_a", lastSeq: 2, lastMessage: { rev: 7 } },
      { id: "dm_b", lastSeq: 1, lastMessage: { rev: 4 } },
    ]);
    expect(inbox.rev).toBe(7);
    const s0 = sockets[0];
    s0.open();
    await settle();
    // The first connect: dm_a and dm_b are synced for their changes since rev 7.
    expect(s0.last("sync")).toMatchObject({ since: { dm_a: 2, dm_b: 1 }, sinceRev: 7 });
    s0.receive({ type: "ack", id: s0.last("sync")!.id });
    await settle();
    s0.receive({ type: "dm", message: dmMsg("dm_a", 3, { rev: 9 }) });
    expect(inbox.rev).toBe(9);

    rest.conversations.length = 0;
    rest.conversations.push({ id: "dm_a", lastSeq: 3 }, { id: "dm_b", lastSeq: 1 });
    const s1 = await reconnect(sockets);
    // Nothing new in either conversation, but both are synced: their messages may have changed.
    expect(s1.last("sync")).toMatchObject({ since: { dm_a: 3, dm_b: 1 }, sinceRev: 9 });
    s1.receive(updated(dmMsg("dm_b", 1, { text: "edited", rev: 12 })));
    // The socket drops before the sync's ack: the next sync asks again from 9.
    const s2 = await reconnect(sockets);
    expect(s2.last("sync")).toMatchObject({ sinceRev: 9 });
    s2.receive(updated(dmMsg("dm_b", 1, { text: "edited", rev: 12 }))); // a repeat: dropped
    s2.receive({ type: "message_deleted", messageId: "x", seq: 1, deletedBy: "bob", conversationId: "dm_a", rev: 11 });
    // The changes went past the sync's row budget: the next sync continues from the ack's lastRev.
    s2.receive({ type: "ack", id: s2.last("sync")!.id, more: true, lastRev: 12 });
    await settle();
    expect(s2.last("sync")).toMatchObject({ since: { dm_a: 3, dm_b: 1 }, sinceRev: 12 });
    expect(inbox.rev).toBe(9);
    s2.receive({ type: "ack", id: s2.last("sync")!.id, lastRev: 13 });
    await settle();
    expect(log).toEqual(["dm:dm_a:3:dm 3", "updated:ddm_b-1:edited", "deleted:x"]);
    expect(inbox.rev).toBe(13);
    await chat.close();
  });

  it("a change to a DM still held is folded into it before it is emitted", async () => {
    const { chat, sockets, log } = await openInbox([{ id: "dm_a", lastSeq: 2 }]);
    const s = sockets[0];
    s.open();
    await settle();
    s.receive({ type: "dm", message: dmMsg("dm_a", 4, { text: "typo", rev: 4 }) }); // 3 missing: held
    s.receive(updated(dmMsg("dm_a", 4, { text: "fixed", rev: 5 })));
    await settle();
    s.receive({ type: "batch", frames: [{ type: "dm", message: dmMsg("dm_a", 3) }] });
    s.receive({ type: "ack", id: s.last("sync")!.id });
    await settle();
    expect(log).toEqual(["dm:dm_a:3:dm 3", "dm:dm_a:4:fixed"]);
    await chat.close();
  });
});

describe("applyChange", () => {
  const base = roomMsg(1, { id: "m1", text: "hi", media: [{ id: "x", url: "/x", contentType: "image/png", size: 1 }], reactions: { "👍": 1 }, myReactions: ["👍"], rev: 1 }) as RoomMessage;

  it("folds an edit (keeping the reader's own reactions), a deletion (text and media gone) and reactions (counts, and the reader's own)", () => {
    const edit = applyChange(base, { type: "message_updated", message: { ...base, text: "hello", myReactions: undefined, editedAt: 2, rev: 2 } });
    expect(edit).toMatchObject({ text: "hello", editedAt: 2, myReactions: ["👍"], rev: 2 });
    const del: MessageDeleted = { type: "message_deleted", messageId: "m1", seq: 1, deletedBy: "mod", rev: 3 };
    const tomb = applyChange(base, del);
    expect(tomb).toMatchObject({ id: "m1", seq: 1, deleted: true, deletedBy: "mod", rev: 3 });
    expect("text" in tomb || "media" in tomb).toBe(false);
    const r = (emoji: string, on: boolean, count: number, userId = "alice"): Reaction => ({ type: "reaction", messageId: "m1", emoji, userId, on, count, rev: 4 });
    expect(applyChange(base, r("👍", false, 0), "alice")).toMatchObject({ reactions: undefined, myReactions: [] });
    expect(applyChange(base, r("🎉", true, 3, "bob"), "alice")).toMatchObject({ reactions: { "👍": 1, "🎉": 3 }, myReactions: ["👍"] });
    expect(applyChange(base, { ...r("🎉", true, 1), messageId: "other" })).toBe(base);
  });
});
