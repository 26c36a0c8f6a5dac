// Turns a run's results into the terminal table, the checks against issue 8's targets, the SVG chart
// of p99 against offered load, and BENCHMARKS.md.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { ROOT } from "../../scripts/lib/wrangler.mjs";
import { TARGETS_SPEC } from "./config.mjs";

export const ORDER = ["ours", "bare", "sio1", "sio2"];
const COLORS = { ours: "#d9480f", bare: "#1c7ed6", sio1: "#2b8a3e", sio2: "#862e9c" };

const version = (pkg) => {
  try {
    return JSON.parse(readFileSync(path.join(ROOT, "node_modules", pkg, "package.json"), "utf8")).version;
  } catch {
    return null;
  }
};

/** The machine and software the run measured. */
export function machineInfo() {
  const cpus = os.cpus();
  const redis = spawnSync("sh", ["-c", "redis-server --version 2>/dev/null"], { encoding: "utf8" }).stdout.match(/v=(\S+)/)?.[1] ?? null;
  return {
    cpu: cpus[0]?.model?.trim() ?? "unknown",
    cores: cpus.length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    wrangler: version("wrangler"),
    workerd: version("workerd"),
    socketIo: version("socket.io"),
    redisAdapter: version("@socket.io/redis-adapter"),
    redisServer: redis,
  };
}

const fmt = (v, digits = 1) => (v === null || v === undefined ? "–" : typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(digits)) : String(v));
const ratio = (a, b) => (a === null || a === undefined || !b ? null : a / b);
const times = (r) => (r === null ? "–" : `${r.toFixed(2)}×`);
/** Errors in a cell are cut short; the JSON has them whole. */
const short = (v, max = 70) => (String(v).length > max ? `${String(v).slice(0, max - 3)}…` : v);
const lat = (l) => (l && l.count ? `${fmt(l.p50)} / ${fmt(l.p95)} / ${fmt(l.p99)} / ${fmt(l.max)}` : "–");

/** Checks of issue 8's targets; each with the measured value, the target, and pass or the shortfall. */
export function checks(results) {
  const t = results.targets;
  const out = [];
  const ok = (x) => x?.status === "ok";
  for (let i = 0; i < (t.ours?.fixed?.length ?? 0); i++) {
    const o = t.ours.fixed[i];
    const b = ok(t.bare) ? t.bare.fixed?.[i] : null;
    const r = ratio(o?.latencyMs?.p99, b?.latencyMs?.p99);
    out.push({
      name: `room broadcast p99, ${o.case}: ≤ ${TARGETS_SPEC.broadcastP99VsBare}× bare DO`,
      value: r === null ? null : `${r.toFixed(2)}× (${fmt(o.latencyMs.p99)} vs ${fmt(b.latencyMs.p99)} ms)`,
      pass: r === null ? null : r <= TARGETS_SPEC.broadcastP99VsBare && o.lost === 0,
      missBy: r === null || r <= TARGETS_SPEC.broadcastP99VsBare ? null : `${((r / TARGETS_SPEC.broadcastP99VsBare - 1) * 100).toFixed(0)}% over`,
    });
    out.push({
      name: `T042 room broadcast p99 < 200 ms, ${o.case}`,
      value: o.latencyMs?.p99 === null || o.latencyMs?.p99 === undefined ? null : `${fmt(o.latencyMs.p99)} ms, lost ${o.lost}`,
      pass: o.latencyMs?.p99 == null ? null : o.latencyMs.p99 < 200 && o.lost === 0,
    });
  }
  const os_ = t.ours?.sweep?.maxSustainedDeliveriesPerSec;
  if (os_ !== undefined) {
    const bs = ok(t.bare) ? t.bare.sweep?.maxSustainedDeliveriesPerSec : null;
    const r = ratio(os_, bs);
    out.push({
      name: `sustained deliveries/s (p99 < 200 ms, no loss): ≥ ${TARGETS_SPEC.sustainedVsBare}× bare DO`,
      value: r === null ? null : `${r.toFixed(2)}× (${os_} vs ${bs}/s)`,
      pass: r === null ? null : r >= TARGETS_SPEC.sustainedVsBare,
      missBy: r === null || r >= TARGETS_SPEC.sustainedVsBare ? null : `${((1 - r / TARGETS_SPEC.sustainedVsBare) * 100).toFixed(0)}% short`,
    });
    const ss = ok(t.sio1) ? t.sio1.sweep?.maxSustainedDeliveriesPerSec : null;
    const r2 = ratio(os_, ss);
    out.push({
      name: "sustained deliveries/s: ≥ socket.io (1 process)",
      value: r2 === null ? null : `${r2.toFixed(2)}× (${os_} vs ${ss}/s)`,
      pass: r2 === null ? null : r2 >= TARGETS_SPEC.sustainedVsSio1,
      missBy: r2 === null || r2 >= 1 ? null : `${((1 - r2) * 100).toFixed(0)}% short`,
    });
  }
  const p = t.ours?.presence;
  if (p?.error) out.push({ name: `presence status change p99 < ${TARGETS_SPEC.presenceP99Ms} ms (T043: < 2 s)`, value: `not measured: ${p.error}`, pass: null });
  if (p?.statusChange) {
    out.push({
      name: `presence status change p99 < ${TARGETS_SPEC.presenceP99Ms} ms (T043: < 2 s)`,
      value: `${fmt(p.statusChange.p99)} ms, missed ${p.statusChange.missed}`,
      pass: p.statusChange.p99 !== null && p.statusChange.p99 < TARGETS_SPEC.presenceP99Ms && p.statusChange.missed === 0,
    });
  }
  const d = t.ours?.dm;
  if (d?.error) out.push({ name: `DM p99 < ${TARGETS_SPEC.dmP99Ms} ms under room load`, value: `not measured: ${d.error}`, pass: null });
  if (d?.latencyMs) {
    out.push({
      name: `DM p99 < ${TARGETS_SPEC.dmP99Ms} ms under room load`,
      value: `${fmt(d.latencyMs.p99)} ms, lost ${d.lost}`,
      pass: d.latencyMs.p99 !== null && d.latencyMs.p99 < TARGETS_SPEC.dmP99Ms && d.lost === 0,
    });
  }
  return out;
}

/** Rows of the comparison table: [scenario, ours, bare, sio1, sio2, ours/bare, ours/sio1]. */
export function tableRows(results) {
  const t = results.targets;
  const cell = (k, f) => {
    const x = t[k];
    if (!x) return "not run";
    if (x.status !== "ok") return x.status;
    try {
      return short(f(x) ?? "–");
    } catch {
      return "–";
    }
  };
  const rows = [];
  const fixedCount = Math.max(...ORDER.map((k) => t[k]?.fixed?.length ?? 0), 0);
  for (let i = 0; i < fixedCount; i++) {
    const name = ORDER.map((k) => t[k]?.fixed?.[i]?.case).find(Boolean);
    const p99 = (k) => t[k]?.fixed?.[i]?.latencyMs?.p99;
    rows.push([
      `broadcast ${name}: p50/p95/p99/max ms`,
      ...ORDER.map((k) => cell(k, (x) => (x.fixed?.[i] ? `${lat(x.fixed[i].latencyMs)}${x.fixed[i].lost ? ` (lost ${x.fixed[i].lost})` : ""}` : x.errors?.fixed?.[i] ?? "–"))),
      times(ratio(p99("ours"), p99("bare"))),
      times(ratio(p99("ours"), p99("sio1"))),
    ]);
  }
  const o = t.ours ?? {};
  const only = (name, v, max = 70) => rows.push([name, short(v ?? "–", max), "", "", "", "", ""]);
  // Issue 14, beside the broadcast rows: one sender's new messages, edits and reactions fanned out to a room's sockets.
  const lc = o.lifecycle;
  if (lc?.error) only("message lifecycle (edit, reaction fan-out; search)", lc.error);
  if (lc?.fanout) {
    const f = lc.fanout;
    const row = (what, l) => only(`${what} → ${f.receivers} sockets (${f.opsPerKind} at ${f.ratePerSec}/s): p50/p95/p99/max ms`, l ? `${lat(l)}${l.lost ? ` (lost ${l.lost})` : ""}` : "–");
    row("message (lifecycle run)", f.latencyMs.message);
    row("edit", f.latencyMs.edit);
    row("reaction", f.latencyMs.reaction);
  }
  const sus = (k) => t[k]?.sweep?.maxSustainedDeliveriesPerSec;
  rows.push([
    "max sustained deliveries/s (p99 < 200 ms, no loss)",
    ...ORDER.map((k) => cell(k, (x) => (x.sweep ? `${x.sweep.maxSustainedDeliveriesPerSec}${x.sweep.limitedByLevels ? "+" : ""}` : null))),
    times(ratio(sus("ours"), sus("bare"))),
    times(ratio(sus("ours"), sus("sio1"))),
  ]);
  const mem = (k) => t[k]?.memory?.bytesPerConnection;
  rows.push([
    "server memory per idle connection (KiB)",
    // A negative growth is garbage collection or allocator noise around a figure near zero.
    ...ORDER.map((k) => cell(k, (x) => (x.memory?.bytesPerConnection != null ? (x.memory.bytesPerConnection < 0 ? `≈0 (${fmt(x.memory.bytesPerConnection / 1024)}, noise)` : fmt(x.memory.bytesPerConnection / 1024)) : null))),
    times(ratio(mem("ours"), mem("bare"))),
    times(ratio(mem("ours"), mem("sio1"))),
  ]);
  // Issue 12: a status change fanned out to N subscriber inboxes, against the bare floor of the same shape.
  const pres = (k) => t[k]?.presence?.statusChange;
  const presN = ["ours", "bare"].map((k) => t[k]?.presence?.subscribers).find((n) => n != null);
  if (presN != null) {
    rows.push([
      `presence status change → ${presN} subscribers p99 ms`,
      ...ORDER.map((k) => cell(k, (x) => (x.presence?.error ? x.presence.error : x.presence?.statusChange ? `${fmt(x.presence.statusChange.p99)}${x.presence.statusChange.missed ? ` (missed ${x.presence.statusChange.missed})` : ""}` : null))),
      times(ratio(pres("ours")?.p99, pres("bare")?.p99)),
      "",
    ]);
  }
  if (o.dm) only(`DM under room load: p50/p95/p99/max ms`, o.dm.latencyMs ? `${lat(o.dm.latencyMs)}${o.dm.lost ? ` (lost ${o.dm.lost})` : ""}` : o.dm.error);
  if (o.presence) {
    if (o.presence.error) only("presence", o.presence.error);
    else {
      only(`presence status change → ${o.presence.subscribers} subscribers: p50/p95/p99/max ms`, lat(o.presence.statusChange));
      only("presence clean disconnect → offline: p50/p95/p99/max ms", lat(o.presence.cleanDisconnect));
      only("presence unclean disconnect (SIGKILL) → offline", lat(o.presence.uncleanDisconnect));
    }
  }
  if (o.history) {
    only(
      `room history GET, ${o.history.storedMessages ?? "?"} stored: p50/p95/p99/max ms`,
      o.history.latencyMs ? `${lat(o.history.latencyMs)}${o.history.failures ? ` (${o.history.failures} failed)` : ""}` : o.history.error,
    );
  }
  if (lc?.search) only(`room search, ${lc.search.storedMessages} stored: p50/p95/p99/max ms`, lat(lc.search.latencyMs));
  if (results.suggestions) only("room suggestions (bench/suggestions.mjs)", results.suggestions.summary ?? results.suggestions.error ?? "see JSON", 400);
  return rows;
}

export const HEADER = ["scenario", "ours", "bare DO", "socket.io 1p", "socket.io 2p+Redis", "ours/bare", "ours/sio 1p"];

/** The table as aligned plain text for the terminal. */
export function textTable(rows) {
  const all = [HEADER, ...rows];
  const w = HEADER.map((_, c) => Math.max(...all.map((r) => String(r[c] ?? "").length)));
  const line = (r) => r.map((v, c) => String(v ?? "").padEnd(w[c])).join("  ").trimEnd();
  return [line(HEADER), w.map((n) => "-".repeat(n)).join("  "), ...rows.map(line)].join("\n");
}

/** The table as Markdown. */
export function markdownTable(rows) {
  const esc = (v) => String(v ?? "").replace(/\|/g, "\\|");
  return [`| ${HEADER.join(" | ")} |`, `| ${HEADER.map(() => "---").join(" | ")} |`, ...rows.map((r) => `| ${r.map(esc).join(" | ")} |`)].join("\n");
}

/** SVG line chart: p99 (log scale) against offered deliveries/s, one line per target, the 200 ms limit dashed. */
export function svgChart(results) {
  const W = 800;
  const H = 420;
  const m = { l: 70, r: 230, t: 40, b: 55 };
  const series = ORDER.filter((k) => results.targets[k]?.sweep?.points?.length).map((k) => ({
    key: k,
    label: results.targets[k].label,
    pts: results.targets[k].sweep.points.filter((p) => p.latencyMs.p99 !== null).map((p) => [p.offeredDeliveriesPerSec, p.latencyMs.p99, p.pass]),
  }));
  const xs = series.flatMap((s) => s.pts.map((p) => p[0]));
  const xMax = Math.max(1000, ...xs) * 1.05;
  const yMin = 1;
  const yMax = 10 ** Math.ceil(Math.log10(Math.max(1000, ...series.flatMap((s) => s.pts.map((p) => p[1]))))); 
  const X = (v) => m.l + (v / xMax) * (W - m.l - m.r);
  const Y = (v) => m.t + (1 - (Math.log10(Math.max(yMin, v)) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin))) * (H - m.t - m.b);
  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${m.l}" y="22" font-size="15" font-weight="bold">Room broadcast p99 latency against offered load (${results.targets.ours?.sweep?.sockets ?? results.targets.bare?.sweep?.sockets ?? "?"} sockets, one room)</text>`);
  for (let e = 0; 10 ** e <= yMax; e++) {
    const y = Y(10 ** e);
    out.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${y}" y2="${y}" stroke="#e9ecef"/><text x="${m.l - 8}" y="${y + 4}" text-anchor="end">${10 ** e}</text>`);
  }
  const step = 10 ** Math.floor(Math.log10(xMax / 5)) * (xMax / 10 ** Math.floor(Math.log10(xMax / 5)) > 25 ? 5 : xMax / 10 ** Math.floor(Math.log10(xMax / 5)) > 10 ? 2 : 1);
  for (let v = 0; v <= xMax; v += step) {
    const x = X(v);
    out.push(`<line x1="${x}" x2="${x}" y1="${m.t}" y2="${H - m.b}" stroke="#f1f3f5"/><text x="${x}" y="${H - m.b + 18}" text-anchor="middle">${v >= 1000 ? `${v / 1000}k` : v}</text>`);
  }
  out.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${Y(200)}" y2="${Y(200)}" stroke="#c92a2a" stroke-dasharray="6 4"/><text x="${W - m.r - 4}" y="${Y(200) - 6}" text-anchor="end" fill="#c92a2a">200 ms</text>`);
  out.push(`<rect x="${m.l}" y="${m.t}" width="${W - m.l - m.r}" height="${H - m.t - m.b}" fill="none" stroke="#495057"/>`);
  out.push(`<text x="${(m.l + W - m.r) / 2}" y="${H - 12}" text-anchor="middle">offered deliveries per second</text>`);
  out.push(`<text transform="translate(18 ${(m.t + H - m.b) / 2}) rotate(-90)" text-anchor="middle">p99 latency (ms, log scale)</text>`);
  series.forEach((s, i) => {
    const c = COLORS[s.key];
    out.push(`<polyline fill="none" stroke="${c}" stroke-width="2" points="${s.pts.map((p) => `${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join(" ")}"/>`);
    for (const p of s.pts) out.push(`<circle cx="${X(p[0]).toFixed(1)}" cy="${Y(p[1]).toFixed(1)}" r="3.5" fill="${p[2] ? c : "white"}" stroke="${c}" stroke-width="1.5"/>`);
    const ly = m.t + 10 + i * 22;
    out.push(`<line x1="${W - m.r + 14}" x2="${W - m.r + 38}" y1="${ly}" y2="${ly}" stroke="${c}" stroke-width="2"/><text x="${W - m.r + 44}" y="${ly + 4}">${s.label}</text>`);
  });
  const ly = m.t + 10 + series.length * 22 + 8;
  out.push(`<circle cx="${W - m.r + 26}" cy="${ly}" r="3.5" fill="white" stroke="#495057"/><text x="${W - m.r + 44}" y="${ly + 4}">loss or p99 ≥ 200 ms</text>`);
  out.push("</svg>");
  return out.join("\n");
}

/** BENCHMARKS.md: what was run, on what, the table, the targets, the chart, and how to reproduce. */
export function benchmarksMarkdown(results, { jsonPath, svgPath }) {
  const m = results.machine;
  const c = checks(results);
  const lines = [];
  lines.push("# Benchmarks", "");
  lines.push(`<!-- Generated by \`npm run bench\` (bench/run.mjs) on ${results.finishedAt}. Do not edit by hand; see docs/benchmarks.md. -->`, "");
  lines.push(
    "Measured by `npm run bench`: our service, the runtime's floor (a bare broadcast Durable Object), and a Node socket.io server doing the same room work, " +
      "side by side in one run on one machine, driven by the same open-loop load generator over real WebSockets. " +
      "Latency is from each message's intended send time to its arrival at each receiver; warm-up is discarded; percentiles come from HDR histograms. " +
      "How it works and how to read it: [docs/benchmarks.md](docs/benchmarks.md).",
    "",
  );
  lines.push("## Machine", "");
  lines.push(`- ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB RAM, ${m.os}`);
  lines.push(`- Node ${m.node}; wrangler ${m.wrangler} (workerd ${m.workerd}); socket.io ${m.socketIo}, @socket.io/redis-adapter ${m.redisAdapter}, redis-server ${m.redisServer ?? "not installed"}`);
  lines.push(`- Load generator and servers share these cores. ${results.run.durationSeconds ? `Run took ${Math.round(results.run.durationSeconds)} s.` : ""}`);
  lines.push(`- Our service ran under \`wrangler dev\` with ${Object.entries(results.run.vars).map(([k, v]) => `\`${k}=${v}\``).join(", ")} so the per-connection rate limit does not refuse the offered load.`, "");
  lines.push("## Results", "");
  lines.push(markdownTable(tableRows(results)), "");
  lines.push("`+` after a sustained figure: every offered level passed, so the real ceiling is higher. Ratios are ours ÷ peer (lower is better for latency and memory, higher for throughput).", "");
  lines.push("## Targets (issue 8)", "");
  lines.push("| target | measured | result |", "| --- | --- | --- |");
  for (const x of c) lines.push(`| ${x.name} | ${x.value ?? "–"} | ${x.pass === null ? "not measured" : x.pass ? "met" : `**missed**${x.missBy ? ` (${x.missBy})` : ""}`} |`);
  lines.push("");
  if (results.notes?.length) {
    lines.push("## Notes from this run", "");
    for (const n of results.notes) lines.push(`- ${n}`);
    lines.push("");
  }
  lines.push("## p99 latency against offered load", "");
  lines.push(`![p99 latency against offered deliveries per second](${svgPath})`, "");
  lines.push("Filled points passed (no loss, p99 under 200 ms); the sweep stops at a target's first failing level.", "");
  const sweepRows = [];
  for (const k of ORDER) {
    const s = results.targets[k]?.sweep;
    if (!s) continue;
    for (const p of s.points) {
      sweepRows.push(`| ${results.targets[k].label} | ${p.offeredDeliveriesPerSec} | ${p.deliveredPerSec} | ${fmt(p.latencyMs.p50)} | ${fmt(p.latencyMs.p99)} | ${fmt(p.latencyMs.max)} | ${p.lost} | ${fmt(p.cpu?.serverCpuPct, 0)}% | ${fmt(p.cpu?.loadgenCpuPct, 0)}% |`);
    }
  }
  if (sweepRows.length) {
    lines.push("| target | offered/s | delivered/s | p50 ms | p99 ms | max ms | lost | server CPU | load generator CPU |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |", ...sweepRows, "");
    lines.push("CPU is percent of one core over the measured window (the machine has " + m.cores + ").", "");
  }
  lines.push("## Reproduce", "");
  lines.push("```sh", "sudo apt-get install -y redis-server   # optional: the two-process socket.io peer", "npm run bench          # full run, about 15 minutes on 2 cores; rewrites this file", "npm run bench:smoke    # every scenario with small counts, under 3 minutes", "```", "");
  lines.push(`Raw results: [${jsonPath}](${jsonPath}).`, "");
  return lines.join("\n");
}
