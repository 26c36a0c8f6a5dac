/**
 * Moderation test helpers: REST calls as a user (with extra token claims), rooms created through the
 * API (so the room's object knows its owner), error bodies, the audit log.
 */
import { SELF } from "cloudflare:test";
import { expect } from "vitest";
import { BASE, tokenFor } from "./index";

let n = 0;
export const uid = (name: string) => `${name}-${++n}-${crypto.randomUUID().slice(0, 6)}`;

/** fetch through the worker as `user`, with extra token claims (e.g. the admin claim). */
export async function call(user: string, path: string, init: { method?: string; json?: unknown; claims?: Record<string, unknown>; headers?: Record<string, string> } = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set("Authorization", `Bearer ${await tokenFor(user, { claims: init.claims })}`);
  if (init.json !== undefined) headers.set("Content-Type", "application/json");
  return SELF.fetch(`${BASE}${path}`, { method: init.method ?? "GET", headers, body: init.json === undefined ? undefined : JSON.stringify(init.json) });
}
export const asAdmin = { claims: { role: "admin" } };

/** Creates a room through the API as `owner` (so the object knows its owner). */
export async function makeRoom(owner: string, opts: { visibility?: "public" | "private"; category?: string } = {}): Promise<string> {
  const res = await call(owner, "/api/chat/rooms", { method: "POST", json: { name: uid("room"), category: opts.category ?? "tech", visibility: opts.visibility } });
  expect(res.status, await res.clone().text()).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

export async function expectError(res: Response, status: number, code: string): Promise<{ code: string; message: string; until?: number | null }> {
  const text = await res.text();
  expect(res.status, text).toBe(status);
  const body = JSON.parse(text) as { error: { code: string; message: string; until?: number | null } };
  expect(body.error.code).toBe(code);
  return body.error;
}

export async function auditOf(room: string, moderator: string): Promise<{ actor: string; action: string; target: string | null; reason: string | null }[]> {
  const res = await call(moderator, `/api/chat/rooms/${room}/audit`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { entries: { actor: string; action: string; target: string | null; reason: string | null }[] }).entries;
}

