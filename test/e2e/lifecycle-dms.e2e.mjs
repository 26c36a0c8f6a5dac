// DM lifecycle end to end against a real `wrangler dev`: edits, deletions and reactions between real
// WebSocket clients on both copies, refusals from the refused side, full-text search on the inbox's
// SQLite FTS5 as `wrangler dev` runs it, and a resume (`sync` with `sinceRev`) across a server restart.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { api, connect, startServer } from "./lib.mjs";

const SERVER_PORT = 8873;

let server;

before(async () => {
  server = await startServer(SERVER_PORT);
});

after(async () => {
  await server?.stop();
});

const uid = (name) => `${name}-${Math.random().toString(36).slice(2, 8)}`;

/** Sends a frame with a fresh id; resolves with its ack or error. */
async function ask(sock, frame) {
  const id = crypto.randomUUID();
  sock.send({ ...frame, id });
  return sock.waitFor((m) => (m.type === "ack" || m.type === "error") && m.id === id);
}

async function copyOf(user, conversationId, id) {
  const res = await api(server.url, user, `/api/chat/dms/${conversationId}/messages`);
  assert.equal(res.status, 200);
  return res.body.messages.find((m) => m.id === id);
}

async function searchTexts(user, q) {
  const res = await api(server.url, user, `/api/chat/dms/search?q=${encodeURIComponent(q)}`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.messages.map((m) => m.text);
}

async function eventually(fn, timeoutMs = 5000) {
  const t0 = Date.now();
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() - t0 > timeoutMs) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

test("edit, react and delete reach both copies and every socket of both users; the peer is refused", async () => {
  const alice = uid("alice");
  const bob = uid("bob");
  for (const u of [alice, bob]) assert.equal((await api(server.url, u, "/api/me")).status, 200);
  const a1 = await connect(server.wsUrl, alice, "/api/chat/ws");
  const a2 = await connect(server.wsUrl, alice, "/api/chat/ws");
  const b1 = await connect(server.wsUrl, bob, "/api/chat/ws");
  const b2 = await connect(server.wsUrl, bob, "/api/chat/ws");
  const sent = await ask(a1, { type: "send_dm", to: bob, clientMsgId: "lc-1", text: "see you at noon" });
  assert.equal(sent.type, "ack", JSON.stringify(sent));
  const m = sent.message;
  const conv = m.conversationId;
  await b1.waitFor((f) => f.type === "dm" && f.message.id === m.id);

  // Bob is not the author: refused, from his side, and nothing changes.
  const refused = await ask(b1, { type: "edit_message", conversationId: conv, messageId: m.id, text: "see you never" });
  assert.equal(refused.code, "forbidden");
  assert.equal((await ask(b1, { type: "delete_message", conversationId: conv, messageId: m.id })).code, "forbidden");

  const edited = await ask(a1, { type: "edit_message", conversationId: conv, messageId: m.id, text: "see you at one" });
  assert.equal(edited.type, "ack", JSON.stringify(edited));
  assert.equal(edited.message.text, "see you at one");
  assert.ok(edited.message.editedAt);
  for (const s of [a2, b1, b2]) {
    const u = await s.waitFor((f) => f.type === "message_updated" && f.message.id === m.id);
    assert.equal(u.message.text, "see you at one");
  }

  const reacted = await ask(b2, { type: "react", conversationId: conv, messageId: m.id, emoji: "👍", on: true });
  assert.deepEqual(reacted.message.reactions, { "👍": 1 });
  assert.deepEqual(reacted.message.myReactions, ["👍"]);
  for (const s of [a1, a2, b1]) {
    const r = await s.waitFor((f) => f.type === "reaction" && f.messageId === m.id);
    assert.deepEqual([r.emoji, r.userId, r.on, r.count], ["👍", bob, true, 1]);
  }
  const alicesCopy = await eventually(async () => {
    const c = await copyOf(alice, conv, m.id);
    assert.deepEqual(c.reactions, { "👍": 1 });
    return c;
  });
  assert.equal(alicesCopy.myReactions, undefined);

  const deleted = await ask(a2, { type: "delete_message", conversationId: conv, messageId: m.id });
  assert.equal(deleted.message.deleted, true);
  for (const s of [a1, b1, b2]) {
    const d = await s.waitFor((f) => f.type === "message_deleted" && f.messageId === m.id);
    assert.equal(d.deletedBy, alice);
  }
  for (const u of [alice, bob]) {
    const c = await eventually(async () => {
      const copy = await copyOf(u, conv, m.id);
      assert.equal(copy.deleted, true);
      return copy;
    });
    assert.equal(c.seq, 1);
    assert.equal(c.text, undefined);
    assert.equal(c.reactions, undefined);
  }
  for (const s of [a1, a2, b1, b2]) s.close();
});

test("search runs on FTS5 under wrangler dev: ranked, an edit found by its new text only, a deletion never, only the caller's", async () => {
  const alice = uid("alice");
  const bob = uid("bob");
  const carol = uid("carol");
  for (const u of [alice, bob, carol]) await api(server.url, u, "/api/me");
  const a = await connect(server.wsUrl, alice, "/api/chat/ws");
  const c = await connect(server.wsUrl, carol, "/api/chat/ws");
  const first = (await ask(a, { type: "send_dm", to: bob, clientMsgId: "s1", text: "the zeppelin lands at dawn" })).message;
  await ask(a, { type: "send_dm", to: bob, clientMsgId: "s2", text: "zeppelin zeppelin zeppelin" });
  const secret = (await ask(a, { type: "send_dm", to: bob, clientMsgId: "s3", text: "burn after reading: zeppelin" })).message;
  await ask(c, { type: "send_dm", to: bob, clientMsgId: "s4", text: "carol's zeppelin" });
  const ranked = await searchTexts(alice, "zeppelin");
  // bm25: the message that is all "zeppelin" first; carol's (to bob) is not alice's.
  assert.equal(ranked[0], "zeppelin zeppelin zeppelin");
  assert.deepEqual([...ranked].sort(), ["burn after reading: zeppelin", "the zeppelin lands at dawn", "zeppelin zeppelin zeppelin"]);
  await ask(a, { type: "edit_message", conversationId: first.conversationId, messageId: first.id, text: "the airship lands at dawn" });
  await ask(a, { type: "delete_message", conversationId: secret.conversationId, messageId: secret.id });
  assert.deepEqual(await searchTexts(alice, "airship"), ["the airship lands at dawn"]);
  assert.deepEqual(await searchTexts(alice, "zeppelin"), ["zeppelin zeppelin zeppelin"]);
  assert.deepEqual(await searchTexts(alice, "burn"), []);
  // Bob's copy follows (carol's message is his too, never alice's).
  await eventually(async () => assert.deepEqual((await searchTexts(bob, "zeppelin")).sort(), ["carol's zeppelin", "zeppelin zeppelin zeppelin"]));
  const page = await api(server.url, alice, "/api/chat/dms/search?q=zeppelin&limit=1");
  assert.equal(page.body.nextCursor, null);
  a.close();
  c.close();
});

test("a device that was away, across a server restart, learns on sync { sinceRev } of every change to what it holds, each once", async () => {
  const alice = uid("alice");
  const bob = uid("bob");
  for (const u of [alice, bob]) await api(server.url, u, "/api/me");
  const a = await connect(server.wsUrl, alice, "/api/chat/ws");
  const b = await connect(server.wsUrl, bob, "/api/chat/ws?sync=1");
  const live = await ask(b, { type: "sync", since: {} });
  const m1 = (await ask(a, { type: "send_dm", to: bob, clientMsgId: "r1", text: "first" })).message;
  const m2 = (await ask(a, { type: "send_dm", to: bob, clientMsgId: "r2", text: "second" })).message;
  const conv = m1.conversationId;
  const got = await b.waitFor((f) => f.type === "dm" && f.message.id === m2.id);
  // The client's position: the highest rev it saw.
  const sinceRev = Math.max(live.lastRev, got.message.rev);
  b.close();

  await ask(a, { type: "edit_message", conversationId: conv, messageId: m1.id, text: "first, edited" });
  await ask(a, { type: "react", conversationId: conv, messageId: m2.id, emoji: "🎉", on: true });
  const m3 = (await ask(a, { type: "send_dm", to: bob, clientMsgId: "r3", text: "third" })).message;
  await eventually(async () => assert.deepEqual((await copyOf(bob, conv, m2.id)).reactions, { "🎉": 1 }));
  a.close();

  await server.kill();
  await server.restart();

  const back = await connect(server.wsUrl, bob, "/api/chat/ws?sync=1");
  const ack = await ask(back, { type: "sync", since: { [conv]: got.message.seq }, sinceRev });
  assert.equal(ack.type, "ack", JSON.stringify(ack));
  assert.equal(ack.more, undefined);
  const replay = back.frames.filter((f) => ["dm", "message_updated", "message_deleted", "reaction"].includes(f.type));
  assert.deepEqual(
    replay.map((f) => [f.type, f.message.id]),
    [
      ["dm", m3.id],
      ["message_updated", m1.id],
      ["message_updated", m2.id],
    ],
  );
  assert.equal(replay[1].message.text, "first, edited");
  assert.deepEqual(replay[2].message.reactions, { "🎉": 1 });
  assert.ok(ack.lastRev >= replay[2].message.rev);
  back.close();
});
