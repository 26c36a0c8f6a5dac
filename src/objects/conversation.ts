/**
 * Pure DM helpers: deterministic conversation ids, previews and read-state arithmetic.
 * No Cloudflare imports, so both inboxes (and tests) compute the same values without coordination.
 */

/** Prefix of every DM conversation id. */
export const CONVERSATION_PREFIX = "dm_";
/** Hex characters of the sha-256 kept in the id (128 bits: collisions are not a practical concern). */
const ID_HEX_CHARS = 32;
/** Longest notification preview, in characters. */
export const PREVIEW_MAX = 120;

/** Shape check for a conversation id: the one pattern, in `src/ids.ts`. */
export { CONVERSATION_ID_RE } from "../ids";

/**
 * The conversation id of two users: `dm_` + hex sha-256 over the sorted pair, truncated.
 * A newline separates the ids because user ids cannot contain one, so no two pairs share an input.
 */
export async function conversationIdFor(a: string, b: string): Promise<string> {
  const [x, y] = a < b ? [a, b] : [b, a];
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(`${x}\n${y}`));
  const hex = [...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
  return CONVERSATION_PREFIX + hex.slice(0, ID_HEX_CHARS);
}

/** The notification preview of a message: its text collapsed and cut, or a media placeholder. */
export function previewOf(text: string | undefined, mediaCount: number): string {
  const collapsed = (text ?? "").replace(/\s+/g, " ").trim();
  if (collapsed.length > 0) {
    return collapsed.length > PREVIEW_MAX ? `${collapsed.slice(0, PREVIEW_MAX - 1)}…` : collapsed;
  }
  if (mediaCount > 0) return mediaCount === 1 ? "[1 attachment]" : `[${mediaCount} attachments]`;
  return "";
}

/**
 * The read position after a `mark_read`: never moves backwards, never past the last message.
 * Returns null when nothing changes.
 */
export function nextReadSeq(current: number, requested: number, lastSeq: number): number | null {
  const target = Math.min(requested, lastSeq);
  return target > current ? target : null;
}
