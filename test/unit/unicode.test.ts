import { describe, expect, it } from "vitest";
import { cutCodePoints, isWellFormed, toWellFormed } from "../../src/unicode";

describe("unicode", () => {
  it("isWellFormed finds lone surrogates anywhere, call after call", () => {
    const cases: [string, boolean][] = [
      ["", true],
      ["plain", true],
      ["😀 ok", true],
      ["a\uD800", false],
      ["\uDC00a", false],
      ["😀\uD83D", false],
      ["\uD800\uD800\uDC00", false],
      ["x😀y😀", true],
    ];
    // Twice over: a global pattern used with `test` would carry `lastIndex` from one call to the next.
    for (const [s, ok] of [...cases, ...cases]) expect(isWellFormed(s), JSON.stringify(s)).toBe(ok);
    for (const [s] of cases) expect(isWellFormed(toWellFormed(s))).toBe(true);
  });

  it("cutCodePoints never splits a pair", () => {
    expect(cutCodePoints("😀😀😀", 2)).toBe("😀😀");
    expect(isWellFormed(cutCodePoints("a😀", 2))).toBe(true);
  });
});
