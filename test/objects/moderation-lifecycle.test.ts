/**
 * Where moderation meets the message lifecycle (issues 14 and 15), each rule from the refused side:
 * moderators delete anyone's message (audited), members do not; bans, mutes and freezes refuse
 * edits, deletions and reactions as they refuse sends; an edit's new text passes the word filter;
 * a private room's threads and search are 404 to non-members; a mention never tells a user who
 * may not read the room.
 */
import { describe, expect, it } from "vitest";
import type { RoomMessage, ServerMessage } from "../../src/protocol";
import { auditOf, call, expectError, makeRoom } from "../helpers/moderation";
import { inbox, provision, request, roundTrip, uid } from "../helpers/inbox";
import { joined, sendText } from "../helpers/rooms";

type Reply = Extract<ServerMessage, { type: "ack" | "error" }>;
const msgOf = (r: Reply): RoomMessage => {
  expect(r.type, JSON.stringify(r)).toBe("ack");
  return (r as Extract<ServerMessage, { type: "ack" }>).message as RoomMessage;
};
const codeOf = (r: Reply): string => {
  expect(r.type, JSON.stringify(r)).toBe("error");
  return (r as Extract<ServerMessage, { type: "error" }>).code;
};

describe("moderators and the message lifecycle", () => {
  it("a member cannot delete another's message; a moderator can, and the audit log says who", async () => {
    const [owner, mod, alice, bob] = ["owner", "mod", "alice", "bob"].map(uid);
    const room = await makeRoom(owner);
    expect((await call(owner, `/api/chat/rooms/${room}/moderators/${mod}`, { method: "PUT" })).status).toBe(200);
    const a = await joined(alice, room);
    const b = await joined(bob, room);
    const m = await joined(mod, room);
    const sent = msgOf((await sendText(a, "spam")) as Reply);
    // Bob, a member, is refused and nothing changes.
    expect(codeOf(await request(b, { type: "delete_message", id: "d1", messageId: sent.id }))).toBe("forbidden");
    const page = (await (await call(bob, `/api/chat/rooms/${room}/messages`)).json()) as { messages: RoomMessage[] };
    expect(page.messages.find((x) => x.id === sent.id)?.text).toBe("spam");
    // The moderator deletes it: a tombstone that says who, seen by the author.
    const tomb = msgOf(await request(m, { type: "delete_message", id: "d2", messageId: sent.id }));
    expect(tomb).toMatchObject({ id: sent.id, seq: sent.seq, deleted: true, deletedBy: mod });
    await a.waitFor((f) => f.type === "message_deleted" && f.messageId === sent.id && f.deletedBy === mod);
    const audit = await auditOf(room, owner);
    expect(audit.find((e) => e.action === "delete_message")).toMatchObject({ actor: mod, target: alice });
    // A moderator editing someone else's message is still refused: only the author edits.
    const other = msgOf((await sendText(a, "mine")) as Reply);
    expect(codeOf(await request(m, { type: "edit_message", id: "e1", messageId: other.id, text: "theirs" }))).toBe("forbidden");
    [a, b, m].forEach((s) => s.close());
  });

  it("a muted user cannot edit, delete or react; a frozen room refuses members' changes but not a moderator's", async () => {
    const [owner, alice] = ["owner", "alice"].map(uid);
    const room = await makeRoom(owner);
    const a = await joined(alice, room);
    const o = await joined(owner, room);
    const sent = msgOf((await sendText(a, "before")) as Reply);
    expect((await call(owner, `/api/chat/rooms/${room}/mutes/${alice}`, { method: "PUT", json: { durationSec: 600 } })).status).toBe(200);
    for (const frame of [
      { type: "edit_message", messageId: sent.id, text: "after" },
      { type: "delete_message", messageId: sent.id },
      { type: "react", messageId: sent.id, emoji: "👍", on: true },
    ]) {
      const r = await request(a, { ...frame, id: `muted-${frame.type}` });
      expect(codeOf(r)).toBe("muted");
      expect((r as { until?: number }).until).toBeGreaterThan(Date.now());
    }
    expect((await call(owner, `/api/chat/rooms/${room}/mutes/${alice}`, { method: "DELETE" })).status).toBe(200);
    expect((await call(owner, `/api/chat/rooms/${room}`, { method: "PATCH", json: { frozen: true } })).status).toBe(200);
    expect(codeOf(await request(a, { type: "react", id: "frozen-react", messageId: sent.id, emoji: "👍", on: true }))).toBe("frozen");
    expect(codeOf(await request(a, { type: "edit_message", id: "frozen-edit", messageId: sent.id, text: "after" }))).toBe("frozen");
    // Nothing changed; the owner (exempt) still reacts.
    const reacted = msgOf(await request(o, { type: "react", id: "owner-react", messageId: sent.id, emoji: "👍", on: true }));
    expect(reacted).toMatchObject({ text: "before", reactions: { "👍": 1 }, myReactions: ["👍"] });
    expect(reacted.editedAt).toBeUndefined();
    [a, o].forEach((s) => s.close());
  });

  it("an edit to a filtered word is refused `filtered` and the old text stays everywhere", async () => {
    const [owner, alice] = ["owner", "alice"].map(uid);
    const room = await makeRoom(owner);
    expect((await call(owner, `/api/chat/rooms/${room}/filters`, { method: "PUT", json: { words: ["badword"] } })).status).toBe(200);
    const a = await joined(alice, room);
    const sent = msgOf((await sendText(a, "fine text")) as Reply);
    expect(codeOf(await request(a, { type: "edit_message", id: "e", messageId: sent.id, text: "now a B.A.D.W.O.R.D" }))).toBe("filtered");
    const page = (await (await call(alice, `/api/chat/rooms/${room}/messages`)).json()) as { messages: RoomMessage[] };
    expect(page.messages.find((x) => x.id === sent.id)).toMatchObject({ text: "fine text" });
    const found = (await (await call(alice, `/api/chat/rooms/${room}/search?q=badword`)).json()) as { messages: RoomMessage[] };
    expect(found.messages).toEqual([]);
    // The socket is still usable.
    expect(msgOf(await request(a, { type: "edit_message", id: "e2", messageId: sent.id, text: "fine again" })).text).toBe("fine again");
    a.close();
  });
});

describe("private rooms and the message lifecycle", () => {
  it("threads and search answer a non-member exactly as a room that does not exist", async () => {
    const [owner, outsider] = ["owner", "outsider"].map(uid);
    const room = await makeRoom(owner, { visibility: "private" });
    const o = await joined(owner, room);
    const parent = msgOf((await sendText(o, "secret plans")) as Reply);
    expect((await call(owner, `/api/chat/rooms/${room}/search?q=secret`)).status).toBe(200);
    expect((await call(owner, `/api/chat/rooms/${room}/messages/${parent.id}/replies`)).status).toBe(200);
    const missing = `nope-${uid("x")}`;
    for (const path of [`/search?q=secret`, `/messages/${parent.id}/replies`]) {
      const hidden = await expectError(await call(outsider, `/api/chat/rooms/${room}${path}`), 404, "not_found");
      const absent = await expectError(await call(outsider, `/api/chat/rooms/${missing}${path}`), 404, "not_found");
      expect(hidden.message).toBe(absent.message.replace(missing, room));
    }
    o.close();
  });

  it("a mention tells a member who is away, never a non-member of a private room", async () => {
    const [owner, member, outsider] = ["owner", "member", "outsider"].map(uid);
    await provision(owner, member, outsider);
    const room = await makeRoom(owner, { visibility: "private" });
    expect((await call(owner, `/api/chat/rooms/${room}/members/${member}`, { method: "PUT" })).status).toBe(200);
    const o = await joined(owner, room);
    const memberInbox = await inbox(member);
    const outsiderInbox = await inbox(outsider);
    const sent = msgOf(await request(o, { type: "send_room_message", id: "s", clientMsgId: "s", text: "secret for you both", mentions: [member, outsider] }));
    await memberInbox.waitFor((f) => f.type === "mention" && f.messageId === sent.id);
    await new Promise((r) => setTimeout(r, 300));
    await roundTrip(outsiderInbox);
    expect(outsiderInbox.frames.some((f) => f.type === "mention")).toBe(false);
    [o, memberInbox, outsiderInbox].forEach((s) => s.close());
  });
});
