/**
 * Per-user REST limits through the Workers Rate Limiting bindings of wrangler.toml (issue 11 point 6,
 * REST part), seen from the refused user: 429 with Retry-After and the standard error body, nothing
 * changed by the refused call, and another user unaffected.
 */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import wranglerToml from "../../wrangler.toml?raw";
import { REST_LIMITS, type RestAction } from "../../src/rate-limits";
import { api } from "../helpers";
import { bigPng } from "../helpers/media-fixtures";

let n = 0;
const uid = (name: string) => `${name}-${++n}-${crypto.randomUUID().slice(0, 8)}`;

/** The `[[ratelimits]]` entries of wrangler.toml: binding name → { limit, period }. */
function configured(): Map<string, { limit: number; period: number }> {
  const out = new Map<string, { limit: number; period: number }>();
  for (const block of wranglerToml.split("[[ratelimits]]").slice(1)) {
    const name = /name\s*=\s*"([^"]+)"/.exec(block)?.[1];
    const simple = /simple\s*=\s*\{\s*limit\s*=\s*(\d+)\s*,\s*period\s*=\s*(\d+)\s*\}/.exec(block);
    if (name && simple) out.set(name, { limit: Number(simple[1]), period: Number(simple[2]) });
  }
  return out;
}

const LIMITS = configured();
const limitOf = (action: RestAction) => LIMITS.get(REST_LIMITS[action].binding)?.limit ?? Number.NaN;

interface ErrorBody {
  error: { code: string; message: string; requestId: string; retryAfterMs?: number };
}

/**
 * Calls `send` until it answers 429. The binding's windows are fixed (aligned to the clock), so a run
 * that straddles a window boundary gets a fresh budget once: 2 × limit + 1 calls always reach a refusal.
 */
async function untilRefused(action: RestAction, send: (i: number) => Promise<Response>): Promise<{ allowed: number; refused: Response }> {
  const limit = limitOf(action);
  let allowed = 0;
  for (let i = 0; i < 2 * limit + 1; i++) {
    const res = await send(i);
    if (res.status === 429) return { allowed, refused: res };
    expect(res.status, `${action} call ${i}: ${await res.clone().text()}`).toBeLessThan(400);
    allowed++;
  }
  throw new Error(`${action}: no 429 after ${2 * limit + 1} calls`);
}

async function expectRateLimited(action: RestAction, res: Response): Promise<void> {
  const period = REST_LIMITS[action].period;
  expect(res.status).toBe(429);
  expect(res.headers.get("Retry-After")).toBe(String(period));
  const body = (await res.json()) as ErrorBody;
  expect(body.error.code).toBe("rate_limited");
  expect(body.error.message).toContain(REST_LIMITS[action].what);
  expect(body.error.retryAfterMs).toBe(period * 1000);
  expect(body.error.requestId).toBeTruthy();
}

describe("REST rate limits", () => {
  it("every limited action has a binding in wrangler.toml with the period the code announces", () => {
    for (const [action, { binding, period }] of Object.entries(REST_LIMITS)) {
      const conf = LIMITS.get(binding);
      expect(conf, `${action}: [[ratelimits]] ${binding}`).toBeDefined();
      expect(conf?.period).toBe(period);
      expect(conf?.limit).toBeGreaterThan(0);
      expect(typeof (env as unknown as Record<string, { limit?: unknown }>)[binding]?.limit).toBe("function");
    }
  });

  it("POST /api/chat/dms: refused past the limit, the refused call opens nothing, another user unaffected", async () => {
    const alice = uid("alice");
    const other = uid("other");
    const peers = Array.from({ length: 3 }, (_, i) => uid(`peer${i}`));
    for (const u of [alice, other, ...peers]) expect((await api(u, "/api/me")).status).toBe(200);
    const { allowed, refused } = await untilRefused("dmCreate", () => api(alice, "/api/chat/dms", { method: "POST", json: { userId: peers[0] } }));
    expect(allowed).toBeGreaterThanOrEqual(limitOf("dmCreate"));
    await expectRateLimited("dmCreate", refused);
    // Still refused, and the refused call did not open the conversation.
    await expectRateLimited("dmCreate", await api(alice, "/api/chat/dms", { method: "POST", json: { userId: peers[1] } }));
    const list = (await (await api(alice, "/api/chat/dms")).json()) as { conversations: { peer: { id: string } }[] };
    expect(list.conversations.map((c) => c.peer.id)).toEqual([peers[0]]);
    // Reads are not limited, and another user's budget is their own.
    expect((await api(other, "/api/chat/dms", { method: "POST", json: { userId: peers[2] } })).status).toBe(201);
  });

  it("POST and DELETE /api/chat/blocks share one budget; the refused block is not stored", async () => {
    const alice = uid("alice");
    const other = uid("other");
    const target = uid("target");
    const spared = uid("spared");
    for (const u of [alice, other, target, spared]) expect((await api(u, "/api/me")).status).toBe(200);
    const { allowed, refused } = await untilRefused("blocks", (i) =>
      i % 2 === 0
        ? api(alice, "/api/chat/blocks", { method: "POST", json: { userId: target } })
        : api(alice, `/api/chat/blocks/${target}`, { method: "DELETE" }),
    );
    expect(allowed).toBeGreaterThanOrEqual(limitOf("blocks"));
    await expectRateLimited("blocks", refused);
    await expectRateLimited("blocks", await api(alice, "/api/chat/blocks", { method: "POST", json: { userId: spared } }));
    const list = (await (await api(alice, "/api/chat/blocks")).json()) as { blocks: { userId: string }[] };
    expect(list.blocks.map((b) => b.userId)).not.toContain(spared);
    expect((await api(other, "/api/chat/blocks", { method: "POST", json: { userId: spared } })).status).toBe(201);
  });

  it("POST /api/chat/media: refused before the body is stored; another user still uploads", async () => {
    const alice = uid("alice");
    const other = uid("other");
    const png = bigPng(200);
    const upload = (user: string) => api(user, "/api/chat/media", { method: "POST", body: png, headers: { "Content-Type": "image/png" } });
    const { allowed, refused } = await untilRefused("mediaUpload", () => upload(alice));
    expect(allowed).toBeGreaterThanOrEqual(limitOf("mediaUpload"));
    await expectRateLimited("mediaUpload", refused);
    const rows = await env.DB.prepare("SELECT count(*) AS n FROM media WHERE owner_id = ?").bind(alice).first<{ n: number }>();
    expect(rows?.n).toBe(allowed);
    expect((await upload(other)).status).toBe(201);
  });

  it("GET /api/presence: look-ups are refused past the limit, per user", async () => {
    const alice = uid("alice");
    const other = uid("other");
    const watched = uid("watched");
    for (const u of [alice, other, watched]) expect((await api(u, "/api/me")).status).toBe(200);
    const { allowed, refused } = await untilRefused("presence", () => api(alice, `/api/presence?userIds=${watched}`));
    expect(allowed).toBeGreaterThanOrEqual(limitOf("presence"));
    await expectRateLimited("presence", refused);
    expect((await api(other, `/api/presence?userIds=${watched}`)).status).toBe(200);
  });

  it("GET /api/chat/dms/search: searches are refused past the limit, per user", async () => {
    const alice = uid("alice");
    const other = uid("other");
    for (const u of [alice, other]) expect((await api(u, "/api/me")).status).toBe(200);
    const { allowed, refused } = await untilRefused("search", () => api(alice, "/api/chat/dms/search?q=anything"));
    expect(allowed).toBeGreaterThanOrEqual(limitOf("search"));
    await expectRateLimited("search", refused);
    expect((await api(other, "/api/chat/dms/search?q=anything")).status).toBe(200);
  });
});
