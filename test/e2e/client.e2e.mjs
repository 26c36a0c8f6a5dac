// The client SDK (@edge-chat/client, the built package) against a real `wrangler dev`: the service is
// killed mid-conversation and restarted on the same port with the same state; a TCP proxy on loopback
// freezes connections to show the heartbeat noticing them. Node's own WebSocket and fetch.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { createServer, connect as tcpConnect } from "node:net";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { api, connect, startServer, token } from "./lib.mjs";

const SERVER_PORT = 8851;
const PROXY_PORT = 8852;
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** Builds client/dist when it is missing or older than a source file: the test drives the built package. */
function ensureClientBuilt() {
  const dist = path.join(ROOT, "client/dist/index.js");
  const src = path.join(ROOT, "client/src");
  const newest = Math.max(...readdirSync(src).map((f) => statSync(path.join(src, f)).mtimeMs), statSync(path.join(ROOT, "src/protocol.ts")).mtimeMs);
  if (!existsSync(dist) || statSync(dist).mtimeMs < newest) {
    execFileSync(process.execPath, [path.join(ROOT, "client/build.mjs")], { stdio: "inherit" });
  }
}

let server;
let ChatClient;
const clients = [];

before(async () => {
  ensureClientBuilt();
  ({ ChatClient } = await import("@edge-chat/client"));
  // Senders may flood (the long-gap test writes 2500 messages); the burst, which bounds what one resume
  // may replay before it is throttled, stays the default.
  server = await startServer(SERVER_PORT, { vars: { RATE_REFILL_PER_SEC: "500" } });
});

after(async () => {
  for (const c of clients) await c.close();
  await server?.stop();
});

const uid = (name) => `${name}-${Math.random().toString(36).slice(2, 8)}`;

/** A client with short timings, so that a test waits seconds, not the production defaults. */
function client(user, { baseUrl = server.url, ...timing } = {}) {
  const c = new ChatClient({
    baseUrl,
    token: () => token(user),
    backoff: { baseMs: 200, maxMs: 1500 },
    connectTimeoutMs: 3000,
    pingIntervalMs: 1000,
    pongTimeoutMs: 2000,
    ...timing,
  });
  clients.push(c);
  return c;
}

async function until(pred, what, timeoutMs = 30_000) {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Records a room's message events. */
function record(room) {
  const got = [];
  room.on("message", (m) => got.push(m));
  return got;
}

async function newRoom(owner) {
  const res = await api(server.url, owner, "/api/chat/rooms", { method: "POST", json: { name: uid("sdk"), category: "tech" } });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body.id;
}

/** The whole log of a room from REST, oldest first. */
async function roomLog(user, roomId) {
  const out = [];
  let before;
  for (;;) {
    const q = before ? `?limit=100&before=${before}` : "?limit=100";
    const res = await api(server.url, user, `/api/chat/rooms/${roomId}/messages${q}`);
    assert.equal(res.status, 200);
    out.push(...res.body.messages);
    if (res.body.nextBefore === null) break;
    before = res.body.nextBefore;
  }
  return out.reverse();
}

const seqs = (ms) => ms.map((m) => m.seq);
const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

test("the service is killed mid-conversation and restarted: every message reaches every client once, in order; offline sends are stored once", async () => {
  const [alice, bob, carol] = [uid("alice"), uid("bob"), uid("carol")];
  for (const u of [alice, bob, carol]) assert.equal((await api(server.url, u, "/api/me")).status, 200);
  const roomId = await newRoom(alice);
  const a = client(alice);
  const b = client(bob);
  const ra = a.room(roomId);
  const rb = b.room(roomId);
  const gotA = record(ra);
  const gotB = record(rb);
  const ia = a.inbox();
  const ib = b.inbox();
  const dmsB = [];
  ib.on("dm", (m) => dmsB.push(m));
  await until(() => ra.position !== null && rb.position !== null && ia.state === "open" && ib.state === "open", "both joined");

  // The conversation before the crash.
  for (let i = 0; i < 4; i++) {
    await ra.send({ text: `a${i}` });
    await rb.send({ text: `b${i}` });
  }
  await ia.send(bob, { text: "dm before" });
  await until(() => gotA.length === 8 && gotB.length === 8 && dmsB.length === 1, "the first 8 messages on both sides");

  await server.kill();
  await until(() => ra.state !== "open" && rb.state !== "open" && ia.state !== "open", "the clients to notice the crash");

  // Sent while the service is down: queued by the SDK.
  const offline = [];
  for (let i = 0; i < 5; i++) {
    offline.push(ra.send({ text: `a-offline-${i}` }));
    offline.push(rb.send({ text: `b-offline-${i}` }));
  }
  const offlineDms = [ia.send(bob, { text: "dm offline 1" }), ia.send(bob, { text: "dm offline 2" })];
  assert.equal(ra.pending().length, 5);

  await server.restart();
  // Someone else talks as soon as the service is back, before or while the SDK clients reconnect.
  const c = await connect(server.wsUrl, carol, `/api/chat/rooms/${roomId}/ws`);
  c.send({ type: "join_room", id: "j" });
  await c.waitFor((m) => m.type === "ack" && m.id === "j");
  for (let i = 0; i < 5; i++) {
    c.send({ type: "send_room_message", id: `c${i}`, clientMsgId: `carol-${i}`, text: `c${i}` });
    await c.waitFor((m) => m.type === "ack" && m.id === `c${i}`, 10_000);
  }
  c.close();

  const stored = await Promise.all(offline);
  await Promise.all(offlineDms);
  const total = 8 + 10 + 5;
  await until(() => gotA.length >= total && gotB.length >= total, `${total} messages on both sides`);
  await new Promise((r) => setTimeout(r, 300)); // anything extra (a duplicate) would arrive now

  const log = await roomLog(alice, roomId);
  assert.deepEqual(seqs(log), range(1, total), "the log is gap-free");
  // Every offline send is stored exactly once (one row per clientMsgId, with its text).
  for (const m of stored) assert.equal(log.filter((x) => x.clientMsgId === m.clientMsgId).length, 1);
  for (let i = 0; i < 5; i++) {
    assert.equal(log.filter((x) => x.text === `a-offline-${i}`).length, 1);
    assert.equal(log.filter((x) => x.text === `b-offline-${i}`).length, 1);
  }
  // Each sender's messages keep their order in the log.
  const texts = log.map((m) => m.text);
  const order = (prefix) => texts.filter((t) => t.startsWith(prefix));
  assert.deepEqual(order("a-offline-"), range(0, 4).map((i) => `a-offline-${i}`));
  assert.deepEqual(order("b-offline-"), range(0, 4).map((i) => `b-offline-${i}`));
  // Every client emitted the whole log once, in order, its own messages included.
  assert.deepEqual(seqs(gotA), range(1, total));
  assert.deepEqual(seqs(gotB), range(1, total));
  assert.deepEqual(gotA.map((m) => m.id), log.map((m) => m.id));
  assert.deepEqual(gotB.map((m) => m.id), log.map((m) => m.id));

  // The DMs: bob's inbox emitted each once, in order; the conversation holds each once.
  await until(() => dmsB.length >= 3, "bob's 3 DMs");
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(dmsB.map((m) => m.text), ["dm before", "dm offline 1", "dm offline 2"]);
  assert.deepEqual(seqs(dmsB), [1, 2, 3]);
  const hist = await api(server.url, bob, `/api/chat/dms/${dmsB[0].conversationId}/messages`);
  assert.deepEqual(hist.body.messages.map((m) => m.text).reverse(), ["dm before", "dm offline 1", "dm offline 2"]);
  for (const x of [a, b]) await x.close();
});

test("DMs sent while the recipient is disconnected arrive once after its inbox syncs", async () => {
  const [alice, bob] = [uid("alice"), uid("bob")];
  for (const u of [alice, bob]) assert.equal((await api(server.url, u, "/api/me")).status, 200);
  const a = client(alice);
  const ia = a.inbox();
  await until(() => ia.state === "open", "alice's inbox");
  await ia.send(bob, { text: "first" });

  // Bob's client starts after the conversation exists (its start reads the list: lastSeq 1).
  const b = client(bob);
  const ib = b.inbox();
  const got = [];
  ib.on("dm", (m) => got.push(m));
  await until(() => ib.state === "open", "bob's inbox");
  await ia.send(bob, { text: "second" });
  await until(() => got.length === 1, "the live DM");

  await server.kill();
  await until(() => ib.state !== "open" && ia.state !== "open", "both inboxes down");
  await server.restart();
  // Alice's queue is empty; send through her SDK as soon as her inbox is back, before bob's maybe.
  const sends = [ia.send(bob, { text: "third" }), ia.send(bob, { text: "fourth" })];
  await Promise.all(sends);
  await until(() => got.length >= 3, "bob's DMs after the restart");
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(got.map((m) => m.text), ["second", "third", "fourth"]);
  assert.deepEqual(seqs(got), [2, 3, 4]);
  for (const x of [a, b]) await x.close();
});

/**
 * A TCP proxy on loopback. `freeze()` silently stops forwarding on the connections open now (the
 * sockets stay open: no FIN, no RST, like a network that vanished); `freeze("down")` drops only what
 * the server sends. New connections forward normally.
 */
async function startProxy(listenPort, targetPort) {
  const conns = new Set();
  let refusing = false;
  const srv = createServer((client) => {
    if (refusing) return void client.destroy();
    const upstream = tcpConnect(targetPort, "127.0.0.1");
    const conn = { up: true, down: true, client, upstream };
    conns.add(conn);
    client.on("data", (d) => conn.up && upstream.write(d));
    upstream.on("data", (d) => conn.down && client.write(d));
    const end = () => {
      conns.delete(conn);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", end);
    upstream.on("error", end);
    client.on("close", end);
    upstream.on("close", end);
  });
  await new Promise((r) => srv.listen(listenPort, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${listenPort}`,
    /** Freezes the open connections and drops new ones at once, until `accept()`. */
    cut() {
      refusing = true;
      this.freeze();
    },
    accept() {
      refusing = false;
    },
    freeze(which = "both") {
      for (const c of conns) {
        if (which === "both" || which === "down") c.down = false;
        if (which === "both") c.up = false;
      }
    },
    async close() {
      for (const c of conns) {
        c.client.destroy();
        c.upstream.destroy();
      }
      await new Promise((r) => srv.close(r));
    },
  };
}

test("a frozen connection is noticed by the heartbeat; the client reconnects and misses nothing", async () => {
  const proxy = await startProxy(PROXY_PORT, SERVER_PORT);
  try {
    const [alice, bob] = [uid("alice"), uid("bob")];
    for (const u of [alice, bob]) assert.equal((await api(server.url, u, "/api/me")).status, 200);
    const roomId = await newRoom(alice);
    const a = client(alice, { baseUrl: proxy.url, pingIntervalMs: 500, pongTimeoutMs: 1000 });
    const ra = a.room(roomId);
    const got = record(ra);
    const downs = [];
    ra.on("disconnect", (d) => downs.push(d.reason));
    const b = client(bob);
    const rb = b.room(roomId);
    await until(() => ra.position !== null && rb.position !== null, "both joined");
    await rb.send({ text: "before" });
    await until(() => got.length === 1, "the first message");

    proxy.freeze();
    const frozenAt = Date.now();
    // Bob talks while alice's connection is frozen.
    for (let i = 0; i < 3; i++) await rb.send({ text: `during ${i}` });
    await until(() => downs.length > 0, "the heartbeat to notice", 15_000);
    const noticedMs = Date.now() - frozenAt;
    assert.equal(downs[0], "heartbeat timeout");
    console.log(`# frozen connection noticed after ${noticedMs} ms (ping every 500 ms, pong deadline 1000 ms)`);
    await until(() => got.length === 4, "the messages sent during the freeze");
    await rb.send({ text: "after" });
    await until(() => got.length === 5, "the live message after reconnecting");
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(got.map((m) => m.text), ["before", "during 0", "during 1", "during 2", "after"]);
    assert.deepEqual(seqs(got), range(1, 5));
    for (const x of [a, b]) await x.close();
  } finally {
    await proxy.close();
  }
});

test("a send whose ack is lost is retried with the same clientMsgId and stored once", async () => {
  const proxy = await startProxy(PROXY_PORT, SERVER_PORT);
  try {
    const alice = uid("alice");
    assert.equal((await api(server.url, alice, "/api/me")).status, 200);
    const roomId = await newRoom(alice);
    const a = client(alice, { baseUrl: proxy.url, pingIntervalMs: 500, pongTimeoutMs: 1000 });
    const ra = a.room(roomId);
    const got = record(ra);
    const drops = [];
    ra.on("disconnect", (d) => drops.push({ reason: d.reason, at: Date.now(), pending: ra.pending().map((e) => e.clientMsgId) }));
    await until(() => ra.position !== null && ra.state === "open", "joined");

    // The server gets the send and stores it; its ack never comes back on this connection.
    proxy.freeze("down");
    const sent = ra.send({ text: "exactly once" }, { clientMsgId: "lost-ack-1" });
    await until(() => drops.length > 0, "the heartbeat to notice", 15_000);
    // When the heartbeat gave the connection up, the send was still waiting for its ack.
    assert.equal(drops[0].reason, "heartbeat timeout");
    assert.deepEqual(drops[0].pending, ["lost-ack-1"]);
    const m = await sent;
    assert.equal(m.clientMsgId, "lost-ack-1");
    // Stored before the first connection was given up: by the first attempt, whose ack was lost.
    assert.ok(m.createdAt <= drops[0].at, `stored at ${m.createdAt}, connection dropped at ${drops[0].at}`);
    assert.equal(m.seq, 1);
    await new Promise((r) => setTimeout(r, 300));
    const log = await roomLog(alice, roomId);
    assert.deepEqual(log.map((x) => x.clientMsgId), ["lost-ack-1"]);
    assert.deepEqual(seqs(got), [1]);
    await a.close();
  } finally {
    await proxy.close();
  }
});

test("a room that does not exist: the upgrade's 404 looks like a network failure, so after 3 attempts REST is asked and the send fails", async () => {
  const alice = uid("alice");
  const a = client(alice);
  const room = a.room("no-such-room-here");
  const errors = [];
  room.on("error", (e) => errors.push(e.code));
  const outcome = room.send({ text: "hello?" }).then(
    () => "stored",
    (e) => e.code,
  );
  assert.equal(await outcome, "not_found");
  assert.deepEqual(errors, ["not_found"]);
  assert.equal(room.state, "closed");
  await a.close();
});

/** Sends `n` room messages on a raw socket, 20 in flight, resending with the same clientMsgId when throttled. */
async function flood(sock, n, prefix) {
  const pending = new Map();
  let next = 0;
  let done = 0;
  await new Promise((resolve, reject) => {
    const send = (i) => {
      const id = `${prefix}-${i}`;
      pending.set(id, i);
      sock.send({ type: "send_room_message", id, clientMsgId: id, text: id });
    };
    const t = setTimeout(() => reject(new Error(`flood ${prefix}: ${done}/${n} after 60 s`)), 60_000);
    sock.ws.addEventListener("message", (ev) => {
      const data = JSON.parse(ev.data);
      for (const f of data.type === "batch" ? data.frames : [data]) {
        if (!pending.has(f.id)) continue;
        const i = pending.get(f.id);
        pending.delete(f.id);
        if (f.type === "error" && f.code === "rate_limited") {
          setTimeout(() => send(i), f.retryAfterMs ?? 10);
          continue;
        }
        if (f.type !== "ack") return reject(new Error(JSON.stringify(f)));
        if (++done === n) {
          clearTimeout(t);
          return resolve();
        }
        if (next < n) send(next++);
      }
    });
    while (next < Math.min(20, n)) send(next++);
  });
}

test("a client away for 2500 messages catches up through truncated replays (nextSince), once each, in order", async () => {
  const proxy = await startProxy(PROXY_PORT, SERVER_PORT);
  try {
    const alice = uid("alice");
    const senders = [0, 1, 2, 3, 4].map((i) => uid(`sender${i}`));
    for (const u of [alice, ...senders]) assert.equal((await api(server.url, u, "/api/me")).status, 200);
    const roomId = await newRoom(alice);
    const a = client(alice, { baseUrl: proxy.url });
    const ra = a.room(roomId);
    const got = record(ra);
    const states = [];
    ra.on("state", (s) => states.push({ truncated: s.replayTruncated === true, nextSince: s.nextSince }));
    await until(() => ra.position !== null && ra.state === "open", "joined");
    await ra.send({ text: "before" });

    proxy.cut();
    await until(() => ra.state !== "open", "alice to be cut off", 15_000);
    const socks = await Promise.all(senders.map((u) => connect(server.wsUrl, u, `/api/chat/rooms/${roomId}/ws`)));
    for (const s of socks) {
      s.send({ type: "join_room", id: "j" });
      await s.waitFor((m) => m.type === "ack" && m.id === "j");
    }
    await Promise.all(socks.map((s, i) => flood(s, 500, `s${i}`)));
    for (const s of socks) s.close();

    proxy.accept();
    await until(() => got.length >= 2501, "the catch-up", 60_000);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(seqs(got), range(1, 2501));
    const log = await roomLog(alice, roomId);
    assert.deepEqual(got.map((m) => m.id), log.map((m) => m.id));
    // The server did cut the replay: the SDK followed nextSince (at least 3 joins after the reconnect).
    const resumed = states.slice(1);
    assert.ok(resumed.some((s) => s.truncated), JSON.stringify(resumed));
    assert.ok(resumed.length >= 3, JSON.stringify(resumed));
    await a.close();
  } finally {
    await proxy.close();
  }
});
