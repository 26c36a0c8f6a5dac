// Starts and stops `wrangler dev` for the dev script, the e2e tests and the benchmarks.
import { spawn, spawnSync } from "node:child_process";
import { connect } from "node:net";
import { fileURLToPath } from "node:url";
import path from "node:path";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const WRANGLER = path.join(ROOT, "node_modules", ".bin", "wrangler");

/** Runs a wrangler command to completion, throwing with its output on failure. */
export function wranglerSync(args, { quiet = false } = {}) {
  const r = spawnSync(WRANGLER, args, { cwd: ROOT, encoding: "utf8", env: { ...process.env, CI: "true" } });
  if (r.status !== 0) throw new Error(`wrangler ${args.join(" ")} failed:\n${r.stdout}\n${r.stderr}`);
  if (!quiet) process.stdout.write(r.stdout);
  return r.stdout;
}

/** Applies D1 migrations and the seed rooms to the local database under `persistTo` (or the default). */
export function prepareLocalDb({ persistTo, quiet = false } = {}) {
  const p = persistTo ? ["--persist-to", persistTo] : [];
  wranglerSync(["d1", "migrations", "apply", "DB", "--local", ...p], { quiet });
  wranglerSync(["d1", "execute", "DB", "--local", "--file", "seed/rooms.sql", ...p], { quiet });
}

/**
 * Spawns a detached child in its own process group (so it and everything it starts can be measured and
 * stopped together) and resolves `ready` once `isReady(output)` holds. Returns { pid, ready, stop, output }.
 */
export function spawnGroup(cmd, args, { isReady, timeoutMs = 60_000, env = {}, log } = {}) {
  const child = spawn(cmd, args, {
    cwd: ROOT,
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let output = "";
  let exited = null;
  const onData = (d) => {
    output += d;
    if (output.length > 200_000) output = output.slice(-100_000);
    log?.(String(d));
  };
  child.stdout.on("data", onData);
  child.stderr.on("data", onData);
  child.on("exit", (code) => (exited = code ?? -1));
  const stop = async () => {
    if (exited !== null) return;
    try {
      process.kill(-child.pid, "SIGTERM");
    } catch {}
    const t0 = Date.now();
    while (exited === null && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 50));
    if (exited === null) {
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {}
    }
  };
  const ready = (async () => {
    const t0 = Date.now();
    while (Date.now() - t0 < timeoutMs) {
      if (exited !== null) throw new Error(`${path.basename(cmd)} exited with ${exited}:\n${output.slice(-3000)}`);
      if (await isReady(output)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    await stop();
    throw new Error(`${path.basename(cmd)} was not ready within ${timeoutMs} ms:\n${output.slice(-3000)}`);
  })();
  return { pid: child.pid, ready, stop, output: () => output };
}

/**
 * Throws when something already listens on 127.0.0.1:`port`. A server left over from an earlier run
 * would otherwise pass the readiness check in place of the one being started, and be measured or
 * tested instead of it.
 */
export async function assertPortFree(port) {
  const inUse = await new Promise((resolve) => {
    const s = connect(port, "127.0.0.1");
    s.setTimeout(2000, () => {
      s.destroy();
      resolve(false);
    });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
  if (inUse) throw new Error(`port ${port} on 127.0.0.1 is already in use (a server left from an earlier run?); stop it first`);
}

/** A readiness check: the service at `url` answers GET /health. */
export const answersHealth = (url) => async () => {
  try {
    return (await fetch(`${url}/health`)).ok;
  } catch {
    return false;
  }
};

/**
 * Starts `wrangler dev` on 127.0.0.1:`port` and resolves once /health answers.
 * Returns { url, stop, output, pid }. Output goes to `log` (a function) when given.
 */
export async function startDev({ port = 8787, persistTo, vars = {}, log, timeoutMs = 60_000 } = {}) {
  const args = ["dev", "--ip", "127.0.0.1", "--port", String(port), "--show-interactive-dev-session=false"];
  if (persistTo) args.push("--persist-to", persistTo);
  for (const [k, v] of Object.entries(vars)) args.push("--var", `${k}:${v}`);
  const url = `http://127.0.0.1:${port}`;
  await assertPortFree(port);
  const p = spawnGroup(WRANGLER, args, { isReady: answersHealth(url), timeoutMs, log });
  await p.ready;
  return { url, stop: p.stop, output: p.output, pid: p.pid };
}
