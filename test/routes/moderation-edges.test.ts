/**
 * Edges of moderation found in review, each from the refused side: media posted in a private room is
 * as private as the room (and goes back to its uploader when the room is deleted); a banned moderator
 * cannot unban themself, nor a banned member report; a banned member of a private room reads nothing
 * of it; a deleted room leaves no trace in its joiners' lists, even when a new room takes its name.
 */
import { describe, expect, it } from "vitest";
import type { RoomMessage } from "../../src/protocol";
import { call, expectError, makeRoom, uid } from "../helpers/moderation";
import { mediaRow, uploadOk } from "../helpers/media";
import { SAMPLES } from "../helpers/media-fixtures";
import { request } from "../helpers/inbox";
import { joined, sendText } from "../helpers/rooms";

const png = SAMPLES.find((s) => s.contentType === "image/png")!;

describe("media of a private room", () => {
  it("is readable by members only, and by nobody but its uploader once the room is deleted", async () => {
    const [owner, member, outsider] = ["owner", "member", "outsider"].map(uid);
    const room = await makeRoom(owner, { visibility: "private" });
    expect((await call(owner, `/api/chat/rooms/${room}/members/${member}`, { method: "PUT" })).status).toBe(200);
    const up = await uploadOk(owner, png.bytes, png.contentType);
    const o = await joined(owner, room);
    const ack = await request(o, { type: "send_room_message", id: "m", clientMsgId: "m", mediaIds: [up.id] });
    expect(ack.type, JSON.stringify(ack)).toBe("ack");
    expect((await call(member, `/api/chat/media/${up.id}`)).status).toBe(200);
    await expectError(await call(outsider, `/api/chat/media/${up.id}`), 404, "not_found");
    // A public room's media stays readable by anyone signed in.
    const pub = await makeRoom(owner);
    const up2 = await uploadOk(owner, png.bytes, png.contentType);
    const p = await joined(owner, pub);
    expect((await request(p, { type: "send_room_message", id: "p", clientMsgId: "p", mediaIds: [up2.id] })).type).toBe("ack");
    expect((await call(outsider, `/api/chat/media/${up2.id}`)).status).toBe(200);
    // Deleting the room hands the media back to its uploader (unbound: the sweep's to remove).
    expect((await call(owner, `/api/chat/rooms/${room}`, { method: "DELETE" })).status).toBe(204);
    await expectError(await call(member, `/api/chat/media/${up.id}`), 404, "not_found");
    expect((await call(owner, `/api/chat/media/${up.id}`)).status).toBe(200);
    expect(await mediaRow(up.id)).toMatchObject({ bound_kind: null });
    [o, p].forEach((s) => s.close());
  });
});

describe("a banned user acts on nothing", () => {
  it("a banned moderator cannot unban themself or ban others; a banned member cannot report", async () => {
    const [owner, mod, bob, carol] = ["owner", "mod", "bob", "carol"].map(uid);
    const room = await makeRoom(owner);
    expect((await call(owner, `/api/chat/rooms/${room}/moderators/${mod}`, { method: "PUT" })).status).toBe(200);
    const c = await joined(carol, room);
    const { message } = (await sendText(c, "hello")) as { message: RoomMessage };
    expect((await call(owner, `/api/chat/rooms/${room}/bans/${mod}`, { method: "PUT", json: { reason: "abuse" } })).status).toBe(200);
    expect((await call(owner, `/api/chat/rooms/${room}/bans/${bob}`, { method: "PUT", json: {} })).status).toBe(200);
    await expectError(await call(mod, `/api/chat/rooms/${room}/bans/${mod}`, { method: "DELETE" }), 403, "banned");
    await expectError(await call(mod, `/api/chat/rooms/${room}/bans/${carol}`, { method: "PUT", json: {} }), 403, "banned");
    await expectError(await call(bob, `/api/chat/rooms/${room}/messages/${message.id}/reports`, { method: "POST", json: { reason: "x" } }), 403, "banned");
    const bans = (await (await call(owner, `/api/chat/rooms/${room}/bans`)).json()) as { bans: { userId: string }[] };
    expect(bans.bans.map((b) => b.userId).sort()).toEqual([bob, mod].sort());
    c.close();
  });

  it("a banned member of a private room reads nothing of it until unbanned", async () => {
    const [owner, member] = ["owner", "member"].map(uid);
    const room = await makeRoom(owner, { visibility: "private" });
    expect((await call(owner, `/api/chat/rooms/${room}/members/${member}`, { method: "PUT" })).status).toBe(200);
    expect((await call(member, `/api/chat/rooms/${room}/messages`)).status).toBe(200);
    expect((await call(owner, `/api/chat/rooms/${room}/bans/${member}`, { method: "PUT", json: {} })).status).toBe(200);
    for (const path of ["", "/messages", "/search?q=x"]) await expectError(await call(member, `/api/chat/rooms/${room}${path}`), 404, "not_found");
    expect((await call(owner, `/api/chat/rooms/${room}/bans/${member}`, { method: "DELETE" })).status).toBe(200);
    expect((await call(member, `/api/chat/rooms/${room}/messages`)).status).toBe(200);
  });
});

describe("room deletion and joined lists", () => {
  it("a new room that takes a deleted room's name is not in the old room's joiners' lists", async () => {
    const [owner, alice, other] = ["owner", "alice", "other"].map(uid);
    const name = uid("Reused");
    const first = await call(owner, "/api/chat/rooms", { method: "POST", json: { name, category: "tech" } });
    const roomId = ((await first.json()) as { id: string }).id;
    const a = await joined(alice, roomId);
    const listed = async () => ((await (await call(alice, "/api/chat/rooms?joined=true")).json()) as { rooms: { id: string }[] }).rooms.map((r) => r.id);
    await expect.poll(listed, { timeout: 5000 }).toContain(roomId);
    a.close();
    expect((await call(owner, `/api/chat/rooms/${roomId}`, { method: "DELETE" })).status).toBe(204);
    const again = await call(other, "/api/chat/rooms", { method: "POST", json: { name, category: "tech" } });
    expect(again.status).toBe(201);
    expect(((await again.json()) as { id: string }).id).toBe(roomId);
    expect(await listed()).not.toContain(roomId);
  });
});
