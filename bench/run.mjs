// `npm run bench` / `npm run bench:smoke`: starts each system under test in turn on loopback ports,
// runs every scenario against it, and writes the table, JSON, chart and BENCHMARKS.md.
// Usage: node bench/run.mjs [--smoke] [--targets ours,bare,sio1,sio2] [--scenarios memory,fixed,sweep,dm,presence,history,lifecycle,suggestions]
//        node bench/run.mjs --report bench/results/<run>.json   (re-render table, chart and BENCHMARKS.md from a run's JSON)
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { PROFILES } from "./lib/config.mjs";
import { note, status } from "./lib/progress.mjs";
import { ORDER, benchmarksMarkdown, checks, machineInfo, svgChart, tableRows, textTable } from "./lib/report.mjs";
import { BENCH_VARS, REDIS_HINT, TARGETS, findRedis } from "./lib/targets.mjs";
import { fixedScenario, memoryScenario, sweepScenario } from "./scenarios/room.mjs";
import { dmScenario, historyScenario, presenceScenario } from "./scenarios/ours.mjs";
import { lifecycleScenario } from "./scenarios/lifecycle.mjs";
import { barePresenceScenario } from "./scenarios/presence.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "..");
const ALL_SCENARIOS = ["memory", "fixed", "sweep", "dm", "presence", "history", "lifecycle", "suggestions"];

const { values: args } = parseArgs({
  options: { smoke: { type: "boolean", default: false }, targets: { type: "string" }, scenarios: { type: "string" }, report: { type: "string" } },
});
const profileName = args.smoke ? "smoke" : "full";
const profile = PROFILES[profileName];
const wantTargets = args.targets ? args.targets.split(",") : ["bare", "sio1", "sio2", "ours"];
const wantScenarios = new Set(args.scenarios ? args.scenarios.split(",") : ALL_SCENARIOS);
for (const t of wantTargets) if (!TARGETS[t]) throw new Error(`unknown target ${t}; one of ${Object.keys(TARGETS).join(", ")}`);

const started = Date.now();
const results = {
  profile: profileName,
  startedAt: new Date(started).toISOString(),
  finishedAt: null,
  machine: machineInfo(),
  run: { vars: BENCH_VARS, durationSeconds: null, profile },
  targets: {},
  suggestions: null,
  notes: [],
};
const failures = [];

/** Runs one scenario, keeping its error in the results instead of ending the run. */
async function attempt(where, fn) {
  try {
    return await fn();
  } catch (e) {
    const msg = String(e?.message ?? e).split("\n")[0].slice(0, 300);
    note(`${where}: FAILED ${msg}`);
    failures.push(`${where}: ${msg}`);
    return { error: msg };
  }
}

if (args.report) {
  Object.assign(results, JSON.parse(readFileSync(args.report, "utf8")));
  failures.push(...(results.failures ?? []));
} else {
  note(`benchmark (${profileName}) on ${results.machine.cpu}, ${results.machine.cores} cores; targets: ${wantTargets.join(", ")}`);
  const redis = findRedis();
  for (const key of wantTargets) {
    const def = TARGETS[key];
    const entry = { label: def.label, status: "ok" };
    results.targets[key] = entry;
    if (def.needsRedis && !redis) {
      entry.status = "skipped (no redis-server)";
      entry.reason = REDIS_HINT;
      note(`${def.label}: skipped. ${REDIS_HINT}`);
      results.notes.push(`${def.label} was not run: ${REDIS_HINT}.`);
      continue;
    }
    status(`${def.label}: starting`);
    let target;
    try {
      target = await def.start();
    } catch (e) {
      entry.status = "failed to start";
      entry.reason = String(e?.message ?? e).slice(0, 2000);
      failures.push(`${def.label}: failed to start: ${entry.reason.split("\n")[0]}`);
      note(`${def.label}: failed to start: ${entry.reason}`);
      continue;
    }
    note(`${def.label}: started`);
    try {
      if (wantScenarios.has("memory")) entry.memory = await attempt(`${key} memory`, () => memoryScenario(target, key, profile.memory));
      if (wantScenarios.has("fixed")) {
        entry.fixed = [];
        for (const c of profile.fixed) {
          const r = await attempt(`${key} ${c.name}`, () => fixedScenario(target, key, c, profile));
          entry.fixed.push(r.error ? { case: c.name, error: r.error, latencyMs: {}, lost: null } : r);
        }
      }
      if (wantScenarios.has("sweep")) {
        const r = await attempt(`${key} sweep`, () => sweepScenario(target, key, profile.sweep, profile));
        entry.sweep = r.error ? undefined : r;
        if (r.error) entry.sweepError = r.error;
      }
      // The floor of presence fan-out (bench/bare/worker.ts BareInbox), beside ours' status changes.
      if (key === "bare" && wantScenarios.has("presence")) entry.presence = await attempt("bare presence", () => barePresenceScenario(target, profile.presence));
      if (key === "ours") {
        if (wantScenarios.has("dm")) entry.dm = await attempt("ours DM", () => dmScenario(target, profile.dm, profile));
        if (wantScenarios.has("presence")) entry.presence = await attempt("ours presence", () => presenceScenario(target, profile.presence));
        if (wantScenarios.has("history")) entry.history = await attempt("ours history", () => historyScenario(target, profile.history));
        if (wantScenarios.has("lifecycle")) entry.lifecycle = await attempt("ours lifecycle", () => lifecycleScenario(target, profile.lifecycle));
      }
    } finally {
      status(`${def.label}: stopping`);
      // The server's own output, for diagnosing a failed or slow scenario (git-ignored).
      mkdirSync(path.join(HERE, "results"), { recursive: true });
      writeFileSync(path.join(HERE, "results", `${key}-server.log.tmp`), target.output?.() ?? "");
      await target.stop();
    }
  }

  const suggestionsScript = path.join(HERE, "suggestions.mjs");
  if (wantScenarios.has("suggestions") && existsSync(suggestionsScript)) {
    // bench/suggestions.mjs (the suggestions engineer's) takes USERS, REQUESTS and PORT from the
    // environment and writes bench/results/suggestions.json; a smoke run keeps the full run's file.
    note("room suggestions: running bench/suggestions.mjs");
    const outFile = path.join(HERE, "results", "suggestions.json");
    const saved = args.smoke && existsSync(outFile) ? readFileSync(outFile) : null;
    const env = { ...process.env, PORT: "8839", ...(args.smoke ? { USERS: "2000", REQUESTS: "20" } : {}) };
    const r = spawnSync(process.execPath, [suggestionsScript], {
      cwd: ROOT,
      env,
      encoding: "utf8",
      timeout: args.smoke ? 150_000 : 900_000,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let json = null;
    try {
      json = JSON.parse(readFileSync(outFile, "utf8"));
    } catch {}
    if (saved) writeFileSync(outFile, saved);
    if (r.status === 0 && json) {
      const sc = json.scenarios ?? {};
      const summary = Object.entries(sc)
        .map(([k, v]) => `${k} p50/p99 ${v.endToEnd?.p50Ms ?? "–"}/${v.endToEnd?.p99Ms ?? "–"} ms`)
        .join("; ");
      results.suggestions = { summary: `${json.users} users: ${summary}`, result: json };
      note(`room suggestions: ${results.suggestions.summary}`);
    } else {
      const why = `exited with ${r.status ?? r.signal}: ${(r.stderr || r.stdout || "").trim().split("\n").slice(-3).join(" ").slice(0, 300)}`;
      results.suggestions = { error: why };
      failures.push(`bench/suggestions.mjs ${why}`);
      note(`room suggestions: FAILED ${why}`);
    }
  }

  results.finishedAt = new Date().toISOString();
  results.run.durationSeconds = (Date.now() - started) / 1000;
  const loadgenCpu = ORDER.flatMap((k) => results.targets[k]?.sweep?.points ?? []).map((p) => p.cpu?.loadgenCpuPct).filter((x) => x != null);
  if (loadgenCpu.length) results.notes.push(`The load generator used up to ${Math.round(Math.max(...loadgenCpu))}% of one core during the sweeps (this machine has ${results.machine.cores}).`);
}
results.checks = checks(results);
results.failures = failures;

const rows = tableRows(results);
process.stdout.write(`\n${textTable(rows)}\n\nTargets:\n`);
for (const c of results.checks) process.stdout.write(`  ${c.pass === null ? "·" : c.pass ? "✓" : "✗"} ${c.name}: ${c.value ?? "not measured"}${c.missBy ? ` (${c.missBy})` : ""}\n`);

const resultsDir = path.join(HERE, "results", args.smoke ? "smoke" : "");
mkdirSync(resultsDir, { recursive: true });
const stamp = results.startedAt.replace(/[:.]/g, "-");
const jsonName = args.smoke ? "smoke.json" : `bench-${stamp}.json`;
const partial = !args.report && Boolean(args.targets || args.scenarios);
const svgName = args.smoke ? "smoke-p99-vs-load.svg" : partial ? `bench-${stamp}.svg` : "p99-vs-load.svg";
writeFileSync(path.join(resultsDir, jsonName), `${JSON.stringify(results, null, 2)}\n`);
writeFileSync(path.join(resultsDir, svgName), svgChart(results));
const rel = (f) => path.relative(ROOT, path.join(resultsDir, f));
const md = benchmarksMarkdown(results, { jsonPath: rel(jsonName), svgPath: rel(svgName) });
if (args.smoke) {
  writeFileSync(path.join(resultsDir, "smoke.md"), md);
  process.stdout.write(`\nSmoke results: ${rel(jsonName)} (BENCHMARKS.md is only rewritten by the full run)\n`);
} else if (partial) {
  // A subset must not replace the full picture: its JSON is kept, BENCHMARKS.md and latest.json are not touched.
  process.stdout.write(`\nPartial run (--targets/--scenarios): wrote ${rel(jsonName)}; BENCHMARKS.md is only rewritten by a full run or --report\n`);
} else {
  writeFileSync(path.join(resultsDir, "latest.json"), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(path.join(ROOT, "BENCHMARKS.md"), md);
  process.stdout.write(`\nWrote BENCHMARKS.md, ${rel(jsonName)}, ${rel(svgName)}\n`);
}
if (failures.length) {
  process.stdout.write(`\n${failures.length} scenario(s) failed to run:\n${failures.map((f) => `  - ${f}`).join("\n")}\n`);
  process.exitCode = 1;
}
