/**
 * Moderation and private rooms (issue 15), in workerd with real D1 and Durable Objects, each rule
 * seen from the side of the one refused: a member cannot moderate, a moderator cannot touch the
 * owner's or another moderator's rights, bans hold across tabs, reconnects and eviction, a mute
 * ends by itself, slow mode says when to retry, a filtered message is stored nowhere, and a private
 * room cannot be discovered by a non-member through any route.
 */
import { env, evictDurableObject, runInDurableObject, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { ChatRoom } from "../../src/objects/chat-room";
import type { ServerMessage } from "../../src/protocol";
import { nearbyRooms } from "../../src/suggestions/location";
import { BASE, connectWs, tokenFor, type TestSocket } from "../helpers";
import { closed, joined, sendText, stubOf } from "../helpers/rooms";
import { asAdmin, auditOf, call, expectError, makeRoom, uid } from "../helpers/moderation";

type ErrorFrame = Extract<ServerMessage, { type: "error" }>;
type RoomState = Extract<ServerMessage, { type: "room_state" }>;

function send(s: TestSocket, id: string, text = id): Promise<ServerMessage> {
  s.send({ type: "send_room_message", id, clientMsgId: id, text });
  return s.waitFor((m) => (m.type === "ack" || m.type === "error") && m.id === id);
}

async function upgrade(user: string, room: string, opts: { upgrade?: boolean } = {}): Promise<Response> {
  return call(user, `/api/chat/rooms/${room}/ws`, { headers: opts.upgrade === false ? {} : { Upgrade: "websocket" } });
}

describe("a member cannot moderate", () => {
  it("every moderation write and read is refused 403, and nothing changes", async () => {
    const owner = uid("owner");
    const bob = uid("bob");
    const carol = uid("carol");
    const room = await makeRoom(owner);
    const c = await joined(carol, room);
    const { message } = (await sendText(c, "m1")) as { message: { id: string } };
    const refused: [string, string, unknown?][] = [
      ["PUT", `bans/${carol}`, {}],
      ["DELETE", `bans/${carol}`],
      ["GET", "bans"],
      ["PUT", `mutes/${carol}`, { durationSec: 60 }],
      ["POST", "kicks", { userId: carol }],
      ["PUT", `pins/${message.id}`],
      ["PUT", "filters", { words: ["hello"] }],
      ["PATCH", "", { slowModeSec: 10 }],
      ["PATCH", "", { frozen: true }],
      ["PATCH", "", { name: "mine now" }],
      ["DELETE", ""],
      ["PUT", `moderators/${bob}`],
      ["GET", "audit"],
      ["GET", "reports"],
    ];
    for (const [method, path, json] of refused) {
      const res = await call(bob, `/api/chat/rooms/${room}${path ? `/${path}` : ""}`, { method, json });
      await expectError(res, 403, "forbidden");
    }
    // Nothing happened: carol still sends, the room has no moderator, no settings changed, and the audit log has only the creation.
    expect(await send(c, "m2")).toMatchObject({ type: "ack" });
    const info = (await (await call(bob, `/api/chat/rooms/${room}`)).json()) as { name: string; roles: unknown; settings: unknown };
    expect(info.roles).toEqual({ owner, moderators: [], you: "member" });
    expect(info.settings).toEqual({ visibility: "public", slowModeSec: 0, frozen: false });
    expect(info.name).not.toBe("mine now");
    expect((await auditOf(room, owner)).map((e) => e.action)).toEqual(["create"]);
    c.close();
  });
});

describe("roles", () => {
  it("a moderator cannot name or remove moderators, nor act on the owner or another moderator; the owner and an admin can", async () => {
    const owner = uid("owner");
    const m1 = uid("mod1");
    const m2 = uid("mod2");
    const x = uid("x");
    const room = await makeRoom(owner);
    expect((await call(owner, `/api/chat/rooms/${room}/moderators/${m1}`, { method: "PUT" })).status).toBe(200);
    expect((await call(owner, `/api/chat/rooms/${room}/moderators/${m2}`, { method: "PUT" })).status).toBe(200);
    await expectError(await call(m1, `/api/chat/rooms/${room}/moderators/${m2}`, { method: "DELETE" }), 403, "forbidden");
    await expectError(await call(m1, `/api/chat/rooms/${room}/moderators/${x}`, { method: "PUT" }), 403, "forbidden");
    await expectError(await call(m1, `/api/chat/rooms/${room}/moderators/${owner}`, { method: "DELETE" }), 403, "forbidden");
    await expectError(await call(m1, `/api/chat/rooms/${room}/bans/${m2}`, { method: "PUT", json: {} }), 403, "forbidden");
    await expectError(await call(m1, `/api/chat/rooms/${room}/bans/${owner}`, { method: "PUT", json: {} }), 403, "forbidden");
    await expectError(await call(m1, `/api/chat/rooms/${room}/mutes/${m2}`, { method: "PUT", json: { durationSec: 60 } }), 403, "forbidden");
    await expectError(await call(m1, `/api/chat/rooms/${room}/kicks`, { method: "POST", json: { userId: owner } }), 403, "forbidden");
    await expectError(await call(m1, `/api/chat/rooms/${room}`, { method: "PATCH", json: { name: "renamed" } }), 403, "forbidden");
    await expectError(await call(m1, `/api/chat/rooms/${room}`, { method: "DELETE" }), 403, "forbidden");
    // Nobody can take the owner's role, not even an admin.
    await expectError(await call(x, `/api/chat/rooms/${room}/moderators/${owner}`, { method: "DELETE", ...asAdmin }), 403, "forbidden");
    let info = (await (await call(x, `/api/chat/rooms/${room}`)).json()) as { roles: { moderators: string[] } };
    expect(info.roles.moderators).toEqual([m1, m2].sort());
    // The owner removes a moderator; an admin (token claim) removes the other.
    expect((await call(owner, `/api/chat/rooms/${room}/moderators/${m2}`, { method: "DELETE" })).status).toBe(200);
    expect((await call(x, `/api/chat/rooms/${room}/moderators/${m1}`, { method: "DELETE", ...asAdmin })).status).toBe(200);
    info = (await (await call(x, `/api/chat/rooms/${room}`, asAdmin)).json()) as { roles: { moderators: string[]; you: string } };
    expect(info.roles).toMatchObject({ moderators: [], you: "admin" });
    // A moderator's own slow-mode and freeze settings go through.
    expect((await call(owner, `/api/chat/rooms/${room}/moderators/${m1}`, { method: "PUT" })).status).toBe(200);
    expect((await call(m1, `/api/chat/rooms/${room}`, { method: "PATCH", json: { slowModeSec: 5 } })).status).toBe(200);
    const audit = await auditOf(room, owner);
    expect(audit[0]).toMatchObject({ actor: m1, action: "settings" });
    expect(audit.map((e) => `${e.action}:${e.target}`)).toContain(`moderator_removed:${m1}`);
  });

  it("roles and settings reach room_state", async () => {
    const owner = uid("owner");
    const room = await makeRoom(owner);
    const o = await joined(owner, room);
    const state = o.frames.find((f) => f.type === "room_state") as RoomState;
    expect(state.roles).toEqual({ owner, moderators: [], you: "owner" });
    expect(state.settings).toEqual({ visibility: "public", slowModeSec: 0, frozen: false });
    expect(state.pinned).toEqual([]);
    o.close();
  });
});

describe("bans", () => {
  it("close every tab at once, and hold across reconnects and eviction; unban lets the user back", async () => {
    const owner = uid("owner");
    const carol = uid("carol");
    const room = await makeRoom(owner);
    const o = await joined(owner, room);
    const tab1 = await joined(carol, room);
    const tab2 = await joined(carol, room);
    const closes = [closed(tab1.ws), closed(tab2.ws)];
    const res = await call(owner, `/api/chat/rooms/${room}/bans/${carol}`, { method: "PUT", json: { reason: "spam" } });
    expect(res.status).toBe(200);
    for (const t of [tab1, tab2]) expect(await t.waitFor<ErrorFrame>((m) => m.type === "error")).toMatchObject({ code: "banned", until: null });
    expect(await Promise.all(closes)).toEqual([1008, 1008]);
    expect(await o.waitFor((m) => m.type === "system" && m.event === "ban")).toMatchObject({ userId: carol, by: owner, reason: "spam", until: null });
    // A reconnect is refused at the upgrade.
    expect(await expectError(await upgrade(carol, room), 403, "banned")).toMatchObject({ until: null });
    // So after an eviction (the ban is in the room's SQLite, not only in memory).
    await evictDurableObject(stubOf(room));
    await expectError(await upgrade(carol, room), 403, "banned");
    // The audit log says who, what, whom and why.
    expect((await auditOf(room, owner))[0]).toMatchObject({ actor: owner, action: "ban", target: carol, reason: "spam" });
    expect((await call(owner, `/api/chat/rooms/${room}/bans/${carol}`, { method: "DELETE" })).status).toBe(200);
    const back = await joined(carol, room);
    expect(await send(back, "hi")).toMatchObject({ type: "ack" });
    o.close();
    back.close();
  });

  it("a timed ban closes a socket that has not joined yet, and join_room and sends re-check it on every frame", async () => {
    const owner = uid("owner");
    const dave = uid("dave");
    const room = await makeRoom(owner);
    const s = await connectWs(dave, `/api/chat/rooms/${room}/ws`);
    const before = Date.now();
    await call(owner, `/api/chat/rooms/${room}/bans/${dave}`, { method: "PUT", json: { durationSec: 600 } });
    const err = await s.waitFor<ErrorFrame>((m) => m.type === "error");
    expect(err.code).toBe("banned");
    expect(err.until).toBeGreaterThanOrEqual(before + 600_000);
    // A socket that got past the upgrade before a ban reached the object (written here straight
    // into the room's storage, as if by a concurrent request) is refused at join_room and at send.
    const fred = uid("fred");
    const open = await connectWs(fred, `/api/chat/rooms/${room}/ws`);
    const live = await joined(fred, room);
    await runInDurableObject(stubOf(room), (inst: ChatRoom, state) => {
      state.storage.sql.exec("INSERT INTO mod_bans (user_id, until, reason, by, at) VALUES (?, NULL, 'race', ?, ?)", fred, owner, Date.now());
      (inst as unknown as { mod: { load(): void } }).mod.load();
    });
    open.send({ type: "join_room", id: "j" });
    expect(await open.waitFor<ErrorFrame>((m) => m.type === "error" && m.id === "j")).toMatchObject({ code: "banned", until: null });
    expect(((await send(live, "after-ban")) as ErrorFrame).code).toBe("banned");
    expect(await stubOf(room).history(null, 10)).toMatchObject({ messages: [] });
    open.close();
    live.close();
  });
});

describe("mutes, slow mode, freeze", () => {
  it("a mute refuses sends with `muted` and its end, and ends by itself at that time", async () => {
    const owner = uid("owner");
    const eve = uid("eve");
    const room = await makeRoom(owner);
    const e = await joined(eve, room);
    const res = await call(owner, `/api/chat/rooms/${room}/mutes/${eve}`, { method: "PUT", json: { durationSec: 1 } });
    const { mute } = (await res.json()) as { mute: { until: number } };
    const err = (await send(e, "while-muted")) as ErrorFrame;
    expect(err).toMatchObject({ type: "error", code: "muted", until: mute.until });
    await new Promise((r) => setTimeout(r, Math.max(0, mute.until - Date.now()) + 50));
    expect(await send(e, "after")).toMatchObject({ type: "ack", message: { text: "after" } });
    const history = (await (await call(eve, `/api/chat/rooms/${room}/messages`)).json()) as { messages: { text: string }[] };
    expect(history.messages.map((m) => m.text)).toEqual(["after"]);
    e.close();
  });

  it("slow mode refuses a second send with `slow_mode` and when to retry; moderators are exempt", async () => {
    const owner = uid("owner");
    const eve = uid("eve");
    const room = await makeRoom(owner);
    expect((await call(owner, `/api/chat/rooms/${room}`, { method: "PATCH", json: { slowModeSec: 30 } })).status).toBe(200);
    const e = await joined(eve, room);
    const o = await joined(owner, room);
    expect(await send(e, "one")).toMatchObject({ type: "ack" });
    const err = (await send(e, "two")) as ErrorFrame;
    expect(err.code).toBe("slow_mode");
    expect(err.retryAfterMs).toBeGreaterThan(28_000);
    expect(err.retryAfterMs).toBeLessThanOrEqual(30_000);
    // The cooldown survives an eviction (read back from the log).
    await evictDurableObject(stubOf(room));
    expect(((await send(e, "three")) as ErrorFrame).code).toBe("slow_mode");
    expect(await send(o, "o1")).toMatchObject({ type: "ack" });
    expect(await send(o, "o2")).toMatchObject({ type: "ack" });
    e.close();
    o.close();
  });

  it("a frozen room refuses members' sends with `frozen`; moderators still post", async () => {
    const owner = uid("owner");
    const eve = uid("eve");
    const room = await makeRoom(owner);
    const e = await joined(eve, room);
    await call(owner, `/api/chat/rooms/${room}`, { method: "PATCH", json: { frozen: true } });
    await e.waitFor((m) => m.type === "system" && m.event === "settings");
    expect(((await send(e, "x")) as ErrorFrame).code).toBe("frozen");
    const o = await joined(owner, room);
    expect(await send(o, "announcement")).toMatchObject({ type: "ack" });
    await call(owner, `/api/chat/rooms/${room}`, { method: "PATCH", json: { frozen: false } });
    expect(await send(e, "y")).toMatchObject({ type: "ack" });
    e.close();
    o.close();
  });
});

describe("word filter", () => {
  it("a match is refused `filtered` and stored nowhere; tricks of case, accents, spacing and leetspeak fail", async () => {
    const owner = uid("owner");
    const eve = uid("eve");
    const room = await makeRoom(owner);
    const res = await call(owner, `/api/chat/rooms/${room}/filters`, { method: "PUT", json: { words: ["Badword"] } });
    expect(await res.json()).toEqual({ words: ["badword"] });
    const e = await joined(eve, room);
    const o = await joined(owner, room);
    for (const [i, text] of ["badword", "BADWORD!", "bädwörd", "b a d w o r d", "b.a.d.w.o.r.d", "b4dw0rd", "so badwooord", "ｂａｄｗｏｒｄ"].entries()) {
      expect(((await send(e, `f${i}`, text)) as ErrorFrame).code, text).toBe("filtered");
    }
    // Owners are not exempt from the filter.
    expect(((await send(o, "of", "badword")) as ErrorFrame).code).toBe("filtered");
    expect(await send(e, "ok", "a good word")).toMatchObject({ type: "ack" });
    const rows = await runInDurableObject(stubOf(room), (_i: ChatRoom, state) => state.storage.sql.exec<{ text: string }>("SELECT text FROM messages").toArray());
    expect(rows.map((r) => r.text)).toEqual(["a good word"]);
    // Nobody else received any of it.
    expect(o.frames.filter((f) => f.type === "message").map((f) => (f as { message: { text: string } }).message.text)).toEqual(["a good word"]);
    e.close();
    o.close();
  });
});

describe("kick, pins, reports, deletion", () => {
  it("kick: error frame, then close; the user may come back", async () => {
    const owner = uid("owner");
    const eve = uid("eve");
    const room = await makeRoom(owner);
    const o = await joined(owner, room);
    const e = await joined(eve, room);
    const done = closed(e.ws);
    const res = await call(owner, `/api/chat/rooms/${room}/kicks`, { method: "POST", json: { userId: eve, reason: "cool off" } });
    expect(await res.json()).toEqual({ closed: 1 });
    expect(await e.waitFor<ErrorFrame>((m) => m.type === "error")).toMatchObject({ code: "forbidden" });
    expect(await done).toBe(1008);
    expect(await o.waitFor((m) => m.type === "system" && m.event === "kick")).toMatchObject({ userId: eve, reason: "cool off" });
    const back = await joined(eve, room);
    back.close();
    o.close();
  });

  it("pins appear in room_state; reports are once per message per user; moderators list and resolve them", async () => {
    const owner = uid("owner");
    const eve = uid("eve");
    const bob = uid("bob");
    const room = await makeRoom(owner);
    const e = await joined(eve, room);
    const ack = (await sendText(e, "pin me")) as { message: { id: string } };
    const id = ack.message.id;
    expect((await call(owner, `/api/chat/rooms/${room}/pins/${id}`, { method: "PUT" })).status).toBe(200);
    await expectError(await call(owner, `/api/chat/rooms/${room}/pins/nope`, { method: "PUT" }), 404, "not_found");
    const b = await joined(bob, room);
    expect((b.frames.find((f) => f.type === "room_state") as RoomState).pinned?.map((m) => m.id)).toEqual([id]);
    expect((await call(bob, `/api/chat/rooms/${room}/messages/${id}/reports`, { method: "POST", json: { reason: "rude" } })).status).toBe(201);
    await expectError(await call(bob, `/api/chat/rooms/${room}/messages/${id}/reports`, { method: "POST", json: { reason: "again" } }), 409, "conflict");
    const queue = (await (await call(owner, `/api/chat/rooms/${room}/reports`)).json()) as { reports: { id: number; reporter: string; reason: string; message: { text: string } }[] };
    expect(queue.reports).toHaveLength(1);
    expect(queue.reports[0]).toMatchObject({ reporter: bob, reason: "rude", message: { text: "pin me" } });
    await expectError(await call(bob, `/api/chat/rooms/${room}/reports/${queue.reports[0].id}/resolve`, { method: "POST", json: { resolution: "mine" } }), 403, "forbidden");
    expect((await call(owner, `/api/chat/rooms/${room}/reports/${queue.reports[0].id}/resolve`, { method: "POST", json: { resolution: "warned" } })).status).toBe(200);
    const open = (await (await call(owner, `/api/chat/rooms/${room}/reports`)).json()) as { reports: unknown[] };
    expect(open.reports).toEqual([]);
    e.close();
    b.close();
  });

  it("deleting a room closes every socket, and the log and the directory row are gone; only the owner may", async () => {
    const owner = uid("owner");
    const eve = uid("eve");
    const room = await makeRoom(owner);
    const e = await joined(eve, room);
    await sendText(e, "soon gone");
    const done = closed(e.ws);
    await expectError(await call(eve, `/api/chat/rooms/${room}`, { method: "DELETE" }), 403, "forbidden");
    expect((await call(owner, `/api/chat/rooms/${room}`, { method: "DELETE" })).status).toBe(204);
    expect(await e.waitFor((m) => m.type === "system" && m.event === "room_deleted")).toMatchObject({ by: owner });
    expect(await done).toBe(1001);
    await expectError(await call(eve, `/api/chat/rooms/${room}`), 404, "not_found");
    await expectError(await call(eve, `/api/chat/rooms/${room}/messages`), 404, "not_found");
    const tables = await runInDurableObject(stubOf(room), (_i: ChatRoom, state) =>
      state.storage.sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '_cf_%'").toArray(),
    );
    expect(tables).toEqual([]);
  });
});

describe("private rooms", () => {
  it("a non-member cannot learn that a private room exists by any route", async () => {
    const owner = uid("owner");
    const eve = uid("eve");
    const category = "science";
    const before = (await (await call(eve, "/api/chat/rooms/categories")).json()) as { categories: { category: string; count: number }[] };
    const room = await makeRoom(owner, { visibility: "private", category });
    const ghost = `${room}-ghost`;
    // List and categories.
    const list = (await (await call(eve, `/api/chat/rooms?category=${category}&limit=100`)).json()) as { rooms: { id: string }[] };
    expect(list.rooms.map((r) => r.id)).not.toContain(room);
    const after = (await (await call(eve, "/api/chat/rooms/categories")).json()) as { categories: { category: string; count: number }[] };
    const count = (c: typeof after) => c.categories.find((x) => x.category === category)?.count;
    // (Other test files may add public rooms in parallel in other isolates, but D1 is per file.)
    expect(count(after)).toBe(count(before));
    const mine = (await (await call(owner, "/api/chat/rooms/categories")).json()) as typeof after;
    expect(count(mine)).toBe((count(before) ?? 0) + 1);
    // Every room route answers exactly as for a room that does not exist.
    const paths: [string, string, unknown?][] = [
      ["GET", ""],
      ["GET", "/messages"],
      ["GET", "/members"],
      ["GET", "/bans"],
      ["GET", "/audit"],
      ["PUT", `/members/${eve}`],
      ["DELETE", `/members/${eve}`],
      ["POST", "/messages/x/reports", { reason: "r" }],
      ["PATCH", "", { frozen: true }],
      ["DELETE", ""],
    ];
    for (const [method, path, json] of paths) {
      const a = await expectError(await call(eve, `/api/chat/rooms/${room}${path}`, { method, json }), 404, "not_found");
      const b = await expectError(await call(eve, `/api/chat/rooms/${ghost}${path}`, { method, json }), 404, "not_found");
      expect(a.message.replace(room, "R"), `${method} ${path}`).toBe(b.message.replace(ghost, "R"));
    }
    // The socket: with and without an upgrade, the same 404 as a room that does not exist.
    for (const opts of [{}, { upgrade: false }]) {
      const a = await expectError(await upgrade(eve, room, opts), 404, "not_found");
      const b = await expectError(await upgrade(eve, ghost, opts), 404, "not_found");
      expect(a.message.replace(room, "R")).toBe(b.message.replace(ghost, "R"));
    }
    // An admin sees it.
    expect((await call(eve, `/api/chat/rooms/${room}`, asAdmin)).status).toBe(200);
  });

  it("nor through room ids or suggestions: a public room of the same name gets the plain slug; located private rooms are never suggested", async () => {
    const owner = uid("owner");
    const name = uid("Hidden Place");
    const lat = 48.8566;
    const lon = 2.3522;
    const res = await call(owner, "/api/chat/rooms", { method: "POST", json: { name, category: "local", visibility: "private", lat, lon } });
    const secret = ((await res.json()) as { id: string }).id;
    const pub = await call(uid("eve"), "/api/chat/rooms", { method: "POST", json: { name, category: "local", lat, lon } });
    const publicId = ((await pub.json()) as { id: string }).id;
    expect(publicId).toBe(name.toLowerCase().replace(/[^a-z0-9]+/g, "-"));
    expect(secret).not.toBe(publicId);
    const near = (await nearbyRooms(env, { lat, lon })).map((r) => r.id);
    expect(near).toContain(publicId);
    expect(near).not.toContain(secret);
  });

  it("members see, read and join it; removal closes their sockets; a member may leave; a member cannot add others", async () => {
    const owner = uid("owner");
    const eve = uid("eve");
    const zed = uid("zed");
    const room = await makeRoom(owner, { visibility: "private" });
    expect((await call(owner, `/api/chat/rooms/${room}/members/${eve}`, { method: "PUT" })).status).toBe(200);
    const list = (await (await call(eve, "/api/chat/rooms?limit=100&category=tech")).json()) as { rooms: { id: string; visibility: string }[] };
    expect(list.rooms.find((r) => r.id === room)).toMatchObject({ visibility: "private" });
    // A member cannot add someone else.
    await expectError(await call(eve, `/api/chat/rooms/${room}/members/${zed}`, { method: "PUT" }), 403, "forbidden");
    await expectError(await call(zed, `/api/chat/rooms/${room}`), 404, "not_found");
    const e = await joined(eve, room);
    expect(await send(e, "hello")).toMatchObject({ type: "ack" });
    const done = closed(e.ws);
    expect((await call(owner, `/api/chat/rooms/${room}/members/${eve}`, { method: "DELETE" })).status).toBe(200);
    expect(await done).toBe(1008);
    await expectError(await call(eve, `/api/chat/rooms/${room}/messages`), 404, "not_found");
    await expectError(await upgrade(eve, room), 404, "not_found");
    const gone = (await (await call(eve, "/api/chat/rooms?limit=100&category=tech")).json()) as { rooms: { id: string }[] };
    expect(gone.rooms.map((r) => r.id)).not.toContain(room);
    // Leaving: a member removes themself; the owner cannot leave.
    await call(owner, `/api/chat/rooms/${room}/members/${zed}`, { method: "PUT" });
    expect((await call(zed, `/api/chat/rooms/${room}/members/${zed}`, { method: "DELETE" })).status).toBe(200);
    await expectError(await call(zed, `/api/chat/rooms/${room}`), 404, "not_found");
    await expectError(await call(owner, `/api/chat/rooms/${room}/members/${owner}`, { method: "DELETE" }), 403, "forbidden");
    // Membership survives an eviction (the object's SQLite is authoritative).
    await evictDurableObject(stubOf(room));
    await expectError(await upgrade(eve, room), 404, "not_found");
    const o = await joined(owner, room);
    o.close();
  });
});

describe("validation and rate limit", () => {
  it("bad input is a 400 naming the field and changes nothing", async () => {
    const owner = uid("owner");
    const room = await makeRoom(owner);
    await expectError(await call(owner, `/api/chat/rooms/${room}/mutes/${uid("x")}`, { method: "PUT", json: {} }), 400, "bad_request");
    await expectError(await call(owner, `/api/chat/rooms/${room}`, { method: "PATCH", json: { slowModeSec: -1 } }), 400, "bad_request");
    await expectError(await call(owner, `/api/chat/rooms/${room}`, { method: "PATCH", json: {} }), 400, "bad_request");
    await expectError(await call(owner, `/api/chat/rooms/${room}/bans/${owner}`, { method: "PUT", json: {} }), 400, "bad_request");
    expect((await auditOf(room, owner)).map((e) => e.action)).toEqual(["create"]);
  });

  it("moderation writes are limited per user by RL_MODERATION", async () => {
    const owner = uid("owner");
    const room = await makeRoom(owner);
    const target = uid("t");
    let refused: Response | null = null;
    for (let i = 0; i < 121 && !refused; i++) {
      const res = await call(owner, `/api/chat/rooms/${room}/mutes/${target}`, { method: "PUT", json: { durationSec: 60 } });
      if (res.status === 429) refused = res;
      else expect(res.status).toBe(200);
    }
    expect(refused).not.toBeNull();
    expect(refused?.headers.get("Retry-After")).toBe("60");
    // Another user is unaffected.
    const other = uid("other");
    expect((await call(other, `/api/chat/rooms/${room}/messages/x/reports`, { method: "POST", json: { reason: "r" } })).status).toBe(404);
  });
});
