// Moderation and private rooms end to end against a real `wrangler dev`, with real WebSocket clients.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { api, connect, startServer } from "./lib.mjs";

let server;
before(async () => {
  // A deployment word list, on top of the rooms' own.
  server = await startServer(8893, { vars: { FILTER_WORDS: "crud" } });
});
after(async () => {
  await server?.stop();
});

async function join(user, roomId) {
  const s = await connect(server.wsUrl, user, `/api/chat/rooms/${roomId}/ws`);
  s.send({ type: "join_room" });
  await s.waitFor((m) => m.type === "room_state");
  return s;
}

function closedCode(ws) {
  return new Promise((resolve) => ws.addEventListener("close", (ev) => resolve(ev.code), { once: true }));
}

async function send(s, id, text = id) {
  s.send({ type: "send_room_message", id, clientMsgId: id, text });
  return s.waitFor((m) => (m.type === "ack" || m.type === "error") && m.id === id);
}

test("owner, moderator and members: ban on every tab, mute, slow mode, filter, pins, audit", async () => {
  const created = await api(server.url, "olga", "/api/chat/rooms", { method: "POST", json: { name: "Moderated e2e", category: "tech" } });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const room = created.body.id;
  assert.equal((await api(server.url, "olga", `/api/chat/rooms/${room}/moderators/mia`, { method: "PUT" })).status, 200);

  const mia = await join("mia", room);
  const tab1 = await join("sam", room);
  const tab2 = await join("sam", room);
  const state = mia.frames.find((f) => f.type === "room_state");
  assert.deepEqual(state.roles, { owner: "olga", moderators: ["mia"], you: "moderator" });

  // A member cannot moderate.
  const refused = await api(server.url, "sam", `/api/chat/rooms/${room}/bans/mia`, { method: "PUT", json: {} });
  assert.equal(refused.status, 403);
  assert.equal(refused.body.error.code, "forbidden");

  // The deployment filter (FILTER_WORDS) and the room's list both apply.
  assert.equal((await send(tab1, "f1", "C R U D")).code, "filtered");
  await api(server.url, "mia", `/api/chat/rooms/${room}/filters`, { method: "PUT", json: { words: ["zonk"] } });
  assert.equal((await send(tab1, "f2", "zönk!")).code, "filtered");
  const ok = await send(tab1, "fine", "fine words");
  assert.equal(ok.type, "ack");
  await api(server.url, "mia", `/api/chat/rooms/${room}/pins/${ok.message.id}`, { method: "PUT" });

  // Mute: refused with `until`; lifted by time.
  const muted = await api(server.url, "mia", `/api/chat/rooms/${room}/mutes/sam`, { method: "PUT", json: { durationSec: 1, reason: "calm" } });
  assert.equal(muted.status, 200);
  const m = await send(tab2, "m1");
  assert.equal(m.code, "muted");
  assert.equal(m.until, muted.body.mute.until);
  await new Promise((r) => setTimeout(r, muted.body.mute.until - Date.now() + 100));
  assert.equal((await send(tab2, "m2")).type, "ack");

  // Slow mode: a second send says when to retry; the moderator is exempt.
  await api(server.url, "mia", `/api/chat/rooms/${room}`, { method: "PATCH", json: { slowModeSec: 20 } });
  const slow = await send(tab2, "s1");
  assert.equal(slow.code, "slow_mode");
  assert.ok(slow.retryAfterMs > 15_000 && slow.retryAfterMs <= 20_000, String(slow.retryAfterMs));
  assert.equal((await send(mia, "x1")).type, "ack");
  assert.equal((await send(mia, "x2")).type, "ack");

  // Ban: both tabs get `banned` then close at once; a reconnect is refused at the upgrade.
  const closes = [closedCode(tab1.ws), closedCode(tab2.ws)];
  assert.equal((await api(server.url, "mia", `/api/chat/rooms/${room}/bans/sam`, { method: "PUT", json: { reason: "spam" } })).status, 200);
  assert.deepEqual(await Promise.all(closes), [1008, 1008]);
  assert.equal(tab1.frames.find((f) => f.type === "error" && f.code === "banned")?.until, null);
  await mia.waitFor((f) => f.type === "system" && f.event === "ban" && f.userId === "sam");
  await assert.rejects(connect(server.wsUrl, "sam", `/api/chat/rooms/${room}/ws`));

  // A late joiner sees the pin; the audit log has every action.
  const late = await join("lee", room);
  assert.deepEqual(late.frames.find((f) => f.type === "room_state").pinned.map((p) => p.text), ["fine words"]);
  const audit = await api(server.url, "olga", `/api/chat/rooms/${room}/audit`);
  assert.deepEqual(
    audit.body.entries.map((e) => `${e.actor}:${e.action}:${e.target ?? ""}`),
    ["mia:ban:sam", "mia:settings:", "mia:mute:sam", "mia:pin:sam", "mia:filter:", "olga:moderator_added:mia", "olga:create:"],
  );
  // The filtered messages were stored nowhere.
  const history = await api(server.url, "lee", `/api/chat/rooms/${room}/messages`);
  assert.deepEqual(history.body.messages.map((x) => x.text).sort(), ["fine words", "m2", "x1", "x2"]);

  // Deletion: every socket closes; the room is gone from every route.
  const gone = [closedCode(mia.ws), closedCode(late.ws)];
  assert.equal((await api(server.url, "olga", `/api/chat/rooms/${room}`, { method: "DELETE" })).status, 204);
  assert.deepEqual(await Promise.all(gone), [1001, 1001]);
  assert.equal((await api(server.url, "lee", `/api/chat/rooms/${room}`)).status, 404);
});

test("a private room: invisible to non-members, members join, removal closes their socket", async () => {
  const created = await api(server.url, "pia", "/api/chat/rooms", { method: "POST", json: { name: "Secret e2e", category: "arts", visibility: "private" } });
  assert.equal(created.status, 201);
  const room = created.body.id;
  const list = await api(server.url, "nox", "/api/chat/rooms?category=arts&limit=100");
  assert.ok(!list.body.rooms.some((r) => r.id === room));
  assert.equal((await api(server.url, "nox", `/api/chat/rooms/${room}`)).status, 404);
  assert.equal((await api(server.url, "nox", `/api/chat/rooms/${room}/messages`)).status, 404);
  await assert.rejects(connect(server.wsUrl, "nox", `/api/chat/rooms/${room}/ws`));

  assert.equal((await api(server.url, "pia", `/api/chat/rooms/${room}/members/nox`, { method: "PUT" })).status, 200);
  const seen = await api(server.url, "nox", "/api/chat/rooms?category=arts&limit=100");
  assert.ok(seen.body.rooms.some((r) => r.id === room));
  const nox = await join("nox", room);
  assert.equal((await send(nox, "hi")).type, "ack");
  const code = closedCode(nox.ws);
  assert.equal((await api(server.url, "pia", `/api/chat/rooms/${room}/members/nox`, { method: "DELETE" })).status, 200);
  assert.equal(await code, 1008);
  assert.equal((await api(server.url, "nox", `/api/chat/rooms/${room}`)).status, 404);
});
