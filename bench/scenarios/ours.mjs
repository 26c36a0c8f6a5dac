// Scenarios only our service has: DM latency under room load, presence propagation, room history
// REST latency over a large log. Each runs against the same `wrangler dev` as the room scenarios.
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { token } from "../../test/e2e/lib.mjs";
import { nextFrame, openMany, openSocket } from "../lib/clients.mjs";
import { KEEPALIVE } from "../lib/targets.mjs";
import { newHistogram, summarize } from "../lib/hist.mjs";
import { roomRun } from "../lib/loadgen.mjs";
import { markerText, nowMicros, scanMarkers } from "../lib/marker.mjs";
import { cpuMeter, settle } from "../lib/procstat.mjs";
import { note, status } from "../lib/progress.mjs";
import { frames, propagation as propagationTo, record, statusChangeRun } from "./presence.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function inbox(target, user) {
  return openSocket(`${target.wsUrl}/api/chat/ws`, { protocols: ["edge-chat", `bearer.${await token(user)}`], keepalive: KEEPALIVE });
}

/** Sends `frame` and waits for its `ack` (or throws with the `error`). */
async function request(client, frame, timeoutMs = 10_000) {
  const id = `r${Math.random().toString(36).slice(2, 10)}`;
  const done = nextFrame(client, (raw) => raw.includes(`"id":"${id}"`), timeoutMs);
  client.send(JSON.stringify({ ...frame, id }));
  const f = frames(await done).find((x) => x.id === id);
  if (f?.type !== "ack") throw new Error(`${frame.type} answered ${JSON.stringify(f).slice(0, 300)}`);
  return f;
}

async function apiJson(target, user, p, init = {}) {
  const res = await fetch(`${target.url}${p}`, {
    ...init,
    headers: { Authorization: `Bearer ${await token(user)}`, "Content-Type": "application/json", ...(init.headers ?? {}) },
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${init.method ?? "GET"} ${p} → ${res.status} ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

/** DM delivery latency (send_dm → recipient's `dm` frame) while a room carries background load. */
export async function dmScenario(target, cfg, profile) {
  const label = "ours DM";
  const a = [];
  const b = [];
  await settle(target.pgids);
  try {
    for (let i = 0; i < cfg.pairs; i++) {
      status(`${label}: opening inboxes ${i + 1}/${cfg.pairs}`);
      // Both users exist once they have authenticated (the auth middleware provisions them).
      a.push(await inbox(target, `bench-dm-a${i}`));
      b.push(await inbox(target, `bench-dm-b${i}`));
      await apiJson(target, `bench-dm-a${i}`, "/api/chat/dms", { method: "POST", body: JSON.stringify({ userId: `bench-dm-b${i}` }) });
    }
    const bg = cfg.background;
    const room = await openMany(bg.sockets, (i) => target.room(7000 + i, bg.room), {
      onProgress: (d, n) => status(`${label}: background room sockets ${d}/${n}`),
    });
    const total = Math.round((cfg.ratePerSec * (profile.warmupMs + profile.measureMs)) / 1000);
    const hist = newHistogram();
    const got = new Uint8Array(total);
    let received = 0;
    const t0 = nowMicros() + 50_000;
    const warmEnd = t0 + profile.warmupMs * 1000;
    b.forEach((c, i) => {
      c.onFrame = (raw) =>
        scanMarkers(raw, (type, sender, seq, intended) => {
          if (type !== "dm" || sender !== i || seq >= total || got[seq]) return;
          got[seq] = 1;
          received++;
          if (intended >= warmEnd) hist.recordValue(Math.max(1, nowMicros() - intended));
        });
    });
    const interval = 1e6 / cfg.ratePerSec;
    let sent = 0;
    let meter = null;
    const dmLoad = new Promise((resolve) => {
      const tick = () => {
        const now = nowMicros();
        if (!meter && now >= warmEnd) meter = cpuMeter(target.pgids);
        while (sent < total && t0 + sent * interval <= now) {
          const i = sent % cfg.pairs;
          const intended = Math.round(t0 + sent * interval);
          a[i].send(`{"type":"send_dm","to":"bench-dm-b${i}","clientMsgId":"dm-${sent}","text":"${markerText(i, sent, intended)}"}`);
          sent++;
        }
        status(`${label}: sent ${sent}/${total} · delivered ${received}`);
        if (sent < total) setTimeout(tick, 1);
        else resolve();
      };
      tick();
    });
    const [bgResult] = await Promise.all([
      roomRun({ clients: room, senders: Math.min(profile.senders, bg.sockets), ratePerSec: bg.ratePerSec, warmupMs: profile.warmupMs, measureMs: profile.measureMs }),
      dmLoad,
    ]);
    const cpu = meter?.();
    const tDrain = Date.now();
    while (received < total && Date.now() - tDrain < 3000) await sleep(20);
    for (const c of room) c.close();
    const r = { pairs: cfg.pairs, ratePerSec: cfg.ratePerSec, messages: total, lost: total - received, latencyMs: summarize(hist), cpu, background: { sockets: bg.sockets, ratePerSec: bg.ratePerSec, latencyMs: bgResult.latencyMs, lost: bgResult.lost } };
    note(`${label}: p50 ${r.latencyMs.p50} · p99 ${r.latencyMs.p99} ms · lost ${r.lost} (room background p99 ${bgResult.latencyMs.p99} ms)`);
    return r;
  } finally {
    for (const c of [...a, ...b]) c.close();
  }
}

/** Time from a status change (or a disconnect) of one user to its `presence` frame at every subscriber. */
export async function presenceScenario(target, cfg) {
  const label = "ours presence";
  const subject = "bench-presence-subject";
  let subs = [];
  let me = null;
  await settle(target.pgids);
  try {
    // Only known users can be subscribed to (unknown ids read as offline and record nothing):
    // the subject authenticates once first, which provisions it.
    await apiJson(target, subject, "/api/me");
    const ours = {
      open: (user) => inbox(target, user),
      subscribe: (c, s) => request(c, { type: "subscribe_presence", userIds: [s] }),
      announcesOnline: true,
      change: (c, want) => c.send(JSON.stringify({ type: "presence", status: want })),
    };
    const run = await statusChangeRun(ours, cfg, { label, subject, pgids: target.pgids });
    ({ subs, me } = run);
    const propagation = (want, sinceUs, timeoutMs) => propagationTo(subs, subject, want, sinceUs, timeoutMs);

    const clean = newHistogram();
    let cleanMissed = 0;
    for (let j = 0; j < cfg.cleanDisconnects; j++) {
      status(`${label}: clean disconnect ${j + 1}/${cfg.cleanDisconnects}`);
      const seen = propagation("offline", nowMicros());
      me.close();
      cleanMissed += record(clean, await seen);
      const back = propagation("online", nowMicros());
      me = await inbox(target, subject);
      await back;
    }
    me.close();
    await propagation("offline", nowMicros());
    me = null;

    const unclean = newHistogram();
    let uncleanMissed = 0;
    for (let j = 0; j < cfg.uncleanDisconnects; j++) {
      status(`${label}: unclean disconnect ${j + 1}/${cfg.uncleanDisconnects}`);
      const back = propagation("online", nowMicros());
      const child = spawn(process.execPath, [path.join(HERE, "../peers/inbox-holder.mjs"), `${target.wsUrl}/api/chat/ws`, await token(subject)], { stdio: ["ignore", "pipe", "inherit"] });
      await new Promise((resolve, reject) => {
        child.stdout.on("data", (d) => (String(d).includes("open") ? resolve() : reject(new Error(`inbox holder: ${d}`))));
        child.on("exit", (code) => reject(new Error(`inbox holder exited with ${code}`)));
      }).catch((e) => {
        child.kill("SIGKILL");
        throw e;
      });
      await back;
      const seen = propagation("offline", nowMicros(), 10_000);
      child.kill("SIGKILL");
      uncleanMissed += record(unclean, await seen);
    }
    const r = {
      subscribers: cfg.subscribers,
      statusChange: run.statusChange,
      cleanDisconnect: { ...summarize(clean), missed: cleanMissed },
      uncleanDisconnect: { ...summarize(unclean), missed: uncleanMissed },
    };
    note(`${label}: status change p99 ${r.statusChange.p99} ms · clean disconnect p99 ${r.cleanDisconnect.p99} ms · unclean p99 ${r.uncleanDisconnect.p99} ms`);
    return r;
  } finally {
    me?.close();
    for (const c of subs) c.close();
  }
}

/** Fills a room's log with `messages` messages, then measures `GET …/messages` pages at random depths. */
export async function historyScenario(target, cfg) {
  const label = "ours history";
  await settle(target.pgids);
  const writers = await openMany(4, (i) => target.room(9000 + i, cfg.room));
  let acked = 0;
  let queued = 0;
  const t0 = Date.now();
  try {
    await new Promise((resolve, reject) => {
      const WINDOW = 64;
      const pump = (c, w) => {
        while (c.inflight < WINDOW && queued < cfg.messages) {
          c.inflight++;
          c.send(`{"type":"send_room_message","clientMsgId":"h${w}-${queued}","text":"history filler message number ${queued}"}`);
          queued++;
        }
      };
      writers.forEach((c, w) => {
        c.inflight = 0;
        c.onFrame = (raw) => {
          let i = raw.indexOf('"type":"ack"');
          while (i !== -1) {
            c.inflight--;
            acked++;
            i = raw.indexOf('"type":"ack"', i + 1);
          }
          if (raw.includes('"type":"error"')) reject(new Error(`history fill: ${raw.slice(0, 300)}`));
          status(`${label}: storing ${acked}/${cfg.messages} messages`);
          if (acked >= cfg.messages) resolve();
          else pump(c, w);
        };
        pump(c, w);
      });
    });
  } finally {
    for (const c of writers) c.close();
  }
  const fillSeconds = (Date.now() - t0) / 1000;
  const auth = { Authorization: `Bearer ${await token("bench-reader")}` };
  const hist = newHistogram();
  let done = 0;
  let failures = 0;
  let failureSample = null;
  // Warm-up (discarded): the reader's first request provisions the user, the first pages warm the DO.
  for (let i = 0; i < 20; i++) await (await fetch(`${target.url}/api/chat/rooms/${cfg.room}/messages?limit=${cfg.pageSize}`, { headers: auth })).text();
  const meter = cpuMeter(target.pgids);
  const worker = async () => {
    while (done < cfg.requests) {
      done++;
      const before = Math.floor(Math.random() * cfg.messages) + 1;
      const q = done % 10 === 0 ? `limit=${cfg.pageSize}` : `before=${before}&limit=${cfg.pageSize}`;
      const t = performance.now();
      const res = await fetch(`${target.url}/api/chat/rooms/${cfg.room}/messages?${q}`, { headers: auth });
      const body = await res.text();
      hist.recordValue(Math.max(1, Math.round((performance.now() - t) * 1000)));
      if (!res.ok) {
        failures++;
        failureSample ??= `${res.status} ${body.slice(0, 200)}`;
      }
      status(`${label}: ${done}/${cfg.requests} history pages`);
    }
  };
  await Promise.all(Array.from({ length: cfg.concurrency }, worker));
  const r = { storedMessages: cfg.messages, fillMsgPerSec: Math.round(cfg.messages / fillSeconds), requests: cfg.requests, concurrency: cfg.concurrency, pageSize: cfg.pageSize, failures, failureSample, latencyMs: summarize(hist), cpu: meter() };
  note(`${label}: ${cfg.messages} stored (${r.fillMsgPerSec} msg/s) · GET page p50 ${r.latencyMs.p50} · p99 ${r.latencyMs.p99} ms · failures ${failures}`);
  return r;
}
