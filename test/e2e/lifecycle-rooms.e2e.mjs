// The message lifecycle in rooms end to end: a real `wrangler dev`, real WebSocket clients (Node's
// built-in). Also the check that FTS5 exists in the Durable Object SQLite that `wrangler dev` runs
// (room search depends on it; test/objects/fts5.test.ts checks workerd under vitest).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { api, connect, startServer } from "./lib.mjs";

let server;
before(async () => {
  server = await startServer(8914);
});
after(async () => {
  await server?.stop();
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let n = 0;
async function req(s, frame) {
  const id = `e${++n}`;
  s.send({ ...frame, id });
  return s.waitFor((m) => (m.type === "ack" || m.type === "error") && m.id === id);
}
async function join(user, roomId, frame = {}) {
  const s = await connect(server.wsUrl, user, `/api/chat/rooms/${roomId}/ws`);
  s.send({ type: "join_room", ...frame });
  await s.waitFor((m) => m.type === "room_state");
  return s;
}
async function newRoom(name) {
  const created = await api(server.url, "alice", "/api/chat/rooms", { method: "POST", json: { name, category: "other" } });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  return created.body.id;
}

test("FTS5 under wrangler dev: room search is ranked, follows edits and never finds a deleted message", async () => {
  const room = await newRoom("E2E Search");
  const alice = await join("alice", room);
  const one = (await req(alice, { type: "send_room_message", clientMsgId: "s1", text: "a lighthouse on the coast" })).message;
  const three = (await req(alice, { type: "send_room_message", clientMsgId: "s2", text: "lighthouse lighthouse lighthouse" })).message;
  const edited = (await req(alice, { type: "send_room_message", clientMsgId: "s3", text: "first draft" })).message;
  const gone = (await req(alice, { type: "send_room_message", clientMsgId: "s4", text: "lighthouse soon gone" })).message;
  assert.equal((await req(alice, { type: "edit_message", messageId: edited.id, text: "final lighthouse text" })).type, "ack");
  assert.equal((await req(alice, { type: "delete_message", messageId: gone.id })).type, "ack");
  const found = await api(server.url, "bob", `/api/chat/rooms/${room}/search?q=lighthouse`);
  assert.equal(found.status, 200, JSON.stringify(found.body));
  assert.equal(found.body.messages[0].id, three.id);
  assert.deepEqual(found.body.messages.map((m) => m.id).sort(), [one.id, three.id, edited.id].sort());
  assert.deepEqual((await api(server.url, "bob", `/api/chat/rooms/${room}/search?q=draft`)).body.messages, []);
  const page = await api(server.url, "bob", `/api/chat/rooms/${room}/search?q=lighthouse&limit=2`);
  const rest = await api(server.url, "bob", `/api/chat/rooms/${room}/search?q=lighthouse&limit=2&cursor=${page.body.nextCursor}`);
  assert.deepEqual([...page.body.messages, ...rest.body.messages].map((m) => m.id), found.body.messages.map((m) => m.id));
  assert.equal((await api(server.url, "bob", "/api/chat/rooms/no-such-room/search?q=x")).status, 404);
  alice.close();
});

test("edit, react, thread, delete between real clients; refusals leave the socket usable", async () => {
  const room = await newRoom("E2E Lifecycle");
  const alice = await join("alice", room);
  const bob = await join("bob", room);
  const parent = (await req(alice, { type: "send_room_message", clientMsgId: "p", text: "parent" })).message;
  const edit = await req(alice, { type: "edit_message", messageId: parent.id, text: "parent (edited)" });
  assert.equal(edit.message.text, "parent (edited)");
  const updated = await bob.waitFor((m) => m.type === "message_updated");
  assert.equal(updated.message.editedAt, edit.message.editedAt);
  // Bob may not edit or delete Alice's message; his socket stays usable.
  assert.equal((await req(bob, { type: "edit_message", messageId: parent.id, text: "mine now" })).code, "forbidden");
  assert.equal((await req(bob, { type: "delete_message", messageId: parent.id })).code, "forbidden");
  const react = await req(bob, { type: "react", messageId: parent.id, emoji: "🔥", on: true });
  assert.deepEqual(react.message.reactions, { "🔥": 1 });
  assert.deepEqual(react.message.myReactions, ["🔥"]);
  const live = await alice.waitFor((m) => m.type === "reaction");
  assert.equal(live.count, 1);
  assert.equal((await req(bob, { type: "react", messageId: parent.id, emoji: "not an emoji", on: true })).code, "bad_request");
  for (let i = 1; i <= 3; i++) await req(bob, { type: "send_room_message", clientMsgId: `r${i}`, text: `reply ${i}`, replyTo: parent.id });
  const thread = await api(server.url, "carol", `/api/chat/rooms/${room}/messages/${parent.id}/replies?limit=2`);
  assert.equal(thread.status, 200, JSON.stringify(thread.body));
  assert.equal(thread.body.parent.replyCount, 3);
  assert.deepEqual(thread.body.replies.map((m) => m.text), ["reply 1", "reply 2"]);
  const more = await api(server.url, "carol", `/api/chat/rooms/${room}/messages/${parent.id}/replies?cursor=${thread.body.nextCursor}`);
  assert.deepEqual(more.body.replies.map((m) => m.text), ["reply 3"]);
  const del = await req(alice, { type: "delete_message", messageId: parent.id });
  assert.equal(del.message.deleted, true);
  const tomb = await bob.waitFor((m) => m.type === "message_deleted");
  assert.equal(tomb.seq, parent.seq);
  const hist = await api(server.url, "carol", `/api/chat/rooms/${room}/messages`);
  const t = hist.body.messages.find((m) => m.id === parent.id);
  assert.equal(t.deleted, true);
  assert.equal(t.text, undefined);
  alice.close();
  bob.close();
});

test("resume covers changes across a restart of wrangler dev; unread and mentions in the joined list; mention on the inbox", async () => {
  const room = await newRoom("E2E Resume");
  const alice = await join("alice", room);
  const bob = await join("bob", room);
  const m1 = (await req(alice, { type: "send_room_message", clientMsgId: "m1", text: "hello" })).message;
  await bob.waitFor((m) => m.type === "message" && m.message.seq === 1);
  const sinceRev = bob.frames.find((f) => f.type === "room_state").lastRev;
  bob.close();
  await req(alice, { type: "edit_message", messageId: m1.id, text: "hello again" });
  await req(alice, { type: "react", messageId: m1.id, emoji: "👋", on: true });
  await req(alice, { type: "send_room_message", clientMsgId: "m2", text: "@bob are you there", mentions: ["bob"] });
  // Bob's inbox is open while he is not in the room: he gets the mention there.
  const bobInbox = await connect(server.wsUrl, "bob", "/api/chat/ws");
  await req(alice, { type: "send_room_message", clientMsgId: "m3", text: "@bob ping", mentions: ["bob"] });
  const mention = await bobInbox.waitFor((m) => m.type === "mention");
  assert.equal(mention.roomId, room);
  assert.equal(mention.preview, "@bob ping");
  bobInbox.close();
  alice.close();
  await sleep(300);

  await server.kill();
  await server.restart();

  const list = await api(server.url, "bob", "/api/chat/rooms?joined=true");
  assert.equal(list.status, 200, JSON.stringify(list.body));
  const mine = list.body.rooms.find((r) => r.id === room);
  assert.ok(mine, JSON.stringify(list.body));
  assert.equal(mine.unread, 3);
  assert.equal(mine.mentions, 2);
  const back = await join("bob", room, { since: 1, sinceRev });
  await back.waitFor((m) => m.type === "message" && m.message.seq === 3);
  const changed = await back.waitFor((m) => m.type === "message_updated");
  assert.equal(changed.message.text, "hello again");
  assert.deepEqual(changed.message.reactions, { "👋": 1 });
  assert.equal((await req(back, { type: "mark_read", seq: 3 })).type, "ack");
  const after = (await api(server.url, "bob", "/api/chat/rooms?joined=true")).body.rooms.find((r) => r.id === room);
  assert.equal(after.unread, 0);
  assert.equal(after.mentions, 0);
  back.close();
});
