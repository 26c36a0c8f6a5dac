import { describe, expect, it } from "vitest";
import { ALLOWED_CONTENT_TYPES, sniff } from "../../src/media/sniff";
import { REFUSED, SAMPLES, bytesOf, ftyp } from "../helpers/media-fixtures";

describe("sniff: type from magic numbers", () => {
  for (const s of SAMPLES) {
    it(`detects ${s.name} as ${s.contentType}`, () => {
      expect(sniff(s.bytes)?.contentType).toBe(s.contentType);
    });
  }

  it("has a sample for every allowed content type", () => {
    const covered = new Set(SAMPLES.map((s) => s.contentType));
    expect(ALLOWED_CONTENT_TYPES.filter((t) => !covered.has(t))).toEqual([]);
  });

  for (const r of REFUSED) {
    it(`refuses ${r.name}`, () => {
      expect(sniff(r.bytes)).toBeNull();
    });
  }

  it("refuses empty input", () => {
    expect(sniff(new Uint8Array(0))).toBeNull();
  });

  it("looks at the bytes only: a PNG signature after a text prefix is not a PNG", () => {
    const png = SAMPLES.find((s) => s.name === "png")!.bytes;
    expect(sniff(bytesOf("<html>", png))).toBeNull();
  });

  it("a truncated signature is refused", () => {
    expect(sniff(bytesOf([0x89, 0x50, 0x4e, 0x47, 0x0d]))).toBeNull();
    expect(sniff(bytesOf("RIFF", [0, 0, 0]))).toBeNull();
  });

  it("a malformed ftyp box is refused", () => {
    const bad = ftyp("isom", ["isom"]);
    bad[3] = 7; // box size not a multiple of 4
    expect(sniff(bad)).toBeNull();
  });

  it("a generic HEIF brand without avif or heic compatibility is image/heif", () => {
    expect(sniff(ftyp("mif1", ["mif1", "miaf"]))?.contentType).toBe("image/heif");
  });

  it("an unknown major brand is decided by a known compatible brand", () => {
    expect(sniff(ftyp("abcd", ["zzzz", "mp42"]))?.contentType).toBe("video/mp4");
  });

  it("classifies kinds for Content-Disposition", () => {
    const kinds = new Map(SAMPLES.map((s) => [s.contentType, sniff(s.bytes)?.kind]));
    expect(kinds.get("image/png")).toBe("image");
    expect(kinds.get("video/webm")).toBe("video");
    expect(kinds.get("audio/mpeg")).toBe("audio");
    expect(kinds.get("application/pdf")).toBe("document");
  });
});
