import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { BASE } from "../helpers";

/** Every REST route of the design, as OpenAPI paths and methods. */
const EXPECTED: [string, string][] = [
  ["/health", "get"],
  ["/health/ready", "get"],
  ["/health/uptime", "get"],
  ["/api/me", "get"],
  ["/api/chat/rooms", "get"],
  ["/api/chat/rooms", "post"],
  ["/api/chat/rooms/categories", "get"],
  ["/api/chat/rooms/{roomId}/messages", "get"],
  ["/api/chat/rooms/suggestions", "get"],
  ["/api/chat/dms", "get"],
  ["/api/chat/dms", "post"],
  ["/api/chat/dms/{conversationId}/messages", "get"],
  ["/api/chat/blocks", "get"],
  ["/api/chat/blocks", "post"],
  ["/api/chat/blocks/{userId}", "delete"],
  ["/api/chat/media", "post"],
  ["/api/chat/media/{id}", "get"],
  ["/api/chat/media/{id}", "delete"],
  ["/api/presence", "get"],
  // Moderation and private rooms (docs/moderation.md).
  ["/api/chat/rooms/{roomId}", "patch"],
  ["/api/chat/rooms/{roomId}", "delete"],
  ["/api/chat/rooms/{roomId}/moderators/{userId}", "put"],
  ["/api/chat/rooms/{roomId}/moderators/{userId}", "delete"],
  ["/api/chat/rooms/{roomId}/bans/{userId}", "put"],
  ["/api/chat/rooms/{roomId}/bans/{userId}", "delete"],
  ["/api/chat/rooms/{roomId}/bans", "get"],
  ["/api/chat/rooms/{roomId}/mutes/{userId}", "put"],
  ["/api/chat/rooms/{roomId}/mutes/{userId}", "delete"],
  ["/api/chat/rooms/{roomId}/kicks", "post"],
  ["/api/chat/rooms/{roomId}/pins/{messageId}", "put"],
  ["/api/chat/rooms/{roomId}/pins/{messageId}", "delete"],
  ["/api/chat/rooms/{roomId}/filters", "put"],
  ["/api/chat/rooms/{roomId}/messages/{messageId}/reports", "post"],
  ["/api/chat/rooms/{roomId}/reports", "get"],
  ["/api/chat/rooms/{roomId}/audit", "get"],
  ["/api/chat/rooms/{roomId}/members/{userId}", "put"],
  ["/api/chat/rooms/{roomId}/members/{userId}", "delete"],
];

describe("OpenAPI", () => {
  it("serves a parseable 3.1 document without auth that lists every route", async () => {
    const res = await SELF.fetch(`${BASE}/api/openapi.json`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as { openapi: string; paths: Record<string, Record<string, unknown>>; components: { securitySchemes: Record<string, unknown> } };
    expect(doc.openapi).toBe("3.1.0");
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: "http", scheme: "bearer" });
    const missing = EXPECTED.filter(([p, m]) => !doc.paths[p]?.[m]).map(([p, m]) => `${m.toUpperCase()} ${p}`);
    expect(missing).toEqual([]);
    // Every operation documents at least one response with a schema.
    for (const [p, ops] of Object.entries(doc.paths)) {
      for (const [m, op] of Object.entries(ops)) {
        expect((op as { responses?: object }).responses, `${m} ${p}`).toBeTruthy();
      }
    }
  });

  it("documents the WebSocket error codes, moderation refusals included", async () => {
    const doc = (await (await SELF.fetch(`${BASE}/api/openapi.json`)).json()) as { components: { schemas: Record<string, { enum?: string[] }> } };
    expect(doc.components.schemas.WsErrorCode?.enum).toEqual(expect.arrayContaining(["banned", "muted", "slow_mode", "frozen", "filtered"]));
  });

  it("serves the docs UI without auth", async () => {
    const res = await SELF.fetch(`${BASE}/api/docs`);
    expect(res.status).toBe(200);
    expect(await res.text()).toMatch(/swagger/i);
  });
});
