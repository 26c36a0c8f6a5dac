/**
 * HTTP byte ranges (RFC 9110 §14) for media downloads. Pure: no Cloudflare imports.
 */

/** What a `Range` header asks of a representation of `size` bytes. */
export type RangeRequest =
  /** No usable range: send the whole representation with 200. */
  | { kind: "full" }
  /** One satisfiable range, inclusive bounds: send 206. */
  | { kind: "partial"; start: number; end: number }
  /** Syntactically valid but no byte of it exists: send 416. */
  | { kind: "unsatisfiable" };

const SPEC = /^\s*(\d*)\s*-\s*(\d*)\s*$/;

/**
 * Interprets a `Range` header for a representation of `size` bytes (size > 0).
 * A missing, malformed or non-`bytes` header is ignored (full response), as RFC 9110 allows.
 * Several ranges are answered with the whole representation rather than multipart/byteranges,
 * which the RFC also allows and media players do not ask for.
 */
export function parseRange(header: string | null | undefined, size: number): RangeRequest {
  if (!header) return { kind: "full" };
  const m = /^\s*bytes\s*=(.*)$/i.exec(header);
  if (!m) return { kind: "full" };
  const specs = m[1].split(",");
  if (specs.length !== 1) return { kind: "full" };
  const spec = SPEC.exec(specs[0]);
  if (!spec || (spec[1] === "" && spec[2] === "")) return { kind: "full" };
  if (spec[1] === "") {
    // Suffix range: the last N bytes.
    const n = Number(spec[2]);
    if (n === 0) return { kind: "unsatisfiable" };
    return { kind: "partial", start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(spec[1]);
  // An end before the start makes the header invalid (ignored), whatever the size.
  if (spec[2] !== "" && Number(spec[2]) < start) return { kind: "full" };
  if (start >= size) return { kind: "unsatisfiable" };
  const end = spec[2] === "" ? size - 1 : Number(spec[2]);
  return { kind: "partial", start, end: Math.min(end, size - 1) };
}

/** Whether an `If-None-Match` or `If-Range` header value names `etag` (weak comparison for If-None-Match). */
export function etagMatches(header: string | null | undefined, etag: string): boolean {
  if (!header) return false;
  const bare = etag.replace(/^W\//, "");
  return header.split(",").some((v) => {
    const tag = v.trim();
    return tag === "*" || tag.replace(/^W\//, "") === bare;
  });
}
