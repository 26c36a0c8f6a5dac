// Smoke against a real `wrangler dev`: readiness, a token-authenticated request, the sockets' transport.
import assert from "node:assert/strict";
import { connect as connectTcp } from "node:net";
import { after, before, test } from "node:test";
import { api, startServer, token } from "./lib.mjs";

let server;
before(async () => {
  server = await startServer(8811);
});
after(async () => {
  await server?.stop();
});

test("GET /health/ready reports every dependency ready", async () => {
  const { status, body } = await api(server.url, null, "/health/ready");
  assert.equal(status, 200, JSON.stringify(body));
  assert.equal(body.status, "ready");
  assert.deepEqual(body.checks.map((c) => c.name).sort(), ["d1", "durable_object", "r2"]);
});

test("a token-authenticated request answers as the token's user", async () => {
  const { status, body } = await api(server.url, "alice", "/api/me");
  assert.equal(status, 200);
  assert.deepEqual(body, { id: "alice", name: "alice" });
  const anon = await api(server.url, null, "/api/me");
  assert.equal(anon.status, 401);
  assert.equal(anon.body.error.code, "unauthorized");
});

/**
 * The head of the server's answer to a raw WebSocket upgrade that offers permessage-deflate, as browsers do,
 * and `protocols` (by default the app protocol and the token).
 */
function upgradeHead(base, path, tok, protocols = `edge-chat, bearer.${tok}`) {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const s = connectTcp(Number(port), hostname, () =>
      s.write(
        `GET ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
          `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n` +
          `Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n` +
          `Sec-WebSocket-Protocol: ${protocols}\r\n\r\n`,
      ),
    );
    let head = "";
    s.on("data", (d) => {
      head += String(d);
      const end = head.indexOf("\r\n\r\n");
      if (end >= 0) {
        s.destroy();
        resolve(head.slice(0, end).toLowerCase());
      }
    });
    s.on("error", reject);
    setTimeout(() => reject(new Error(`no answer to the upgrade of ${path}`)), 10_000).unref();
  });
}

test("room and inbox sockets negotiate no compression by default (WS_COMPRESSION=off)", async () => {
  const tok = await token("alice");
  for (const path of ["/api/chat/rooms/general/ws", "/api/chat/ws"]) {
    const head = await upgradeHead(server.url, path, tok);
    assert.match(head, /^http\/1\.1 101/, head);
    assert.match(head, /sec-websocket-protocol: edge-chat/, head);
    assert.doesNotMatch(head, /sec-websocket-extensions/, `${path} negotiated an extension:\n${head}`);
  }
});

test("with WS_COMPRESSION=on the same offer is accepted: permessage-deflate is negotiated", async () => {
  const on = await startServer(8812, { vars: { WS_COMPRESSION: "on" } });
  try {
    const head = await upgradeHead(on.url, "/api/chat/rooms/general/ws", await token("alice"));
    assert.match(head, /^http\/1\.1 101/, head);
    assert.match(head, /sec-websocket-extensions: permessage-deflate/, head);
  } finally {
    await on.stop();
  }
});

/** Opens Node's built-in WebSocket client; resolves with how the handshake ended. */
function handshake(url, protocols) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, protocols);
    const timer = setTimeout(() => resolve({ outcome: "timeout" }), 10_000);
    ws.addEventListener("open", () => {
      clearTimeout(timer);
      resolve({ outcome: "open", protocol: ws.protocol });
      ws.close(1000);
    });
    // A refused or failed handshake fires `error` (and, in Node 22, never `close`).
    ws.addEventListener("error", () => {
      clearTimeout(timer);
      resolve({ outcome: "error" });
    });
  });
}

test("a client offering [edge-chat] with ?token= connects, and edge-chat is echoed (room and inbox)", async () => {
  const tok = await token("query-user");
  for (const path of ["/api/chat/rooms/general/ws", "/api/chat/ws"]) {
    const res = await handshake(`${server.wsUrl}${path}?token=${tok}`, ["edge-chat"]);
    assert.deepEqual(res, { outcome: "open", protocol: "edge-chat" }, path);
    const head = await upgradeHead(server.url, `${path}?token=${tok}`, tok, "edge-chat");
    assert.match(head, /^http\/1\.1 101/, head);
    assert.match(head, /sec-websocket-protocol: edge-chat\r?$/m, head);
  }
});

test("a 101 never carries the token; offering only bearer.<token> gets no echo, so the client fails its handshake", async () => {
  const tok = await token("bearer-only");
  for (const path of ["/api/chat/rooms/general/ws", "/api/chat/ws"]) {
    for (const protocols of [`edge-chat, bearer.${tok}`, `bearer.${tok}`]) {
      const head = await upgradeHead(server.url, path, tok, protocols);
      assert.match(head, /^http\/1\.1 101/, head);
      assert.ok(!head.includes(tok.toLowerCase()), `${path} answered with the token:\n${head}`);
      assert.doesNotMatch(head, /bearer\./, head);
    }
    // What a client does then (documented in docs/protocol.md): Node's WebSocket, like browsers, fails a
    // handshake that offered protocols when the answer selects none.
    assert.deepEqual(await handshake(`${server.wsUrl}${path}`, [`bearer.${tok}`]), { outcome: "error" }, path);
  }
});

test("REST limits run under wrangler dev: a user's look-ups get 429 with Retry-After, another user's do not", async () => {
  // RL_PRESENCE (wrangler.toml): the window is fixed, so a run across its boundary may need 2 × limit + 1 calls.
  let refused;
  for (let i = 0; i < 2 * 120 + 1 && !refused; i++) {
    const res = await api(server.url, "rl-watcher", "/api/presence?userIds=alice");
    if (res.status === 429) refused = res;
    else assert.equal(res.status, 200, JSON.stringify(res.body));
  }
  assert.ok(refused, "no 429 from RL_PRESENCE");
  assert.equal(refused.headers.get("retry-after"), "60");
  assert.equal(refused.body.error.code, "rate_limited");
  assert.equal((await api(server.url, "rl-other", "/api/presence?userIds=alice")).status, 200);
});
