// Open-loop load against a room: messages leave on a fixed schedule whether or not earlier ones
// were answered, each carrying its intended send time and a sequence number in its text; latency is
// measured from the intended time (so a stalled sender or server is charged for the wait, no
// coordinated omission) and every receiver's copy is counted, so losses and duplicates show.
import { newHistogram, summarize } from "./hist.mjs";
import { markerText, nowMicros, scanMarkers } from "./marker.mjs";
import { cpuMeter } from "./procstat.mjs";

let runCounter = 0;
const RUN_SPAN = 10_000_000;
const DELIVERY_TYPES = new Set(["message", "send_room_message"]);

/**
 * Drives `clients` (all in one room) for `warmupMs + measureMs`: `ratePerSec` messages a second in
 * total, round-robin over the first `senders` clients. Every other client's copy of every message is
 * expected. Returns latency percentiles (measured window only), throughput, losses and CPU.
 */
export async function roomRun({ clients, senders, ratePerSec, warmupMs, measureMs, drainMs = 3000, textSize = 64, pgids = [], onProgress }) {
  const run = ++runCounter;
  const base = (run % 200) * RUN_SPAN;
  const n = clients.length;
  const total = Math.max(1, Math.round((ratePerSec * (warmupMs + measureMs)) / 1000));
  const perMsg = n - 1;
  const recv = new Uint16Array(total);
  const hist = newHistogram();
  let received = 0;
  let measured = 0;
  let errors = 0;
  let errorSample = null;
  let sent = 0;
  const intervalUs = 1e6 / ratePerSec;
  const t0 = nowMicros() + 20_000;
  const warmEnd = t0 + warmupMs * 1000;
  const measureEnd = warmEnd + measureMs * 1000;

  for (let r = 0; r < n; r++) {
    clients[r].onFrame = (raw) => {
      if (raw.includes('"type":"error"')) {
        errors++;
        errorSample ??= raw.slice(0, 300);
      }
      scanMarkers(raw, (type, sender, seq, intended) => {
        if (sender === r || !DELIVERY_TYPES.has(type)) return;
        const k = seq - base;
        if (k < 0 || k >= total) return; // a straggler from an earlier run
        recv[k]++;
        received++;
        if (intended >= warmEnd && intended < measureEnd) {
          measured++;
          hist.recordValue(Math.max(1, nowMicros() - intended));
        }
      });
    };
  }

  let meter = null;
  const progress = setInterval(() => onProgress?.({ sent, total, received, expected: total * perMsg }), 250);
  await new Promise((resolve) => {
    const tick = () => {
      const now = nowMicros();
      if (meter === null && now >= warmEnd) meter = cpuMeter(pgids);
      while (sent < total) {
        const intended = t0 + Math.round(sent * intervalUs);
        if (intended > now) break;
        const s = sent % senders;
        const text = markerText(s, base + sent, intended, textSize);
        clients[s].send(`{"type":"send_room_message","clientMsgId":"b${run}-${sent}","text":"${text}"}`);
        sent++;
      }
      if (sent < total) setTimeout(tick, 1);
      else resolve();
    };
    setTimeout(tick, 20);
  });
  const sendEnd = nowMicros();
  const cpu = meter ? meter() : null;
  const expected = total * perMsg;
  const tDrain = Date.now();
  while (received < expected && Date.now() - tDrain < drainMs) await new Promise((r) => setTimeout(r, 20));
  clearInterval(progress);
  for (const c of clients) c.onFrame = null;
  let lost = 0;
  let dups = 0;
  for (let k = 0; k < total; k++) {
    if (recv[k] < perMsg) lost += perMsg - recv[k];
    else if (recv[k] > perMsg) dups += recv[k] - perMsg;
  }
  const lateSendMs = Math.max(0, (sendEnd - (t0 + total * intervalUs)) / 1000);
  return {
    sockets: n,
    senders,
    offeredMsgPerSec: ratePerSec,
    offeredDeliveriesPerSec: ratePerSec * perMsg,
    deliveredPerSec: Math.round(measured / (measureMs / 1000)),
    messages: total,
    expectedDeliveries: expected,
    lost,
    duplicates: dups,
    errors,
    errorSample,
    senderLagMs: Math.round(lateSendMs),
    latencyMs: summarize(hist),
    cpu,
  };
}
