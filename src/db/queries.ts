/** Typed D1 queries shared by routes and middleware. */
import { drizzle } from "drizzle-orm/d1";
import { eq, inArray } from "drizzle-orm";
import type { AuthUser } from "../env";
import { users } from "./schema";

/** A drizzle client over the D1 binding. */
export function db(env: Env) {
  return drizzle(env.DB);
}

// Per-isolate memo of users already provisioned with this name: a cache, never state —
// losing it only costs one idempotent upsert.
const provisioned = new Map<string, string>();
const PROVISIONED_MAX = 10_000;

/** Creates the user from token claims on first use, and follows later name changes. */
export async function ensureUser(env: Env, user: AuthUser): Promise<void> {
  if (provisioned.get(user.id) === user.name) return;
  const now = Date.now();
  await db(env)
    .insert(users)
    .values({ id: user.id, name: user.name, createdAt: now, updatedAt: now })
    .onConflictDoUpdate({ target: users.id, set: { name: user.name, updatedAt: now } });
  if (provisioned.size >= PROVISIONED_MAX) provisioned.clear();
  provisioned.set(user.id, user.name);
}

/** The user with this id, or null. */
export async function findUser(env: Env, id: string): Promise<{ id: string; name: string } | null> {
  const row = await db(env).select({ id: users.id, name: users.name }).from(users).where(eq(users.id, id)).get();
  return row ?? null;
}

/** The users among `ids` that exist, by id. */
export async function findUsers(env: Env, ids: readonly string[]): Promise<Map<string, { id: string; name: string }>> {
  if (ids.length === 0) return new Map();
  const rows = await db(env).select({ id: users.id, name: users.name }).from(users).where(inArray(users.id, [...ids]));
  return new Map(rows.map((r) => [r.id, r]));
}
