// DMs and presence end to end against a real `wrangler dev`: real sockets, the real local queue,
// and a local HTTP server standing in for the push webhook.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { connect as tcpConnect } from "node:net";
import { after, before, test } from "node:test";
import { importDocSnippet } from "./doc-snippet.mjs";
import { api, connect, startServer, token } from "./lib.mjs";

const SERVER_PORT = 8825;
const WEBHOOK_PORT = 8826;
/** A second server with a short presence timeout, for the dead-connection sweep. */
const SWEEP_PORT = 8827;
const SWEEP_TIMEOUT_MS = 2000;
const SECRET = "e2e-webhook-secret";

let server;
let webhook;
const pushes = [];
const pushWaiters = [];

before(async () => {
  webhook = createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      const push = { body, signature: req.headers["x-push-signature"], delivery: req.headers["x-push-delivery"] };
      pushes.push(push);
      for (const w of pushWaiters.splice(0)) w();
      res.writeHead(204).end();
    });
  });
  await new Promise((resolve) => webhook.listen(WEBHOOK_PORT, "127.0.0.1", resolve));
  server = await startServer(SERVER_PORT, {
    vars: { PUSH_WEBHOOK_URL: `http://127.0.0.1:${WEBHOOK_PORT}/push`, PUSH_WEBHOOK_SECRET: SECRET },
  });
});

after(async () => {
  await server?.stop();
  await new Promise((resolve) => webhook?.close(resolve));
});

const uid = (name) => `${name}-${Math.random().toString(36).slice(2, 8)}`;

async function send(sock, to, text, clientMsgId = crypto.randomUUID()) {
  const id = crypto.randomUUID();
  sock.send({ type: "send_dm", id, to, clientMsgId, text });
  return sock.waitFor((m) => (m.type === "ack" || m.type === "error") && m.id === id);
}

async function waitForPush(pred, timeoutMs = 15_000) {
  const t0 = Date.now();
  for (;;) {
    const found = pushes.find(pred);
    if (found) return found;
    if (Date.now() - t0 > timeoutMs) throw new Error(`no push within ${timeoutMs} ms; got ${pushes.length}`);
    await new Promise((resolve) => {
      pushWaiters.push(resolve);
      setTimeout(resolve, 500);
    });
  }
}

test("a DM reaches every device of the recipient and the sender's other device, and history agrees", async () => {
  const alice = uid("alice");
  const bob = uid("bob");
  for (const u of [alice, bob]) assert.equal((await api(server.url, u, "/api/me")).status, 200);
  const a1 = await connect(server.wsUrl, alice, "/api/chat/ws");
  const a2 = await connect(server.wsUrl, alice, "/api/chat/ws");
  const b1 = await connect(server.wsUrl, bob, "/api/chat/ws");
  const b2 = await connect(server.wsUrl, bob, "/api/chat/ws");
  assert.equal(a1.ws.protocol, "edge-chat");

  const ack = await send(a1, bob, "hello over loopback", "e2e-1");
  assert.equal(ack.type, "ack", JSON.stringify(ack));
  const { message } = ack;
  for (const b of [b1, b2]) {
    const dm = await b.waitFor((m) => m.type === "dm" && m.message.id === message.id);
    assert.equal(dm.message.seq, 1);
    const note = await b.waitFor((m) => m.type === "notification");
    assert.equal(note.unread, 1);
  }
  await a2.waitFor((m) => m.type === "dm" && m.message.id === message.id);
  const retry = await send(a1, bob, "hello over loopback", "e2e-1");
  assert.equal(retry.duplicate, true);
  assert.equal(retry.message.id, message.id);

  b1.send({ type: "mark_read", id: "r", conversationId: message.conversationId, seq: 1 });
  const read = await a1.waitFor((m) => m.type === "read");
  assert.equal(read.seq, 1);

  const hist = await api(server.url, bob, `/api/chat/dms/${message.conversationId}/messages`);
  assert.equal(hist.status, 200);
  assert.deepEqual(hist.body.messages.map((m) => m.text), ["hello over loopback"]);
  const list = await api(server.url, bob, "/api/chat/dms");
  assert.equal(list.body.conversations[0].unread, 0);
  assert.equal((await api(server.url, uid("eve"), `/api/chat/dms/${message.conversationId}/messages`)).status, 404);
  for (const s of [a1, a2, b1, b2]) s.close();
});

test("a blocked sender is refused and nothing reaches the recipient", async () => {
  const alice = uid("alice");
  const bob = uid("bob");
  for (const u of [alice, bob]) await api(server.url, u, "/api/me");
  assert.equal((await api(server.url, bob, "/api/chat/blocks", { method: "POST", json: { userId: alice } })).status, 201);
  const a = await connect(server.wsUrl, alice, "/api/chat/ws");
  const b = await connect(server.wsUrl, bob, "/api/chat/ws");
  const res = await send(a, bob, "let me in");
  assert.equal(res.type, "error");
  assert.equal(res.code, "blocked");
  assert.equal(b.frames.filter((m) => m.type === "dm").length, 0);
  a.close();
  b.close();
});

/** The receiver's check, as docs/dms.md ("Verifying a delivery") prints it: loaded from the docs, not copied. */
const { verifyPush } = await importDocSnippet("dms.md", "### Verifying a delivery", ["verifyPush"]);

test("an offline recipient gets a signed push through the queue and the webhook", async () => {
  const alice = uid("alice");
  const bob = uid("bob");
  for (const u of [alice, bob]) await api(server.url, u, "/api/me");
  const a = await connect(server.wsUrl, alice, "/api/chat/ws");
  const ack = await send(a, bob, "are you there?");
  assert.equal(ack.type, "ack");
  const push = await waitForPush((p) => JSON.parse(p.body).userId === bob);
  const body = JSON.parse(push.body);
  assert.equal(body.messageId, ack.message.id);
  assert.equal(body.preview, "are you there?");
  assert.match(push.signature, /^t=\d+,v1=[0-9a-f]{64}$/);
  assert.equal(verifyPush(SECRET, push.signature, push.body), true);
  // A captured delivery replayed an hour later fails the receiver's check, and so does a moved time.
  assert.equal(verifyPush(SECRET, push.signature, push.body, Date.now() / 1000 + 3600), false);
  const t = Number(/t=(\d+)/.exec(push.signature)[1]);
  assert.equal(verifyPush(SECRET, push.signature.replace(`t=${t}`, `t=${t + 3600}`), push.body, t + 3600), false);
  assert.ok(push.delivery);
  a.close();
});

test("resuming with ?sync=1 while the peer keeps sending: every missed DM, then the live ones, in seq order, each once (10 resumes)", async () => {
  const alice = uid("alice");
  const bob = uid("bob");
  for (const u of [alice, bob]) await api(server.url, u, "/api/me");
  const a = await connect(server.wsUrl, alice, "/api/chat/ws");
  const first = await send(a, bob, "first");
  assert.equal(first.type, "ack");
  const conversationId = first.message.conversationId;
  // Alice sends without pause, as fast as her rate limit allows.
  let sending = true;
  const traffic = (async () => {
    for (let i = 0; sending; i++) {
      const r = await send(a, bob, `m${i}`);
      if (r.type === "error" && r.code === "rate_limited") await new Promise((res) => setTimeout(res, r.retryAfterMs ?? 100));
    }
  })();
  let lastSeq = first.message.seq;
  const pause = (ms) => new Promise((res) => setTimeout(res, ms));
  try {
    for (let round = 0; round < 10; round++) {
      const b = await connect(server.wsUrl, bob, "/api/chat/ws?sync=1");
      // Messages arrive while the device is between its open and its sync, then after the sync.
      await pause(150);
      b.send({ type: "sync", id: "s", since: { [conversationId]: lastSeq } });
      await b.waitFor((m) => m.type === "ack" && m.id === "s");
      await pause(150);
      b.close();
      const seqs = b.frames.filter((m) => m.type === "dm" && m.message.conversationId === conversationId).map((m) => m.message.seq);
      assert.ok(seqs.length > 0, `round ${round}: nothing arrived`);
      assert.deepEqual(seqs, seqs.map((_, i) => lastSeq + 1 + i), `round ${round}: from ${lastSeq}`);
      lastSeq = seqs.at(-1);
    }
  } finally {
    sending = false;
    await traffic;
    a.close();
  }
});

test("presence: a subscriber sees online, a status change, then offline on a clean close", async () => {
  const watcher = uid("watcher");
  const bob = uid("bob");
  // Only known (provisioned) users can be watched.
  await api(server.url, bob, "/api/me");
  const w = await connect(server.wsUrl, watcher, "/api/chat/ws");
  w.send({ type: "subscribe_presence", id: "s", userIds: [bob] });
  await w.waitFor((m) => m.type === "ack" && m.id === "s");
  const b = await connect(server.wsUrl, bob, "/api/chat/ws");
  await w.waitFor((m) => m.type === "presence" && m.userId === bob && m.status === "online");
  b.send({ type: "presence", status: "dnd" });
  await w.waitFor((m) => m.type === "presence" && m.userId === bob && m.status === "dnd");
  b.close();
  const off = await w.waitFor((m) => m.type === "presence" && m.userId === bob && m.status === "offline" && m.lastSeen !== null);
  assert.ok(off.lastSeen > 0);
  const looked = await api(server.url, watcher, `/api/presence?userIds=${bob}`);
  assert.equal(looked.body.presence[0].status, "offline");
  w.close();
});

/**
 * A client that completes the WebSocket handshake and then goes silent without ever closing:
 * what a killed laptop or a dropped network looks like to the server.
 */
async function silentClient(port, user) {
  const socket = tcpConnect(port, "127.0.0.1");
  await new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  const key = Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("base64");
  socket.write(
    `GET /api/chat/ws?token=${await token(user)} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
      `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  const head = await new Promise((resolve) => socket.once("data", (d) => resolve(String(d))));
  assert.match(head, /^HTTP\/1\.1 101/);
  return socket;
}

test("a client that dies without closing is swept and shown offline", async (t) => {
  const sweepServer = await startServer(SWEEP_PORT, { vars: { PRESENCE_TIMEOUT_MS: String(SWEEP_TIMEOUT_MS) } });
  try {
    const watcher = uid("watcher");
    const bob = uid("bob");
    await api(sweepServer.url, bob, "/api/me");
    const w = await connect(sweepServer.wsUrl, watcher, "/api/chat/ws");
    // The watcher keeps itself alive with the auto-answered ping from the moment it is connected:
    // with so short a timeout, a sweep could otherwise take the watcher itself.
    const keepAlive = setInterval(() => w.send({ type: "ping" }), SWEEP_TIMEOUT_MS / 4);
    try {
      w.send({ type: "subscribe_presence", id: "s", userIds: [bob] });
      await w.waitFor((m) => m.type === "ack" && m.id === "s");
      const silent = await silentClient(SWEEP_PORT, bob);
      const t0 = Date.now();
      await w.waitFor((m) => m.type === "presence" && m.userId === bob && m.status === "online");
      const mark = w.frames.length;
      const off = await w.waitFor(
        (m) => m.type === "presence" && m.userId === bob && m.status === "offline" && w.frames.lastIndexOf(m) >= mark,
        SWEEP_TIMEOUT_MS * 10,
      );
      assert.ok(off.lastSeen >= t0);
      t.diagnostic(`killed client to offline: ${Date.now() - t0} ms with PRESENCE_TIMEOUT_MS=${SWEEP_TIMEOUT_MS}`);
      silent.destroy();
    } finally {
      clearInterval(keepAlive);
    }
    w.close();
  } finally {
    await sweepServer.stop();
  }
});
