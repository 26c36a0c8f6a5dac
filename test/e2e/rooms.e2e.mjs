// Rooms end to end against a real `wrangler dev`, with real WebSocket clients (Node's built-in).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { api, connect, startServer } from "./lib.mjs";

let server;
before(async () => {
  server = await startServer(8821);
});
after(async () => {
  await server?.stop();
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const messages = (s) => s.frames.filter((f) => f.type === "message").map((f) => f.message);
// What a socket was delivered, in order: others' messages as `message`, its own as the `ack` in their place.
const delivered = (s) =>
  s.frames.flatMap((f) => (f.type === "message" ? [f.message] : f.type === "ack" && f.message && !f.duplicate ? [f.message] : []));
const delivers = (seq) => (m) => (m.type === "message" || (m.type === "ack" && !m.duplicate)) && m.message?.seq === seq;

async function join(user, roomId, { since, name } = {}) {
  const s = await connect(server.wsUrl, user, `/api/chat/rooms/${roomId}/ws`, { name });
  s.send({ type: "join_room", since });
  await s.waitFor((m) => m.type === "room_state");
  return s;
}

function closedCode(ws) {
  return new Promise((resolve) => ws.addEventListener("close", (ev) => resolve(ev.code), { once: true }));
}

test("the seeded rooms are listed by category, with categories counted", async () => {
  const { status, body } = await api(server.url, "alice", "/api/chat/rooms?category=tech");
  assert.equal(status, 200, JSON.stringify(body));
  assert.deepEqual(
    body.rooms.map((r) => r.id),
    ["durable-objects", "typescript"],
  );
  const cats = await api(server.url, "alice", "/api/chat/rooms/categories");
  assert.equal(cats.status, 200);
  assert.equal(cats.body.categories.find((c) => c.category === "general").count, 2);
});

test("clients in a room chat in seq order, with presence, resume and history", async () => {
  const created = await api(server.url, "alice", "/api/chat/rooms", { method: "POST", json: { name: "E2E Lounge", category: "other" } });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const room = created.body.id;

  const alice = await join("alice", room, { name: "Alice" });
  const bob = await join("bob", room, { name: "Bob" });
  await alice.waitFor((m) => m.type === "system" && m.event === "join" && m.userId === "bob");
  const bobState = bob.frames.find((f) => f.type === "room_state");
  assert.deepEqual(bobState.present.map((p) => p.userId).sort(), ["alice", "bob"]);

  // The exact ping frame is answered by the runtime.
  alice.send('{"type":"ping"}');
  await alice.waitFor((m) => m.type === "pong");

  for (let i = 1; i <= 6; i++) {
    const from = i % 2 ? alice : bob;
    from.send({ type: "send_room_message", id: `r${i}`, clientMsgId: `c${i}`, text: `hello ${i}` });
  }
  for (const s of [alice, bob]) await s.waitFor(delivers(6));
  assert.deepEqual(delivered(alice).map((m) => m.seq), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(delivered(bob).map((m) => m.text), delivered(alice).map((m) => m.text));
  // The sender's own copy is the ack alone. Two sockets' sends race to the room, so which seqs each
  // user's messages got depends on arrival; what is fixed is who sent what.
  const sentBy = (user) => delivered(alice).filter((m) => m.userId === user).map((m) => m.seq);
  assert.equal(sentBy("alice").length, 3);
  assert.deepEqual(messages(alice).map((m) => m.seq), sentBy("bob"));
  assert.deepEqual(messages(bob).map((m) => m.seq), sentBy("alice"));

  // Resend: the first ack, nothing new.
  alice.send({ type: "send_room_message", id: "again", clientMsgId: "c1", text: "hello 1" });
  const dup = await alice.waitFor((m) => m.type === "ack" && m.id === "again");
  assert.equal(dup.duplicate, true);
  assert.equal(dup.message.seq, 1);

  // Bob drops and comes back with `since`: only what he missed, then live.
  const last = delivered(bob).at(-1).seq;
  bob.close();
  await alice.waitFor((m) => m.type === "system" && m.event === "leave" && m.userId === "bob");
  alice.send({ type: "send_room_message", id: "r7", clientMsgId: "c7", text: "while you were away" });
  await alice.waitFor((m) => m.type === "ack" && m.id === "r7");
  const bob2 = await join("bob", room, { since: last, name: "Bob" });
  alice.send({ type: "send_room_message", id: "r8", clientMsgId: "c8", text: "welcome back" });
  await bob2.waitFor((m) => m.type === "message" && m.message.seq === 8);
  assert.deepEqual(messages(bob2).map((m) => m.seq), [7, 8]);

  // A bad frame gets a specific error and the socket keeps working.
  bob2.send("{oops");
  const err = await bob2.waitFor((m) => m.type === "error");
  assert.equal(err.code, "bad_request");
  bob2.send({ type: "send_room_message", id: "r9", clientMsgId: "b9", text: "still here" });
  await bob2.waitFor((m) => m.type === "ack" && m.id === "r9");

  const hist = await api(server.url, "carol", `/api/chat/rooms/${room}/messages?limit=5`);
  assert.equal(hist.status, 200);
  assert.deepEqual(hist.body.messages.map((m) => m.seq), [9, 8, 7, 6, 5]);
  const older = await api(server.url, "carol", `/api/chat/rooms/${room}/messages?limit=5&before=${hist.body.nextBefore}`);
  assert.deepEqual(older.body.messages.map((m) => m.seq), [4, 3, 2, 1]);
  assert.equal(older.body.nextBefore, null);

  // The online count reaches the room list a few seconds later (debounced in the room's alarm).
  let listed;
  for (let i = 0; i < 50; i++) {
    listed = (await api(server.url, "carol", `/api/chat/rooms?q=${encodeURIComponent("E2E Lounge")}`)).body.rooms[0];
    if (listed.onlineCount === 2 && listed.messageCount === 9) break;
    await sleep(200);
  }
  assert.equal(listed.onlineCount, 2);
  assert.equal(listed.messageCount, 9);

  alice.close();
  bob2.close();
});

test("a flooding client is refused with retryAfterMs and then closed with 1008", { timeout: 30_000 }, async () => {
  const s = await join("flood", "random");
  const code = closedCode(s.ws);
  // 50 refusals in a row close the socket; a stall long enough to refill a token resets the count,
  // so keep flooding until the server closes, within a deadline.
  const deadline = Date.now() + 15_000;
  let sent = 0;
  while (s.ws.readyState === WebSocket.OPEN) {
    assert.ok(Date.now() < deadline, `still open after flooding ${sent} frames for 15 s`);
    for (let k = 0; k < 100; k++) s.send({ type: "typing", id: sent++, on: true });
    await sleep(20);
  }
  const limited = await s.waitFor((m) => m.type === "error" && m.code === "rate_limited");
  assert.ok(limited.retryAfterMs > 0);
  assert.equal(await code, 1008);
});

test("the room socket is refused before the upgrade for an unknown room", async () => {
  await assert.rejects(connect(server.wsUrl, "alice", "/api/chat/rooms/no-such-room/ws"));
  const plain = await api(server.url, "alice", "/api/chat/rooms/general/ws");
  assert.equal(plain.status, 426);
});
