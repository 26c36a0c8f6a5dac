// Suggestions against a real `wrangler dev`: 21 users report their location over REST, a caller's
// inbox socket (real WebSocket, location on the connection) gets the `suggestion` frame, the proposed
// room is created as is and then listed.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { api, connect, startServer } from "./lib.mjs";

const PATH = "/api/chat/rooms/suggestions";
const LYON = { lat: 45.76, lon: 4.84 };

let server;
before(async () => {
  server = await startServer(8842);
});
after(async () => {
  await server?.stop();
});

test("bad coordinates are refused with 400", async () => {
  for (const qs of ["lat=91&lon=0", "lat=1", "lat=x&lon=2"]) {
    const { status, body } = await api(server.url, "e2e-bad", `${PATH}?${qs}`);
    assert.equal(status, 400, qs);
    assert.equal(body.error.code, "bad_request");
  }
});

test("density over the threshold: notification, proposal, creation, listing", async () => {
  // 20 others: below the threshold for a newcomer.
  for (let i = 0; i < 20; i++) {
    const at = { lat: (LYON.lat + (i % 5) * 0.05).toFixed(4), lon: (LYON.lon + Math.floor(i / 5) * 0.05).toFixed(4) };
    const { status } = await api(server.url, `e2e-u${i}`, `${PATH}?lat=${at.lat}&lon=${at.lon}`);
    assert.equal(status, 200);
  }
  const below = await api(server.url, "e2e-caller", `${PATH}?lat=${LYON.lat}&lon=${LYON.lon}`);
  assert.equal(below.body.status, "below_threshold");
  assert.equal(below.body.nearbyUsers, 20);

  // The caller's inbox is open; a 21st user arrives, then the caller reconnects with a location.
  const early = await connect(server.wsUrl, "e2e-caller", "/api/chat/ws");
  await api(server.url, "e2e-u20", `${PATH}?lat=45.70&lon=4.80`);
  const sock = await connect(server.wsUrl, "e2e-caller", `/api/chat/ws?lat=${LYON.lat}&lon=${LYON.lon}`);
  try {
    // Whichever of the caller's sockets was open when the recording finished gets the frame.
    const frame = await Promise.race([
      sock.waitFor((m) => m.type === "suggestion", 10_000),
      early.waitFor((m) => m.type === "suggestion", 10_000),
    ]);
    assert.equal(frame.nearbyUsers, 21);
    assert.deepEqual(frame.rooms, []);
    assert.equal(frame.proposed.category, "local");

    const now = await api(server.url, "e2e-caller", PATH);
    assert.equal(now.body.status, "propose");
    assert.equal(now.body.location.source, "stored");
    const created = await api(server.url, "e2e-caller", "/api/chat/rooms", { method: "POST", json: now.body.proposed });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const listed = await api(server.url, "e2e-caller", PATH);
    assert.equal(listed.body.status, "rooms");
    assert.deepEqual(listed.body.rooms.map((r) => r.id), [created.body.id]);
  } finally {
    sock.close();
    early.close();
  }
});
