// CPU time and resident memory of a process group, read from /proc (Linux). The servers under test
// are started detached, so their process group id is the pid we spawned and it covers workerd and
// any children. Elsewhere (no /proc) the figures are reported as null.
import { readFileSync, readdirSync } from "node:fs";

const TICK = 100; // USER_HZ on Linux

function groupPids(pgid) {
  const pids = [];
  let entries;
  try {
    entries = readdirSync("/proc");
  } catch {
    return null;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      // fields after the name: state(0) ppid(1) pgrp(2) ... utime(11) stime(12)
      if (Number(f[2]) === pgid) pids.push({ pid: Number(e), cpu: (Number(f[11]) + Number(f[12])) / TICK });
    } catch {}
  }
  return pids;
}

/** CPU seconds used so far by every process in the group `pgid`, or null. */
export function groupCpuSeconds(pgid) {
  const pids = groupPids(pgid);
  if (!pids) return null;
  return pids.reduce((a, p) => a + p.cpu, 0);
}

/** Resident set size in bytes, summed over the group `pgid`, or null. */
export function groupRssBytes(pgid) {
  const pids = groupPids(pgid);
  if (!pids) return null;
  let total = 0;
  for (const { pid } of pids) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      if (m) total += Number(m[1]) * 1024;
    } catch {}
  }
  return total;
}

/** Starts a CPU meter over the load generator (this process) and the given server groups. */
export function cpuMeter(pgids = []) {
  const t0 = performance.now();
  const self0 = process.cpuUsage();
  const srv0 = pgids.map((g) => groupCpuSeconds(g));
  return () => {
    const wall = (performance.now() - t0) / 1000;
    const self = process.cpuUsage(self0);
    const srv = pgids.map((g, i) => {
      const now = groupCpuSeconds(g);
      return now === null || srv0[i] === null ? null : now - srv0[i];
    });
    const srvTotal = srv.some((x) => x === null) ? null : srv.reduce((a, b) => a + b, 0);
    return {
      wallSeconds: wall,
      /** Percent of one core. */
      loadgenCpuPct: (100 * (self.user + self.system)) / 1e6 / wall,
      serverCpuPct: srvTotal === null ? null : (100 * srvTotal) / wall,
    };
  };
}

/**
 * Waits until the servers are quiet (under `maxPct` of one core over 500 ms windows, twice in a row)
 * or `timeoutMs` passes: closing a thousand sockets or draining a backlog keeps a server busy after
 * the previous scenario, which must not be charged to the next one. Resolves with the wait in ms.
 */
export async function settle(pgids, { maxPct = 15, timeoutMs = 20_000 } = {}) {
  const t0 = Date.now();
  let quiet = 0;
  while (Date.now() - t0 < timeoutMs) {
    const c0 = pgids.map(groupCpuSeconds);
    if (c0.some((x) => x === null)) return 0;
    await new Promise((r) => setTimeout(r, 500));
    const used = pgids.reduce((a, g, i) => a + ((groupCpuSeconds(g) ?? c0[i]) - c0[i]), 0);
    quiet = (100 * used) / 0.5 < maxPct ? quiet + 1 : 0;
    if (quiet >= 2) break;
  }
  return Date.now() - t0;
}
