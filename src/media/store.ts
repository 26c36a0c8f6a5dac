/**
 * Media storage: metadata rows in D1, bytes in R2, and the rules for who may read or delete them.
 */
import { and, eq, inArray, isNull, sql } from "drizzle-orm";
import { chunks, D1_PARAMS_MAX, db } from "../db/queries";
import { media } from "../db/schema";
import { numVar } from "../env";
import { ApiError } from "../errors";
import { logError } from "../log";
import type { SniffedType } from "./sniff";

/** A media metadata row. */
export type MediaRow = typeof media.$inferSelect;

/** Default upload limit: 10 MiB. */
export const DEFAULT_MAX_BYTES = 10 * 1024 * 1024;
/** Default per-user storage quota: 100 MiB. */
export const DEFAULT_QUOTA_BYTES = 100 * 1024 * 1024;

/** Upload limit and per-user quota from `MEDIA_MAX_BYTES` and `MEDIA_QUOTA_BYTES`. */
export function mediaLimits(env: Env): { maxBytes: number; quotaBytes: number } {
  return {
    maxBytes: numVar(env.MEDIA_MAX_BYTES, DEFAULT_MAX_BYTES),
    quotaBytes: numVar(env.MEDIA_QUOTA_BYTES, DEFAULT_QUOTA_BYTES),
  };
}

function base64url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Shape of a media id: 128 random bits, base64url (22 characters). */
export const MEDIA_ID_PATTERN = /^[A-Za-z0-9_-]{22}$/;

/** A new media id: 128 random bits, URL-safe. */
export function newMediaId(): string {
  return base64url(crypto.getRandomValues(new Uint8Array(16)));
}

/**
 * A new R2 key: random and unrelated to the media id, the owner and the file name, so a listing
 * of the bucket (or a leaked key) says nothing about who uploaded what, and knowing a media id
 * does not give the object's key.
 */
export function newR2Key(): string {
  return `${R2_KEY_PREFIX}${hex(crypto.getRandomValues(new Uint8Array(16)))}`;
}

/** Every media object's key starts with this; the orphan sweep looks at nothing else in the bucket. */
export const R2_KEY_PREFIX = "o/";

/** Hex SHA-256 of `bytes`. */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  return hex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
}

/** Bytes the user stores now (attached and unattached media). */
export async function usedBytes(env: Env, ownerId: string): Promise<number> {
  const row = await db(env)
    .select({ used: sql<number>`coalesce(sum(${media.size}), 0)` })
    .from(media)
    .where(eq(media.ownerId, ownerId))
    .get();
  return Number(row?.used ?? 0);
}

function quotaExceeded(quotaBytes: number, used: number, requested: number): ApiError {
  return new ApiError({
    code: "quota_exceeded",
    message: `Storage quota of ${quotaBytes} bytes exceeded: ${used} bytes used, ${requested} more requested.`,
    details: { quotaBytes, usedBytes: used, requestedBytes: requested },
  });
}

/**
 * Stores an upload whose type is already known: bytes to R2, then the metadata row to D1.
 *
 * R2 is written first so a row never points at missing bytes. The row is inserted only if the
 * owner's total stays within the quota, checked in the same statement (D1 runs a statement
 * atomically), so two concurrent uploads cannot both squeeze under it; the loser's object is
 * deleted again. A cheap pre-check refuses obvious overruns before anything is written.
 */
export async function storeMedia(
  env: Env,
  opts: { ownerId: string; bytes: Uint8Array; type: SniffedType; quotaBytes: number },
): Promise<MediaRow> {
  const { ownerId, bytes, type, quotaBytes } = opts;
  const size = bytes.byteLength;
  const before = await usedBytes(env, ownerId);
  if (before + size > quotaBytes) throw quotaExceeded(quotaBytes, before, size);

  const sha256 = await sha256Hex(bytes);
  const row: MediaRow = {
    id: newMediaId(),
    ownerId,
    contentType: type.contentType,
    size,
    sha256,
    r2Key: newR2Key(),
    createdAt: Date.now(),
    boundKind: null,
    boundId: null,
    boundPeer: null,
  };
  // R2 verifies the digest on write, so a corrupted transfer is refused rather than stored.
  await env.MEDIA.put(row.r2Key, bytes, { httpMetadata: { contentType: type.contentType }, sha256 });

  let inserted = false;
  try {
    const res = await env.DB.prepare(
      `INSERT INTO media (id, owner_id, content_type, size, sha256, r2_key, created_at)
       SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7
       WHERE (SELECT coalesce(sum(size), 0) FROM media WHERE owner_id = ?2) + ?4 <= ?8`,
    )
      .bind(row.id, ownerId, row.contentType, size, sha256, row.r2Key, row.createdAt, quotaBytes)
      .run();
    inserted = res.meta.changes === 1;
  } finally {
    if (!inserted) await env.MEDIA.delete(row.r2Key);
  }
  if (!inserted) throw quotaExceeded(quotaBytes, await usedBytes(env, ownerId), size);
  return row;
}

/** The media row with this id, or null (also for ids that cannot be media ids). */
export async function findMedia(env: Env, id: string): Promise<MediaRow | null> {
  if (!MEDIA_ID_PATTERN.test(id)) return null;
  const row = await db(env).select().from(media).where(eq(media.id, id)).get();
  return row ?? null;
}

/**
 * Who may read media: its owner; once posted in a room, whoever may read the room (checked by the
 * route: `mayReadRoom`); once sent in a DM, the recipient too.
 */
export function canRead(row: MediaRow, userId: string): boolean {
  if (row.ownerId === userId) return true;
  if (row.boundKind === "room") return true;
  if (row.boundKind === "dm") return row.boundPeer === userId;
  return false;
}

/**
 * Deletes the owner's unattached media: the row first (atomically, only while unattached, so a
 * concurrent `claimMedia` either wins and the delete is refused, or loses and finds nothing), then
 * the bytes.
 */
export async function deleteMedia(env: Env, ownerId: string, id: string): Promise<"deleted" | "not_found" | "attached"> {
  const row = await findMedia(env, id);
  if (!row || row.ownerId !== ownerId) return "not_found";
  if (row.boundKind !== null) return "attached";
  const res = await db(env)
    .delete(media)
    .where(and(eq(media.id, id), eq(media.ownerId, ownerId), isNull(media.boundKind)));
  if (res.meta.changes !== 1) {
    const again = await findMedia(env, id);
    return again ? "attached" : "not_found";
  }
  try {
    await env.MEDIA.delete(row.r2Key);
  } catch (err) {
    // The row is gone, so the bytes are unreachable; only storage is lost. Logged for cleanup.
    logError("media: R2 delete failed", err, { mediaId: id, r2Key: row.r2Key });
  }
  return "deleted";
}

/** Unattached uploads older than this are removed by the scheduled sweep. */
export const UNATTACHED_TTL_MS = 24 * 3_600_000;
/** Most uploads one sweep removes, so a run stays within its subrequest budget. */
const SWEEP_BATCH = 100;

/**
 * Removes uploads that were never attached to a message within UNATTACHED_TTL_MS: the row first, only
 * while still unattached (a concurrent `claimMedia` wins), then the bytes. Run by the cron trigger.
 * Returns how many were removed.
 */
export async function sweepUnattachedMedia(env: Env, now = Date.now()): Promise<number> {
  const stale = await db(env)
    .select({ id: media.id, r2Key: media.r2Key })
    .from(media)
    .where(and(isNull(media.boundKind), sql`${media.createdAt} < ${now - UNATTACHED_TTL_MS}`))
    .limit(SWEEP_BATCH);
  let removed = 0;
  for (const row of stale) {
    const res = await db(env)
      .delete(media)
      .where(and(eq(media.id, row.id), isNull(media.boundKind)));
    if (res.meta.changes !== 1) continue;
    removed++;
    try {
      await env.MEDIA.delete(row.r2Key);
    } catch (err) {
      logError("media sweep: R2 delete failed", err, { mediaId: row.id, r2Key: row.r2Key });
    }
  }
  return removed;
}

/** An object younger than this may belong to an upload between its R2 put and its D1 insert. */
export const ORPHAN_GRACE_MS = 3_600_000;
/** Objects one orphan sweep looks at. */
const ORPHAN_SCAN = 1000;

/**
 * Removes R2 objects that no media row points at: left when a Worker died between the R2 put and
 * the D1 insert of `storeMedia`, or when the delete of a quota loser failed. Each run lists one
 * window of ORPHAN_SCAN keys after `startAfter` (by default a random point: keys are random hex, so
 * runs sample the whole bucket over time with no cursor to keep), skips objects younger than
 * ORPHAN_GRACE_MS, and deletes those with no row. Returns how many were deleted.
 *
 * It assumes this D1 database is the only writer of media rows for the bucket under `o/`: a bucket
 * shared with another environment (staging and production on one bucket) would lose that
 * environment's objects. Give each environment its own bucket.
 */
export async function sweepOrphanObjects(env: Env, now = Date.now(), startAfter = `${R2_KEY_PREFIX}${hex(crypto.getRandomValues(new Uint8Array(16)))}`): Promise<number> {
  let listed = await env.MEDIA.list({ prefix: R2_KEY_PREFIX, startAfter, limit: ORPHAN_SCAN });
  // Near the end of the key space the window wraps around to the start.
  if (!listed.truncated && listed.objects.length < ORPHAN_SCAN && startAfter > R2_KEY_PREFIX) {
    const head = await env.MEDIA.list({ prefix: R2_KEY_PREFIX, limit: ORPHAN_SCAN - listed.objects.length });
    listed = { ...listed, objects: [...listed.objects, ...head.objects.filter((o) => o.key <= startAfter)] };
  }
  const old = listed.objects.filter((o) => o.uploaded.getTime() < now - ORPHAN_GRACE_MS).map((o) => o.key);
  const orphans: string[] = [];
  for (const chunk of chunks(old, D1_PARAMS_MAX)) {
    const known = new Set((await db(env).select({ key: media.r2Key }).from(media).where(inArray(media.r2Key, chunk))).map((r) => r.key));
    for (const key of chunk) if (!known.has(key)) orphans.push(key);
  }
  if (orphans.length > 0) await env.MEDIA.delete(orphans);
  return orphans.length;
}
