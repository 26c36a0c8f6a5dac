// Presence status-change propagation, shared by our service (bench/scenarios/ours.mjs
// `presenceScenario`) and the bare floor (`barePresenceScenario` here): N subscribers, each its own
// inbox with one socket, watch one subject; the subject connects, then changes status `changes` times,
// 50 ms apart; each change is timed from its send to its `presence` frame at every subscriber.
import { nextFrame } from "../lib/clients.mjs";
import { newHistogram, summarize } from "../lib/hist.mjs";
import { nowMicros } from "../lib/marker.mjs";
import { cpuMeter, settle } from "../lib/procstat.mjs";
import { note, status } from "../lib/progress.mjs";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Every frame of a raw message, batches flattened. */
export function frames(raw) {
  const m = JSON.parse(raw);
  return m.type === "batch" ? m.frames : [m];
}

/** Resolves with per-subscriber latency (ms, null when missed) once every subscriber saw `want` for `subject`. */
export function propagation(subs, subject, want, sinceUs, timeoutMs = 5000) {
  return Promise.all(
    subs.map((c) =>
      nextFrame(c, (raw) => raw.includes(subject) && frames(raw).some((f) => f.type === "presence" && f.userId === subject && f.status === want), timeoutMs)
        .then(() => (nowMicros() - sinceUs) / 1000)
        .catch(() => null),
    ),
  );
}

/** Records latencies (ms) into `h` (µs); returns how many were missed. */
export function record(h, lat) {
  let missed = 0;
  for (const v of lat) v === null ? missed++ : h.recordValue(Math.max(1, Math.round(v * 1000)));
  return missed;
}

/**
 * Opens the subscribers, connects the subject, and times `cfg.changes` status changes. The adapter `a`:
 * `open(user)` opens a user's inbox socket; `subscribe(client, subject)` subscribes it and resolves once
 * acknowledged; `announcesOnline` says whether the subject's connecting reaches subscribers as
 * `online` by itself (ours) or needs an `online` change sent (the floor); `change(client, status)` sends
 * a status change.
 * Resolves with the open sockets (`subs`, `me`: the caller goes on with them and closes them) and the
 * summary (`statusChange`, with `missed`, and the server's CPU over the changes: `cpu`, and
 * `serverCpuMsPerChange`); on failure closes them and throws.
 */
export async function statusChangeRun(a, cfg, { label, subject, pgids }) {
  const subs = [];
  let me = null;
  try {
    for (let i = 0; i < cfg.subscribers; i++) {
      status(`${label}: subscribers ${i + 1}/${cfg.subscribers}`);
      const c = await a.open(`bench-sub${i}`);
      subs.push(c);
      await a.subscribe(c, subject);
    }
    // The subject comes online and every subscriber sees it before the changes are timed. Ours
    // announces a connect itself; the floor has no such announcement, so its subject says `online`
    // (unmeasured): both targets' measured changes then follow one full fan-out, not a cold first one
    // (the floor's first fan-out, its first RPC to each subscriber object, measured about 60-90 ms
    // against 20-45 ms for the next ones).
    const online = propagation(subs, subject, "online", nowMicros());
    me = await a.open(subject);
    if (!a.announcesOnline) a.change(me, "online");
    await online;

    const change = newHistogram();
    let missed = 0;
    const statuses = ["away", "dnd", "online"];
    const meter = cpuMeter(pgids);
    for (let j = 0; j < cfg.changes; j++) {
      const want = statuses[j % 3];
      status(`${label}: status change ${j + 1}/${cfg.changes}`);
      const seen = propagation(subs, subject, want, nowMicros());
      a.change(me, want);
      missed += record(change, await seen);
      if (j === 2 && missed === 3 * subs.length) throw new Error("no subscriber saw any of the first 3 status changes within 5 s");
      await sleep(50);
    }
    const cpu = meter();
    const serverCpuMsPerChange = cpu.serverCpuPct === null ? null : Math.round((cpu.serverCpuPct * cpu.wallSeconds * 100) / cfg.changes) / 10;
    return { subs, me, statusChange: { ...summarize(change), missed, cpu, serverCpuMsPerChange } };
  } catch (e) {
    me?.close();
    for (const c of subs) c.close();
    throw e;
  }
}

/**
 * The floor of the same shape: bench/bare/worker.ts `BareInbox` (one object per user, one RPC per
 * subscriber object, one frame per subscriber socket; no auth, storage or ordering).
 */
export async function barePresenceScenario(target, cfg) {
  const label = "bare presence";
  const subject = "bench-presence-subject";
  await settle(target.pgids);
  const bare = {
    open: (user) => target.inbox(user),
    async subscribe(c, to) {
      const acked = nextFrame(c, (raw) => raw.includes('"type":"ack"'));
      c.send(JSON.stringify({ type: "subscribe", to }));
      await acked;
    },
    announcesOnline: false,
    change: (c, want) => c.send(JSON.stringify({ type: "presence", status: want })),
  };
  const { subs, me, statusChange } = await statusChangeRun(bare, cfg, { label, subject, pgids: target.pgids });
  me.close();
  for (const c of subs) c.close();
  const r = { subscribers: cfg.subscribers, statusChange };
  note(`${label}: status change p50 ${statusChange.p50} · p99 ${statusChange.p99} ms · missed ${statusChange.missed} · server CPU ${statusChange.serverCpuMsPerChange} ms/change`);
  return r;
}
