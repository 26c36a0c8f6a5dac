/**
 * Binding uploaded media to the message that carries it. Called by the ChatRoom and Inbox objects
 * only when a message has `mediaIds`, so plain text stays off D1.
 */
import { and, eq, inArray, isNull, sql } from "drizzle-orm";
import { db } from "../db/queries";
import { media } from "../db/schema";
import type { MediaDescriptor } from "../protocol";

/** Where a message with media is posted. */
export type MediaScope =
  | { kind: "room"; roomId: string }
  | { kind: "dm"; conversationId: string; peerId: string };

export type ClaimResult =
  | { ok: true; media: MediaDescriptor[] }
  | { ok: false; code: "not_found" | "forbidden"; message: string };

/** The URL a client fetches the bytes from. */
export function mediaUrl(id: string): string {
  return `/api/chat/media/${id}`;
}

/**
 * Checks that every id exists, is owned by `ownerId`, and is unattached or already attached to this
 * same scope (a retried send), then attaches the unattached ones, all or none. Descriptors come back in
 * the order given, duplicates removed. Someone else's media is reported as `not_found`, like a missing id;
 * media attached elsewhere (or taken by a concurrent send) as `forbidden`. See docs/media.md.
 */
export async function claimMedia(env: Env, ownerId: string, mediaIds: readonly string[], scope: MediaScope): Promise<ClaimResult> {
  const ids = [...new Set(mediaIds)];
  if (ids.length === 0) return { ok: true, media: [] };
  const boundId = scope.kind === "room" ? scope.roomId : scope.conversationId;
  const boundPeer = scope.kind === "dm" ? scope.peerId : null;
  const rows = await db(env).select().from(media).where(inArray(media.id, ids));
  const byId = new Map(rows.map((r) => [r.id, r]));
  const unbound: string[] = [];
  for (const id of ids) {
    const row = byId.get(id);
    // Someone else's media is reported as missing: ids leak nothing.
    if (!row || row.ownerId !== ownerId) return { ok: false, code: "not_found", message: `media ${id} not found` };
    if (row.boundKind === null) unbound.push(id);
    else if (row.boundKind !== scope.kind || row.boundId !== boundId) {
      return { ok: false, code: "forbidden", message: `media ${id} is already attached to another message` };
    }
  }
  if (unbound.length > 0) {
    const stillFree = and(inArray(media.id, unbound), eq(media.ownerId, ownerId), isNull(media.boundKind));
    // All or nothing, in one statement (D1 runs a statement atomically): a concurrent send or
    // delete may have taken one of them since the read above, and then none is bound, so no media
    // is left attached to a message that was never stored.
    const res = await db(env)
      .update(media)
      .set({ boundKind: scope.kind, boundId, boundPeer })
      .where(and(stillFree, sql`(select count(*) from ${media} where ${stillFree}) = ${unbound.length}`));
    if (res.meta.changes !== unbound.length) {
      return { ok: false, code: "forbidden", message: "media was attached to another message or deleted concurrently" };
    }
  }
  return {
    ok: true,
    media: ids.map((id) => {
      const r = byId.get(id)!;
      return { id, url: mediaUrl(id), contentType: r.contentType, size: r.size };
    }),
  };
}

/**
 * Releases media its scope no longer references (every message carrying it was deleted): unbound,
 * it is readable by its owner only, and the scheduled sweep (`sweepUnattachedMedia`) removes it once
 * older than UNATTACHED_TTL_MS, which an upload that was posted nearly always is. Only media still
 * bound to this scope is touched, so a retry is harmless. Returns how many rows changed.
 */
export async function releaseMedia(env: Env, mediaIds: readonly string[], scope: MediaScope): Promise<number> {
  const ids = [...new Set(mediaIds)];
  if (ids.length === 0) return 0;
  const boundId = scope.kind === "room" ? scope.roomId : scope.conversationId;
  const res = await db(env)
    .update(media)
    .set({ boundKind: null, boundId: null, boundPeer: null })
    .where(and(inArray(media.id, ids), eq(media.boundKind, scope.kind), eq(media.boundId, boundId)));
  return res.meta.changes;
}
