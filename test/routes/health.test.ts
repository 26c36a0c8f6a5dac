import { createExecutionContext, createScheduledController, env, SELF, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../src/index";
import { BASE } from "../helpers";

interface Ready {
  status: string;
  failed: string[];
  checks: { name: string; ok: boolean; latencyMs: number; error?: string }[];
}

describe("health", () => {
  it("GET /health answers without auth", async () => {
    const res = await SELF.fetch(`${BASE}/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "ok" });
  });

  it("GET /health/ready checks D1, R2 and a Durable Object with latencies", async () => {
    const res = await SELF.fetch(`${BASE}/health/ready`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as Ready;
    expect(body.status).toBe("ready");
    expect(body.checks.map((c) => c.name).sort()).toEqual(["d1", "durable_object", "r2"]);
    for (const c of body.checks) {
      expect(c.ok).toBe(true);
      expect(c.latencyMs).toBeGreaterThanOrEqual(0);
    }
  });

  it("the scheduled self-check records results that /health/uptime reports", async () => {
    const ctx = createExecutionContext();
    await worker.scheduled(createScheduledController({ cron: "*/5 * * * *" }), env, ctx);
    await waitOnExecutionContext(ctx);
    // And an old failure outside the 24 h window but inside 7 d.
    await env.DB.prepare("INSERT INTO uptime_checks (checked_at, ok, details) VALUES (?, 0, '[]')")
      .bind(Date.now() - 2 * 24 * 3_600_000)
      .run();
    const res = await SELF.fetch(`${BASE}/health/uptime`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      windows: { window: string; checks: number; failed: number; uptime: number | null }[];
      lastCheck: { ok: boolean } | null;
    };
    const [day, week] = body.windows;
    expect(day).toMatchObject({ window: "24h", checks: 1, failed: 0, uptime: 1 });
    expect(week).toMatchObject({ window: "7d", checks: 2, failed: 1, uptime: 0.5 });
    expect(body.lastCheck?.ok).toBe(true);
  });

  it("GET /health/ready answers 503 naming the failed dependency", async () => {
    // A real failure: the database loses its schema (as if migrations were never applied).
    await env.DB.prepare("DROP TABLE uptime_checks").run();
    const res = await SELF.fetch(`${BASE}/health/ready`);
    expect(res.status).toBe(503);
    const body = (await res.json()) as Ready;
    expect(body.status).toBe("unavailable");
    expect(body.failed).toEqual(["d1"]);
    expect(body.checks.find((c) => c.name === "d1")?.error).toMatch(/uptime_checks/);
  });
});
