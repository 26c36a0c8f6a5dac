/**
 * The word filter: pure, no Cloudflare imports (unit-tested in test/unit/filter.test.ts).
 *
 * A message matches when one of its words, after normalisation, is a listed word. Normalisation
 * (applied to the text and to the list alike):
 * - Unicode NFKD, then combining marks dropped: `Späm` → `spam`, fullwidth `ｓｐａｍ` → `spam`,
 *   ligatures and compatibility forms folded;
 * - invisible format characters (zero-width space/joiner, soft hyphen, bidi marks) dropped;
 * - lower case; common leetspeak folded: 0→o 1→i 3→e 4→a 5→s 7→t 8→b @→a $→s;
 * - punctuation inside a word dropped: `s.p.a.m`, `sp-am`, `s_p_a_m` → `spam`; and each piece
 *   punctuation separates read alone too: `buy,spam`, `x/spam` → `spam`;
 * - letters spaced out: a run of single-character words is also read joined (`s p a m` → `spam`),
 *   and every two adjacent words are also read joined (`sp am` → `spam`);
 * - repeated letters: `spaaaam` matches `spam` (each letter of a listed word may repeat), while a
 *   word with fewer letters than the listed one does not (`as` does not match `ass`).
 *
 * Whole words only: `class` does not match `ass`, so a listed word is not found inside a longer
 * word (no Scunthorpe problem, but `spammer` is not caught by `spam`: list it too). Not caught:
 * look-alike letters of other scripts (Cyrillic `а` for Latin `a`), words split across three or
 * more multi-letter pieces (`s pa m`), words spelled in emoji or images, and misspellings.
 */

// Not `!` or `|`: they end or separate words far more often than they stand for a letter.
const LEET: Record<string, string> = { "0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "@": "a", $: "s" };
const LEET_RE = /[0134578@$]/g;
/** Combining marks (after NFKD) and invisible format characters (zero-width, soft hyphen, bidi). */
const STRIP_RE = /[\p{M}\p{Cf}]/gu;
/** Anything that is not a letter or a digit, once leetspeak is folded. */
const NON_WORD_RE = /[^\p{L}\p{N}]/gu;

/** Longest filter word, and most words in one room's list. */
export const FILTER_WORD_MAX = 32;
export const FILTER_WORDS_MAX = 500;

/** The normalised form of one word (empty when nothing of it is left). */
export function normalizeWord(word: string): string {
  return word.normalize("NFKD").replace(STRIP_RE, "").toLowerCase().replace(LEET_RE, (ch) => LEET[ch]).replace(NON_WORD_RE, "");
}

/** The words of a text, normalised, in order (whitespace separates words; punctuation inside one does not). */
export function normalizedWords(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.normalize("NFKD").replace(STRIP_RE, "").split(/\s+/u)) {
    const w = normalizeWord(raw);
    if (w) out.push(w);
  }
  return out;
}

/**
 * The pieces of words that punctuation splits (`buy,spam` → `buy`, `spam`; `x/spam` → `x`, `spam`),
 * normalised: punctuation between two words must not hide either (the joined form is read too).
 */
export function punctuatedPieces(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.normalize("NFKD").replace(STRIP_RE, "").split(/\s+/u)) {
    const pieces = raw.toLowerCase().replace(LEET_RE, (ch) => LEET[ch]).split(NON_WORD_RE).filter((p) => p.length > 0);
    if (pieces.length > 1) out.push(...pieces);
  }
  return out;
}

/** `aaabbc` → `abc`: the key under which listed words are looked up, repeats ignored. */
function squeeze(w: string): string {
  let out = "";
  let prev = "";
  for (const ch of w) {
    if (ch !== prev) out += ch;
    prev = ch;
  }
  return out;
}

/** A compiled list: look-up by squeezed form, then an exact test that allows repeats only. */
export interface CompiledFilter {
  readonly size: number;
  /** The listed word a text matches, or null. */
  match(text: string): string | null;
}

/** Compiles a word list (words normalised; empty ones ignored). */
export function compileFilter(words: Iterable<string>): CompiledFilter {
  const byKey = new Map<string, { word: string; re: RegExp }[]>();
  let size = 0;
  /** The normalised words themselves, and their shortest and longest lengths: a spaced-out run is tested only at these lengths. */
  const exact = new Set<string>();
  let minLen = Number.POSITIVE_INFINITY;
  let maxLen = 0;
  for (const original of words) {
    const w = normalizeWord(original);
    if (!w) continue;
    const key = squeeze(w);
    const list = byKey.get(key) ?? [];
    if (list.some((e) => e.word === w)) continue;
    // Each letter may repeat: `spam` → /^s+p+a+m+$/u (letters and digits only, so nothing to escape).
    list.push({ word: w, re: new RegExp(`^${[...w].map((ch) => `${ch}+`).join("")}$`, "u") });
    byKey.set(key, list);
    exact.add(w);
    minLen = Math.min(minLen, w.length);
    maxLen = Math.max(maxLen, w.length);
    size++;
  }
  const test = (candidate: string): string | null => {
    const list = byKey.get(squeeze(candidate));
    if (!list) return null;
    for (const e of list) if (e.re.test(candidate)) return e.word;
    return null;
  };
  return {
    size,
    match(text: string): string | null {
      if (size === 0) return null;
      const ws = normalizedWords(text);
      let run = "";
      for (let i = 0; i < ws.length; i++) {
        const hit = test(ws[i]) ?? (i > 0 ? test(ws[i - 1] + ws[i]) : null);
        if (hit) return hit;
        // Letters spaced out: a run of one-character words read as one word.
        if ([...ws[i]].length === 1) {
          // Only the run's last letters can end a listed word, and only a key's length of them
          // (letters spaced out are not also repeated): bounded work per letter.
          run = (run + ws[i]).slice(-maxLen);
          for (let len = Math.max(2, minLen); len <= run.length; len++) {
            const candidate = run.slice(run.length - len);
            if (exact.has(candidate)) return candidate;
          }
        } else run = "";
      }
      for (const piece of punctuatedPieces(text)) {
        const hit = test(piece);
        if (hit) return hit;
      }
      return null;
    },
  };
}

/**
 * The listed word `text` matches, or null: the one function both a send and (at merge) an edit
 * apply. Compiles the list on each call; the room keeps a compiled list instead.
 */
export function matchesFilter(text: string, words: Iterable<string>): string | null {
  return compileFilter(words).match(text);
}

/** The deployment's list, from `FILTER_WORDS` (comma- or newline-separated). */
export function deploymentWords(value: string | undefined): string[] {
  return (value ?? "")
    .split(/[,\n]/)
    .map((w) => w.trim())
    .filter((w) => w.length > 0);
}
