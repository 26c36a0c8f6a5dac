/**
 * Well-formed UTF-16 for strings that came from outside (token claims) and go where a lone
 * surrogate throws (`encodeURIComponent`) or corrupts (UTF-8 encoders write U+FFFD anyway). Pure.
 */

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

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
