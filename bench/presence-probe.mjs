// Presence fan-out probe: 100 subscribers, N status changes; wall latency and the server's CPU per
// change (steadier than latency when the machine is shared). STRACE=1 also counts the server's system
// calls into /tmp/presence-probe-strace.txt (fsync, pwrite64: the storage writes). Under the heavy lock:
//   flock /tmp/edge-chat-heavy.lock node bench/presence-probe.mjs [changes]
import { spawn, execSync } from "node:child_process";
import { TARGETS, KEEPALIVE } from "./lib/targets.mjs";
import { token } from "../test/e2e/lib.mjs";
import { nextFrame, openSocket } from "./lib/clients.mjs";
import { settle, cpuMeter } from "./lib/procstat.mjs";
const changes = Number(process.argv[2] ?? 30);
const SUBS = 100;
const target = await TARGETS.ours.start();
const inbox = async (u) => openSocket(`${target.wsUrl}/api/chat/ws`, { protocols: ["edge-chat", `bearer.${await token(u)}`], keepalive: KEEPALIVE });
try {
  await settle(target.pgids);
  const subject = "probe-subject";
  await fetch(`${target.url}/api/me`, { headers: { Authorization: `Bearer ${await token(subject)}` } });
  const subs = [];
  for (let i = 0; i < SUBS; i++) {
    const c = await inbox(`probe-sub${i}`);
    const done = nextFrame(c, (raw) => raw.includes('"id":"s"') && raw.includes("ack"));
    c.send(JSON.stringify({ type: "subscribe_presence", id: "s", userIds: [subject] }));
    await done;
    subs.push(c);
  }
  const me = await inbox(subject);
  await new Promise((r) => setTimeout(r, 1000));
  await settle(target.pgids, { timeoutMs: 5000 });
  const pids = execSync(`pgrep -g ${target.pgids[0]} workerd`).toString().trim().split("\n");
  const st = process.env.STRACE ? spawn("strace", ["-c", "-f", "-o", "/tmp/presence-probe-strace.txt", ...pids.flatMap((p) => ["-p", p])], { stdio: "inherit" }) : null;
  if (st) await new Promise((r) => setTimeout(r, 1000));
  const meter = cpuMeter(target.pgids);
  const lat = [];
  const statuses = ["away", "dnd", "online"];
  for (let j = 0; j < changes; j++) {
    const want = statuses[j % 3];
    const t = performance.now();
    const all = Promise.all(subs.map((c) => nextFrame(c, (raw) => raw.includes(`"status":"${want}"`) && raw.includes(subject)).then(() => performance.now() - t)));
    me.send(JSON.stringify({ type: "presence", status: want }));
    const l = await all;
    lat.push(...l);
    await new Promise((r) => setTimeout(r, 50));
  }
  const cpu = meter();
  if (st) {
    st.kill("SIGINT");
    await new Promise((r) => st.on("exit", r));
  }
  lat.sort((a, b) => a - b);
  const q = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))].toFixed(1);
  const serverCpuMsPerChange = ((cpu.serverCpuPct / 100) * cpu.wallSeconds * 1000) / changes;
  console.log(`RESULT presence ${SUBS} subs × ${changes}: p50 ${q(0.5)} p99 ${q(0.99)} ms; server CPU ${serverCpuMsPerChange.toFixed(1)} ms per change`);
  for (const c of [...subs, me]) c.close();
} finally {
  await target.stop();
}
