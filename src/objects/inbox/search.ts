/**
 * Full-text search over the owner's DMs, in the inbox's own SQLite (FTS5, `messages_fts`, kept in step
 * with `messages.text` by triggers: schema version 4). The inbox holds only its owner's conversations,
 * so nothing else can match. A deletion clears the text (no match); an edit replaces it (the old text
 * no longer matches, the new one does).
 */
import type { DmMessage } from "../../protocol";
import type { InboxContext } from "./context";
import { type MessageRow, rowToMessage } from "./store";

/** Longest query, in characters. */
export const SEARCH_QUERY_MAX = 256;
/** Most terms of one query. */
export const SEARCH_TERMS_MAX = 16;

/** A position in the ranked list: the score (bm25, lower is better), then the row, newest first. */
export interface SearchPosition {
  score: number;
  rowid: number;
}

/** The sort key of a position, as `pagination.ts` encodes it into a cursor. */
export function searchKey(p: SearchPosition): string {
  return `${p.score}|${p.rowid}`;
}

/** Reads a sort key back; null if it is not one this list made. */
export function parseSearchKey(key: string): SearchPosition | null {
  const m = /^(-?\d+(?:\.\d+)?(?:e[+-]?\d+)?)\|(\d{1,15})$/.exec(key);
  if (!m) return null;
  const score = Number(m[1]);
  return Number.isFinite(score) ? { score, rowid: Number(m[2]) } : null;
}

/**
 * The FTS5 query of what a user typed: every whitespace-separated term must match (AND), each quoted
 * so no input is FTS syntax (quotes doubled), the last one also as a prefix (typing "hel" finds
 * "hello"). Terms without a letter or digit (punctuation, emoji) are dropped: the tokenizer indexes
 * neither. Null when nothing searchable is left.
 */
export function ftsQuery(q: string): string | null {
  const terms = q
    .split(/\s+/)
    .filter((t) => /[\p{L}\p{N}]/u.test(t))
    .slice(0, SEARCH_TERMS_MAX);
  if (terms.length === 0) return null;
  return terms.map((t, i) => `"${t.replace(/"/g, '""')}"${i === terms.length - 1 ? "*" : ""}`).join(" ");
}

/** Search over the owner's conversations. */
export class InboxSearch {
  constructor(private readonly c: InboxContext) {}

  /**
   * Up to `limit + 1` live messages matching `match` (an `ftsQuery`), best first, after `after`, each
   * with its sort key (`searchKey`): the caller keeps `limit` and makes the cursor (`takePage`). Only in
   * `conversationId` when given; null when that conversation is not one of the owner's.
   */
  search(match: string, limit: number, after: SearchPosition | null, conversationId?: string): { message: DmMessage; key: string }[] | null {
    if (conversationId !== undefined && !this.c.store.conversation(conversationId)) return null;
    const rows = this.c.sql
      .exec<MessageRow & { score: number; rid: number }>(
        `SELECT m.*, f.score AS score, f.rid AS rid
         FROM (SELECT rowid AS rid, bm25(messages_fts) AS score FROM messages_fts WHERE messages_fts MATCH ?) AS f
         JOIN messages AS m ON m.rowid = f.rid
         WHERE m.deleted_by IS NULL
           AND (? IS NULL OR m.conversation_id = ?)
           AND (? IS NULL OR f.score > ? OR (f.score = ? AND f.rid < ?))
         ORDER BY f.score ASC, f.rid DESC
         LIMIT ?`,
        match,
        conversationId ?? null,
        conversationId ?? null,
        after?.score ?? null,
        after?.score ?? null,
        after?.score ?? null,
        after?.rowid ?? null,
        limit + 1,
      )
      .toArray();
    return rows.map((r) => ({ message: rowToMessage(r), key: searchKey({ score: r.score, rowid: r.rid }) }));
  }
}
