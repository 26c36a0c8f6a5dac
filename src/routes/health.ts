/** Liveness, readiness and uptime. No authentication: these are for load balancers and monitors. */
import { createRoute, z } from "@hono/zod-openapi";
import { drizzle } from "drizzle-orm/d1";
import { gt } from "drizzle-orm";
import { uptimeChecks } from "../db/schema";
import { checkReadiness, SELF_CHECK_INTERVAL_MS } from "../health";
import { createRouter } from "../openapi";
import { uptimeOver } from "../uptime";

const CheckSchema = z.object({
  name: z.enum(["d1", "r2", "durable_object"]),
  ok: z.boolean(),
  latencyMs: z.number(),
  error: z.string().optional(),
});

const ReadySchema = z
  .object({ status: z.enum(["ready", "unavailable"]), checks: z.array(CheckSchema), failed: z.array(z.string()) })
  .openapi("Readiness");

const WindowSchema = z.object({
  window: z.string(),
  checks: z.number().int(),
  failed: z.number().int(),
  uptime: z.number().nullable(),
  coverage: z.number(),
});

export const health = createRouter()
  .openapi(
    createRoute({
      method: "get",
      path: "/",
      tags: ["health"],
      summary: "Liveness: answers without touching any dependency",
      responses: {
        200: {
          description: "Alive",
          content: { "application/json": { schema: z.object({ status: z.literal("ok"), time: z.number() }) } },
        },
      },
    }),
    (c) => c.json({ status: "ok" as const, time: Date.now() }, 200),
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/ready",
      tags: ["health"],
      summary: "Readiness: D1, R2 and a Durable Object round trip, each with its latency",
      responses: {
        200: { description: "Every dependency answered", content: { "application/json": { schema: ReadySchema } } },
        503: { description: "At least one dependency failed", content: { "application/json": { schema: ReadySchema } } },
      },
    }),
    async (c) => {
      const { ok, checks } = await checkReadiness(c.env);
      const failed = checks.filter((x) => !x.ok).map((x) => x.name);
      if (ok) return c.json({ status: "ready" as const, checks, failed }, 200);
      return c.json({ status: "unavailable" as const, checks, failed }, 503);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/uptime",
      tags: ["health"],
      summary: "Uptime over 24 h and 7 d from the scheduled self-checks",
      responses: {
        200: {
          description: "Uptime windows and the latest check",
          content: {
            "application/json": {
              schema: z.object({
                intervalMs: z.number(),
                windows: z.array(WindowSchema),
                lastCheck: z.object({ checkedAt: z.number(), ok: z.boolean() }).nullable(),
              }),
            },
          },
        },
      },
    }),
    async (c) => {
      const now = Date.now();
      const week = 7 * 24 * 3_600_000;
      const rows = await drizzle(c.env.DB)
        .select({ checkedAt: uptimeChecks.checkedAt, ok: uptimeChecks.ok })
        .from(uptimeChecks)
        .where(gt(uptimeChecks.checkedAt, now - week));
      const last = rows.reduce<(typeof rows)[number] | null>((a, r) => (!a || r.checkedAt > a.checkedAt ? r : a), null);
      return c.json(
        {
          intervalMs: SELF_CHECK_INTERVAL_MS,
          windows: [
            uptimeOver(rows, now, 24 * 3_600_000, SELF_CHECK_INTERVAL_MS, "24h"),
            uptimeOver(rows, now, week, SELF_CHECK_INTERVAL_MS, "7d"),
          ],
          lastCheck: last,
        },
        200,
      );
    },
  );
