// Room scenarios run against every target: idle memory per connection, fixed-rate broadcast
// latency, and a sweep of offered load for the highest sustained deliveries per second.
import { openMany } from "../lib/clients.mjs";
import { roomRun } from "../lib/loadgen.mjs";
import { cpuMeter, groupRssBytes, settle } from "../lib/procstat.mjs";
import { note, status } from "../lib/progress.mjs";
import { TARGETS_SPEC } from "../lib/config.mjs";

const rss = (pgids) => {
  const v = pgids.map(groupRssBytes);
  return v.some((x) => x === null) ? null : v.reduce((a, b) => a + b, 0);
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const closeAll = async (clients) => {
  for (const c of clients) c.close();
  await sleep(200);
};

async function connect(target, label, count, room, offset = 0) {
  status(`${label}: waiting for the server to go quiet`);
  await settle(target.pgids);
  return openMany(count, (i) => target.room(offset + i, room), {
    onProgress: (done, n) => status(`${label}: connecting ${done}/${n}`),
  });
}

const progressFn = (label) => (p) =>
  status(`${label}: sent ${p.sent}/${p.total} · delivered ${p.received}/${p.expected}`);

/** RSS growth of the server per idle connection (connections held open, no traffic, then measured). */
export async function memoryScenario(target, name, cfg) {
  const label = `${name} memory`;
  // A warm set first, so the baseline already includes the object, its code and the runtime's first-use growth.
  const first = await connect(target, label, Math.max(1, Math.round(cfg.sockets / 5)), cfg.room, 4000);
  await sleep(Math.min(3000, cfg.idleMs));
  await target.gc?.();
  const before = rss(target.pgids);
  const heapBefore = await target.heap?.();
  const tc = Date.now();
  // The server's CPU over the connect-and-join storm: less sensitive than its wall time to other
  // load on the machine (the load generator shares its cores).
  const meter = cpuMeter(target.pgids);
  const clients = await connect(target, label, cfg.sockets, cfg.room, 5001);
  const connectSeconds = (Date.now() - tc) / 1000;
  const cpu = meter();
  const connectCpuSeconds = cpu.serverCpuPct === null ? null : (cpu.serverCpuPct / 100) * cpu.wallSeconds;
  await target.gc?.();
  const connected = rss(target.pgids);
  const t0 = Date.now();
  while (Date.now() - t0 < cfg.idleMs) {
    status(`${label}: ${cfg.sockets} idle sockets, ${Math.round((cfg.idleMs - (Date.now() - t0)) / 1000)} s left`);
    await sleep(250);
  }
  await target.gc?.();
  const after = rss(target.pgids);
  const heapAfter = await target.heap?.();
  await closeAll([...first, ...clients]);
  const per = (x) => (before === null || x === null ? null : Math.round((x - before) / cfg.sockets));
  const perConn = per(after);
  const heapPer = heapBefore && heapAfter ? { used: (heapAfter.usedSize - heapBefore.usedSize) / cfg.sockets, total: (heapAfter.totalSize - heapBefore.totalSize) / cfg.sockets } : null;
  if (heapPer) note(`${label}: isolate heap per socket ${(heapPer.used / 1024).toFixed(1)} KiB used, ${(heapPer.total / 1024).toFixed(1)} KiB committed`);
  note(`${label}: ${perConn === null ? "n/a" : `${(perConn / 1024).toFixed(1)} KiB`} per idle connection (${cfg.sockets} sockets; ${(per(connected) / 1024).toFixed(1)} KiB just after connecting; ${connectSeconds.toFixed(1)} s to connect and join, ${connectCpuSeconds?.toFixed(1) ?? "n/a"} s of server CPU)`);
  return {
    sockets: cfg.sockets,
    idleMs: cfg.idleMs,
    connectSeconds,
    connectCpuSeconds,
    rssBeforeBytes: before,
    rssConnectedBytes: connected,
    rssAfterBytes: after,
    bytesPerConnectionConnected: per(connected),
    bytesPerConnection: perConn,
    // The workers isolate's V8 heap growth per socket (no collection forced: workerd's inspector
    // has none that leaves RSS alone), to tell JS memory from the runtime's own.
    heapUsedBytesPerConnection: heapPer ? Math.round(heapPer.used) : null,
    heapCommittedBytesPerConnection: heapPer ? Math.round(heapPer.total) : null,
  };
}

/** Broadcast latency at the fixed loads of the issue. */
export async function fixedScenario(target, name, c, profile) {
  const label = `${name} ${c.name}`;
  const tc = Date.now();
  const clients = await connect(target, label, c.sockets, c.room);
  const connectSeconds = (Date.now() - tc) / 1000;
  try {
    const r = await roomRun({
      clients,
      senders: Math.min(profile.senders, c.sockets),
      ratePerSec: c.ratePerSec,
      warmupMs: profile.warmupMs,
      measureMs: profile.measureMs,
      pgids: target.pgids,
      onProgress: progressFn(label),
    });
    note(`${label}: p50 ${r.latencyMs.p50} · p99 ${r.latencyMs.p99} · max ${r.latencyMs.max} ms · lost ${r.lost}`);
    return { case: c.name, connectSeconds, ...r };
  } finally {
    await closeAll(clients);
  }
}

/** Steps the offered load up until p99 passes the limit or a delivery is lost. */
export async function sweepScenario(target, name, cfg, profile) {
  const label = `${name} sweep`;
  const clients = await connect(target, label, cfg.sockets, cfg.room);
  const points = [];
  try {
    // Discarded warm-up at the first level: the room's first messages pay for JIT and storage setup.
    await roomRun({ clients, senders: Math.min(profile.senders, cfg.sockets), ratePerSec: cfg.levels[0], warmupMs: 0, measureMs: cfg.warmupMs, pgids: [], onProgress: progressFn(`${label} warm-up`) });
    for (const rate of cfg.levels) {
      await settle(target.pgids, { timeoutMs: 5000 });
      const r = await roomRun({
        clients,
        senders: Math.min(profile.senders, cfg.sockets),
        ratePerSec: rate,
        warmupMs: cfg.warmupMs,
        measureMs: cfg.measureMs,
        pgids: target.pgids,
        onProgress: progressFn(`${label} ${rate * (cfg.sockets - 1)}/s offered`),
      });
      const pass = r.lost === 0 && r.errors === 0 && r.latencyMs.p99 !== null && r.latencyMs.p99 < TARGETS_SPEC.sustainedP99Ms;
      points.push({ ...r, pass });
      note(`${label}: offered ${r.offeredDeliveriesPerSec}/s → delivered ${r.deliveredPerSec}/s · p99 ${r.latencyMs.p99} ms · lost ${r.lost} ${pass ? "ok" : "✗"}`);
      if (!pass) break;
    }
  } finally {
    await closeAll(clients);
  }
  // The failing level leaves the target working through its backlog for a while (locally every
  // object shares one workerd thread): the next scenario must not be charged for it, nor time out
  // opening its sockets behind it.
  status(`${label}: waiting for the overload to drain`);
  const drainMs = await settle(target.pgids, { timeoutMs: 120_000 });
  note(`${label}: target quiet again after ${(drainMs / 1000).toFixed(1)} s`);
  const passing = points.filter((p) => p.pass);
  return {
    sockets: cfg.sockets,
    drainSeconds: drainMs / 1000,
    points,
    maxSustainedDeliveriesPerSec: passing.length ? Math.max(...passing.map((p) => p.deliveredPerSec)) : 0,
    limitedByLevels: passing.length === points.length,
  };
}
