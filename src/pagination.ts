/**
 * The one shape of a paginated list: `?limit=&cursor=` in, `{ <items>, nextCursor }` out, where
 * `nextCursor` is opaque (base64url of the last row's sort key) and null on the last page. Lists
 * read one row more than `limit` to know whether another page exists, so a full last page does not
 * cost an empty request. Used by the rooms directory and the block list.
 */
import { z } from "@hono/zod-openapi";
import { ApiError } from "./errors";

/** Longest cursor accepted (a sort key of a user id and a time fits in well under this). */
const CURSOR_MAX = 400;

/** The query of a paginated list: `limit` (1…`max`, default `defaultLimit`) and `cursor`. */
export function pageQuery(defaultLimit: number, max: number) {
  return {
    limit: z.coerce.number().int().min(1).max(max).default(defaultLimit),
    cursor: z.string().max(CURSOR_MAX).optional().openapi({ description: "`nextCursor` of the previous page" }),
  };
}

/** The response schema `{ [key]: item[], nextCursor }`. */
export function pageSchema<K extends string, T extends z.ZodType>(key: K, item: T) {
  return z.object({ [key]: z.array(item), nextCursor: z.string().nullable() } as { [P in K]: z.ZodArray<T> } & {
    nextCursor: z.ZodNullable<z.ZodString>;
  });
}

/** The opaque cursor of a sort key: base64url of its UTF-8 (for an ASCII key, `btoa` without padding). */
export function encodeCursor(key: string): string {
  let bin = "";
  for (const byte of new TextEncoder().encode(key)) bin += String.fromCharCode(byte);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** The sort key of a cursor, if `valid` accepts it; else a 400 `bad_request` naming `cursor`. */
export function decodeCursor(cursor: string, valid: (key: string) => boolean): string {
  try {
    const bin = atob(cursor.replace(/-/g, "+").replace(/_/g, "/"));
    const key = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(Uint8Array.from(bin, (ch) => ch.charCodeAt(0)));
    if (valid(key)) return key;
  } catch {
    // Not base64, or not UTF-8: the same answer as a well-formed key this list never made.
  }
  throw new ApiError({ code: "bad_request", message: "cursor: not a cursor from this API" });
}

/**
 * The sort key to continue after: null when the query has no `cursor`, else {@link decodeCursor}'s
 * answer. An empty `cursor=` is a 400 like any other bad one, not the first page: a client that sends
 * `nextCursor ?? ""` after the last page must not be handed the first page again, forever.
 */
export function cursorKey(cursor: string | undefined, valid: (key: string) => boolean): string | null {
  return cursor === undefined ? null : decodeCursor(cursor, valid);
}

/**
 * A page from `rows`, which the caller read with `limit + 1` (or all rows after the cursor, in order):
 * the first `limit` rows and the cursor of the last one, or null when no row was left over.
 */
export function takePage<T>(rows: T[], limit: number, keyOf: (row: T) => string): { items: T[]; nextCursor: string | null } {
  const items = rows.slice(0, limit);
  const nextCursor = rows.length > limit && items.length > 0 ? encodeCursor(keyOf(items[items.length - 1])) : null;
  return { items, nextCursor };
}
