/**
 * Well-formed UTF-16 for strings that came from outside (token claims, JSON bodies, whose `"\ud800"`
 * escapes make lone surrogates) and go where a lone surrogate throws (`encodeURIComponent`) or
 * corrupts (UTF-8 encoders, D1 among them, store U+FFFD instead). Pure.
 */

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Whether `s` has no lone surrogate (`String.prototype.isWellFormed`, ES2024). */
export function isWellFormed(s: string): boolean {
  // A fresh search: the shared pattern is global, and `test` on it would keep `lastIndex` between calls.
  return s.search(LONE_SURROGATE) === -1;
}

/** `s` with every lone surrogate replaced by U+FFFD (`String.prototype.toWellFormed`, ES2024). */
export function toWellFormed(s: string): string {
  return s.replace(LONE_SURROGATE, "\uFFFD");
}

/** The first `max` code points of `s`: never cuts a surrogate pair in two. */
export function cutCodePoints(s: string, max: number): string {
  let out = "";
  let points = 0;
  // for…of walks code points: a pair comes as one string of length 2.
  for (const ch of s) {
    if (points === max) break;
    out += ch;
    points++;
  }
  return out;
}
