// CPU profile of our service while it takes a join storm and a room broadcast: starts `wrangler dev`
// as the benchmark does, attaches to the workers isolate through the inspector `wrangler dev` opens
// (127.0.0.1:9229), and prints where the isolate's time goes (self and inclusive, by function), with
// the phase timings (open the socket, join). Run it under the heavy lock:
//   flock /tmp/edge-chat-heavy.lock node bench/profile.mjs [--sockets 1000] [--rate 10] [--seconds 8] [--out /tmp/p]
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { openMany } from "./lib/clients.mjs";
import { roomRun } from "./lib/loadgen.mjs";
import { groupRssBytes, settle } from "./lib/procstat.mjs";
import { cdp } from "./lib/inspector.mjs";
import { TARGETS } from "./lib/targets.mjs";
import { presenceScenario } from "./scenarios/ours.mjs";

const { values: args } = parseArgs({
  options: {
    sockets: { type: "string", default: "1000" },
    rate: { type: "string", default: "10" },
    seconds: { type: "string", default: "8" },
    out: { type: "string" },
    inspector: { type: "string", default: "http://127.0.0.1:9241" },
    target: { type: "string", default: "ours" },
    top: { type: "string", default: "25" },
    presence: { type: "boolean", default: false },
    /** Timings and memory only, no CPU profile (the profiler slows the isolate down several times). */
    "no-cpu": { type: "boolean", default: false },
  },
});
const N = Number(args.sockets);
const TOP = Number(args.top);

/** Self and inclusive time per function of a V8 CPU profile. */
function summarize(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const total = profile.endTime - profile.startTime; // µs
  const samples = profile.samples.length || 1;
  const perSample = total / samples;
  const key = (n) => {
    const f = n.callFrame;
    const file = (f.url || "").split("/").slice(-1)[0];
    return `${f.functionName || "(anonymous)"} ${file}:${f.lineNumber + 1}`;
  };
  const self = new Map();
  const incl = new Map();
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const hits = new Map();
  for (const s of profile.samples) hits.set(s, (hits.get(s) ?? 0) + 1);
  for (const [id, h] of hits) {
    const n = byId.get(id);
    self.set(key(n), (self.get(key(n)) ?? 0) + h);
    // Inclusive: every distinct function on the stack once.
    const seen = new Set();
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const k = key(byId.get(cur));
      if (seen.has(k)) continue;
      seen.add(k);
      incl.set(k, (incl.get(k) ?? 0) + h);
    }
  }
  const fmt = (m) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, TOP)
      .map(([k, h]) => `  ${((h * perSample) / 1000).toFixed(0).padStart(7)} ms ${((100 * h) / samples).toFixed(1).padStart(5)}%  ${k}`)
      .join("\n");
  return `wall ${(total / 1e6).toFixed(1)} s, ${samples} samples\n self:\n${fmt(self)}\n inclusive:\n${fmt(incl)}`;
}

const target = await TARGETS[args.target].start();
const rss = () => target.pgids.map(groupRssBytes).reduce((a, b) => a + b, 0);
let inspector = null;
try {
  await settle(target.pgids);
  inspector = await cdp(args.inspector);
  await inspector.call("Profiler.enable");
  await inspector.call("Profiler.setSamplingInterval", { interval: 200 });

  // Warm set, as the memory scenario.
  const warm = await openMany(Math.round(N / 5), (i) => target.room(4000 + i, "running"));
  await settle(target.pgids);
  // The inspector takes one client at a time: heap readings go through this one (no forced GC).
  const heap = () => inspector.call("Runtime.getHeapUsage");
  await inspector.call("Runtime.enable").catch(() => {});
  const heap0 = await heap();
  const rss0 = rss();
  const cpuProfile = !args["no-cpu"];
  if (cpuProfile) await inspector.call("Profiler.start");
  const t0 = Date.now();
  const clients = await openMany(N, (i) => target.room(5001 + i, "running"));
  const joinSeconds = (Date.now() - t0) / 1000;
  const joinProfile = cpuProfile ? (await inspector.call("Profiler.stop")).profile : null;
  await settle(target.pgids);
  const rss1 = rss();
  const heap1 = await heap();
  const perSocket = (a, b) => `${((b - a) / N / 1024).toFixed(1)} KiB`;
  console.log(`\n== ${N} sockets connect and join: ${joinSeconds.toFixed(1)} s; RSS +${((rss1 - rss0) / N / 1024).toFixed(1)} KiB per socket; JS heap used +${perSocket(heap0.usedSize, heap1.usedSize)}, committed +${perSocket(heap0.totalSize, heap1.totalSize)} per socket`);
  if (joinProfile) console.log(summarize(joinProfile));
  if (joinProfile && args.out) writeFileSync(`${args.out}-join.cpuprofile`, JSON.stringify(joinProfile));

  if (Number(args.seconds) > 0) {
    await inspector.call("Profiler.start");
    const r = await roomRun({ clients, senders: 10, ratePerSec: Number(args.rate), warmupMs: 1000, measureMs: Number(args.seconds) * 1000 });
    const { profile: sendProfile } = await inspector.call("Profiler.stop");
    console.log(`\n== broadcast ${N} × ${args.rate} msg/s: p50 ${r.latencyMs.p50} p99 ${r.latencyMs.p99} ms, lost ${r.lost}`);
    console.log(summarize(sendProfile));
    if (args.out) writeFileSync(`${args.out}-send.cpuprofile`, JSON.stringify(sendProfile));
  }
  for (const c of [...warm, ...clients]) c.close();

  if (args.presence) {
    await settle(target.pgids);
    await inspector.call("Profiler.start");
    const r = await presenceScenario(target, { subscribers: 100, changes: 30, cleanDisconnects: 0, uncleanDisconnects: 0 });
    const { profile } = await inspector.call("Profiler.stop");
    console.log(`\n== presence: status change p50 ${r.statusChange.p50} p99 ${r.statusChange.p99} ms`);
    console.log(summarize(profile));
    if (args.out) writeFileSync(`${args.out}-presence.cpuprofile`, JSON.stringify(profile));
  }
} finally {
  inspector?.close();
  await target.stop();
}
