// The benchmark harness's own checks: the payload marker, the open-loop generator's loss and latency
// accounting against a real server (the socket.io peer, the fastest to start), and the report's
// verdicts and chart. The scenarios themselves run in CI through `npm run bench:smoke`.
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer } from "node:net";
import { after, before, test } from "node:test";
import { openMany } from "../../bench/lib/clients.mjs";
import { roomRun } from "../../bench/lib/loadgen.mjs";
import { markerText, nowMicros, scanMarkers } from "../../bench/lib/marker.mjs";
import { checks, svgChart, tableRows } from "../../bench/lib/report.mjs";
import { startSocketIo } from "../../bench/lib/targets.mjs";
import { assertPortFree } from "../../scripts/lib/wrangler.mjs";

test("markers are found in plain and batch frames; an ack's copy is labelled ack", () => {
  const t = nowMicros();
  const text = markerText(3, 41, t, 80);
  assert.equal(text.length, 80);
  const msg = (seq) => `{"type":"message","message":{"id":"m","seq":${seq},"text":"${markerText(2, seq, t)}","createdAt":1}}`;
  const raw = `{"type":"batch","frames":[${msg(7)},{"type":"ack","id":"x","message":{"text":"${text}"}},{"type":"dm","message":{"text":"${markerText(1, 9, t + 5)}"}}]}`;
  const seen = [];
  scanMarkers(raw, (type, sender, seq, intended) => seen.push([type, sender, seq, intended - t]));
  assert.deepEqual(seen, [
    ["message", 2, 7, 0],
    ["ack", 3, 41, 0],
    ["dm", 1, 9, 5],
  ]);
  const none = [];
  scanMarkers('{"type":"message","message":{"text":"hello ~1.2.3~"}}', (...a) => none.push(a));
  assert.deepEqual(none, [], "a marker-like string not at the start of the text is not a marker");
});

let peer;
before(async () => {
  peer = await startSocketIo(1, [8859]);
});
after(async () => {
  await peer?.stop();
});

test("open-loop run: every copy counted, none lost, latency recorded", async () => {
  const clients = await openMany(6, (i) => peer.room(i, "e2e-ok"));
  try {
    const r = await roomRun({ clients, senders: 2, ratePerSec: 40, warmupMs: 200, measureMs: 800 });
    assert.equal(r.messages, 40);
    assert.equal(r.expectedDeliveries, 40 * 5);
    assert.equal(r.lost, 0);
    assert.equal(r.duplicates, 0);
    assert.equal(r.latencyMs.count, 32 * 5, "only messages intended after the warm-up are in the histogram");
    assert.ok(r.latencyMs.p99 > 0 && r.latencyMs.p99 <= r.latencyMs.max);
  } finally {
    for (const c of clients) c.close();
  }
});

test("open-loop run: a receiver that is gone shows up as lost deliveries", async () => {
  const clients = await openMany(4, (i) => peer.room(i, "e2e-loss"));
  try {
    clients[3].close();
    await new Promise((r) => setTimeout(r, 200));
    const r = await roomRun({ clients, senders: 2, ratePerSec: 20, warmupMs: 0, measureMs: 500, drainMs: 2000 });
    assert.equal(r.messages, 10);
    // The drain is long enough for every live copy to arrive: only the closed socket's are lost.
    assert.equal(r.lost, 10, "the closed socket's copy of each message is missing");
  } finally {
    for (const c of clients) c.close();
  }
});

test("report: ratios become verdicts with the shortfall, and the chart has a line per target", () => {
  const run = (p99, sustained) => ({
    status: "ok",
    label: "x",
    fixed: [{ case: "100 sockets × 20 msg/s", lost: 0, latencyMs: { count: 10, p50: 1, p95: 2, p99, max: p99 } }],
    sweep: { sockets: 100, maxSustainedDeliveriesPerSec: sustained, points: [{ offeredDeliveriesPerSec: 1000, deliveredPerSec: 1000, pass: true, lost: 0, latencyMs: { p50: 1, p99, max: p99 } }] },
  });
  const results = { targets: { ours: run(15, 30_000), bare: run(10, 12_000), sio1: run(5, 40_000) } };
  const c = checks(results);
  const p99 = c.find((x) => x.name.startsWith("room broadcast p99"));
  assert.equal(p99.pass, false);
  assert.equal(p99.missBy, "25% over");
  assert.equal(c.find((x) => x.name.includes("≥ 3× bare")).missBy, "17% short");
  assert.equal(c.find((x) => x.name.includes("socket.io")).pass, false);
  const svg = svgChart(results);
  assert.equal(svg.match(/<polyline/g).length, 3);
  assert.ok(tableRows(results).some((r) => r[0].startsWith("max sustained") && r[5] === "2.50×"));
});

test("a target is not started on a port that already answers: the old server would be measured instead", async () => {
  const server = createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address();
  try {
    await assert.rejects(assertPortFree(port), new RegExp(`port ${port} .*already in use`));
  } finally {
    server.close();
  }
  await once(server, "close");
  await assertPortFree(port);
});
