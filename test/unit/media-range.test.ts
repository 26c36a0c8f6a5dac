import { describe, expect, it } from "vitest";
import { etagMatches, parseRange } from "../../src/media/range";

describe("parseRange", () => {
  const size = 100;
  it("no header, another unit, malformed or multiple ranges: the whole body", () => {
    for (const h of [null, undefined, "", "items=0-1", "bytes=", "bytes=abc", "bytes=5-2", "bytes=-", "bytes=0-1,5-6"]) {
      expect(parseRange(h, size), String(h)).toEqual({ kind: "full" });
    }
  });
  it("a closed range", () => {
    expect(parseRange("bytes=0-9", size)).toEqual({ kind: "partial", start: 0, end: 9 });
    expect(parseRange("bytes = 10 - 10", size)).toEqual({ kind: "partial", start: 10, end: 10 });
  });
  it("an end beyond the size is clamped", () => {
    expect(parseRange("bytes=90-1000", size)).toEqual({ kind: "partial", start: 90, end: 99 });
  });
  it("an open range", () => {
    expect(parseRange("bytes=95-", size)).toEqual({ kind: "partial", start: 95, end: 99 });
  });
  it("a suffix range", () => {
    expect(parseRange("bytes=-5", size)).toEqual({ kind: "partial", start: 95, end: 99 });
    expect(parseRange("bytes=-500", size)).toEqual({ kind: "partial", start: 0, end: 99 });
  });
  it("unsatisfiable", () => {
    expect(parseRange("bytes=100-", size)).toEqual({ kind: "unsatisfiable" });
    expect(parseRange("bytes=200-300", size)).toEqual({ kind: "unsatisfiable" });
    expect(parseRange("bytes=-0", size)).toEqual({ kind: "unsatisfiable" });
  });
});

describe("etagMatches", () => {
  it("matches one of a list, weak or strong, and *", () => {
    expect(etagMatches('"a", "b"', '"b"')).toBe(true);
    expect(etagMatches('W/"b"', '"b"')).toBe(true);
    expect(etagMatches("*", '"b"')).toBe(true);
    expect(etagMatches('"c"', '"b"')).toBe(false);
    expect(etagMatches(null, '"b"')).toBe(false);
  });
});
