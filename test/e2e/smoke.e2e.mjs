// Smoke against a real `wrangler dev`: readiness and a token-authenticated request.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { api, startServer } from "./lib.mjs";

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
