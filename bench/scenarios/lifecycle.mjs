// Message-lifecycle benchmarks (issue 14), standalone: a throwaway `wrangler dev` (rate limits lifted,
// as for the other benchmarks), real WebSocket clients.
//   - fan-out p50/p99 at 100 receiving sockets of a new message, an edit and a reaction, side by side;
//   - room search p50/p99 over 100,000 stored messages.
// Run under the machine's heavy lock:  flock /tmp/edge-chat-heavy.lock node bench/scenarios/lifecycle.mjs [port]
import { api, connect, startServer } from "../../test/e2e/lib.mjs";
import { BENCH_VARS } from "../lib/targets.mjs";
import { newHistogram, summarize } from "../lib/hist.mjs";

const PORT = Number(process.argv[2] ?? 8915);
const RECEIVERS = 100;
const OPS = 200; // per kind
const RATE = 20; // ops per second
const SEARCH_MESSAGES = Number(process.env.SEARCH_MESSAGES ?? 100_000);
const SEARCHES = 300;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const nowUs = () => Number(process.hrtime.bigint() / 1000n);

async function joinRoom(server, user, room) {
  const s = await connect(server.wsUrl, user, `/api/chat/rooms/${room}/ws`);
  s.send({ type: "join_room" });
  await s.waitFor((m) => m.type === "room_state", 30_000);
  return s;
}

async function fanout(server) {
  const created = await api(server.url, "bench", "/api/chat/rooms", { method: "POST", json: { name: "Lifecycle fanout", category: "other" } });
  const room = created.body.id;
  const sender = await joinRoom(server, "sender", room);
  const receivers = [];
  for (let i = 0; i < RECEIVERS; i++) receivers.push(await joinRoom(server, `r${i}`, room));
  const sentAt = new Map();
  const hist = { message: newHistogram(), edit: newHistogram(), reaction: newHistogram() };
  const expected = { message: 0, edit: 0, reaction: 0 };
  let got = { message: 0, edit: 0, reaction: 0 };
  for (const r of receivers) {
    r.ws.addEventListener("message", (ev) => {
      const t = nowUs();
      const data = JSON.parse(ev.data);
      for (const f of data.type === "batch" ? data.frames : [data]) {
        let key = null;
        let kind = null;
        if (f.type === "message") (kind = "message"), (key = `m:${f.message.clientMsgId}`);
        else if (f.type === "message_updated") (kind = "edit"), (key = `e:${f.message.text}`);
        else if (f.type === "reaction") (kind = "reaction"), (key = `r:${f.messageId}`);
        const t0 = key && sentAt.get(key);
        if (t0) {
          hist[kind].recordValue(Math.max(1, t - t0));
          got[kind]++;
        }
      }
    });
  }
  // Targets for edits and reactions, one message each.
  const targets = [];
  for (let i = 0; i < OPS; i++) {
    sender.send({ type: "send_room_message", id: `t${i}`, clientMsgId: `target-${i}`, text: `target ${i}` });
    targets.push((await sender.waitFor((m) => m.type === "ack" && m.id === `t${i}`, 30_000)).message.id);
  }
  await sleep(1000);
  got = { message: 0, edit: 0, reaction: 0 };
  for (const kind of ["message", "edit", "reaction"]) {
    for (let i = 0; i < OPS; i++) {
      const start = Date.now();
      if (kind === "message") {
        sentAt.set(`m:bench-${i}`, nowUs());
        sender.send({ type: "send_room_message", clientMsgId: `bench-${i}`, text: `bench ${i}` });
      } else if (kind === "edit") {
        sentAt.set(`e:edited ${i}`, nowUs());
        sender.send({ type: "edit_message", messageId: targets[i], text: `edited ${i}` });
      } else {
        sentAt.set(`r:${targets[i]}`, nowUs());
        sender.send({ type: "react", messageId: targets[i], emoji: "👍", on: true });
      }
      expected[kind] += RECEIVERS;
      const wait = 1000 / RATE - (Date.now() - start);
      if (wait > 0) await sleep(wait);
    }
    const deadline = Date.now() + 20_000;
    while (got[kind] < expected[kind] && Date.now() < deadline) await sleep(50);
  }
  for (const s of [sender, ...receivers]) s.close();
  const out = {};
  for (const kind of Object.keys(hist)) out[kind] = { ...summarize(hist[kind]), lost: expected[kind] - got[kind] };
  return { receivers: RECEIVERS, opsPerKind: OPS, ratePerSec: RATE, latencyMs: out };
}

const WORDS = Array.from({ length: 3000 }, (_, i) => `w${i.toString(36)}x`);
function rng(seed) {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

async function search(server) {
  const created = await api(server.url, "bench", "/api/chat/rooms", { method: "POST", json: { name: "Lifecycle search", category: "other" } });
  const room = created.body.id;
  const rand = rng(42);
  // Zipf-ish word choice: a few words are common, most are rare.
  const word = () => WORDS[Math.floor(WORDS.length * rand() ** 3)];
  const SENDERS = 4;
  const senders = [];
  for (let i = 0; i < SENDERS; i++) senders.push(await joinRoom(server, `seed${i}`, room));
  const t0 = Date.now();
  const per = Math.ceil(SEARCH_MESSAGES / SENDERS);
  await Promise.all(
    senders.map(async (s, k) => {
      const WINDOW = 500;
      for (let i = 0; i < per; i += WINDOW) {
        const ids = [];
        for (let j = i; j < Math.min(per, i + WINDOW); j++) {
          const id = `${k}-${j}`;
          ids.push(id);
          s.send({ type: "send_room_message", id, clientMsgId: id, text: Array.from({ length: 8 }, word).join(" ") });
        }
        await s.waitFor((m) => m.type === "ack" && m.id === ids[ids.length - 1], 120_000);
        s.frames.length = 0;
      }
    }),
  );
  const seedSeconds = (Date.now() - t0) / 1000;
  for (const s of senders) s.close();
  const h1 = newHistogram();
  const h2 = newHistogram();
  let hits = 0;
  for (let i = 0; i < SEARCHES; i++) {
    const two = i % 2 === 1;
    const q = two ? `${word()} ${word()}` : word();
    const t = nowUs();
    const res = await api(server.url, `searcher${i % 50}`, `/api/chat/rooms/${room}/search?q=${encodeURIComponent(q)}&limit=20`);
    (two ? h2 : h1).recordValue(Math.max(1, nowUs() - t));
    if (res.status !== 200) throw new Error(`search ${res.status}: ${JSON.stringify(res.body)}`);
    hits += res.body.messages.length;
  }
  return { messages: SEARCH_MESSAGES, seedSeconds, searches: SEARCHES, avgHits: hits / SEARCHES, oneWordMs: summarize(h1), twoWordsMs: summarize(h2) };
}

const server = await startServer(PORT, { vars: { ...BENCH_VARS, RATE_BURST: "1000000" } });
try {
  const f = await fanout(server);
  console.log(JSON.stringify({ fanout: f }, null, 2));
  const s = await search(server);
  console.log(JSON.stringify({ search: s }, null, 2));
} finally {
  await server.stop();
}
