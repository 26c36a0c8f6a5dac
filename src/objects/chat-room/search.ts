/**
 * Full-text search over a room's log: SQLite FTS5 in the room's own storage (`messages_fts`, an
 * external-content index over `messages.text`, kept by `MessageLog`: a send adds the text, an edit
 * swaps old for new, a delete removes it, so an edit is found by its new text only and a tombstone is
 * never found). Ranked by bm25 (best first), then newest first; paginated by the position of the last
 * result (its rank and seq).
 */
import type { RoomMessage } from "../../protocol";
import type { MessageLog } from "./message-log";

/** Longest search query, in characters. */
export const SEARCH_QUERY_MAX = 200;
/** Most words one query may hold. */
export const SEARCH_TERMS_MAX = 16;

/** Where a page of results ends: the last result's rank and seq. */
export interface SearchPosition {
  rank: number;
  seq: number;
}

/**
 * The FTS5 query of what a user typed: each word (letters, digits, marks) quoted, so the user's
 * punctuation is never FTS5 syntax; every word must appear; the last may be a prefix. Null when no
 * word is left.
 */
export function ftsQuery(q: string): string | null {
  const words = q.normalize("NFKC").match(/[\p{L}\p{N}\p{M}]+/gu)?.slice(0, SEARCH_TERMS_MAX) ?? [];
  if (words.length === 0) return null;
  return words.map((w, i) => `"${w}"${i === words.length - 1 ? "*" : ""}`).join(" ");
}

/** Up to `n` live messages matching `match` after `after`, best first (rank ascending, then seq descending). */
export function searchLog(sql: SqlStorage, log: MessageLog, match: string, n: number, after: SearchPosition | null): { message: RoomMessage; rank: number }[] {
  const rows = after
    ? sql
        .exec<{ seq: number; rank: number }>(
          `SELECT seq, rank FROM (SELECT rowid AS seq, bm25(messages_fts) AS rank FROM messages_fts WHERE messages_fts MATCH ?)
           WHERE rank > ? OR (rank = ? AND seq < ?) ORDER BY rank ASC, seq DESC LIMIT ?`,
          match,
          after.rank,
          after.rank,
          after.seq,
          n,
        )
        .toArray()
    : sql
        .exec<{ seq: number; rank: number }>(
          "SELECT rowid AS seq, bm25(messages_fts) AS rank FROM messages_fts WHERE messages_fts MATCH ? ORDER BY rank ASC, seq DESC LIMIT ?",
          match,
          n,
        )
        .toArray();
  const bySeq = new Map(log.bySeqs(rows.map((r) => r.seq)).map((m) => [m.seq, m]));
  const out: { message: RoomMessage; rank: number }[] = [];
  for (const r of rows) {
    const message = bySeq.get(r.seq);
    // The index holds live text only; a tombstone here would be a bug, and is never served.
    if (message && message.deleted !== true) out.push({ message, rank: r.rank });
  }
  return out;
}
