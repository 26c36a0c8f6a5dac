/** The word filter's matching: what it catches, and (documented in docs/moderation.md) what it does not. */
import { describe, expect, it } from "vitest";
import { compileFilter, deploymentWords, matchesFilter, normalizeWord } from "../../src/objects/chat-room/filter";

const words = ["spam", "ass"];

describe("matchesFilter", () => {
  it.each([
    ["spam", "plain"],
    ["SPAM", "case"],
    ["Späm", "accents (NFKD)"],
    ["ｓｐａｍ", "fullwidth letters"],
    ["sp\u200bam", "a zero-width space inside"],
    ["s p a m", "letters spaced out"],
    ["buy s p a m now", "spaced out inside a sentence"],
    ["x y s p a m", "spaced out after other single letters"],
    ["s.p.a.m", "punctuation between letters"],
    ["sp-am", "a hyphen inside"],
    ["sp am", "split in two"],
    ["5p4m", "leetspeak"],
    ["$pam", "leetspeak symbol"],
    ["spaaaam", "repeated letters"],
    ["this is spam!", "trailing punctuation"],
  ])("catches %j (%s)", (text) => {
    expect(matchesFilter(text, words)).toBe("spam");
  });

  it.each([
    ["class", "a listed word inside a longer word (whole words only)"],
    ["as", "fewer letters than the listed word"],
    ["spammer", "a longer word: list it too"],
    ["ѕраm", "look-alike letters of other scripts (Cyrillic)"],
    ["s pa m", "split into three pieces of which two are longer than one letter"],
    ["spma", "misspellings"],
  ])("does not catch %j (%s)", (text) => {
    expect(matchesFilter(text, words)).toBeNull();
  });

  it("normalises listed words the same way, and an empty list matches nothing", () => {
    expect(normalizeWord(" Bäd-Wörd ")).toBe("badword");
    expect(compileFilter([]).match("anything")).toBeNull();
    expect(compileFilter(["", "!!"]).size).toBe(0);
    expect(deploymentWords("a, b\nc,,")).toEqual(["a", "b", "c"]);
  });

  it("catches a spaced-out word with a double letter", () => {
    expect(matchesFilter("you a s s", words)).toBe("ass");
  });

  it("bounded work on long spaced-out texts, even with a 32-letter word listed", () => {
    const f = compileFilter([...words, "abcdefghijklmnopqrstuvwxyzabcdef"]);
    const text = "x ".repeat(2000);
    f.match(text);
    const t0 = performance.now();
    for (let i = 0; i < 10; i++) expect(f.match(text)).toBeNull();
    // Linear in the text: about 4 ms per 4000-character message with this list on the development
    // machine (0.6 ms when no listed word is longer than 7 letters); testing every substring of the
    // run (quadratic) takes hundreds. The bound is generous for a loaded machine.
    expect((performance.now() - t0) / 10).toBeLessThan(100);
  });
});
