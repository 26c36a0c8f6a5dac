/** Typed D1 queries shared by routes and middleware. */
import { drizzle } from "drizzle-orm/d1";
import { eq, inArray, sql } from "drizzle-orm";
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

/** The upsert of users from token claims: created on first use, later name changes followed. Any number of users, in one D1 batch. */
export function upsertUsersStatements(env: Env, list: readonly AuthUser[], now = Date.now()) {
  const d1 = db(env);
  // Four bound parameters per row, under D1's 100.
  return chunks(list, Math.floor(D1_PARAMS_MAX / 4)).map((c) =>
    d1
      .insert(users)
      .values(c.map((u) => ({ id: u.id, name: u.name, createdAt: now, updatedAt: now })))
      .onConflictDoUpdate({ target: users.id, set: { name: sql`excluded.name`, updatedAt: sql`excluded.updated_at` } }),
  );
}

/** Creates the user from token claims on first use, and follows later name changes. */
export async function ensureUser(env: Env, user: AuthUser): Promise<void> {
  if (provisioned.get(user.id) === user.name) return;
  await upsertUsersStatements(env, [user])[0];
  if (provisioned.size >= PROVISIONED_MAX) provisioned.clear();
  provisioned.set(user.id, user.name);
}

/** The user with this id, or null. */
export async function findUser(env: Env, id: string): Promise<{ id: string; name: string } | null> {
  const row = await db(env).select({ id: users.id, name: users.name }).from(users).where(eq(users.id, id)).get();
  return row ?? null;
}

/** D1 binds at most 100 parameters per query; an `IN (...)` list is chunked below that. */
export const D1_PARAMS_MAX = 100;

/** `items` in slices of at most `size` (a long `IN (...)` list or a multi-row insert, for D1). */
export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** The users among `ids` that exist, by id. Any number of ids: queried in chunks of `D1_PARAMS_MAX`. */
export async function findUsers(env: Env, ids: readonly string[]): Promise<Map<string, { id: string; name: string }>> {
  const unique = [...new Set(ids)];
  const found = new Map<string, { id: string; name: string }>();
  for (const chunk of chunks(unique, D1_PARAMS_MAX)) {
    const rows = await db(env).select({ id: users.id, name: users.name }).from(users).where(inArray(users.id, chunk));
    for (const r of rows) found.set(r.id, r);
  }
  return found;
}
