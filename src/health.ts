/** Readiness checks (D1, R2, a Durable Object round trip) and the scheduled self-check that records them. */
import { drizzle } from "drizzle-orm/d1";
import { lt } from "drizzle-orm";
import { uptimeChecks } from "./db/schema";
import { logError } from "./log";
import { roomStub } from "./objects/stubs";

export interface CheckResult {
  name: "d1" | "r2" | "durable_object";
  ok: boolean;
  latencyMs: number;
  error?: string;
}

/** Minutes between scheduled self-checks; keep in step with `[triggers] crons` in wrangler.toml. */
export const SELF_CHECK_INTERVAL_MS = 5 * 60_000;
const KEEP_MS = 8 * 24 * 3_600_000;
const CHECK_TIMEOUT_MS = 5_000;

async function timed(name: CheckResult["name"], fn: () => Promise<unknown>): Promise<CheckResult> {
  const start = performance.now();
  try {
    let timer = 0;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
    });
    await Promise.race([fn(), timeout]).finally(() => clearTimeout(timer));
    return { name, ok: true, latencyMs: round(performance.now() - start) };
  } catch (err) {
    return { name, ok: false, latencyMs: round(performance.now() - start), error: String((err as Error)?.message ?? err) };
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

/** Runs every dependency check in parallel. */
export async function checkReadiness(env: Env): Promise<{ ok: boolean; checks: CheckResult[] }> {
  const checks = await Promise.all([
    // Touches a migrated table, so an unmigrated database fails readiness too.
    timed("d1", () => env.DB.prepare("SELECT count(*) AS n FROM uptime_checks WHERE id < 0").first()),
    timed("r2", () => env.MEDIA.head("health/probe")),
    timed("durable_object", () => roomStub(env, "__health__").ping()),
  ]);
  return { ok: checks.every((c) => c.ok), checks };
}

/** The scheduled self-check: records one readiness result in D1 and prunes old ones. */
export async function runSelfCheck(env: Env, now = Date.now()): Promise<{ ok: boolean; checks: CheckResult[] }> {
  const result = await checkReadiness(env);
  const db = drizzle(env.DB);
  try {
    await db.insert(uptimeChecks).values({ checkedAt: now, ok: result.ok, details: JSON.stringify(result.checks) });
    await db.delete(uptimeChecks).where(lt(uptimeChecks.checkedAt, now - KEEP_MS));
  } catch (err) {
    // D1 itself may be what is down; the failed check is already in `result`.
    logError("self-check: could not record result", err);
  }
  return result;
}
