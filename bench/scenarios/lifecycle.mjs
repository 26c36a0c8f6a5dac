// Message-lifecycle benchmarks (issue 14), a scenario of `npm run bench` (target `ours`, the run's own
// `wrangler dev`), real WebSocket clients:
//   - fan-out p50/p99 to N receiving sockets of a new message, an edit and a reaction, side by side;
//   - room search p50/p99 over a room of M stored messages (100,000 in the full run).
// Sizes: `lifecycle` in bench/lib/config.mjs (full and smoke). Also runnable alone, on a throwaway
// `wrangler dev` (rate limits lifted as for the other benchmarks):
//   flock /tmp/edge-chat-heavy.lock node bench/scenarios/lifecycle.mjs [port] [--smoke]
import { pathToFileURL } from "node:url";
import { api, connect, startServer } from "../../test/e2e/lib.mjs";
import { PROFILES } from "../lib/config.mjs";
import { BENCH_VARS } from "../lib/targets.mjs";
import { newHistogram, summarize } from "../lib/hist.mjs";
import { settle } from "../lib/procstat.mjs";
import { note, status } from "../lib/progress.mjs";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const nowUs = () => Number(process.hrtime.bigint() / 1000n);

async function joinRoom(target, user, room) {
  const s = await connect(target.wsUrl, user, `/api/chat/rooms/${room}/ws`);
  s.send({ type: "join_room" });
  await s.waitFor((m) => m.type === "room_state", 30_000);
  return s;
}

async function createRoom(target, name) {
  const created = await api(target.url, "bench-lc-owner", "/api/chat/rooms", { method: "POST", json: { name, category: "other" } });
  if (created.status !== 201 && created.status !== 200) throw new Error(`create room ${created.status}: ${JSON.stringify(created.body).slice(0, 300)}`);
  return created.body.id;
}

/** One sender; `receivers` joined sockets; `ops` new messages, then `ops` edits, then `ops` reactions at `ratePerSec`. */
async function fanout(target, cfg) {
  const label = "ours lifecycle fan-out";
  const room = await createRoom(target, "Lifecycle fanout");
  const sender = await joinRoom(target, "bench-lc-sender", room);
  const receivers = [];
  try {
    for (let i = 0; i < cfg.receivers; i++) {
      status(`${label}: receivers ${i + 1}/${cfg.receivers}`);
      receivers.push(await joinRoom(target, `bench-lc-r${i}`, room));
    }
    const sentAt = new Map();
    const hist = { message: newHistogram(), edit: newHistogram(), reaction: newHistogram() };
    const expected = { message: 0, edit: 0, reaction: 0 };
    let got = { message: 0, edit: 0, reaction: 0 };
    for (const r of receivers) {
      r.frames.length = 0;
      r.ws.addEventListener("message", (ev) => {
        const t = nowUs();
        r.frames.length = 0; // the e2e client keeps every frame; this one only times them
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
    // The messages the edits and reactions are about, one each.
    const targets = [];
    for (let i = 0; i < cfg.ops; i++) {
      status(`${label}: target messages ${i + 1}/${cfg.ops}`);
      sender.send({ type: "send_room_message", id: `t${i}`, clientMsgId: `target-${i}`, text: `target ${i}` });
      targets.push((await sender.waitFor((m) => m.type === "ack" && m.id === `t${i}`, 30_000)).message.id);
    }
    await sleep(1000);
    got = { message: 0, edit: 0, reaction: 0 };
    for (const kind of ["message", "edit", "reaction"]) {
      for (let i = 0; i < cfg.ops; i++) {
        status(`${label}: ${kind} ${i + 1}/${cfg.ops}`);
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
        expected[kind] += cfg.receivers;
        const wait = 1000 / cfg.ratePerSec - (Date.now() - start);
        if (wait > 0) await sleep(wait);
      }
      const deadline = Date.now() + 20_000;
      while (got[kind] < expected[kind] && Date.now() < deadline) await sleep(50);
    }
    const errors = sender.frames.filter((f) => f.type === "error");
    if (errors.length) throw new Error(`${errors.length} operation(s) refused, first: ${JSON.stringify(errors[0]).slice(0, 300)}`);
    const latencyMs = {};
    for (const kind of Object.keys(hist)) latencyMs[kind] = { ...summarize(hist[kind]), lost: expected[kind] - got[kind] };
    return { receivers: cfg.receivers, opsPerKind: cfg.ops, ratePerSec: cfg.ratePerSec, latencyMs };
  } finally {
    for (const s of [sender, ...receivers]) s.close();
  }
}

const WORDS = Array.from({ length: 3000 }, (_, i) => `w${i.toString(36)}x`);
function rng(seed) {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

/** Stores `searchMessages` messages of 8 words (skewed vocabulary) in a new room, then times `searches` searches over HTTP. */
async function search(target, cfg) {
  const label = "ours lifecycle search";
  const room = await createRoom(target, "Lifecycle search");
  const rand = rng(42);
  // Zipf-ish word choice: a few words are common, most are rare.
  const word = () => WORDS[Math.floor(WORDS.length * rand() ** 3)];
  const SENDERS = 4;
  const senders = [];
  for (let i = 0; i < SENDERS; i++) senders.push(await joinRoom(target, `bench-lc-seed${i}`, room));
  const t0 = Date.now();
  const per = Math.ceil(cfg.searchMessages / SENDERS);
  let stored = 0;
  try {
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
          const err = s.frames.find((f) => f.type === "error");
          if (err) throw new Error(`search fill: ${JSON.stringify(err).slice(0, 300)}`);
          s.frames.length = 0;
          stored += ids.length;
          status(`${label}: storing ${stored}/${SENDERS * per} messages`);
        }
      }),
    );
  } finally {
    for (const s of senders) s.close();
  }
  const seedSeconds = (Date.now() - t0) / 1000;
  const all = newHistogram();
  const h1 = newHistogram();
  const h2 = newHistogram();
  let hits = 0;
  // The search route's limit is per user (RL_SEARCH, 60 a minute): spread the searches over 50 users.
  // Warm-up (discarded), as for history: each searcher's first request provisions the user, and the
  // first searches warm the room's object.
  const SEARCHERS = 50;
  for (let i = 0; i < SEARCHERS; i++) await api(target.url, `bench-lc-searcher${i}`, "/api/me");
  for (let i = 0; i < 5; i++) await api(target.url, "bench-lc-warm", `/api/chat/rooms/${room}/search?q=${encodeURIComponent(word())}&limit=20`);
  for (let i = 0; i < cfg.searches; i++) {
    status(`${label}: ${i + 1}/${cfg.searches} searches`);
    const two = i % 2 === 1;
    const q = two ? `${word()} ${word()}` : word();
    const t = nowUs();
    const res = await api(target.url, `bench-lc-searcher${i % SEARCHERS}`, `/api/chat/rooms/${room}/search?q=${encodeURIComponent(q)}&limit=20`);
    const us = Math.max(1, nowUs() - t);
    all.recordValue(us);
    (two ? h2 : h1).recordValue(us);
    if (res.status !== 200) throw new Error(`search ${res.status}: ${JSON.stringify(res.body).slice(0, 300)}`);
    hits += res.body.messages.length;
  }
  return {
    storedMessages: SENDERS * per,
    fillMsgPerSec: Math.round((SENDERS * per) / seedSeconds),
    searches: cfg.searches,
    pageSize: 20,
    avgHits: hits / cfg.searches,
    latencyMs: summarize(all),
    oneWordMs: summarize(h1),
    twoWordsMs: summarize(h2),
  };
}

/** The scenario: fan-out of message/edit/reaction, then search over a large room. */
export async function lifecycleScenario(target, cfg) {
  if (target.pgids) await settle(target.pgids);
  const f = await fanout(target, cfg);
  const l = f.latencyMs;
  note(`ours lifecycle: → ${f.receivers} sockets p99 message ${l.message.p99} · edit ${l.edit.p99} · reaction ${l.reaction.p99} ms · lost ${l.message.lost}/${l.edit.lost}/${l.reaction.lost}`);
  if (target.pgids) await settle(target.pgids);
  const s = await search(target, cfg);
  note(`ours lifecycle: search over ${s.storedMessages} stored (${s.fillMsgPerSec} msg/s fill) p50 ${s.latencyMs.p50} · p99 ${s.latencyMs.p99} ms`);
  return { fanout: f, search: s };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const port = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 8915);
  const cfg = PROFILES[process.argv.includes("--smoke") ? "smoke" : "full"].lifecycle;
  const server = await startServer(port, { vars: BENCH_VARS });
  try {
    console.log(JSON.stringify(await lifecycleScenario(server, cfg), null, 2));
  } finally {
    await server.stop();
  }
}
